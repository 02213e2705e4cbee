//! Live audio: read WAV or raw PCM from any reader (stdin) and emit one timeline segment per
//! window as soon as the window is complete. Windows are those of [`WindowPlan`], so a stream
//! gives exactly the timeline of the same audio read as a file.

use std::io::Read;

use ser_features::audio::{AudioError, check_sample_rate};

use crate::timeline::{Segment, TimelineConfig, WindowPlan, unclassified, window_error};
use crate::{Classifier, Error, Result};

/// Raw PCM sample encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawEncoding {
    /// Signed 16-bit little-endian.
    S16Le,
    /// 32-bit float little-endian.
    F32Le,
}

impl RawEncoding {
    fn bytes(self) -> usize {
        match self {
            RawEncoding::S16Le => 2,
            RawEncoding::F32Le => 4,
        }
    }
}

/// What arrives on the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFormat {
    /// A WAV header, then its samples (hound); the data length may be unknown only as far as
    /// hound allows, so prefer raw PCM for endless streams.
    Wav,
    Raw {
        encoding: RawEncoding,
        sample_rate: u32,
        channels: u16,
    },
}

/// Totals of a finished stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSummary {
    pub sample_rate: u32,
    pub samples: usize,
    pub windows: usize,
}

struct Windower<'a, F> {
    classifier: &'a Classifier,
    config: TimelineConfig,
    plan: WindowPlan,
    buf: Vec<f32>,
    buf_start: usize,
    next_start: usize,
    last_end: Option<usize>,
    emitted: usize,
    emit: F,
}

impl<F: FnMut(Segment) -> std::io::Result<()>> Windower<'_, F> {
    fn segment(&mut self, bounds: (usize, usize)) -> Result<()> {
        let samples = &self.buf[bounds.0 - self.buf_start..bounds.1 - self.buf_start];
        let (mut segment, classify) = unclassified(&self.plan, &self.config, bounds, samples);
        if classify {
            let prediction = self.classifier.predict(samples, self.plan.sample_rate);
            segment.prediction = Some(prediction.map_err(|e| window_error(&segment, e))?);
        }
        (self.emit)(segment)?;
        self.emitted += 1;
        self.last_end = Some(bounds.1);
        Ok(())
    }

    fn push(&mut self, mono: &[f32]) -> Result<()> {
        self.buf.extend_from_slice(mono);
        let total = self.buf_start + self.buf.len();
        while let Some(bounds) = self.plan.regular(self.next_start, total) {
            self.segment(bounds)?;
            self.next_start += self.plan.hop;
        }
        // Keep the last window's worth: the tail window at the end may need it.
        let drain_to = self.next_start.min(total.saturating_sub(self.plan.window));
        if drain_to > self.buf_start {
            self.buf.drain(..drain_to - self.buf_start);
            self.buf_start = drain_to;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        let total = self.buf_start + self.buf.len();
        if let Some(bounds) = self.plan.tail(total, self.last_end) {
            self.segment(bounds)?;
        }
        Ok(())
    }
}

/// Reads audio from `reader` until it ends, calling `emit` for each window as it completes.
pub fn stream(
    classifier: &Classifier,
    reader: impl Read,
    format: StreamFormat,
    config: &TimelineConfig,
    emit: impl FnMut(Segment) -> std::io::Result<()>,
) -> Result<StreamSummary> {
    config.validate().map_err(Error::Invalid)?;
    let mut reader = std::io::BufReader::with_capacity(1 << 16, reader);
    let (sample_rate, channels) = match format {
        StreamFormat::Raw { sample_rate, channels, .. } => (sample_rate, channels),
        StreamFormat::Wav => (0, 0),
    };
    match format {
        StreamFormat::Raw { encoding, .. } => {
            check_sample_rate(sample_rate)?;
            if channels == 0 {
                return Err(Error::Invalid("channels must be at least 1".into()));
            }
            let mut w = windower(classifier, config, sample_rate, emit);
            let frame_bytes = encoding.bytes() * channels as usize;
            let mut bytes = vec![0u8; frame_bytes * 4096];
            let mut filled = 0;
            let mut mono = Vec::with_capacity(4096);
            let mut n_samples = 0;
            loop {
                let n = reader.read(&mut bytes[filled..])?;
                if n == 0 {
                    break;
                }
                filled += n;
                let whole = filled / frame_bytes * frame_bytes;
                mono.clear();
                for frame in bytes[..whole].chunks_exact(frame_bytes) {
                    let sum: f32 = frame
                        .chunks_exact(encoding.bytes())
                        .map(|b| match encoding {
                            RawEncoding::S16Le => i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0,
                            RawEncoding::F32Le => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                        })
                        .sum();
                    let sample = sum / channels as f32;
                    if !sample.is_finite() {
                        return Err(AudioError::NonFinite { frame: n_samples + mono.len() }.into());
                    }
                    mono.push(sample);
                }
                n_samples += mono.len();
                w.push(&mono)?;
                bytes.copy_within(whole..filled, 0);
                filled -= whole;
            }
            w.finish()?;
            Ok(StreamSummary { sample_rate, samples: n_samples, windows: w.emitted })
        }
        StreamFormat::Wav => {
            let wav = hound::WavReader::new(reader).map_err(|e| AudioError::NotWav(e.to_string()))?;
            let spec = wav.spec();
            check_sample_rate(spec.sample_rate)?;
            let channels = spec.channels.max(1) as usize;
            let mut w = windower(classifier, config, spec.sample_rate, emit);
            let mut frame = Vec::with_capacity(channels);
            let mut mono = Vec::with_capacity(4096);
            let mut n_samples = 0;
            let scale = match spec.sample_format {
                hound::SampleFormat::Int => 1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32,
                hound::SampleFormat::Float => 1.0,
            };
            let flush = |w: &mut Windower<_>, mono: &mut Vec<f32>| -> Result<()> {
                w.push(mono)?;
                mono.clear();
                Ok(())
            };
            let samples: Box<dyn Iterator<Item = hound::Result<f32>>> = match spec.sample_format {
                hound::SampleFormat::Float => Box::new(wav.into_samples::<f32>()),
                hound::SampleFormat::Int => {
                    Box::new(wav.into_samples::<i32>().map(move |s| s.map(|v| v as f32 * scale)))
                }
            };
            for sample in samples {
                let sample = sample.map_err(|e| AudioError::Unsupported(e.to_string()))?;
                frame.push(sample);
                if frame.len() == channels {
                    let m = frame.iter().sum::<f32>() / channels as f32;
                    frame.clear();
                    if !m.is_finite() {
                        return Err(AudioError::NonFinite { frame: n_samples }.into());
                    }
                    mono.push(m);
                    n_samples += 1;
                    if mono.len() == 4096 {
                        flush(&mut w, &mut mono)?;
                    }
                }
            }
            flush(&mut w, &mut mono)?;
            w.finish()?;
            Ok(StreamSummary { sample_rate: spec.sample_rate, samples: n_samples, windows: w.emitted })
        }
    }
}

fn windower<'a, F>(classifier: &'a Classifier, config: &TimelineConfig, sample_rate: u32, emit: F) -> Windower<'a, F> {
    Windower {
        classifier,
        config: *config,
        plan: WindowPlan::new(config, sample_rate),
        buf: Vec::new(),
        buf_start: 0,
        next_start: 0,
        last_end: None,
        emitted: 0,
        emit,
    }
}
