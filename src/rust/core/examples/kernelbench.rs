// Pairs per second of a few reductions on the CPU engine, for before/after
// comparisons of engine changes: `cargo run --release --example kernelbench`
// (set KEOPSR_SIMD=portable to force the baseline x86-64 loops). An argument
// keeps the cases whose name contains it: `... --example kernelbench gaussian`.
use keopsr_core::{evaluate, Formula, Input, Options, Precision};
use std::time::Instant;

fn main() {
    let filter = std::env::args().nth(1).unwrap_or_default();
    // KERNELBENCH_N sets M = N of the D = 3 cases (default 20000).
    let n: usize = std::env::var("KERNELBENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let x: Vec<f64> = (0..n * 3).map(|k| ((k * 7919) % 1000) as f64 / 1000.0).collect();
    let y: Vec<f64> = (0..n * 3).map(|k| ((k * 104729) % 1000) as f64 / 1000.0).collect();
    let b: Vec<f64> = (0..n).map(|k| (k % 10) as f64).collect();
    let a = ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)"];
    let cases = [
        ("gaussian", "Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)"),
        ("sqdist", "Sum_Reduction(SqDist(x, y) * b, 1)"),
        ("logsumexp", "LogSumExp_Reduction(-SqDist(x, y) + b, 1)"),
        ("argkmin", "ArgKMin_Reduction(SqDist(x, y) + b, 10, 1)"),
    ];
    let inputs = [Input::matrix(&x, n, 3), Input::matrix(&y, n, 3), Input::matrix(&b, n, 1)];
    // High dimension: kNN-style squared distances, D = 50, on fewer points.
    let (m, d) = (5_000, 50);
    let xd: Vec<f64> = (0..m * d).map(|k| ((k * 7919) % 1000) as f64 / 1000.0).collect();
    let yd: Vec<f64> = (0..m * d).map(|k| ((k * 104729) % 1000) as f64 / 1000.0).collect();
    let ad = ["x = Vi(50)", "y = Vj(50)"];
    for (name, f) in [("sqdist50", "Sum_Reduction(SqDist(x, y), 1)"), ("argkmin50", "ArgKMin_Reduction(SqDist(x, y), 10, 1)")] {
        if !name.contains(&filter) {
            continue;
        }
        let formula = Formula::parse(f, &ad).unwrap();
        let inputs = [Input::matrix(&xd, m, d), Input::matrix(&yd, m, d)];
        let mut times = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            evaluate(&formula, &inputs, &Options::default(), &mut || false).unwrap();
            times.push(t.elapsed().as_secs_f64());
        }
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!("{name:10} F64: {:7.1} M pairs/s (median of 5)", (m * m) as f64 / times[2] / 1e6);
    }
    for precision in [Precision::F64, Precision::F32] {
        for (name, f) in cases.into_iter().filter(|(name, _)| name.contains(&filter)) {
            let formula = Formula::parse(f, &a).unwrap();
            let options = Options { precision, ..Options::default() };
            let mut times = Vec::new();
            for _ in 0..5 {
                let t = Instant::now();
                evaluate(&formula, &inputs, &options, &mut || false).unwrap();
                times.push(t.elapsed().as_secs_f64());
            }
            times.sort_by(|a, b| a.partial_cmp(b).unwrap());
            println!("{name:10} {precision:?}: {:7.1} M pairs/s (median of 5)", (n * n) as f64 / times[2] / 1e6);
        }
    }
}
