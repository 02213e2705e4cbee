//! The binary on generated files.

use std::process::{Command, Stdio};

use crate::{checkpoint, clip, wav_bytes};

fn ser_infer(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ser-infer")).args(args).output().unwrap()
}

#[test]
fn predict_files_directories_and_globs_reporting_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let audio = dir.path().join("audio");
    std::fs::create_dir_all(audio.join("nested")).unwrap();
    std::fs::write(audio.join("one.wav"), wav_bytes(&clip(7, 5, 1))).unwrap();
    std::fs::write(audio.join("nested/two.WAV"), wav_bytes(&clip(7, 4, 1))).unwrap();
    std::fs::write(audio.join("broken.wav"), b"RIFF\x10\x00\x00\x00WAVEfmt ").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not audio").unwrap();
    let ckpt = checkpoint().to_str().unwrap();
    let glob = format!("{}/*.wav", audio.display());
    let output = ser_infer(&["predict", "--checkpoint", ckpt, "--format", "jsonl", audio.to_str().unwrap(), &glob]);
    assert_eq!(output.status.code(), Some(1), "a failed input makes the exit status 1");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // directory: broken, two (nested), one; glob: broken, one.
    assert_eq!(lines.len(), 5, "{stdout}");
    let errors: Vec<_> = lines.iter().filter(|l| l.get("error").is_some()).collect();
    assert_eq!(errors.len(), 2);
    assert!(errors[0]["error"].as_str().unwrap().contains("broken.wav"), "{:?}", errors[0]);
    assert!(stderr.contains("broken.wav") && stderr.contains("2 of 5 inputs failed"), "{stderr}");
    for line in lines.iter().filter(|l| l.get("error").is_none()) {
        let sum: f64 = line["probabilities"].as_object().unwrap().values().map(|v| v.as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-4);
        assert_eq!(line["silent"].as_bool(), Some(false), "{line}");
        assert!(line["windows"].as_u64().unwrap() >= 1, "{line}");
    }

    let one = audio.join("one.wav");
    let output = ser_infer(&["predict", "--checkpoint", ckpt, "--format", "csv", one.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let csv = String::from_utf8_lossy(&output.stdout);
    assert!(csv.starts_with("path,label,confidence,windows,silent_windows,start_s,end_s,p_angry,p_calm,"), "{csv}");
    assert_eq!(csv.lines().count(), 2);
    assert_eq!(csv.lines().nth(1).unwrap().split(',').count(), 15);
}

#[test]
fn predict_answers_for_the_whole_recording_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    // A 10-minute recording: two utterances, 3 s apart, over and over. Every window is classified,
    // the silent ones left out of the mean.
    let mut samples = Vec::with_capacity(601 * 48_000);
    while samples.len() < 600 * 48_000 {
        samples.extend(clip(7, 5, 1));
        samples.extend(vec![0.0; 3 * 48_000]);
        samples.extend(clip(7, 2, 1));
        samples.extend(vec![0.0; 48_000]);
    }
    samples.truncate(600 * 48_000);
    let long = dir.path().join("long.wav");
    std::fs::write(&long, wav_bytes(&samples)).unwrap();
    let silence = dir.path().join("silence.wav");
    std::fs::write(&silence, wav_bytes(&[0.0; 3 * 48_000])).unwrap();
    let dc = dir.path().join("dc.wav");
    std::fs::write(&dc, wav_bytes(&[0.3; 3 * 48_000])).unwrap();
    let ckpt = checkpoint().to_str().unwrap();
    let run = |extra: &[&str]| -> Vec<serde_json::Value> {
        let mut args = vec!["predict", "--checkpoint", ckpt, "--format", "jsonl"];
        args.extend(extra);
        args.extend([long.to_str().unwrap(), silence.to_str().unwrap(), dc.to_str().unwrap()]);
        let out = ser_infer(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let whole = run(&[]);
    let duration = samples.len() as f64 / 48_000.0;
    let (windows, silent) = (whole[0]["windows"].as_u64().unwrap(), whole[0]["silent_windows"].as_u64().unwrap());
    // Windows of the checkpoint's ~0.93 s input cover all 600 s; a third or more fall in the gaps.
    assert!(windows >= 600, "{}", whole[0]);
    assert!(silent >= windows / 4 && silent < windows, "{}", whole[0]);
    assert_eq!((whole[0]["silent"].as_bool(), whole[0]["end_s"].as_f64()), (Some(false), Some(duration)));
    for quiet in &whole[1..] {
        // Digital silence and a constant offset are silence, not an emotion.
        assert_eq!((quiet["silent"].as_bool(), quiet["label"].is_null()), (Some(true), true), "{quiet}");
        assert_eq!(quiet["windows"], quiet["silent_windows"]);
    }
    let first = run(&["--first-window"]);
    assert_eq!(first[0]["windows"], 1);
    assert!(first[0]["end_s"].as_f64().unwrap() < 1.0, "the checkpoint's ~0.93 s input: {}", first[0]);
    assert_eq!((first[1]["silent"].as_bool(), first[2]["silent"].as_bool()), (Some(true), Some(true)));
    // Adapted to the recording's speech or to all the files', silent files stay silent; a
    // misspelt choice names the choices.
    for adapt in ["recording", "together"] {
        let adapted = run(&["--adapt", adapt]);
        assert_eq!(adapted[0]["windows"], whole[0]["windows"]);
        assert_ne!(adapted[0]["probabilities"], whole[0]["probabilities"], "{adapt}");
        assert_eq!((adapted[1]["silent"].as_bool(), adapted[2]["silent"].as_bool()), (Some(true), Some(true)));
    }
    let out = ser_infer(&["predict", "--checkpoint", ckpt, "--adapt", "speaker", long.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("one of off, recording, together"), "{err}");
}

#[test]
fn lossy_encodings_get_the_answer_of_the_wav() {
    // tests/data/lossy (made by make_lossy.sh there) holds clip(7, 5, 1) in MP3, Ogg and M4A.
    // The small test checkpoint's answers are close to uniform, so its top label can tie; each
    // decoding's probabilities must be nearer the WAV's than another utterance's are.
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("utterance.wav");
    std::fs::write(&wav, wav_bytes(&clip(7, 5, 1))).unwrap();
    let other = dir.path().join("other.wav");
    std::fs::write(&other, wav_bytes(&clip(7, 1, 1))).unwrap();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/lossy");
    let mut args = vec!["predict".to_string(), "--checkpoint".into(), checkpoint().display().to_string()];
    args.extend(["--format".into(), "jsonl".into(), wav.display().to_string(), other.display().to_string()]);
    for ext in ["mp3", "ogg", "m4a"] {
        args.push(fixtures.join(format!("utterance.{ext}")).display().to_string());
    }
    let out = ser_infer(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 5);
    let distance = |a: &serde_json::Value, b: &serde_json::Value| -> f64 {
        let (a, b) = (a["probabilities"].as_object().unwrap(), b["probabilities"].as_object().unwrap());
        a.iter().map(|(k, v)| (v.as_f64().unwrap() - b[k].as_f64().unwrap()).abs()).sum()
    };
    let apart = distance(&lines[1], &lines[0]);
    for line in &lines[2..] {
        assert_eq!(line["silent"].as_bool(), Some(false), "{line}");
        let near = distance(line, &lines[0]);
        assert!(
            near < apart / 2.0,
            "{} is {near:.4} from the WAV's answer, another utterance {apart:.4}",
            line["path"]
        );
    }
}

#[test]
fn timeline_and_stream_commands() {
    let dir = tempfile::tempdir().unwrap();
    let mut samples = clip(8, 3, 1);
    samples.extend(vec![0.0; 96_000]);
    samples.extend(clip(8, 6, 1));
    let path = dir.path().join("long.wav");
    let wav = wav_bytes(&samples);
    std::fs::write(&path, &wav).unwrap();
    let ckpt = checkpoint().to_str().unwrap();
    let output =
        ser_infer(&["timeline", "--checkpoint", ckpt, "--format", "jsonl", "--window", "0.9", path.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let timeline: Vec<serde_json::Value> =
        String::from_utf8_lossy(&output.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(timeline.iter().any(|s| s["silent"] == true && s["label"].is_null()));
    assert!(timeline.iter().any(|s| s["silent"] == false && s["label"].is_string()));

    let mut child = Command::new(env!("CARGO_BIN_EXE_ser-infer"))
        .args(["stream", "--checkpoint", ckpt, "--window", "0.9"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &wav));
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let streamed: Vec<serde_json::Value> =
        String::from_utf8_lossy(&output.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(streamed.len(), timeline.len());
    for (a, b) in streamed.iter().zip(&timeline) {
        assert_eq!((&a["start_s"], &a["label"]), (&b["start_s"], &b["label"]));
    }

    let output = ser_infer(&["timeline", "--checkpoint", ckpt, "--window", "0", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("window must be a positive number"));
}

#[test]
fn a_config_file_gives_defaults_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let mut samples = clip(8, 3, 1);
    samples.extend(vec![0.0; 96_000]);
    let path = dir.path().join("long.wav");
    std::fs::write(&path, wav_bytes(&samples)).unwrap();
    let ckpt = checkpoint().to_str().unwrap();
    let config = dir.path().join("infer.yaml");
    std::fs::write(&config, "format: jsonl\nwindow_s: 0.5\nhop_s: 0.5\nsilence_dbfs: -200\n").unwrap();
    let config = config.to_str().unwrap();
    let lines = |out: &std::process::Output| -> Vec<serde_json::Value> {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    // From the file: JSON lines, 0.5 s windows without overlap, nothing quiet enough to be silent.
    let from_file = lines(&ser_infer(&["timeline", "--config", config, "--checkpoint", ckpt, path.to_str().unwrap()]));
    assert_eq!(from_file[1]["start_s"], 0.5);
    assert!(from_file.iter().all(|s| s["silent"] == false), "silence_dbfs -200 marks nothing silent");
    // A flag beats the file.
    let flagged = lines(&ser_infer(&[
        "timeline",
        "--config",
        config,
        "--checkpoint",
        ckpt,
        "--hop",
        "0.25",
        path.to_str().unwrap(),
    ]));
    assert_eq!(flagged[1]["start_s"], 0.25);
    assert!(flagged.len() > from_file.len());
    // Unknown keys name the file.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "windw_s: 2\n").unwrap();
    let out = ser_infer(&["timeline", "--config", bad.to_str().unwrap(), "--checkpoint", ckpt, path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("bad.yaml") && stderr.contains("windw_s"), "{stderr}");
}

/// `ser-infer <args>` serving on a free port (its address read from stdout), its log kept.
struct Served {
    child: std::process::Child,
    addr: String,
}

impl Served {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Served {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_ser-infer"))
            .args(args)
            .args(["--addr", "127.0.0.1:0"])
            .envs(env.iter().copied())
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line.trim().strip_prefix("http://").unwrap_or_else(|| panic!("no address printed: {line:?}"));
        Served { addr: addr.to_string(), child }
    }

    /// One request (its head; `Connection: close`), the whole answer.
    fn send(&self, head: &str) -> String {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&self.addr).unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    /// SIGTERM; the exit must be graceful. Returns the log.
    fn stop(mut self) -> String {
        use std::io::Read;
        assert!(Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap().success());
        let mut stderr = String::new();
        self.child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "graceful shutdown exits 0, got {status:?}: {stderr}");
        stderr
    }
}

/// Without --checkpoint: the shipped model answers (its weights' hash in /v1/model).
#[test]
fn serve_prints_its_address_and_stops_on_sigterm() {
    let served = Served::start(&["serve"], &[]);
    let get = |path: &str| served.send(&format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    let response = get("/healthz");
    assert!(response.starts_with("HTTP/1.1 200") && response.contains("\"ok\""), "{response}");
    let shipped = ser_infer::Classifier::shipped(&candle_core::Device::Cpu).unwrap();
    let response = get("/v1/model");
    let wanted = format!("\"weights_sha256\":\"{}\"", shipped.weights_sha256());
    assert!(response.starts_with("HTTP/1.1 200") && response.contains(&wanted), "{response}");
    served.stop();
}

/// API keys from a hashes file and from SER_API_KEYS: a good key is answered, and no key, good or
/// wrong, reaches the log, even at the most verbose level.
#[test]
fn serve_with_api_keys_logs_no_key() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let file_key = "file-key-5f0c2e";
    let hashes = dir.path().join("keys.sha256");
    let digest = Command::new("sha256sum").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().and_then(|mut c| {
        c.stdin.take().unwrap().write_all(file_key.as_bytes())?;
        c.wait_with_output()
    });
    let digest = String::from_utf8(digest.unwrap().stdout).unwrap();
    std::fs::write(&hashes, format!("# the file holds hashes only\n{}\n", &digest[..64])).unwrap();
    let env_key = "env-key-93ab71";
    let served =
        Served::start(&["-vvv", "serve", "--api-keys-file", hashes.to_str().unwrap()], &[("SER_API_KEYS", env_key)]);
    let get = |key: &str| {
        let head =
            format!("GET /v1/model HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n");
        served.send(&head).split(' ').nth(1).unwrap().to_string()
    };
    assert_eq!(get(file_key), "200");
    assert_eq!(get(env_key), "200");
    assert_eq!(get("wrong-key-77d1"), "401");
    let stderr = served.stop();
    assert!(stderr.contains("API keys: 2"), "{stderr}");
    for key in [file_key, env_key, "wrong-key-77d1", &digest[..64]] {
        assert!(!stderr.contains(key), "`{key}` is in the log:\n{stderr}");
    }
}

/// `--log-format json`: one JSON object a line, one access event per request with its id (the
/// client's, or one made and sent back), method, route, status, bytes and milliseconds.
#[test]
fn serve_writes_an_access_log_line_per_request() {
    let served = Served::start(&["--log-format", "json", "serve"], &[]);
    let send = |head: &str| served.send(head);
    let response =
        send("GET /v1/model?who=me HTTP/1.1\r\nHost: x\r\nx-request-id: req-42\r\nConnection: close\r\n\r\n");
    assert!(response.to_ascii_lowercase().contains("x-request-id: req-42"), "{response}");
    let response = send("GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let made = response
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("x-request-id: ").map(str::to_string))
        .expect("a request id made and sent back");
    let stderr = served.stop();
    let events: Vec<serde_json::Value> =
        stderr.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: not JSON: {l}"))).collect();
    let access: Vec<&serde_json::Value> = events.iter().filter(|e| e["target"] == "ser_infer::access").collect();
    assert_eq!(access.len(), 2, "{stderr}");
    let (first, second) = (access[0], access[1]);
    assert_eq!(first["span"]["request_id"], "req-42");
    assert_eq!((first["span"]["method"].as_str(), first["span"]["route"].as_str()), (Some("GET"), Some("/v1/model")));
    assert_eq!(first["fields"]["status"], 200);
    assert!(first["fields"]["bytes"].as_u64().unwrap() > 100 && first["fields"]["ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(second["span"]["request_id"].as_str(), Some(made.as_str()));
    assert_eq!((second["span"]["route"].as_str(), second["fields"]["status"].as_u64()), (Some("/nowhere"), Some(404)));
    assert!(!stderr.contains("who=me"), "the query is not logged: {stderr}");
}
