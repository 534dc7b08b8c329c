//! The operation catalogue. Each operation is declared once, in one table
//! entry of its family module, with its formula name, its R name, its
//! dimension rule and either its scalar CPU evaluation (primitives) or its
//! definition in terms of primitives (composites). Parser, CPU engine,
//! derivative rules and the documentation table all read these tables.
//!
//! Primitives (graph nodes, evaluated by the backends):
//! - [`Unary`] (`math.rs`), `Pow(x, n)`, `Round(x, d)`: element-wise;
//! - [`Binary`], [`Ternary`] (`arith.rs`): element-wise with broadcasting of
//!   dimension 1;
//! - `Sum`, `Extremum` (`vector.rs`): reductions over a vector's components;
//! - `Gather`, `Concat`, `OneHot` (`index.rs`): moving components around.
//!
//! Composites ([`Def`] tables in `vector.rs`, `index.rs`, `linalg.rs`,
//! `complex.rs`) expand into primitives when a formula is read, so that the
//! backends and the derivative rules only need the primitives.

pub mod arith;
pub mod complex;
pub mod derivative;
pub mod fastexp;
pub mod fastlog;
pub mod fastpow;
pub mod fasttrig;
pub mod index;
pub mod linalg;
pub mod math;
pub mod vector;

pub use arith::{Binary, Ternary};
pub use math::Unary;
pub use vector::Extremum;

use crate::error::{Error, Result};
use crate::formula::{Graph, NodeId};
use crate::Real;

/// Identifies a gather table stored in the graph.
pub type TableId = usize;

/// A node's operation. Variables and constants are leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// The variable at this position (dimension and category live in the graph).
    Var(usize),
    /// A literal, stored as bits so that the graph can be hashed; every
    /// component of the node has this value.
    Const(u64),
    Unary(Unary),
    Binary(Binary),
    Ternary(Ternary),
    /// Integer power.
    Pow(i32),
    /// Rounding to this many decimal places.
    Round(i32),
    /// Sums of consecutive groups of this many components.
    Sum(usize),
    /// Min, max, argmin or argmax over the components.
    Extremum(Extremum),
    /// `out[k] = x[table[k]]`, or 0 where the table has no entry.
    Gather(TableId),
    /// The components of the first argument, then those of the second.
    Concat,
    /// Vector of this dimension with a 1 at the position given by the
    /// (rounded) scalar argument, 0 elsewhere.
    OneHot(usize),
}

impl Op {
    pub fn constant(value: f64) -> Op {
        // The exact bits: -0 stays -0 (1 / -0 = -Inf, Atan2(-0, -1) = -pi).
        Op::Const(value.to_bits())
    }

    /// The value of a constant node.
    pub fn const_value(self) -> Option<f64> {
        match self {
            Op::Const(bits) => Some(f64::from_bits(bits)),
            _ => None,
        }
    }

    /// Whether the operation acts component by component (so that constant
    /// arguments fold into a constant).
    pub fn is_elementwise(self) -> bool {
        matches!(self, Op::Unary(_) | Op::Binary(_) | Op::Ternary(_) | Op::Pow(_) | Op::Round(_))
    }

    /// Evaluates an element-wise operation on scalars; used for constant folding.
    pub fn eval_scalar<T: Real>(self, args: &[T]) -> Option<T> {
        match self {
            Op::Unary(u) => Some(u.apply(args[0])),
            Op::Binary(b) => Some(b.apply(args[0], args[1])),
            Op::Ternary(t) => Some(t.apply(args[0], args[1], args[2])),
            Op::Pow(n) => Some(args[0].powi(n)),
            Op::Round(d) => Some(math::round(args[0], d)),
            _ => None,
        }
    }
}

/// What a composite operation's argument must be in a formula string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    /// A formula.
    F,
    /// An integer literal, such as a position or a dimension.
    Int,
    /// A list of integer literals written `Ind(a, b, ...)`.
    Ints,
}

/// The arguments of a composite operation, read according to its [`Param`]s.
#[derive(Debug, Clone, PartialEq)]
pub enum ArgValue {
    Node(NodeId),
    Int(i64),
    Ints(Vec<i64>),
}

/// A composite's arguments while it is being built, with the context its
/// error messages need.
pub struct Args<'a> {
    pub def: &'a Def,
    pub values: Vec<ArgValue>,
    pub column: Option<usize>,
}

impl Args<'_> {
    pub fn node(&self, k: usize) -> NodeId {
        match self.values[k] {
            ArgValue::Node(id) => id,
            _ => unreachable!("argument {k} of {} is a formula by its signature", self.def.name),
        }
    }

    pub fn int(&self, k: usize) -> i64 {
        match self.values[k] {
            ArgValue::Int(v) => v,
            _ => unreachable!("argument {k} of {} is an integer by its signature", self.def.name),
        }
    }

    pub fn ints(&self, k: usize) -> &[i64] {
        match &self.values[k] {
            ArgValue::Ints(v) => v,
            _ => unreachable!("argument {k} of {} is an integer list by its signature", self.def.name),
        }
    }

    /// Whether the optional argument `k` was given.
    pub fn has(&self, k: usize) -> bool {
        k < self.values.len()
    }

    /// A dimension error naming the operation and its usage.
    pub fn dim_error(&self, what: impl std::fmt::Display) -> Error {
        Error::dimension(format!("{}: {what} (usage: {})", self.def.name, self.def.usage), self.column)
    }

    /// A formula error (bad integer argument) naming the operation.
    pub fn error(&self, what: impl std::fmt::Display) -> Error {
        Error::formula(format!("{}: {what} (usage: {})", self.def.name, self.def.usage), self.column)
    }

    /// An integer argument that must lie in `lo..hi`.
    pub fn int_in(&self, k: usize, what: &str, lo: i64, hi: i64) -> Result<usize> {
        let v = self.int(k);
        if v < lo || v >= hi {
            return Err(self.error(format!("{what} must be in {lo}..{} (0-based), got {v}", hi - 1)));
        }
        Ok(v as usize)
    }
}

/// A composite operation: one table entry with everything about it.
pub struct Def {
    /// Name in formula strings.
    pub name: &'static str,
    /// The R function that builds it ("" when there is none).
    pub r_name: &'static str,
    pub params: &'static [Param],
    /// How many trailing parameters may be omitted.
    pub optional: usize,
    pub usage: &'static str,
    pub dim_rule: &'static str,
    pub doc: &'static str,
    /// Checks the dimensions and adds the definition to the graph.
    pub build: fn(&mut Graph, &Args<'_>) -> Result<NodeId>,
}

/// Every composite, all families together.
pub fn composites() -> impl Iterator<Item = &'static Def> {
    arith::DEFS.iter().chain(vector::DEFS).chain(index::DEFS).chain(linalg::DEFS).chain(complex::DEFS).chain(derivative::DEFS)
}

pub fn composite(name: &str) -> Option<&'static Def> {
    composites().find(|d| d.name == name)
}

/// One row of the operation table shown in the package documentation.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogueEntry {
    pub name: &'static str,
    pub r_name: &'static str,
    pub usage: String,
    pub dim_rule: &'static str,
    pub doc: String,
    pub family: &'static str,
}

/// Every operation of the formula language, in documentation order.
pub fn catalogue() -> Vec<CatalogueEntry> {
    let entry = |name, r_name, usage: String, dim_rule, doc: String, family| CatalogueEntry {
        name,
        r_name,
        usage,
        dim_rule,
        doc,
        family,
    };
    let mut rows = Vec::new();
    for &u in Unary::ALL {
        rows.push(entry(u.name(), u.r_name(), format!("{}(x)", u.name()), "dim(x)", u.doc().to_string(), "element-wise"));
    }
    rows.push(entry("Pow", "^", "Pow(x, n)".into(), "dim(x)", "x^n for an integer literal n".into(), "element-wise"));
    rows.push(entry(
        "Round",
        "round",
        "Round(x, d)".into(),
        "dim(x)",
        "x rounded to d decimal places, halves away from zero".into(),
        "element-wise",
    ));
    rows.push(entry("IntCst", "", "IntCst(n)".into(), "1", "the integer constant n".into(), "element-wise"));
    for &b in Binary::ALL {
        let usage = match b.symbol() {
            Some(s) => format!("x {s} y or {}(x, y)", b.name()),
            None => format!("{}(x, y)", b.name()),
        };
        let rule = if b.needs_same_dims() { "dim(x) = dim(y)" } else { "dim(x) = dim(y), or either is 1" };
        rows.push(entry(b.name(), b.r_name(), usage, rule, b.doc().to_string(), "element-wise"));
    }
    for &t in Ternary::ALL {
        rows.push(entry(
            t.name(),
            t.r_name(),
            format!("{}(f, a, b)", t.name()),
            "dims equal, or 1",
            t.doc().to_string(),
            "element-wise",
        ));
    }
    rows.push(entry(
        "Grad",
        "grad",
        "Grad(F, v, e)".into(),
        "dim(v); dim(e) = dim(F)",
        "gradient of F with respect to the variable v, applied to e: e' dF/dv (nestable)".into(),
        "derivatives",
    ));
    rows.push(entry(
        "Diff",
        "",
        "Diff(F, v, u)".into(),
        "dim(F); dim(u) = dim(v)",
        "directional derivative of F with respect to v along u (forward mode)".into(),
        "derivatives",
    ));
    let families = [
        ("element-wise", arith::DEFS),
        ("vector", vector::DEFS),
        ("indexing", index::DEFS),
        ("linear algebra", linalg::DEFS),
        ("complex", complex::DEFS),
        ("derivatives", derivative::DEFS),
    ];
    for (family, defs) in families {
        for d in defs {
            rows.push(entry(d.name, d.r_name, d.usage.to_string(), d.dim_rule, d.doc.to_string(), family));
        }
    }
    rows
}

/// Every function name the formula language knows, for "unknown name" errors.
pub fn known_function_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = catalogue().iter().map(|e| e.name).collect();
    names.extend(["Vi", "Vj", "Pm", "Var"]);
    names.sort_unstable();
    names.dedup();
    names
}
