//! The operation catalogue. Each operation is declared once, in one table
//! line of its family module: its formula name, its R name, its dimension rule
//! and its scalar CPU evaluation. Parser, printer, CPU engine and docs all read
//! these tables.
//!
//! Families:
//! - [`Unary`] (`math.rs`): element-wise, output dimension = input dimension.
//! - [`Binary`] (`arith.rs`): element-wise with broadcasting of dimension 1.
//! - `Pow(x, n)`: integer power (`math.rs`).
//! - `Sum(x)`: sum over a vector's components (`vector.rs`), and the vector
//!   operations defined from it (SqNorm2, Norm2, SqDist, Scalprod).

pub mod arith;
pub mod fastexp;
pub mod math;
pub mod vector;

pub use arith::Binary;
pub use math::Unary;

use crate::Real;

/// A node's operation. Variables and constants are leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// The variable at this position (dimension and category live in the graph).
    Var(usize),
    /// A scalar literal, stored as bits so that the graph can be hashed.
    Const(u64),
    Unary(Unary),
    Binary(Binary),
    Pow(i32),
    Sum,
}

impl Op {
    pub fn constant(value: f64) -> Op {
        // Normalize -0.0 to 0.0 so equal constants share a node.
        Op::Const((value + 0.0).to_bits())
    }

    /// Evaluates the operation on scalars; used for constant folding.
    pub fn eval_scalar<T: Real>(self, args: &[T]) -> Option<T> {
        match self {
            Op::Const(bits) => Some(T::from_double(f64::from_bits(bits))),
            Op::Unary(u) => Some(u.apply(args[0])),
            Op::Binary(b) => Some(b.apply(args[0], args[1])),
            Op::Pow(n) => Some(args[0].powi(n)),
            Op::Sum => Some(args[0]),
            Op::Var(_) => None,
        }
    }
}

/// Every function name the formula language knows, for "unknown name" errors.
pub fn known_function_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    names.extend(Unary::ALL.iter().map(|u| u.name()));
    names.extend(Binary::ALL.iter().map(|b| b.name()));
    names.extend(["Pow", "IntCst"]);
    names.extend(vector::VectorOp::ALL.iter().map(|v| v.name()));
    names.extend(["Vi", "Vj", "Pm", "Var"]);
    names.sort_unstable();
    names
}
