#!/usr/bin/env python3
"""A feature stage written in Python: the swap test of tests/pipeline.sh.

Reads RAVDESS-named WAV files with the standard library, computes 40 log-mel energies per frame
with numpy (its own resampling and filter bank, not ser's), and writes a feature table in ser's
schema with pyarrow. The table's metadata declares the config these features follow, so the
later stages (split, train, predict, eval) take it like one written by ser-features.

    python3 tests/python_features.py RAW_DIR OUT.parquet
"""
import hashlib
import json
import os
import sys
import wave

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

RATE, N_FFT, HOP, N_MELS, FRAMES = 16000, 512, 256, 40, 100
CONFIG = {  # the keys of ser's features.yaml; kind log_mel: n_mels coefficients per frame
    "sample_rate": RATE, "n_fft": N_FFT, "hop_length": HOP, "n_mels": N_MELS, "fmin": 0.0,
    "fmax": None, "top_db": 80.0, "kind": "log_mel", "n_mfcc": 20, "deltas": False,
    "frames": FRAMES, "pad": "silence", "max_duration_s": 60.0,
}
EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry",
            "06": "fearful", "07": "disgust", "08": "surprised"}


def mel_filters():
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)
    hz = lambda m: 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    edges = hz(np.linspace(mel(0.0), mel(RATE / 2), N_MELS + 2))
    bins = np.fft.rfftfreq(N_FFT, 1.0 / RATE)
    fb = np.zeros((N_MELS, bins.size))
    for m in range(N_MELS):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        fb[m] = np.clip(np.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid)), 0.0, None)
    return fb


def features(path, fb):
    with wave.open(path) as w:
        rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        raw = w.readframes(w.getnframes())
    if width != 2:
        raise ValueError(f"{path}: {8 * width}-bit samples; this stage reads 16-bit PCM only")
    x = np.frombuffer(raw, dtype="<i2").astype(np.float64).reshape(-1, channels).mean(axis=1) / 32768.0
    duration = x.size / rate
    t = np.arange(int(duration * RATE)) / RATE
    x = np.interp(t, np.arange(x.size) / rate, x)
    x = np.pad(x, N_FFT // 2, mode="reflect")
    n = 1 + (x.size - N_FFT) // HOP
    frames = np.stack([x[i * HOP:i * HOP + N_FFT] for i in range(n)]) * np.hanning(N_FFT)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    db = 10.0 * np.log10(np.maximum(power @ fb.T, 1e-10))
    db = np.maximum(db, db.max() - CONFIG["top_db"])
    silence = db.min()
    out = np.full((FRAMES, N_MELS), silence)
    out[:min(n, FRAMES)] = db[:FRAMES]
    return out.astype(np.float32), n, rate, channels, duration


def main(raw_dir, out_path):
    fb = mel_filters()
    rows = []
    for root, _, files in os.walk(raw_dir):
        for name in files:
            if name.lower().endswith(".wav"):
                rows.append(os.path.relpath(os.path.join(root, name), raw_dir))
    rows.sort()
    cols = {k: [] for k in ["clip_id", "path", "corpus", "speaker", "label", "source_sample_rate",
                            "source_channels", "duration_s", "sha256", "n_frames_source", "n_frames",
                            "features"]}
    for rel in rows:
        path = os.path.join(raw_dir, rel)
        stem = os.path.splitext(os.path.basename(rel))[0]
        parts = stem.split("-")
        feats, n, rate, channels, duration = features(path, fb)
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        for k, v in [("clip_id", stem), ("path", rel), ("corpus", "ravdess"), ("speaker", parts[6]),
                     ("label", EMOTIONS[parts[2]]), ("source_sample_rate", rate),
                     ("source_channels", channels), ("duration_s", duration), ("sha256", digest),
                     ("n_frames_source", n), ("n_frames", FRAMES), ("features", feats.ravel().tolist())]:
            cols[k].append(v)
    u32 = pa.uint32()
    types = {"source_sample_rate": u32, "source_channels": u32, "n_frames_source": u32, "n_frames": u32,
             "duration_s": pa.float64(), "features": pa.list_(pa.float32())}
    table = pa.table({k: pa.array(v, type=types.get(k, pa.string())) for k, v in cols.items()})
    table = table.replace_schema_metadata({
        "ser.format_version": "1", "ser.features_config": json.dumps(CONFIG),
        "ser.n_coeffs": str(N_MELS), "ser.writer": "tests/python_features.py",
    })
    tmp = out_path + ".tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, out_path)
    print(json.dumps({"rows": table.num_rows, "output": out_path}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
