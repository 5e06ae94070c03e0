//! Regions of interest: groups of functionally similar neurons in one layer.
//!
//! Each neuron has an *attribution profile*: for a sample of examples, its activation times the
//! gradient of every output with respect to it (gradient × activation). Neurons are clustered
//! on the cosine distance between profiles by average-linkage hierarchical clustering (kodama);
//! the number of groups is the one with the best mean silhouette among 2..=`max_groups`
//! (stated in [`RoiClustering::criterion`]). Neurons with an all-zero profile on the sample
//! (dead there) form one group of their own. This module only groups; it never ablates.

use crate::{Error, Result};

/// The ROIs of one layer.
#[derive(Debug, Clone, PartialEq)]
pub struct RoiClustering {
    /// `groups[r]` lists the neurons of ROI `r`.
    pub groups: Vec<Vec<usize>>,
    /// Mean silhouette of the chosen cut (over the non-dead neurons; 0 when fewer than 3).
    pub silhouette: f64,
    pub criterion: String,
    /// Neurons with an all-zero profile (also the last group, when any).
    pub dead: usize,
}

fn cosine_distance(a: &[f64], b: &[f64]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    (1.0 - ab / (aa * bb).sqrt()).clamp(0.0, 2.0)
}

/// Cuts a kodama dendrogram of `n` observations into `k` clusters: labels `0..k`.
pub(crate) fn cut(steps: &[kodama::Step<f64>], n: usize, k: usize) -> Vec<usize> {
    let mut parent: Vec<usize> = (0..2 * n).collect();
    fn find(p: &mut [usize], x: usize) -> usize {
        let mut r = x;
        while p[r] != r {
            r = p[r];
        }
        let mut c = x;
        while p[c] != r {
            let next = p[c];
            p[c] = r;
            c = next;
        }
        r
    }
    for (s, step) in steps.iter().take(n.saturating_sub(k)).enumerate() {
        let new = n + s;
        let (a, b) = (
            find(&mut parent, step.cluster1),
            find(&mut parent, step.cluster2),
        );
        parent[a] = new;
        parent[b] = new;
    }
    let mut labels = vec![usize::MAX; n];
    let mut ids: Vec<usize> = Vec::new();
    for (i, label) in labels.iter_mut().enumerate() {
        let root = find(&mut parent, i);
        *label = ids.iter().position(|&r| r == root).unwrap_or_else(|| {
            ids.push(root);
            ids.len() - 1
        });
    }
    labels
}

/// Mean silhouette of `labels` under the full distance matrix `dist` (`n x n`).
pub fn silhouette(dist: &[f64], n: usize, labels: &[usize]) -> f64 {
    let k = labels.iter().max().map_or(0, |m| m + 1);
    if k < 2 || k >= n {
        return 0.0;
    }
    let mut total = 0.0;
    for i in 0..n {
        let mut sums = vec![0.0; k];
        let mut counts = vec![0usize; k];
        for j in 0..n {
            if j != i {
                sums[labels[j]] += dist[i * n + j];
                counts[labels[j]] += 1;
            }
        }
        if counts[labels[i]] == 0 {
            continue; // a singleton's silhouette is 0
        }
        let a = sums[labels[i]] / counts[labels[i]] as f64;
        let b = (0..k)
            .filter(|&c| c != labels[i] && counts[c] > 0)
            .map(|c| sums[c] / counts[c] as f64)
            .fold(f64::INFINITY, f64::min);
        total += (b - a) / a.max(b).max(1e-300);
    }
    total / n as f64
}

/// Groups the `n` neurons whose profiles are the rows of `profiles` (`n x p`).
pub fn cluster(profiles: &[f64], n: usize, max_groups: usize) -> Result<RoiClustering> {
    if n == 0 {
        return Err(Error::Data(
            "ROI clustering: a layer with no neurons".into(),
        ));
    }
    let p = profiles.len() / n;
    let rows: Vec<&[f64]> = profiles.chunks(p.max(1)).collect();
    let alive: Vec<usize> = (0..n)
        .filter(|&i| rows[i].iter().any(|&v| v != 0.0))
        .collect();
    let dead: Vec<usize> = (0..n).filter(|i| !alive.contains(i)).collect();
    let m = alive.len();
    let mut groups: Vec<Vec<usize>>;
    let mut best_sil = 0.0;
    if m <= 2 {
        groups = alive.iter().map(|&i| vec![i]).collect();
    } else {
        let mut dist = vec![0.0; m * m];
        for a in 0..m {
            for b in a + 1..m {
                let d = cosine_distance(rows[alive[a]], rows[alive[b]]);
                dist[a * m + b] = d;
                dist[b * m + a] = d;
            }
        }
        let mut condensed: Vec<f64> = (0..m)
            .flat_map(|a| (a + 1..m).map(move |b| (a, b)))
            .map(|(a, b)| dist[a * m + b])
            .collect();
        let dendrogram = kodama::linkage(&mut condensed, m, kodama::Method::Average);
        let mut best = (f64::NEG_INFINITY, vec![0; m]);
        for k in 2..=max_groups.min(m - 1) {
            let labels = cut(dendrogram.steps(), m, k);
            let s = silhouette(&dist, m, &labels);
            if s > best.0 + 1e-12 {
                best = (s, labels);
            }
        }
        best_sil = best.0.max(0.0);
        let k = best.1.iter().max().map_or(0, |x| x + 1);
        groups = vec![Vec::new(); k];
        for (a, &label) in best.1.iter().enumerate() {
            groups[label].push(alive[a]);
        }
    }
    if !dead.is_empty() {
        groups.push(dead.clone());
    }
    Ok(RoiClustering {
        groups,
        silhouette: best_sil,
        criterion: format!(
            "best mean silhouette over 2..={max_groups} groups (cosine distance, average linkage){}",
            if dead.is_empty() {
                String::new()
            } else {
                format!(", plus one group of the {} dead neurons", dead.len())
            }
        ),
        dead: dead.len(),
    })
}
