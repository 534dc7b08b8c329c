//! Min, Max, ArgMin, ArgMax, Min_ArgMin, Max_ArgMax: component-wise, with the
//! index of the selected value.
//!
//! Order: NaN ranks after every number (as R's `order()` and `which.min()`),
//! so a NaN is returned only when every value is NaN; ties go to the smallest
//! index. State: `dim` values, then `dim` indices (EMPTY before any push).

use super::{r_index, Tile, EMPTY};
use crate::Real;

/// Whether (a, ia) comes strictly before (b, ib) in the reduction's order.
#[inline]
pub fn ranks_before<T: Real>(max: bool, a: T, ia: usize, b: T, ib: usize) -> bool {
    if ib == EMPTY {
        return ia != EMPTY;
    }
    if ia == EMPTY {
        return false;
    }
    match (a.is_nan(), b.is_nan()) {
        (false, true) => true,
        (true, false) => false,
        (true, true) => ia < ib,
        (false, false) if a == b => ia < ib,
        (false, false) => (a < b) != max,
    }
}

pub fn push<T: Real>(max: bool, dim: usize, v: &mut [T], k: &mut [usize], tile: &Tile<'_, T>) {
    for c in 0..dim {
        let (mut best, mut arg) = (v[c], k[c]);
        for (t, &x) in tile.f_row(c).iter().enumerate() {
            // Fast path: a number strictly better than a number.
            let better = if max { x > best } else { x < best };
            if better || ((arg == EMPTY || best.is_nan()) && ranks_before(max, x, tile.start + t, best, arg)) {
                best = x;
                arg = tile.start + t;
            }
        }
        v[c] = best;
        k[c] = arg;
    }
}

pub fn merge<T: Real>(max: bool, v: &mut [T], k: &mut [usize], ov: &[T], ok: &[usize]) {
    for c in 0..v.len() {
        if ranks_before(max, ov[c], ok[c], v[c], k[c]) {
            v[c] = ov[c];
            k[c] = ok[c];
        }
    }
}

pub fn finalize<T: Real>(
    max: bool,
    want_values: bool,
    want_indices: bool,
    v: &[T],
    k: &[usize],
    values: &mut [f64],
    indices: &mut [i32],
) {
    let empty_value = if max { f64::NEG_INFINITY } else { f64::INFINITY };
    for c in 0..v.len() {
        if want_values {
            values[c] = if k[c] == EMPTY { empty_value } else { v[c].to_double() };
        }
        if want_indices {
            indices[c] = r_index(k[c]);
        }
    }
}

/// CUDA C: initial state and the push of `F[c]` at index `j` (`keops_before`
/// in the kernel prelude mirrors [`ranks_before`]; -1 stands for EMPTY).
pub fn cuda(max: bool, dim: usize) -> (String, String) {
    (
        format!("for (int c = 0; c < {dim}; c++) {{ acc[c] = (T)NAN; arg[c] = -1; }}"),
        format!(
            "for (int c = 0; c < {dim}; c++) if (keops_before({max}, F[c], j, acc[c], arg[c])) {{ acc[c] = F[c]; arg[c] = j; }}"
        ),
    )
}
