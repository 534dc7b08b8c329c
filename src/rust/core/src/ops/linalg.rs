//! Linear algebra on small per-point matrices and tensors. A point's vector
//! holds its matrix or tensor in **row-major** order (as KeOps 2.x): entry
//! (r, c) of an n × m matrix is component r * m + c.
//!
//! Every operation here is a sum of products of selected components, built
//! from the primitives `Gather`, `Mult` and `Sum` by [`bilinear`].

use crate::error::Result;
use crate::formula::{Graph, NodeId};
use crate::ops::{Args, Binary, Def, Param};

use Param::{Ints, F};

/// `out[r] = Σ_{c < group} a[ia] * b[ib]` with `(ia, ib) = pick(r, c)`, for
/// `r < out_dim`.
pub fn bilinear(
    g: &mut Graph,
    a: NodeId,
    b: NodeId,
    out_dim: usize,
    group: usize,
    pick: impl Fn(usize, usize) -> (usize, usize),
) -> Result<NodeId> {
    let (mut ta, mut tb) = (Vec::with_capacity(out_dim * group), Vec::with_capacity(out_dim * group));
    for r in 0..out_dim {
        for c in 0..group {
            let (ia, ib) = pick(r, c);
            ta.push(Some(ia as u32));
            tb.push(Some(ib as u32));
        }
    }
    let ga = g.gather(a, ta)?;
    let gb = g.gather(b, tb)?;
    let p = g.binary(Binary::Mult, ga, gb, None)?;
    g.sum_groups(p, group)
}

/// A (n × m, row-major) times v (m): dimension n. Callers check that
/// dim(A) is a multiple of dim(v).
pub fn mat_vec(g: &mut Graph, mat: NodeId, v: NodeId) -> Result<NodeId> {
    let m = g.dim(v);
    let n = g.dim(mat) / m;
    bilinear(g, mat, v, n, m, |r, c| (r * m + c, c))
}

/// Row-major position of a multi-index.
fn ravel(index: &[usize], shape: &[usize]) -> usize {
    index.iter().zip(shape).fold(0, |acc, (&i, &s)| acc * s + i)
}

/// Multi-index of a row-major position.
fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for k in (0..shape.len()).rev() {
        index[k] = flat % shape[k];
        flat /= shape[k];
    }
    index
}

/// A shape argument: positive extents whose product is the vector's dimension.
fn shape(a: &Args<'_>, k: usize, dim: usize, what: &str) -> Result<Vec<usize>> {
    let s = a.ints(k);
    if s.is_empty() || s.iter().any(|&e| e < 1) {
        return Err(a.error(format!("the shape of {what} must list positive extents, got {s:?}")));
    }
    let s: Vec<usize> = s.iter().map(|&e| e as usize).collect();
    if s.iter().product::<usize>() != dim {
        return Err(a.dim_error(format!("the shape {s:?} of {what} does not match its dimension {dim}")));
    }
    Ok(s)
}

/// An axis list: distinct axes of a tensor of rank `rank`.
fn axes(a: &Args<'_>, k: usize, rank: usize, what: &str) -> Result<Vec<usize>> {
    let list = a.ints(k);
    let mut seen = vec![false; rank];
    for &ax in list {
        if ax < 0 || ax as usize >= rank || seen[ax as usize] {
            return Err(a.error(format!("{what} must be distinct axes in 0..{}, got {list:?}", rank.max(1) - 1)));
        }
        seen[ax as usize] = true;
    }
    Ok(list.iter().map(|&ax| ax as usize).collect())
}

fn tensor_dot(g: &mut Graph, a: &Args<'_>) -> Result<NodeId> {
    let (x, y) = (a.node(0), a.node(1));
    let sa = shape(a, 2, g.dim(x), "the first tensor")?;
    let sb = shape(a, 3, g.dim(y), "the second tensor")?;
    let ca = axes(a, 4, sa.len(), "the contracted axes of the first tensor")?;
    let cb = axes(a, 5, sb.len(), "the contracted axes of the second tensor")?;
    if ca.len() != cb.len() || ca.iter().zip(&cb).any(|(&i, &j)| sa[i] != sb[j]) {
        return Err(a.dim_error(format!(
            "contracted axes {ca:?} of shape {sa:?} and {cb:?} of shape {sb:?} must pair up with equal extents"
        )));
    }
    let free_a: Vec<usize> = (0..sa.len()).filter(|k| !ca.contains(k)).collect();
    let free_b: Vec<usize> = (0..sb.len()).filter(|k| !cb.contains(k)).collect();
    let res_shape: Vec<usize> = free_a.iter().map(|&k| sa[k]).chain(free_b.iter().map(|&k| sb[k])).collect();
    // KeOps' convention: perm[m] is the output position of axis m of the
    // result (the free axes of x, then of y), i.e. numpy's
    // `transpose(res, argsort(perm))`. `perm` below is that argsort: output
    // axis k is result axis perm[k].
    let perm = if a.has(6) {
        let placed = axes(a, 6, res_shape.len(), "the permutation")?;
        if placed.len() != res_shape.len() {
            return Err(
                a.error(format!("the permutation must list all {} output axes, got {placed:?}", res_shape.len()))
            );
        }
        let mut inverse = vec![0; placed.len()];
        for (m, &k) in placed.iter().enumerate() {
            inverse[k] = m;
        }
        inverse
    } else {
        (0..res_shape.len()).collect()
    };
    let out_shape: Vec<usize> = perm.iter().map(|&k| res_shape[k]).collect();
    let cont_shape: Vec<usize> = ca.iter().map(|&k| sa[k]).collect();
    let out_dim: usize = out_shape.iter().product();
    let group: usize = cont_shape.iter().product();
    bilinear(g, x, y, out_dim, group, |r, c| {
        let out_index = unravel(r, &out_shape);
        let mut res_index = vec![0; res_shape.len()];
        for (k, &p) in perm.iter().enumerate() {
            res_index[p] = out_index[k];
        }
        let cont_index = unravel(c, &cont_shape);
        let (mut ia, mut ib) = (vec![0; sa.len()], vec![0; sb.len()]);
        for (n, &k) in free_a.iter().enumerate() {
            ia[k] = res_index[n];
        }
        for (n, &k) in free_b.iter().enumerate() {
            ib[k] = res_index[free_a.len() + n];
        }
        for (n, (&ka, &kb)) in ca.iter().zip(&cb).enumerate() {
            ia[ka] = cont_index[n];
            ib[kb] = cont_index[n];
        }
        (ravel(&ia, &sa), ravel(&ib, &sb))
    })
}

fn kron(g: &mut Graph, a: &Args<'_>) -> Result<NodeId> {
    let (x, y) = (a.node(0), a.node(1));
    let sa = shape(a, 2, g.dim(x), "the first tensor")?;
    let sb = shape(a, 3, g.dim(y), "the second tensor")?;
    if sa.len() != sb.len() {
        return Err(a.dim_error(format!("both tensors need the same number of axes, got shapes {sa:?} and {sb:?}")));
    }
    let out_shape: Vec<usize> = sa.iter().zip(&sb).map(|(p, q)| p * q).collect();
    let out_dim = out_shape.iter().product();
    bilinear(g, x, y, out_dim, 1, |r, _| {
        let index = unravel(r, &out_shape);
        let ia: Vec<usize> = index.iter().zip(&sb).map(|(i, q)| i / q).collect();
        let ib: Vec<usize> = index.iter().zip(&sb).map(|(i, q)| i % q).collect();
        (ravel(&ia, &sa), ravel(&ib, &sb))
    })
}

pub static DEFS: &[Def] = &[
    Def {
        name: "MatVecMult",
        r_name: "matvecmult",
        params: &[F, F],
        optional: 0,
        usage: "MatVecMult(A, v)",
        dim_rule: "n; dim(A) = n * dim(v)",
        doc: "matrix-vector product, A row-major n x m",
        build: |g, a| {
            let (mat, v) = (a.node(0), a.node(1));
            if g.dim(mat) % g.dim(v) != 0 {
                return Err(a.dim_error(format!(
                    "the matrix dimension {} is not a multiple of the vector dimension {}",
                    g.dim(mat),
                    g.dim(v)
                )));
            }
            mat_vec(g, mat, v)
        },
    },
    Def {
        name: "VecMatMult",
        r_name: "vecmatmult",
        params: &[F, F],
        optional: 0,
        usage: "VecMatMult(v, A)",
        dim_rule: "m; dim(A) = dim(v) * m",
        doc: "vector-matrix product v' A, A row-major n x m",
        build: |g, a| {
            let (v, mat) = (a.node(0), a.node(1));
            let n = g.dim(v);
            if g.dim(mat) % n != 0 {
                return Err(a.dim_error(format!(
                    "the matrix dimension {} is not a multiple of the vector dimension {n}",
                    g.dim(mat)
                )));
            }
            let m = g.dim(mat) / n;
            bilinear(g, v, mat, m, n, |c, r| (r, r * m + c))
        },
    },
    Def {
        name: "TensorProd",
        r_name: "tensorprod",
        params: &[F, F],
        optional: 0,
        usage: "TensorProd(x, y)",
        dim_rule: "dim(x) * dim(y)",
        doc: "outer product x y', row-major",
        build: |g, a| {
            let (x, y) = (a.node(0), a.node(1));
            let m = g.dim(y);
            let n = g.dim(x);
            bilinear(g, x, y, n * m, 1, |r, _| (r / m, r % m))
        },
    },
    Def {
        name: "TensorDot",
        r_name: "tensordot",
        params: &[F, F, Ints, Ints, Ints, Ints, Ints],
        optional: 1,
        usage: "TensorDot(x, y, Ind(shape x), Ind(shape y), Ind(axes x), Ind(axes y)[, Ind(p)]) (lists also as [a, b] or (a, b))",
        dim_rule: "product of the free extents",
        doc: "contraction of row-major tensors as numpy.tensordot (free axes of x, then of y), then an optional permutation: axis m of that result goes to output position p[m] (KeOps' convention)",
        build: tensor_dot,
    },
    Def {
        name: "Kron",
        r_name: "kron",
        params: &[F, F, Ints, Ints],
        optional: 0,
        usage: "Kron(x, y, Ind(shape x), Ind(shape y))",
        dim_rule: "dim(x) * dim(y)",
        doc: "Kronecker product of row-major tensors with the same number of axes",
        build: kron,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ravel_round_trips() {
        let shape = [2, 3, 4];
        for flat in 0..24 {
            assert_eq!(ravel(&unravel(flat, &shape), &shape), flat);
        }
        assert_eq!(unravel(5, &[2, 3]), vec![1, 2]);
    }
}
