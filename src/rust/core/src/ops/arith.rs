//! Element-wise binary and ternary operations: arithmetic (`+ - * /`),
//! Atan2, Powf, comparisons, IfElse, Clamp, Mod.
//!
//! Dimension rule: all operands have the same dimension, or have dimension 1
//! and are broadcast against the others.
//! Comparisons give 1 (true) or 0 (false); a comparison with NaN is false,
//! except NotEqual which is true.

use crate::error::{Error, Result};
use crate::formula::{Graph, NodeId};
use crate::ops::{fastpow, fasttrig, Unary};
use crate::Real;

/// One operand of an element-wise loop: a run of values, or one value broadcast.
#[derive(Clone, Copy)]
pub enum Operand<'a, T> {
    Run(&'a [T]),
    Scalar(T),
}

macro_rules! binary_ops {
    ($( $(#[doc = $doc:literal])* $variant:ident, $name:literal, $symbol:expr, $r:literal, cuda $cuda:literal, |$a:ident, $b:ident| $body:expr,
        d |$g:ident, $x:ident, $y:ident, $out:ident| $deriv:expr; )*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Binary { $( $(#[doc = $doc])* $variant, )* }

        impl Binary {
            pub const ALL: &'static [Binary] = &[$(Binary::$variant),*];

            /// Name in formula strings (function-call form).
            pub fn name(self) -> &'static str {
                match self { $(Binary::$variant => $name,)* }
            }

            /// Infix symbol in formula strings, for the arithmetic operations.
            pub fn symbol(self) -> Option<char> {
                match self { $(Binary::$variant => $symbol,)* }
            }

            /// Name of the R function or operator that builds it.
            pub fn r_name(self) -> &'static str {
                match self { $(Binary::$variant => $r,)* }
            }

            /// CUDA C expression of the arguments `{a}`, `{b}` (`{f}`: "f"
            /// for single-precision math functions, `T`: the type).
            pub fn cuda(self) -> &'static str {
                match self { $(Binary::$variant => $cuda,)* }
            }

            /// One-line description (the table entry's doc comment).
            pub fn doc(self) -> &'static str {
                match self { $(Binary::$variant => concat!($($doc),*).trim(),)* }
            }

            /// The partial derivatives (d out/d a, d out/d b) as graph nodes,
            /// from the arguments and the output.
            #[allow(unused_variables)]
            pub fn derivatives(self, g: &mut Graph, a: NodeId, b: NodeId, out: NodeId) -> Result<(NodeId, NodeId)> {
                match self { $(Binary::$variant => { let ($g, $x, $y, $out) = (g, a, b, out); $deriv })* }
            }

            pub fn from_name(name: &str) -> Option<Binary> {
                Binary::ALL.iter().copied().find(|b| b.name() == name)
            }

            pub fn from_symbol(symbol: char) -> Option<Binary> {
                Binary::ALL.iter().copied().find(|b| b.symbol() == Some(symbol))
            }

            #[inline(always)]
            pub fn apply<T: Real>(self, lhs: T, rhs: T) -> T {
                match self { $(Binary::$variant => { let ($a, $b) = (lhs, rhs); $body })* }
            }

            /// `out[k] = f(a[k], b[k])` where a scalar operand is broadcast;
            /// one monomorphic loop per operation and operand shape.
            #[inline(always)]
            pub fn map<T: Real>(self, lhs: Operand<'_, T>, rhs: Operand<'_, T>, out: &mut [T]) {
                match self {
                    // (Closures marked inline(always), not the functions
                    // themselves: their `Fn::call` shims do not inline.)
                    Binary::Atan2 => return map_in_domain(self, lhs, rhs, out,
                        #[inline(always)] |a, b| fasttrig::atan2_in_domain(a, b),
                        #[inline(always)] |a, b| fasttrig::atan2_finite(a, b)),
                    Binary::Powf => return map_in_domain(self, lhs, rhs, out,
                        #[inline(always)] |a, b| fastpow::in_domain(a, b),
                        #[inline(always)] |a, b| fastpow::pow_positive(a, b)),
                    _ => {}
                }
                match self {
                    $(Binary::$variant => zip_map(lhs, rhs, out, #[inline(always)] |$a, $b| $body),)*
                }
            }
        }
    };
}

/// a^b as R's `^` (`R_pow`): C pow for finite operands (NaN for a negative
/// base and a non-integer exponent, the real power for an integer one), but
/// 1^b = a^0 = 1, 0^b = +Inf for b < 0 (C: -Inf at -0), and NaN where C pow
/// gives a number for a negative base with an infinite operand:
/// (-2)^Inf, (-Inf)^0.5. The CUDA prelude's `keops_powf` is the same code.
pub fn powf<T: Real>(a: T, b: T) -> T {
    if fastpow::in_domain(a.to_double(), b.to_double()) {
        // C pow within 2 ulps, computed in f64 (exact enough for f32).
        return T::from_double(fastpow::pow_positive(a.to_double(), b.to_double()));
    }
    let (zero, one, inf) = (T::zero(), T::one(), T::infinity());
    if a == one || b == zero {
        return one;
    }
    if a == zero {
        return if b > zero {
            zero
        } else if b < zero {
            inf
        } else {
            b
        };
    }
    if a.is_finite() && b.is_finite() {
        return a.powf(b);
    }
    if a.is_nan() || b.is_nan() {
        return a + b;
    }
    if !a.is_finite() {
        if a > zero {
            return if b < zero { zero } else { inf };
        }
        if b.is_finite() && b == b.floor() {
            let odd = b % (one + one) != zero;
            return if b < zero {
                zero
            } else if odd {
                a
            } else {
                -a
            };
        }
        return T::nan();
    }
    // a finite, b = ±Inf.
    if a >= zero {
        return if (b > zero) == (a >= one) { inf } else { zero };
    }
    T::nan()
}

/// `Binary::map` of Atan2 and Powf: their branch-free functions
/// (`fasttrig::atan2_finite`, `fastpow::pow_positive`) over the whole run
/// (they vectorize), then the per-value function for the values outside
/// their domain, if any (Inf and NaN; for Powf also a base that is not
/// positive and normal): the values of `Binary::apply`.
#[inline(always)]
fn map_in_domain<T: Real>(
    op: Binary,
    lhs: Operand<'_, T>,
    rhs: Operand<'_, T>,
    out: &mut [T],
    in_domain: impl Fn(f64, f64) -> bool,
    fast: impl Fn(f64, f64) -> f64,
) {
    let mut all_in_domain = true;
    // (inline(always): the closure is too large for the inliner's default.)
    zip_map(lhs, rhs, out, #[inline(always)] |a, b| {
        let (a, b) = (a.to_double(), b.to_double());
        all_in_domain &= in_domain(a, b);
        T::from_double(fast(a, b))
    });
    if !all_in_domain {
        for (k, o) in out.iter_mut().enumerate() {
            let (a, b) = (lhs.at(k), rhs.at(k));
            if !in_domain(a.to_double(), b.to_double()) {
                *o = op.apply(a, b);
            }
        }
    }
}

/// `out[k] = f(a[k], b[k])`, one loop per operand shape. `for` loops rather
/// than `for_each`, whose `fold` would not inline into the AVX-512 caller.
#[inline(always)]
fn zip_map<T: Real>(lhs: Operand<'_, T>, rhs: Operand<'_, T>, out: &mut [T], mut f: impl FnMut(T, T) -> T) {
    match (lhs, rhs) {
        (Operand::Run(xs), Operand::Run(ys)) => {
            for ((o, &a), &b) in out.iter_mut().zip(xs).zip(ys) {
                *o = f(a, b);
            }
        }
        (Operand::Run(xs), Operand::Scalar(b)) => {
            for (o, &a) in out.iter_mut().zip(xs) {
                *o = f(a, b);
            }
        }
        (Operand::Scalar(a), Operand::Run(ys)) => {
            for (o, &b) in out.iter_mut().zip(ys) {
                *o = f(a, b);
            }
        }
        (Operand::Scalar(a), Operand::Scalar(b)) => {
            for o in out.iter_mut() {
                *o = f(a, b);
            }
        }
    }
}

fn truth<T: Real>(b: bool) -> T {
    if b {
        T::one()
    } else {
        T::zero()
    }
}

binary_ops! {
    /// a + b
    Add,         "Add",         Some('+'), "+", cuda "({a} + {b})",     |a, b| a + b,
        d |g, a, b, y| { let one = g.constant(1.0); Ok((one, one)) };
    /// a - b
    Subtract,    "Subtract",    Some('-'), "-", cuda "({a} - {b})",     |a, b| a - b,
        d |g, a, b, y| Ok((g.constant(1.0), g.constant(-1.0)));
    /// a * b
    Mult,        "Mult",        Some('*'), "*", cuda "({a} * {b})",     |a, b| a * b,
        d |g, a, b, y| Ok((b, a));
    /// a / b
    Divide,      "Divide",      Some('/'), "/", cuda "({a} / {b})",     |a, b| a / b,
        d |g, a, b, y| { let ib = g.unary(Unary::Inv, b)?; let q = g.binary(Binary::Mult, y, ib, None)?; Ok((ib, g.unary(Unary::Minus, q)?)) };
    /// angle of the point (b, a) (C atan2(a, b))
    Atan2,       "Atan2",       None,      "atan2", cuda "atan2{f}({a}, {b})", |a, b| T::from_double(fasttrig::atan2(a.to_double(), b.to_double())),
        d |g, a, b, y| {
            let (a2, b2) = (g.unary(Unary::Square, a)?, g.unary(Unary::Square, b)?);
            let r = g.binary(Binary::Add, a2, b2, None)?;
            let da = g.binary(Binary::Divide, b, r, None)?;
            let na = g.unary(Unary::Minus, a)?;
            Ok((da, g.binary(Binary::Divide, na, r, None)?))
        };
    /// a^b for a real exponent, as R's `^`: NaN for a negative base and a non-integer exponent
    Powf,        "Powf",        None,      "^", cuda "keops_powf({a}, {b})",     |a, b| powf(a, b),
        d |g, a, b, y| {
            let one = g.constant(1.0);
            let bm1 = g.binary(Binary::Subtract, b, one, None)?;
            let p = g.binary(Binary::Powf, a, bm1, None)?;
            let da = g.binary(Binary::Mult, b, p, None)?;
            let l = g.unary(Unary::Log, a)?;
            Ok((da, g.binary(Binary::Mult, l, y, None)?))
        };
    /// 1 if a == b, else 0
    Equal,       "Equal",       None,      "==", cuda "({a} == {b} ? (T)1 : (T)0)",    |a, b| truth(a == b),
        d |g, a, b, y| zero2(g);
    /// 1 if a != b, else 0
    NotEqual,    "NotEqual",    None,      "!=", cuda "({a} != {b} ? (T)1 : (T)0)",    |a, b| truth(a != b),
        d |g, a, b, y| zero2(g);
    /// 1 if a < b, else 0 (R's `>` swaps the operands)
    LessThan,    "LessThan",    None,      "<", cuda "({a} < {b} ? (T)1 : (T)0)",     |a, b| truth(a < b),
        d |g, a, b, y| zero2(g);
    /// 1 if a <= b, else 0 (R's `>=` swaps the operands)
    LessOrEqual, "LessOrEqual", None,      "<=", cuda "({a} <= {b} ? (T)1 : (T)0)",    |a, b| truth(a <= b),
        d |g, a, b, y| zero2(g);
}

/// Comparisons are piecewise constant: zero derivatives.
fn zero2(g: &mut Graph) -> Result<(NodeId, NodeId)> {
    let z = g.constant(0.0);
    Ok((z, z))
}

macro_rules! ternary_ops {
    ($( $(#[doc = $doc:literal])* $variant:ident, $name:literal, $r:literal, cuda $cuda:literal, |$a:ident, $b:ident, $c:ident| $body:expr,
        d |$g:ident, $x:ident, $y:ident, $z:ident| $deriv:expr; )*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Ternary { $( $(#[doc = $doc])* $variant, )* }

        impl Ternary {
            pub const ALL: &'static [Ternary] = &[$(Ternary::$variant),*];

            pub fn name(self) -> &'static str {
                match self { $(Ternary::$variant => $name,)* }
            }

            pub fn r_name(self) -> &'static str {
                match self { $(Ternary::$variant => $r,)* }
            }

            /// CUDA C expression of the arguments `{a}`, `{b}`, `{c}` (`{f}`: "f"
            /// for single-precision math functions, `T`: the type).
            pub fn cuda(self) -> &'static str {
                match self { $(Ternary::$variant => $cuda,)* }
            }

            /// One-line description (the table entry's doc comment).
            pub fn doc(self) -> &'static str {
                match self { $(Ternary::$variant => concat!($($doc),*).trim(),)* }
            }

            /// The three partial derivatives as graph nodes.
            #[allow(unused_variables)]
            pub fn derivatives(self, g: &mut Graph, a: NodeId, b: NodeId, c: NodeId) -> Result<[NodeId; 3]> {
                match self { $(Ternary::$variant => { let ($g, $x, $y, $z) = (g, a, b, c); $deriv })* }
            }

            pub fn from_name(name: &str) -> Option<Ternary> {
                Ternary::ALL.iter().copied().find(|t| t.name() == name)
            }

            #[inline(always)]
            pub fn apply<T: Real>(self, a: T, b: T, c: T) -> T {
                match self { $(Ternary::$variant => { let ($a, $b, $c) = (a, b, c); $body })* }
            }

            /// `out[k] = f(a[k], b[k], c[k])`, scalar operands broadcast.
            #[inline(always)]
            pub fn map<T: Real>(self, a: Operand<'_, T>, b: Operand<'_, T>, c: Operand<'_, T>, out: &mut [T]) {
                for (k, o) in out.iter_mut().enumerate() {
                    *o = self.apply(a.at(k), b.at(k), c.at(k));
                }
            }
        }
    };
}

ternary_ops! {
    /// a if f >= 0, else b
    IfElse, "IfElse", "ifelse", cuda "({a} >= (T)0 ? {b} : {c})", |f, a, b| if f >= T::zero() { a } else { b },
        d |g, f, a, b| {
            let (zero, one) = (g.constant(0.0), g.constant(1.0));
            Ok([zero, g.ternary(Ternary::IfElse, f, one, zero, None)?, g.ternary(Ternary::IfElse, f, zero, one, None)?])
        };
    /// f clamped to [a, b]: a if f < a, b if f > b, else f
    Clamp,  "Clamp",  "clamp", cuda "({a} < {b} ? {b} : ({a} > {c} ? {c} : {a}))",  |f, a, b| if f < a { a } else if f > b { b } else { f },
        d |g, f, a, b| {
            let below = g.binary(Binary::LessThan, f, a, None)?;
            let above = g.binary(Binary::LessThan, b, f, None)?;
            let one = g.constant(1.0);
            let not_below = g.binary(Binary::Subtract, one, below, None)?;
            let at_b = g.binary(Binary::Mult, not_below, above, None)?;
            let inside = g.binary(Binary::Subtract, not_below, at_b, None)?;
            Ok([inside, below, at_b])
        };
    /// f modulo n with offset d: f - n * Floor((f - d) / n), in [d, d + n)
    Mod,    "Mod",    "mod", cuda "({a} - {b} * floor{f}(({a} - {c}) / {b}))",    |f, n, d| f - n * ((f - d) / n).floor(),
        d |g, f, n, d| {
            let s = g.binary(Binary::Subtract, f, d, None)?;
            let q = g.binary(Binary::Divide, s, n, None)?;
            let fl = g.unary(Unary::Floor, q)?;
            Ok([g.constant(1.0), g.unary(Unary::Minus, fl)?, g.constant(0.0)])
        };
}

impl<T: Copy> Operand<'_, T> {
    #[inline(always)]
    fn at(&self, k: usize) -> T {
        match *self {
            Operand::Run(xs) => xs[k],
            Operand::Scalar(x) => x,
        }
    }
}

/// How dimension errors name an operation, as rkeops does: the infix
/// symbol of `+ - * /`, the formula name otherwise.
pub fn op_label(b: Binary) -> &'static str {
    match b {
        Binary::Add => "+",
        Binary::Subtract => "-",
        Binary::Mult => "*",
        Binary::Divide => "/",
        other => other.name(),
    }
}

/// "3 and 7", "3, 3 and 7".
fn list_dims(dims: &[usize]) -> String {
    let text: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
    match text.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => text.join(""),
    }
}

/// The dimension error of an operation whose operands must have equal
/// dimensions or dimension 1, in rkeops' words ("Operation `+` expects
/// inputs of the same dimension or dimension 1. Received 3 and 7.").
pub fn same_or_1_error(op: &str, dims: &[usize], column: Option<usize>) -> Error {
    Error::dimension(
        format!("Operation `{op}` expects inputs of the same dimension or dimension 1. Received {}.", list_dims(dims)),
        column,
    )
}

/// The dimension error of an operation whose operands must have equal
/// dimensions ("Operation `|` expects inputs of the same dimension. Received 3 and 7.").
pub fn same_error(op: &str, dims: &[usize], column: Option<usize>) -> Error {
    Error::dimension(
        format!("Operation `{op}` expects inputs of the same dimension. Received {}.", list_dims(dims)),
        column,
    )
}

impl Binary {
    /// Operations whose operands must have equal dimensions, without
    /// broadcasting of dimension 1 (rkeops' "same" rule): Atan2.
    pub fn needs_same_dims(self) -> bool {
        matches!(self, Binary::Atan2)
    }
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
        assert_eq!(Binary::from_symbol('*'), Some(Binary::Mult));
        assert_eq!(Binary::Equal.apply(f64::NAN, f64::NAN), 0.0);
        assert_eq!(Binary::NotEqual.apply(f64::NAN, 1.0), 1.0);
        assert_eq!(Ternary::Mod.apply(-1.0f64, 3.0, 0.0), 2.0);
        assert_eq!(Ternary::Mod.apply(5.0f64, 2.0, -1.0), -1.0);
        assert_eq!(Ternary::Clamp.apply(5.0f64, 0.0, 1.0), 1.0);
        assert_eq!(Ternary::IfElse.apply(0.0f64, 1.0, 2.0), 1.0);
    }

    #[test]
    fn rkeops_dimension_messages() {
        assert_eq!(
            same_or_1_error("+", &[3, 7], None).to_string(),
            "Operation `+` expects inputs of the same dimension or dimension 1. Received 3 and 7."
        );
        assert_eq!(
            same_or_1_error("Clamp", &[3, 3, 7], None).to_string(),
            "Operation `Clamp` expects inputs of the same dimension or dimension 1. Received 3, 3 and 7."
        );
        assert_eq!(
            same_error("|", &[3, 1], None).to_string(),
            "Operation `|` expects inputs of the same dimension. Received 3 and 1."
        );
        assert_eq!(op_label(Binary::Divide), "/");
        assert_eq!(op_label(Binary::Atan2), "Atan2");
    }

    /// R: `(-2)^0.5`, `(-2)^Inf`, `(-Inf)^0.5`, `(-0.5)^-Inf` are NaN;
    /// `(-2)^3 = -8`, `(-Inf)^3 = -Inf`, `(-Inf)^2 = Inf`, `(-0)^-1 = Inf`,
    /// `NaN^0 = 1^NaN = 1`, `0.5^-Inf = Inf`, `2^-Inf = 0`.
    #[test]
    fn powf_matches_r() {
        let (inf, nan) = (f64::INFINITY, f64::NAN);
        for (a, b) in [(-2.0, 0.5), (-2.0, inf), (-inf, 0.5), (-0.5, -inf), (-2.0, -inf), (nan, 2.0), (2.0, nan)] {
            assert!(powf(a, b).is_nan(), "{a}^{b} = {}", powf(a, b));
            assert!(powf(a as f32, b as f32).is_nan(), "{a}^{b} in f32");
        }
        let cases = [
            (-2.0, 3.0, -8.0),
            (-2.0, 2.0, 4.0),
            (-2.0, -1.0, -0.5),
            (-inf, 3.0, -inf),
            (-inf, 2.0, inf),
            (-inf, -3.0, 0.0),
            (-0.0, -1.0, inf),
            (0.0, -2.5, inf),
            (0.0, 2.5, 0.0),
            (nan, 0.0, 1.0),
            (1.0, nan, 1.0),
            (0.5, -inf, inf),
            (0.5, inf, 0.0),
            (2.0, -inf, 0.0),
            (2.0, inf, inf),
            (inf, -1.0, 0.0),
            (inf, 0.5, inf),
            (2.0, 0.5, std::f64::consts::SQRT_2),
        ];
        for (a, b, want) in cases {
            assert_eq!(powf(a, b), want, "{a}^{b}");
            assert_eq!(Binary::Powf.apply(a, b), want, "{a}^{b}");
        }
    }
}

use crate::ops::{Args, Def, Param};

/// `ClampInt(f, a, b)`: Clamp with integer literal bounds.
pub static DEFS: &[Def] = &[Def {
    name: "ClampInt",
    r_name: "clampint",
    params: &[Param::F, Param::Int, Param::Int],
    optional: 0,
    usage: "ClampInt(f, a, b)",
    dim_rule: "dim(f)",
    doc: "f clamped to [a, b] for integer literals a and b",
    build: |g, a: &Args<'_>| {
        let (lo, hi) = (g.constant(a.int(1) as f64), g.constant(a.int(2) as f64));
        g.ternary(Ternary::Clamp, a.node(0), lo, hi, a.column)
    },
}];
