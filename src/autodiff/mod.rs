//! A small scalar automatic-differentiation engine: the research note "Simple NN Automatic
//! differentiation" as working code, so a newcomer can see what a computational graph is.
//!
//! Expressions are recorded on a [`Tape`] (an arena of nodes addressed by index: no
//! reference-counted cycles) through [`Var`] handles with operator overloading, so
//! `x * y + x.sin()` reads like maths. [`Tape::reverse`] sweeps once from an output and gives
//! its gradient with respect to every node; [`Tape::forward`] replays the tape on dual numbers,
//! one pass per input. Both count the elementary derivative operations they perform, which
//! shows the note's O(n) argument by counts (forward grows with the number of inputs, reverse
//! does not). [`Tape::to_dot`] and [`Tape::to_svg`] draw the graph with values and adjoints.
//! This module is for explanation and cross-checks: it must never be used to train models.
//!
//! ```
//! use circuitscope::autodiff::Tape;
//! let t = Tape::new();
//! let (x, y) = (t.input("x", 0.5), t.input("y", 4.2));
//! let z = x * y + x.sin(); // the note's example
//! let g = t.reverse(z);
//! assert!((z.value() - 2.579425538604203).abs() < 1e-15);
//! assert!((g.values[x.index] - (4.2 + 0.5f64.cos())).abs() < 1e-15); // dz/dx = y + cos x
//! assert_eq!(g.values[y.index], 0.5); // dz/dy = x
//! ```

mod dual;
mod mlp;

pub use dual::Dual;
pub use mlp::{scalar_mlp, scalar_mlp_with, ScalarMlp};

use std::cell::RefCell;
use std::fmt::Write as _;

/// An elementary operation recorded on the tape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Input,
    Const,
    Add,
    Sub,
    Mul,
    Div,
    Neg,
    Powi(i32),
    Sin,
    Cos,
    Exp,
    Log,
    Tanh,
    Relu,
    Erf,
}

impl Op {
    fn symbol(self) -> String {
        match self {
            Op::Input => "input".into(),
            Op::Const => "const".into(),
            Op::Add => "+".into(),
            Op::Sub => "−".into(),
            Op::Mul => "×".into(),
            Op::Div => "÷".into(),
            Op::Neg => "neg".into(),
            Op::Powi(k) => format!("^{k}"),
            Op::Sin => "sin".into(),
            Op::Cos => "cos".into(),
            Op::Exp => "exp".into(),
            Op::Log => "log".into(),
            Op::Tanh => "tanh".into(),
            Op::Relu => "relu".into(),
            Op::Erf => "erf".into(),
        }
    }
}

/// One node: its operation, value, parents and a label (inputs and constants).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub op: Op,
    pub value: f64,
    pub parents: Vec<usize>,
    pub label: String,
}

/// The arena that records an expression as it is computed.
#[derive(Debug, Default)]
pub struct Tape {
    nodes: RefCell<Vec<Node>>,
}

/// A handle to a node of a tape.
#[derive(Debug, Clone, Copy)]
pub struct Var<'t> {
    pub tape: &'t Tape,
    pub index: usize,
}

/// The result of a sweep: a derivative per node and the operations it took.
#[derive(Debug, Clone, PartialEq)]
pub struct Sweep {
    pub values: Vec<f64>,
    /// Elementary derivative operations (one multiply-accumulate per parent edge visited).
    pub operations: usize,
}

impl Tape {
    pub fn new() -> Tape {
        Tape::default()
    }

    fn push(&self, op: Op, value: f64, parents: Vec<usize>, label: String) -> Var<'_> {
        let mut nodes = self.nodes.borrow_mut();
        nodes.push(Node {
            op,
            value,
            parents,
            label,
        });
        Var {
            tape: self,
            index: nodes.len() - 1,
        }
    }

    /// A named input (a leaf we differentiate with respect to).
    pub fn input(&self, name: &str, value: f64) -> Var<'_> {
        self.push(Op::Input, value, vec![], name.into())
    }

    /// A constant (a leaf with no derivative of interest).
    pub fn constant(&self, value: f64) -> Var<'_> {
        self.push(Op::Const, value, vec![], format!("{value}"))
    }

    pub fn len(&self) -> usize {
        self.nodes.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn node(&self, i: usize) -> Node {
        self.nodes.borrow()[i].clone()
    }

    /// Indices of the input nodes, in creation order.
    pub fn inputs(&self) -> Vec<usize> {
        self.nodes
            .borrow()
            .iter()
            .enumerate()
            .filter(|(_, n)| n.op == Op::Input)
            .map(|(i, _)| i)
            .collect()
    }

    /// `∂node/∂parent_k` for each parent of node `i`, from the parents' values.
    fn local(&self, i: usize) -> Vec<f64> {
        let nodes = self.nodes.borrow();
        let n = &nodes[i];
        let p = |k: usize| nodes[n.parents[k]].value;
        match n.op {
            Op::Input | Op::Const => vec![],
            Op::Add => vec![1.0, 1.0],
            Op::Sub => vec![1.0, -1.0],
            Op::Mul => vec![p(1), p(0)],
            Op::Div => vec![1.0 / p(1), -p(0) / (p(1) * p(1))],
            Op::Neg => vec![-1.0],
            Op::Powi(k) => vec![k as f64 * p(0).powi(k - 1)],
            Op::Sin => vec![p(0).cos()],
            Op::Cos => vec![-p(0).sin()],
            Op::Exp => vec![n.value],
            Op::Log => vec![1.0 / p(0)],
            Op::Tanh => vec![1.0 - n.value * n.value],
            Op::Relu => vec![if p(0) > 0.0 { 1.0 } else { 0.0 }],
            Op::Erf => vec![std::f64::consts::FRAC_2_SQRT_PI * (-p(0) * p(0)).exp()],
        }
    }

    /// Reverse mode: the adjoint `∂output/∂node` of every node, in one backward sweep.
    pub fn reverse(&self, output: Var<'_>) -> Sweep {
        let mut adj = vec![0.0; self.len()];
        adj[output.index] = 1.0;
        let mut operations = 0;
        for i in (0..=output.index).rev() {
            if adj[i] == 0.0 {
                continue;
            }
            let parents = self.nodes.borrow()[i].parents.clone();
            for (k, d) in self.local(i).into_iter().enumerate() {
                adj[parents[k]] += adj[i] * d;
                operations += 1;
            }
        }
        Sweep {
            values: adj,
            operations,
        }
    }

    /// Forward mode: replays the tape on dual numbers seeded with `∂/∂input = 1`; gives the
    /// tangent `∂node/∂input` of every node.
    pub fn forward(&self, input: Var<'_>) -> Sweep {
        let nodes = self.nodes.borrow();
        let mut duals: Vec<Dual> = Vec::with_capacity(nodes.len());
        let mut operations = 0;
        for (i, n) in nodes.iter().enumerate() {
            let a = |k: usize| duals[n.parents[k]];
            let d = match n.op {
                Op::Input => Dual::new(n.value, if i == input.index { 1.0 } else { 0.0 }),
                Op::Const => Dual::constant(n.value),
                Op::Add => a(0) + a(1),
                Op::Sub => a(0) - a(1),
                Op::Mul => a(0) * a(1),
                Op::Div => a(0) / a(1),
                Op::Neg => -a(0),
                Op::Powi(k) => a(0).powi(k),
                Op::Sin => a(0).sin(),
                Op::Cos => a(0).cos(),
                Op::Exp => a(0).exp(),
                Op::Log => a(0).ln(),
                Op::Tanh => a(0).tanh(),
                Op::Relu => a(0).relu(),
                Op::Erf => a(0).erf(),
            };
            operations += n.parents.len();
            duals.push(d);
        }
        Sweep {
            values: duals.iter().map(|d| d.d).collect(),
            operations,
        }
    }

    /// The gradient of `output` with respect to every input by forward mode: one pass per input.
    pub fn forward_gradient(&self, output: Var<'_>) -> (Vec<f64>, usize) {
        let mut ops = 0;
        let grad = self
            .inputs()
            .into_iter()
            .map(|i| {
                let s = self.forward(Var {
                    tape: self,
                    index: i,
                });
                ops += s.operations;
                s.values[output.index]
            })
            .collect();
        (grad, ops)
    }

    /// The graph as a petgraph `DiGraph` (edges parent → child), labelled with values.
    pub fn to_petgraph(&self) -> petgraph::graph::DiGraph<String, ()> {
        let nodes = self.nodes.borrow();
        let mut g = petgraph::graph::DiGraph::new();
        let idx: Vec<_> = nodes
            .iter()
            .map(|n| {
                g.add_node(format!(
                    "{} = {:.6}",
                    if n.label.is_empty() {
                        n.op.symbol()
                    } else {
                        n.label.clone()
                    },
                    n.value
                ))
            })
            .collect();
        for (i, n) in nodes.iter().enumerate() {
            for &p in &n.parents {
                g.add_edge(idx[p], idx[i], ());
            }
        }
        g
    }

    /// Graphviz DOT with each node's operation, value and (when given) adjoint.
    pub fn to_dot(&self, adjoints: Option<&Sweep>) -> String {
        let g = self.to_petgraph();
        let mut s =
            String::from("digraph tape {\n  rankdir=LR;\n  node [shape=box, fontsize=10];\n");
        for (i, n) in g.node_indices().enumerate() {
            let op = self.nodes.borrow()[i].op.symbol();
            let adj = adjoints.map_or(String::new(), |a| format!("\\nadjoint {:.6}", a.values[i]));
            let _ = writeln!(s, "  n{i} [label=\"{op}\\n{}{adj}\"];", g[n]);
        }
        for e in g.edge_indices() {
            let (a, b) = g.edge_endpoints(e).expect("edge");
            let _ = writeln!(s, "  n{} -> n{};", a.index(), b.index());
        }
        s.push_str("}\n");
        s
    }

    /// An SVG drawing: nodes in columns by depth from the inputs, with values and adjoints.
    pub fn to_svg(&self, adjoints: Option<&Sweep>) -> String {
        let nodes = self.nodes.borrow();
        let mut depth = vec![0usize; nodes.len()];
        for (i, n) in nodes.iter().enumerate() {
            depth[i] = n.parents.iter().map(|&p| depth[p] + 1).max().unwrap_or(0);
        }
        let columns = depth.iter().max().map_or(1, |d| d + 1);
        let mut rows = vec![0usize; columns];
        let mut pos = vec![(0.0, 0.0); nodes.len()];
        for (i, &d) in depth.iter().enumerate() {
            pos[i] = (70.0 + 150.0 * d as f64, 40.0 + 70.0 * rows[d] as f64);
            rows[d] += 1;
        }
        let (w, h) = (
            140.0 + 150.0 * columns as f64,
            80.0 + 70.0 * *rows.iter().max().unwrap_or(&1) as f64,
        );
        let mut s = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="10">"#
        );
        s.push_str(r#"<rect width="100%" height="100%" fill="white"/>"#);
        for (i, n) in nodes.iter().enumerate() {
            for &p in &n.parents {
                let _ = write!(
                    s,
                    r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#888"/>"##,
                    pos[p].0 + 45.0,
                    pos[p].1,
                    pos[i].0 - 45.0,
                    pos[i].1
                );
            }
        }
        for (i, n) in nodes.iter().enumerate() {
            let (x, y) = pos[i];
            let name = if n.label.is_empty() {
                n.op.symbol()
            } else {
                format!("{} ({})", n.label, n.op.symbol())
            };
            let _ = write!(
                s,
                r##"<rect x="{:.1}" y="{:.1}" width="90" height="40" rx="4" fill="#eef3fb" stroke="#4e79a7"/>"##,
                x - 45.0,
                y - 20.0
            );
            let _ = write!(
                s,
                r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                y - 6.0,
                xml_escape(&name)
            );
            let _ = write!(
                s,
                r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">v={:.4}</text>"#,
                y + 6.0,
                n.value
            );
            if let Some(a) = adjoints {
                let _ = write!(
                    s,
                    r##"<text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#c0392b">ā={:.4}</text>"##,
                    y + 17.0,
                    a.values[i]
                );
            }
        }
        s.push_str("</svg>\n");
        s
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl<'t> Var<'t> {
    pub fn value(&self) -> f64 {
        self.tape.nodes.borrow()[self.index].value
    }

    fn unary(self, op: Op, value: f64) -> Var<'t> {
        self.tape.push(op, value, vec![self.index], String::new())
    }

    pub fn powi(self, k: i32) -> Var<'t> {
        self.unary(Op::Powi(k), self.value().powi(k))
    }
    pub fn sin(self) -> Var<'t> {
        self.unary(Op::Sin, self.value().sin())
    }
    pub fn cos(self) -> Var<'t> {
        self.unary(Op::Cos, self.value().cos())
    }
    pub fn exp(self) -> Var<'t> {
        self.unary(Op::Exp, self.value().exp())
    }
    pub fn ln(self) -> Var<'t> {
        self.unary(Op::Log, self.value().ln())
    }
    pub fn tanh(self) -> Var<'t> {
        self.unary(Op::Tanh, self.value().tanh())
    }
    pub fn relu(self) -> Var<'t> {
        self.unary(Op::Relu, self.value().max(0.0))
    }
    /// The error function, `(2/√π) ∫₀ˣ e^{−t²} dt` (for GELU).
    pub fn erf(self) -> Var<'t> {
        self.unary(Op::Erf, libm::erf(self.value()))
    }
    /// softplus(x) = log(1 + eˣ), decomposed into elementary operations as the note does.
    pub fn softplus(self) -> Var<'t> {
        (self.exp() + 1.0).ln()
    }
}

macro_rules! binary {
    ($trait:ident, $method:ident, $op:expr, $f:expr) => {
        impl<'t> std::ops::$trait for Var<'t> {
            type Output = Var<'t>;
            fn $method(self, rhs: Var<'t>) -> Var<'t> {
                let v = $f(self.value(), rhs.value());
                self.tape
                    .push($op, v, vec![self.index, rhs.index], String::new())
            }
        }
        impl<'t> std::ops::$trait<f64> for Var<'t> {
            type Output = Var<'t>;
            fn $method(self, rhs: f64) -> Var<'t> {
                let c = self.tape.constant(rhs);
                std::ops::$trait::$method(self, c)
            }
        }
        impl<'t> std::ops::$trait<Var<'t>> for f64 {
            type Output = Var<'t>;
            fn $method(self, rhs: Var<'t>) -> Var<'t> {
                let c = rhs.tape.constant(self);
                std::ops::$trait::$method(c, rhs)
            }
        }
    };
}

binary!(Add, add, Op::Add, |a: f64, b: f64| a + b);
binary!(Sub, sub, Op::Sub, |a: f64, b: f64| a - b);
binary!(Mul, mul, Op::Mul, |a: f64, b: f64| a * b);
binary!(Div, div, Op::Div, |a: f64, b: f64| a / b);

impl<'t> std::ops::Neg for Var<'t> {
    type Output = Var<'t>;
    fn neg(self) -> Var<'t> {
        self.unary(Op::Neg, -self.value())
    }
}
