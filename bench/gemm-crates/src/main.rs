// Rerun: cd bench/gemm-crates && cargo run --release (one thread, medians not taken: 3 rounds shown).
// C (m x n) = A (m x k) * B^T (B: n x k), row-major, f32 and f64, one thread:
// the shape of keopsr's GEMM tiles (256 rows x a tile of j, D = k).
use std::time::Instant;
fn main() {
    for &(m, n, k) in &[(256usize, 512usize, 784usize), (256, 512, 128), (256, 256, 50), (256, 1024, 2000)] {
        let a32: Vec<f32> = (0..m * k).map(|i| (i % 97) as f32 / 97.0).collect();
        let b32: Vec<f32> = (0..n * k).map(|i| (i % 89) as f32 / 89.0).collect();
        let a64: Vec<f64> = a32.iter().map(|&v| v as f64).collect();
        let b64: Vec<f64> = b32.iter().map(|&v| v as f64).collect();
        let reps = (2e9 / (2.0 * (m * n * k) as f64)).max(3.0) as usize;
        let flops = 2.0 * (m * n * k) as f64 * reps as f64;
        let mut c32 = vec![0f32; m * n];
        let mut c64 = vec![0f64; m * n];
        for round in 0..3 {
            let t = Instant::now();
            for _ in 0..reps { unsafe { matrixmultiply::sgemm(m, k, n, 1.0, a32.as_ptr(), k as isize, 1, b32.as_ptr(), 1, k as isize, 0.0, c32.as_mut_ptr(), n as isize, 1); } }
            let mm32 = flops / t.elapsed().as_secs_f64() / 1e9;
            let t = Instant::now();
            for _ in 0..reps { unsafe { gemm::gemm(m, n, k, c32.as_mut_ptr(), 1, n as isize, false, a32.as_ptr(), 1, k as isize, b32.as_ptr(), k as isize, 1, 0.0f32, 1.0f32, false, false, false, gemm::Parallelism::None); } }
            let g32 = flops / t.elapsed().as_secs_f64() / 1e9;
            let t = Instant::now();
            for _ in 0..reps { unsafe { matrixmultiply::dgemm(m, k, n, 1.0, a64.as_ptr(), k as isize, 1, b64.as_ptr(), 1, k as isize, 0.0, c64.as_mut_ptr(), n as isize, 1); } }
            let mm64 = flops / t.elapsed().as_secs_f64() / 1e9;
            let t = Instant::now();
            for _ in 0..reps { unsafe { gemm::gemm(m, n, k, c64.as_mut_ptr(), 1, n as isize, false, a64.as_ptr(), 1, k as isize, b64.as_ptr(), k as isize, 1, 0.0f64, 1.0f64, false, false, false, gemm::Parallelism::None); } }
            let g64 = flops / t.elapsed().as_secs_f64() / 1e9;
            println!("m {m} n {n} k {k} round {round}: f32 matrixmultiply {mm32:.1} gemm {g32:.1} GFlop/s | f64 matrixmultiply {mm64:.1} gemm {g64:.1}");
        }
    }
}
