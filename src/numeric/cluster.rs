//! Generic clustering helpers: cosine distance, cutting a kodama dendrogram into `k` clusters,
//! and the mean silhouette of a labelling. Nothing here knows about networks.

/// Cosine distance `1 − a·b / (|a||b|)`, clamped to [0, 2].
pub fn cosine_distance(a: &[f64], b: &[f64]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    (1.0 - ab / (aa * bb).sqrt()).clamp(0.0, 2.0)
}

/// Cuts a kodama dendrogram of `n` observations into `k` clusters: labels `0..k`.
pub fn cut(steps: &[kodama::Step<f64>], n: usize, k: usize) -> Vec<usize> {
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
