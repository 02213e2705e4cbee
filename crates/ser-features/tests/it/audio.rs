//! Decoding: every supported encoding, and a clear error for every bad input.

use std::io::Cursor;

use proptest::prelude::*;
use ser_features::FeaturesConfig;
use ser_features::audio::{AudioError, decode_wav, encode_wav_i16, load_for_analysis, resample};
use ser_features::dsp::Analyzer;
use ser_features::extract::{ClipInput, extract_clip};
use ser_features::labels::{ClipMeta, Corpus};

fn wav(spec: hound::WavSpec, frames: usize, sample: impl Fn(usize, usize) -> f64) -> Vec<u8> {
    let mut bytes = Cursor::new(Vec::new());
    let mut writer = hound::WavWriter::new(&mut bytes, spec).unwrap();
    for i in 0..frames {
        for ch in 0..spec.channels as usize {
            let x = sample(i, ch);
            match spec.sample_format {
                hound::SampleFormat::Float => writer.write_sample(x as f32).unwrap(),
                hound::SampleFormat::Int => {
                    let scale = (1i64 << (spec.bits_per_sample - 1)) as f64;
                    writer.write_sample((x * scale).round().clamp(-scale, scale - 1.0) as i32).unwrap()
                }
            }
        }
    }
    writer.finalize().unwrap();
    bytes.into_inner()
}

fn spec(channels: u16, sample_rate: u32, bits: u16, format: hound::SampleFormat) -> hound::WavSpec {
    hound::WavSpec { channels, sample_rate, bits_per_sample: bits, sample_format: format }
}

#[track_caller]
fn check_decodes(bits: u16, format: hound::SampleFormat, channels: u16, tolerance: f64) {
    let bytes = wav(spec(channels, 16_000, bits, format), 400, |i, ch| {
        0.5 * ((i as f64) * 0.05).sin() * if ch == 0 { 1.0 } else { 0.5 }
    });
    let audio = decode_wav(&bytes, 10.0).unwrap();
    assert_eq!(audio.sample_rate, 16_000);
    assert_eq!(audio.n_channels, channels);
    assert_eq!(audio.samples.len(), 400);
    for (i, s) in audio.samples.iter().enumerate() {
        let x = 0.5 * ((i as f64) * 0.05).sin();
        let expect = (x + 0.5 * x * (channels - 1) as f64) / channels as f64;
        assert!((*s as f64 - expect).abs() <= tolerance, "sample {i}: {s} vs {expect}");
    }
}

#[test]
fn decodes_pcm8() {
    check_decodes(8, hound::SampleFormat::Int, 1, 1.0 / 100.0);
}
#[test]
fn decodes_pcm16() {
    check_decodes(16, hound::SampleFormat::Int, 1, 1.0 / 30_000.0);
}
#[test]
fn decodes_pcm24_stereo_to_mono_mean() {
    check_decodes(24, hound::SampleFormat::Int, 2, 1e-6);
}
#[test]
fn decodes_pcm32() {
    check_decodes(32, hound::SampleFormat::Int, 1, 1e-7);
}
#[test]
fn decodes_float32_with_six_channels() {
    check_decodes(32, hound::SampleFormat::Float, 6, 1e-6);
}

#[track_caller]
fn check_error(bytes: &[u8], expect: &str) {
    let err = decode_wav(bytes, 30.0).unwrap_err();
    let message = err.to_string();
    assert!(message.contains(expect), "`{message}` does not mention `{expect}`");
}

#[test]
fn empty_file_is_an_error() {
    check_error(b"", "empty file");
}
#[test]
fn text_file_is_not_wav() {
    check_error(b"hello, this is not audio at all", "not a RIFF/WAVE file");
}
#[test]
fn flac_is_named() {
    check_error(b"fLaC\0\0\0\x22rest of a flac stream", "FLAC");
}
#[test]
fn mp3_is_named() {
    check_error(b"ID3\x04\0\0\0\0\0\0more bytes here", "MP3");
}
#[test]
fn header_only_is_an_error() {
    let bytes = wav(spec(1, 16_000, 16, hound::SampleFormat::Int), 0, |_, _| 0.0);
    check_error(&bytes, "no audio samples");
}
#[test]
fn truncated_data_is_an_error() {
    let bytes = wav(spec(1, 16_000, 16, hound::SampleFormat::Int), 1000, |_, _| 0.1);
    check_error(&bytes[..bytes.len() - 500], "truncated data: header announces 1000 samples, file holds 750");
}
#[test]
fn truncated_24_bit_data_is_an_error() {
    let bytes = wav(spec(1, 16_000, 24, hound::SampleFormat::Int), 1000, |_, _| 0.1);
    check_error(&bytes[..bytes.len() - 300], "truncated data");
}
#[test]
fn truncated_header_is_an_error() {
    let bytes = wav(spec(1, 16_000, 16, hound::SampleFormat::Int), 1000, |_, _| 0.1);
    check_error(&bytes[..30], "not a RIFF/WAVE file");
}
#[test]
fn nan_samples_are_an_error() {
    let bytes = wav(spec(1, 16_000, 32, hound::SampleFormat::Float), 100, |i, _| if i == 42 { f64::NAN } else { 0.0 });
    check_error(&bytes, "non-finite sample (NaN or inf) at frame 42");
}
#[test]
fn absurd_sample_rate_is_an_error() {
    let bytes = wav(spec(1, 100, 16, hound::SampleFormat::Int), 100, |_, _| 0.0);
    check_error(&bytes, "sample rate 100 Hz");
}
#[test]
fn too_long_is_refused_from_the_header() {
    let bytes = wav(spec(1, 8_000, 16, hound::SampleFormat::Int), 8_000 * 3, |_, _| 0.0);
    let err = decode_wav(&bytes, 2.0).unwrap_err();
    assert!(matches!(err, AudioError::TooLong { .. }), "{err}");
}
#[test]
fn shorter_than_one_frame_is_an_error() {
    let bytes = encode_wav_i16(&vec![0.1; 1000], 22_050);
    let err = load_for_analysis(&bytes, 22_050, 2048, 60.0).unwrap_err();
    assert!(err.to_string().contains("shorter than one analysis frame"), "{err}");
}

#[test]
fn resampling_keeps_duration_and_a_tone() {
    let tone: Vec<f32> =
        (0..48_000).map(|i| (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 48_000.0).sin()).collect();
    let out = resample(&tone, 48_000, 22_050).unwrap();
    assert_eq!(out.len(), 22_050);
    // Away from the edges, the resampled tone is the same tone at the new rate.
    for (i, got) in out.iter().enumerate().take(2100).skip(2000) {
        let expect = (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 22_050.0).sin();
        assert!((got - expect).abs() < 1e-4, "sample {i}: {got} vs {expect}");
    }
}

#[test]
fn odd_sample_rates_resample() {
    for rate in [8_000, 11_025, 16_000, 22_051, 44_100, 96_000] {
        let n = rate as usize / 2;
        let out = resample(&vec![0.25; n], rate, 22_050).unwrap();
        assert_eq!(out.len(), (n as u64 * 22_050).div_ceil(rate as u64) as usize, "from {rate} Hz");
        // A constant stays constant away from the edges.
        assert!((out[out.len() / 2] - 0.25).abs() < 1e-3, "from {rate} Hz: {}", out[out.len() / 2]);
    }
}

fn clip() -> ClipInput {
    ClipInput {
        path: "x.wav".into(),
        table_path: "x.wav".into(),
        corpus: Corpus::Manifest,
        meta: ClipMeta { clip_id: "x".into(), speaker: "s".into(), ..ClipMeta::default() },
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    // No input panics the decode -> features path: arbitrary bytes, and arbitrary bytes behind a
    // valid-looking RIFF/WAVE header.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let analyzer = Analyzer::new(&FeaturesConfig::reference());
        let _ = extract_clip(&bytes, &clip(), &analyzer);
    }

    #[test]
    fn mangled_wav_headers_never_panic(
        cut in 0usize..2000,
        flips in proptest::collection::vec((0usize..60, any::<u8>()), 0..6),
        channels in 1u16..4,
        bits in prop_oneof![Just(8u16), Just(16), Just(24), Just(32)],
    ) {
        let mut bytes = wav(spec(channels, 22_050, bits, hound::SampleFormat::Int), 3000, |i, _| ((i % 50) as f64 / 50.0) - 0.5);
        for (pos, value) in flips {
            if pos < bytes.len() { bytes[pos] = value; }
        }
        bytes.truncate(bytes.len().saturating_sub(cut));
        let analyzer = Analyzer::new(&FeaturesConfig::reference());
        let _ = extract_clip(&bytes, &clip(), &analyzer);
    }
}
