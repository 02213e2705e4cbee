//! Side-by-side inference benchmark on RAVDESS, in one run, each figure the same work on both
//! sides:
//! - batch throughput of ready features (clips per second, all cores): ser's checkpoint
//!   (standardisation, then the network) on the feature matrices of `BENCH_BATCH_CLIPS` clips in
//!   batches of 64, vs Keras `model.predict(X, batch_size=64)` on the same matrices;
//! - batch throughput from files (all cores): ser reading, decoding, resampling, computing MFCC
//!   and classifying the same files as the reference's librosa load + MFCC + `model.predict`;
//! - one clip end to end (read the file, decode, resample, MFCC, forward) on one core, ser vs the
//!   reference's `predict_emotion` (`../shared/peer/infer_bench.py`), with the ratio of medians,
//!   and the same for the shipped model (or the checkpoint `BENCH_DEPLOY_CHECKPOINT` names; an
//!   ensemble's first member alone is timed beside it, clip by clip, and so is a candidate
//!   checkpoint named by `BENCH_CANDIDATE_CHECKPOINT`, with the ratio of their medians);
//! - the real-time factor of the timeline/stream windows over a long recording;
//! - a bounded load test of the HTTP service on loopback (2,000 requests, 16 concurrent);
//! - how many live streams (`/v1/stream`) at once the machine holds in real time.
//!
//! The weights do not change the amount of work, so both sides use a reference-size network
//! trained for one epoch here (ser) or freshly built (Keras). Settings: RAVDESS_DIR (default
//! data/raw/ravdess), PEER_DIR (default ../shared/peer), PEER_PYTHON (default
//! /tmp/peer-venv/bin/python), BENCH_CLIPS (one-clip latency, default 50), BENCH_BATCH_CLIPS
//! (default 256), BENCH_REPS (default 5), BENCH_REQUESTS (default 2000). Throughputs are medians
//! over the repetitions. Prints one JSON line and writes artifacts/bench/infer.json. Run with
//! `make bench-infer`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use candle_core::Device;
use ser_features::FeaturesConfig;
use ser_features::audio::load_for_analysis;
use ser_features::dsp::Analyzer;
use ser_infer::server::{ServeConfig, serve};
use ser_infer::timeline::Span;
use ser_infer::{Classifier, TimelineConfig, timeline};
use ser_model::checkpoint::DataProvenance;
use ser_model::config::ModelConfig;
use ser_model::data::Dataset;
use ser_model::train::{Quiet, TrainData, TrainOptions, train};

fn env_path(name: &str, default: &Path) -> PathBuf {
    // cargo bench runs in the crate's folder: a relative path is meant from the workspace root,
    // where make runs.
    std::env::var_os(name)
        .map(|v| Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(v))
        .unwrap_or_else(|| default.to_path_buf())
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One clip end to end (the file read, then `predict_wav`), its milliseconds pushed onto `into`.
fn time_one_clip(classifier: &Classifier, path: &Path, into: &mut Vec<f64>) {
    let t0 = Instant::now();
    classifier.predict_wav(&std::fs::read(path).unwrap()).unwrap();
    into.push(t0.elapsed().as_secs_f64() * 1000.0);
}

fn quantile(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

/// A float32 array as a .npy file.
fn write_npy(path: &Path, shape: &[usize], values: &[f32]) {
    std::fs::write(path, ser_features::io::npy_bytes(shape, values)).unwrap();
}

fn pin_to_cpu0() {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET writes within it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        assert_eq!(libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set), 0, "pinning to CPU 0");
    }
}

fn clips(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for actor in std::fs::read_dir(root).unwrap_or_else(|e| panic!("{}: {e}; run make data", root.display())) {
        let actor = actor.unwrap().path();
        if actor.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("Actor_")) {
            for f in std::fs::read_dir(&actor).unwrap() {
                let f = f.unwrap().path();
                if f.extension().is_some_and(|e| e == "wav") {
                    out.push(f);
                }
            }
        }
    }
    out.sort();
    out
}

/// A reference-size checkpoint (reference features and network), one epoch on 64 clips.
fn checkpoint(paths: &[PathBuf], dir: &Path) {
    let config = FeaturesConfig::reference();
    let analyzer = Analyzer::new(&config);
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for (i, path) in paths.iter().take(64).enumerate() {
        let bytes = std::fs::read(path).unwrap();
        let (_, samples) = load_for_analysis(&bytes, config.sample_rate, config.n_fft, config.max_duration_s).unwrap();
        features.extend(analyzer.features(&samples).matrix.values);
        labels.push(Some((i % 8) as u32));
    }
    let n = labels.len();
    let classes = ser_features::labels::EMOTIONS.iter().map(|s| s.to_string()).collect();
    let data = Dataset {
        clip_ids: (0..n).map(|i| i.to_string()).collect(),
        classes,
        genders: vec![None; n],
        corpora: Vec::new(),
        speakers: Vec::new(),
        labels,
        n_frames: 174,
        n_coeffs: 40,
        features,
    };
    let model = ModelConfig { max_epochs: 1, seed: 42, ..ModelConfig::reference() };
    let provenance = DataProvenance {
        features_path: "bench".into(),
        features_sha256: String::new(),
        splits_path: "bench".into(),
        splits_sha256: String::new(),
        split_config: "bench".into(),
        fold: 0,
        n_train: n,
        n_val: n,
        n_test: 0,
    };
    let train_data = TrainData { train: &data, val: &data, features_config: &config, provenance };
    let options = TrainOptions { out_dir: Some(dir), ..TrainOptions::in_memory(&Device::Cpu) };
    train(&train_data, &model, &options, &Quiet).unwrap();
}

/// Keras on the same work: `model.predict` on the ready features, and the reference's librosa
/// load + MFCC + predict on the same files. Prints one JSON line of medians.
const KERAS_BATCH: &str = r#"
import json, os, statistics, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
sys.path.insert(0, sys.argv[1])
import train_eval
from extract import mfcc_features
work, reps = sys.argv[2], int(sys.argv[3])
X = np.load(os.path.join(work, "x.npy"))
paths = open(os.path.join(work, "paths.txt")).read().splitlines()
model = train_eval.build_model()
model.predict(X[:64], batch_size=64, verbose=0)  # warm-up: graph tracing
ready = []
for _ in range(reps):
    t0 = time.perf_counter(); model.predict(X, batch_size=64, verbose=0); ready.append(time.perf_counter() - t0)
files = []
for _ in range(reps):
    t0 = time.perf_counter()
    F = np.stack([mfcc_features(p) for p in paths])
    model.predict((F - 0.0) / 1.0, batch_size=64, verbose=0).argmax(1)
    files.append(time.perf_counter() - t0)
print(json.dumps({"features_clips_per_s": len(X) / statistics.median(ready),
                  "files_clips_per_s": len(paths) / statistics.median(files)}))
"#;

const KERAS_MODEL: &str = r#"
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
sys.path.insert(0, sys.argv[1])
import train_eval
model = train_eval.build_model()
model.save(os.path.join(sys.argv[2], "model.keras"))
np.savez(os.path.join(sys.argv[2], "norm.npz"), mean=np.zeros(40, np.float32), std=np.ones(40, np.float32))
"#;

fn http_predict(addr: std::net::SocketAddr, body: &[u8]) -> (u16, Duration) {
    let t0 = Instant::now();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let head = format!(
        "POST /v1/predict HTTP/1.1\r\nHost: bench\r\nConnection: close\r\nContent-Type: audio/wav\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let status = String::from_utf8_lossy(&response[..12.min(response.len())])
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, t0.elapsed())
}

/// Concurrent live streams tried, and seconds of audio each sends.
const STREAM_COUNTS: [usize; 6] = [1, 4, 16, 64, 128, 256];
const STREAM_SECONDS: usize = 30;

/// Serves `classifier` on a loopback port from a thread of its own; send on the channel to stop.
fn start_server(
    classifier: Arc<Classifier>,
    config: ServeConfig,
) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>, std::thread::JoinHandle<()>) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (ready, addr_rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
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
    (addr_rx.recv().unwrap(), stop, server)
}

/// One live stream of `pcm` (float32 at `rate`): the time from connecting to its last message.
async fn live_stream(addr: std::net::SocketAddr, rate: u32, pcm: Arc<Vec<u8>>) -> Duration {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let t0 = Instant::now();
    let url = format!("ws://{addr}/v1/stream?sample_rate={rate}");
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    for chunk in pcm.chunks(4 * rate as usize / 10) {
        socket.send(Message::Binary(chunk.to_vec().into())).await.unwrap();
    }
    socket.send(Message::Text("end".into())).await.unwrap();
    while let Some(message) = socket.next().await {
        match message.unwrap() {
            Message::Text(text) if text.contains("\"done\"") => break,
            Message::Close(frame) => panic!("stream closed before its end: {frame:?}"),
            _ => {}
        }
    }
    t0.elapsed()
}

fn main() {
    // As the binaries do (see the function); SAFETY: no other thread runs yet.
    unsafe { ser_model::use_inline_elementwise_ops() };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let ravdess = env_path("RAVDESS_DIR", &root.join("data/raw/ravdess"));
    let peer = env_path("PEER_DIR", &root.join("../shared/peer"));
    let python = env_path("PEER_PYTHON", Path::new("/tmp/peer-venv/bin/python"));
    let n_clips = env_usize("BENCH_CLIPS", 50);
    let n_batch = env_usize("BENCH_BATCH_CLIPS", 256);
    let reps = env_usize("BENCH_REPS", 5);
    let n_requests = env_usize("BENCH_REQUESTS", 2000);
    let all = clips(&ravdess);
    assert!(!all.is_empty(), "{}: no Actor_*/*.wav; run make data", ravdess.display());
    let paths: Vec<PathBuf> = all.iter().take(n_clips).cloned().collect();
    let work = tempfile::tempdir().unwrap();
    let ckpt = work.path().join("ser");
    std::fs::create_dir_all(&ckpt).unwrap();
    checkpoint(&all, &ckpt);
    let classifier = Arc::new(Classifier::load(&ckpt, &Device::Cpu).unwrap());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut report = serde_json::json!({"bench": "infer", "clips": paths.len(), "cores": cores, "reps": reps});
    let has_keras =
        Command::new(&python).args(["-c", "import tensorflow, librosa"]).output().is_ok_and(|o| o.status.success());

    // Batch throughput, all cores, ready features: the raw matrices of the batch clips (the
    // checkpoint standardises them, as a feature table's rows).
    let batch_paths: Vec<PathBuf> = all.iter().take(n_batch).cloned().collect();
    let audio: Vec<ser_features::audio::Audio> =
        batch_paths.iter().map(|p| ser_features::io::read_audio(p, 600.0).unwrap()).collect();
    let mut ready: Vec<f32> = Vec::new();
    for a in &audio {
        ready.extend(classifier.features(&a.samples, a.sample_rate).unwrap());
    }
    let checkpoint = classifier.checkpoint();
    let per_clip = 174 * 40;
    let mut times = Vec::new();
    for _ in 0..reps {
        let t0 = Instant::now();
        for batch in ready.chunks(64 * per_clip) {
            let p = checkpoint.probabilities(batch, batch.len() / per_clip).unwrap();
            assert_eq!(p.len(), batch.len() / per_clip);
        }
        times.push(t0.elapsed().as_secs_f64());
    }
    let ser_features_rate = n_batch as f64 / quantile(times, 0.5);
    report["batch_clips"] = n_batch.into();
    report["ser_batch_features_clips_per_s"] = round(ser_features_rate, 1).into();

    // Batch throughput, all cores, from the files: read, decode, resample, MFCC, classify.
    let mut times = Vec::new();
    for _ in 0..reps {
        let t0 = Instant::now();
        let mut n_ok = 0;
        // The reference classifies each file's first 174 frames: so does this side (a RAVDESS
        // clip over the 4.04 s window would otherwise get a second, tail window).
        let windows = TimelineConfig::for_classifier(&classifier);
        ser_infer::files::predict_files(&classifier, &batch_paths, 600.0, &windows, Span::FirstWindow, |_, r| {
            n_ok += r.is_ok() as usize;
            Ok(())
        })
        .unwrap();
        assert_eq!(n_ok, n_batch);
        times.push(t0.elapsed().as_secs_f64());
    }
    let ser_files_rate = n_batch as f64 / quantile(times, 0.5);
    report["ser_batch_files_clips_per_s"] = round(ser_files_rate, 1).into();

    if has_keras {
        write_npy(&work.path().join("x.npy"), &[n_batch, 174, 40], &ready);
        let list: Vec<String> = batch_paths.iter().map(|p| p.display().to_string()).collect();
        std::fs::write(work.path().join("paths.txt"), list.join("\n")).unwrap();
        let output = Command::new(&python)
            .args(["-c", KERAS_BATCH])
            .arg(&peer)
            .arg(work.path())
            .arg(reps.to_string())
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let keras: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let (features, files) =
            (keras["features_clips_per_s"].as_f64().unwrap(), keras["files_clips_per_s"].as_f64().unwrap());
        report["keras_batch_features_clips_per_s"] = round(features, 1).into();
        report["reference_batch_files_clips_per_s"] = round(files, 1).into();
        report["batch_features_ratio_ser_over_keras"] = round(ser_features_rate / features, 2).into();
        report["batch_files_ratio_ser_over_reference"] = round(ser_files_rate / files, 2).into();
    }
    let audio: Vec<(Vec<f32>, u32)> = audio.into_iter().take(paths.len()).map(|a| (a.samples, a.sample_rate)).collect();

    // Real-time factor of the windowed timeline over the clips end to end (~3.5 s each).
    let (mut long, rate) = (Vec::new(), audio[0].1);
    for (s, r) in &audio {
        if *r == rate {
            long.extend_from_slice(s);
        }
    }
    let config = TimelineConfig::for_classifier(&classifier);
    let t0 = Instant::now();
    let segments = timeline(&classifier, &long, rate, &config).unwrap();
    let timeline_s = t0.elapsed().as_secs_f64();
    let audio_s = long.len() as f64 / rate as f64;
    report["timeline_audio_s"] = round(audio_s, 1).into();
    report["timeline_windows"] = segments.len().into();
    report["timeline_real_time_factor"] = round(timeline_s / audio_s, 4).into();

    // HTTP load test on loopback, all cores.
    let server_config =
        ServeConfig { max_concurrent: cores, max_streams: *STREAM_COUNTS.last().unwrap(), ..ServeConfig::defaults() };
    let (addr, stop, server) = start_server(classifier.clone(), server_config);
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(paths.iter().take(16).map(|p| std::fs::read(p).unwrap()).collect());
    let t0 = Instant::now();
    let clients: Vec<_> = (0..16)
        .map(|c| {
            let bodies = bodies.clone();
            std::thread::spawn(move || {
                (0..n_requests / 16).map(|i| http_predict(addr, &bodies[(c + i) % bodies.len()])).collect::<Vec<_>>()
            })
        })
        .collect();
    let answers: Vec<(u16, Duration)> = clients.into_iter().flat_map(|c| c.join().unwrap()).collect();
    let load_s = t0.elapsed().as_secs_f64();
    let ok = answers.iter().filter(|(s, _)| *s == 200).count();
    let latencies: Vec<f64> = answers.iter().map(|(_, d)| d.as_secs_f64() * 1000.0).collect();
    report["http_requests"] = answers.len().into();
    report["http_ok"] = ok.into();
    report["http_concurrency"] = 16.into();
    report["http_requests_per_s"] = round(answers.len() as f64 / load_s, 1).into();
    report["http_ms_p50"] = round(quantile(latencies.clone(), 0.5), 1).into();
    report["http_ms_p99"] = round(quantile(latencies, 0.99), 1).into();

    // Live streams (/v1/stream) at once: each sends STREAM_SECONDS of a recording as fast as the
    // socket takes it, in 100 ms messages, then `end`. A stream's real-time factor is its wall
    // time to the last window over its audio's length; k streams hold real time when every one
    // stays under 1 (audio that arrives paced is no more work).
    let stream_audio: Vec<f32> = long.iter().copied().take(STREAM_SECONDS * rate as usize).collect();
    let audio_s = stream_audio.len() as f64 / rate as f64;
    let pcm: Arc<Vec<u8>> = Arc::new(stream_audio.iter().flat_map(|s| s.to_le_bytes()).collect());
    let client = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut streams = serde_json::Map::new();
    let mut held = 0;
    for &k in &STREAM_COUNTS {
        let rtfs: Vec<f64> = client.block_on(async {
            let tasks: Vec<_> = (0..k).map(|_| tokio::spawn(live_stream(addr, rate, pcm.clone()))).collect::<Vec<_>>();
            let mut rtfs = Vec::new();
            for task in tasks {
                rtfs.push(task.await.unwrap().as_secs_f64() / audio_s);
            }
            rtfs
        });
        let worst = rtfs.iter().copied().fold(0.0, f64::max);
        if worst < 1.0 {
            held = k;
        }
        streams.insert(
            k.to_string(),
            serde_json::json!({"rtf_median": round(quantile(rtfs.clone(), 0.5), 3), "rtf_max": round(worst, 3)}),
        );
    }
    report["streams_audio_s"] = round(audio_s, 1).into();
    report["streams"] = streams.into();
    report["streams_held_in_real_time"] = held.into();
    let _ = stop.send(());
    server.join().unwrap();

    // One clip end to end on one core: the calls run in a one-thread pool pinned to CPU 0, so the
    // library's parallel parts (rayon) stay on that core too; the Python child inherits the
    // pinning of this thread.
    pin_to_cpu0();
    let one_core = rayon::ThreadPoolBuilder::new().num_threads(1).start_handler(|_| pin_to_cpu0()).build().unwrap();
    let single = one_core.install(|| {
        let _ = classifier.predict_wav(&std::fs::read(&paths[0]).unwrap()).unwrap(); // warm-up
        let mut single = Vec::new();
        for _ in 0..3 {
            for p in &paths {
                time_one_clip(&classifier, p, &mut single);
            }
        }
        single
    });
    let ser_median = quantile(single.clone(), 0.5);
    report["ser_clip_ms_median"] = round(ser_median, 2).into();
    report["ser_clip_ms_p90"] = round(quantile(single.clone(), 0.9), 2).into();
    report["ser_clip_ms_p99"] = round(quantile(single, 0.99), 2).into();

    // The same, with the model an application gets: the shipped one (built in), or the
    // checkpoint BENCH_DEPLOY_CHECKPOINT names (its network, attention pooling included, and
    // every member of an ensemble). Its budget is absolute (10 ms a clip on one core).
    {
        let shipped = match std::env::var_os("BENCH_DEPLOY_CHECKPOINT") {
            Some(_) => Classifier::load(&env_path("BENCH_DEPLOY_CHECKPOINT", &root), &Device::Cpu).unwrap(),
            None => Classifier::shipped(&Device::Cpu).unwrap(),
        };
        // An ensemble's first member alone, timed clip by clip beside it: what the members cost.
        let member = shipped.checkpoint().ensemble.as_ref().map(|e| {
            let source = Path::new(&e.members[0].source);
            let source = if source.is_absolute() { source.to_path_buf() } else { root.join(source) };
            Classifier::load(&source, &Device::Cpu).unwrap()
        });
        // A candidate checkpoint (another recipe, another feature config), timed clip by clip
        // beside it when BENCH_CANDIDATE_CHECKPOINT names one: is it still within the budget?
        let candidate = std::env::var_os("BENCH_CANDIDATE_CHECKPOINT").map(PathBuf::from);
        let candidate = candidate.map(|c| (c.display().to_string(), Classifier::load(&c, &Device::Cpu).unwrap()));
        let (times, member_times, candidate_times) = one_core.install(|| {
            let _ = shipped.predict_wav(&std::fs::read(&paths[0]).unwrap()).unwrap(); // warm-up
            if let Some((_, c)) = &candidate {
                let _ = c.predict_wav(&std::fs::read(&paths[0]).unwrap()).unwrap();
            }
            let (mut times, mut member_times, mut candidate_times) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..3 {
                for p in &paths {
                    time_one_clip(&shipped, p, &mut times);
                    if let Some(member) = &member {
                        time_one_clip(member, p, &mut member_times);
                    }
                    if let Some((_, c)) = &candidate {
                        time_one_clip(c, p, &mut candidate_times);
                    }
                }
            }
            (times, member_times, candidate_times)
        });
        report["deploy_checkpoint"] = shipped.dir().display().to_string().into();
        report["deploy_weights_sha256"] = shipped.weights_sha256().into();
        report["deploy_members"] = shipped.checkpoint().members.len().into();
        let deploy_median = quantile(times.clone(), 0.5);
        report["deploy_clip_ms_median"] = round(deploy_median, 2).into();
        report["deploy_clip_ms_p99"] = round(quantile(times, 0.99), 2).into();
        if !member_times.is_empty() {
            report["deploy_one_member_clip_ms_median"] = round(quantile(member_times.clone(), 0.5), 2).into();
            report["deploy_one_member_clip_ms_p99"] = round(quantile(member_times, 0.99), 2).into();
        }
        if let Some((name, c)) = &candidate {
            let median = quantile(candidate_times.clone(), 0.5);
            report["candidate_checkpoint"] = name.clone().into();
            report["candidate_members"] = c.checkpoint().members.len().into();
            report["candidate_n_coeffs"] = c.checkpoint().n_coeffs().into();
            report["candidate_clip_ms_median"] = round(median, 2).into();
            report["candidate_clip_ms_p99"] = round(quantile(candidate_times, 0.99), 2).into();
            report["candidate_over_deploy"] = round(median / deploy_median, 3).into();
        }
    }

    if has_keras {
        let keras_dir = work.path().join("keras");
        std::fs::create_dir_all(&keras_dir).unwrap();
        let made = Command::new(&python).args(["-c", KERAS_MODEL]).arg(&peer).arg(&keras_dir).status().unwrap();
        assert!(made.success(), "building the Keras reference model failed");
        let output = Command::new(&python)
            .current_dir(&peer)
            .env("TF_NUM_INTRAOP_THREADS", "1")
            .env("TF_NUM_INTEROP_THREADS", "1")
            .arg(peer.join("infer_bench.py"))
            .arg(&keras_dir)
            .arg(&ravdess)
            .arg(paths.len().to_string())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line =
            stdout.lines().rev().find(|l| l.starts_with('{')).unwrap_or_else(|| {
                panic!("infer_bench.py printed no JSON: {}", String::from_utf8_lossy(&output.stderr))
            });
        let peer_report: serde_json::Value = serde_json::from_str(line).unwrap();
        let peer_median = peer_report["clip_ms_median"].as_f64().unwrap();
        report["reference"] = peer_report;
        report["clip_median_ratio_reference_over_ser"] = round(peer_median / ser_median, 1).into();
    } else {
        report["reference"] =
            format!("skipped: {} lacks tensorflow/librosa (see ../shared/peer/README.md)", python.display()).into();
    }
    println!("{report}");
    let out = root.join("artifacts/bench/infer.json");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    std::fs::write(&out, format!("{}\n", serde_json::to_string_pretty(&report).unwrap())).unwrap();
}
