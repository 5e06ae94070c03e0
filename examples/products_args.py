"""The command-line flags both products examples share (numpy_products.py, pytorch_products.py):
the same training of (a*b, c*d, e*f), each with its own defaults."""

import argparse


def parser(doc, out, steps, batch, lr, checkpoint_every):
    """An ArgumentParser with --out, --steps, --hidden, --batch, --lr, --seed and
    --checkpoint-every; the caller adds its own flags."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--out", default=out, help="the run directory the logger writes")
    p.add_argument("--steps", type=int, default=steps)
    p.add_argument("--hidden", type=int, default=32, help="width of each of the 2 hidden layers")
    p.add_argument("--batch", type=int, default=batch)
    p.add_argument("--lr", type=float, default=lr)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-every", type=int, default=checkpoint_every)
    return p
