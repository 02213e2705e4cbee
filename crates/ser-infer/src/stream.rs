//! Live audio: read encoded audio (WAV, FLAC, MP3, Ogg: what ser-features decodes) or raw PCM
//! from any reader (stdin) and emit one timeline segment per
//! window as soon as the window is complete. Windows are those of [`WindowPlan`], so a stream
//! gives exactly the timeline of the same audio read as a file.

use std::io::Read;

use ser_features::audio::{AudioDecoder, AudioError, check_sample_rate};
use symphonia::core::io::ReadOnlySource;

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
    /// Bytes per sample.
    pub fn bytes(self) -> usize {
        match self {
            RawEncoding::S16Le => 2,
            RawEncoding::F32Le => 4,
        }
    }
}

/// What arrives on the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFormat {
    /// An audio stream in a container, decoded as it arrives: WAV (a length in the header that
    /// is too large, as live writers set, is fine), FLAC, MP3, Ogg.
    Encoded,
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
    reader: impl Read + Send + Sync,
    format: StreamFormat,
    config: &TimelineConfig,
    emit: impl FnMut(Segment) -> std::io::Result<()>,
) -> Result<StreamSummary> {
    config.validate().map_err(Error::Invalid)?;
    if config.adapt != crate::timeline::Adapt::Off {
        return Err(Error::Invalid(
            "adapt: a stream is classified window by window as it arrives, not around a whole recording's speech; \
             use timeline for that"
                .into(),
        ));
    }
    let mut reader = std::io::BufReader::with_capacity(1 << 16, reader);
    let (sample_rate, channels) = match format {
        StreamFormat::Raw { sample_rate, channels, .. } => (sample_rate, channels),
        StreamFormat::Encoded => (0, 0),
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
        StreamFormat::Encoded => {
            let mut decoder = AudioDecoder::open(Box::new(ReadOnlySource::new(reader)))?;
            let mut w = windower(classifier, config, decoder.sample_rate, emit);
            let mut n_samples = 0;
            loop {
                match decoder.next_chunk() {
                    Ok(Some(mono)) => {
                        n_samples += mono.len();
                        w.push(&mono)?;
                    }
                    Ok(None) => break,
                    // A live stream's header announces what it cannot know; what arrived counts.
                    Err(AudioError::Truncated { .. }) => break,
                    Err(e) => return Err(e.into()),
                }
            }
            w.finish()?;
            Ok(StreamSummary { sample_rate: decoder.sample_rate, samples: n_samples, windows: w.emitted })
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
