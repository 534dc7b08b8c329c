//! Reductions as monoids, shared by every backend.
//!
//! A reduction keeps, for each output row, a state of `T` values and `usize`
//! indices. [`Monoid::init`] sets the neutral state, [`Monoid::push`] folds a
//! tile of consecutive values of the reduced index into it, [`Monoid::merge`]
//! combines the states of two disjoint ranges (earlier range first), and
//! [`Monoid::finalize`] turns a state into the output row. Splitting the
//! reduced range and merging gives the same result as one pass (tested below),
//! which is what lets backends parallelize over the reduced index.

pub mod kmin;
pub mod logsumexp;
pub mod minmax;
pub mod sum;

use crate::error::{Error, Result};
use crate::Real;

/// How sum-type reductions accumulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SumScheme {
    /// One running sum, one term at a time (error grows like N ε).
    Direct,
    /// Each tile of the reduced index is summed on its own, then added to the
    /// running sum (error grows like (tile + N / tile) ε). The default.
    Block,
    /// Kahan-compensated running sum (error independent of N, slower).
    Kahan,
}

impl SumScheme {
    pub fn from_name(name: &str) -> Result<SumScheme> {
        match name {
            "auto" | "block" | "block_sum" => Ok(SumScheme::Block),
            "direct" | "direct_sum" => Ok(SumScheme::Direct),
            "kahan" | "kahan_scheme" => Ok(SumScheme::Kahan),
            other => Err(Error::Option(format!(
                "unknown sum scheme '{other}'; use \"auto\", \"block\", \"kahan\" or \"direct\""
            ))),
        }
    }
}

/// The argument pattern of a reduction in formula strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signature {
    /// `Name(F, axis)`
    Axis,
    /// `Name(F, K, axis)`
    KAxis,
    /// `Name(F, axis)` or `Name(F, axis, G)`
    AxisOptWeight,
    /// `Name(F, axis, G)` (or `Name(F, G, axis)`)
    AxisWeight,
    /// `Name(dim, axis)`: Zero_Reduction.
    DimAxis,
}

impl Signature {
    pub fn usage(self) -> &'static str {
        match self {
            Signature::Axis => "(F, axis)",
            Signature::KAxis => "(F, K, axis)",
            Signature::AxisOptWeight => "(F, axis), (F, axis, G) or (F, G, axis)",
            Signature::AxisWeight => "(F, axis, G) or (F, G, axis)",
            Signature::DimAxis => "(dim, axis)",
        }
    }
}

const TABLE: &[(&str, Signature)] = &[
    ("Sum_Reduction", Signature::Axis),
    ("Min_Reduction", Signature::Axis),
    ("Max_Reduction", Signature::Axis),
    ("ArgMin_Reduction", Signature::Axis),
    ("ArgMax_Reduction", Signature::Axis),
    ("Min_ArgMin_Reduction", Signature::Axis),
    ("Max_ArgMax_Reduction", Signature::Axis),
    ("KMin_Reduction", Signature::KAxis),
    ("ArgKMin_Reduction", Signature::KAxis),
    ("KMin_ArgKMin_Reduction", Signature::KAxis),
    ("LogSumExp_Reduction", Signature::AxisOptWeight),
    ("SumSoftMaxWeight_Reduction", Signature::AxisWeight),
    ("LogSumExpWeight_Reduction", Signature::AxisWeight),
    ("Max_SumShiftExp_Reduction", Signature::Axis),
    ("Max_SumShiftExpWeight_Reduction", Signature::AxisWeight),
    ("Zero_Reduction", Signature::DimAxis),
];

/// A reduction with the dimensions of the formula(s) it reduces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduction {
    /// Σ_j F_ij, component-wise.
    Sum { dim: usize },
    /// min_j F_ij (or max), component-wise, with the value and/or the index.
    MinMax { max: bool, dim: usize, values: bool, indices: bool },
    /// The K smallest values of F_ij over j, component-wise, sorted ascending,
    /// with the values and/or indices.
    KMin { k: usize, dim: usize, values: bool, indices: bool },
    /// log Σ_j exp(F_ij) component-wise, or log Σ_j exp(F_ij) G_ij when a
    /// weight G is given (F of dimension 1, output of G's dimension).
    LogSumExp { dim: usize, weight: Option<usize> },
    /// Σ_j exp(F_ij) G_ij / Σ_j exp(F_ij), F of dimension 1.
    SumSoftMaxWeight { weight: usize },
    /// KeOps' Max_SumShiftExp(Weight)_Reduction, the state of the stable
    /// log-sum-exp itself: (m_i, s_i) with m_i = max_j F_ij and
    /// s_i = Σ_j exp(F_ij − m_i) G_ij (G = 1 without weight), F of
    /// dimension 1; output m then s (1 + dim(G) columns).
    MaxSumShiftExp { weight: Option<usize> },
}

impl Reduction {
    pub fn known_names() -> Vec<&'static str> {
        TABLE.iter().map(|(n, _)| *n).collect()
    }

    pub fn signature(name: &str) -> Option<Signature> {
        TABLE.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
    }

    /// Builds the reduction `name` for formulas of dimensions `dims` (F, then G).
    pub fn new(name: &str, k: Option<usize>, dims: &[usize], column: usize) -> Result<Reduction> {
        let dim = dims[0];
        let weight = dims.get(1).copied();
        let scalar_f = |what: &str| -> Result<()> {
            if dim == 1 {
                Ok(())
            } else {
                Err(Error::dimension(
                    format!("{name}: the formula F must have dimension 1 {what}, got dimension {dim}"),
                    Some(column),
                ))
            }
        };
        let minmax = |max, values, indices| Reduction::MinMax { max, dim, values, indices };
        let kmin = |values, indices| Reduction::KMin { k: k.unwrap_or(1), dim, values, indices };
        Ok(match name {
            "Sum_Reduction" => Reduction::Sum { dim },
            "Min_Reduction" => minmax(false, true, false),
            "Max_Reduction" => minmax(true, true, false),
            "ArgMin_Reduction" => minmax(false, false, true),
            "ArgMax_Reduction" => minmax(true, false, true),
            "Min_ArgMin_Reduction" => minmax(false, true, true),
            "Max_ArgMax_Reduction" => minmax(true, true, true),
            "KMin_Reduction" => kmin(true, false),
            "ArgKMin_Reduction" => kmin(false, true),
            "KMin_ArgKMin_Reduction" => kmin(true, true),
            "LogSumExp_Reduction" => {
                if weight.is_some() {
                    scalar_f("when a weight G is given")?;
                }
                Reduction::LogSumExp { dim, weight }
            }
            "SumSoftMaxWeight_Reduction" => {
                scalar_f("")?;
                Reduction::SumSoftMaxWeight { weight: weight.unwrap_or(1) }
            }
            "LogSumExpWeight_Reduction" => {
                scalar_f("when a weight G is given")?;
                Reduction::LogSumExp { dim, weight }
            }
            "Max_SumShiftExp_Reduction" | "Max_SumShiftExpWeight_Reduction" => {
                scalar_f("")?;
                Reduction::MaxSumShiftExp { weight }
            }
            // Zero_Reduction(dim, axis): the Sum of a zero vector.
            "Zero_Reduction" => Reduction::Sum { dim },
            other => return Err(Error::formula(format!("unknown reduction '{other}'"), Some(column))),
        })
    }

    /// Number of value columns and index columns of the output.
    pub fn output_cols(&self) -> (usize, usize) {
        let cols = |on: bool, n: usize| if on { n } else { 0 };
        match *self {
            Reduction::Sum { dim } => (dim, 0),
            Reduction::MinMax { dim, values, indices, .. } => (cols(values, dim), cols(indices, dim)),
            Reduction::KMin { k, dim, values, indices } => (cols(values, k * dim), cols(indices, k * dim)),
            Reduction::LogSumExp { dim, weight } => (weight.unwrap_or(dim), 0),
            Reduction::SumSoftMaxWeight { weight } => (weight, 0),
            Reduction::MaxSumShiftExp { weight } => (1 + weight.unwrap_or(1), 0),
        }
    }

    /// The K of KMin-type reductions.
    pub fn k(&self) -> Option<usize> {
        match *self {
            Reduction::KMin { k, .. } => Some(k),
            _ => None,
        }
    }
}

/// A reduction with its accumulation scheme: what backends drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Monoid {
    pub reduction: Reduction,
    pub scheme: SumScheme,
}

/// Output chunking (CUDA): a reduction whose output has many components is
/// computed a chunk of `width` components at a time, by `monoid`, the same
/// reduction on `width` components. `slots` say where that chunk's state
/// goes in the full state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputChunk {
    pub monoid: Monoid,
    pub width: usize,
    /// Which formula holds the components: 0 for F, 1 for the weights G.
    pub root: usize,
    /// Its full dimension.
    pub dim: usize,
    pub slots: Vec<Slot>,
}

/// A reduction in CUDA C (see [`Monoid::cuda`]).
pub struct CudaCode {
    pub init: String,
    pub push: String,
    pub end_tile: String,
}

/// Where slots of a chunk's state go in the full state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Slot `from` goes to slot `to`: a value every chunk computes alike
    /// (a running maximum).
    Fixed { from: usize, to: usize },
    /// Slots `from + k`, k < width, go to `to + first + k`, where `first` is
    /// the chunk's first component; nowhere past the last component.
    Components { from: usize, to: usize },
}

/// Index slot not yet filled (an empty range).
pub const EMPTY: usize = usize::MAX;

/// A tile of formula values handed to [`Monoid::push`]: component `c` of the
/// value at reduced index `start + t` is `f[c * stride + t]` for `t < len`;
/// `g` is the weight formula, laid out the same way.
pub struct Tile<'a, T> {
    pub f: &'a [T],
    pub g: Option<&'a [T]>,
    pub stride: usize,
    pub len: usize,
    pub start: usize,
}

impl<'a, T> Tile<'a, T> {
    /// The `len` values of component `c` of `f`.
    pub fn f_row(&self, c: usize) -> &'a [T] {
        &self.f[c * self.stride..c * self.stride + self.len]
    }
}

impl Monoid {
    /// Whether the reduction selects values (Min, Max, KMin and their Arg
    /// forms): its result does not depend on how the reduced range is split.
    pub fn is_selection(&self) -> bool {
        matches!(self.reduction, Reduction::MinMax { .. } | Reduction::KMin { .. })
    }

    /// Sizes of the value part and the index part of one row's state.
    pub fn state_len(&self) -> (usize, usize) {
        match self.reduction {
            Reduction::Sum { dim } => sum::state_len(dim, self.scheme),
            Reduction::MinMax { dim, .. } => (dim, dim),
            Reduction::KMin { k, dim, .. } => (k * dim, k * dim),
            Reduction::LogSumExp { .. } | Reduction::SumSoftMaxWeight { .. } | Reduction::MaxSumShiftExp { .. } => {
                (logsumexp::Layout::of(self.reduction).state_len(), 0)
            }
        }
    }

    pub fn init<T: Real>(&self, v: &mut [T], k: &mut [usize]) {
        k.fill(EMPTY);
        match self.reduction {
            Reduction::Sum { .. } => v.fill(T::zero()),
            Reduction::MinMax { .. } | Reduction::KMin { .. } => v.fill(T::nan()),
            Reduction::LogSumExp { .. } | Reduction::SumSoftMaxWeight { .. } | Reduction::MaxSumShiftExp { .. } => {
                logsumexp::Layout::of(self.reduction).init(v)
            }
        }
    }

    /// Adds the tile's values to the states, by the build of the loops for
    /// the widest SIMD level the CPU has (the same operations in the same
    /// order at every level).
    pub fn push<T: Real>(&self, v: &mut [T], k: &mut [usize], tile: &Tile<'_, T>) {
        push_at(crate::cpu::program::detected_simd(), self, v, k, tile)
    }

    #[inline(always)]
    fn push_portable<T: Real>(&self, v: &mut [T], k: &mut [usize], tile: &Tile<'_, T>) {
        match self.reduction {
            Reduction::Sum { dim } => sum::push(self.scheme, dim, v, tile),
            Reduction::MinMax { max, dim, .. } => minmax::push(max, dim, v, k, tile),
            Reduction::KMin { k: kk, dim, .. } => kmin::push(kk, dim, v, k, tile),
            Reduction::LogSumExp { .. } | Reduction::SumSoftMaxWeight { .. } | Reduction::MaxSumShiftExp { .. } => {
                logsumexp::Layout::of(self.reduction).push(v, tile)
            }
        }
    }

    /// The chunked form of this reduction for output chunks of `width`
    /// components (see [`OutputChunk`]); `None` for reductions whose state
    /// does not split by component (min/max, K-min, plain log-sum-exp).
    pub fn output_chunk(&self, width: usize) -> Option<OutputChunk> {
        let (reduction, root, dim, slots) = match self.reduction {
            Reduction::Sum { dim } => {
                (Reduction::Sum { dim: width }, 0, dim, sum::chunk_slots(self.scheme, dim, width))
            }
            Reduction::LogSumExp { dim: 1, weight: Some(w) } => (
                Reduction::LogSumExp { dim: 1, weight: Some(width) },
                1,
                w,
                logsumexp::Layout::of(self.reduction).chunk_slots(),
            ),
            Reduction::SumSoftMaxWeight { weight } => (
                Reduction::SumSoftMaxWeight { weight: width },
                1,
                weight,
                logsumexp::Layout::of(self.reduction).chunk_slots(),
            ),
            _ => return None,
        };
        Some(OutputChunk { monoid: Monoid { reduction, scheme: self.scheme }, width, root, dim, slots })
    }

    /// CUDA C code of the state's initialization, of the push of one value
    /// and of the end of a tile of the reduced index, for the generated
    /// kernels: the state is `T acc[]` and `long long arg[]` (-1 for EMPTY),
    /// the value `T F[]` (and `T G[]`) at reduced index `long long j`; `{f}`
    /// is the single-precision suffix.
    pub fn cuda(&self) -> CudaCode {
        let ((init, push), end_tile) = match self.reduction {
            Reduction::Sum { dim } => (sum::cuda(self.scheme, dim), sum::cuda_end_tile(self.scheme, dim)),
            Reduction::MinMax { max, dim, .. } => (minmax::cuda(max, dim), String::new()),
            Reduction::KMin { k, dim, .. } => (kmin::cuda(k, dim), String::new()),
            Reduction::LogSumExp { .. } | Reduction::SumSoftMaxWeight { .. } | Reduction::MaxSumShiftExp { .. } => {
                (logsumexp::Layout::of(self.reduction).cuda(), String::new())
            }
        };
        CudaCode { init, push, end_tile }
    }

    /// Folds the state of a later range (`ov`, `ok`) into (`v`, `k`).
    pub fn merge<T: Real>(&self, v: &mut [T], k: &mut [usize], ov: &[T], ok: &[usize]) {
        match self.reduction {
            Reduction::Sum { dim } => sum::merge(self.scheme, dim, v, ov),
            Reduction::MinMax { max, .. } => minmax::merge(max, v, k, ov, ok),
            Reduction::KMin { k: kk, dim, .. } => kmin::merge(kk, dim, v, k, ov, ok),
            Reduction::LogSumExp { .. } | Reduction::SumSoftMaxWeight { .. } | Reduction::MaxSumShiftExp { .. } => {
                logsumexp::Layout::of(self.reduction).merge(v, ov)
            }
        }
    }

    /// Writes the output row: values (as f64) and 1-based indices (R's NA,
    /// `i32::MIN`, where a range was empty).
    pub fn finalize<T: Real>(&self, v: &[T], k: &[usize], values: &mut [f64], indices: &mut [i32]) {
        match self.reduction {
            Reduction::Sum { dim } => sum::finalize(self.scheme, dim, v, values),
            Reduction::MinMax { max, values: want_v, indices: want_k, .. } => {
                minmax::finalize(max, want_v, want_k, v, k, values, indices)
            }
            Reduction::KMin { k: kk, dim, values: want_v, indices: want_k } => {
                kmin::finalize(kk, dim, want_v, want_k, v, k, values, indices)
            }
            Reduction::LogSumExp { .. } | Reduction::SumSoftMaxWeight { .. } | Reduction::MaxSumShiftExp { .. } => {
                logsumexp::Layout::of(self.reduction).finalize(v, values)
            }
        }
    }
}

/// Converts a 0-based index to R's 1-based integer, NA for an empty slot.
pub(crate) fn r_index(k: usize) -> i32 {
    if k == EMPTY {
        i32::MIN
    } else {
        // Sizes are checked to fit R integers before evaluation.
        (k + 1) as i32
    }
}

crate::cpu::program::simd_kernels! {
    fn push_at<T>(monoid: &Monoid, v: &mut [T], k: &mut [usize], tile: &Tile<'_, T>) { monoid.push_portable(v, k, tile) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random values with ties, NaN and infinities sprinkled in.
    fn data(n: usize, dim: usize, seed: u64, specials: bool) -> Vec<f64> {
        let mut s = seed;
        (0..n * dim)
            .map(|i| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let u = ((s >> 11) as f64) / ((1u64 << 53) as f64);
                if specials && i % 17 == 3 {
                    return 0.25; // ties
                }
                if specials && i == 5 {
                    return f64::NEG_INFINITY;
                }
                4.0 * u - 2.0
            })
            .collect()
    }

    fn run(m: &Monoid, f: &[f64], g: Option<&[f64]>, n: usize, splits: &[usize]) -> (Vec<f64>, Vec<i32>) {
        let (sv, sk) = m.state_len();
        let (mut v, mut k) = (vec![0.0; sv], vec![0; sk]);
        m.init(&mut v, &mut k);
        let mut bounds = vec![0];
        bounds.extend_from_slice(splits);
        bounds.push(n);
        for w in bounds.windows(2) {
            let (lo, hi) = (w[0], w[1]);
            let (mut pv, mut pk) = (vec![0.0; sv], vec![0; sk]);
            m.init(&mut pv, &mut pk);
            // Push the range in tiles of 3, component-major with stride n.
            let mut t0 = lo;
            while t0 < hi {
                let len = (hi - t0).min(3);
                let tile = Tile { f: &f[t0..], g: g.map(|g| &g[t0..]), stride: n, len, start: t0 };
                m.push(&mut pv, &mut pk, &tile);
                t0 += len;
            }
            m.merge(&mut v, &mut k, &pv, &pk);
        }
        let (cv, ck) = m.reduction.output_cols();
        let (mut ov, mut ok) = (vec![0.0; cv], vec![0; ck]);
        m.finalize(&v, &k, &mut ov, &mut ok);
        (ov, ok)
    }

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| {
                (x.is_nan() && y.is_nan()) || x == y || (x - y).abs() <= 1e-12 * (1.0 + x.abs().max(y.abs()))
            })
    }

    fn all_monoids() -> Vec<Monoid> {
        let mut out = vec![];
        for scheme in [SumScheme::Block, SumScheme::Direct, SumScheme::Kahan] {
            out.push(Monoid { reduction: Reduction::Sum { dim: 2 }, scheme });
        }
        for max in [false, true] {
            for (values, indices) in [(true, false), (false, true), (true, true)] {
                out.push(Monoid { reduction: Reduction::MinMax { max, dim: 2, values, indices }, scheme: SumScheme::Block });
                out.push(Monoid { reduction: Reduction::KMin { k: 4, dim: 2, values, indices }, scheme: SumScheme::Block });
            }
        }
        out.push(Monoid { reduction: Reduction::LogSumExp { dim: 2, weight: None }, scheme: SumScheme::Block });
        out.push(Monoid { reduction: Reduction::LogSumExp { dim: 1, weight: Some(2) }, scheme: SumScheme::Block });
        out.push(Monoid { reduction: Reduction::SumSoftMaxWeight { weight: 2 }, scheme: SumScheme::Block });
        out.push(Monoid { reduction: Reduction::MaxSumShiftExp { weight: None }, scheme: SumScheme::Block });
        out.push(Monoid { reduction: Reduction::MaxSumShiftExp { weight: Some(2) }, scheme: SumScheme::Block });
        out
    }

    #[test]
    fn merge_of_split_ranges_equals_one_pass() {
        let n = 23;
        for specials in [false, true] {
            let f = data(n, 2, 7, specials);
            let g = data(n, 2, 11, false);
            for m in all_monoids() {
                let gw = matches!(m.reduction, Reduction::LogSumExp { weight: Some(_), .. } | Reduction::SumSoftMaxWeight { .. });
                let g = gw.then_some(g.as_slice());
                let one = run(&m, &f, g, n, &[]);
                for splits in [vec![1], vec![5, 6, 17], vec![22], vec![4, 8, 12, 16, 20]] {
                    let split = run(&m, &f, g, n, &splits);
                    assert!(close(&one.0, &split.0), "{m:?} {splits:?}: {:?} vs {:?}", one.0, split.0);
                    assert_eq!(one.1, split.1, "{m:?} {splits:?}");
                }
            }
        }
    }

    #[test]
    fn values_match_naive_definitions() {
        let n = 19;
        let f = data(n, 1, 3, false);
        let g = data(n, 1, 5, false);
        let block = SumScheme::Block;
        let red = |r| Monoid { reduction: r, scheme: block };
        let sum: f64 = f.iter().sum();
        assert!(close(&run(&red(Reduction::Sum { dim: 1 }), &f, None, n, &[]).0, &[sum]));
        let (mut best, mut arg) = (f64::INFINITY, 0);
        for (j, &x) in f.iter().enumerate() {
            if x < best {
                best = x;
                arg = j;
            }
        }
        let mm = run(&red(Reduction::MinMax { max: false, dim: 1, values: true, indices: true }), &f, None, n, &[]);
        assert_eq!((mm.0[0], mm.1[0]), (best, arg as i32 + 1));
        let mut sorted: Vec<(f64, usize)> = f.iter().copied().zip(0..).collect();
        sorted.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
        let km = run(&red(Reduction::KMin { k: 3, dim: 1, values: true, indices: true }), &f, None, n, &[]);
        assert_eq!(km.0, sorted[..3].iter().map(|s| s.0).collect::<Vec<_>>());
        assert_eq!(km.1, sorted[..3].iter().map(|s| s.1 as i32 + 1).collect::<Vec<_>>());
        let lse = f.iter().map(|x| x.exp()).sum::<f64>().ln();
        assert!(close(&run(&red(Reduction::LogSumExp { dim: 1, weight: None }), &f, None, n, &[]).0, &[lse]));
        let gpos: Vec<f64> = g.iter().map(|x| x + 3.0).collect();
        let wlse = f.iter().zip(&gpos).map(|(x, w)| x.exp() * w).sum::<f64>().ln();
        assert!(close(&run(&red(Reduction::LogSumExp { dim: 1, weight: Some(1) }), &f, Some(&gpos), n, &[]).0, &[wlse]));
        let ssmw = f.iter().zip(&g).map(|(x, w)| x.exp() * w).sum::<f64>() / f.iter().map(|x| x.exp()).sum::<f64>();
        assert!(close(&run(&red(Reduction::SumSoftMaxWeight { weight: 1 }), &f, Some(&g), n, &[]).0, &[ssmw]));
        let m = f.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let shifted = f.iter().map(|x| (x - m).exp()).sum::<f64>();
        assert!(close(&run(&red(Reduction::MaxSumShiftExp { weight: None }), &f, None, n, &[]).0, &[m, shifted]));
        let wshifted = f.iter().zip(&g).map(|(x, w)| (x - m).exp() * w).sum::<f64>();
        assert!(close(
            &run(&red(Reduction::MaxSumShiftExp { weight: Some(1) }), &f, Some(&g), n, &[]).0,
            &[m, wshifted]
        ));
    }

    #[test]
    fn special_values() {
        let red = |r| Monoid { reduction: r, scheme: SumScheme::Block };
        let lse = red(Reduction::LogSumExp { dim: 1, weight: None });
        let ninf = [f64::NEG_INFINITY; 4];
        assert_eq!(run(&lse, &ninf, None, 4, &[2]).0, vec![f64::NEG_INFINITY]);
        let with_inf = [0.0, f64::INFINITY, 1.0];
        assert_eq!(run(&lse, &with_inf, None, 3, &[1]).0, vec![f64::INFINITY]);
        let mixed = [f64::NEG_INFINITY, 0.0, f64::NEG_INFINITY];
        assert!(close(&run(&lse, &mixed, None, 3, &[1]).0, &[0.0]));
        // NaN ranks after every number in min/max-type reductions.
        let am = red(Reduction::MinMax { max: false, dim: 1, values: true, indices: true });
        let nan_first = [f64::NAN, 2.0, 1.0];
        let r = run(&am, &nan_first, None, 3, &[]);
        assert_eq!((r.0[0], r.1[0]), (1.0, 3));
        let all_nan = [f64::NAN, f64::NAN];
        let r = run(&am, &all_nan, None, 2, &[1]);
        assert!(r.0[0].is_nan());
        assert_eq!(r.1[0], 1);
        // Ties: the smallest index wins, whatever the split.
        let ties = [1.0, 0.0, 0.0, 0.0];
        assert_eq!(run(&am, &ties, None, 4, &[2]).1, vec![2]);
        // Empty range.
        let r = run(&am, &[], None, 0, &[]);
        assert_eq!((r.0[0], r.1[0]), (f64::INFINITY, i32::MIN));
        let mx = red(Reduction::MinMax { max: true, dim: 1, values: true, indices: false });
        assert_eq!(run(&mx, &[], None, 0, &[]).0, vec![f64::NEG_INFINITY]);
    }

    #[test]
    fn kahan_beats_direct_summation() {
        // 1 followed by many tiny terms that each round away in a direct sum.
        let n = 10_000;
        let mut f = vec![1e-16f64; n];
        f[0] = 1.0;
        let exact = 1.0 + (n - 1) as f64 * 1e-16;
        let sum = |scheme| run(&Monoid { reduction: Reduction::Sum { dim: 1 }, scheme }, &f, None, n, &[]).0[0];
        assert_eq!(sum(SumScheme::Direct), 1.0);
        assert!((sum(SumScheme::Kahan) - exact).abs() < 1e-15);
    }

    /// Infinite terms, overflows and NaN give the plain sum's IEEE result in
    /// every scheme, whatever the split: a Kahan compensation of Inf - Inf
    /// would turn an infinite sum into NaN.
    #[test]
    fn sums_with_infinite_terms_match_the_plain_sum() {
        let (inf, nan) = (f64::INFINITY, f64::NAN);
        let cases: &[&[f64]] = &[
            &[1.0, inf, 2.0],
            &[-inf, 1.0, 3.0, 4.0],
            &[inf, 1.0, -inf],
            &[1.0, nan, inf],
            &[1e308, 1e308, 1.0],
            &[-1e308, -1e308, 5.0, 1e-300],
        ];
        for f in cases {
            let plain: f64 = f.iter().sum();
            for scheme in [SumScheme::Block, SumScheme::Direct, SumScheme::Kahan] {
                let m = Monoid { reduction: Reduction::Sum { dim: 1 }, scheme };
                for splits in [vec![], vec![1], vec![2]] {
                    let got = run(&m, f, None, f.len(), &splits).0[0];
                    assert!(
                        got.to_bits() == plain.to_bits() || (got.is_nan() && plain.is_nan()),
                        "{scheme:?} {f:?} {splits:?}: {got}"
                    );
                }
            }
        }
    }
}
