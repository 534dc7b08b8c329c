//! Gradients of every reduction, and Grad/Diff inside formulas, against
//! central finite differences of the value.

use keopsr_core::formula::Formula;
use keopsr_core::gradient::value_and_gradient;
use keopsr_core::{evaluate, Input, Options};

mod common;
use common::random;

/// Σ η · value of the formula on the given data.
fn objective(f: &Formula, data: &[(Vec<f64>, usize, usize)], eta: &[f64]) -> f64 {
    let inputs: Vec<Input<'_>> = data.iter().map(|(v, r, c)| Input::matrix(v, *r, *c)).collect();
    let out = evaluate(f, &inputs, &Options::default(), &mut || false).unwrap();
    out.values.map_or(0.0, |(_, v)| v.iter().zip(eta).map(|(a, b)| a * b).sum())
}

fn check(formula: &str, aliases: &[&str], ni: usize, nj: usize) {
    let f = Formula::parse(formula, aliases).unwrap();
    let vars = f.variables().unwrap();
    let data = common::random_data(&vars, ni, nj, 17);
    let inputs: Vec<Input<'_>> = data.iter().map(|(v, r, c)| Input::matrix(v, *r, *c)).collect();
    let wrt: Vec<usize> = (0..vars.len()).collect();
    let rows = evaluate(&f, &inputs, &Options::default(), &mut || false).unwrap().rows;
    let eta = random(rows * f.reduction.output_cols().0, 99);
    let res = value_and_gradient(&f, &inputs, &wrt, Some(&eta), false, &Options::default(), &mut || false).unwrap();
    for (p, grad) in res.gradients.iter().enumerate() {
        for idx in 0..data[p].0.len() {
            let h = 1e-6;
            let mut plus = data.clone();
            plus[p].0[idx] += h;
            let mut minus = data.clone();
            minus[p].0[idx] -= h;
            let fd = (objective(&f, &plus, &eta) - objective(&f, &minus, &eta)) / (2.0 * h);
            let got = grad.values[idx];
            let err = (got - fd).abs() / fd.abs().max(1.0);
            assert!(err < 1e-6, "{formula}: d/d var {p} [{idx}]: {got} vs finite difference {fd}");
        }
    }
}

const ALIASES: &[&str] = &["x = Vi(2)", "y = Vj(2)", "b = Vj(1)", "p = Pm(1)"];

#[test]
fn every_reduction_against_finite_differences() {
    let formulas = [
        "Sum_Reduction(Exp(-SqDist(x, y) * p) * b, 1)",
        "Sum_Reduction(Exp(-SqDist(x, y) * p) * b, 0)",
        "Sum_Reduction(Concat(Sin(x * y) + b, Norm2(x - y) * p), 1)",
        "LogSumExp_Reduction(-SqDist(x, y) * p + b, 1)",
        "LogSumExp_Reduction(-SqDist(x, y) * p, 0, Exp(b) + Square(y))",
        "SumSoftMaxWeight_Reduction(-SqDist(x, y) * p, 1, y * b)",
        "Min_Reduction(SqDist(x, y) * p + b, 1)",
        "Max_ArgMax_Reduction(x * y + b * p, 0)",
        "KMin_Reduction(SqDist(x, y) + b * p, 3, 1)",
        "KMin_ArgKMin_Reduction(x - y + p, 2, 0)",
        "ArgMin_Reduction(SqDist(x, y) + b + p, 1)",
    ];
    for f in formulas {
        check(f, ALIASES, 6, 9);
    }
}

/// Each element-wise and structural primitive inside a sum, differentiated
/// with respect to all variables.
const BODIES: &[&str] = &[
    "Exp(x - y) + Log(Square(x) + 1) + Sqrt(Square(y) + 0.5) + Rsqrt(Square(x) + 1) + Inv(b + 3)",
    "Sin(x * y) + Cos(x + y) + Asin(x * 0.5) + Acos(y * 0.5) + Atan(x * y) + Abs(x - y * 2) + Square(x)",
    "XLogX(Square(x) + 0.1) + SinXDivX(x + 3) + Pow(x - y, 3) + Powf(Square(y) + 0.5, x) + Atan2(x, y + 3)",
    "ReLU(x - y) + Sign(x) + Step(y) + Floor(x * 3) + Round(y, 1) + Minus(x) * b - x / (b + 3)",
    "IfElse(x - y, x * y, Square(y)) + Clamp(x, -0.5, y) + Mod(x * 3, 1.5, -0.2) * p",
    "Concat(Max(x - y), Min(x * y)) + Concat(Elem(x, 0), Extract(y, 1, 1)) + ElemT(b, 2, 1) + ArgMin(x)",
    "MatVecMult(Concat(x, y), y) + VecMatMult(x, TensorProd(y, x)) + Normalize(x - y) * p",
    "ComplexMult(x, ComplexExp(y)) + ComplexDivide(x, Real2Complex(b) + y * 3 + 5) + Conj(ComplexExp1j(b))",
    "WeightedSqDist(Concat(x, y), x, y) + WeightedSqNorm(b, x) + Kron(x, b, Ind(2), Ind(1))",
];

#[test]
fn every_operation_has_a_correct_gradient() {
    for body in BODIES {
        check(&format!("Sum_Reduction({body}, 1)"), ALIASES, 5, 7);
    }
}

#[test]
fn every_operation_has_a_correct_directional_derivative() {
    // Diff(F, v, u) against a finite difference of F along u, for v of each kind.
    let aliases = &["x = Vi(2)", "y = Vj(2)", "b = Vj(1)", "p = Pm(1)", "u = Vi(2)", "w = Vj(2)", "q = Pm(1)"];
    let (ni, nj) = (4, 6);
    let dims = [(ni, 2), (nj, 2), (nj, 1), (1, 1), (ni, 2), (nj, 2), (1, 1)];
    let data: Vec<(Vec<f64>, usize, usize)> =
        dims.iter().enumerate().map(|(k, &(n, d))| (random(n * d, 40 + k as u64), n, d)).collect();
    let run = |formula: &str, d: &[(Vec<f64>, usize, usize)]| -> Vec<f64> {
        let f = Formula::parse(formula, aliases).unwrap();
        let inputs: Vec<Input<'_>> = d.iter().map(|(v, r, c)| Input::matrix(v, *r, *c)).collect();
        evaluate(&f, &inputs, &Options::default(), &mut || false).unwrap().values.unwrap().1
    };
    let h = 1e-6;
    for body in BODIES {
        for (var, dir, k, kd) in [("x", "u", 0, 4), ("y", "w", 1, 5), ("p", "q", 3, 6)] {
            let moved = |t: f64| {
                let mut d = data.clone();
                for c in 0..d[k].0.len() {
                    d[k].0[c] += t * data[kd].0[c];
                }
                d
            };
            let base = format!("Sum_Reduction({body}, 1)");
            let got = run(&format!("Sum_Reduction(Diff({body}, {var}, {dir}), 1)"), &data);
            let (plus, minus) = (run(&base, &moved(h)), run(&base, &moved(-h)));
            for (c, g) in got.iter().enumerate() {
                let fd = (plus[c] - minus[c]) / (2.0 * h);
                assert!((g - fd).abs() / fd.abs().max(1.0) < 1e-6, "Diff({body}, {var}): {g} vs {fd}");
            }
        }
    }
}

#[test]
fn grad_and_diff_in_formulas() {
    // Diff(F, x, u) against a finite difference of F along u; the
    // Hessian-vector product e H u, as Grad(Grad(F, x, e), x, u) (the Hessian
    // is symmetric) and as Diff(Grad(F, x, e), x, u), against a finite
    // difference of Grad(F, x, e) along u.
    let aliases = &["x = Vi(2)", "y = Vj(2)", "u = Vi(2)", "e = Vi(1)"];
    let fs = [
        "(Square(x) | y)",
        "Exp(-SqDist(x, y)) * Sin(x | y)",
        "Norm2(x - y) + Log(SqNorm2(x) + 1)",
        "Min(x * y) + Max(x - y)",
    ];
    let (ni, nj) = (4, 5);
    let data: Vec<(Vec<f64>, usize, usize)> = vec![
        (random(ni * 2, 1), ni, 2),
        (random(nj * 2, 2), nj, 2),
        (random(ni * 2, 3), ni, 2),
        (random(ni, 4), ni, 1),
    ];
    let shifted = |h: f64| {
        let mut d = data.clone();
        for k in 0..d[0].0.len() {
            d[0].0[k] += h * data[2].0[k];
        }
        d
    };
    let run = |formula: &str, d: &[(Vec<f64>, usize, usize)]| -> Vec<f64> {
        let f = Formula::parse(formula, aliases).unwrap();
        let inputs: Vec<Input<'_>> = d.iter().map(|(v, r, c)| Input::matrix(v, *r, *c)).collect();
        evaluate(&f, &inputs, &Options::default(), &mut || false).unwrap().values.unwrap().1
    };
    let h = 1e-6;
    for f in fs {
        let pairs = [
            (format!("Sum_Reduction(Diff({f}, x, u), 1)"), format!("Sum_Reduction({f}, 1)")),
            (format!("Sum_Reduction(Grad(Grad({f}, x, e), x, u), 1)"), format!("Sum_Reduction(Grad({f}, x, e), 1)")),
            (format!("Sum_Reduction(Diff(Grad({f}, x, e), x, u), 1)"), format!("Sum_Reduction(Grad({f}, x, e), 1)")),
        ];
        for (derivative, base) in pairs {
            let got = run(&derivative, &data);
            let (plus, minus) = (run(&base, &shifted(h)), run(&base, &shifted(-h)));
            for (k, g) in got.iter().enumerate() {
                let fd = (plus[k] - minus[k]) / (2.0 * h);
                assert!((g - fd).abs() / fd.abs().max(1.0) < 1e-6, "{derivative}: {g} vs {fd}");
            }
        }
    }
}
