//! Simplification rules applied when a node is built, so that every formula
//! (and every derivative formula) is stored in a reduced form. Only rewrites
//! that give the same result for every IEEE input (NaN, ±Inf, ±0 included)
//! are applied:
//! - unit factors: `x * 1 = 1 * x = x`, `x / 1 = x`;
//! - `x - 0 = x` (exact even for x = -0, unlike `x + 0`, which maps -0 to +0);
//! - double negation: `-(-x) = x`;
//! - division by a power of two is multiplication by its reciprocal:
//!   `x / 2 = x * 0.5` (both round the same real number x 2^-k, for every x;
//!   a division costs several times a multiplication). Only for
//!   2^-126 <= |c| <= 2^126, where c and 1/c are normal numbers in float32
//!   too;
//! - a negation moves into a constant factor or divisor: `(-x) * c =
//!   x * (-c)` and `(-x) / c = x / (-c)` (rounding to nearest is symmetric;
//!   only a NaN's sign bit, which R does not read, may differ), so that
//!   `Exp(-SqDist(x, y) / 2)` is one scaled exponential;
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

    /// Whether `x` is a negation and `c` a constant (see the module's rules).
    fn negated_by_constant(&self, x: NodeId, c: NodeId) -> bool {
        self.node(x).op == Op::Unary(Unary::Minus) && self.const_value(c).is_some()
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
            Binary::Mult | Binary::Divide if self.negated_by_constant(x, y) => {
                let (a, c) = (self.node(x).args[0], self.const_value(y).unwrap_or_default());
                let minus_c = self.constant_dim(-c, self.dim(y));
                Some(self.binary(op, a, minus_c, None)?)
            }
            Binary::Mult if self.negated_by_constant(y, x) => {
                let (c, a) = (self.const_value(x).unwrap_or_default(), self.node(y).args[0]);
                let minus_c = self.constant_dim(-c, self.dim(x));
                Some(self.binary(op, minus_c, a, None)?)
            }
            Binary::Divide => match self.const_value(y).and_then(exact_reciprocal) {
                Some(r) => {
                    let r = self.constant_dim(r, self.dim(y));
                    Some(self.binary(Binary::Mult, x, r, None)?)
                }
                None => None,
            },
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

/// 1 / c when it is exact and x / c = x * (1 / c) for every x in float32
/// and float64: c = ±2^k with |k| <= 126.
fn exact_reciprocal(c: f64) -> Option<f64> {
    const MANTISSA: u64 = (1 << 52) - 1;
    let a = c.abs();
    let in_range = (2f64.powi(-126)..=2f64.powi(126)).contains(&a);
    (in_range && a.to_bits() & MANTISSA == 0).then(|| 1.0 / c)
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

    /// Division by ±2^k becomes a multiplication by 2^-k, which rounds the
    /// same real number: equal bit for bit, subnormals, overflow, zeros,
    /// infinities and NaN included; other divisors stay divisions.
    #[test]
    fn division_by_powers_of_two() {
        assert_eq!(root_op("x / 2"), root_op("x * 0.5"));
        assert_eq!(root_op("x / (-0.25)"), root_op("x * (-4)"));
        assert_eq!(root_op("s / 2").1, 1);
        for kept in ["x / 3", "x / 0", "x / 1e-300", "x / 1.7014118346046923e38", "x / s"] {
            assert_eq!(root_op(kept).0, Op::Binary(Binary::Divide), "{kept}");
        }
        let specials = [0.0, -0.0, 1.0, -3.7, 1e-310, 5e-324, f64::MAX, 1e300, f64::INFINITY, f64::NEG_INFINITY, f64::NAN];
        for c in [2.0, 0.5, -8.0, 2f64.powi(126), 2f64.powi(-126)] {
            let r = super::exact_reciprocal(c).unwrap();
            for x in specials.iter().copied().chain((0..2000).map(|k| ((k * 7919) % 10007) as f64 * 1.37e-3 - 5.0)) {
                assert_eq!((x / c).to_bits(), (x * r).to_bits(), "{x} / {c}");
                let (x32, c32, r32) = (x as f32, c as f32, r as f32);
                assert_eq!((x32 / c32).to_bits(), (x32 * r32).to_bits(), "{x32} / {c32} in f32");
            }
        }
        assert_eq!(super::exact_reciprocal(2f64.powi(127)), None);
        // The negation moves into the constant.
        assert_eq!(root_op("Exp(-SqDist(x, y) / 2)"), root_op("Exp(SqDist(x, y) * (-0.5))"));
        assert_eq!(root_op("3 * (-x)"), root_op("(-3) * x"));
        assert_eq!(root_op("(-x) / 3"), root_op("x / (-3)"));
        for x in [0.0, -0.0, 1e-310, 2.5, f64::INFINITY, f64::NEG_INFINITY, f64::MAX] {
            for c in [3.0, -0.1, 0.0, -0.0, 1e-300, f64::INFINITY] {
                assert_eq!(((-x) * c).to_bits(), (x * -c).to_bits(), "{x} * {c}");
                assert_eq!(((-x) / c).to_bits(), (x / -c).to_bits(), "{x} / {c}");
            }
        }
        assert_eq!(super::exact_reciprocal(3.0), None);
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
