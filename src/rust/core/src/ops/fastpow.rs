//! x^y for a positive base, written for auto-vectorization (libm's pow is a
//! scalar call: a `Powf` formula ran at a tenth of `Exp`'s rate). fdlibm's
//! `pow` without its branches: log2(x) as a sum t1 + t2 of two doubles
//! (x = 2^n · m with m near 1 or 1.5, log2(m) from s = (m - b)/(m + b) in
//! head-and-tail arithmetic, heads with their low 32 bits cleared so that
//! their products are exact), y · log2(x) split the same way, then
//! 2^(integer) · 2^(rest). Within 2 ulps of libm (tested below); y = 1, 2,
//! 0.5 and -1 give x, x², √x and 1/x exactly, as a correctly rounded pow does.
//! `in_domain` says where it applies; `ops::arith::powf` takes libm's pow
//! and R's rules elsewhere.

/// Where [`pow_positive`] gives x^y: x positive, normal and finite, y
/// finite with |y| < 2^31 (beyond, x^y over- or underflows unless x is
/// within 2^-31 of 1, a case fdlibm treats apart).
#[inline(always)]
pub fn in_domain(x: f64, y: f64) -> bool {
    (x >= f64::MIN_POSITIVE) & (x <= f64::MAX) & (y.abs() < 2_147_483_648.0)
}

/// The double with the low 32 bits of x's cleared (a 21-bit significand).
#[inline(always)]
fn head(x: f64) -> f64 {
    f64::from_bits(x.to_bits() & 0xffff_ffff_0000_0000)
}

/// The double whose high 32 bits are `hi` and low 32 bits zero.
#[inline(always)]
fn from_high(hi: i32) -> f64 {
    f64::from_bits((hi as u32 as u64) << 32)
}

/// x^y for x and y [`in_domain`], without branches.
#[inline(always)]
pub fn pow_positive(x: f64, y: f64) -> f64 {
    // log2(x) = n + dp + (2/(3 ln 2)) (3 s + s^3 + ...), s = (m - bp)/(m + bp).
    const L: [f64; 6] = [
        5.999_999_999_999_946_487_25e-1,
        4.285_714_285_785_501_842_52e-1,
        3.333_333_298_183_774_329_18e-1,
        2.727_281_238_085_340_064_89e-1,
        2.306_607_457_755_617_540_67e-1,
        2.069_750_178_003_384_177_84e-1,
    ];
    const CP: f64 = 9.617_966_939_259_755_543_29e-1; // 2/(3 ln 2)
    const CP_H: f64 = 9.617_967_009_544_372_558_59e-1;
    const CP_L: f64 = -7.028_461_650_952_758_265_16e-9;
    const DP_H: f64 = 5.849_624_872_207_641_601_56e-1; // log2(1.5), head and tail
    const DP_L: f64 = 1.350_039_202_129_748_971_28e-8;
    // 2^r = e^(r ln 2): exp's polynomial on |r ln 2| <= ln(2)/2.
    const P: [f64; 5] = [
        1.666_666_666_666_660_190_37e-1,
        -2.777_777_777_701_559_338_42e-3,
        6.613_756_321_437_934_361_17e-5,
        -1.653_390_220_546_525_153_90e-6,
        4.138_136_797_057_238_460_39e-8,
    ];
    const LG2: f64 = 6.931_471_805_599_452_862_27e-1;
    const LG2_H: f64 = 6.931_471_824_645_996_093_75e-1;
    const LG2_L: f64 = -1.904_654_299_957_768_045_25e-9;
    const OVT: f64 = 8.008_566_259_537_294_437_2e-17; // -(1024 - log2(ovfl + 0.5 ulp))
    const MAGIC: f64 = 6755399441055744.0; // 1.5 * 2^52: adding it rounds to an integer

    // x = 2^n · m with m in [sqrt(2/3), sqrt(3)), reduced around bp = 1 or 1.5.
    let ix = (x.to_bits() >> 32) as i32;
    let j = ix & 0x000f_ffff;
    let around_1_5 = (j > 0x3988e) & (j < 0xbb67a); // sqrt(3/2) <= m < sqrt(3)
    let wrap = j >= 0xbb67a; // m >= sqrt(3): m / 2 and n + 1
    let n = (ix >> 20) - 0x3ff + wrap as i32;
    let im = (j | 0x3ff0_0000) - if wrap { 0x0010_0000 } else { 0 };
    let m = f64::from_bits(((im as u32 as u64) << 32) | (x.to_bits() & 0xffff_ffff));
    let (bp, dp_h, dp_l) = if around_1_5 { (1.5, DP_H, DP_L) } else { (1.0, 0.0, 0.0) };

    // s = s_h + s_l = (m - bp)/(m + bp).
    let u = m - bp;
    let v = 1.0 / (m + bp);
    let ss = u * v;
    let s_h = head(ss);
    let t_h = from_high(((im >> 1) | 0x2000_0000) + 0x0008_0000 + ((around_1_5 as i32) << 18)); // m + bp, head
    let t_l = m - (t_h - bp);
    let s_l = v * ((u - s_h * t_h) - s_h * t_l);
    // log2(m) - dp = z_h + z_l.
    let s2 = ss * ss;
    let r = s2 * s2 * (L[0] + s2 * (L[1] + s2 * (L[2] + s2 * (L[3] + s2 * (L[4] + s2 * L[5])))));
    let r = r + s_l * (s_h + ss);
    let s2 = s_h * s_h;
    let t_h = head(3.0 + s2 + r);
    let t_l = r - ((t_h - 3.0) - s2);
    let u = s_h * t_h;
    let v = s_l * t_h + t_l * ss;
    let p_h = head(u + v);
    let p_l = v - (p_h - u);
    let z_h = CP_H * p_h;
    let z_l = CP_L * p_h + p_l * CP + dp_l;
    // log2(x) = t1 + t2.
    let t = n as f64;
    let t1 = head(((z_h + z_l) + dp_h) + t);
    let t2 = z_l - (((t1 - t) - dp_h) - z_h);

    // y log2(x) = p_h + p_l, p_h exact (21-bit heads).
    let y1 = head(y);
    let p_l = (y - y1) * t1 + y * t2;
    let p_h = y1 * t1;
    let z = p_l + p_h;
    let overflow = (z > 1024.0) | ((z == 1024.0) & (p_l + OVT > z - p_h));
    let underflow = (z < -1075.0) | ((z == -1075.0) & (p_l <= z - p_h));

    // 2^z = 2^k · 2^(p_h - k + p_l), k the integer nearest z (p_h - k is exact).
    let k = (z.clamp(-1100.0, 1100.0) + MAGIC) - MAGIC;
    let p_h = p_h - k;
    let t = head(p_l + p_h);
    let u = t * LG2_H;
    let v = (p_l - (t - p_h)) * LG2 + t * LG2_L;
    let z = u + v;
    let w = v - (z - u);
    let t = z * z;
    let t1 = z - t * (P[0] + t * (P[1] + t * (P[2] + t * (P[3] + t * P[4]))));
    let r = (z * t1) / (t1 - 2.0) - (w + z * w);
    let e = 1.0 - (r - z);
    // e · 2^k in two exact steps, so that a subnormal result is rounded once.
    let k = k as i64;
    let half = k >> 1;
    let scaled = e * f64::from_bits(((half + 1023) as u64) << 52) * f64::from_bits(((k - half + 1023) as u64) << 52);
    let general = if overflow {
        f64::INFINITY
    } else if underflow {
        0.0
    } else {
        scaled
    };
    // The exponents for which a correctly rounded pow is one operation.
    if y == 1.0 {
        x
    } else if y == 2.0 {
        x * x
    } else if y == 0.5 {
        x.sqrt()
    } else if y == -1.0 {
        1.0 / x
    } else {
        general
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::fasttrig::tests::ulps;

    fn check(x: f64, y: f64) {
        assert!(in_domain(x, y), "{x:e} ^ {y:e} not in the domain");
        let (got, want) = (pow_positive(x, y), x.powf(y));
        let u = ulps(got, want);
        assert!(u <= 2, "{x:e} ^ {y:e} = {got:e} against libm {want:e} ({u} ulps)");
    }

    #[test]
    fn matches_libm_within_two_ulps() {
        // Bases over the whole normal range, exponents that keep x^y finite
        // and nonzero, then exponents of every size.
        for a in 0..4000 {
            let x = 2f64.powf(-1021.0 + a as f64 * 0.5105) * (1.0 + (a % 7) as f64 * 0.1);
            let lx = x.log2().abs().max(1e-3);
            for b in 0..60 {
                let y = (b as f64 - 29.5) / 29.5 * (1000.0 / lx) * if b % 2 == 0 { 1.0 } else { 0.37 };
                check(x, y);
            }
        }
        for a in 0..3000 {
            let x = 0.01 + a as f64 * 0.0333;
            for y in [-3.7, -1.5, -0.3, 0.1, 0.25, 1.0 / 3.0, 0.75, 1.5, 2.5, 3.0, 7.0, 10.5, 100.1, 1e-10, -1e-300] {
                check(x, y);
            }
        }
        // Bases within a few ulps of 1 with large exponents.
        for k in 1..2000u64 {
            for x in [f64::from_bits(1f64.to_bits() + k), f64::from_bits(1f64.to_bits() - k)] {
                for y in [1e9, -2e9 / k as f64, 1.5e9 / (k as f64).sqrt()] {
                    check(x, y);
                }
            }
        }
    }

    #[test]
    fn limits_and_exact_exponents() {
        // Overflow to Inf, underflow to 0 and subnormal results, near the edges.
        for (x, y) in [(2.0, 1023.999), (2.0, 1024.0), (2.0, 1100.0), (10.0, 308.2547), (10.0, 308.3), (2.0, -1074.0), (2.0, -1074.6), (2.0, -1075.0), (2.0, -1060.3), (0.5, 1074.0), (1e-300, 3.0), (1e300, -1.1), (3.0, -700.5)] {
            check(x, y);
        }
        for x in [1e-300, 0.3, 1.0, 2.0, 7.77, 1e300] {
            assert_eq!(pow_positive(x, 1.0), x);
            assert_eq!(pow_positive(x, 2.0), x * x);
            assert_eq!(pow_positive(x, 0.5), x.sqrt());
            assert_eq!(pow_positive(x, -1.0), 1.0 / x);
            assert_eq!(pow_positive(x, 0.0), 1.0);
            assert_eq!(pow_positive(1.0, x), 1.0);
        }
        for (x, y) in [(0.0, 1.0), (-2.0, 2.0), (5e-324, 1.0), (f64::INFINITY, 1.0), (2.0, f64::NAN), (f64::NAN, 1.0), (2.0, 3e9)] {
            assert!(!in_domain(x, y), "{x} ^ {y}");
        }
    }
}
