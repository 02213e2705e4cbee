//! Long recordings as a timeline: sliding windows, each classified, silent ones marked. The
//! window settings ([`WindowSettings`] resolved to a [`TimelineConfig`]) and the window plan in
//! samples ([`WindowPlan`]) are defined here once; `stream` and the HTTP service use them too.

use serde::{Deserialize, Serialize};

use crate::{Classifier, Error, Prediction, Result};

/// Windows whose loudest stretch ([`SILENCE_STRETCH_S`]) is quieter than this RMS level (dB
/// full scale) are marked silent, unless told otherwise.
pub const DEFAULT_SILENCE_DBFS: f64 = -50.0;
/// The stretch of a window the silence rule hears: a window is silent when even its loudest
/// stretch this long is quieter than the threshold. A whole window's RMS counts its pauses too,
/// and called 12% of RAVDESS's clips silent (mostly calm and sad ones, spoken softly).
pub const SILENCE_STRETCH_S: f64 = 0.1;
/// The window of a checkpoint trained on variable-length features, in seconds.
pub const DEFAULT_WINDOW_S: f64 = 3.0;

/// Window and silence settings as a user gives them (flags, `infer.yaml`, an HTTP query): each
/// may be absent, and [`WindowSettings::resolve`] fills it in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSettings {
    pub window_s: Option<f64>,
    pub hop_s: Option<f64>,
    pub silence_dbfs: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapt: Option<Adapt>,
}

/// Test-time speaker normalisation ([`ser_model::predict::Centring`]): the windows' speech
/// frames standardised around their speaker's own mean frame instead of the training mean. It
/// needs no labels, only more than a clip of one speaker. Off unless asked: on speakers of the
/// corpora a model learned from it costs accuracy, on corpora it never heard it helped
/// (docs/results/cross-corpus.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Adapt {
    /// The training statistics, as the model learned them.
    #[default]
    Off,
    /// Each recording around its own loud windows: one speaker a recording.
    Recording,
    /// All the recordings of one call around their loud windows together: one speaker's files.
    Together,
}

/// An [`Adapt`] by its name, as flags and the Python package give it (the query string and the
/// config file read it through serde, by the same names).
impl std::str::FromStr for Adapt {
    type Err = String;

    fn from_str(value: &str) -> std::result::Result<Adapt, String> {
        serde_json::from_value(serde_json::Value::String(value.into()))
            .map_err(|_| format!("`{value}` is not one of off, recording, together"))
    }
}

impl WindowSettings {
    /// These settings, with `fallback`'s where these are absent.
    pub fn or(self, fallback: WindowSettings) -> WindowSettings {
        WindowSettings {
            window_s: self.window_s.or(fallback.window_s),
            hop_s: self.hop_s.or(fallback.hop_s),
            silence_dbfs: self.silence_dbfs.or(fallback.silence_dbfs),
            adapt: self.adapt.or(fallback.adapt),
        }
    }

    /// The settings for `classifier`: the window defaults to the checkpoint's input length, the
    /// hop to half the window, the silence level to [`DEFAULT_SILENCE_DBFS`].
    pub fn resolve(self, classifier: &Classifier) -> Result<TimelineConfig> {
        let window_s = self.window_s.unwrap_or_else(|| classifier.window_seconds().unwrap_or(DEFAULT_WINDOW_S));
        let config = TimelineConfig {
            window_s,
            hop_s: self.hop_s.unwrap_or(window_s / 2.0),
            silence_dbfs: self.silence_dbfs.unwrap_or(DEFAULT_SILENCE_DBFS),
            adapt: self.adapt.unwrap_or_default(),
        };
        config.validate().map_err(Error::Invalid)?;
        Ok(config)
    }
}

/// How a recording is cut into windows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TimelineConfig {
    /// Window length in seconds.
    pub window_s: f64,
    /// Step between window starts in seconds.
    pub hop_s: f64,
    /// Windows whose loudest stretch ([`SILENCE_STRETCH_S`]) has an RMS level below this many dB
    /// full scale are marked silent, not classified.
    pub silence_dbfs: f64,
    /// Whose speech the windows are standardised around ([`Adapt`]).
    pub adapt: Adapt,
}

impl TimelineConfig {
    /// The checkpoint's own window (its frame count), half-overlapping, silence below -50 dBFS.
    pub fn for_classifier(classifier: &Classifier) -> TimelineConfig {
        WindowSettings::default().resolve(classifier).expect("the defaults are valid")
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

/// The windows of a recording in samples at one sample rate. Regular windows start at 0, hop,
/// 2 hop, ... while a whole window fits; then one window ending at the end covers the tail. A
/// recording shorter than a window is one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowPlan {
    pub window: usize,
    pub hop: usize,
    pub sample_rate: u32,
}

impl WindowPlan {
    pub fn new(config: &TimelineConfig, sample_rate: u32) -> WindowPlan {
        let samples = |seconds: f64| ((seconds * sample_rate as f64).round() as usize).max(1);
        WindowPlan { window: samples(config.window_s), hop: samples(config.hop_s), sample_rate }
    }

    /// The regular window starting at `start`, if it lies within the first `available` samples.
    pub fn regular(&self, start: usize, available: usize) -> Option<(usize, usize)> {
        (start + self.window <= available).then_some((start, start + self.window))
    }

    /// The window that covers the tail of a recording of `n_samples`, after the regular windows
    /// (the last of them ending at `last_end`, `None` if there was none).
    pub fn tail(&self, n_samples: usize, last_end: Option<usize>) -> Option<(usize, usize)> {
        match last_end {
            None => (n_samples > 0).then_some((0, n_samples)),
            Some(end) if end < n_samples => Some((n_samples - self.window, n_samples)),
            Some(_) => None,
        }
    }

    /// Every window of a recording of `n_samples`.
    pub fn bounds(&self, n_samples: usize) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut start = 0;
        while let Some(w) = self.regular(start, n_samples) {
            out.push(w);
            start += self.hop;
        }
        out.extend(self.tail(n_samples, out.last().map(|w| w.1)));
        out
    }

    pub fn seconds(&self, sample: usize) -> f64 {
        sample as f64 / self.sample_rate as f64
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

/// RMS level in dB full scale of the signal around its mean, so that a constant offset (DC) counts
/// as the silence it is (-inf dB is reported as -200).
pub fn level_dbfs(samples: &[f32]) -> f64 {
    if samples.is_empty() {
        return -200.0;
    }
    let n = samples.len() as f64;
    let mean = lane_sum(samples, |s| s) / n;
    decibels(lane_sum(samples, |s| (s - mean) * (s - mean)) / n)
}

/// A mean square in dB full scale, -200 at the floor.
fn decibels(mean_square: f64) -> f64 {
    if mean_square <= 0.0 { -200.0 } else { (10.0 * mean_square.log10()).max(-200.0) }
}

/// The level of the loudest stretch of `samples` ([`SILENCE_STRETCH_S`] long, every half
/// stretch, and the last one ending at the end), as [`level_dbfs`]; of all of them when shorter.
/// One pass: each half stretch's sums, then each pair's level.
pub fn loudest_dbfs(samples: &[f32], sample_rate: u32) -> f64 {
    let half = ((SILENCE_STRETCH_S * sample_rate as f64 / 2.0).round() as usize).max(1);
    if samples.len() <= 2 * half {
        return level_dbfs(samples);
    }
    let blocks: Vec<(f64, f64, usize)> =
        samples.chunks(half).map(|b| (lane_sum(b, |s| s), lane_sum(b, |s| s * s), b.len())).collect();
    let pairs = blocks.windows(2).map(|w| dbfs(w[0].0 + w[1].0, w[0].1 + w[1].1, w[0].2 + w[1].2));
    pairs.fold(level_dbfs(&samples[samples.len() - 2 * half..]), f64::max)
}

/// The level in dB full scale of `n` samples around their mean, from their sum and sum of
/// squares.
fn dbfs(sum: f64, sum_of_squares: f64, n: usize) -> f64 {
    let mean = sum / n as f64;
    decibels(sum_of_squares / n as f64 - mean * mean)
}

/// The sum of `f` over the samples, in f64, over eight running sums so that the loop vectorises
/// (one running sum is a chain of dependent additions: most of a clip's level otherwise).
fn lane_sum(samples: &[f32], f: impl Fn(f64) -> f64) -> f64 {
    const LANES: usize = 8;
    let mut sums = [0f64; LANES];
    let chunks = samples.chunks_exact(LANES);
    let rest: f64 = chunks.remainder().iter().map(|&s| f(s as f64)).sum();
    for chunk in chunks {
        for (sum, &s) in sums.iter_mut().zip(chunk) {
            *sum += f(s as f64);
        }
    }
    sums.iter().sum::<f64>() + rest
}

/// A window's segment before classification: its span and level, and whether it is loud enough
/// to classify.
pub(crate) fn unclassified(
    plan: &WindowPlan,
    config: &TimelineConfig,
    (start, end): (usize, usize),
    samples: &[f32],
) -> (Segment, bool) {
    let level = level_dbfs(samples);
    let segment =
        Segment { start_s: plan.seconds(start), end_s: plan.seconds(end), level_dbfs: level, prediction: None };
    (segment, loudest_dbfs(samples, plan.sample_rate) >= config.silence_dbfs)
}

/// Names the window a classification error is about.
pub(crate) fn window_error(segment: &Segment, e: Error) -> Error {
    Error::Invalid(format!("window {:.2}-{:.2} s: {e}", segment.start_s, segment.end_s))
}

/// Classifies every window of `samples` (mono, at `sample_rate`). Windows are independent: the
/// same window gives the same answer here and in the stream mode.
pub fn timeline(
    classifier: &Classifier,
    samples: &[f32],
    sample_rate: u32,
    config: &TimelineConfig,
) -> Result<Vec<Segment>> {
    timeline_many(classifier, &[(samples, sample_rate)], config).remove(0)
}

/// The timelines of several recordings, their loud windows classified in one batch. One result
/// per recording, in order; a recording whose window fails fails alone.
pub fn timeline_many(
    classifier: &Classifier,
    recordings: &[(&[f32], u32)],
    config: &TimelineConfig,
) -> Vec<Result<Vec<Segment>>> {
    timeline_centred(classifier, recordings, config, None)
}

/// A window loud enough to classify: its recording, its segment there, its samples and rate.
type LoudWindow<'a> = (usize, usize, &'a [f32], u32);

/// The unclassified timeline of each recording, and every window loud enough to classify.
fn windows<'a>(recordings: &[(&'a [f32], u32)], config: &TimelineConfig) -> (Vec<Vec<Segment>>, Vec<LoudWindow<'a>>) {
    let mut timelines: Vec<Vec<Segment>> = Vec::with_capacity(recordings.len());
    let mut loud = Vec::new();
    for (r, (samples, sample_rate)) in recordings.iter().enumerate() {
        let plan = WindowPlan::new(config, *sample_rate);
        let mut segments = Vec::new();
        for bounds in plan.bounds(samples.len()) {
            let window = &samples[bounds.0..bounds.1];
            let (segment, classify) = unclassified(&plan, config, bounds, window);
            if classify {
                loud.push((r, segments.len(), window, *sample_rate));
            }
            segments.push(segment);
        }
        timelines.push(segments);
    }
    (timelines, loud)
}

/// Adds the speech frames of the loud windows of `recordings` to `mean`: one speaker's mean frame
/// ([`Adapt::Together`]) over more recordings than one call holds. Windows whose features fail
/// are left out; their recording reports the error when it is classified.
pub(crate) fn add_speech(
    mean: &mut ser_model::predict::MeanFrame,
    classifier: &Classifier,
    recordings: &[(&[f32], u32)],
    config: &TimelineConfig,
) {
    use rayon::prelude::*;
    let (_, loud) = windows(recordings, config);
    let features: Vec<crate::WindowFeatures> =
        loud.par_iter().filter_map(|(_, _, w, sr)| classifier.window_features(w, *sr).ok()).collect();
    let (t, c) = (classifier.checkpoint().n_frames(), classifier.checkpoint().n_coeffs());
    for w in &features {
        mean.add(&w.values, t, c, &[w.speech_frames]);
    }
}

/// Each window's speaker group under `adapt` (its recording's index, or one for all), for
/// [`Classifier::predict_grouped`]; `None` when off.
fn groups(adapt: Adapt, recordings: impl Iterator<Item = usize>) -> Option<Vec<usize>> {
    match adapt {
        Adapt::Off => None,
        Adapt::Recording => Some(recordings.collect()),
        Adapt::Together => Some(recordings.map(|_| 0).collect()),
    }
}

/// [`timeline_many`], with `Adapt::Together` around `centre` when given (a mean frame taken over
/// more recordings than these).
pub(crate) fn timeline_centred(
    classifier: &Classifier,
    recordings: &[(&[f32], u32)],
    config: &TimelineConfig,
    centre: Option<&[f32]>,
) -> Vec<Result<Vec<Segment>>> {
    if let Err(e) = config.validate() {
        return recordings.iter().map(|_| Err(Error::Invalid(e.clone()))).collect();
    }
    let (mut timelines, loud) = windows(recordings, config);
    let clips: Vec<(&[f32], u32)> = loud.iter().map(|(_, _, w, sr)| (*w, *sr)).collect();
    let groups = groups(config.adapt, loud.iter().map(|(r, ..)| *r));
    let mut failed: Vec<Option<Error>> = (0..recordings.len()).map(|_| None).collect();
    let answers = classifier.predict_grouped(&clips, groups.as_deref().map(|g| (g, centre)));
    for ((r, index, _, _), result) in loud.iter().zip(answers) {
        let segment = &mut timelines[*r][*index];
        match result {
            Ok(p) => segment.prediction = Some(p),
            Err(e) => {
                failed[*r].get_or_insert(window_error(segment, e));
            }
        }
    }
    timelines.into_iter().zip(failed).map(|(t, f)| f.map_or(Ok(t), Err)).collect()
}

/// A whole recording's answer: the mean of its loud windows' probabilities (`None` when every
/// window is silent), and how many windows there were.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recording {
    pub prediction: Option<Prediction>,
    pub windows: usize,
    pub silent_windows: usize,
    /// The span the windows cover, in seconds.
    pub start_s: f64,
    pub end_s: f64,
}

impl Recording {
    /// Sums up a timeline.
    pub fn from_segments(segments: &[Segment], labels: &[String]) -> Recording {
        let loud: Vec<&Prediction> = segments.iter().filter_map(|s| s.prediction.as_ref()).collect();
        let prediction = (!loud.is_empty()).then(|| {
            let mut mean = vec![0f32; labels.len()];
            for p in &loud {
                for (m, v) in mean.iter_mut().zip(&p.probabilities) {
                    *m += v / loud.len() as f32;
                }
            }
            Prediction::from_probabilities(labels, mean)
        });
        Recording {
            prediction,
            windows: segments.len(),
            silent_windows: segments.len() - loud.len(),
            start_s: segments.first().map_or(0.0, |s| s.start_s),
            end_s: segments.last().map_or(0.0, |s| s.end_s),
        }
    }
}

/// How much of a recording `predict` answers for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Span {
    /// Every window, the loud ones' probabilities averaged.
    #[default]
    Whole,
    /// The network's input from the start of the recording only (as the reference did): one
    /// window, silent when the first window is.
    FirstWindow,
}

/// The answers for whole recordings (mono, each at its rate), in one batch: one result per
/// recording, in order.
pub fn predict_recordings(
    classifier: &Classifier,
    recordings: &[(&[f32], u32)],
    config: &TimelineConfig,
    span: Span,
) -> Vec<Result<Recording>> {
    predict_recordings_centred(classifier, recordings, config, span, None)
}

/// [`predict_recordings`], with `Adapt::Together` around `centre` when given.
pub(crate) fn predict_recordings_centred(
    classifier: &Classifier,
    recordings: &[(&[f32], u32)],
    config: &TimelineConfig,
    span: Span,
    centre: Option<&[f32]>,
) -> Vec<Result<Recording>> {
    match span {
        Span::Whole => timeline_centred(classifier, recordings, config, centre)
            .into_iter()
            .map(|t| t.map(|segments| Recording::from_segments(&segments, classifier.labels())))
            .collect(),
        Span::FirstWindow => {
            let (firsts, classify): (Vec<Segment>, Vec<bool>) = recordings
                .iter()
                .map(|(samples, rate)| {
                    let plan = WindowPlan::new(config, *rate);
                    let bounds = (0, samples.len().min(plan.window));
                    unclassified(&plan, config, bounds, &samples[..bounds.1])
                })
                .unzip();
            let loud: Vec<usize> = (0..recordings.len()).filter(|&i| classify[i]).collect();
            let clips: Vec<(&[f32], u32)> = loud.iter().map(|&i| recordings[i]).collect();
            let mut results: Vec<Result<Recording>> = firsts
                .iter()
                .map(|s| Ok(Recording::from_segments(std::slice::from_ref(s), classifier.labels())))
                .collect();
            let groups = groups(config.adapt, loud.iter().copied());
            for (&i, prediction) in
                loud.iter().zip(classifier.predict_grouped(&clips, groups.as_deref().map(|g| (g, centre))))
            {
                results[i] = prediction.map(|p| {
                    let segment = Segment { prediction: Some(p), ..firsts[i].clone() };
                    Recording::from_segments(&[segment], classifier.labels())
                });
            }
            results
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{level_dbfs, loudest_dbfs};

    #[test]
    fn a_short_loud_stretch_in_a_quiet_window_is_not_silence() {
        // 0.2 s of a tone at -40 dBFS in 4 s of digital silence: the window's RMS is 13 dB lower
        // (-53 dBFS, silent by the default -50), its loudest 100 ms the tone's level.
        let sr = 16_000;
        let amplitude = 10f32.powf(-40.0 / 20.0) * std::f32::consts::SQRT_2;
        let mut samples = vec![0f32; 4 * sr as usize];
        for (i, s) in samples[sr as usize..sr as usize + 3_200].iter_mut().enumerate() {
            *s = amplitude * (i as f32 * 2.0 * std::f32::consts::PI * 200.0 / sr as f32).sin();
        }
        assert!((level_dbfs(&samples) + 53.0).abs() < 0.1, "{}", level_dbfs(&samples));
        assert!((loudest_dbfs(&samples, sr) + 40.0).abs() < 0.1, "{}", loudest_dbfs(&samples, sr));
        // The last stretch ends at the end; a window shorter than a stretch is one; silence is the floor.
        let mut tail = vec![0f32; 10_000];
        tail[9_990..].fill(0.5);
        assert!(loudest_dbfs(&tail, sr) > -40.0);
        assert_eq!(loudest_dbfs(&[0.0; 100], sr), level_dbfs(&[0.0; 100]));
        assert_eq!(loudest_dbfs(&vec![0.0; 50_000], sr), -200.0);
    }

    #[test]
    fn level_is_the_rms_around_the_mean_in_dbfs() {
        // A full-scale sine is -3.01 dBFS; half its amplitude 6.02 dB lower; an offset changes
        // nothing; a constant and nothing are the floor. 1003 samples: the sums' tail too.
        let sine: Vec<f32> = (0..1003).map(|i| (i as f32 * 2.0 * std::f32::consts::PI / 17.0).sin()).collect();
        let full = level_dbfs(&sine);
        assert!((full + 3.0103).abs() < 0.01, "{full}");
        let half: Vec<f32> = sine.iter().map(|s| 0.5 * s).collect();
        assert!((level_dbfs(&half) - (full - 6.0206)).abs() < 1e-6);
        let offset: Vec<f32> = half.iter().map(|s| s + 0.25).collect();
        assert!((level_dbfs(&offset) - level_dbfs(&half)).abs() < 1e-4);
        assert_eq!(level_dbfs(&[0.3; 1000]), -200.0);
        assert_eq!(level_dbfs(&[]), -200.0);
    }
}
