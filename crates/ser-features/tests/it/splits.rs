//! Splits: stratified random, named held-out speakers, k folds by speaker, held-out corpora.

use std::collections::{BTreeMap, BTreeSet};

use ser_features::SplitConfig;
use ser_features::io::{read_splits, write_splits};
use ser_features::split::{ClipKey, SplitPart, make_splits};

/// 10 speakers x 8 labels x 5 clips.
fn clips() -> Vec<(String, String, String)> {
    let labels = ser_features::labels::EMOTIONS;
    let mut out = Vec::new();
    for s in 0..10 {
        for l in labels {
            for k in 0..5 {
                out.push((format!("{s:02}-{l}-{k}"), format!("{s:02}"), l.to_string()));
            }
        }
    }
    out
}

fn keys(clips: &[(String, String, String)]) -> Vec<ClipKey<'_>> {
    clips.iter().map(|(c, s, l)| ClipKey { clip_id: c, corpus: "", speaker: s, label: Some(l) }).collect()
}

#[test]
fn random_split_is_stratified_and_deterministic() {
    let clips = clips();
    let config = SplitConfig::Random { test_fraction: 0.2, val_fraction: 0.1, seed: 42 };
    let a = make_splits(&keys(&clips), &config, "h", None).unwrap();
    let b = make_splits(&keys(&clips), &config, "h", None).unwrap();
    assert_eq!(a, b);
    let mut per_label: BTreeMap<(&str, SplitPart), usize> = BTreeMap::new();
    for (row, (_, _, label)) in a.rows.iter().zip(&clips) {
        *per_label.entry((label.as_str(), row.part)).or_default() += 1;
    }
    for label in ser_features::labels::EMOTIONS {
        assert_eq!(per_label[&(label, SplitPart::Test)], 10, "{label}");
        assert_eq!(per_label[&(label, SplitPart::Val)], 4, "{label}");
        assert_eq!(per_label[&(label, SplitPart::Train)], 36, "{label}");
    }
    let other =
        make_splits(&keys(&clips), &SplitConfig::Random { test_fraction: 0.2, val_fraction: 0.1, seed: 43 }, "h", None)
            .unwrap();
    assert_ne!(a.rows, other.rows);
}

#[test]
fn speaker_split_holds_out_named_speakers() {
    let clips = clips();
    let config =
        SplitConfig::Speaker { test_speakers: vec!["08".into(), "09".into()], val_speakers: vec!["07".into()] };
    let s = make_splits(&keys(&clips), &config, "h", None).unwrap();
    for (row, (_, speaker, _)) in s.rows.iter().zip(&clips) {
        let expect = match speaker.as_str() {
            "08" | "09" => SplitPart::Test,
            "07" => SplitPart::Val,
            _ => SplitPart::Train,
        };
        assert_eq!(row.part, expect);
    }
}

#[test]
fn unknown_speaker_is_an_error() {
    let clips = clips();
    let config = SplitConfig::Speaker { test_speakers: vec!["99".into()], val_speakers: vec![] };
    let err = make_splits(&keys(&clips), &config, "h", None).unwrap_err().to_string();
    assert!(err.contains("speaker `99` is not in the feature table"), "{err}");
}

#[test]
fn speaker_kfold_tests_each_speaker_once_and_never_leaks() {
    let clips = clips();
    let config = SplitConfig::SpeakerKfold { k: 5, val_speakers: 2, seed: 1 };
    let s = make_splits(&keys(&clips), &config, "h", None).unwrap();
    assert_eq!(s.n_folds, 5);
    let speaker_of: BTreeMap<&str, &str> = clips.iter().map(|(c, s, _)| (c.as_str(), s.as_str())).collect();
    let mut tested = BTreeMap::<&str, usize>::new();
    for fold in 0..5 {
        let parts: Vec<BTreeSet<&str>> = [SplitPart::Train, SplitPart::Val, SplitPart::Test]
            .iter()
            .map(|p| s.clip_ids(fold, *p).iter().map(|c| speaker_of[c]).collect())
            .collect();
        assert!(parts[0].is_disjoint(&parts[1]) && parts[0].is_disjoint(&parts[2]) && parts[1].is_disjoint(&parts[2]));
        assert_eq!(parts[1].len(), 2);
        for sp in &parts[2] {
            *tested.entry(sp).or_default() += 1;
        }
    }
    assert_eq!(tested.len(), 10);
    assert!(tested.values().all(|&n| n == 1));
}

#[test]
fn split_file_round_trips() {
    let clips = clips();
    let s = make_splits(&keys(&clips), &SplitConfig::SpeakerKfold { k: 3, val_speakers: 1, seed: 1 }, "hash", None)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("splits.parquet");
    write_splits(&path, &s).unwrap();
    assert_eq!(read_splits(&path).unwrap(), s);
}

#[test]
fn split_yaml_rejects_unknown_keys() {
    let err =
        SplitConfig::from_yaml("kind: random\ntest_fraction: 0.2\nval_fraction: 0.1\nseed: 1\nsed: 2\n").unwrap_err();
    assert!(err.to_string().contains("unknown field `sed`"), "{err}");
}

#[test]
fn named_speaker_folds_test_each_fold_and_validate_on_training_speakers() {
    let clips = clips();
    let folds: Vec<Vec<String>> =
        vec![vec!["00".into(), "05".into()], vec!["01".into(), "09".into()], vec!["03".into()]];
    let config = SplitConfig::SpeakerFolds { folds: folds.clone(), val_speakers: 2, seed: 4 };
    let s = make_splits(&keys(&clips), &config, "hash", None).unwrap();
    assert_eq!(s.n_folds, 3);
    assert_eq!(s, make_splits(&keys(&clips), &config, "hash", None).unwrap(), "deterministic");
    let speaker_of: BTreeMap<&str, &str> = clips.iter().map(|(c, s, _)| (c.as_str(), s.as_str())).collect();
    for (fold, test) in folds.iter().enumerate() {
        let speakers = |part: SplitPart| -> BTreeSet<&str> {
            s.clip_ids(fold as u32, part).iter().map(|c| speaker_of[c]).collect()
        };
        assert_eq!(speakers(SplitPart::Test), test.iter().map(String::as_str).collect::<BTreeSet<_>>(), "fold {fold}");
        let val = speakers(SplitPart::Val);
        assert_eq!(val.len(), 2);
        assert!(val.is_disjoint(&speakers(SplitPart::Test)), "validation never sees a test speaker");
        assert_eq!(speakers(SplitPart::Train).len(), 10 - test.len() - 2);
    }
    let err = make_splits(
        &keys(&clips),
        &SplitConfig::SpeakerFolds { folds: vec![vec!["00".into()], vec!["00".into()]], val_speakers: 1, seed: 1 },
        "h",
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("speaker 00 is in more than one fold"), "{err}");
    let err = make_splits(
        &keys(&clips),
        &SplitConfig::SpeakerFolds { folds: vec![vec!["77".into()]], val_speakers: 1, seed: 1 },
        "h",
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("speaker `77` is not in the feature table"), "{err}");
}

/// Two corpora whose speakers share names: speakers 00..09 of `ravdess` and 00..03 of `emodb`.
fn two_corpora() -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for (corpus, n) in [("ravdess", 10), ("emodb", 4)] {
        for s in 0..n {
            for l in ["angry", "happy", "sad"] {
                out.push((format!("{corpus}-{s:02}-{l}"), corpus.to_string(), format!("{s:02}"), l.to_string()));
            }
        }
    }
    out
}

fn corpus_keys(clips: &[(String, String, String, String)]) -> Vec<ClipKey<'_>> {
    clips.iter().map(|(c, corpus, s, l)| ClipKey { clip_id: c, corpus, speaker: s, label: Some(l) }).collect()
}

#[test]
fn a_corpus_split_holds_out_a_whole_corpus() {
    let clips = two_corpora();
    let config = SplitConfig::Corpus { test_corpora: vec!["emodb".into()], val_speakers: 2, seed: 3 };
    let s = make_splits(&corpus_keys(&clips), &config, "h", None).unwrap();
    assert_eq!(s.n_folds, 1);
    let mut val_speakers = BTreeSet::new();
    for (row, (_, corpus, speaker, _)) in s.rows.iter().zip(&clips) {
        assert_eq!(row.part == SplitPart::Test, corpus == "emodb", "{row:?}");
        if row.part == SplitPart::Val {
            val_speakers.insert((corpus.as_str(), speaker.as_str()));
        }
    }
    assert_eq!(val_speakers.len(), 2);
    assert!(val_speakers.iter().all(|(c, _)| *c == "ravdess"));
    // Validation draws whole speakers: no validation speaker also trains.
    for (row, (_, corpus, speaker, _)) in s.rows.iter().zip(&clips) {
        if val_speakers.contains(&(corpus.as_str(), speaker.as_str())) {
            assert_eq!(row.part, SplitPart::Val);
        }
    }
    let err = make_splits(
        &corpus_keys(&clips),
        &SplitConfig::Corpus { test_corpora: vec!["savee".into()], val_speakers: 2, seed: 3 },
        "h",
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("corpus `savee` is not in the feature table (corpora: emodb, ravdess)"), "{err}");
    let err = SplitConfig::from_yaml("kind: corpus\ntest_corpora: []\nval_speakers: 1\nseed: 0\n").unwrap_err();
    assert!(err.to_string().contains("test_corpora: name at least one corpus"), "{err}");
}

#[test]
fn in_a_table_of_several_corpora_a_speaker_is_named_with_its_corpus() {
    let clips = two_corpora();
    // emodb/01 only, not ravdess's speaker 01.
    let config =
        SplitConfig::Speaker { test_speakers: vec!["emodb/01".into()], val_speakers: vec!["ravdess/01".into()] };
    let s = make_splits(&corpus_keys(&clips), &config, "h", None).unwrap();
    for (row, (_, corpus, speaker, _)) in s.rows.iter().zip(&clips) {
        let expect = match (corpus.as_str(), speaker.as_str()) {
            ("emodb", "01") => SplitPart::Test,
            ("ravdess", "01") => SplitPart::Val,
            _ => SplitPart::Train,
        };
        assert_eq!(row.part, expect, "{row:?}");
    }
    let err = make_splits(
        &corpus_keys(&clips),
        &SplitConfig::Speaker { test_speakers: vec!["01".into()], val_speakers: vec![] },
        "h",
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("speaker `01` is not in the feature table (speakers: emodb/00, emodb/01"), "{err}");
    // k folds group by corpus and speaker: 14 speakers, each tested once.
    let s = make_splits(&corpus_keys(&clips), &SplitConfig::SpeakerKfold { k: 7, val_speakers: 1, seed: 0 }, "h", None)
        .unwrap();
    let tested: usize = (0..7).map(|f| s.clip_ids(f, SplitPart::Test).len()).sum();
    assert_eq!(tested, clips.len());
}

#[test]
fn split_all_trains_every_clip_and_names_its_cross_validation() {
    let clips = clips();
    let config = SplitConfig::from_yaml("kind: all\ncross_validation: ravdess-emobox\n").unwrap();
    let s = make_splits(&keys(&clips), &config, "h", None).unwrap();
    assert_eq!((s.n_folds, s.rows.len()), (1, clips.len()));
    assert!(s.rows.iter().all(|r| r.part == SplitPart::Train));
    let err = SplitConfig::from_yaml("kind: all\ncross_validation: ''\n").unwrap_err().to_string();
    assert!(err.contains("cross_validation"), "{err}");
}

/// Named folds over two corpora (each fold tests speakers of both): each fold validates on
/// `val_speakers` speakers of each corpus, never a test speaker of that fold.
#[test]
fn folds_of_two_corpora_validate_on_each_corpus() {
    let clips = two_corpora();
    let folds: Vec<Vec<String>> = (0..2)
        .map(|f| vec![format!("ravdess/{:02}", 2 * f), format!("ravdess/{:02}", 2 * f + 1), format!("emodb/{:02}", f)])
        .collect();
    let config = SplitConfig::SpeakerFolds { folds, val_speakers: 1, seed: 4 };
    let s = make_splits(&corpus_keys(&clips), &config, "h", None).unwrap();
    for fold in 0..2u32 {
        let mut val: BTreeSet<(&str, &str)> = BTreeSet::new();
        for (row, (_, corpus, speaker, _)) in s.rows.iter().filter(|r| r.fold == fold).zip(&clips) {
            if row.part == SplitPart::Val {
                val.insert((corpus.as_str(), speaker.as_str()));
            }
        }
        let corpora: Vec<&str> = val.iter().map(|(c, _)| *c).collect();
        assert_eq!(corpora, ["emodb", "ravdess"], "fold {fold}: one validation speaker of each corpus: {val:?}");
    }
    // emodb's 4 speakers: 1 tested, 1 validating, 2 training; 3 validating would leave none.
    let config = SplitConfig::SpeakerFolds { folds: vec![vec!["emodb/00".into()]], val_speakers: 3, seed: 4 };
    let err = make_splits(&corpus_keys(&clips), &config, "h", None).unwrap_err().to_string();
    assert!(err.contains("no training speaker of corpus emodb in fold 0"), "{err}");
}
