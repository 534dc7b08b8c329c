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

/// The formulas above do take the GEMM path: the program has gram terms
/// (and none without GEMM, or when the pair's inner nodes have other uses).
#[test]
fn programs_have_gram_terms_where_expected() {
    use keopsr_core::cpu::{GemmUse, Program};
    let grams = |formula: &str, aliases: &[&str], min: Option<usize>| {
        let f = Formula::parse(formula, aliases).unwrap();
        Program::compile(&f.graph, &f.roots, f.axis, GemmUse { pair_min_dim: min, weights_min_cols: None, dot_weights: false }).grams.len()
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

/// Σ_j s(i, j) b_j column by column, in f64 pair by pair, with the
/// magnitude Σ_j |s(i, j) b_j| of each sum (the scale of its rounding error).
fn naive_weighted(s: impl Fn(usize, usize) -> f64, b: &[f64], m: usize, n: usize, cols: usize) -> (Vec<f64>, Vec<f64>) {
    let mut sums = vec![0.0; m * cols];
    let mut scale = vec![0.0; m * cols];
    for i in 0..m {
        for j in 0..n {
            let sij = s(i, j);
            for c in 0..cols {
                sums[i * cols + c] += sij * b[c * n + j];
                scale[i * cols + c] += (sij * b[c * n + j]).abs();
            }
        }
    }
    (sums, scale)
}

fn same_or_close(a: f64, b: f64, tol: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= tol
}

/// A kernel times weights of many columns (the weights GEMM) against the
/// direct loop and the naive sums: both orders of the product, both axes,
/// several tiles, NaN and Inf in the weights and the kernel, threads, f32;
/// Auto uses it from GEMM_MIN_WEIGHTS columns on, and never with Kahan or
/// direct sums.
#[test]
fn wide_weights_match_the_direct_loop() {
    use keopsr_core::reduction::SumScheme;
    let (m, n, d) = (45, 2500, 3);
    let (x, y) = (points(m, d, 0.0, 20), points(n, d, 0.0, 21));
    let gauss = |i: usize, j: usize| (-(0..d).map(|c| (x.0[c * m + i] - y.0[c * n + j]).powi(2)).sum::<f64>() / 2.0).exp();
    for cols in [2, 4, 5, 11, 16, 17, 40] {
        let b = random(n * cols, 22 + cols as u64);
        let aliases = ["x = Vi(3)".to_string(), "y = Vj(3)".into(), format!("b = Vj({cols})"), format!("a = Vi({cols})")];
        let aliases: Vec<&str> = aliases.iter().map(|a| a.as_str()).collect();
        let a = random(m * cols, 23);
        let data: Data = vec![x.clone(), y.clone(), (b.clone(), n, cols), (a.clone(), m, cols)];
        let (naive, scale) = naive_weighted(gauss, &b, m, n, cols);
        for formula in ["Sum_Reduction(Exp(-SqDist(x, y) / 2) * b, 1)", "Sum_Reduction(b * Exp(-SqDist(x, y) / 2), 1)"] {
            // Auto at D = 3: the weights GEMM (from GEMM_MIN_WEIGHTS columns
            // on), not the pair GEMM; Always: both.
            let auto = run(formula, &aliases, &data, Options::default());
            let always = run(formula, &aliases, &data, with(Gemm::Always));
            let direct = run(formula, &aliases, &data, with(Gemm::Never));
            for i in 0..m {
                for c in 0..cols {
                    let nv = naive[i * cols + c];
                    let tol = 1e-13 * scale[i * cols + c];
                    for (name, r) in [("auto", &auto), ("always", &always), ("direct", &direct)] {
                        assert!((r[c * m + i] - nv).abs() <= tol, "{formula}, {cols} columns, {name}: {} {nv}", r[c * m + i]);
                    }
                }
            }
            if cols < keopsr_core::plan::GEMM_MIN_WEIGHTS {
                assert_eq!(auto, direct);
            }
            let threads = |t| Options { threads: t, ..Options::default() };
            assert_eq!(run(formula, &aliases, &data, threads(1)), auto, "{formula}, {cols} columns: 1 thread");
            assert_eq!(run(formula, &aliases, &data, threads(2)), auto, "{formula}, {cols} columns: 2 threads");
            // Kahan and direct sums keep the direct loop, bit for bit.
            for scheme in [SumScheme::Kahan, SumScheme::Direct] {
                let opts = |gemm| Options { gemm, sum_scheme: scheme, ..Options::default() };
                assert_eq!(run(formula, &aliases, &data, opts(Gemm::Auto)), run(formula, &aliases, &data, opts(Gemm::Never)));
            }
        }
        // The other axis: Σ_i s(i, j) a_i.
        let formula = "Sum_Reduction(Exp(-SqDist(x, y) / 2) * a, 0)";
        let auto = run(formula, &aliases, &data, Options::default());
        let direct = run(formula, &aliases, &data, with(Gemm::Never));
        assert!(auto.iter().zip(&direct).all(|(g, r)| (g - r).abs() <= 1e-12 * m as f64), "axis i, {cols} columns");
        // float32: accumulated in float32 either way.
        let formula = "Sum_Reduction(Exp(-SqDist(x, y) / 2) * b, 1)";
        let g32 = run(formula, &aliases, &data, Options { precision: Precision::F32, ..Options::default() });
        assert!(g32.iter().enumerate().all(|(k, g)| {
            let (c, i) = (k / m, k % m);
            (g - naive[i * cols + c]).abs() <= 1e-5 * scale[i * cols + c]
        }));
    }
    // NaN and Inf: in the weights (one column with +Inf, one with +Inf and
    // -Inf, one with NaN) and in the kernel (a row of x with NaN; a point
    // whose kernel values are all 0 while its weight is Inf: 0 * Inf = NaN).
    let cols = 5;
    let mut b = random(n * cols, 30);
    b[7] = f64::INFINITY; // column 0, point 7
    b[n + 9] = f64::INFINITY; // column 1
    b[n + 11] = f64::NEG_INFINITY;
    b[2 * n + 3] = f64::NAN; // column 2
    let mut x = x.clone();
    x.0[4] = f64::NAN; // row 4
    let mut y = y.clone();
    for c in 0..d {
        y.0[c * n + 100] = 1e3; // point 100: exp(-|x - y|² / 2) = 0
    }
    b[3 * n + 100] = f64::INFINITY; // column 3: 0 * Inf
    let aliases = ["x = Vi(3)", "y = Vj(3)", "b = Vj(5)"];
    let data: Data = vec![x, y, (b, n, cols)];
    let formula = "Sum_Reduction(Exp(-SqDist(x, y) / 2) * b, 1)";
    let gemm = run(formula, &aliases, &data, Options::default());
    let direct = run(formula, &aliases, &data, with(Gemm::Never));
    for (k, (g, r)) in gemm.iter().zip(&direct).enumerate() {
        assert!(same_or_close(*g, *r, 1e-12 * n as f64), "output {k}: gemm {g}, direct {r}");
    }
    let at = |c: usize, i: usize| direct[c * m + i];
    assert!(at(0, 0) == f64::INFINITY && at(1, 0).is_nan() && at(2, 0).is_nan() && at(3, 0).is_nan() && at(4, 0).is_finite());
    assert!((0..cols).all(|c| at(c, 4).is_nan()));
}

/// The weights product of up to 16 columns (cpu::weights' own register
/// blocks) at every SIMD level this CPU has, against the naive sums: rows
/// not a multiple of the register block, tiles and chunks with remainders,
/// and the same result at every thread count.
#[test]
fn weights_product_at_every_simd_level() {
    use keopsr_core::cpu::program::{detected_simd, Simd};
    use keopsr_core::cpu::{self, Data as Columns, GemmUse, Program};
    use keopsr_core::reduction::{Monoid, SumScheme};
    let (m, n, d) = (47, 2333, 3);
    let (x, y) = (points(m, d, 0.0, 40), points(n, d, 0.0, 41));
    let gauss = |i: usize, j: usize| (-(0..d).map(|c| (x.0[c * m + i] - y.0[c * n + j]).powi(2)).sum::<f64>() / 2.0).exp();
    let levels: Vec<Simd> = [Simd::Portable, Simd::Avx2, Simd::Avx512].into_iter().filter(|&l| l <= detected_simd()).collect();
    for cols in [4, 7, 13, 16] {
        let b = random(n * cols, 42 + cols as u64);
        let aliases = ["x = Vi(3)".to_string(), "y = Vj(3)".into(), format!("b = Vj({cols})")];
        let aliases: Vec<&str> = aliases.iter().map(|a| a.as_str()).collect();
        let f = Formula::parse("Sum_Reduction(Exp(-SqDist(x, y) / 2) * b, 1)", &aliases).unwrap();
        let gemm = GemmUse { pair_min_dim: None, weights_min_cols: Some(4), dot_weights: false };
        let mut program = Program::compile(&f.graph, &f.roots, f.axis, gemm);
        assert_eq!(program.weights.map(|w| w.cols), Some(cols));
        let inputs = [Columns { values: &x.0, nrow: m }, Columns { values: &y.0, nrow: n }, Columns { values: &b, nrow: n }];
        let monoid = Monoid { reduction: f.reduction, scheme: SumScheme::Block };
        let (naive, scale) = naive_weighted(gauss, &b, m, n, cols);
        for &level in &levels {
            program.simd = level;
            let one = cpu::reduce(&program, &monoid, &inputs, m, n, 1, &mut || false).unwrap();
            let two = cpu::reduce(&program, &monoid, &inputs, m, n, 2, &mut || false).unwrap();
            assert_eq!(one.values, two.values, "{cols} columns, {level:?}: 1 and 2 threads");
            for i in 0..m {
                let (v, k) = one.row(i);
                let mut got = vec![0.0; cols];
                monoid.finalize(v, k, &mut got, &mut []);
                for c in 0..cols {
                    let (g, nv) = (got[c], naive[i * cols + c]);
                    assert!((g - nv).abs() <= 1e-13 * scale[i * cols + c], "{cols} columns, {level:?}, row {i}: {g} vs {nv}");
                }
            }
        }
    }
}

/// Which formulas the weights GEMM takes: s * w with s scalar and w a
/// reduced-index variable of enough columns, in either order.
#[test]
fn programs_use_the_weights_gemm_where_expected() {
    use keopsr_core::cpu::{GemmUse, Program};
    let weights = |formula: &str| {
        let aliases = ["x = Vi(3)", "y = Vj(3)", "w = Vj(6)", "v = Vi(6)", "u = Vj(2)"];
        let f = Formula::parse(formula, &aliases).unwrap();
        let gemm = GemmUse { pair_min_dim: None, weights_min_cols: Some(4), dot_weights: false };
        Program::compile(&f.graph, &f.roots, f.axis, gemm).weights.map(|w| w.cols)
    };
    assert_eq!(weights("Sum_Reduction(Exp(-SqDist(x, y)) * w, 1)"), Some(6));
    assert_eq!(weights("Sum_Reduction(w * Exp(-SqDist(x, y)), 1)"), Some(6));
    assert_eq!(weights("Sum_Reduction(Exp(-SqDist(x, y)) * v, 0)"), Some(6));
    assert_eq!(weights("Sum_Reduction(Exp(-SqDist(x, y)) * v, 1)"), None); // v is not reduced
    assert_eq!(weights("Sum_Reduction(Exp(-SqDist(x, y)) * u, 1)"), None); // too few columns
    assert_eq!(weights("Sum_Reduction(Exp(-SqDist(x, y)) * w + 1, 1)"), None);
    assert_eq!(weights("Sum_Reduction(Exp(-SqDist(x, y)) * (w + 1), 1)"), None);
}
