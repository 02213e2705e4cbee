//! Long recordings as a timeline: sliding windows, each classified, silent ones marked.

use serde::Serialize;

use crate::{Classifier, Prediction, Result};

/// Windows quieter than this RMS level (dB full scale) are marked silent, unless told otherwise.
pub const DEFAULT_SILENCE_DBFS: f64 = -50.0;

/// How a recording is cut into windows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TimelineConfig {
    /// Window length in seconds.
    pub window_s: f64,
    /// Step between window starts in seconds.
    pub hop_s: f64,
    /// Windows whose RMS level is below this many dB full scale are marked silent, not classified.
    pub silence_dbfs: f64,
}

impl TimelineConfig {
    /// The checkpoint's own window (its frame count), half-overlapping, silence below -50 dBFS.
    pub fn for_classifier(classifier: &Classifier) -> TimelineConfig {
        let window_s = classifier.window_seconds().unwrap_or(3.0);
        TimelineConfig { window_s, hop_s: window_s / 2.0, silence_dbfs: DEFAULT_SILENCE_DBFS }
    }

    pub fn validate(&self) -> std::result::Result<(), String> {
        if !(self.window_s > 0.0 && self.window_s.is_finite()) {
            return Err(format!("window must be a positive number of seconds, got {}", self.window_s));
        }
        if !(self.hop_s > 0.0 && self.hop_s.is_finite()) {
            return Err(format!("hop must be a positive number of seconds, got {}", self.hop_s));
        }
        Ok(())
    }
}

/// One window of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Segment {
    pub start_s: f64,
    pub end_s: f64,
    /// RMS level of the window in dB full scale.
    pub level_dbfs: f64,
    /// `None` for a silent window.
    pub prediction: Option<Prediction>,
}

/// RMS level in dB full scale (-inf dB is reported as -200).
pub fn level_dbfs(samples: &[f32]) -> f64 {
    if samples.is_empty() {
        return -200.0;
    }
    let mean_square = samples.iter().map(|&s| (s as f64) * (s as f64)).sum::<f64>() / samples.len() as f64;
    if mean_square <= 0.0 { -200.0 } else { (10.0 * mean_square.log10()).max(-200.0) }
}

/// Window bounds in samples: starts at 0, hop, 2 hop, ... while a whole window fits, then one
/// window ending at the end so the tail is covered. A recording shorter than a window is one
/// window.
pub fn windows(n_samples: usize, sample_rate: u32, config: &TimelineConfig) -> Vec<(usize, usize)> {
    let window = ((config.window_s * sample_rate as f64).round() as usize).max(1);
    let hop = ((config.hop_s * sample_rate as f64).round() as usize).max(1);
    if n_samples <= window {
        return vec![(0, n_samples)];
    }
    let mut out = Vec::new();
    let mut start = 0;
    while start + window <= n_samples {
        out.push((start, start + window));
        start += hop;
    }
    if out.last().is_some_and(|&(_, end)| end < n_samples) {
        out.push((n_samples - window, n_samples));
    }
    out
}

/// Classifies every window of `samples` (mono, at `sample_rate`). Windows are independent: the
/// same window gives the same answer here and in the stream mode.
pub fn timeline(
    classifier: &Classifier,
    samples: &[f32],
    sample_rate: u32,
    config: &TimelineConfig,
) -> Result<Vec<Segment>> {
    config.validate().map_err(crate::Error::Invalid)?;
    let bounds = windows(samples.len(), sample_rate, config);
    let mut segments: Vec<Segment> = Vec::with_capacity(bounds.len());
    let mut loud = Vec::new();
    for &(start, end) in &bounds {
        let level = level_dbfs(&samples[start..end]);
        if level >= config.silence_dbfs {
            loud.push((segments.len(), &samples[start..end]));
        }
        segments.push(Segment {
            start_s: start as f64 / sample_rate as f64,
            end_s: end as f64 / sample_rate as f64,
            level_dbfs: level,
            prediction: None,
        });
    }
    let clips: Vec<(&[f32], u32)> = loud.iter().map(|(_, s)| (*s, sample_rate)).collect();
    for ((index, _), result) in loud.iter().zip(classifier.predict_many(&clips)) {
        segments[*index].prediction = Some(result.map_err(|e| {
            crate::Error::Invalid(format!(
                "window {:.2}-{:.2} s: {e}",
                segments[*index].start_s, segments[*index].end_s
            ))
        })?);
    }
    Ok(segments)
}
