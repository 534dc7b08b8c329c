//! extendr glue between R and keopsr-core. Thin on purpose: converts R
//! objects, maps core errors to R condition objects (raised by `R/errors.R`),
//! and polls R for interrupts. All numerics live in the core crate.

use std::panic::{catch_unwind, AssertUnwindSafe};

use extendr_api::prelude::*;
use keopsr_core::formula::{DEP_I, DEP_J};
use keopsr_core::reduction::SumScheme;
use keopsr_core::solve::CgOptions;
use keopsr_core::{Backend, Error, Expression, Formula, Gemm, Input, Options, Output, Precision, Prepared, Ranges};

mod convert;
mod interrupt;

/// Runs `f`, turning a core error or a panic into an R condition object.
fn guarded(f: impl FnOnce() -> keopsr_core::Result<Robj>) -> Robj {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(value)) => value,
        Ok(Err(e)) => condition(&e),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            condition(&Error::Internal(what))
        }
    }
}

/// `list(message, call = NULL)` with class
/// `c("keopsr_<kind>_error", "keopsr_error", "error", "condition")`.
fn condition(e: &Error) -> Robj {
    let mut cond = list!(message = e.to_string(), call = NULL).into_robj();
    let kind = format!("keopsr_{}_error", e.kind());
    // Setting a class on a fresh list cannot fail.
    let _ = cond.set_class(&[kind.as_str(), "keopsr_error", "error", "condition"]);
    cond
}

fn aliases(args: &Strings) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Installs a silent panic hook: panics are caught and reported as R errors,
/// so the default hook's message and backtrace on stderr would only be noise.
/// @noRd
#[extendr]
fn keopsr_init() {
    std::panic::set_hook(Box::new(|_| {}));
}

/// Dimension and index dependencies of a formula without reduction.
/// @noRd
#[extendr]
fn keopsr_expression_info(formula: &str, args: Strings) -> Robj {
    guarded(|| {
        let e = Expression::parse(formula, &aliases(&args))?;
        let deps = e.deps();
        let index = match (deps & DEP_I != 0, deps & DEP_J != 0) {
            (true, true) => "ij",
            (true, false) => "i",
            (false, true) => "j",
            (false, false) => "",
        };
        Ok(list!(dim = e.dim() as i32, index = index).into_robj())
    })
}

/// The variables and output shape of a reduction formula.
/// @noRd
#[extendr]
fn keopsr_formula_info(formula: &str, args: Strings) -> Robj {
    guarded(|| {
        let f = Formula::parse(formula, &aliases(&args))?;
        let vars = f.variables()?;
        // For Grad(R, v, e) around a reduction: v's dimension, and the
        // index (or "ij" for a parameter v) the gradient is summed over.
        let (value_cols, index_cols) = f.output_cols();
        let names: Vec<String> =
            vars.iter().map(|v| v.name.clone().unwrap_or_else(|| format!("var{}", v.pos))).collect();
        let cats: Vec<&str> = vars.iter().map(|v| v.cat.keyword()).collect();
        let dims: Vec<i32> = vars.iter().map(|v| v.dim as i32).collect();
        let axis = f.reduced_index();
        Ok(list!(
            names = names,
            categories = cats,
            dims = dims,
            reduced_index = axis,
            value_cols = value_cols as i32,
            index_cols = index_cols as i32
        )
        .into_robj())
    })
}

/// Evaluation options from R's `keops_options()` (as passed by
/// `R/reduction.R`): precision, threads, summation scheme, backend and GPUs.
fn options(settings: &List) -> keopsr_core::Result<Options> {
    let get = |name: &str| settings.iter().find(|(n, _)| *n == name).map(|(_, v)| v);
    let text = |name: &str| -> keopsr_core::Result<String> {
        get(name)
            .and_then(|v| v.as_str().map(str::to_string))
            .ok_or_else(|| Error::Option(format!("option '{name}' must be a string")))
    };
    let threads = get("threads").and_then(|v| v.as_integer()).unwrap_or(0);
    let mut gpu_mask = 0u64;
    if let Some(devices) = get("devices").filter(|v| !v.is_null()) {
        for d in devices.as_integer_vector().unwrap_or_default() {
            if !(0..64).contains(&d) {
                return Err(Error::Option(format!("GPU ordinals must be in 0..63, got {d}")));
            }
            gpu_mask |= 1 << d;
        }
    }
    Ok(Options {
        precision: Precision::from_name(&text("precision")?)?,
        threads: usize::try_from(threads)
            .map_err(|_| Error::Option(format!("threads must be 0 (all cores) or positive, got {threads}")))?,
        sum_scheme: SumScheme::from_name(&text("sum_scheme")?)?,
        backend: Backend::from_name(&text("backend")?)?,
        gpu_mask,
        gemm: match get("gemm").filter(|v| !v.is_null()) {
            Some(_) => Gemm::from_name(&text("gemm")?)?,
            None => Gemm::Auto,
        },
    })
}

/// Runs `f` with the engine's progress reports sent to the R function
/// `settings$progress(done, total, unit)` when there is one (R's
/// `keops_options(progress = )`). Reports arrive on R's main thread (the
/// engine reports where it polls for interrupts); they are passed on at most
/// every 0.1 s, and the final one always. An error in the R function stops
/// the reports, not the computation.
fn with_progress<R>(settings: &List, f: impl FnOnce() -> R) -> R {
    let callback = settings.iter().find(|(n, _)| *n == "progress").and_then(|(_, v)| v.as_function());
    let Some(callback) = callback else { return f() };
    let mut last: Option<std::time::Instant> = None;
    let mut failed = false;
    let sink = Box::new(move |done: u64, total: u64, unit: &'static str| {
        let due = last.is_none_or(|t| t.elapsed() >= std::time::Duration::from_millis(100)) || done >= total;
        if failed || !due {
            return;
        }
        last = Some(std::time::Instant::now());
        failed = callback.call(pairlist!(done as f64, total as f64, unit)).is_err();
    });
    keopsr_core::progress::with_sink(sink, f)
}

/// The inputs of a formula, converted (numeric data are not copied).
/// Shapes are checked against the formula before any value is read, so that
/// a wrong argument (a parameter given an ALTREP `1:1e9`) is an error
/// before R expands it.
fn formula_inputs(f: &Formula, inputs: &List) -> keopsr_core::Result<Vec<convert::Numeric>> {
    let vars = f.variables()?;
    let name = |k: usize| vars.get(k).map_or_else(|| format!("input {}", k + 1), |v| v.describe());
    let shapes =
        inputs.values().enumerate().map(|(k, robj)| convert::shape(&robj, &name(k))).collect::<keopsr_core::Result<Vec<_>>>()?;
    keopsr_core::plan::check_shapes(&vars, &shapes)?;
    inputs.values().enumerate().map(|(k, robj)| convert::numeric(&robj, &name(k))).collect()
}

/// What every evaluating entry point starts with: the parsed formula, the
/// options and the converted inputs (their views borrow from the last).
fn prepare(
    formula: &str,
    args: &Strings,
    inputs: &List,
    settings: &List,
) -> keopsr_core::Result<(Formula, Options, Vec<convert::Numeric>)> {
    let f = Formula::parse(formula, &aliases(args))?;
    let options = options(settings)?;
    let owned = formula_inputs(&f, inputs)?;
    Ok((f, options, owned))
}

/// Evaluates a reduction formula on `inputs` (a list in argument order).
/// @noRd
#[extendr]
fn keopsr_reduce(formula: &str, args: Strings, inputs: List, settings: List) -> Robj {
    guarded(|| {
        let (f, options, owned) = prepare(formula, &args, &inputs, &settings)?;
        let views: Vec<Input<'_>> = owned.iter().map(|a| a.view()).collect();
        let out = with_progress(&settings, || keopsr_core::evaluate(&f, &views, &options, &mut interrupt::pending))?;
        Ok(output(out))
    })
}

/// The value of a reduction and the gradients of sum(eta * value) with
/// respect to the variables at 0-based positions `wrt` (eta: NULL for ones;
/// without `want_value` the value may be skipped).
/// @noRd
#[extendr]
#[allow(clippy::too_many_arguments)]
fn keopsr_value_and_grad(
    formula: &str,
    args: Strings,
    inputs: List,
    wrt: Integers,
    eta: Robj,
    want_value: bool,
    settings: List,
) -> Robj {
    guarded(|| {
        let (f, options, owned) = prepare(formula, &args, &inputs, &settings)?;
        let views: Vec<Input<'_>> = owned.iter().map(|a| a.view()).collect();
        let wrt = wrt
            .iter()
            .map(|k| {
                Option::<i32>::from(k)
                    .and_then(|k| usize::try_from(k).ok())
                    .ok_or_else(|| Error::Input("variable positions must be non-negative whole numbers".to_string()))
            })
            .collect::<keopsr_core::Result<Vec<_>>>()?;
        let eta = if eta.is_null() { None } else { Some(convert::numeric(&eta, "eta")?) };
        let eta_view = eta.as_ref().map(|e| e.view());
        let res = with_progress(&settings, || {
            keopsr_core::gradient::value_and_gradient(
                &f,
                &views,
                &wrt,
                eta_view.as_ref().map(|e| e.values),
                want_value,
                &options,
                &mut interrupt::pending,
            )
        })?;
        let grads: Vec<Robj> = res
            .gradients
            .into_iter()
            .map(|m| convert::matrix(m.values.into_iter().collect_robj(), m.nrow, m.ncol))
            .collect();
        Ok(list!(value = output(res.value), gradients = List::from_values(grads)).into_robj())
    })
}

/// 0-based (start, end) pairs from two integer vectors.
fn intervals(starts: &[i32], ends: &[i32], what: &str) -> keopsr_core::Result<Vec<(usize, usize)>> {
    if starts.len() != ends.len() {
        return Err(Error::Input(format!("{what}: as many starts as ends are needed")));
    }
    starts
        .iter()
        .zip(ends)
        .map(|(&s, &e)| match (usize::try_from(s), usize::try_from(e)) {
            (Ok(s), Ok(e)) => Ok((s, e)),
            _ => Err(Error::Input(format!("{what}: bounds must be non-negative and not NA"))),
        })
        .collect()
}

/// Evaluates a reduction restricted to block-sparse ranges: output clusters
/// `[out_start, out_end)` (0-based), cumulative interval counts `slices`,
/// reduced intervals `[red_start, red_end)`.
/// @noRd
#[extendr]
#[allow(clippy::too_many_arguments)]
fn keopsr_reduce_ranges(
    formula: &str,
    args: Strings,
    inputs: List,
    settings: List,
    out_start: &[i32],
    out_end: &[i32],
    slices: &[i32],
    red_start: &[i32],
    red_end: &[i32],
) -> Robj {
    guarded(|| {
        let (f, options, owned) = prepare(formula, &args, &inputs, &settings)?;
        let views: Vec<Input<'_>> = owned.iter().map(|a| a.view()).collect();
        let prepared = Prepared::new(&f, &views, &options)?;
        let (rows, inner) = prepared.shape();
        let ranges = ranges_of(out_start, out_end, slices, red_start, red_end, rows, inner)?;
        Ok(output(with_progress(&settings, || prepared.run(Some(&ranges), &mut interrupt::pending))?))
    })
}

/// Block-sparse ranges from R's 0-based vectors (see `keopsr_reduce_ranges`).
fn ranges_of(
    out_start: &[i32],
    out_end: &[i32],
    slices: &[i32],
    red_start: &[i32],
    red_end: &[i32],
    rows: usize,
    inner: usize,
) -> keopsr_core::Result<Ranges> {
    let slices = slices
        .iter()
        .map(|&s| usize::try_from(s).map_err(|_| Error::Input("ranges: slices must be non-negative".into())))
        .collect::<keopsr_core::Result<Vec<_>>>()?;
    Ranges::from_keops(
        &intervals(out_start, out_end, "ranges of the output rows")?,
        &slices,
        &intervals(red_start, red_end, "ranges of the reduced index")?,
        rows,
        inner,
    )
}

/// What the splitting of a reduction across processes needs to know
/// (`R/distributed.R`), after the checks every evaluation makes (shapes,
/// K against the points reduced over): output rows, reduced indices, the
/// reduced index of the result, each variable's category, K, and for a
/// gradient written around a reduction the position (1-based) of the
/// variable differentiated against (0 otherwise) and the index the
/// reduction itself reduces over (`forward_reduced`).
/// @noRd
#[extendr]
fn keopsr_split_info(formula: &str, args: Strings, inputs: List) -> Robj {
    guarded(|| {
        let f = Formula::parse(formula, &aliases(&args))?;
        let owned = formula_inputs(&f, &inputs)?;
        let views: Vec<Input<'_>> = owned.iter().map(|a| a.view()).collect();
        // The checks only: f64 data are borrowed, never converted, and the
        // CPU is chosen so that no GPU is looked for here.
        let prepared = Prepared::new(&f, &views, &Options::default())?;
        let (rows, inner) = prepared.shape();
        let cats: Vec<&str> = prepared.variables().iter().map(|v| v.cat.keyword()).collect();
        Ok(list!(
            rows = rows as f64,
            inner = inner as f64,
            reduced = f.reduced_index(),
            categories = cats,
            k = f.reduction.k().map_or(1, |k| k as i32),
            value_cols = f.reduction.output_cols().0 as i32,
            grad_around = f.grad.is_some(),
            grad_var = f.grad.map_or(0, |g| g.var as i32 + 1),
            forward_reduced = f.axis.inner().keyword()
        )
        .into_robj())
    })
}

/// A reduction's unfinalized states for one chunk of the reduced index
/// (`inputs` hold only the chunk's reduced-index points): `offset` is the
/// chunk's first reduced index in the whole problem (0-based). `ranges`:
/// NULL or `list(out_start, out_end, slices, red_start, red_end)` for the
/// chunk. Returned as `list(rows, value_len, index_len, values, indices)`,
/// row-major, indices 0-based as doubles (-1 for an empty slot).
/// @noRd
#[extendr]
fn keopsr_reduce_partial(formula: &str, args: Strings, inputs: List, settings: List, offset: f64, ranges: Robj) -> Robj {
    guarded(|| {
        let (f, options, owned) = prepare(formula, &args, &inputs, &settings)?;
        let views: Vec<Input<'_>> = owned.iter().map(|a| a.view()).collect();
        let prepared = Prepared::new(&f, &views, &options)?;
        let (rows, inner) = prepared.shape();
        if !(offset >= 0.0 && offset.fract() == 0.0 && offset <= i32::MAX as f64) {
            return Err(Error::Internal(format!("bad chunk offset {offset}")));
        }
        let ranges = if ranges.is_null() {
            None
        } else {
            let r = ranges.as_list().ok_or_else(|| Error::Internal("ranges must be a list".into()))?;
            let field = |name: &str| -> keopsr_core::Result<Vec<i32>> {
                r.iter()
                    .find(|(n, _)| *n == name)
                    .and_then(|(_, v)| v.as_integer_vector())
                    .ok_or_else(|| Error::Internal(format!("ranges: no integer vector '{name}'")))
            };
            let (os, oe, sl, rs, re) =
                (field("out_start")?, field("out_end")?, field("slices")?, field("red_start")?, field("red_end")?);
            Some(ranges_of(&os, &oe, &sl, &rs, &re, rows, inner)?)
        };
        let part = prepared.run_states(ranges.as_ref(), offset as usize, &mut interrupt::pending)?;
        let indices: Vec<f64> =
            part.indices.iter().map(|&k| if k == keopsr_core::reduction::EMPTY { -1.0 } else { k as f64 }).collect();
        Ok(list!(
            rows = part.rows as f64,
            value_len = part.value_len as f64,
            index_len = part.index_len as f64,
            values = part.values,
            indices = indices
        )
        .into_robj())
    })
}

/// Merges the partial states of consecutive chunks of the reduced index
/// (a list, in chunk order, as returned by `keopsr_reduce_partial`) with
/// the reduction's monoid and finalizes them: the reduction's output.
/// @noRd
#[extendr]
fn keopsr_merge_partials(formula: &str, args: Strings, settings: List, partials: List) -> Robj {
    guarded(|| {
        let f = Formula::parse(formula, &aliases(&args))?;
        let options = options(&settings)?;
        let parts = partials
            .values()
            .enumerate()
            .map(|(c, p)| partial_states(&p).map_err(|m| Error::Internal(format!("partial states of chunk {}: {m}", c + 1))))
            .collect::<keopsr_core::Result<Vec<_>>>()?;
        Ok(output(keopsr_core::merge_partials(&f, &parts, &options)?))
    })
}

fn partial_states(p: &Robj) -> std::result::Result<keopsr_core::PartialStates, String> {
    let list = p.as_list().ok_or("not a list")?;
    let get = |name: &str| list.iter().find(|(n, _)| *n == name).map(|(_, v)| v).ok_or(format!("no '{name}'"));
    let count = |name: &str| -> std::result::Result<usize, String> {
        let x = get(name)?.as_real().ok_or(format!("'{name}' is not a number"))?;
        if x >= 0.0 && x.fract() == 0.0 { Ok(x as usize) } else { Err(format!("bad '{name}'")) }
    };
    let values = get("values")?.as_real_vector().ok_or("'values' is not numeric")?;
    let indices = get("indices")?
        .as_real_vector()
        .ok_or("'indices' is not numeric")?
        .into_iter()
        .map(|k| if k < 0.0 { Ok(keopsr_core::reduction::EMPTY) } else if k.fract() == 0.0 { Ok(k as usize) } else { Err("bad index".to_string()) })
        .collect::<std::result::Result<Vec<_>, String>>()?;
    Ok(keopsr_core::PartialStates {
        rows: count("rows")?,
        value_len: count("value_len")?,
        index_len: count("index_len")?,
        values,
        indices,
    })
}

/// Conjugate-gradient solve of (K + alpha I) a = b, as `keopsr_solve`, with
/// each product by K computed by the R function `matvec(p)` (p an n x r
/// matrix; it returns K p, or NULL after recording an error, which ends the
/// solve): the products are split across processes in R while the CG
/// recurrence stays in the core. The formula and inputs are checked by the
/// core solver first (with max_iter = 0: every check, no product), and the
/// Jacobi diagonal is computed here.
/// @noRd
#[extendr]
#[allow(clippy::too_many_arguments)]
fn keopsr_solve_with(
    formula: &str,
    args: Strings,
    inputs: List,
    var: i32,
    b: &[f64],
    alpha: f64,
    tol: f64,
    max_iter: i32,
    jacobi: bool,
    settings: List,
    matvec: Function,
) -> Robj {
    guarded(|| {
        let (f, options, owned) = prepare(formula, &args, &inputs, &settings)?;
        let views: Vec<Input<'_>> = owned.iter().map(|a| a.view()).collect();
        let (var, cg) = solver_arguments(var, alpha, tol, max_iter, jacobi)?;
        keopsr_core::solve::solve(&f, &views, var, b, &options, &CgOptions { max_iter: 0, jacobi: false, ..cg }, &mut interrupt::pending)?;
        let prepared = Prepared::new(&f, &views, &options)?;
        let n = prepared.shape().0;
        let r = b.len() / n.max(1);
        let diag = if jacobi {
            let ones = vec![1.0; n * r];
            Some(prepared.diagonal(Some((var, &ones)))?)
        } else {
            None
        };
        let mut apply = |p: &[f64]| -> keopsr_core::Result<Vec<f64>> {
            let pm = convert::matrix(p.iter().copied().collect_robj(), n, r);
            let q = matvec.call(pairlist!(pm)).map_err(|e| Error::Internal(format!("the product by K failed: {e:?}")))?;
            if q.is_null() {
                return Err(Error::Internal("the distributed product by K failed".into()));
            }
            q.as_real_vector().ok_or_else(|| Error::Internal("the product by K returned no numbers".into()))
        };
        let sol = keopsr_core::solve::conjugate_gradient(n, r, b, &mut apply, diag.as_deref(), &cg)?;
        Ok(solution(sol))
    })
}

/// The unknown's position and the CG options of the two solver entry
/// points, from R's integers.
fn solver_arguments(var: i32, alpha: f64, tol: f64, max_iter: i32, jacobi: bool) -> keopsr_core::Result<(usize, CgOptions)> {
    let var = usize::try_from(var).map_err(|_| Error::Internal(format!("bad variable position {var}")))?;
    let max_iter = usize::try_from(max_iter)
        .map_err(|_| Error::Option(format!("max_iter must be a non-negative whole number, got {max_iter}")))?;
    Ok((var, CgOptions { alpha, tol, max_iter, jacobi }))
}

/// Conjugate-gradient solve of (K + alpha I) a = b, K applied by the Sum
/// reduction `formula` with argument `var` (0-based) bound to a.
/// @noRd
#[extendr]
#[allow(clippy::too_many_arguments)]
fn keopsr_solve(
    formula: &str,
    args: Strings,
    inputs: List,
    var: i32,
    b: &[f64],
    alpha: f64,
    tol: f64,
    max_iter: i32,
    jacobi: bool,
    settings: List,
) -> Robj {
    guarded(|| {
        let (f, options, owned) = prepare(formula, &args, &inputs, &settings)?;
        let views: Vec<Input<'_>> = owned.iter().map(|a| a.view()).collect();
        let (var, cg) = solver_arguments(var, alpha, tol, max_iter, jacobi)?;
        let sol = with_progress(&settings, || {
            keopsr_core::solve::solve(&f, &views, var, b, &options, &cg, &mut interrupt::pending)
        })?;
        Ok(solution(sol))
    })
}

/// A CG solution as R's `list(x, iterations, converged, residuals)`.
fn solution(sol: keopsr_core::solve::CgSolution) -> Robj {
    let steps = sol.iterations + 1;
    // history is row-major (one row per iteration): R wants column-major.
    let mut history = vec![0.0; steps * sol.r];
    for it in 0..steps {
        for c in 0..sol.r {
            history[c * steps + it] = sol.history[it * sol.r + c];
        }
    }
    list!(
        x = convert::matrix(sol.x.into_iter().collect_robj(), sol.n, sol.r),
        iterations = sol.iterations as i32,
        converged = sol.converged,
        residuals = convert::matrix(history.into_iter().collect_robj(), steps, sol.r)
    )
    .into_robj()
}

/// A numeric matrix, an integer matrix, or `list(values, indices)` for the
/// reductions that return both.
fn output(out: Output) -> Robj {
    let rows = out.rows;
    let values = out.values.map(|(cols, v)| convert::matrix(v.into_iter().collect_robj(), rows, cols));
    let indices = out.indices.map(|(cols, k)| convert::matrix(k.into_iter().collect_robj(), rows, cols));
    match (values, indices) {
        (Some(v), Some(k)) => list!(values = v, indices = k).into_robj(),
        (Some(v), None) => v,
        (None, Some(k)) => k,
        (None, None) => NULL.into_robj(),
    }
}

/// op(A) op(B) of double matrices (A: a_rows x a_cols, transposed when
/// `ta`; likewise B) by `matrixmultiply` on `threads` threads: the dense
/// steps of the Gaussian-process code (R/gp-linalg.R), where R's reference
/// BLAS is slow.
/// @noRd
#[extendr]
#[allow(clippy::too_many_arguments)]
fn keopsr_dense_product(a: &[f64], a_rows: i32, a_cols: i32, ta: bool, b: &[f64], b_rows: i32, b_cols: i32, tb: bool, threads: i32) -> Robj {
    use keopsr_core::cpu::dense::{product, Operand};
    guarded(|| {
        let extent = |v: i32| usize::try_from(v).map_err(|_| Error::Input(format!("negative dimension {v}")));
        let a = Operand { values: a, rows: extent(a_rows)?, cols: extent(a_cols)?, transposed: ta };
        let b = Operand { values: b, rows: extent(b_rows)?, cols: extent(b_cols)?, transposed: tb };
        let values = product(&a, &b, extent(threads)?)?;
        let (m, n) = (if ta { a.cols } else { a.rows }, if tb { b.rows } else { b.cols });
        Ok(convert::matrix(values.into_robj(), m, n))
    })
}

/// f(|a_i - b_j|^2) between the rows of two double matrices with `d`
/// columns (the m x n matrix): `what` "sqdist", or "k" / "h" for the
/// kernel named `kernel` (or its length-scale factor) scaled by `s2`
/// (`keopsr_core::cpu::dense::pairwise`).
/// @noRd
#[extendr]
#[allow(clippy::too_many_arguments)]
fn keopsr_dense_pairwise(what: &str, kernel: &str, s2: f64, a: &[f64], m: i32, b: &[f64], n: i32, d: i32, threads: i32) -> Robj {
    use keopsr_core::cpu::dense::{pairwise, PairMap, Stationary};
    guarded(|| {
        let extent = |v: i32| usize::try_from(v).map_err(|_| Error::Input(format!("negative dimension {v}")));
        let map = match what {
            "sqdist" => PairMap::SqDist,
            "k" => PairMap::Kernel(Stationary::parse(kernel)?, s2),
            "h" => PairMap::LengthscaleFactor(Stationary::parse(kernel)?, s2),
            _ => return Err(Error::Input(format!("unknown pairwise map \"{what}\""))),
        };
        let (m, n) = (extent(m)?, extent(n)?);
        let values = pairwise(map, a, m, b, n, extent(d)?, extent(threads)?)?;
        Ok(convert::matrix(values.into_robj(), m, n))
    })
}

/// Number of threads used by default (the available cores).
/// @noRd
#[extendr]
fn keopsr_default_threads() -> i32 {
    keopsr_core::cpu::default_threads() as i32
}

/// The operation catalogue of the formula language, as columns.
/// @noRd
#[extendr]
fn keopsr_operation_table() -> Robj {
    let rows = keopsr_core::ops::catalogue();
    let col = |f: &dyn Fn(&keopsr_core::ops::CatalogueEntry) -> String| -> Vec<String> { rows.iter().map(f).collect() };
    list!(
        name = col(&|r| r.name.to_string()),
        r_function = col(&|r| r.r_name.to_string()),
        usage = col(&|r| r.usage.clone()),
        dimension = col(&|r| r.dim_rule.to_string()),
        description = col(&|r| r.doc.clone()),
        family = col(&|r| r.family.to_string())
    )
    .into_robj()
}

/// What the CUDA backend found: driver, GPUs, NVRTC, cache folder.
/// @noRd
#[extendr]
fn keopsr_cuda_info(nvrtc: Nullable<String>) -> Robj {
    guarded(|| {
        let path = nvrtc.into_option();
        let info = keopsr_core::cuda::info(path.as_deref());
        let gpus = &info.gpus;
        let ordinals: Vec<i32> = gpus.iter().map(|g| g.ordinal as i32).collect();
        let names: Vec<String> = gpus.iter().map(|g| g.name.clone()).collect();
        let cc: Vec<String> = gpus.iter().map(|g| format!("{}.{}", g.compute_capability.0, g.compute_capability.1)).collect();
        let memory: Vec<f64> = gpus.iter().map(|g| g.total_memory as f64 / (1u64 << 30) as f64).collect();
        Ok(list!(
            driver = info.driver,
            gpu_error = info.gpu_error.unwrap_or_default(),
            ordinal = ordinals,
            name = names,
            compute_capability = cc,
            memory_gib = memory,
            nvrtc = info.nvrtc.unwrap_or_default(),
            nvrtc_version = info.nvrtc_version.map(|(a, b)| format!("{a}.{b}")).unwrap_or_default(),
            nvrtc_error = info.nvrtc_error.unwrap_or_default(),
            usable = keopsr_core::cuda::usable(path.as_deref())
        )
        .into_robj())
    })
}

/// Sets the folder of compiled kernels (NULL: no disk cache).
/// @noRd
#[extendr]
fn keopsr_set_cache_dir(dir: Nullable<String>) -> Robj {
    guarded(|| {
        let mut slot = keopsr_core::cuda::nvrtc::cache_dir()
            .lock()
            .map_err(|_| Error::Internal("cache registry poisoned".into()))?;
        *slot = dir.into_option().map(std::path::PathBuf::from);
        Ok(NULL.into_robj())
    })
}

/// Number of entries and bytes in a kernel cache folder.
/// @noRd
#[extendr]
fn keopsr_cache_usage(dir: &str) -> Robj {
    let (entries, bytes) = keopsr_core::cuda::nvrtc::cache_usage(std::path::Path::new(dir));
    list!(entries = entries as f64, bytes = bytes as f64).into_robj()
}

/// Removes the kernel cache entries of a folder; returns how many.
/// @noRd
#[extendr]
fn keopsr_cache_clear(dir: &str) -> f64 {
    keopsr_core::cuda::nvrtc::cache_clear(std::path::Path::new(dir)) as f64
}

/// Eight hex digits drawn from the operating system's randomness (std's
/// randomly seeded hasher, mixed with the process id and the clock), not
/// from R's generator: they make variable names unique across sessions
/// without touching the user's random numbers.
/// @noRd
#[extendr]
fn keopsr_random_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    h.write_u128(nanos);
    format!("{:08x}", h.finish() as u32)
}

/// The CUDA C source of a reduction formula's kernel.
/// @noRd
#[extendr]
fn keopsr_cuda_source(formula: &str, args: Strings, settings: List) -> Robj {
    guarded(|| {
        let f = Formula::parse(formula, &aliases(&args))?;
        Ok(keopsr_core::cuda::kernel(&f, &options(&settings)?).source.into_robj())
    })
}

/// Compiles a formula's kernel with NVRTC for `arch` (no GPU needed).
/// @noRd
#[extendr]
fn keopsr_cuda_compile(formula: &str, args: Strings, settings: List, arch: &str, nvrtc: Nullable<String>) -> Robj {
    guarded(|| {
        let f = Formula::parse(formula, &aliases(&args))?;
        let path = nvrtc.into_option();
        let out = keopsr_core::cuda::compile(&f, &options(&settings)?, arch, path.as_deref())?;
        Ok(list!(
            arch = out.arch,
            format = if out.is_cubin { "cubin" } else { "ptx" },
            bytes = out.image.len() as f64,
            log = out.log,
            cached = out.cached
        )
        .into_robj())
    })
}

extendr_module! {
    mod keopsr;
    fn keopsr_init;
    fn keopsr_expression_info;
    fn keopsr_formula_info;
    fn keopsr_reduce;
    fn keopsr_value_and_grad;
    fn keopsr_reduce_ranges;
    fn keopsr_solve;
    fn keopsr_split_info;
    fn keopsr_reduce_partial;
    fn keopsr_merge_partials;
    fn keopsr_solve_with;
    fn keopsr_default_threads;
    fn keopsr_dense_product;
    fn keopsr_dense_pairwise;
    fn keopsr_operation_table;
    fn keopsr_cuda_info;
    fn keopsr_set_cache_dir;
    fn keopsr_cache_usage;
    fn keopsr_cache_clear;
    fn keopsr_random_token;
    fn keopsr_cuda_source;
    fn keopsr_cuda_compile;
}
