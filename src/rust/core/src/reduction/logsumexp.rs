//! LogSumExp (plain or weighted) and SumSoftMaxWeight, with a running maximum
//! for stability.
//!
//! For each group (a component of F, or the single component when there is a
//! weight) the state holds the running maximum m and sums
//! s_ch = Σ_j exp(F(j) − m) w_ch(j) over channels ch, where w is 1 or a
//! component of the weight G. When a larger maximum m' arrives, every s_ch is
//! rescaled by exp(m − m'). Then:
//! - LogSumExp:               out_c = m_c + log s_c
//! - weighted LogSumExp:      out_e = m + log Σ_j exp(F − m) G_e
//! - SumSoftMaxWeight:        out_e = (Σ_j exp(F − m) G_e) / (Σ_j exp(F − m))
//! - Max_SumShiftExp(Weight): out = (m, Σ_j exp(F − m) G_e), the state itself
//!
//! `-Inf` entries contribute 0 (a row of only `-Inf` gives `-Inf`), `+Inf`
//! gives `+Inf`, NaN propagates.
//!
//! State layout: `groups` maxima, then `groups × channels` sums.

use super::sum::sum_run;
use super::{Reduction, Slot, Tile};

/// `e[t] = exp(row[t] - m)`, with the vector exp where the CPU has one.
#[inline(always)]
fn exp_shifted<T: Real>(row: &[T], m: T, e: &mut [T]) {
    let mut d = [T::zero(); MAX_RUN];
    let d = &mut d[..row.len()];
    for (o, &x) in d.iter_mut().zip(row) {
        *o = x - m;
    }
    crate::cpu::program::exp_map_simd(crate::cpu::program::detected_simd(), d, T::one(), e);
}

/// Longest tile run handled by the vectorized path: the CPU engine's largest
/// tile.
const MAX_RUN: usize = crate::cpu::program::MAX_TILE;
use crate::Real;

#[derive(Debug, Clone, Copy)]
pub struct Layout {
    groups: usize,
    /// Softmax: channel 0 is the normalizer (weight 1), then the G components.
    softmax: bool,
    /// Number of components of G (0 when unweighted).
    weights: usize,
    /// Max_SumShiftExp: the output is the state (m, s).
    raw: bool,
}

impl Layout {
    pub fn of(reduction: Reduction) -> Layout {
        match reduction {
            Reduction::LogSumExp { dim, weight: None } => {
                Layout { groups: dim, softmax: false, weights: 0, raw: false }
            }
            Reduction::LogSumExp { weight: Some(e), .. } => {
                Layout { groups: 1, softmax: false, weights: e, raw: false }
            }
            Reduction::SumSoftMaxWeight { weight } => Layout { groups: 1, softmax: true, weights: weight, raw: false },
            Reduction::MaxSumShiftExp { weight } => {
                Layout { groups: 1, softmax: false, weights: weight.unwrap_or(0), raw: true }
            }
            other => unreachable!("not a log-sum-exp reduction: {other:?}"),
        }
    }

    fn channels(&self) -> usize {
        if self.weights == 0 {
            1
        } else {
            self.weights + usize::from(self.softmax)
        }
    }

    pub fn state_len(&self) -> usize {
        self.groups * (1 + self.channels())
    }

    pub fn init<T: Real>(&self, v: &mut [T]) {
        v[..self.groups].fill(T::neg_infinity());
        v[self.groups..].fill(T::zero());
    }

    /// The weight of channel `ch` at position `t` of the tile.
    #[inline]
    fn weight<T: Real>(&self, tile: &Tile<'_, T>, ch: usize, t: usize) -> T {
        let e = if self.softmax { ch.wrapping_sub(1) } else { ch };
        match tile.g {
            Some(g) if self.weights > 0 && e != usize::MAX => g[e * tile.stride + t],
            _ => T::one(),
        }
    }

    #[inline(always)]
    pub fn push<T: Real>(&self, v: &mut [T], tile: &Tile<'_, T>) {
        let channels = self.channels();
        let (maxima, sums) = v.split_at_mut(self.groups);
        for (gi, m) in maxima.iter_mut().enumerate() {
            let row = tile.f_row(gi);
            let sums = &mut sums[gi * channels..(gi + 1) * channels];
            let tile_max = row.iter().fold(T::neg_infinity(), |a, &x| if x > a { x } else { a });
            if tile_max > *m {
                let scale = (*m - tile_max).exp();
                sums.iter_mut().for_each(|s| *s = *s * scale);
                *m = tile_max;
            }
            if m.is_finite() && row.len() <= MAX_RUN {
                // The common case, branch-free so that exp vectorizes:
                // exp(x - m) is 0 for -Inf entries and NaN for NaN ones.
                let mut e = [T::zero(); MAX_RUN];
                let e = &mut e[..row.len()];
                exp_shifted(row, *m, e);
                if channels == 1 && self.weights == 0 {
                    sums[0] = sums[0] + sum_run(e);
                } else {
                    for (ch, s) in sums.iter_mut().enumerate() {
                        let mut acc = T::zero();
                        for (t, &et) in e.iter().enumerate() {
                            acc = acc + et * self.weight(tile, ch, t);
                        }
                        *s = *s + acc;
                    }
                }
                continue;
            }
            // exp(x - m) with exp(m - m) = 1 even for m = +Inf, and 0 for -Inf entries.
            let at_max = if *m == T::neg_infinity() { T::zero() } else { T::one() };
            for (t, &x) in row.iter().enumerate() {
                let e = if x == *m { at_max } else { (x - *m).fast_exp() };
                if channels == 1 && self.weights == 0 {
                    sums[0] = sums[0] + e;
                } else {
                    for (ch, s) in sums.iter_mut().enumerate() {
                        *s = *s + e * self.weight(tile, ch, t);
                    }
                }
            }
        }
    }

    /// Slots of a chunk of weight components (see
    /// `Monoid::output_chunk`; F of dimension 1): the maximum and the
    /// softmax normalizer are the same in every chunk, the weighted sums are
    /// the chunk's own.
    pub fn chunk_slots(&self) -> Vec<Slot> {
        debug_assert!(self.groups == 1 && self.weights > 0);
        let fixed = 1 + usize::from(self.softmax);
        (0..fixed).map(|s| Slot::Fixed { from: s, to: s }).chain([Slot::Components { from: fixed, to: fixed }]).collect()
    }

    /// CUDA C: initial state and the push of one value (`F`, weights `G`),
    /// as [`Layout::push`] for a tile of one element.
    pub fn cuda(&self) -> (String, String) {
        let (groups, channels) = (self.groups, self.channels());
        let init = format!(
            "for (int c = 0; c < {groups}; c++) acc[c] = -(T)INFINITY; for (int c = {groups}; c < {}; c++) acc[c] = (T)0;",
            self.state_len()
        );
        let weight = match (self.weights, self.softmax) {
            (0, _) => "(T)1".to_string(),
            (_, true) => "(ch == 0 ? (T)1 : G[ch - 1])".to_string(),
            (_, false) => "G[ch]".to_string(),
        };
        let push = format!(
            "for (int gi = 0; gi < {groups}; gi++) {{ T x = F[gi]; T* s = acc + {groups} + gi * {channels}; \
             if (x > acc[gi]) {{ T sc = exp{{f}}(acc[gi] - x); for (int ch = 0; ch < {channels}; ch++) s[ch] *= sc; acc[gi] = x; }} \
             T e = (x == acc[gi]) ? (acc[gi] == -(T)INFINITY ? (T)0 : (T)1) : exp{{f}}(x - acc[gi]); \
             for (int ch = 0; ch < {channels}; ch++) s[ch] += e * {weight}; }}"
        );
        (init, push)
    }

    pub fn merge<T: Real>(&self, v: &mut [T], other: &[T]) {
        let channels = self.channels();
        let (maxima, sums) = v.split_at_mut(self.groups);
        let (other_maxima, other_sums) = other.split_at(self.groups);
        for gi in 0..self.groups {
            let (m, om) = (&mut maxima[gi], other_maxima[gi]);
            let sums = &mut sums[gi * channels..(gi + 1) * channels];
            if om > *m {
                let scale = (*m - om).exp();
                sums.iter_mut().for_each(|s| *s = *s * scale);
                *m = om;
            }
            let scale = if om == *m { T::one() } else { (om - *m).exp() };
            for (s, &o) in sums.iter_mut().zip(&other_sums[gi * channels..(gi + 1) * channels]) {
                *s = *s + o * scale;
            }
        }
    }

    pub fn finalize<T: Real>(&self, v: &[T], out: &mut [f64]) {
        let channels = self.channels();
        let (maxima, sums) = v.split_at(self.groups);
        for gi in 0..self.groups {
            let m = maxima[gi].to_double();
            let sums = &sums[gi * channels..(gi + 1) * channels];
            if self.raw {
                out[0] = m;
                for (o, s) in out[1..].iter_mut().zip(sums) {
                    *o = s.to_double();
                }
            } else if self.softmax {
                let norm = sums[0].to_double();
                for (o, s) in out.iter_mut().zip(&sums[1..]) {
                    *o = s.to_double() / norm;
                }
            } else if self.weights > 0 {
                for (o, s) in out.iter_mut().zip(sums) {
                    *o = m + s.to_double().ln();
                }
            } else {
                out[gi] = m + sums[0].to_double().ln();
            }
        }
    }
}
