// Direct loop against GEMM tiles (cpu::gram) for the Gaussian kernel sum
// Σ_j exp(-|x_i - y_j|² / D) b_j, by dimension and precision, the two
// measured in turns (medians of 5 runs each): the crossover that sets
// `GEMM_MIN_DIM_F64`/`_F32` in plan.rs.
//   cargo run --release --example gemmbench [M] [threads]
use keopsr_core::plan::Gemm;
use keopsr_core::{evaluate, Formula, Input, Options, Precision};
use std::time::Instant;

fn main() {
    let m: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let threads: usize = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(0);
    println!("M = N = {m}, threads = {threads} (0: all cores)");
    println!("{:>5} {:>4} {:>12} {:>12} {:>7}", "D", "prec", "direct (s)", "gemm (s)", "ratio");
    for d in [8, 16, 32, 48, 64, 96, 128, 256, 512, 1024] {
        let x: Vec<f64> = (0..m * d).map(|k| ((k * 7919) % 1000) as f64 / 1000.0).collect();
        let y: Vec<f64> = (0..m * d).map(|k| ((k * 104729) % 1000) as f64 / 1000.0).collect();
        let b: Vec<f64> = (0..m).map(|k| (k % 10) as f64).collect();
        let aliases = [format!("x = Vi({d})"), format!("y = Vj({d})"), "b = Vj(1)".to_string()];
        let f = Formula::parse(&format!("Sum_Reduction(Exp(-SqDist(x, y) / {d}) * b, 1)"), &aliases).unwrap();
        let inputs = [Input::matrix(&x, m, d), Input::matrix(&y, m, d), Input::matrix(&b, m, 1)];
        for precision in [Precision::F64, Precision::F32] {
            let mut times = [Vec::new(), Vec::new()];
            for _ in 0..5 {
                for (k, gemm) in [Gemm::Never, Gemm::Always].into_iter().enumerate() {
                    let options = Options { precision, threads, gemm, ..Options::default() };
                    let t = Instant::now();
                    evaluate(&f, &inputs, &options, &mut || false).unwrap();
                    times[k].push(t.elapsed().as_secs_f64());
                }
            }
            let median = |v: &mut Vec<f64>| {
                v.sort_by(|a, b| a.partial_cmp(b).unwrap());
                v[2]
            };
            let (direct, gemm) = (median(&mut times[0]), median(&mut times[1]));
            let name = if precision == Precision::F64 { "f64" } else { "f32" };
            println!("{d:>5} {name:>4} {direct:>12.4} {gemm:>12.4} {:>7.2}", direct / gemm);
        }
    }
}
