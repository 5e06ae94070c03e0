//! `products` and `products-shared`: multi-task regression whose task structure is known.
//!
//! Disjoint (`products`): k tasks, 2k inputs uniform in [-1, 1], task t = x_{2t} * x_{2t+1},
//! so `(a, b, c, d) -> (a*b, c*d)`. Shared (`products-shared`): k+1 inputs, task t =
//! x_t * x_{t+1}, so `(a, b, c) -> (a*b, b*c)`: the contrast case where tasks share an input.
//!
//! Splits follow the research notes: a *mixed* set where every input varies (the validation
//! distribution) and, per task, a set where only that task's inputs vary while every other
//! input is held at [`ProductsConfig::hold`]. Generation must never depend on anything but
//! the config: the same config gives the same numbers on every machine.

use super::{split_rng, Dataset, Task, TaskData, TaskStructure};
use crate::Result;
use rand::Rng;

/// How a products data set is made.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductsConfig {
    /// Number of tasks (1..=4).
    pub tasks: usize,
    /// Whether neighbouring tasks share an input.
    pub shared: bool,
    pub n_train: usize,
    pub n_val: usize,
    /// Rows in each per-task set.
    pub n_per_task: usize,
    /// The value held by inputs that a per-task set does not vary.
    pub hold: f32,
    pub seed: u64,
}

impl Default for ProductsConfig {
    fn default() -> Self {
        ProductsConfig {
            tasks: 2,
            shared: false,
            n_train: 20_000,
            n_val: 2_000,
            n_per_task: 2_000,
            hold: 0.5,
            seed: 0,
        }
    }
}

impl ProductsConfig {
    pub fn structure(&self) -> TaskStructure {
        let tasks = (0..self.tasks)
            .map(|t| {
                let inputs = if self.shared {
                    vec![t, t + 1]
                } else {
                    vec![2 * t, 2 * t + 1]
                };
                Task {
                    name: format!("task{t}"),
                    inputs,
                    outputs: vec![t],
                }
            })
            .collect();
        TaskStructure { tasks }
    }

    pub fn n_inputs(&self) -> usize {
        if self.shared {
            self.tasks + 1
        } else {
            2 * self.tasks
        }
    }

    /// Makes every split; the same config always gives the same numbers.
    pub fn generate(&self) -> Result<TaskData> {
        if !(1..=4).contains(&self.tasks) {
            crate::invalid!(
                "products: {} tasks asked for; 1 to 4 are supported",
                self.tasks
            );
        }
        let structure = self.structure();
        let name = if self.shared {
            "products-shared"
        } else {
            "products"
        };
        let train = self.make(&structure, &format!("{name}/train"), self.n_train, None, 1)?;
        let val = self.make(&structure, &format!("{name}/mixed"), self.n_val, None, 2)?;
        let per_task = (0..self.tasks)
            .map(|t| {
                self.make(
                    &structure,
                    &format!("{name}/task{t}"),
                    self.n_per_task,
                    Some(t),
                    10 + t as u64,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(TaskData {
            train,
            val,
            per_task,
            tasks: structure,
        })
    }

    fn make(
        &self,
        s: &TaskStructure,
        name: &str,
        n: usize,
        only: Option<usize>,
        stream: u64,
    ) -> Result<Dataset> {
        let d_in = self.n_inputs();
        let mut rng = split_rng(self.seed, stream);
        let mut x = Vec::with_capacity(n * d_in);
        let mut y = Vec::with_capacity(n * self.tasks);
        let varies: Vec<bool> = (0..d_in)
            .map(|i| only.is_none_or(|t| s.tasks[t].inputs.contains(&i)))
            .collect();
        for _ in 0..n {
            let row: Vec<f32> = varies
                .iter()
                .map(|&v| {
                    if v {
                        rng.gen_range(-1.0f32..=1.0)
                    } else {
                        self.hold
                    }
                })
                .collect();
            for t in &s.tasks {
                y.push(row[t.inputs[0]] * row[t.inputs[1]]);
            }
            x.extend(row);
        }
        Dataset::regression(name, d_in, self.tasks, x, y)
    }
}
