//! Decoding: every supported encoding and container, found from the bytes, and a clear error for
//! every bad input.

use std::io::Cursor;

use proptest::prelude::*;
use ser_features::FeaturesConfig;
use ser_features::audio::{AudioError, decode_audio, encode_wav_i16, load_for_analysis, resample};
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
    let audio = decode_audio(&bytes, 10.0).unwrap();
    assert_eq!(audio.sample_rate, 16_000);
    assert_eq!(audio.n_channels, channels);
    assert_eq!(audio.samples.len(), 400);
    if (bits, format, channels) == (16, hound::SampleFormat::Int, 1) {
        // 16-bit PCM is scaled exactly as before (i16 / 32768), so features stay bit-identical.
        let raw: Vec<f32> =
            bytes[44..].chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0).collect();
        assert_eq!(audio.samples, raw);
    }
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
    let err = decode_audio(bytes, 30.0).unwrap_err();
    let message = err.to_string();
    assert!(message.contains(expect), "`{message}` does not mention `{expect}`");
}

#[test]
fn empty_file_is_an_error() {
    check_error(b"", "empty file");
}
#[test]
fn text_file_is_not_audio() {
    check_error(b"hello, this is not audio at all", "not an audio file this build decodes");
}
#[test]
fn a_broken_flac_or_mp3_header_is_an_error() {
    let flac = decode_audio(b"fLaC\0\0\0\x22rest of a flac stream", 30.0).unwrap_err().to_string();
    assert!(flac.contains("not an audio file") || flac.contains("reading the audio"), "{flac}");
    let mp3 = decode_audio(b"ID3\x04\0\0\0\0\0\0more bytes here", 30.0).unwrap_err().to_string();
    assert!(mp3.contains("not an audio file") || mp3.contains("no audio samples"), "{mp3}");
}

/// The fixtures of `tests/data/formats` (made by `make_formats.sh` there): half a second of a
/// 440 Hz sine at 16 kHz, amplitude 1/16 (ffmpeg's sine source is 1/8, halved), in every encoding. Each decodes to the tone: the rate,
/// about 8000 samples (lossy codecs add priming and padding), its level and its frequency.
#[track_caller]
fn check_fixture(name: &str, channels: u16, exact_length: bool, level_tolerance_db: f64) {
    // ffmpeg upmixes the mono tone to stereo at -3 dB a channel; the mean of the two is that.
    let level_db = if channels == 2 { -30.10 } else { -27.09 };
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/formats").join(name);
    let audio = decode_audio(&std::fs::read(&path).unwrap(), 10.0).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!((audio.sample_rate, audio.n_channels), (16_000, channels), "{name}");
    if exact_length {
        assert_eq!(audio.samples.len(), 8000, "{name}");
    } else {
        assert!((7000..=10_000).contains(&audio.samples.len()), "{name}: {} samples", audio.samples.len());
    }
    // Away from the edges: the tone's RMS ((1/16) / sqrt 2, -27.09 dBFS, for mono) and 440 Hz
    // (880 sign changes a second).
    let middle = &audio.samples[2000..6000];
    let rms_db = 10.0 * (middle.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / middle.len() as f64).log10();
    assert!((rms_db - level_db).abs() < level_tolerance_db, "{name}: {rms_db:.2} dBFS");
    let crossings = middle.windows(2).filter(|w| (w[0] >= 0.0) != (w[1] >= 0.0)).count();
    assert!((crossings as f64 - 220.0).abs() <= 4.0, "{name}: {crossings} sign changes in 0.25 s");
}

#[test]
fn wav_in_every_encoding() {
    check_fixture("pcm_u8.wav", 1, true, 0.2);
    check_fixture("pcm_s24le.wav", 1, true, 0.01);
    check_fixture("pcm_f64le.wav", 1, true, 0.01);
    check_fixture("alaw.wav", 1, true, 0.2);
    check_fixture("mulaw.wav", 1, true, 0.2);
    check_fixture("adpcm_ima.wav", 1, false, 0.3);
    check_fixture("extensible.wav", 2, true, 0.01);
}

#[test]
fn other_containers_and_codecs() {
    check_fixture("tone.aiff", 1, true, 0.01);
    check_fixture("tone.flac", 1, true, 0.01);
    check_fixture("tone.mp3", 1, false, 0.5);
    check_fixture("tone.ogg", 1, false, 0.5);
    check_fixture("tone.m4a", 1, false, 0.5);
}

#[test]
fn the_format_comes_from_the_bytes_not_the_name() {
    // AIFF behind a .wav name, as some public corpora ship it.
    check_fixture("aiff_named.wav", 1, true, 0.01);
}
/// Features of a fixture at the reference recipe.
fn fixture_features(name: &str) -> Vec<f32> {
    let config = FeaturesConfig::reference();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/formats").join(name);
    let (_, samples) = load_for_analysis(&std::fs::read(&path).unwrap(), config.sample_rate, config.n_fft, 10.0)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    Analyzer::new(&config).features(&samples).matrix.values
}

#[test]
fn lossless_encodings_give_the_features_of_the_wav_original() {
    let original = fixture_features("pcm_s16le.wav");
    // The same 16-bit samples in other containers and wider encodings (the stereo extensible
    // fixture is an upmix, at -3 dB a channel, so it is not among them).
    for name in ["tone.flac", "tone.aiff", "aiff_named.wav", "pcm_s24le.wav", "pcm_f64le.wav"] {
        let features = fixture_features(name);
        assert_eq!(features.len(), original.len(), "{name}");
        let worst = features.iter().zip(&original).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 1e-5, "{name}: features differ from the WAV original's by {worst}");
    }
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
    let err = decode_audio(&bytes[..30], 30.0).unwrap_err().to_string();
    assert!(
        err.contains("not an audio file") || err.contains("no audio samples") || err.contains("truncated"),
        "{err}"
    );
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
    let err = decode_audio(&bytes, 2.0).unwrap_err();
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

/// Every committed fixture format, read once: the seeds of the mutation test.
fn fixtures() -> &'static [(String, Vec<u8>)] {
    static FIXTURES: std::sync::OnceLock<Vec<(String, Vec<u8>)>> = std::sync::OnceLock::new();
    FIXTURES.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/formats");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e != "sh"))
            .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
            .collect();
        files.sort();
        assert!(files.len() >= 14, "fixtures missing from {}", dir.display());
        files
    })
}

/// Runs the decode -> features path on `bytes` on its own thread, and fails the case when it
/// panics or takes longer than a generous bound (a decoder stuck in a loop).
fn extract_within_limit(bytes: Vec<u8>) -> Result<(), TestCaseError> {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let analyzer = Analyzer::new(&FeaturesConfig::reference());
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            extract_clip(&bytes, &clip(), &analyzer).map(|_| ())
        }));
        let _ = done.send(outcome.map(|r| r.map_err(|e| e.to_string())));
    });
    match finished.recv_timeout(std::time::Duration::from_secs(30)) {
        Ok(Ok(Ok(()))) => Ok(()),
        // A failure is an error that says what is wrong, never an empty message.
        Ok(Ok(Err(message))) => {
            prop_assert!(!message.trim().is_empty());
            Ok(())
        }
        Ok(Err(_)) => Err(TestCaseError::fail("the decode -> features path panicked")),
        Err(_) => Err(TestCaseError::fail("the decode -> features path ran past 30 s")),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    // Every format's decoder on mutated files: bytes overwritten anywhere (the header more often),
    // runs inserted or cut, the tail cut off. Nothing panics or hangs; failures are errors.
    #[test]
    fn mutated_files_of_every_format_never_panic_or_hang(
        which in 0usize..64,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..12),
        header_flips in proptest::collection::vec((0usize..96, any::<u8>()), 0..6),
        splice in proptest::option::of((any::<prop::sample::Index>(), proptest::collection::vec(any::<u8>(), 0..256), 0usize..256)),
        keep in any::<prop::sample::Index>(),
    ) {
        let files = fixtures();
        let mut bytes = files[which % files.len()].1.clone();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        for (i, value) in header_flips {
            if i < bytes.len() { bytes[i] = value; }
        }
        if let Some((at, insert, remove)) = splice {
            let i = at.index(bytes.len());
            let end = (i + remove).min(bytes.len());
            bytes.splice(i..end, insert);
        }
        if !bytes.is_empty() {
            bytes.truncate(keep.index(bytes.len()) + 1);
        }
        extract_within_limit(bytes)?;
    }

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
