#!/usr/bin/env python3
"""Writes the notebooks (01-05) from the cells below: edit here, run `python3 notebooks/build.py`.

Only the standard library is needed; outputs are left empty (tests/notebooks.py executes them).
"""
import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent


def md(text):
    return {"cell_type": "markdown", "metadata": {}, "source": text.strip("\n")}


def code(text):
    return {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {},
        "outputs": [],
        "source": text.strip("\n"),
    }


def notebook(cells):
    for i, c in enumerate(cells):
        c["id"] = f"cell-{i:02d}"
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {
                "display_name": "Rust (circuitscope)",
                "language": "rust",
                "name": "circuitscope",
            },
            "language_info": {"name": "rust"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


SETUP = code("""
use circuitscope_kernel::prelude::*;
""")

# A scratch run directory per notebook, made fresh each time.
def scratch(name):
    return f"""
let root = std::env::temp_dir().join("circuitscope-notebook-{name}");
let _ = std::fs::remove_dir_all(&root);
println!("scratch directory: {{}}", root.display());
"""


NB = {}

NB["01-autodiff"] = [
    md("""
# 01 · Reverse-mode autodiff, explained

The research note on autodiff builds a small *computational graph* of scalar operations and
walks it backwards once to get every derivative. circuitscope's `autodiff` module is that note
as working code: a tape of elementary operations (`Tape`, `Var`), a reverse sweep that
accumulates adjoints, and a forward mode on dual numbers for comparison.

We start with the note's example, `z = x·y + sin(x)` at `x = 0.5`, `y = 4.2`.
"""),
    SETUP,
    code("""
use circuitscope::autodiff::Tape;
let (picture, summary) = {
    let tape = Tape::new();
    let (x, y) = (tape.input("x", 0.5), tape.input("y", 4.2));
    let z = x * y + x.sin();
    let sweep = tape.reverse(z);
    let text = format!(
        "z = {:.6}\\ndz/dx = {:.6} (analytic y + cos x = {:.6})\\ndz/dy = {:.6} (analytic x = 0.5)\\nreverse sweep: {} operations",
        z.value(),
        sweep.values[x.index],
        4.2 + 0.5f64.cos(),
        sweep.values[y.index],
        sweep.operations
    );
    (Svg(tape.to_svg(Some(&sweep))), text)
};
println!("{summary}");
"""),
    md("""
The graph below is the tape: every box is one elementary operation with its value and its
adjoint (`∂z/∂node`) after the single backward sweep.
"""),
    code("""
picture
"""),
    md("""
## Why reverse mode: one sweep for all inputs

Forward mode needs one pass per input; reverse mode needs one backward pass per *output*. For a
scalar loss of n parameters that is the difference between n passes and one. We count
elementary derivative operations for `f(x) = Σ x_i·x_{i+1}` as n grows.
"""),
    code("""
use circuitscope::polars::prelude::{Column, DataFrame};
let sizes = [2usize, 4, 8, 16, 32, 64];
let mut reverse_ops = Vec::new();
let mut forward_ops = Vec::new();
for &n in &sizes {
    let tape = Tape::new();
    let xs: Vec<_> = (0..n).map(|i| tape.input(&format!("x{i}"), 0.1 * i as f64)).collect();
    let mut f = xs[0] * xs[1];
    for i in 1..n - 1 {
        f = f + xs[i] * xs[i + 1];
    }
    reverse_ops.push(tape.reverse(f).operations as u64);
    forward_ops.push(tape.forward_gradient(f).1 as u64);
}
let counts = DataFrame::new(vec![
    Column::new("inputs".into(), sizes.iter().map(|&n| n as u64).collect::<Vec<_>>()),
    Column::new("reverse_ops".into(), reverse_ops.clone()),
    Column::new("forward_ops".into(), forward_ops.clone()),
    Column::new("ratio".into(), forward_ops.iter().zip(&reverse_ops).map(|(f, r)| *f as f64 / *r as f64).collect::<Vec<_>>()),
]).unwrap();
counts.html()
"""),
    md("""
The ratio grows like n: forward mode repeats the whole graph once per input, reverse mode
visits each edge once. This is why training a network — a scalar loss of many parameters —
uses reverse mode (backpropagation).
"""),
]

NB["02-multitask-graph"] = [
    md("""
# 02 · A multi-task network as a computational graph

The research notes train an MLP on two tasks at once, `(a, b, c, d) → (a·b, c·d)`, and ask
whether the network keeps the tasks apart: do separate neurons do separate jobs, and can we
draw the circuit of each task? Here we train it (a small budget), probe it, build its graph
with Integrated Gradients on edges, and test the graph by ablating parts of the real network.
"""),
    SETUP,
    code(scratch("02") + """
use circuitscope::model::{train::TrainConfig, Preset};
use circuitscope::runlog::train::train;
let mut cfg = TrainConfig::defaults(Preset::Products);
cfg.epochs = 10;
let outcome = train(&root, &cfg.check().unwrap(), &mut |_| {}).unwrap();
for m in &outcome.val {
    println!("{}: validation loss {:.3e}, R² {:.4}", m.task, m.loss, m.r2.unwrap_or(f64::NAN));
};
"""),
    md("""
The training curves, per task, from the run's event log (training loss per logged step,
validation loss per epoch):
"""),
    code("""
training_svg(&circuitscope::runlog::RunDir::open(&root).unwrap()).unwrap()
"""),
    md("""
## Probes

The **census** counts distinct ReLU activation patterns per layer ("unique gradients"): an MLP
with ReLUs is piecewise linear, and each pattern is one linear piece.
"""),
    code("""
let report = circuitscope::runlog::probe::probe_run(&root, &circuitscope::probe::ProbeConfig::default().check().unwrap()).unwrap();
report.census.html()
"""),
    md("""
**PCA** of each hidden layer's activations (explained-variance ratios) and **PLS** between
adjacent layers (how much of the next layer the previous one predicts, component by component):
"""),
    code("""
report.pca.html()
"""),
    code("""
report.pls.html()
"""),
    md("""
**Task angles**: the principal angles between the two tasks' gradient subspaces at each layer.
Near 90° means the tasks use orthogonal directions (little interference).
"""),
    code("""
report.task_angles.html()
"""),
    md("""
## The graph

Nodes are neurons; an edge's weight is its Integrated Gradients attribution (exact, per task),
averaged over examples; colours are Leiden communities. We draw the 300 strongest edges.
"""),
    code("""
use circuitscope::graph::GraphSpec;
use circuitscope::runlog::graph::graph_run;
let spec = GraphSpec::default().check().unwrap();
let g = graph_run(&root, &spec, None).unwrap();
println!("{} nodes, {} edges, {} communities, modularity {:.3}", g.graph.node_count(), g.graph.edge_count(), g.communities, g.modularity);
graph_svg(&g, Some(300))
"""),
    md("""
## Is the graph faithful?

Keep the strongest k% of edges, ablate the rest *in the real forward pass* (mean ablation), and
score how much of the network's behaviour is left: 0 is as bad as ablating everything, 1 is the
full model. The second curve is chance: random edge sets of the same size. Beside it, ARI between
the graph's communities and the task each node mostly serves (with its chance: the labels
shuffled), for Leiden's communities and for those merged down to as many as there are tasks,
and how stable the communities are over seeds and a renumbering of the hidden units. Every
figure is only given for a model that learned its tasks on held-out data.
"""),
    code("""
use circuitscope::eval::ablation::Ablation;
use circuitscope::runlog::eval::eval_run;
let ev = eval_run(&root, &spec, Ablation::Mean).unwrap();
println!("{}", ev.learned.reason());
let fig = ev.figures.clone().expect("the model learned its tasks");
let (f, d) = (fig.faithfulness, fig.disentanglement);
println!("CPR {:.3} (chance {:.3}), CMD {:.3}; communities vs tasks: ARI {:.3} (chance {:.3}), stability {:.3}; merged to {}: ARI {:.3}", f.cpr, f.chance_cpr, f.cmd, d.ari, d.chance[0].mean, fig.stability.communities, d.at_task_count.communities, d.at_task_count.ari);
curve_svg(
    "faithfulness vs sparsity (mean ablation)",
    "share of edges kept",
    "faithfulness",
    &[
        Series::new("neuron graph", f.points.iter().map(|p| (p.kept, p.faithfulness)).collect()),
        Series::new("random edges", f.points.iter().map(|p| (p.kept, p.chance)).collect()),
    ],
    false,
)
"""),
    md("""
## Communities and interventions

Each community's size, where it sits, and how much of its nodes' attribution goes to each task:
"""),
    code("""
communities_table(&g).html()
"""),
    md("""
Ablating each community (and each task's subgraph): the change in each task's loss the
attributions *predicted*, and the change *observed* in the ablated network.
"""),
    code("""
circuitscope::runlog::RunDir::open(&root).unwrap().read_table("eval_interventions").unwrap().html()
"""),
    md("""
## Every discovery method on one plot

Is the computation spread out, or is ranking single edges by attribution the wrong way to find
a small circuit? `circuitscope discover` runs other methods — EAP, EAP-IG, ACDC (greedy pruning
with real ablations), learned edge masks — and scores each one's circuit with the same
faithfulness code. Small budgets here (200 examples, three ACDC thresholds, two mask penalties
of 100 steps) for a quick look; `circuitscope bench circuits` has the full table.
"""),
    code("""
use circuitscope::eval::{DiscoverOptions, Method};
use circuitscope::params::Choice;
use circuitscope::runlog::discover::discover_run;
let quick = circuitscope::graph::GraphSpec { examples: 200, ..Default::default() }.check().unwrap();
let mut methods = Vec::new();
for method in Method::ALL.iter().copied() {
    let opts = DiscoverOptions {
        taus: vec![1e-3, 1e-2, 1e-1],
        lambdas: vec![0.1, 1.0],
        mask_steps: 100,
        ..DiscoverOptions::new(method)
    }
    .check()
    .unwrap();
    let r = discover_run(&root, &quick, Ablation::Mean, &opts).unwrap();
    let f = r.faithfulness.expect("the model learned its tasks");
    let at10 = f.points.iter().find(|p| p.kept == 0.1).map_or(f64::NAN, |p| p.faithfulness);
    println!("{:<7} CPR {:.3} (chance {:.3})  at 10% of edges {:.3}  completeness {:.3}  {:.2} s", method.key(), f.cpr, f.chance_cpr, at10, r.completeness, r.seconds);
    methods.push(Series::new(method.key(), f.points.iter().map(|p| (p.kept, p.faithfulness)).collect()));
}
curve_svg("every discovery method: faithfulness vs sparsity (mean ablation)", "share of edges kept", "faithfulness", &methods, false)
"""),
]

NB["03-network-embedding"] = [
    md("""
# 03 · Embedding networks by what they do

The research note "Network Embedding" asks for a vector that describes the *function* a network
computes. A zoo of small networks is trained on a family of 1-D polynomials, several seeds per
function; an embedder learns to fill in masked input gradients of a network (masking whole
linear pieces), and its bottleneck is the embedding. If embeddings are good, a linear probe can
tell which function a *held-out* network (an unseen seed) computes.
"""),
    SETUP,
    code(scratch("03") + """
use circuitscope::embed::zoo::{Shard, ZooConfig};
use circuitscope::runlog::zoo::{train_zoo, Zoo};
use circuitscope::runlog::EventLog;
let cfg = ZooConfig { functions: 5, seeds: 10, epochs: 15, ..ZooConfig::default() };
let zoo = Zoo::create_or_open(&root, cfg.check().unwrap()).unwrap();
let mut log = EventLog::open(&zoo.run().events()).unwrap();
let done = train_zoo(&zoo, Shard::ALL, &mut log, &|_| {}).unwrap();
println!("{} models in {:.1} s; {} flagged below R² 0.99", done.trained, done.seconds, done.flagged.len());
"""),
    md("""
The manifest: every model's function, seed, R² on its polynomial, R² of its input gradient
against the analytic derivative, and its number of linear pieces.
"""),
    code("""
zoo.manifest().unwrap().html()
"""),
    md("""
## The cloze embedder and the probe

A small grid (bottleneck 2 and 4, half of the pieces masked); the last 2 seeds of every
function are held out. Baselines on the same split: flattened weights and weight statistics
(weight space), sampled outputs (function space) and a supervised classifier.
"""),
    code("""
use circuitscope::embed::{grid_table, baseline_table, EmbedConfig, cloze::ClozeConfig};
use circuitscope::runlog::embed::embed_run;
let mut ecfg = EmbedConfig::grid_for(&zoo.spec.config);
ecfg.functions = vec![5];
ecfg.bottlenecks = vec![2, 4];
ecfg.mask_ratios = vec![0.5];
ecfg.held_out = 2;
ecfg.keep_flagged = true;
ecfg.cloze = ClozeConfig { steps: 600, ..ClozeConfig::default() };
let er = embed_run(&root, ecfg, &|_| {}).unwrap();
grid_table(&er.grid).unwrap().html()
"""),
    code("""
baseline_table(&er.baselines).unwrap().html()
"""),
    md("""
The embeddings of the bottleneck-2 embedder, every model of the zoo on the first two
principal components, coloured by function:
"""),
    code("""
{
    let first = &er.grid[0];
    let points: Vec<(f64, f64, usize)> = first.projected.iter().map(|p| (p.pc1, p.pc2, p.function)).collect();
    let names: Vec<String> = (0..5).map(|f| format!("function {f}")).collect();
    scatter_svg(&format!("embeddings (bottleneck {}, mask {})", first.bottleneck, first.mask_ratio), &points, &names)
}
"""),
]

NB["04-digits"] = [
    md("""
# 04 · The dream goal: a digit classifier as a readable graph

The notes' "dream goal" is to take a real classifier and see its circuits: which groups of
neurons recognise which digits. We train an MLP on the 8×8 UCI digits, build its neuron graph,
find communities, and then *test* each community by ablating it in the real network and
measuring the accuracy drop per digit class.
"""),
    SETUP,
    code(scratch("04") + """
use circuitscope::model::{train::TrainConfig, Preset};
use circuitscope::runlog::train::train;
let mut cfg = TrainConfig::defaults(Preset::Digits);
cfg.epochs = 30;
let outcome = train(&root, &cfg.check().unwrap(), &mut |_| {}).unwrap();
for m in &outcome.val {
    println!("{}: test accuracy {:.2}%", m.task, 100.0 * m.accuracy.unwrap_or(f64::NAN));
};
"""),
    code("""
use circuitscope::graph::GraphSpec;
use circuitscope::runlog::graph::graph_run;
let spec = GraphSpec { examples: 200, ..GraphSpec::default() }.check().unwrap();
let g = graph_run(&root, &spec, None).unwrap();
println!("{} nodes, {} edges, {} communities, modularity {:.3}", g.graph.node_count(), g.graph.edge_count(), g.communities, g.modularity);
graph_svg(&g, Some(400))
"""),
    md("""
The communities (neurons grouped by Leiden on the attribution graph):
"""),
    code("""
communities_table(&g).html()
"""),
    md("""
## Ablating each community

Every edge touching the community is mean-ablated in the real forward pass; `drop` is the loss
of accuracy on each digit class (on the test split). A community that matters for one digit
and not the others is a candidate circuit for that digit.
"""),
    code("""
use circuitscope::eval::{community_class_accuracy, ablation::{Ablation, Baselines}};
use circuitscope::runlog::LoadedRun;
let LoadedRun { model, data, .. } = LoadedRun::open(&root).unwrap();
let x: Vec<f64> = data.val.x.iter().map(|&v| v as f64).collect();
let base = Baselines::new(&model, &x, Ablation::Mean, 0).unwrap();
let drops = community_class_accuracy(&model, &g, &data.val, &base).unwrap();
drops.html()
"""),
]


NB["05-pytorch-run"] = [
    md("""
# 05 · A PyTorch run, and its circuits forming while it trained

`examples/pytorch_products.py` trains an ordinary PyTorch `nn.Sequential` on `(a*b, c*d, e*f)`
and logs it with the Python logger (`python/circuitscope_log`): losses, evaluations and a
checkpoint every 400 steps, into a run directory circuitscope reads like one of its own. The run
used here is the committed fixture `fixtures/pytorch-run/run`, written by exactly that script
under real PyTorch (`fixtures/pytorch-run/make.sh`).

While a run trains, `circuitscope analyze --follow RUN` analyses each new checkpoint; here the
run is finished, so the same analysis runs over all of its checkpoints at once.
"""),
    SETUP,
    code(scratch("05") + """
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}
let run = root.join("run");
copy_dir(std::path::Path::new("../fixtures/pytorch-run/run"), &run);
let info = std::fs::read_to_string(run.join("run.json")).unwrap();
for l in info.lines().take(4) {
    println!("{l}");
}
"""),
    md("""
The training loop's own log, as `circuitscope watch` shows it: per-task loss against the step.
"""),
    code("""
training_svg(&circuitscope::runlog::RunDir { root: run.clone() }).unwrap()
"""),
    md("""
## Emergence: every checkpoint analysed

For each checkpoint: the neuron graph (exact IG, ReLU), its faithfulness curve under mean
ablation (CPR is its area, and its value at 10% of edges), communities against the task labels
(ARI), modularity, the census's distinct input gradients and the interventions' ρ. A figure is
`NaN` (undefined) while the model has not learned its tasks (mean held-out R² below 0.5).
"""),
    code("""
use circuitscope::eval::ablation::Ablation;
use circuitscope::graph::GraphSpec;
use circuitscope::runlog::analyze::{analyze_run, emergence_table, line, AnalyzeOptions};
let o = AnalyzeOptions {
    root: run.clone(),
    follow: false,
    every: 1,
    graph: GraphSpec { examples: 200, ..GraphSpec::default() }.check().unwrap(),
    ablation: Ablation::Mean,
    interventions: true,
    poll: std::time::Duration::from_millis(100),
};
let n = analyze_run(&o, |a| println!("{}", line(a))).unwrap();
println!("{n} checkpoints analysed");
"""),
    code("""
let table = emergence_table(&run.join("analysis/events.jsonl")).unwrap();
table.html()
"""),
    code("""
// In a block: evcxr keeps top-level variables between cells, and a closure kept there could
// not borrow `table`.
{
    let col = |name: &str| -> Vec<(f64, f64)> {
        let steps = table.column("step").unwrap().u64().unwrap();
        let v = table.column(name).unwrap().f64().unwrap();
        steps.into_no_null_iter().zip(v.into_no_null_iter()).filter(|p| p.1.is_finite()).map(|(s, y)| (s as f64, y)).collect()
    };
    curve_svg("Circuit emergence over training", "training step", "figure", &[
        Series::new("CPR", col("cpr")),
        Series::new("faithfulness at 10% of edges", col("faithfulness_at_10pct")),
        Series::new("ARI (communities vs tasks)", col("ari")),
        Series::new("mean held-out R²", col("mean_r2")),
    ], false)
}
"""),
    md("""
## The final model's graph

The same graph `circuitscope graph RUN` builds and the dashboard's Graph view draws: neurons as
nodes, edges weighted by exact IG, coloured by community.
"""),
    code("""
use circuitscope::runlog::graph::graph_run;
let spec = GraphSpec { examples: 200, ..GraphSpec::default() }.check().unwrap();
let g = graph_run(&run, &spec, None).unwrap();
println!("{} nodes, {} edges, {} communities, modularity {:.3}", g.graph.node_count(), g.graph.edge_count(), g.communities, g.modularity);
graph_svg(&g, Some(300))
"""),
]


def main():
    for name, cells in NB.items():
        path = HERE / f"{name}.ipynb"
        path.write_text(json.dumps(notebook(cells), indent=1, ensure_ascii=False) + "\n")
        print("wrote", path.relative_to(HERE.parent))


if __name__ == "__main__":
    main()
