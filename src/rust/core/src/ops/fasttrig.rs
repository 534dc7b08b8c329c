//! Sine and cosine written for auto-vectorization (libm's are scalar calls:
//! a `Sin` formula ran at a sixth of `Exp`'s rate). For |x| <= 1e6,
//! fdlibm's method without branches: n = round(2x/π), r = x - n π/2 with
//! π/2 in four pieces (Cody–Waite; the first three of 33 bits, so that
//! each n·piece is exact and each subtraction either cancels exactly or
//! rounds relative to r), then fdlibm's kernels `__kernel_sin` and
//! `__kernel_cos` on [-π/4, π/4] and the quadrant n mod 4. Beyond 1e6, and
//! for Inf and NaN, libm's sin and cos (`sin`/`cos` below decide per value,
//! so a value's result never depends on its neighbours).

/// |x| up to which the reduction above is used (n < 2^20).
pub const REDUCED_LIMIT: f64 = 1e6;

/// sin(x) in f64.
// Out of line: called per value, where libm may be called too.
pub fn sin(x: f64) -> f64 {
    if x.abs() <= REDUCED_LIMIT {
        sin_reduced(x)
    } else {
        x.sin()
    }
}

/// cos(x) in f64.
// Out of line: called per value, where libm may be called too.
pub fn cos(x: f64) -> f64 {
    if x.abs() <= REDUCED_LIMIT {
        cos_reduced(x)
    } else {
        x.cos()
    }
}

/// Whether every |x| <= [`REDUCED_LIMIT`] (false if one is NaN): then the
/// branch-free `*_reduced` functions give `sin`/`cos` for the whole run.
#[inline(always)]
pub fn all_reduced<T: crate::Real>(xs: &[T]) -> bool {
    crate::ops::fastexp::all_within(xs, T::from_double(REDUCED_LIMIT))
}

/// sin(x) for |x| <= [`REDUCED_LIMIT`], without branches.
#[inline(always)]
pub fn sin_reduced(x: f64) -> f64 {
    let (q, s, c) = reduce(x);
    quadrant(q, s, c)
}

/// cos(x) for |x| <= [`REDUCED_LIMIT`], without branches: cos(x) = sin(x + π/2).
#[inline(always)]
pub fn cos_reduced(x: f64) -> f64 {
    let (q, s, c) = reduce(x);
    quadrant(q.wrapping_add(1), s, c)
}

/// sin of the quadrant q (mod 4) from the sine s and cosine c of the
/// reduced argument.
#[inline(always)]
fn quadrant(q: u64, s: f64, c: f64) -> f64 {
    let v = if q & 1 == 0 { s } else { c };
    if q & 2 == 0 {
        v
    } else {
        -v
    }
}

/// (n mod 4, sin r, cos r) for x = n π/2 + r, |r| <= π/4.
#[inline(always)]
fn reduce(x: f64) -> (u64, f64, f64) {
    const MAGIC: f64 = 6755399441055744.0; // 1.5 * 2^52: adding it rounds to an integer
    const TWO_OVER_PI: f64 = 6.366_197_723_675_813_824_33e-1;
    // π/2 = P1 + P2 + P3 + P4 (fdlibm's pio2_1, pio2_2, pio2_3, pio2_3t).
    const P1: f64 = 1.570_796_326_734_125_614_17;
    const P2: f64 = 6.077_100_506_303_965_976_60e-11;
    const P3: f64 = 2.022_266_248_711_166_455_80e-21;
    const P4: f64 = 8.478_427_660_368_899_569_97e-32;
    let t = x * TWO_OVER_PI + MAGIC;
    let n = t - MAGIC;
    let r = x - n * P1 - n * P2 - n * P3 - n * P4;
    // t's low mantissa bits hold n in two's complement.
    (t.to_bits() & 3, kernel_sin(r), kernel_cos(r))
}

/// fdlibm's `__kernel_sin(x, 0, 0)`: sin on [-π/4, π/4].
#[inline(always)]
fn kernel_sin(x: f64) -> f64 {
    const S: [f64; 6] = [
        -1.666_666_666_666_663_243_48e-1,
        8.333_333_333_322_489_461_24e-3,
        -1.984_126_982_985_794_931_34e-4,
        2.755_731_370_707_006_767_89e-6,
        -2.505_076_025_340_686_341_95e-8,
        1.589_690_995_211_550_102_21e-10,
    ];
    let z = x * x;
    let v = z * x;
    let r = S[1] + z * (S[2] + z * (S[3] + z * (S[4] + z * S[5])));
    // Below 2^-27, sin x rounds to x (which keeps the sign of -0).
    if x.abs() < 7.450_580_596_923_828e-9 {
        x
    } else {
        x + v * (S[0] + z * r)
    }
}

/// fdlibm's `__kernel_cos(x, 0)`: cos on [-π/4, π/4].
#[inline(always)]
fn kernel_cos(x: f64) -> f64 {
    const C: [f64; 6] = [
        4.166_666_666_666_660_190_37e-2,
        -1.388_888_888_887_410_957_49e-3,
        2.480_158_728_947_672_941_78e-5,
        -2.755_731_435_139_066_330_35e-7,
        2.087_572_321_298_174_827_90e-9,
        -1.135_964_755_778_819_482_65e-11,
    ];
    let z = x * x;
    let w = z * z;
    let r = z * (C[0] + z * (C[1] + z * C[2])) + w * w * (C[3] + z * (C[4] + z * C[5]));
    let hz = 0.5 * z;
    let w = 1.0 - hz;
    w + (((1.0 - w) - hz) + z * r)
}


/// atan(x) in f64 for every x: fdlibm's `atan` with its five argument
/// ranges chosen by selects instead of branches (|x| < 7/16: x itself;
/// then t = (2|x| - 1)/(2 + |x|), (|x| - 1)/(|x| + 1), (|x| - 1.5)/(1 + 1.5|x|)
/// or -1/|x| around atan(1/2), atan(1), atan(3/2), atan(Inf)), one
/// polynomial, the sign restored last (atan is odd, and so is each rounding).
#[inline(always)]
pub fn atan(x: f64) -> f64 {
    // atan(1/2), atan(1), atan(3/2), atan(Inf) = π/2, each in a high and a low part.
    const HI: [f64; 4] = [4.636_476_090_008_060_935_15e-1, 7.853_981_633_974_482_789_99e-1, 9.827_937_232_473_290_540_82e-1, 1.570_796_326_794_896_558_00];
    const LO: [f64; 4] = [2.269_877_745_296_168_709_24e-17, 3.061_616_997_868_383_017_93e-17, 1.390_331_103_123_099_845_16e-17, 6.123_233_995_736_766_035_87e-17];
    const AT: [f64; 11] = [
        3.333_333_333_333_293_180_27e-1,
        -1.999_999_999_987_648_324_76e-1,
        1.428_571_427_250_346_637_11e-1,
        -1.111_111_040_546_235_578_80e-1,
        9.090_887_133_436_506_561_96e-2,
        -7.691_876_205_044_829_994_95e-2,
        6.661_073_137_387_531_206_69e-2,
        -5.833_570_133_790_573_486_45e-2,
        4.976_877_994_615_932_360_17e-2,
        -3.653_157_274_421_691_552_70e-2,
        1.628_582_011_536_578_236_23e-2,
    ];
    let a = x.abs();
    let (num, den, hi, lo) = if a < 0.4375 {
        (a, 1.0, 0.0, 0.0)
    } else if a < 0.6875 {
        (2.0 * a - 1.0, 2.0 + a, HI[0], LO[0])
    } else if a < 1.1875 {
        (a - 1.0, a + 1.0, HI[1], LO[1])
    } else if a < 2.4375 {
        (a - 1.5, 1.0 + 1.5 * a, HI[2], LO[2])
    } else {
        (-1.0, a, HI[3], LO[3]) // and NaN
    };
    let t = num / den;
    let z = t * t;
    let w = z * z;
    let s1 = z * (AT[0] + w * (AT[2] + w * (AT[4] + w * (AT[6] + w * (AT[8] + w * AT[10])))));
    let s2 = w * (AT[1] + w * (AT[3] + w * (AT[5] + w * (AT[7] + w * AT[9]))));
    // With hi = lo = 0 (|x| < 7/16) this is fdlibm's t - t (s1 + s2) exactly.
    (hi - ((t * (s1 + s2) - lo) - t)).copysign(x)
}

/// atan2(y, x) in f64: [`atan2_finite`] where [`atan2_in_domain`], else libm's.
// Out of line: called per value, where libm may be called too.
pub fn atan2(y: f64, x: f64) -> f64 {
    if atan2_in_domain(y, x) {
        atan2_finite(y, x)
    } else {
        y.atan2(x)
    }
}

/// Where [`atan2_finite`] gives atan2: y and x finite.
#[inline(always)]
pub fn atan2_in_domain(y: f64, x: f64) -> bool {
    y.is_finite() & x.is_finite()
}

/// atan2(y, x) for finite y and x, without branches: fdlibm's `atan2`
/// (atan(|y/x|); π/2 where |y| is over 2^60 |x| or x = 0 < |y|, whatever
/// the sign of x; 0 where y = 0 or x < 0 and |y| is below 2^-60 |x|; then
/// the quadrant from the signs, so atan2(±0, -0) = ±π).
#[inline(always)]
pub fn atan2_finite(y: f64, x: f64) -> f64 {
    const PI: f64 = 3.141_592_653_589_793_116_00;
    const PI_LO: f64 = 1.224_646_799_147_353_177_2e-16;
    const PI_O_2: f64 = 1.570_796_326_794_896_558_00;
    // The difference of the binary exponents.
    let k = ((y.abs().to_bits() >> 52) as i64) - ((x.abs().to_bits() >> 52) as i64);
    let x_negative = x.is_sign_negative();
    let steep = (k > 60) | ((x == 0.0) & (y != 0.0));
    let z = if steep {
        PI_O_2 + 0.5 * PI_LO
    } else if (x_negative & (k < -60)) | (y == 0.0) {
        0.0
    } else {
        atan((y / x).abs())
    };
    let z = if x_negative & !steep { PI - (z - PI_LO) } else { z };
    z.copysign(y)
}

/// asin(x) in f64: [`asin_unit`] for |x| <= 1, else libm's (NaN).
// Out of line: called per value, where libm may be called too.
pub fn asin(x: f64) -> f64 {
    if x.abs() <= 1.0 {
        asin_unit(x)
    } else {
        x.asin()
    }
}

/// acos(x) in f64: [`acos_unit`] for |x| <= 1, else libm's (NaN).
// Out of line: called per value, where libm may be called too.
pub fn acos(x: f64) -> f64 {
    if x.abs() <= 1.0 {
        acos_unit(x)
    } else {
        x.acos()
    }
}

/// The parts fdlibm's asin and acos share for |x| <= 1, from t (x² below
/// 1/2, (1 - |x|)/2 above): R(t) with asin(√t) = √t + √t R(t), s = √t, s with
/// its low 32 bits cleared (`df`), and the correction c = (t - df²)/(s + df)
/// (0 where t = 0, instead of 0/0).
#[inline(always)]
fn asin_parts(x: f64) -> (f64, f64, f64, f64) {
    const PS: [f64; 6] = [
        1.666_666_666_666_666_574_15e-1,
        -3.255_658_186_224_009_154_05e-1,
        2.012_125_321_348_629_258_81e-1,
        -4.005_553_450_067_941_140_27e-2,
        7.915_349_942_898_145_321_76e-4,
        3.479_331_075_960_211_675_70e-5,
    ];
    const QS: [f64; 4] = [-2.403_394_911_734_414_218_78, 2.020_945_760_233_505_694_71, -6.882_839_716_054_532_930_30e-1, 7.703_815_055_590_193_527_91e-2];
    let a = x.abs();
    let t = if a < 0.5 { x * x } else { (1.0 - a) * 0.5 };
    let p = t * (PS[0] + t * (PS[1] + t * (PS[2] + t * (PS[3] + t * (PS[4] + t * PS[5])))));
    let q = 1.0 + t * (QS[0] + t * (QS[1] + t * (QS[2] + t * QS[3])));
    let s = t.sqrt();
    let df = f64::from_bits(s.to_bits() & 0xffff_ffff_0000_0000);
    let c = if t == 0.0 { 0.0 } else { (t - df * df) / (s + df) };
    (p / q, s, df, c)
}

const PIO2_HI: f64 = 1.570_796_326_794_896_558_00;
const PIO2_LO: f64 = 6.123_233_995_736_766_035_87e-17;

/// asin(x) for |x| <= 1 (NaN stays NaN), without branches: fdlibm's three
/// cases (|x| < 1/2, 1/2 <= |x| < 0.975, above) chosen by selects.
#[inline(always)]
pub fn asin_unit(x: f64) -> f64 {
    const PIO4_HI: f64 = 7.853_981_633_974_482_789_99e-1;
    let (r, s, df, c) = asin_parts(x);
    let a = x.abs();
    let near_one = PIO2_HI - (2.0 * (s + s * r) - PIO2_LO);
    let middle = PIO4_HI - ((2.0 * s * r - (PIO2_LO - 2.0 * c)) - (PIO4_HI - 2.0 * df));
    if a < 0.5 {
        x + x * r
    } else if a >= f64::from_bits(0x3fef_3333_0000_0000) {
        near_one.copysign(x) // |x| >= 0.975 (about)
    } else {
        middle.copysign(x)
    }
}

/// acos(x) for |x| <= 1 (NaN stays NaN), without branches: fdlibm's three
/// cases (|x| < 1/2, x <= -1/2, x >= 1/2) chosen by selects.
#[inline(always)]
pub fn acos_unit(x: f64) -> f64 {
    const PI: f64 = 3.141_592_653_589_793_116_00;
    let (r, s, df, c) = asin_parts(x);
    if x.abs() < 0.5 {
        PIO2_HI - (x - (PIO2_LO - x * r))
    } else if x < 0.0 {
        PI - 2.0 * (s + (r * s - PIO2_LO))
    } else {
        2.0 * (df + (r * s + c)) // and NaN
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The distance in units in the last place (0 for two NaNs).
    pub(crate) fn ulps(a: f64, b: f64) -> u64 {
        if a == b || (a.is_nan() && b.is_nan()) {
            return 0;
        }
        if a.signum() != b.signum() {
            return u64::MAX;
        }
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
    }

    #[test]
    fn matches_libm_within_two_ulps() {
        let small = (0..400_000).map(|k| -20.0 + k as f64 * 1.0e-4);
        let wide = (0..200_000).map(|k| (k as f64 * 5.0003) - 5e5);
        // Doubles nearest multiples of π/2 (the reduction's hardest inputs).
        let near = (1..20_000i64).flat_map(|k| {
            let m = k as f64 * std::f64::consts::FRAC_PI_2 * 31.0;
            [m, f64::from_bits(m.to_bits() + 1), f64::from_bits(m.to_bits() - 1), -m]
        });
        let tiny = [0.0, -0.0, 1e-300, -5e-324, 1e-8, 7.4e-9, REDUCED_LIMIT, -REDUCED_LIMIT];
        for x in small.chain(wide).chain(near).chain(tiny) {
            for (got, want) in [(sin(x), x.sin()), (cos(x), x.cos())] {
                let u = ulps(got, want);
                assert!(u <= 2, "x = {x:e}: {got:e} against libm {want:e} ({u} ulps)");
            }
        }
    }

    #[test]
    fn inverse_functions_match_libm_within_two_ulps() {
        let grid = (0..400_001).map(|k| -1.0 + k as f64 * 5e-6);
        let near_one = (0..20_000u64).flat_map(|k| [f64::from_bits(1f64.to_bits() - k), -f64::from_bits(1f64.to_bits() - k)]);
        let edges = [0.0, -0.0, 1e-300, -5e-324, 1e-9, 0.4375, 0.5, 0.6875, 0.975, 0.974_999_904_632_568_4, 1.1875, 2.4375];
        let wide = (0..200_000).map(|k| 10f64.powf(-30.0 + k as f64 * 3e-4)); // 1e-30 .. 1e30
        for x in grid.clone().chain(near_one).chain(edges).chain(edges.map(|e| -e)) {
            for (name, got, want) in [("asin", asin(x), x.asin()), ("acos", acos(x), x.acos()), ("atan", atan(x), x.atan())] {
                let u = ulps(got, want);
                assert!(u <= 2, "{name}({x:e}) = {got:e} against libm {want:e} ({u} ulps)");
            }
        }
        for x in wide.clone().chain(wide.map(|w| -w)).chain([1e300, -1e300, f64::MAX]) {
            let u = ulps(atan(x), x.atan());
            assert!(u <= 2, "atan({x:e}) = {:e} against libm {:e} ({u} ulps)", atan(x), x.atan());
        }
        // atan2 over the four quadrants, exponents far apart and zeros.
        let coords: Vec<f64> = (0..300).map(|k| (k as f64 * 0.731 - 110.0) * 10f64.powi(k % 7 - 3)).collect();
        let special = [0.0, -0.0, 1e-300, -1e300, 5e-324, 1e20, -1e-20];
        for &y in coords.iter().chain(&special) {
            for &x in coords.iter().chain(&special) {
                let (got, want) = (atan2(y, x), y.atan2(x));
                let u = ulps(got, want);
                assert!(u <= 2, "atan2({y:e}, {x:e}) = {got:e} against libm {want:e} ({u} ulps)");
            }
        }
    }

    #[test]
    fn inverse_functions_special_values() {
        let same = |a: f64, b: f64| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1.5, -1.0000000000000002] {
            assert!(asin(v).is_nan() && acos(v).is_nan(), "{v}");
        }
        for v in [0.0, -0.0, 1.0, -1.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 5e-324] {
            assert!(same(asin_unit(v.clamp(-1.0, 1.0)), v.clamp(-1.0, 1.0).asin()) || v.is_nan(), "asin {v}");
            assert!(same(atan(v), v.atan()), "atan({v}) = {}", atan(v));
        }
        assert_eq!(acos(1.0).to_bits(), 0f64.to_bits());
        assert_eq!(acos(-1.0), std::f64::consts::PI);
        assert!(asin_unit(f64::NAN).is_nan() && acos_unit(f64::NAN).is_nan());
        let inf = f64::INFINITY;
        for y in [0.0, -0.0, 1.0, -1.0, inf, -inf, f64::NAN] {
            for x in [0.0, -0.0, 1.0, -1.0, inf, -inf, f64::NAN] {
                assert!(same(atan2(y, x), y.atan2(x)), "atan2({y}, {x}) = {} against {}", atan2(y, x), y.atan2(x));
            }
        }
    }

    #[test]
    fn special_values() {
        assert_eq!(sin(0.0).to_bits(), 0f64.to_bits());
        assert_eq!(sin(-0.0).to_bits(), (-0f64).to_bits());
        assert_eq!(cos(0.0), 1.0);
        assert_eq!(cos(-0.0), 1.0);
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(sin(v).is_nan() && cos(v).is_nan());
        }
        assert_eq!(sin(1e300), 1e300f64.sin());
        assert_eq!(cos(-3e7), (-3e7f64).cos());
        assert!(all_reduced(&[1.0, -1e6, 3.0]));
        assert!(!all_reduced(&[1.0, f64::NAN]));
        assert!(!all_reduced(&[1.0, 1.5e6]));
    }
}
