//! Side-by-side benchmark: `ser-features extract` against the reference extraction
//! (`../shared/peer/extract.py`, librosa) on the same RAVDESS files, in one run, both with the
//! reference's features (`FeaturesConfig::reference()`: 40 MFCCs, 174 frames, no augmented
//! copies, whatever a pipeline adds).
//!
//! Settings: RAVDESS_DIR (folder with Actor_XX, default data/raw/ravdess), PEER_DIR (default
//! ../shared/peer), PEER_PYTHON (default /tmp/peer-venv/bin/python), BENCH_REPEATS (ser runs,
//! default 3; the reference runs once, it takes a minute). Prints one JSON line and writes it to
//! artifacts/bench/features.json. Run with `make bench-features`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn env_path(name: &str, default: &str) -> PathBuf {
    // cargo bench runs in the crate's folder: a relative path is meant from the workspace root,
    // where make runs.
    std::env::var_os(name)
        .map(|v| Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(v))
        .unwrap_or_else(|| PathBuf::from(default))
}

/// Peak resident memory of the largest child waited for so far, in MiB.
fn children_max_rss_mib() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    usage.ru_maxrss as f64 / 1024.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let raw = env_path("RAVDESS_DIR", root.join("data/raw/ravdess").to_str().unwrap());
    let peer = env_path("PEER_DIR", root.join("../shared/peer").to_str().unwrap());
    let python = env_path("PEER_PYTHON", "/tmp/peer-venv/bin/python");
    let repeats: usize = std::env::var("BENCH_REPEATS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    if !raw.is_dir() {
        eprintln!("SKIPPED: RAVDESS_DIR {} is not a folder; run `make data` first (see README)", raw.display());
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("features.yaml");
    let reference = yaml_serde::to_string(&ser_features::FeaturesConfig::reference()).unwrap();
    std::fs::write(&config, reference).unwrap();
    let out = work.path().join("features.parquet");

    let mut ser_seconds = Vec::new();
    let mut rows = 0;
    for _ in 0..repeats {
        let started = Instant::now();
        let output = Command::new(env!("CARGO_BIN_EXE_ser-features"))
            .args(["-q", "extract", "--config"])
            .arg(&config)
            .arg("--in")
            .arg(&raw)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        ser_seconds.push(started.elapsed().as_secs_f64());
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        rows = summary["rows"].as_u64().unwrap();
    }
    let ser_peak_mib = children_max_rss_mib();
    let ser_median = median(ser_seconds.clone());

    let has_peer = Command::new(&python).args(["-c", "import librosa"]).output().is_ok_and(|o| o.status.success());
    let reference = if has_peer {
        let started = Instant::now();
        let output = Command::new(&python)
            .arg(peer.join("extract.py"))
            .arg(&raw)
            .arg(work.path().join("feats.npz"))
            .output()
            .unwrap();
        let seconds = started.elapsed().as_secs_f64();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        Some((seconds, String::from_utf8_lossy(&output.stdout).trim().to_string()))
    } else {
        eprintln!("SKIPPED reference: {} has no librosa; see ../shared/peer/README.md", python.display());
        None
    };
    let result = serde_json::json!({
        "bench": "features",
        "clips": rows,
        "ser_seconds_median": (ser_median * 1000.0).round() / 1000.0,
        "ser_seconds_runs": ser_seconds,
        "ser_peak_rss_mib": (ser_peak_mib * 10.0).round() / 10.0,
        "reference_seconds": reference.as_ref().map(|r| (r.0 * 100.0).round() / 100.0),
        "reference_output": reference.as_ref().map(|r| r.1.clone()),
        "speedup": reference.as_ref().map(|r| (r.0 / ser_median * 10.0).round() / 10.0),
        "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    });
    println!("{result}");
    let dir = root.join("artifacts/bench");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("features.json"), format!("{result}\n")).unwrap();
}
