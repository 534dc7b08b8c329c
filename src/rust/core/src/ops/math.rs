//! Element-wise unary operations and the integer power.
//!
//! Dimension rule: the output has the input's dimension.
//! IEEE semantics: Log of a negative number is NaN, Log(0) = -Inf, Inv(0) = Inf;
//! Rsqrt(0) = 0 (as in KeOps, so that kernels such as 1/|x-y| vanish on the diagonal).

use crate::Real;

macro_rules! unary_ops {
    ($( $(#[doc = $doc:literal])* $variant:ident, $name:literal, $r:literal, |$x:ident| $body:expr; )*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Unary { $( $(#[doc = $doc])* $variant, )* }

        impl Unary {
            pub const ALL: &'static [Unary] = &[$(Unary::$variant),*];

            /// Name in formula strings.
            pub fn name(self) -> &'static str {
                match self { $(Unary::$variant => $name,)* }
            }

            /// Name of the R function or operator that builds it.
            pub fn r_name(self) -> &'static str {
                match self { $(Unary::$variant => $r,)* }
            }

            pub fn from_name(name: &str) -> Option<Unary> {
                Unary::ALL.iter().copied().find(|u| u.name() == name)
            }

            #[inline(always)]
            pub fn apply<T: Real>(self, value: T) -> T {
                match self { $(Unary::$variant => { let $x = value; $body })* }
            }

            /// `out[k] = f(xs[k])`; one monomorphic loop per operation so that
            /// the compiler can vectorize it.
            pub fn map<T: Real>(self, xs: &[T], out: &mut [T]) {
                match self {
                    $(Unary::$variant => for (o, &$x) in out.iter_mut().zip(xs) { *o = $body; },)*
                }
            }
        }
    };
}

unary_ops! {
    /// -x
    Minus,  "Minus",  "-",      |x| -x;
    /// e^x
    Exp,    "Exp",    "exp",    |x| x.fast_exp();
    /// natural logarithm
    Log,    "Log",    "log",    |x| x.ln();
    /// square root
    Sqrt,   "Sqrt",   "sqrt",   |x| x.sqrt();
    /// 1/sqrt(x), with Rsqrt(0) = 0
    Rsqrt,  "Rsqrt",  "rsqrt",  |x| if x == T::zero() { T::zero() } else { x.sqrt().recip() };
    /// 1/x
    Inv,    "Inv",    "inv",    |x| x.recip();
    /// x^2
    Square, "Square", "square", |x| x * x;
    /// |x|
    Abs,    "Abs",    "abs",    |x| x.abs();
    /// sine
    Sin,    "Sin",    "sin",    |x| x.sin();
    /// cosine
    Cos,    "Cos",    "cos",    |x| x.cos();
}

/// `Pow(x, n)`: x^n for an integer n (element-wise).
pub fn pow_map<T: Real>(n: i32, xs: &[T], out: &mut [T]) {
    for (o, &x) in out.iter_mut().zip(xs) {
        *o = x.powi(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_values() {
        for &u in Unary::ALL {
            assert_eq!(Unary::from_name(u.name()), Some(u));
        }
        assert_eq!(Unary::Rsqrt.apply(0.0f64), 0.0);
        assert_eq!(Unary::Rsqrt.apply(4.0f64), 0.5);
        assert_eq!(Unary::Inv.apply(0.0f64), f64::INFINITY);
        let mut out = [0.0f32; 3];
        Unary::Square.map(&[1.0, -2.0, 3.0], &mut out);
        assert_eq!(out, [1.0, 4.0, 9.0]);
    }
}
