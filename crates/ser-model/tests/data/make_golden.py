"""Writes the Keras golden fixture for ser-model's forward-pass test.

Run once from the repository root (needs tensorflow 2.x, numpy, safetensors):
    python3 crates/ser-model/tests/data/make_golden.py
Builds the reference network (Keras, small sizes), sets seeded weights and non-trivial
BatchNorm statistics, runs it in inference mode, and writes the weights under ser-model's
(PyTorch-style) tensor names together with the input and Keras's softmax output.
"""
import json
import os

import numpy as np
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from tensorflow import keras
from tensorflow.keras import layers
from safetensors.numpy import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
T, C = 12, 5
CFG = dict(conv1_filters=4, conv1_kernel=3, conv2_filters=6, conv2_kernel=3, lstm1_units=5, lstm2_units=3, dense_units=7)


def main():
    rng = np.random.default_rng(7)
    model = keras.Sequential([
        keras.Input((T, C)),
        layers.Conv1D(CFG["conv1_filters"], CFG["conv1_kernel"], padding="same", activation="relu"),
        layers.BatchNormalization(), layers.MaxPooling1D(2), layers.Dropout(0.3),
        layers.Conv1D(CFG["conv2_filters"], CFG["conv2_kernel"], padding="same", activation="relu"),
        layers.BatchNormalization(), layers.MaxPooling1D(2), layers.Dropout(0.3),
        layers.Bidirectional(layers.LSTM(CFG["lstm1_units"], return_sequences=True)), layers.Dropout(0.4),
        layers.Bidirectional(layers.LSTM(CFG["lstm2_units"])), layers.Dropout(0.4),
        layers.Dense(CFG["dense_units"], activation="relu"), layers.Dropout(0.5),
        layers.Dense(8, activation="softmax"),
    ])
    weights = []
    for w in model.get_weights():
        weights.append(rng.uniform(-0.6, 0.6, w.shape).astype(np.float32))
    model.set_weights(weights)
    # BatchNorm: gamma, beta, moving_mean, moving_variance (positive)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            g, b, m, v = layer.get_weights()
            layer.set_weights([g, b, m, rng.uniform(0.5, 1.5, v.shape).astype(np.float32)])
    x = rng.standard_normal((3, T, C)).astype(np.float32)
    probs = model(x, training=False).numpy()

    L = model.layers
    out = {}
    def conv(name, layer):
        k, b = layer.get_weights()
        out[f"{name}.weight"] = np.ascontiguousarray(k.transpose(2, 1, 0))
        out[f"{name}.bias"] = b
    def bn(name, layer):
        g, b, m, v = layer.get_weights()
        out[f"{name}.weight"], out[f"{name}.bias"] = g, b
        out[f"{name}.running_mean"], out[f"{name}.running_var"] = m, v
    def bilstm(name, layer):
        fk, fr, fb, bk, br, bb = layer.get_weights()
        for suffix, (k, r, b) in (("", (fk, fr, fb)), ("_reverse", (bk, br, bb))):
            out[f"{name}.weight_ih_l0{suffix}"] = np.ascontiguousarray(k.T)
            out[f"{name}.weight_hh_l0{suffix}"] = np.ascontiguousarray(r.T)
            out[f"{name}.bias_ih_l0{suffix}"] = b
            out[f"{name}.bias_hh_l0{suffix}"] = np.zeros_like(b)
    def dense(name, layer):
        w, b = layer.get_weights()
        out[f"{name}.weight"], out[f"{name}.bias"] = np.ascontiguousarray(w.T), b
    conv("conv1", L[0]); bn("bn1", L[1]); conv("conv2", L[4]); bn("bn2", L[5])
    bilstm("lstm1", L[8]); bilstm("lstm2", L[10]); dense("fc1", L[12]); dense("fc2", L[14])
    save_file({k: v.astype(np.float32) for k, v in out.items()}, os.path.join(HERE, "keras_small.safetensors"))
    with open(os.path.join(HERE, "keras_small.json"), "w") as f:
        json.dump({"config": CFG, "frames": T, "n_coeffs": C, "input": x.tolist(), "probabilities": probs.tolist()}, f)


if __name__ == "__main__":
    main()
