//! A soak of `ser-infer serve` as a separate process: mixed requests from concurrent clients on
//! kept-alive connections (predict, timeline, form uploads, bad bodies, wrong keys, the model,
//! and live streams opened and closed), then the server's resident memory and open descriptors
//! (Linux `/proc`). The bounded test below runs in CI; `benches/soak.rs` (`make bench-soak`)
//! includes this file and runs 100,000 requests with the same driver, so it uses nothing of the
//! test crate but this file.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The key the soak's clients present (and a wrong one).
pub const KEY: &str = "soak-key-4f1d9a";
const WRONG_KEY: &str = "soak-key-wrong";

/// A running `ser-infer serve`.
pub struct Service {
    child: Child,
    pub addr: String,
    pub keys: bool,
}

impl Service {
    /// Starts `binary serve` on a free port; with `keys`, [`KEY`] is its one API key and it logs
    /// every request as JSON into `log`; without, it logs nothing (`-q`).
    pub fn start(binary: &Path, keys: bool, log: &Path) -> Service {
        let mut command = Command::new(binary);
        if keys {
            command.args(["--log-format", "json", "serve"]).env("SER_API_KEYS", KEY);
        } else {
            command.args(["-q", "serve"]).env_remove("SER_API_KEYS");
        }
        let mut child = command
            .args(["--addr", "127.0.0.1:0", "--max-streams", "64"])
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line.trim().strip_prefix("http://").unwrap_or_else(|| panic!("no address: {line:?}")).to_string();
        Service { child, addr, keys }
    }

    /// Resident memory in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id())).unwrap().count()
    }

    /// Open descriptors once they stop falling (connections the clients closed are let go), up
    /// to `wait`.
    pub fn settled_fds(&self, target: usize, wait: Duration) -> usize {
        let deadline = Instant::now() + wait;
        loop {
            let n = self.open_fds();
            if n <= target || Instant::now() > deadline {
                return n;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one soak measured.
#[derive(Debug, Default)]
pub struct Report {
    pub requests: usize,
    pub seconds: f64,
    pub per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Answers other than the one each kind of request must get, and transport failures.
    pub unexpected: usize,
    pub unexpected_examples: Vec<String>,
    pub rss_warm_kib: u64,
    pub rss_end_kib: u64,
    pub fds_start: usize,
    pub fds_end: usize,
}

/// A kept-alive HTTP/1.1 connection.
struct Connection {
    addr: String,
    stream: Option<BufReader<TcpStream>>,
}

impl Connection {
    /// Sends one request and reads its answer's status; reconnects once if the server had
    /// closed the connection.
    fn send(&mut self, method: &str, path: &str, headers: &str, body: &[u8]) -> Result<u16, String> {
        for attempt in 0..2 {
            if self.stream.is_none() {
                let stream = TcpStream::connect(&self.addr).map_err(|e| e.to_string())?;
                stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                self.stream = Some(BufReader::new(stream));
            }
            match self.exchange(method, path, headers, body) {
                Ok(status) => return Ok(status),
                Err(e) => {
                    self.stream = None;
                    if attempt == 1 {
                        return Err(e);
                    }
                }
            }
        }
        unreachable!()
    }

    fn exchange(&mut self, method: &str, path: &str, headers: &str, body: &[u8]) -> Result<u16, String> {
        let stream = self.stream.as_mut().unwrap();
        let head = format!("{method} {path} HTTP/1.1\r\nHost: soak\r\nContent-Length: {}\r\n{headers}\r\n", body.len());
        let writer = stream.get_mut();
        writer.write_all(head.as_bytes()).and_then(|()| writer.write_all(body)).map_err(|e| e.to_string())?;
        let mut status_line = String::new();
        if stream.read_line(&mut status_line).map_err(|e| e.to_string())? == 0 {
            return Err("connection closed".into());
        }
        let status: u16 = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or(status_line.clone())?;
        let (mut length, mut close) = (0usize, false);
        loop {
            let mut line = String::new();
            stream.read_line(&mut line).map_err(|e| e.to_string())?;
            let line = line.trim_end().to_ascii_lowercase();
            if line.is_empty() {
                break;
            }
            if let Some(v) = line.strip_prefix("content-length:") {
                length = v.trim().parse().map_err(|_| line.clone())?;
            }
            close |= line == "connection: close";
        }
        let mut answer = vec![0u8; length];
        stream.read_exact(&mut answer).map_err(|e| e.to_string())?;
        if close {
            self.stream = None;
        }
        Ok(status)
    }
}

/// The audio the clients send: a speech-like synthetic clip as WAV, and as a form.
struct Payloads {
    wav: Vec<u8>,
    form: Vec<u8>,
    pcm: Vec<u8>,
}

const BOUNDARY: &str = "soakFormBoundary9f2";

impl Payloads {
    fn new() -> Payloads {
        use ser_features::synth::{SYNTH_SAMPLE_RATE, synth_clip};
        let samples: Vec<f32> = synth_clip(11, 5, 3, 2, 1, 1)[..2 * SYNTH_SAMPLE_RATE as usize].to_vec();
        let wav = ser_features::audio::encode_wav_i16(&samples, SYNTH_SAMPLE_RATE);
        let mut form = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"clip.wav\"\r\n\
             Content-Type: audio/wav\r\n\r\n"
        )
        .into_bytes();
        form.extend(&wav);
        form.extend(format!("\r\n--{BOUNDARY}--\r\n").bytes());
        let pcm = samples[..samples.len() / 4].iter().flat_map(|s| s.to_le_bytes()).collect();
        Payloads { wav, form, pcm }
    }
}

/// Request `i` of the mix, on `connection`; whether its answer was the expected one (or the
/// reason it was not).
fn one(
    i: usize,
    connection: &mut Connection,
    payloads: &Payloads,
    keys: bool,
    runtime: &tokio::runtime::Runtime,
) -> Result<(), String> {
    let auth = if keys { format!("Authorization: Bearer {KEY}\r\n") } else { String::new() };
    let expect = |got: Result<u16, String>, want: u16, what: &str| match got {
        Ok(s) if s == want => Ok(()),
        Ok(s) => Err(format!("{what}: {s}, expected {want}")),
        Err(e) => Err(format!("{what}: {e}")),
    };
    let wav_headers = format!("{auth}Content-Type: audio/wav\r\n");
    match i % 20 {
        0..=7 => expect(connection.send("POST", "/v1/predict", &wav_headers, &payloads.wav), 200, "predict"),
        8 | 9 => expect(
            connection.send("POST", "/v1/timeline?window=1&hop=0.5", &wav_headers, &payloads.wav),
            200,
            "timeline",
        ),
        10..=12 => {
            let headers = format!("{auth}Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n");
            expect(connection.send("POST", "/v1/predict", &headers, &payloads.form), 200, "form upload")
        }
        13 | 14 => {
            expect(connection.send("POST", "/v1/predict", &wav_headers, b"\x00not audio at all\xff"), 400, "bad body")
        }
        15 | 16 => {
            if keys {
                let headers = format!("Authorization: Bearer {WRONG_KEY}\r\nContent-Type: audio/wav\r\n");
                expect(connection.send("POST", "/v1/predict", &headers, &payloads.wav), 401, "wrong key")
            } else {
                expect(connection.send("GET", "/v1/model", "", b""), 200, "model")
            }
        }
        17 | 18 => expect(connection.send("GET", "/healthz", "", b""), 200, "healthz"),
        _ => runtime.block_on(stream(&connection.addr, keys, &payloads.pcm)),
    }
}

/// A live stream opened, fed half a second of PCM, ended, and read to its close.
async fn stream(addr: &str, keys: bool, pcm: &[u8]) -> Result<(), String> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let rate = ser_features::synth::SYNTH_SAMPLE_RATE;
    let mut request = format!("ws://{addr}/v1/stream?sample_rate={rate}").into_client_request().unwrap();
    if keys {
        request.headers_mut().insert("sec-websocket-protocol", format!("ser.v1, bearer.{KEY}").parse().unwrap());
    }
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.map_err(|e| format!("stream: {e}"))?;
    socket.send(Message::Binary(pcm.to_vec().into())).await.map_err(|e| format!("stream: {e}"))?;
    socket.send(Message::Text("end".into())).await.map_err(|e| format!("stream: {e}"))?;
    while let Some(message) = socket.next().await {
        match message {
            Ok(Message::Close(frame)) => {
                let code = frame.map(|f| u16::from(f.code));
                return if code == Some(1000) { Ok(()) } else { Err(format!("stream closed with {code:?}")) };
            }
            Ok(_) => {}
            Err(e) => return Err(format!("stream: {e}")),
        }
    }
    Err("stream: no close".into())
}

/// `requests` of the mix from `clients` concurrent clients against `service`.
pub fn run(service: &Service, requests: usize, clients: usize) -> Report {
    let payloads = Payloads::new();
    let fds_start = service.open_fds();
    let next = AtomicUsize::new(0);
    let warm_at = (requests / 20).max(1);
    let rss_warm = std::sync::Mutex::new(None);
    let unexpected = std::sync::Mutex::new(Vec::new());
    let started = Instant::now();
    let mut latencies: Vec<f64> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..clients)
            .map(|_| {
                scope.spawn(|| {
                    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                    let mut connection = Connection { addr: service.addr.clone(), stream: None };
                    let mut latencies = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= requests {
                            break;
                        }
                        if i == warm_at {
                            *rss_warm.lock().unwrap() = Some(service.rss_kib());
                        }
                        let t = Instant::now();
                        if let Err(e) = one(i, &mut connection, &payloads, service.keys, &runtime) {
                            unexpected.lock().unwrap().push(e);
                        }
                        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                    latencies
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let quantile = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    let unexpected = unexpected.into_inner().unwrap();
    let rss_end_kib = service.rss_kib();
    Report {
        requests,
        seconds,
        per_s: requests as f64 / seconds,
        p50_ms: quantile(0.5),
        p99_ms: quantile(0.99),
        unexpected: unexpected.len(),
        unexpected_examples: unexpected.into_iter().take(5).collect(),
        rss_warm_kib: rss_warm.into_inner().unwrap().unwrap_or(0),
        rss_end_kib,
        fds_start,
        fds_end: service.settled_fds(fds_start, Duration::from_secs(5)),
    }
}

/// A few thousand requests of the mix, 16 clients: no answer but the expected ones, and every
/// connection's descriptor given back.
#[test]
fn a_bounded_soak_has_no_unexpected_answer_and_leaks_no_descriptor() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(Path::new(env!("CARGO_BIN_EXE_ser-infer")), true, &dir.path().join("serve.log"));
    let report = run(&service, 3000, 16);
    assert_eq!(report.unexpected, 0, "{:?}", report.unexpected_examples);
    assert!(
        report.fds_end <= report.fds_start,
        "descriptors: {} at the start, {} at the end",
        report.fds_start,
        report.fds_end
    );
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    let access = log.lines().filter(|l| l.contains("\"ser_infer::access\"")).count();
    assert!(access >= 3000 * 18 / 20, "{access} access lines for 3000 requests");
    assert!(!log.contains(KEY) && !log.contains(WRONG_KEY), "a key is in the log");
}
