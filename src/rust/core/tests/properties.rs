//! Property tests (proptest):
//! (a) random bytes, random token sequences of the formula grammar and
//!     mutations of valid formulas never panic anywhere in parse → graph →
//!     simplification → Grad/Diff → CPU program → evaluation (errors are fine);
//! (b) random element-wise formulas evaluated by the engine equal a naive
//!     tree-walking interpreter with std f64 maths on data full of NaN, ±Inf,
//!     ±0, subnormals and huge values: NaN and infinity patterns exactly,
//!     values bit for bit without Exp (no approximation) and within 1e-12
//!     relative with Exp (the engine's exp is a polynomial), plus what a few
//!     ulps on each exp do to the reference (the formula's conditioning).
//! (There is no formula printer yet, so no print/parse round trip.)

use keopsr_core::formula::Cat;
use keopsr_core::{evaluate, Formula, Input, Options};
use proptest::prelude::*;
use std::cell::Cell;

const ALIASES: &[&str] = &["x = Vi(2)", "y = Vj(2)", "b = Vj(1)", "p = Pm(1)"];

const VALID: &[&str] = &[
    "Sum_Reduction(Exp(-SqDist(x, y) / 2) * b, 1)",
    "Min_ArgMin_Reduction(Norm2(x - y) + p, 0)",
    "KMin_ArgKMin_Reduction(SqDist(x, y), 2, 1)",
    "LogSumExp_Reduction(-(x | y), 1, b)",
    "Sum_Reduction(Grad(Exp(-Sum(Square(x - y))), x, b), 1)",
    "Sum_Reduction(Diff(Sin(x * y) + Powf(Abs(x) + 1, y), x, y), 0)",
    "SumSoftMaxWeight_Reduction(-SqDist(x, y), 1, Concat(b, x))",
    "Max_Reduction(IfElse(x - y, Round(x, 2), Pow(y, 3)) + Elem(x, 1), 1)",
    "Sum_Reduction(MatVecMult(Concat(x, y), y) + OneHot(b, 2) + Extract(Concat(x, y), 1, 2), 1)",
    "Sum_Reduction(Clamp(x, -1, y) + Mod(x, 2, 0) + Atan2(y, x) + Log(Abs(x)) * Inv(y), 1)",
];

const TOKENS: &[&str] = &[
    "x",
    "y",
    "b",
    "p",
    "(",
    ")",
    ",",
    "+",
    "-",
    "*",
    "/",
    "|",
    "=",
    "0",
    "1",
    "2",
    "-1",
    "0.5",
    "1e308",
    "3",
    "Exp",
    "Log",
    "Sqrt",
    "Sum",
    "SqDist",
    "Pow",
    "Powf",
    "Round",
    "Grad",
    "Diff",
    "Vi",
    "Vj",
    "Pm",
    "Var",
    "OneHot",
    "Elem",
    "Extract",
    "Concat",
    "Min",
    "ArgMin",
    "Max",
    "IfElse",
    "Clamp",
    "MatVecMult",
    "TensorDot",
    "Ind",
    "Sum_Reduction",
    "Min_ArgMin_Reduction",
    "KMin_Reduction",
    "LogSumExp_Reduction",
    "Norm2",
    "Inv",
    "Sign",
    "ComplexMult",
    "Kron",
    "IntCst",
    "SumSoftMaxWeight_Reduction",
];

/// Parses, differentiates, compiles and evaluates `text` on tiny data;
/// every error is fine, a panic fails the property.
fn exercise(text: &str) {
    for formula in [
        text.to_string(),
        format!("Sum_Reduction(Grad({text}, x, {text}), 1)"),
        format!("Sum_Reduction(Diff({text}, x, x), 0)"),
    ] {
        let Ok(f) = Formula::parse(&formula, ALIASES) else { continue };
        // Only evaluate small formulas: a random OneHot(x, 2000000000) is
        // a legitimate request for gigabytes.
        if (0..f.graph.len()).any(|id| f.graph.dim(id) > 64) {
            continue;
        }
        let Ok(vars) = f.variables() else { continue };
        let data: Vec<Vec<f64>> = vars
            .iter()
            .map(|v| {
                let n = if v.cat == Cat::P { 1 } else { 3 };
                (0..n * v.dim).map(|k| [0.5, -1.0, 0.0, 2.0, f64::NAN, f64::INFINITY][k % 6]).collect()
            })
            .collect();
        let inputs: Vec<Input<'_>> = vars
            .iter()
            .zip(&data)
            .map(|(v, d)| if v.cat == Cat::P { Input::vector(d) } else { Input::matrix(d, d.len() / v.dim, v.dim) })
            .collect();
        let _ = evaluate(&f, &inputs, &Options { threads: 1, ..Options::default() }, &mut || false);
    }
}

fn mutate(base: &str, edits: &[(u8, usize, usize)]) -> String {
    let mut s: Vec<char> = base.chars().collect();
    for &(kind, a, b) in edits {
        if s.is_empty() {
            break;
        }
        let (i, j) = (a % s.len(), b % s.len());
        let (lo, hi) = (i.min(j), i.max(j));
        match kind % 4 {
            0 => {
                s.drain(lo..hi);
            }
            1 => {
                let t: Vec<char> = TOKENS[b % TOKENS.len()].chars().collect();
                s.splice(i..i, t);
            }
            2 => {
                let dup: Vec<char> = s[lo..hi].to_vec();
                s.splice(j..j, dup);
            }
            _ => s.swap(i, j),
        }
    }
    s.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        exercise(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn random_tokens_never_panic(tokens in proptest::collection::vec(0..TOKENS.len(), 0..40)) {
        let text: Vec<&str> = tokens.iter().map(|&t| TOKENS[t]).collect();
        exercise(&text.join(" "));
    }

    #[test]
    fn mutated_formulas_never_panic(
        base in 0..VALID.len(),
        edits in proptest::collection::vec((any::<u8>(), any::<usize>(), any::<usize>()), 1..5),
    ) {
        exercise(&mutate(VALID[base], &edits));
    }
}

/// An element-wise formula of x (Vi(1)), y (Vj(1)) and p (Pm(1)).
#[derive(Debug, Clone)]
enum E {
    X,
    Y,
    P,
    Num(f64),
    Un(&'static str, Box<E>),
    Bin(&'static str, Box<E>, Box<E>),
    Pow(Box<E>, i32),
    Round(Box<E>, i32),
    IfElse(Box<E>, Box<E>, Box<E>),
}

const UNARY: &[&str] =
    &["-", "Log", "Sqrt", "Abs", "Sin", "Cos", "Square", "Inv", "Sign", "Step", "ReLU", "Floor", "Atan", "Rsqrt"];
const BINARY: &[&str] = &["+", "-", "*", "/", "Powf", "Atan2", "Max2"];

fn text(e: &E) -> String {
    match e {
        E::X => "x".into(),
        E::Y => "y".into(),
        E::P => "p".into(),
        E::Num(v) => format!("{v:?}"),
        E::Un("-", a) => format!("(-{})", text(a)),
        E::Un(f, a) => format!("{f}({})", text(a)),
        E::Bin("Max2", a, b) => format!("IfElse({} - {}, {}, {})", text(a), text(b), text(a), text(b)),
        E::Bin(op, a, b) if op.len() == 1 => format!("({} {op} {})", text(a), text(b)),
        E::Bin(f, a, b) => format!("{f}({}, {})", text(a), text(b)),
        E::Pow(a, n) => format!("Pow({}, {n})", text(a)),
        E::Round(a, d) => format!("Round({}, {d})", text(a)),
        E::IfElse(c, a, b) => format!("IfElse({}, {}, {})", text(c), text(a), text(b)),
    }
}

/// R's `^` (R_pow), written from its definition.
fn r_pow(x: f64, y: f64) -> f64 {
    if x == 1.0 || y == 0.0 {
        return 1.0;
    }
    if x == 0.0 {
        return if y > 0.0 {
            0.0
        } else if y < 0.0 {
            f64::INFINITY
        } else {
            y
        };
    }
    if x.is_finite() && y.is_finite() {
        return x.powf(y);
    }
    if x.is_nan() || y.is_nan() {
        return x + y;
    }
    if !x.is_finite() {
        if x > 0.0 {
            return if y < 0.0 { 0.0 } else { f64::INFINITY };
        }
        if y.is_finite() && y == y.floor() {
            return if y < 0.0 {
                0.0
            } else if y % 2.0 != 0.0 {
                x
            } else {
                -x
            };
        }
    }
    if !y.is_finite() && x >= 0.0 {
        return if y > 0.0 {
            if x >= 1.0 {
                f64::INFINITY
            } else {
                0.0
            }
        } else if x < 1.0 {
            f64::INFINITY
        } else {
            0.0
        };
    }
    f64::NAN
}

/// The reference value of `e`; `nudge = Some((k, f))` multiplies the k-th
/// exp evaluated (counted in `seen`) by f, to measure how much one rounding
/// of an exp moves the result.
fn eval(e: &E, x: f64, y: f64, p: f64, nudge: Option<(usize, f64)>, seen: &Cell<usize>) -> f64 {
    let ev = |a: &E| eval(a, x, y, p, nudge, seen);
    match e {
        E::X => x,
        E::Y => y,
        E::P => p,
        E::Num(v) => *v,
        E::Un(f, a) => {
            let a = ev(a);
            match *f {
                "-" => -a,
                "Exp" => {
                    let k = seen.replace(seen.get() + 1);
                    a.exp() * nudge.filter(|&(at, _)| at == k).map_or(1.0, |(_, f)| f)
                }
                // The engine's log (within 1 ulp of libm's, tested in
                // ops::fastlog); its special values are checked here.
                "Log" => keopsr_core::ops::fastlog::ln_f64(a),
                "Sqrt" => a.sqrt(),
                "Abs" => a.abs(),
                // The engine's sine, cosine and arctangents (within 2 ulps
                // of libm's, tested in ops::fasttrig).
                "Sin" => keopsr_core::ops::fasttrig::sin(a),
                "Cos" => keopsr_core::ops::fasttrig::cos(a),
                "Square" => a * a,
                "Inv" => 1.0 / a,
                "Sign" => {
                    if a > 0.0 {
                        1.0
                    } else if a < 0.0 {
                        -1.0
                    } else {
                        a * 0.0
                    }
                }
                "Step" => {
                    if a >= 0.0 {
                        1.0
                    } else if a < 0.0 {
                        0.0
                    } else {
                        a
                    }
                }
                "ReLU" => {
                    if a < 0.0 {
                        0.0
                    } else {
                        a
                    }
                }
                "Floor" => a.floor(),
                "Atan" => keopsr_core::ops::fasttrig::atan(a),
                "Rsqrt" => {
                    if a == 0.0 {
                        0.0
                    } else {
                        1.0 / a.sqrt()
                    }
                }
                other => unreachable!("{other}"),
            }
        }
        E::Bin(op, a, b) => {
            let (a, b) = (ev(a), ev(b));
            match *op {
                "+" => a + b,
                "-" => a - b,
                "*" => a * b,
                "/" => a / b,
                // For a positive base, the engine's pow (within 2 ulps of
                // libm's, tested in ops::fastpow); R's rules elsewhere.
                "Powf" if keopsr_core::ops::fastpow::in_domain(a, b) => keopsr_core::ops::fastpow::pow_positive(a, b),
                "Powf" => r_pow(a, b),
                "Atan2" => keopsr_core::ops::fasttrig::atan2(a, b),
                "Max2" => {
                    if a - b >= 0.0 {
                        a
                    } else {
                        b
                    }
                }
                other => unreachable!("{other}"),
            }
        }
        E::Pow(a, n) => ev(a).powi(*n),
        E::Round(a, d) => {
            let (a, s) = (ev(a), 10f64.powi(*d));
            // R's round(): x itself when it has no digit beyond the d-th.
            let exponent = ((a.to_bits() >> 52) & 0x7ff) as f64 - 1023.0; // logb for normal numbers
            let no_digit = a.is_normal() && std::f64::consts::LOG10_2 * (0.5 + exponent) + *d as f64 > 15.0;
            if !a.is_finite() || a == 0.0 {
                a
            } else if *d == 0 {
                // Halves away from zero at any size (2499999999999999.5 -> 2.5e15).
                a.round()
            } else if no_digit {
                a
            } else {
                (a * s).round() / s
            }
        }
        E::IfElse(c, a, b) => {
            if ev(c) >= 0.0 {
                ev(a)
            } else {
                ev(b)
            }
        }
    }
}

fn expr(with_exp: bool) -> impl Strategy<Value = E> {
    let leaf = prop_oneof![
        Just(E::X),
        Just(E::Y),
        Just(E::P),
        prop::sample::select(vec![0.0, 1.0, 2.0, 0.5, 3.0, 1e300, 1e-300]).prop_map(E::Num),
    ];
    let unary: Vec<&'static str> = UNARY.iter().copied().chain(with_exp.then_some("Exp")).collect();
    leaf.prop_recursive(5, 24, 3, move |inner| {
        prop_oneof![
            (prop::sample::select(unary.clone()), inner.clone()).prop_map(|(f, a)| E::Un(f, Box::new(a))),
            (prop::sample::select(BINARY.to_vec()), inner.clone(), inner.clone()).prop_map(|(f, a, b)| E::Bin(
                f,
                Box::new(a),
                Box::new(b)
            )),
            (inner.clone(), -3i32..5).prop_map(|(a, n)| E::Pow(Box::new(a), n)),
            (inner.clone(), -3i32..4).prop_map(|(a, d)| E::Round(Box::new(a), d)),
            (inner.clone(), inner.clone(), inner).prop_map(|(c, a, b)| E::IfElse(
                Box::new(c),
                Box::new(a),
                Box::new(b)
            )),
        ]
    })
}

const SPECIAL: &[f64] = &[
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    -2.5,
    3.0,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    5e-324,
    -1e-310,
    1e308,
    -1e308,
    f64::MAX,
    f64::MIN_POSITIVE,
    700.0,
    -745.0,
    1e-8,
    123456.789,
];

/// Runs `Sum_Reduction(F, 1)` with one j point, so that each output is F at one pair.
fn check(e: &E, y: f64, p: f64, exact: bool) -> Result<(), TestCaseError> {
    let f = Formula::parse(&format!("Sum_Reduction({}, 1)", text(e)), &["x = Vi(1)", "y = Vj(1)", "p = Pm(1)"])
        .map_err(|err| TestCaseError::fail(format!("{}: {err}", text(e))))?;
    let xs = SPECIAL.to_vec();
    let (ys, ps) = ([y], [p]);
    let out =
        evaluate(&f, &[Input::vector(&xs), Input::vector(&ys), Input::vector(&ps)], &Options::default(), &mut || false)
            .map_err(|err| TestCaseError::fail(format!("{}: {err}", text(e))))?;
    for (&x, &got) in xs.iter().zip(&out.values.unwrap().1) {
        let seen = Cell::new(0);
        let want = eval(e, x, y, p, None, &seen);
        let same = if want.is_nan() || got.is_nan() || want.is_infinite() || got.is_infinite() || exact {
            want.is_nan() && got.is_nan() || want == got
        } else {
            // The engine's exp and libm's differ by an ulp, which the rest of
            // the formula may amplify (cos(exp(9)) moves by 1e-12): allow what
            // 4 ulps on each exp in turn, up or down, does to the reference.
            let amplified: f64 = (0..seen.get())
                .map(|k| {
                    [1.0 + 4.0 * f64::EPSILON, 1.0 - 4.0 * f64::EPSILON]
                        .map(|f| (eval(e, x, y, p, Some((k, f)), &Cell::new(0)) - want).abs())
                        .into_iter()
                        .fold(0.0, f64::max)
                })
                .sum();
            let diff = (got - want).abs();
            diff <= 1e-12 * want.abs().max(got.abs()) + amplified || diff < 1e-300
        };
        prop_assert!(same, "{} at x = {x:e}, y = {y:e}, p = {p:e}: engine {got:e}, reference {want:e}", text(e));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5000, ..ProptestConfig::default() })]

    #[test]
    fn elementwise_formulas_match_the_reference_exactly(
        e in expr(false), y in prop::sample::select(SPECIAL.to_vec()), p in prop::sample::select(SPECIAL.to_vec()),
    ) {
        check(&e, y, p, true)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn elementwise_formulas_with_exp_match_the_reference(
        e in expr(true), y in prop::sample::select(SPECIAL.to_vec()), p in prop::sample::select(SPECIAL.to_vec()),
    ) {
        check(&e, y, p, false)?;
    }
}
