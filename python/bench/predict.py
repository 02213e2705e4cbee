"""The Python package's predict against `ser-infer predict` on the same clips, in one run.

Both sides do the same work: load the shipped model, then read, decode, resample, compute the
features of and classify each clip (the CLI also starts a process and prints JSON lines; the
package pays Python's call and dict building). Timed:
- cli: `ser-infer predict --format jsonl <clips>` as a whole process;
- python_list: `ser.Classifier().predict(clips)` (a list: files decoded and classified in
  parallel, as the CLI does);
- python_loop: `ser.Classifier()`, then `predict(clip)` one clip at a time.
Medians over BENCH_REPS repetitions (default 5), alternating sides; ratios of medians to the CLI.
Settings: SER_BIN (the binaries' folder), RAVDESS_DIR (default data/raw/ravdess), BENCH_CLIPS
(default 200), BENCH_OUT (default artifacts/bench/python.json). Run with `make bench-python`.
"""

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import ser

REPO = Path(__file__).resolve().parents[2]


def main():
    bin_dir = Path(os.environ.get("SER_BIN", REPO / "target" / "release"))
    ravdess = Path(os.environ.get("RAVDESS_DIR", REPO / "data" / "raw" / "ravdess"))
    n = int(os.environ.get("BENCH_CLIPS", "200"))
    reps = int(os.environ.get("BENCH_REPS", "5"))
    out = Path(os.environ.get("BENCH_OUT", REPO / "artifacts" / "bench" / "python.json"))
    clips = sorted(ravdess.rglob("*.wav"))[:n]
    if len(clips) < n:
        sys.exit(f"{ravdess}: {len(clips)} WAV files, the benchmark needs {n}; run `make data-ravdess` first")
    paths = [str(p) for p in clips]

    def cli():
        subprocess.run([bin_dir / "ser-infer", "--quiet", "predict", "--format", "jsonl", *paths], check=True, stdout=subprocess.DEVNULL)

    def python_list():
        ser.Classifier().predict(paths)

    def python_loop():
        clf = ser.Classifier()
        for p in paths:
            clf.predict(p)

    sides = {"cli": cli, "python_list": python_list, "python_loop": python_loop}
    for side in sides.values():  # warm-up: page cache, first-call costs
        side()
    times = {name: [] for name in sides}
    for _ in range(reps):
        for name, side in sides.items():
            start = time.perf_counter()
            side()
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in times.items()}
    report = {
        "bench": "python",
        "clips": n,
        "reps": reps,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "model_sha256": ser.Classifier().sha256,
        **{f"{name}_s_median": round(m, 4) for name, m in medians.items()},
        **{f"{name}_clips_per_s": round(n / m, 1) for name, m in medians.items()},
        "python_list_over_cli": round(medians["python_list"] / medians["cli"], 3),
        "python_loop_over_cli": round(medians["python_loop"] / medians["cli"], 3),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n")
    tmp.replace(out)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
