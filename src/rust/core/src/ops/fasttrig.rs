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
#[inline(always)]
pub fn sin(x: f64) -> f64 {
    if x.abs() <= REDUCED_LIMIT {
        sin_reduced(x)
    } else {
        x.sin()
    }
}

/// cos(x) in f64.
#[inline(always)]
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f64, b: f64) -> u64 {
        if a == b {
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
