//! Block-sparse reductions against dense reductions of the selected data,
//! and the diagonal of a formula against its definition.

use keopsr_core::formula::Axis;
use keopsr_core::{Formula, Input, Options, Precision, Prepared, Ranges};

mod common;
use common::random;

/// Rows `idx` of a column-major n × d matrix.
fn take_rows(values: &[f64], n: usize, d: usize, idx: &[usize]) -> Vec<f64> {
    (0..d).flat_map(|c| idx.iter().map(move |&i| values[c * n + i])).collect()
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-12 * (1.0 + a.abs().max(b.abs()))
}

const FORMULAS: &[&str] = &[
    "Sum_Reduction(Exp(-SqDist(x, y)) * b, AXIS)",
    "Min_ArgMin_Reduction(SqDist(x, y), AXIS)",
    "KMin_ArgKMin_Reduction(SqDist(x, y) + b, 3, AXIS)",
    "LogSumExp_Reduction(-SqDist(x, y), AXIS)",
    "Max_Reduction(x - y, AXIS)",
];

#[test]
fn ranges_equal_dense_reductions_of_the_selected_points() {
    let (ni, nj, d) = (300, 500, 2);
    let x = random(ni * d, 1);
    let y = random(nj * d, 2);
    let bj = random(nj, 3);
    let bi = random(ni, 4);
    for axis in [Axis::J, Axis::I] {
        let (rows, inner) = if axis == Axis::J { (ni, nj) } else { (nj, ni) };
        // Clusters of unequal sizes with gaps (uncovered rows) and several
        // intervals each, given out of order.
        let out = [(0, 37), (37, 40), (60, 133), (150, rows - 5)];
        let red = [(10, 50), (0, 3), (100, inner), (5, 9), (60, 61), (200, 260), (7, 7), (0, inner)];
        let slices = [3, 3, 6, 8];
        let ranges = Ranges::from_keops(&out, &slices, &red, rows, inner).unwrap();
        for template in FORMULAS {
            let text = template.replace("AXIS", if axis == Axis::J { "1" } else { "0" });
            let b_cat = if axis == Axis::J { "Vj(1)" } else { "Vi(1)" };
            let args = ["x = Vi(2)".to_string(), "y = Vj(2)".to_string(), format!("b = {b_cat}")];
            let uses_b = text.contains("* b") || text.contains("+ b");
            let args: Vec<String> = if uses_b { args.to_vec() } else { args[..2].to_vec() };
            let f = Formula::parse(&text, &args).unwrap();
            let b = if axis == Axis::J { &bj } else { &bi };
            let mut inputs = vec![Input::matrix(&x, ni, d), Input::matrix(&y, nj, d)];
            if uses_b {
                inputs.push(Input::vector(b));
            }
            for precision in [Precision::F64] {
                let options = Options { precision, threads: 2, ..Options::default() };
                let prepared = Prepared::new(&f, &inputs, &options).unwrap();
                let sparse = prepared.run(Some(&ranges), &mut || false).unwrap();
                let full = prepared.run(Some(&Ranges::dense(rows, inner)), &mut || false).unwrap();
                assert_eq!(full, prepared.run(None, &mut || false).unwrap(), "{text}");
                let (vc, kc) = f.reduction.output_cols();
                let mut covered = vec![false; rows];
                for (cluster, intervals) in ranges.clusters() {
                    let sel: Vec<usize> = intervals.iter().flat_map(|r| r.clone()).collect();
                    let outs: Vec<usize> = cluster.clone().collect();
                    for &r in &outs {
                        covered[r] = true;
                    }
                    if sel.len() < f.reduction.k().unwrap_or(1) {
                        continue;
                    }
                    let (ix, iy): (Vec<usize>, Vec<usize>) =
                        if axis == Axis::J { (outs.clone(), sel.clone()) } else { (sel.clone(), outs.clone()) };
                    let xs = take_rows(&x, ni, d, &ix);
                    let ys = take_rows(&y, nj, d, &iy);
                    let bs = take_rows(b, b.len(), 1, if axis == Axis::J { &iy } else { &ix });
                    let mut sub = vec![Input::matrix(&xs, ix.len(), d), Input::matrix(&ys, iy.len(), d)];
                    if uses_b {
                        sub.push(Input::vector(&bs));
                    }
                    let dense = Prepared::new(&f, &sub, &options).unwrap().run(None, &mut || false).unwrap();
                    for (local, &r) in outs.iter().enumerate() {
                        for c in 0..vc {
                            let (a, e) = (sparse.values.as_ref().unwrap().1[c * rows + r], dense.values.as_ref().unwrap().1[c * outs.len() + local]);
                            assert!(close(a, e), "{text}: row {r} col {c}: {a} vs {e}");
                        }
                        for c in 0..kc {
                            let a = sparse.indices.as_ref().unwrap().1[c * rows + r];
                            let e = dense.indices.as_ref().unwrap().1[c * outs.len() + local];
                            assert_eq!(a, sel[(e - 1) as usize] as i32 + 1, "{text}: row {r} col {c}");
                        }
                    }
                }
                // Uncovered rows hold the neutral value.
                for r in (0..rows).filter(|&r| !covered[r]) {
                    if let Some((_, v)) = &sparse.values {
                        // What the reductions' finalize gives for an empty range.
                        let want = if text.starts_with("Sum") {
                            0.0
                        } else if text.starts_with("KMin") {
                            f64::NAN
                        } else if text.starts_with("LogSumExp") || text.starts_with("Max") {
                            f64::NEG_INFINITY
                        } else {
                            f64::INFINITY
                        };
                        assert!(v[r] == want || (v[r].is_nan() && want.is_nan()), "{text}: uncovered row {r}: {}", v[r]);
                    }
                    if let Some((_, k)) = &sparse.indices {
                        assert_eq!(k[r], i32::MIN, "{text}: uncovered row {r}");
                    }
                }
            }
        }
    }
}

#[test]
fn ranges_must_match_the_reduction_shape() {
    let x = random(20, 5);
    let f = Formula::parse("Sum_Reduction(SqDist(x, y), 1)", &["x = Vi(1)", "y = Vj(1)"]).unwrap();
    let inputs = [Input::vector(&x), Input::vector(&x[..10])];
    let p = Prepared::new(&f, &inputs, &Options::default()).unwrap();
    let e = p.run(Some(&Ranges::dense(10, 20)), &mut || false).unwrap_err();
    assert_eq!(e.kind(), "input");
}

#[test]
fn diagonal_is_the_formula_at_i_equals_j() {
    let n = 5000;
    let x = random(n * 3, 6);
    let y = random(n * 3, 7);
    let w = random(n, 8);
    let f = Formula::parse("Sum_Reduction(Exp(-SqDist(x, y)) * w + (x | y), 1)", &["x = Vi(3)", "y = Vj(3)", "w = Vj(1)"])
        .unwrap();
    let inputs = [Input::matrix(&x, n, 3), Input::matrix(&y, n, 3), Input::vector(&w)];
    for precision in [Precision::F64, Precision::F32] {
        let p = Prepared::new(&f, &inputs, &Options { precision, ..Options::default() }).unwrap();
        let ones = vec![1.0; n];
        for (replace, ws) in [(None, &w), (Some((2, &ones[..])), &ones)] {
            let diag = p.diagonal(replace).unwrap();
            for i in 0..n {
                let (mut d2, mut dot) = (0.0, 0.0);
                for c in 0..3 {
                    d2 += (x[c * n + i] - y[c * n + i]).powi(2);
                    dot += x[c * n + i] * y[c * n + i];
                }
                let want = (-d2).exp() * ws[i] + dot;
                let tol = if precision == Precision::F64 { 1e-12 } else { 1e-5 };
                assert!((diag[i] - want).abs() <= tol * (1.0 + want.abs()), "{precision:?} {i}: {} vs {want}", diag[i]);
            }
        }
    }
    let rect = [Input::matrix(&x, n, 3), Input::matrix(&y[..3 * 10], 10, 3), Input::vector(&w[..10])];
    let p = Prepared::new(&f, &rect, &Options::default()).unwrap();
    assert_eq!(p.diagonal(None).unwrap_err().kind(), "input");
}
