//! Indexing and assembly: selecting, inserting and concatenating components.
//! Primitives: `Gather` (select components by a table, 0 where the table has
//! no entry), `Concat` and `OneHot`. Positions are 0-based, as in KeOps.

use crate::error::Result;
use crate::formula::{Graph, NodeId};
use crate::ops::{Args, Def, Param};
use crate::Real;

use Param::{Int, F};

/// CPU loop of `Gather`: component k of the output is component `table[k]`
/// of the input (runs of `len` values spaced by the strides), or 0.
pub fn gather<T: Real>(xs: &[T], in_stride: usize, table: &[Option<u32>], out: &mut [T], out_stride: usize, len: usize) {
    for (k, entry) in table.iter().enumerate() {
        let o = &mut out[k * out_stride..k * out_stride + len];
        match entry {
            Some(c) => {
                let c = *c as usize;
                o.copy_from_slice(&xs[c * in_stride..c * in_stride + len]);
            }
            None => o.fill(T::zero()),
        }
    }
}

/// CPU loop of `OneHot(d)`: `out[c] = 1` where c = round(x), else 0.
pub fn one_hot<T: Real>(xs: &[T], dim: usize, out: &mut [T], stride: usize, len: usize) {
    for c in 0..dim {
        let v = T::from_double(c as f64);
        for (o, &x) in out[c * stride..c * stride + len].iter_mut().zip(&xs[..len]) {
            *o = if x.round() == v { T::one() } else { T::zero() };
        }
    }
}

/// Components `start .. start + len` of x.
fn extract(g: &mut Graph, a: &Args<'_>, x: NodeId, start: i64, len: i64) -> Result<NodeId> {
    let dim = g.dim(x) as i64;
    if start < 0 || len < 1 || start + len > dim {
        return Err(a.error(format!(
            "cannot take {len} component(s) from position {start} of a vector of dimension {dim}"
        )));
    }
    let table = (start..start + len).map(|c| Some(c as u32)).collect();
    g.gather(x, table)
}

/// x placed at `start` in a vector of zeros of dimension `dim`.
fn insert(g: &mut Graph, a: &Args<'_>, x: NodeId, start: i64, dim: i64) -> Result<NodeId> {
    let len = g.dim(x) as i64;
    if start < 0 || start + len > dim {
        return Err(a.error(format!(
            "cannot place a vector of dimension {len} at position {start} of a vector of dimension {dim}"
        )));
    }
    let table = (0..dim).map(|k| (k >= start && k < start + len).then(|| (k - start) as u32)).collect();
    g.gather(x, table)
}

fn scalar_arg(g: &Graph, a: &Args<'_>) -> Result<NodeId> {
    let x = a.node(0);
    if g.dim(x) != 1 {
        return Err(a.dim_error(format!("needs a scalar (dimension 1), got dimension {}", g.dim(x))));
    }
    Ok(x)
}

pub static DEFS: &[Def] = &[
    Def {
        name: "Elem",
        r_name: "elem",
        params: &[F, Int],
        optional: 0,
        usage: "Elem(x, m)",
        dim_rule: "1; 0 <= m < dim(x)",
        doc: "component m of x",
        build: |g, a| extract(g, a, a.node(0), a.int(1), 1),
    },
    Def {
        name: "ElemT",
        r_name: "elemT",
        params: &[F, Int, Int],
        optional: 0,
        usage: "ElemT(x, n, m)",
        dim_rule: "n; dim(x) = 1, 0 <= m < n",
        doc: "vector of dimension n, x at position m, zeros elsewhere",
        build: |g, a| {
            let x = scalar_arg(g, a)?;
            insert(g, a, x, a.int(2), a.int(1))
        },
    },
    Def {
        name: "Extract",
        r_name: "extract",
        params: &[F, Int, Int],
        optional: 0,
        usage: "Extract(x, m, d)",
        dim_rule: "d; m + d <= dim(x)",
        doc: "components m, ..., m + d - 1 of x",
        build: |g, a| extract(g, a, a.node(0), a.int(1), a.int(2)),
    },
    Def {
        name: "ExtractT",
        r_name: "extractT",
        params: &[F, Int, Int],
        optional: 0,
        usage: "ExtractT(x, m, d)",
        dim_rule: "d; m + dim(x) <= d",
        doc: "vector of dimension d, x at positions m, ..., zeros elsewhere",
        build: |g, a| insert(g, a, a.node(0), a.int(1), a.int(2)),
    },
    Def {
        name: "Concat",
        r_name: "concat",
        params: &[F, F],
        optional: 0,
        usage: "Concat(x, y)",
        dim_rule: "dim(x) + dim(y)",
        doc: "the components of x, then those of y",
        build: |g, a| Ok(g.concat(a.node(0), a.node(1))),
    },
    Def {
        name: "OneHot",
        r_name: "one_hot",
        params: &[F, Int],
        optional: 0,
        usage: "OneHot(x, d)",
        dim_rule: "d; dim(x) = 1",
        doc: "vector of dimension d with 1 at position round(x), 0 elsewhere (all 0 if out of range)",
        build: |g, a| {
            let x = scalar_arg(g, a)?;
            let d = a.int_in(1, "the dimension", 1, i32::MAX as i64)?;
            Ok(g.one_hot(x, d))
        },
    },
];
