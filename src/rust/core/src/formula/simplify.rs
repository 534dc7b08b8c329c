//! Simplification rules applied when a node is built, so that every formula
//! (and every derivative formula) is stored in a reduced form. Only rewrites
//! that give the same result for every IEEE input (NaN, ±Inf, ±0 included)
//! are applied:
//! - unit factors: `x * 1 = 1 * x = x`, `x / 1 = x`;
//! - `x - 0 = x` (exact even for x = -0, unlike `x + 0`, which maps -0 to +0);
//! - double negation: `-(-x) = x`;
//! - selected components of an element-wise operation are the operation of
//!   its arguments' selected components: `Elem(f(x, s), k) = f(Elem(x, k), s)`
//!   for a scalar s (the same operations on the same values, computing only
//!   what is kept: a Divergence keeps one component of each of its d
//!   gradients); a gather of a gather is one gather.
//!
//! There is no zero propagation: `x * 0` and `0 / x` are NaN where x is
//! infinite or NaN, `x - x` is NaN where x is, and `0 - x` differs from `-x`
//! at x = 0 (+0 and -0). Products of literals fold like any constant
//! expression (`Graph::add`), which also does hash-consing. Derivatives do
//! not rely on zero propagation: autodiff tracks structurally zero
//! derivatives itself and never multiplies by them.

use super::{Graph, NodeId};
use crate::error::Result;
use crate::ops::{Binary, Op, Unary};

impl Graph {
    /// Whether `id` is the constant `value`, bit for bit (`x - (-0)` is
    /// `x + 0`, not x).
    fn is_const(&self, id: NodeId, value: f64) -> bool {
        self.const_value(id).map(f64::to_bits) == Some(value.to_bits())
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
        Ok(match op {
            Binary::Subtract if self.is_const(y, 0.0) => self.keep(x, dim),
            Binary::Mult if self.is_const(y, 1.0) => self.keep(x, dim),
            Binary::Mult if self.is_const(x, 1.0) => self.keep(y, dim),
            Binary::Divide if self.is_const(y, 1.0) => self.keep(x, dim),
            _ => None,
        })
    }

    /// A gather with every entry present (`table`) of an element-wise `x`
    /// (dimension > 1), applied to its arguments instead; scalar arguments
    /// stay broadcast.
    pub(super) fn simplify_gather(&mut self, x: NodeId, table: &[Option<u32>]) -> Result<Option<NodeId>> {
        let node = self.node(x).clone();
        if node.dim == 1 || !node.op.is_elementwise() || table.iter().any(Option::is_none) {
            return Ok(None);
        }
        let args = node.args.iter().map(|&a| if self.dim(a) == 1 { Ok(a) } else { self.gather(a, table.to_vec()) });
        let args = args.collect::<Result<Vec<_>>>()?;
        Ok(Some(match node.op {
            Op::Unary(u) => self.unary(u, args[0])?,
            Op::Binary(b) => self.binary(b, args[0], args[1], None)?,
            Op::Ternary(t) => self.ternary(t, args[0], args[1], args[2], None)?,
            Op::Pow(n) => self.pow(args[0], n)?,
            Op::Round(d) => self.round(args[0], d)?,
            other => unreachable!("{other:?} is not element-wise"),
        }))
    }
}

#[cfg(test)]
mod tests {
    use crate::formula::Expression;
    use crate::ops::{Binary, Op};

    fn root_op(formula: &str) -> (Op, usize) {
        let e = Expression::parse(formula, &["x = Vi(3)", "y = Vj(3)", "s = Vi(1)"]).unwrap();
        (e.graph.node(e.root).op, e.dim())
    }

    /// `x * 0` is NaN for infinite or NaN x, `x - x` too, `0 - x` is +0 at
    /// x = 0 where `-x` is -0, and `x + 0` is +0 at x = -0: none is rewritten.
    #[test]
    fn no_zero_propagation() {
        assert_eq!(root_op("x * 0").0, Op::Binary(Binary::Mult));
        assert_eq!(root_op("0 * x").0, Op::Binary(Binary::Mult));
        assert_eq!(root_op("0 / y").0, Op::Binary(Binary::Divide));
        assert_eq!(root_op("x - x").0, Op::Binary(Binary::Subtract));
        assert_eq!(root_op("0 - y").0, Op::Binary(Binary::Subtract));
        assert_eq!(root_op("x + 0").0, Op::Binary(Binary::Add));
        assert_eq!(root_op("0 + x").0, Op::Binary(Binary::Add));
        // Literals still fold.
        assert_eq!(root_op("2 * 0 + 3").0, Op::constant(3.0));
    }

    #[test]
    fn exact_rewrites() {
        assert_eq!(root_op("x - 0"), root_op("x"));
        // x - (-0) = x + 0, which is +0 at x = -0.
        assert_eq!(root_op("x - (-0)").0, Op::Binary(Binary::Subtract));
        assert_eq!(root_op("-0").0, Op::constant(-0.0));
        assert_ne!(Op::constant(-0.0), Op::constant(0.0));
    }

    #[test]
    fn unit_factors_and_negation() {
        assert_eq!(root_op("x * 1"), root_op("x"));
        assert_eq!(root_op("1 * x / 1 - 0"), root_op("x"));
        assert_eq!(root_op("-(-x)"), root_op("x"));
        // A broadcast keeps its dimension: s * 1 is s, but 1 * x is x (dim 3).
        assert_eq!(root_op("s * 1").1, 1);
        assert_eq!(root_op("s * y / 1").1, 3);
    }

    /// A gather of an element-wise operation moves to its arguments, and
    /// two gathers compose; a gather with missing entries (zeros) stays.
    #[test]
    fn gathers_move_to_arguments() {
        // The tree of a formula's root, gather tables written out.
        fn tree(g: &crate::formula::Graph, id: usize) -> String {
            let node = g.node(id);
            let args: Vec<String> = node.args.iter().map(|&a| tree(g, a)).collect();
            match node.op {
                Op::Gather(t) => format!("Gather{:?}({})", g.table(t), args.join(", ")),
                op => format!("{op:?}({})", args.join(", ")),
            }
        }
        let graph_of = |f: &str| {
            let e = Expression::parse(f, &["x = Vi(3)", "y = Vj(3)", "s = Vi(1)"]).unwrap();
            (tree(&e.graph, e.root), e.dim())
        };
        assert_eq!(graph_of("Elem(Exp(x - y) * s, 1)"), graph_of("Exp(Elem(x, 1) - Elem(y, 1)) * s"));
        assert_eq!(
            graph_of("Extract(Pow(IfElse(x, y, s), 2), 1, 2)"),
            graph_of("Pow(IfElse(Extract(x, 1, 2), Extract(y, 1, 2), s), 2)")
        );
        assert_eq!(graph_of("Elem(Extract(x, 1, 2), 1)"), graph_of("Elem(x, 2)"));
        // Zeros where ElemT has no entry: not an element-wise result.
        let (zeros, dim) = graph_of("ElemT(Elem(Exp(x), 0), 3, 1)");
        assert_eq!((zeros.as_str(), dim), (graph_of("ElemT(Exp(Elem(x, 0)), 3, 1)").0.as_str(), 3));
        assert!(zeros.starts_with("Gather[None, Some(0), None]"), "{zeros}");
    }

    #[test]
    fn scalprod_is_sum_of_product() {
        let a = Expression::parse("Sum(x * y)", &["x = Vi(3)", "y = Vj(3)"]).unwrap();
        let b = Expression::parse("(x | y)", &["x = Vi(3)", "y = Vj(3)"]).unwrap();
        assert_eq!(a.graph.node(a.root), b.graph.node(b.root));
        assert_eq!(a.graph.len(), b.graph.len());
    }
}
