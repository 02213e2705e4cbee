#!/usr/bin/env python3
"""What a model answers for audio that is not speech: silence, noise and piano-like chords,
20 seeded synthetic 4 s signals of each at 16 kHz. Prints JSON: for each input, the count of
each answer and the mean confidence. The shipped model's card quotes it.

    pip install ./python          # the ser package (or a built wheel)
    python3 scripts/model-non-speech.py [CHECKPOINT_DIR]   # default: the shipped model
"""

import collections
import json
import math
import sys

import numpy as np

import ser

RATE = 16000
SECONDS = 4
N = 20


def at_level(x, dbfs):
    """`x` scaled to an RMS level in dB full scale."""
    return (x / np.sqrt(np.mean(x**2)) * 10 ** (dbfs / 20)).astype(np.float32)


def white(seed, dbfs):
    return at_level(np.random.default_rng(seed).standard_normal(SECONDS * RATE), dbfs)


def brown(seed):
    x = np.cumsum(np.random.default_rng(100 + seed).standard_normal(SECONDS * RATE))
    x -= np.convolve(x, np.ones(400) / 400, "same")  # no drift below 40 Hz
    return at_level(x, -25)


def chords(seed):
    """Eight half-second chords of three notes (C3-B4), four harmonics each, decaying."""
    g = np.random.default_rng(200 + seed)
    t = np.arange(SECONDS * RATE) / RATE
    out = np.zeros(t.size)
    for k in range(2 * SECONDS):
        part = slice(k * RATE // 2, (k + 1) * RATE // 2)
        for note in g.choice(np.arange(48, 72), 3, replace=False):
            f = 440 * 2 ** ((note - 69) / 12)
            tone = sum(np.sin(2 * math.pi * h * f * t[part]) / h for h in range(1, 5))
            out[part] += tone * np.exp(-3 * (t[part] - t[part][0]))
    return at_level(out, -20)


def answers(clf, make, n=N):
    counts, confidences = collections.Counter(), []
    for seed in range(n):
        r = clf.predict(make(seed), RATE)
        counts["(silent)" if r["silent"] else r["label"]] += 1
        if r["confidence"] is not None:
            confidences.append(r["confidence"])
    mean = round(float(np.mean(confidences)), 2) if confidences else None
    return {"answers": dict(counts.most_common()), "mean_confidence": mean}


def main():
    clf = ser.Classifier(sys.argv[1] if len(sys.argv) > 1 else None)
    report = {
        "model": clf.path,
        "weights_sha256": clf.sha256,
        "silence (digital zero)": answers(clf, lambda s: np.zeros(SECONDS * RATE, np.float32), 1),
        "white noise, -30 dBFS": answers(clf, lambda s: white(s, -30)),
        "white noise, -45 dBFS": answers(clf, lambda s: white(s, -45)),
        "brown noise, -25 dBFS": answers(clf, brown),
        "piano-like chords, -20 dBFS": answers(clf, chords),
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
