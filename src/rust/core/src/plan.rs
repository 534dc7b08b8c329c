//! From a parsed formula and user data to a result: validation of the data
//! against the declared variables, sizes, precision, and the call into a
//! backend.

use crate::cpu::{self, Data, Program};
use crate::error::{Error, Result};
use crate::formula::{Cat, Formula, VarInfo};
use crate::reduction::{Monoid, SumScheme};
use crate::Real;

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
}

impl Default for Options {
    fn default() -> Self {
        Options { precision: Precision::F64, threads: 0, sum_scheme: SumScheme::Block, backend: Backend::Cpu, gpu_mask: 0 }
    }
}

/// One argument's data: column-major values with its shape. A plain vector
/// (`is_matrix` false) is one column for Vi/Vj variables and a row of
/// values for a parameter.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub values: &'a [f64],
    pub nrow: usize,
    pub ncol: usize,
    pub is_matrix: bool,
}

impl<'a> Input<'a> {
    pub fn vector(values: &'a [f64]) -> Input<'a> {
        Input { values, nrow: values.len(), ncol: 1, is_matrix: false }
    }

    pub fn matrix(values: &'a [f64], nrow: usize, ncol: usize) -> Input<'a> {
        Input { values, nrow, ncol, is_matrix: true }
    }
}

/// A reduction's result, column-major with one row per output point.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub rows: usize,
    /// Number of value columns and the values (absent for Arg reductions).
    pub values: Option<(usize, Vec<f64>)>,
    /// Number of index columns and the 1-based indices (NA = `i32::MIN`).
    pub indices: Option<(usize, Vec<i32>)>,
}

/// Checks the inputs against the declared variables and returns the number
/// of points indexed by i and by j (1 when no variable has that index).
pub fn check_inputs(vars: &[VarInfo], inputs: &[Input<'_>]) -> Result<(usize, usize)> {
    if inputs.len() != vars.len() {
        let names: Vec<String> = vars.iter().map(|v| v.describe()).collect();
        return Err(Error::Input(format!(
            "the formula has {} argument(s) ({}) but {} input(s) were given",
            vars.len(),
            names.join(", "),
            inputs.len()
        )));
    }
    let mut sizes: [Option<(usize, &VarInfo)>; 2] = [None, None];
    for (var, input) in vars.iter().zip(inputs) {
        if input.values.len() != input.nrow * input.ncol {
            return Err(Error::Internal(format!("input {} has an inconsistent shape", var.describe())));
        }
        match var.cat {
            Cat::P => {
                if input.values.len() != var.dim {
                    return Err(Error::Input(format!(
                        "parameter {} needs {} value(s), got {}",
                        var.describe(),
                        var.dim,
                        input.values.len()
                    )));
                }
            }
            Cat::I | Cat::J => {
                let (nrow, ncol) = if input.is_matrix { (input.nrow, input.ncol) } else { (input.values.len(), 1) };
                if ncol != var.dim {
                    return Err(Error::Input(format!(
                        "argument {} needs a matrix with {} column(s) (one row per point), got {} column(s)",
                        var.describe(),
                        var.dim,
                        ncol
                    )));
                }
                let slot = &mut sizes[usize::from(var.cat == Cat::J)];
                match slot {
                    None => *slot = Some((nrow, var)),
                    Some((n, first)) if *n != nrow => {
                        let index = if var.cat == Cat::I { "i" } else { "j" };
                        return Err(Error::Input(format!(
                            "{index}-indexed arguments must have the same number of rows: {} has {} row(s), {} has {}",
                            first.describe(),
                            n,
                            var.describe(),
                            nrow
                        )));
                    }
                    Some(_) => {}
                }
            }
        }
    }
    let size = |s: Option<(usize, &VarInfo)>| s.map_or(1, |(n, _)| n);
    let (ni, nj) = (size(sizes[0]), size(sizes[1]));
    for (n, index) in [(ni, "i"), (nj, "j")] {
        if n > i32::MAX as usize {
            return Err(Error::Input(format!(
                "{n} points indexed by {index}: at most {} are supported (R integer indices)",
                i32::MAX
            )));
        }
    }
    Ok((ni, nj))
}

/// Evaluates a reduction on the CPU. `interrupted` is polled on the calling
/// thread about every 0.1 s.
pub fn evaluate(
    formula: &Formula,
    inputs: &[Input<'_>],
    options: &Options,
    interrupted: &mut dyn FnMut() -> bool,
) -> Result<Output> {
    let vars = formula.variables()?;
    let (ni, nj) = check_inputs(&vars, inputs)?;
    let (rows, inner) = match formula.axis {
        crate::formula::Axis::J => (ni, nj),
        crate::formula::Axis::I => (nj, ni),
    };
    if let Some(k) = formula.reduction.k() {
        if k > inner {
            let index = if formula.axis == crate::formula::Axis::J { "j" } else { "i" };
            return Err(Error::Reduction(format!(
                "K = {k} is larger than the number of points reduced over ({inner} points indexed by {index})"
            )));
        }
    }
    let monoid = Monoid { reduction: formula.reduction, scheme: options.sum_scheme };
    let gpu = match options.backend {
        Backend::Cpu => false,
        Backend::Gpu => {
            if !crate::cuda::usable(None) {
                let info = crate::cuda::info(None);
                return Err(Error::Backend(format!(
                    "backend = \"gpu\" but no GPU is usable: {}",
                    info.gpu_error.or(info.nvrtc_error).unwrap_or_else(|| if info.driver {
                        "the CUDA driver sees no GPU".into()
                    } else {
                        "no CUDA driver (libcuda) was found".into()
                    })
                )));
            }
            true
        }
        Backend::Auto => crate::cuda::usable(None),
    };
    let target = Target { formula, vars: &vars, gpu };
    let program = Program::compile(&formula.graph, &formula.roots, formula.axis);
    match options.precision {
        Precision::F64 => {
            let data: Vec<Data<'_, f64>> = vars
                .iter()
                .zip(inputs)
                .map(|(v, input)| Data { values: input.values, nrow: rows_of(v, input) })
                .collect();
            run(&target, &program, &monoid, &data, rows, inner, options, interrupted)
        }
        Precision::F32 => {
            let converted: Vec<Vec<f32>> = inputs.iter().map(|i| i.values.iter().map(|&x| x as f32).collect()).collect();
            let data: Vec<Data<'_, f32>> = vars
                .iter()
                .zip(inputs)
                .zip(&converted)
                .map(|((v, input), values)| Data { values, nrow: rows_of(v, input) })
                .collect();
            run(&target, &program, &monoid, &data, rows, inner, options, interrupted)
        }
    }
}

/// The formula being evaluated and the backend chosen for it.
struct Target<'a> {
    formula: &'a Formula,
    vars: &'a [VarInfo],
    gpu: bool,
}

fn rows_of(var: &VarInfo, input: &Input<'_>) -> usize {
    match var.cat {
        Cat::P => 1,
        Cat::I | Cat::J => input.values.len() / var.dim,
    }
}

#[allow(clippy::too_many_arguments)]
fn run<T: Real + cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits>(
    target: &Target<'_>,
    program: &Program,
    monoid: &Monoid,
    data: &[Data<'_, T>],
    rows: usize,
    inner: usize,
    options: &Options,
    interrupted: &mut dyn FnMut() -> bool,
) -> Result<Output> {
    let states = if target.gpu {
        crate::cuda::reduce(target.formula, target.vars, monoid, data, rows, inner, options, interrupted)?
    } else {
        cpu::reduce(program, monoid, data, rows, inner, options.threads, interrupted)?
    };
    let (value_cols, index_cols) = monoid.reduction.output_cols();
    let mut values = vec![0.0; rows * value_cols];
    let mut indices = vec![0i32; rows * index_cols];
    let (mut row_values, mut row_indices) = (vec![0.0; value_cols], vec![0i32; index_cols]);
    for r in 0..rows {
        let (v, k) = states.row(r);
        monoid.finalize(v, k, &mut row_values, &mut row_indices);
        for (c, &x) in row_values.iter().enumerate() {
            values[c * rows + r] = x;
        }
        for (c, &x) in row_indices.iter().enumerate() {
            indices[c * rows + r] = x;
        }
    }
    Ok(Output {
        rows,
        values: (value_cols > 0).then_some((value_cols, values)),
        indices: (index_cols > 0).then_some((index_cols, indices)),
    })
}
