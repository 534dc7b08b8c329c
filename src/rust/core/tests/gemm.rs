//! GEMM tiles for high-dimensional pair terms (cpu::gram) against the direct
//! loop (`Gemm::Never`) and a naive f64 reference: accuracy far from the
//! origin, NaN/Inf/huge values exactly as the direct loop, both axes, f32,
//! thread-count independence, and which reductions use it.

use keopsr_core::formula::Formula;
use keopsr_core::plan::Gemm;
use keopsr_core::{evaluate, Input, Options, Precision};

mod common;
use common::random;

type Data = Vec<(Vec<f64>, usize, usize)>;

fn run(formula: &str, aliases: &[&str], data: &Data, options: Options) -> Vec<f64> {
    let f = Formula::parse(formula, aliases).unwrap();
    let inputs: Vec<Input<'_>> = data.iter().map(|(v, r, c)| Input::matrix(v, *r, *c)).collect();
    let out = evaluate(&f, &inputs, &options, &mut || false).unwrap();
    out.values.map(|(_, v)| v).unwrap_or_default()
}

fn with(gemm: Gemm) -> Options {
    Options { gemm, ..Options::default() }
}

fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs() / y.abs().max(1e-300)).fold(0.0, f64::max)
}

/// Column-major n × d points: random in [-1, 1) plus `offset` on every
/// coordinate.
fn points(n: usize, d: usize, offset: f64, seed: u64) -> (Vec<f64>, usize, usize) {
    (random(n * d, seed).into_iter().map(|v| v + offset).collect(), n, d)
}

/// Σ_j exp(-|x_i - y_j|² / s) b_j in f64, pair by pair.
fn naive_gauss(x: &(Vec<f64>, usize, usize), y: &(Vec<f64>, usize, usize), b: &[f64], s: f64) -> Vec<f64> {
    let (m, n, d) = (x.1, y.1, x.2);
    (0..m)
        .map(|i| {
            (0..n)
                .map(|j| {
                    let d2: f64 = (0..d).map(|c| (x.0[c * m + i] - y.0[c * n + j]).powi(2)).sum();
                    (-d2 / s).exp() * b[j]
                })
                .sum()
        })
        .collect()
}

const GAUSS: &str = "Sum_Reduction(Exp(-SqDist(x, y) / s) * b, 1)";

#[test]
fn gaussian_sum_far_from_the_origin_matches_the_direct_loop() {
    for d in [70, 150] {
        let (m, n) = (61, 203);
        let (x, y) = (points(m, d, 1e3, 1), points(n, d, 1e3, 2));
        let b = random(n, 3);
        let s = d as f64 / 3.0;
        let aliases = [format!("x = Vi({d})"), format!("y = Vj({d})"), "b = Vj(1)".into(), "s = Pm(1)".into()];
        let aliases: Vec<&str> = aliases.iter().map(|a| a.as_str()).collect();
        let data: Data = vec![x.clone(), y.clone(), (b.clone(), n, 1), (vec![s], 1, 1)];
        let gemm = run(GAUSS, &aliases, &data, with(Gemm::Always));
        let direct = run(GAUSS, &aliases, &data, with(Gemm::Never));
        let naive = naive_gauss(&x, &y, &b, s);
        assert!(max_rel(&gemm, &naive) < 1e-9, "d = {d}: {}", max_rel(&gemm, &naive));
        assert!(max_rel(&direct, &naive) < 1e-9);
        // Auto uses GEMM from its threshold on: the same numbers as Always.
        let auto = run(GAUSS, &aliases, &data, Options::default());
        assert_eq!(auto, if d >= keopsr_core::plan::GEMM_MIN_DIM_F64 { gemm } else { direct });
    }
}

#[test]
fn scalar_products_norms_and_both_axes() {
    let (m, n, d) = (37, 90, 80);
    let data: Data = vec![points(m, d, 0.5, 4), points(n, d, -0.5, 5), (random(n, 6), n, 1), (random(m, 7), m, 1)];
    let aliases = ["x = Vi(80)", "y = Vj(80)", "b = Vj(1)", "a = Vi(1)"];
    for formula in [
        "Sum_Reduction((x | y) * b, 1)",
        "Sum_Reduction(Exp(-Norm2(x - y)) * b, 1)",
        "Sum_Reduction(Exp(-SqDist(x, y) / 40) * a, 0)",
        "Sum_Reduction(Concat(SqDist(y, x), (y | x)) * a, 0)",
        "LogSumExp_Reduction(-SqDist(x, y) / 20 + b, 1)",
        "SumSoftMaxWeight_Reduction(-SqDist(x, y) / 20, 1, y)",
    ] {
        let gemm = run(formula, &aliases, &data, with(Gemm::Always));
        let direct = run(formula, &aliases, &data, with(Gemm::Never));
        assert!(max_rel(&gemm, &direct) < 1e-11, "{formula}: {}", max_rel(&gemm, &direct));
    }
}

#[test]
fn nan_inf_and_huge_values_propagate_as_in_the_direct_loop() {
    let (m, n, d) = (40, 50, 64);
    let mut x = points(m, d, 0.0, 8);
    let mut y = points(n, d, 0.0, 9);
    x.0[3 * m + 2] = f64::NAN; // row 2
    x.0[5 * m + 7] = f64::INFINITY; // row 7
    x.0[m + 11] = 1e200; // row 11: |x|² overflows
    y.0[4 * n + 13] = f64::NEG_INFINITY; // point 13
    y.0[6 * n + 21] = f64::NAN; // point 21
    y.0[2 * n + 30] = 1e200; // point 30
    let aliases = ["x = Vi(64)", "y = Vj(64)"];
    let data: Data = vec![x, y];
    for formula in ["Sum_Reduction(Exp(-SqDist(x, y) / 64), 1)", "Sum_Reduction(SqDist(x, y), 0)"] {
        let gemm = run(formula, &aliases, &data, with(Gemm::Always));
        let direct = run(formula, &aliases, &data, with(Gemm::Never));
        for (k, (g, r)) in gemm.iter().zip(&direct).enumerate() {
            let same = (g.is_nan() && r.is_nan()) || g == r || (g - r).abs() <= 1e-11 * r.abs();
            assert!(same, "{formula}, row {k}: gemm {g}, direct {r}");
        }
        assert!(direct.iter().any(|v| v.is_nan()));
    }
}

#[test]
fn float32_and_thread_counts() {
    let (m, n, d) = (70, 300, 96);
    let data: Data = vec![points(m, d, 10.0, 10), points(n, d, 10.0, 11), (random(n, 12), n, 1), (vec![30.0], 1, 1)];
    let aliases = ["x = Vi(96)", "y = Vj(96)", "b = Vj(1)", "s = Pm(1)"];
    let f32_opts = |gemm, threads| Options { gemm, threads, precision: Precision::F32, ..Options::default() };
    let gemm = run(GAUSS, &aliases, &data, f32_opts(Gemm::Always, 1));
    let direct = run(GAUSS, &aliases, &data, with(Gemm::Never));
    let scale = direct.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let worst = gemm.iter().zip(&direct).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(worst < 1e-4 * scale, "float32: {worst} against {scale}");
    assert_eq!(gemm, run(GAUSS, &aliases, &data, f32_opts(Gemm::Always, 2)));
    let threads = |t| Options { gemm: Gemm::Always, threads: t, ..Options::default() };
    assert_eq!(run(GAUSS, &aliases, &data, threads(1)), run(GAUSS, &aliases, &data, threads(2)));
}

#[test]
fn auto_keeps_the_direct_loop_for_min_and_k_min() {
    let (m, n, d) = (30, 80, 128);
    let data: Data = vec![points(m, d, 0.0, 13), points(n, d, 0.0, 14)];
    let aliases = ["x = Vi(128)", "y = Vj(128)"];
    for formula in ["Min_Reduction(SqDist(x, y), 1)", "KMin_Reduction(SqDist(x, y), 3, 1)"] {
        assert_eq!(
            run(formula, &aliases, &data, Options::default()),
            run(formula, &aliases, &data, with(Gemm::Never)),
            "{formula}"
        );
        let always = run(formula, &aliases, &data, with(Gemm::Always));
        assert!(max_rel(&always, &run(formula, &aliases, &data, with(Gemm::Never))) < 1e-11);
    }
}

/// The formulas above do take the GEMM path: the program has gram terms
/// (and none without GEMM, or when the pair's inner nodes have other uses).
#[test]
fn programs_have_gram_terms_where_expected() {
    use keopsr_core::cpu::Program;
    let grams = |formula: &str, aliases: &[&str], min: Option<usize>| {
        let f = Formula::parse(formula, aliases).unwrap();
        Program::compile(&f.graph, &f.roots, f.axis, min).grams.len()
    };
    let aliases = ["x = Vi(80)", "y = Vj(80)", "b = Vj(1)", "s = Pm(1)"];
    assert_eq!(grams(GAUSS, &aliases, Some(2)), 1);
    assert_eq!(grams(GAUSS, &aliases, Some(81)), 0);
    assert_eq!(grams(GAUSS, &aliases, None), 0);
    assert_eq!(grams("Sum_Reduction(Concat(SqDist(y, x), (y | x)) * b, 0)", &aliases, Some(2)), 2);
    // x - y is also used outside the SqDist: the direct loop
    assert_eq!(grams("Sum_Reduction(Exp(-SqDist(x, y)) * (x - y), 1)", &aliases, Some(2)), 0);
    // two variables of the same index: not a pair of the two indices
    assert_eq!(grams("Sum_Reduction(SqDist(x, x) * b, 1)", &aliases, Some(2)), 0);
    // a dimension-1 operand broadcasts
    assert_eq!(grams("Sum_Reduction(SqDist(x, b), 1)", &aliases, Some(2)), 0);
}
