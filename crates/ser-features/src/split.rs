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
    pub speaker: &'a str,
    pub label: Option<&'a str>,
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
    let mut rows = Vec::with_capacity(clips.len());
    let n_folds = match config {
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
            let known: BTreeSet<&str> = clips.iter().map(|c| c.speaker).collect();
            for s in test_speakers.iter().chain(val_speakers) {
                if !known.contains(s.as_str()) {
                    return Err(Error::Config(format!(
                        "speaker `{s}` is not in the feature table (speakers: {})",
                        known.iter().copied().collect::<Vec<_>>().join(", ")
                    )));
                }
            }
            for c in clips {
                let part = if test_speakers.iter().any(|s| s == c.speaker) {
                    SplitPart::Test
                } else if val_speakers.iter().any(|s| s == c.speaker) {
                    SplitPart::Val
                } else {
                    SplitPart::Train
                };
                rows.push(SplitRow { clip_id: c.clip_id.to_string(), fold: 0, part });
            }
            1
        }
        SplitConfig::SpeakerKfold { k, val_speakers, seed } => {
            let mut speakers: Vec<&str> =
                clips.iter().map(|c| c.speaker).collect::<BTreeSet<_>>().into_iter().collect();
            if speakers.len() < *k {
                return Err(Error::Config(format!("k: {k} folds but only {} speakers", speakers.len())));
            }
            if speakers.len() - speakers.len().div_ceil(*k) <= *val_speakers {
                return Err(Error::Config(format!(
                    "val_speakers: {val_speakers} leaves no training speaker with {} speakers in {k} folds",
                    speakers.len()
                )));
            }
            speakers.shuffle(&mut ChaCha8Rng::seed_from_u64(*seed));
            // Fold f tests on speakers f, f+k, f+2k, ... of the shuffled order, and validates on
            // the first `val_speakers` of the speakers that follow it.
            for fold in 0..*k {
                let test: BTreeSet<&str> = speakers.iter().skip(fold).step_by(*k).copied().collect();
                let val: BTreeSet<&str> = (1..speakers.len())
                    .map(|offset| speakers[(fold + offset) % speakers.len()])
                    .filter(|s| !test.contains(s))
                    .take(*val_speakers)
                    .collect();
                for c in clips {
                    let part = if test.contains(c.speaker) {
                        SplitPart::Test
                    } else if val.contains(c.speaker) {
                        SplitPart::Val
                    } else {
                        SplitPart::Train
                    };
                    rows.push(SplitRow { clip_id: c.clip_id.to_string(), fold: fold as u32, part });
                }
            }
            *k as u32
        }
        SplitConfig::SpeakerFolds { folds, val_speakers, seed } => {
            let known: BTreeSet<&str> = clips.iter().map(|c| c.speaker).collect();
            if let Some(s) = folds.iter().flatten().find(|s| !known.contains(s.as_str())) {
                return Err(Error::Config(format!(
                    "folds: speaker `{s}` is not in the feature table (speakers: {})",
                    known.iter().copied().collect::<Vec<_>>().join(", ")
                )));
            }
            for (fold, test_speakers) in folds.iter().enumerate() {
                let test: BTreeSet<&str> = test_speakers.iter().map(String::as_str).collect();
                let mut rest: Vec<&str> = known.iter().copied().filter(|s| !test.contains(s)).collect();
                if rest.len() <= *val_speakers {
                    return Err(Error::Config(format!(
                        "val_speakers: {val_speakers} leaves no training speaker in fold {fold} ({} speakers besides its test speakers)",
                        rest.len()
                    )));
                }
                rest.shuffle(&mut ChaCha8Rng::seed_from_u64(seed.wrapping_add(fold as u64)));
                let val: BTreeSet<&str> = rest.into_iter().take(*val_speakers).collect();
                for c in clips {
                    let part = if test.contains(c.speaker) {
                        SplitPart::Test
                    } else if val.contains(c.speaker) {
                        SplitPart::Val
                    } else {
                        SplitPart::Train
                    };
                    rows.push(SplitRow { clip_id: c.clip_id.to_string(), fold: fold as u32, part });
                }
            }
            folds.len() as u32
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
