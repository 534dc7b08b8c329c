//! Test data shared by the integration tests.
#![allow(dead_code)]

use keopsr_core::formula::{Cat, VarInfo};

/// `n` reproducible pseudo-random values in [-1, 1) (xorshift).
pub fn random(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 11) as f64) / ((1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

/// Random column-major data for each variable: (values, rows, dimension),
/// with `ni` points for i-variables, `nj` for j-variables and one row for
/// parameters; variable k uses seed `seed + k`.
pub fn random_data(vars: &[VarInfo], ni: usize, nj: usize, seed: u64) -> Vec<(Vec<f64>, usize, usize)> {
    vars.iter()
        .enumerate()
        .map(|(k, v)| {
            let n = match v.cat {
                Cat::I => ni,
                Cat::J => nj,
                Cat::P => 1,
            };
            (random(n * v.dim, seed + k as u64), n, v.dim)
        })
        .collect()
}
