//! Nearest neighbours in high dimension: squared distances by GEMM tiles
//! (see `cpu::gram`), then an exact re-rank, so that the result is the one
//! of the direct loop, bit for bit.
//!
//! For Min, ArgMin, KMin, ArgKMin (and their value-and-index forms) of a
//! formula that is SqDist(x, y) itself:
//!
//! 1. a first pass keeps, per output row, the `wide` = 2K + 8 smallest
//!    *approximate* distances a_j (GEMM expansion), in the reduction's order;
//! 2. each candidate's distance is recomputed by the direct program (the one
//!    the reduction would run without GEMM), and the candidates are sorted
//!    on those exact values d̂_j; the K first are the answer if no point left
//!    out can rank before them;
//! 3. rows for which that is not certain are reduced again by the direct loop.
//!
//! The certificate. With x̃, ỹ centred as in `cpu::gram`, xx = |x̃|², yy =
//! |ỹ|² and u the unit roundoff, the expansion and the direct loop each err
//! by at most about (2D + 8) u (xx + yy) (standard GEMM and summation
//! bounds); κ = (8D + 32) u bounds their sum with a factor 2 to spare. As
//! yy ≤ 2 d + 2 xx (triangle inequality), every point left out, whose
//! approximation is at least τ (the widest candidate's), has
//! d̂ ≥ (τ − 3κ xx) / (1 + 3κ). The re-rank is certain when the K-th exact
//! value d̂_K satisfies d̂_K (1 + 3κ) + 3κ xx < τ; it is also certain when τ is
//! not finite (then every point left out was computed directly: NaN and Inf
//! inputs take the direct sum in `cpu::gram`) or when every point is a
//! candidate. Ties keep the smallest index, as in the direct loop.

use std::ops::Range;

use rayon::prelude::*;

use super::gram::{point_major, Centred, Gram, GramPair};
use super::program::{Data, GemmUse, Program};
use super::{reduce_centred, reduce_ranges, thread_pool, States};
use crate::buffer::try_filled;
use crate::error::Result;
use crate::formula::{Axis, Graph, NodeId};
use crate::ranges::Ranges;
use crate::reduction::minmax::ranks_before;
use crate::reduction::{Monoid, Reduction, EMPTY};
use crate::Real;

/// A row's K best values and indices after the re-rank, `None` when its
/// certificate fails.
type Best<T> = Option<(Vec<T>, Vec<usize>)>;

/// Output rows per parallel task of the re-rank.
const RERANK_ROWS: usize = 256;

/// Extra candidates kept per row beyond K: 2K + 8 in all.
fn wide_k(k: usize) -> usize {
    2 * k + 8
}

/// The GEMM pass of a nearest-neighbour reduction that qualifies.
#[derive(Debug, Clone)]
pub struct Knn {
    /// The formula compiled with the SqDist by GEMM: its only root is the gram.
    approx: Program,
    gram: Gram,
}

impl Knn {
    /// The re-ranked GEMM scheme for this reduction, if it applies: a
    /// Min-type reduction (not Max) of SqDist(x, y) of dimension at least
    /// `min_dim`, x of the output index and y of the reduced index.
    pub fn new(graph: &Graph, roots: &[NodeId], axis: Axis, reduction: Reduction, min_dim: Option<usize>) -> Option<Knn> {
        let min_dim = min_dim?;
        let selects = match reduction {
            Reduction::MinMax { max, dim, .. } => !max && dim == 1,
            Reduction::KMin { dim, .. } => dim == 1,
            _ => false,
        };
        if !selects || roots.len() != 1 {
            return None;
        }
        let approx = Program::compile(graph, roots, axis, GemmUse { pair_min_dim: Some(min_dim), weights_min_cols: None, dot_weights: false });
        match approx.grams[..] {
            [gram] if gram.pair == GramPair::SqDist && approx.roots[0].offset == gram.out => Some(Knn { approx, gram }),
            _ => None,
        }
    }

    /// The reduction's states for all `rows` rows: the same as
    /// `reduce_ranges(exact, monoid, ...)` without ranges, and the number of
    /// rows that were reduced again by the direct loop.
    #[allow(clippy::too_many_arguments)]
    pub fn reduce<T: Real>(
        &self,
        exact: &Program,
        monoid: &Monoid,
        inputs: &[Data<'_, T>],
        rows: usize,
        inner: usize,
        threads: usize,
        interrupted: &mut dyn FnMut() -> bool,
    ) -> Result<(States<T>, usize)> {
        let k = monoid.state_len().0;
        let wide = wide_k(k).min(inner);
        let candidates = Monoid {
            reduction: Reduction::KMin { k: wide, dim: 1, values: true, indices: true },
            scheme: monoid.scheme,
        };
        let pool = thread_pool(threads)?;
        // One centring serves the GEMM pass and the certificate (which needs
        // |x̃|² with the GEMM's centre).
        let centred = pool.install(|| Centred::new(self.gram, inputs))?;
        let approx = reduce_centred(
            &self.approx, &candidates, inputs, rows, inner, None, std::slice::from_ref(&centred), threads, interrupted,
        )?;
        let mut states = States::new(monoid, rows)?;
        let kappa = (8 * self.gram.dim + 32) as f64 * T::epsilon().to_double() / 2.0;
        let blocks: Vec<Range<usize>> = (0..rows).step_by(RERANK_ROWS).map(|r| r..(r + RERANK_ROWS).min(rows)).collect();
        // The reduced-index points, point-major: gathering a candidate reads
        // one contiguous run instead of one cache line per component.
        let points = pool.install(|| point_major(&inputs[self.gram.y], self.gram.dim))?;
        // Per block: each row's K best after the re-rank, or None where the
        // certificate fails.
        let reranked: Vec<Vec<Best<T>>> = pool.install(|| {
            blocks
                .par_iter()
                .map(|rs| {
                    let mut scratch = try_filled(Some(exact.scratch_len), T::zero())?;
                    exact.run_fixed(&mut scratch, inputs);
                    let d = self.gram.dim;
                    let mut gathered = try_filled(wide.checked_mul(d), T::zero())?;
                    Ok(rs
                        .clone()
                        .map(|row| {
                            let (av, ak) = approx.row(row);
                            let ak: Vec<usize> = ak.iter().copied().filter(|&j| j != EMPTY).collect();
                            // The candidates' points side by side: the direct
                            // program computes their distances as one tile.
                            let n = ak.len();
                            for (t, &j) in ak.iter().enumerate() {
                                for (c, &v) in points[j * d..(j + 1) * d].iter().enumerate() {
                                    gathered[c * n + t] = v;
                                }
                            }
                            let mut local = inputs.to_vec();
                            local[self.gram.y] = Data { values: &gathered[..n * d], nrow: n };
                            let mut cands: Vec<(T, usize)> = Vec::with_capacity(n);
                            for start in (0..n).step_by(exact.tile) {
                                let len = exact.tile.min(n - start);
                                exact.run_inner(&mut scratch, &local, start, len);
                                exact.run_row(&mut scratch, &local, row, start, len);
                                let values = &scratch[exact.roots[0].offset..exact.roots[0].offset + len];
                                cands.extend(values.iter().copied().zip(ak[start..start + len].iter().copied()));
                            }
                            cands.sort_by(order);
                            let tau = av[wide - 1].to_double();
                            let certain = wide == inner
                                || !tau.is_finite()
                                || centred.expanded_norm(row).is_none_or(|xx| {
                                    cands[k - 1].0.to_double() * (1.0 + 3.0 * kappa) + 3.0 * kappa * xx < tau
                                });
                            certain.then(|| cands[..k].iter().copied().unzip())
                        })
                        .collect())
                })
                .collect::<Result<_>>()
        })?;
        let mut redo = Vec::new();
        for (rs, rows_best) in blocks.iter().zip(reranked) {
            for (row, best) in rs.clone().zip(rows_best) {
                match best {
                    Some((vs, ks)) => {
                        let (v, kx) = states.row_mut(row);
                        monoid.merge(v, kx, &vs, &ks);
                    }
                    None => redo.push(row),
                }
            }
        }
        if !redo.is_empty() {
            let ranges = rows_ranges(&redo, rows, inner)?;
            let direct = reduce_ranges(exact, monoid, inputs, rows, inner, Some(&ranges), threads, interrupted)?;
            for &row in &redo {
                let (dv, dk) = direct.row(row);
                let (v, kx) = states.row_mut(row);
                v.copy_from_slice(dv);
                kx.copy_from_slice(dk);
            }
        }
        Ok((states, redo.len()))
    }
}

/// The reduction's order on (value, index) pairs: NaN last, ties to the
/// smallest index.
fn order<T: Real>(a: &(T, usize), b: &(T, usize)) -> std::cmp::Ordering {
    if ranks_before(false, a.0, a.1, b.0, b.1) {
        std::cmp::Ordering::Less
    } else if ranks_before(false, b.0, b.1, a.0, a.1) {
        std::cmp::Ordering::Greater
    } else {
        std::cmp::Ordering::Equal
    }
}

/// Ranges reducing the (sorted) rows `redo` over every reduced index, runs
/// of consecutive rows as one cluster.
fn rows_ranges(redo: &[usize], rows: usize, inner: usize) -> Result<Ranges> {
    let mut clusters: Vec<(usize, usize)> = Vec::new();
    for &r in redo {
        match clusters.last_mut() {
            Some(last) if last.1 == r => last.1 = r + 1,
            _ => clusters.push((r, r + 1)),
        }
    }
    let slices: Vec<usize> = (1..=clusters.len()).collect();
    let red = vec![(0, inner); clusters.len()];
    Ranges::from_keops(&clusters, &slices, &red, rows, inner)
}
