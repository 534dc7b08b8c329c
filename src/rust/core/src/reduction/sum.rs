//! Sum reduction: s_c = Σ_j F_c(j), component-wise.
//!
//! State: `dim` running sums, followed for the Kahan scheme by `dim`
//! compensations (the true sum is s − comp). Once the running sum is not
//! finite (an infinite or NaN term, or an overflow), the compensation stays
//! 0: computed, it would be Inf − Inf = NaN, and the result must be the plain
//! sum's (±Inf, or NaN when both infinities or a NaN were added).

use super::{Slot, SumScheme, Tile};
use crate::Real;

pub fn state_len(dim: usize, scheme: SumScheme) -> (usize, usize) {
    match scheme {
        SumScheme::Kahan => (2 * dim, 0),
        SumScheme::Block | SumScheme::Direct => (dim, 0),
    }
}

/// Sum of a run with eight independent accumulators, so that the loop
/// vectorizes; the grouping is fixed, so results do not depend on threads.
#[inline(always)]
pub fn sum_run<T: Real>(xs: &[T]) -> T {
    grouped_sum(xs, xs, |x, _| x)
}

/// [`sum_run`] of the products `f[t] * g[t]`: the same result as summing a
/// stored `f * g`, without storing it.
#[inline(always)]
fn dot_run<T: Real>(f: &[T], g: &[T]) -> T {
    grouped_sum(f, g, |x, y| x * y)
}

/// The total of 8 partial sums (lane t holding the terms t mod 8), in the
/// fixed pairwise order of [`sum_run`].
#[inline(always)]
pub(crate) fn lanes_total<T: Real>(acc: &[T; 8]) -> T {
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

/// The grouping of [`sum_run`] over the terms `term(f[t], g[t])`.
#[inline(always)]
fn grouped_sum<T: Real>(f: &[T], g: &[T], term: impl Fn(T, T) -> T) -> T {
    let mut acc = [T::zero(); 8];
    let (fc, gc) = (f.chunks_exact(8), g.chunks_exact(8));
    let (frest, grest) = (fc.remainder(), gc.remainder());
    for (fs, gs) in fc.zip(gc) {
        for ((a, &x), &y) in acc.iter_mut().zip(fs).zip(gs) {
            *a = *a + term(x, y);
        }
    }
    let mut total = lanes_total(&acc);
    for (&x, &y) in frest.iter().zip(grest) {
        total = total + term(x, y);
    }
    total
}

/// Adds `x` to the compensated sum (`s`, `comp`).
#[inline]
fn kahan_add<T: Real>(s: &mut T, comp: &mut T, x: T) {
    let y = x - *comp;
    let t = *s + y;
    *comp = if t.is_finite() { (t - *s) - y } else { T::zero() };
    *s = t;
}

/// Pushes a tile. With `tile.g` (a Sum of s * b, [`crate::cpu::GemmUse::dot_weights`]),
/// the values pushed are `f[t] * g[t]` (dimension 1).
#[inline(always)]
pub fn push<T: Real>(scheme: SumScheme, dim: usize, v: &mut [T], tile: &Tile<'_, T>) {
    if let Some(g) = tile.g {
        let (f, g) = (tile.f_row(0), &g[..tile.len]);
        match scheme {
            SumScheme::Block => v[0] = v[0] + dot_run(f, g),
            SumScheme::Direct => {
                for (&x, &y) in f.iter().zip(g) {
                    v[0] = v[0] + x * y;
                }
            }
            SumScheme::Kahan => {
                let (sums, comps) = v.split_at_mut(1);
                for (&x, &y) in f.iter().zip(g) {
                    kahan_add(&mut sums[0], &mut comps[0], x * y);
                }
            }
        }
        return;
    }
    for c in 0..dim {
        let row = tile.f_row(c);
        match scheme {
            SumScheme::Block => v[c] = v[c] + sum_run(row),
            SumScheme::Direct => {
                for &x in row {
                    v[c] = v[c] + x;
                }
            }
            SumScheme::Kahan => {
                let (sums, comps) = v.split_at_mut(dim);
                for &x in row {
                    kahan_add(&mut sums[c], &mut comps[c], x);
                }
            }
        }
    }
}

pub fn merge<T: Real>(scheme: SumScheme, dim: usize, v: &mut [T], other: &[T]) {
    match scheme {
        SumScheme::Block | SumScheme::Direct => {
            for (a, &b) in v.iter_mut().zip(other) {
                *a = *a + b;
            }
        }
        SumScheme::Kahan => {
            let (sums, comps) = v.split_at_mut(dim);
            for c in 0..dim {
                kahan_add(&mut sums[c], &mut comps[c], other[c] - other[dim + c]);
            }
        }
    }
}

pub fn finalize<T: Real>(scheme: SumScheme, dim: usize, v: &[T], out: &mut [f64]) {
    for c in 0..dim {
        let s = match scheme {
            SumScheme::Kahan => v[c] - v[dim + c],
            SumScheme::Block | SumScheme::Direct => v[c],
        };
        out[c] = s.to_double();
    }
}

/// CUDA C: initial state and the push of one value `F[c]` (see `cuda/`).
/// The block scheme sums each tile of the reduced index on its own (`blk`)
/// and adds it to the running sum at the tile's end ([`cuda_end_tile`]),
/// as the CPU does.
pub fn cuda(scheme: SumScheme, dim: usize) -> (String, String) {
    let init = format!("for (int c = 0; c < {}; c++) acc[c] = (T)0;", state_len(dim, scheme).0);
    match scheme {
        SumScheme::Kahan => (
            init,
            format!(
                "for (int c = 0; c < {dim}; c++) {{ T y = F[c] - acc[{dim} + c]; T t = acc[c] + y; \
                 acc[{dim} + c] = isfinite(t) ? (t - acc[c]) - y : (T)0; acc[c] = t; }}"
            ),
        ),
        SumScheme::Block => (
            format!("T blk[{dim}]; for (int c = 0; c < {dim}; c++) blk[c] = (T)0; {init}"),
            format!("for (int c = 0; c < {dim}; c++) blk[c] += F[c];"),
        ),
        SumScheme::Direct => (init, format!("for (int c = 0; c < {dim}; c++) acc[c] += F[c];")),
    }
}

/// CUDA C run at the end of each tile of the reduced index.
pub fn cuda_end_tile(scheme: SumScheme, dim: usize) -> String {
    match scheme {
        SumScheme::Block => format!("for (int c = 0; c < {dim}; c++) {{ acc[c] += blk[c]; blk[c] = (T)0; }}"),
        SumScheme::Kahan | SumScheme::Direct => String::new(),
    }
}

/// Slots of a chunk of `width` components (see `Monoid::output_chunk`):
/// its sums, then its compensations.
pub fn chunk_slots(scheme: SumScheme, dim: usize, width: usize) -> Vec<Slot> {
    match scheme {
        SumScheme::Kahan => vec![Slot::Components { from: 0, to: 0 }, Slot::Components { from: width, to: dim }],
        SumScheme::Block | SumScheme::Direct => vec![Slot::Components { from: 0, to: 0 }],
    }
}
