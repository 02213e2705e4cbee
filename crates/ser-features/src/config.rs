//! The feature stage's configuration (`pipelines/<name>/features.yaml`) and the split
//! configuration (`pipelines/<name>/split.yaml`).
//!
//! Both are part of the file contracts: the feature config is stored, as JSON, in the metadata
//! of every feature table, and the model checkpoint copies it so that inference computes the
//! same features. Unknown keys are an error.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// The sample rates audio may come in, in Hz.
pub const SAMPLE_RATES: std::ops::RangeInclusive<u32> = 1000..=384_000;

/// The prosody channels, in the order they follow the spectral coefficients of a frame
/// ([`crate::prosody`] computes them).
pub const PROSODY_CHANNELS: [&str; 4] = ["f0_semitones", "f0_relative", "periodicity", "zero_crossing_rate"];

/// The pass band of the telephone channel, in Hz.
pub const TELEPHONE_BAND_HZ: (f32, f32) = (300.0, 3400.0);

/// The reverberation times a room may have, in seconds.
pub const RT60_RANGE_S: std::ops::RangeInclusive<f32> = 0.01..=10.0;

/// The deepest cut of [`crate::channel::trim`], in dB below the loudest frame.
pub const MAX_TRIM_DB: f32 = 120.0;

/// The lowest low-pass cutoff, in Hz: below it no speech is left.
pub const MIN_LOWPASS_HZ: f32 = 100.0;

/// One channel change, written (in `features.yaml`, on the command line and in file names) as
/// `telephone`, `lowpass_<hz>hz`, `noise_<snr>db`, `gain_<db>db`, `reverb_<rt60>s` or
/// `trim_<db>db`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Channel {
    /// A telephone line: 300-3400 Hz.
    Telephone,
    /// Everything above `hz` removed, as a low-bitrate codec's encoder does.
    Lowpass { hz: f32 },
    /// White noise at this signal-to-noise ratio, in dB.
    Noise { snr_db: f32 },
    /// The level moved by this many dB (-20: a quiet or distant microphone).
    Gain { db: f32 },
    /// A room: a generated impulse response whose tail decays 60 dB in `rt60_s` seconds, with as
    /// much energy as the direct sound; the result keeps the clip's RMS level.
    Reverb { rt60_s: f32 },
    /// The clip cut to its speech: leading and trailing audio more than `top_db` below its
    /// loudest frame removed, as corpora segmented by hand or by a voice-activity detector are
    /// (RAVDESS's clips hold about a second of room tone before and after the sentence).
    Trim { top_db: f32 },
}

/// A channel name that does not parse, with what would.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "channel `{0}`: expected telephone, lowpass_<hz>hz (e.g. lowpass_5500hz), noise_<snr>db (noise_10db), \
     gain_<db>db (gain_-20db), reverb_<rt60>s (reverb_0.5s) or trim_<db>db (trim_30db)"
)]
pub struct ChannelParseError(pub String);

impl FromStr for Channel {
    type Err = ChannelParseError;

    fn from_str(text: &str) -> std::result::Result<Channel, ChannelParseError> {
        let bad = || ChannelParseError(text.to_string());
        if text == "telephone" {
            return Ok(Channel::Telephone);
        }
        let (kind, value) = text.split_once('_').ok_or_else(bad)?;
        let number = |unit: &str| -> std::result::Result<f32, ChannelParseError> {
            let v: f32 = value.strip_suffix(unit).ok_or_else(bad)?.parse().map_err(|_| bad())?;
            if v.is_finite() { Ok(v) } else { Err(bad()) }
        };
        let channel = match kind {
            "lowpass" => Channel::Lowpass { hz: number("hz")? },
            "noise" => Channel::Noise { snr_db: number("db")? },
            "gain" => Channel::Gain { db: number("db")? },
            "reverb" => Channel::Reverb { rt60_s: number("s")? },
            "trim" => Channel::Trim { top_db: number("db")? },
            _ => return Err(bad()),
        };
        match channel {
            Channel::Lowpass { hz } if hz < MIN_LOWPASS_HZ => Err(bad()),
            Channel::Reverb { rt60_s } if !RT60_RANGE_S.contains(&rt60_s) => Err(bad()),
            Channel::Gain { db } if db.abs() > 120.0 => Err(bad()),
            Channel::Trim { top_db } if !(top_db > 0.0 && top_db <= MAX_TRIM_DB) => Err(bad()),
            _ => Ok(channel),
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Channel::Telephone => write!(f, "telephone"),
            Channel::Lowpass { hz } => write!(f, "lowpass_{hz}hz"),
            Channel::Noise { snr_db } => write!(f, "noise_{snr_db}db"),
            Channel::Gain { db } => write!(f, "gain_{db}db"),
            Channel::Reverb { rt60_s } => write!(f, "reverb_{rt60_s}s"),
            Channel::Trim { top_db } => write!(f, "trim_{top_db}db"),
        }
    }
}

impl serde::Serialize for Channel {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Channel {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Channel, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Channel {
    /// Whether this channel changes nothing at `sample_rate` (a low-pass at or above Nyquist).
    pub fn validate(&self, sample_rate: u32) -> std::result::Result<(), String> {
        match *self {
            Channel::Telephone if sample_rate as f32 <= 2.0 * TELEPHONE_BAND_HZ.1 => {
                Err(format!("telephone: sample_rate {sample_rate} Hz is already telephone bandwidth"))
            }
            Channel::Lowpass { hz } if 2.0 * hz >= sample_rate as f32 => {
                Err(format!("{self}: at sample_rate {sample_rate} Hz nothing lies above {hz} Hz"))
            }
            _ => Ok(()),
        }
    }
}

/// How the features of one clip are computed. Mirrors `librosa.feature.mfcc` and friends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeaturesConfig {
    /// Sample rate the audio is resampled to before analysis, in Hz (librosa: 22050).
    pub sample_rate: u32,
    /// FFT size in samples (librosa: 2048). Also the window length.
    pub n_fft: usize,
    /// Hop between frames in samples (librosa: 512).
    pub hop_length: usize,
    /// Number of mel bands (librosa: 128).
    pub n_mels: usize,
    /// Lowest mel band edge in Hz (librosa: 0).
    pub fmin: f32,
    /// Highest mel band edge in Hz; `null` means sample_rate / 2 (librosa's default).
    pub fmax: Option<f32>,
    /// Dynamic range kept by `power_to_db`, in dB (librosa: 80). `null` keeps everything.
    pub top_db: Option<f32>,
    /// What each frame holds.
    pub kind: FeatureKind,
    /// Number of MFCCs (librosa: 20, the reference: 40). Ignored for `log_mel`.
    pub n_mfcc: usize,
    /// Append delta and delta-delta coefficients (librosa.feature.delta, width 9).
    pub deltas: bool,
    /// Prosody appended to every frame after the spectral coefficients (and their deltas):
    /// pitch, relative pitch, periodicity and zero-crossing rate ([`crate::prosody`]); absent:
    /// none, as the reference. `normalize` leaves them as they are (none moves with the level).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prosody: Option<ProsodyConfig>,
    /// Fixed number of frames (pad or cut), or `null` to keep every frame of the clip.
    pub frames: Option<usize>,
    /// What fills the frames of a clip shorter than `frames`.
    pub pad: PadMode,
    /// Per-clip normalisation, before pad or cut (absent: none, as the reference).
    #[serde(default, skip_serializing_if = "ClipNorm::is_none")]
    pub normalize: ClipNorm,
    /// Trim leading and trailing audio quieter than this many dB below the clip's loudest frame
    /// before the features (`librosa.effects.trim(top_db=...)`, frames of `n_fft`, hop
    /// `hop_length`); absent: no trim, as the reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trim_db: Option<f32>,
    /// Scale each clip (after the trim) to this RMS level in dB full scale, e.g. -23; absent:
    /// as recorded, as the reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loudness_dbfs: Option<f32>,
    /// Files longer than this are rejected rather than decoded, in seconds.
    pub max_duration_s: f32,
    /// Augmented training copies of every clip (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub augment: Option<AudioAugment>,
    /// A channel change applied to every clip before its features ([`Channel`]:
    /// `telephone`, `lowpass_5500hz`, `noise_10db`, `gain_-20db`, `reverb_0.5s`), as the
    /// robustness suite hears the test clips; absent: the audio as recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    /// The label set, in class order. Absent: the corpus convention's eight emotions, or a
    /// manifest's own labels in sorted order, after `label_map`. A clip whose label is not in the
    /// set is left out (counted as excluded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    /// Corpus labels renamed (`calm: neutral`) or dropped (`boredom: null`) before the label set
    /// applies.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub label_map: std::collections::BTreeMap<String, Option<String>>,
}

/// Augmented copies of each clip, written as extra rows of the feature table (clip id
/// `<clip_id>~aug<k>`, `source_clip_id` naming the clip). Training takes a clip's copies with it;
/// validation, test and inference see originals only. Each copy is drawn from `(seed, clip id,
/// copy)`: a cut to the speech, speed perturbation, then a room, band-limiting, a low-pass,
/// noise and gain (see `augment`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioAugment {
    /// Copies per clip, besides the clip itself.
    pub copies: usize,
    pub seed: u64,
    /// Speed factors, one drawn per copy (e.g. `[0.9, 1.0, 1.1]`); empty: no speed change.
    #[serde(default)]
    pub speeds: Vec<f32>,
    /// Gain in dB, drawn uniformly from `[low, high]`.
    #[serde(default)]
    pub gain_db: Option<[f32; 2]>,
    /// White noise at a signal-to-noise ratio in dB drawn uniformly from `[low, high]`.
    #[serde(default)]
    pub snr_db: Option<[f32; 2]>,
    /// Probability that a copy is band-limited to telephone bandwidth (300-3400 Hz).
    #[serde(default)]
    pub telephone: f32,
    /// Probability that a copy loses what lies above a cutoff drawn uniformly from `lowpass_hz`
    /// (a low-bitrate codec, a cheap microphone).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lowpass: f32,
    /// The low-pass cutoffs in Hz, `[low, high]`; needed when `lowpass` is above 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lowpass_hz: Option<[f32; 2]>,
    /// Probability that a copy is heard in a room: one drawn for the copy, its tail decaying
    /// 60 dB in a time drawn uniformly from `reverb_rt60_s`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reverb: f32,
    /// The rooms' RT60 in seconds, `[low, high]`; needed when `reverb` is above 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverb_rt60_s: Option<[f32; 2]>,
    /// Probability that a copy is cut to its speech, as corpora segmented tight are: leading and
    /// trailing audio more than a level drawn uniformly from `trim_top_db` below the loudest
    /// frame removed (the channel `trim_<db>db`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub trim: f32,
    /// The cut's levels in dB below the loudest frame, `[low, high]`; needed when `trim` is above 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trim_top_db: Option<[f32; 2]>,
    /// Probability that a copy is heard as a voice of another vocal-tract length (VTLP): its
    /// spectrum stretched along frequency by a factor drawn uniformly from `vtlp_alpha` (above 1:
    /// formants and harmonics move up, as from a shorter vocal tract), tempo kept. Applied in the
    /// mel filterbank ([`crate::dsp::MelBasis::slaney_warped`]), so it warps the copy's channel
    /// and noise with the voice; the prosody channels, taken from the samples, keep the copy's
    /// pitch.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub vtlp: f32,
    /// The warp factors, `[low, high]` within [`VTLP_ALPHA_RANGE`]; needed when `vtlp` is above 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vtlp_alpha: Option<[f32; 2]>,
}

/// The warp factors `vtlp_alpha` may draw from: past them a voice no longer sounds like one.
pub const VTLP_ALPHA_RANGE: std::ops::RangeInclusive<f32> = 0.7..=1.4;

fn is_zero(p: &f32) -> bool {
    *p == 0.0
}

impl AudioAugment {
    fn validate(&self) -> Result<()> {
        let fail = |msg: String| Err(Error::Config(format!("augment.{msg}")));
        if self.copies == 0 {
            return fail("copies: give at least 1, or drop the augment block".into());
        }
        if let Some(s) = self.speeds.iter().find(|s| !(0.5..=2.0).contains(*s)) {
            return fail(format!("speeds: {s} is outside 0.5..=2.0"));
        }
        let ranges = [
            ("gain_db", self.gain_db),
            ("snr_db", self.snr_db),
            ("lowpass_hz", self.lowpass_hz),
            ("reverb_rt60_s", self.reverb_rt60_s),
            ("trim_top_db", self.trim_top_db),
            ("vtlp_alpha", self.vtlp_alpha),
        ];
        for (name, range) in ranges {
            if let Some([lo, hi]) = range
                && !(lo.is_finite() && hi.is_finite() && lo <= hi)
            {
                return fail(format!("{name}: [{lo}, {hi}] is not a range low <= high"));
            }
        }
        let probabilities = [
            ("telephone", self.telephone),
            ("lowpass", self.lowpass),
            ("reverb", self.reverb),
            ("trim", self.trim),
            ("vtlp", self.vtlp),
        ];
        for (name, p) in probabilities {
            if !(0.0..=1.0).contains(&p) {
                return fail(format!("{name}: {p} is a probability, in [0, 1]"));
            }
        }
        if self.lowpass > 0.0 && self.lowpass_hz.is_none() {
            return fail("lowpass_hz: give the cutoffs [low, high] in Hz that lowpass draws from".into());
        }
        let min_hz = MIN_LOWPASS_HZ;
        if let Some([lo, _]) = self.lowpass_hz
            && lo < min_hz
        {
            return fail(format!("lowpass_hz: {lo} Hz is below {min_hz} Hz, where no speech is left"));
        }
        if self.reverb > 0.0 && self.reverb_rt60_s.is_none() {
            return fail("reverb_rt60_s: give the RT60s [low, high] in seconds that reverb draws from".into());
        }
        let rt60 = RT60_RANGE_S;
        if let Some([lo, hi]) = self.reverb_rt60_s
            && !(rt60.contains(&lo) && rt60.contains(&hi))
        {
            return fail(format!("reverb_rt60_s: [{lo}, {hi}] must lie within {}..={} s", rt60.start(), rt60.end()));
        }
        if self.trim > 0.0 && self.trim_top_db.is_none() {
            return fail(
                "trim_top_db: give the levels [low, high] in dB below the loudest frame that trim draws from".into(),
            );
        }
        if let Some([lo, hi]) = self.trim_top_db
            && !(lo > 0.0 && hi <= MAX_TRIM_DB)
        {
            return fail(format!("trim_top_db: [{lo}, {hi}] must lie within (0, {}] dB", MAX_TRIM_DB));
        }
        if self.vtlp > 0.0 && self.vtlp_alpha.is_none() {
            return fail("vtlp_alpha: give the warp factors [low, high] that vtlp draws from (e.g. [0.9, 1.1])".into());
        }
        if let Some([lo, hi]) = self.vtlp_alpha
            && !(VTLP_ALPHA_RANGE.contains(&lo) && VTLP_ALPHA_RANGE.contains(&hi))
        {
            let range = VTLP_ALPHA_RANGE;
            return fail(format!("vtlp_alpha: [{lo}, {hi}] must lie within {}..={}", range.start(), range.end()));
        }
        Ok(())
    }
}

/// The pitch tracker of the prosody channels (`librosa.yin`'s parameters; its hop is the
/// features' `hop_length`, so its frames are the spectral frames).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProsodyConfig {
    /// Lowest pitch looked for, in Hz (speech: 60).
    pub fmin: f32,
    /// Highest pitch looked for, in Hz (speech: 500).
    pub fmax: f32,
    /// Samples per pitch frame (even; more than `sample_rate / fmin + 1`, ideally twice that).
    pub frame_length: usize,
}

impl ProsodyConfig {
    /// librosa.yin's checks; the message starts with the offending key.
    pub fn validate(&self, sample_rate: u32) -> std::result::Result<(), String> {
        let sr = sample_rate as f32;
        if !(self.fmin.is_finite() && self.fmin > 0.0 && self.fmin < self.fmax && self.fmax <= sr / 2.0) {
            return Err(format!(
                "fmin/fmax: need 0 < fmin < fmax <= sample_rate/2 ({}), got fmin {} fmax {}",
                sr / 2.0,
                self.fmin,
                self.fmax
            ));
        }
        if !self.frame_length.is_multiple_of(2) || self.frame_length < 4 || self.frame_length > 65_536 {
            return Err(format!("frame_length: {} must be even, in 4..=65536", self.frame_length));
        }
        if sr / self.fmin >= (self.frame_length - 1) as f32 {
            return Err(format!(
                "fmin: {} Hz does not fit one period into frame_length {} at {sample_rate} Hz; raise fmin to {:.1} or frame_length to {}",
                self.fmin,
                self.frame_length,
                sr / (self.frame_length - 1) as f32,
                2 * ((sr / self.fmin).ceil() as usize / 2 + 1)
            ));
        }
        if (sr / self.fmax).floor() < 1.0 || (sr / self.fmax).floor() as usize + 2 > self.frame_length - 1 {
            return Err(format!("fmax: {} Hz leaves no periods to search at {sample_rate} Hz", self.fmax));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    /// Mel-frequency cepstral coefficients (DCT-II, orthonormal, of the log-mel spectrogram).
    Mfcc,
    /// The log-mel spectrogram itself (`power_to_db(melspectrogram)`), `n_mels` values per frame.
    LogMel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PadMode {
    /// Zero feature frames, as the reference does. Note that a zero MFCC frame is not silence.
    Zeros,
    /// Frames of digital silence: the `top_db` floor of the clip, passed through the same DCT.
    Silence,
    /// The clip's own frames again, from its first, as often as it takes (numpy's `wrap`), so a
    /// short clip fills the input with speech and the network never sees padding, however short
    /// the corpus cuts its clips.
    Repeat,
}

/// Normalisation of each clip by its own statistics, so that inference on a new clip needs
/// nothing but the clip.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClipNorm {
    #[default]
    None,
    /// Subtract each coefficient's mean over the clip's frames (cepstral mean normalisation):
    /// removes the recording channel's and the speaker's constant colouring, and with it the
    /// clip's overall level. Padding comes after, so pad frames are the clip's mean.
    Mean,
    /// Subtract the clip's mean level only: the mean over its frames of c0 (MFCC; the one
    /// coefficient a change of gain moves) or of every band (log-mel). The spectral shape is
    /// kept; the recording level, which says more of the microphone than of the voice, is not.
    Level,
}

impl ClipNorm {
    pub fn is_none(&self) -> bool {
        *self == ClipNorm::None
    }
}

impl FeaturesConfig {
    /// The configuration of the reference: 40 MFCCs at 22050 Hz, cut or zero-padded to 174 frames.
    pub fn reference() -> FeaturesConfig {
        FeaturesConfig {
            sample_rate: 22_050,
            n_fft: 2048,
            hop_length: 512,
            n_mels: 128,
            fmin: 0.0,
            fmax: None,
            top_db: Some(80.0),
            kind: FeatureKind::Mfcc,
            n_mfcc: 40,
            deltas: false,
            prosody: None,
            frames: Some(174),
            pad: PadMode::Zeros,
            normalize: ClipNorm::None,
            trim_db: None,
            loudness_dbfs: None,
            max_duration_s: 600.0,
            augment: None,
            channel: None,
            labels: None,
            label_map: Default::default(),
        }
    }

    pub fn from_yaml(text: &str) -> Result<FeaturesConfig> {
        let config: FeaturesConfig = yaml_serde::from_str(text).map_err(|err| Error::Config(err.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the values against each other; the message names the offending key.
    pub fn validate(&self) -> Result<()> {
        let fail = |msg: String| Err(Error::Config(msg));
        if !SAMPLE_RATES.contains(&self.sample_rate) {
            return fail(format!("sample_rate: {} Hz is outside 1000..=384000", self.sample_rate));
        }
        if self.n_fft < 16 || self.n_fft > 65_536 {
            return fail(format!("n_fft: {} is outside 16..=65536", self.n_fft));
        }
        if self.hop_length == 0 || self.hop_length > self.n_fft {
            return fail(format!("hop_length: {} must be in 1..=n_fft ({})", self.hop_length, self.n_fft));
        }
        if self.n_mels == 0 || self.n_mels > self.n_fft / 2 + 1 {
            return fail(format!("n_mels: {} must be in 1..=n_fft/2+1", self.n_mels));
        }
        let fmax = self.fmax_hz();
        if !(self.fmin >= 0.0 && self.fmin < fmax && fmax <= self.sample_rate as f32 / 2.0) {
            return fail(format!(
                "fmin/fmax: need 0 <= fmin < fmax <= sample_rate/2, got fmin {} fmax {fmax}",
                self.fmin
            ));
        }
        if let Some(top_db) = self.top_db
            && !(top_db.is_finite() && top_db >= 0.0)
        {
            return fail(format!("top_db: {top_db} must be a non-negative number or null"));
        }
        if self.kind == FeatureKind::Mfcc && (self.n_mfcc == 0 || self.n_mfcc > self.n_mels) {
            return fail(format!("n_mfcc: {} must be in 1..=n_mels ({})", self.n_mfcc, self.n_mels));
        }
        if let Some(prosody) = &self.prosody {
            prosody.validate(self.sample_rate).map_err(|m| Error::Config(format!("prosody.{m}")))?;
        }
        if let Some(trim) = self.trim_db
            && !(trim.is_finite() && trim > 0.0)
        {
            return fail(format!("trim_db: {trim} must be a positive number of dB, or absent"));
        }
        if let Some(level) = self.loudness_dbfs
            && !(level.is_finite() && level < 0.0)
        {
            return fail(format!("loudness_dbfs: {level} must be a negative dB full-scale level, or absent"));
        }
        if self.frames == Some(0) {
            return fail("frames: must be positive, or null for variable length".into());
        }
        if !(self.max_duration_s.is_finite() && self.max_duration_s > 0.0) {
            return fail(format!("max_duration_s: {} must be positive", self.max_duration_s));
        }
        if let Some(labels) = &self.labels {
            if labels.is_empty() || labels.iter().any(|l| l.trim().is_empty()) {
                return fail("labels: give a non-empty list of non-empty labels, or drop the key".into());
            }
            if let Some(l) = labels.iter().enumerate().find(|(i, l)| labels[..*i].contains(l)).map(|(_, l)| l) {
                return fail(format!("labels: `{l}` is listed twice"));
            }
            if let Some(target) = self.label_map.values().flatten().find(|t| !labels.contains(t)) {
                return fail(format!("label_map: `{target}` is not in labels [{}]", labels.join(", ")));
            }
        }
        if let Some(augment) = &self.augment {
            augment.validate()?;
            if augment.telephone > 0.0 {
                Channel::Telephone.validate(self.sample_rate).map_err(|m| Error::Config(format!("augment.{m}")))?;
            }
            if let Some([_, hi]) = augment.lowpass_hz
                && augment.lowpass > 0.0
            {
                Channel::Lowpass { hz: hi }
                    .validate(self.sample_rate)
                    .map_err(|m| Error::Config(format!("augment.lowpass_hz: {m}")))?;
            }
        }
        if let Some(channel) = &self.channel {
            channel.validate(self.sample_rate).map_err(|m| Error::Config(format!("channel: {m}")))?;
        }
        Ok(())
    }

    pub fn fmax_hz(&self) -> f32 {
        self.fmax.unwrap_or(self.sample_rate as f32 / 2.0)
    }

    /// Values per frame before deltas.
    pub fn n_base_coeffs(&self) -> usize {
        match self.kind {
            FeatureKind::Mfcc => self.n_mfcc,
            FeatureKind::LogMel => self.n_mels,
        }
    }

    /// Values per frame in the feature table: the spectral coefficients, their deltas, then the
    /// prosody channels.
    pub fn n_coeffs(&self) -> usize {
        let prosody = if self.prosody.is_some() { PROSODY_CHANNELS.len() } else { 0 };
        self.n_base_coeffs() * if self.deltas { 3 } else { 1 } + prosody
    }

    /// Canonical JSON, the form stored in file metadata.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("FeaturesConfig serialises")
    }

    /// sha256 of the canonical JSON of what computes a clip's features (the config without
    /// `labels`, `label_map`, `augment` and `channel`): two tables with the same hash hold
    /// comparable features, so a checkpoint predicts any corpus extracted with its hash, whatever
    /// its labels or the channel its audio came through.
    pub fn hash(&self) -> String {
        let features_only = FeaturesConfig {
            labels: None,
            label_map: Default::default(),
            augment: None,
            channel: None,
            ..self.clone()
        };
        hex::encode(Sha256::digest(features_only.to_json().as_bytes()))
    }
}

/// How clips are divided into train, validation and test parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "snake_case")]
pub enum SplitConfig {
    /// Stratified by label: `test_fraction` of each class to test, then `val_fraction` of the
    /// rest of each class to validation.
    Random { test_fraction: f64, val_fraction: f64, seed: u64 },
    /// Named speakers held out for test and validation; everyone else trains.
    Speaker { test_speakers: Vec<String>, val_speakers: Vec<String> },
    /// k folds by speaker: fold i tests on the i-th group of speakers and validates on
    /// `val_speakers` speakers drawn from the remaining ones. Speakers are shuffled by seed.
    SpeakerKfold { k: usize, val_speakers: usize, seed: u64 },
    /// Named folds of test speakers (a published protocol's, e.g. EmoBox's): fold i tests on
    /// `folds[i]` and validates on `val_speakers` speakers drawn, by `seed`, from the speakers
    /// no fold of it tests, so validation never sees a test speaker. In a table of several
    /// corpora (speakers named `corpus/speaker`), `val_speakers` from each corpus.
    SpeakerFolds { folds: Vec<Vec<String>>, val_speakers: usize, seed: u64 },
    /// Whole corpora held out for test (`test_corpora`, by the table's `corpus` column), and
    /// `val_speakers` speakers of each other corpus, drawn by `seed`, for validation: the
    /// cross-corpus protocol.
    Corpus { test_corpora: Vec<String>, val_speakers: usize, seed: u64 },
    /// The `split` column of a manifest CSV (`path,label,speaker,split`), matched by file stem.
    Manifest { manifest: std::path::PathBuf },
    /// Every clip trains, none validates or tests: a deployment model (train it a fixed number
    /// of epochs, `early_stopping_on: none`). `cross_validation` names the pipeline whose folds
    /// chose its recipe and epoch count; `make eval` of this pipeline reports their figure.
    All { cross_validation: String },
}

impl SplitConfig {
    pub fn from_yaml(text: &str) -> Result<SplitConfig> {
        let config: SplitConfig = yaml_serde::from_str(text).map_err(|err| Error::Config(err.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<()> {
        let fail = |msg: String| Err(Error::Config(msg));
        match self {
            SplitConfig::Random { test_fraction, val_fraction, .. } => {
                if !(0.0..1.0).contains(test_fraction) || !(0.0..1.0).contains(val_fraction) {
                    return fail(format!(
                        "test_fraction {test_fraction} and val_fraction {val_fraction} must be in [0, 1)"
                    ));
                }
            }
            SplitConfig::Speaker { test_speakers, val_speakers } => {
                if test_speakers.is_empty() {
                    return fail("test_speakers: name at least one speaker".into());
                }
                if let Some(s) = test_speakers.iter().find(|s| val_speakers.contains(s)) {
                    return fail(format!("speaker {s} is in both test_speakers and val_speakers"));
                }
            }
            SplitConfig::SpeakerKfold { k, .. } => {
                if *k < 2 {
                    return fail(format!("k: {k} folds; need at least 2"));
                }
            }
            SplitConfig::SpeakerFolds { folds, val_speakers, .. } => {
                if folds.is_empty() || folds.iter().any(|f| f.is_empty()) {
                    return fail("folds: give at least one fold, each a non-empty list of test speakers".into());
                }
                let mut seen = std::collections::BTreeSet::new();
                for s in folds.iter().flatten() {
                    if !seen.insert(s) {
                        return fail(format!("folds: speaker {s} is in more than one fold"));
                    }
                }
                if *val_speakers == 0 {
                    return fail("val_speakers: each fold needs at least one validation speaker".into());
                }
            }
            SplitConfig::Corpus { test_corpora, val_speakers, .. } => {
                if test_corpora.is_empty() {
                    return fail("test_corpora: name at least one corpus to hold out".into());
                }
                if *val_speakers == 0 {
                    return fail("val_speakers: validation needs at least one speaker".into());
                }
            }
            SplitConfig::Manifest { .. } => {}
            SplitConfig::All { cross_validation } => {
                if cross_validation.trim().is_empty() {
                    return fail(
                        "cross_validation: name the pipeline whose folds chose this model's recipe and epochs".into(),
                    );
                }
            }
        }
        Ok(())
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("SplitConfig serialises")
    }

    /// The folds a split of this config has, each trained and scored apart: `Some(k)` for the
    /// fold kinds (`speaker_kfold`, `speaker_folds`), `None` for one train/val/test split
    /// (`all` included).
    pub fn n_folds(&self) -> Option<usize> {
        match self {
            SplitConfig::SpeakerKfold { k, .. } => Some(*k),
            SplitConfig::SpeakerFolds { folds, .. } => Some(folds.len()),
            _ => None,
        }
    }

    /// The config as the assignment of clips it makes: its JSON without what names no clip
    /// (`all`'s `cross_validation`, the pipeline its recipe came from). Two checkpoints whose
    /// splits have the same key, of the same table's clips, trained on the same fold's clips.
    pub fn assignment_key(&self) -> String {
        match self {
            SplitConfig::All { .. } => SplitConfig::All { cross_validation: String::new() }.to_json(),
            other => other.to_json(),
        }
    }
}
