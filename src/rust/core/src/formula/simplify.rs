//! Simplification rules applied when a node is built, so that every formula
//! (and every derivative formula) is stored in a reduced form:
//! - zero propagation: `x * 0 = 0`, `0 / x = 0`, `x + 0 = x`, `x - 0 = x`,
//!   `0 - x = -x`, `x - x = 0`;
//! - unit factors: `x * 1 = x`, `x / 1 = x`;
//! - double negation: `-(-x) = x`.
//!
//! As in KeOps, zero propagation treats `0 * x` as 0 even where x would be
//! infinite or NaN. Constant folding and hash-consing live in `Graph::add`.

use super::{Graph, NodeId};
use crate::error::Result;
use crate::ops::{Binary, Op, Unary};

impl Graph {
    fn is_const(&self, id: NodeId, value: f64) -> bool {
        self.const_value(id) == Some(value)
    }

    /// `x` itself when it already has the output dimension `dim`.
    fn keep(&self, x: NodeId, dim: usize) -> Option<NodeId> {
        (self.dim(x) == dim).then_some(x)
    }

    pub(super) fn simplify_unary(&mut self, op: Unary, x: NodeId) -> Option<NodeId> {
        let node = self.node(x);
        match (op, node.op) {
            (Unary::Minus, Op::Unary(Unary::Minus)) => Some(node.args[0]),
            _ => None,
        }
    }

    pub(super) fn simplify_binary(&mut self, op: Binary, x: NodeId, y: NodeId, dim: usize) -> Result<Option<NodeId>> {
        let zero = |g: &mut Graph| Some(g.constant_dim(0.0, dim));
        Ok(match op {
            Binary::Add if self.is_const(y, 0.0) => self.keep(x, dim),
            Binary::Add if self.is_const(x, 0.0) => self.keep(y, dim),
            Binary::Subtract if self.is_const(y, 0.0) => self.keep(x, dim),
            Binary::Subtract if x == y => zero(self),
            Binary::Subtract if self.is_const(x, 0.0) && self.dim(y) == dim => Some(self.unary(Unary::Minus, y)?),
            Binary::Mult if self.is_const(x, 0.0) || self.is_const(y, 0.0) => zero(self),
            Binary::Mult if self.is_const(y, 1.0) => self.keep(x, dim),
            Binary::Mult if self.is_const(x, 1.0) => self.keep(y, dim),
            Binary::Divide if self.is_const(x, 0.0) => zero(self),
            Binary::Divide if self.is_const(y, 1.0) => self.keep(x, dim),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::formula::Expression;
    use crate::ops::Op;

    fn root_op(formula: &str) -> (Op, usize) {
        let e = Expression::parse(formula, &["x = Vi(3)", "y = Vj(3)", "s = Vi(1)"]).unwrap();
        (e.graph.node(e.root).op, e.dim())
    }

    #[test]
    fn zero_propagation() {
        assert_eq!(root_op("x * 0"), (Op::constant(0.0), 3));
        assert_eq!(root_op("0 / y"), (Op::constant(0.0), 3));
        assert_eq!(root_op("x - x"), (Op::constant(0.0), 3));
        assert_eq!(root_op("Exp(x - x) * y"), root_op("y"));
        assert_eq!(root_op("0 - y"), root_op("-y"));
    }

    #[test]
    fn unit_factors_and_negation() {
        assert_eq!(root_op("x * 1"), root_op("x"));
        assert_eq!(root_op("1 * x / 1 + 0"), root_op("x"));
        assert_eq!(root_op("-(-x)"), root_op("x"));
        // A broadcast keeps its dimension: s * 1 is s, but 1 * x is x (dim 3).
        assert_eq!(root_op("s + 0").1, 1);
        assert_eq!(root_op("(x - x) + s").1, 3);
    }

    #[test]
    fn scalprod_is_sum_of_product() {
        let a = Expression::parse("Sum(x * y)", &["x = Vi(3)", "y = Vj(3)"]).unwrap();
        let b = Expression::parse("(x | y)", &["x = Vi(3)", "y = Vj(3)"]).unwrap();
        assert_eq!(a.graph.node(a.root), b.graph.node(b.root));
        assert_eq!(a.graph.len(), b.graph.len());
    }
}
