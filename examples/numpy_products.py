#!/usr/bin/env python3
"""Trains a small MLP on (a*b, c*d, e*f) in plain numpy, logged with circuitscope_log.

The same loop as examples/pytorch_products.py without torch (the CI tests use it: torch's
install is 6 GB). Every flag has a default; `--pace S` sleeps S seconds per step so that a
follower can be watched keeping up.

    python3 examples/numpy_products.py --out runs/np --steps 3000 --checkpoint-every 300
    circuitscope watch runs/np            # in another terminal
    circuitscope analyze --follow runs/np
"""

import os
import sys
import time

import numpy as np

import products_args  # examples/products_args.py, beside this script

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import circuitscope_log  # noqa: E402


def main():
    p = products_args.parser(__doc__, out="runs/numpy-products", steps=3000, batch=64, lr=0.01,
                             checkpoint_every=300)
    p.add_argument("--eval-every", type=int, default=300)
    p.add_argument("--pace", type=float, default=0.0, help="seconds to sleep after each step")
    p.add_argument("--fail-at", type=int, default=None, help="raise an error at this step (tests)")
    a = p.parse_args()

    rng = np.random.default_rng(a.seed)
    n_in, n_out, h = 6, 3, a.hidden

    def data(n):
        x = rng.uniform(-1, 1, size=(n, n_in))
        y = np.stack([x[:, 0] * x[:, 1], x[:, 2] * x[:, 3], x[:, 4] * x[:, 5]], axis=1)
        return x, y

    x_val, y_val = data(500)
    sizes = [n_in, h, h, n_out]
    W = [rng.normal(0, np.sqrt(2.0 / sizes[i]), size=(sizes[i + 1], sizes[i])) for i in range(3)]
    b = [np.zeros(sizes[i + 1]) for i in range(3)]
    m = [np.zeros_like(p) for p in W + b]
    v = [np.zeros_like(p) for p in W + b]

    def model():
        return [(W[0], b[0], "relu"), (W[1], b[1], "relu"), (W[2], b[2], "identity")]

    def forward(x):
        acts = [x]
        for i in range(3):
            z = acts[-1] @ W[i].T + b[i]
            acts.append(np.maximum(z, 0) if i < 2 else z)
        return acts

    tasks = {"ab": {"outputs": [0], "uses": ["a", "b"]},
             "cd": {"outputs": [1], "uses": ["c", "d"]},
             "ef": {"outputs": [2], "uses": ["e", "f"]}}
    with circuitscope_log.Run(a.out, model=model(), inputs=list("abcdef"), tasks=tasks,
                              val=(x_val, y_val), total_steps=a.steps, batch_size=a.batch) as run:
        for step in range(1, a.steps + 1):
            if a.fail_at is not None and step == a.fail_at:
                raise RuntimeError(f"failing at step {step}, as asked")
            x, y = data(a.batch)
            acts = forward(x)
            err = acts[-1] - y
            losses = (err ** 2).mean(axis=0)
            grad = 2 * err / (a.batch * n_out)
            gw, gb = [None] * 3, [None] * 3
            for i in (2, 1, 0):
                gw[i] = grad.T @ acts[i]
                gb[i] = grad.sum(axis=0)
                if i:
                    grad = (grad @ W[i]) * (acts[i] > 0)
            # Adam
            for k, (p, g) in enumerate(zip(W + b, gw + gb)):
                m[k] = 0.9 * m[k] + 0.1 * g
                v[k] = 0.999 * v[k] + 0.001 * g * g
                p -= a.lr * (m[k] / (1 - 0.9 ** step)) / (np.sqrt(v[k] / (1 - 0.999 ** step)) + 1e-8)
            if step % 10 == 0:
                run.step(step, {"ab": losses[0], "cd": losses[1], "ef": losses[2]}, lr=a.lr,
                         loss=losses.mean())
            if step % a.eval_every == 0 or step == a.steps:
                out = forward(x_val)[-1]
                mse = ((out - y_val) ** 2).mean(axis=0)
                r2 = 1 - mse / y_val.var(axis=0)
                run.eval(step, {t: {"loss": mse[i], "r2": r2[i]} for i, t in enumerate(tasks)})
            if step % a.checkpoint_every == 0 or step == a.steps:
                run.checkpoint(step, model())
            if a.pace:
                time.sleep(a.pace)
        run.end(model())
    out = forward(x_val)[-1]
    r2 = 1 - ((out - y_val) ** 2).mean(axis=0) / y_val.var(axis=0)
    print(f"trained {a.steps} steps: held-out R² {', '.join(f'{t} {r:.3f}' for t, r in zip(tasks, r2))}")


if __name__ == "__main__":
    main()
