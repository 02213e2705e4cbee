//! `make bench-soak`: `ser-infer serve` under 100,000 mixed requests from 16 concurrent clients
//! (predict, timeline, form uploads, bad bodies, wrong keys, health checks, live streams opened
//! and closed: the driver of `tests/it/soak.rs`), with API keys, metrics and JSON access logs on.
//! Reports throughput, p50/p99, answers other than the expected ones, the server's resident
//! memory after warm-up and at the end, and its open descriptors at the start and the end.
//! First, side by side in one run, the same work with keys and logs on and off (the metrics are
//! always counted), alternating, `BENCH_SOAK_REPS` times: the ratio of their median throughputs.
//! Settings: BENCH_SOAK_REQUESTS (default 100000), BENCH_SOAK_COMPARE (requests a comparison run,
//! default 10000), BENCH_SOAK_REPS (default 3), BENCH_SOAK_CLIENTS (default 16). Prints one JSON
//! line and writes artifacts/bench/soak.json.

#[allow(dead_code)]
#[path = "../tests/it/soak.rs"]
mod soak;

use std::path::Path;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let requests = env_usize("BENCH_SOAK_REQUESTS", 100_000);
    let compare = env_usize("BENCH_SOAK_COMPARE", 10_000);
    let reps = env_usize("BENCH_SOAK_REPS", 3);
    let clients = env_usize("BENCH_SOAK_CLIENTS", 16);
    let binary = Path::new(env!("CARGO_BIN_EXE_ser-infer"));
    let dir = std::env::temp_dir().join(format!("ser-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (mut plain, mut full) = (Vec::new(), Vec::new());
    for rep in 0..reps {
        for keys in [false, true] {
            let service = soak::Service::start(binary, keys, &dir.join("compare.log"));
            let report = soak::run(&service, compare, clients);
            assert_eq!(report.unexpected, 0, "{:?}", report.unexpected_examples);
            eprintln!("rep {rep}, keys and logs {}: {:.0} requests/s", if keys { "on" } else { "off" }, report.per_s);
            if keys { full.push(report.per_s) } else { plain.push(report.per_s) }
        }
    }
    let service = soak::Service::start(binary, true, &dir.join("soak.log"));
    let report = soak::run(&service, requests, clients);
    let log_lines = std::fs::read_to_string(dir.join("soak.log")).map(|l| l.lines().count()).unwrap_or(0);
    let json = serde_json::json!({
        "bench": "soak",
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "clients": clients,
        "requests": report.requests,
        "seconds": (report.seconds * 10.0).round() / 10.0,
        "requests_per_s": report.per_s.round(),
        "p50_ms": (report.p50_ms * 100.0).round() / 100.0,
        "p99_ms": (report.p99_ms * 100.0).round() / 100.0,
        "unexpected": report.unexpected,
        "unexpected_examples": report.unexpected_examples,
        "rss_after_warm_up_kib": report.rss_warm_kib,
        "rss_end_kib": report.rss_end_kib,
        "rss_end_over_warm": ((report.rss_end_kib as f64 / report.rss_warm_kib.max(1) as f64) * 1000.0).round() / 1000.0,
        "fds_start": report.fds_start,
        "fds_end": report.fds_end,
        "log_lines": log_lines,
        "compare_requests": compare,
        "compare_reps": reps,
        "keys_and_logs_off_requests_per_s_median": median(plain.clone()).round(),
        "keys_and_logs_on_requests_per_s_median": median(full.clone()).round(),
        "on_over_off": ((median(full) / median(plain)) * 1000.0).round() / 1000.0,
    });
    let _ = std::fs::remove_dir_all(&dir);
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../artifacts/bench/soak.json");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let tmp = out.with_extension("json.tmp");
    std::fs::write(&tmp, format!("{json:#}\n")).unwrap();
    std::fs::rename(&tmp, &out).unwrap();
    println!("{json}");
}
