//! Typed, hash-consed expression graph and the lowering of parsed formula
//! strings into it.
//!
//! Nodes live in an arena whose children precede their parents, so the arena
//! order is a topological order. Identical sub-expressions share one node
//! (hash-consing), which makes a repeated sub-expression evaluate once.
//! Each node knows its output dimension and which indices (i, j) it depends
//! on; dimension errors are raised when a node is built.

mod autodiff;
pub mod parse;
mod simplify;

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::ops::{arith, arith::broadcast_dim, ArgValue, Args, Binary, Extremum, Op, Param, TableId, Ternary, Unary};
use crate::reduction::{Reduction, Signature};
use parse::Ast;

pub type NodeId = usize;

/// The category of a variable: indexed by i, by j, or a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cat {
    I,
    J,
    P,
}

impl Cat {
    /// KeOps' numeric code in `Var(pos, dim, cat)`.
    pub fn from_code(code: i64) -> Option<Cat> {
        match code {
            0 => Some(Cat::I),
            1 => Some(Cat::J),
            2 => Some(Cat::P),
            _ => None,
        }
    }

    pub fn keyword(self) -> &'static str {
        match self {
            Cat::I => "Vi",
            Cat::J => "Vj",
            Cat::P => "Pm",
        }
    }

    /// The bit this category sets in a node's dependency mask.
    pub fn dep_bit(self) -> u8 {
        match self {
            Cat::I => DEP_I,
            Cat::J => DEP_J,
            Cat::P => 0,
        }
    }
}

/// Most variables a formula may declare (positions are 0 .. MAX_VARIABLES - 1).
pub const MAX_VARIABLES: usize = 10_000;

pub const DEP_I: u8 = 1;
pub const DEP_J: u8 = 2;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Node {
    pub op: Op,
    pub args: Vec<NodeId>,
    pub dim: usize,
    /// Bit mask of `DEP_I` / `DEP_J`: which indices the value depends on.
    pub deps: u8,
}

/// A declared variable: position in the input list, dimension, category and,
/// when it was declared by an alias, its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarInfo {
    pub pos: usize,
    pub dim: usize,
    pub cat: Cat,
    pub name: Option<String>,
}

impl VarInfo {
    /// How error messages refer to the variable: `'x' (Vi(3))` or `Vi(0, 3)`.
    pub fn describe(&self) -> String {
        match &self.name {
            Some(n) => format!("'{n}' ({}({}))", self.cat.keyword(), self.dim),
            None => format!("{}({}, {})", self.cat.keyword(), self.pos, self.dim),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Graph {
    nodes: Vec<Node>,
    /// Hash-consing: the node of each (op, args, dim), or what a gather
    /// was rewritten to (`simplify_gather`).
    memo: HashMap<(Op, Vec<NodeId>, usize), NodeId>,
    /// Declared variables, indexed by position.
    vars: Vec<Option<VarInfo>>,
    /// Gather tables, shared by every node that uses the same table.
    tables: Vec<Vec<Option<u32>>>,
    table_ids: HashMap<Vec<Option<u32>>, TableId>,
}

impl Graph {
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn dim(&self, id: NodeId) -> usize {
        self.nodes[id].dim
    }

    pub fn deps(&self, id: NodeId) -> u8 {
        self.nodes[id].deps
    }

    /// The nodes `roots` depend on, themselves included (arguments come
    /// before the nodes that use them, so one backward pass finds them).
    pub fn live(&self, roots: &[NodeId]) -> Vec<bool> {
        let mut live = vec![false; self.len()];
        for &r in roots {
            live[r] = true;
        }
        for id in (0..self.len()).rev() {
            if live[id] {
                for &a in &self.nodes[id].args {
                    live[a] = true;
                }
            }
        }
        live
    }

    /// How many times each node is an argument of a `live` node.
    pub fn uses(&self, live: &[bool]) -> Vec<usize> {
        let mut uses = vec![0; self.len()];
        for id in (0..self.len()).filter(|&id| live[id]) {
            for &a in &self.nodes[id].args {
                uses[a] += 1;
            }
        }
        uses
    }

    /// The value of a constant node.
    pub fn const_value(&self, id: NodeId) -> Option<f64> {
        self.nodes[id].op.const_value()
    }

    pub fn table(&self, id: TableId) -> &[Option<u32>] {
        &self.tables[id]
    }

    /// Declared variables by position (gaps are positions never declared).
    pub fn vars(&self) -> &[Option<VarInfo>] {
        &self.vars
    }

    pub fn var_info(&self, pos: usize) -> Option<&VarInfo> {
        self.vars.get(pos).and_then(|v| v.as_ref())
    }

    /// Adds a node, reusing an identical one, and folding element-wise
    /// operations on constants.
    fn add(&mut self, op: Op, args: Vec<NodeId>, dim: usize) -> NodeId {
        if op.is_elementwise() {
            let values: Option<Vec<f64>> = args.iter().map(|&a| self.const_value(a)).collect();
            if let Some(v) = values.and_then(|vs| op.eval_scalar::<f64>(&vs)) {
                return self.constant_dim(v, dim);
            }
        }
        let key = (op, args, dim);
        if let Some(&id) = self.memo.get(&key) {
            return id;
        }
        let deps = match op {
            Op::Var(pos) => self.vars[pos].as_ref().map_or(0, |v| v.cat.dep_bit()),
            _ => key.1.iter().fold(0, |acc, &a| acc | self.nodes[a].deps),
        };
        let id = self.nodes.len();
        self.nodes.push(Node { op, args: key.1.clone(), dim, deps });
        self.memo.insert(key, id);
        id
    }

    /// Declares a variable; re-declaring a position must agree.
    pub fn declare_var(&mut self, info: VarInfo, column: Option<usize>) -> Result<()> {
        if info.pos >= MAX_VARIABLES {
            return Err(Error::formula(
                format!("variable position {} is too large (at most {} variables)", info.pos, MAX_VARIABLES),
                column,
            ));
        }
        if info.dim == 0 {
            return Err(Error::dimension(format!("variable {} has dimension 0", info.describe()), column));
        }
        if self.vars.len() <= info.pos {
            self.vars.resize(info.pos + 1, None);
        }
        match &mut self.vars[info.pos] {
            slot @ None => *slot = Some(info),
            Some(old) => {
                if old.dim != info.dim || old.cat != info.cat {
                    return Err(Error::formula(
                        format!(
                            "position {} is declared twice with different types: {} and {}",
                            info.pos,
                            old.describe(),
                            info.describe()
                        ),
                        column,
                    ));
                }
                if old.name.is_none() {
                    old.name = info.name;
                }
            }
        }
        Ok(())
    }

    /// The node of a declared variable.
    pub fn var(&mut self, pos: usize) -> NodeId {
        let dim = self.var_info(pos).map_or(1, |v| v.dim);
        self.add(Op::Var(pos), vec![], dim)
    }

    pub fn constant(&mut self, value: f64) -> NodeId {
        self.constant_dim(value, 1)
    }

    /// A vector of dimension `dim` whose components all equal `value`.
    pub fn constant_dim(&mut self, value: f64, dim: usize) -> NodeId {
        let key = (Op::constant(value), vec![], dim);
        if let Some(&id) = self.memo.get(&key) {
            return id;
        }
        let id = self.nodes.len();
        self.nodes.push(Node { op: key.0, args: vec![], dim, deps: 0 });
        self.memo.insert(key, id);
        id
    }

    pub fn unary(&mut self, op: Unary, x: NodeId) -> Result<NodeId> {
        if let Some(id) = self.simplify_unary(op, x) {
            return Ok(id);
        }
        let dim = self.dim(x);
        Ok(self.add(Op::Unary(op), vec![x], dim))
    }

    pub fn binary(&mut self, op: Binary, x: NodeId, y: NodeId, column: Option<usize>) -> Result<NodeId> {
        let (dx, dy) = (self.dim(x), self.dim(y));
        if op.needs_same_dims() && dx != dy {
            return Err(arith::same_error(op.name(), &[dx, dy], column));
        }
        let dim =
            broadcast_dim(dx, dy).ok_or_else(|| arith::same_or_1_error(arith::op_label(op), &[dx, dy], column))?;
        if let Some(id) = self.simplify_binary(op, x, y, dim)? {
            return Ok(id);
        }
        Ok(self.add(Op::Binary(op), vec![x, y], dim))
    }

    pub fn ternary(&mut self, op: Ternary, x: NodeId, y: NodeId, z: NodeId, column: Option<usize>) -> Result<NodeId> {
        let dims = [self.dim(x), self.dim(y), self.dim(z)];
        let dim = dims
            .iter()
            .try_fold(1, |acc, &d| broadcast_dim(acc, d))
            .ok_or_else(|| arith::same_or_1_error(op.name(), &dims, column))?;
        Ok(self.add(Op::Ternary(op), vec![x, y, z], dim))
    }

    pub fn pow(&mut self, x: NodeId, n: i32) -> Result<NodeId> {
        let dim = self.dim(x);
        match n {
            0 => Ok(self.constant_dim(1.0, dim)),
            1 => Ok(x),
            2 => self.unary(Unary::Square, x),
            -1 => self.unary(Unary::Inv, x),
            _ => Ok(self.add(Op::Pow(n), vec![x], dim)),
        }
    }

    pub fn round(&mut self, x: NodeId, digits: i32) -> Result<NodeId> {
        let dim = self.dim(x);
        Ok(self.add(Op::Round(digits), vec![x], dim))
    }

    /// Sum of the components (dimension 1).
    pub fn sum(&mut self, x: NodeId) -> Result<NodeId> {
        let dim = self.dim(x);
        self.sum_groups(x, dim)
    }

    /// Sums of consecutive groups of `group` components.
    pub fn sum_groups(&mut self, x: NodeId, group: usize) -> Result<NodeId> {
        let dim = self.dim(x);
        if group == 0 || dim % group != 0 {
            return Err(Error::Internal(format!("cannot sum groups of {group} components of a vector of dimension {dim}")));
        }
        if group == 1 {
            return Ok(x);
        }
        if let Some(v) = self.const_value(x) {
            return Ok(self.constant_dim(v * group as f64, dim / group));
        }
        Ok(self.add(Op::Sum(group), vec![x], dim / group))
    }

    /// Min, max, argmin or argmax over the components (dimension 1).
    pub fn extremum(&mut self, e: Extremum, x: NodeId) -> NodeId {
        if self.dim(x) == 1 {
            return match e {
                Extremum::Min | Extremum::Max => x,
                Extremum::ArgMin | Extremum::ArgMax => self.constant(0.0),
            };
        }
        self.add(Op::Extremum(e), vec![x], 1)
    }

    /// `out[k] = x[table[k]]`, or 0 where the table has no entry.
    pub fn gather(&mut self, x: NodeId, table: Vec<Option<u32>>) -> Result<NodeId> {
        let dim = self.dim(x);
        if table.is_empty() || table.iter().flatten().any(|&c| c as usize >= dim) {
            return Err(Error::Internal(format!("invalid gather table {table:?} for dimension {dim}")));
        }
        let identity = table.len() == dim && table.iter().enumerate().all(|(k, &c)| c == Some(k as u32));
        if identity {
            return Ok(x);
        }
        if let Some(v) = self.const_value(x) {
            // Missing entries are +0: a +0 constant stays constant.
            if v.to_bits() == 0 || table.iter().all(Option::is_some) {
                return Ok(self.constant_dim(v, table.len()));
            }
        }
        if let Op::Gather(inner) = self.node(x).op {
            // One gather instead of two; a missing entry of either is +0.
            let composed = table.iter().map(|e| e.and_then(|c| self.tables[inner][c as usize])).collect();
            return self.gather(self.node(x).args[0], composed);
        }
        let out_dim = table.len();
        let id = match self.table_ids.get(&table) {
            Some(&id) => id,
            None => {
                self.tables.push(table.clone());
                self.table_ids.insert(table.clone(), self.tables.len() - 1);
                self.tables.len() - 1
            }
        };
        let key = (Op::Gather(id), vec![x], out_dim);
        if let Some(&done) = self.memo.get(&key) {
            return Ok(done);
        }
        if let Some(out) = self.simplify_gather(x, &table)? {
            // Memoized under the gather's own key: shared subgraphs are
            // rewritten once.
            self.memo.insert(key, out);
            return Ok(out);
        }
        Ok(self.add(Op::Gather(id), vec![x], out_dim))
    }

    pub fn concat(&mut self, x: NodeId, y: NodeId) -> NodeId {
        let dim = self.dim(x) + self.dim(y);
        self.add(Op::Concat, vec![x, y], dim)
    }

    pub fn one_hot(&mut self, x: NodeId, dim: usize) -> NodeId {
        self.add(Op::OneHot(dim), vec![x], dim)
    }
}

/// A formula without reduction, such as a LazyTensor's.
#[derive(Debug, Clone)]
pub struct Expression {
    pub graph: Graph,
    pub root: NodeId,
}

impl Expression {
    pub fn parse<S: AsRef<str>>(formula: &str, aliases: &[S]) -> Result<Expression> {
        let ast = parse::parse_expression(formula)?;
        let mut lower = Lowering::new(aliases)?;
        let root = lower.expr(&ast)?;
        Ok(Expression { graph: lower.graph, root })
    }

    pub fn dim(&self) -> usize {
        self.graph.dim(self.root)
    }

    pub fn deps(&self) -> u8 {
        self.graph.deps(self.root)
    }
}

/// Which index a reduction runs over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    /// axis 0: over i, one output row per j.
    I,
    /// axis 1: over j, one output row per i.
    J,
}

impl Axis {
    /// Category of the variables that index the output rows.
    pub fn outer(self) -> Cat {
        match self {
            Axis::I => Cat::J,
            Axis::J => Cat::I,
        }
    }

    /// Category of the variables summed (or minimized...) over.
    pub fn inner(self) -> Cat {
        match self {
            Axis::I => Cat::I,
            Axis::J => Cat::J,
        }
    }
}

/// `Grad(R, v, e)` around a reduction R that is not rewritten into a
/// reduction of an in-formula Grad (see [`Formula::grad`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GradAround {
    /// Position of the variable v differentiated against.
    pub var: usize,
    /// Position of the variable e (one row per output row of R, or a
    /// parameter for the same e on every row).
    pub eta: usize,
}

/// A complete formula: a reduction of one expression (or two, for the
/// weighted reductions) over an axis, or the gradient of one.
#[derive(Debug, Clone)]
pub struct Formula {
    pub graph: Graph,
    pub reduction: Reduction,
    pub axis: Axis,
    /// The reduced expression F, then the weight G where the reduction has one.
    pub roots: Vec<NodeId>,
    /// `Grad(R, v, e)` written around the reduction R above: the formula's
    /// value is then the gradient of Σ_o e_o · R_o with respect to v, one row
    /// per point of v's index (one row for a parameter), computed by
    /// [`crate::gradient`]. `None` for a plain reduction, and for the
    /// gradients that are rewritten exactly into a plain reduction (those of
    /// Sum with respect to an i- or j-variable: `Grad(Sum_Reduction(F, 1), x,
    /// e)` is `Sum_Reduction(Grad(F, x, e), 1)` for an i-variable x and
    /// `Sum_Reduction(Grad(F, x, e), 0)` for a j-variable).
    pub grad: Option<GradAround>,
}

/// Which reductions `Grad(R, v, e)` may be written around, and how deep.
pub(crate) const GRAD_AROUND_HELP: &str = "Grad(R, v, e) is supported around every reduction R; nested gradients \
     (Grad(Grad(R, v, e1), w, e2)) only when each inner gradient is of a Sum_Reduction with respect to an \
     i- or j-variable";

impl Formula {
    /// Parses `Reduction(F, ...)` with argument declarations such as
    /// `"x = Vi(3)"`, or `Grad(Reduction(F, ...), v, e)` (also nested,
    /// see [`Formula::grad`]) and `Diff(Sum_Reduction(F, axis), v, u)`.
    pub fn parse<S: AsRef<str>>(formula: &str, aliases: &[S]) -> Result<Formula> {
        let ast = parse::parse_expression(formula)?;
        let mut lower = Lowering::new(aliases)?;
        let top = lower.top(&ast)?;
        Ok(Formula { graph: lower.graph, reduction: top.reduction, axis: top.axis, roots: top.roots, grad: top.grad })
    }

    /// Number of value columns and index columns of the result.
    pub fn output_cols(&self) -> (usize, usize) {
        match self.grad {
            Some(g) => (self.graph.var_info(g.var).map_or(0, |v| v.dim), 0),
            None => self.reduction.output_cols(),
        }
    }

    /// The index (indices) summed or reduced over to make the result: "i"
    /// (one output row per j), "j" (one per i), or "ij" for the gradient
    /// with respect to a parameter (one row).
    pub fn reduced_index(&self) -> &'static str {
        let outer = match self.grad {
            Some(g) => self.graph.var_info(g.var).map_or(Cat::P, |v| v.cat),
            None => self.axis.outer(),
        };
        match outer {
            Cat::I => "j",
            Cat::J => "i",
            Cat::P => "ij",
        }
    }

    /// Declared variables (by position); every position must be declared.
    pub fn variables(&self) -> Result<Vec<VarInfo>> {
        self.graph
            .vars()
            .iter()
            .enumerate()
            .map(|(pos, v)| {
                v.clone().ok_or_else(|| {
                    Error::formula(format!("no variable is declared at position {pos}; positions must be 0, 1, 2, ... without gaps"), None)
                })
            })
            .collect()
    }
}

/// Largest dimension of `Zero_Reduction(dim, axis)`.
const MAX_ZERO_DIM: i64 = 1 << 20;

/// The parts of a [`Formula`] that [`Lowering::top`] produces.
struct Top {
    reduction: Reduction,
    axis: Axis,
    roots: Vec<NodeId>,
    grad: Option<GradAround>,
}

fn flip(axis: Axis) -> Axis {
    match axis {
        Axis::I => Axis::J,
        Axis::J => Axis::I,
    }
}

fn is_grad_name(name: &str) -> bool {
    matches!(name, "Grad" | "Grad_WithSavedForward")
}

fn is_diff_name(name: &str) -> bool {
    matches!(name, "Diff" | "Diff_WithSavedForward")
}

/// A reduction call, or a Grad / Diff of one.
fn is_reduction_like(ast: &Ast) -> bool {
    match ast {
        Ast::Call { name, .. } if name.ends_with("_Reduction") => true,
        Ast::Call { name, args, .. } if is_grad_name(name) || is_diff_name(name) => {
            args.first().is_some_and(is_reduction_like)
        }
        _ => false,
    }
}

/// Turns syntax trees into graph nodes, resolving aliases.
struct Lowering {
    graph: Graph,
    aliases: HashMap<String, usize>,
}

impl Lowering {
    fn new<S: AsRef<str>>(aliases: &[S]) -> Result<Lowering> {
        let mut lower = Lowering { graph: Graph::default(), aliases: HashMap::new() };
        for (index, text) in aliases.iter().enumerate() {
            let text = text.as_ref();
            let (name, ast) = parse::parse_alias(text)?;
            let info = lower.declaration(&ast, Some(index), Some(name.clone())).map_err(|e| match e {
                Error::Formula { message, .. } => {
                    Error::formula(format!("in argument declaration \"{text}\": {message}"), None)
                }
                Error::Dimension { message, .. } => {
                    Error::dimension(format!("in argument declaration \"{text}\": {message}"), None)
                }
                other => other,
            })?;
            if lower.aliases.insert(name.clone(), info.pos).is_some() {
                return Err(Error::formula(format!("variable '{name}' is declared twice"), None));
            }
            lower.graph.declare_var(info, None)?;
        }
        Ok(lower)
    }

    /// The outermost call of a formula: a reduction, or Grad / Diff around one.
    fn top(&mut self, ast: &Ast) -> Result<Top> {
        match ast {
            Ast::Call { name, args, column } if is_grad_name(name) && args.first().is_some_and(is_reduction_like) => {
                self.grad_around(name, args, *column)
            }
            Ast::Call { name, args, column } if is_diff_name(name) && args.first().is_some_and(is_reduction_like) => {
                self.diff_around(name, args, *column)
            }
            Ast::Call { name, args, column } if name.ends_with("_Reduction") => self.reduction(name, args, *column),
            other => Err(Error::formula(
                format!(
                    "a formula must be a reduction such as Sum_Reduction(F, 1), or Grad(R, v, e) of one; known reductions: {}",
                    Reduction::known_names().join(", ")
                ),
                Some(other.column()),
            )),
        }
    }

    /// Checks the arity of Grad / Diff (and their _WithSavedForward forms,
    /// whose fourth argument, KeOps' saved forward value, is read but not
    /// needed: the value is recomputed) and reads v and the third argument.
    fn derivative_args(&mut self, name: &str, args: &[Ast], column: usize) -> Result<(NodeId, VarInfo, NodeId)> {
        let saved = name.ends_with("_WithSavedForward");
        let want = if saved { 4 } else { 3 };
        if args.len() != want {
            return Err(Error::formula(format!("{name} expects {want} arguments, got {}", args.len()), Some(column)));
        }
        let v = self.expr(&args[1])?;
        let info = match self.graph.node(v).op {
            Op::Var(pos) => self.graph.var_info(pos).cloned(),
            _ => None,
        }
        .ok_or_else(|| {
            Error::formula(format!("{name}: the second argument must be a variable"), Some(args[1].column()))
        })?;
        let e = self.expr(&args[2])?;
        if saved {
            self.expr(&args[3])?;
        }
        Ok((v, info, e))
    }

    /// `Grad(R, v, e)` with R a reduction or another Grad around one.
    fn grad_around(&mut self, name: &str, args: &[Ast], column: usize) -> Result<Top> {
        let col = Some(column);
        let inner = self.top(&args[0])?;
        let (v, info, e) = self.derivative_args(name, args, column)?;
        if inner.grad.is_some() {
            return Err(Error::formula(
                format!("{name}: the inner gradient cannot be differentiated again: {GRAD_AROUND_HELP}"),
                col,
            ));
        }
        let (value_cols, index_cols) = inner.reduction.output_cols();
        let outer = inner.axis.outer();
        let index = |c: Cat| if c == Cat::I { "i" } else { "j" };
        let e_deps = self.graph.deps(e);
        if e_deps & inner.axis.inner().dep_bit() != 0 {
            return Err(Error::formula(
                format!(
                    "{name}(R, v, e): e must be indexed by {} (the output index of the reduction R) or be a parameter",
                    index(outer)
                ),
                Some(args[2].column()),
            ));
        }
        let de = self.graph.dim(e);
        let accepted = [value_cols, value_cols + index_cols, index_cols];
        if !accepted.contains(&de) || de == 0 {
            return Err(Error::dimension(
                format!(
                    "{name}(R, v, e): e must have the dimension of the reduction's output ({}), got {de}",
                    if index_cols > 0 && value_cols > 0 {
                        format!("{value_cols}, or {} with the indices", value_cols + index_cols)
                    } else {
                        (value_cols + index_cols).to_string()
                    }
                ),
                Some(args[2].column()),
            ));
        }
        // Sum with respect to an i- or j-variable: an exact rewrite into a
        // plain Sum of the in-formula Grad, reduced along v's other index.
        if let (Reduction::Sum { .. }, Cat::I | Cat::J) = (inner.reduction, info.cat) {
            let d = self.graph.grad(inner.roots[0], v, e, col)?;
            let axis = if info.cat == outer { inner.axis } else { flip(inner.axis) };
            return Ok(Top { reduction: Reduction::Sum { dim: info.dim }, axis, roots: vec![d], grad: None });
        }
        let eta = match self.graph.node(e).op {
            Op::Var(pos) => pos,
            _ => {
                return Err(Error::formula(
                    format!(
                        "{name}(R, v, e): e must be a variable here (as e = V{}({de})): only the gradients of \
                         Sum_Reduction with respect to an i- or j-variable take a formula",
                        index(outer)
                    ),
                    Some(args[2].column()),
                ))
            }
        };
        Ok(Top { grad: Some(GradAround { var: info.pos, eta }), ..inner })
    }

    /// `Diff(Sum_Reduction(F, axis), v, u)`: the directional derivative of
    /// the reduction, `Sum_Reduction(Diff(F, v, u), axis)` (exact).
    fn diff_around(&mut self, name: &str, args: &[Ast], column: usize) -> Result<Top> {
        let inner = self.top(&args[0])?;
        let (v, _, u) = self.derivative_args(name, args, column)?;
        match (inner.reduction, inner.grad) {
            (Reduction::Sum { .. }, None) => {
                let d = self.graph.diff(inner.roots[0], v, u, Some(column))?;
                let dim = self.graph.dim(d);
                Ok(Top { reduction: Reduction::Sum { dim }, roots: vec![d], ..inner })
            }
            _ => Err(Error::formula(
                format!("{name}(R, v, u) around a reduction is only supported for a plain Sum_Reduction"),
                Some(column),
            )),
        }
    }

    /// `Name_Reduction(F, ...)`.
    fn reduction(&mut self, name: &str, args: &[Ast], column: usize) -> Result<Top> {
        let signature = Reduction::signature(name).ok_or_else(|| {
            Error::formula(
                format!("unknown reduction '{name}'; known reductions: {}", Reduction::known_names().join(", ")),
                Some(column),
            )
        })?;
        let int_arg = |ast: &Ast, what: &str| -> Result<i64> {
            ast.as_integer()
                .ok_or_else(|| Error::formula(format!("{name}: {what} must be an integer literal"), Some(ast.column())))
        };
        let wrong_arity = || {
            Error::formula(format!("{name} expects arguments {}, got {}", signature.usage(), args.len()), Some(column))
        };
        let (f_ast, k, axis_ast, g_ast) = match (signature, args) {
            (Signature::Axis, [f, a]) => (f, None, a, None),
            (Signature::KAxis, [f, k, a]) => (f, Some(int_arg(k, "K")?), a, None),
            (Signature::AxisOptWeight, [f, a]) => (f, None, a, None),
            // pykeops also writes the weight before the axis, (F, G, axis): the
            // axis is an integer literal and the weight a formula, so the two
            // orders cannot be confused.
            (Signature::AxisOptWeight | Signature::AxisWeight, [f, g, a])
                if g.as_integer().is_none() && a.as_integer().is_some() =>
            {
                (f, None, a, Some(g))
            }
            (Signature::AxisOptWeight | Signature::AxisWeight, [f, a, g]) => (f, None, a, Some(g)),
            (Signature::DimAxis, [d, a]) => (d, None, a, None),
            _ => return Err(wrong_arity()),
        };
        let axis = match int_arg(axis_ast, "the axis")? {
            0 => Axis::I,
            1 => Axis::J,
            other => {
                return Err(Error::formula(
                    format!("{name}: the axis must be 0 (reduce over i) or 1 (reduce over j), got {other}"),
                    Some(axis_ast.column()),
                ))
            }
        };
        if let Some(k) = k {
            if k < 1 {
                return Err(Error::formula(format!("{name}: K must be at least 1, got {k}"), Some(column)));
            }
        }
        let mut roots = vec![if signature == Signature::DimAxis {
            let dim = int_arg(f_ast, "the dimension")?;
            if !(1..=MAX_ZERO_DIM).contains(&dim) {
                return Err(Error::formula(
                    format!("{name}: the dimension must be in 1..{MAX_ZERO_DIM}, got {dim}"),
                    Some(f_ast.column()),
                ));
            }
            self.graph.constant_dim(0.0, dim as usize)
        } else {
            self.expr(f_ast)?
        }];
        if let Some(g) = g_ast {
            roots.push(self.expr(g)?);
        }
        let dims: Vec<usize> = roots.iter().map(|&r| self.graph.dim(r)).collect();
        let reduction = Reduction::new(name, k.map(|k| k as usize), &dims, column)?;
        Ok(Top { reduction, axis, roots, grad: None })
    }

    /// Reads `Vi(dim)`, `Vi(pos, dim)` (and Vj, Pm) or `Var(pos, dim, cat)`.
    /// `default_pos` is the position an alias gets from its order.
    fn declaration(&self, ast: &Ast, default_pos: Option<usize>, name: Option<String>) -> Result<VarInfo> {
        let (fname, args, column) = match ast {
            Ast::Call { name, args, column } => (name.as_str(), args, *column),
            other => {
                return Err(Error::formula(
                    "expected Vi(dim), Vj(dim), Pm(dim), Vi(pos, dim) or Var(pos, dim, cat)",
                    Some(other.column()),
                ))
            }
        };
        let ints: Vec<i64> = args
            .iter()
            .map(|a| {
                a.as_integer().filter(|v| *v >= 0).ok_or_else(|| {
                    Error::formula(format!("{fname}: arguments must be non-negative integers"), Some(a.column()))
                })
            })
            .collect::<Result<_>>()?;
        let cat_of = |n: &str| match n {
            "Vi" => Some(Cat::I),
            "Vj" => Some(Cat::J),
            "Pm" => Some(Cat::P),
            _ => None,
        };
        let (pos, dim, cat) = match (fname, ints.as_slice()) {
            ("Var", &[pos, dim, cat]) => {
                let cat = Cat::from_code(cat).ok_or_else(|| {
                    Error::formula(format!("Var: the category must be 0 (i), 1 (j) or 2 (parameter), got {cat}"), Some(column))
                })?;
                (pos as usize, dim as usize, cat)
            }
            (n, &[dim]) if cat_of(n).is_some() => {
                let pos = default_pos.ok_or_else(|| {
                    Error::formula(format!("{n}(dim) is only valid in an argument declaration; inside a formula write {n}(pos, dim)"), Some(column))
                })?;
                (pos, dim as usize, cat_of(n).unwrap_or(Cat::P))
            }
            (n, &[pos, dim]) if cat_of(n).is_some() => (pos as usize, dim as usize, cat_of(n).unwrap_or(Cat::P)),
            _ => {
                return Err(Error::formula(
                    format!("cannot read '{fname}' with {} argument(s) as a variable: expected Vi(dim), Vj(dim), Pm(dim), Vi(pos, dim) or Var(pos, dim, cat)", args.len()),
                    Some(column),
                ))
            }
        };
        Ok(VarInfo { pos, dim, cat, name })
    }

    fn expr(&mut self, ast: &Ast) -> Result<NodeId> {
        match ast {
            Ast::Number { value, .. } => Ok(self.graph.constant(*value)),
            Ast::Name { name, column } => match self.aliases.get(name) {
                Some(&pos) => Ok(self.graph.var(pos)),
                None => {
                    let mut known: Vec<&String> = self.aliases.keys().collect();
                    known.sort();
                    let known: Vec<&str> = known.iter().map(|s| s.as_str()).collect();
                    Err(Error::formula(
                        format!(
                            "unknown variable '{name}'; declared variables: {}",
                            if known.is_empty() { "none".to_string() } else { known.join(", ") }
                        ),
                        Some(*column),
                    ))
                }
            },
            Ast::Neg { arg, .. } => {
                let x = self.expr(arg)?;
                self.graph.unary(Unary::Minus, x)
            }
            Ast::Binary { .. } => {
                // A chain a + b + c + ... is a left-deep tree as long as the
                // formula: walk down its left spine in a loop, then fold back
                // up (right operands are only nested as deep as the parser allows).
                let mut spine = Vec::new();
                let mut left = ast;
                while let Ast::Binary { op, lhs, rhs, column } = left {
                    spine.push((*op, &**rhs, *column));
                    left = lhs;
                }
                let mut x = self.expr(left)?;
                for (op, rhs, column) in spine.into_iter().rev() {
                    x = self.binary_symbol(op, x, rhs, column)?;
                }
                Ok(x)
            }
            Ast::Call { name, args, column } => self.call(name, args, *column),
            Ast::List { column, .. } => Err(Error::formula(
                "a list such as [2, 3] or (2, 3) is only valid as an integer-list argument (as of TensorDot or Kron)",
                Some(*column),
            )),
        }
    }

    /// `x op y` for an infix operator: `+ - * /`, `|` (Scalprod), the
    /// comparisons (`a > b` is `LessThan(b, a)`) and `**` (Square for the
    /// literal 2, Pow for another integer literal or constant, Powf otherwise).
    fn binary_symbol(&mut self, op: &str, x: NodeId, rhs: &Ast, column: usize) -> Result<NodeId> {
        let col = Some(column);
        if op == "**" {
            if let Some(n) = rhs.as_integer().and_then(|n| i32::try_from(n).ok()) {
                return self.graph.pow(x, n);
            }
            let y = self.expr(rhs)?;
            // A constant exponent such as `2 ** 2` (folded to 4) is an integer literal too.
            let integer = self.graph.const_value(y).filter(|v| v.fract() == 0.0 && v.abs() <= i32::MAX as f64);
            if let (Some(n), 1) = (integer, self.graph.dim(y)) {
                return self.graph.pow(x, n as i32);
            }
            return self.graph.binary(Binary::Powf, x, y, col);
        }
        let y = self.expr(rhs)?;
        let (b, swap) = match op {
            "|" => {
                let def = crate::ops::composite("Scalprod").ok_or_else(|| Error::Internal("no Scalprod".into()))?;
                let values = vec![ArgValue::Node(x), ArgValue::Node(y)];
                return (def.build)(&mut self.graph, &Args { def, values, column: col });
            }
            "<" => (Binary::LessThan, false),
            ">" => (Binary::LessThan, true),
            "<=" => (Binary::LessOrEqual, false),
            ">=" => (Binary::LessOrEqual, true),
            "==" => (Binary::Equal, false),
            "!=" => (Binary::NotEqual, false),
            other => {
                let symbol = other.chars().next().filter(|_| other.len() == 1);
                let b = symbol
                    .and_then(Binary::from_symbol)
                    .ok_or_else(|| Error::Internal(format!("unknown infix operator '{other}'")))?;
                (b, false)
            }
        };
        if swap {
            self.graph.binary(b, y, x, col)
        } else {
            self.graph.binary(b, x, y, col)
        }
    }

    fn call(&mut self, name: &str, args: &[Ast], column: usize) -> Result<NodeId> {
        let col = Some(column);
        let arity = |n: usize| -> Result<()> {
            if args.len() == n {
                Ok(())
            } else {
                Err(Error::formula(format!("{name} expects {n} argument(s), got {}", args.len()), col))
            }
        };
        match name {
            "Vi" | "Vj" | "Pm" | "Var" => {
                let info = self.declaration(&Ast::Call { name: name.to_string(), args: args.to_vec(), column }, None, None)?;
                let pos = info.pos;
                self.graph.declare_var(info, col)?;
                return Ok(self.graph.var(pos));
            }
            "IntCst" => {
                arity(1)?;
                let n = args[0]
                    .as_integer()
                    .ok_or_else(|| Error::formula("IntCst expects an integer literal", Some(args[0].column())))?;
                return Ok(self.graph.constant(n as f64));
            }
            // The _WithSavedForward forms take KeOps' saved forward value as a
            // fourth argument, which symbolic derivatives do not need.
            "Grad" | "Diff" | "Grad_WithSavedForward" | "Diff_WithSavedForward" => {
                arity(if name.ends_with("_WithSavedForward") { 4 } else { 3 })?;
                let f = self.expr(&args[0])?;
                let v = self.expr(&args[1])?;
                let e = self.expr(&args[2])?;
                if let Some(saved) = args.get(3) {
                    self.expr(saved)?;
                }
                return if is_grad_name(name) { self.graph.grad(f, v, e, col) } else { self.graph.diff(f, v, e, col) };
            }
            "Pow" | "Round" => {
                arity(2)?;
                let n = args[1].as_integer().filter(|n| i32::try_from(*n).is_ok()).ok_or_else(|| {
                    Error::formula(format!("{name}(x, n) needs an integer literal n"), Some(args[1].column()))
                })?;
                let x = self.expr(&args[0])?;
                return if name == "Pow" { self.graph.pow(x, n as i32) } else { self.graph.round(x, n as i32) };
            }
            _ => {}
        }
        if let Some(u) = Unary::from_name(name) {
            arity(1)?;
            let x = self.expr(&args[0])?;
            return self.graph.unary(u, x);
        }
        if let Some(b) = Binary::from_name(name) {
            arity(2)?;
            let x = self.expr(&args[0])?;
            let y = self.expr(&args[1])?;
            return self.graph.binary(b, x, y, col);
        }
        if let Some(t) = Ternary::from_name(name) {
            arity(3)?;
            let xs = args.iter().map(|a| self.expr(a)).collect::<Result<Vec<_>>>()?;
            return self.graph.ternary(t, xs[0], xs[1], xs[2], col);
        }
        if let Some(def) = crate::ops::composite(name) {
            let (most, least) = (def.params.len(), def.params.len() - def.optional);
            if args.len() < least || args.len() > most {
                let count = if least == most { most.to_string() } else { format!("{least} to {most}") };
                return Err(Error::formula(
                    format!("{name} expects {count} argument(s), got {} (usage: {})", args.len(), def.usage),
                    col,
                ));
            }
            let values = args
                .iter()
                .zip(def.params)
                .map(|(ast, param)| self.argument(name, def.usage, ast, *param))
                .collect::<Result<Vec<_>>>()?;
            return (def.build)(&mut self.graph, &Args { def, values, column: col });
        }
        if name.ends_with("_Reduction") {
            return Err(Error::formula(format!("{name} can only be the outermost call of a formula"), col));
        }
        Err(Error::formula(
            format!("unknown function '{name}'; known functions: {}", crate::ops::known_function_names().join(", ")),
            col,
        ))
    }

    /// Reads a composite's argument as its signature says: a formula, an
    /// integer literal, or an integer list `Ind(a, b, ...)`.
    fn argument(&mut self, name: &str, usage: &str, ast: &Ast, param: Param) -> Result<ArgValue> {
        let not_integer =
            |a: &Ast| Error::formula(format!("{name}: expected an integer literal (usage: {usage})"), Some(a.column()));
        match param {
            Param::F => self.expr(ast).map(ArgValue::Node),
            Param::Int => ast.as_integer().map(ArgValue::Int).ok_or_else(|| not_integer(ast)),
            // `Ind(a, b)`, or pykeops' `[a, b]`, `(a, b)`, `(a,)`; a bare
            // integer is a list of one (Python's `(3)` is 3).
            Param::Ints => {
                let items = match ast {
                    Ast::Call { name: ind, args, .. } if ind == "Ind" => Some(args),
                    Ast::List { items, .. } => Some(items),
                    _ => None,
                };
                match (items, ast.as_integer()) {
                    (Some(items), _) => items
                        .iter()
                        .map(|a| a.as_integer().ok_or_else(|| not_integer(a)))
                        .collect::<Result<Vec<_>>>()
                        .map(ArgValue::Ints),
                    (None, Some(n)) => Ok(ArgValue::Ints(vec![n])),
                    (None, None) => Err(Error::formula(
                        format!("{name}: expected an integer list Ind(a, b, ...) or [a, b, ...] (usage: {usage})"),
                        Some(ast.column()),
                    )),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reduction::Reduction;

    #[test]
    fn dimensions_and_dependencies() {
        let e = Expression::parse("Exp(-SqDist(x, y) / 2) * b", &["x = Vi(3)", "y = Vj(3)", "b = Vj(1)"]).unwrap();
        assert_eq!(e.dim(), 1);
        assert_eq!(e.deps(), DEP_I | DEP_J);
        let e = Expression::parse("x * p", &["x = Vi(3)", "p = Pm(1)"]).unwrap();
        assert_eq!((e.dim(), e.deps()), (3, DEP_I));
        let e = Expression::parse("Vj(0, 4) + 1", &[] as &[&str]).unwrap();
        assert_eq!((e.dim(), e.deps()), (4, DEP_J));
        let e = Expression::parse("(x | y)", &["x = Vi(2)", "y = Vj(2)"]).unwrap();
        assert_eq!(e.dim(), 1);
        let e = Expression::parse("Norm2(x) + Sum(x) + SqNorm2(x) + Pow(x, 3)", &["x = Vi(5)"]).unwrap();
        assert_eq!(e.dim(), 5);
    }

    #[test]
    fn dimension_errors_at_definition() {
        let err = Expression::parse("x + y", &["x = Vi(3)", "y = Vj(2)"]).unwrap_err();
        assert_eq!(err.kind(), "dimension");
        assert!(err.to_string().contains("Received 3 and 2") && err.to_string().contains("column 3"), "{err}");
        assert_eq!(Expression::parse("SqDist(x, y)", &["x = Vi(3)", "y = Vj(2)"]).unwrap_err().kind(), "dimension");
        assert_eq!(Expression::parse("(x | y)", &["x = Vi(3)", "y = Vj(2)"]).unwrap_err().kind(), "dimension");
    }

    /// rkeops' "sameor1" and "same" rules, with its messages.
    #[test]
    fn rkeops_dimension_rules() {
        let d: &[&str] = &["x = Vi(3)", "y = Vj(3)", "w = Vi(7)", "s = Pm(1)", "t = Pm(9)"];
        let cases = [
            ("x + w", "Operation `+` expects inputs of the same dimension or dimension 1. Received 3 and 7."),
            ("x - w", "Operation `-` expects inputs of the same dimension or dimension 1. Received 3 and 7."),
            ("x * w", "Operation `*` expects inputs of the same dimension or dimension 1. Received 3 and 7."),
            ("x / w", "Operation `/` expects inputs of the same dimension or dimension 1. Received 3 and 7."),
            (
                "Clamp(x, y, w)",
                "Operation `Clamp` expects inputs of the same dimension or dimension 1. Received 3, 3 and 7.",
            ),
            (
                "IfElse(x, w, y)",
                "Operation `IfElse` expects inputs of the same dimension or dimension 1. Received 3, 7 and 3.",
            ),
            (
                "Mod(x, y, w)",
                "Operation `Mod` expects inputs of the same dimension or dimension 1. Received 3, 3 and 7.",
            ),
            (
                "SqDist(x, w)",
                "Operation `SqDist` expects inputs of the same dimension or dimension 1. Received 3 and 7.",
            ),
            (
                "WeightedSqDist(s, x, w)",
                "Operation `WeightedSqDist` expects inputs of the same dimension or dimension 1. Received 3 and 7.",
            ),
            ("(x | w)", "Operation `|` expects inputs of the same dimension. Received 3 and 7."),
            ("(x | 3)", "Operation `|` expects inputs of the same dimension. Received 3 and 1."),
            ("Scalprod(x, s)", "Operation `|` expects inputs of the same dimension. Received 3 and 1."),
            ("Atan2(x, 3)", "Operation `Atan2` expects inputs of the same dimension. Received 3 and 1."),
            ("Atan2(x, w)", "Operation `Atan2` expects inputs of the same dimension. Received 3 and 7."),
        ];
        for (f, want) in cases {
            let err = Expression::parse(f, d).unwrap_err();
            assert_eq!(err.kind(), "dimension", "{f}: {err}");
            assert!(err.to_string().contains(want), "{f}: {err}");
        }
        // Dimension 1 broadcasts in SqDist and WeightedSqDist as in element-wise operations.
        let ok = [
            ("SqDist(x, 3)", "Sum(Square(x - 3))"),
            ("SqDist(s, x)", "Sum(Square(s - x))"),
            ("WeightedSqDist(s, x, 2)", "s * Sum(Square(x - 2))"),
            ("WeightedSqDist(y, x, s)", "Sum(y * (x - s) * (x - s))"),
            ("WeightedSqDist(t, x, s)", "WeightedSqNorm(t, x - s)"),
            ("Atan2(x, y)", "Atan2(x, y)"),
        ];
        for (a, b) in ok {
            assert!(same_node(a, b, d), "{a} vs {b}");
        }
    }

    #[test]
    fn formula_errors() {
        let cases: &[(&str, &[&str])] = &[
            ("Foo(x)", &["x = Vi(1)"]),
            ("z + 1", &["x = Vi(1)"]),
            ("Exp(x, x)", &["x = Vi(1)"]),
            ("Pow(x, 1.5)", &["x = Vi(1)"]),
            ("Exp(Sum_Reduction(x, 0))", &["x = Vi(1)"]),
            ("Vi(0, 3) + Vj(0, 3)", &[]),
            ("x", &["x = Vk(3)"]),
            ("x", &["x = Vi(3)", "x = Vj(3)"]),
            ("Var(0, 2, 7)", &[]),
            ("Vi(100000000000, 3)", &[]),
        ];
        for (f, a) in cases {
            let err = Expression::parse(f, a).unwrap_err();
            assert_eq!(err.kind(), "formula", "{f}: {err}");
        }
    }

    /// Whether `a` and `b` lower to the same node (hash-consing makes equal
    /// graphs share one node: the two operands of the final Add are equal).
    fn same_node(a: &str, b: &str, aliases: &[&str]) -> bool {
        let e = Expression::parse(&format!("({a}) + ({b})"), aliases).unwrap_or_else(|e| panic!("{a} / {b}: {e}"));
        let root = e.graph.node(e.root);
        root.args.len() == 2 && root.args[0] == root.args[1]
    }

    #[test]
    fn python_operators_are_the_named_operations() {
        let xy: &[&str] = &["x = Vi(3)", "y = Vj(3)", "s = Pm(1)"];
        let cases = [
            ("x < y", "LessThan(x, y)"),
            ("x > y", "LessThan(y, x)"),
            ("x <= y", "LessOrEqual(x, y)"),
            ("x >= y", "LessOrEqual(y, x)"),
            ("x == y", "Equal(x, y)"),
            ("x != y", "NotEqual(x, y)"),
            ("x + 1 < y * 2", "LessThan(x + 1, y * 2)"),
            ("x ** 2", "Square(x)"),
            ("x ** 3", "Pow(x, 3)"),
            ("x ** -1", "Inv(x)"),
            ("x ** -2", "Pow(x, -2)"),
            ("x ** 0.5", "Powf(x, 0.5)"),
            ("x ** y", "Powf(x, y)"),
            ("x ** s", "Powf(x, s)"),
            ("-x ** 2", "-Square(x)"),
            ("x ** 2 ** 2", "Pow(x, 4)"),
            ("s ** y ** 2", "Powf(s, Square(y))"),
            ("2 * x ** 3", "2 * Pow(x, 3)"),
            ("(x | y) > s", "LessThan(s, Scalprod(x, y))"),
        ];
        for (a, b) in cases {
            assert!(same_node(a, b, xy), "{a} vs {b}");
        }
        let err = Expression::parse("x < y < s", xy).unwrap_err();
        assert_eq!(err.kind(), "formula", "{err}");
        let err = Expression::parse("x + [1, 2]", xy).unwrap_err();
        assert!(err.kind() == "formula" && err.to_string().contains("integer-list"), "{err}");
    }

    #[test]
    fn integer_lists_read_like_ind() {
        let ab: &[&str] = &["a = Vi(6)", "b = Vj(6)", "u = Vi(2)", "v = Vj(3)"];
        let cases = [
            ("Kron(u, v, Ind(2), Ind(3))", ["Kron(u, v, [2], [3])", "Kron(u, v, (2,), (3,))", "Kron(u, v, 2, 3)"]),
            (
                "TensorDot(a, b, Ind(2,3), Ind(3,2), Ind(1), Ind(0))",
                [
                    "TensorDot(a, b, [2,3], [3,2], [1], [0])",
                    "TensorDot(a, b, (2, 3), (3, 2), (1,), (0,))",
                    "TensorDot(a, b, [2,3], (3,2,), 1, [0])",
                ],
            ),
            (
                "TensorDot(a, b, Ind(2,3), Ind(3,2), Ind(1), Ind(0), Ind(1,0))",
                [
                    "TensorDot(a, b, [2,3], [3,2], [1], [0], [1,0])",
                    "TensorDot(a, b, (2,3), (3,2), (1,), (0,), (1,0))",
                    "TensorDot(a, b, [2, 3], [3, 2], [1], [0], (1, 0,))",
                ],
            ),
            (
                "TensorDot(u, v, Ind(2), Ind(3), Ind(), Ind())",
                ["TensorDot(u, v, [2], [3], [], [])", "TensorDot(u, v, (2,), (3,), (), ())", "TensorProd(u, v)"],
            ),
        ];
        for (ind, lists) in cases {
            for l in lists {
                assert!(same_node(ind, l, ab), "{ind} vs {l}");
            }
        }
        // The permutation argument reorders the output axes: (2 x 2) transposed.
        let t = Expression::parse("TensorDot(a, b, [2,3], [3,2], [1], [0], [1,0])", ab).unwrap();
        assert_eq!(t.dim(), 4);
        assert!(!same_node(
            "TensorDot(a, b, [2,3], [3,2], [1], [0], [1,0])",
            "TensorDot(a, b, [2,3], [3,2], [1], [0])",
            ab
        ));
        assert!(same_node(
            "TensorDot(a, b, [2,3], [3,2], [1], [0], [0,1])",
            "TensorDot(a, b, [2,3], [3,2], [1], [0])",
            ab
        ));
        // KeOps' permutation convention (pykeops' test_kron.py): p[m] is the
        // output position of result axis m, so that a Kron of 3-axis tensors
        // is TensorDot(.., [], [], [0, 2, 4, 1, 3, 5]) (numpy's transpose
        // would need [0, 3, 1, 4, 2, 5]).
        let k3: &[&str] = &["x = Vi(12)", "y = Vj(12)"];
        assert!(same_node(
            "Kron(x, y, [2, 3, 2], [2, 2, 3])",
            "TensorDot(x, y, [2, 3, 2], [2, 2, 3], [], [], [0, 2, 4, 1, 3, 5])",
            k3
        ));
        for bad in ["Kron(u, v, [2.5], [3])", "Kron(u, v, [u], [3])", "Kron(u, v, u, [3])"] {
            assert_eq!(Expression::parse(bad, ab).unwrap_err().kind(), "formula", "{bad}");
        }
    }

    #[test]
    fn hash_consing_shares_repeated_subexpressions() {
        let e = Expression::parse("Exp(-SqDist(x,y)) + Exp(-SqDist(x,y))", &["x = Vi(3)", "y = Vj(3)"]).unwrap();
        let once = Expression::parse("Exp(-SqDist(x,y))", &["x = Vi(3)", "y = Vj(3)"]).unwrap();
        // Only the final Add is new.
        assert_eq!(e.graph.len(), once.graph.len() + 1);
    }

    #[test]
    fn constants_fold() {
        let e = Expression::parse("x * (2 * 3 - 1)", &["x = Vi(1)"]).unwrap();
        let node = e.graph.node(e.root);
        let c = node.args[1];
        assert_eq!(e.graph.node(c).op, Op::constant(5.0));
    }

    #[test]
    fn reductions_parse() {
        let f = Formula::parse("Sum_Reduction(Exp(-SqDist(x,y)/2)*b, 1)", &["x = Vi(3)", "y = Vj(3)", "b = Vj(1)"]).unwrap();
        assert_eq!(f.axis, Axis::J);
        assert_eq!(f.reduction, Reduction::Sum { dim: 1 });
        let f = Formula::parse("ArgKMin_Reduction(SqDist(x,y), 5, 0)", &["x = Vi(3)", "y = Vj(3)"]).unwrap();
        assert_eq!(f.axis, Axis::I);
        assert_eq!(f.reduction, Reduction::KMin { k: 5, dim: 1, values: false, indices: true });
        let f = Formula::parse("LogSumExp_Reduction(-SqDist(x,y), 1, y)", &["x = Vi(3)", "y = Vj(3)"]).unwrap();
        assert_eq!(f.roots.len(), 2);
        for bad in [
            "Sum(x)",
            "Foo_Reduction(x, 1)",
            "Sum_Reduction(x, 2)",
            "Sum_Reduction(x)",
            "KMin_Reduction(x, 0, 1)",
            "KMin_Reduction(x, 1.5, 1)",
            "SumSoftMaxWeight_Reduction(x, 1)",
        ] {
            let err = Formula::parse(bad, &["x = Vi(3)"]).unwrap_err();
            assert_eq!(err.kind(), "formula", "{bad}: {err}");
        }
        let err = Formula::parse("Sum_Reduction(x, 1)", &["x = Vi(0, 3)"]);
        assert!(err.is_ok());
        let gap = Formula::parse("Sum_Reduction(Vi(1, 3), 1)", &[] as &[&str]).unwrap();
        assert_eq!(gap.variables().unwrap_err().kind(), "formula");
    }
}
