//! ser-infer: emotions for new audio from a checkpoint.
//!
//! Load once, predict many: [`Classifier::load`] reads a checkpoint directory (ser-model's file
//! contract), [`Classifier::shipped`] the model built in ([`shipped`]), and each computes features through `ser_features` with exactly the config recorded in its
//! `model.json`; nothing here copies the feature code or a layer. On the CPU the network runs
//! ser-model's CPU forward. A `Classifier` is `Send + Sync`: share it across threads (an `Arc`)
//! for concurrent requests.
//!
//! [`timeline`] cuts long audio into the windows of one [`timeline::WindowPlan`], which
//! [`stream`] and [`server`] share; [`config`] is `infer.yaml`; [`output`] writes the table, CSV
//! and JSON lines every command prints; [`files`] classifies many files in bounded memory.

mod access;
pub mod auth;
pub mod config;
pub mod files;
mod limit;
mod metrics;
pub mod output;
pub mod page;
pub mod server;
pub mod shipped;
pub mod socket;
mod state;
pub mod stream;
pub mod timeline;

use std::path::{Path, PathBuf};

use candle_core::Device;
use rayon::prelude::*;
use ser_features::FeaturesConfig;
use ser_features::audio::{AudioError, check_sample_rate, decode_audio, first_non_finite, resample};
use ser_features::dsp::Analyzer;
use ser_model::data::Dataset;
use ser_model::predict::Checkpoint;
use serde::Serialize;

pub use timeline::{Recording, Segment, TimelineConfig, WindowSettings, timeline, timeline_many};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Model(#[from] ser_model::Error),
    #[error(transparent)]
    Features(#[from] ser_features::Error),
    #[error("{0}")]
    Audio(#[from] AudioError),
    #[error("{path}: {source}")]
    Input {
        path: PathBuf,
        #[source]
        source: Box<Error>,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// Names the input file the error is about.
    pub fn in_file(self, path: &Path) -> Error {
        Error::Input { path: path.to_path_buf(), source: Box::new(self) }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// One clip's emotion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    pub label: String,
    /// The probability of `label`.
    pub confidence: f32,
    /// One probability per class, in the checkpoint's label order ([`Classifier::labels`]).
    pub probabilities: Vec<f32>,
}

impl Prediction {
    pub(crate) fn from_probabilities(labels: &[String], probabilities: Vec<f32>) -> Prediction {
        let best = ser_model::predict::argmax(&probabilities);
        Prediction { label: labels[best].clone(), confidence: probabilities[best], probabilities }
    }
}

/// One window's features (the network's input) and how many of its first frames are speech.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowFeatures {
    pub values: Vec<f32>,
    pub speech_frames: usize,
}

/// A checkpoint ready to classify audio.
pub struct Classifier {
    checkpoint: Checkpoint,
    analyzer: Analyzer,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier").field("checkpoint", &self.checkpoint.dir).finish()
    }
}

/// The most audio one call accepts, in seconds, unless the caller says otherwise.
pub const DEFAULT_MAX_DURATION_S: f32 = 4.0 * 3600.0;

impl Classifier {
    /// Loads `model.json` and `model.safetensors` from a checkpoint directory (a trained one or
    /// an ensemble).
    pub fn load(dir: &Path, device: &Device) -> Result<Classifier> {
        Ok(Classifier::from_checkpoint(ser_model::io::read_checkpoint(dir, device)?))
    }

    /// The model ser ships ([`shipped::DIR`]), built into this library; an error that says so
    /// in a build without it.
    pub fn shipped(device: &Device) -> Result<Classifier> {
        shipped::load(device)
    }

    /// The checkpoint in `dir`, or the shipped model when `dir` is `None`.
    pub fn load_or_shipped(dir: Option<&Path>, device: &Device) -> Result<Classifier> {
        match dir {
            Some(dir) => Classifier::load(dir, device),
            None => Classifier::shipped(device),
        }
    }

    pub fn from_checkpoint(checkpoint: Checkpoint) -> Classifier {
        let analyzer = Analyzer::new(checkpoint.features_config());
        Classifier { checkpoint, analyzer }
    }

    pub fn labels(&self) -> &[String] {
        self.checkpoint.labels()
    }

    pub fn features_config(&self) -> &FeaturesConfig {
        self.checkpoint.features_config()
    }

    /// The loaded checkpoint: its members' sidecars (labels, feature config, normalisation,
    /// provenance) and networks.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// The checkpoint's directory ([`shipped::DIR`] for the shipped model).
    pub fn dir(&self) -> &Path {
        &self.checkpoint.dir
    }

    /// The SHA-256 of the weights (`model.safetensors`) that answer.
    pub fn weights_sha256(&self) -> &str {
        &self.checkpoint.weights_sha256
    }

    /// Seconds of audio the network sees at once (`frames` x hop / rate), or `None` for a
    /// checkpoint trained on variable-length features.
    pub fn window_seconds(&self) -> Option<f64> {
        let c = self.features_config();
        c.frames.map(|n| n as f64 * c.hop_length as f64 / c.sample_rate as f64)
    }

    /// The network's input for mono samples at `sample_rate`: resample to the checkpoint's rate,
    /// then the checkpoint's features (padded or cut to its frame count).
    pub fn features(&self, samples: &[f32], sample_rate: u32) -> Result<Vec<f32>> {
        Ok(self.window_features(samples, sample_rate)?.values)
    }

    /// [`Classifier::features`], and how many of its first frames are the audio's own (the rest
    /// is padding; all of them when the checkpoint pads with the audio itself).
    pub fn window_features(&self, samples: &[f32], sample_rate: u32) -> Result<WindowFeatures> {
        let config = self.features_config();
        check_sample_rate(sample_rate)?;
        if let Some(i) = first_non_finite(samples) {
            return Err(AudioError::NonFinite { frame: i }.into());
        }
        let resampled = resample(samples, sample_rate, config.sample_rate)?;
        if resampled.len() < self.analyzer.min_samples() {
            return Err(AudioError::TooShort {
                seconds: samples.len() as f64 / sample_rate as f64,
                min_seconds: self.analyzer.min_samples() as f64 / config.sample_rate as f64,
            }
            .into());
        }
        let features = self.analyzer.features(&resampled);
        let (n_frames, n_coeffs) = (self.checkpoint.n_frames(), self.checkpoint.n_coeffs());
        if features.matrix.n_frames != n_frames || features.matrix.n_coeffs != n_coeffs {
            return Err(Error::Invalid(format!(
                "features are {}x{}, the checkpoint expects {n_frames}x{n_coeffs}",
                features.matrix.n_frames, features.matrix.n_coeffs
            )));
        }
        let speech_frames = match config.pad {
            ser_features::config::PadMode::Repeat => n_frames,
            _ => features.n_frames_source.min(n_frames),
        };
        Ok(WindowFeatures { values: features.matrix.values, speech_frames })
    }

    /// Classifies the windows of one speaker standardised around their own mean frame
    /// ([`ser_model::predict::Centring`]); `centre` gives that mean when it was taken over more
    /// audio than these windows (None: over these).
    pub fn classify_centred(&self, windows: Vec<WindowFeatures>, centre: Option<&[f32]>) -> Result<Vec<Prediction>> {
        if windows.is_empty() {
            return Ok(Vec::new());
        }
        let (n_frames, n_coeffs) = (self.checkpoint.n_frames(), self.checkpoint.n_coeffs());
        let speech_frames: Vec<usize> = windows.iter().map(|w| w.speech_frames).collect();
        let raw: Vec<f32> = windows.into_iter().flat_map(|w| w.values).collect();
        let own;
        let centre = match centre {
            Some(c) => c,
            None => {
                let mut mean = ser_model::predict::MeanFrame::default();
                mean.add(&raw, n_frames, n_coeffs, &speech_frames);
                own = mean.mean().ok_or_else(|| Error::Invalid("no speech frame to adapt to".into()))?;
                &own
            }
        };
        let centring = ser_model::predict::Centring { centre, speech_frames: &speech_frames };
        let probabilities = self.checkpoint.probabilities_centred(&raw, speech_frames.len(), Some(centring))?;
        Ok(probabilities.into_iter().map(|p| Prediction::from_probabilities(self.labels(), p)).collect())
    }

    /// Classifies feature matrices from [`Classifier::features`], in batches.
    pub fn classify_features(&self, features: Vec<Vec<f32>>) -> Result<Vec<Prediction>> {
        if features.is_empty() {
            return Ok(Vec::new());
        }
        let n = features.len();
        let data = Dataset {
            clip_ids: (0..n).map(|i| i.to_string()).collect(),
            classes: self.labels().to_vec(),
            labels: vec![None; n],
            genders: vec![None; n],
            corpora: Vec::new(),
            speakers: Vec::new(),
            n_frames: self.checkpoint.n_frames(),
            n_coeffs: self.checkpoint.n_coeffs(),
            features: features.concat(),
        };
        let predictions = ser_model::predict::predict(&self.checkpoint, &data)?;
        Ok(predictions.probabilities.into_iter().map(|p| Prediction::from_probabilities(self.labels(), p)).collect())
    }

    /// The emotion of mono samples at `sample_rate`.
    pub fn predict(&self, samples: &[f32], sample_rate: u32) -> Result<Prediction> {
        let features = self.features(samples, sample_rate)?;
        Ok(self.classify_features(vec![features])?.remove(0))
    }

    /// The emotion of a WAV file's bytes (any channels and rate the decoder reads).
    pub fn predict_wav(&self, bytes: &[u8]) -> Result<Prediction> {
        let audio = decode_audio(bytes, DEFAULT_MAX_DURATION_S)?;
        self.predict(&audio.samples, audio.sample_rate)
    }

    /// Many clips at once: features in parallel, then the network in batches. One result per
    /// clip, in order; a bad clip fails alone.
    pub fn predict_many(&self, clips: &[(&[f32], u32)]) -> Vec<Result<Prediction>> {
        self.predict_grouped(clips, None)
    }

    /// [`Classifier::predict_many`]; with `centring`, each clip's speaker (a group number) and,
    /// when given, the mean frame every group is standardised around (else each group's own:
    /// [`Classifier::classify_centred`]).
    pub(crate) fn predict_grouped(
        &self,
        clips: &[(&[f32], u32)],
        centring: Option<(&[usize], Option<&[f32]>)>,
    ) -> Vec<Result<Prediction>> {
        let features: Vec<Result<WindowFeatures>> =
            clips.par_iter().map(|(s, sr)| self.window_features(s, *sr)).collect();
        let mut results: Vec<Option<Result<Prediction>>> = (0..clips.len()).map(|_| None).collect();
        let mut groups: std::collections::BTreeMap<usize, Vec<(usize, WindowFeatures)>> = Default::default();
        for (i, f) in features.into_iter().enumerate() {
            match f {
                Ok(f) => groups.entry(centring.map_or(0, |(g, _)| g[i])).or_default().push((i, f)),
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        for (_, group) in groups {
            let (indices, windows): (Vec<usize>, Vec<WindowFeatures>) = group.into_iter().unzip();
            let answers = match centring {
                None => self.classify_features(windows.into_iter().map(|w| w.values).collect()),
                Some((_, centre)) => self.classify_centred(windows, centre),
            };
            match answers {
                Ok(predictions) => {
                    for (i, p) in indices.into_iter().zip(predictions) {
                        results[i] = Some(Ok(p));
                    }
                }
                Err(e) => {
                    let message = e.to_string();
                    for i in indices {
                        results[i] = Some(Err(Error::Invalid(message.clone())));
                    }
                }
            }
        }
        results.into_iter().map(|r| r.expect("every clip has a result")).collect()
    }
}
