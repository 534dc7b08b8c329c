//! Element-wise unary operations, the integer power and rounding.
//!
//! Dimension rule: the output has the input's dimension.
//! NaN propagates through every operation (Sign, Step and ReLU included).
//! IEEE semantics: Log of a negative number is NaN, Log(0) = -Inf, Inv(0) = Inf;
//! Rsqrt(0) = 0 (as in KeOps, so that kernels such as 1/|x-y| vanish on the diagonal).

use crate::error::Result;
use crate::formula::{Graph, NodeId};
use crate::ops::{fasttrig, Binary};
use crate::Real;

macro_rules! unary_ops {
    ($( $(#[doc = $doc:literal])* $variant:ident, $name:literal, $r:literal, cuda $cuda:literal, |$x:ident| $body:expr,
        d |$g:ident, $dx:ident, $y:ident| $deriv:expr; )*) => {
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

            /// CUDA C expression: `{x}` is the argument, `{f}` the suffix of
            /// single-precision math functions ("f" or ""), `T` the type.
            pub fn cuda(self) -> &'static str {
                match self { $(Unary::$variant => $cuda,)* }
            }

            /// One-line description (the table entry's doc comment).
            pub fn doc(self) -> &'static str {
                match self { $(Unary::$variant => concat!($($doc),*).trim(),)* }
            }

            /// The derivative f'(x) as a graph node, from the argument x and
            /// the output y = f(x).
            #[allow(unused_variables)]
            pub fn derivative(self, g: &mut Graph, x: NodeId, y: NodeId) -> Result<NodeId> {
                match self { $(Unary::$variant => { let ($g, $dx, $y) = (g, x, y); $deriv })* }
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
            #[inline(always)]
            pub fn map<T: Real>(self, xs: &[T], out: &mut [T]) {
                if map_in_range(self, xs, out) {
                    return;
                }
                match self {
                    $(Unary::$variant => map_with(xs, out, #[inline(always)] |$x| $body),)*
                }
            }
        }
    };
}

unary_ops! {
    /// -x
    Minus,    "Minus",    "-", cuda "(-{x})",        |x| -x,
        d |g, x, y| Ok(g.constant(-1.0));
    /// e^x
    Exp,      "Exp",      "exp", cuda "exp{f}({x})",      |x| x.fast_exp(),
        d |g, x, y| Ok(y);
    /// natural logarithm
    Log,      "Log",      "log", cuda "log{f}({x})",      |x| fast_ln(x),
        d |g, x, y| g.unary(Unary::Inv, x);
    /// square root (derivative 0 at 0, a subgradient)
    Sqrt,     "Sqrt",     "sqrt", cuda "sqrt{f}({x})",     |x| x.sqrt(),
        d |g, x, y| { let r = g.unary(Unary::Rsqrt, x)?; g.scale(0.5, r) };
    /// 1/sqrt(x), with Rsqrt(0) = 0 (derivative 0 at 0)
    Rsqrt,    "Rsqrt",    "rsqrt", cuda "({x} == (T)0 ? (T)0 : rsqrt{f}({x}))",    |x| if x == T::zero() { T::zero() } else { x.sqrt().recip() },
        d |g, x, y| { let c = g.pow(y, 3)?; g.scale(-0.5, c) };
    /// 1/x
    Inv,      "Inv",      "inv", cuda "((T)1 / {x})",      |x| x.recip(),
        d |g, x, y| { let s = g.unary(Unary::Square, y)?; g.unary(Unary::Minus, s) };
    /// x^2
    Square,   "Square",   "square", cuda "({x} * {x})",   |x| x * x,
        d |g, x, y| g.scale(2.0, x);
    /// |x| (derivative Sign(x), 0 at 0)
    Abs,      "Abs",      "abs", cuda "fabs{f}({x})",      |x| x.abs(),
        d |g, x, y| g.unary(Unary::Sign, x);
    /// sine
    Sin,      "Sin",      "sin", cuda "sin{f}({x})",      |x| T::from_double(fasttrig::sin(x.to_double())),
        d |g, x, y| g.unary(Unary::Cos, x);
    /// cosine
    Cos,      "Cos",      "cos", cuda "cos{f}({x})",      |x| T::from_double(fasttrig::cos(x.to_double())),
        d |g, x, y| { let s = g.unary(Unary::Sin, x)?; g.unary(Unary::Minus, s) };
    /// arcsine
    Asin,     "Asin",     "asin", cuda "asin{f}({x})",     |x| T::from_double(fasttrig::asin(x.to_double())),
        d |g, x, y| { let r = one_minus_square(g, x)?; g.unary(Unary::Rsqrt, r) };
    /// arccosine
    Acos,     "Acos",     "acos", cuda "acos{f}({x})",     |x| T::from_double(fasttrig::acos(x.to_double())),
        d |g, x, y| { let r = one_minus_square(g, x)?; let r = g.unary(Unary::Rsqrt, r)?; g.unary(Unary::Minus, r) };
    /// arctangent
    Atan,     "Atan",     "atan", cuda "atan{f}({x})",     |x| T::from_double(fasttrig::atan(x.to_double())),
        d |g, x, y| { let s = g.unary(Unary::Square, x)?; let one = g.constant(1.0); let s = g.binary(Binary::Add, one, s, None)?; g.unary(Unary::Inv, s) };
    /// sign: -1, 0 or 1 (Sign(0) = 0; derivative 0)
    Sign,     "Sign",     "sign", cuda "({x} > (T)0 ? (T)1 : ({x} < (T)0 ? (T)-1 : {x} * (T)0))",     |x| if x > T::zero() { T::one() } else if x < T::zero() { -T::one() } else { x * T::zero() },
        d |g, x, y| Ok(g.constant(0.0));
    /// Heaviside step: 0 for x < 0, 1 for x >= 0 (derivative 0)
    Step,     "Step",     "step", cuda "({x} >= (T)0 ? (T)1 : ({x} < (T)0 ? (T)0 : {x}))",     |x| if x >= T::zero() { T::one() } else if x < T::zero() { T::zero() } else { x },
        d |g, x, y| Ok(g.constant(0.0));
    /// max(x, 0) (derivative Step(x))
    ReLU,     "ReLU",     "relu", cuda "({x} < (T)0 ? (T)0 : {x})",     |x| if x < T::zero() { T::zero() } else { x },
        d |g, x, y| g.unary(Unary::Step, x);
    /// x log(x), with XLogX(0) = 0
    XLogX,    "XLogX",    "xlogx", cuda "({x} == (T)0 ? (T)0 : {x} * log{f}({x}))",    |x| if x == T::zero() { T::zero() } else { x * fast_ln(x) },
        d |g, x, y| { let l = g.unary(Unary::Log, x)?; let one = g.constant(1.0); g.binary(Binary::Add, l, one, None) };
    /// sin(x)/x, with SinXDivX(0) = 1 (derivative (cos x - sin(x)/x)/x, NaN at 0)
    SinXDivX, "SinXDivX", "sinxdivx", cuda "({x} == (T)0 ? (T)1 : sin{f}({x}) / {x})", |x| if x == T::zero() { T::one() } else { T::from_double(fasttrig::sin(x.to_double())) / x },
        d |g, x, y| { let c = g.unary(Unary::Cos, x)?; let d = g.binary(Binary::Subtract, c, y, None)?; g.binary(Binary::Divide, d, x, None) };
    /// largest integer not greater than x (derivative 0)
    Floor,    "Floor",    "floor", cuda "floor{f}({x})",    |x| x.floor(),
        d |g, x, y| Ok(g.constant(0.0));
}

/// `Unary::map` of the operations whose per-value function branches on the
/// argument's range (Sin, Cos, SinXDivX: |x| <= `fasttrig::REDUCED_LIMIT`;
/// Asin, Acos: |x| <= 1), when the whole run is in range: their branch-free
/// functions, which vectorize (the same values). False if not taken.
#[inline(always)]
fn map_in_range<T: Real>(u: Unary, xs: &[T], out: &mut [T]) -> bool {
    let sin = |x: T| T::from_double(fasttrig::sin_reduced(x.to_double()));
    match u {
        Unary::Sin | Unary::Cos | Unary::SinXDivX if fasttrig::all_reduced(xs) => match u {
            Unary::Sin => map_with(xs, out, sin),
            Unary::Cos => map_with(xs, out, |x| T::from_double(fasttrig::cos_reduced(x.to_double()))),
            _ => map_with(xs, out, |x| if x == T::zero() { T::one() } else { sin(x) / x }),
        },
        Unary::Asin | Unary::Acos if crate::ops::fastexp::all_within(xs, T::one()) => match u {
            Unary::Asin => map_with(xs, out, |x| T::from_double(fasttrig::asin_unit(x.to_double()))),
            _ => map_with(xs, out, |x| T::from_double(fasttrig::acos_unit(x.to_double()))),
        },
        _ => return false,
    }
    true
}

/// `out[k] = f(xs[k])`. A `for` loop rather than `for_each`: the latter's
/// `fold` stays a separate (baseline SSE2) function instead of inlining into
/// the AVX-512 caller.
#[inline(always)]
fn map_with<T: Real>(xs: &[T], out: &mut [T], f: impl Fn(T) -> T) {
    for (o, &x) in out.iter_mut().zip(xs) {
        *o = f(x);
    }
}

/// log(x) by the vectorizable [`crate::ops::fastlog::ln_f64`] (float32
/// through float64).
#[inline(always)]
fn fast_ln<T: Real>(x: T) -> T {
    T::from_double(crate::ops::fastlog::ln_f64(x.to_double()))
}

fn one_minus_square(g: &mut Graph, x: NodeId) -> Result<NodeId> {
    let s = g.unary(Unary::Square, x)?;
    let one = g.constant(1.0);
    g.binary(Binary::Subtract, one, s, None)
}

/// `Pow(x, n)`: x^n for an integer n (element-wise).
#[inline(always)]
pub fn pow_map<T: Real>(n: i32, xs: &[T], out: &mut [T]) {
    // Binary exponentiation over blocks of values: one vectorised pass of
    // multiplies per bit of |n| (O(log n)), instead of a call of `powi` (the
    // same algorithm, compiler-rt's __powidf2, one value at a time) per
    // value. The multiplies happen in the same order as in __powidf2, so the
    // results are those of `powi`, bit for bit.
    const BLOCK: usize = 64;
    for (xs, out) in xs.chunks(BLOCK).zip(out.chunks_mut(BLOCK)) {
        let mut base = [T::zero(); BLOCK];
        let base = &mut base[..xs.len()];
        base.copy_from_slice(xs);
        let out = &mut out[..xs.len()];
        out.fill(T::one());
        let mut bits = n.unsigned_abs();
        loop {
            if bits & 1 == 1 {
                for (o, &b) in out.iter_mut().zip(base.iter()) {
                    *o = *o * b;
                }
            }
            bits >>= 1;
            if bits == 0 {
                break;
            }
            for b in base.iter_mut() {
                *b = *b * *b;
            }
        }
        if n < 0 {
            for o in out.iter_mut() {
                *o = T::one() / *o;
            }
        }
    }
}

/// `Round(x, d)`: x rounded to d decimal places, halves away from zero (C
/// `round`), computed in double precision. The limits are R's `round(x, d)`:
/// x itself when it is not finite, 0, or has no digit beyond the d-th
/// (d > 323, or log10|x| + d > 15), and 0 for d < -308 — never the NaN of
/// Inf / Inf or 0 / 0 that `round(x * 10^d) / 10^d` gives there. The CUDA
/// prelude's `keops_round` is the same code.
pub fn round<T: Real>(x: T, digits: i32) -> T {
    T::from_double(round_f64(x.to_double(), digits))
}

fn round_f64(x: f64, digits: i32) -> f64 {
    const MAX_DIGITS: i32 = 308; // largest decimal exponent of a double
    if !x.is_finite() || x == 0.0 || digits > MAX_DIGITS + 15 {
        return x;
    }
    if digits < -MAX_DIGITS {
        return 0.0;
    }
    if digits == 0 {
        return x.round();
    }
    if std::f64::consts::LOG10_2 * (0.5 + logb(x)) + digits as f64 > f64::DIGITS as f64 {
        return x; // no digit left to round
    }
    // 10^d in two factors when it would overflow (|x| tiny, d > 308).
    let (s1, s2) = (10f64.powi(digits.min(MAX_DIGITS)), 10f64.powi((digits - MAX_DIGITS).max(0)));
    let r = (x * s1 * s2).round() / s2 / s1;
    // Rounding up to the next multiple of 10^-d can overflow (1.7e308 at d = -308).
    if r.is_finite() {
        r
    } else {
        (x * s1 * s2).trunc() / s2 / s1
    }
}

/// The binary exponent of a finite non-zero x (C `logb`).
fn logb(x: f64) -> f64 {
    let bits = x.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i64;
    if exponent == 0 {
        let mantissa = bits & ((1 << 52) - 1);
        (63 - mantissa.leading_zeros() as i64 - 1074) as f64
    } else {
        (exponent - 1023) as f64
    }
}

#[inline(always)]
pub fn round_map<T: Real>(digits: i32, xs: &[T], out: &mut [T]) {
    for (o, &x) in out.iter_mut().zip(xs) {
        *o = round(x, digits);
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
        assert_eq!(Unary::Sign.apply(0.0f64), 0.0);
        assert_eq!(Unary::Step.apply(0.0f64), 1.0);
        assert_eq!(Unary::XLogX.apply(0.0f64), 0.0);
        assert_eq!(Unary::SinXDivX.apply(0.0f64), 1.0);
        assert!(Unary::Sign.apply(f64::NAN).is_nan() && Unary::Step.apply(f64::NAN).is_nan());
        assert_eq!(round(2.5f64, 0), 3.0);
        assert_eq!(round(-2.5f64, 0), -3.0);
        assert_eq!(round(1.2345f64, 2), 1.23);
    }

    /// R: round(x, 20) = round(x, 400) = x, round(x, -400) = 0, and no NaN
    /// for a finite x at any d.
    #[test]
    fn round_with_extreme_digits() {
        for x in [1.5f64, -123.456, 1e300, -1e-300, 5e-324, f64::MAX, 0.1] {
            for d in [324, 400, i32::MAX] {
                assert_eq!(round(x, d), x, "round({x}, {d})");
            }
            if x.abs() >= 0.1 {
                assert_eq!(round(x, 20), x, "round({x}, 20)");
            }
            for d in [-309, -400, i32::MIN] {
                assert_eq!(round(x, d), 0.0, "round({x}, {d})");
            }
            for d in -400..400 {
                assert!(round(x, d).is_finite(), "round({x}, {d}) = {}", round(x, d));
                assert!(round(x as f32, d).is_finite() || !(x as f32).is_finite(), "f32 round({x}, {d})");
            }
        }
        assert_eq!(round(1.7e308f64, -308), 1e308);
        assert_eq!(round(123456.0f64, -3), 123000.0);
        assert_eq!(round(1.5e-310f64, 310), 2e-310);
        assert_eq!(round(1.25e-320f64, 320), 1e-320);
        assert_eq!(round(-1e-300f64, 20), 0.0); // -0, as in R
        assert_eq!(round(-1e-300f64, 320), -1e-300);
        assert!(round(f64::NAN, 2).is_nan() && round(f64::INFINITY, -2) == f64::INFINITY);
    }
}

#[cfg(test)]
mod pow_tests {
    use super::pow_map;

    /// The blocked exponentiation gives `powi`'s results bit for bit, with
    /// special values, for both precisions and lengths that are not a
    /// multiple of the block.
    #[test]
    fn pow_map_is_powi() {
        let mut xs: Vec<f64> = (0..150).map(|k| (k as f64 - 75.0) * 0.37).collect();
        xs.extend([0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 1e-300, 1e300, f64::MIN_POSITIVE]);
        for n in [-37, -8, -3, -1, 0, 1, 3, 5, 8, 13, 64, 1023, i32::MAX, i32::MIN] {
            let mut out = vec![0.0; xs.len()];
            pow_map(n, &xs, &mut out);
            for (x, o) in xs.iter().zip(&out) {
                let want = x.powi(n);
                assert!(want.to_bits() == o.to_bits() || (want.is_nan() && o.is_nan()), "{x}^{n}: {o} vs {want}");
            }
            let xs32: Vec<f32> = xs.iter().map(|&x| x as f32).collect();
            let mut out32 = vec![0.0f32; xs32.len()];
            pow_map(n, &xs32, &mut out32);
            for (x, o) in xs32.iter().zip(&out32) {
                let want = x.powi(n);
                assert!(want.to_bits() == o.to_bits() || (want.is_nan() && o.is_nan()), "{x}^{n} (f32): {o} vs {want}");
            }
        }
    }
}
