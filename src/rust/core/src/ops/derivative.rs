//! Differential operators from pykeops' operation list, defined from the
//! symbolic `Grad` (reverse mode) of [`crate::formula`]. `e_k` below is the
//! k-th unit vector (a constant), v a variable of dimension d.

use crate::error::Result;
use crate::formula::{Graph, NodeId};
use crate::ops::{Args, Binary, Def, Param};

use Param::F;

/// The constant unit vector e_k of dimension `dim`.
fn unit(g: &mut Graph, k: usize, dim: usize) -> Result<NodeId> {
    let one = g.constant(1.0);
    g.gather(one, (0..dim).map(|c| (c == k).then_some(0)).collect())
}

/// Σ_k ∂F_k/∂v_k = Σ_k (Grad(F, v, e_k))_k, for dim(F) = dim(v).
fn divergence(g: &mut Graph, a: &Args<'_>, f: NodeId, v: NodeId) -> Result<NodeId> {
    let d = g.dim(v);
    if g.dim(f) != d {
        return Err(
            a.dim_error(format!("F (dimension {}) and v (dimension {d}) must have the same dimension", g.dim(f)))
        );
    }
    let mut total: Option<NodeId> = None;
    for k in 0..d {
        let e = unit(g, k, d)?;
        let row = g.grad(f, v, e, a.column)?;
        let diag = g.gather(row, vec![Some(k as u32)])?;
        total = Some(match total {
            None => diag,
            Some(t) => g.binary(Binary::Add, t, diag, None)?,
        });
    }
    Ok(total.unwrap_or_else(|| g.constant(0.0)))
}

pub static DEFS: &[Def] = &[
    Def {
        name: "AdjointOperator",
        r_name: "",
        params: &[F, F, F],
        optional: 0,
        usage: "AdjointOperator(F, v, u)",
        dim_rule: "dim(v); dim(u) = dim(F)",
        doc: "adjoint M' u of a formula F = M v linear in v: Grad(F, v, u)",
        build: |g, a| g.grad(a.node(0), a.node(1), a.node(2), a.column),
    },
    Def {
        name: "GradMatrix",
        r_name: "",
        params: &[F, F],
        optional: 0,
        usage: "GradMatrix(F, v)",
        dim_rule: "dim(F) * dim(v)",
        doc: "the Jacobian dF/dv, row-major (row k: Grad(F, v, e_k))",
        build: |g, a| {
            let (f, v) = (a.node(0), a.node(1));
            let n = g.dim(f);
            let mut out: Option<NodeId> = None;
            for k in 0..n {
                let e = unit(g, k, n)?;
                let row = g.grad(f, v, e, a.column)?;
                out = Some(match out {
                    None => row,
                    Some(o) => g.concat(o, row),
                });
            }
            out.ok_or_else(|| a.dim_error("F has dimension 0"))
        },
    },
    Def {
        name: "Divergence",
        r_name: "",
        params: &[F, F],
        optional: 0,
        usage: "Divergence(F, v)",
        dim_rule: "1; dim(F) = dim(v)",
        doc: "divergence Σ_k dF_k/dv_k",
        build: |g, a| divergence(g, a, a.node(0), a.node(1)),
    },
    Def {
        name: "Laplacian",
        r_name: "",
        params: &[F, F],
        optional: 0,
        usage: "Laplacian(F, v)",
        dim_rule: "1; dim(F) = 1",
        doc: "Laplacian Σ_k d²F/dv_k² of a scalar F: Divergence(Grad(F, v, 1), v)",
        build: |g, a| {
            let (f, v) = (a.node(0), a.node(1));
            if g.dim(f) != 1 {
                return Err(a.dim_error(format!("F must have dimension 1, got {}", g.dim(f))));
            }
            let one = g.constant(1.0);
            let grad = g.grad(f, v, one, a.column)?;
            divergence(g, a, grad, v)
        },
    },
    Def {
        name: "TraceOperator",
        r_name: "",
        params: &[F, F],
        optional: 0,
        usage: "TraceOperator(F, v)",
        dim_rule: "1; dim(F) = dim(v) or 1",
        doc: "trace of the matrix M of a formula F = M v linear in v (dim(F) = 1: Σ_k M_k)",
        build: |g, a| {
            let (f, v) = (a.node(0), a.node(1));
            if g.dim(f) == 1 && g.dim(v) != 1 {
                let one = g.constant(1.0);
                let grad = g.grad(f, v, one, a.column)?;
                return g.sum(grad);
            }
            divergence(g, a, f, v)
        },
    },
];
