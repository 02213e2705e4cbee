//! Decoding WAV bytes to mono f32 samples, and resampling. Pure functions of values: the caller
//! reads the file ([`crate::io::read_audio_file`]) and wraps any [`AudioError`] with its path.

use std::io::Cursor;

use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler, WindowFunction};

/// Why a piece of audio cannot be used. Says what is wrong, never where: callers add the path.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AudioError {
    #[error("empty file")]
    Empty,
    #[error("not a RIFF/WAVE file ({0}); convert it to WAV, e.g. `ffmpeg -i in.ext out.wav`")]
    NotWav(String),
    #[error("unsupported WAV encoding: {0}; use PCM 8/16/24/32-bit or 32-bit float")]
    Unsupported(String),
    #[error("truncated data: header announces {expected} samples, file holds {got}")]
    Truncated { expected: u64, got: u64 },
    #[error("no audio samples")]
    NoSamples,
    #[error("sample rate {0} Hz is outside 1000..=384000")]
    BadSampleRate(u32),
    #[error("non-finite sample (NaN or inf) at frame {frame}")]
    NonFinite { frame: usize },
    #[error("{seconds:.3} s is shorter than one analysis frame ({min_seconds:.3} s)")]
    TooShort { seconds: f64, min_seconds: f64 },
    #[error("{seconds:.1} s is longer than max_duration_s ({max_seconds} s); cut it, or raise max_duration_s")]
    TooLong { seconds: f64, max_seconds: f32 },
    #[error("resampling {from} Hz -> {to} Hz failed: {message}")]
    Resample { from: u32, to: u32, message: String },
}

/// The sample rates audio may come in, in Hz.
pub const SAMPLE_RATES: std::ops::RangeInclusive<u32> = 1000..=384_000;

/// Refuses sample rates outside [`SAMPLE_RATES`].
pub fn check_sample_rate(sample_rate: u32) -> Result<(), AudioError> {
    if SAMPLE_RATES.contains(&sample_rate) { Ok(()) } else { Err(AudioError::BadSampleRate(sample_rate)) }
}

/// Mono audio at a known sample rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    pub samples: Vec<f32>,
    pub sample_rate: u32,
    /// Channels in the source, before the downmix.
    pub n_channels: u16,
}

impl Audio {
    pub fn duration_s(&self) -> f64 {
        self.samples.len() as f64 / self.sample_rate as f64
    }
}

/// Decodes a WAV file held in memory: PCM 8/16/24/32-bit or 32-bit float, any channel count
/// (averaged to mono, as librosa does), any sample rate. Integer samples are scaled to [-1, 1)
/// exactly as libsndfile does (divide by 2^(bits-1)).
///
/// `max_duration_s` is checked from the header, before any sample is decoded.
pub fn decode_wav(bytes: &[u8], max_duration_s: f32) -> Result<Audio, AudioError> {
    if bytes.is_empty() {
        return Err(AudioError::Empty);
    }
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        let what = match bytes.get(0..4) {
            Some(b"fLaC") => "FLAC".to_string(),
            Some(b"OggS") => "Ogg".to_string(),
            Some([b'I', b'D', b'3', _]) => "MP3".to_string(),
            Some(b"RIFX") => "big-endian RIFX".to_string(),
            _ => "no RIFF/WAVE header".to_string(),
        };
        return Err(AudioError::NotWav(what));
    }
    let reader = hound::WavReader::new(Cursor::new(bytes)).map_err(hound_error)?;
    let spec = reader.spec();
    check_sample_rate(spec.sample_rate)?;
    let n_channels = spec.channels as usize;
    if n_channels == 0 {
        return Err(AudioError::Unsupported("zero channels".into()));
    }
    let n_samples = reader.len() as u64;
    let seconds = (n_samples / n_channels as u64) as f64 / spec.sample_rate as f64;
    if seconds > max_duration_s as f64 {
        return Err(AudioError::TooLong { seconds, max_seconds: max_duration_s });
    }
    let interleaved = read_samples(reader, spec, n_samples)?;
    if interleaved.len() < n_channels {
        return Err(AudioError::NoSamples);
    }
    let samples = downmix(&interleaved, n_channels);
    if let Some(frame) = samples.iter().position(|s| !s.is_finite()) {
        return Err(AudioError::NonFinite { frame });
    }
    Ok(Audio { samples, sample_rate: spec.sample_rate, n_channels: spec.channels })
}

fn hound_error(err: hound::Error) -> AudioError {
    match err {
        hound::Error::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            AudioError::NotWav("header ends early".into())
        }
        hound::Error::IoError(e) => AudioError::NotWav(e.to_string()),
        hound::Error::FormatError(msg) => AudioError::NotWav(msg.to_string()),
        hound::Error::Unsupported => AudioError::Unsupported("format not handled by the decoder".into()),
        hound::Error::TooWide => AudioError::Unsupported("samples wider than 32 bits".into()),
        hound::Error::InvalidSampleFormat => AudioError::Unsupported("invalid sample format".into()),
        other => AudioError::NotWav(other.to_string()),
    }
}

fn read_samples(
    reader: hound::WavReader<Cursor<&[u8]>>,
    spec: hound::WavSpec,
    n_samples: u64,
) -> Result<Vec<f32>, AudioError> {
    let truncated = |got: usize| AudioError::Truncated { expected: n_samples, got: got as u64 };
    match (spec.sample_format, spec.bits_per_sample) {
        // Fast path for the common case: little-endian i16 straight from the data chunk.
        (hound::SampleFormat::Int, 16) if (spec.bits_per_sample as usize).div_ceil(8) == 2 => {
            let cursor = reader.into_inner();
            let start = cursor.position() as usize;
            let data = &cursor.get_ref()[start.min(cursor.get_ref().len())..];
            let wanted = n_samples as usize;
            let available = data.len() / 2;
            if available < wanted {
                return Err(truncated(available));
            }
            Ok(data[..wanted * 2].chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0).collect())
        }
        (hound::SampleFormat::Int, bits @ 1..=32) => {
            let scale = 1.0 / (1u64 << (bits - 1)) as f64;
            let mut reader = reader;
            let mut out = Vec::with_capacity(n_samples.min(1 << 28) as usize);
            for sample in reader.samples::<i32>() {
                match sample {
                    Ok(v) => out.push((v as f64 * scale) as f32),
                    Err(hound::Error::IoError(_)) => return Err(truncated(out.len())),
                    Err(e) => return Err(hound_error(e)),
                }
            }
            Ok(out)
        }
        (hound::SampleFormat::Float, 32) => {
            let mut reader = reader;
            let mut out = Vec::with_capacity(n_samples.min(1 << 28) as usize);
            for sample in reader.samples::<f32>() {
                match sample {
                    Ok(v) => out.push(v),
                    Err(hound::Error::IoError(_)) => return Err(truncated(out.len())),
                    Err(e) => return Err(hound_error(e)),
                }
            }
            Ok(out)
        }
        (format, bits) => Err(AudioError::Unsupported(format!("{format:?} with {bits} bits per sample"))),
    }
}

/// Averages interleaved channels to mono. A trailing partial frame is dropped.
pub fn downmix(interleaved: &[f32], n_channels: usize) -> Vec<f32> {
    if n_channels == 1 {
        return interleaved.to_vec();
    }
    let inv = 1.0 / n_channels as f32;
    interleaved.chunks_exact(n_channels).map(|frame| frame.iter().sum::<f32>() * inv).collect()
}

/// Resamples mono audio with rubato's FFT resampler (band-limited, delay-compensated, output
/// length `ceil(len * to / from)`). Returns the input unchanged when the rates match.
pub fn resample(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>, AudioError> {
    if from == to {
        return Ok(samples.to_vec());
    }
    let fail = |message: String| AudioError::Resample { from, to, message };
    if samples.is_empty() {
        return Ok(Vec::new());
    }
    // Building a resampler designs its anti-aliasing filter; keep one per rate pair per thread.
    thread_local! {
        static RESAMPLERS: std::cell::RefCell<std::collections::HashMap<(u32, u32), Fft<f32>>> =
            std::cell::RefCell::new(std::collections::HashMap::new());
    }
    RESAMPLERS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if !cache.contains_key(&(from, to)) {
            // Odd rates from untrusted files must not pile up filters.
            if cache.len() >= 8 {
                cache.clear();
            }
            cache.insert((from, to), new_resampler(from, to).map_err(|e| fail(e.to_string()))?);
        }
        let resampler = cache.get_mut(&(from, to)).expect("inserted above");
        let input = InterleavedSlice::new(samples, 1, samples.len()).map_err(|e| fail(e.to_string()))?;
        // process_all resets the resampler first, so a cached one carries no state between clips.
        let output = resampler.process_all(&input, samples.len(), None).map_err(|e| fail(e.to_string()))?;
        Ok(output.take_data())
    })
}

/// rubato's FFT blocks are multiples of rate/gcd on each side, and its delay compensation is
/// half the output block, rounded down. Choose an even output block of at least ~1024 input
/// frames so the compensation is exact (no half-sample shift).
fn new_resampler(from: u32, to: u32) -> Result<Fft<f32>, rubato::ResamplerConstructionError> {
    let gcd = gcd(from as usize, to as usize);
    let (min_in, min_out) = (from as usize / gcd, to as usize / gcd);
    let mut blocks = 1024usize.div_ceil(min_in);
    if (blocks * min_out) % 2 == 1 {
        blocks += 1;
    }
    Fft::<f32>::new_custom(
        from as usize,
        to as usize,
        blocks * min_in,
        1,
        1,
        WindowFunction::BlackmanHarris2,
        FixedSync::Input,
    )
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Everything a feature extractor needs: decode, check, and bring to the analysis rate.
pub fn load_for_analysis(
    bytes: &[u8],
    sample_rate: u32,
    n_fft: usize,
    max_duration_s: f32,
) -> Result<(Audio, Vec<f32>), AudioError> {
    let audio = decode_wav(bytes, max_duration_s)?;
    let min_seconds = n_fft as f64 / sample_rate as f64;
    if audio.duration_s() < min_seconds {
        return Err(AudioError::TooShort { seconds: audio.duration_s(), min_seconds });
    }
    let resampled = resample(&audio.samples, audio.sample_rate, sample_rate)?;
    Ok((audio, resampled))
}

/// Encodes mono f32 samples as a 16-bit PCM WAV file in memory (used by the synthetic corpus
/// and by tests).
pub fn encode_wav_i16(samples: &[f32], sample_rate: u32) -> Vec<u8> {
    let spec =
        hound::WavSpec { channels: 1, sample_rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut bytes = Cursor::new(Vec::with_capacity(44 + samples.len() * 2));
    {
        let mut writer = hound::WavWriter::new(&mut bytes, spec).expect("in-memory WAV header");
        let mut i16_writer = writer.get_i16_writer(samples.len() as u32);
        for &s in samples {
            i16_writer.write_sample((s.clamp(-1.0, 1.0) * 32767.0).round() as i16);
        }
        i16_writer.flush().expect("in-memory WAV data");
        writer.finalize().expect("in-memory WAV finalize");
    }
    bytes.into_inner()
}
