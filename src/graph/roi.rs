//! Regions of interest: groups of functionally similar neurons in one layer.
//!
//! Each neuron has an *attribution profile*: for a sample of examples, its activation times the
//! gradient of every output with respect to it (gradient × activation). Neurons are clustered
//! on the cosine distance between profiles by average-linkage hierarchical clustering (kodama);
//! the number of groups is the one with the best mean silhouette among 2..=`max_groups`
//! (stated in [`RoiClustering::criterion`]). Neurons with an all-zero profile on the sample
//! (dead there) form one group of their own. This module only groups; it never ablates.

use crate::numeric::cluster::{cosine_distance, cut, silhouette};
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
