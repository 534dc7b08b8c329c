//! Sums of a scalar term times wide weights, Σ_j s(i, j) w_j (a kernel
//! times a right-hand side of many columns, as in batched CG): per tile, the
//! block's S (rows × tile) times the tile's W (tile × cols), instead of
//! forming every s(i, j) w_j and summing it.
//!
//! Up to [`DIRECT_MAX_COLS`] columns, the product reads S where the rows
//! left it and W in the input's column-major layout: a register block of [`ROWS`] rows × [`COLS`] columns
//! holds, per (row, column), [`LANES`] partial sums over the reduced indices
//! (index t goes to lane t mod LANES; one multiply-add per term, fused
//! where the CPU has FMA), summed in a fixed order at the end of the tile.
//! A GEMM library would copy S into its own panel layout first: S holds one
//! value per pair, and with `matrixmultiply` that copy took as long as the
//! multiply-adds (19% of a Gaussian kernel times 11 columns at D = 3,
//! `perf`).
//!
//! Each tile's sums are added to the Block scheme's state as one block sum,
//! in a fixed order: deterministic, whatever the thread count.

use super::program::{Data, Simd};
use crate::buffer::try_filled;
use crate::error::Result;
use crate::reduction::sum::lanes_total;
use crate::Real;

/// A Sum reduction whose formula is s * w: s of dimension 1 (the slot of the
/// program's root), w the reduced-index input at `var`, of `cols`
/// components.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weights {
    pub var: usize,
    pub cols: usize,
}

/// Most columns of the direct product; above, `matrixmultiply`'s GEMM,
/// whose copy of S costs less than the multiply-adds of many columns
/// (measured on a Gaussian kernel at D = 3, M = N = 2e4: the direct product
/// is faster at 4 and 11 columns, no faster at 32, slower at 55).
const DIRECT_MAX_COLS: usize = 16;

/// Partial sums per (row, column): one AVX-512 register of f64, added up as
/// the Sum reduction adds its own lanes (`lanes_total`).
const LANES: usize = 8;
const _: () = assert!(LANES == 8, "lanes_total adds 8 lanes");
/// Columns of a register block.
const COLS: usize = 4;
/// Rows of a register block with AVX-512 (32 registers: 16 accumulators);
/// 2 otherwise (16 registers).
const ROWS: usize = 4;
/// Reduced indices per chunk: the chunk's rows of S and columns of W (48 ×
/// 128 values, 48 KB in f64, for 32 rows and 16 columns) stay in the L1 or
/// L2 cache while the register blocks go over them.
const CHUNK: usize = 128;

/// The buffers of one work item.
pub struct WeightsBlock<T> {
    weights: Weights,
    tile: usize,
    simd: Simd,
    /// s of the current tile, one row of `tile` values per output row.
    s: Vec<T>,
    /// The tile's partial sums, rows × cols × LANES.
    partial: Vec<T>,
    /// The tile's sums, rows × cols, row-major.
    sums: Vec<T>,
}

impl<T: Real> WeightsBlock<T> {
    pub fn new(weights: Weights, rows: usize, tile: usize, simd: Simd) -> Result<WeightsBlock<T>> {
        let sums = rows.checked_mul(weights.cols);
        Ok(WeightsBlock {
            weights,
            tile,
            simd,
            s: try_filled(rows.checked_mul(tile), T::zero())?,
            partial: if weights.cols > DIRECT_MAX_COLS { Vec::new() } else { try_filled(sums.and_then(|n| n.checked_mul(LANES)), T::zero())? },
            sums: try_filled(sums, T::zero())?,
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
        if cols > DIRECT_MAX_COLS {
            let sums = &mut self.sums[..rows * cols];
            return T::gemm(rows, len, cols, &self.s, [self.tile, 1], &w.values[start..], [1, w.nrow], sums, [cols, 1]);
        }
        let partial = &mut self.partial[..rows * cols * LANES];
        partial.fill(T::zero());
        let product = Product { s: &self.s, s_stride: self.tile, w: &w.values[start..], w_stride: w.nrow, cols };
        weights_product(self.simd, &product, rows, len, partial);
        for (sum, lanes) in self.sums[..rows * cols].iter_mut().zip(partial.chunks_exact(LANES)) {
            *sum = lanes_total(lanes.try_into().expect("LANES partial sums"));
        }
    }

    /// The tile's sums of row `local`.
    pub fn row(&self, local: usize) -> &[T] {
        let cols = self.weights.cols;
        &self.sums[local * cols..(local + 1) * cols]
    }
}

/// The operands of [`weights_product`]: S row-major (`s_stride` per row),
/// W column-major (`w_stride` per column) from the tile's first index.
struct Product<'a, T> {
    s: &'a [T],
    s_stride: usize,
    w: &'a [T],
    w_stride: usize,
    cols: usize,
}

/// `partial += S · W` by lanes for `rows` rows and `len` reduced indices,
/// built for each SIMD level: FMA and 4-row blocks with AVX-512, FMA and
/// 2-row blocks with AVX2, separate multiply and add otherwise (a software
/// FMA would be slow).
#[inline(always)]
fn weights_product<T: Real>(simd: Simd, p: &Product<'_, T>, rows: usize, len: usize, partial: &mut [T]) {
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
    #[inline(never)]
    unsafe fn avx512<T: Real>(p: &Product<'_, T>, rows: usize, len: usize, partial: &mut [T]) {
        product::<T, ROWS, true>(p, rows, len, partial)
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    #[inline(never)]
    unsafe fn avx2<T: Real>(p: &Product<'_, T>, rows: usize, len: usize, partial: &mut [T]) {
        product::<T, 2, true>(p, rows, len, partial)
    }
    #[inline(never)]
    fn portable<T: Real>(p: &Product<'_, T>, rows: usize, len: usize, partial: &mut [T]) {
        product::<T, 2, false>(p, rows, len, partial)
    }
    // SAFETY: a level above Portable is only used where the CPU has its
    // features (`detected_simd`).
    #[cfg(target_arch = "x86_64")]
    match simd {
        Simd::Avx512 => return unsafe { avx512(p, rows, len, partial) },
        Simd::Avx2 => return unsafe { avx2(p, rows, len, partial) },
        Simd::Portable => {}
    }
    let _ = simd;
    portable(p, rows, len, partial)
}

#[inline(always)]
fn product<T: Real, const R: usize, const FMA: bool>(p: &Product<'_, T>, rows: usize, len: usize, partial: &mut [T]) {
    for t0 in (0..len).step_by(CHUNK) {
        let n = CHUNK.min(len - t0);
        let mut c = 0;
        while c + COLS <= p.cols {
            rows_against::<T, R, COLS, FMA>(p, rows, c, t0, n, partial);
            c += COLS;
        }
        if c + 2 <= p.cols {
            rows_against::<T, R, 2, FMA>(p, rows, c, t0, n, partial);
            c += 2;
        }
        if c < p.cols {
            rows_against::<T, R, 1, FMA>(p, rows, c, t0, n, partial);
        }
    }
}

/// Every row against columns `c..c + C` for the reduced indices `t0..t0 + n`.
#[inline(always)]
fn rows_against<T: Real, const R: usize, const C: usize, const FMA: bool>(
    p: &Product<'_, T>,
    rows: usize,
    c: usize,
    t0: usize,
    n: usize,
    partial: &mut [T],
) {
    let w: [&[T]; C] = std::array::from_fn(|k| &p.w[(c + k) * p.w_stride + t0..(c + k) * p.w_stride + t0 + n]);
    let mut r = 0;
    while r + R <= rows {
        register_block::<T, R, C, FMA>(p, r, c, t0, &w, partial);
        r += R;
    }
    for r in r..rows {
        register_block::<T, 1, C, FMA>(p, r, c, t0, &w, partial);
    }
}

/// Rows `r..r + R` against the columns `w` (from column `c`).
#[inline(always)]
fn register_block<T: Real, const R: usize, const C: usize, const FMA: bool>(
    p: &Product<'_, T>,
    r: usize,
    c: usize,
    t0: usize,
    w: &[&[T]; C],
    partial: &mut [T],
) {
    let n = w[0].len();
    let at = |k: usize, j: usize| ((r + k) * p.cols + c + j) * LANES;
    let mut acc = [[[T::zero(); LANES]; C]; R];
    for (k, a) in acc.iter_mut().enumerate() {
        for (j, lanes) in a.iter_mut().enumerate() {
            lanes.copy_from_slice(&partial[at(k, j)..at(k, j) + LANES]);
        }
    }
    let s: [&[T]; R] = std::array::from_fn(|k| &p.s[(r + k) * p.s_stride + t0..(r + k) * p.s_stride + t0 + n]);
    let madd = |x: T, y: T, a: T| if FMA { x.mul_add(y, a) } else { x * y + a };
    let full = n / LANES * LANES;
    // Raw pointers: R + C slices with their lengths held more values than
    // there are general registers, and the loop reloaded them from the
    // stack at every step.
    let sp: [*const T; R] = std::array::from_fn(|k| s[k].as_ptr());
    let wp: [*const T; C] = std::array::from_fn(|j| w[j].as_ptr());
    for t in (0..full).step_by(LANES) {
        // SAFETY: t + LANES <= full <= n, the length of every s[k] and w[j].
        let lanes = |v: *const T| -> [T; LANES] { unsafe { std::ptr::read_unaligned(v.add(t) as *const [T; LANES]) } };
        let sv: [[T; LANES]; R] = std::array::from_fn(|k| lanes(sp[k]));
        let wv: [[T; LANES]; C] = std::array::from_fn(|j| lanes(wp[j]));
        for k in 0..R {
            for j in 0..C {
                for l in 0..LANES {
                    acc[k][j][l] = madd(sv[k][l], wv[j][l], acc[k][j][l]);
                }
            }
        }
    }
    for (k, a) in acc.iter().enumerate() {
        for (j, lanes) in a.iter().enumerate() {
            partial[at(k, j)..at(k, j) + LANES].copy_from_slice(lanes);
        }
    }
    // The last n mod LANES indices, in memory (a variable lane index into
    // `acc` would keep it out of registers).
    for t in full..n {
        for (k, sk) in s.iter().enumerate() {
            for (j, wj) in w.iter().enumerate() {
                let o = at(k, j) + t - full;
                partial[o] = madd(sk[t], wj[t], partial[o]);
            }
        }
    }
}
