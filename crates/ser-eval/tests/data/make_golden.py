"""Golden fixtures for ser-eval's metrics: predictions files and scikit-learn's numbers for them.

Run once (needs numpy, pyarrow, scikit-learn):  python3 make_golden.py
Writes <case>.parquet (the predictions contract: clip_id, label, predicted, p_<emotion> float32)
and <case>.json (scikit-learn's metrics of the same rows). Cases:
- balanced: 8 classes, random confusions, probabilities;
- sparse: a class never true (calm) but sometimes predicted, a class never predicted (disgust),
  a class neither (surprised): zero support / zero predictions, no NaN allowed;
- perfect: every prediction right;
- nolabels_some: some null labels (left out) and no probability columns.
"""
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.metrics import (accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score, log_loss,
                             precision_recall_fscore_support)

LABELS = ["angry", "calm", "disgust", "fearful", "happy", "neutral", "sad", "surprised"]


def write_case(name, truth, pred, probs):
    rng_ids = [f"clip{i:04d}" for i in range(len(truth))]
    cols = {"clip_id": rng_ids, "label": [None if t is None else LABELS[t] for t in truth],
            "predicted": [LABELS[p] for p in pred]}
    if probs is not None:
        probs = probs.astype(np.float32)
        for c, label in enumerate(LABELS):
            cols[f"p_{label}"] = pa.array(probs[:, c], type=pa.float32())
    pq.write_table(pa.table(cols), f"{name}.parquet")

    keep = [i for i, t in enumerate(truth) if t is not None]
    y = np.array([truth[i] for i in keep])
    yp = np.array([pred[i] for i in keep])
    present = sorted(set(y.tolist()))
    p, r, f, s = precision_recall_fscore_support(y, yp, labels=list(range(8)), zero_division=0)
    out = {
        "n": len(keep),
        "accuracy": accuracy_score(y, yp),
        "uar": balanced_accuracy_score(y, yp),
        "macro_f1": f1_score(y, yp, labels=present, average="macro", zero_division=0),
        "weighted_f1": f1_score(y, yp, labels=present, average="weighted", zero_division=0),
        "macro_precision": precision_recall_fscore_support(y, yp, labels=present, average="macro",
                                                           zero_division=0)[0],
        "precision": p.tolist(), "recall": r.tolist(), "f1": f.tolist(), "support": s.tolist(),
        "confusion": confusion_matrix(y, yp, labels=list(range(8))).tolist(),
    }
    if probs is not None:
        out["log_loss"] = log_loss(y, probs[keep].astype(np.float64), labels=list(range(8)))
    with open(f"{name}.json", "w") as fh:
        json.dump(out, fh, indent=1)
        fh.write("\n")


def random_probs(rng, pred, n):
    logits = rng.normal(size=(n, 8))
    logits[np.arange(n), pred] += 3.0
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


rng = np.random.default_rng(7)
n = 200
truth = rng.integers(0, 8, n)
pred = np.where(rng.random(n) < 0.6, truth, rng.integers(0, 8, n))
write_case("balanced", truth.tolist(), pred.tolist(), random_probs(rng, pred, n))

n = 60
truth = rng.choice([0, 3, 4, 5, 6], n)  # calm, disgust, surprised never true
pred = np.where(rng.random(n) < 0.5, truth, rng.choice([0, 1, 3, 4, 5, 6], n))  # disgust, surprised never predicted
write_case("sparse", truth.tolist(), pred.tolist(), random_probs(rng, pred, n))

truth = list(range(8)) * 3
write_case("perfect", truth, truth, random_probs(rng, np.array(truth), len(truth)))

n = 40
truth = rng.integers(0, 8, n).tolist()
pred = [t if rng.random() < 0.7 else int(rng.integers(0, 8)) for t in truth]
for i in (3, 17, 29):
    truth[i] = None
write_case("nolabels_some", truth, pred, None)
