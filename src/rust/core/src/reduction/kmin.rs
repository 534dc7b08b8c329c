//! KMin, ArgKMin, KMin_ArgKMin: the K smallest values of each component,
//! sorted ascending, in the order of [`minmax::ranks_before`] (NaN last, ties
//! to the smallest index).
//!
//! State: for component c, slots `c*K .. (c+1)*K` hold the sorted values and
//! indices. Output column `r*dim + c` is the r-th smallest of component c
//! (the C-order flattening of a (K, dim) array, as KeOps).

use super::minmax::ranks_before;
use super::{r_index, Tile};
use crate::Real;

/// Values compared at once with the K-th before any insertion.
const REJECT_BLOCK: usize = 32;

/// Inserts (x, ix) into the sorted slots if it ranks among the K best.
#[inline]
fn insert<T: Real>(vs: &mut [T], ks: &mut [usize], x: T, ix: usize) {
    let last = vs.len() - 1;
    if !ranks_before(false, x, ix, vs[last], ks[last]) {
        return;
    }
    let mut r = last;
    while r > 0 && ranks_before(false, x, ix, vs[r - 1], ks[r - 1]) {
        vs[r] = vs[r - 1];
        ks[r] = ks[r - 1];
        r -= 1;
    }
    vs[r] = x;
    ks[r] = ix;
}

#[inline(always)]
pub fn push<T: Real>(kk: usize, dim: usize, v: &mut [T], k: &mut [usize], tile: &Tile<'_, T>) {
    for c in 0..dim {
        let (vs, ks) = (&mut v[c * kk..(c + 1) * kk], &mut k[c * kk..(c + 1) * kk]);
        for (b, chunk) in tile.f_row(c).chunks(REJECT_BLOCK).enumerate() {
            // Fast rejection: numbers not below the current K-th (indices
            // only grow within a push, so a tie keeps the earlier index; a
            // NaN is never below), a block at a time without branches.
            let worst = vs[kk - 1];
            if !worst.is_nan() && !chunk.iter().fold(false, |any, &x| any | (x < worst)) {
                continue;
            }
            for (t, &x) in chunk.iter().enumerate() {
                let worst = vs[kk - 1];
                if x < worst || worst.is_nan() {
                    insert(vs, ks, x, tile.start + b * REJECT_BLOCK + t);
                }
            }
        }
    }
}

pub fn merge<T: Real>(kk: usize, dim: usize, v: &mut [T], k: &mut [usize], ov: &[T], ok: &[usize]) {
    for c in 0..dim {
        let (vs, ks) = (&mut v[c * kk..(c + 1) * kk], &mut k[c * kk..(c + 1) * kk]);
        for r in c * kk..(c + 1) * kk {
            insert(vs, ks, ov[r], ok[r]);
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub fn finalize<T: Real>(
    kk: usize,
    dim: usize,
    want_values: bool,
    want_indices: bool,
    v: &[T],
    k: &[usize],
    values: &mut [f64],
    indices: &mut [i32],
) {
    for c in 0..dim {
        for r in 0..kk {
            let (slot, col) = (c * kk + r, r * dim + c);
            if want_values {
                values[col] = v[slot].to_double();
            }
            if want_indices {
                indices[col] = r_index(k[slot]);
            }
        }
    }
}

/// CUDA C: initial state and the insertion of `F[c]` at index `j` into the
/// K sorted slots of each component (as [`insert`]).
pub fn cuda(kk: usize, dim: usize) -> (String, String) {
    (
        format!("for (int c = 0; c < {}; c++) {{ acc[c] = (T)NAN; arg[c] = -1; }}", kk * dim),
        format!(
            "for (int c = 0; c < {dim}; c++) {{ T* vs = acc + c * {kk}; long long* ks = arg + c * {kk}; T x = F[c]; \
             if (keops_before(false, x, j, vs[{last}], ks[{last}])) {{ int r = {last}; \
             while (r > 0 && keops_before(false, x, j, vs[r - 1], ks[r - 1])) {{ vs[r] = vs[r - 1]; ks[r] = ks[r - 1]; r--; }} \
             vs[r] = x; ks[r] = j; }} }}",
            last = kk - 1
        ),
    )
}
