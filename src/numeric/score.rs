//! Scores for comparing partitions and rankings: adjusted Rand index, normalised mutual
//! information (arithmetic mean normalisation, as scikit-learn's default), cluster purity,
//! Spearman's ρ, and the
//! area figures of a faithfulness curve. Written here because they are a few lines each and no
//! small maintained crate offers all of them; they are tested against known answers.

use std::collections::HashMap;

/// Pair counts, row counts and column counts of two labelings.
type Counts = (
    HashMap<(usize, usize), f64>,
    HashMap<usize, f64>,
    HashMap<usize, f64>,
);

fn contingency(a: &[usize], b: &[usize]) -> Counts {
    let (mut nij, mut ai, mut bj) = (HashMap::new(), HashMap::new(), HashMap::new());
    for (&x, &y) in a.iter().zip(b) {
        *nij.entry((x, y)).or_insert(0.0) += 1.0;
        *ai.entry(x).or_insert(0.0) += 1.0;
        *bj.entry(y).or_insert(0.0) += 1.0;
    }
    (nij, ai, bj)
}

fn comb2(x: f64) -> f64 {
    x * (x - 1.0) / 2.0
}

/// Adjusted Rand index between two labelings (1 for identical partitions, ~0 for chance).
pub fn ari(a: &[usize], b: &[usize]) -> f64 {
    let n = a.len() as f64;
    let (nij, ai, bj) = contingency(a, b);
    let index: f64 = nij.values().map(|&v| comb2(v)).sum();
    let sa: f64 = ai.values().map(|&v| comb2(v)).sum();
    let sb: f64 = bj.values().map(|&v| comb2(v)).sum();
    let expected = sa * sb / comb2(n);
    let max = 0.5 * (sa + sb);
    if (max - expected).abs() < 1e-15 {
        1.0
    } else {
        (index - expected) / (max - expected)
    }
}

/// Purity of the clusters `b` against the classes `a`: the share of items that belong to their
/// cluster's most common class (Manning, Raghavan & Schütze, *Introduction to Information
/// Retrieval*, 2008, §16.3). 1 when every cluster holds a single class — singletons included,
/// so read it with the number of clusters.
pub fn purity(a: &[usize], b: &[usize]) -> f64 {
    if a.is_empty() {
        return f64::NAN;
    }
    let (nij, _, _) = contingency(a, b);
    let mut best: HashMap<usize, f64> = HashMap::new();
    for (&(_, cluster), &v) in &nij {
        let e = best.entry(cluster).or_insert(0.0);
        *e = e.max(v);
    }
    best.values().sum::<f64>() / a.len() as f64
}

/// Normalised mutual information, `I(a; b) / mean(H(a), H(b))`.
pub fn nmi(a: &[usize], b: &[usize]) -> f64 {
    let n = a.len() as f64;
    let (nij, ai, bj) = contingency(a, b);
    let h = |m: &HashMap<usize, f64>| -m.values().map(|&v| (v / n) * (v / n).ln()).sum::<f64>();
    let (ha, hb) = (h(&ai), h(&bj));
    let mi: f64 = nij
        .iter()
        .map(|(&(x, y), &v)| (v / n) * ((v * n) / (ai[&x] * bj[&y])).ln())
        .sum();
    if ha + hb == 0.0 {
        1.0
    } else {
        (mi / (0.5 * (ha + hb))).clamp(0.0, 1.0)
    }
}

fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
    let mut r = vec![0.0; v.len()];
    let mut k = 0;
    while k < idx.len() {
        let mut e = k;
        while e + 1 < idx.len() && v[idx[e + 1]] == v[idx[k]] {
            e += 1;
        }
        let avg = (k + e) as f64 / 2.0 + 1.0;
        for &i in &idx[k..=e] {
            r[i] = avg;
        }
        k = e + 1;
    }
    r
}

/// Spearman's rank correlation (average ranks for ties).
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    let n = a.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let (mut s, mut sa, mut sb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        s += (x - ma) * (y - mb);
        sa += (x - ma).powi(2);
        sb += (y - mb).powi(2);
    }
    if sa == 0.0 || sb == 0.0 {
        0.0
    } else {
        s / (sa * sb).sqrt()
    }
}

/// Area under a curve of points `(x, y)` sorted by `x`, by the trapezoid rule.
pub fn area(points: &[(f64, f64)]) -> f64 {
    points
        .windows(2)
        .map(|w| (w[1].0 - w[0].0) * 0.5 * (w[0].1 + w[1].1))
        .sum()
}

/// ROC AUC of `scores` for the positives in `truth`: the probability that a random positive
/// scores above a random negative, ties counting one half (Mann–Whitney U).
pub fn roc_auc(scores: &[f64], truth: &[bool]) -> f64 {
    let r = ranks(scores);
    let pos = truth.iter().filter(|&&t| t).count() as f64;
    let neg = truth.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return f64::NAN;
    }
    let rank_sum: f64 = r
        .iter()
        .zip(truth)
        .filter(|(_, &t)| t)
        .map(|(x, _)| x)
        .sum();
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}
