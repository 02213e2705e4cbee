//! The feature stage proper: find the clips, read their labels, compute their features in
//! parallel and stream them into a feature table, rejecting bad files with a reason.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::audio::{Audio, AudioError, decode_audio, resample};
use crate::augment::augmented_copy;
use crate::config::FeaturesConfig;
use crate::dsp::{Analyzer, FeatureMatrix};
use crate::io::{self, FeatureTableWriter, Reject};
use crate::labels::{ClipMeta, Corpus, NameError, label_set, map_label, parse_name};
use crate::table::FeatureRow;
use crate::{Error, Result};

/// Clips in flight at once: being extracted, or done and waiting for an earlier clip to be
/// written. Bounds memory, and keeps every core busy (a slow clip holds up the writing, not the
/// cores).
pub const IN_FLIGHT: usize = 64;

/// Where the clips come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Every `.wav` under a folder, labelled by the corpus's file-name convention.
    Folder { root: PathBuf, corpus: Corpus },
    /// A CSV of `path,label,speaker[,split]`.
    Manifest { path: PathBuf },
}

/// A clip to extract.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipInput {
    pub path: PathBuf,
    /// The path as stored in the table: relative to the folder or manifest, `/`-separated.
    pub table_path: String,
    pub corpus: Corpus,
    pub meta: ClipMeta,
}

/// The clips of a source, with the files that were not clips.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    pub clips: Vec<ClipInput>,
    /// Files whose names could not be read: rejects.
    pub rejects: Vec<Reject>,
    /// Files deliberately left out (song, video, labels outside the label set), by reason.
    pub excluded: BTreeMap<String, usize>,
    /// The table's label set, in class order ([`crate::labels::label_set`]).
    pub labels: Vec<String>,
}

/// `i/n`: this process extracts only the clips whose id hashes to `i` modulo `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// The cores a Slurm job gave this task (`SLURM_CPUS_PER_TASK`, set when the job asked for
/// `--cpus-per-task`): the default size of the stage binaries' thread pools inside Slurm.
pub fn slurm_cpus_per_task() -> Option<usize> {
    std::env::var("SLURM_CPUS_PER_TASK").ok().and_then(|v| v.trim().parse::<usize>().ok()).filter(|&n| n > 0)
}

impl Shard {
    pub fn parse(text: &str) -> Result<Shard> {
        let bad = || Error::Config(format!("--shard `{text}`: expected i/n with 0 <= i < n, e.g. 0/4"));
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count): (u32, u32) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// `i/n`, or `env`: the shard of a scheduler's array task. Slurm: `SLURM_ARRAY_TASK_ID` of
    /// `SHARD_COUNT` when that is set (the id is then the shard index itself, so a re-run of some
    /// shards alone works), else `SLURM_ARRAY_TASK_ID` minus `SLURM_ARRAY_TASK_MIN` of
    /// `SLURM_ARRAY_TASK_COUNT` (a whole contiguous array). Kubernetes indexed Jobs:
    /// `JOB_COMPLETION_INDEX` of `SHARD_COUNT`.
    pub fn parse_or_env(text: &str) -> Result<Shard> {
        if text != "env" {
            return Shard::parse(text);
        }
        Shard::from_env(|name| std::env::var(name).ok())
    }

    /// The array task's shard, reading variables through `var`.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Shard> {
        let number = |name: &str, text: String| {
            text.trim().parse::<u32>().map_err(|_| Error::Config(format!("{name}=`{text}` is not a number")))
        };
        let (index, count) = if let Some(id) = var("SLURM_ARRAY_TASK_ID") {
            if let Some(count) = var("SHARD_COUNT") {
                // An explicit count: the task id is the shard index itself, so an array of
                // only some indices (`--array=2,5`, re-running failed shards) still works.
                (number("SLURM_ARRAY_TASK_ID", id)?, number("SHARD_COUNT", count)?)
            } else {
                let min = var("SLURM_ARRAY_TASK_MIN").unwrap_or_else(|| "0".into());
                let count = var("SLURM_ARRAY_TASK_COUNT").ok_or_else(|| {
                    Error::Config("SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not".into())
                })?;
                let (id, min) = (number("SLURM_ARRAY_TASK_ID", id)?, number("SLURM_ARRAY_TASK_MIN", min)?);
                (
                    id.checked_sub(min)
                        .ok_or_else(|| Error::Config("SLURM_ARRAY_TASK_ID < SLURM_ARRAY_TASK_MIN".into()))?,
                    number("SLURM_ARRAY_TASK_COUNT", count)?,
                )
            }
        } else if let Some(index) = var("JOB_COMPLETION_INDEX") {
            let count = var("SHARD_COUNT").ok_or_else(|| {
                Error::Config("JOB_COMPLETION_INDEX is set; also set SHARD_COUNT to the job's completions".into())
            })?;
            (number("JOB_COMPLETION_INDEX", index)?, number("SHARD_COUNT", count)?)
        } else {
            return Err(Error::Config(
                "--shard env: neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX is set".into(),
            ));
        };
        Shard::parse(&format!("{index}/{count}"))
    }

    /// `i/n`, the form `parse` reads and part tables record.
    pub fn tag(&self) -> String {
        format!("{}/{}", self.index, self.count)
    }

    /// A stable assignment: the same clip id lands in the same shard on every machine.
    pub fn contains(&self, clip_id: &str) -> bool {
        let digest = Sha256::digest(clip_id.as_bytes());
        let head = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
        head % self.count as u64 == self.index as u64
    }
}

fn table_path(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

/// A nEMO clip's name, completed by its row of `data.tsv` (at `tsv`): the sentence text becomes
/// `statement` and the gender is the file's. The name and the row must agree on speaker and
/// emotion; a clip the file does not list keeps what its name says.
fn with_nemo_row(
    mut meta: ClipMeta,
    path: &Path,
    tsv: &Path,
    rows: &BTreeMap<String, io::NemoRow>,
) -> std::result::Result<ClipMeta, String> {
    let file_id = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let Some(row) = rows.get(&file_id) else {
        return Ok(meta);
    };
    let disagree = |what: &str, name: &str, listed: &str| {
        format!("the name says {what} `{name}` but {} lists `{listed}`", tsv.display())
    };
    if row.speaker_id != meta.speaker {
        return Err(disagree("speaker", &meta.speaker, &row.speaker_id));
    }
    if Some(row.emotion.as_str()) != meta.emotion_code.as_deref() {
        return Err(disagree("emotion", meta.emotion_code.as_deref().unwrap_or(""), &row.emotion));
    }
    meta.gender = match row.gender.as_str() {
        g @ (crate::labels::FEMALE | crate::labels::MALE) => Some(g.to_string()),
        other => return Err(format!("{} gives gender `{other}`; expected female or male", tsv.display())),
    };
    meta.statement = Some(row.raw_text.clone());
    Ok(meta)
}

/// Finds the clips of a source and reads their labels, renamed or dropped by `label_map`; clips
/// whose label is outside the label set are excluded. Sorted by table path.
pub fn discover(source: &Source, config: &FeaturesConfig) -> Result<Discovery> {
    let mut discovery = Discovery::default();
    match source {
        Source::Folder { root, corpus } => {
            let nemo = if *corpus == Corpus::Nemo { io::read_nemo_metadata(root)? } else { None };
            for path in io::find_audio_files(root)? {
                let table_path = table_path(root, &path);
                let meta = match parse_name(*corpus, &path) {
                    Ok(meta) => meta,
                    Err(NameError::Excluded(reason)) => {
                        *discovery.excluded.entry(reason).or_default() += 1;
                        continue;
                    }
                    Err(err @ NameError::Unparsable { .. }) => {
                        discovery.rejects.push(Reject { path: table_path, reason: err.to_string() });
                        continue;
                    }
                };
                let meta = match &nemo {
                    Some((tsv, rows)) => match with_nemo_row(meta, &path, tsv, rows) {
                        Ok(meta) => meta,
                        Err(reason) => {
                            discovery.rejects.push(Reject { path: table_path, reason });
                            continue;
                        }
                    },
                    None => meta,
                };
                discovery.clips.push(ClipInput { path, table_path, corpus: *corpus, meta });
            }
        }
        Source::Manifest { path } => {
            let base = path.parent().unwrap_or(Path::new("."));
            for row in io::read_manifest(path)? {
                let clip_path = base.join(&row.path);
                let clip_id =
                    Path::new(&row.path).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                let meta = ClipMeta { clip_id, label: row.label, speaker: row.speaker, ..ClipMeta::default() };
                discovery.clips.push(ClipInput {
                    path: clip_path,
                    table_path: row.path,
                    corpus: Corpus::Manifest,
                    meta,
                });
            }
        }
    }
    // Labels after label_map, then the label set.
    let mut clips = Vec::with_capacity(discovery.clips.len());
    for mut clip in std::mem::take(&mut discovery.clips) {
        if let Some(label) = clip.meta.label.take() {
            match map_label(config, &label) {
                Some(mapped) => clip.meta.label = Some(mapped),
                None => {
                    *discovery.excluded.entry(format!("label `{label}` dropped by label_map")).or_default() += 1;
                    continue;
                }
            }
        }
        clips.push(clip);
    }
    let manifest = matches!(source, Source::Manifest { .. });
    discovery.labels = label_set(config, manifest.then(|| clips.iter().filter_map(|c| c.meta.label.as_deref())));
    for clip in clips {
        match &clip.meta.label {
            Some(label) if !discovery.labels.contains(label) => {
                *discovery.excluded.entry(format!("label `{label}` is not in the label set")).or_default() += 1;
            }
            _ => discovery.clips.push(clip),
        }
    }
    discovery.clips.sort_by(|a, b| a.table_path.cmp(&b.table_path));
    // Clip ids key every later file: a duplicate would silently merge two clips.
    let mut seen = HashSet::new();
    let mut rejects = std::mem::take(&mut discovery.rejects);
    discovery.clips.retain(|c| {
        let fresh = seen.insert(c.meta.clip_id.clone());
        if !fresh {
            rejects.push(Reject {
                path: c.table_path.clone(),
                reason: format!("duplicate clip_id `{}`; clip ids (file stems) must be unique", c.meta.clip_id),
            });
        }
        fresh
    });
    rejects.sort_by(|a, b| a.path.cmp(&b.path));
    discovery.rejects = rejects;
    Ok(discovery)
}

/// `TooShort` for `seconds` of audio: less than one analysis frame of `analyzer`.
fn too_short(analyzer: &Analyzer, seconds: f64) -> AudioError {
    AudioError::TooShort { seconds, min_seconds: analyzer.min_samples() as f64 / analyzer.config().sample_rate as f64 }
}

/// A file's bytes decoded (the source audio), then [`analysis_of`] it.
fn analysis_samples(
    bytes: &[u8],
    digest: &[u8],
    analyzer: &Analyzer,
) -> std::result::Result<(Audio, Vec<f32>), AudioError> {
    let audio = decode_audio(bytes, analyzer.config().max_duration_s)?;
    let samples = analysis_of(&audio, digest, analyzer)?;
    Ok((audio, samples))
}

/// Decoded audio resampled for `analyzer`, at least one analysis frame long, and through the
/// config's `channel` if it has one (its noise seeded by `digest`).
fn analysis_of(audio: &Audio, digest: &[u8], analyzer: &Analyzer) -> std::result::Result<Vec<f32>, AudioError> {
    let config = analyzer.config();
    let short = || too_short(analyzer, audio.duration_s());
    if audio.duration_s() < analyzer.min_samples() as f64 / config.sample_rate as f64 {
        return Err(short());
    }
    let mut samples = resample(&audio.samples, audio.sample_rate, config.sample_rate)?;
    if samples.len() < analyzer.min_samples() {
        return Err(short());
    }
    if let Some(channel) = &config.channel {
        samples = channel.apply(&samples, config.sample_rate, crate::channel::clip_seed(channel, digest))?;
        // A cut to the speech may leave less than an analysis frame.
        if samples.len() < analyzer.min_samples() {
            return Err(too_short(analyzer, samples.len() as f64 / config.sample_rate as f64));
        }
    }
    Ok(samples)
}

/// The features of one file's bytes, exactly as a feature-table row holds them (the input of a
/// checkpoint or its ONNX export, before standardisation). Pure: the caller reads the file.
pub fn file_features(bytes: &[u8], analyzer: &Analyzer) -> std::result::Result<FeatureMatrix, AudioError> {
    // The digest seeds a channel's noise; without a channel it is not needed.
    let digest = if analyzer.config().channel.is_some() { Sha256::digest(bytes).to_vec() } else { Vec::new() };
    Ok(analyzer.features(&analysis_samples(bytes, &digest, analyzer)?.1).matrix)
}

/// The features of an audio file as a feature table's row holds them ([`file_features`] of its
/// bytes, read by [`io::read_audio_bytes`]); the error names the file.
pub fn read_file_features(path: &Path, analyzer: &Analyzer) -> Result<FeatureMatrix> {
    let bytes = io::read_audio_bytes(path, analyzer.config().max_duration_s)?;
    file_features(&bytes, analyzer).map_err(|source| Error::Audio { path: path.to_path_buf(), source })
}

/// The features of audio already decoded ([`Audio::from_samples`]), as [`file_features`] gives
/// them for a file that decodes to the same samples. `digest` seeds a config's `channel` noise
/// (a file's is its SHA-256).
pub fn audio_features(
    audio: &Audio,
    digest: &[u8],
    analyzer: &Analyzer,
) -> std::result::Result<FeatureMatrix, AudioError> {
    Ok(analyzer.features(&analysis_of(audio, digest, analyzer)?).matrix)
}

/// The feature rows of one clip from its file bytes: the clip's, then those of its augmented
/// copies when the config asks for them. Pure: the caller reads the file.
pub fn extract_clip(
    bytes: &[u8],
    clip: &ClipInput,
    analyzer: &Analyzer,
) -> std::result::Result<Vec<FeatureRow>, AudioError> {
    let config = analyzer.config();
    let digest = Sha256::digest(bytes);
    let (audio, samples) = analysis_samples(bytes, &digest, analyzer)?;
    let meta = &clip.meta;
    let sha256 = hex::encode(digest);
    let row = |clip_id: String, samples: &[f32], vtlp_alpha: f32, source: Option<(String, String)>| {
        let features = analyzer.features_vtlp(samples, vtlp_alpha);
        let (source_clip_id, augmentation) = source.unzip();
        FeatureRow {
            clip_id,
            path: clip.table_path.clone(),
            corpus: clip.corpus.as_str().to_string(),
            speaker: meta.speaker.clone(),
            gender: meta.gender.clone(),
            label: meta.label.clone(),
            emotion_code: meta.emotion_code.clone(),
            intensity: meta.intensity.clone(),
            statement: meta.statement.clone(),
            repetition: meta.repetition.clone(),
            modality: meta.modality.clone(),
            vocal_channel: meta.vocal_channel.clone(),
            source_sample_rate: audio.sample_rate,
            source_channels: audio.n_channels as u32,
            duration_s: samples.len() as f64 / config.sample_rate as f64,
            sha256: sha256.clone(),
            n_frames_source: features.n_frames_source as u32,
            n_frames: features.matrix.n_frames as u32,
            features: features.matrix.values,
            source_clip_id,
            augmentation,
        }
    };
    let mut rows = vec![row(meta.clip_id.clone(), &samples, 1.0, None)];
    rows[0].duration_s = audio.duration_s();
    if let Some(spec) = &config.augment {
        for copy in 1..=spec.copies {
            let c = augmented_copy(&samples, config.sample_rate, spec, &meta.clip_id, copy, analyzer.min_samples())?;
            if c.samples.len() < analyzer.min_samples() {
                return Err(too_short(analyzer, c.samples.len() as f64 / config.sample_rate as f64));
            }
            let id = format!("{}{AUGMENTED_SUFFIX}{copy}", meta.clip_id);
            rows.push(row(id, &c.samples, c.vtlp_alpha, Some((meta.clip_id.clone(), c.what))));
        }
    }
    Ok(rows)
}

/// What separates a clip id from its copy number in an augmented copy's id.
pub const AUGMENTED_SUFFIX: &str = "~aug";

/// Progress of a long step, drawn by the binary.
pub trait Reporter: Sync {
    fn on_start(&self, total: usize);
    fn on_progress(&self, done: usize);
    fn on_complete(&self);
}

/// A reporter that draws nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Reporter for Silent {
    fn on_start(&self, _total: usize) {}
    fn on_progress(&self, _done: usize) {}
    fn on_complete(&self) {}
}

/// What an extraction did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Summary {
    pub output: String,
    pub rows: usize,
    pub rejects: usize,
    pub excluded: BTreeMap<String, usize>,
    pub labels: BTreeMap<String, usize>,
    pub speakers: usize,
    /// Rows of augmented copies, besides the clips' own rows.
    pub augmented: usize,
    pub features_config_hash: String,
}

/// Extracts `clips` into the feature table at `out`, in table order, with at most
/// [`IN_FLIGHT`] clips held in memory. Bad files become rejects (or, with `strict`, fail the
/// run). Returns the rows' rejects too. With `part_of`, the table is that shard's part file and
/// records it (see [`merge_tables`]).
///
/// The clips are extracted on rayon's pool, each as its own task, while this thread takes the
/// results in order and writes them: a clip starts as soon as an earlier one is written, so no
/// core waits for a batch's slowest clip or for Parquet.
#[allow(clippy::too_many_arguments)]
pub fn extract_to_table(
    clips: &[ClipInput],
    labels: &[String],
    analyzer: &Analyzer,
    out: &Path,
    strict: bool,
    part_of: Option<Shard>,
    reporter: &dyn Reporter,
) -> Result<(Summary, Vec<Reject>)> {
    let config = analyzer.config();
    let mut writer = match part_of {
        Some(shard) => FeatureTableWriter::create_part(out, config, labels, &shard.tag())?,
        None => FeatureTableWriter::create(out, config, labels)?,
    };
    let mut rejects = Vec::new();
    let mut summary =
        Summary { output: out.display().to_string(), features_config_hash: config.hash(), ..Summary::default() };
    let mut speakers = HashSet::new();
    reporter.on_start(clips.len());
    let stop = std::sync::atomic::AtomicBool::new(false);
    // `in_place_scope` runs this closure on the calling thread: outside the pool, waiting for
    // results here takes no worker away; on one of its threads, `next_result` works while it waits.
    rayon::in_place_scope(|scope| -> Result<()> {
        // A panic comes back as its payload, to be raised here: a task that died silently would
        // leave this thread waiting for its result forever.
        type Extracted = (usize, std::thread::Result<std::result::Result<Vec<FeatureRow>, String>>);
        let (done_tx, done_rx) = std::sync::mpsc::channel::<Extracted>();
        let (stop, done_tx) = (&stop, &done_tx);
        let start = |index: usize| {
            let done_tx = done_tx.clone();
            scope.spawn(move |_| {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                let clip = &clips[index];
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    io::read_audio_file(&clip.path, config.max_duration_s)
                        .and_then(|bytes| extract_clip(&bytes, clip, analyzer).map_err(|e| e.to_string()))
                }));
                // The receiver is gone only once the run has failed.
                let _ = done_tx.send((index, result));
            });
        };
        let mut started = clips.len().min(IN_FLIGHT);
        (0..started).for_each(start);
        let mut waiting = BTreeMap::new();
        let mut written = 0;
        let result = (|| -> Result<()> {
            while written < clips.len() {
                let (index, result) = next_result(&done_rx);
                waiting.insert(index, result);
                while let Some(result) = waiting.remove(&written) {
                    let clip = &clips[written];
                    match result.unwrap_or_else(|panic| std::panic::resume_unwind(panic)) {
                        Ok(clip_rows) => {
                            let row = &clip_rows[0];
                            *summary.labels.entry(row.label.clone().unwrap_or_else(|| "(none)".into())).or_default() +=
                                1;
                            speakers.insert(row.speaker.clone());
                            summary.augmented += clip_rows.len() - 1;
                            summary.rows += clip_rows.len();
                            writer.write(clip_rows)?;
                        }
                        Err(reason) => {
                            tracing::warn!(path = %clip.path.display(), %reason, "rejected");
                            if strict {
                                return Err(Error::Rejected { path: clip.path.clone(), reason });
                            }
                            rejects.push(Reject { path: clip.table_path.clone(), reason });
                        }
                    }
                    written += 1;
                    reporter.on_progress(written);
                    if started < clips.len() {
                        start(started);
                        started += 1;
                    }
                }
            }
            Ok(())
        })();
        if result.is_err() {
            // Clips not begun are skipped; the scope still waits for those under way.
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        result
    })?;
    writer.finish()?;
    reporter.on_complete();
    summary.rejects = rejects.len();
    summary.speakers = speakers.len();
    Ok((summary, rejects))
}

/// The next finished clip. Outside the pool this blocks; called from one of the pool's own
/// threads (a caller inside `ThreadPool::install`), it runs the pool's waiting tasks meanwhile, so
/// a pool of one thread cannot wait on itself.
fn next_result<T>(done: &std::sync::mpsc::Receiver<T>) -> T {
    use std::sync::mpsc::RecvTimeoutError;
    loop {
        if let Ok(item) = done.try_recv() {
            return item;
        }
        match rayon::yield_now() {
            None => return done.recv().expect("a started clip always reports"),
            Some(rayon::Yield::Executed) => {}
            Some(rayon::Yield::Idle) => match done.recv_timeout(std::time::Duration::from_millis(1)) {
                Ok(item) => return item,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => panic!("a started clip always reports"),
            },
        }
    }
}

/// The rejects file that goes with a feature table: `features.parquet` -> `features.rejects.csv`.
pub fn rejects_path(table: &Path) -> PathBuf {
    let stem = table.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "features".into());
    table.with_file_name(format!("{stem}.rejects.csv"))
}

/// Joins shard part files into one table, identical to an unsharded run over the same input.
/// Parts that record their shard (`extract --shard` writes it) must be of one count and cover
/// every index exactly once, so a missing or doubled part is an error, not a smaller table.
/// The parts' rejects files (`<part>.rejects.csv`), where present, are joined into `out`'s.
///
/// The parts are merged as sorted streams (each is sorted by path, as every feature table is),
/// so memory holds one record batch per part, however large the corpus.
pub fn merge_tables(parts: &[PathBuf], out: &Path) -> Result<usize> {
    let mut tags: Vec<(PathBuf, Option<Shard>)> = Vec::new();
    let mut rejects = Vec::new();
    let mut streams = Vec::new();
    for part in parts {
        let stream = io::FeatureRowStream::open(part)?;
        let tag = stream
            .shard
            .as_deref()
            .map(|t| {
                Shard::parse(t).map_err(|_| Error::Table {
                    path: part.clone(),
                    message: format!("`{}` metadata `{t}` is not i/n", crate::table::META_SHARD),
                })
            })
            .transpose()?;
        let part_rejects = rejects_path(part);
        if let Some(found) = io::read_rejects_if_any(&part_rejects)? {
            rejects.extend(found);
        } else if tag.is_some() {
            // extract writes the rejects file right after the table: a part without one was
            // interrupted in between.
            return Err(Error::Table {
                path: part.clone(),
                message: format!(
                    "{} is missing: the shard's run was interrupted; run its `extract --shard` again",
                    part_rejects.display()
                ),
            });
        }
        tags.push((part.clone(), tag));
        if let Some((first_path, first)) = streams.first().map(|(p, s): &(PathBuf, io::FeatureRowStream)| (p, s))
            && first.labels != stream.labels
        {
            return Err(Error::Table {
                path: part.clone(),
                message: format!(
                    "labels [{}] differ from {}'s [{}]; extract every part with one label set (`labels` in features.yaml)",
                    stream.labels.join(", "),
                    first_path.display(),
                    first.labels.join(", ")
                ),
            });
        }
        if let Some((first_path, first)) = streams.first().map(|(p, s): &(PathBuf, io::FeatureRowStream)| (p, s))
            && first.config.hash() != stream.config.hash()
        {
            return Err(Error::Table {
                path: part.clone(),
                message: format!(
                    "feature config hash {} differs from {}'s {}",
                    stream.config.hash(),
                    first_path.display(),
                    first.config.hash()
                ),
            });
        }
        streams.push((part.clone(), stream));
    }
    let Some((mut config, labels)) = streams.first().map(|(_, s)| (s.config.clone(), s.labels.clone())) else {
        return Err(Error::Config("merge: no part files given".into()));
    };
    // Corpora extracted with their own `label_map` (or augmentation) into one label set merge;
    // the merged table then records no single map, since no single one made it.
    if streams.iter().any(|(_, s)| s.config.label_map != config.label_map) {
        config.label_map.clear();
    }
    if streams.iter().any(|(_, s)| s.config.augment != config.augment) {
        config.augment = None;
    }
    check_shards_complete(&tags)?;
    let mut heads: Vec<Option<FeatureRow>> = streams.iter_mut().map(|(_, s)| s.next_row()).collect::<Result<_>>()?;
    let mut writer = FeatureTableWriter::create(out, &config, &labels)?;
    let mut seen: HashMap<String, usize> = HashMap::new(); // clip id -> the part it came from
    let mut n = 0;
    // Smallest path first; on equal paths the earlier part (then the duplicate check fails).
    while let Some(i) = (0..heads.len())
        .filter(|&i| heads[i].is_some())
        .min_by(|&a, &b| heads[a].as_ref().unwrap().path.cmp(&heads[b].as_ref().unwrap().path).then(a.cmp(&b)))
    {
        let row = heads[i].take().expect("filtered to some");
        let (part, stream) = &mut streams[i];
        heads[i] = stream.next_row()?;
        if let Some(next) = &heads[i]
            && next.path < row.path
        {
            return Err(Error::Table {
                path: part.clone(),
                message: format!("rows are not sorted by path (`{}` after `{}`)", next.path, row.path),
            });
        }
        if let Some(&other) = seen.get(&row.clip_id) {
            return Err(Error::Config(format!(
                "merge: clip `{}` is in {} and in {}; a clip id (the file name without its extension) must be \
                 unique in a table: rename the files, or give the clips distinct names in a manifest",
                row.clip_id,
                streams[other].0.display(),
                streams[i].0.display()
            )));
        }
        seen.insert(row.clip_id.clone(), i);
        writer.write(std::iter::once(row))?;
        n += 1;
    }
    rejects.sort_by(|a, b| a.path.cmp(&b.path));
    io::write_rejects(&rejects_path(out), &rejects)?;
    writer.finish()?;
    Ok(n)
}

/// Parts that name their shard must be `0/n .. n-1/n`, each once.
fn check_shards_complete(tags: &[(PathBuf, Option<Shard>)]) -> Result<()> {
    let tagged: Vec<(&PathBuf, Shard)> = tags.iter().filter_map(|(p, t)| t.map(|t| (p, t))).collect();
    let Some(&(first_path, first)) = tagged.first() else {
        return Ok(());
    };
    if let Some((path, _)) = tags.iter().find(|(_, t)| t.is_none()) {
        return Err(Error::Table {
            path: path.clone(),
            message: format!(
                "this table is not a shard part, but {} is (shard {}); merge parts of one sharded run only",
                first_path.display(),
                first.tag()
            ),
        });
    }
    let mut seen: Vec<Option<&PathBuf>> = vec![None; first.count as usize];
    for &(path, shard) in &tagged {
        if shard.count != first.count {
            return Err(Error::Table {
                path: path.clone(),
                message: format!(
                    "part of shard {} but {} is of shard {}: all parts must come from one --shard i/{}",
                    shard.tag(),
                    first_path.display(),
                    first.tag(),
                    first.count
                ),
            });
        }
        if let Some(other) = seen[shard.index as usize].replace(path) {
            return Err(Error::Table {
                path: path.clone(),
                message: format!("shard {} is also in {}", shard.tag(), other.display()),
            });
        }
    }
    let missing: Vec<String> =
        seen.iter().enumerate().filter(|(_, p)| p.is_none()).map(|(i, _)| format!("{i}/{}", first.count)).collect();
    if !missing.is_empty() {
        return Err(Error::Config(format!(
            "merge: the parts of shard(s) {} are missing; run `ser-features extract --shard i/n` for each, then merge again",
            missing.join(", ")
        )));
    }
    Ok(())
}
