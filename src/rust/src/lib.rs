//! extendr glue between R and keopsr-core. Thin on purpose: converts R
//! objects, maps core errors to R condition objects (raised by `R/errors.R`),
//! and polls R for interrupts. All numerics live in the core crate.

use std::panic::{catch_unwind, AssertUnwindSafe};

use extendr_api::prelude::*;
use keopsr_core::formula::{DEP_I, DEP_J};
use keopsr_core::reduction::SumScheme;
use keopsr_core::solve::CgOptions;
use keopsr_core::{Error, Expression, Formula, Input, Options, Output, Precision, Prepared, Ranges};

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
        let (value_cols, index_cols) = f.reduction.output_cols();
        let names: Vec<String> =
            vars.iter().map(|v| v.name.clone().unwrap_or_else(|| format!("var{}", v.pos))).collect();
        let cats: Vec<&str> = vars.iter().map(|v| v.cat.keyword()).collect();
        let dims: Vec<i32> = vars.iter().map(|v| v.dim as i32).collect();
        let axis = match f.axis {
            keopsr_core::formula::Axis::I => "i",
            keopsr_core::formula::Axis::J => "j",
        };
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

fn options(precision: &str, threads: i32, sum_scheme: &str) -> keopsr_core::Result<Options> {
    Ok(Options {
        precision: Precision::from_name(precision)?,
        threads: usize::try_from(threads)
            .map_err(|_| Error::Option(format!("threads must be 0 (all cores) or positive, got {threads}")))?,
        sum_scheme: SumScheme::from_name(sum_scheme)?,
        // The R options do not choose a backend yet: the defaults (CPU).
        ..Options::default()
    })
}

/// The inputs of a formula, converted (numeric data are not copied).
fn formula_inputs(f: &Formula, inputs: &List) -> keopsr_core::Result<Vec<convert::Numeric>> {
    let names = f.variables()?.into_iter().map(|v| v.describe()).collect::<Vec<_>>();
    inputs
        .values()
        .enumerate()
        .map(|(k, robj)| {
            let name = names.get(k).cloned().unwrap_or_else(|| format!("input {}", k + 1));
            convert::numeric(&robj, &name)
        })
        .collect()
}

/// Evaluates a reduction formula on `inputs` (a list in argument order).
/// @noRd
#[extendr]
fn keopsr_reduce(formula: &str, args: Strings, inputs: List, precision: &str, threads: i32, sum_scheme: &str) -> Robj {
    guarded(|| {
        let f = Formula::parse(formula, &aliases(&args))?;
        let options = options(precision, threads, sum_scheme)?;
        let owned = formula_inputs(&f, &inputs)?;
        let views: Vec<Input<'_>> = owned.iter().map(|a| a.view()).collect();
        let out = keopsr_core::evaluate(&f, &views, &options, &mut interrupt::pending)?;
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
    precision: &str,
    threads: i32,
    sum_scheme: &str,
) -> Robj {
    guarded(|| {
        let f = Formula::parse(formula, &aliases(&args))?;
        let options = options(precision, threads, sum_scheme)?;
        let owned = formula_inputs(&f, &inputs)?;
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
        let res = keopsr_core::gradient::value_and_gradient(
            &f,
            &views,
            &wrt,
            eta_view.as_ref().map(|e| e.values),
            want_value,
            &options,
            &mut interrupt::pending,
        )?;
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
    precision: &str,
    threads: i32,
    sum_scheme: &str,
    out_start: &[i32],
    out_end: &[i32],
    slices: &[i32],
    red_start: &[i32],
    red_end: &[i32],
) -> Robj {
    guarded(|| {
        let f = Formula::parse(formula, &aliases(&args))?;
        let options = options(precision, threads, sum_scheme)?;
        let owned = formula_inputs(&f, &inputs)?;
        let views: Vec<Input<'_>> = owned.iter().map(|a| a.view()).collect();
        let prepared = Prepared::new(&f, &views, &options)?;
        let (rows, inner) = prepared.shape();
        let slices = slices
            .iter()
            .map(|&s| usize::try_from(s).map_err(|_| Error::Input("ranges: slices must be non-negative".into())))
            .collect::<keopsr_core::Result<Vec<_>>>()?;
        let ranges = Ranges::from_keops(
            &intervals(out_start, out_end, "ranges of the output rows")?,
            &slices,
            &intervals(red_start, red_end, "ranges of the reduced index")?,
            rows,
            inner,
        )?;
        Ok(output(prepared.run(Some(&ranges), &mut interrupt::pending)?))
    })
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
    precision: &str,
    threads: i32,
    sum_scheme: &str,
) -> Robj {
    guarded(|| {
        let f = Formula::parse(formula, &aliases(&args))?;
        let options = options(precision, threads, sum_scheme)?;
        let owned = formula_inputs(&f, &inputs)?;
        let views: Vec<Input<'_>> = owned.iter().map(|a| a.view()).collect();
        let var = usize::try_from(var).map_err(|_| Error::Internal(format!("bad variable position {var}")))?;
        let max_iter = usize::try_from(max_iter)
            .map_err(|_| Error::Option(format!("max_iter must be a non-negative whole number, got {max_iter}")))?;
        let cg = CgOptions { alpha, tol, max_iter, jacobi };
        let sol = keopsr_core::solve::solve(&f, &views, var, b, &options, &cg, &mut interrupt::pending)?;
        let steps = sol.iterations + 1;
        // history is row-major (one row per iteration): R wants column-major.
        let mut history = vec![0.0; steps * sol.r];
        for it in 0..steps {
            for c in 0..sol.r {
                history[c * steps + it] = sol.history[it * sol.r + c];
            }
        }
        Ok(list!(
            x = convert::matrix(sol.x.into_iter().collect_robj(), sol.n, sol.r),
            iterations = sol.iterations as i32,
            converged = sol.converged,
            residuals = convert::matrix(history.into_iter().collect_robj(), steps, sol.r)
        )
        .into_robj())
    })
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

extendr_module! {
    mod keopsr;
    fn keopsr_init;
    fn keopsr_expression_info;
    fn keopsr_formula_info;
    fn keopsr_reduce;
    fn keopsr_value_and_grad;
    fn keopsr_reduce_ranges;
    fn keopsr_solve;
    fn keopsr_default_threads;
    fn keopsr_operation_table;
}
