//! CPU backend: tiled evaluation on rayon threads.
//!
//! The M × N problem is cut into work items: a block of output rows against a
//! chunk of the reduced index. Each item folds its chunk, tile by tile, into
//! fresh monoid states; the calling thread merges the items' states in a fixed
//! order. Items are processed in rounds (a few per thread); between rounds the
//! calling thread asks whether the user interrupted. Block and chunk sizes
//! depend on the problem only, never on the thread count, so every thread
//! count gives bit-identical results. Memory: the monoid states of the output
//! rows plus one scratch buffer per item — never an M × N buffer.

pub mod dense;
pub mod gram;
pub mod program;
pub mod rerank;
pub mod weights;

use std::ops::Range;
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use crate::buffer::try_filled;
use gram::{Centred, GramBlock};
use weights::WeightsBlock;
use crate::error::{Error, Result};
use crate::ranges::Ranges;
use crate::reduction::{Monoid, Tile};
use crate::Real;
pub use program::{Data, GemmUse, Program};

/// Output rows per work item.
const BLOCK_ROWS: usize = 32;
/// Output rows per work item when the program has GEMM pair terms.
const GRAM_BLOCK_ROWS: usize = 256;
/// The same for a selection (the kNN pass of `rerank`): each tile of the
/// reduced points is packed for the GEMM once per block of rows, and at
/// D = 784 that packing took a third of the GEMM time with 256 rows.
const GRAM_SELECTION_BLOCK_ROWS: usize = 1024;
/// Most output rows per work item (see [`short_block_rows`]).
const MAX_BLOCK_ROWS: usize = 4096;
/// Fewest reduced indices per work item of a selection (Min, KMin, ...).
const SELECTION_MIN_CHUNK: usize = 16384;
/// Elementary operations per work item (rows × reduced indices × cost per pair).
const ITEM_WORK: usize = 1 << 22;
/// Work items per thread in a round between interrupt checks.
const ITEMS_PER_THREAD_PER_ROUND: usize = 8;

/// Monoid states of `rows` output rows: values then indices, row-major.
pub struct States<T> {
    pub values: Vec<T>,
    pub indices: Vec<usize>,
    pub value_len: usize,
    pub index_len: usize,
}

impl<T: Real> States<T> {
    pub(crate) fn new(monoid: &Monoid, rows: usize) -> Result<States<T>> {
        let (value_len, index_len) = monoid.state_len();
        let mut s = States {
            values: try_filled(rows.checked_mul(value_len), T::zero())?,
            indices: try_filled(rows.checked_mul(index_len), 0)?,
            value_len,
            index_len,
        };
        for r in 0..rows {
            let (v, k) = s.row_mut(r);
            monoid.init(v, k);
        }
        Ok(s)
    }

    pub(crate) fn row_mut(&mut self, r: usize) -> (&mut [T], &mut [usize]) {
        (
            &mut self.values[r * self.value_len..(r + 1) * self.value_len],
            &mut self.indices[r * self.index_len..(r + 1) * self.index_len],
        )
    }

    /// The state of output row `r`: values and indices.
    pub fn row(&self, r: usize) -> (&[T], &[usize]) {
        (
            &self.values[r * self.value_len..(r + 1) * self.value_len],
            &self.indices[r * self.index_len..(r + 1) * self.index_len],
        )
    }
}

/// Reduces the formula compiled in `program` for `rows` output rows over
/// `inner` reduced indices. `interrupted` is called on the calling thread
/// between rounds; returning true stops with [`Error::Interrupted`].
#[allow(clippy::too_many_arguments)]
pub fn reduce<T: Real>(
    program: &Program,
    monoid: &Monoid,
    inputs: &[Data<'_, T>],
    rows: usize,
    inner: usize,
    threads: usize,
    interrupted: &mut dyn FnMut() -> bool,
) -> Result<States<T>> {
    reduce_ranges(program, monoid, inputs, rows, inner, None, threads, interrupted)
}

/// A work item: a block of output rows against a chunk of the reduced index,
/// made of one or more intervals (one for a dense reduction).
struct Item {
    rows: Range<usize>,
    cols: Vec<Range<usize>>,
}

/// Cuts each cluster into blocks of `block_rows` rows and its reduced
/// intervals into chunks of `chunk` indices. The dense reduction (one
/// cluster, one interval) gives the same items as before ranges existed,
/// so its results do not change. Items are produced lazily, one block of
/// rows at a time: listing them all would take memory proportional to M x N.
fn work_items(ranges: &Ranges, block_rows: usize, chunk: usize) -> impl Iterator<Item = Item> + '_ {
    ranges.clusters().iter().flat_map(move |(rows, red)| {
        let end = rows.end;
        rows.clone().step_by(block_rows).flat_map(move |r0| block_items(r0..(r0 + block_rows).min(end), red, chunk))
    })
}

/// The items of one block of rows: its reduced intervals cut into chunks.
fn block_items(r: Range<usize>, red: &[Range<usize>], chunk: usize) -> Vec<Item> {
    let mut items = Vec::new();
    let (mut cols, mut filled) = (Vec::new(), 0);
    for interval in red {
        let mut s = interval.start;
        while s < interval.end {
            let take = (interval.end - s).min(chunk - filled);
            cols.push(s..s + take);
            filled += take;
            s += take;
            if filled == chunk {
                items.push(Item { rows: r.clone(), cols: std::mem::take(&mut cols) });
                filled = 0;
            }
        }
    }
    if !cols.is_empty() {
        items.push(Item { rows: r, cols });
    }
    items
}

/// [`reduce`] restricted to block-sparse `ranges` (checked against `rows`
/// and `inner` when built): rows outside every cluster keep the neutral
/// state. `None` is the dense reduction.
#[allow(clippy::too_many_arguments)]
pub fn reduce_ranges<T: Real>(
    program: &Program,
    monoid: &Monoid,
    inputs: &[Data<'_, T>],
    rows: usize,
    inner: usize,
    ranges: Option<&Ranges>,
    threads: usize,
    interrupted: &mut dyn FnMut() -> bool,
) -> Result<States<T>> {
    let centred = thread_pool(threads)?
        .install(|| program.grams.iter().map(|&g| Centred::new(g, inputs)).collect::<Result<Vec<_>>>())?;
    reduce_centred(program, monoid, inputs, rows, inner, ranges, &centred, threads, interrupted)
}

/// [`reduce_ranges`] with the program's GEMM operands already centred
/// (`centred[k]` for `program.grams[k]`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn reduce_centred<T: Real>(
    program: &Program,
    monoid: &Monoid,
    inputs: &[Data<'_, T>],
    rows: usize,
    inner: usize,
    ranges: Option<&Ranges>,
    centred: &[Centred<T>],
    threads: usize,
    interrupted: &mut dyn FnMut() -> bool,
) -> Result<States<T>> {
    let mut states = States::new(monoid, rows)?;
    let mut block_rows = block_rows(program, monoid, rows);
    let tile = program.tile;
    let chunk = (ITEM_WORK / (block_rows * program.cost_per_pair)).max(tile).div_ceil(tile) * tile;
    // A selection restarts from an empty state in every item, and filling
    // it costs a sorted insertion per value: long chunks amortize that.
    let chunk = if monoid.is_selection() { chunk.max(SELECTION_MIN_CHUNK) } else { chunk };
    let chunk = chunk.min(inner.max(1));
    if chunk == inner.max(1) {
        block_rows = short_block_rows(program, rows, chunk, block_rows);
    }
    let dense;
    let ranges = match ranges {
        Some(r) => r,
        None => {
            dense = Ranges::dense(rows, inner);
            &dense
        }
    };
    let pool = thread_pool(threads)?;
    let mut items = work_items(ranges, block_rows, chunk);
    let round = pool.current_num_threads() * ITEMS_PER_THREAD_PER_ROUND;
    let total_pairs = ranges.pairs() as u64;
    let mut done_pairs = 0u64;
    loop {
        let batch: Vec<Item> = items.by_ref().take(round).collect();
        if batch.is_empty() {
            break;
        }
        let partials: Vec<States<T>> = pool.install(|| {
            batch.par_iter().map(|item| run_item(program, monoid, inputs, centred, item)).collect::<Result<Vec<_>>>()
        })?;
        for (item, partial) in batch.iter().zip(&partials) {
            for (local, row) in item.rows.clone().enumerate() {
                let (ov, ok) = partial.row(local);
                let (v, k) = states.row_mut(row);
                monoid.merge(v, k, ov, ok);
            }
            let cols: usize = item.cols.iter().map(|c| c.len()).sum();
            done_pairs += (item.rows.len() * cols) as u64;
        }
        crate::progress::report(done_pairs, total_pairs, "pairs");
        if interrupted() {
            return Err(Error::Interrupted);
        }
    }
    Ok(states)
}

/// Output rows per work item of a reduction of `rows` rows: more with GEMM
/// pair terms, whose packing of each tile is shared by the block's rows.
fn block_rows(program: &Program, monoid: &Monoid, rows: usize) -> usize {
    let block = match (program.grams.is_empty(), monoid.is_selection()) {
        (true, _) => BLOCK_ROWS,
        (false, false) => GRAM_BLOCK_ROWS,
        (false, true) => GRAM_SELECTION_BLOCK_ROWS,
    };
    block.min(rows.max(1))
}

/// Output rows per work item when one chunk holds the whole reduced range
/// (a kernel column, a reduction over few points): more rows, up to
/// [`ITEM_WORK`] per item, so that the item's scratch setup and the rounds'
/// synchronisation do not cost more than its pairs. Each row still folds the
/// same single chunk, so its result is bit-identical.
fn short_block_rows(program: &Program, rows: usize, chunk: usize, block_rows: usize) -> usize {
    let target = ITEM_WORK / (chunk * program.cost_per_pair).max(1);
    // At least 64 items when there are rows enough, so threads share them.
    let spread = rows.div_ceil(64).max(block_rows);
    target.clamp(block_rows, MAX_BLOCK_ROWS).min(spread).min(rows.max(1))
}

/// Folds the item's reduced intervals into fresh states for its rows.
fn run_item<T: Real>(
    program: &Program,
    monoid: &Monoid,
    inputs: &[Data<'_, T>],
    centred: &[Centred<T>],
    item: &Item,
) -> Result<States<T>> {
    let rows = &item.rows;
    let mut states = States::new(monoid, rows.len())?;
    let mut scratch = try_filled(Some(program.scratch_len), T::zero())?;
    program.run_fixed(&mut scratch, inputs);
    let mut grams = centred.iter().map(|c| GramBlock::new(c, rows.clone(), program.tile)).collect::<Result<Vec<_>>>()?;
    let mut weights = program.weights.map(|w| WeightsBlock::new(w, rows.len(), program.tile, program.simd)).transpose()?;
    for cols in &item.cols {
        let mut start = cols.start;
        while start < cols.end {
            let len = program.tile.min(cols.end - start);
            program.run_inner(&mut scratch, inputs, start, len);
            for g in &mut grams {
                g.load_tile(start, len);
            }
            for (local, row) in rows.clone().enumerate() {
                for (g, spec) in grams.iter().zip(&program.grams) {
                    g.fill_row(inputs, local, &mut scratch[spec.out..]);
                }
                program.run_row(&mut scratch, inputs, row, start, len);
                if let Some(w) = &mut weights {
                    w.set_row(local, &scratch[program.roots[0].offset..program.roots[0].offset + len]);
                    continue;
                }
                let tile = Tile {
                    f: &scratch[program.roots[0].offset..],
                    g: match program.dot_weights {
                        Some(pos) => Some(&inputs[pos].values[start..]),
                        None => program.roots.get(1).map(|g| &scratch[g.offset..]),
                    },
                    stride: program.tile,
                    len,
                    start,
                };
                let (v, k) = states.row_mut(local);
                monoid.push(v, k, &tile);
            }
            if let Some(w) = &mut weights {
                // The tile sums of all rows in one GEMM, added as block sums.
                w.multiply(inputs, rows.len(), start, len);
                for local in 0..rows.len() {
                    let (v, k) = states.row_mut(local);
                    monoid.merge(v, k, w.row(local), &[]);
                }
            }
            start += len;
        }
    }
    Ok(states)
}

/// Rows per parallel task of [`diagonal`].
const DIAGONAL_ROWS: usize = 4096;

/// The first component of the first reduced formula on the diagonal,
/// F(i, i) for i < n: row i against reduced index i. Costs one evaluation of
/// the formula per row, never an n × n matrix. The program must have no
/// GEMM pair terms (compiled with `gemm_min_dim = None`).
pub fn diagonal<T: Real>(program: &Program, inputs: &[Data<'_, T>], n: usize, threads: usize) -> Result<Vec<T>> {
    if !program.grams.is_empty() {
        return Err(Error::Internal("the diagonal needs a program without GEMM pair terms".into()));
    }
    let pool = thread_pool(threads)?;
    let blocks: Vec<Range<usize>> =
        (0..n).step_by(DIAGONAL_ROWS).map(|r0| r0..(r0 + DIAGONAL_ROWS).min(n)).collect();
    let parts: Vec<Vec<T>> = pool.install(|| {
        blocks
            .par_iter()
            .map(|rows| {
                let mut scratch = try_filled(Some(program.scratch_len), T::zero())?;
                program.run_fixed(&mut scratch, inputs);
                Ok(rows
                    .clone()
                    .map(|i| {
                        program.run_inner(&mut scratch, inputs, i, 1);
                        program.run_row(&mut scratch, inputs, i, i, 1);
                        scratch[program.roots[0].offset]
                    })
                    .collect())
            })
            .collect::<Result<_>>()
    })?;
    let mut out = crate::buffer::try_with_capacity(Some(n))?;
    for part in parts {
        out.extend(part);
    }
    Ok(out)
}

/// The rayon pool of the last thread count used, with the process that
/// built it. Only one pool is kept: a pool per distinct `threads` value kept
/// every one of their threads alive for good (60 values: 1831 threads).
/// Replacing the pool drops the old one once the reductions using it end.
///
/// Fork safety: a child forked by `parallel::mclapply` inherits the pool's
/// data structures but none of its threads, so work sent to it would wait
/// forever. A pool built by another process id is forgotten (dropping it
/// would wait on those threads too) and a fresh one is built. The registry
/// lock is only held by the calling thread while it looks up the pool.
struct Pool {
    threads: usize,
    pid: u32,
    pool: Arc<rayon::ThreadPool>,
}

static POOL: Mutex<Option<Pool>> = Mutex::new(None);

/// The pool for `threads` threads (0: one per core), built on first use.
/// Every parallel loop of the crate runs inside `install` of this pool,
/// never on rayon's global pool (which would not survive a fork either).
pub(crate) fn thread_pool(threads: usize) -> Result<Arc<rayon::ThreadPool>> {
    let threads = if threads == 0 { default_threads() } else { threads };
    let pid = std::process::id();
    let mut slot = POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if slot.as_ref().is_some_and(|p| p.pid != pid) {
        std::mem::forget(slot.take());
    }
    if let Some(p) = slot.as_ref().filter(|p| p.threads == threads) {
        return Ok(p.pool.clone());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("keopsr-{i}"))
        .build()
        .map_err(|e| Error::Internal(format!("cannot start {threads} threads: {e}")))?;
    let pool = Arc::new(pool);
    *slot = Some(Pool { threads, pid, pool: pool.clone() });
    Ok(pool)
}

/// Number of threads used when none is requested: the available cores.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
