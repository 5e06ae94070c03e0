"""Tests of circuitscope_log without torch (CI has none): the run directory it writes, every
event against the shared schema, refusals, the context manager, restarts and torn lines.

    python3 -m unittest discover -s python/tests -v
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

import circuitscope_log  # noqa: E402
from circuitscope_log import RunError, safetensors  # noqa: E402
from circuitscope_log.schema import SCHEMA, check_event  # noqa: E402

try:
    import numpy as np
except ImportError:  # the stdlib-only tests still run
    np = None


def lines(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def text(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


def load_json(path):
    return json.loads(text(path))


def tiny_model():
    """A 2->3->2 model as nested lists (no numpy)."""
    w1 = [[0.5, -0.25], [0.1, 0.2], [-0.3, 0.4]]
    b1 = [0.0, 0.1, -0.1]
    w2 = [[1.0, 0.5, -0.5], [0.25, -1.0, 0.75]]
    b2 = [0.05, -0.05]
    return [(w1, b1, "relu"), (w2, b2, "identity")]


VAL = ([[0.1, 0.2], [0.3, -0.4], [-0.5, 0.6]], [[0.02, 0.1], [-0.12, 0.2], [-0.3, 0.0]])


class RunDirectory(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.tmp.name, "run")

    def tearDown(self):
        self.tmp.cleanup()

    def run_once(self, path=None, **kw):
        run = circuitscope_log.Run(path or self.path, model=tiny_model(), inputs=["x", "y"],
                                   tasks={"p": [0], "q": {"outputs": [1], "uses": ["y"]}},
                                   val=VAL, total_steps=4, batch_size=8, **kw)
        for step in range(1, 5):
            run.step(step, {"p": 0.5 / step, "q": 0.25 / step}, lr=0.01)
            if step % 2 == 0:
                run.eval(step, {"p": {"loss": 0.1, "r2": 0.9}, "q": 0.2})
                run.checkpoint(step, tiny_model())
        run.end(tiny_model())
        return run

    def test_writes_a_spec_run_that_matches_the_schema(self):
        self.run_once()
        info = load_json(os.path.join(self.path, "run.json"))
        self.assertEqual(info["format"], "circuitscope-run/2")
        self.assertEqual(info["origin"], "python")
        spec = info["spec"]
        self.assertEqual(spec["inputs"], ["x", "y"])
        self.assertEqual([l["activation"] for l in spec["layers"]], ["relu", "identity"])
        self.assertEqual(spec["layers"][0]["weight"], "layers.0.weight")
        self.assertEqual(spec["tasks"][1], {"name": "q", "outputs": [1], "target": "q",
                                            "loss": "mse", "uses": ["y"]})
        val = text(os.path.join(self.path, "data", "val.csv")).splitlines()
        self.assertEqual(val[0], "x,y,p,q")
        self.assertEqual([float(v) for v in val[2].split(",")], [0.3, -0.4, -0.12, 0.2])
        events = lines(os.path.join(self.path, "events.jsonl"))
        for e in events:
            self.assertIsNone(check_event(e), e)
        kinds = [e["kind"] for e in events]
        self.assertEqual(kinds[0], "run_start")
        self.assertEqual(kinds[-1], "run_end")
        self.assertEqual(kinds.count("train_step"), 4)
        self.assertEqual(kinds.count("checkpoint"), 2)
        steps = [e for e in events if e["kind"] == "train_step"]
        self.assertEqual(steps[0]["losses"], [0.5, 0.25])
        self.assertAlmostEqual(steps[0]["loss"], 0.75)
        self.assertEqual(steps[0]["eta_s"], -1.0, "no rate yet: the ETA is unknown")
        self.assertGreaterEqual(steps[-1]["eta_s"], 0.0)
        ev = [e for e in events if e["kind"] == "eval"][0]
        self.assertEqual(ev["tasks"], [{"task": "p", "loss": 0.1, "r2": 0.9}, {"task": "q", "loss": 0.2}])
        # Checkpoints hold the weights under the spec's names, as float32, and nothing is
        # left half-written.
        ck = safetensors.read(os.path.join(self.path, "checkpoints", "step-4.safetensors"))
        self.assertEqual(ck["layers.0.weight"][0], [3, 2])
        self.assertAlmostEqual(ck["layers.1.weight"][1][5], 0.75, places=6)
        leftovers = [n for _, _, fs in os.walk(self.path) for n in fs if ".tmp-" in n]
        self.assertEqual(leftovers, [])
        self.assertTrue(os.path.exists(os.path.join(self.path, "model.safetensors")))

    def test_a_loss_that_is_not_finite_is_a_note_never_a_number(self):
        run = circuitscope_log.Run(self.path, model=tiny_model(), inputs=["x", "y"],
                                   tasks={"p": [0], "q": [1]}, val=VAL)
        run.step(1, {"p": float("nan"), "q": 0.5})
        run.step(2, {"p": 0.25, "q": 0.5})
        run.end()
        events = lines(os.path.join(self.path, "events.jsonl"))
        steps = [e for e in events if e["kind"] == "train_step"]
        self.assertEqual([e["step"] for e in steps], [2])
        notes = [e["text"] for e in events if e["kind"] == "note"]
        self.assertTrue(any("step 1: a loss is not finite" in n for n in notes), notes)

    def test_schema_checker_is_not_vacuous(self):
        good = {"v": 1, "time": 1.0, "step": 2, "kind": "resumed", "from_step": 2}
        self.assertIsNone(check_event(good))
        for bad in [
            dict(good, from_step="2"),
            {k: v for k, v in good.items() if k != "from_step"},
            dict(good, extra=1),
            dict(good, kind="teleport"),
            {"v": 1, "time": 1.0, "kind": "run_end", "status": "done", "message": None},
        ]:
            self.assertIsNotNone(check_event(bad), bad)
        self.assertIn("train_step", SCHEMA["kinds"])

    def test_refuses_what_it_cannot_describe(self):
        cases = [
            ({"model": "not a model"}, "nn.Sequential"),
            ({"model": [(tiny_model()[0][0], tiny_model()[0][1], "swish")]}, "unknown activation"),
            ({"inputs": ["x"]}, "reads 2 inputs"),
            ({"tasks": {"p": [0, 1]}}, "one output column"),
            ({"tasks": {"p": [5]}}, "output columns"),
            ({"tasks": {"p": [0], "q": [0]}}, "owned by two tasks"),
            ({"tasks": {"p": {"outputs": [0], "loss": "hinge"}}}, "neither"),
            ({"tasks": {"p": {"outputs": [0], "uses": ["z"]}}}, "not among"),
            ({"val": ([[0.1, float("nan")]], [[0.0, 0.0]])}, "NaN"),
            ({"val": ([[0.1, 0.2]], [[0.0]])}, "targets"),
        ]
        for i, (override, message) in enumerate(cases):
            kw = dict(model=tiny_model(), inputs=["x", "y"], tasks={"p": [0], "q": [1]}, val=VAL)
            kw.update(override)
            with self.assertRaises(RunError) as cm:
                circuitscope_log.Run(os.path.join(self.tmp.name, f"bad{i}"), **kw)
            self.assertIn(message, str(cm.exception))

    def test_refuses_modules_that_are_not_linear_or_activations(self):
        class Conv2d:
            pass

        class Sequential:
            def named_children(self):
                return [("0", Conv2d())]

        with self.assertRaises(RunError) as cm:
            circuitscope_log.spec_layers(Sequential())
        self.assertIn("Conv2d", str(cm.exception))
        self.assertIn("list [(W, b, 'relu')", str(cm.exception))

    def test_a_failure_in_the_loop_ends_the_run_as_failed(self):
        with self.assertRaises(ZeroDivisionError):
            with circuitscope_log.Run(self.path, model=tiny_model(), inputs=["x", "y"],
                                      tasks={"p": [0], "q": [1]}, val=VAL) as run:
                run.step(1, {"p": 1.0, "q": 1.0})
                1 / 0
        end = lines(os.path.join(self.path, "events.jsonl"))[-1]
        self.assertEqual(end["kind"], "run_end")
        self.assertEqual(end["status"], "failed")
        self.assertIn("ZeroDivisionError", end["message"])

    def test_a_restart_appends_resumed_and_refuses_another_model(self):
        self.run_once()
        before = text(os.path.join(self.path, "events.jsonl"), "rb")
        self.run_once()
        after = text(os.path.join(self.path, "events.jsonl"), "rb")
        self.assertTrue(after.startswith(before), "the restart clobbered the log")
        kinds = [e["kind"] for e in lines(os.path.join(self.path, "events.jsonl"))]
        i = kinds.index("run_start", 1)
        self.assertEqual(kinds[i + 1], "resumed")
        other = [(tiny_model()[0][0], tiny_model()[0][1], "tanh"), tiny_model()[1]]
        with self.assertRaises(RunError) as cm:
            circuitscope_log.Run(self.path, model=other, inputs=["x", "y"],
                                 tasks={"p": [0], "q": [1]}, val=VAL)
        self.assertIn("another model", str(cm.exception))

    def test_a_torn_last_line_is_closed_before_the_next_event(self):
        run = circuitscope_log.Run(self.path, model=tiny_model(), inputs=["x", "y"],
                                   tasks={"p": [0], "q": [1]}, val=VAL)
        run.step(1, {"p": 1.0, "q": 1.0})
        os.close(run._fd)  # the trainer dies mid-write: half a line is left
        with open(os.path.join(self.path, "events.jsonl"), "ab") as f:
            f.write(b'{"v":1,"time":1.0,"step":2,"kind":"train_st')
        circuitscope_log.Run(self.path, model=tiny_model(), inputs=["x", "y"],
                             tasks={"p": [0], "q": [1]}, val=VAL).end()
        raw = text(os.path.join(self.path, "events.jsonl")).splitlines()
        torn = [l for l in raw if l.endswith("train_st")]
        self.assertEqual(len(torn), 1, "the torn line must stay a line of its own")
        for l in raw:
            if l is not torn[0]:
                self.assertIsNone(check_event(json.loads(l)), l)

    def test_classifier_task(self):
        w = [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]
        run = circuitscope_log.Run(self.path, model=[(w, [0, 0, 0], "identity")], inputs=["x", "y"],
                                   tasks={"digit": {"loss": "cross_entropy"}},
                                   val=([[0.1, 0.2], [0.3, 0.4]], [[2], [0]]))
        run.end()
        spec = load_json(os.path.join(self.path, "run.json"))["spec"]
        self.assertEqual(spec["tasks"], [{"name": "digit", "outputs": [0, 1, 2], "target": "digit",
                                          "loss": "cross_entropy"}])
        self.assertEqual(text(os.path.join(self.path, "data", "val.csv")).splitlines()[1:],
                         ["0.1,0.2,2", "0.3,0.4,0"])
        with self.assertRaises(RunError):
            circuitscope_log.Run(os.path.join(self.tmp.name, "c2"), model=[(w, [0, 0, 0], "identity")],
                                 inputs=["x", "y"], tasks={"digit": {"loss": "cross_entropy"}},
                                 val=([[0.1, 0.2]], [[3]]))

    def test_core_needs_only_the_standard_library(self):
        code = (
            "import sys; sys.modules['numpy'] = None; sys.modules['torch'] = None\n"
            f"sys.path.insert(0, {os.path.join(HERE, '..')!r})\n"
            "import circuitscope_log\n"
            "w=[[1.0,2.0]]; run=circuitscope_log.Run(sys.argv[1], model=[(w,[0.0],'identity')],"
            " inputs=['a','b'], tasks={'t':[0]}, val=([[1,2]],[[5]]))\n"
            "run.step(1, {'t': 0.5}); run.checkpoint(1, [(w,[0.0],'identity')]); run.end()\n"
        )
        subprocess.run([sys.executable, "-c", code, self.path], check=True)
        self.assertEqual(lines(os.path.join(self.path, "events.jsonl"))[-1]["status"], "completed")

    @unittest.skipIf(np is None, "numpy is not installed")
    def test_numpy_arrays(self):
        rng = np.random.default_rng(0)
        model = [(rng.normal(size=(4, 2)), np.zeros(4), "leaky_relu", 0.2), (rng.normal(size=(1, 4)), np.zeros(1), "identity")]
        run = circuitscope_log.Run(self.path, model=model, inputs=["x", "y"], tasks={"t": [0]},
                                   val=(rng.normal(size=(5, 2)), rng.normal(size=(5, 1))))
        run.step(1, {"t": np.float32(0.5)}, lr=np.float64(0.1))
        run.checkpoint(1, model)
        run.end()
        spec = load_json(os.path.join(self.path, "run.json"))["spec"]
        self.assertEqual(spec["layers"][0]["slope"], 0.2)
        ck = safetensors.read(os.path.join(self.path, "checkpoints", "step-1.safetensors"))
        np.testing.assert_allclose(np.array(ck["layers.0.weight"][1]).reshape(4, 2), model[0][0], rtol=1e-6)


if __name__ == "__main__":
    unittest.main()
