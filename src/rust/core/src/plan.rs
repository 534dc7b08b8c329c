//! From a parsed formula and user data to a result: validation of the data
//! against the declared variables, sizes, precision, and the call into a
//! backend.

use crate::buffer::{size, try_filled};
use crate::cpu::{self, Data, GemmUse, Program};
use crate::error::{Error, Result};
use crate::formula::{Axis, Cat, Formula, VarInfo};
use crate::ranges::Ranges;
use crate::reduction::{Monoid, SumScheme};
use crate::Real;
pub use crate::options::{Backend, Gemm, Options, Precision};

/// Smallest dimension at which `Gemm::Auto` uses GEMM tiles, by precision
/// (measured crossovers: `bench/RESULTS-gemm.md`).
pub const GEMM_MIN_DIM_F64: usize = 16;
pub const GEMM_MIN_DIM_F32: usize = 16;
/// Fewest weight columns at which `Gemm::Auto` multiplies a Sum's scalar
/// term by its weights with a GEMM (measured: `bench/RESULTS-gemm.md`).
pub const GEMM_MIN_WEIGHTS: usize = 4;

/// What the CPU computes by GEMM for this reduction: the single place where
/// the options, `KEOPSR_GEMM` and the measured crossovers meet.
fn gemm_use(options: &Options, reduction: crate::reduction::Reduction) -> GemmUse {
    use crate::reduction::Reduction as R;
    let smooth = matches!(reduction, R::Sum { .. } | R::LogSumExp { .. } | R::SumSoftMaxWeight { .. } | R::MaxSumShiftExp { .. });
    // The weights GEMM changes the order of the terms within a tile: only
    // for block sums (Kahan and direct sums keep their order).
    let block_sum = matches!(reduction, R::Sum { .. }) && options.sum_scheme == SumScheme::Block;
    let auto = match options.precision {
        Precision::F64 => GEMM_MIN_DIM_F64,
        Precision::F32 => GEMM_MIN_DIM_F32,
    };
    // Selections (Min, KMin, ...) take GEMM distances only through the
    // exact re-rank (`knn_min_dim`): an approximate distance could select
    // another point.
    let (pair, weights) = match (crate::cpu::gram::forced(), options.gemm) {
        (Some(false), _) | (None, Gemm::Never) => (None, None),
        (Some(true), _) | (None, Gemm::Always) => (Some(2), Some(2)),
        (None, Gemm::Auto) => (Some(auto), Some(GEMM_MIN_WEIGHTS)),
    };
    GemmUse {
        pair_min_dim: pair.filter(|_| smooth),
        weights_min_cols: weights.filter(|_| block_sum),
        dot_weights: matches!(reduction, R::Sum { .. }),
    }
}

/// Smallest dimension at which `Gemm::Auto` finds nearest neighbours (Min
/// and KMin of SqDist) by GEMM distances and an exact re-rank, by precision
/// (measured crossovers: `bench/RESULTS-knn.md`).
pub const KNN_MIN_DIM_F64: usize = 16;
pub const KNN_MIN_DIM_F32: usize = 16;

/// The dimension from which nearest neighbours go through
/// [`cpu::rerank::Knn`] (`None`: never), planned with [`gemm_use`].
fn knn_min_dim(options: &Options) -> Option<usize> {
    match (crate::cpu::gram::forced(), options.gemm) {
        (Some(false), _) | (None, Gemm::Never) => None,
        (Some(true), _) | (None, Gemm::Always) => Some(2),
        (None, Gemm::Auto) => Some(match options.precision {
            Precision::F64 => KNN_MIN_DIM_F64,
            Precision::F32 => KNN_MIN_DIM_F32,
        }),
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

/// The shape of an argument, known before its values are read: the R glue
/// checks shapes first, so that a wrong argument (a parameter given an
/// ALTREP `1:1e9`) is an error before R expands it into memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Number of values.
    pub len: usize,
    pub nrow: usize,
    pub ncol: usize,
    pub is_matrix: bool,
}

impl Input<'_> {
    pub fn shape(&self) -> Shape {
        Shape { len: self.values.len(), nrow: self.nrow, ncol: self.ncol, is_matrix: self.is_matrix }
    }
}

/// Checks the inputs against the declared variables and returns the number
/// of points indexed by i and by j (1 when no variable has that index).
pub fn check_inputs(vars: &[VarInfo], inputs: &[Input<'_>]) -> Result<(usize, usize)> {
    check_shapes(vars, &inputs.iter().map(Input::shape).collect::<Vec<_>>())
}

/// [`check_inputs`] from the shapes alone.
pub fn check_shapes(vars: &[VarInfo], inputs: &[Shape]) -> Result<(usize, usize)> {
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
        if Some(input.len) != input.nrow.checked_mul(input.ncol) {
            return Err(Error::Internal(format!("input {} has an inconsistent shape", var.describe())));
        }
        match var.cat {
            Cat::P => {
                if input.len != var.dim {
                    return Err(Error::Input(format!(
                        "parameter {} needs {} value(s), got {}",
                        var.describe(),
                        var.dim,
                        input.len
                    )));
                }
            }
            Cat::I | Cat::J => {
                let (nrow, ncol) = if input.is_matrix { (input.nrow, input.ncol) } else { (input.len, 1) };
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

/// Evaluates a reduction on the chosen backend. `interrupted` is polled on the calling
/// thread about every 0.1 s.
pub fn evaluate(
    formula: &Formula,
    inputs: &[Input<'_>],
    options: &Options,
    interrupted: &mut dyn FnMut() -> bool,
) -> Result<Output> {
    if formula.grad.is_some() {
        return crate::gradient::evaluate_grad_around(formula, inputs, options, interrupted);
    }
    Prepared::new(formula, inputs, options)?.run(None, interrupted)
}

/// The data of every argument in the evaluation precision: R's own f64
/// buffers (not copied), or their f32 conversion (made once).
enum Values<'a> {
    F64(Vec<&'a [f64]>),
    F32(Vec<Vec<f32>>),
}

/// A reduction ready to run, possibly many times (as in an iterative
/// solver): the data are checked against the formula, the register program
/// is compiled and the data are in the evaluation precision once and for all.
/// One argument can be swapped for other values of the same shape at each
/// run ([`Prepared::run_with`]).
pub struct Prepared<'a> {
    formula: Formula,
    vars: Vec<VarInfo>,
    program: Program,
    /// Nearest neighbours by GEMM distances and an exact re-rank, where the
    /// formula and the options allow it (dense CPU reductions).
    knn: Option<cpu::rerank::Knn>,
    monoid: Monoid,
    axis: Axis,
    rows: usize,
    inner: usize,
    /// Points of each argument (1 for a parameter).
    nrows: Vec<usize>,
    values: Values<'a>,
    options: Options,
    /// Reductions run on the GPU backend (a usable GPU was chosen).
    gpu: bool,
    /// Device copies of `values` kept between reductions (iterative solvers).
    resident: crate::cuda::Resident,
    /// The inputs of a formula written `Grad(R, v, e)` around a reduction,
    /// evaluated by [`crate::gradient::evaluate_grad_around`] at each run
    /// (its passes run on the backend the options choose).
    grad_inputs: Option<Vec<Input<'a>>>,
}

impl<'a> Prepared<'a> {
    pub fn new(formula: &Formula, inputs: &[Input<'a>], options: &Options) -> Result<Prepared<'a>> {
        let vars = formula.variables()?;
        let (ni, nj) = check_inputs(&vars, inputs)?;
        let (rows, inner) = match formula.axis {
            Axis::J => (ni, nj),
            Axis::I => (nj, ni),
        };
        if let Some(k) = formula.reduction.k() {
            if k > inner {
                let index = if formula.axis == Axis::J { "j" } else { "i" };
                return Err(Error::Reduction(format!(
                    "K = {k} is larger than the number of points reduced over ({inner} points indexed by {index})"
                )));
            }
        }
        let monoid = Monoid { reduction: formula.reduction, scheme: options.sum_scheme };
        let gpu = choose_gpu(options.backend)?;
        let program =
            Program::compile(&formula.graph, &formula.roots, formula.axis, gemm_use(options, formula.reduction));
        let knn = cpu::rerank::Knn::new(&formula.graph, &formula.roots, formula.axis, formula.reduction, knn_min_dim(options));
        let nrows = vars.iter().zip(inputs).map(|(v, input)| rows_of(v, input)).collect();
        let values = match options.precision {
            Precision::F64 => Values::F64(inputs.iter().map(|i| i.values).collect()),
            Precision::F32 => Values::F32(inputs.iter().map(|i| to_f32(i.values)).collect()),
        };
        Ok(Prepared {
            formula: formula.clone(),
            vars,
            program,
            knn,
            monoid,
            axis: formula.axis,
            rows,
            inner,
            nrows,
            values,
            options: *options,
            gpu,
            resident: crate::cuda::Resident::default(),
            grad_inputs: formula.grad.is_some().then(|| inputs.to_vec()),
        })
    }

    /// Number of output rows and of reduced indices.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.inner)
    }

    /// The formula's variables, by position.
    pub fn variables(&self) -> &[VarInfo] {
        &self.vars
    }

    pub fn axis(&self) -> Axis {
        self.axis
    }

    pub fn reduction(&self) -> crate::reduction::Reduction {
        self.monoid.reduction
    }

    /// Runs the reduction, block-sparse when `ranges` is given (block-sparse
    /// reductions run on the CPU: the GPU backend has no ranges yet, and
    /// `backend = "gpu"` with ranges is a backend error).
    pub fn run(&self, ranges: Option<&Ranges>, interrupted: &mut dyn FnMut() -> bool) -> Result<Output> {
        if let Some(inputs) = &self.grad_inputs {
            return self.run_grad(inputs, ranges, interrupted);
        }
        self.dispatch(None, Reduce { prepared: self, replaced: None, ranges, interrupted })
    }

    fn run_grad(
        &self,
        inputs: &[Input<'_>],
        ranges: Option<&Ranges>,
        interrupted: &mut dyn FnMut() -> bool,
    ) -> Result<Output> {
        if ranges.is_some() {
            return Err(Error::Reduction(
                "block-sparse ranges are not supported for a gradient written around a reduction, Grad(R, v, e)".into(),
            ));
        }
        crate::gradient::evaluate_grad_around(&self.formula, inputs, &self.options, interrupted)
    }

    /// Runs the reduction with argument `pos` replaced by `values`
    /// (column-major, the same shape as the data it replaces).
    pub fn run_with(
        &self,
        pos: usize,
        values: &[f64],
        ranges: Option<&Ranges>,
        interrupted: &mut dyn FnMut() -> bool,
    ) -> Result<Output> {
        if let Some(inputs) = &self.grad_inputs {
            let mut swapped = inputs.clone();
            let old = swapped.get(pos).ok_or_else(|| Error::Internal(format!("no argument {pos}")))?;
            if old.values.len() != values.len() {
                return Err(Error::Internal(format!(
                    "replacement of argument {pos} has {} values, expected {}",
                    values.len(),
                    old.values.len()
                )));
            }
            swapped[pos] = Input { values, ..*old };
            return self.run_grad(&swapped, ranges, interrupted);
        }
        self.dispatch(Some((pos, values)), Reduce { prepared: self, replaced: Some(pos), ranges, interrupted })
    }

    /// The first component of the reduced formula on the diagonal, F(i, i),
    /// with argument `pos` replaced by `values` when given. Needs as many
    /// output rows as reduced indices.
    pub fn diagonal(&self, replace: Option<(usize, &[f64])>) -> Result<Vec<f64>> {
        if self.grad_inputs.is_some() {
            return Err(Error::Reduction("a gradient written around a reduction has no diagonal".into()));
        }
        if self.rows != self.inner {
            return Err(Error::Input(format!(
                "the diagonal needs a square matrix; this one has {} output rows and {} reduced indices",
                self.rows, self.inner
            )));
        }
        self.dispatch(replace, Diagonal { prepared: self })
    }

    /// Calls `body` with the data in the evaluation precision, argument
    /// `pos` swapped for `values` when `replace` is given.
    fn dispatch<V: WithData>(&self, replace: Option<(usize, &[f64])>, body: V) -> Result<V::Out> {
        if let Some((pos, values)) = replace {
            let expected = self.vars.get(pos).map(|v| v.dim * self.nrows[pos]);
            if expected != Some(values.len()) {
                return Err(Error::Internal(format!(
                    "replacement of argument {pos} has {} values, expected {expected:?}",
                    values.len()
                )));
            }
        }
        match &self.values {
            Values::F64(slices) => {
                let mut data: Vec<Data<'_, f64>> =
                    slices.iter().zip(&self.nrows).map(|(v, &nrow)| Data { values: v, nrow }).collect();
                if let Some((pos, values)) = replace {
                    data[pos].values = values;
                }
                body.run(&data)
            }
            Values::F32(converted) => {
                let swapped = replace.map(|(pos, values)| (pos, to_f32(values)));
                let mut data: Vec<Data<'_, f32>> =
                    converted.iter().zip(&self.nrows).map(|(v, &nrow)| Data { values: v, nrow }).collect();
                if let Some((pos, values)) = &swapped {
                    data[*pos].values = values;
                }
                body.run(&data)
            }
        }
    }

    /// The unfinalized monoid states of every output row (see
    /// [`PartialStates`]), for a reduction split across processes over the
    /// reduced index: `offset` (the position of this chunk's first reduced
    /// index in the whole problem) is added to every filled index slot, so
    /// that [`merge_partials`] of the chunks' states, in order, gives the
    /// whole reduction.
    pub fn run_states(
        &self,
        ranges: Option<&Ranges>,
        offset: usize,
        interrupted: &mut dyn FnMut() -> bool,
    ) -> Result<PartialStates> {
        if self.grad_inputs.is_some() {
            return Err(Error::Reduction(
                "a gradient written around a reduction, Grad(R, v, e), has no partial state".into(),
            ));
        }
        let mut partial = self.dispatch(None, RunStates { prepared: self, ranges, interrupted })?;
        for k in partial.indices.iter_mut().filter(|k| **k != crate::reduction::EMPTY) {
            *k += offset;
        }
        Ok(partial)
    }

    fn states<T: GpuReal>(
        &self,
        data: &[Data<'_, T>],
        replaced: Option<usize>,
        ranges: Option<&Ranges>,
        interrupted: &mut dyn FnMut() -> bool,
    ) -> Result<cpu::States<T>> {
        let (rows, inner) = (self.rows, self.inner);
        if let Some(r) = ranges {
            r.check(rows, inner)?;
        }
        let monoid = &self.monoid;
        if ranges.is_some() && self.options.backend == Backend::Gpu {
            return Err(Error::Backend(
                "block-sparse ranges run on the CPU only: use backend = \"cpu\" or \"auto\"".into(),
            ));
        }
        if self.gpu && ranges.is_none() {
            crate::cuda::reduce(&self.formula, &self.vars, monoid, data, rows, inner, &self.options, &self.resident, replaced, interrupted)
        } else if let (Some(knn), None) = (&self.knn, ranges) {
            Ok(knn.reduce(&self.program, monoid, data, rows, inner, self.options.threads, interrupted)?.0)
        } else {
            cpu::reduce_ranges(&self.program, monoid, data, rows, inner, ranges, self.options.threads, interrupted)
        }
    }

    fn reduce<T: GpuReal>(
        &self,
        data: &[Data<'_, T>],
        replaced: Option<usize>,
        ranges: Option<&Ranges>,
        interrupted: &mut dyn FnMut() -> bool,
    ) -> Result<Output> {
        let states = self.states(data, replaced, ranges, interrupted)?;
        finalize_states(&self.monoid, &states, self.rows)
    }
}

/// The output rows of `states`: each row's state finalized by the monoid.
fn finalize_states<T: Real>(monoid: &Monoid, states: &cpu::States<T>, rows: usize) -> Result<Output> {
    let (value_cols, index_cols) = monoid.reduction.output_cols();
    let mut values = try_filled(size(rows, value_cols), 0.0)?;
    let mut indices = try_filled(size(rows, index_cols), 0i32)?;
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

/// A reduction's states before [`Monoid::finalize`], for one chunk of the
/// reduced index: row-major, `value_len` values and `index_len` 0-based
/// indices ([`crate::reduction::EMPTY`] for an empty slot) per output row.
/// Values are kept as f64 whatever the evaluation precision: an f32 state
/// converts to f64 and back exactly, so merging them loses nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct PartialStates {
    pub rows: usize,
    pub value_len: usize,
    pub index_len: usize,
    pub values: Vec<f64>,
    pub indices: Vec<usize>,
}

/// Merges the partial states of consecutive chunks of the reduced index
/// (given in the order of the chunks) with the formula's monoid, in the
/// evaluation precision, and finalizes them: the output of the whole
/// reduction. The merge and the finalization are those every backend uses.
pub fn merge_partials(formula: &Formula, partials: &[PartialStates], options: &Options) -> Result<Output> {
    if formula.grad.is_some() {
        return Err(Error::Reduction(
            "a gradient written around a reduction, Grad(R, v, e), has no partial state".into(),
        ));
    }
    let monoid = Monoid { reduction: formula.reduction, scheme: options.sum_scheme };
    match options.precision {
        Precision::F64 => merge_in::<f64>(&monoid, partials),
        Precision::F32 => merge_in::<f32>(&monoid, partials),
    }
}

fn merge_in<T: Real>(monoid: &Monoid, partials: &[PartialStates]) -> Result<Output> {
    let first = partials.first().ok_or_else(|| Error::Input("no partial states to merge".into()))?;
    let rows = first.rows;
    let (value_len, index_len) = monoid.state_len();
    let mut states = cpu::States::<T>::new(monoid, rows)?;
    let mut ov: Vec<T> = vec![T::zero(); value_len];
    for (c, p) in partials.iter().enumerate() {
        if p.rows != rows
            || p.value_len != value_len
            || p.index_len != index_len
            || p.values.len() != rows * value_len
            || p.indices.len() != rows * index_len
        {
            return Err(Error::Input(format!(
                "partial states of chunk {} do not fit the reduction: {} rows of {} values and {} indices, \
                 expected {rows} rows of {value_len} values and {index_len} indices",
                c + 1,
                p.rows,
                p.value_len,
                p.index_len
            )));
        }
        for r in 0..rows {
            for (o, &x) in ov.iter_mut().zip(&p.values[r * value_len..(r + 1) * value_len]) {
                *o = T::from_double(x);
            }
            let ok = &p.indices[r * index_len..(r + 1) * index_len];
            let (v, k) = states.row_mut(r);
            monoid.merge(v, k, &ov, ok);
        }
    }
    finalize_states(monoid, &states, rows)
}

struct RunStates<'p, 'a, 'r, 'i> {
    prepared: &'p Prepared<'a>,
    ranges: Option<&'r Ranges>,
    interrupted: &'i mut dyn FnMut() -> bool,
}

impl WithData for RunStates<'_, '_, '_, '_> {
    type Out = PartialStates;
    fn run<T: GpuReal>(self, data: &[Data<'_, T>]) -> Result<PartialStates> {
        let p = self.prepared;
        let states = p.states(data, None, self.ranges, self.interrupted)?;
        Ok(PartialStates {
            rows: p.rows,
            value_len: states.value_len,
            index_len: states.index_len,
            values: states.values.iter().map(|x| x.to_double()).collect(),
            indices: states.indices,
        })
    }
}

/// The evaluation types, which both backends take.
pub trait GpuReal: Real + cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits {}
impl<T: Real + cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits> GpuReal for T {}

/// Whether reductions go to the GPU backend: never for `Cpu`, when a GPU is
/// usable for `Auto`, and for `Gpu` (an error when none is usable).
fn choose_gpu(backend: Backend) -> Result<bool> {
    Ok(match backend {
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
    })
}

/// What runs on the data once they are in the evaluation precision (a
/// closure cannot be generic over it).
trait WithData {
    type Out;
    fn run<T: GpuReal>(self, data: &[Data<'_, T>]) -> Result<Self::Out>;
}

struct Reduce<'p, 'a, 'r, 'i> {
    prepared: &'p Prepared<'a>,
    /// The argument whose values this call replaces (not kept on a GPU).
    replaced: Option<usize>,
    ranges: Option<&'r Ranges>,
    interrupted: &'i mut dyn FnMut() -> bool,
}

impl WithData for Reduce<'_, '_, '_, '_> {
    type Out = Output;
    fn run<T: GpuReal>(self, data: &[Data<'_, T>]) -> Result<Output> {
        self.prepared.reduce(data, self.replaced, self.ranges, self.interrupted)
    }
}

struct Diagonal<'p, 'a> {
    prepared: &'p Prepared<'a>,
}

impl WithData for Diagonal<'_, '_> {
    type Out = Vec<f64>;
    fn run<T: GpuReal>(self, data: &[Data<'_, T>]) -> Result<Vec<f64>> {
        let p = self.prepared;
        // The diagonal is one pair per row: no GEMM.
        let f = &p.formula;
        let program = Program::compile(&f.graph, &f.roots, f.axis, GemmUse::default());
        Ok(cpu::diagonal(&program, data, p.rows, p.options.threads)?.into_iter().map(|x| x.to_double()).collect())
    }
}

fn to_f32(values: &[f64]) -> Vec<f32> {
    values.iter().map(|&x| x as f32).collect()
}

fn rows_of(var: &VarInfo, input: &Input<'_>) -> usize {
    match var.cat {
        Cat::P => 1,
        Cat::I | Cat::J => input.values.len() / var.dim,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows `lo..hi` of a column-major n x d matrix.
    fn rows_of_matrix(x: &[f64], n: usize, lo: usize, hi: usize) -> Vec<f64> {
        let d = x.len() / n;
        (0..d).flat_map(|c| x[c * n + lo..c * n + hi].iter().copied()).collect()
    }

    /// Partial states of chunks of the reduced index, merged in order, give
    /// the one-process result of every reduction (values within 1e-12,
    /// indices identical), in both precisions and every sum scheme.
    #[test]
    fn merged_partial_states_equal_the_whole_reduction() {
        let (m, n) = (9, 23);
        let gen = |len: usize, seed: u64| -> Vec<f64> {
            let mut s = seed;
            (0..len)
                .map(|i| {
                    s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    if i % 11 == 4 {
                        0.5 // ties across chunks
                    } else {
                        ((s >> 11) as f64) / ((1u64 << 53) as f64) * 2.0 - 1.0
                    }
                })
                .collect()
        };
        let (x, y, w) = (gen(m * 2, 1), gen(n * 2, 2), gen(n, 3));
        let args = ["x = Vi(2)", "y = Vj(2)", "w = Vj(1)"];
        let formulas = [
            "Sum_Reduction(Exp(-SqDist(x, y)) * w, 1)",
            "Min_Reduction(SqDist(x, y), 1)",
            "Max_ArgMax_Reduction(x - y, 1)",
            "ArgMin_Reduction(Round(SqDist(x, y), 1), 1)",
            "KMin_ArgKMin_Reduction(Round(x * y, 1), 3, 1)",
            "ArgKMin_Reduction(SqDist(x, y), 4, 1)",
            "LogSumExp_Reduction(-SqDist(x, y), 1)",
            "LogSumExp_Reduction(-SqDist(x, y), 1, Abs(w) + 1)",
            "SumSoftMaxWeight_Reduction(-SqDist(x, y), 1, y)",
            "Max_SumShiftExp_Reduction(-SqDist(x, y), 1)",
        ];
        let splits: &[&[usize]] = &[&[0, 23], &[0, 5, 6, 17, 23], &[0, 11, 23]];
        for precision in [Precision::F64, Precision::F32] {
            for sum_scheme in [SumScheme::Block, SumScheme::Kahan, SumScheme::Direct] {
                let options = Options { precision, sum_scheme, ..Options::default() };
                for text in formulas {
                    let f = Formula::parse(text, &args).unwrap();
                    let inputs = [Input::matrix(&x, m, 2), Input::matrix(&y, n, 2), Input::matrix(&w, n, 1)];
                    let whole = evaluate(&f, &inputs, &options, &mut || false).unwrap();
                    for bounds in splits {
                        let k = f.reduction.k().unwrap_or(1);
                        if bounds.windows(2).any(|b| b[1] - b[0] < k) {
                            continue;
                        }
                        let parts: Vec<PartialStates> = bounds
                            .windows(2)
                            .map(|b| {
                                let (ys, ws) = (rows_of_matrix(&y, n, b[0], b[1]), rows_of_matrix(&w, n, b[0], b[1]));
                                let len = b[1] - b[0];
                                let inputs = [Input::matrix(&x, m, 2), Input::matrix(&ys, len, 2), Input::matrix(&ws, len, 1)];
                                Prepared::new(&f, &inputs, &options).unwrap().run_states(None, b[0], &mut || false).unwrap()
                            })
                            .collect();
                        let merged = merge_partials(&f, &parts, &options).unwrap();
                        assert_eq!(merged.indices, whole.indices, "{text} {bounds:?}");
                        let tol = if precision == Precision::F64 { 1e-12 } else { 1e-5 };
                        let (a, b) = (merged.values.clone().unwrap_or_default().1, whole.values.clone().unwrap_or_default().1);
                        assert_eq!(a.len(), b.len());
                        for (p, q) in a.iter().zip(&b) {
                            assert!(
                                (p.is_nan() && q.is_nan()) || (p - q).abs() <= tol * (1.0 + q.abs()),
                                "{text} {precision:?} {sum_scheme:?} {bounds:?}: {p} vs {q}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// Shapes are checked without any data: a parameter of dimension 1
    /// given a billion values (an ALTREP 1:1e9 in R) is an input error.
    #[test]
    fn shapes_are_checked_without_data() {
        let f = Formula::parse("Sum_Reduction(x * p, 1)", &["x = Vi(2)", "p = Pm(1)"]).unwrap();
        let vars = f.variables().unwrap();
        let x = Shape { len: 10, nrow: 5, ncol: 2, is_matrix: true };
        let p = Shape { len: 1_000_000_000, nrow: 1_000_000_000, ncol: 1, is_matrix: false };
        let err = check_shapes(&vars, &[x, p]).unwrap_err();
        assert_eq!(err.kind(), "input");
        assert!(err.to_string().contains("needs 1 value(s), got 1000000000"), "{err}");
        let p = Shape { len: 1, nrow: 1, ncol: 1, is_matrix: false };
        assert_eq!(check_shapes(&vars, &[x, p]).unwrap(), (5, 1));
        let bad = Shape { len: 3, nrow: 5, ncol: 2, is_matrix: true };
        assert_eq!(check_shapes(&vars, &[bad, p]).unwrap_err().kind(), "internal");
    }
}
