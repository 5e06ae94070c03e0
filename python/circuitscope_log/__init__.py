"""circuitscope_log: follow a PyTorch (or numpy) training loop with circuitscope.

A training loop writes a circuitscope *spec run* directory, which ``circuitscope watch``,
``analyze --follow``, ``probe``, ``graph`` and ``eval`` read like one of circuitscope's own::

    import circuitscope_log
    with circuitscope_log.Run("runs/x", model=model, inputs=["a", "b", "c", "d"],
                              tasks={"ab": [0], "cd": [1]}, val=(x_val, y_val),
                              total_steps=5000, batch_size=64) as run:
        for step in range(5000):
            ...
            run.step(step, {"ab": loss_ab, "cd": loss_cd}, lr=lr)
            if step % 500 == 0:
                run.checkpoint(step, model)
        run.end(model)

It writes ``run.json`` (format ``circuitscope-run/2``, origin ``python``, the model's spec),
``data/val.csv``, ``events.jsonl`` (one flushed line per event, each checked against the shared
schema ``events.schema.json``) and ``checkpoints/step-N.safetensors`` (atomically). Opening a
directory that already holds this run appends a ``resumed`` event instead of clobbering it.

The core is the standard library only; numpy and torch are used when the values given are
theirs. It must never write outside its run directory, and never leave a half-written file or
event line behind it on an error of its own.
"""

import json
import math
import os
import time

from . import safetensors as _st
from .schema import VERSION as SCHEMA_VERSION
from .schema import check_event

__version__ = "0.1.0"
__all__ = ["Run", "RunError", "spec_layers", "SCHEMA_VERSION"]

RUN_FORMAT = "circuitscope-run/2"

# PyTorch activation modules and the spec's names for them.
_ACTIVATIONS = {
    "ReLU": "relu",
    "Tanh": "tanh",
    "Sigmoid": "sigmoid",
    "SiLU": "silu",
    "Identity": None,
    "Dropout": None,  # the identity in evaluation, where every analysis runs
}
_SPEC_ACTIVATIONS = {
    "relu", "leaky_relu", "identity", "tanh", "sigmoid", "gelu", "gelu_tanh", "silu", "softplus",
}


class RunError(ValueError):
    """A model, task map or value the logger cannot describe to circuitscope."""


def _float(x, what):
    """A Python float of a number, a 0-d numpy array or a one-element torch tensor."""
    if hasattr(x, "item"):
        x = x.item()
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise RunError(f"{what}: {x!r} is not a number") from None
    return v


def _module_activation(m):
    """(spec activation, slope) of a PyTorch activation module, or None for the identity."""
    name = type(m).__name__
    if name == "LeakyReLU":
        return ("leaky_relu", float(m.negative_slope))
    if name == "GELU":
        return ("gelu_tanh" if getattr(m, "approximate", "none") == "tanh" else "gelu", None)
    if name == "Softplus":
        if float(m.beta) != 1.0:
            raise RunError(f"Softplus(beta={m.beta}): only beta=1 is a spec activation")
        return ("softplus", None)
    if name in _ACTIVATIONS:
        a = _ACTIVATIONS[name]
        return None if a is None else (a, None)
    raise RunError(
        f"{name}: not a Linear layer or an activation circuitscope models "
        f"(Linear, ReLU, LeakyReLU, Tanh, Sigmoid, GELU, SiLU, Softplus, Identity, Dropout); "
        f"give the model as a list [(W, b, 'relu'), ...] instead"
    )


def spec_layers(model):
    """The model as ``[(weight_name, bias_name or None, activation, slope, W, b)]`` in forward
    order: an ``nn.Sequential`` of Linear and activation modules (tensor names as its
    ``state_dict`` has them), or a list ``[(W, b, "relu"), ...]`` (names ``layers.i.weight``)."""
    if isinstance(model, (list, tuple)):
        out = []
        for i, layer in enumerate(model):
            if not isinstance(layer, (list, tuple)) or len(layer) not in (3, 4):
                raise RunError(
                    f"layer {i}: expected (W, b, activation) or (W, b, 'leaky_relu', slope), got {type(layer).__name__}"
                )
            w, b, act = layer[0], layer[1], layer[2]
            slope = float(layer[3]) if len(layer) == 4 else None
            if act not in _SPEC_ACTIVATIONS:
                raise RunError(f"layer {i}: unknown activation {act!r} (one of {sorted(_SPEC_ACTIVATIONS)})")
            if act == "leaky_relu" and slope is None:
                slope = 0.01
            out.append((f"layers.{i}.weight", None if b is None else f"layers.{i}.bias", act, slope, w, b))
        if not out:
            raise RunError("the model has no layers")
        return out
    if type(model).__name__ != "Sequential" or not hasattr(model, "named_children"):
        raise RunError(
            f"{type(model).__name__}: give an nn.Sequential of Linear and activation modules, "
            f"or a list [(W, b, 'relu'), ...] of arrays"
        )
    out = []
    for name, m in model.named_children():
        kind = type(m).__name__
        if kind == "Linear":
            out.append([f"{name}.weight", f"{name}.bias" if m.bias is not None else None,
                        "identity", None, m.weight, m.bias])
            continue
        if kind == "Sequential":
            raise RunError(f"{name}: a nested Sequential; flatten the model into one nn.Sequential")
        act = _module_activation(m)
        if act is None:
            continue
        if not out:
            raise RunError(f"{name}: {kind} before the first Linear layer")
        if out[-1][2] != "identity":
            raise RunError(f"{name}: two activations after one Linear layer ({out[-1][2]}, {act[0]})")
        out[-1][2], out[-1][3] = act
    if not out:
        raise RunError("the nn.Sequential holds no Linear layer")
    return [tuple(x) for x in out]


def _shape(t):
    if hasattr(t, "shape"):
        return list(t.shape)
    return _st.tensor_bytes(t)[0]


def _rows(x):
    """A 2-d value (array, tensor, nested lists) as a list of lists of floats."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().double().numpy()
    if hasattr(x, "tolist"):
        x = x.tolist()
    return [list(map(float, r)) if isinstance(r, (list, tuple)) else [float(r)] for r in x]



class Run:
    """One training run, followed by circuitscope. See the module's documentation."""

    def __init__(self, path, model, inputs, tasks, val, total_steps=None, batch_size=None,
                 steps_per_epoch=None, config=None):
        self.path = os.fspath(path)
        self.total_steps = total_steps
        self.batch_size = batch_size
        self.steps_per_epoch = steps_per_epoch
        self._ended = False
        self._last_checkpoint = None
        self._rate = None  # (time, step) of the previous train_step, for throughput and ETA
        layers = spec_layers(model)
        self.inputs = [str(i) for i in inputs]
        if len(set(self.inputs)) != len(self.inputs) or not self.inputs:
            raise RunError(f"inputs {self.inputs}: give each input column one distinct name")
        d_in = _shape(layers[0][4])[1]
        d_out = _shape(layers[-1][4])[0]
        if d_in != len(self.inputs):
            raise RunError(f"the model reads {d_in} inputs but {len(self.inputs)} input names were given")
        self.tasks = self._tasks(tasks, d_out)
        spec = {
            "format": "circuitscope-spec",
            "version": 1,
            "inputs": self.inputs,
            "layers": [],
            "tasks": [],
        }
        for (wn, bn, act, slope, _, _) in layers:
            layer = {"weight": wn}
            if bn is not None:
                layer["bias"] = bn
            layer["activation"] = act
            if slope is not None:
                layer["slope"] = slope
            spec["layers"].append(layer)
        for t in self.tasks:
            task = {"name": t["name"], "outputs": t["outputs"], "target": t["name"], "loss": t["loss"]}
            if t.get("uses"):
                task["uses"] = t["uses"]
            spec["tasks"].append(task)
        self.spec = spec
        info = {
            "format": RUN_FORMAT,
            "crate_version": f"circuitscope_log {__version__}",
            "origin": "python",
            "spec": spec,
        }
        run_json = os.path.join(self.path, "run.json")
        events = os.path.join(self.path, "events.jsonl")
        resumed = os.path.exists(run_json)
        if resumed:
            with open(run_json, encoding="utf-8") as f:
                old = json.load(f)
            if old.get("spec") != spec:
                raise RunError(
                    f"{run_json}: this directory holds a run of another model or task set; choose another path"
                )
        os.makedirs(os.path.join(self.path, "checkpoints"), exist_ok=True)
        if not resumed:
            _st.write_atomic(os.path.join(self.path, "data", "val.csv"), self._val_csv(val, d_out).encode())
            _st.write_atomic(run_json, (json.dumps(info, indent=1) + "\n").encode())
        self._fd = os.open(events, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._close_torn_line(events)
        cfg = {"logger": f"circuitscope_log {__version__}", "total_steps": total_steps,
               "batch_size": batch_size}
        if config:
            cfg.update(config)
        self._emit("run_start", None, command="train", preset=None, config=cfg)
        if resumed:
            steps = self._checkpoint_steps()
            self._emit("resumed", steps[-1] if steps else 0, from_step=steps[-1] if steps else 0)

    # --- what a training loop calls -------------------------------------------------------

    def step(self, step, losses, lr=None, loss=None, examples=None, epoch=None):
        """One training step: per-task training losses (a dict by task name, every task),
        the learning rate, optionally the total loss (default: the sum) and the examples in
        this step (default: ``batch_size``), for the throughput."""
        step = int(step)
        names = [t["name"] for t in self.tasks]
        if set(losses) != set(names):
            raise RunError(f"step {step}: losses for {sorted(losses)}, but the tasks are {names}")
        values = [_float(losses[n], f"loss of task {n}") for n in names]
        total = sum(values) if loss is None else _float(loss, "loss")
        now = time.time()
        examples = examples if examples is not None else self.batch_size
        eps, eta = 0.0, -1.0
        if self._rate is not None and step > self._rate[1] and now > self._rate[0]:
            steps_per_s = (step - self._rate[1]) / (now - self._rate[0])
            eps = steps_per_s * examples if examples else 0.0
            if self.total_steps:
                eta = max(0.0, (self.total_steps - step) / steps_per_s)
        self._rate = (now, step)
        if not all(math.isfinite(v) for v in values + [total]):
            # JSON has no NaN, and a made-up number would be worse than none: the step is
            # said in a note instead of a train_step.
            self.note(f"step {step}: a loss is not finite ({dict(zip(names, values))}, total {total}); no train_step logged")
            return
        self._emit("train_step", step, epoch=self._epoch(step, epoch), losses=values,
                   loss=total, lr=_float(lr, "lr") if lr is not None else 0.0,
                   examples_per_s=eps, eta_s=eta)

    def eval(self, step, metrics, split="val", epoch=None):
        """Held-out metrics: ``{task: {"loss": .., "r2": ..}}`` or ``{task: loss}``."""
        tasks = []
        for t in self.tasks:
            n = t["name"]
            if n not in metrics:
                continue
            m = metrics[n]
            if not isinstance(m, dict):
                m = {"loss": m}
            unknown = set(m) - {"loss", "r2", "accuracy"}
            if unknown:
                raise RunError(f"eval: task {n}: unknown metric(s) {sorted(unknown)} (loss, r2, accuracy)")
            rec = {"task": n, "loss": _float(m["loss"], f"eval loss of {n}")}
            for k in ("r2", "accuracy"):
                if k in m:
                    rec[k] = _float(m[k], f"eval {k} of {n}")
            tasks.append(rec)
        unknown = set(metrics) - {t["name"] for t in self.tasks}
        if unknown:
            raise RunError(f"eval: unknown task(s) {sorted(unknown)}")
        self._emit("eval", int(step), epoch=self._epoch(int(step), epoch), split=split, tasks=tasks)

    def checkpoint(self, step, model):
        """Writes ``checkpoints/step-N.safetensors`` atomically, then a ``checkpoint`` event."""
        step = int(step)
        rel = f"checkpoints/step-{step}.safetensors"
        _st.write_atomic(os.path.join(self.path, rel), self._weights(model, step))
        self._last_checkpoint = rel
        self._emit("checkpoint", step, path=rel, epoch=self._epoch(step, None))

    def note(self, text):
        self._emit("note", None, text=str(text))

    def end(self, model=None, status="completed", message=None):
        """Writes ``model.safetensors`` (``model``, else the last checkpoint) and ``run_end``."""
        if self._ended:
            return
        final = os.path.join(self.path, "model.safetensors")
        if model is not None:
            _st.write_atomic(final, self._weights(model, None))
        elif self._last_checkpoint is not None or self._checkpoint_steps():
            rel = self._last_checkpoint or f"checkpoints/step-{self._checkpoint_steps()[-1]}.safetensors"
            with open(os.path.join(self.path, rel), "rb") as f:
                _st.write_atomic(final, f.read())
        self._emit("run_end", None, status=status, message=message)
        self._ended = True
        os.close(self._fd)

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        if self._ended:
            return False
        if kind is None:
            self.end()
        else:
            status = "interrupted" if issubclass(kind, KeyboardInterrupt) else "failed"
            self._emit("run_end", None, status=status, message=f"{kind.__name__}: {value}")
            self._ended = True
            os.close(self._fd)
        return False

    # --- internals --------------------------------------------------------------------

    def _tasks(self, tasks, d_out):
        if not isinstance(tasks, dict) or not tasks:
            raise RunError("tasks: a dict of task name -> output columns, e.g. {'ab': [0], 'cd': [1]}")
        out = []
        for name, t in tasks.items():
            if isinstance(t, dict):
                unknown = set(t) - {"outputs", "loss", "uses"}
                if unknown:
                    raise RunError(f"task {name}: unknown field(s) {sorted(unknown)} (outputs, loss, uses)")
                outputs, loss, uses = t.get("outputs"), t.get("loss", "mse"), t.get("uses")
            else:
                outputs, loss, uses = t, "mse", None
            if isinstance(outputs, int):
                outputs = [outputs]
            if loss not in ("mse", "cross_entropy"):
                raise RunError(f"task {name}: loss {loss!r} is neither 'mse' nor 'cross_entropy'")
            if loss == "cross_entropy" and outputs is None:
                outputs = list(range(d_out))
            if not outputs or any(not isinstance(o, int) or not 0 <= o < d_out for o in outputs):
                raise RunError(f"task {name}: outputs {outputs} must be output columns of the model's {d_out}")
            if loss == "mse" and len(outputs) != 1:
                raise RunError(f"task {name}: a regression task owns one output column, not {outputs}")
            if uses is not None and any(u not in self.inputs for u in uses):
                raise RunError(f"task {name}: uses {uses} names inputs that are not among {self.inputs}")
            out.append({"name": str(name), "outputs": list(outputs), "loss": loss, "uses": uses})
        if any(t["loss"] == "cross_entropy" for t in out) and len(out) > 1:
            raise RunError("a classifier is one task owning every logit; it cannot share the model with other tasks")
        owned = [o for t in out for o in t["outputs"]]
        if len(set(owned)) != len(owned):
            raise RunError(f"tasks: an output column is owned by two tasks ({owned})")
        return out

    def _val_csv(self, val, d_out):
        if not isinstance(val, (list, tuple)) or len(val) != 2:
            raise RunError("val: give (x_val, y_val)")
        x = _rows(val[0])
        classifier = self.tasks[0]["loss"] == "cross_entropy"
        y = _rows(val[1])
        if len(x) != len(y) or not x:
            raise RunError(f"val: {len(x)} input rows and {len(y)} target rows")
        if any(len(r) != len(self.inputs) for r in x):
            raise RunError(f"val: every input row needs {len(self.inputs)} values")
        lines = [",".join(self.inputs + [t["name"] for t in self.tasks])]
        for i, (xr, yr) in enumerate(zip(x, y)):
            if not all(math.isfinite(v) for v in xr + yr):
                raise RunError(f"val: row {i} holds NaN or Inf")
            if classifier:
                if len(yr) != 1 or not yr[0].is_integer() or not 0 <= yr[0] < d_out:
                    raise RunError(f"val: row {i}: a class label below {d_out} expected, got {yr}")
                targets = [str(int(yr[0]))]
            else:
                if len(yr) != d_out:
                    raise RunError(f"val: row {i}: {len(yr)} targets, the model has {d_out} outputs")
                targets = [repr(yr[t["outputs"][0]]) for t in self.tasks]
            lines.append(",".join([repr(v) for v in xr] + targets))
        return "\n".join(lines) + "\n"

    def _weights(self, model, step):
        layers = spec_layers(model)
        names = [(l[0], l[1]) for l in layers]
        expect = [(l["weight"], l.get("bias")) for l in self.spec["layers"]]
        if names != expect:
            raise RunError(f"checkpoint: the model's layers {names} are not the run's {expect}")
        tensors = {}
        for (wn, bn, _, _, w, b) in layers:
            tensors[wn] = w
            if bn is not None:
                tensors[bn] = b
        meta = {"writer": f"circuitscope_log {__version__}"}
        if step is not None:
            meta["step"] = step
        return _st.encode(tensors, meta)

    def _epoch(self, step, epoch):
        if epoch is not None:
            return int(epoch)
        return step // self.steps_per_epoch if self.steps_per_epoch else 0

    def _checkpoint_steps(self):
        steps = []
        for name in os.listdir(os.path.join(self.path, "checkpoints")):
            if name.startswith("step-") and name.endswith(".safetensors"):
                try:
                    steps.append(int(name[5:-12]))
                except ValueError:
                    pass
        return sorted(steps)

    def _close_torn_line(self, events):
        # A trainer killed mid-write leaves a partial last line; close it so the next event
        # starts on a line of its own (readers skip the torn line as garbage).
        size = os.path.getsize(events)
        if size:
            with open(events, "rb") as f:
                f.seek(size - 1)
                if f.read(1) != b"\n":
                    os.write(self._fd, b"\n")

    def _emit(self, kind, step, **fields):
        if self._ended:
            raise RunError(f"{kind}: the run has ended")
        event = {"v": SCHEMA_VERSION, "time": time.time()}
        if step is not None:
            event["step"] = int(step)
        event["kind"] = kind
        event.update(fields)
        error = check_event(event)
        if error:
            raise RunError(f"internal: an event does not match events.schema.json: {error}")
        line = (json.dumps(event, separators=(",", ":"), allow_nan=False) + "\n").encode()
        os.write(self._fd, line)  # one write on an O_APPEND descriptor: a whole line or a torn last one
