// Time of one formula on the CPU engine, for profiling element-wise
// operations: `cargo run --release --example opbench -- 'Sin(x * y)' [n] [reps]`
// reduces `Sum(OP)` over i and j with x = Vi(4), y = Vj(4), s = Vj(1), as
// bench/first_call_ops.R does (n = 1000 points per side by default).
use keopsr_core::{evaluate, Formula, Input, Options};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let op = args.get(1).map(String::as_str).unwrap_or("Exp(x * y)");
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let reps: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(20);
    let x: Vec<f64> = (0..n * 4).map(|k| ((k * 7919) % 1000) as f64 / 500.0 - 1.0).collect();
    let y: Vec<f64> = (0..n * 4).map(|k| ((k * 104729) % 1000) as f64 / 1000.0).collect();
    let s: Vec<f64> = (0..n).map(|k| (k % 10) as f64 / 10.0).collect();
    let f = format!("Sum_Reduction(Sum({op}), 1)");
    let formula = Formula::parse(&f, &["x = Vi(4)", "y = Vj(4)", "s = Vj(1)"]).unwrap();
    let inputs = [Input::matrix(&x, n, 4), Input::matrix(&y, n, 4), Input::matrix(&s, n, 1)];
    let mut times = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        evaluate(&formula, &inputs, &Options::default(), &mut || false).unwrap();
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!("{f}: {:.2} ms (median of {reps})", times[reps / 2] * 1e3);
}
