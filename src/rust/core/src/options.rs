//! What the user asks for: precision, threads, summation, backend, GPUs,
//! GEMM. Plain data, read by the planner (`plan`) and passed on to the
//! backends, which never import the planner.

use crate::error::{Error, Result};
use crate::reduction::SumScheme;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    F32,
    F64,
}

impl Precision {
    pub fn from_name(name: &str) -> Result<Precision> {
        match name {
            "float64" | "double" => Ok(Precision::F64),
            "float32" | "float" => Ok(Precision::F32),
            other => Err(Error::Option(format!("unknown precision '{other}'; use \"float64\" or \"float32\""))),
        }
    }
}

/// Where reductions run: CPU threads, GPUs, or a GPU when one is usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Cpu,
    Gpu,
    Auto,
}

impl Backend {
    pub fn from_name(name: &str) -> Result<Backend> {
        match name {
            "cpu" => Ok(Backend::Cpu),
            "gpu" => Ok(Backend::Gpu),
            "auto" => Ok(Backend::Auto),
            other => Err(Error::Option(format!("unknown backend '{other}'; use \"auto\", \"cpu\" or \"gpu\""))),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub precision: Precision,
    /// 0: one thread per available core.
    pub threads: usize,
    pub sum_scheme: SumScheme,
    pub backend: Backend,
    /// GPUs to use, as a bit mask of device ordinals (0: all).
    pub gpu_mask: u64,
    /// GEMM tiles on the CPU (high-dimensional pair terms, wide weights).
    pub gemm: Gemm,
}

/// Whether the CPU uses GEMM tiles (see `cpu::gram`) for high-dimensional
/// SqDist and scalar products of an i- and a j-variable, and for a Sum of a
/// scalar term times wide weights: `Auto` from the measured crossovers
/// (`plan::GEMM_MIN_DIM_F64`, `plan::GEMM_MIN_WEIGHTS`; pair terms only for
/// Sum, LogSumExp and SumSoftMaxWeight reductions: Min, Max and K-min keep
/// the direct loop, whose distances are exact to the last bit), `Always`
/// for every reduction from 2 components or columns, `Never`. The
/// environment variable `KEOPSR_GEMM=off`/`on` overrides it (for
/// measurements). The planner (`plan::gemm_use`) makes the choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gemm {
    Auto,
    Always,
    Never,
}

impl Gemm {
    pub fn from_name(name: &str) -> Result<Gemm> {
        match name {
            "auto" => Ok(Gemm::Auto),
            "always" => Ok(Gemm::Always),
            "never" => Ok(Gemm::Never),
            other => Err(Error::Option(format!("unknown gemm choice '{other}'; use \"auto\", \"always\" or \"never\""))),
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            precision: Precision::F64,
            threads: 0,
            sum_scheme: SumScheme::Block,
            backend: Backend::Cpu,
            gpu_mask: 0,
            gemm: Gemm::Auto,
        }
    }
}
