//! Element-wise binary arithmetic: `+ - * /`.
//!
//! Dimension rule: both operands have the same dimension, or one of them has
//! dimension 1 and is broadcast against the other.

use crate::Real;

/// One operand of an element-wise loop: a run of values, or one value broadcast.
#[derive(Clone, Copy)]
pub enum Operand<'a, T> {
    Run(&'a [T]),
    Scalar(T),
}

macro_rules! binary_ops {
    ($( $(#[doc = $doc:literal])* $variant:ident, $name:literal, $symbol:literal, |$a:ident, $b:ident| $body:expr; )*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Binary { $( $(#[doc = $doc])* $variant, )* }

        impl Binary {
            pub const ALL: &'static [Binary] = &[$(Binary::$variant),*];

            /// Name in formula strings (function-call form).
            pub fn name(self) -> &'static str {
                match self { $(Binary::$variant => $name,)* }
            }

            /// Infix symbol, in formula strings and in R.
            pub fn symbol(self) -> char {
                match self { $(Binary::$variant => $symbol,)* }
            }

            pub fn from_name(name: &str) -> Option<Binary> {
                Binary::ALL.iter().copied().find(|b| b.name() == name)
            }

            pub fn from_symbol(symbol: char) -> Option<Binary> {
                Binary::ALL.iter().copied().find(|b| b.symbol() == symbol)
            }

            #[inline(always)]
            pub fn apply<T: Real>(self, lhs: T, rhs: T) -> T {
                match self { $(Binary::$variant => { let ($a, $b) = (lhs, rhs); $body })* }
            }

            /// `out[k] = f(a[k], b[k])` where a scalar operand is broadcast;
            /// one monomorphic loop per operation and operand shape.
            pub fn map<T: Real>(self, lhs: Operand<'_, T>, rhs: Operand<'_, T>, out: &mut [T]) {
                match self {
                    $(Binary::$variant => match (lhs, rhs) {
                        (Operand::Run(xs), Operand::Run(ys)) => {
                            for ((o, &$a), &$b) in out.iter_mut().zip(xs).zip(ys) { *o = $body; }
                        }
                        (Operand::Run(xs), Operand::Scalar($b)) => {
                            for (o, &$a) in out.iter_mut().zip(xs) { *o = $body; }
                        }
                        (Operand::Scalar($a), Operand::Run(ys)) => {
                            for (o, &$b) in out.iter_mut().zip(ys) { *o = $body; }
                        }
                        (Operand::Scalar($a), Operand::Scalar($b)) => {
                            for o in out.iter_mut() { *o = $body; }
                        }
                    },)*
                }
            }
        }
    };
}

binary_ops! {
    /// a + b
    Add,      "Add",      '+', |a, b| a + b;
    /// a - b
    Subtract, "Subtract", '-', |a, b| a - b;
    /// a * b
    Mult,     "Mult",     '*', |a, b| a * b;
    /// a / b
    Divide,   "Divide",   '/', |a, b| a / b;
}

/// The broadcasting rule shared by element-wise operations: equal dimensions,
/// or one side of dimension 1. Returns the output dimension.
pub fn broadcast_dim(a: usize, b: usize) -> Option<usize> {
    match (a, b) {
        _ if a == b => Some(a),
        (1, d) | (d, 1) => Some(d),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting() {
        assert_eq!(broadcast_dim(3, 3), Some(3));
        assert_eq!(broadcast_dim(1, 4), Some(4));
        assert_eq!(broadcast_dim(4, 1), Some(4));
        assert_eq!(broadcast_dim(2, 3), None);
        let mut out = [0.0f64; 3];
        Binary::Subtract.map(Operand::Scalar(10.0), Operand::Run(&[1.0, 2.0, 3.0]), &mut out);
        assert_eq!(out, [9.0, 8.0, 7.0]);
        Binary::Divide.map(Operand::Run(&[1.0, 2.0, 3.0]), Operand::Scalar(2.0), &mut out);
        assert_eq!(out, [0.5, 1.0, 1.5]);
    }
}
