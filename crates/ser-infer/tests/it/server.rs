//! The HTTP service on loopback: answers, every bad input class, concurrency, shutdown.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use candle_core::Device;
use ser_features::synth::SYNTH_SAMPLE_RATE;
use ser_infer::Classifier;
use ser_infer::server::{ServeConfig, serve};
use ser_infer::timeline::{Span, TimelineConfig, predict_recordings};

use crate::{checkpoint, clip, wav_bytes};

struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(config: ServeConfig) -> Server {
        let classifier = Arc::new(Classifier::load(checkpoint(), &Device::Cpu).unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, addr) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                ready.send(listener.local_addr().unwrap()).unwrap();
                serve(listener, classifier, config, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
            });
        });
        Server { addr: addr.recv().unwrap(), stop: Some(stop), thread: Some(thread) }
    }

    /// One HTTP/1.1 request; returns (status, body as JSON).
    fn request(&self, method: &str, path: &str, content_type: Option<&str>, body: &[u8]) -> (u16, serde_json::Value) {
        let mut stream = TcpStream::connect(self.addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        if let Some(t) = content_type {
            head.push_str(&format!("Content-Type: {t}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        // A server may answer (413) before reading a huge body; a broken pipe is then fine.
        let _ = stream.write_all(body);
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        let text = String::from_utf8_lossy(&response);
        let status: u16 =
            text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status in {text:?}"));
        let (headers, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(headers.to_ascii_lowercase().contains("content-type: application/json"), "{headers}");
        (status, serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}")))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn small_limits() -> ServeConfig {
    ServeConfig {
        max_body_bytes: 2 << 20,
        max_predict_s: 8.0,
        max_timeline_s: 30.0,
        max_concurrent: 2,
        timeout: Duration::from_secs(30),
        ..ServeConfig::defaults()
    }
}

#[test]
fn answers_match_the_library() {
    let server = Server::start(small_limits());
    assert_eq!(server.request("GET", "/healthz", None, b""), (200, serde_json::json!({"status": "ok"})));
    let (status, model) = server.request("GET", "/v1/model", None, b"");
    assert_eq!(status, 200);
    assert_eq!(model["labels"].as_array().unwrap().len(), 8);
    assert_eq!(model["features_config"]["n_mfcc"], 13);
    assert_eq!(model["features_config"]["prosody"]["frame_length"], 1024);
    assert_eq!(model["n_coeffs"], 17, "13 MFCCs and 4 prosody channels");
    assert_eq!(model["members"].as_array().unwrap().len(), 1, "a trained checkpoint is one member");

    let classifier = Classifier::load(checkpoint(), &Device::Cpu).unwrap();
    let samples = clip(9, 6, 1);
    let wav = wav_bytes(&samples);
    // The library on the same decoded samples, every window.
    let audio = ser_features::audio::decode_audio(&wav, 60.0).unwrap();
    let config = TimelineConfig::for_classifier(&classifier);
    let expected = predict_recordings(&classifier, &[(&audio.samples, audio.sample_rate)], &config, Span::Whole)
        .remove(0)
        .unwrap();
    let expected_prediction = expected.prediction.clone().unwrap();
    let (status, answer) = server.request("POST", "/v1/predict", Some("audio/wav"), &wav);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["label"], expected_prediction.label.as_str());
    assert!((answer["confidence"].as_f64().unwrap() - expected_prediction.confidence as f64).abs() < 1e-6);
    assert_eq!((answer["windows"].as_u64(), answer["silent"].as_bool()), (Some(expected.windows as u64), Some(false)));
    assert_eq!(answer["sample_rate"], SYNTH_SAMPLE_RATE);
    // The first window only, on request.
    let first = classifier.predict_wav(&wav).unwrap();
    let (status, answer) = server.request("POST", "/v1/predict?first_window=true", Some("audio/wav"), &wav);
    assert_eq!((status, answer["windows"].as_u64()), (200, Some(1)));
    assert!((answer["confidence"].as_f64().unwrap() - first.confidence as f64).abs() < 1e-6);
    // Silence is said, not classified.
    let (status, answer) = server.request("POST", "/v1/predict", Some("audio/wav"), &wav_bytes(&[0.0; 96_000]));
    assert_eq!((status, answer["silent"].as_bool(), answer["label"].is_null()), (200, Some(true), true), "{answer}");
    // Other formats, found from the bytes.
    let flac = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ser-features/tests/data/formats/tone.flac"),
    )
    .unwrap();
    let (status, answer) = server.request("POST", "/v1/predict", Some("audio/flac"), &flac);
    assert_eq!((status, answer["sample_rate"].as_u64()), (200, Some(16_000)), "{answer}");

    // Concurrent requests give the same answers as single ones.
    let server = Arc::new(server);
    let clips: Vec<Vec<u8>> = (1..=8).map(|e| wav_bytes(&clip(9, e, 2))).collect();
    let single: Vec<serde_json::Value> =
        clips.iter().map(|w| server.request("POST", "/v1/predict", Some("audio/wav"), w).1).collect();
    let handles: Vec<_> = (0..16)
        .map(|i| {
            let (server, wav) = (server.clone(), clips[i % 8].clone());
            std::thread::spawn(move || (i % 8, server.request("POST", "/v1/predict", Some("audio/x-wav"), &wav)))
        })
        .collect();
    for handle in handles {
        let (i, (status, answer)) = handle.join().unwrap();
        assert_eq!(status, 200);
        assert_eq!(answer, single[i]);
    }

    let mut long = samples.clone();
    long.extend(vec![0.0; 2 * SYNTH_SAMPLE_RATE as usize]);
    long.extend(clip(9, 2, 1));
    let (status, timeline) =
        server.request("POST", "/v1/timeline?window=0.9&hop=0.45", Some("audio/wav"), &wav_bytes(&long));
    assert_eq!(status, 200, "{timeline}");
    let segments = timeline["segments"].as_array().unwrap();
    assert!(segments.iter().any(|s| s["silent"] == true && s["label"].is_null()));
    assert!(segments.iter().any(|s| s["silent"] == false && s["label"].is_string()));
}

/// A `multipart/form-data` body as a browser's form sends it: a text field, then the file.
fn form(boundary: &str, file_type: &str, file: &[u8], files: usize) -> Vec<u8> {
    let mut body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nmeeting, room 2\r\n")
        .into_bytes();
    for i in 0..files {
        body.extend(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"clip{i}.wav\"\r\n\
                 Content-Type: {file_type}\r\n\r\n"
            )
            .bytes(),
        );
        body.extend(file);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").bytes());
    body
}

#[test]
fn a_form_upload_gets_the_answer_of_the_raw_body() {
    let server = Server::start(small_limits());
    let wav = wav_bytes(&[clip(11, 4, 1), vec![0.0; 24_000], clip(11, 7, 2)].concat());
    let boundary = "----serFormBoundary7MA4YWxkTrZu0gW";
    let content_type = format!("multipart/form-data; boundary={boundary}");
    for path in ["/v1/predict", "/v1/timeline?window=0.9&hop=0.45"] {
        let raw = server.request("POST", path, Some("audio/wav"), &wav);
        assert_eq!(raw.0, 200, "{}", raw.1);
        let form_answer = server.request("POST", path, Some(&content_type), &form(boundary, "audio/wav", &wav, 1));
        assert_eq!(form_answer, raw, "{path}");
        // curl -F, as people upload a file (when this machine has curl).
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("clip.wav"), &wav).unwrap();
        let url = format!("http://{}{path}", server.addr);
        let curl = std::process::Command::new("curl")
            .args(["-sS", "-F", &format!("file=@{}", dir.path().join("clip.wav").display()), &url])
            .output();
        if let Ok(out) = curl {
            assert!(out.status.success(), "curl -F: {}", String::from_utf8_lossy(&out.stderr));
            let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(answer, raw.1, "curl -F {path}");
        }
    }
    // One audio file a form, under the same limits as a raw body.
    let ct = Some(content_type.as_str());
    check_error(&server, "/v1/predict", ct, &form(boundary, "audio/wav", &wav, 0), 400, "no file part");
    check_error(&server, "/v1/predict", ct, &form(boundary, "audio/wav", &wav, 2), 400, "more than one file");
    check_error(&server, "/v1/predict", ct, &form(boundary, "text/plain", &wav, 1), 415, "is not audio");
    check_error(&server, "/v1/predict", ct, b"--nothing-like-the-boundary\r\n", 400, "multipart/form-data");
    check_error(&server, "/v1/predict", Some("multipart/form-data"), &wav, 400, "multipart/form-data");
    let big = form(boundary, "audio/wav", &vec![0u8; 3 << 20], 1);
    check_error(&server, "/v1/predict", ct, &big, 413, "larger than the server's limit");
    let ten_seconds = wav_bytes(&vec![0.01; 10 * SYNTH_SAMPLE_RATE as usize]);
    check_error(
        &server,
        "/v1/predict",
        ct,
        &form(boundary, "audio/wav", &ten_seconds, 1),
        413,
        "longer than max_duration_s",
    );
}

#[track_caller]
fn check_error(server: &Server, path: &str, content_type: Option<&str>, body: &[u8], status: u16, needle: &str) {
    let (got, answer) = server.request("POST", path, content_type, body);
    assert_eq!(got, status, "{answer}");
    let message = answer["error"].as_str().unwrap_or_else(|| panic!("no error message: {answer}"));
    assert!(message.contains(needle), "`{needle}` not in `{message}`");
}

#[test]
fn bad_requests_get_json_errors() {
    let server = Server::start(small_limits());
    let wav = wav_bytes(&clip(10, 3, 1));
    check_error(&server, "/v1/predict", Some("audio/wav"), b"\x00garbage bytes\xff", 400, "not an audio file");
    check_error(&server, "/v1/predict", Some("audio/wav"), b"", 400, "empty body");
    check_error(&server, "/v1/predict", Some("audio/wav"), &wav[..wav.len() / 3], 400, "truncated");
    check_error(&server, "/v1/predict", Some("application/json"), &wav, 415, "is not audio");
    check_error(&server, "/v1/predict", Some("audio/wav"), &vec![0u8; 3 << 20], 413, "larger than the server's limit");
    let ten_seconds = wav_bytes(&vec![0.01; 10 * SYNTH_SAMPLE_RATE as usize]);
    check_error(&server, "/v1/predict", Some("audio/wav"), &ten_seconds, 413, "longer than max_duration_s");
    check_error(
        &server,
        "/v1/predict",
        Some("audio/wav"),
        &wav_bytes(&(0..200).map(|i| 0.1 * (i as f32 * 0.3).sin()).collect::<Vec<_>>()),
        422,
        "shorter than one analysis frame",
    );
    check_error(&server, "/v1/timeline?window=abc", Some("audio/wav"), &wav, 400, "query");
    check_error(&server, "/v1/timeline?window=0", Some("audio/wav"), &wav, 400, "window must be a positive");
    let (status, answer) = server.request("GET", "/v2/everything", None, b"");
    assert_eq!(status, 404);
    assert!(answer["error"].as_str().unwrap().contains("/v1/predict"));
    // Still healthy after all that.
    assert_eq!(server.request("GET", "/healthz", None, b"").0, 200);
}

/// Sends `head` (without a body, or with `partial` of it) and returns what the server answers
/// within `wait`.
fn raw_exchange(server: &Server, head: &str, partial: &[u8], wait: Duration) -> String {
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream.set_read_timeout(Some(wait)).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(partial).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

#[test]
fn an_oversized_body_is_refused_unread_and_a_stalled_one_times_out() {
    let server = Server::start(ServeConfig { body_timeout: Duration::from_millis(500), ..small_limits() });
    // 300 MiB declared, with `Expect: 100-continue`: 413 at once, never `100 Continue`.
    let head = "POST /v1/predict HTTP/1.1\r\nHost: t\r\nContent-Type: audio/wav\r\nContent-Length: 314572800\r\n\
                Expect: 100-continue\r\n\r\n";
    let started = std::time::Instant::now();
    let answer = raw_exchange(&server, head, b"", Duration::from_secs(10));
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(!answer.contains("100 Continue"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // A body that stops after 1,000 of its 1,000,000 bytes: 408 after the body timeout.
    let head = "POST /v1/predict HTTP/1.1\r\nHost: t\r\nContent-Type: audio/wav\r\nContent-Length: 1000000\r\n\r\n";
    let started = std::time::Instant::now();
    let answer = raw_exchange(&server, head, &[0u8; 1000], Duration::from_secs(20));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive within"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(10), "held for {:?}", started.elapsed());
    assert_eq!(server.request("GET", "/healthz", None, b"").0, 200);
}

#[test]
fn arbitrary_and_mutated_bodies_get_a_client_error_never_a_server_error() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let server = Server::start(ServeConfig { timeout: Duration::from_secs(20), ..small_limits() });
    let seeds: Vec<Vec<u8>> = {
        let formats = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ser-features/tests/data/formats");
        let mut seeds = vec![wav_bytes(&clip(10, 4, 1))];
        for name in ["tone.flac", "tone.mp3", "tone.ogg", "tone.m4a", "tone.aiff", "alaw.wav"] {
            seeds.push(std::fs::read(formats.join(name)).unwrap());
        }
        seeds
    };
    let content_type = prop_oneof![
        Just(Some("audio/wav")),
        Just(Some("audio/flac")),
        Just(Some("audio/mpeg")),
        Just(Some("application/octet-stream")),
        Just(Some("text/plain")),
        Just(Some("audio/wav; rate=48000")),
        Just(None),
    ];
    let body = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..2048),
        (
            0..seeds.len(),
            proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
            any::<prop::sample::Index>()
        )
            .prop_map(move |(which, flips, keep)| {
                let mut bytes = seeds[which].clone();
                for (at, value) in flips {
                    let i = at.index(bytes.len());
                    bytes[i] = value;
                }
                bytes.truncate(keep.index(bytes.len()) + 1);
                bytes
            }),
    ];
    let path = prop_oneof![Just("/v1/predict"), Just("/v1/predict?first_window=true"), Just("/v1/timeline")];
    let mut runner = TestRunner::new(Config { cases: 64, failure_persistence: None, ..Config::default() });
    runner
        .run(&(path, content_type, body), |(path, content_type, body)| {
            let (status, answer) = server.request("POST", path, content_type, &body);
            // Audio that decodes is answered; everything else is the client's error, said in JSON.
            prop_assert!(status == 200 || (400..500).contains(&status), "{status}: {answer}");
            if status != 200 {
                let message = answer["error"].as_str().unwrap_or_default();
                prop_assert!(!message.is_empty(), "{status} without a message: {answer}");
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(server.request("GET", "/healthz", None, b""), (200, serde_json::json!({"status": "ok"})));
}

/// A WebSocket client of `/v1/stream`.
mod live {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::{Error as WsError, Message};

    pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

    pub async fn open(addr: std::net::SocketAddr, query: &str, origin: Option<&str>) -> Result<Socket, WsError> {
        let mut request = format!("ws://{addr}/v1/stream?{query}").into_client_request().unwrap();
        if let Some(origin) = origin {
            request.headers_mut().insert("origin", origin.parse().unwrap());
        }
        tokio_tungstenite::connect_async(request).await.map(|(socket, _)| socket)
    }

    pub fn pcm(samples: &[f32]) -> Vec<u8> {
        samples.iter().flat_map(|s| s.to_le_bytes()).collect()
    }

    /// Sends `bytes` in messages of `chunk` bytes; false when the server closed first.
    pub async fn send(socket: &mut Socket, bytes: &[u8], chunk: usize) -> bool {
        for part in bytes.chunks(chunk) {
            if socket.send(Message::Binary(part.to_vec().into())).await.is_err() {
                return false;
            }
        }
        true
    }

    pub async fn end(socket: &mut Socket) {
        let _ = socket.send(Message::Text("end".into())).await;
    }

    /// Opens a stream once the service has a free slot. A stream that just closed may hold its
    /// slot a moment longer (more so on a loaded machine), and the service refuses the next one at
    /// once with 1013: that refusal is retried for up to 10 s. Returns the socket, and its close
    /// when the service closed it for another reason before any audio was sent.
    pub async fn open_free(addr: std::net::SocketAddr, query: &str) -> (Socket, Option<(u16, String)>) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let mut socket = open(addr, query, None).await.unwrap();
            match tokio::time::timeout(std::time::Duration::from_millis(200), socket.next()).await {
                Err(_) => return (socket, None),
                Ok(Some(Ok(Message::Close(Some(frame))))) => {
                    let close = (u16::from(frame.code), frame.reason.to_string());
                    if close.0 != 1013 || std::time::Instant::now() > deadline {
                        return (socket, Some(close));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Ok(other) => panic!("before any audio the service sent {other:?}"),
            }
        }
    }

    /// The JSON messages until the server closes, and its close code and reason.
    pub async fn receive(socket: &mut Socket) -> (Vec<serde_json::Value>, Option<(u16, String)>) {
        let mut messages = Vec::new();
        while let Some(message) = socket.next().await {
            match message {
                Ok(Message::Text(text)) => messages.push(serde_json::from_str(&text).unwrap()),
                Ok(Message::Close(frame)) => {
                    return (messages, frame.map(|f| (u16::from(f.code), f.reason.to_string())));
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        (messages, None)
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

#[test]
fn a_live_stream_answers_the_windows_of_ser_infer_stream() {
    let server = Server::start(small_limits());
    let mut samples = clip(9, 6, 1);
    samples.extend(vec![0.0; 2 * SYNTH_SAMPLE_RATE as usize]);
    samples.extend(clip(9, 2, 1));
    let bytes = live::pcm(&samples);
    // The library's stream on the same bytes.
    let classifier = Classifier::load(checkpoint(), &Device::Cpu).unwrap();
    let config = TimelineConfig::for_classifier(&classifier);
    let format = ser_infer::stream::StreamFormat::Raw {
        encoding: ser_infer::stream::RawEncoding::F32Le,
        sample_rate: SYNTH_SAMPLE_RATE,
        channels: 1,
    };
    let mut expected = Vec::new();
    ser_infer::stream::stream(&classifier, &bytes[..], format, &config, |s| {
        expected.push(ser_infer::output::segment_json(&s, classifier.labels()));
        Ok(())
    })
    .unwrap();
    let (messages, close) = runtime().block_on(async {
        let mut socket = live::open(server.addr, &format!("sample_rate={SYNTH_SAMPLE_RATE}"), None).await.unwrap();
        // 100 ms messages, as the page sends.
        assert!(live::send(&mut socket, &bytes, 4 * SYNTH_SAMPLE_RATE as usize / 10).await);
        live::end(&mut socket).await;
        live::receive(&mut socket).await
    });
    assert_eq!(close.map(|c| c.0), Some(1000));
    let (done, windows) = messages.split_last().unwrap();
    assert_eq!((done["done"].as_bool(), done["windows"].as_u64()), (Some(true), Some(expected.len() as u64)));
    assert_eq!(windows, &expected[..]);
    assert!(windows.iter().any(|w| w["silent"] == true) && windows.iter().any(|w| w["silent"] == false));
}

#[test]
fn live_stream_limits_close_with_a_reason_and_the_service_stays_up() {
    let config = ServeConfig {
        max_streams: 1,
        max_stream_message_bytes: 64 << 10,
        max_stream_s: 2.0,
        stream_idle_timeout: Duration::from_millis(500),
        allowed_origins: vec!["https://app.example".into()],
        ..small_limits()
    };
    let server = Server::start(config);
    let addr = server.addr;
    let query = "sample_rate=16000";
    runtime().block_on(async {
        // A message over max_stream_message_bytes: 1009.
        let mut socket = live::open(addr, query, None).await.unwrap();
        let _ = live::send(&mut socket, &vec![0u8; 100 << 10], 100 << 10).await;
        let (_, close) = live::receive(&mut socket).await;
        let (code, reason) = close.expect("a close frame");
        assert_eq!(code, 1009, "{reason}");
        assert!(reason.contains("max_stream_message_bytes"), "{reason}");

        // More than max_streams at once: 1013, the first stream unharmed.
        let mut first = live::open(addr, query, Some(&format!("http://{addr}"))).await.unwrap();
        assert!(live::send(&mut first, &live::pcm(&[0.01; 1600]), 6400).await);
        let mut second = live::open(addr, query, None).await.unwrap();
        let (_, close) = live::receive(&mut second).await;
        let (code, reason) = close.expect("a close frame");
        assert_eq!(code, 1013, "{reason}");
        assert!(reason.contains("max_streams is 1"), "{reason}");
        live::end(&mut first).await;
        let (messages, close) = live::receive(&mut first).await;
        assert_eq!(close.map(|c| c.0), Some(1000));
        assert_eq!(messages.last().unwrap()["done"], true);

        // An origin that is neither the page's nor listed: refused before the upgrade.
        let refused = live::open(addr, query, Some("http://evil.example")).await.expect_err("refused");
        assert!(refused.to_string().contains("403"), "{refused}");
        let mut listed = live::open(addr, query, Some("https://app.example")).await.expect("a listed origin");
        live::end(&mut listed).await;
        assert_eq!(live::receive(&mut listed).await.1.map(|c| c.0), Some(1000));

        // No message within stream_idle_timeout: 1008.
        let started = std::time::Instant::now();
        let (mut idle, early) = live::open_free(addr, query).await;
        let close = match early {
            Some(close) => Some(close),
            None => live::receive(&mut idle).await.1,
        };
        let (code, reason) = close.expect("a close frame");
        assert_eq!(code, 1008, "{reason}");
        assert!(reason.contains("no audio"), "{reason}");
        assert!(started.elapsed() < Duration::from_secs(15));

        // Longer than max_stream_seconds (2 s of 16 kHz float32): 1008.
        let (mut long, early) = live::open_free(addr, query).await;
        assert_eq!(early, None);
        let _ = live::send(&mut long, &live::pcm(&vec![0.01; 3 * 16_000]), 6400).await;
        let (_, close) = live::receive(&mut long).await;
        let (code, reason) = close.expect("a close frame");
        assert_eq!(code, 1008, "{reason}");
        assert!(reason.contains("max_stream_seconds"), "{reason}");

        // Text that is not `end`: 1003. A bad query: 400 before the upgrade.
        let (mut chatty, early) = live::open_free(addr, query).await;
        assert_eq!(early, None);
        futures_util::SinkExt::send(&mut chatty, tokio_tungstenite::tungstenite::Message::Text("hello".into()))
            .await
            .unwrap();
        let (_, close) = live::receive(&mut chatty).await;
        assert_eq!(close.map(|c| c.0), Some(1003));
        let bad = live::open(addr, "sample_rate=7", None).await.expect_err("refused");
        assert!(bad.to_string().contains("400"), "{bad}");
    });
    assert_eq!(server.request("GET", "/healthz", None, b"").0, 200);
}

#[test]
fn the_page_is_served_whole_and_self_contained() {
    let server = Server::start(small_limits());
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{}", &response[..200.min(response.len())]);
    assert!(response.to_ascii_lowercase().contains("content-type: text/html"));
    for contract in ["id=\"ser-start\"", "id=\"ser-file\"", "id=\"ser-timeline\"", "/v1/stream", "dataset.state"] {
        assert!(response.contains(contract), "the page lacks {contract}");
    }
    // Nothing fetched from elsewhere: no absolute URLs to other hosts in src/href/import.
    for pattern in ["src=\"http", "href=\"http", "import(\"http", "@import"] {
        assert!(!response.contains(pattern), "the page loads {pattern}...");
    }
}

/// One request with extra header lines; returns the status line and headers, and the body.
fn exchange(addr: SocketAddr, method: &str, path: &str, extra: &str, body: &[u8]) -> (String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n{extra}\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

#[test]
fn with_api_keys_only_a_good_key_is_answered() {
    let keys = ser_infer::auth::ApiKeys::from_keys("k-good-1,k-good-2").unwrap();
    let server = Server::start(ServeConfig { api_keys: Some(keys.clone()), ..small_limits() });
    let wav = wav_bytes(&clip(12, 5, 1));
    let status = |head: &str| head.split(' ').nth(1).unwrap().to_string();
    for (path, method, body) in [("/v1/model", "GET", &b""[..]), ("/v1/predict", "POST", &wav[..])] {
        let (head, body_text) = exchange(server.addr, method, path, "", body);
        assert_eq!(status(&head), "401", "{head}");
        assert!(head.to_ascii_lowercase().contains("www-authenticate: bearer realm=\"ser\""), "{head}");
        assert!(body_text.contains("needs an API key"), "{body_text}");
        let (head, body_text) = exchange(server.addr, method, path, "Authorization: Bearer k-wrong\r\n", body);
        assert_eq!(status(&head), "401", "{head}");
        assert!(body_text.contains("not one this server admits") && !body_text.contains("k-wrong"), "{body_text}");
        let (head, _) = exchange(server.addr, method, path, "Authorization: Basic k-good-1\r\n", body);
        assert_eq!(status(&head), "401", "only bearer credentials: {head}");
        for key in ["k-good-1", "k-good-2"] {
            let (head, body_text) =
                exchange(server.addr, method, path, &format!("Authorization: Bearer {key}\r\n"), body);
            assert_eq!(status(&head), "200", "{head} {body_text}");
            assert!(!body_text.contains(key), "the answer repeats the key: {body_text}");
        }
    }
    // A form upload, an unknown /v1 route: behind the key too. The health check and the page
    // are open.
    assert_eq!(status(&exchange(server.addr, "GET", "/v1/elsewhere", "", b"").0), "401");
    assert_eq!(status(&exchange(server.addr, "GET", "/healthz", "", b"").0), "200");
    assert_eq!(status(&exchange(server.addr, "GET", "/", "", b"").0), "200");
    // Metrics are behind the key unless serve.open_metrics says otherwise.
    assert_eq!(status(&exchange(server.addr, "GET", "/metrics", "", b"").0), "401");
    assert_eq!(status(&exchange(server.addr, "GET", "/metrics", "Authorization: Bearer k-good-1\r\n", b"").0), "200");
    let closed =
        Server::start(ServeConfig { api_keys: Some(keys), open_page: false, open_metrics: true, ..small_limits() });
    assert_eq!(status(&exchange(closed.addr, "GET", "/", "", b"").0), "401");
    assert_eq!(status(&exchange(closed.addr, "GET", "/metrics", "", b"").0), "200");
    assert_eq!(status(&exchange(closed.addr, "GET", "/", "Authorization: Bearer k-good-2\r\n", b"").0), "200");

    // The live stream, as a browser opens it: the key in a subprotocol, ser's answered.
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let open = |protocols: Option<&'static str>| {
        let mut request =
            format!("ws://{}/v1/stream?sample_rate={SYNTH_SAMPLE_RATE}", server.addr).into_client_request().unwrap();
        if let Some(p) = protocols {
            request.headers_mut().insert("sec-websocket-protocol", p.parse().unwrap());
        }
        request
    };
    runtime().block_on(async {
        for refused in [None, Some("ser.v1, bearer.k-wrong")] {
            match tokio_tungstenite::connect_async(open(refused)).await {
                Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
                other => panic!("{refused:?}: expected 401, got {:?}", other.map(|(_, r)| r.status())),
            }
        }
        let (mut socket, response) =
            tokio_tungstenite::connect_async(open(Some("ser.v1, bearer.k-good-1"))).await.unwrap();
        assert_eq!(response.headers()["sec-websocket-protocol"], "ser.v1");
        let samples = [clip(12, 3, 1), vec![0.0; SYNTH_SAMPLE_RATE as usize]].concat();
        assert!(live::send(&mut socket, &live::pcm(&samples), 8192).await);
        live::end(&mut socket).await;
        let (messages, close) = live::receive(&mut socket).await;
        assert_eq!(close.map(|c| c.0), Some(1000));
        assert!(messages.len() >= 2 && messages.last().unwrap()["done"] == true, "{messages:?}");
    });
}

#[test]
fn a_client_over_its_rate_gets_429_while_another_is_served() {
    let keys = ser_infer::auth::ApiKeys::from_keys("k-busy,k-calm").unwrap();
    // One request a second and 3 at once: the 4th within the second is over.
    let rate = ser_infer::config::RateLimit { per_s: 1, burst: 3 };
    let server = Server::start(ServeConfig { api_keys: Some(keys), rate: Some(rate), ..small_limits() });
    let get = |key: &str| exchange(server.addr, "GET", "/v1/model", &format!("Authorization: Bearer {key}\r\n"), b"");
    let status = |head: &str| head.split(' ').nth(1).unwrap().to_string();
    for _ in 0..3 {
        assert_eq!(status(&get("k-busy").0), "200");
    }
    // Over the burst within the second (three more tries, should this machine be slow).
    let (head, body) = (0..3).map(|_| get("k-busy")).find(|(h, _)| status(h) == "429").expect("no 429 over the rate");
    let retry_after: u64 = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("retry-after:").map(|v| v.trim().parse().unwrap()))
        .unwrap_or_else(|| panic!("no Retry-After: {head}"));
    assert!(retry_after <= 1, "{head}");
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(error["error"].as_str().unwrap().contains("too many requests from this client"), "{body}");
    // Another client, and the health check, are not held back.
    assert_eq!(status(&get("k-calm").0), "200");
    assert_eq!(status(&exchange(server.addr, "GET", "/healthz", "", b"").0), "200");
    // A wrong key is refused before it can take an allowance of its own.
    assert_eq!(status(&get("k-random").0), "401");

    // Without keys, by address: this client is held, and its allowance comes back.
    let open = Server::start(ServeConfig { rate: Some(rate), ..small_limits() });
    let statuses: Vec<String> = (0..6).map(|_| status(&exchange(open.addr, "GET", "/v1/model", "", b"").0)).collect();
    assert_eq!(statuses[..3], ["200", "200", "200"]);
    assert!(statuses[3..].contains(&"429".to_string()), "{statuses:?}");
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(status(&exchange(open.addr, "GET", "/v1/model", "", b"").0), "200");
}

/// The samples of an OpenMetrics / Prometheus text exposition, parsed line by line: `# HELP`,
/// `# TYPE`, `# UNIT` and `# EOF` lines, and samples `name{label="value",...} number`; anything
/// else fails the parse.
fn parse_metrics(text: &str) -> Vec<(String, std::collections::BTreeMap<String, String>, f64)> {
    let name = regex::Regex::new(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$").unwrap();
    let label = regex::Regex::new(r#"([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)"#).unwrap();
    assert!(text.trim_end().ends_with("# EOF"), "no # EOF");
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut parts = comment.splitn(3, ' ');
            let kind = parts.next().unwrap();
            assert!(["HELP", "TYPE", "UNIT", "EOF"].contains(&kind), "{line}");
            if kind == "TYPE" {
                let t = comment.rsplit(' ').next().unwrap();
                assert!(["counter", "gauge", "histogram", "info", "summary", "unknown"].contains(&t), "{line}");
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a number: {line}"));
        let (metric, labels) = match series.split_once('{') {
            None => (series, std::collections::BTreeMap::new()),
            Some((metric, rest)) => {
                let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels: {line}"));
                let pairs: Vec<_> = label.captures_iter(body).collect();
                let covered: usize = pairs.iter().map(|c| c[0].len()).sum();
                assert_eq!(covered, body.len(), "bad labels: {line}");
                (metric, pairs.iter().map(|c| (c[1].to_string(), c[2].to_string())).collect())
            }
        };
        assert!(name.is_match(metric), "bad metric name: {line}");
        samples.push((metric.to_string(), labels, value));
    }
    samples
}

fn metric(
    samples: &[(String, std::collections::BTreeMap<String, String>, f64)],
    name: &str,
    labels: &[(&str, &str)],
) -> f64 {
    samples
        .iter()
        .filter(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v)))
        .map(|(_, _, v)| v)
        .sum()
}

#[test]
fn metrics_count_the_requests_sent() {
    let server = Server::start(small_limits());
    let scrape = || {
        let (head, body) = exchange(server.addr, "GET", "/metrics", "", b"");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.to_ascii_lowercase().contains("content-type: application/openmetrics-text"), "{head}");
        parse_metrics(&body)
    };
    let before = scrape();
    let classifier = Classifier::load(checkpoint(), &Device::Cpu).unwrap();
    let info = before.iter().find(|(n, _, _)| n == "ser_model_info").expect("the model's info metric");
    assert_eq!(info.1["weights_sha256"], classifier.weights_sha256());
    assert_eq!(info.1["labels"], classifier.labels().join(","));

    let seconds = 2.5;
    let wav = wav_bytes(&clip(13, 2, 1)[..(seconds * SYNTH_SAMPLE_RATE as f64) as usize]);
    for _ in 0..3 {
        assert_eq!(server.request("POST", "/v1/predict", Some("audio/wav"), &wav).0, 200);
    }
    assert_eq!(server.request("POST", "/v1/timeline", Some("audio/wav"), &wav).0, 200);
    assert_eq!(server.request("POST", "/v1/predict", Some("audio/wav"), b"junk").0, 400);
    assert_eq!(server.request("GET", "/no/such/thing", None, b"").0, 404);
    let after = scrape();
    let moved = |name: &str, labels: &[(&str, &str)]| metric(&after, name, labels) - metric(&before, name, labels);
    let ok = [("route", "/v1/predict"), ("method", "POST"), ("status", "200")];
    assert_eq!(moved("ser_http_requests_total", &ok), 3.0);
    assert_eq!(moved("ser_http_requests_total", &[("route", "/v1/timeline"), ("status", "200")]), 1.0);
    assert_eq!(moved("ser_http_requests_total", &[("route", "/v1/predict"), ("status", "400")]), 1.0);
    assert_eq!(moved("ser_http_requests_total", &[("route", "other"), ("status", "404")]), 1.0);
    assert_eq!(moved("ser_http_requests_total", &[("route", "/metrics")]), 1.0, "the first scrape");
    // Four classified, one refused before classification (its body decodes in the slot: five).
    assert_eq!(moved("ser_queue_wait_seconds_count", &[]), 5.0);
    assert_eq!(moved("ser_compute_seconds_count", &[]), 5.0);
    assert!((moved("ser_audio_seconds_total", &[]) - 4.0 * seconds).abs() < 1e-6);
    assert_eq!(metric(&after, "ser_http_requests_in_flight", &[]), 1.0, "the scrape itself");
    assert_eq!(metric(&after, "ser_streams_open", &[]), 0.0);
}

/// `/openapi.json` lists exactly the routes the router serves: each one it names is served (no
/// 404 or 405), and a path it does not name is not. (CI also checks the document with
/// openapi-spec-validator: python/tests/test_service_openapi.py.)
#[test]
fn the_openapi_document_lists_the_routes_served() {
    let server = Server::start(small_limits());
    let (head, body) = exchange(server.addr, "GET", "/openapi.json", "", b"");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let mut listed = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            listed.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    listed.sort();
    let expected = [
        "GET /",
        "GET /healthz",
        "GET /metrics",
        "GET /openapi.json",
        "GET /v1/model",
        "GET /v1/stream",
        "POST /v1/predict",
        "POST /v1/timeline",
    ];
    assert_eq!(listed, expected);
    for route in &listed {
        let (method, path) = route.split_once(' ').unwrap();
        let (head, _) = exchange(server.addr, method, path, "", b"");
        let status = head.split(' ').nth(1).unwrap();
        assert!(status != "404" && status != "405", "{route} is listed but answers {status}");
        // The same path with another method is not a route.
        let other = if method == "GET" { "DELETE" } else { "GET" };
        let (head, _) = exchange(server.addr, other, path, "", b"");
        assert!(matches!(head.split(' ').nth(1), Some("404" | "405")), "{other} {path}: {head}");
    }
    let (head, body) = exchange(server.addr, "GET", "/v1/unlisted", "", b"");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    assert!(expected.iter().all(|r| body.contains(r)), "the 404 names every route: {body}");
    // Every error the handlers answer is the one ErrorBody schema.
    let error = &doc["components"]["schemas"]["ErrorBody"];
    assert_eq!(error["required"], serde_json::json!(["error"]));
    let predict = &doc["paths"]["/v1/predict"]["post"];
    let types: Vec<&str> = predict["requestBody"]["content"].as_object().unwrap().keys().map(String::as_str).collect();
    assert!(types.contains(&"audio/wav") && types.contains(&"multipart/form-data"), "{types:?}");
    for status in ["200", "400", "401", "413", "415", "422", "429"] {
        assert!(predict["responses"][status].is_object(), "/v1/predict lacks {status}");
    }
}
