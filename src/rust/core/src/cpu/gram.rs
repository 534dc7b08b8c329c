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
//! The centre c is the mean of the block's rows (computed in f64), so that
//! |x̃|² and |ỹ|² stay of the order of the distances and the expansion does
//! not cancel for data far from the origin. The rounding error of a squared
//! distance is then at most about `4 D ε (|x̃|² + |ỹ|²)` (ε the precision's
//! unit roundoff, D the dimension). Rows and points that are not finite, or
//! whose centred squared norm could overflow, take the direct sum instead, so
//! that NaN and Inf propagate exactly as in the direct loop.
//!
//! Memory per work item: the centred block and tile, their squared norms and
//! the rows × tile product: linear in the dimension, never M × N.
//!
//! A second GEMM serves Sum reductions of a scalar pair term times wide
//! reduced-index weights, Σ_j s(i, j) w_j (a kernel times a right-hand side
//! of many columns, as in batched CG): the block's S (rows × tile) is
//! multiplied by the tile's W (tile × cols), instead of forming every
//! s(i, j) w_j and summing it (see [`Weights`]).

use std::ops::Range;

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

/// The buffers of one gram for one work item.
pub struct GramBlock<T> {
    gram: Gram,
    center: Vec<f64>,
    /// Centred rows, column-major (dim columns of `rows`), and their squared norms.
    xs: Vec<T>,
    xx: Vec<f64>,
    /// Centred tile points, column-major (dim columns of `len`), and their squared norms.
    ys: Vec<T>,
    yy: Vec<f64>,
    /// rows × len products of the current tile, row-major.
    g: Vec<T>,
    rows: Range<usize>,
    start: usize,
    len: usize,
}

/// Largest centred squared norm taken by the expansion: |x̃|² + |ỹ|² - 2 G
/// then stays below 4 times it, far from overflow.
fn safe_norm<T: Real>() -> f64 {
    T::max_value().to_double() / 16.0
}

impl<T: Real> GramBlock<T> {
    /// Buffers for `rows` rows and tiles of `tile` points.
    pub fn new(gram: Gram, rows: usize, tile: usize) -> Result<GramBlock<T>> {
        let d = gram.dim;
        Ok(GramBlock {
            gram,
            center: try_filled(Some(d), 0.0)?,
            xs: try_filled(rows.checked_mul(d), T::zero())?,
            xx: try_filled(Some(rows), 0.0)?,
            ys: try_filled(tile.checked_mul(d), T::zero())?,
            yy: try_filled(Some(tile), 0.0)?,
            g: try_filled(rows.checked_mul(tile), T::zero())?,
            rows: 0..0,
            start: 0,
            len: 0,
        })
    }

    /// Loads (and centres) the rows `rows` of the output-index input.
    pub fn load_rows(&mut self, inputs: &[Data<'_, T>], rows: Range<usize>) {
        let (data, d) = (&inputs[self.gram.x], self.gram.dim);
        let column = |c: usize| &data.values[c * data.nrow..(c + 1) * data.nrow];
        self.center.fill(0.0);
        if self.gram.pair == GramPair::SqDist {
            for (c, m) in self.center.iter_mut().enumerate() {
                let finite = column(c)[rows.clone()].iter().map(|v| v.to_double()).filter(|v| v.is_finite());
                let (sum, count) = finite.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
                *m = if count > 0 { sum / count as f64 } else { 0.0 };
            }
        }
        // Column by column: contiguous reads and writes.
        let m = rows.len();
        self.xx[..m].fill(0.0);
        for c in 0..d {
            for (local, &x) in column(c)[rows.clone()].iter().enumerate() {
                let v = x.to_double() - self.center[c];
                self.xx[local] += v * v;
                self.xs[c * m + local] = T::from_double(v);
            }
        }
        self.rows = rows;
    }

    /// Loads the tile of `len` reduced indices at `start` and computes its
    /// products with the rows.
    pub fn load_tile(&mut self, inputs: &[Data<'_, T>], start: usize, len: usize) {
        let (data, d) = (&inputs[self.gram.y], self.gram.dim);
        self.yy[..len].fill(0.0);
        for c in 0..d {
            let column = &data.values[c * data.nrow + start..c * data.nrow + start + len];
            for (t, &y) in column.iter().enumerate() {
                let v = y.to_double() - self.center[c];
                self.yy[t] += v * v;
                self.ys[c * len + t] = T::from_double(v);
            }
        }
        let m = self.rows.len();
        // G (m × len, row-major) = X (m × d, column-major) · Y (d × len, row-major)
        T::gemm(m, d, len, &self.xs[..m * d], [1, m], &self.ys[..len * d], [len, 1], &mut self.g[..m * len], [len, 1]);
        self.start = start;
        self.len = len;
    }

    /// Writes the pair term of row `local` (of the loaded rows) against the
    /// loaded tile into `out` (`len` values).
    pub fn fill_row(&self, inputs: &[Data<'_, T>], local: usize, out: &mut [T]) {
        let (len, limit) = (self.len, safe_norm::<T>());
        let g = &self.g[local * len..(local + 1) * len];
        let out = &mut out[..len];
        match self.gram.pair {
            GramPair::Dot => out.copy_from_slice(g),
            GramPair::SqDist => {
                let xx = self.xx[local];
                if xx.is_nan() || xx > limit {
                    return self.direct_row(inputs, local, out);
                }
                for (t, (o, &gt)) in out.iter_mut().zip(g).enumerate() {
                    let yy = self.yy[t];
                    *o = if yy <= limit {
                        let v = T::from_double(xx + yy) - (gt + gt);
                        // NaN < 0 is false: a NaN would be kept (none reaches here).
                        if v < T::zero() {
                            T::zero()
                        } else {
                            v
                        }
                    } else {
                        self.direct(inputs, self.rows.start + local, self.start + t)
                    };
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
        let (x, y) = (&inputs[self.gram.x], &inputs[self.gram.y]);
        (0..self.gram.dim).fold(T::zero(), |s, c| {
            let diff = x.values[c * x.nrow + row] - y.values[c * y.nrow + point];
            s + diff * diff
        })
    }
}

/// A Sum reduction whose formula is s * w: s of dimension 1 (the slot of the
/// program's root), w the reduced-index input at `var`, of `cols`
/// components. The sum of each tile is S · W; added to the block sum state,
/// it is the Block scheme's tile sum in another order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weights {
    pub var: usize,
    pub cols: usize,
}

/// The buffers of the weights GEMM for one work item.
pub struct WeightsBlock<T> {
    weights: Weights,
    tile: usize,
    /// s of the current tile, one row of `tile` values per output row.
    s: Vec<T>,
    /// The tile's sums, rows × cols, row-major.
    sums: Vec<T>,
}

impl<T: Real> WeightsBlock<T> {
    pub fn new(weights: Weights, rows: usize, tile: usize) -> Result<WeightsBlock<T>> {
        Ok(WeightsBlock {
            weights,
            tile,
            s: try_filled(rows.checked_mul(tile), T::zero())?,
            sums: try_filled(rows.checked_mul(weights.cols), T::zero())?,
        })
    }

    /// Stores s(row, ·) of the current tile (`values`: its `len` values).
    pub fn set_row(&mut self, local: usize, values: &[T]) {
        self.s[local * self.tile..local * self.tile + values.len()].copy_from_slice(values);
    }

    /// The tile's sums for the first `rows` rows: S (rows × len) · W (len ×
    /// cols), W the tile of `len` reduced indices at `start`.
    pub fn multiply(&mut self, inputs: &[Data<'_, T>], rows: usize, start: usize, len: usize) {
        let (w, cols) = (&inputs[self.weights.var], self.weights.cols);
        T::gemm(
            rows, len, cols, &self.s, [self.tile, 1], &w.values[start..], [1, w.nrow], &mut self.sums[..rows * cols], [cols, 1],
        );
    }

    /// The tile's sums of row `local`.
    pub fn row(&self, local: usize) -> &[T] {
        let cols = self.weights.cols;
        &self.sums[local * cols..(local + 1) * cols]
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
