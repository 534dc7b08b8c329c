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
pub mod plan;
pub mod progress;
pub mod ranges;
pub mod reduction;
pub mod solve;

pub use error::{Error, Result};
pub use formula::{Expression, Formula};
pub use plan::{evaluate, merge_partials, Backend, Input, Options, Output, PartialStates, Precision, Prepared};
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
}
