//! A branch-free natural logarithm written for auto-vectorization (libm's
//! log is a scalar call: a `Log` formula ran at a quarter of `Exp`'s rate).
//! fdlibm's algorithm (`e_log.c`), with its constants, without branches:
//! x = 2^k m with m in [√2/2, √2), f = m - 1, s = f / (2 + f), and
//! log(1 + f) = f - f²/2 + s (f²/2 + R(s²)) with R of degree 7 in s².
//! Accurate to about 1 ulp. Subnormals are scaled by 2^54 first; log(±0) =
//! -Inf, log(x < 0) = NaN, log(+Inf) = +Inf, NaN propagates. float32 goes
//! through float64 (one rounding at the end).

/// log(x) in f64.
#[inline(always)]
pub fn ln_f64(x: f64) -> f64 {
    const SQRT_HALF_BITS: u64 = 0x3fe6_a09e_667f_3bcd; // √2/2
    const LN2_HI: f64 = 6.931_471_803_691_238_164_90e-1; // its low 32 bits are 0: k ln2_hi is exact
    const LN2_LO: f64 = 1.908_214_929_270_587_700_02e-10;
    const LG: [f64; 7] = [
        6.666_666_666_666_735_130e-1,
        3.999_999_999_940_941_908e-1,
        2.857_142_874_366_239_149e-1,
        2.222_219_843_214_978_396e-1,
        1.818_357_216_161_805_012e-1,
        1.531_383_769_920_937_332e-1,
        1.479_819_860_511_658_591e-1,
    ];
    let subnormal = x < f64::MIN_POSITIVE;
    let xs = if subnormal { x * 18_014_398_509_481_984.0 } else { x }; // 2^54
    // Subtracting √2/2's bits splits x into k (the high bits) and m in
    // [√2/2, √2) (the mantissa added back to √2/2's).
    let ix = xs.to_bits().wrapping_sub(SQRT_HALF_BITS);
    let k = (ix as i64 >> 52) - if subnormal { 54 } else { 0 };
    let m = f64::from_bits((ix & 0x000f_ffff_ffff_ffff).wrapping_add(SQRT_HALF_BITS));
    let f = m - 1.0;
    let hfsq = 0.5 * f * f;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (LG[1] + w * (LG[3] + w * LG[5]));
    let t2 = z * (LG[0] + w * (LG[2] + w * (LG[4] + w * LG[6])));
    let dk = k as f64;
    let y = s * (hfsq + (t2 + t1)) + dk * LN2_LO - hfsq + f + dk * LN2_HI;
    if x > 0.0 && x < f64::INFINITY {
        y
    } else if x == 0.0 {
        f64::NEG_INFINITY
    } else if x > 0.0 || x.is_nan() {
        x // +Inf, NaN
    } else {
        f64::NAN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ulps between two finite doubles of the same sign.
    fn ulps(a: f64, b: f64) -> u64 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
    }

    #[test]
    fn matches_libm_within_one_ulp() {
        let mut worst = 0;
        // Around 1 (cancellation), over the whole normal range, subnormals.
        let near_one = (0..200_000).map(|k| 0.5 + k as f64 * 7.5e-6);
        let wide = (0..200_000).map(|k| 2f64.powf(-1021.0 + k as f64 * 0.010_23));
        let tiny = (1..20_000).map(|k| k as f64 * 1.3e-312);
        for x in near_one.chain(wide).chain(tiny).chain([f64::MIN_POSITIVE, f64::MAX, 5e-324, 1.0, 2.0, 0.75]) {
            let (got, want) = (ln_f64(x), x.ln());
            if want == 0.0 {
                assert_eq!(got, 0.0, "log({x})");
                continue;
            }
            let u = ulps(got, want);
            assert!(u <= 1, "log({x:e}) = {got:e}, libm {want:e} ({u} ulps)");
            worst = worst.max(u);
        }
        assert!(worst <= 1);
    }

    #[test]
    fn special_values() {
        assert_eq!(ln_f64(0.0), f64::NEG_INFINITY);
        assert_eq!(ln_f64(-0.0), f64::NEG_INFINITY);
        assert_eq!(ln_f64(f64::INFINITY), f64::INFINITY);
        assert!(ln_f64(f64::NEG_INFINITY).is_nan());
        assert!(ln_f64(-1.0).is_nan());
        assert!(ln_f64(-5e-324).is_nan());
        assert!(ln_f64(f64::NAN).is_nan());
        assert_eq!(ln_f64(1.0), 0.0);
        assert_eq!(ln_f64(std::f64::consts::E), 1.0);
    }
}
