//! Gradients of reductions with respect to their variables.
//!
//! For a reduction R_o = Red_r F(o, r) over the reduced index r (one output
//! row per point o of the other index) and weights η (one per output value),
//! the gradient of Σ_o η_o · R_o with respect to a variable v is a Sum
//! reduction of `Grad(F, v, e) (+ Grad(G, v, e_G))`, where the adjoint e
//! depends on the reduction:
//! - Sum: e = η;
//! - LogSumExp: e = η exp(F - L) with L the value (weighted: w = η exp(F - L),
//!   e = Σ_c w_c G_c and e_G = w), exact and stable since F - L <= 0;
//! - SumSoftMaxWeight: with L = LogSumExp(F) and S the value,
//!   p = exp(F - L), e_G = p η and e = p Σ_c (G_c - S_c) η_c;
//! - Min, Max, KMin (values): e = η where r is the selected index, 0 elsewhere
//!   (ties: the index the reduction selected, the smallest one);
//! - ArgMin, ArgMax, ArgKMin: zero (piecewise constant).
//!
//! Variables of the output index and parameters are reduced along the same
//! axis (parameters then summed over the output rows); variables of the
//! reduced index along the other axis (the transposed kernel). Every
//! variable of one kind goes in the same pass: at most one value pass, one
//! LogSumExp pass (SumSoftMaxWeight only) and two gradient passes.

use crate::buffer::{size, try_filled};
use crate::error::{Error, Result};
use crate::formula::{Axis, Cat, Formula, Graph, NodeId, VarInfo, GRAD_AROUND_HELP};
use crate::ops::{Binary, Ternary, Unary};
use crate::plan::{check_inputs, evaluate, Input, Options, Output};
use crate::reduction::Reduction;

/// A dense column-major matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    pub nrow: usize,
    pub ncol: usize,
    pub values: Vec<f64>,
}

/// The value of a reduction and the gradients of Σ η · value with respect to
/// the requested variables (one matrix per variable: one row per point of its
/// index, or one row for a parameter).
#[derive(Debug, Clone)]
pub struct ValueAndGradient {
    pub value: Output,
    pub gradients: Vec<Matrix>,
}

/// Extra variables appended to the formula for the gradient passes.
struct Extra {
    info: VarInfo,
    values: Vec<f64>,
    nrow: usize,
}

/// Evaluates `formula` and the gradients of Σ η · value with respect to the
/// variables at positions `wrt`. `eta` is column-major with one row per
/// output row and one column per output value (all ones when `None`).
/// Without `want_value`, passes that only the value needs are skipped (the
/// returned value may then be empty).
pub fn value_and_gradient(
    formula: &Formula,
    inputs: &[Input<'_>],
    wrt: &[usize],
    eta: Option<&[f64]>,
    want_value: bool,
    options: &Options,
    interrupted: &mut dyn FnMut() -> bool,
) -> Result<ValueAndGradient> {
    if formula.grad.is_some() {
        return Err(Error::formula(
            format!("this formula is already a gradient around a reduction and cannot be differentiated again: {GRAD_AROUND_HELP}"),
            None,
        ));
    }
    if let Reduction::MaxSumShiftExp { .. } = formula.reduction {
        return Err(Error::Reduction(
            "gradients of Max_SumShiftExp(Weight)_Reduction are not available: use LogSumExp_Reduction or \
             SumSoftMaxWeight_Reduction, which it is the state of"
                .into(),
        ));
    }
    let vars = formula.variables()?;
    let (ni, nj) = check_inputs(&vars, inputs)?;
    let mut selection = None;
    for &p in wrt {
        if p >= vars.len() {
            return Err(Error::Input(format!(
                "cannot differentiate with respect to variable {p}: the formula has {} variable(s) (positions start at 0)",
                vars.len()
            )));
        }
    }
    // Selections need their indices even when only the values are wanted:
    // evaluate with both, then keep what the formula asked for.
    let with_indices = match formula.reduction {
        Reduction::MinMax { max, dim, values: true, .. } => {
            Some(Reduction::MinMax { max, dim, values: true, indices: true })
        }
        Reduction::KMin { k, dim, values: true, .. } => Some(Reduction::KMin { k, dim, values: true, indices: true }),
        _ => None,
    };
    // Sum gradients do not need the value: skip that pass when not asked.
    let skip_value = !want_value && matches!(formula.reduction, Reduction::Sum { .. });
    let value = match with_indices {
        _ if skip_value => {
            let rows = if formula.axis == Axis::J { ni } else { nj };
            Output { rows, values: None, indices: None }
        }
        Some(reduction) => {
            let full = evaluate(&Formula { reduction, grad: None, ..formula.clone() }, inputs, options, interrupted)?;
            let keep_indices = formula.reduction.output_cols().1 > 0;
            selection = full.indices.clone();
            Output { indices: if keep_indices { full.indices } else { None }, ..full }
        }
        None => evaluate(formula, inputs, options, interrupted)?,
    };
    let rows = value.rows;
    let (value_cols, _) = formula.reduction.output_cols();
    let eta: Vec<f64> = match eta {
        Some(e) => {
            if e.len() != rows * value_cols {
                return Err(Error::Input(format!(
                    "eta must have one row per output row and one column per output value: {rows} x {value_cols}, got {} value(s)",
                    e.len()
                )));
            }
            e.to_vec()
        }
        None => try_filled(size(rows, value_cols), 1.0)?,
    };
    let points = |cat: Cat| match cat {
        Cat::I => ni,
        Cat::J => nj,
        Cat::P => 1,
    };
    let inner = points(formula.axis.inner());
    let zero = |v: &VarInfo| {
        let n = points(v.cat);
        Ok(Matrix { nrow: n, ncol: v.dim, values: try_filled(size(n, v.dim), 0.0)? })
    };
    if value_cols == 0 {
        // Arg reductions: piecewise constant, zero gradient.
        let gradients = wrt.iter().map(|&p| zero(&vars[p])).collect::<Result<_>>()?;
        return Ok(ValueAndGradient { value, gradients });
    }

    // Graph of F (and G) with the extra variables η, L, S, σ, J.
    let mut g = formula.graph.clone();
    let mut extras: Vec<Extra> = Vec::new();
    let outer = formula.axis.outer();
    let mut declare = |g: &mut Graph, cat: Cat, dim: usize, values: Vec<f64>, nrow: usize| -> Result<NodeId> {
        let pos = vars.len() + extras.len();
        let info = VarInfo { pos, dim, cat, name: None };
        g.declare_var(info.clone(), None)?;
        extras.push(Extra { info, values, nrow });
        Ok(g.var(pos))
    };
    let eta_node = declare(&mut g, outer, value_cols, eta, rows)?;
    let f = formula.roots[0];
    let weight = formula.roots.get(1).copied();
    let values_of = |out: &Output| out.values.as_ref().map(|(_, v)| v.clone()).unwrap_or_default();
    // Pairs with zero softmax weight (F = -Inf) contribute exactly 0, even
    // where dF/dv is infinite: the gradient integrand is masked by this weight.
    let mut softmax_weight: Option<NodeId> = None;
    let (e_f, e_g) = match formula.reduction {
        Reduction::Sum { .. } => (eta_node, None),
        Reduction::LogSumExp { weight: w, .. } => {
            let l = declare(&mut g, outer, value_cols, values_of(&value), rows)?;
            let shifted = g.binary(Binary::Subtract, f, l, None)?;
            let p = g.unary(Unary::Exp, shifted)?;
            softmax_weight = Some(g.sum(p)?);
            let w_eta = g.binary(Binary::Mult, eta_node, p, None)?;
            match (w, weight) {
                (Some(_), Some(gw)) => {
                    let wg = g.binary(Binary::Mult, w_eta, gw, None)?;
                    (g.sum(wg)?, Some(w_eta))
                }
                _ => (w_eta, None),
            }
        }
        Reduction::SumSoftMaxWeight { weight: wdim } => {
            let lse = lse_of_f(formula, inputs, options, interrupted)?;
            let l = declare(&mut g, outer, 1, lse, rows)?;
            let s = declare(&mut g, outer, wdim, values_of(&value), rows)?;
            let gw = weight.ok_or_else(|| Error::Internal("SumSoftMaxWeight without weight".into()))?;
            let shifted = g.binary(Binary::Subtract, f, l, None)?;
            let p = g.unary(Unary::Exp, shifted)?;
            softmax_weight = Some(p);
            let e_g = g.binary(Binary::Mult, p, eta_node, None)?;
            let centred = g.binary(Binary::Subtract, gw, s, None)?;
            let c = g.binary(Binary::Mult, centred, eta_node, None)?;
            let c = g.sum(c)?;
            (g.binary(Binary::Mult, p, c, None)?, Some(e_g))
        }
        Reduction::MaxSumShiftExp { .. } => return Err(Error::Internal("Max_SumShiftExp gradient".into())),
        Reduction::MinMax { dim, .. } | Reduction::KMin { dim, .. } => {
            let k = formula.reduction.k().unwrap_or(1);
            let selected = selection
                .as_ref()
                .map(|(_, idx)| idx.iter().map(|&i| if i == i32::MIN { -1.0 } else { (i - 1) as f64 }).collect())
                .ok_or_else(|| Error::Internal("selection reduction without indices".into()))?;
            let sigma = declare(&mut g, outer, k * dim, selected, rows)?;
            let positions: Vec<f64> = (0..inner).map(|r| r as f64).collect();
            let j = declare(&mut g, formula.axis.inner(), 1, positions, inner)?;
            let mut e = None;
            for r in 0..k {
                let (eta_r, sigma_r) = (slice(&mut g, eta_node, r * dim, dim)?, slice(&mut g, sigma, r * dim, dim)?);
                let hit = g.binary(Binary::Equal, j, sigma_r, None)?;
                let term = g.binary(Binary::Mult, eta_r, hit, None)?;
                e = Some(match e {
                    None => term,
                    Some(acc) => g.binary(Binary::Add, acc, term, None)?,
                });
            }
            (e.ok_or_else(|| Error::Internal("K = 0".into()))?, None)
        }
    };
    let grad_of = |g: &mut Graph, p: usize| -> Result<NodeId> {
        let v = g.var(p);
        let mut d = g.grad(f, v, e_f, None)?;
        if let (Some(gw), Some(eg)) = (weight, e_g) {
            let dg = g.grad(gw, v, eg, None)?;
            d = g.binary(Binary::Add, d, dg, None)?;
        }
        if let Some(w) = softmax_weight {
            let minus_w = g.unary(Unary::Minus, w)?;
            let zero = g.constant(0.0);
            d = g.ternary(Ternary::IfElse, minus_w, zero, d, None)?;
        }
        Ok(d)
    };

    let mut all_inputs: Vec<Input<'_>> = inputs.to_vec();
    for x in &extras {
        all_inputs.push(Input::matrix(&x.values, x.nrow, x.info.dim));
    }
    let mut gradients: Vec<Option<Matrix>> = vec![None; wrt.len()];
    // Pass 1: variables of the output index and parameters; pass 2: variables
    // of the reduced index (transposed).
    for same_axis in [true, false] {
        let along_outer = |c: Cat| c == outer || c == Cat::P;
        let members: Vec<usize> = (0..wrt.len()).filter(|&k| along_outer(vars[wrt[k]].cat) == same_axis).collect();
        if members.is_empty() {
            continue;
        }
        let mut root: Option<NodeId> = None;
        for &k in &members {
            let d = grad_of(&mut g, wrt[k])?;
            root = Some(match root {
                None => d,
                Some(r) => g.concat(r, d),
            });
        }
        let root = root.ok_or_else(|| Error::Internal("empty gradient pass".into()))?;
        let total = g.dim(root);
        let axis = if same_axis { formula.axis } else { flip(formula.axis) };
        let pass =
            Formula { graph: g.clone(), reduction: Reduction::Sum { dim: total }, axis, roots: vec![root], grad: None };
        let out = evaluate(&pass, &all_inputs, options, interrupted)?;
        let (_, values) = out.values.ok_or_else(|| Error::Internal("gradient pass without values".into()))?;
        let mut col = 0;
        for &k in &members {
            let dim = vars[wrt[k]].dim;
            let block = &values[col * out.rows..(col + dim) * out.rows];
            gradients[k] = Some(if vars[wrt[k]].cat == Cat::P {
                let sums = (0..dim).map(|c| block[c * out.rows..(c + 1) * out.rows].iter().sum()).collect();
                Matrix { nrow: 1, ncol: dim, values: sums }
            } else {
                Matrix { nrow: out.rows, ncol: dim, values: block.to_vec() }
            });
            col += dim;
        }
    }
    let gradients =
        gradients.into_iter().zip(wrt).map(|(m, &p)| m.map_or_else(|| zero(&vars[p]), Ok)).collect::<Result<_>>()?;
    Ok(ValueAndGradient { value, gradients })
}

/// Evaluates a formula written `Grad(R, v, e)` around a reduction R (see
/// [`Formula::grad`]): the gradient of Σ_o e_o · R_o with respect to v, by
/// [`value_and_gradient`] with η = e (the first columns of e when it also
/// covers R's indices; e broadcast to every row when it is a parameter).
/// The gradient of an Arg reduction is zero.
pub fn evaluate_grad_around(
    formula: &Formula,
    inputs: &[Input<'_>],
    options: &Options,
    interrupted: &mut dyn FnMut() -> bool,
) -> Result<Output> {
    let around = formula.grad.ok_or_else(|| Error::Internal("not a gradient formula".into()))?;
    let inner = Formula { grad: None, ..formula.clone() };
    let vars = inner.variables()?;
    let (ni, nj) = check_inputs(&vars, inputs)?;
    let (v, e) = (&vars[around.var], &vars[around.eta]);
    let rows = if inner.axis == Axis::J { ni } else { nj };
    let (value_cols, _) = inner.reduction.output_cols();
    let out = |m: Matrix| Output { rows: m.nrow, values: Some((m.ncol, m.values)), indices: None };
    if value_cols == 0 {
        let n = match v.cat {
            Cat::I => ni,
            Cat::J => nj,
            Cat::P => 1,
        };
        return Ok(out(Matrix { nrow: n, ncol: v.dim, values: try_filled(size(n, v.dim), 0.0)? }));
    }
    let values = inputs[around.eta].values;
    let eta: Vec<f64> = if e.cat == Cat::P {
        let mut eta = crate::buffer::try_with_capacity(size(rows, value_cols))?;
        for &x in &values[..value_cols] {
            eta.extend(std::iter::repeat_n(x, rows));
        }
        eta
    } else {
        values[..rows * value_cols].to_vec()
    };
    let mut res = value_and_gradient(&inner, inputs, &[around.var], Some(&eta), false, options, interrupted)?;
    let m = res.gradients.pop().ok_or_else(|| Error::Internal("no gradient".into()))?;
    Ok(out(m))
}

fn flip(axis: Axis) -> Axis {
    match axis {
        Axis::I => Axis::J,
        Axis::J => Axis::I,
    }
}

/// Components `start .. start + len` of x.
fn slice(g: &mut Graph, x: NodeId, start: usize, len: usize) -> Result<NodeId> {
    g.gather(x, (start..start + len).map(|c| Some(c as u32)).collect())
}

/// LogSumExp of F over the reduced index (for SumSoftMaxWeight gradients).
fn lse_of_f(
    formula: &Formula,
    inputs: &[Input<'_>],
    options: &Options,
    interrupted: &mut dyn FnMut() -> bool,
) -> Result<Vec<f64>> {
    let lse = Formula {
        graph: formula.graph.clone(),
        reduction: Reduction::LogSumExp { dim: 1, weight: None },
        axis: formula.axis,
        roots: vec![formula.roots[0]],
        grad: None,
    };
    let out = evaluate(&lse, inputs, options, interrupted)?;
    out.values.map(|(_, v)| v).ok_or_else(|| Error::Internal("LogSumExp without values".into()))
}
