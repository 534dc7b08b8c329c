//! Nearest neighbours by GEMM distances and an exact re-rank (cpu::rerank):
//! every Min/KMin-type reduction of SqDist gives the direct loop's values
//! and indices bit for bit, far from the origin, with ties, duplicates,
//! NaN and Inf, in f64 and f32, on both axes; rows whose certificate fails
//! are reduced again and still exact.

use keopsr_core::cpu::rerank::Knn;
use keopsr_core::cpu::{Data, GemmUse, Program};
use keopsr_core::formula::Formula;
use keopsr_core::plan::Gemm;
use keopsr_core::reduction::{Monoid, SumScheme};
use keopsr_core::{evaluate, Input, Options, Output, Precision};

mod common;
use common::random;

type Points = (Vec<f64>, usize, usize);

fn run(formula: &str, aliases: &[&str], data: &[Points], options: Options) -> Output {
    let f = Formula::parse(formula, aliases).unwrap();
    let inputs: Vec<Input<'_>> = data.iter().map(|(v, r, c)| Input::matrix(v, *r, *c)).collect();
    evaluate(&f, &inputs, &options, &mut || false).unwrap()
}

fn options(gemm: Gemm, precision: Precision) -> Options {
    Options { gemm, precision, ..Options::default() }
}

/// Column-major n × d points: random in [-1, 1) plus `offset`.
fn points(n: usize, d: usize, offset: f64, seed: u64) -> Points {
    (random(n * d, seed).into_iter().map(|v| v + offset).collect(), n, d)
}

/// Equal values (bit for bit, NaN included) and indices.
fn assert_same(got: &Output, want: &Output, what: &str) {
    let bits = |o: &Output| o.values.as_ref().map(|(c, v)| (*c, v.iter().map(|x| x.to_bits()).collect::<Vec<_>>()));
    let (gb, wb) = (bits(got), bits(want));
    if let (Some((_, g)), Some((_, w))) = (&gb, &wb) {
        if let Some(k) = (0..g.len()).find(|&k| g[k] != w[k]) {
            let (gv, wv) = (&got.values.as_ref().unwrap().1, &want.values.as_ref().unwrap().1);
            panic!("{what}: value {k} is {} instead of {}", gv[k], wv[k]);
        }
    }
    assert_eq!(gb, wb, "{what}: values");
    assert_eq!(got.indices, want.indices, "{what}: indices");
}

const SELECTIONS: [&str; 6] = [
    "Min_Reduction(SqDist(x, y), AXIS)",
    "ArgMin_Reduction(SqDist(x, y), AXIS)",
    "Min_ArgMin_Reduction(SqDist(x, y), AXIS)",
    "KMin_Reduction(SqDist(x, y), 5, AXIS)",
    "ArgKMin_Reduction(SqDist(x, y), 7, AXIS)",
    "KMin_ArgKMin_Reduction(Sum(Square(x - y)), 10, AXIS)",
];

/// Every selection on both axes gives the same output with GEMM (Always,
/// Auto) as without.
fn same_as_direct(data: &[Points], d: usize, precision: Precision) {
    let aliases = [format!("x = Vi({d})"), format!("y = Vj({d})")];
    let aliases: Vec<&str> = aliases.iter().map(|a| a.as_str()).collect();
    for formula in SELECTIONS {
        for axis in ["0", "1"] {
            let formula = formula.replace("AXIS", axis);
            let direct = run(&formula, &aliases, data, options(Gemm::Never, precision));
            for gemm in [Gemm::Always, Gemm::Auto] {
                let got = run(&formula, &aliases, data, options(gemm, precision));
                assert_same(&got, &direct, &format!("{formula}, {gemm:?}, {precision:?}, d = {d}"));
            }
        }
    }
}

#[test]
fn selections_equal_the_direct_loop_far_from_the_origin() {
    for (d, offset) in [(40, 0.0), (128, 0.0), (64, 1e3)] {
        for precision in [Precision::F64, Precision::F32] {
            let data = [points(45, d, offset, 1), points(300, d, offset, 2)];
            same_as_direct(&data, d, precision);
        }
    }
}

#[test]
fn ties_duplicates_nan_and_inf_as_in_the_direct_loop() {
    let (m, n, d) = (40, 260, 48);
    let (mut x, mut y) = (points(m, d, 2.0, 3), points(n, d, 2.0, 4));
    // y holds copies of x's first rows (distance 0) and of its own points
    // (equal distances, ties to the smallest index).
    for c in 0..d {
        for j in 0..10 {
            y.0[c * n + 50 + j] = x.0[c * m + j];
            y.0[c * n + 100 + j] = y.0[c * n + 10 + j];
        }
    }
    // NaN and Inf in some rows and points.
    x.0[3 * m + 5] = f64::NAN;
    x.0[7 * m + 6] = f64::INFINITY;
    y.0[2 * n + 17] = f64::NAN;
    y.0[5 * n + 18] = f64::NEG_INFINITY;
    y.0[9 * n + 19] = 1e300;
    for precision in [Precision::F64, Precision::F32] {
        same_as_direct(&[x.clone(), y.clone()], d, precision);
    }
}

/// Points nearly equidistant from every query (differences far below the
/// error bound): certificates fail, the rows are reduced again by the direct
/// loop, and the result is still the direct loop's.
#[test]
fn rows_without_a_certificate_are_reduced_again() {
    let (m, n, d) = (20, 400, 64);
    let base = random(d, 5);
    let noise = random(n * d, 6);
    let y: Vec<f64> = (0..n * d).map(|k| base[k / n] * 4.0 + 1e-13 * noise[k]).collect();
    let x = points(m, d, 0.0, 7);
    let formula = "ArgKMin_Reduction(SqDist(x, y), 10, 1)";
    let f = Formula::parse(formula, &["x = Vi(64)", "y = Vj(64)"]).unwrap();
    let knn = Knn::new(&f.graph, &f.roots, f.axis, f.reduction, Some(2)).expect("a kNN formula");
    let exact = Program::compile(&f.graph, &f.roots, f.axis, GemmUse::default());
    let monoid = Monoid { reduction: f.reduction, scheme: SumScheme::Block };
    let inputs = [Data { values: &x.0, nrow: m }, Data { values: &y, nrow: n }];
    let (states, redone) = knn.reduce(&exact, &monoid, &inputs, m, n, 2, &mut || false).unwrap();
    assert!(redone > 0, "no row was reduced again");
    let direct = keopsr_core::cpu::reduce(&exact, &monoid, &inputs, m, n, 2, &mut || false).unwrap();
    for r in 0..m {
        assert_eq!(states.row(r), direct.row(r), "row {r}");
    }
    // Well-separated data: every certificate holds.
    let y = points(n, d, 0.0, 8);
    let inputs = [Data { values: &x.0, nrow: m }, Data { values: &y.0, nrow: n }];
    let (_, redone) = knn.reduce(&exact, &monoid, &inputs, m, n, 2, &mut || false).unwrap();
    assert_eq!(redone, 0);
}

#[test]
fn which_formulas_take_the_re_rank() {
    let aliases = ["x = Vi(64)", "y = Vj(64)", "b = Vj(1)"];
    let takes = |formula: &str, min: Option<usize>| {
        let f = Formula::parse(formula, &aliases).unwrap();
        Knn::new(&f.graph, &f.roots, f.axis, f.reduction, min).is_some()
    };
    assert!(takes("ArgKMin_Reduction(SqDist(x, y), 3, 1)", Some(32)));
    assert!(takes("Min_ArgMin_Reduction(SqDist(y, x), 0)", Some(32)));
    assert!(!takes("ArgKMin_Reduction(SqDist(x, y), 3, 1)", Some(65)));
    assert!(!takes("ArgKMin_Reduction(SqDist(x, y), 3, 1)", None));
    // Not SqDist itself, or not a selection of the smallest.
    assert!(!takes("ArgKMin_Reduction(SqDist(x, y) + b, 3, 1)", Some(2)));
    assert!(!takes("Max_Reduction(SqDist(x, y), 1)", Some(2)));
    assert!(!takes("ArgMin_Reduction(-(x | y), 1)", Some(2)));
    assert!(!takes("Sum_Reduction(SqDist(x, y), 1)", Some(2)));
}

#[test]
fn thread_counts_give_the_same_neighbours() {
    let data = [points(70, 96, 0.0, 9), points(500, 96, 0.0, 10)];
    let aliases = ["x = Vi(96)", "y = Vj(96)"];
    let formula = "KMin_ArgKMin_Reduction(SqDist(x, y), 4, 1)";
    let at = |threads| run(formula, &aliases, &data, Options { threads, ..Options::default() });
    assert_eq!(at(1), at(2));
    assert_eq!(at(1), at(3));
}
