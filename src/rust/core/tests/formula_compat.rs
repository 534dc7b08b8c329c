//! rkeops 2.x / pykeops formula spellings: gradients written around
//! reductions (`Grad(Sum_Reduction(F, 1), x, e)`, nested), against the
//! engine's gradients (`value_and_gradient`, itself checked against finite
//! differences in gradients.rs), against the in-formula Grad, and against
//! central finite differences.

use keopsr_core::formula::{Cat, Formula};
use keopsr_core::gradient::value_and_gradient;
use keopsr_core::{evaluate, Input, Options, Prepared};

mod common;
use common::random_data;

type Data = Vec<(Vec<f64>, usize, usize)>;

fn inputs(data: &Data) -> Vec<Input<'_>> {
    data.iter().map(|(v, r, c)| Input::matrix(v, *r, *c)).collect()
}

fn run(f: &Formula, data: &Data) -> (usize, usize, Vec<f64>) {
    let out = evaluate(f, &inputs(data), &Options::default(), &mut || false).unwrap();
    let (cols, values) = out.values.unwrap();
    (out.rows, cols, values)
}

fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol * (1.0 + x.abs().max(y.abs())))
}

/// Declarations: x, y, b, p as in gradients.rs, then e of the output
/// index with the given dimension (and its category).
fn aliases(e_cat: &str, e_dim: usize) -> Vec<String> {
    let mut a: Vec<String> =
        ["x = Vi(2)", "y = Vj(2)", "b = Vj(1)", "p = Pm(1)"].iter().map(|s| s.to_string()).collect();
    a.push(format!("e = {e_cat}({e_dim})"));
    a
}

/// `Grad(R, v, e)` for every reduction R and every variable v equals the
/// engine's gradient of Σ e · R with respect to v, and has one row per
/// point of v (one row for the parameter).
#[test]
fn grad_around_every_reduction_is_the_engine_gradient() {
    // (reduction with its axis, dimension of its output values, of its output indices)
    let reductions = [
        ("Sum_Reduction(Exp(-SqDist(x, y) * p) * b, 1)", 1, 0),
        ("Sum_Reduction(Exp(-SqDist(x, y) * p) * b, 0)", 1, 0),
        ("Sum_Reduction(Concat(Sin(x * y) + b, Norm2(x - y) * p), 1)", 3, 0),
        ("Min_Reduction(SqDist(x, y) * p + b, 1)", 1, 0),
        ("Max_Reduction(x * y + b * p, 0)", 2, 0),
        ("ArgMin_Reduction(SqDist(x, y) + b + p, 1)", 0, 1),
        ("ArgMax_Reduction(SqDist(x, y) + b + p, 0)", 0, 1),
        ("Min_ArgMin_Reduction(SqDist(x, y) * p + b, 1)", 1, 1),
        ("Max_ArgMax_Reduction(x * y + b * p, 0)", 2, 2),
        ("KMin_Reduction(SqDist(x, y) + b * p, 3, 1)", 3, 0),
        ("ArgKMin_Reduction(SqDist(x, y) + b * p, 3, 1)", 0, 3),
        ("KMin_ArgKMin_Reduction(x - y + p, 2, 0)", 4, 4),
        ("LogSumExp_Reduction(-SqDist(x, y) * p + b, 1)", 1, 0),
        ("LogSumExp_Reduction(-SqDist(x, y) * p, 0, Exp(b) + Square(y))", 2, 0),
        ("LogSumExp_Reduction(-SqDist(x, y) * p, Exp(b) + Square(y), 0)", 2, 0),
        ("SumSoftMaxWeight_Reduction(-SqDist(x, y) * p, 1, y * b)", 2, 0),
        ("SumSoftMaxWeight_Reduction(-SqDist(x, y) * p, y * b, 1)", 2, 0),
    ];
    let (ni, nj) = (6, 9);
    for (red, value_cols, index_cols) in reductions {
        let base = Formula::parse(red, &["x = Vi(2)", "y = Vj(2)", "b = Vj(1)", "p = Pm(1)"]).unwrap();
        let e_cat = if base.axis.outer() == Cat::I { "Vi" } else { "Vj" };
        // e covers the values (or, for Arg reductions, the indices).
        let e_dim = if value_cols > 0 { value_cols } else { index_cols };
        let al = aliases(e_cat, e_dim);
        let plain = Formula::parse(red, &al).unwrap();
        let data = random_data(&plain.variables().unwrap(), ni, nj, 5);
        let eta = &data[4].0;
        for (pos, v) in ["x", "y", "b", "p"].into_iter().enumerate() {
            let text = format!("Grad({red}, {v}, e)");
            let f = Formula::parse(&text, &al).unwrap_or_else(|e| panic!("{text}: {e}"));
            let info = &f.variables().unwrap()[pos];
            assert_eq!(f.output_cols(), (info.dim, 0), "{text}");
            let want_index = match info.cat {
                Cat::I => "j",
                Cat::J => "i",
                Cat::P => "ij",
            };
            assert_eq!(f.reduced_index(), want_index, "{text}");
            let (rows, cols, got) = run(&f, &data);
            let n = match info.cat {
                Cat::I => ni,
                Cat::J => nj,
                Cat::P => 1,
            };
            assert_eq!((rows, cols), (n, info.dim), "{text}");
            let want = if value_cols == 0 {
                vec![0.0; n * info.dim]
            } else {
                let res = value_and_gradient(
                    &plain,
                    &inputs(&data),
                    &[pos],
                    Some(eta),
                    false,
                    &Options::default(),
                    &mut || false,
                )
                .unwrap();
                res.gradients[0].values.clone()
            };
            assert!(close(&got, &want, 1e-12), "{text}: {got:?} vs {want:?}");
            // Prepared runs it too, with an argument swapped.
            let ins = inputs(&data);
            let prepared = Prepared::new(&f, &ins, &Options::default()).unwrap();
            let again = prepared.run(None, &mut || false).unwrap().values.unwrap().1;
            assert_eq!(again, got, "{text}");
            let doubled: Vec<f64> = eta.iter().map(|x| 2.0 * x).collect();
            let twice = prepared.run_with(4, &doubled, None, &mut || false).unwrap().values.unwrap().1;
            let want2: Vec<f64> = got.iter().map(|x| 2.0 * x).collect();
            assert!(close(&twice, &want2, 1e-12), "{text}: linear in e");
        }
        // e may also cover the values and the indices (KeOps' output layout):
        // the index part has a zero gradient.
        if value_cols > 0 && index_cols > 0 {
            let al2 = aliases(e_cat, value_cols + index_cols);
            let f2 = Formula::parse(&format!("Grad({red}, x, e)"), &al2).unwrap();
            let mut data2 = data.clone();
            let rows = data[4].1;
            let mut wide = data[4].0.clone();
            wide.extend(common::random(rows * index_cols, 3));
            data2[4] = (wide, rows, value_cols + index_cols);
            let f1 = Formula::parse(&format!("Grad({red}, x, e)"), &al).unwrap();
            assert_eq!(run(&f2, &data2).2, run(&f1, &data).2, "{red}");
        }
    }
}

/// The Sum gradients are rewritten into plain reductions of the in-formula
/// Grad: the same graph as writing that reduction directly.
#[test]
fn sum_gradients_are_in_formula_grads() {
    let al = aliases("Vi", 1);
    let cases = [
        (
            "Grad(Sum_Reduction(Exp(-SqDist(x, y) * p) * b, 1), x, e)",
            "Sum_Reduction(Grad(Exp(-SqDist(x, y) * p) * b, x, e), 1)",
        ),
        (
            "Grad(Sum_Reduction(Exp(-SqDist(x, y) * p) * b, 1), y, e)",
            "Sum_Reduction(Grad(Exp(-SqDist(x, y) * p) * b, y, e), 0)",
        ),
        (
            "Grad_WithSavedForward(Sum_Reduction(Exp(-SqDist(x, y) * p) * b, 1), y, e, e)",
            "Sum_Reduction(Grad(Exp(-SqDist(x, y) * p) * b, y, e), 0)",
        ),
    ];
    for (a, b) in cases {
        let (fa, fb) = (Formula::parse(a, &al).unwrap(), Formula::parse(b, &al).unwrap());
        assert!(fa.grad.is_none(), "{a}");
        assert_eq!((fa.axis, fa.reduction), (fb.axis, fb.reduction), "{a}");
        let data = random_data(&fa.variables().unwrap(), 5, 7, 11);
        assert_eq!(run(&fa, &data), run(&fb, &data), "{a}");
    }
    // A parameter: one row, the sum over both indices.
    let f = Formula::parse("Grad(Sum_Reduction(Exp(-SqDist(x, y) * p) * b, 1), p, e)", &al).unwrap();
    let data = random_data(&f.variables().unwrap(), 5, 7, 11);
    let per_i = run(&Formula::parse("Sum_Reduction(Grad(Exp(-SqDist(x, y) * p) * b, p, e), 1)", &al).unwrap(), &data).2;
    let (rows, cols, got) = run(&f, &data);
    assert_eq!((rows, cols), (1, 1));
    assert!(close(&got, &[per_i.iter().sum::<f64>()], 1e-12));
}

/// Nested gradients of Sum reductions, as rkeops writes second derivatives:
/// the same as the in-formula nested Grad, and the finite differences of
/// the inner gradient.
#[test]
fn nested_sum_gradients() {
    let al: Vec<String> =
        ["x = Vi(2)", "y = Vj(2)", "b = Vj(1)", "e1 = Vi(1)", "e2 = Vi(2)"].iter().map(|s| s.to_string()).collect();
    let f_text = "Exp(-SqDist(x, y)) * b";
    let nested = format!("Grad(Grad(Sum_Reduction({f_text}, 1), x, e1), x, e2)");
    let direct = format!("Sum_Reduction(Grad(Grad({f_text}, x, e1), x, e2), 1)");
    let inner = format!("Grad(Sum_Reduction({f_text}, 1), x, e1)");
    let (fn_, fd_, fi) = (
        Formula::parse(&nested, &al).unwrap(),
        Formula::parse(&direct, &al).unwrap(),
        Formula::parse(&inner, &al).unwrap(),
    );
    assert_eq!(fn_.output_cols(), (2, 0));
    assert_eq!(fn_.reduced_index(), "j");
    let data = random_data(&fn_.variables().unwrap(), 4, 6, 23);
    let got = run(&fn_, &data);
    assert_eq!(got, run(&fd_, &data));
    // d/dx_i of Σ e2 · G(x), G the inner gradient (one row per i).
    let e2 = data[4].0.clone();
    let objective = |d: &Data| run(&fi, d).2.iter().zip(&e2).map(|(a, b)| a * b).sum::<f64>();
    for idx in 0..data[0].0.len() {
        let h = 1e-5;
        let (mut plus, mut minus) = (data.clone(), data.clone());
        plus[0].0[idx] += h;
        minus[0].0[idx] -= h;
        let fd = (objective(&plus) - objective(&minus)) / (2.0 * h);
        assert!((got.2[idx] - fd).abs() < 1e-7 * fd.abs().max(1.0), "[{idx}] {} vs {fd}", got.2[idx]);
    }
    // Second derivative with respect to y of a reduction over i, and a mixed one.
    let al2: Vec<String> = ["x = Vi(2)", "y = Vj(2)", "b = Vj(1)", "e1 = Vj(1)", "e2 = Vj(2)", "e3 = Vi(2)"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let data2 = random_data(&Formula::parse("Sum_Reduction(x * e3, 0)", &al2).unwrap().variables().unwrap(), 4, 6, 29);
    for (a, b) in [
        (
            format!("Grad(Grad(Sum_Reduction({f_text}, 0), y, e1), y, e2)"),
            format!("Sum_Reduction(Grad(Grad({f_text}, y, e1), y, e2), 0)"),
        ),
        (
            format!("Grad(Grad(Sum_Reduction({f_text}, 0), y, e1), x, e2)"),
            format!("Sum_Reduction(Grad(Grad({f_text}, y, e1), x, e2), 1)"),
        ),
    ] {
        let (fa, fb) = (Formula::parse(&a, &al2).unwrap(), Formula::parse(&b, &al2).unwrap());
        assert_eq!(run(&fa, &data2), run(&fb, &data2), "{a}");
    }
}

#[test]
fn diff_around_a_sum() {
    let al: Vec<String> = ["x = Vi(2)", "y = Vj(2)", "b = Vj(1)", "u = Vj(2)"].iter().map(|s| s.to_string()).collect();
    for (a, b) in [
        (
            "Diff(Sum_Reduction(Exp(-SqDist(x, y)) * b, 1), y, u)",
            "Sum_Reduction(Diff(Exp(-SqDist(x, y)) * b, y, u), 1)",
        ),
        (
            "Diff_WithSavedForward(Sum_Reduction(Exp(-SqDist(x, y)) * b, 1), y, u, b)",
            "Sum_Reduction(Diff(Exp(-SqDist(x, y)) * b, y, u), 1)",
        ),
    ] {
        let (fa, fb) = (Formula::parse(a, &al).unwrap(), Formula::parse(b, &al).unwrap());
        let data = random_data(&fa.variables().unwrap(), 4, 6, 31);
        assert_eq!(run(&fa, &data), run(&fb, &data), "{a}");
    }
    let err = Formula::parse("Diff(Min_Reduction(SqDist(x, y), 1), y, u)", &al).unwrap_err();
    assert_eq!(err.kind(), "formula", "{err}");
}

#[test]
fn unsupported_gradient_formulas_are_classed_errors() {
    let al: Vec<String> = ["x = Vi(2)", "y = Vj(2)", "e = Vi(1)", "f = Vj(1)", "e2 = Vi(2)", "p = Pm(1)", "q = Pm(2)"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let cases = [
        // Nesting around a gradient evaluated through gradient.rs.
        ("Grad(Grad(Min_Reduction(SqDist(x, y), 1), x, e), x, e2)", "formula"),
        ("Grad(Grad(LogSumExp_Reduction(-SqDist(x, y), 1), x, e), x, e2)", "formula"),
        ("Grad(Grad(Sum_Reduction(SqDist(x, y) * p, 1), p, e), x, e2)", "formula"),
        // e of the reduced index, of the wrong dimension, or not a variable.
        ("Grad(Sum_Reduction(SqDist(x, y), 1), x, f)", "formula"),
        ("Grad(Sum_Reduction(SqDist(x, y), 1), x, e2)", "dimension"),
        ("Grad(Min_Reduction(SqDist(x, y), 1), x, e * 2)", "formula"),
        ("Grad(Sum_Reduction(SqDist(x, y), 1), 2 * x, e)", "formula"),
        ("Grad(Sum_Reduction(SqDist(x, y), 1), x)", "formula"),
        ("Grad(x, x, e)", "formula"),
    ];
    for (f, kind) in cases {
        let err = Formula::parse(f, &al).unwrap_err();
        assert_eq!(err.kind(), kind, "{f}: {err}");
    }
    // A parameter e: the same e on every output row.
    let f = Formula::parse("Grad(Min_Reduction(SqDist(x, y), 1), y, p)", &al).unwrap();
    let g = Formula::parse("Grad(Min_Reduction(SqDist(x, y), 1), y, e)", &al).unwrap();
    let mut data = random_data(&f.variables().unwrap(), 4, 6, 41);
    let p0 = data[5].0[0];
    data[2].0.fill(p0);
    assert_eq!(run(&f, &data), run(&g, &data));
    // keops_grad of a gradient formula, ranges and the solver: classed errors.
    let ins = inputs(&data);
    let err = value_and_gradient(&f, &ins, &[0], None, false, &Options::default(), &mut || false).unwrap_err();
    assert_eq!(err.kind(), "formula");
    let ranges = keopsr_core::Ranges::from_keops(&[(0, 4)], &[1], &[(0, 6)], 4, 6).unwrap();
    let err = Prepared::new(&f, &ins, &Options::default()).unwrap().run(Some(&ranges), &mut || false).unwrap_err();
    assert_eq!(err.kind(), "reduction");
}

/// Max_SumShiftExp has no gradient (KeOps differentiates it only through the
/// log-sum-exp or softmax it is the state of): a classed error.
#[test]
fn max_sum_shift_exp_gradients_are_reduction_errors() {
    let al = ["x = Vi(2)", "y = Vj(2)", "e = Vi(2)"];
    let f = Formula::parse("Grad(Max_SumShiftExp_Reduction(-SqDist(x, y), 1), x, e)", &al).unwrap();
    let data = random_data(&f.variables().unwrap(), 3, 4, 7);
    let err = evaluate(&f, &inputs(&data), &Options::default(), &mut || false).unwrap_err();
    assert_eq!(err.kind(), "reduction", "{err}");
}

/// pykeops' extra operations against their definitions (the same values
/// as formulas written with the existing operations).
#[test]
fn pykeops_math_operations() {
    let al = ["x = Vi(3)", "y = Vj(3)", "s = Vj(3)", "t = Pm(1)", "a = Vj(9)", "u = Vi(3)", "c = Vj(1)"];
    let cases = [
        ("SqNormDiag(s, x - y)", "Sum(s * Square(x - y))"),
        ("SqNormDiag(s, x - y)", "WeightedSqNorm(s, x - y)"),
        ("SqNormIso(t, x - y)", "t * SqNorm2(x - y)"),
        ("SymSqNorm(a, x - y)", "Sum(a * TensorProd(x - y, x - y))"),
        ("SymSqNorm(a, x - y)", "WeightedSqDist(a, x, y)"),
        ("SumT(c, 3) * x", "Concat(Concat(c, c), c) * x"),
        ("Zero(3) + x", "x * 1"),
        ("IntInv(4) * x", "x * 0.25"),
        ("RatCst(-2, 8) * x", "x * -0.25"),
        // F = A (x - y) is linear in x: adjoint A' u, trace tr(A).
        ("AdjointOperator(MatVecMult(a, x - y), x, u)", "VecMatMult(u, a)"),
        ("TraceOperator(MatVecMult(a, x - y), x) * x", "(Elem(a, 0) + Elem(a, 4) + Elem(a, 8)) * x"),
        ("TraceOperator((x | y), x) * x", "Sum(y) * x"),
        // Jacobian of Sin(x) * y: diagonal cos(x_k) y_k, row-major.
        (
            "GradMatrix(Sin(x) * y, x)",
            "Concat(Concat(ElemT(Elem(Cos(x) * y, 0), 3, 0), ElemT(Elem(Cos(x) * y, 1), 3, 1)), ElemT(Elem(Cos(x) * y, 2), 3, 2))",
        ),
        // div(x |y - x|²) = 3 |y - x|² - 2 (x | y - x).
        ("Divergence(x * SqNorm2(y - x), x)", "3 * SqNorm2(y - x) - 2 * (x | y - x)"),
        // Laplacian of exp(-r²) in dimension 3: (4 r² - 6) exp(-r²).
        ("Laplacian(Exp(-SqDist(x, y)), x)", "(4 * SqDist(x, y) - 6) * Exp(-SqDist(x, y))"),
        ("Grad_WithSavedForward(Exp(-SqDist(x, y)), x, c, c)", "Grad(Exp(-SqDist(x, y)), x, c)"),
    ];
    for (lhs, rhs) in cases {
        let fl = Formula::parse(&format!("Sum_Reduction({lhs}, 1)"), &al).unwrap_or_else(|e| panic!("{lhs}: {e}"));
        let fr = Formula::parse(&format!("Sum_Reduction({rhs}, 1)"), &al).unwrap_or_else(|e| panic!("{rhs}: {e}"));
        let data = random_data(&fl.variables().unwrap(), 5, 8, 3);
        let (a, b) = (run(&fl, &data), run(&fr, &data));
        assert_eq!((a.0, a.1), (b.0, b.1), "{lhs}");
        assert!(close(&a.2, &b.2, 1e-12), "{lhs}: {:?} vs {:?}", a.2, b.2);
    }
    for bad in ["SymSqNorm(s, x)", "SumT(x, 2)", "Zero(0)", "IntInv(0)", "Divergence(c, x)", "Laplacian(x, x)"] {
        assert!(Formula::parse(&format!("Sum_Reduction({bad}, 1)"), &al).is_err(), "{bad}");
    }
}
