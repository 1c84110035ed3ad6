#!/usr/bin/env python3
"""Checks that a metaq checkpoint is a standard safetensors file that other tools can use.

Trains a small MAML model with metaq, saves it, and then, with numpy and the `safetensors`
package alone: loads the tensors and the metaq metadata, rebuilds the MLP from the layer list,
and reproduces (1) metaq's plain forward pass (`metaq adapt --steps 0`) and (2) one adaptation
step of SGD on a support set with the inner learning rate read from the metadata
(`metaq adapt --steps 1`). Prints one line per check and "safetensors: N passed, M failed".

Usage: test-safetensors.py METAQ_BINARY
"""
import csv
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

METAQ = os.path.abspath(sys.argv[1])
passed = failed = 0


def check(name, condition, detail=""):
    global passed, failed
    if condition:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name}: {detail}")


ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0),
    "tanh": np.tanh,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.01 * x),
    "identity": lambda x: x,
}
DERIVATIVES = {
    "relu": lambda x, y: (x > 0).astype(np.float32),
    "tanh": lambda x, y: 1 - y * y,
    "sigmoid": lambda x, y: y * (1 - y),
    "leaky_relu": lambda x, y: np.where(x > 0, 1, 0.01).astype(np.float32),
    "identity": lambda x, y: np.ones_like(x),
}


def forward(layers, params, x):
    """The MLP's forward pass; returns the output and each layer's (input, output)."""
    trace = []
    for i, layer in enumerate(layers):
        (kind, spec), = layer.items()
        if kind == "linear":
            y = x @ params[f"{i}.weight"] + params[f"{i}.bias"]
        elif kind == "activation":
            y = ACTIVATIONS[spec["_0"]](x)
        else:
            raise ValueError(f"layer {kind} is not part of this test")
        trace.append((x, y))
        x = y.astype(np.float32)
    return x, trace


def sgd_step(layers, params, x, y, lr):
    """One SGD step on the mean squared error, as metaq's inner loop takes it."""
    out, trace = forward(layers, params, x)
    grad = 2 * (out - y) / out.size
    grads = {}
    for i in reversed(range(len(layers))):
        (kind, spec), = layers[i].items()
        inp, outp = trace[i]
        if kind == "linear":
            grads[f"{i}.weight"] = inp.T @ grad
            grads[f"{i}.bias"] = grad.sum(axis=0)
            grad = grad @ params[f"{i}.weight"].T
        else:
            grad = grad * DERIVATIVES[spec["_0"]](inp, outp)
    return {k: (v - lr * grads[k]).astype(np.float32) for k, v in params.items()}


def read_predictions(path):
    with open(path) as f:
        return np.array([float(row["prediction"]) for row in csv.DictReader(f)], dtype=np.float32)


def main():
    work = tempfile.mkdtemp(prefix="metaq-safetensors-")
    try:
        os.chdir(work)
        return run_checks()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_checks():
    rng = np.random.default_rng(5)
    with open("tasks.csv", "w") as f:
        f.write("task,x1,x2,y\n")
        for t in range(20):
            a, b = rng.uniform(-2, 2, size=2)
            for _ in range(12):
                x1, x2 = rng.uniform(-3, 3, size=2)
                f.write(f"t{t},{x1:.5f},{x2:.5f},{a * x1 + b * math.sin(x2):.5f}\n")
    support = rng.uniform(-3, 3, size=(6, 2)).astype(np.float32)
    support_y = (1.5 * support[:, 0] - np.sin(support[:, 1])).astype(np.float32)
    query = rng.uniform(-3, 3, size=(5, 2)).astype(np.float32)
    with open("support.csv", "w") as f:
        f.write("x1,x2,y\n" + "".join(f"{a!r},{b!r},{c!r}\n" for (a, b), c in zip(support.tolist(), support_y.tolist())))
    with open("query.csv", "w") as f:
        f.write("x1,x2\n" + "".join(f"{a!r},{b!r}\n" for a, b in query.tolist()))
    with open("train.mq", "w") as f:
        f.write("""seed 3
model net = mlp < in 2 hidden [20, 12] out 1 act tanh >
tasks t = csv < path "tasks.csv" support 5 query 5 >
learner m = maml < model net inner < steps 1 lr 0.05 > outer < lr 0.01 batch 4 > >
train m on t < iters 30 >
save m to "model.mqm"
""")
    subprocess.run([METAQ, "run", "train.mq"], check=True)
    for steps in (0, 1):
        subprocess.run([METAQ, "adapt", "model.mqm", "--support", "support.csv", "--query", "query.csv",
                        "--steps", str(steps), "--out", f"steps{steps}.csv"], check=True)

    tensors = load_file("model.mqm")
    with safe_open("model.mqm", framework="numpy") as f:
        metadata = f.metadata()
    check("safetensors reads every tensor as float32", all(t.dtype == np.float32 for t in tensors.values()),
          {k: t.dtype for k, t in tensors.items()})
    check("metadata names the format", metadata.get("format") == "metaq-checkpoint" and metadata.get("format_version") == "2",
          metadata)
    info = json.loads(metadata["metaq"])
    layers = info["layers"]
    params = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    check("model tensors match the layers", params["0.weight"].shape == (2, 20) and params["4.weight"].shape == (12, 1),
          {k: v.shape for k, v in params.items()})
    check("optimizer state is stored", "optimizer.m.0.weight" in tensors and info["learner"]["optimizer"]["step"] == 30,
          sorted(tensors))

    ours, _ = forward(layers, params, query)
    theirs = read_predictions("steps0.csv")
    check("forward pass matches metaq adapt --steps 0", np.allclose(ours[:, 0], theirs, rtol=1e-5, atol=1e-6),
          f"numpy {ours[:, 0]} vs metaq {theirs}")

    lr = info["learner"]["configuration"]["maml"]["inner"]["learningRate"]
    adapted = sgd_step(layers, params, support, support_y[:, None], lr)
    ours, _ = forward(layers, adapted, query)
    theirs = read_predictions("steps1.csv")
    check("one SGD step matches metaq adapt --steps 1", np.allclose(ours[:, 0], theirs, rtol=1e-4, atol=1e-5),
          f"numpy {ours[:, 0]} vs metaq {theirs}")

    print(f"safetensors: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
