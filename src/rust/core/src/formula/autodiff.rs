//! Symbolic differentiation of formulas: reverse mode (`Grad(F, v, e)`, the
//! gradient of F with respect to v applied to e, i.e. e' dF/dv) and forward
//! mode (`Diff(F, v, u)`, the directional derivative dF/dv · u). Both produce
//! ordinary graph nodes, so derivatives can be differentiated again and are
//! evaluated by every backend without new code.
//!
//! The element-wise rules live with their operations (the `derivative`
//! columns of the tables in `ops/`); this file holds the rules of the
//! structural primitives (Sum, Extremum, Gather, Concat, OneHot) and the
//! traversal. Piecewise-constant operations (Sign, Step, Floor, Round,
//! comparisons, ArgMin/ArgMax, OneHot) have zero derivative. Min/Max pass the
//! derivative of the selected component (the first one on ties).
//!
//! Structural zeros: the simplifier does not turn `g * 0` into 0 (it is NaN
//! for infinite g), so the traversal never builds such products. A missing
//! adjoint or tangent (`None`) stands for an exact zero; a partial derivative
//! that is the literal 0 (Sign, Step, comparisons, ...) contributes nothing;
//! adjoints only flow into nodes that depend on the variable; and Min/Max
//! select the derivative of the chosen component with IfElse instead of
//! multiplying by a one-hot vector, so an infinite derivative elsewhere does
//! not become NaN.

use std::collections::HashMap;

use super::{Graph, NodeId};
use crate::error::{Error, Result};
use crate::ops::{Binary, Extremum, Op, Ternary};

impl Graph {
    /// `c * x`.
    pub fn scale(&mut self, c: f64, x: NodeId) -> Result<NodeId> {
        let c = self.constant(c);
        self.binary(Binary::Mult, c, x, None)
    }

    /// `a * b` (element-wise, broadcasting).
    fn mul(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.binary(Binary::Mult, a, b, None)
    }

    /// `a + b`, where `None` stands for zero.
    fn accumulate(&mut self, acc: Option<NodeId>, x: NodeId) -> Result<NodeId> {
        match acc {
            None => Ok(x),
            Some(a) => self.binary(Binary::Add, a, x, None),
        }
    }

    /// Brings an adjoint of dimension `dim(out)` back to an argument of
    /// dimension `d`: a dimension-1 argument broadcast in the forward pass
    /// receives the sum of the adjoint's components.
    fn unbroadcast(&mut self, adj: NodeId, d: usize) -> Result<NodeId> {
        if self.dim(adj) == d {
            Ok(adj)
        } else if d == 1 {
            self.sum(adj)
        } else {
            // The adjoint is a broadcast scalar (e.g. a constant).
            self.gather(adj, vec![Some(0); d])
        }
    }

    /// The adjoint of a Gather: component s of the result sums the adjoint
    /// components k with `table[k] = s`. Written as a sum of gathers, one per
    /// multiplicity, so that only primitives are needed.
    fn scatter_add(&mut self, adj: NodeId, table: &[Option<u32>], dim: usize) -> Result<NodeId> {
        let mut sources: Vec<Vec<u32>> = vec![Vec::new(); dim];
        for (k, s) in table.iter().enumerate() {
            if let Some(s) = s {
                sources[*s as usize].push(k as u32);
            }
        }
        let layers = sources.iter().map(Vec::len).max().unwrap_or(0);
        let mut total = None;
        for r in 0..layers {
            let t: Vec<Option<u32>> = sources.iter().map(|ks| ks.get(r).copied()).collect();
            let part = self.gather(adj, t)?;
            total = Some(self.accumulate(total, part)?);
        }
        Ok(total.unwrap_or_else(|| self.constant_dim(0.0, dim)))
    }

    /// `x` where `hot` is 1 and an exact 0 elsewhere (`hot` is a one-hot
    /// vector): IfElse(hot - 1, x, 0), not `hot * x`, which is NaN where x
    /// is infinite.
    fn select(&mut self, hot: NodeId, x: NodeId) -> Result<NodeId> {
        let one = self.constant(1.0);
        let f = self.binary(Binary::Subtract, hot, one, None)?;
        let zero = self.constant(0.0);
        self.ternary(Ternary::IfElse, f, x, zero, None)
    }

    /// Nodes that `root` depends on, in topological order (children first).
    fn ancestors(&self, root: NodeId) -> Vec<NodeId> {
        let mut live = vec![false; root + 1];
        live[root] = true;
        for id in (0..=root).rev() {
            if live[id] {
                for &a in &self.node(id).args {
                    live[a] = true;
                }
            }
        }
        (0..=root).filter(|&id| live[id]).collect()
    }

    fn check_var(&self, v: NodeId, what: &str, column: Option<usize>) -> Result<()> {
        if !matches!(self.node(v).op, Op::Var(_)) {
            return Err(Error::formula(format!("{what}: the second argument must be a variable"), column));
        }
        Ok(())
    }

    /// `Grad(f, v, e)`: e' (df/dv), of the dimension of v. `e` has the
    /// dimension of f and is not differentiated.
    pub fn grad(&mut self, f: NodeId, v: NodeId, e: NodeId, column: Option<usize>) -> Result<NodeId> {
        self.check_var(v, "Grad", column)?;
        if self.dim(e) != self.dim(f) {
            return Err(Error::dimension(
                format!(
                    "Grad(F, v, e): e must have the dimension of F ({}), got {}",
                    self.dim(f),
                    self.dim(e)
                ),
                column,
            ));
        }
        let order = self.ancestors(f);
        // Nodes whose value depends on v: the only ones whose adjoint matters.
        let mut reaches = vec![false; f + 1];
        for &id in &order {
            reaches[id] = id == v || self.node(id).args.iter().any(|&a| reaches[a]);
        }
        let mut adjoint: HashMap<NodeId, NodeId> = HashMap::new();
        adjoint.insert(f, e);
        for &id in order.iter().rev() {
            let Some(&adj) = adjoint.get(&id) else { continue };
            if id == v || !reaches[id] {
                continue;
            }
            let node = self.node(id).clone();
            for (k, contribution) in self.vjp(id, &node.op, &node.args, adj)?.into_iter().enumerate() {
                let arg = node.args[k];
                if let (Some(c), true) = (contribution, reaches[arg]) {
                    let c = self.unbroadcast(c, self.dim(arg))?;
                    let total = self.accumulate(adjoint.get(&arg).copied(), c)?;
                    adjoint.insert(arg, total);
                }
            }
        }
        let dim = self.dim(v);
        Ok(adjoint.get(&v).copied().unwrap_or_else(|| self.constant_dim(0.0, dim)))
    }

    /// Contributions of node `id` (with adjoint `adj`) to its arguments'
    /// adjoints; `None` where the derivative is zero.
    fn vjp(&mut self, id: NodeId, op: &Op, args: &[NodeId], adj: NodeId) -> Result<Vec<Option<NodeId>>> {
        Ok(match *op {
            Op::Var(_) | Op::Const(_) => vec![],
            Op::Sum(group) => {
                let dim = self.dim(args[0]);
                let table = (0..dim).map(|c| Some((c / group) as u32)).collect();
                vec![Some(self.gather(adj, table)?)]
            }
            Op::Gather(t) => {
                let table = self.table(t).to_vec();
                vec![Some(self.scatter_add(adj, &table, self.dim(args[0]))?)]
            }
            Op::Concat => {
                let (dx, dy) = (self.dim(args[0]), self.dim(args[1]));
                let tx = (0..dx).map(|c| Some(c as u32)).collect();
                let ty = (dx..dx + dy).map(|c| Some(c as u32)).collect();
                vec![Some(self.gather(adj, tx)?), Some(self.gather(adj, ty)?)]
            }
            Op::Extremum(e @ (Extremum::Min | Extremum::Max)) => {
                let arg = if e == Extremum::Min { Extremum::ArgMin } else { Extremum::ArgMax };
                let at = self.extremum(arg, args[0]);
                let hot = self.one_hot(at, self.dim(args[0]));
                vec![Some(self.select(hot, adj)?)]
            }
            Op::Extremum(_) | Op::OneHot(_) | Op::Round(_) => vec![None; args.len()],
            _ => self
                .elementwise_partials(id, op, args)?
                .into_iter()
                .map(|p| if self.is_zero(p) { Ok(None) } else { self.mul(adj, p).map(Some) })
                .collect::<Result<_>>()?,
        })
    }

    /// Whether a partial derivative is the literal 0 (a structural zero).
    fn is_zero(&self, id: NodeId) -> bool {
        self.const_value(id) == Some(0.0)
    }

    /// Partial derivatives of an element-wise node with respect to each
    /// argument, as nodes (from the tables in `ops/`).
    fn elementwise_partials(&mut self, id: NodeId, op: &Op, args: &[NodeId]) -> Result<Vec<NodeId>> {
        Ok(match *op {
            Op::Unary(u) => vec![u.derivative(self, args[0], id)?],
            Op::Pow(n) => {
                let p = self.pow(args[0], n - 1)?;
                vec![self.scale(n as f64, p)?]
            }
            Op::Binary(b) => {
                let (da, db) = b.derivatives(self, args[0], args[1], id)?;
                vec![da, db]
            }
            Op::Ternary(t) => t.derivatives(self, args[0], args[1], args[2])?.to_vec(),
            _ => return Err(Error::Internal(format!("no element-wise derivative for {op:?}"))),
        })
    }

    /// `Diff(f, v, u)`: the directional derivative of f at v along u (the
    /// dimension of f); u has the dimension of v.
    pub fn diff(&mut self, f: NodeId, v: NodeId, u: NodeId, column: Option<usize>) -> Result<NodeId> {
        self.check_var(v, "Diff", column)?;
        if self.dim(u) != self.dim(v) {
            return Err(Error::dimension(
                format!("Diff(F, v, u): u must have the dimension of v ({}), got {}", self.dim(v), self.dim(u)),
                column,
            ));
        }
        let mut tangent: HashMap<NodeId, NodeId> = HashMap::new();
        tangent.insert(v, u);
        for id in self.ancestors(f) {
            if id == v {
                continue;
            }
            let node = self.node(id).clone();
            let ts: Vec<Option<NodeId>> = node.args.iter().map(|a| tangent.get(a).copied()).collect();
            if ts.iter().all(Option::is_none) {
                continue;
            }
            if let Some(t) = self.jvp(id, &node.op, &node.args, &ts)? {
                tangent.insert(id, t);
            }
        }
        let dim = self.dim(f);
        Ok(tangent.get(&f).copied().unwrap_or_else(|| self.constant_dim(0.0, dim)))
    }

    /// The tangent of node `id` from its arguments' tangents (None = zero).
    fn jvp(&mut self, id: NodeId, op: &Op, args: &[NodeId], ts: &[Option<NodeId>]) -> Result<Option<NodeId>> {
        let zero_if_none = |g: &mut Graph, k: usize| ts[k].unwrap_or_else(|| g.constant_dim(0.0, g.dim(args[k])));
        Ok(match *op {
            Op::Var(_) | Op::Const(_) => None,
            Op::Sum(group) => {
                let t = zero_if_none(self, 0);
                Some(self.sum_groups(t, group)?)
            }
            Op::Gather(table) => {
                let (t, table) = (zero_if_none(self, 0), self.table(table).to_vec());
                Some(self.gather(t, table)?)
            }
            Op::Concat => {
                let (a, b) = (zero_if_none(self, 0), zero_if_none(self, 1));
                Some(self.concat(a, b))
            }
            Op::Extremum(e @ (Extremum::Min | Extremum::Max)) => {
                let arg = if e == Extremum::Min { Extremum::ArgMin } else { Extremum::ArgMax };
                let at = self.extremum(arg, args[0]);
                let hot = self.one_hot(at, self.dim(args[0]));
                let t = zero_if_none(self, 0);
                let p = self.select(hot, t)?;
                Some(self.sum(p)?)
            }
            Op::Extremum(_) | Op::OneHot(_) | Op::Round(_) => None,
            _ => {
                let partials = self.elementwise_partials(id, op, args)?;
                let mut total = None;
                for (k, p) in partials.into_iter().enumerate() {
                    if let (Some(t), false) = (ts[k], self.is_zero(p)) {
                        let term = self.mul(p, t)?;
                        total = Some(self.accumulate(total, term)?);
                    }
                }
                // A tangent that only flows through broadcast scalars is
                // widened to the node's dimension.
                match total {
                    Some(t) if self.dim(t) != self.dim(id) => Some(self.gather(t, vec![Some(0); self.dim(id)])?),
                    other => other,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::formula::Expression;
    use crate::ops::Op;
    use crate::{evaluate, Formula, Input, Options};

    fn root(formula: &str) -> Op {
        let e = Expression::parse(formula, &["x = Vi(2)", "y = Vj(2)", "e = Vj(2)", "s = Vj(1)"]).unwrap();
        e.graph.node(e.root).op
    }

    /// Derivatives that are zero by structure are the constant 0, with no
    /// `g * 0` left for infinite g to turn into NaN.
    #[test]
    fn structural_zeros() {
        assert_eq!(root("Grad(y * 2, x, e)"), Op::constant(0.0));
        assert_eq!(root("Grad(Sign(x) * y, x, e)"), Op::constant(0.0));
        assert_eq!(root("Grad(Step(x) + Floor(x) + Round(x, 1), x, e)"), Op::constant(0.0));
        assert_eq!(root("Diff(LessThan(x, y) * y, x, e)"), Op::constant(0.0));
        assert_eq!(root("Grad(Sum(x * y), y, s)"), root("x * s"));
    }

    /// The gradient of Max(w) is e at the selected component and exactly 0
    /// elsewhere, also for an infinite e (a one-hot product gave 0 * Inf = NaN).
    #[test]
    fn max_passes_an_infinite_adjoint_to_its_component_only() {
        let f = Formula::parse("Sum_Reduction(Grad(Max(w), w, s), 1)", &["w = Vi(2)", "s = Vj(1)"]).unwrap();
        let (w, s) = ([1.0, 2.0, 0.0, 5.0], [f64::INFINITY]);
        let out = evaluate(&f, &[Input::matrix(&w, 2, 2), Input::vector(&s)], &Options::default(), &mut || false).unwrap();
        // Row 1 (1, 0): max at 0; row 2 (2, 5): max at 1. Column-major output.
        assert_eq!(out.values.unwrap().1, vec![f64::INFINITY, 0.0, 0.0, f64::INFINITY]);
    }
}
