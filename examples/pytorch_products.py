#!/usr/bin/env python3
"""Trains a PyTorch MLP on (a*b, c*d, e*f), followed by circuitscope through circuitscope_log.

    pip install ./python                      # the logger (stdlib only; torch is yours)
    python3 examples/pytorch_products.py --out runs/torch-products
    circuitscope watch runs/torch-products    # in another terminal, or watch host:RUN over ssh
    circuitscope analyze --follow runs/torch-products

Every flag has a default. The loop is an ordinary PyTorch loop; the four logger calls are
marked `# circuitscope`.
"""

import os
import sys

import torch
from torch import nn

import products_args  # examples/products_args.py, beside this script

try:
    import circuitscope_log
except ImportError:  # run from a checkout without `pip install ./python`
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
    import circuitscope_log


def main():
    p = products_args.parser(__doc__, out="runs/torch-products", steps=4000, batch=128, lr=3e-3,
                             checkpoint_every=250)
    p.add_argument("--n-val", type=int, default=1000)
    a = p.parse_args()

    torch.manual_seed(a.seed)
    inputs = ["a", "b", "c", "d", "e", "f"]

    def data(n):
        x = torch.rand(n, 6) * 2 - 1
        return x, torch.stack([x[:, 0] * x[:, 1], x[:, 2] * x[:, 3], x[:, 4] * x[:, 5]], dim=1)

    x_val, y_val = data(a.n_val)
    model = nn.Sequential(
        nn.Linear(6, a.hidden), nn.ReLU(),
        nn.Linear(a.hidden, a.hidden), nn.ReLU(),
        nn.Linear(a.hidden, 3),
    )
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, a.steps)
    tasks = {"ab": {"outputs": [0], "uses": ["a", "b"]},
             "cd": {"outputs": [1], "uses": ["c", "d"]},
             "ef": {"outputs": [2], "uses": ["e", "f"]}}
    with circuitscope_log.Run(a.out, model=model, inputs=inputs, tasks=tasks,  # circuitscope
                              val=(x_val, y_val), total_steps=a.steps, batch_size=a.batch,
                              config={"seed": a.seed, "lr": a.lr, "hidden": a.hidden}) as run:
        for step in range(1, a.steps + 1):
            x, y = data(a.batch)
            per_task = ((model(x) - y) ** 2).mean(dim=0)
            loss = per_task.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if step % 10 == 0:
                run.step(step, dict(zip(tasks, per_task.tolist())),  # circuitscope
                         lr=sched.get_last_lr()[0], loss=loss.item())
            if step % a.checkpoint_every == 0 or step == a.steps:
                with torch.no_grad():
                    mse = ((model(x_val) - y_val) ** 2).mean(dim=0)
                    r2 = 1 - mse / y_val.var(dim=0)
                run.eval(step, {t: {"loss": mse[i].item(), "r2": r2[i].item()}  # circuitscope
                                for i, t in enumerate(tasks)})
                run.checkpoint(step, model)  # circuitscope
        run.end(model)  # circuitscope
    print(f"trained {a.steps} steps into {a.out}: held-out R² "
          + ", ".join(f"{t} {r:.4f}" for t, r in zip(tasks, r2.tolist())))


if __name__ == "__main__":
    main()
