//! Dense matrix products for the dense steps of the solvers built on the
//! reductions: the Gaussian-process code's low-rank preconditioner, Lanczos
//! bases and control variates multiply n × k by k × r matrices (n up to the
//! number of points, k and r up to a few hundred). R's reference BLAS does
//! about 3 GFlop/s there (`crossprod` of 1e4 × 400 and 1e4 × 16 on these
//! machines); `matrixmultiply` does tens per core.

use rayon::prelude::*;

use super::thread_pool;
use crate::buffer::{size, try_filled};
use crate::error::{Error, Result};

/// A column-major matrix, used as is or transposed: the first rows × cols
/// of `values` (a matrix's leading columns without a copy).
#[derive(Debug, Clone, Copy)]
pub struct Operand<'a> {
    pub values: &'a [f64],
    pub rows: usize,
    pub cols: usize,
    pub transposed: bool,
}

impl Operand<'_> {
    /// Rows and columns of op(X).
    fn shape(&self) -> (usize, usize) {
        if self.transposed {
            (self.cols, self.rows)
        } else {
            (self.rows, self.cols)
        }
    }

    /// Row and column strides of op(X) in `values`.
    fn strides(&self) -> [usize; 2] {
        if self.transposed {
            [self.rows, 1]
        } else {
            [1, self.rows]
        }
    }
}

/// The result's entries, shared by the threads that each write their own
/// block of rows or columns.
#[derive(Clone, Copy)]
struct Out(*mut f64);
// SAFETY: every task writes a disjoint block of entries (see `product`).
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

/// Products below this many multiply-adds run on the calling thread.
const PARALLEL_MIN_WORK: usize = 1 << 20;

/// op(A) op(B), column-major, on `threads` threads (0: all cores): the
/// result is cut into blocks of columns (or of rows, when it has fewer
/// columns than rows), one GEMM each. Every entry is one GEMM's sum over the
/// inner dimension, in the same order whatever the cut, so the result does
/// not depend on the thread count.
pub fn product(a: &Operand<'_>, b: &Operand<'_>, threads: usize) -> Result<Vec<f64>> {
    let ((m, k), (kb, n)) = (a.shape(), b.shape());
    for x in [a, b] {
        if size(x.rows, x.cols).is_none_or(|len| len > x.values.len()) {
            return Err(Error::Input(format!("a {} x {} matrix needs {} values, got {}", x.rows, x.cols, x.rows * x.cols, x.values.len())));
        }
    }
    if k != kb {
        return Err(Error::dimension(format!("non-conformable matrices: {m} x {k} times {kb} x {n}"), None));
    }
    let mut c = try_filled(size(m, n), 0.0)?;
    if m == 0 || n == 0 || k == 0 {
        return Ok(c);
    }
    let (sa, sb) = (a.strides(), b.strides());
    let out = Out(c.as_mut_ptr());
    // Rows i0..i1 and columns j0..j1 of the result.
    let block = |i0: usize, i1: usize, j0: usize, j1: usize| {
        let out = out;
        // SAFETY: A and B hold rows × cols values (checked above), so the
        // strides reach only their entries; the block's entries of C are
        // inside c (m × n) and written by this task only.
        unsafe {
            matrixmultiply::dgemm(
                i1 - i0,
                k,
                j1 - j0,
                1.0,
                a.values.as_ptr().add(i0 * sa[0]),
                sa[0] as isize,
                sa[1] as isize,
                b.values.as_ptr().add(j0 * sb[1]),
                sb[0] as isize,
                sb[1] as isize,
                0.0,
                out.0.add(i0 + j0 * m),
                1,
                m as isize,
            )
        }
    };
    let work = m.saturating_mul(n).saturating_mul(k);
    let pool = thread_pool(threads)?;
    let parts = if work < PARALLEL_MIN_WORK { 1 } else { pool.current_num_threads() };
    let by_columns = n >= m;
    let extent = if by_columns { n } else { m };
    let step = extent.div_ceil(parts.min(extent).max(1));
    pool.install(|| {
        (0..extent).into_par_iter().step_by(step).for_each(|s| {
            let e = (s + step).min(extent);
            if by_columns {
                block(0, m, s, e)
            } else {
                block(s, e, 0, n)
            }
        })
    });
    Ok(c)
}

/// What `pairwise` computes from the squared distance r² between two rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PairMap {
    /// r² itself.
    SqDist,
    /// The Gaussian-process code's stationary kernels k(r), scaled by `s2`.
    Kernel(Stationary, f64),
    /// Their length-scale factor h(r) (d k / d log ℓ_d = h(r) Δ_d²), scaled.
    LengthscaleFactor(Stationary, f64),
}

/// The stationary kernels of `keops_gp()`, of r = |x - x'| / ℓ.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stationary {
    /// e^(-r²/2)
    Gaussian,
    /// e^-r
    Matern12,
    /// (1 + √3 r) e^(-√3 r)
    Matern32,
    /// (1 + √5 r + 5 r²/3) e^(-√5 r)
    Matern52,
}

impl Stationary {
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "gaussian" => Self::Gaussian,
            "matern12" => Self::Matern12,
            "matern32" => Self::Matern32,
            "matern52" => Self::Matern52,
            _ => return Err(Error::Input(format!("unknown kernel \"{name}\""))),
        })
    }

    /// k(r) from r².
    fn k(self, r2: f64) -> f64 {
        match self {
            Self::Gaussian => (-r2 / 2.0).exp(),
            Self::Matern12 => (-r2.sqrt()).exp(),
            Self::Matern32 => {
                let r = (3.0 * r2).sqrt();
                (1.0 + r) * (-r).exp()
            }
            Self::Matern52 => {
                let r = (5.0 * r2).sqrt();
                (1.0 + r + 5.0 * r2 / 3.0) * (-r).exp()
            }
        }
    }

    /// h(r) = -k'(r) / r from r²: k's own e^(-r²/2) for the Gaussian;
    /// e^-r / r for Matern 1/2, unbounded at 0 where k is not smooth (0
    /// there, as the derivative's Δ² factor is).
    fn h(self, r2: f64) -> f64 {
        match self {
            Self::Gaussian => (-r2 / 2.0).exp(),
            Self::Matern12 => {
                let r = r2.sqrt();
                if r > 0.0 {
                    (-r).exp() / r
                } else {
                    0.0
                }
            }
            Self::Matern32 => 3.0 * (-(3.0 * r2).sqrt()).exp(),
            Self::Matern52 => {
                let r = (5.0 * r2).sqrt();
                (5.0 / 3.0) * (1.0 + r) * (-r).exp()
            }
        }
    }
}

/// f(|a_i - b_j|²) for the rows of A (m × d) and of B (n × d), both
/// column-major: the m × n matrix, in one pass (the dense steps of the
/// Gaussian-process code on n × rank blocks, where R's vector arithmetic
/// spent seconds per evaluation on temporaries of n × rank values). The
/// distances are taken by differences (exact at coincident points, where
/// an expansion |a|² + |b|² - 2 a·b cancels) and summed over the
/// dimensions in order, as R's `d <- 0; for (c in 1:d) d <- d + (a[, c] -
/// b[j, c])^2` does: `SqDist` gives R's values to the bit. The columns are
/// cut between `threads` threads (0: all cores).
pub fn pairwise(map: PairMap, a: &[f64], m: usize, b: &[f64], n: usize, d: usize, threads: usize) -> Result<Vec<f64>> {
    for (x, rows) in [(a, m), (b, n)] {
        if size(rows, d).is_none_or(|len| len > x.len()) {
            return Err(Error::Input(format!("a {rows} x {d} matrix needs {} values, got {}", rows * d, x.len())));
        }
    }
    let mut out = try_filled(size(m, n), 0.0)?;
    if m == 0 || n == 0 {
        return Ok(out);
    }
    let column = |j: usize, col: &mut [f64]| {
        for c in 0..d {
            let (ac, bj) = (&a[c * m..(c + 1) * m], b[j + c * n]);
            col.iter_mut().zip(ac).for_each(|(o, &x)| *o += (x - bj) * (x - bj));
        }
        match map {
            PairMap::SqDist => {}
            PairMap::Kernel(k, s2) => col.iter_mut().for_each(|v| *v = s2 * k.k(*v)),
            PairMap::LengthscaleFactor(k, s2) => col.iter_mut().for_each(|v| *v = s2 * k.h(*v)),
        }
    };
    let pool = thread_pool(threads)?;
    let parallel = m.saturating_mul(n).saturating_mul(d + 8) >= PARALLEL_MIN_WORK;
    if parallel {
        pool.install(|| out.par_chunks_mut(m).enumerate().for_each(|(j, col)| column(j, col)));
    } else {
        out.chunks_mut(m).enumerate().for_each(|(j, col)| column(j, col));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &Operand<'_>, b: &Operand<'_>) -> Vec<f64> {
        let ((m, k), (_, n)) = (a.shape(), b.shape());
        let at = |x: &Operand<'_>, i: usize, j: usize| {
            let s = x.strides();
            x.values[i * s[0] + j * s[1]]
        };
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i + j * m] = (0..k).map(|l| at(a, i, l) * at(b, l, j)).sum();
            }
        }
        c
    }

    /// Every transpose combination, shapes cut by rows and by columns, and
    /// one result whatever the thread count.
    #[test]
    fn products_match_the_naive_sums_at_every_thread_count() {
        let values = |len: usize, seed: usize| -> Vec<f64> { (0..len).map(|i| (((i * 7919 + seed * 104729) % 1000) as f64 - 500.0) / 250.0).collect() };
        for (m, k, n) in [(3, 4, 5), (700, 300, 9), (9, 300, 700), (1, 1, 1), (0, 3, 2), (4, 0, 3)] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let av = values(m * k, 1);
                let bv = values(k * n, 2);
                let (ar, ac) = if ta { (k, m) } else { (m, k) };
                let (br, bc) = if tb { (n, k) } else { (k, n) };
                let a = Operand { values: &av, rows: ar, cols: ac, transposed: ta };
                let b = Operand { values: &bv, rows: br, cols: bc, transposed: tb };
                let expected = naive(&a, &b);
                let one = product(&a, &b, 1).unwrap();
                for (x, y) in one.iter().zip(&expected) {
                    assert!((x - y).abs() <= 1e-12 * (k as f64 + 1.0) * 4.0, "{m} {k} {n} {ta} {tb}: {x} vs {y}");
                }
                assert_eq!(one.len(), m * n);
                assert_eq!(product(&a, &b, 2).unwrap(), one, "{m} {k} {n}: 2 threads");
                assert_eq!(product(&a, &b, 3).unwrap(), one, "{m} {k} {n}: 3 threads");
            }
        }
        let v = vec![1.0; 6];
        let a = Operand { values: &v, rows: 2, cols: 3, transposed: false };
        assert!(product(&a, &a, 1).is_err());
        assert!(product(&Operand { rows: 4, ..a }, &a, 1).is_err());
        // The leading columns of a longer matrix.
        let lead = Operand { cols: 2, ..a };
        assert_eq!(product(&lead, &Operand { rows: 2, cols: 1, ..a }, 1).unwrap(), vec![2.0, 2.0]);
    }

    #[test]
    fn pairwise_sums_squared_differences_in_order_at_every_thread_count() {
        let (m, n, d) = (300, 700, 3);
        let a: Vec<f64> = (0..m * d).map(|i| ((i * 7919 % 1000) as f64 - 500.0) / 97.0).collect();
        let b: Vec<f64> = (0..n * d).map(|i| ((i * 104729 % 1000) as f64 - 500.0) / 89.0).collect();
        let one = pairwise(PairMap::SqDist, &a, m, &b, n, d, 1).unwrap();
        for i in 0..m {
            for j in 0..n {
                let want = (0..d).fold(0.0, |s, c| s + (a[i + c * m] - b[j + c * n]).powi(2));
                assert_eq!(one[i + j * m].to_bits(), want.to_bits(), "{i} {j}");
            }
        }
        assert_eq!(pairwise(PairMap::SqDist, &a, m, &b, n, d, 2).unwrap(), one);
        // The kernels and their factors against their formulas in r.
        type Pair = (Stationary, fn(f64) -> f64, fn(f64) -> f64);
        let kernels: [Pair; 4] = [
            (Stationary::Gaussian, |r| (-r * r / 2.0).exp(), |r| (-r * r / 2.0).exp()),
            (Stationary::Matern12, |r| (-r).exp(), |r| if r > 0.0 { (-r).exp() / r } else { 0.0 }),
            (Stationary::Matern32, |r| (1.0 + 3f64.sqrt() * r) * (-(3f64.sqrt()) * r).exp(), |r| 3.0 * (-(3f64.sqrt()) * r).exp()),
            (Stationary::Matern52, |r| (1.0 + 5f64.sqrt() * r + 5.0 * r * r / 3.0) * (-(5f64.sqrt()) * r).exp(), |r| {
                (5.0 / 3.0) * (1.0 + 5f64.sqrt() * r) * (-(5f64.sqrt()) * r).exp()
            }),
        ];
        for (kind, k, h) in kernels {
            let kv = pairwise(PairMap::Kernel(kind, 1.5), &a, m, &b, n, d, 2).unwrap();
            let hv = pairwise(PairMap::LengthscaleFactor(kind, 1.5), &a, m, &b, n, d, 2).unwrap();
            for (idx, &r2) in one.iter().enumerate() {
                let r = r2.sqrt();
                // The reference's r = sqrt(r²) is rounded: exp's argument
                // (up to r²/2 or √5 r) carries that relative error.
                let tol = 1e-15 * (2.0 + r2 + 3.0 * r);
                for (got, want) in [(kv[idx], 1.5 * k(r)), (hv[idx], 1.5 * h(r))] {
                    assert!((got - want).abs() <= tol * want.abs() + 1e-300, "{kind:?} at r = {r}: {got} vs {want}");
                }
            }
            // At r = 0: k = s2, and Matern 1/2's unbounded h is 0.
            let z = pairwise(PairMap::Kernel(kind, 1.5), &a[..1], 1, &a[..1], 1, 1, 1).unwrap();
            let hz = pairwise(PairMap::LengthscaleFactor(kind, 1.5), &a[..1], 1, &a[..1], 1, 1, 1).unwrap();
            assert_eq!(z, vec![1.5]);
            assert_eq!(hz, vec![if kind == Stationary::Matern12 { 0.0 } else { 1.5 * h(0.0) }]);
        }
        // Coincident rows give exact zeros; no rows, no values; short input.
        assert!(pairwise(PairMap::SqDist, &a, m, &a, m, d, 2).unwrap().iter().step_by(m + 1).all(|&v| v == 0.0));
        assert!(pairwise(PairMap::SqDist, &a, 0, &b, n, d, 1).unwrap().is_empty());
        assert!(pairwise(PairMap::SqDist, &a, m + 1, &b, n, d, 1).is_err());
        assert!(Stationary::parse("cauchy").is_err());
    }
}
