//! Block-sparse reductions: which reduced indices each output row sees.
//!
//! A [`Ranges`] lists clusters of consecutive output rows; every row of a
//! cluster is reduced over the same intervals of the reduced index, and rows
//! outside every cluster are reduced over nothing (they get the reduction's
//! neutral value: 0 for a sum, +Inf for a min, NA for an arg-min).
//!
//! This is KeOps' `ranges` format for one reduction axis. For a reduction
//! over j, KeOps passes `(ranges_i, slices_i, redranges_j)`: `ranges_i` is an
//! `Mc × 2` array of half-open row intervals `[start, end)` of the output
//! clusters, `slices_i[k]` is the cumulative number of reduced intervals up
//! to and including cluster k, and cluster k is reduced over the intervals
//! `redranges_j[slices_i[k-1]..slices_i[k]]` (`slices_i[-1] = 0`).
//! [`Ranges::from_keops`] takes exactly those three arrays (0-based).

use std::ops::Range;

use crate::error::{Error, Result};

/// For each cluster of output rows, the sorted, disjoint intervals of the
/// reduced index it is reduced over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranges {
    rows: usize,
    inner: usize,
    clusters: Vec<(Range<usize>, Vec<Range<usize>>)>,
}

impl Ranges {
    /// Every output row reduced over every reduced index: the dense reduction.
    #[allow(clippy::single_range_in_vec_init)] // one interval, not a range of values
    pub fn dense(rows: usize, inner: usize) -> Ranges {
        Ranges { rows, inner, clusters: vec![(0..rows, vec![0..inner])] }
    }

    /// Builds ranges from KeOps' arrays (0-based, half-open intervals):
    /// the output clusters, the cumulative interval counts and the reduced
    /// intervals. Clusters must not overlap, the intervals of one cluster
    /// must not overlap (a sum would count the overlap twice), and every
    /// interval must lie within `rows` (clusters) or `inner` (reduced
    /// intervals). Empty intervals are allowed and ignored.
    pub fn from_keops(
        out: &[(usize, usize)],
        slices: &[usize],
        red: &[(usize, usize)],
        rows: usize,
        inner: usize,
    ) -> Result<Ranges> {
        let bad = |m: String| Error::Input(format!("invalid ranges: {m}"));
        if slices.len() != out.len() {
            return Err(bad(format!(
                "{} output clusters but {} slice ends (one per cluster is needed)",
                out.len(),
                slices.len()
            )));
        }
        let mut clusters = Vec::with_capacity(out.len());
        let mut previous = 0;
        for (k, (&(start, end), &slice)) in out.iter().zip(slices).enumerate() {
            if start > end || end > rows {
                return Err(bad(format!(
                    "output cluster {} covers rows [{start}, {end}) but there are {rows} output rows",
                    k + 1
                )));
            }
            if slice < previous || slice > red.len() {
                return Err(bad(format!(
                    "slice ends must be non-decreasing and at most the number of reduced intervals ({}); \
                     cluster {} has {slice} after {previous}",
                    red.len(),
                    k + 1
                )));
            }
            let mut intervals: Vec<Range<usize>> = Vec::with_capacity(slice - previous);
            for &(s, e) in &red[previous..slice] {
                if s > e || e > inner {
                    return Err(bad(format!(
                        "reduced interval [{s}, {e}) of cluster {} is outside the {inner} reduced indices",
                        k + 1
                    )));
                }
                if s < e {
                    intervals.push(s..e);
                }
            }
            intervals.sort_by_key(|r| r.start);
            if let Some(w) = intervals.windows(2).find(|w| w[1].start < w[0].end) {
                return Err(bad(format!(
                    "reduced intervals [{}, {}) and [{}, {}) of cluster {} overlap",
                    w[0].start,
                    w[0].end,
                    w[1].start,
                    w[1].end,
                    k + 1
                )));
            }
            // Touching intervals (kept neighbouring clusters) become one.
            let mut merged: Vec<Range<usize>> = Vec::with_capacity(intervals.len());
            for iv in intervals {
                match merged.last_mut() {
                    Some(last) if last.end == iv.start => last.end = iv.end,
                    _ => merged.push(iv),
                }
            }
            previous = slice;
            clusters.push((start..end, merged));
        }
        let mut order: Vec<usize> = (0..clusters.len()).filter(|&k| !clusters[k].0.is_empty()).collect();
        order.sort_by_key(|&k| clusters[k].0.start);
        if let Some(w) = order.windows(2).find(|w| clusters[w[1]].0.start < clusters[w[0]].0.end) {
            let (a, b) = (&clusters[w[0]].0, &clusters[w[1]].0);
            return Err(bad(format!(
                "output clusters {} [{}, {}) and {} [{}, {}) overlap",
                w[0] + 1,
                a.start,
                a.end,
                w[1] + 1,
                b.start,
                b.end
            )));
        }
        Ok(Ranges { rows, inner, clusters })
    }

    /// Checks that the ranges were built for `rows` output rows and `inner`
    /// reduced indices.
    pub fn check(&self, rows: usize, inner: usize) -> Result<()> {
        if self.rows != rows || self.inner != inner {
            return Err(Error::Input(format!(
                "the ranges were built for {} output rows and {} reduced indices, \
                 but the reduction has {rows} output rows and {inner} reduced indices",
                self.rows, self.inner
            )));
        }
        Ok(())
    }

    /// The clusters: output rows and their reduced intervals.
    pub fn clusters(&self) -> &[(Range<usize>, Vec<Range<usize>>)] {
        &self.clusters
    }

    /// Number of (output row, reduced index) pairs evaluated.
    pub fn pairs(&self) -> usize {
        self.clusters.iter().map(|(r, red)| r.len() * red.iter().map(|i| i.len()).sum::<usize>()).sum()
    }
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;

    #[test]
    fn keops_arrays_become_sorted_clusters() {
        let r = Ranges::from_keops(&[(0, 3), (3, 5)], &[2, 3], &[(6, 8), (0, 2), (2, 6)], 5, 8).unwrap();
        assert_eq!(r.clusters()[0], (0..3, vec![0..2, 6..8]));
        let touching = Ranges::from_keops(&[(0, 5)], &[3], &[(4, 6), (0, 2), (2, 4)], 5, 8).unwrap();
        assert_eq!(touching.clusters()[0], (0..5, vec![0..6]));
        assert_eq!(r.clusters()[1], (3..5, vec![2..6]));
        assert_eq!(r.pairs(), 3 * 4 + 2 * 4);
        assert_eq!(Ranges::dense(4, 7).pairs(), 28);
    }

    #[test]
    fn invalid_ranges_are_input_errors() {
        let err = |out: &[(usize, usize)], slices: &[usize], red: &[(usize, usize)]| {
            let e = Ranges::from_keops(out, slices, red, 5, 8).unwrap_err();
            assert_eq!(e.kind(), "input", "{e}");
            e.to_string()
        };
        assert!(err(&[(0, 6)], &[1], &[(0, 1)]).contains("5 output rows"));
        assert!(err(&[(0, 2)], &[1], &[(0, 9)]).contains("outside"));
        assert!(err(&[(0, 2)], &[2], &[(0, 4), (3, 5)]).contains("overlap"));
        assert!(err(&[(0, 3), (2, 4)], &[1, 2], &[(0, 1), (1, 2)]).contains("overlap"));
        assert!(err(&[(0, 3)], &[], &[]).contains("slice"));
        assert!(err(&[(0, 3), (3, 4)], &[2, 1], &[(0, 1), (1, 2)]).contains("non-decreasing"));
        assert!(err(&[(0, 3)], &[3], &[(0, 1)]).contains("non-decreasing"));
        assert!(err(&[(3, 2)], &[0], &[]).contains("covers"));
    }
}
