"""Writes W6's trained student as files `circuitscope import` reads, so `graph` and `eval` can be
timed on it as on any imported model (BENCHMARKS.md, "W6 as a run"):

    benches/peers/.venv/bin/python benches/peers/w6_run.py target/peers target/w6-import
    circuitscope import --weights target/w6-import/w6.safetensors \
        --spec target/w6-import/w6.spec.json --data target/w6-import/train.csv \
        --val-data target/w6-import/val.csv --out runs/w6

EXCHANGE is the directory `circuitscope bench peers --only w6` prepared: the student's weights
(`w6.safetensors`, tensors `layers.K.weight` / `layers.K.bias`) and its data. The spec names
those tensors, the 784 inputs `p0` ... `p783` and one classifier task on the column `label`;
train.csv holds the first 2,000 training inputs, val.csv the 10,000 evaluation inputs.
"""

import json
import os
import shutil
import sys

import numpy as np
from safetensors.numpy import load_file

exchange, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
shutil.copy(os.path.join(exchange, "w6.safetensors"), os.path.join(out, "w6.safetensors"))
data = load_file(os.path.join(exchange, "w6_data.safetensors"))
d = data["x"].shape[1]
inputs = [f"p{i}" for i in range(d)]
spec = {
    "format": "circuitscope-spec", "version": 1, "inputs": inputs,
    "layers": [{"weight": f"layers.{k}.weight", "bias": f"layers.{k}.bias",
                "activation": "relu" if k < 2 else "identity"} for k in range(3)],
    "tasks": [{"name": "class", "target": "label", "loss": "cross_entropy"}],
}
with open(os.path.join(out, "w6.spec.json"), "w") as f:
    json.dump(spec, f)


def write(path, x, y):
    labels = y.argmax(axis=1)
    with open(path, "w") as f:
        f.write(",".join(inputs + ["label"]) + "\n")
        for row, label in zip(x, labels):
            f.write(",".join(f"{v:.9g}" for v in row) + f",{label}\n")


write(os.path.join(out, "train.csv"), data["train_x"][:2000], data["train_y"][:2000])
write(os.path.join(out, "val.csv"), data["x"], data["y"])
print(f"wrote {out}: w6.safetensors, w6.spec.json, train.csv (2,000 rows), val.csv (10,000 rows)")
