//! High-dimensional pair terms by matrix products: SqDist(x, y) and (x | y)
//! of an output-index variable x and a reduced-index variable y, for a block
//! of output rows against a tile of reduced indices, as one GEMM
//! (`matrixmultiply`, pure Rust, runtime AVX/FMA dispatch) instead of one
//! pass per row:
//!
//! ```text
//! (x | y)      = G              G = X Yᵀ (rows × tile)
//! |x - y|²     = max(0, |x̃|² + |ỹ|² - 2 G̃)    x̃ = x - c, ỹ = y - c
//! ```
//!
//! The centre c is the mean of the output-index points (computed in f64,
//! once per reduction), so that |x̃|² and |ỹ|² stay of the order of the
//! distances and the expansion does not cancel for data far from the origin.
//! The rounding error of a squared distance is then at most about
//! `(2 D + 8) ε (|x̃|² + |ỹ|²)` (ε the precision's unit roundoff, D the
//! dimension). Rows and points that are not finite, or whose centred squared
//! norm could overflow, take the direct sum instead, so that NaN and Inf
//! propagate exactly as in the direct loop.
//!
//! Memory: a centred copy of both variables per reduction ([`Centred`]),
//! and per work item the rows × tile product: never M × N.
//!
//! Sums of a scalar term times wide weights, Σ_j s(i, j) w_j, are the
//! other matrix product of the engine: see `cpu::weights`.

use std::ops::Range;

use rayon::prelude::*;

use super::program::Data;
use crate::buffer::try_filled;
use crate::error::Result;
use crate::Real;

/// Which pair term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GramPair {
    /// Σ_c (x_c - y_c)².
    SqDist,
    /// Σ_c x_c y_c.
    Dot,
}

/// A pair term computed by GEMM: the inputs at positions `x` (output index)
/// and `y` (reduced index), of dimension `dim`; its values for the current
/// row go to the wide slot at `out`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gram {
    pub pair: GramPair,
    pub x: usize,
    pub y: usize,
    pub dim: usize,
    pub out: usize,
}

/// The operands of one gram, centred once per reduction: a copy of each
/// variable (the memory of the inputs, never M × N) from which every work
/// item's GEMM reads its block of rows and its tiles.
pub struct Centred<T> {
    gram: Gram,
    /// Centred output-index points, point-major, and their squared norms
    /// (f64); likewise the reduced-index points, with their squared norms in
    /// T for the vectorized expansion.
    xs: Vec<T>,
    xx: Vec<f64>,
    ys: Vec<T>,
    yy: Vec<T>,
    /// Points that take the direct sum (not finite, or too large).
    y_direct: Vec<bool>,
}

/// Largest centred squared norm taken by the expansion: |x̃|² + |ỹ|² - 2 G
/// then stays below 4 times it, far from overflow.
fn safe_norm<T: Real>() -> f64 {
    T::max_value().to_double() / 16.0
}

/// The centre of a SqDist: the mean of the finite values of each column of
/// the output-index variable (0 for a scalar product, which is not centred).
fn centre<T: Real>(gram: &Gram, x: &Data<'_, T>) -> Vec<f64> {
    (0..gram.dim)
        .map(|c| {
            if gram.pair != GramPair::SqDist {
                return 0.0;
            }
            let finite = x.values[c * x.nrow..(c + 1) * x.nrow].iter().map(|v| v.to_double()).filter(|v| v.is_finite());
            let (sum, count) = finite.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
            if count > 0 {
                sum / count as f64
            } else {
                0.0
            }
        })
        .collect()
}

/// The variable `data` minus `centre` in T, point-major (the `dim` values
/// of each point together, so that the GEMM's packing reads whole points),
/// and the squared norms of its points (f64).
fn centred<T: Real>(data: &Data<'_, T>, centre: &[f64]) -> Result<(Vec<T>, Vec<f64>)> {
    let (n, d) = (data.nrow, centre.len());
    let mut xs = try_filled(n.checked_mul(d), T::zero())?;
    let mut xx = try_filled(Some(n), 0.0)?;
    // Blocks of points on the calling pool's threads (one pass over the data).
    const POINTS: usize = 1024;
    xs.par_chunks_mut((POINTS * d).max(1)).zip(xx.par_chunks_mut(POINTS)).enumerate().for_each(|(b, (xs, xx))| {
        for (p, (point, norm)) in xs.chunks_exact_mut(d.max(1)).zip(xx.iter_mut()).enumerate() {
            let i = b * POINTS + p;
            for (c, (v, &m)) in point.iter_mut().zip(centre).enumerate() {
                let diff = data.values[c * n + i].to_double() - m;
                *norm += diff * diff;
                *v = T::from_double(diff);
            }
        }
    });
    Ok((xs, xx))
}

impl<T: Real> Centred<T> {
    pub fn new(gram: Gram, inputs: &[Data<'_, T>]) -> Result<Centred<T>> {
        let (x, y) = (&inputs[gram.x], &inputs[gram.y]);
        let c = centre(&gram, x);
        let (xs, xx) = centred(x, &c)?;
        let (ys, yy) = centred(y, &c)?;
        let limit = safe_norm::<T>();
        let y_direct = yy.iter().map(|&v| v.is_nan() || v > limit).collect();
        let yy = yy.into_iter().map(T::from_double).collect();
        Ok(Centred { gram, xs, xx, ys, yy, y_direct })
    }

    /// |x̃|² of output row `row`; `None` when the row takes the direct sum
    /// (not finite, or too large).
    pub fn expanded_norm(&self, row: usize) -> Option<f64> {
        let xx = self.xx[row];
        (!xx.is_nan() && xx <= safe_norm::<T>()).then_some(xx)
    }
}

/// The variable `data` point-major (the `d` values of each point together).
pub fn point_major<T: Real>(data: &Data<'_, T>, d: usize) -> Result<Vec<T>> {
    // Centring on 0 is exact: only the layout changes.
    Ok(centred(data, &vec![0.0; d])?.0)
}

/// The products of one gram for one work item: its block of rows against
/// the current tile.
pub struct GramBlock<'c, T> {
    centred: &'c Centred<T>,
    /// rows × len products of the current tile, row-major.
    g: Vec<T>,
    rows: Range<usize>,
    start: usize,
    len: usize,
    /// Whether a point of the current tile takes the direct sum.
    tile_direct: bool,
}

impl<'c, T: Real> GramBlock<'c, T> {
    /// Buffers for the rows `rows` and tiles of at most `tile` points.
    pub fn new(centred: &'c Centred<T>, rows: Range<usize>, tile: usize) -> Result<GramBlock<'c, T>> {
        let g = try_filled(rows.len().checked_mul(tile), T::zero())?;
        Ok(GramBlock { centred, g, rows, start: 0, len: 0, tile_direct: false })
    }

    /// Computes the products of the rows with the tile of `len` reduced
    /// indices at `start`.
    pub fn load_tile(&mut self, start: usize, len: usize) {
        let c = self.centred;
        let (m, d) = (self.rows.len(), c.gram.dim);
        // G (m × len, row-major) = X (m × d) · Y (d × len), read in place
        // from the point-major centred copies.
        let (x, y) = (&c.xs[self.rows.start * d..], &c.ys[start * d..]);
        T::gemm(m, d, len, x, [d, 1], y, [1, d], &mut self.g[..m * len], [len, 1]);
        self.start = start;
        self.len = len;
        self.tile_direct = c.y_direct[start..start + len].iter().any(|&b| b);
    }

    /// Writes the pair term of row `local` (of the block) against the loaded
    /// tile into `out` (`len` values).
    pub fn fill_row(&self, inputs: &[Data<'_, T>], local: usize, out: &mut [T]) {
        let (c, len) = (self.centred, self.len);
        let g = &self.g[local * len..(local + 1) * len];
        let out = &mut out[..len];
        match c.gram.pair {
            GramPair::Dot => out.copy_from_slice(g),
            GramPair::SqDist => {
                let row = self.rows.start + local;
                let Some(xx) = c.expanded_norm(row) else {
                    return self.direct_row(inputs, local, out);
                };
                let (xx, yy) = (T::from_double(xx), &c.yy[self.start..self.start + len]);
                // max(0, ·) written as a comparison so that it vectorizes
                // (no NaN reaches here).
                for ((o, &gt), &y) in out.iter_mut().zip(g).zip(yy) {
                    let v = xx + y - (gt + gt);
                    *o = if v < T::zero() { T::zero() } else { v };
                }
                if self.tile_direct {
                    let direct = &c.y_direct[self.start..self.start + len];
                    for (t, o) in out.iter_mut().enumerate().filter(|(t, _)| direct[*t]) {
                        *o = self.direct(inputs, row, self.start + t);
                    }
                }
            }
        }
    }

    fn direct_row(&self, inputs: &[Data<'_, T>], local: usize, out: &mut [T]) {
        for (t, o) in out.iter_mut().enumerate() {
            *o = self.direct(inputs, self.rows.start + local, self.start + t);
        }
    }

    /// Σ_c (x_c - y_c)² in the direct loop's order, for non-finite or huge data.
    fn direct(&self, inputs: &[Data<'_, T>], row: usize, point: usize) -> T {
        let gram = &self.centred.gram;
        let (x, y) = (&inputs[gram.x], &inputs[gram.y]);
        (0..gram.dim).fold(T::zero(), |s, c| {
            let diff = x.values[c * x.nrow + row] - y.values[c * y.nrow + point];
            s + diff * diff
        })
    }
}

/// Whether the environment forces the choice (`KEOPSR_GEMM=off` or `on`,
/// for before/after measurements and tests); `None`: automatic.
pub fn forced() -> Option<bool> {
    static FORCED: std::sync::OnceLock<Option<bool>> = std::sync::OnceLock::new();
    *FORCED.get_or_init(|| match std::env::var("KEOPSR_GEMM").as_deref() {
        Ok("off") => Some(false),
        Ok("on") => Some(true),
        _ => None,
    })
}
