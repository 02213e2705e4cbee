"""Writes the librosa golden fixtures for ser-features' MFCC tests.

Run once from the repository root (needs numpy, soundfile, librosa 0.11):
    python3 crates/ser-features/tests/data/make_golden.py            # every fixture
    python3 crates/ser-features/tests/data/make_golden.py prosody    # the prosody one alone
It writes two small WAV files the project generates itself and, for each, what librosa 0.11
computes from them. The Rust tests compare against these within stated tolerances.
"""
import json
import os

import librosa
import numpy as np
import soundfile as sf

HERE = os.path.dirname(os.path.abspath(__file__))


def signal(sr, seconds, seed):
    """A voiced-speech-like test signal: a gliding harmonic tone, noise bursts and a silent gap."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    f0 = 140 + 60 * np.sin(2 * np.pi * 1.3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    y = sum(np.sin(k * phase) / k for k in range(1, 12))
    y *= 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2
    y += 0.05 * rng.standard_normal(len(t))
    y[int(0.45 * len(t)):int(0.55 * len(t))] = 0.0  # digital silence in the middle
    return (0.3 * y / np.max(np.abs(y))).astype(np.float32)


def dump(name, arrays):
    with open(os.path.join(HERE, name), "w") as f:
        json.dump({k: (np.round(v.astype(np.float64), 5).tolist() if isinstance(v, np.ndarray) else v)
                   for k, v in arrays.items()}, f, separators=(",", ":"))


def main():
    # 1. Mono 16-bit at the analysis rate: no resampling, so this checks the MFCC definition.
    y = signal(22050, 1.0, 1)
    sf.write(os.path.join(HERE, "tone_22050.wav"), y, 22050, subtype="PCM_16")
    y, sr = librosa.load(os.path.join(HERE, "tone_22050.wav"), sr=None)
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=40)
    log_mel = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr))
    dump("tone_22050.librosa.json", {
        "librosa": librosa.__version__, "sr": sr, "n_samples": len(y),
        "mfcc": mfcc.T, "log_mel": log_mel.T,
        "delta": librosa.feature.delta(mfcc).T, "delta2": librosa.feature.delta(mfcc, order=2).T,
    })
    # 2. Stereo 24-bit at 48 kHz, loaded as the reference does (resampled to 22050 Hz).
    left = signal(48000, 0.8, 2)
    right = 0.5 * left + 0.5 * signal(48000, 0.8, 3)
    sf.write(os.path.join(HERE, "tone_48000_stereo.wav"), np.stack([left, right], 1), 48000, subtype="PCM_24")
    y, sr = librosa.load(os.path.join(HERE, "tone_48000_stereo.wav"), sr=22050, res_type="soxr_hq")
    dump("tone_48000_stereo.librosa.json", {
        "librosa": librosa.__version__, "sr": sr, "n_samples": len(y),
        "mfcc": librosa.feature.mfcc(y=y, sr=sr, n_mfcc=40).T,
        "log_mel": librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr)).T,
    })
    prosody()


def prosody():
    """3. librosa.yin and zero_crossing_rate of the 22050 Hz tone, with the parameters of the
    prosody channels' tests (fmin 60, fmax 500, frame_length 1024, hop 512)."""
    y, sr = librosa.load(os.path.join(HERE, "tone_22050.wav"), sr=None)
    dump("tone_22050.prosody.librosa.json", {
        "librosa": librosa.__version__, "sr": sr, "n_samples": len(y),
        "f0": librosa.yin(y, fmin=60, fmax=500, sr=sr, frame_length=1024, hop_length=512),
        "zcr": librosa.feature.zero_crossing_rate(y, frame_length=1024, hop_length=512)[0],
    })


if __name__ == "__main__":
    import sys
    prosody() if sys.argv[1:] == ["prosody"] else main()
