//! The `ser-features` binary on tiny generated corpora in temp dirs.

use std::path::Path;
use std::process::{Command, Output};

use ser_features::io::read_feature_table;

fn ser_features(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ser-features")).args(args).env_remove("RUST_LOG").output().unwrap()
}

#[track_caller]
fn ok(args: &[&str]) -> serde_json::Value {
    let out = ser_features(args);
    assert!(out.status.success(), "ser-features {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

#[track_caller]
fn fails(args: &[&str], expect: &str) {
    let out = ser_features(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(expect), "stderr does not mention `{expect}`:\n{stderr}");
}

const CONFIG: &str = "sample_rate: 22050\nn_fft: 2048\nhop_length: 512\nn_mels: 128\nfmin: 0.0\nfmax: null\n\
top_db: 80.0\nkind: mfcc\nn_mfcc: 40\ndeltas: false\nframes: 174\npad: zeros\nmax_duration_s: 60.0\n";

fn corpus(dir: &Path, speakers: &str) -> String {
    let raw = dir.join("raw");
    ok(&["synth", "--out", raw.to_str().unwrap(), "--speakers", speakers, "--seed", "3"]);
    std::fs::write(dir.join("features.yaml"), CONFIG).unwrap();
    raw.to_str().unwrap().to_string()
}

#[test]
fn synth_extract_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let raw = corpus(dir.path(), "2");
    let config = dir.path().join("features.yaml");
    let out = dir.path().join("f/features.parquet");
    let summary = ok(&["extract", "--config", config.to_str().unwrap(), "--in", &raw, "--out", out.to_str().unwrap()]);
    assert_eq!(summary["rows"], 120);
    assert_eq!(summary["rejects"], 0);
    assert_eq!(summary["speakers"], 2);
    assert_eq!(summary["labels"]["neutral"], 8);
    assert_eq!(summary["labels"]["angry"], 16);
    let table = read_feature_table(&out).unwrap();
    let row = &table.rows[0];
    assert_eq!(row.path, "Actor_01/03-01-01-01-01-01-01.wav");
    assert_eq!((row.n_frames, row.source_sample_rate, row.gender.as_deref()), (174, 48_000, Some("male")));
    assert!(row.n_frames_source > 100);
    assert_eq!(std::fs::read_to_string(dir.path().join("f/features.rejects.csv")).unwrap(), "path,reason\n");
    let inspect = ok(&["inspect", out.to_str().unwrap()]);
    assert_eq!(inspect["rows"], 120);
}

#[test]
fn bad_files_are_listed_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let raw = corpus(dir.path(), "1");
    let actor = Path::new(&raw).join("Actor_01");
    std::fs::write(actor.join("03-01-02-01-01-01-01.wav"), b"garbage").unwrap(); // replaces a good clip
    std::fs::write(actor.join("03-01-02-02-01-01-01.wav"), b"").unwrap();
    std::fs::write(actor.join("readme.wav"), b"RIFF").unwrap();
    std::fs::write(actor.join("03-02-02-02-01-01-01.wav"), b"a song clip").unwrap();
    let config = dir.path().join("features.yaml");
    let out = dir.path().join("features.parquet");
    let summary = ok(&["extract", "--config", config.to_str().unwrap(), "--in", &raw, "--out", out.to_str().unwrap()]);
    assert_eq!(summary["rows"], 58);
    assert_eq!(summary["rejects"], 3);
    assert_eq!(summary["excluded"]["vocal channel 02 is not speech (01)"], 1);
    let rejects = std::fs::read_to_string(dir.path().join("features.rejects.csv")).unwrap();
    assert!(rejects.contains("Actor_01/03-01-02-01-01-01-01.wav,\"not an audio file"), "{rejects}");
    assert!(rejects.contains("Actor_01/03-01-02-02-01-01-01.wav,empty file"), "{rejects}");
    assert!(rejects.contains("Actor_01/readme.wav,\"file name does not follow the RAVDESS convention"), "{rejects}");

    let strict_out = dir.path().join("strict.parquet");
    fails(
        &[
            "extract",
            "--strict",
            "--config",
            config.to_str().unwrap(),
            "--in",
            &raw,
            "--out",
            strict_out.to_str().unwrap(),
        ],
        "--strict",
    );
    assert!(!strict_out.exists(), "a failed run leaves no table behind");
}

#[test]
fn one_thread_or_many_write_the_same_bytes() {
    // 120 clips, more than are in flight at once, so results come back out of order and
    // must be put back in table order; a bad file among them keeps the rejects in step too.
    let dir = tempfile::tempdir().unwrap();
    let raw = corpus(dir.path(), "2");
    std::fs::write(Path::new(&raw).join("Actor_01/03-01-02-01-01-01-01.wav"), b"garbage").unwrap();
    const { assert!(120 > ser_features::extract::IN_FLIGHT) };
    let config = dir.path().join("features.yaml");
    let mut tables = Vec::new();
    for jobs in ["1", "3"] {
        let out = dir.path().join(format!("jobs{jobs}.parquet"));
        let summary = ok(&[
            "extract",
            "--jobs",
            jobs,
            "--config",
            config.to_str().unwrap(),
            "--in",
            &raw,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!((summary["rows"].as_u64(), summary["rejects"].as_u64()), (Some(119), Some(1)));
        let rejects = std::fs::read(dir.path().join(format!("jobs{jobs}.rejects.csv"))).unwrap();
        tables.push((std::fs::read(&out).unwrap(), rejects));
    }
    assert!(tables[0] == tables[1], "--jobs 1 and --jobs 3 wrote different tables");
    let paths: Vec<String> =
        read_feature_table(&dir.path().join("jobs3.parquet")).unwrap().rows.into_iter().map(|r| r.path).collect();
    assert!(paths.windows(2).all(|w| w[0] < w[1]), "rows are in path order");
}

#[test]
fn extraction_inside_a_one_thread_pool_does_not_wait_on_itself() {
    use ser_features::extract::{Silent, Source, discover, extract_to_table};
    let dir = tempfile::tempdir().unwrap();
    let raw = corpus(dir.path(), "2");
    let config = ser_features::read_features_config(&dir.path().join("features.yaml")).unwrap();
    let source = Source::Folder { root: raw.into(), corpus: ser_features::labels::Corpus::Ravdess };
    let found = discover(&source, &config).unwrap();
    let analyzer = ser_features::dsp::Analyzer::new(&config);
    let out = dir.path().join("pool.parquet");
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let (summary, _) =
        pool.install(|| extract_to_table(&found.clips, &found.labels, &analyzer, &out, false, None, &Silent)).unwrap();
    assert_eq!(summary.rows, 120);
    let whole = dir.path().join("whole.parquet");
    let config_path = dir.path().join("features.yaml");
    let raw = dir.path().join("raw");
    ok(&[
        "extract",
        "--config",
        config_path.to_str().unwrap(),
        "--in",
        raw.to_str().unwrap(),
        "--out",
        whole.to_str().unwrap(),
    ]);
    assert!(std::fs::read(&out).unwrap() == std::fs::read(&whole).unwrap(), "the same table as the binary's");
}

#[test]
fn shards_merge_to_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let raw = corpus(dir.path(), "2");
    // Bad files, so the rejects tables take part too.
    std::fs::write(Path::new(&raw).join("Actor_01/03-01-02-01-01-01-01.wav"), b"garbage").unwrap();
    std::fs::write(Path::new(&raw).join("Actor_02/03-01-05-02-01-01-02.wav"), b"").unwrap();
    let config = dir.path().join("features.yaml");
    let whole = dir.path().join("whole.parquet");
    ok(&["extract", "--config", config.to_str().unwrap(), "--in", &raw, "--out", whole.to_str().unwrap()]);
    let mut parts = Vec::new();
    for i in 0..3 {
        let part = dir.path().join(format!("part{i}.parquet"));
        let shard = format!("{i}/3");
        ok(&[
            "extract",
            "--shard",
            &shard,
            "--config",
            config.to_str().unwrap(),
            "--in",
            &raw,
            "--out",
            part.to_str().unwrap(),
        ]);
        assert_eq!(ser_features::io::FeatureRowStream::open(&part).unwrap().shard.as_deref(), Some(shard.as_str()));
        parts.push(part.to_str().unwrap().to_string());
    }
    let merged = dir.path().join("merged.parquet");
    let merge = |parts: &[&str]| {
        let mut args = vec!["merge", "--out", merged.to_str().unwrap()];
        args.extend(parts);
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let all: Vec<&str> = parts.iter().map(String::as_str).collect();
    let args = merge(&all);
    let summary = ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(summary["rows"], 118);
    assert_eq!(ser_features::io::FeatureRowStream::open(&whole).unwrap().shard, None);
    assert!(
        std::fs::read(&whole).unwrap() == std::fs::read(&merged).unwrap(),
        "merged table differs from the unsharded one"
    );
    let rejects = |p: &str| std::fs::read_to_string(dir.path().join(p)).unwrap();
    assert_eq!(rejects("merged.rejects.csv"), rejects("whole.rejects.csv"));
    assert_eq!(rejects("whole.rejects.csv").lines().count(), 3, "header + 2 bad files");

    // A missing part, a doubled part, or a table that is not a part: errors, not a smaller table.
    std::fs::remove_file(&merged).unwrap();
    let args = merge(&all[..2]);
    fails(&args.iter().map(String::as_str).collect::<Vec<_>>(), "shard(s) 2/3 are missing");
    let args = merge(&[all[0], all[1], all[1]]);
    fails(&args.iter().map(String::as_str).collect::<Vec<_>>(), "shard 1/3 is also in");
    let whole_str = whole.to_str().unwrap();
    let args = merge(&[all[0], all[1], all[2], whole_str]);
    fails(&args.iter().map(String::as_str).collect::<Vec<_>>(), "is not a shard part");
    assert!(!merged.exists(), "a refused merge writes nothing");
}

#[test]
fn shard_from_scheduler_environment() {
    use ser_features::extract::Shard;
    let env = |vars: &'static [(&'static str, &'static str)]| {
        move |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    };
    let shard = |vars| Shard::from_env(env(vars)).map(|s| s.tag());
    // A whole Slurm array, 0-based or not.
    assert_eq!(shard(&[("SLURM_ARRAY_TASK_ID", "2"), ("SLURM_ARRAY_TASK_COUNT", "4")]).unwrap(), "2/4");
    assert_eq!(
        shard(&[("SLURM_ARRAY_TASK_ID", "7"), ("SLURM_ARRAY_TASK_MIN", "5"), ("SLURM_ARRAY_TASK_COUNT", "4")]).unwrap(),
        "2/4"
    );
    // Re-running shards 3 and 5 of 8 alone (`--array=3,5`): SHARD_COUNT makes the id the index.
    assert_eq!(
        shard(&[
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_MIN", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "2"),
            ("SHARD_COUNT", "8")
        ])
        .unwrap(),
        "5/8"
    );
    // Kubernetes indexed Job.
    assert_eq!(shard(&[("JOB_COMPLETION_INDEX", "1"), ("SHARD_COUNT", "3")]).unwrap(), "1/3");
    let err = shard(&[("JOB_COMPLETION_INDEX", "1")]).unwrap_err().to_string();
    assert!(err.contains("SHARD_COUNT"), "{err}");
    let err = shard(&[("SLURM_ARRAY_TASK_ID", "4"), ("SHARD_COUNT", "4")]).unwrap_err().to_string();
    assert!(err.contains("4/4"), "{err}");
    assert!(shard(&[]).unwrap_err().to_string().contains("neither"));
}

#[test]
fn unknown_config_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let raw = corpus(dir.path(), "1");
    let config = dir.path().join("bad.yaml");
    std::fs::write(&config, format!("{CONFIG}n_mfc: 13\n")).unwrap();
    fails(
        &["extract", "--config", config.to_str().unwrap(), "--in", &raw, "--out", "x.parquet"],
        "unknown field `n_mfc`",
    );
}

#[test]
fn missing_input_folder_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("features.yaml");
    std::fs::write(&config, CONFIG).unwrap();
    fails(
        &["extract", "--config", config.to_str().unwrap(), "--in", "/no/such/dir", "--out", "x.parquet"],
        "/no/such/dir: no such folder",
    );
}

#[test]
fn manifest_input_works() {
    let dir = tempfile::tempdir().unwrap();
    let raw = corpus(dir.path(), "1");
    std::fs::write(
        dir.path().join("manifest.csv"),
        "path,label,speaker\nraw/Actor_01/03-01-05-01-01-01-01.wav,angry,alice\nraw/Actor_01/03-01-04-01-01-01-01.wav,,bob\n",
    )
    .unwrap();
    let _ = raw;
    let config = dir.path().join("features.yaml");
    let out = dir.path().join("m.parquet");
    let manifest = dir.path().join("manifest.csv");
    let summary = ok(&[
        "extract",
        "--config",
        config.to_str().unwrap(),
        "--manifest",
        manifest.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(summary["rows"], 2);
    let table = read_feature_table(&out).unwrap();
    assert_eq!(table.rows[0].speaker, "bob");
    assert_eq!(table.rows[0].label, None);
    assert_eq!(table.rows[1].label.as_deref(), Some("angry"));
}

/// A manifest's own labels are the label set; `labels` and `label_map` in features.yaml order,
/// rename and drop them.
#[test]
fn labels_of_your_own() {
    let dir = tempfile::tempdir().unwrap();
    let raw = corpus(dir.path(), "1");
    let _ = raw;
    let clip = |e: &str| format!("raw/Actor_01/03-01-{e}-01-01-01-01.wav");
    std::fs::write(
        dir.path().join("manifest.csv"),
        format!(
            "path,label,speaker\n{},frustrated,a\n{},excited,a\n{},bored,b\n{},frustrated,b\n",
            clip("01"),
            clip("02"),
            clip("03"),
            clip("04")
        ),
    )
    .unwrap();
    let manifest = dir.path().join("manifest.csv");
    let extract = |config: &str, out: &str| {
        std::fs::write(dir.path().join("f.yaml"), format!("{CONFIG}{config}")).unwrap();
        let f = dir.path().join("f.yaml");
        let out = dir.path().join(out);
        let summary = ok(&[
            "extract",
            "--config",
            f.to_str().unwrap(),
            "--manifest",
            manifest.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        (summary, read_feature_table(&out).unwrap())
    };
    let (_, table) = extract("", "own.parquet");
    assert_eq!(table.labels, ["bored", "excited", "frustrated"], "the manifest's labels, sorted");
    assert_eq!(table.rows.len(), 4);
    let (summary, table) =
        extract("labels: [frustrated, calm]\nlabel_map:\n  excited: calm\n  bored: null\n", "mapped.parquet");
    assert_eq!(table.labels, ["frustrated", "calm"]);
    let labels: Vec<_> = table.rows.iter().map(|r| r.label.clone().unwrap()).collect();
    assert_eq!(labels, ["frustrated", "calm", "frustrated"]);
    assert_eq!(summary["excluded"]["label `bored` dropped by label_map"], 1);
    // A label set without a clip's label leaves the clip out, and says so.
    let (summary, table) = extract("labels: [frustrated]\n", "one.parquet");
    assert_eq!(table.rows.len(), 2);
    assert_eq!(summary["excluded"]["label `excited` is not in the label set"], 1);
    // A map to a label outside the set is a config error.
    std::fs::write(dir.path().join("bad.yaml"), format!("{CONFIG}labels: [a]\nlabel_map:\n  x: b\n")).unwrap();
    fails(
        &[
            "extract",
            "--config",
            dir.path().join("bad.yaml").to_str().unwrap(),
            "--manifest",
            manifest.to_str().unwrap(),
            "--out",
            "x.parquet",
        ],
        "label_map: `b` is not in labels [a]",
    );
}

/// RAVDESS by its convention with calm mapped to neutral: seven classes.
#[test]
fn a_corpus_convention_with_a_label_map() {
    let dir = tempfile::tempdir().unwrap();
    let raw = corpus(dir.path(), "1");
    std::fs::write(dir.path().join("f.yaml"), format!("{CONFIG}label_map:\n  calm: neutral\n")).unwrap();
    let out = dir.path().join("t.parquet");
    ok(&[
        "extract",
        "--config",
        dir.path().join("f.yaml").to_str().unwrap(),
        "--in",
        &raw,
        "--out",
        out.to_str().unwrap(),
    ]);
    let table = read_feature_table(&out).unwrap();
    assert_eq!(table.labels, ["angry", "neutral", "disgust", "fearful", "happy", "sad", "surprised"]);
    assert_eq!(table.rows.iter().filter(|r| r.label.as_deref() == Some("neutral")).count(), 12, "4 neutral + 8 calm");
}

/// Two corpora, each extracted by its own convention into one label set, merge into one table;
/// its speakers are `corpus/speaker`, and a `corpus` split holds one corpus out for test.
#[test]
fn two_corpora_merge_and_a_corpus_split_holds_one_out() {
    use ser_features::split::SplitPart;
    let dir = tempfile::tempdir().unwrap();
    let raw = corpus(dir.path(), "3");
    let labels = "labels: [angry, happy, sad]\n";
    std::fs::write(dir.path().join("f.yaml"), format!("{CONFIG}{labels}")).unwrap();
    // The second corpus: a manifest of two speakers with their own label spelling, mapped.
    // (Its files are copies under names of its own: clip ids are unique in a table.)
    let mut manifest = String::from("path,label,speaker\n");
    std::fs::create_dir(dir.path().join("own")).unwrap();
    for (code, label) in [("05", "anger"), ("03", "joy"), ("04", "sadness")] {
        for (actor, speaker) in [("01", "a"), ("02", "b")] {
            let name = format!("own/{speaker}_{label}.wav");
            std::fs::copy(format!("{raw}/Actor_{actor}/03-01-{code}-01-01-01-{actor}.wav"), dir.path().join(&name))
                .unwrap();
            manifest.push_str(&format!("{name},{label},{speaker}\n"));
        }
    }
    std::fs::write(dir.path().join("m.csv"), manifest).unwrap();
    std::fs::write(
        dir.path().join("m.yaml"),
        format!("{CONFIG}{labels}label_map:\n  anger: angry\n  joy: happy\n  sadness: sad\n"),
    )
    .unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    ok(&["extract", "--config", &path("f.yaml"), "--in", &raw, "--out", &path("ravdess.parquet")]);
    ok(&["extract", "--config", &path("m.yaml"), "--manifest", &path("m.csv"), "--out", &path("own.parquet")]);
    ok(&["merge", "--out", &path("both.parquet"), &path("ravdess.parquet"), &path("own.parquet")]);
    let table = read_feature_table(Path::new(&path("both.parquet"))).unwrap();
    assert_eq!(table.labels, ["angry", "happy", "sad"]);
    assert!(table.config.label_map.is_empty(), "no one corpus's map made the merged table");
    // The same clip id in two tables is refused, naming both.
    std::fs::copy(path("ravdess.parquet"), path("again.parquet")).unwrap();
    std::fs::copy(path("ravdess.rejects.csv"), path("again.rejects.csv")).unwrap();
    fails(&["merge", "--out", &path("x.parquet"), &path("ravdess.parquet"), &path("again.parquet")], "again.parquet");
    let own: Vec<_> = table.rows.iter().filter(|r| r.corpus == "manifest").collect();
    assert_eq!((own.len(), table.rows.len() - own.len()), (6, 3 * 24));

    let split = |yaml: &str| {
        std::fs::write(dir.path().join("split.yaml"), yaml).unwrap();
        ser_features(&[
            "split",
            "--config",
            &path("split.yaml"),
            "--features",
            &path("both.parquet"),
            "--out",
            &path("splits.parquet"),
        ])
    };
    let out = split("kind: corpus\ntest_corpora: [manifest]\nval_speakers: 1\nseed: 3\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let splits = ser_features::io::read_splits(Path::new(&path("splits.parquet"))).unwrap();
    let test = splits.clip_ids(0, SplitPart::Test);
    let own_ids: std::collections::BTreeSet<_> = own.iter().map(|r| r.clip_id.as_str()).collect();
    assert_eq!(
        test.iter().cloned().collect::<std::collections::BTreeSet<_>>(),
        own_ids,
        "the whole manifest corpus, alone"
    );
    assert_eq!(splits.clip_ids(0, SplitPart::Val).len(), 24, "one RAVDESS-convention speaker validates");
    // Speakers carry their corpus: `ravdess/02` is a speaker, a bare `02` is not.
    let out = split("kind: speaker\ntest_speakers: ['ravdess/02']\nval_speakers: ['manifest/a']\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = split("kind: speaker\ntest_speakers: ['02']\nval_speakers: ['a']\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("ravdess/02"), "{stderr}");
}

#[test]
fn split_command_writes_a_split_file() {
    let dir = tempfile::tempdir().unwrap();
    let raw = corpus(dir.path(), "4");
    let config = dir.path().join("features.yaml");
    let table = dir.path().join("features.parquet");
    ok(&["extract", "--config", config.to_str().unwrap(), "--in", &raw, "--out", table.to_str().unwrap()]);
    let split_yaml = dir.path().join("split.yaml");
    std::fs::write(&split_yaml, "kind: speaker\ntest_speakers: ['04']\nval_speakers: ['03']\n").unwrap();
    let splits = dir.path().join("splits.parquet");
    let summary = ok(&[
        "split",
        "--config",
        split_yaml.to_str().unwrap(),
        "--features",
        table.to_str().unwrap(),
        "--out",
        splits.to_str().unwrap(),
    ]);
    assert_eq!(summary["n_folds"], 1);
    let s = ser_features::io::read_splits(&splits).unwrap();
    assert_eq!(s.rows.len(), 240);
    assert_eq!(s.clip_ids(0, ser_features::split::SplitPart::Test).len(), 60);
}

/// `features` writes one file's features as the table holds them, to .npy or .json, from a
/// features.yaml or the config's JSON (as a checkpoint or an ONNX export records it).
#[test]
fn features_of_one_file_equal_its_table_row() {
    let dir = tempfile::tempdir().unwrap();
    let raw = corpus(dir.path(), "1");
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    ok(&["extract", "--config", &path("features.yaml"), "--in", &raw, "--out", &path("t.parquet")]);
    let table = read_feature_table(Path::new(&path("t.parquet"))).unwrap();
    let row = &table.rows[5];
    let clip = format!("{raw}/{}", row.path);
    std::fs::write(path("config.json"), serde_json::to_string(&table.config).unwrap()).unwrap();
    let summary = ok(&["features", "--config", &path("config.json"), &clip, "--out", &path("clip.npy")]);
    assert_eq!((summary["frames"].as_u64(), summary["coeffs"].as_u64()), (Some(174), Some(40)));
    let bytes = std::fs::read(path("clip.npy")).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    assert_eq!(npy.shape(), &[174, 40]);
    assert_eq!(npy.into_vec::<f32>().unwrap(), row.features, "the .npy holds the table's values");
    ok(&["features", "--config", &path("features.yaml"), &clip, "--out", &path("clip.json")]);
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path("clip.json")).unwrap()).unwrap();
    let values: Vec<f32> = json["features"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().clone())
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(values, row.features, "the .json holds the table's values");
    fails(&["features", "--config", &path("features.yaml"), &clip, "--out", &path("clip.txt")], "give a .npy or .json");
    std::fs::write(path("broken.wav"), b"RIFF....WAVEfmt ").unwrap();
    fails(
        &["features", "--config", &path("features.yaml"), &path("broken.wav"), "--out", &path("b.npy")],
        "broken.wav",
    );
}

#[test]
fn synth_is_deterministic() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    ok(&["synth", "--out", a.path().to_str().unwrap(), "--speakers", "1", "--seed", "9"]);
    ok(&["synth", "--out", b.path().to_str().unwrap(), "--speakers", "1", "--seed", "9"]);
    let name = "Actor_01/03-01-03-02-01-02-01.wav";
    assert_eq!(std::fs::read(a.path().join(name)).unwrap(), std::fs::read(b.path().join(name)).unwrap());
}

#[test]
fn help_lists_examples_and_exit_codes() {
    let out = ser_features(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Examples:") && help.contains("Exit status: 0 success, 1 failure, 2 usage error"), "{help}");
    let out = ser_features(&["extract", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn other_corpora_conventions_on_generated_files() {
    let dir = tempfile::tempdir().unwrap();
    let raw = corpus(dir.path(), "1");
    let clip = std::fs::read(Path::new(&raw).join("Actor_01/03-01-05-01-01-01-01.wav")).unwrap();
    let config = dir.path().join("features.yaml");
    for (corpus, names, labels) in [
        ("tess", vec!["OAF_back_angry.wav", "YAF_dog_ps.wav"], vec!["angry", "surprised"]),
        ("emodb", vec!["03a01Wa.wav", "08b02Tc.wav", "10a01Lb.wav"], vec!["angry", "sad"]),
        ("savee", vec!["DC_a01.wav", "KL_su03.wav"], vec!["angry", "surprised"]),
        ("crema-d", vec!["1001_DFA_ANG_XX.wav", "1002_IEO_NEU_XX.wav"], vec!["angry", "neutral"]),
    ] {
        let folder = dir.path().join(corpus);
        std::fs::create_dir_all(&folder).unwrap();
        for name in &names {
            std::fs::write(folder.join(name), &clip).unwrap();
        }
        let out = dir.path().join(format!("{corpus}.parquet"));
        let summary = ok(&[
            "extract",
            "--corpus",
            corpus,
            "--config",
            config.to_str().unwrap(),
            "--in",
            folder.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(summary["rows"], labels.len(), "{corpus}");
        let table = read_feature_table(&out).unwrap();
        let got: Vec<&str> = table.rows.iter().map(|r| r.label.as_deref().unwrap()).collect();
        assert_eq!(got, labels, "{corpus}");
    }
}

#[test]
fn manifest_split_column_becomes_the_split_file() {
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path(), "1");
    std::fs::write(
        dir.path().join("manifest.csv"),
        "path,label,speaker,split\nraw/Actor_01/03-01-05-01-01-01-01.wav,angry,a,train\n\
raw/Actor_01/03-01-04-01-01-01-01.wav,sad,b,val\nraw/Actor_01/03-01-03-01-01-01-01.wav,happy,c,test\n",
    )
    .unwrap();
    let d = |p: &str| dir.path().join(p).to_str().unwrap().to_string();
    ok(&["extract", "--config", &d("features.yaml"), "--manifest", &d("manifest.csv"), "--out", &d("m.parquet")]);
    std::fs::write(d("split.yaml"), format!("kind: manifest\nmanifest: {}\n", d("manifest.csv"))).unwrap();
    ok(&["split", "--config", &d("split.yaml"), "--features", &d("m.parquet"), "--out", &d("s.parquet")]);
    let s = ser_features::io::read_splits(Path::new(&d("s.parquet"))).unwrap();
    use ser_features::split::SplitPart;
    assert_eq!(s.clip_ids(0, SplitPart::Test), vec!["03-01-03-01-01-01-01"]);
    assert_eq!(s.clip_ids(0, SplitPart::Val), vec!["03-01-04-01-01-01-01"]);
}

#[test]
fn augmented_copies_are_rows_of_their_own_and_stay_out_of_the_split() {
    let dir = tempfile::tempdir().unwrap();
    let raw = corpus(dir.path(), "2");
    let config = dir.path().join("features.yaml");
    std::fs::write(
        &config,
        format!(
            "{CONFIG}trim_db: 40.0\nloudness_dbfs: -23.0\naugment:\n  copies: 2\n  seed: 5\n  speeds: [0.9, 1.0, 1.1]\n  \
             gain_db: [-6.0, 6.0]\n  snr_db: [15.0, 30.0]\n  telephone: 0.5\n"
        ),
    )
    .unwrap();
    let table = dir.path().join("features.parquet");
    let summary =
        ok(&["extract", "--config", config.to_str().unwrap(), "--in", &raw, "--out", table.to_str().unwrap()]);
    assert_eq!((summary["rows"].as_u64(), summary["augmented"].as_u64()), (Some(360), Some(240)), "{summary}");
    let t = read_feature_table(&table).unwrap();
    let copies: Vec<_> = t.rows.iter().filter(|r| r.source_clip_id.is_some()).collect();
    assert_eq!(copies.len(), 240);
    let first = copies[0];
    assert_eq!(first.clip_id, format!("{}~aug1", first.source_clip_id.as_deref().unwrap()));
    assert!(first.augmentation.as_deref().unwrap().contains("gain="), "{:?}", first.augmentation);
    assert!(copies.iter().any(|r| r.augmentation.as_deref().unwrap().contains("telephone")));
    let original = t.rows.iter().find(|r| Some(r.clip_id.as_str()) == first.source_clip_id.as_deref()).unwrap();
    assert_ne!(original.features, first.features);
    assert_eq!((original.label.clone(), original.speaker.clone()), (first.label.clone(), first.speaker.clone()));

    let split_yaml = dir.path().join("split.yaml");
    std::fs::write(&split_yaml, "kind: speaker\ntest_speakers: ['02']\nval_speakers: []\n").unwrap();
    let splits = dir.path().join("splits.parquet");
    ok(&[
        "split",
        "--config",
        split_yaml.to_str().unwrap(),
        "--features",
        table.to_str().unwrap(),
        "--out",
        splits.to_str().unwrap(),
    ]);
    let s = ser_features::io::read_splits(&splits).unwrap();
    assert_eq!(s.rows.len(), 120, "the split assigns clips; their copies follow them into training");
    assert!(s.rows.iter().all(|r| !r.clip_id.contains("~aug")));
}

#[test]
fn a_vocal_tract_length_warp_reaches_the_copies_features_and_no_clips() {
    let dir = tempfile::tempdir().unwrap();
    let raw = corpus(dir.path(), "1");
    // Copies of nothing but a speed of 1: each is its clip, unless the warp acts.
    let extract = |name: &str, vtlp: &str| {
        let config = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&config, format!("{CONFIG}augment:\n  copies: 1\n  seed: 5\n  speeds: [1.0]\n{vtlp}")).unwrap();
        let table = dir.path().join(format!("{name}.parquet"));
        ok(&["extract", "--config", config.to_str().unwrap(), "--in", &raw, "--out", table.to_str().unwrap()]);
        read_feature_table(&table).unwrap().rows
    };
    let plain = extract("plain", "");
    let warped = extract("warped", "  vtlp: 1.0\n  vtlp_alpha: [1.12, 1.12]\n");
    assert_eq!(plain.len(), warped.len());
    let mut copies = 0;
    for (p, w) in plain.iter().zip(&warped) {
        assert_eq!(p.clip_id, w.clip_id);
        match w.source_clip_id.as_deref() {
            None => assert_eq!(p.features, w.features, "{}: a clip is never warped", p.clip_id),
            Some(source) => {
                copies += 1;
                let clip = plain.iter().find(|r| r.clip_id == source).unwrap();
                assert_eq!(p.features, clip.features, "{}: without the warp the copy is its clip", p.clip_id);
                assert_ne!(w.features, clip.features, "{}: the warp reaches the features", p.clip_id);
                assert_eq!(w.augmentation.as_deref(), Some("speed=1 vtlp=1.120"));
            }
        }
    }
    assert_eq!(copies, plain.len() / 2);
}

#[test]
fn a_cut_to_the_speech_shortens_each_clip_and_names_one_left_too_short() {
    let dir = tempfile::tempdir().unwrap();
    let raw = corpus(dir.path(), "1");
    // Two seconds of silence around a 20 ms click: cut to the click, less than the delta window.
    let blip = Path::new(&raw).join("Actor_01/03-01-05-01-01-01-01.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 22_050,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&blip, spec).unwrap();
    for i in 0..44_100 {
        w.write_sample(if (22_050..22_491).contains(&i) { 12_000i16 } else { 0 }).unwrap();
    }
    w.finalize().unwrap();
    let config = dir.path().join("features.yaml");
    std::fs::write(&config, CONFIG.replace("deltas: false", "deltas: true")).unwrap();
    let extract = |name: &str, channel: &[&str]| {
        let out = dir.path().join(name);
        let mut args =
            vec!["extract", "--config", config.to_str().unwrap(), "--in", &raw, "--out", out.to_str().unwrap()];
        args.extend_from_slice(channel);
        ok(&args);
        (read_feature_table(&out).unwrap(), std::fs::read_to_string(out.with_extension("rejects.csv")).unwrap())
    };
    let (whole, rejects) = extract("whole.parquet", &[]);
    assert_eq!(rejects, "path,reason\n", "uncut, the click's file is long enough");
    let (cut, rejects) = extract("cut.parquet", &["--channel", "trim_30db"]);
    assert!(
        rejects.contains("Actor_01/03-01-05-01-01-01-01.wav,0.093 s is shorter than one analysis frame"),
        "{rejects}"
    );
    assert_eq!(cut.rows.len(), whole.rows.len() - 1);
    for row in &cut.rows {
        let uncut = whole.rows.iter().find(|r| r.clip_id == row.clip_id).unwrap();
        assert!(row.n_frames_source <= uncut.n_frames_source, "{}: cut longer than whole", row.clip_id);
    }
    assert!(cut.rows.iter().zip(&whole.rows).any(|(c, w)| c.n_frames_source < w.n_frames_source), "nothing was cut");
}
