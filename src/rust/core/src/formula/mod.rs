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
use crate::ops::{arith::broadcast_dim, ArgValue, Args, Binary, Extremum, Op, Param, TableId, Ternary, Unary};
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
        let dim = broadcast_dim(dx, dy).ok_or_else(|| {
            let symbol = op.symbol().map(|s| format!(" ('{s}')")).unwrap_or_default();
            Error::dimension(
                format!(
                    "dimension mismatch in {}{symbol}: left operand has dimension {dx}, right operand has dimension {dy}; \
                     element-wise operations need equal dimensions or one of dimension 1",
                    op.name(),
                ),
                column,
            )
        })?;
        if let Some(id) = self.simplify_binary(op, x, y, dim)? {
            return Ok(id);
        }
        Ok(self.add(Op::Binary(op), vec![x, y], dim))
    }

    pub fn ternary(&mut self, op: Ternary, x: NodeId, y: NodeId, z: NodeId, column: Option<usize>) -> Result<NodeId> {
        let dims = [self.dim(x), self.dim(y), self.dim(z)];
        let dim = dims.iter().try_fold(1, |acc, &d| broadcast_dim(acc, d)).ok_or_else(|| {
            Error::dimension(
                format!(
                    "dimension mismatch in {}: operands have dimensions {}, {} and {}; element-wise operations need \
                     equal dimensions or dimension 1",
                    op.name(),
                    dims[0],
                    dims[1],
                    dims[2]
                ),
                column,
            )
        })?;
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
            if v == 0.0 || table.iter().all(Option::is_some) {
                return Ok(self.constant_dim(v, table.len()));
            }
        }
        let out_dim = table.len();
        let id = match self.table_ids.get(&table) {
            Some(&id) => id,
            None => {
                self.tables.push(table.clone());
                self.table_ids.insert(table, self.tables.len() - 1);
                self.tables.len() - 1
            }
        };
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

/// A complete formula: a reduction of one expression (or two, for the
/// weighted reductions) over an axis.
#[derive(Debug, Clone)]
pub struct Formula {
    pub graph: Graph,
    pub reduction: Reduction,
    pub axis: Axis,
    /// The reduced expression F, then the weight G where the reduction has one.
    pub roots: Vec<NodeId>,
}

impl Formula {
    /// Parses `Reduction(F, ...)` with argument declarations such as `"x = Vi(3)"`.
    pub fn parse<S: AsRef<str>>(formula: &str, aliases: &[S]) -> Result<Formula> {
        let ast = parse::parse_expression(formula)?;
        let mut lower = Lowering::new(aliases)?;
        let (name, args, column) = match &ast {
            Ast::Call { name, args, column } if name.ends_with("_Reduction") => (name, args, *column),
            other => {
                return Err(Error::formula(
                    format!(
                        "a formula must be a reduction such as Sum_Reduction(F, 1); known reductions: {}",
                        Reduction::known_names().join(", ")
                    ),
                    Some(other.column()),
                ))
            }
        };
        let signature = Reduction::signature(name).ok_or_else(|| {
            Error::formula(
                format!("unknown reduction '{name}'; known reductions: {}", Reduction::known_names().join(", ")),
                Some(column),
            )
        })?;
        let int_arg = |ast: &Ast, what: &str| -> Result<i64> {
            ast.as_integer().ok_or_else(|| {
                Error::formula(format!("{name}: {what} must be an integer literal"), Some(ast.column()))
            })
        };
        let wrong_arity = || {
            Error::formula(format!("{name} expects arguments {}, got {}", signature.usage(), args.len()), Some(column))
        };
        let (f_ast, k, axis_ast, g_ast) = match (signature, args.as_slice()) {
            (Signature::Axis, [f, a]) => (f, None, a, None),
            (Signature::KAxis, [f, k, a]) => (f, Some(int_arg(k, "K")?), a, None),
            (Signature::AxisOptWeight, [f, a]) => (f, None, a, None),
            (Signature::AxisOptWeight | Signature::AxisWeight, [f, a, g]) => (f, None, a, Some(g)),
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
        let mut roots = vec![lower.expr(f_ast)?];
        if let Some(g) = g_ast {
            roots.push(lower.expr(g)?);
        }
        let dims: Vec<usize> = roots.iter().map(|&r| lower.graph.dim(r)).collect();
        let reduction = Reduction::new(name, k.map(|k| k as usize), &dims, column)?;
        Ok(Formula { graph: lower.graph, reduction, axis, roots })
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
                a.as_integer()
                    .filter(|v| *v >= 0)
                    .ok_or_else(|| Error::formula(format!("{fname}: arguments must be non-negative integers"), Some(a.column())))
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
                    let y = self.expr(rhs)?;
                    x = self.binary_symbol(op, x, y, column)?;
                }
                Ok(x)
            }
            Ast::Call { name, args, column } => self.call(name, args, *column),
        }
    }

    /// `x op y` for an infix operator (`|` is Scalprod).
    fn binary_symbol(&mut self, op: char, x: NodeId, y: NodeId, column: usize) -> Result<NodeId> {
        match Binary::from_symbol(op) {
            Some(b) => self.graph.binary(b, x, y, Some(column)),
            None => {
                let def = crate::ops::composite("Scalprod").ok_or_else(|| Error::Internal("no Scalprod".into()))?;
                let values = vec![ArgValue::Node(x), ArgValue::Node(y)];
                (def.build)(&mut self.graph, &Args { def, values, column: Some(column) })
            }
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
            "Grad" | "Diff" => {
                arity(3)?;
                let f = self.expr(&args[0])?;
                let v = self.expr(&args[1])?;
                let e = self.expr(&args[2])?;
                return if name == "Grad" { self.graph.grad(f, v, e, col) } else { self.graph.diff(f, v, e, col) };
            }
            "Pow" | "Round" => {
                arity(2)?;
                let n = args[1]
                    .as_integer()
                    .filter(|n| i32::try_from(*n).is_ok())
                    .ok_or_else(|| Error::formula(format!("{name}(x, n) needs an integer literal n"), Some(args[1].column())))?;
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
        let not_integer = |a: &Ast| {
            Error::formula(format!("{name}: expected an integer literal (usage: {usage})"), Some(a.column()))
        };
        match param {
            Param::F => self.expr(ast).map(ArgValue::Node),
            Param::Int => ast.as_integer().map(ArgValue::Int).ok_or_else(|| not_integer(ast)),
            Param::Ints => match ast {
                Ast::Call { name: ind, args, .. } if ind == "Ind" => args
                    .iter()
                    .map(|a| a.as_integer().ok_or_else(|| not_integer(a)))
                    .collect::<Result<Vec<_>>>()
                    .map(ArgValue::Ints),
                other => Err(Error::formula(
                    format!("{name}: expected an integer list Ind(a, b, ...) (usage: {usage})"),
                    Some(other.column()),
                )),
            },
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
        assert!(err.to_string().contains("dimension 3") && err.to_string().contains("column 3"), "{err}");
        assert_eq!(Expression::parse("SqDist(x, y)", &["x = Vi(3)", "y = Vj(1)"]).unwrap_err().kind(), "dimension");
        assert_eq!(Expression::parse("(x | y)", &["x = Vi(3)", "y = Vj(2)"]).unwrap_err().kind(), "dimension");
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
