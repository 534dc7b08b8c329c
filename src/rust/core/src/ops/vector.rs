//! Operations over a vector's components. The primitives are `Sum` (of
//! groups of components) and [`Extremum`]; the other entries are defined from
//! them and from element-wise operations.

use crate::error::Result;
use crate::formula::{Graph, NodeId};
use crate::ops::{arith, linalg, Args, Binary, Def, Op, Param, Unary};
use crate::Real;

use Param::{Int, F};

/// Min, max, argmin or argmax over a vector's components (dimension 1).
/// NaN ranks after every number; ties go to the smallest position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Extremum {
    Min,
    Max,
    ArgMin,
    ArgMax,
}

impl Extremum {
    fn is_max(self) -> bool {
        matches!(self, Extremum::Max | Extremum::ArgMax)
    }

    fn is_arg(self) -> bool {
        matches!(self, Extremum::ArgMin | Extremum::ArgMax)
    }

    /// Whether `x` beats `best` (strictly, so that ties keep the first).
    #[inline(always)]
    fn beats<T: Real>(self, x: T, best: T) -> bool {
        if best.is_nan() {
            return !x.is_nan();
        }
        if self.is_max() {
            x > best
        } else {
            x < best
        }
    }

    /// CPU loop over `dim` runs of `len` values spaced by `stride`; `best`
    /// is scratch of at least `len` values.
    #[inline(always)]
    pub fn map<T: Real>(self, xs: &[T], dim: usize, stride: usize, len: usize, out: &mut [T], best: &mut [T]) {
        best[..len].copy_from_slice(&xs[..len]);
        out[..len].fill(T::zero());
        for c in 1..dim {
            let idx = T::from_double(c as f64);
            for t in 0..len {
                let x = xs[c * stride + t];
                if self.beats(x, best[t]) {
                    best[t] = x;
                    out[t] = idx;
                }
            }
        }
        if !self.is_arg() {
            out[..len].copy_from_slice(&best[..len]);
        }
    }
}

/// CPU loop of the primitive `Sum(group)` over runs of `len` values spaced by
/// `stride`: `out[g * stride + t] = Σ_{c < group} xs[(g * group + c) * stride + t]`.
#[inline(always)]
pub fn sum_groups<T: Real>(xs: &[T], out_dim: usize, group: usize, stride: usize, len: usize, out: &mut [T]) {
    for g in 0..out_dim {
        let o = &mut out[g * stride..g * stride + len];
        let first = g * group * stride;
        o.copy_from_slice(&xs[first..first + len]);
        for c in 1..group {
            let row = &xs[first + c * stride..first + c * stride + len];
            for (o, &x) in o.iter_mut().zip(row) {
                *o = *o + x;
            }
        }
    }
}

/// The element-wise pairs whose sums over components run in one pass
/// ([`sum_pairs`]): the sums inside SqDist, Scalprod and L1 distances, which
/// dominate kernel and kNN formulas. The terms are computed exactly as the
/// unfused operations would compute them, so results do not change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairSum {
    /// Σ (x - y)²
    SquaredDifference,
    /// Σ x y
    Product,
    /// Σ |x - y|
    AbsoluteDifference,
}

impl PairSum {
    /// The term in CUDA C, of `{a}` and `{b}` (`{f}`: the single-precision suffix).
    pub fn cuda(self) -> &'static str {
        match self {
            PairSum::SquaredDifference => "(({a}) - ({b})) * (({a}) - ({b}))",
            PairSum::Product => "({a}) * ({b})",
            PairSum::AbsoluteDifference => "fabs{f}(({a}) - ({b}))",
        }
    }

    /// The pair sum computed by node `id`: Σ over all components of
    /// `u(b(x, y))`, `b(x, y)` or `Square(x)`. Gives the pair, x, y and the element-wise
    /// nodes in between (whether they have other uses is the caller's
    /// business).
    pub fn of_node(g: &Graph, id: NodeId) -> Option<(PairSum, NodeId, NodeId, Vec<NodeId>)> {
        let node = g.node(id);
        let Op::Sum(group) = node.op else { return None };
        let arg = node.args[0];
        if group != g.dim(arg) || group < 2 {
            return None;
        }
        let (unary, binary) = match g.node(arg).op {
            Op::Unary(u) => (Some(u), g.node(arg).args[0]),
            Op::Binary(_) => (None, arg),
            _ => return None,
        };
        let Op::Binary(b) = g.node(binary).op else {
            // Σ x² (SqNorm2) is the pair sum Σ x x.
            let x = g.node(arg).args[0];
            return (unary == Some(Unary::Square)).then(|| (PairSum::Product, x, x, vec![arg]));
        };
        let pair = PairSum::recognize(b, unary)?;
        let between = if unary.is_some() { vec![arg, binary] } else { vec![arg] };
        Some((pair, g.node(binary).args[0], g.node(binary).args[1], between))
    }

    /// The pair computed by `u(b(x, y))` (`u` absent: `b(x, y)`), if it is one.
    pub fn recognize(b: Binary, u: Option<Unary>) -> Option<PairSum> {
        match (b, u) {
            (Binary::Subtract, Some(Unary::Square)) => Some(PairSum::SquaredDifference),
            (Binary::Mult, None) => Some(PairSum::Product),
            (Binary::Subtract, Some(Unary::Abs)) => Some(PairSum::AbsoluteDifference),
            _ => None,
        }
    }
}

/// One side of a pair sum: `values[c * stride + k]` is component c at tile
/// position k (a wide slot), or `values[c * step]` for every k (a narrow
/// one). Dimension-1 operands are broadcast with a stride or step of 0.
#[derive(Clone, Copy)]
pub enum Side<'a, T> {
    Wide { values: &'a [T], stride: usize },
    Narrow { values: &'a [T], step: usize },
}

/// Positions of the tile handled together: the partial sums of a block stay
/// in registers while the components are added.
const PAIR_LANES: usize = 16;

/// `out[k] = Σ_c pair(x_c[k], y_c[k])` for k < len, block by block, adding
/// the components in order (as [`sum_groups`] does). Wide sides and `out`
/// must extend to `len` rounded up to a multiple of 16 (tiles are): the last
/// block also computes positions beyond `len`, which callers ignore.
#[inline(always)]
pub fn sum_pairs<T: Real>(pair: PairSum, dim: usize, x: Side<'_, T>, y: Side<'_, T>, len: usize, out: &mut [T]) {
    match pair {
        PairSum::SquaredDifference => sum_pairs_of(dim, x, y, len, out, |a, b| (a - b) * (a - b)),
        PairSum::Product => sum_pairs_of(dim, x, y, len, out, |a, b| a * b),
        PairSum::AbsoluteDifference => sum_pairs_of(dim, x, y, len, out, |a, b| (a - b).abs()),
    }
}

#[inline(always)]
fn sum_pairs_of<T: Real>(dim: usize, x: Side<'_, T>, y: Side<'_, T>, len: usize, out: &mut [T], f: impl Fn(T, T) -> T) {
    // One monomorphic loop per shape of the operands, so that each vectorizes.
    match (x, y) {
        (Side::Wide { values: xv, stride: xs }, Side::Wide { values: yv, stride: ys }) => {
            pair_blocks(dim, len, out, &f, |c, at| wide_lanes(xv, xs, c, at), |c, at| wide_lanes(yv, ys, c, at))
        }
        (Side::Narrow { values: xv, step: xs }, Side::Wide { values: yv, stride: ys }) => {
            pair_blocks(dim, len, out, &f, |c, _| [xv[c * xs]; PAIR_LANES], |c, at| wide_lanes(yv, ys, c, at))
        }
        (Side::Wide { values: xv, stride: xs }, Side::Narrow { values: yv, step: ys }) => {
            pair_blocks(dim, len, out, &f, |c, at| wide_lanes(xv, xs, c, at), |c, _| [yv[c * ys]; PAIR_LANES])
        }
        (Side::Narrow { values: xv, step: xs }, Side::Narrow { values: yv, step: ys }) => {
            pair_blocks(dim, len, out, &f, |c, _| [xv[c * xs]; PAIR_LANES], |c, _| [yv[c * ys]; PAIR_LANES])
        }
    }
}

#[inline(always)]
fn wide_lanes<T: Real>(values: &[T], stride: usize, c: usize, at: usize) -> [T; PAIR_LANES] {
    values[c * stride + at..][..PAIR_LANES].try_into().expect("a block of lanes")
}

/// The sums block by block, components in order. Dimensions 1 to 4 (points
/// in the plane or in space) get a loop of their own, whose components
/// unroll and whose narrow operands stay in registers: the same sums in the
/// same order, without the per-component loop around a few instructions.
#[inline(always)]
fn pair_blocks<T: Real>(
    dim: usize,
    len: usize,
    out: &mut [T],
    f: &impl Fn(T, T) -> T,
    x: impl Fn(usize, usize) -> [T; PAIR_LANES],
    y: impl Fn(usize, usize) -> [T; PAIR_LANES],
) {
    match dim {
        1 => pair_blocks_of::<T, 1>(1, len, out, f, x, y),
        2 => pair_blocks_of::<T, 2>(2, len, out, f, x, y),
        3 => pair_blocks_of::<T, 3>(3, len, out, f, x, y),
        4 => pair_blocks_of::<T, 4>(4, len, out, f, x, y),
        _ => pair_blocks_of::<T, 0>(dim, len, out, f, x, y),
    }
}

/// [`pair_blocks`] for `D` components (0: `dim`, known at run time only).
#[inline(always)]
fn pair_blocks_of<T: Real, const D: usize>(
    dim: usize,
    len: usize,
    out: &mut [T],
    f: &impl Fn(T, T) -> T,
    x: impl Fn(usize, usize) -> [T; PAIR_LANES],
    y: impl Fn(usize, usize) -> [T; PAIR_LANES],
) {
    let dim = if D > 0 { D } else { dim };
    for (b, o) in out[..len.div_ceil(PAIR_LANES) * PAIR_LANES].chunks_exact_mut(PAIR_LANES).enumerate() {
        let mut acc = [T::zero(); PAIR_LANES];
        for c in 0..dim {
            let (xs, ys) = (x(c, b * PAIR_LANES), y(c, b * PAIR_LANES));
            for k in 0..PAIR_LANES {
                acc[k] = acc[k] + f(xs[k], ys[k]);
            }
        }
        o.copy_from_slice(&acc);
    }
}

/// rkeops' "same" rule (Scalprod, written `|` in its messages).
fn same_dims(a: &Args<'_>, g: &Graph, x: NodeId, y: NodeId, label: &str) -> Result<()> {
    let (dx, dy) = (g.dim(x), g.dim(y));
    if dx != dy {
        return Err(arith::same_error(label, &[dx, dy], a.column));
    }
    Ok(())
}

/// `x - y` under rkeops' "sameor1" rule (SqDist, WeightedSqDist), with
/// the error naming the operation.
fn difference(g: &mut Graph, a: &Args<'_>, x: NodeId, y: NodeId) -> Result<NodeId> {
    let (dx, dy) = (g.dim(x), g.dim(y));
    if arith::broadcast_dim(dx, dy).is_none() {
        return Err(arith::same_or_1_error(a.def.name, &[dx, dy], a.column));
    }
    g.binary(Binary::Subtract, x, y, a.column)
}

fn sq_norm(g: &mut Graph, x: NodeId) -> Result<NodeId> {
    let sq = g.unary(Unary::Square, x)?;
    g.sum(sq)
}

fn scalprod(g: &mut Graph, x: NodeId, y: NodeId) -> Result<NodeId> {
    let p = g.binary(Binary::Mult, x, y, None)?;
    g.sum(p)
}

/// x' S x with S isotropic (dim 1), diagonal (dim d) or full (dim d², row-major).
fn weighted_sq_norm(g: &mut Graph, a: &Args<'_>, s: NodeId, x: NodeId) -> Result<NodeId> {
    let (ds, dx) = (g.dim(s), g.dim(x));
    if ds == 1 {
        let n = sq_norm(g, x)?;
        g.binary(Binary::Mult, s, n, None)
    } else if ds == dx {
        let sx = g.binary(Binary::Mult, s, x, None)?;
        scalprod(g, sx, x)
    } else if ds == dx * dx {
        let sx = linalg::mat_vec(g, s, x)?;
        scalprod(g, x, sx)
    } else {
        Err(a.dim_error(format!(
            "the weights must have dimension 1 (isotropic), {dx} (diagonal) or {} (full matrix) for a vector of dimension {dx}, got {ds}",
            dx * dx
        )))
    }
}

fn extremum(g: &mut Graph, a: &Args<'_>, e: Extremum) -> Result<NodeId> {
    Ok(g.extremum(e, a.node(0)))
}

pub static DEFS: &[Def] = &[
    Def {
        name: "Sum",
        r_name: "sum",
        params: &[F],
        optional: 0,
        usage: "Sum(x)",
        dim_rule: "1",
        doc: "sum of the components",
        build: |g, a| g.sum(a.node(0)),
    },
    Def {
        name: "SqNorm2",
        r_name: "sqnorm2",
        params: &[F],
        optional: 0,
        usage: "SqNorm2(x)",
        dim_rule: "1",
        doc: "squared Euclidean norm",
        build: |g, a| sq_norm(g, a.node(0)),
    },
    Def {
        name: "Norm2",
        r_name: "norm2",
        params: &[F],
        optional: 0,
        usage: "Norm2(x)",
        dim_rule: "1",
        doc: "Euclidean norm",
        build: |g, a| {
            let n = sq_norm(g, a.node(0))?;
            g.unary(Unary::Sqrt, n)
        },
    },
    Def {
        name: "Normalize",
        r_name: "normalize",
        params: &[F],
        optional: 0,
        usage: "Normalize(x)",
        dim_rule: "dim(x)",
        doc: "x / |x|, the zero vector for x = 0",
        build: |g, a| {
            let x = a.node(0);
            let n = sq_norm(g, x)?;
            let r = g.unary(Unary::Rsqrt, n)?;
            g.binary(Binary::Mult, x, r, None)
        },
    },
    Def {
        name: "SqDist",
        r_name: "sqdist",
        params: &[F, F],
        optional: 0,
        usage: "SqDist(x, y)",
        dim_rule: "1; dim(x) = dim(y), or either is 1",
        doc: "squared Euclidean distance, Sum((x - y)^2)",
        build: |g, a| {
            let d = difference(g, a, a.node(0), a.node(1))?;
            sq_norm(g, d)
        },
    },
    Def {
        name: "Scalprod",
        r_name: "|",
        params: &[F, F],
        optional: 0,
        usage: "(x | y) or Scalprod(x, y)",
        dim_rule: "1; dim(x) = dim(y)",
        doc: "scalar product (the same node as Sum(x * y))",
        build: |g, a| {
            same_dims(a, g, a.node(0), a.node(1), "|")?;
            scalprod(g, a.node(0), a.node(1))
        },
    },
    Def {
        name: "WeightedSqNorm",
        r_name: "weightedsqnorm",
        params: &[F, F],
        optional: 0,
        usage: "WeightedSqNorm(s, x)",
        dim_rule: "1; dim(s) = 1, dim(x) or dim(x)^2",
        doc: "x' S x with S isotropic, diagonal or a full symmetric matrix (row-major)",
        build: |g, a| weighted_sq_norm(g, a, a.node(0), a.node(1)),
    },
    Def {
        name: "WeightedSqDist",
        r_name: "weightedsqdist",
        params: &[F, F, F],
        optional: 0,
        usage: "WeightedSqDist(s, x, y)",
        dim_rule: "1; dim(x) = dim(y), or either is 1; dim(s) = 1, dim(x - y) or dim(x - y)^2",
        doc: "(x - y)' S (x - y), S as in WeightedSqNorm",
        build: |g, a| {
            let d = difference(g, a, a.node(1), a.node(2))?;
            weighted_sq_norm(g, a, a.node(0), d)
        },
    },
    Def {
        name: "SqNormDiag",
        r_name: "",
        params: &[F, F],
        optional: 0,
        usage: "SqNormDiag(s, x)",
        dim_rule: "1; dim(s) = dim(x) or 1",
        doc: "Σ_k s_k x_k², WeightedSqNorm with diagonal weights (KeOps: Sum(s * Square(x)))",
        build: |g, a| {
            let sq = g.unary(Unary::Square, a.node(1))?;
            let p = g.binary(Binary::Mult, a.node(0), sq, a.column)?;
            g.sum(p)
        },
    },
    Def {
        name: "SqNormIso",
        r_name: "",
        params: &[F, F],
        optional: 0,
        usage: "SqNormIso(s, x)",
        dim_rule: "dim(s)",
        doc: "s |x|², WeightedSqNorm with isotropic weight (KeOps: s * SqNorm2(x))",
        build: |g, a| {
            let n = sq_norm(g, a.node(1))?;
            g.binary(Binary::Mult, a.node(0), n, a.column)
        },
    },
    Def {
        name: "SymSqNorm",
        r_name: "",
        params: &[F, F],
        optional: 0,
        usage: "SymSqNorm(A, x)",
        dim_rule: "1; dim(A) = dim(x)^2",
        doc: "x' A x, A row-major dim(x) x dim(x) (KeOps: Sum(A * TensorProd(x, x)))",
        build: |g, a| {
            let (m, x) = (a.node(0), a.node(1));
            let d = g.dim(x);
            if g.dim(m) != d * d {
                return Err(a.dim_error(format!(
                    "A must have dimension {} for x of dimension {d}, got {}",
                    d * d,
                    g.dim(m)
                )));
            }
            let mx = linalg::mat_vec(g, m, x)?;
            scalprod(g, x, mx)
        },
    },
    Def {
        name: "SumT",
        r_name: "",
        params: &[F, Int],
        optional: 0,
        usage: "SumT(x, d)",
        dim_rule: "d; dim(x) = 1",
        doc: "x repeated d times (the adjoint of Sum)",
        build: |g, a| {
            let x = a.node(0);
            if g.dim(x) != 1 {
                return Err(a.dim_error(format!("x must have dimension 1, got {}", g.dim(x))));
            }
            let d = a.int_in(1, "d", 1, 1 << 20)?;
            g.gather(x, vec![Some(0); d])
        },
    },
    Def {
        name: "Zero",
        r_name: "",
        params: &[Int],
        optional: 0,
        usage: "Zero(d)",
        dim_rule: "d",
        doc: "the zero vector of dimension d",
        build: |g, a| {
            let d = a.int_in(0, "d", 1, 1 << 20)?;
            Ok(g.constant_dim(0.0, d))
        },
    },
    Def {
        name: "IntInv",
        r_name: "",
        params: &[Int],
        optional: 0,
        usage: "IntInv(n)",
        dim_rule: "1",
        doc: "the constant 1/n",
        build: |g, a| {
            let n = a.int(0);
            if n == 0 {
                return Err(a.error("n must not be 0"));
            }
            Ok(g.constant(1.0 / n as f64))
        },
    },
    Def {
        name: "RatCst",
        r_name: "",
        params: &[Int, Int],
        optional: 0,
        usage: "RatCst(p, q)",
        dim_rule: "1",
        doc: "the constant p/q",
        build: |g, a| {
            let (p, q) = (a.int(0), a.int(1));
            if q == 0 {
                return Err(a.error("q must not be 0"));
            }
            Ok(g.constant(p as f64 / q as f64))
        },
    },
    Def {
        name: "Max",
        r_name: "max",
        params: &[F],
        optional: 0,
        usage: "Max(x)",
        dim_rule: "1",
        doc: "largest component (NaN ranks last)",
        build: |g, a| extremum(g, a, Extremum::Max),
    },
    Def {
        name: "Min",
        r_name: "min",
        params: &[F],
        optional: 0,
        usage: "Min(x)",
        dim_rule: "1",
        doc: "smallest component (NaN ranks last)",
        build: |g, a| extremum(g, a, Extremum::Min),
    },
    Def {
        name: "ArgMax",
        r_name: "argmax",
        params: &[F],
        optional: 0,
        usage: "ArgMax(x)",
        dim_rule: "1",
        doc: "0-based position of the largest component (first on ties)",
        build: |g, a| extremum(g, a, Extremum::ArgMax),
    },
    Def {
        name: "ArgMin",
        r_name: "argmin",
        params: &[F],
        optional: 0,
        usage: "ArgMin(x)",
        dim_rule: "1",
        doc: "0-based position of the smallest component (first on ties)",
        build: |g, a| extremum(g, a, Extremum::ArgMin),
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extremum_loops() {
        // Two positions (len 2), three components, stride 2.
        let xs = [3.0, f64::NAN, 1.0, 5.0, 1.0, 5.0];
        let (mut out, mut best) = ([0.0; 2], [0.0; 2]);
        Extremum::ArgMin.map(&xs, 3, 2, 2, &mut out, &mut best);
        assert_eq!(out, [1.0, 1.0]);
        Extremum::Max.map(&xs, 3, 2, 2, &mut out, &mut best);
        assert_eq!(out, [3.0, 5.0]);
        let mut sums = [0.0; 2];
        sum_groups(&xs[..4], 1, 2, 2, 2, &mut sums);
        assert_eq!(sums[0], 4.0);
    }
}
