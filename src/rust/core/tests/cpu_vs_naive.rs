//! The CPU engine against a naive double loop that interprets the graph one
//! (i, j) pair at a time and reduces with plain Rust code.

use keopsr_core::formula::{Axis, Cat, Graph, NodeId};
use keopsr_core::ops::{Extremum, Op};
use keopsr_core::reduction::SumScheme;
use keopsr_core::{evaluate, Formula, Input, Options, Precision};

mod common;
use common::random;

/// Value of node `id` at the pair (i, j), by direct interpretation.
fn eval_pair(g: &Graph, id: NodeId, data: &[(Vec<f64>, usize)], i: usize, j: usize) -> Vec<f64> {
    let node = g.node(id);
    match node.op {
        Op::Var(pos) => {
            let info = g.var_info(pos).unwrap();
            let (values, nrow) = &data[pos];
            let p = match info.cat {
                Cat::I => i,
                Cat::J => j,
                Cat::P => 0,
            };
            (0..info.dim).map(|c| values[c * nrow + p]).collect()
        }
        Op::Sum(group) => {
            let x = eval_pair(g, node.args[0], data, i, j);
            x.chunks(group).map(|c| c.iter().sum()).collect()
        }
        Op::Extremum(e) => {
            let x = eval_pair(g, node.args[0], data, i, j);
            // First position of the best value, NaN last.
            let key = |v: f64| if v.is_nan() { f64::INFINITY } else { v };
            let (mut best, mut pos) = (x[0], 0);
            for (c, &v) in x.iter().enumerate() {
                let better = match e {
                    Extremum::Min | Extremum::ArgMin => key(v) < key(best) || (best.is_nan() && !v.is_nan()),
                    Extremum::Max | Extremum::ArgMax => (v > best && !v.is_nan()) || (best.is_nan() && !v.is_nan()),
                };
                if better {
                    (best, pos) = (v, c);
                }
            }
            vec![if matches!(e, Extremum::ArgMin | Extremum::ArgMax) { pos as f64 } else { best }]
        }
        Op::Gather(t) => {
            let x = eval_pair(g, node.args[0], data, i, j);
            g.table(t).iter().map(|k| k.map_or(0.0, |k| x[k as usize])).collect()
        }
        Op::Concat => {
            let mut x = eval_pair(g, node.args[0], data, i, j);
            x.extend(eval_pair(g, node.args[1], data, i, j));
            x
        }
        Op::OneHot(d) => {
            let x = eval_pair(g, node.args[0], data, i, j)[0].round();
            (0..d).map(|c| if x == c as f64 { 1.0 } else { 0.0 }).collect()
        }
        Op::Const(bits) => vec![f64::from_bits(bits); node.dim],
        op => {
            let args: Vec<Vec<f64>> = node.args.iter().map(|&a| eval_pair(g, a, data, i, j)).collect();
            (0..node.dim)
                .map(|c| {
                    let xs: Vec<f64> = args.iter().map(|a| if a.len() == 1 { a[0] } else { a[c] }).collect();
                    op.eval_scalar::<f64>(&xs).unwrap()
                })
                .collect()
        }
    }
}

/// Naive reduction: all values of the reduced index, then plain Rust.
fn naive(f: &Formula, data: &[(Vec<f64>, usize)], ni: usize, nj: usize) -> (Vec<f64>, Vec<i32>) {
    let (rows, inner) = if f.axis == Axis::J { (ni, nj) } else { (nj, ni) };
    let name = format!("{:?}", f.reduction);
    let (vc, kc) = f.reduction.output_cols();
    let (mut vals, mut idx) = (vec![0.0; rows * vc], vec![0; rows * kc]);
    for r in 0..rows {
        let at = |k: usize, root: usize| {
            let (i, j) = if f.axis == Axis::J { (r, k) } else { (k, r) };
            eval_pair(&f.graph, f.roots[root], data, i, j)
        };
        let fs: Vec<Vec<f64>> = (0..inner).map(|k| at(k, 0)).collect();
        let d = fs.first().map_or(0, |v| v.len());
        let mut put_v = |c: usize, x: f64| vals[c * rows + r] = x;
        if name.starts_with("Sum {") {
            for c in 0..d {
                put_v(c, fs.iter().map(|v| v[c]).sum());
            }
        } else if name.starts_with("MinMax") || name.starts_with("KMin") {
            let max = name.contains("max: true");
            let k = f.reduction.k().unwrap_or(1);
            for c in 0..d {
                let mut order: Vec<usize> = (0..inner).collect();
                order.sort_by(|&a, &b| {
                    let (x, y) = (fs[a][c], fs[b][c]);
                    let o = x.partial_cmp(&y).unwrap();
                    (if max { o.reverse() } else { o }).then(a.cmp(&b))
                });
                for q in 0..k {
                    let col = q * d + c;
                    if vc > 0 {
                        vals[col * rows + r] = fs[order[q]][c];
                    }
                    if kc > 0 {
                        idx[col * rows + r] = order[q] as i32 + 1;
                    }
                }
            }
        } else if name.starts_with("MaxSumShiftExp") {
            // (m, Σ exp(F - m) G), G = 1 without weight.
            let m = fs.iter().map(|v| v[0]).fold(f64::NEG_INFINITY, f64::max);
            put_v(0, m);
            for c in 0..vc - 1 {
                let w = |k: usize| if f.roots.len() > 1 { at(k, 1)[c] } else { 1.0 };
                put_v(c + 1, (0..inner).map(|k| (fs[k][0] - m).exp() * w(k)).sum());
            }
        } else if name.starts_with("LogSumExp") && f.roots.len() == 1 {
            for c in 0..d {
                put_v(c, fs.iter().map(|v| v[c].exp()).sum::<f64>().ln());
            }
        } else {
            let gs: Vec<Vec<f64>> = (0..inner).map(|k| at(k, 1)).collect();
            let e = gs[0].len();
            let norm: f64 = fs.iter().map(|v| v[0].exp()).sum();
            for c in 0..e {
                let w: f64 = fs.iter().zip(&gs).map(|(v, g)| v[0].exp() * g[c]).sum();
                put_v(c, if name.starts_with("LogSumExp") { w.ln() } else { w / norm });
            }
        }
    }
    (vals, idx)
}

fn check(formula: &str, aliases: &[&str], ni: usize, nj: usize, options: Options, tol: f64) {
    let f = Formula::parse(formula, aliases).unwrap();
    let owned = common::random_data(&f.variables().unwrap(), ni, nj, 17 * ni as u64 + nj as u64);
    let data: Vec<(Vec<f64>, usize)> = owned.iter().map(|(v, n, _)| (v.clone(), *n)).collect();
    let inputs: Vec<Input<'_>> = owned.iter().map(|(v, n, d)| Input::matrix(v, *n, *d)).collect();
    let out = evaluate(&f, &inputs, &options, &mut || false).unwrap();
    let (want_v, want_k) = naive(&f, &data, ni, nj);
    if let Some((_, got)) = &out.values {
        for (a, b) in got.iter().zip(&want_v) {
            assert!((a - b).abs() <= tol * (1.0 + b.abs()), "{formula} ({ni}x{nj}, {options:?}): {a} vs {b}");
        }
        assert_eq!(got.len(), want_v.len());
    }
    if let Some((_, got)) = &out.indices {
        assert_eq!(got, &want_k, "{formula} ({ni}x{nj})");
    }
}

const FORMULAS: &[(&str, &[&str])] = &[
    ("Sum_Reduction(Exp(-SqDist(x,y)/2)*b, 1)", &["x = Vi(3)", "y = Vj(3)", "b = Vj(1)"]),
    ("Sum_Reduction(Exp(-SqDist(x,y)/2)*b, 0)", &["x = Vi(3)", "y = Vj(3)", "b = Vj(2)"]),
    ("Sum_Reduction((x|y) * p + Norm2(x) - Sqrt(Abs(y)) + Pow(x, 3) * Inv(p + 2), 1)", &["x = Vi(2)", "y = Vj(2)", "p = Pm(1)"]),
    ("Sum_Reduction(Sin(x) * Cos(y) + Log(Square(x - y) + 1) + Rsqrt(SqNorm2(y) + 0.5) + Sum(y), 0)", &["x = Vi(3)", "y = Vj(3)"]),
    ("Sum_Reduction(x, 1)", &["x = Vi(2)", "y = Vj(1)"]),
    ("Sum_Reduction(y * 2, 1)", &["x = Vi(1)", "y = Vj(2)"]),
    ("Min_ArgMin_Reduction(SqDist(x,y), 1)", &["x = Vi(3)", "y = Vj(3)"]),
    ("Max_ArgMax_Reduction(x - y, 0)", &["x = Vi(2)", "y = Vj(2)"]),
    ("Min_Reduction(x * y, 1)", &["x = Vi(1)", "y = Vj(1)"]),
    ("ArgMax_Reduction(x * y, 1)", &["x = Vi(1)", "y = Vj(1)"]),
    ("KMin_ArgKMin_Reduction(SqDist(x,y), 5, 1)", &["x = Vi(3)", "y = Vj(3)"]),
    ("KMin_Reduction(x - y, 3, 0)", &["x = Vi(2)", "y = Vj(2)"]),
    ("ArgKMin_Reduction(SqDist(x,y), 7, 0)", &["x = Vi(4)", "y = Vj(4)"]),
    ("LogSumExp_Reduction(-SqDist(x,y) * 3 + x, 1)", &["x = Vi(2)", "y = Vj(2)"]),
    ("LogSumExp_Reduction(-SqDist(x,y), 1, Exp(y))", &["x = Vi(2)", "y = Vj(2)"]),
    ("LogSumExp_Reduction(-SqDist(x,y), Exp(y), 1)", &["x = Vi(2)", "y = Vj(2)"]),
    ("LogSumExpWeight_Reduction(-SqDist(x,y), Exp(y), 0)", &["x = Vi(2)", "y = Vj(2)"]),
    ("SumSoftMaxWeight_Reduction(-SqDist(x,y), y * x, 1)", &["x = Vi(2)", "y = Vj(2)"]),
    ("Max_SumShiftExp_Reduction(-SqDist(x,y) * 3, 1)", &["x = Vi(2)", "y = Vj(2)"]),
    ("Max_SumShiftExpWeight_Reduction(-SqDist(x,y), 0, Concat(y, x * y))", &["x = Vi(2)", "y = Vj(2)"]),
    ("Max_SumShiftExpWeight_Reduction(-SqDist(x,y), Exp(y), 1)", &["x = Vi(2)", "y = Vj(2)"]),
    ("Zero_Reduction(3, 1)", &["x = Vi(2)", "y = Vj(2)"]),
    // The formula-language primitives: Gather, Concat, OneHot, Sum of groups,
    // Extremum, Ternary, Round, comparisons, narrow/wide mixes.
    ("Sum_Reduction(Concat(Elem(x, 2), Extract(y, 1, 2)) * ElemT(Sum(x), 3, 1) + ExtractT(Elem(y, 0), 1, 3), 1)", &["x = Vi(3)", "y = Vj(3)"]),
    ("Sum_Reduction(MatVecMult(a, y) + VecMatMult(y, a) + TensorProd(x, Elem(y, 0)), 0)", &["a = Vi(9)", "y = Vj(3)", "x = Vi(3)"]),
    ("Sum_Reduction(TensorDot(a, y, Ind(2, 3), Ind(3), Ind(1), Ind(0)) + Extract(Kron(x, Concat(y, y), Ind(1, 1), Ind(2, 3)), 1, 2), 1)", &["a = Vi(6)", "y = Vj(3)", "x = Vi(1)"]),
    ("Sum_Reduction(TensorDot(a, b, Ind(2, 3), Ind(2, 3), Ind(0), Ind(0), Ind(1, 0)), 0)", &["a = Vi(6)", "b = Vj(6)"]),
    ("Sum_Reduction(Concat(Max(x - y), Concat(ArgMin(x * y), Min(y))) + OneHot(ArgMax(x + y), 3), 1)", &["x = Vi(3)", "y = Vj(3)"]),
    ("Sum_Reduction(IfElse(x - y, Clamp(x, -0.5, y), Mod(x * 7, 2, -1)) + Round(y * 10, 1) + Floor(x * 3), 0)", &["x = Vi(2)", "y = Vj(2)"]),
    ("Sum_Reduction(Step(x - y) + ReLU(x - y) + Sign(x) + LessThan(x, y) * 2 + LessOrEqual(y, 0) + Equal(Floor(x*2), Floor(y*2)) + NotEqual(x, y), 1)", &["x = Vi(2)", "y = Vj(2)"]),
    ("Sum_Reduction(Atan2(x, y) + Powf(Abs(x) + 0.1, y) + Asin(x * 0.9) + Acos(y * 0.9) + Atan(x * y) + XLogX(Abs(y)) + SinXDivX(x - y), 1)", &["x = Vi(2)", "y = Vj(2)"]),
    ("Sum_Reduction(ComplexMult(z, ComplexExp(w)) + ComplexDivide(w, ComplexAdd(z, Real2Complex(p))) + Conj(ComplexExp1j(y)), 1)", &["z = Vi(4)", "w = Vj(4)", "p = Pm(1)", "y = Vj(2)"]),
    ("Min_ArgMin_Reduction(WeightedSqDist(s, x, y) + WeightedSqNorm(t, x) + WeightedSqDist(p, x, y) + Normalize(x), 1)", &["s = Vi(4)", "x = Vi(2)", "y = Vj(2)", "t = Vj(2)", "p = Pm(1)"]),
    // High dimension: element-wise chains fused into their sums.
    ("Sum_Reduction(SqDist(x, y) + (x | y) * Sum(Square(x - y) * Exp(-x) + IfElse(x - y, x, y)) + Concat(Sum(x * 2), Max(x - y)), 1)", &["x = Vi(20)", "y = Vj(20)"]),
    ("ArgKMin_Reduction(SqDist(x, y) + Sum(Abs(x - y)), 4, 0)", &["x = Vi(33)", "y = Vj(33)"]),
    // Low-dimensional sums of pairs (one pass each): every operand shape,
    // a broadcast operand, both reduced indices.
    ("Sum_Reduction(SqDist(x - y, z) + Sum(Square(x - w)) + (x | z) + Sum(Abs(z - x)) + Sum(Abs(x - y) * Abs(x - y)), 1)", &["x = Vi(3)", "y = Vj(3)", "z = Vj(3)", "w = Vj(1)"]),
    ("Sum_Reduction(SqDist(x - y, z) + Sum(Square(x - w)) + (x | z) + Sum(Abs(z - x)) + Sum(Abs(x - y) * Abs(x - y)), 0)", &["x = Vi(3)", "y = Vj(3)", "z = Vj(3)", "w = Vj(1)"]),
    // Exp computing its negated or scaled argument itself (scalar and
    // per-component factors, a parameter, both reduced indices).
    ("Sum_Reduction(Exp(-SqDist(x,y)) * b + Exp(SqDist(x,y) * p) + Exp(x * y) + Exp(-(x - y)) + Exp(p * Sqrt(Abs(y))), 1)", &["x = Vi(2)", "y = Vj(2)", "b = Vj(2)", "p = Pm(1)"]),
    ("Sum_Reduction(Exp(-SqDist(x,y)) * b + Exp(SqDist(x,y) * p) + Exp(x * y) + Exp(-(x - y)) + Exp(p * Sqrt(Abs(y))), 0)", &["x = Vi(2)", "y = Vj(2)", "b = Vj(2)", "p = Pm(1)"]),
    ("KMin_Reduction(ComplexAbs(z) + ComplexAngle(z) + ComplexReal(ComplexSum(z)) + ComplexSquareAbs(Imag2Complex(x)), 2, 0)", &["z = Vj(4)", "x = Vi(2)"]),
    ("SumSoftMaxWeight_Reduction(-SqDist(x,y) * 4, 0, y)", &["x = Vi(2)", "y = Vj(2)"]),
];

#[test]
fn every_reduction_matches_the_naive_loop() {
    let sizes = [(1, 1), (7, 13), (40, 300), (301, 33), (65, 1000)];
    for (formula, aliases) in FORMULAS {
        for &(ni, nj) in &sizes {
            let reduced = if formula.ends_with(", 1)") { nj } else { ni };
            if Formula::parse(formula, aliases).unwrap().reduction.k().is_some_and(|k| k > reduced) {
                continue;
            }
            check(formula, aliases, ni, nj, Options::default(), 1e-12);
        }
    }
}

#[test]
fn float32_and_sum_schemes() {
    for (formula, aliases) in FORMULAS.iter().filter(|(f, _)| !f.contains("Arg")) {
        let opts = Options { precision: Precision::F32, ..Options::default() };
        check(formula, aliases, 50, 700, opts, 2e-4);
    }
    for scheme in [SumScheme::Direct, SumScheme::Kahan] {
        let opts = Options { sum_scheme: scheme, ..Options::default() };
        check(FORMULAS[0].0, FORMULAS[0].1, 30, 2000, opts, 1e-12);
    }
}

#[test]
fn thread_counts_give_identical_results() {
    let f = Formula::parse(FORMULAS[0].0, FORMULAS[0].1).unwrap();
    let (x, y, b) = (random(3 * 900, 1), random(3 * 5000, 2), random(5000, 3));
    let inputs = [Input::matrix(&x, 900, 3), Input::matrix(&y, 5000, 3), Input::vector(&b)];
    let run = |threads| evaluate(&f, &inputs, &Options { threads, ..Options::default() }, &mut || false).unwrap();
    let one = run(1);
    for threads in [2, 3, 8] {
        assert_eq!(run(threads), one);
    }
}

#[test]
fn few_reduced_indices_take_large_row_blocks_with_the_same_results() {
    // One to three reduced points (a kernel column): items grow to thousands
    // of rows; every row still folds the same chunk, whatever the threads.
    for (formula, aliases) in FORMULAS.iter().take(6) {
        for nj in [1, 3] {
            check(formula, aliases, 9000, nj, Options::default(), 1e-12);
        }
    }
    let f = Formula::parse(FORMULAS[0].0, FORMULAS[0].1).unwrap();
    let (x, y, b) = (random(3 * 20000, 4), random(3, 5), random(1, 6));
    let inputs = [Input::matrix(&x, 20000, 3), Input::matrix(&y, 1, 3), Input::vector(&b)];
    let run = |threads| evaluate(&f, &inputs, &Options { threads, ..Options::default() }, &mut || false).unwrap();
    let one = run(1);
    for threads in [2, 3] {
        assert_eq!(run(threads), one);
    }
}

#[test]
fn sums_of_s_times_b_multiply_in_the_push_with_identical_results() {
    // `F * b` (b a j-variable of dimension 1) multiplies in the push; `b * F`
    // stores the products first. Both must give the same bits, for every
    // summation scheme and precision, with Inf, NaN and zeros in the data.
    let aliases = ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)"];
    let (ni, nj) = (300, 5000);
    let (x, y) = (random(3 * ni, 7), random(3 * nj, 8));
    let mut b = random(nj, 9);
    b[17] = f64::INFINITY;
    b[123] = f64::NAN;
    b[4000] = 0.0;
    let inputs = [Input::matrix(&x, ni, 3), Input::matrix(&y, nj, 3), Input::vector(&b)];
    let fused = Formula::parse("Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)", &aliases).unwrap();
    let stored = Formula::parse("Sum_Reduction(b * Exp(-SqDist(x, y)), 1)", &aliases).unwrap();
    for precision in [Precision::F64, Precision::F32] {
        for sum_scheme in [SumScheme::Block, SumScheme::Direct, SumScheme::Kahan] {
            let options = Options { precision, sum_scheme, ..Options::default() };
            let values = |f: &Formula| evaluate(f, &inputs, &options, &mut || false).unwrap().values.unwrap().1;
            let (a, c) = (values(&fused), values(&stored));
            assert_eq!(a.len(), ni);
            for (i, (u, v)) in a.iter().zip(&c).enumerate() {
                assert!(u.to_bits() == v.to_bits() || (u.is_nan() && v.is_nan()), "{precision:?} {sum_scheme:?} row {i}: {u} vs {v}");
            }
            assert!(a.iter().all(|v| v.is_nan()), "NaN in b reaches every row");
        }
    }
    // Without the NaN (the Inf stays) the sums are equal too.
    b[123] = 0.5;
    let inputs = [Input::matrix(&x, ni, 3), Input::matrix(&y, nj, 3), Input::vector(&b)];
    let values = |f: &Formula| evaluate(f, &inputs, &Options::default(), &mut || false).unwrap().values.unwrap().1;
    let (a, c) = (values(&fused), values(&stored));
    assert!(a.iter().zip(&c).all(|(u, v)| u.to_bits() == v.to_bits()));
}

#[test]
fn interrupt_stops_between_rounds() {
    let f = Formula::parse(FORMULAS[0].0, FORMULAS[0].1).unwrap();
    let (x, y, b) = (random(3 * 4000, 1), random(3 * 4000, 2), random(4000, 3));
    let inputs = [Input::matrix(&x, 4000, 3), Input::matrix(&y, 4000, 3), Input::vector(&b)];
    let mut calls = 0;
    let err = evaluate(&f, &inputs, &Options::default(), &mut || {
        calls += 1;
        true
    })
    .unwrap_err();
    assert_eq!(err.kind(), "interrupt");
    assert_eq!(calls, 1);
}

#[test]
fn input_errors() {
    let f = Formula::parse(FORMULAS[0].0, FORMULAS[0].1).unwrap();
    let (x, y, b) = (random(30, 1), random(30, 2), random(10, 3));
    let kind = |inputs: &[Input<'_>]| evaluate(&f, inputs, &Options::default(), &mut || false).unwrap_err().kind();
    assert_eq!(kind(&[Input::matrix(&x, 10, 3), Input::matrix(&y, 10, 3)]), "input");
    assert_eq!(kind(&[Input::matrix(&x, 15, 2), Input::matrix(&y, 10, 3), Input::vector(&b)]), "input");
    assert_eq!(kind(&[Input::matrix(&x, 10, 3), Input::matrix(&y, 10, 3), Input::vector(&b[..9])]), "input");
    let k = Formula::parse("ArgKMin_Reduction(SqDist(x,y), 11, 1)", &["x = Vi(3)", "y = Vj(3)"]).unwrap();
    let err = evaluate(&k, &[Input::matrix(&x, 10, 3), Input::matrix(&y, 10, 3)], &Options::default(), &mut || false);
    assert_eq!(err.unwrap_err().kind(), "reduction");
    let p = Formula::parse("Sum_Reduction(x * p, 1)", &["x = Vi(3)", "p = Pm(3)"]).unwrap();
    let err = evaluate(&p, &[Input::matrix(&x, 10, 3), Input::vector(&b[..2])], &Options::default(), &mut || false);
    assert_eq!(err.unwrap_err().kind(), "input");
}

#[test]
fn empty_reduced_range() {
    let f = Formula::parse("Min_ArgMin_Reduction(SqDist(x,y), 1)", &["x = Vi(1)", "y = Vj(1)"]).unwrap();
    let s = Formula::parse("Sum_Reduction(SqDist(x,y), 1)", &["x = Vi(1)", "y = Vj(1)"]).unwrap();
    let x = random(4, 1);
    let inputs = [Input::matrix(&x, 4, 1), Input::matrix(&[], 0, 1)];
    let out = evaluate(&f, &inputs, &Options::default(), &mut || false).unwrap();
    assert_eq!(out.values.unwrap().1, vec![f64::INFINITY; 4]);
    assert_eq!(out.indices.unwrap().1, vec![i32::MIN; 4]);
    let out = evaluate(&s, &inputs, &Options::default(), &mut || false).unwrap();
    assert_eq!(out.values.unwrap().1, vec![0.0; 4]);
}

/// More than 2^32 pairs (a few seconds), cheap formula: counts must be exact.
#[test]
fn more_than_two_to_the_32_pairs() {
    let f = Formula::parse("Sum_Reduction(x * 0 + y * 0 + 1, 1)", &["x = Vi(1)", "y = Vj(1)"]).unwrap();
    let (m, n) = (70_000, 70_000);
    let (x, y) = (vec![1.0; m], vec![1.0; n]);
    let out = evaluate(&f, &[Input::vector(&x), Input::vector(&y)], &Options::default(), &mut || false).unwrap();
    assert!(out.values.unwrap().1.iter().all(|&v| v == n as f64));
}

#[test]
fn simd_and_portable_loops_give_identical_results() {
    // The AVX2 and AVX-512 builds of the loops (chosen at run time) must
    // give the same results as the portable one: no reassociation; only
    // exp's polynomial uses fused multiply-adds there, which may change the
    // last bit. Every build this CPU supports is compared.
    use keopsr_core::cpu::program::{detected_simd, Simd};
    use keopsr_core::cpu::{self, Data, Program};
    let levels: Vec<Simd> = [Simd::Avx2, Simd::Avx512].into_iter().filter(|&l| l <= detected_simd()).collect();
    use keopsr_core::reduction::Monoid;
    for (formula, aliases) in FORMULAS {
        let f = Formula::parse(formula, aliases).unwrap();
        let vars = f.variables().unwrap();
        let (ni, nj) = (37, 301);
        let data = common::random_data(&vars, ni, nj, 70);
        let inputs: Vec<Data<'_, f64>> = data.iter().map(|(values, nrow, _)| Data { values, nrow: *nrow }).collect();
        let (rows, inner) = if f.axis == Axis::J { (ni, nj) } else { (nj, ni) };
        if f.reduction.k().is_some_and(|k| k > inner) {
            continue;
        }
        let monoid = Monoid { reduction: f.reduction, scheme: SumScheme::Block };
        let mut program = Program::compile(&f.graph, &f.roots, f.axis, keopsr_core::cpu::GemmUse::default());
        program.simd = Simd::Portable;
        let portable = cpu::reduce(&program, &monoid, &inputs, rows, inner, 1, &mut || false).unwrap();
        for &level in &levels {
            program.simd = level;
            let fast = cpu::reduce(&program, &monoid, &inputs, rows, inner, 1, &mut || false).unwrap();
            for (a, b) in fast.values.iter().zip(&portable.values) {
                let same = a.to_bits() == b.to_bits() || (a - b).abs() <= 1e-14 * b.abs().max(1.0);
                assert!(same, "{formula}, {level:?}: {a} vs {b}");
            }
            if !formula.contains("Exp") {
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&fast.values), bits(&portable.values), "{formula}, {level:?}: bit-identical without exp");
            }
            assert_eq!(fast.indices, portable.indices, "{formula}, {level:?}");
        }
    }
    // Which builds were compared (all three on a CPU with AVX-512).
    eprintln!("SIMD builds compared with the portable one: {levels:?}");
}
