//! `poly1d`: families of random 1-D polynomials of degree 3-4 on [-1, 1], with analytic
//! derivatives.
//!
//! The research notes warn that polynomials with naive uniform coefficients "tend to look the
//! same". This sampler draws each candidate from its *roots* (uniform in [-1, 1], so every
//! wiggle happens inside the domain), normalises its range on [-1, 1] to exactly [-1, 1], and
//! builds the family greedily: each new member is the one of [`FamilyConfig::candidates`]
//! candidates farthest (in RMS distance on a grid) from the members already chosen.
//! [`variety`] measures the result: the smallest pairwise RMS distance in the family.
//! Derivatives are analytic, never numerical: the zoo judges models' gradients against them.

use super::{split_rng, Dataset};
use crate::Result;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// A polynomial by its coefficients, lowest power first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Poly {
    pub coeffs: Vec<f64>,
}

impl Poly {
    pub fn eval(&self, x: f64) -> f64 {
        self.coeffs.iter().rev().fold(0.0, |acc, &c| acc * x + c)
    }

    /// The analytic derivative.
    pub fn derivative(&self) -> Poly {
        let coeffs = self
            .coeffs
            .iter()
            .enumerate()
            .skip(1)
            .map(|(k, &c)| k as f64 * c)
            .collect();
        Poly { coeffs }
    }

    pub fn degree(&self) -> usize {
        self.coeffs.len().saturating_sub(1)
    }

    /// The polynomial with the given roots and leading coefficient 1.
    pub fn from_roots(roots: &[f64]) -> Poly {
        let mut c = vec![1.0];
        for &r in roots {
            // multiply by (x - r)
            let mut next = vec![0.0; c.len() + 1];
            for (k, &ck) in c.iter().enumerate() {
                next[k + 1] += ck;
                next[k] -= r * ck;
            }
            c = next;
        }
        Poly { coeffs: c }
    }

    /// Rescales so that the range of values on [`grid`] is exactly [-1, 1].
    pub fn normalised(&self) -> Poly {
        let ys: Vec<f64> = grid().iter().map(|&x| self.eval(x)).collect();
        let (lo, hi) = ys
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &y| {
                (a.min(y), b.max(y))
            });
        let span = (hi - lo).max(1e-12);
        let mut coeffs: Vec<f64> = self.coeffs.iter().map(|c| 2.0 * c / span).collect();
        coeffs[0] -= (hi + lo) / span;
        Poly { coeffs }
    }
}

/// The evaluation grid: 201 evenly spaced points on [-1, 1].
pub fn grid() -> Vec<f64> {
    (0..=200).map(|i| -1.0 + i as f64 / 100.0).collect()
}

/// RMS distance between two polynomials on [`grid`].
pub fn distance(a: &Poly, b: &Poly) -> f64 {
    let g = grid();
    (g.iter()
        .map(|&x| (a.eval(x) - b.eval(x)).powi(2))
        .sum::<f64>()
        / g.len() as f64)
        .sqrt()
}

/// The family's variety figure: the smallest pairwise RMS distance between members.
pub fn variety(family: &[Poly]) -> f64 {
    let mut best = f64::INFINITY;
    for i in 0..family.len() {
        for j in i + 1..family.len() {
            best = best.min(distance(&family[i], &family[j]));
        }
    }
    best
}

/// How a family is drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct FamilyConfig {
    pub members: usize,
    pub seed: u64,
    /// Candidates drawn per member; the farthest from the chosen ones is kept.
    pub candidates: usize,
}

impl Default for FamilyConfig {
    fn default() -> Self {
        FamilyConfig {
            members: 10,
            seed: 0,
            candidates: 64,
        }
    }
}

/// Draws a family of visibly different normalised polynomials of degree 3 or 4.
pub fn family(cfg: &FamilyConfig) -> Vec<Poly> {
    let mut rng = split_rng(cfg.seed, 100);
    let mut chosen: Vec<Poly> = Vec::with_capacity(cfg.members);
    while chosen.len() < cfg.members {
        let mut best: Option<(f64, Poly)> = None;
        for _ in 0..cfg.candidates.max(1) {
            let degree = rng.gen_range(3..=4usize);
            let roots: Vec<f64> = (0..degree).map(|_| rng.gen_range(-1.0..=1.0)).collect();
            let mut p = Poly::from_roots(&roots).normalised();
            if rng.gen_bool(0.5) {
                p.coeffs.iter_mut().for_each(|c| *c = -*c);
            }
            let score = chosen
                .iter()
                .map(|q| distance(&p, q))
                .fold(f64::INFINITY, f64::min);
            if best.as_ref().is_none_or(|(s, _)| score > *s) {
                best = Some((score, p));
            }
        }
        chosen.push(best.expect("at least one candidate").1);
    }
    chosen
}

/// The naive sampler the notes warn about: coefficients uniform in [-1, 1], normalised the
/// same way. Kept as the reference that [`family`]'s variety is measured against.
pub fn naive_family(members: usize, seed: u64) -> Vec<Poly> {
    let mut rng = split_rng(seed, 101);
    (0..members)
        .map(|_| {
            let degree = rng.gen_range(3..=4usize);
            Poly {
                coeffs: (0..=degree).map(|_| rng.gen_range(-1.0..=1.0)).collect(),
            }
            .normalised()
        })
        .collect()
}

/// Samples `n` inputs uniform in [-1, 1] and the polynomial's values at them.
pub fn dataset(p: &Poly, name: &str, n: usize, seed: u64, stream: u64) -> Result<Dataset> {
    let mut rng = split_rng(seed, stream);
    let x: Vec<f32> = (0..n).map(|_| rng.gen_range(-1.0f32..=1.0)).collect();
    let y = x.iter().map(|&v| p.eval(v as f64) as f32).collect();
    Dataset::regression(name, 1, 1, x, y)
}
