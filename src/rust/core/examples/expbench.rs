// Throughput of the vectorizable exp against libm's (run with --release).
use keopsr_core::ops::{fastexp, Unary};
use std::time::Instant;
fn time(name: &str, mut f: impl FnMut()) {
    let t = Instant::now();
    for _ in 0..200_000 {
        f();
    }
    println!("{name}: {:.2} ns/exp", t.elapsed().as_nanos() as f64 / (200_000.0 * 256.0));
}
fn main() {
    let xs: Vec<f64> = (0..256).map(|i| -(i as f64) * 0.01).collect();
    let xs32: Vec<f32> = xs.iter().map(|&x| x as f32).collect();
    let mut out = vec![0.0; 256];
    let mut out32 = vec![0.0f32; 256];
    time("Unary::Exp f64", || { Unary::Exp.map(std::hint::black_box(&xs), &mut out); std::hint::black_box(&out); });
    time("exp_f64 loop", || { for (o, &x) in out.iter_mut().zip(std::hint::black_box(&xs)) { *o = fastexp::exp_f64(x); } std::hint::black_box(&out); });
    time("Unary::Exp f32", || { Unary::Exp.map(std::hint::black_box(&xs32), &mut out32); std::hint::black_box(&out32); });
    avx2_main();
    if std::env::var_os("KEOPSR_EXP_SPREAD").is_some() { spread_main(); }
    time("libm f64", || { for (o, &x) in out.iter_mut().zip(std::hint::black_box(&xs)) { *o = x.exp(); } std::hint::black_box(&out); });
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn exp_loop_avx2(xs: &[f64], out: &mut [f64]) {
    for (o, &x) in out.iter_mut().zip(xs) {
        *o = fastexp::exp_f64(x);
    }
}

#[allow(dead_code)]
fn avx2_main() {
    let xs: Vec<f64> = (0..256).map(|i| -(i as f64) * 0.01).collect();
    let mut out = vec![0.0; 256];
    if std::is_x86_feature_detected!("avx2") {
        time("Unary::Exp f64 avx2", || unsafe { exp_loop_avx2(std::hint::black_box(&xs), &mut out); std::hint::black_box(&out); });
        time("exp f64 avx2+fma", || unsafe { fastexp::exp_map_f64_fma(std::hint::black_box(&xs), 1.0, &mut out); std::hint::black_box(&out); });
        if std::is_x86_feature_detected!("avx512f") {
            time("exp f64 avx512", || unsafe { fastexp::exp_map_f64_avx512(std::hint::black_box(&xs), 1.0, &mut out); std::hint::black_box(&out); });
        }
        let xs32: Vec<f32> = xs.iter().map(|&x| x as f32).collect();
        let mut out32 = vec![0.0f32; 256];
        time("exp f32 avx2+fma", || unsafe { fastexp::exp_map_f32_fma(std::hint::black_box(&xs32), 1.0, &mut out32); std::hint::black_box(&out32); });
        if std::is_x86_feature_detected!("avx512f") {
            time("exp f32 avx512", || unsafe { fastexp::exp_map_f32_avx512(std::hint::black_box(&xs32), 1.0, &mut out32); std::hint::black_box(&out32); });
        }
        time("exp f32 avx2", || unsafe { exp_loop_f32(std::hint::black_box(&xs32), &mut out32); std::hint::black_box(&out32); });
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn exp_loop_f32(xs: &[f32], out: &mut [f32]) {
    for (o, &x) in out.iter_mut().zip(xs) {
        *o = fastexp::exp_f32(x);
    }
}

// Arguments spread far below the fast path's bound (Gaussian kernels of
// distant points): `KEOPSR_EXP_SPREAD=1`.
fn spread_main() {
    let n = 256;
    let cases: [(&str, Box<dyn Fn(usize) -> f64>); 3] = [
        ("[-2.56, 0]", Box::new(|i| -(i as f64) * 0.01)),
        ("[-2000, 0] with (-745, -708)", Box::new(|i| -(((i * 7919) % n) as f64) * 2000.0 / n as f64)),
        ("[-2000, 0] without (-800, -600)", Box::new(|i| { let x = -(((i * 7919) % n) as f64) * 2000.0 / n as f64; if x < -600.0 && x > -800.0 { -900.0 } else { x } })),
    ];
    for (name, f) in cases.iter() {
        let xs: Vec<f64> = (0..n).map(f).collect();
        let xs32: Vec<f32> = xs.iter().map(|&x| (x / 8.0) as f32).collect();
        let mut out = vec![0.0; n];
        let mut out32 = vec![0.0f32; n];
        time(&format!("Unary::Exp f64 {name}"), || { Unary::Exp.map(std::hint::black_box(&xs), &mut out); std::hint::black_box(&out); });
        time(&format!("Unary::Exp f32 {name} / 8"), || { Unary::Exp.map(std::hint::black_box(&xs32), &mut out32); std::hint::black_box(&out32); });
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx512f") {
            time(&format!("exp f64 avx512 {name}"), || unsafe { fastexp::exp_map_f64_avx512(std::hint::black_box(&xs), 1.0, &mut out); std::hint::black_box(&out); });
            time(&format!("exp f32 avx512 {name} / 8"), || unsafe { fastexp::exp_map_f32_avx512(std::hint::black_box(&xs32), 1.0, &mut out32); std::hint::black_box(&out32); });
            time(&format!("exp f64 avx2+fma {name}"), || unsafe { fastexp::exp_map_f64_fma(std::hint::black_box(&xs), 1.0, &mut out); std::hint::black_box(&out); });
        }
    }
}
