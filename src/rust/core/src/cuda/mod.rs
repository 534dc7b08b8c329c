//! CUDA backend: every formula becomes one CUDA C kernel generated from the
//! operation tables ([`codegen`]), compiled by NVRTC for the GPU's
//! architecture and cached on disk ([`nvrtc`]), and launched through the
//! driver ([`device`]). The driver and NVRTC are loaded at run time
//! (cudarc's dynamic loading): nothing CUDA is needed to build keopsr, and
//! without them the backend reports itself unavailable.

pub mod codegen;
pub mod device;
pub mod nvrtc;

use std::path::PathBuf;

use crate::cpu::Data;
use crate::error::{Error, Result};
use crate::formula::{Cat, Formula, VarInfo};
use crate::options::Options;
use crate::reduction::Monoid;
use crate::Real;
pub use codegen::Kernel;
pub use device::{Gpu, Resident};

/// What was found: driver, GPUs, NVRTC and the kernel cache.
#[derive(Debug, Clone)]
pub struct Info {
    pub driver: bool,
    pub gpus: Vec<Gpu>,
    pub gpu_error: Option<String>,
    pub nvrtc: Option<String>,
    pub nvrtc_version: Option<(i32, i32)>,
    pub nvrtc_error: Option<String>,
    pub cache_dir: Option<PathBuf>,
}

/// Probes the driver, the GPUs and NVRTC (`nvrtc_path`: an explicit libnvrtc).
pub fn info(nvrtc_path: Option<&str>) -> Info {
    let driver = device::driver_present();
    let (gpus, gpu_error) = match device::gpus() {
        Ok(g) => (g, None),
        Err(e) => (vec![], Some(e.to_string())),
    };
    let (nvrtc, nvrtc_version, nvrtc_error) = match nvrtc::load(nvrtc_path).and_then(|p| Ok((p, nvrtc::version()?))) {
        Ok((p, v)) => (Some(p.display().to_string()), Some(v), None),
        Err(e) => (None, None, Some(e.to_string())),
    };
    let cache_dir = nvrtc::cache_dir().lock().ok().and_then(|d| d.clone());
    Info { driver, gpus, gpu_error, nvrtc, nvrtc_version, nvrtc_error, cache_dir }
}

/// Whether formulas can run on a GPU here.
pub fn usable(nvrtc_path: Option<&str>) -> bool {
    device::gpus().is_ok_and(|g| !g.is_empty()) && nvrtc::load(nvrtc_path).is_ok()
}

/// The CUDA C source of a formula's kernel.
pub fn kernel(formula: &Formula, options: &Options) -> Kernel {
    let monoid = Monoid { reduction: formula.reduction, scheme: options.sum_scheme };
    codegen::generate(formula, options.precision, &monoid)
}

/// Compiles a formula's kernel with NVRTC for `arch` (no GPU needed),
/// through the disk cache as a GPU run would.
pub fn compile(formula: &Formula, options: &Options, arch: &str, nvrtc_path: Option<&str>) -> Result<nvrtc::Compiled> {
    nvrtc::load(nvrtc_path)?;
    nvrtc::compile_cached(&kernel(formula, options).source, arch)
}

/// Reduces on the GPUs selected by `options.gpu_mask` (0: all), output rows
/// split across them; returns the merged monoid states of every row. Inputs
/// other than `replaced` may be kept on the devices in `resident` for the
/// next calls on the same data.
#[allow(clippy::too_many_arguments)]
pub fn reduce<T: Real + cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits>(
    formula: &Formula,
    vars: &[VarInfo],
    monoid: &Monoid,
    data: &[Data<'_, T>],
    rows: usize,
    inner: usize,
    options: &Options,
    resident: &Resident,
    replaced: Option<usize>,
    interrupted: &mut dyn FnMut() -> bool,
) -> Result<crate::cpu::States<T>> {
    let all = device::gpus()?;
    let chosen: Vec<usize> = all
        .iter()
        .map(|g| g.ordinal)
        .filter(|&o| options.gpu_mask == 0 || (o < 64 && options.gpu_mask & (1 << o) != 0))
        .collect();
    if chosen.is_empty() {
        return Err(Error::Backend(format!(
            "no usable GPU: {} GPU(s) found{}",
            all.len(),
            if options.gpu_mask != 0 { " and none of them is among the selected devices" } else { "" }
        )));
    }
    let kernel = codegen::generate(formula, options.precision, monoid);
    let inner_cat = formula.axis.inner();
    let roles: Vec<(device::Role, usize)> = vars
        .iter()
        .map(|v| {
            let role = match v.cat {
                Cat::P => device::Role::Param,
                c if c == inner_cat => device::Role::Inner,
                _ => device::Role::Outer,
            };
            (role, v.dim)
        })
        .collect();
    let ranges = device::split_rows(rows, chosen.len());
    let mut parts = Vec::new();
    if ranges.len() <= 1 {
        for range in ranges {
            parts.extend(device::reduce(chosen[0], &kernel, monoid, data, &roles, range, inner, resident, replaced, interrupted)?);
        }
    } else {
        // One host thread per GPU; interrupts are checked by the first.
        let results: Vec<Result<Vec<(Vec<T>, Vec<usize>)>>> = std::thread::scope(|s| {
            let handles: Vec<_> = ranges
                .iter()
                .zip(&chosen)
                .map(|(range, &gpu)| {
                    let (kernel, roles, range) = (&kernel, &roles, range.clone());
                    s.spawn(move || device::reduce(gpu, kernel, monoid, data, roles, range, inner, resident, replaced, &mut || false))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(Error::Internal("GPU thread panicked".into())))).collect()
        });
        for r in results {
            parts.extend(r?);
        }
        if interrupted() {
            return Err(Error::Interrupted);
        }
    }
    device::concat_states(monoid, parts)
}
