//! The linear algebra the probes share, on row-major `f64` buffers, backed by faer: PCA,
//! SVD, principal angles and PLS regression (PLS2). Nothing here knows about networks.

use crate::{Error, Result};
use faer::linalg::solvers::Solve;
use faer::{Mat, MatRef};

/// A row-major `rows x cols` view as a faer matrix.
pub fn view(data: &[f64], rows: usize, cols: usize) -> MatRef<'_, f64> {
    MatRef::from_row_major_slice(data, rows, cols)
}

/// A faer matrix as a row-major buffer.
pub fn to_rows(m: MatRef<'_, f64>) -> Vec<f64> {
    let mut out = Vec::with_capacity(m.nrows() * m.ncols());
    for i in 0..m.nrows() {
        for j in 0..m.ncols() {
            out.push(m[(i, j)]);
        }
    }
    out
}

/// Column means of an `n x d` row-major matrix.
pub fn column_means(x: &[f64], n: usize, d: usize) -> Vec<f64> {
    let mut m = vec![0.0; d];
    for r in 0..n {
        for (j, v) in x[r * d..(r + 1) * d].iter().enumerate() {
            m[j] += v;
        }
    }
    m.iter_mut().for_each(|v| *v /= n.max(1) as f64);
    m
}

/// A principal component analysis of `n` rows of `d` features.
#[derive(Debug, Clone, PartialEq)]
pub struct Pca {
    pub mean: Vec<f64>,
    /// `d x d` row-major: row `i` is component `i` (unit norm), by decreasing variance.
    pub components: Vec<f64>,
    /// Variance along each component (divisor `n - 1`, as scikit-learn).
    pub variances: Vec<f64>,
    /// Each component's share of the total variance.
    pub ratios: Vec<f64>,
    pub d: usize,
}

impl Pca {
    /// Fits by the thin SVD of the centred data (the way scikit-learn's PCA does); each
    /// component's sign makes its largest-magnitude entry positive.
    pub fn fit(x: &[f64], n: usize, d: usize) -> Result<Pca> {
        Pca::fit_with(x, n, d, true)
    }

    /// Like [`Pca::fit`] without centring: components of the second moment, the subspace the
    /// rows themselves occupy (used for gradients, whose mean is part of what they say).
    pub fn fit_uncentred(x: &[f64], n: usize, d: usize) -> Result<Pca> {
        Pca::fit_with(x, n, d, false)
    }

    fn fit_with(x: &[f64], n: usize, d: usize, centre: bool) -> Result<Pca> {
        if n < 2 {
            return Err(Error::Data(format!("PCA needs at least 2 rows, got {n}")));
        }
        let mean = if centre {
            column_means(x, n, d)
        } else {
            vec![0.0; d]
        };
        let centred = Mat::from_fn(n, d, |i, j| x[i * d + j] - mean[j]);
        Pca::of_gram_root(centred.as_ref(), n, mean)
    }

    /// The PCA of the rows a [`Factor`] has seen (centred or not, as the factor was made): the
    /// SVD of its `R`, whose singular values and right singular vectors are the data's.
    pub fn from_factor(f: &Factor) -> Result<Pca> {
        if f.n < 2 {
            return Err(Error::Data(format!(
                "PCA needs at least 2 rows, got {}",
                f.n
            )));
        }
        Pca::of_gram_root(f.r.as_ref(), f.n, f.mean())
    }

    /// The PCA of `n` rows whose centred Gram matrix is `aᵀa` (`a`: the centred rows
    /// themselves, or a factor `R` of them).
    fn of_gram_root(a: MatRef<'_, f64>, n: usize, mean: Vec<f64>) -> Result<Pca> {
        let d = a.ncols();
        let svd = a
            .thin_svd()
            .map_err(|e| Error::Data(format!("PCA: SVD did not converge: {e:?}")))?;
        let s = svd.S().column_vector();
        let k = s.nrows();
        let mut variances: Vec<f64> = (0..k).map(|i| s[i] * s[i] / (n - 1) as f64).collect();
        variances.resize(d, 0.0);
        let total: f64 = variances.iter().sum();
        let ratios = variances
            .iter()
            .map(|v| if total > 0.0 { v / total } else { 0.0 })
            .collect();
        let v = svd.V();
        let mut components = vec![0.0; d * d];
        for i in 0..k.min(d) {
            let col: Vec<f64> = (0..d).map(|j| v[(j, i)]).collect();
            let sign = sign_of_largest(&col);
            for j in 0..d {
                components[i * d + j] = sign * col[j];
            }
        }
        Ok(Pca {
            mean,
            components,
            variances,
            ratios,
            d,
        })
    }

    /// Component `i` as a slice.
    pub fn component(&self, i: usize) -> &[f64] {
        &self.components[i * self.d..(i + 1) * self.d]
    }

    /// The first `k` components (`k x d`, orthonormal rows).
    pub fn top(&self, k: usize) -> &[f64] {
        &self.components[..k.min(self.d) * self.d]
    }

    /// Scores of `n` rows on the first `k` components (`n x k`).
    pub fn transform(&self, x: &[f64], n: usize, k: usize) -> Vec<f64> {
        let d = self.d;
        let mut out = Vec::with_capacity(n * k);
        for r in 0..n {
            let row = &x[r * d..(r + 1) * d];
            for c in 0..k {
                out.push(
                    self.component(c)
                        .iter()
                        .zip(row)
                        .zip(&self.mean)
                        .map(|((p, v), m)| p * (v - m))
                        .sum(),
                );
            }
        }
        out
    }

    /// The smallest number of components explaining at least `share` of the variance.
    pub fn components_for(&self, share: f64) -> usize {
        let mut acc = 0.0;
        for (i, r) in self.ratios.iter().enumerate() {
            acc += r;
            if acc >= share - 1e-12 {
                return i + 1;
            }
        }
        self.d
    }
}

/// The `R` factor of a tall matrix built from its rows a block at a time, so that a PCA (or a
/// PLS) of millions of rows holds `d x d` numbers: the QR factorisation of `[R; block]` is taken
/// after each block, and `RᵀR` equals the Gram matrix of every row seen (centred on the running
/// mean when made by [`Factor::centred`]: merging two blocks' means adds the row
/// `√(n₁n₂/(n₁+n₂)) (m₁ − m₂)`, as scikit-learn's `IncrementalPCA`). The singular values and
/// right singular vectors of `R` are those of the data, to rounding, without forming `XᵀX` (whose
/// eigenvalues would lose the small components' digits).
#[derive(Debug, Clone)]
pub struct Factor {
    d: usize,
    n: usize,
    /// `d x d`, upper triangular (zero rows while fewer than `d` rows were seen).
    r: Mat<f64>,
    /// The running mean, for a centred factor.
    mean: Option<Vec<f64>>,
}

/// Rows folded into a [`Factor`] per QR factorisation.
const FACTOR_BLOCK: usize = 4096;

impl Factor {
    /// A factor of the rows centred on their mean (for a PCA).
    pub fn centred(d: usize) -> Factor {
        Factor {
            d,
            n: 0,
            r: Mat::zeros(d, d),
            mean: Some(vec![0.0; d]),
        }
    }

    /// A factor of the rows as they are (the second moment, for an uncentred PCA).
    pub fn uncentred(d: usize) -> Factor {
        Factor {
            mean: None,
            ..Factor::centred(d)
        }
    }

    /// Rows seen.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The mean of the rows seen (zeros for an uncentred factor).
    pub fn mean(&self) -> Vec<f64> {
        self.mean.clone().unwrap_or_else(|| vec![0.0; self.d])
    }

    /// `R` (`d x d`): `RᵀR` is the (centred) Gram matrix of the rows seen.
    pub fn r(&self) -> MatRef<'_, f64> {
        self.r.as_ref()
    }

    /// Folds in `rows` (row-major, `d` wide).
    pub fn push(&mut self, rows: &[f64]) {
        let d = self.d;
        for block in rows.chunks(FACTOR_BLOCK * d.max(1)) {
            let m = block.len() / d.max(1);
            if m == 0 {
                continue;
            }
            let (n1, n2) = (self.n as f64, m as f64);
            let (shift, extra) = match &mut self.mean {
                Some(mean) => {
                    let m2 = column_means(block, m, d);
                    let w = (n1 * n2 / (n1 + n2)).sqrt();
                    let extra: Vec<f64> = mean.iter().zip(&m2).map(|(a, b)| w * (a - b)).collect();
                    for (a, b) in mean.iter_mut().zip(&m2) {
                        *a += (b - *a) * n2 / (n1 + n2);
                    }
                    (m2, (self.n > 0).then_some(extra))
                }
                None => (vec![0.0; d], None),
            };
            let rows_total = d + m + extra.is_some() as usize;
            let stacked = Mat::from_fn(rows_total, d, |i, j| {
                if i < d {
                    self.r[(i, j)]
                } else if i < d + m {
                    block[(i - d) * d + j] - shift[j]
                } else {
                    extra.as_ref().map_or(0.0, |e| e[j])
                }
            });
            let qr = stacked.qr();
            let r = qr.thin_R();
            self.r = Mat::from_fn(d, d, |i, j| if j >= i { r[(i, j)] } else { 0.0 });
            self.n += m;
        }
    }
}

/// +1 or -1: the sign of the entry with the largest magnitude (the first such on ties).
pub fn sign_of_largest(v: &[f64]) -> f64 {
    let mut best = 0.0f64;
    for &x in v {
        if x.abs() > best.abs() {
            best = x;
        }
    }
    if best < 0.0 {
        -1.0
    } else {
        1.0
    }
}

/// The thin SVD of a row-major `rows x cols` matrix: `(U rows x k, S, V cols x k)`, row-major.
pub fn svd(a: &[f64], rows: usize, cols: usize) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    let m = view(a, rows, cols).to_owned();
    let s = m
        .thin_svd()
        .map_err(|e| Error::Data(format!("SVD did not converge: {e:?}")))?;
    let sv = s.S().column_vector();
    Ok((
        to_rows(s.U()),
        (0..sv.nrows()).map(|i| sv[i]).collect(),
        to_rows(s.V()),
    ))
}

/// Cosines of the principal angles between the row spaces of `a` (`ka x d`) and `b` (`kb x d`),
/// both with orthonormal rows: the singular values of `a bᵀ`, largest first.
pub fn principal_cosines(a: &[f64], ka: usize, b: &[f64], kb: usize, d: usize) -> Result<Vec<f64>> {
    let m = view(a, ka, d) * view(b, kb, d).transpose();
    let (_, s, _) = svd(&to_rows(m.as_ref()), ka, kb)?;
    Ok(s.into_iter().map(|c| c.min(1.0)).collect())
}

/// A PLS regression (PLS2, NIPALS "regression" deflation), as scikit-learn's
/// `PLSRegression(scale=True)`: each component's X weights are the first left singular vector
/// of the deflated `XᵀY` (the fixed point of scikit-learn's power method), signed so that their
/// largest entry is positive.
#[derive(Debug, Clone, PartialEq)]
pub struct Pls {
    pub components: usize,
    pub dx: usize,
    pub dy: usize,
    /// `dx x k` row-major.
    pub x_weights: Vec<f64>,
    /// `dx x k` row-major.
    pub x_loadings: Vec<f64>,
    /// `dy x k` row-major.
    pub y_loadings: Vec<f64>,
    /// `n x k` row-major.
    pub x_scores: Vec<f64>,
    /// `dy x dx` row-major, in original units: `ŷ = (x - x_mean) coefᵀ + y_mean`.
    pub coef: Vec<f64>,
    pub x_mean: Vec<f64>,
    pub y_mean: Vec<f64>,
}

fn standardise(x: &[f64], n: usize, d: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mean = column_means(x, n, d);
    let mut std = vec![0.0; d];
    for r in 0..n {
        for j in 0..d {
            std[j] += (x[r * d + j] - mean[j]).powi(2);
        }
    }
    for s in &mut std {
        *s = (*s / (n as f64 - 1.0)).sqrt();
        if *s == 0.0 {
            *s = 1.0;
        }
    }
    let z = (0..n * d)
        .map(|i| (x[i] - mean[i % d]) / std[i % d])
        .collect();
    (z, mean, std)
}

impl Pls {
    pub fn fit(x: &[f64], y: &[f64], n: usize, dx: usize, dy: usize, k: usize) -> Result<Pls> {
        Pls::check(n, dx, k)?;
        let (xs, x_mean, x_std) = standardise(x, n, dx);
        let (ys, y_mean, y_std) = standardise(y, n, dy);
        let xk = view(&xs, n, dx).to_owned();
        let yk = view(&ys, n, dy).to_owned();
        let (w, p, q, t) = nipals(xk, yk, k)?;
        Ok(Pls::assemble(
            w,
            p,
            q,
            to_rows(t.as_ref()),
            x_mean,
            x_std,
            y_mean,
            y_std,
        ))
    }

    /// The same fit from a [`Factor::centred`] of the rows `[x y]` (`dx + dy` wide), streamed
    /// over the examples: NIPALS touches the data only through inner products of columns, so
    /// it runs on the factor's `R` (standardised by its column norms) as on the rows
    /// themselves. `x_scores` is empty (no per-example scores are kept).
    pub fn fit_factor(f: &Factor, dx: usize, dy: usize, k: usize) -> Result<Pls> {
        let n = f.n();
        Pls::check(n, dx, k)?;
        let (r, mean) = (f.r(), f.mean());
        let std: Vec<f64> = (0..dx + dy)
            .map(|j| {
                let s = ((0..r.nrows()).map(|i| r[(i, j)].powi(2)).sum::<f64>() / (n as f64 - 1.0))
                    .sqrt();
                if s == 0.0 {
                    1.0
                } else {
                    s
                }
            })
            .collect();
        let xk = Mat::from_fn(r.nrows(), dx, |i, j| r[(i, j)] / std[j]);
        let yk = Mat::from_fn(r.nrows(), dy, |i, j| r[(i, dx + j)] / std[dx + j]);
        let (w, p, q, _) = nipals(xk, yk, k)?;
        Ok(Pls::assemble(
            w,
            p,
            q,
            Vec::new(),
            mean[..dx].to_vec(),
            std[..dx].to_vec(),
            mean[dx..].to_vec(),
            std[dx..].to_vec(),
        ))
    }

    /// scikit-learn's `r2_score` of this fit's predictions on the rows a [`Factor::centred`]
    /// of `[x y]` has seen (the factor the fit came from): each residual is linear in the
    /// centred rows, so its sum of squares is `‖R v‖²`.
    pub fn r2_factor(&self, f: &Factor) -> f64 {
        let (r, dx) = (f.r(), self.dx);
        let total: f64 = (0..self.dy)
            .map(|o| {
                let c = &self.coef[o * dx..(o + 1) * dx];
                let (mut ss_res, mut ss_tot) = (0.0, 0.0);
                for i in 0..r.nrows() {
                    let y = r[(i, dx + o)];
                    let fit: f64 = (0..dx).map(|j| c[j] * r[(i, j)]).sum();
                    ss_res += (y - fit).powi(2);
                    ss_tot += y * y;
                }
                r2_term(ss_res, ss_tot)
            })
            .sum();
        total / self.dy as f64
    }

    fn check(n: usize, dx: usize, k: usize) -> Result<()> {
        if n < 2 {
            return Err(Error::Data(format!("PLS needs at least 2 rows, got {n}")));
        }
        if k == 0 || k > dx {
            return Err(Error::Invalid(format!(
                "PLS: {k} components asked for, X has {dx} columns"
            )));
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        w: Mat<f64>,
        p: Mat<f64>,
        q: Mat<f64>,
        x_scores: Vec<f64>,
        x_mean: Vec<f64>,
        x_std: Vec<f64>,
        y_mean: Vec<f64>,
        y_std: Vec<f64>,
    ) -> Pls {
        let (dx, dy, k) = (w.nrows(), q.nrows(), w.ncols());
        // rotations = W (PᵀW)⁻¹; coef = (rotations Qᵀ · y_std)ᵀ / x_std
        let ptw = p.transpose() * &w;
        let inv = ptw.partial_piv_lu().solve(Mat::<f64>::identity(k, k));
        let rot = &w * &inv;
        let b = &rot * q.transpose();
        let coef = (0..dy * dx)
            .map(|i| b[(i % dx, i / dx)] * y_std[i / dx] / x_std[i % dx])
            .collect();
        Pls {
            components: k,
            dx,
            dy,
            x_weights: to_rows(w.as_ref()),
            x_loadings: to_rows(p.as_ref()),
            y_loadings: to_rows(q.as_ref()),
            x_scores,
            coef,
            x_mean,
            y_mean,
        }
    }

    /// Predictions for `n` rows of `x`.
    pub fn predict(&self, x: &[f64], n: usize) -> Vec<f64> {
        // (x − x_mean) · coefᵀ + y_mean, as one matrix product.
        let centred: Vec<f64> = x
            .chunks(self.dx.max(1))
            .take(n)
            .flat_map(|row| row.iter().zip(&self.x_mean).map(|(v, m)| v - m))
            .collect();
        let mut out = self.y_mean.repeat(n);
        faer::linalg::matmul::matmul(
            faer::MatMut::from_row_major_slice_mut(&mut out, n, self.dy),
            faer::Accum::Add,
            MatRef::from_row_major_slice(&centred, n, self.dx),
            MatRef::from_row_major_slice(&self.coef, self.dy, self.dx).transpose(),
            1.0,
            faer::Par::rayon(0),
        );
        out
    }

    /// Weight vector `c` (a direction in X space) as a slice copy.
    pub fn x_weight(&self, c: usize) -> Vec<f64> {
        (0..self.dx)
            .map(|j| self.x_weights[j * self.components + c])
            .collect()
    }
}

/// NIPALS on standardised rows `xk` (`m x dx`) and `yk` (`m x dy`), deflating both: `(W, P,
/// Q, T)` of `k` components. The rows may be the examples or any `R` with the same Gram matrix.
#[allow(clippy::type_complexity)]
fn nipals(
    mut xk: Mat<f64>,
    mut yk: Mat<f64>,
    k: usize,
) -> Result<(Mat<f64>, Mat<f64>, Mat<f64>, Mat<f64>)> {
    let (n, dx, dy) = (xk.nrows(), xk.ncols(), yk.ncols());
    let mut w = Mat::<f64>::zeros(dx, k);
    let mut p = Mat::<f64>::zeros(dx, k);
    let mut q = Mat::<f64>::zeros(dy, k);
    let mut t = Mat::<f64>::zeros(n, k);
    for c in 0..k {
        let cross = xk.transpose() * &yk;
        let (u, _, _) = svd(&to_rows(cross.as_ref()), dx, dy)?;
        let mut wc: Vec<f64> = (0..dx).map(|i| u[i * dx.min(dy)]).collect();
        let sign = sign_of_largest(&wc);
        wc.iter_mut().for_each(|v| *v *= sign);
        let tc: Vec<f64> = (0..n)
            .map(|r| (0..dx).map(|j| xk[(r, j)] * wc[j]).sum())
            .collect();
        let tt: f64 = tc.iter().map(|v| v * v).sum();
        if tt <= f64::MIN_POSITIVE {
            return Err(Error::Data(format!(
                "PLS: component {c} has zero scores (X is exhausted)"
            )));
        }
        let pc: Vec<f64> = (0..dx)
            .map(|j| (0..n).map(|r| tc[r] * xk[(r, j)]).sum::<f64>() / tt)
            .collect();
        let qc: Vec<f64> = (0..dy)
            .map(|j| (0..n).map(|r| tc[r] * yk[(r, j)]).sum::<f64>() / tt)
            .collect();
        for r in 0..n {
            for j in 0..dx {
                xk[(r, j)] -= tc[r] * pc[j];
            }
            for j in 0..dy {
                yk[(r, j)] -= tc[r] * qc[j];
            }
            t[(r, c)] = tc[r];
        }
        for j in 0..dx {
            w[(j, c)] = wc[j];
            p[(j, c)] = pc[j];
        }
        for j in 0..dy {
            q[(j, c)] = qc[j];
        }
    }
    Ok((w, p, q, t))
}

/// R² averaged uniformly over columns (scikit-learn's `r2_score`).
pub fn r2_score(y: &[f64], pred: &[f64], n: usize, d: usize) -> f64 {
    let mean = column_means(y, n, d);
    let mut total = 0.0;
    for j in 0..d {
        let (mut ss_res, mut ss_tot) = (0.0, 0.0);
        for r in 0..n {
            ss_res += (y[r * d + j] - pred[r * d + j]).powi(2);
            ss_tot += (y[r * d + j] - mean[j]).powi(2);
        }
        total += r2_term(ss_res, ss_tot);
    }
    total / d as f64
}

/// One column's R² from its residual and total sums of squares (scikit-learn's convention for
/// a constant column: 1 if predicted exactly, else 0).
fn r2_term(ss_res: f64, ss_tot: f64) -> f64 {
    if ss_tot > 0.0 {
        1.0 - ss_res / ss_tot
    } else if ss_res == 0.0 {
        1.0
    } else {
        0.0
    }
}
