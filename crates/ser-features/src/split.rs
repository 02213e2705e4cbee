//! Train / validation / test assignment of clips. Splits live in their own small file, so a new
//! split never re-extracts features.

use std::collections::{BTreeMap, BTreeSet};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::config::SplitConfig;
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SplitPart {
    Train,
    Val,
    Test,
}

impl SplitPart {
    pub fn as_str(self) -> &'static str {
        match self {
            SplitPart::Train => "train",
            SplitPart::Val => "val",
            SplitPart::Test => "test",
        }
    }

    pub fn parse(name: &str) -> Option<SplitPart> {
        match name {
            "train" => Some(SplitPart::Train),
            "val" | "valid" | "validation" => Some(SplitPart::Val),
            "test" => Some(SplitPart::Test),
            _ => None,
        }
    }
}

/// One clip's part in one fold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitRow {
    pub clip_id: String,
    pub fold: u32,
    pub part: SplitPart,
}

/// A split file's content.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitAssignment {
    /// The [`SplitConfig`] that made it, as JSON (empty if written by another tool).
    pub config_json: String,
    /// The feature config hash of the table it was made from.
    pub features_config_hash: String,
    pub n_folds: u32,
    pub rows: Vec<SplitRow>,
}

impl SplitAssignment {
    /// The clip ids of one part of one fold, in file order.
    pub fn clip_ids(&self, fold: u32, part: SplitPart) -> Vec<&str> {
        self.rows.iter().filter(|r| r.fold == fold && r.part == part).map(|r| r.clip_id.as_str()).collect()
    }

    /// Counts per (fold, part).
    pub fn counts(&self) -> BTreeMap<(u32, SplitPart), usize> {
        let mut counts = BTreeMap::new();
        for r in &self.rows {
            *counts.entry((r.fold, r.part)).or_default() += 1;
        }
        counts
    }
}

/// What the splitter needs to know of a clip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClipKey<'a> {
    pub clip_id: &'a str,
    /// The corpus the clip came from (the table's `corpus` column; may be empty).
    pub corpus: &'a str,
    pub speaker: &'a str,
    pub label: Option<&'a str>,
}

/// The name a split config uses for each clip's speaker: the speaker alone in a table of one
/// corpus, `corpus/speaker` in a table of several (two corpora may both have a speaker `03`).
pub fn speaker_names(clips: &[ClipKey]) -> Vec<String> {
    let corpora: BTreeSet<&str> = clips.iter().map(|c| c.corpus).collect();
    clips
        .iter()
        .map(|c| if corpora.len() > 1 { format!("{}/{}", c.corpus, c.speaker) } else { c.speaker.to_string() })
        .collect()
}

/// Train / val / test of every clip, by its speaker's membership of `test` and `val`.
fn by_speaker(
    clips: &[ClipKey],
    speakers: &[String],
    fold: u32,
    test: &BTreeSet<&str>,
    val: &BTreeSet<&str>,
) -> impl Iterator<Item = SplitRow> {
    clips.iter().zip(speakers).map(move |(c, s)| {
        let part = if test.contains(s.as_str()) {
            SplitPart::Test
        } else if val.contains(s.as_str()) {
            SplitPart::Val
        } else {
            SplitPart::Train
        };
        SplitRow { clip_id: c.clip_id.to_string(), fold, part }
    })
}

/// An error unless every name is one of the table's speakers.
fn check_speakers<'a>(
    setting: &str,
    names: impl IntoIterator<Item = &'a String>,
    known: &BTreeSet<&str>,
) -> Result<()> {
    match names.into_iter().find(|s| !known.contains(s.as_str())) {
        Some(s) => Err(Error::Config(format!(
            "{setting}: speaker `{s}` is not in the feature table (speakers: {})",
            known.iter().copied().collect::<Vec<_>>().join(", ")
        ))),
        None => Ok(()),
    }
}

/// Assigns every clip a part, for each fold. Deterministic in (clips, config).
/// `manifest_parts` (clip id -> part) is needed for [`SplitConfig::Manifest`] only.
pub fn make_splits(
    clips: &[ClipKey],
    config: &SplitConfig,
    features_config_hash: &str,
    manifest_parts: Option<&BTreeMap<String, SplitPart>>,
) -> Result<SplitAssignment> {
    config.validate()?;
    let speakers = speaker_names(clips);
    let known: BTreeSet<&str> = speakers.iter().map(String::as_str).collect();
    let corpus_of: BTreeMap<&str, &str> =
        speakers.iter().map(String::as_str).zip(clips.iter().map(|c| c.corpus)).collect();
    let mut rows = Vec::with_capacity(clips.len());
    let n_folds = match config {
        SplitConfig::All { .. } => {
            rows.extend(clips.iter().map(|c| SplitRow {
                clip_id: c.clip_id.to_string(),
                fold: 0,
                part: SplitPart::Train,
            }));
            1
        }
        SplitConfig::Random { test_fraction, val_fraction, seed } => {
            let mut rng = ChaCha8Rng::seed_from_u64(*seed);
            let mut by_label: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
            for (i, clip) in clips.iter().enumerate() {
                by_label.entry(clip.label.unwrap_or("")).or_default().push(i);
            }
            let mut parts = vec![SplitPart::Train; clips.len()];
            for indices in by_label.values_mut() {
                indices.sort_by_key(|&i| clips[i].clip_id);
                indices.shuffle(&mut rng);
                let n_test = (indices.len() as f64 * test_fraction).round() as usize;
                let n_val = ((indices.len() - n_test) as f64 * val_fraction).round() as usize;
                for (rank, &i) in indices.iter().enumerate() {
                    parts[i] = if rank < n_test {
                        SplitPart::Test
                    } else if rank < n_test + n_val {
                        SplitPart::Val
                    } else {
                        SplitPart::Train
                    };
                }
            }
            rows.extend(clips.iter().zip(parts).map(|(c, part)| SplitRow {
                clip_id: c.clip_id.to_string(),
                fold: 0,
                part,
            }));
            1
        }
        SplitConfig::Speaker { test_speakers, val_speakers } => {
            check_speakers("test_speakers", test_speakers, &known)?;
            check_speakers("val_speakers", val_speakers, &known)?;
            let test = test_speakers.iter().map(String::as_str).collect();
            let val = val_speakers.iter().map(String::as_str).collect();
            rows.extend(by_speaker(clips, &speakers, 0, &test, &val));
            1
        }
        SplitConfig::SpeakerKfold { k, val_speakers, seed } => {
            let mut order: Vec<&str> = known.iter().copied().collect();
            if order.len() < *k {
                return Err(Error::Config(format!("k: {k} folds but only {} speakers", order.len())));
            }
            if order.len() - order.len().div_ceil(*k) <= *val_speakers {
                return Err(Error::Config(format!(
                    "val_speakers: {val_speakers} leaves no training speaker with {} speakers in {k} folds",
                    order.len()
                )));
            }
            order.shuffle(&mut ChaCha8Rng::seed_from_u64(*seed));
            // Fold f tests on speakers f, f+k, f+2k, ... of the shuffled order, and validates on
            // the first `val_speakers` of the speakers that follow it.
            for fold in 0..*k {
                let test: BTreeSet<&str> = order.iter().skip(fold).step_by(*k).copied().collect();
                let val: BTreeSet<&str> = (1..order.len())
                    .map(|offset| order[(fold + offset) % order.len()])
                    .filter(|s| !test.contains(s))
                    .take(*val_speakers)
                    .collect();
                rows.extend(by_speaker(clips, &speakers, fold as u32, &test, &val));
            }
            *k as u32
        }
        SplitConfig::SpeakerFolds { folds, val_speakers, seed } => {
            check_speakers("folds", folds.iter().flatten(), &known)?;
            for (fold, test_speakers) in folds.iter().enumerate() {
                let test: BTreeSet<&str> = test_speakers.iter().map(String::as_str).collect();
                let val =
                    draw_val_speakers(&known, &corpus_of, &test, *val_speakers, seed.wrapping_add(fold as u64), fold)?;
                rows.extend(by_speaker(clips, &speakers, fold as u32, &test, &val));
            }
            folds.len() as u32
        }
        SplitConfig::Corpus { test_corpora, val_speakers, seed } => {
            let corpora: BTreeSet<&str> = clips.iter().map(|c| c.corpus).collect();
            if let Some(c) = test_corpora.iter().find(|c| !corpora.contains(c.as_str())) {
                return Err(Error::Config(format!(
                    "test_corpora: corpus `{c}` is not in the feature table (corpora: {})",
                    corpora.iter().copied().collect::<Vec<_>>().join(", ")
                )));
            }
            let test: BTreeSet<&str> = clips
                .iter()
                .zip(&speakers)
                .filter(|(c, _)| test_corpora.iter().any(|t| t == c.corpus))
                .map(|(_, s)| s.as_str())
                .collect();
            let val = draw_val_speakers(&known, &corpus_of, &test, *val_speakers, *seed, 0)?;
            rows.extend(by_speaker(clips, &speakers, 0, &test, &val));
            1
        }
        SplitConfig::Manifest { manifest } => {
            let parts = manifest_parts
                .ok_or_else(|| Error::Config(format!("{}: manifest split not read", manifest.display())))?;
            for c in clips {
                let part = parts.get(c.clip_id).ok_or_else(|| {
                    Error::Config(format!("{}: clip `{}` has no split in the manifest", manifest.display(), c.clip_id))
                })?;
                rows.push(SplitRow { clip_id: c.clip_id.to_string(), fold: 0, part: *part });
            }
            1
        }
    };
    Ok(SplitAssignment {
        config_json: config.to_json(),
        features_config_hash: features_config_hash.to_string(),
        n_folds,
        rows,
    })
}

/// `n` validation speakers drawn by `seed` from the speakers not in `test`, leaving at least one
/// to train on; in a table of several corpora (`corpus_of` names each speaker's), `n` from each
/// corpus that has speakers besides its test speakers, each corpus drawn on its own, so that
/// validation hears every corpus that trains.
fn draw_val_speakers<'a>(
    known: &BTreeSet<&'a str>,
    corpus_of: &BTreeMap<&str, &str>,
    test: &BTreeSet<&str>,
    n: usize,
    seed: u64,
    fold: usize,
) -> Result<BTreeSet<&'a str>> {
    let mut by_corpus: BTreeMap<&str, Vec<&'a str>> = BTreeMap::new();
    for &s in known.iter().filter(|s| !test.contains(*s)) {
        by_corpus.entry(corpus_of.get(s).copied().unwrap_or("")).or_default().push(s);
    }
    let several = by_corpus.len() > 1;
    let mut val = BTreeSet::new();
    for (corpus, mut rest) in by_corpus {
        if rest.len() <= n {
            let whose = if several { format!(" of corpus {corpus}") } else { String::new() };
            return Err(Error::Config(format!(
                "val_speakers: {n} leaves no training speaker{whose} in fold {fold} ({} speakers besides its test speakers)",
                rest.len()
            )));
        }
        rest.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        val.extend(rest.into_iter().take(n));
    }
    Ok(val)
}
