//! keopsr-core: symbolic kernel reductions in the KeOps formula language.
//!
//! A formula such as `Sum_Reduction(Exp(-SqDist(x,y)/2)*b, 1)` describes an
//! M × N matrix F(x_i, y_j) and a reduction of it over i or j. The core parses
//! the formula ([`formula`]), builds a typed expression graph, and evaluates
//! the reduction tile by tile on CPU threads ([`cpu`]), without ever storing
//! the M × N matrix. This crate has no R dependency.

pub mod buffer;
pub mod cpu;
pub mod cuda;
pub mod error;
pub mod formula;
pub mod gradient;
pub mod ops;
pub mod options;
pub mod plan;
pub mod progress;
pub mod ranges;
pub mod reduction;
pub mod solve;

pub use error::{Error, Result};
pub use formula::{Expression, Formula};
pub use plan::{evaluate, merge_partials, Backend, Gemm, Input, Options, Output, PartialStates, Precision, Prepared};
pub use ranges::Ranges;

/// The floating-point types the engines compute in (f64 by default, f32 on request).
pub trait Real: num_traits::Float + Send + Sync + std::fmt::Debug + 'static {
    fn from_double(x: f64) -> Self;
    fn to_double(self) -> f64;
    /// e^x, vectorizable (see `ops::fastexp`).
    fn fast_exp(self) -> Self;
    /// `out[k] = e^(scale * xs[k])` with the AVX2/FMA build of the exp.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    unsafe fn exp_map_fma(xs: &[Self], scale: Self, out: &mut [Self]);
    /// The same with the AVX-512 build of the exp.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F/VL/DQ, AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    unsafe fn exp_map_avx512(xs: &[Self], scale: Self, out: &mut [Self]);
    /// `c = a b` for `a` (m × k), `b` (k × n) and `c` (m × n) with the given
    /// [row, column] strides, by `matrixmultiply` (the GEMM of `cpu::gram`).
    #[allow(clippy::too_many_arguments)]
    fn gemm(m: usize, k: usize, n: usize, a: &[Self], sa: [usize; 2], b: &[Self], sb: [usize; 2], c: &mut [Self], sc: [usize; 2]);
}

impl Real for f64 {
    #[inline(always)]
    fn from_double(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn to_double(self) -> f64 {
        self
    }
    #[inline(always)]
    fn fast_exp(self) -> Self {
        ops::fastexp::exp_f64(self)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn exp_map_fma(xs: &[Self], scale: Self, out: &mut [Self]) {
        ops::fastexp::exp_map_f64_fma(xs, scale, out)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn exp_map_avx512(xs: &[Self], scale: Self, out: &mut [Self]) {
        ops::fastexp::exp_map_f64_avx512(xs, scale, out)
    }
    fn gemm(m: usize, k: usize, n: usize, a: &[Self], sa: [usize; 2], b: &[Self], sb: [usize; 2], c: &mut [Self], sc: [usize; 2]) {
        let last = |r: usize, cols: usize, s: [usize; 2]| (r.max(1) - 1) * s[0] + (cols.max(1) - 1) * s[1] + 1;
        assert!(a.len() >= last(m, k, sa) && b.len() >= last(k, n, sb) && c.len() >= last(m, n, sc));
        let i = |v: usize| v as isize;
        // SAFETY: the asserts check that every element the strides reach is
        // inside its slice.
        unsafe {
            matrixmultiply::dgemm(
                m, k, n, 1.0, a.as_ptr(), i(sa[0]), i(sa[1]), b.as_ptr(), i(sb[0]), i(sb[1]), 0.0, c.as_mut_ptr(), i(sc[0]), i(sc[1]),
            )
        }
    }
}

impl Real for f32 {
    #[inline(always)]
    fn from_double(x: f64) -> Self {
        x as f32
    }
    #[inline(always)]
    fn to_double(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn fast_exp(self) -> Self {
        ops::fastexp::exp_f32(self)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn exp_map_fma(xs: &[Self], scale: Self, out: &mut [Self]) {
        ops::fastexp::exp_map_f32_fma(xs, scale, out)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn exp_map_avx512(xs: &[Self], scale: Self, out: &mut [Self]) {
        ops::fastexp::exp_map_f32_avx512(xs, scale, out)
    }
    fn gemm(m: usize, k: usize, n: usize, a: &[Self], sa: [usize; 2], b: &[Self], sb: [usize; 2], c: &mut [Self], sc: [usize; 2]) {
        let last = |r: usize, cols: usize, s: [usize; 2]| (r.max(1) - 1) * s[0] + (cols.max(1) - 1) * s[1] + 1;
        assert!(a.len() >= last(m, k, sa) && b.len() >= last(k, n, sb) && c.len() >= last(m, n, sc));
        let i = |v: usize| v as isize;
        // SAFETY: the asserts check that every element the strides reach is
        // inside its slice.
        unsafe {
            matrixmultiply::sgemm(
                m, k, n, 1.0, a.as_ptr(), i(sa[0]), i(sa[1]), b.as_ptr(), i(sb[0]), i(sb[1]), 0.0, c.as_mut_ptr(), i(sc[0]), i(sc[1]),
            )
        }
    }
}
