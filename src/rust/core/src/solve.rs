//! Conjugate-gradient solver for (K + α I) a = b, with K a symmetric positive
//! semi-definite symbolic matrix applied by a Sum reduction.
//!
//! Each of the r right-hand sides (columns of b) runs its own (preconditioned)
//! CG recurrence; all of them share one product K P per iteration, which is a
//! single reduction of dimension r. With x₀ = 0, r₀ = b, z = M⁻¹ r, p₀ = z₀:
//!
//! ```text
//! q  = (K + α I) p          γ = ⟨r, z⟩ / ⟨p, q⟩
//! x += γ p                   r -= γ q
//! z  = M⁻¹ r                 p  = z + (⟨r, z⟩_new / ⟨r, z⟩_old) p
//! ```
//!
//! M = diag(K) + α I (Jacobi) or the identity. A column stops when its
//! relative residual ‖r‖ / ‖b‖ is at most `tol` (KeOps' KernelSolve stops on
//! an absolute residual and has no iteration cap nor preconditioner).

use crate::buffer::{size, try_filled};
use crate::error::{Error, Result};
use crate::formula::Formula;
use crate::plan::{Input, Options, Prepared};
use crate::reduction::Reduction;

#[derive(Debug, Clone, Copy)]
pub struct CgOptions {
    /// Ridge α added to the diagonal.
    pub alpha: f64,
    /// Relative residual at which a column stops.
    pub tol: f64,
    /// Most products by K.
    pub max_iter: usize,
    /// Jacobi (diagonal) preconditioner.
    pub jacobi: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CgSolution {
    /// n × r solution, column-major.
    pub x: Vec<f64>,
    pub n: usize,
    pub r: usize,
    /// Products by K done.
    pub iterations: usize,
    /// Whether every column reached the tolerance.
    pub converged: bool,
    /// Relative residual of each column after 0, 1, ..., `iterations`
    /// iterations: (iterations + 1) × r, row-major (one row per iteration).
    pub history: Vec<f64>,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Preconditioned CG on `apply_k` (the product by K of an n × r column-major
/// block) plus `alpha` I. `diag` is K's diagonal for the Jacobi
/// preconditioner. Stops with an error when ⟨p, (K + α I) p⟩ ≤ 0 (the
/// matrix is not positive definite, or holds NaN).
pub fn conjugate_gradient(
    n: usize,
    r: usize,
    b: &[f64],
    apply_k: &mut dyn FnMut(&[f64]) -> Result<Vec<f64>>,
    diag: Option<&[f64]>,
    opts: &CgOptions,
) -> Result<CgSolution> {
    if b.len() != n * r {
        return Err(Error::Internal(format!("right-hand side has {} values, expected {n} x {r}", b.len())));
    }
    if opts.tol.is_nan() || opts.tol < 0.0 || !opts.alpha.is_finite() {
        return Err(Error::Option(format!(
            "tol must be non-negative and alpha finite, got tol = {}, alpha = {}",
            opts.tol, opts.alpha
        )));
    }
    if let Some(k) = b.iter().position(|v| !v.is_finite()) {
        return Err(Error::Input(format!(
            "the right-hand side b holds a non-finite value (row {}, column {})",
            k % n.max(1) + 1,
            k / n.max(1) + 1
        )));
    }
    let inv_m: Option<Vec<f64>> = match diag {
        None => None,
        Some(d) => {
            let m: Vec<f64> = d.iter().map(|&k| k + opts.alpha).collect();
            if let Some(i) = m.iter().position(|&v| !(v > 0.0 && v.is_finite())) {
                return Err(Error::Input(format!(
                    "the Jacobi preconditioner needs K[i, i] + alpha > 0, but it is {} at i = {}",
                    m[i],
                    i + 1
                )));
            }
            Some(m.iter().map(|v| 1.0 / v).collect())
        }
    };
    let precondition = |res: &[f64], z: &mut [f64]| match &inv_m {
        None => z.copy_from_slice(res),
        Some(inv) => {
            for c in 0..r {
                for i in 0..n {
                    z[c * n + i] = res[c * n + i] * inv[i];
                }
            }
        }
    };
    let col = |c: usize| (c * n)..((c + 1) * n);
    let b_norm: Vec<f64> = (0..r).map(|c| dot(&b[col(c)], &b[col(c)]).sqrt()).collect();
    let mut x = try_filled(size(n, r), 0.0)?;
    let mut res = b.to_vec();
    let mut z = try_filled(size(n, r), 0.0)?;
    precondition(&res, &mut z);
    let mut p = z.clone();
    let mut rz: Vec<f64> = (0..r).map(|c| dot(&res[col(c)], &z[col(c)])).collect();
    let mut active = vec![true; r];
    let mut history = Vec::new();
    let mut iterations = 0;
    loop {
        for c in 0..r {
            let rel = if b_norm[c] > 0.0 { dot(&res[col(c)], &res[col(c)]).sqrt() / b_norm[c] } else { 0.0 };
            history.push(rel);
            if rel <= opts.tol {
                active[c] = false;
            }
        }
        if !active.iter().any(|&a| a) || iterations >= opts.max_iter {
            break;
        }
        // Finished columns stay frozen: their direction is zeroed so the
        // shared product costs nothing extra in accuracy.
        for c in (0..r).filter(|&c| !active[c]) {
            p[col(c)].fill(0.0);
        }
        let mut q = apply_k(&p)?;
        if q.len() != n * r {
            return Err(Error::Internal(format!("product by K has {} values, expected {}", q.len(), n * r)));
        }
        for (qv, pv) in q.iter_mut().zip(&p) {
            *qv += opts.alpha * pv;
        }
        iterations += 1;
        for c in (0..r).filter(|&c| active[c]) {
            let cr = col(c);
            let pq = dot(&p[cr.clone()], &q[cr.clone()]);
            if pq.is_nan() || pq <= 0.0 {
                return Err(Error::Input(format!(
                    "K + alpha I is not positive definite (or holds NaN): p'(K + alpha I)p = {pq} at iteration \
                     {iterations} for right-hand side {}; K must be symmetric positive semi-definite, \
                     try alpha > 0",
                    c + 1
                )));
            }
            let gamma = rz[c] / pq;
            for i in cr.clone() {
                x[i] += gamma * p[i];
                res[i] -= gamma * q[i];
            }
        }
        precondition(&res, &mut z);
        for c in (0..r).filter(|&c| active[c]) {
            let cr = col(c);
            let rz_new = dot(&res[cr.clone()], &z[cr.clone()]);
            let beta = if rz[c] > 0.0 { rz_new / rz[c] } else { 0.0 };
            rz[c] = rz_new;
            for i in cr {
                p[i] = z[i] + beta * p[i];
            }
        }
    }
    let converged = !active.iter().any(|&a| a);
    Ok(CgSolution { x, n, r, iterations, converged, history })
}

/// Solves (K + α I) a = b where `formula` is `Sum_Reduction(F, axis)` and F
/// is linear in the argument at position `var` (typically F = K_ij * a_j):
/// applying K to a is the reduction with `var` bound to a. `inputs[var]`
/// must have b's shape (n × r); `b` is column-major. The Jacobi
/// preconditioner uses F on the diagonal with a = 1, which is K_ii when
/// F = K_ij * a_j with K_ij scalar. Data are prepared once; each iteration
/// is one reduction.
pub fn solve(
    formula: &Formula,
    inputs: &[Input<'_>],
    var: usize,
    b: &[f64],
    options: &Options,
    cg: &CgOptions,
    interrupted: &mut dyn FnMut() -> bool,
) -> Result<CgSolution> {
    if formula.grad.is_some() {
        return Err(Error::Reduction(
            "the solver needs a Sum reduction (a linear operator), not a gradient written around a reduction".into(),
        ));
    }
    let prepared = Prepared::new(formula, inputs, options)?;
    let vars = prepared.variables();
    let info = vars.get(var).ok_or_else(|| {
        Error::Input(format!("the unknown is argument {} but the formula has {}", var + 1, vars.len()))
    })?;
    let dim = match prepared.reduction() {
        Reduction::Sum { dim } => dim,
        other => {
            return Err(Error::Reduction(format!(
                "the solver needs a Sum reduction (a linear operator), got {other:?}"
            )))
        }
    };
    let axis = prepared.axis();
    if info.cat != axis.inner() {
        return Err(Error::Input(format!(
            "the unknown {} must be indexed by the reduced index ({}), as the solution of (K + alpha I) a = b",
            info.describe(),
            axis.inner().keyword()
        )));
    }
    if info.dim != dim {
        return Err(Error::Dimension {
            message: format!(
                "the reduced formula has dimension {dim} but the unknown {} has dimension {}: \
                 the operator must map a to a vector of the same shape",
                info.describe(),
                info.dim
            ),
            column: None,
        });
    }
    let (rows, inner) = prepared.shape();
    if rows != inner {
        return Err(Error::Input(format!(
            "K must be square: it has {rows} output rows and {inner} reduced indices"
        )));
    }
    let (n, r) = (rows, dim);
    if b.len() != n * r {
        return Err(Error::Input(format!(
            "b must have {n} rows and {r} column(s) (one row per point), got {} values",
            b.len()
        )));
    }
    let diag = if cg.jacobi {
        let ones = vec![1.0; n * r];
        Some(prepared.diagonal(Some((var, &ones)))?)
    } else {
        None
    };
    let mut products = 0u64;
    let mut apply = |p: &[f64]| -> Result<Vec<f64>> {
        // Each matrix product is one CG iteration (the first computes the
        // initial residual): report iterations, not the pairs of each.
        crate::progress::report(products, cg.max_iter as u64 + 1, "iterations");
        products += 1;
        let out = crate::progress::silenced(|| prepared.run_with(var, p, None, interrupted))?;
        out.values.map(|(_, v)| v).ok_or_else(|| Error::Internal("a Sum reduction returned no values".into()))
    };
    conjugate_gradient(n, r, b, &mut apply, diag.as_deref(), cg)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A random SPD-ish kernel matrix: Gaussian kernel of points on a line.
    fn gaussian(n: usize, scale: f64) -> (Vec<f64>, Vec<f64>) {
        let x: Vec<f64> = (0..n).map(|i| ((i * 7919) % n) as f64 / n as f64 * 3.0).collect();
        let mut k = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                k[i * n + j] = (-(x[i] - x[j]).powi(2) / (2.0 * scale * scale)).exp();
            }
        }
        (x, k)
    }

    fn matmul(k: &[f64], n: usize, p: &[f64]) -> Vec<f64> {
        let r = p.len() / n;
        let mut out = vec![0.0; n * r];
        for c in 0..r {
            for i in 0..n {
                out[c * n + i] = (0..n).map(|j| k[i * n + j] * p[c * n + j]).sum();
            }
        }
        out
    }

    fn residual(k: &[f64], n: usize, alpha: f64, x: &[f64], b: &[f64], c: usize) -> f64 {
        let kx = matmul(k, n, x);
        let cr = c * n..(c + 1) * n;
        let num: f64 = cr.clone().map(|i| (b[i] - kx[i] - alpha * x[i]).powi(2)).sum::<f64>().sqrt();
        num / cr.map(|i| b[i] * b[i]).sum::<f64>().sqrt()
    }

    #[test]
    fn solves_to_tolerance_with_several_right_hand_sides() {
        let n = 60;
        let (_, k) = gaussian(n, 0.3);
        let b: Vec<f64> = (0..2 * n).map(|i| ((i * 37) % 11) as f64 - 5.0).collect();
        for jacobi in [false, true] {
            let opts = CgOptions { alpha: 0.1, tol: 1e-10, max_iter: 500, jacobi };
            let diag: Vec<f64> = (0..n).map(|i| k[i * n + i]).collect();
            let mut apply = |p: &[f64]| Ok(matmul(&k, n, p));
            let sol = conjugate_gradient(n, 2, &b, &mut apply, jacobi.then_some(&diag[..]), &opts).unwrap();
            assert!(sol.converged);
            assert_eq!(sol.history.len(), 2 * (sol.iterations + 1));
            assert_eq!(&sol.history[..2], &[1.0, 1.0]);
            for c in 0..2 {
                assert!(residual(&k, n, 0.1, &sol.x, &b, c) < 1e-9, "jacobi {jacobi} column {c}");
            }
        }
    }

    #[test]
    fn jacobi_helps_a_badly_scaled_diagonal() {
        // K = D^{1/2} G D^{1/2}: a Gaussian kernel rescaled row and column
        // by factors spanning four orders of magnitude.
        let n = 80;
        let (_, g) = gaussian(n, 0.05);
        let d: Vec<f64> = (0..n).map(|i| 10f64.powf(4.0 * i as f64 / n as f64)).collect();
        let k: Vec<f64> = (0..n * n).map(|ij| g[ij] * (d[ij / n] * d[ij % n]).sqrt()).collect();
        let diag: Vec<f64> = (0..n).map(|i| k[i * n + i]).collect();
        let b = vec![1.0; n];
        let run = |jacobi: bool| {
            let opts = CgOptions { alpha: 1e-3, tol: 1e-8, max_iter: 10_000, jacobi };
            let mut apply = |p: &[f64]| Ok(matmul(&k, n, p));
            conjugate_gradient(n, 1, &b, &mut apply, jacobi.then_some(&diag[..]), &opts).unwrap()
        };
        let (plain, pre) = (run(false), run(true));
        assert!(plain.converged && pre.converged);
        assert!(pre.iterations * 2 < plain.iterations, "{} vs {}", pre.iterations, plain.iterations);
    }

    #[test]
    fn cap_zero_rhs_and_indefinite_matrices() {
        let n = 40;
        let (_, k) = gaussian(n, 0.3);
        let b: Vec<f64> = (0..n).map(|i| (i % 5) as f64).collect();
        let mut apply = |p: &[f64]| Ok(matmul(&k, n, p));
        let capped = CgOptions { alpha: 1e-6, tol: 1e-14, max_iter: 3, jacobi: false };
        let sol = conjugate_gradient(n, 1, &b, &mut apply, None, &capped).unwrap();
        assert!(!sol.converged);
        assert_eq!(sol.iterations, 3);
        assert_eq!(sol.history.len(), 4);
        // A zero right-hand side is solved by zero without any product.
        let mut never = |_: &[f64]| -> Result<Vec<f64>> { panic!("no product needed") };
        let opts = CgOptions { alpha: 1.0, tol: 1e-8, max_iter: 10, jacobi: false };
        let zero = conjugate_gradient(n, 1, &vec![0.0; n], &mut never, None, &opts).unwrap();
        assert!(zero.converged && zero.iterations == 0 && zero.x.iter().all(|&v| v == 0.0));
        // -I is not positive definite.
        let mut minus = |p: &[f64]| Ok(p.iter().map(|v| -v).collect());
        let e = conjugate_gradient(n, 1, &b, &mut minus, None, &opts.clone()).unwrap_err();
        assert!(e.to_string().contains("not positive definite"), "{e}");
        let e = conjugate_gradient(n, 1, &b, &mut apply, Some(&vec![-2.0; n]), &opts).unwrap_err();
        assert!(e.to_string().contains("Jacobi"), "{e}");
    }

    #[test]
    fn formula_solver_matches_dense_solution() {
        let n = 50;
        let (x, k) = gaussian(n, 0.3);
        let f = Formula::parse("Sum_Reduction(Exp(-SqDist(x, y) / 0.18) * a, 1)", &["x = Vi(1)", "y = Vj(1)", "a = Vj(2)"])
            .unwrap();
        let b: Vec<f64> = (0..2 * n).map(|i| ((i * 13) % 7) as f64 - 3.0).collect();
        let inputs = [Input::matrix(&x, n, 1), Input::matrix(&x, n, 1), Input::matrix(&b, n, 2)];
        for (precision, tol) in [(crate::Precision::F64, 1e-10), (crate::Precision::F32, 1e-4)] {
            for jacobi in [false, true] {
                let options = Options { precision, ..Options::default() };
                let cg = CgOptions { alpha: 0.5, tol, max_iter: 1000, jacobi };
                let sol = solve(&f, &inputs, 2, &b, &options, &cg, &mut || false).unwrap();
                assert!(sol.converged);
                for c in 0..2 {
                    assert!(residual(&k, n, 0.5, &sol.x, &b, c) < 10.0 * tol, "{precision:?} {jacobi}");
                }
            }
        }
        // The unknown must be indexed by j for a reduction over j.
        let e = solve(&f, &inputs, 0, &b, &Options::default(), &CgOptions { alpha: 0.5, tol: 1e-8, max_iter: 10, jacobi: false }, &mut || false)
            .unwrap_err();
        assert_eq!(e.kind(), "input");
    }

    #[test]
    fn interrupts_stop_the_solver() {
        let n = 30;
        let (x, _) = gaussian(n, 0.3);
        let f = Formula::parse("Sum_Reduction(Exp(-SqDist(x, y)) * a, 1)", &["x = Vi(1)", "y = Vj(1)", "a = Vj(1)"]).unwrap();
        let b = vec![1.0; n];
        let inputs = [Input::vector(&x), Input::vector(&x), Input::vector(&b)];
        let cg = CgOptions { alpha: 1e-8, tol: 0.0, max_iter: 1000, jacobi: false };
        let e = solve(&f, &inputs, 2, &b, &Options::default(), &cg, &mut || true).unwrap_err();
        assert_eq!(e, Error::Interrupted);
    }
}
