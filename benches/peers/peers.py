"""The peer side of `circuitscope bench peers`: the same six workloads written the way a
practitioner would write them with PyTorch, Captum and scikit-learn (float32, CPU).

    python peers.py W1|W2|W3|W4|W5|W6-train|W6-jacobians|W6-ig|W6-faithfulness|W6-pca \
        --dir EXCHANGE --threads N

reads what `circuitscope bench peers` prepared in EXCHANGE (data, initial and trained weights as
safetensors, exact IG attributions) and prints one JSON line: {"workload", "threads",
"variants": [{"name", "seconds", "rate", "unit", ...}], ...}. It never writes into EXCHANGE
except temporary checkpoints under EXCHANGE/peer-tmp. Timed regions hold the work only:
loading files and building the module are outside them.
"""

import argparse
import json
import math
import os
import sys
import time


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("workload", choices=["W1", "W2", "W3", "W4", "W5", "W6-train",
                                        "W6-jacobians", "W6-ig", "W6-faithfulness", "W6-pca"])
    p.add_argument("--dir", required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--w2-loop-models", type=int, default=20,
                   help="models trained by the plain per-model loop (its rate is per model)")
    p.add_argument("--w4-steps", default="50,200,800,3200,12800",
                   help="step counts of the torch.func IG sweep")
    return p.parse_args()


args = parse()
# Thread counts are fixed before torch starts its pools.
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[var] = str(args.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from torch import nn  # noqa: E402

torch.set_num_threads(args.threads)
torch.set_num_interop_threads(1)
D = args.dir


def mlp_from(path):
    """An nn.Sequential (Linear, ReLU, ..., Linear) from a circuitscope checkpoint."""
    t = load_file(path)
    n = sum(1 for k in t if k.startswith("layers.") and k.endswith(".weight"))
    mods = []
    for k in range(n):
        w, b = t[f"layers.{k}.weight"], t[f"layers.{k}.bias"]
        lin = nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            lin.weight.copy_(w)
            lin.bias.copy_(b)
        mods.append(lin)
        if k < n - 1:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods)


def linears(model):
    return [m for m in model if isinstance(m, nn.Linear)]


def emit(out):
    out["threads"] = args.threads
    out["torch"] = torch.__version__
    # Peak resident memory of this process, the interpreter and torch included: VmHWM (Linux),
    # not ru_maxrss, which keeps the parent's size at the fork across exec.
    with open("/proc/self/status") as f:
        hwm = next(line for line in f if line.startswith("VmHWM:"))
    out["peak_mb"] = int(hwm.split()[1]) / 1024
    print(json.dumps(out), flush=True)


def w1():
    """products64 on products: 20 epochs, batch 256, Adam 1e-3 with the same cosine schedule,
    validation every epoch and a checkpoint at every epoch end (as circuitscope's loop)."""
    d = load_file(os.path.join(D, "products.safetensors"))
    cfg = json.load(open(os.path.join(D, "exchange.json")))["w1"]
    x, y, vx, vy = d["train_x"], d["train_y"], d["val_x"], d["val_y"]
    model = mlp_from(os.path.join(D, "products64_init.safetensors"))
    epochs, batch, lr = cfg["epochs"], cfg["batch"], cfg["lr"]
    n = x.shape[0]
    per_epoch = math.ceil(n / batch)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(
        opt, T_max=per_epoch * epochs, eta_min=lr / 100)
    loss_fn = nn.MSELoss()
    tmp = os.path.join(D, "peer-tmp")
    os.makedirs(tmp, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=g)
        for b in range(per_epoch):
            idx = perm[b * batch:(b + 1) * batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            sched.step()
        with torch.no_grad():
            val = loss_fn(model(vx), vy).item()
        torch.save(model.state_dict(), os.path.join(tmp, "checkpoint.pt"))
    s = time.perf_counter() - t0
    emit({"workload": "W1", "val_mse": val, "variants": [
        {"name": "torch loop", "seconds": s, "rate": n * epochs / s, "unit": "examples/s"}]})


def poly_targets(coeffs, x):
    y = torch.zeros_like(x)
    for c in reversed(coeffs):
        y = y * x + c
    return y


def w2():
    """500 poly models (1->32->32->1): a plain per-model loop (on a sample of models; its rate
    is per model) and all 500 as one vmapped ensemble (torch.func.stack_module_state +
    functional_call + vmap; Adam is elementwise, so one Adam over the stacked parameters is
    500 independent Adams)."""
    from torch.func import functional_call, stack_module_state, vmap

    cfg = json.load(open(os.path.join(D, "exchange.json")))["w2"]
    coeffs, seeds = cfg["coeffs"], cfg["seeds"]
    n, batch, epochs, lr = cfg["n_train"], cfg["batch"], cfg["epochs"], cfg["lr"]
    per_epoch = math.ceil(n / batch)
    total = per_epoch * epochs
    grid = torch.linspace(-1, 1, cfg["grid"])
    slots = [(f, s) for s in range(seeds) for f in range(len(coeffs))]

    def data(f, s):
        g = torch.Generator().manual_seed(1000 * f + s)
        x = torch.rand(n, 1, generator=g) * 2 - 1
        return x, poly_targets(coeffs[f], x)

    def fresh(f, s):
        torch.manual_seed(1000 * f + s)
        return nn.Sequential(nn.Linear(1, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                             nn.Linear(32, 1))

    # Plain loop, one model after another.
    loop = slots[:args.w2_loop_models]
    loop_data = [data(f, s) for f, s in loop]
    loop_mse = []
    t0 = time.perf_counter()
    for (f, s), (x, y) in zip(loop, loop_data):
        model = fresh(f, s)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total, eta_min=lr / 100)
        for _ in range(epochs):
            perm = torch.randperm(n)
            for b in range(per_epoch):
                idx = perm[b * batch:(b + 1) * batch]
                opt.zero_grad(set_to_none=True)
                loss = ((model(x[idx]) - y[idx]) ** 2).mean()
                loss.backward()
                opt.step()
                sched.step()
        with torch.no_grad():
            loop_mse.append(((model(grid[:, None])[:, 0] - poly_targets(coeffs[f], grid)) ** 2)
                            .mean().item())
    loop_s = time.perf_counter() - t0

    # Vmapped ensemble of all models.
    models = [fresh(f, s) for f, s in slots]
    params, buffers = stack_module_state(models)
    base = fresh(0, 0).to("meta")
    xs = torch.stack([data(f, s)[0] for f, s in slots])
    ys = torch.stack([data(f, s)[1] for f, s in slots])

    def one(p, b, x):
        return functional_call(base, (p, b), (x,))

    ensemble = vmap(one)
    plist = list(params.values())
    opt = torch.optim.Adam(plist, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total, eta_min=lr / 100)
    t0 = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(n)
        for b in range(per_epoch):
            idx = perm[b * batch:(b + 1) * batch]
            opt.zero_grad(set_to_none=True)
            pred = ensemble(params, buffers, xs[:, idx])
            loss = ((pred - ys[:, idx]) ** 2).mean(dim=(1, 2)).sum()
            loss.backward()
            opt.step()
            sched.step()
    vmap_s = time.perf_counter() - t0
    with torch.no_grad():
        out = ensemble(params, buffers, grid[None, :, None].expand(len(slots), -1, -1))[..., 0]
        truth = torch.stack([poly_targets(coeffs[f], grid) for f, _ in slots])
        vmap_mse = ((out - truth) ** 2).mean(dim=1)
    emit({"workload": "W2", "models": len(slots), "steps": total, "variants": [
        {"name": "per-model loop", "models": len(loop), "seconds": loop_s,
         "rate": len(loop) / loop_s, "unit": "models/s",
         "val_mse_mean": float(np.mean(loop_mse))},
        {"name": "vmapped ensemble", "models": len(slots), "seconds": vmap_s,
         "rate": len(slots) / vmap_s, "unit": "models/s",
         "val_mse_mean": vmap_mse.mean().item()}]})


def hidden_trace(model, x):
    """Pre-activations of every layer and the hidden activations, as circuitscope's trace."""
    pre, hs = [], [x]
    h = x
    lins = linears(model)
    for k, lin in enumerate(lins):
        z = lin(h)
        pre.append(z)
        h = torch.relu(z) if k < len(lins) - 1 else z
        hs.append(h)
    return pre, hs


def w3():
    """All adjacent-layer and output-to-layer Jacobians of products64 on 10,000 inputs with
    torch.func (vmap of jacrev), and the distinct activation patterns."""
    from torch.func import jacrev, vmap

    model = mlp_from(os.path.join(D, "products64.safetensors"))
    x = load_file(os.path.join(D, "inputs.safetensors"))["probe_x"]
    lins = linears(model)
    L = len(lins)

    def step(k):
        return (lambda h: torch.relu(lins[k](h))) if k < L - 1 else (lambda h: lins[k](h))

    def tail(k):
        def f(h):
            for j in range(k, L):
                h = step(j)(h)
            return h
        return f

    adj = [vmap(jacrev(step(k))) for k in range(L)]
    out = [vmap(jacrev(tail(k))) for k in range(L)]
    with torch.no_grad():
        for k in range(L):  # warm-up: the timed calls are steady-state ones
            h = hidden_trace(model, x[:10])[1][k]
            adj[k](h), out[k](h)
        t0 = time.perf_counter()
        pre, hs = hidden_trace(model, x)
        jac = []
        for k in range(L):
            jac.append(adj[k](hs[k]))
            jac.append(out[k](hs[k]))
        z = torch.cat(pre[:-1], dim=1)
        patterns = torch.unique(z > 0, dim=0).shape[0]
        s = time.perf_counter() - t0
        near = (z.abs() < 1e-5).any(dim=1)
        clean = torch.unique((z > 0)[~near], dim=0).shape[0]
        dydx = jac[1].double().abs().sum().item()
    emit({"workload": "W3", "examples": x.shape[0], "patterns": patterns,
          "patterns_without_near_zero": clean,
          "near_zero": torch.nonzero(near)[:, 0].tolist(), "dydx_abs_sum": dydx,
          "variants": [{"name": "torch.func vmap(jacrev)", "seconds": s,
                        "rate": x.shape[0] * 2 * L / s, "unit": "Jacobians/s"}]})


def w4():
    """IG on the edges h1->h2 and h2->h3 of products64 for output 0, zero baseline, 1,000
    inputs: Captum's IntegratedGradients over an edge-expanded input, and a direct torch.func
    version (vmap of grad at the midpoints), each against circuitscope's exact attributions."""
    from captum.attr import IntegratedGradients
    from torch.func import grad, vmap

    model = mlp_from(os.path.join(D, "products64.safetensors"))
    x = load_file(os.path.join(D, "inputs.safetensors"))["ig_x"]
    exact = load_file(os.path.join(D, "ig_exact.safetensors"))
    lins = linears(model)
    L = len(lins)
    pairs = [1, 2]
    with torch.no_grad():
        _, hs = hidden_trace(model, x)

    def tail_from_z(l):
        def f(z):
            h = torch.relu(z)
            for j in range(l + 1, L):
                h = lins[j](h)
                if j < L - 1:
                    h = torch.relu(h)
            return h[..., 0]
        return f

    grads = {l: vmap(vmap(grad(tail_from_z(l)))) for l in pairs}

    @torch.no_grad()  # torch.func.grad still differentiates; no graph to the parameters
    def direct(steps, n=None):
        # Midpoints in chunks of 50, so memory stays flat as the step count grows.
        res = []
        for l in pairs:
            h, W, b = hs[l][:n], lins[l].weight.detach(), lins[l].bias.detach()
            alphas = (torch.arange(steps, dtype=torch.float32) + 0.5) / steps
            total = torch.zeros(h.shape[0], W.shape[0])
            for chunk in alphas.split(50):
                z = (chunk[:, None, None] * h[None]) @ W.T + b
                total += grads[l](z).sum(dim=0)
            res.append(h[:, None, :] * W[None] * (total / steps)[:, :, None])
        return res

    class Edges(nn.Module):
        def __init__(self, l):
            super().__init__()
            self.l = l

        def forward(self, e):
            lin = lins[self.l]
            return tail_from_z(self.l)((e * lin.weight).sum(-1) + lin.bias)

    def captum(steps, n=None):
        res = []
        for l in pairs:
            h = hs[l][:n]
            e = h[:, None, :].expand(-1, lins[l].out_features, -1).contiguous()
            ig = IntegratedGradients(Edges(l))
            res.append(ig.attribute(e, baselines=torch.zeros_like(e), n_steps=steps,
                                    method="riemann_middle", internal_batch_size=100 * steps))
        return res

    def error(res):
        return max((r.double() - exact[f"pair{l}"]).abs().max().item()
                   for r, l in zip(res, pairs))

    edges = sum(lins[l].in_features * lins[l].out_features for l in pairs)
    variants = []
    for name, f, steps in [("captum", captum, 50), ("torch.func", direct, 50)]:
        f(steps, 10)  # warm-up: the timed call is a steady-state one
        t0 = time.perf_counter()
        res = f(steps)
        s = time.perf_counter() - t0
        variants.append({"name": f"{name} {steps} steps", "steps": steps, "seconds": s,
                         "rate": edges * x.shape[0] / s, "unit": "edge attributions/s",
                         "max_error": error(res)})
    sweep = []
    for steps in [int(v) for v in args.w4_steps.split(",")]:
        t0 = time.perf_counter()
        res = direct(steps)
        s = time.perf_counter() - t0
        sweep.append({"steps": steps, "seconds": s, "max_error": error(res)})
    # The most accurate tested: a Riemann sum never reaches exact IG's error (0 in f64), so
    # this is the nearest to "equal error" measured.
    best = min(sweep, key=lambda v: v["max_error"])
    variants.append({"name": f"torch.func {best['steps']} steps (best tested error)",
                     "steps": best["steps"], "seconds": best["seconds"],
                     "rate": edges * x.shape[0] / best["seconds"], "unit": "edge attributions/s",
                     "max_error": best["max_error"]})
    emit({"workload": "W4", "examples": x.shape[0], "edges": edges, "variants": variants,
          "sweep": sweep,
          "max_attribution": max(exact[f"pair{l}"].abs().max().item() for l in pairs)})


def w5():
    """scikit-learn: PCA (full SVD) of each hidden layer of products64 on 10,000 inputs and
    PLSRegression (8 components, scale=True) from each hidden layer to the next."""
    from sklearn.cross_decomposition import PLSRegression
    from sklearn.decomposition import PCA

    model = mlp_from(os.path.join(D, "products64.safetensors"))
    x = load_file(os.path.join(D, "inputs.safetensors"))["probe_x"]
    with torch.no_grad():
        _, hs = hidden_trace(model, x)
    layers = [h.numpy() for h in hs[1:-1]]
    t0 = time.perf_counter()
    ratios = [PCA(svd_solver="full").fit(h).explained_variance_ratio_[:8].tolist()
              for h in layers]
    r2 = []
    for a, b in zip(layers, layers[1:]):
        pls = PLSRegression(n_components=8, scale=True).fit(a, b)
        r2.append(float(pls.score(a, b)))
    s = time.perf_counter() - t0
    emit({"workload": "W5", "pca_ratios": ratios, "pls_r2": r2, "variants": [
        {"name": "scikit-learn PCA + PLSRegression", "seconds": s, "rate": 1 / s,
         "unit": "runs/s"}]})


# ---- W6: a 784->512->512->10 classifier (one stage per process, for its peak memory) ----

def w6_data():
    t = load_file(os.path.join(D, "w6_data.safetensors"))
    with open(os.path.join(D, "w6.json")) as f:
        cfg = json.load(f)
    return t, cfg


def w6_mean_ablated(model, x, keep, means):
    """Outputs with the edges not in `keep` (per layer, out x in bools) mean-ablated: in j's
    pre-activation a_i is replaced by its clean mean, batched as two products per layer."""
    h = x
    lins = linears(model)
    for k, lin in enumerate(lins):
        W, b = lin.weight, lin.bias
        m = keep[k].to(W.dtype)
        z = h @ (W * m).T + (means[k] @ (W * (1 - m)).T + b)
        h = torch.relu(z) if k < len(lins) - 1 else z
    return h


def w6_train():
    """One epoch of 60,000 (batch 128, in the exchange's order, Adam 1e-3, cross-entropy) from
    the same initial weights, then the loss and accuracy on the 10,000 inputs."""
    t, cfg = w6_data()
    model = mlp_from(os.path.join(D, "w6_init.safetensors"))
    x, y = t["train_x"], t["train_y"].argmax(dim=1)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    loss_fn = nn.CrossEntropyLoss()
    b = cfg["batch"]
    t0 = time.perf_counter()
    for s in range(0, x.shape[0], b):
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x[s:s + b]), y[s:s + b]).backward()
        opt.step()
    s = time.perf_counter() - t0
    with torch.no_grad():
        out = model(t["x"])
        lab = t["y"].argmax(dim=1)
        loss = loss_fn(out, lab).item()
        acc = (out.argmax(dim=1) == lab).double().mean().item()
    emit({"workload": "W6-train", "loss": loss, "accuracy": acc, "variants": [
        {"name": "torch loop", "seconds": s, "rate": x.shape[0] / s, "unit": "examples/s"}]})


def w6_jacobians():
    """dy/dx and every adjacent dh_{k+1}/dh_k of the trained model on the 10,000 inputs with
    torch.func (vmap of jacrev), in chunks of 64 (the adjacent blocks of one chunk are 100 MB),
    each summed in absolute value (as the agreement check)."""
    from torch.func import jacrev, vmap

    t, _ = w6_data()
    model = mlp_from(os.path.join(D, "w6.safetensors"))
    x = t["x"]
    lins = linears(model)
    L = len(lins)

    def step(k):
        return (lambda h: torch.relu(lins[k](h))) if k < L - 1 else (lambda h: lins[k](h))

    adj = [vmap(jacrev(step(k))) for k in range(L)]
    dydx = vmap(jacrev(model))
    sums = [0.0] * (L + 1)
    with torch.no_grad():
        for k in range(L):  # warm-up
            adj[k](hidden_trace(model, x[:4])[1][k])
        dydx(x[:4])
        t0 = time.perf_counter()
        for c in range(0, x.shape[0], 64):
            _, hs = hidden_trace(model, x[c:c + 64])
            sums[0] += dydx(hs[0]).double().abs().sum().item()
            for k in range(L):
                sums[k + 1] += adj[k](hs[k]).double().abs().sum().item()
        s = time.perf_counter() - t0
    emit({"workload": "W6-jacobians", "examples": x.shape[0], "abs_sums": sums,
          "variants": [{"name": "torch.func vmap(jacrev)", "seconds": s,
                        "rate": x.shape[0] * (L + 1) / s, "unit": "Jacobians/s"}]})


def w6_ig():
    """IG on every edge (664,576) for each example's correct-class logit, zero baseline, on the
    exchange's first inputs: torch.func (vmap of grad at 50 midpoints) and Captum's
    IntegratedGradients over an edge-expanded input, each averaged over the examples and
    compared with circuitscope's exact means."""
    from captum.attr import IntegratedGradients
    from torch.func import grad, vmap

    t, cfg = w6_data()
    n = cfg["ig_examples"]
    model = mlp_from(os.path.join(D, "w6.safetensors"))
    exact = load_file(os.path.join(D, "w6_ig.safetensors"))
    x, lab = t["x"][:n], t["y"][:n].argmax(dim=1)
    lins = linears(model)
    L = len(lins)
    with torch.no_grad():
        _, hs = hidden_trace(model, x)

    def tail(l, c):
        def f(z):
            h = torch.relu(z) if l < L - 1 else z
            for j in range(l + 1, L):
                h = lins[j](h)
                if j < L - 1:
                    h = torch.relu(h)
            return h[..., c]
        return f

    def tail_sel(l):
        # The target logit of each example: the output row times its one-hot label.
        def f(z, onehot):
            h = torch.relu(z) if l < L - 1 else z
            for j in range(l + 1, L):
                h = lins[j](h)
                if j < L - 1:
                    h = torch.relu(h)
            return (h * onehot).sum(-1)
        return f

    onehot = t["y"][:n]
    grads = [vmap(vmap(grad(tail_sel(l)), in_dims=(0, None)), in_dims=(1, 0), out_dims=1)
             for l in range(L)]

    @torch.no_grad()
    def direct(steps):
        res = []
        for l in range(L):
            h, W, b = hs[l], lins[l].weight.detach(), lins[l].bias.detach()
            alphas = (torch.arange(steps, dtype=torch.float32) + 0.5) / steps
            total = torch.zeros(h.shape[0], W.shape[0])
            for chunk in alphas.split(10):
                z = (chunk[:, None, None] * h[None]) @ W.T + b
                total += grads[l](z, onehot).sum(dim=0)
            # The mean over examples of a_i w_ji g_j, without the n x out x in array.
            res.append(torch.einsum("nj,ni->ji", total / steps, h) * W / h.shape[0])
        return res

    class Edges(nn.Module):
        def __init__(self, l, c):
            super().__init__()
            self.l, self.c = l, c

        def forward(self, e):
            lin = lins[self.l]
            return tail(self.l, self.c)((e * lin.weight).sum(-1) + lin.bias)

    def captum(steps):
        res = []
        for l in range(L):
            acc = torch.zeros(lins[l].out_features, lins[l].in_features, dtype=torch.float64)
            for i in range(n):
                e = hs[l][i][None, None, :].expand(1, lins[l].out_features, -1).contiguous()
                ig = IntegratedGradients(Edges(l, int(lab[i])))
                acc += ig.attribute(e, baselines=torch.zeros_like(e), n_steps=steps,
                                    method="riemann_middle", internal_batch_size=steps)[0].double()
            res.append(acc / n)
        return res

    def error(res):
        return max((r.double() - exact[f"mean_ig_{l}"]).abs().max().item()
                   for l, r in enumerate(res))

    edges = sum(l.in_features * l.out_features for l in lins)
    variants = []
    for name, f in [("torch.func", direct), ("captum", captum)]:
        t0 = time.perf_counter()
        res = f(50)
        s = time.perf_counter() - t0
        variants.append({"name": f"{name} 50 steps", "seconds": s,
                         "rate": edges * n / s, "unit": "edge attributions/s",
                         "max_error": error(res)})
    emit({"workload": "W6-ig", "examples": n, "edges": edges, "variants": variants,
          "max_mean": max(exact[f"mean_ig_{l}"].abs().max().item() for l in range(L))})


def w6_faithfulness():
    """The 12-point faithfulness curve of the exchange's edge ranking (circuitscope's exact IG):
    mean ablation of the edges not kept, cross-entropy on the 10,000 inputs, each point one
    batched edge-ablated forward pass."""
    t, cfg = w6_data()
    model = mlp_from(os.path.join(D, "w6.safetensors"))
    order = load_file(os.path.join(D, "w6_ig.safetensors"))["order"].long()
    x, lab = t["x"], t["y"].argmax(dim=1)
    lins = linears(model)
    sizes = [l.in_features * l.out_features for l in lins]
    loss_fn = nn.CrossEntropyLoss()
    with torch.no_grad():
        t0 = time.perf_counter()
        _, hs = hidden_trace(model, x)
        means = [h.mean(dim=0) for h in hs[:-1]]
        losses = []
        for frac in cfg["fractions"]:
            keep = torch.zeros(sum(sizes), dtype=torch.bool)
            # circuitscope's count for a share: ceil(share * n - 1e-9), within [0, n].
            k = min(len(order), max(0, math.ceil(frac * len(order) - 1e-9)))
            keep[order[:k]] = True
            parts, off = [], 0
            for lin, size in zip(lins, sizes):
                parts.append(keep[off:off + size].view(lin.out_features, lin.in_features))
                off += size
            losses.append(loss_fn(w6_mean_ablated(model, x, parts, means), lab).item())
        s = time.perf_counter() - t0
    full, none = losses[-1], losses[0]
    curve = [(none - m) / (none - full) for m in losses]
    emit({"workload": "W6-faithfulness", "curve": curve, "variants": [
        {"name": "torch batched edge ablation", "seconds": s, "rate": len(curve) / s,
         "unit": "curve points/s"}]})


def w6_pca():
    """scikit-learn PCA (full SVD) of both hidden layers and PLSRegression (8 components)
    from the first to the second, on the 10,000 inputs."""
    from sklearn.cross_decomposition import PLSRegression
    from sklearn.decomposition import PCA

    t, _ = w6_data()
    model = mlp_from(os.path.join(D, "w6.safetensors"))
    with torch.no_grad():
        _, hs = hidden_trace(model, t["x"])
    layers = [h.numpy() for h in hs[1:-1]]
    t0 = time.perf_counter()
    ratios = [PCA(svd_solver="full").fit(h).explained_variance_ratio_[:8].tolist()
              for h in layers]
    pls = PLSRegression(n_components=8, scale=True).fit(layers[0], layers[1])
    r2 = [float(pls.score(layers[0], layers[1]))]
    s = time.perf_counter() - t0
    emit({"workload": "W6-pca", "pca_ratios": ratios, "pls_r2": r2, "variants": [
        {"name": "scikit-learn PCA + PLSRegression", "seconds": s, "rate": 1 / s,
         "unit": "runs/s"}]})


{"W1": w1, "W2": w2, "W3": w3, "W4": w4, "W5": w5, "W6-train": w6_train,
 "W6-jacobians": w6_jacobians, "W6-ig": w6_ig, "W6-faithfulness": w6_faithfulness,
 "W6-pca": w6_pca}[args.workload]()
sys.exit(0)
