//! Operations over a vector's components. `Sum` is the primitive; the others
//! are defined from it and from element-wise operations, so that every backend
//! and the derivative rules only need the primitives.

use crate::error::{Error, Result};
use crate::formula::{Graph, NodeId};
use crate::ops::{Binary, Unary};
use crate::Real;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VectorOp {
    /// Σ_k x_k (dimension 1)
    Sum,
    /// Σ_k x_k² (dimension 1)
    SqNorm2,
    /// sqrt(Σ_k x_k²) (dimension 1)
    Norm2,
    /// Σ_k (x_k − y_k)², x and y of the same dimension (dimension 1)
    SqDist,
    /// Σ_k x_k y_k, written `(x|y)`; x and y of the same dimension (dimension 1)
    Scalprod,
}

impl VectorOp {
    pub const ALL: &'static [VectorOp] =
        &[VectorOp::Sum, VectorOp::SqNorm2, VectorOp::Norm2, VectorOp::SqDist, VectorOp::Scalprod];

    pub fn name(self) -> &'static str {
        match self {
            VectorOp::Sum => "Sum",
            VectorOp::SqNorm2 => "SqNorm2",
            VectorOp::Norm2 => "Norm2",
            VectorOp::SqDist => "SqDist",
            VectorOp::Scalprod => "Scalprod",
        }
    }

    pub fn r_name(self) -> &'static str {
        match self {
            VectorOp::Sum => "sum",
            VectorOp::SqNorm2 => "sqnorm2",
            VectorOp::Norm2 => "norm2",
            VectorOp::SqDist => "sqdist",
            VectorOp::Scalprod => "|",
        }
    }

    pub fn arity(self) -> usize {
        match self {
            VectorOp::SqDist | VectorOp::Scalprod => 2,
            _ => 1,
        }
    }

    pub fn from_name(name: &str) -> Option<VectorOp> {
        VectorOp::ALL.iter().copied().find(|v| v.name() == name)
    }

    /// Adds the operation to the graph, checking its dimension rule.
    pub fn build(self, g: &mut Graph, args: &[NodeId], column: Option<usize>) -> Result<NodeId> {
        if let [x, y] = *args {
            let (dx, dy) = (g.dim(x), g.dim(y));
            if dx != dy {
                return Err(Error::dimension(
                    format!("{} needs two vectors of the same dimension, got dimensions {dx} and {dy}", self.name()),
                    column,
                ));
            }
        }
        match (self, args) {
            (VectorOp::Sum, &[x]) => g.sum(x),
            (VectorOp::SqNorm2, &[x]) => {
                let sq = g.unary(Unary::Square, x)?;
                g.sum(sq)
            }
            (VectorOp::Norm2, &[x]) => {
                let n2 = VectorOp::SqNorm2.build(g, &[x], column)?;
                g.unary(Unary::Sqrt, n2)
            }
            (VectorOp::SqDist, &[x, y]) => {
                let d = g.binary(Binary::Subtract, x, y, column)?;
                VectorOp::SqNorm2.build(g, &[d], column)
            }
            (VectorOp::Scalprod, &[x, y]) => {
                let p = g.binary(Binary::Mult, x, y, column)?;
                g.sum(p)
            }
            _ => Err(Error::formula(
                format!("{} expects {} argument(s), got {}", self.name(), self.arity(), args.len()),
                column,
            )),
        }
    }
}

/// CPU loop of the primitive `Sum` over `dim` runs of `len` values spaced by
/// `stride`: `out[t] = Σ_c xs[c * stride + t]`.
pub fn sum_components<T: Real>(xs: &[T], dim: usize, stride: usize, len: usize, out: &mut [T]) {
    out[..len].copy_from_slice(&xs[..len]);
    for c in 1..dim {
        let row = &xs[c * stride..c * stride + len];
        for (o, &x) in out[..len].iter_mut().zip(row) {
            *o = *o + x;
        }
    }
}
