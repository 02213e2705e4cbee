//! Decoding audio to mono f32 samples (symphonia: the format is found from the bytes), resampling,
//! and writing 16-bit WAV. Functions of values: the caller reads the file
//! ([`crate::io::read_audio_file`]) and wraps any [`AudioError`] with its path.

use std::io::Cursor;

use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler, WindowFunction};
use symphonia::core::codecs::audio::{AudioDecoder as AudioDecoderTrait, AudioDecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;

/// Why a piece of audio cannot be used. Says what is wrong, never where: callers add the path.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AudioError {
    #[error("empty file")]
    Empty,
    #[error(
        "not an audio file this build decodes ({0}); it reads WAV, AIFF, FLAC, MP3, Ogg Vorbis, AAC in MP4/M4A and CAF \
         whatever the file is called; convert other formats, e.g. `ffmpeg -i in.ext out.wav`"
    )]
    NotAudio(String),
    #[error("unsupported encoding: {0}; convert it, e.g. `ffmpeg -i in.ext -c:a pcm_s16le out.wav`")]
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
    #[error("reading the audio: {0}")]
    Read(String),
}

pub use crate::config::SAMPLE_RATES;

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

    /// Audio a caller already holds as samples (interleaved when `n_channels` > 1, in [-1, 1]),
    /// checked as [`decode_audio`] checks a file's and averaged to mono the same way: refused
    /// when empty, at a rate outside [`SAMPLE_RATES`], with a NaN or infinite sample, or longer
    /// than `max_duration_s`.
    pub fn from_samples(
        interleaved: &[f32],
        n_channels: u16,
        sample_rate: u32,
        max_duration_s: f32,
    ) -> Result<Audio, AudioError> {
        check_sample_rate(sample_rate)?;
        if n_channels == 0 || interleaved.len() < n_channels as usize {
            return Err(AudioError::NoSamples);
        }
        if let Some(i) = first_non_finite(interleaved) {
            return Err(AudioError::NonFinite { frame: i / n_channels as usize });
        }
        let seconds = (interleaved.len() / n_channels as usize) as f64 / sample_rate as f64;
        if seconds > max_duration_s as f64 {
            return Err(AudioError::TooLong { seconds, max_seconds: max_duration_s });
        }
        let mut samples = Vec::with_capacity(interleaved.len() / n_channels as usize);
        downmix(interleaved, n_channels as usize, &mut samples);
        Ok(Audio { samples, sample_rate, n_channels })
    }
}

/// An audio stream being decoded (symphonia): any container and codec it knows, detected from
/// the bytes, never from a file name. [`AudioDecoder::next_chunk`] gives the samples as they are
/// decoded, averaged to mono as librosa does; integers are scaled to [-1, 1) as libsndfile does
/// (divide by 2^(bits-1)).
pub struct AudioDecoder<'s> {
    format: Box<dyn FormatReader + 's>,
    decoder: Box<dyn AudioDecoderTrait>,
    track_id: u32,
    pub sample_rate: u32,
    pub n_channels: u16,
    /// Frames the container announces, when it does.
    pub n_frames: Option<u64>,
    frames_read: u64,
    interleaved: Vec<f32>,
}

impl<'s> AudioDecoder<'s> {
    /// Opens a stream: finds its format and first audio track, and checks its sample rate.
    pub fn open(source: Box<dyn MediaSource + 's>) -> Result<AudioDecoder<'s>, AudioError> {
        let stream = MediaSourceStream::new(source, Default::default());
        let format = symphonia::default::get_probe()
            .probe(&Hint::new(), stream, FormatOptions::default(), MetadataOptions::default())
            .map_err(|e| match e {
                SymphoniaError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    AudioError::NotAudio("it ends before any known header does".into())
                }
                other => AudioError::NotAudio(other.to_string()),
            })?;
        let track = format
            .default_track(TrackType::Audio)
            .ok_or_else(|| AudioError::NotAudio("it holds no audio track".into()))?;
        let params = track
            .codec_params
            .as_ref()
            .and_then(|p| p.audio())
            .ok_or_else(|| AudioError::NotAudio("its track has no audio parameters".into()))?;
        let sample_rate = params.sample_rate.ok_or_else(|| AudioError::Unsupported("no sample rate".into()))?;
        check_sample_rate(sample_rate)?;
        let n_channels = params.channels.as_ref().map_or(0, |c| c.count()) as u16;
        if n_channels == 0 {
            return Err(AudioError::Unsupported("zero channels".into()));
        }
        let decoder = symphonia::default::get_codecs()
            .make_audio_decoder(params, &AudioDecoderOptions::default())
            .map_err(|e| AudioError::Unsupported(e.to_string()))?;
        let (track_id, n_frames) = (track.id, track.num_frames);
        Ok(AudioDecoder {
            format,
            decoder,
            track_id,
            sample_rate,
            n_channels,
            n_frames,
            frames_read: 0,
            interleaved: Vec::new(),
        })
    }

    pub fn seconds(&self, frames: u64) -> f64 {
        frames as f64 / self.sample_rate as f64
    }

    /// The next decoded mono samples, or `None` at the end of the stream. A container that
    /// announced more frames than it held is [`AudioError::Truncated`].
    pub fn next_chunk(&mut self) -> Result<Option<Vec<f32>>, AudioError> {
        let mut chunk = Vec::new();
        Ok(self.append_next(&mut chunk)?.then_some(chunk))
    }

    /// Decodes the next packet that holds samples and appends them, in mono, to `out`; `false`
    /// at the end of the stream. What [`AudioDecoder::next_chunk`] does, without a buffer per
    /// packet: a mono stream is copied once, straight from the decoder into `out`.
    pub fn append_next(&mut self, out: &mut Vec<f32>) -> Result<bool, AudioError> {
        loop {
            let packet = match self.format.next_packet() {
                Ok(Some(packet)) => packet,
                // The end, or data that stops early: the frame count says which.
                Ok(None) | Err(SymphoniaError::ResetRequired) => return self.end(),
                Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return self.end(),
                Err(e) => return Err(AudioError::Read(e.to_string())),
            };
            if packet.track_id != self.track_id {
                continue;
            }
            let buffer = match self.decoder.decode(&packet) {
                Ok(buffer) => buffer,
                // A damaged packet is skipped, as players do; the frame count catches a gap.
                Err(SymphoniaError::DecodeError(_)) => continue,
                Err(e) => return Err(AudioError::Read(e.to_string())),
            };
            let channels = buffer.spec().channels().count().max(1);
            let start = out.len();
            if channels == 1 {
                out.resize(start + buffer.samples_interleaved(), 0.0);
                buffer.copy_to_slice_interleaved(&mut out[start..]);
            } else {
                self.interleaved.resize(buffer.samples_interleaved(), 0.0);
                buffer.copy_to_slice_interleaved(&mut self.interleaved[..]);
                downmix(&self.interleaved, channels, out);
            }
            if let Some(i) = first_non_finite(&out[start..]) {
                return Err(AudioError::NonFinite { frame: self.frames_read as usize + i });
            }
            self.frames_read += (out.len() - start) as u64;
            if out.len() > start {
                return Ok(true);
            }
        }
    }

    fn end(&self) -> Result<bool, AudioError> {
        match self.n_frames {
            Some(expected) if self.frames_read < expected => Err(AudioError::Truncated {
                expected: expected * self.n_channels as u64,
                got: self.frames_read * self.n_channels as u64,
            }),
            _ => Ok(false),
        }
    }
}

/// Decodes an audio file held in memory ([`AudioDecoder`]: WAV (PCM 8-32 bit, float 32/64,
/// A-law, mu-law, extensible), AIFF/AIFF-C, FLAC, MP3, Ogg Vorbis, AAC in MP4/M4A, CAF), any
/// channel count and sample rate. `max_duration_s` is checked from the header before any
/// sample is decoded when the container announces its length, and while decoding otherwise.
pub fn decode_audio(bytes: &[u8], max_duration_s: f32) -> Result<Audio, AudioError> {
    if bytes.is_empty() {
        return Err(AudioError::Empty);
    }
    let mut decoder = AudioDecoder::open(Box::new(Cursor::new(bytes)))?;
    let too_long = |seconds: f64| AudioError::TooLong { seconds, max_seconds: max_duration_s };
    if let Some(n) = decoder.n_frames
        && decoder.seconds(n) > max_duration_s as f64
    {
        return Err(too_long(decoder.seconds(n)));
    }
    let mut samples = Vec::with_capacity(decoder.n_frames.unwrap_or(0).min(1 << 28) as usize);
    while decoder.append_next(&mut samples)? {
        if decoder.seconds(samples.len() as u64) > max_duration_s as f64 {
            return Err(too_long(decoder.seconds(samples.len() as u64)));
        }
    }
    if samples.is_empty() {
        return Err(AudioError::NoSamples);
    }
    Ok(Audio { samples, sample_rate: decoder.sample_rate, n_channels: decoder.n_channels })
}

/// The index of the first NaN or infinite sample. A branch-free pass first (it vectorises); the
/// position only when there is one.
pub fn first_non_finite(samples: &[f32]) -> Option<usize> {
    if samples.iter().fold(true, |finite, s| finite & s.is_finite()) {
        return None;
    }
    samples.iter().position(|s| !s.is_finite())
}

/// Averages interleaved channels to mono, appending to `out`. A trailing partial frame is
/// dropped.
pub fn downmix(interleaved: &[f32], n_channels: usize, out: &mut Vec<f32>) {
    if n_channels == 1 {
        out.extend_from_slice(interleaved);
        return;
    }
    let inv = 1.0 / n_channels as f32;
    out.extend(interleaved.chunks_exact(n_channels).map(|frame| frame.iter().sum::<f32>() * inv));
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
    let audio = decode_audio(bytes, max_duration_s)?;
    let min_seconds = n_fft as f64 / sample_rate as f64;
    if audio.duration_s() < min_seconds {
        return Err(AudioError::TooShort { seconds: audio.duration_s(), min_seconds });
    }
    let resampled = resample(&audio.samples, audio.sample_rate, sample_rate)?;
    Ok((audio, resampled))
}

/// Encodes mono f32 samples as a 16-bit PCM WAV file in memory (hound: the synthetic corpus and
/// tests write WAV; decoding is symphonia's).
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
