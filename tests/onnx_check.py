#!/usr/bin/env python3
"""The ONNX export outside Rust: the interop test of tests/pipeline.sh.

Checks an exported model with `onnx.checker` (full check, shapes inferred), runs it with
onnxruntime on the raw features of the clips in a predictions file, and compares the
probabilities with `ser-model predict`'s (within 1e-4). With --readme, also runs the Python
example of a Markdown file (docs/guide/onnx.md, between its onnx-example markers) on one clip and checks it prints the
label `ser-model predict` gave that clip.

    python3 tests/onnx_check.py MODEL.onnx FEATURES.parquet PREDICTIONS.parquet \
        [--readme docs/guide/onnx.md --ser-features BIN --audio-root DIR]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
import pyarrow.parquet as pq


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("features")
    ap.add_argument("predictions")
    ap.add_argument("--readme")
    ap.add_argument("--ser-features")
    ap.add_argument("--audio-root")
    args = ap.parse_args()

    model = onnx.load(args.model)
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in model.metadata_props}
    labels = json.loads(meta["ser.labels"])
    frames, coeffs = int(meta["ser.n_frames"]), int(meta["ser.n_coeffs"])

    preds = pq.read_table(args.predictions).to_pydict()
    assert [c[2:] for c in preds if c.startswith("p_")] == labels, "label order differs from the predictions'"
    expected = np.array([preds["p_" + label] for label in labels], dtype=np.float32).T
    table = pq.read_table(args.features, columns=["clip_id", "path", "features"]).to_pydict()
    row_of = {c: i for i, c in enumerate(table["clip_id"])}
    x = np.stack([np.asarray(table["features"][row_of[c]], dtype=np.float32).reshape(frames, coeffs)
                  for c in preds["clip_id"]])

    session = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    (got,) = session.run(["probabilities"], {"features": x})
    worst = float(np.abs(got - expected).max())
    assert worst <= 1e-4, f"onnxruntime and ser-model predict differ by up to {worst}"
    # The batch is dynamic: one clip alone gives its row of the batch.
    (one,) = session.run(["probabilities"], {"features": x[:1]})
    assert np.abs(one - got[:1]).max() <= 1e-5
    print(f"ok   onnx.checker accepts {args.model}; onnxruntime on {len(x)} clips matches predict "
          f"(max |diff| {worst:.2e})")

    if args.readme:
        block = re.search(r"<!-- onnx-example -->\s*```python\n(.*?)```", open(args.readme).read(), re.S)
        assert block, f"{args.readme} has no onnx-example block"
        clip = preds["clip_id"][0]
        audio = os.path.join(args.audio_root, table["path"][row_of[clip]])
        code = (block.group(1)
                .replace('"artifacts/demo/model.onnx"', repr(os.path.abspath(args.model)))
                .replace('"target/release/ser-features"', repr(os.path.abspath(args.ser_features)))
                .replace('"clip.wav"', repr(os.path.abspath(audio))))
        lines = [l for l in block.group(1).strip().splitlines() if l.strip()]
        assert len(lines) <= 10, f"the example has {len(lines)} lines"
        with tempfile.TemporaryDirectory() as work:
            out = subprocess.run([sys.executable, "-c", code], cwd=work, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        label, confidence = out.stdout.split()
        predicted = labels[int(np.argmax(expected[0]))]
        assert label == predicted, f"the example says {label}, ser-model predict {predicted}"
        assert abs(float(confidence) - float(expected[0].max())) < 2e-3, (confidence, expected[0].max())
        print(f"ok   the ONNX guide's example classifies {os.path.basename(audio)} as {label}, as predict does")


if __name__ == "__main__":
    main()
