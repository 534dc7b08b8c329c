//! The CUDA driver, loaded at run time: GPUs, contexts, modules, launches.
//!
//! Data larger than a GPU's free memory are streamed: the output rows and
//! the reduced index are cut into chunks that fit; each launch computes the
//! partial monoid states of one (row chunk, reduced chunk), which the host
//! merges in a fixed order with the CPU monoid (indices shifted by the
//! chunk's offset) and finally finalizes. Several GPUs split the output rows.
//!
//! Repeated reductions on the same data (an iterative solver applying its
//! operator, where only the unknown changes) keep the unchanged inputs on
//! the device between calls: see [`Resident`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cudarc::driver::{sys, CudaContext, CudaFunction, CudaSlice, DeviceRepr, LaunchConfig, PushKernelArg, ValidAsZeroBits};
use cudarc::nvrtc::Ptx;

use super::codegen::{Kernel, BLOCK, KERNEL_NAME};
use super::nvrtc;
use crate::buffer::{size, try_filled, try_with_capacity};
use crate::cpu::{Data, States};
use crate::error::{Error, Result};
use crate::reduction::{Monoid, EMPTY};
use crate::Real;

/// A GPU as the driver describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Gpu {
    pub ordinal: usize,
    pub name: String,
    pub compute_capability: (i32, i32),
    pub total_memory: usize,
}

/// Whether the CUDA driver library can be loaded.
pub fn driver_present() -> bool {
    // SAFETY: probing for the library only opens and closes it.
    nvrtc::guard(|| Ok(unsafe { sys::is_culib_present() })).unwrap_or(false)
}

fn driver_error(what: &str, e: impl std::fmt::Debug) -> Error {
    Error::Backend(format!("CUDA driver: {what} failed: {e:?}"))
}

/// The process that created the CUDA contexts. CUDA does not survive a
/// fork: a child of `parallel::mclapply` must not touch the parent's
/// contexts, modules or memory (calls would fail or hang), so there the GPU
/// is unusable (`auto` runs on the CPU) and the cached state is left alone.
static CUDA_PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();

fn forked_after_cuda() -> Result<()> {
    match CUDA_PID.get() {
        Some(&pid) if pid != std::process::id() => Err(Error::Backend(
            "this process was forked after CUDA was initialised in its parent; the GPU cannot be used in a forked \
             child (parallel::mclapply, plan(multicore)): use backend = \"cpu\" there, or socket workers"
                .into(),
        )),
        _ => Ok(()),
    }
}

/// One context per GPU, created once.
fn context(ordinal: usize) -> Result<Arc<CudaContext>> {
    static CONTEXTS: Mutex<Vec<(usize, Arc<CudaContext>)>> = Mutex::new(Vec::new());
    forked_after_cuda()?;
    CUDA_PID.get_or_init(std::process::id);
    let mut all = CONTEXTS.lock().map_err(|_| Error::Internal("CUDA context registry poisoned".into()))?;
    if let Some((_, c)) = all.iter().find(|(o, _)| *o == ordinal) {
        return Ok(c.clone());
    }
    let c = nvrtc::guard(|| CudaContext::new(ordinal).map_err(|e| driver_error("creating a context", e)))?;
    all.push((ordinal, c.clone()));
    Ok(c)
}

/// The GPUs the driver sees (none without a driver), probed once per session.
pub fn gpus() -> Result<Vec<Gpu>> {
    static GPUS: std::sync::OnceLock<Result<Vec<Gpu>>> = std::sync::OnceLock::new();
    forked_after_cuda()?;
    GPUS.get_or_init(probe_gpus).clone()
}

fn probe_gpus() -> Result<Vec<Gpu>> {
    if !driver_present() {
        return Ok(vec![]);
    }
    nvrtc::guard(|| {
        let n = CudaContext::device_count().map_err(|e| driver_error("counting devices", e))?;
        (0..n.max(0) as usize)
            .map(|ordinal| {
                let c = context(ordinal)?;
                Ok(Gpu {
                    ordinal,
                    name: c.name().map_err(|e| driver_error("reading the device name", e))?,
                    compute_capability: c.compute_capability().map_err(|e| driver_error("reading the compute capability", e))?,
                    total_memory: c.total_mem().map_err(|e| driver_error("reading the memory size", e))?,
                })
            })
            .collect()
    })
}

/// Kernels loaded in this session, by (GPU, source).
fn function(ordinal: usize, kernel: &Kernel) -> Result<CudaFunction> {
    static FUNCTIONS: Mutex<Option<HashMap<(usize, String), CudaFunction>>> = Mutex::new(None);
    let key = (ordinal, kernel.source.clone());
    if let Some(f) = FUNCTIONS.lock().ok().and_then(|m| m.as_ref().and_then(|m| m.get(&key).cloned())) {
        return Ok(f);
    }
    let ctx = context(ordinal)?;
    let (major, minor) = ctx.compute_capability().map_err(|e| driver_error("reading the compute capability", e))?;
    let compiled = nvrtc::compile_cached(&kernel.source, &format!("sm_{major}{minor}"))?;
    let module = nvrtc::guard(|| ctx.load_module(Ptx::from_binary(compiled.image)).map_err(|e| driver_error("loading the kernel", e)))?;
    let f = module.load_function(KERNEL_NAME).map_err(|e| driver_error("finding the kernel", e))?;
    if let Ok(mut m) = FUNCTIONS.lock() {
        m.get_or_insert_with(HashMap::new).insert(key, f.clone());
    }
    Ok(f)
}

/// Rows `rows` (or all rows of a parameter) of a column-major variable, as a
/// compact column-major block.
fn slice_rows<T: Real>(data: &Data<'_, T>, dim: usize, rows: std::ops::Range<usize>, whole: bool) -> Result<Vec<T>> {
    let mut out = try_with_capacity(Some(if whole { data.values.len() } else { rows.len() * dim }))?;
    if whole {
        out.extend_from_slice(data.values);
        return Ok(out);
    }
    for c in 0..dim {
        out.extend_from_slice(&data.values[c * data.nrow + rows.start..c * data.nrow + rows.end]);
    }
    Ok(out)
}

/// Device copies of inputs kept between reductions on the same data: the
/// owner (a prepared formula, whose data cannot change) promises that an
/// input it does not replace in a call is the same as in earlier calls.
/// Copies are kept only when a reduction fits in one launch (no streaming),
/// and freed when the `Resident` is dropped.
#[derive(Default)]
pub struct Resident {
    copies: Mutex<HashMap<CopyKey, Arc<dyn std::any::Any + Send + Sync>>>,
    /// Bytes kept, by GPU.
    bytes: Mutex<HashMap<usize, usize>>,
}

/// (GPU, input, first row, rows) of a kept copy, an `Arc<CudaSlice<T>>`.
type CopyKey = (usize, usize, usize, usize);

impl Resident {
    /// Bytes kept on GPU `ordinal` (counted as free when sizing chunks, so
    /// that the chunking, and with it the kept copies, stay the same).
    fn bytes_on(&self, ordinal: usize) -> usize {
        self.bytes.lock().map_or(0, |b| b.get(&ordinal).copied().unwrap_or(0))
    }

    /// The kept copy of `key`, or `upload()` kept for the next calls.
    fn get_or_upload<T: DeviceRepr + 'static>(
        &self,
        key: CopyKey,
        upload: impl FnOnce() -> Result<CudaSlice<T>>,
    ) -> Result<Arc<CudaSlice<T>>> {
        let found = self.copies.lock().ok().and_then(|c| c.get(&key).cloned());
        if let Some(copy) = found.and_then(|c| c.downcast::<CudaSlice<T>>().ok()) {
            return Ok(copy);
        }
        let copy = Arc::new(upload()?);
        if let (Ok(mut copies), Ok(mut bytes)) = (self.copies.lock(), self.bytes.lock()) {
            copies.insert(key, copy.clone());
            *bytes.entry(key.0).or_insert(0) += copy.len() * std::mem::size_of::<T>();
        }
        Ok(copy)
    }
}

/// What the launcher needs per variable: its dimension and whether it is
/// indexed by the output rows, the reduced index, or is a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Outer,
    Inner,
    Param,
}

/// Reduces on GPU `ordinal`, output rows `row_range` against the whole
/// reduced index, in chunks that fit in the device's free memory. Inputs
/// other than `replaced` are kept in `resident` when everything fits in one
/// launch, and taken from there in later calls.
#[allow(clippy::too_many_arguments)]
pub fn reduce<T: Real + DeviceRepr + ValidAsZeroBits>(
    ordinal: usize,
    kernel: &Kernel,
    monoid: &Monoid,
    inputs: &[Data<'_, T>],
    roles: &[(Role, usize)],
    row_range: std::ops::Range<usize>,
    inner: usize,
    resident: &Resident,
    replaced: Option<usize>,
    interrupted: &mut dyn FnMut() -> bool,
) -> Result<Vec<(Vec<T>, Vec<usize>)>> {
    let func = function(ordinal, kernel)?;
    let ctx = context(ordinal)?;
    let stream = ctx.default_stream();
    let bytes = std::mem::size_of::<T>();
    let (free, _) = ctx.mem_get_info().map_err(|e| driver_error("reading free memory", e))?;
    let budget = (free + resident.bytes_on(ordinal)) / 10 * 7;
    let sms = ctx
        .attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
        .map_err(|e| driver_error("reading the multiprocessor count", e))? as usize;
    let per_row: usize = roles.iter().filter(|r| r.0 == Role::Outer).map(|r| r.1).sum::<usize>() * bytes;
    let per_inner: usize = roles.iter().filter(|r| r.0 == Role::Inner).map(|r| r.1).sum::<usize>() * bytes;
    let state_bytes = kernel.value_len * bytes + kernel.index_len * 8;
    // Largest chunks that fit: half the budget for each index (states are
    // counted with the rows, for the largest split).
    let max_splits = 4 * sms.max(1);
    let row_chunk = (budget / 2 / (per_row + state_bytes * max_splits).max(1)).clamp(BLOCK, row_range.len().max(BLOCK));
    let inner_chunk = (budget / 2 / per_inner.max(1)).clamp(1, inner.max(1));
    let (value_len, index_len) = (kernel.value_len, kernel.index_len);
    let mut states: Vec<(Vec<T>, Vec<usize>)> = Vec::new();
    let mut r0 = row_range.start;
    while r0 < row_range.end {
        let rows = row_chunk.min(row_range.end - r0);
        let mut v = try_filled(size(rows, value_len), T::zero())?;
        let mut k = try_filled(size(rows, index_len), EMPTY)?;
        for r in 0..rows {
            monoid.init(&mut v[r * value_len..(r + 1) * value_len], &mut k[r * index_len..(r + 1) * index_len]);
        }
        let mut c0 = 0;
        while c0 < inner {
            let len = inner_chunk.min(inner - c0);
            let row_blocks = rows.div_ceil(BLOCK);
            let tile = kernel.tile.max(1);
            let splits = max_splits.div_ceil(row_blocks * kernel.out_chunks).clamp(1, len.div_ceil(tile).max(1));
            let chunk = len.div_ceil(splits);
            let single_launch = rows == row_range.len() && len == inner;
            let mut buffers = Vec::with_capacity(inputs.len());
            let mut sizes: Vec<i64> = Vec::with_capacity(inputs.len());
            for (v, (data, &(role, dim))) in inputs.iter().zip(roles).enumerate() {
                let (first, n) = match role {
                    Role::Outer => (r0, rows),
                    Role::Inner => (c0, len),
                    Role::Param => (0, 1),
                };
                let upload = || {
                    let host = slice_rows(data, dim, first..first + n, role == Role::Param)?;
                    let host = if host.is_empty() { vec![T::zero()] } else { host };
                    stream.clone_htod(&host).map_err(|e| driver_error("copying data to the GPU", e))
                };
                buffers.push(if single_launch && replaced != Some(v) {
                    resident.get_or_upload((ordinal, v, first, n), upload)?
                } else {
                    Arc::new(upload()?)
                });
                sizes.push(n as i64);
            }
            let mut out_acc = stream
                .alloc_zeros::<T>((splits * rows * value_len).max(1))
                .map_err(|e| driver_error("allocating the result", e))?;
            let mut out_arg = stream
                .alloc_zeros::<i64>((splits * rows * index_len).max(1))
                .map_err(|e| driver_error("allocating the result", e))?;
            let (rows_arg, len_arg, chunk_arg) = (rows as i64, len as i64, chunk as i64);
            let mut launch = stream.launch_builder(&func);
            for (buffer, size) in buffers.iter().zip(&sizes) {
                launch.arg(&**buffer);
                launch.arg(size);
            }
            launch.arg(&rows_arg).arg(&len_arg).arg(&chunk_arg).arg(&mut out_acc).arg(&mut out_arg);
            let cfg = LaunchConfig { grid_dim: (row_blocks as u32, splits as u32, kernel.out_chunks as u32), block_dim: (BLOCK as u32, 1, 1), shared_mem_bytes: 0 };
            // SAFETY: the arguments match the generated kernel's signature
            // (one pointer and one row count per variable, then rows, inner,
            // chunk and the two outputs); the kernel writes out_acc/out_arg
            // only below splits * rows * len, the sizes allocated above.
            unsafe { launch.launch(cfg) }.map_err(|e| driver_error("launching the kernel", e))?;
            let acc = stream.clone_dtoh(&out_acc).map_err(|e| driver_error("copying the result back", e))?;
            let arg = stream.clone_dtoh(&out_arg).map_err(|e| driver_error("copying the result back", e))?;
            for split in 0..splits {
                for r in 0..rows {
                    let at = split * rows + r;
                    let ov = &acc[at * value_len..(at + 1) * value_len];
                    let ok: Vec<usize> = arg[at * index_len..(at + 1) * index_len]
                        .iter()
                        .map(|&i| if i < 0 { EMPTY } else { i as usize + c0 })
                        .collect();
                    monoid.merge(&mut v[r * value_len..(r + 1) * value_len], &mut k[r * index_len..(r + 1) * index_len], ov, &ok);
                }
            }
            if interrupted() {
                return Err(Error::Interrupted);
            }
            c0 += len;
        }
        states.push((v, k));
        r0 += rows;
    }
    Ok(states)
}

/// Output rows split across GPUs: contiguous ranges of about equal size.
pub fn split_rows(rows: usize, gpus: usize) -> Vec<std::ops::Range<usize>> {
    let per = rows.div_ceil(gpus.max(1)).max(1);
    (0..rows).step_by(per).map(|r| r..(r + per).min(rows)).collect()
}

/// Gathers per-chunk states into one `States` in row order.
pub fn concat_states<T: Real>(monoid: &Monoid, parts: Vec<(Vec<T>, Vec<usize>)>) -> Result<States<T>> {
    let (value_len, index_len) = monoid.state_len();
    let mut values = try_with_capacity(Some(parts.iter().map(|p| p.0.len()).sum()))?;
    let mut indices = try_with_capacity(Some(parts.iter().map(|p| p.1.len()).sum()))?;
    for (v, k) in parts {
        values.extend(v);
        indices.extend(k);
    }
    Ok(States { values, indices, value_len, index_len })
}
