"""The Python package against the commands it wraps, on audio these tests make themselves.

SER_BIN names the folder of the ser-infer, ser-features and ser-model binaries (tests/python.sh
sets it).
"""

import json
import math
import os
import re
import subprocess
import sys
import threading
import time
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import ser

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("SER_BIN", REPO / "target" / "release"))
MODEL_DIR = REPO / ser.SHIPPED_MODEL
TOL = 1e-6


def voice(seconds, rate, seed, f0=140.0):
    """A voiced, speech-like signal: a gliding harmonic tone with syllable-rate amplitude and a
    little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    pitch = f0 * (1 + 0.15 * np.sin(2 * math.pi * 0.7 * t + seed))
    phase = 2 * math.pi * np.cumsum(pitch) / rate
    tone = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = 0.5 * (1 + np.sin(2 * math.pi * 4 * t + seed)) ** 2
    return (0.2 * tone * envelope + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def write_wav(path, samples, rate):
    """16-bit PCM; `samples` (n,) or (n, channels)."""
    samples = np.asarray(samples)
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def read_wav(path):
    """A 16-bit WAV as floats the way ser's decoder scales them (divide by 2^15)."""
    with wave.open(str(path), "rb") as w:
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768
        return data.reshape(-1, w.getnchannels()), w.getframerate()


@pytest.fixture(scope="session")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    return {
        "short": write_wav(d / "short.wav", voice(3.0, 16000, 1), 16000),
        "stereo": write_wav(d / "stereo.wav", np.stack([voice(2.5, 48000, 2), voice(2.5, 48000, 3, 180)], 1), 48000),
        "high": write_wav(d / "high.wav", voice(3.5, 44100, 4, 220), 44100),
        "long": write_wav(d / "long.wav", np.concatenate([voice(9, 22050, 5), np.zeros(22050 * 3, np.float32), voice(6, 22050, 6, 250)]), 22050),
    }


@pytest.fixture(scope="session")
def clf():
    return ser.Classifier()


def run_jsonl(*args):
    out = subprocess.run([str(a) for a in args], check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def assert_same_answer(py, cli):
    assert py["label"] == cli["label"]
    assert py["silent"] == cli["silent"]
    assert py["windows"] == cli["windows"] and py["silent_windows"] == cli["silent_windows"]
    assert py["confidence"] == pytest.approx(cli["confidence"], abs=TOL)
    assert py["probabilities"].keys() == cli["probabilities"].keys()
    for k, v in cli["probabilities"].items():
        assert py["probabilities"][k] == pytest.approx(v, abs=TOL), k


def test_the_shipped_model_is_the_committed_file_and_its_card(clf):
    card = (MODEL_DIR / "MODEL_CARD.md").read_text()
    sha = re.search(r"model\.safetensors[^\n]*?([0-9a-f]{64})", card).group(1)
    assert clf.sha256 == sha
    assert ser.HAS_SHIPPED_MODEL
    assert clf.path == ser.SHIPPED_MODEL
    assert clf.labels == ["angry", "calm", "disgust", "fearful", "happy", "neutral", "sad", "surprised"]
    assert clf.window_seconds == pytest.approx(174 * 512 / 22050)
    assert clf.info[0]["labels"] == clf.labels


def test_predict_equals_ser_infer_predict(clf, clips):
    paths = list(clips.values())
    cli = run_jsonl(BIN / "ser-infer", "predict", "--format", "jsonl", *paths)
    assert [Path(c["path"]) for c in cli] == paths
    for path, expected in zip(paths, cli):
        assert_same_answer(clf.predict(path), expected)
        assert_same_answer(clf.predict(str(path)), expected)
        assert_same_answer(clf.predict(path.read_bytes()), expected)
    for got, expected in zip(clf.predict(paths), cli):
        assert_same_answer(got, expected)
    first = run_jsonl(BIN / "ser-infer", "predict", "--format", "jsonl", "--first-window", "--silence-dbfs", "-40", clips["long"])
    assert_same_answer(clf.predict(clips["long"], first_window=True, silence_dbfs=-40), first[0])


def test_adapted_answers_equal_ser_infer_s_and_differ_from_plain_ones(clf, clips):
    paths = list(clips.values())
    for adapt in ["recording", "together"]:
        cli = run_jsonl(BIN / "ser-infer", "predict", "--format", "jsonl", "--adapt", adapt, *paths)
        for got, expected in zip(clf.predict(paths, adapt=adapt), cli):
            assert_same_answer(got, expected)
    assert_same_answer(clf.predict(clips["long"], adapt="recording"), clf.predict([clips["long"]], adapt="together")[0])
    plain = clf.predict(clips["long"])
    adapted = clf.predict(clips["long"], adapt="recording")
    assert plain["probabilities"] != adapted["probabilities"]
    rows = clf.timeline(clips["long"], window=2, hop=1, as_frame=False, adapt="recording")
    cli = run_jsonl(BIN / "ser-infer", "timeline", "--format", "jsonl", "--window", "2", "--hop", "1", "--adapt", "recording", clips["long"])
    assert [r["label"] for r in rows] == [c["label"] for c in cli]
    with pytest.raises(ser.SerError, match="adapt: `speaker` is not one of off, recording, together"):
        clf.predict(clips["long"], adapt="speaker")


def test_a_checkpoint_directory_and_an_ensemble_answer_as_the_shipped_model(clf, clips, tmp_path):
    from_dir = ser.Classifier(MODEL_DIR)
    assert from_dir.sha256 == clf.sha256
    subprocess.run([BIN / "ser-model", "ensemble", "--quiet", "--out", tmp_path / "ens", MODEL_DIR, MODEL_DIR], check=True)
    ensemble = ser.Classifier(str(tmp_path / "ens"))
    assert len(ensemble.info) == 2
    for path in clips.values():
        assert_same_answer(from_dir.predict(path), clf.predict(path))
        assert_same_answer(ensemble.predict(path), clf.predict(path))


def test_arrays_answer_as_the_file_holding_them(clf, clips):
    for name in ("short", "stereo", "high"):
        samples, rate = read_wav(clips[name])
        expected = clf.predict(clips[name])
        assert_same_answer(clf.predict(samples, rate), expected)
        assert_same_answer(clf.predict(samples.astype(np.float64), sample_rate=rate), expected)
        if samples.shape[1] == 1:
            assert_same_answer(clf.predict(samples[:, 0], rate), expected)
            assert_same_answer(clf.predict(samples[:, 0].tolist(), rate), expected)


def test_timeline_equals_ser_infer_timeline(clf, clips):
    cli = run_jsonl(BIN / "ser-infer", "timeline", "--format", "jsonl", "--window", "2", "--hop", "1", clips["long"])
    rows = clf.timeline(clips["long"], window=2, hop=1, as_frame=False)
    assert len(rows) == len(cli) > 10
    assert any(r["silent"] for r in rows) and not all(r["silent"] for r in rows)
    for got, expected in zip(rows, cli):
        assert got["start_s"] == pytest.approx(expected["start_s"], abs=TOL)
        assert got["end_s"] == pytest.approx(expected["end_s"], abs=TOL)
        assert got["level_dbfs"] == pytest.approx(expected["level_dbfs"], abs=1e-4)
        if expected["silent"]:
            assert got["silent"] and got["label"] is None
        else:
            assert_same_answer({**got, "windows": 1, "silent_windows": 0}, {**expected, "windows": 1, "silent_windows": 0})


def test_timeline_is_a_data_frame_with_pandas(clf, clips):
    pd = pytest.importorskip("pandas")
    frame = clf.timeline(clips["long"], window=2, hop=1)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame["start_s"]) == [r["start_s"] for r in clf.timeline(clips["long"], window=2, hop=1, as_frame=False)]
    assert {"start_s", "end_s", "level_dbfs", "silent", "label", "confidence", "probabilities"} <= set(frame.columns)


def test_features_equal_ser_features_features(clf, clips, tmp_path):
    config = tmp_path / "features.yaml"
    config.write_text(json.dumps(clf.info[0]["features_config"]))  # JSON is YAML
    for name, path in clips.items():
        out = tmp_path / f"{name}.npy"
        subprocess.run([BIN / "ser-features", "features", "--config", config, path, "--out", out], check=True, capture_output=True)
        expected = np.load(out)
        for got in (
            ser.features(path, config=config),
            ser.features(str(path), config=str(config)),
            ser.features(path),
            ser.features(path, config=clf),
            ser.features(path, config=clf.info[0]["features_config"]),
            clf.features(path),
        ):
            assert got.dtype == np.float32 and got.shape == expected.shape == (174, 120)
            np.testing.assert_allclose(got, expected, rtol=0, atol=TOL * np.abs(expected).max())
        samples, rate = read_wav(path)
        np.testing.assert_allclose(ser.features(samples, rate), expected, rtol=0, atol=TOL * np.abs(expected).max())


def test_other_feature_configs(clf, clips):
    shipped = clf.info[0]["features_config"]
    mel = ser.features(clips["short"], config={**shipped, "kind": "log_mel", "n_mels": 64, "deltas": False, "frames": None, "augment": None})
    assert mel.shape[1] == 64 and mel.shape[0] > 50
    with pytest.raises(ser.SerError, match="config"):
        ser.features(clips["short"], config={"n_mfcc": "forty"})
    with pytest.raises(ser.SerError, match="nope.yaml"):
        ser.features(clips["short"], config="nope.yaml")


def a_file(name, content):
    def make(d):
        (d / name).write_bytes(content)
        return d / name

    return make


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing.wav", "missing.wav"),
        (a_file("empty.wav", b""), "empty.wav: empty file"),
        (a_file("notes.wav", b"not audio at all"), "notes.wav: not an audio file"),
        (lambda d: d, "not a regular file"),
    ],
)
def test_bad_files_raise_ser_error_naming_the_file(clf, tmp_path, make, message):
    path = make(tmp_path)
    for call in (clf.predict, clf.timeline, ser.features):
        with pytest.raises(ser.SerError, match=re.escape(message)):
            call(path)
    with pytest.raises(ser.SerError, match=re.escape(message)):
        clf.predict([path])


def test_a_truncated_file_and_a_list_with_a_bad_file(clf, clips, tmp_path):
    cut = tmp_path / "cut.wav"
    cut.write_bytes(clips["short"].read_bytes()[:30])
    with pytest.raises(ser.SerError, match="cut.wav"):
        clf.predict(cut)
    with pytest.raises(ser.SerError, match="cut.wav"):
        clf.predict([clips["short"], cut])


def test_bad_arrays(clf):
    good = voice(1.0, 16000, 7)
    cases = [
        (lambda: clf.predict(good), TypeError, "sample_rate"),
        (lambda: clf.predict(np.array([1, 2, 3]), 16000), TypeError, "floats"),
        (lambda: clf.predict(np.zeros((2, 2, 2), np.float32), 16000), ValueError, "shape"),
        (lambda: clf.predict(np.array([0.1, np.nan, 0.2] * 1000, np.float32), 16000), ser.SerError, "<array>: non-finite sample"),
        (lambda: clf.predict(good, 10), ser.SerError, "sample rate 10 Hz"),
        (lambda: clf.predict(np.zeros(0, np.float32), 16000), ser.SerError, "<array>: no audio samples"),
        (lambda: clf.predict(good[:100], 16000), ser.SerError, "shorter than one analysis frame"),
        (lambda: clf.predict(good, 16000, max_duration=0.5), ser.SerError, "longer than max_duration_s"),
        (lambda: clf.predict(b"RIFF", None), ser.SerError, "<bytes>"),
        (lambda: clf.predict(12), TypeError, "floats"),
        (lambda: clf.predict([good, good], 16000), ValueError, "shape"),
        (lambda: clf.predict("x.wav", 16000), TypeError, "sample_rate is for arrays"),
        (lambda: clf.predict(good, 16000, window=-1), ser.SerError, "window must be a positive"),
        (lambda: ser.features(good), TypeError, "sample_rate"),
    ]
    for call, kind, message in cases:
        with pytest.raises(kind, match=re.escape(message)):
            call()
    silent = clf.predict(np.zeros(16000 * 5, np.float32), 16000)
    assert silent["silent"] and silent["label"] is None and silent["windows"] >= 1


def test_a_missing_checkpoint_names_it():
    with pytest.raises(ser.SerError, match="no/such/model"):
        ser.Classifier("no/such/model")


def test_threads_share_a_classifier_and_the_gil_is_released(clf, clips):
    paths = list(clips.values()) * 4
    expected = [clf.predict(p) for p in paths]
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(clf.predict, paths))
        frames = list(pool.map(ser.features, paths))
    for g, e in zip(got, expected):
        assert_same_answer(g, e)
    for f, p in zip(frames, paths):
        np.testing.assert_array_equal(f, ser.features(p))

    # With a switch interval far longer than the call, another thread runs during it only if
    # the call releases the GIL.
    ticks, stop = [0], threading.Event()

    def spin():
        while not stop.is_set():
            ticks[0] += 1
            time.sleep(0)  # lets the GIL go

    old = sys.getswitchinterval()
    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        sys.setswitchinterval(100.0)
        time.sleep(0.05)  # the spinner now waits for the GIL under the long interval
        before = ticks[0]
        clf.timeline(clips["long"], window=0.5, hop=0.25, as_frame=False)
        during = ticks[0] - before
    finally:
        sys.setswitchinterval(old)
        stop.set()
        spinner.join()
    assert during > 0
