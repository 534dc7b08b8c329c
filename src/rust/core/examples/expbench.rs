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
        time("exp f64 avx2+fma", || unsafe { exp_loop_fma(std::hint::black_box(&xs), &mut out); std::hint::black_box(&out); });
        let xs32: Vec<f32> = xs.iter().map(|&x| x as f32).collect();
        let mut out32 = vec![0.0f32; 256];
        time("exp f32 avx2", || unsafe { exp_loop_f32(std::hint::black_box(&xs32), &mut out32); std::hint::black_box(&out32); });
    }
}

#[inline(always)]
fn exp_fma(x: f64) -> f64 {
    const MAGIC: f64 = 6755399441055744.0;
    const LOG2E: f64 = std::f64::consts::LOG2_E;
    const LN2_HI: f64 = 6.931_471_803_691_238_164_90e-01;
    const LN2_LO: f64 = 1.908_214_929_270_587_700_02e-10;
    let xc = x.clamp(-746.0, 710.0);
    let n = (xc * LOG2E + MAGIC) - MAGIC;
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    let mut p: f64 = 1.0 / 6_227_020_800.0;
    for c in [1.0 / 479_001_600.0, 1.0 / 39_916_800.0, 1.0 / 3_628_800.0, 1.0 / 362_880.0, 1.0 / 40_320.0, 1.0 / 5_040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = p.mul_add(r, c);
    }
    let half = (n * 0.5 + MAGIC) - MAGIC;
    let pw = |k: f64| f64::from_bits((k + MAGIC).to_bits().wrapping_sub(MAGIC.to_bits()).wrapping_add(1023) << 52);
    let e = p * pw(half) * pw(n - half);
    if x.is_nan() { x } else { e }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn exp_loop_fma(xs: &[f64], out: &mut [f64]) {
    for (o, &x) in out.iter_mut().zip(xs) {
        *o = exp_fma(x);
    }
}
#[target_feature(enable = "avx2,fma")]
unsafe fn exp_loop_f32(xs: &[f32], out: &mut [f32]) {
    for (o, &x) in out.iter_mut().zip(xs) {
        *o = fastexp::exp_f32(x);
    }
}
