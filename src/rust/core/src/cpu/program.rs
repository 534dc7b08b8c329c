//! A formula graph compiled into a register program for tiled evaluation.
//!
//! Every node gets a slot in one scratch buffer. A node that depends on the
//! reduced ("inner") index is *wide*: it holds one value per position of the
//! current tile, component-major (`slot[c * tile + t]`). Other nodes are
//! *narrow*: one value per component. Instructions are grouped by what they
//! depend on, so that each is computed as rarely as possible:
//! - `fixed`: constants and parameters, once per work item;
//! - `outer`: depends on the output row only, once per row (and tile);
//! - `inner`: depends on the reduced index only, once per tile, shared by all
//!   rows of the work item;
//! - `mixed`: depends on both, once per row and tile.

use super::gram::{Gram, GramPair};
use super::weights::Weights;
use crate::formula::{Axis, Cat, Graph, NodeId};
use crate::ops::arith::Operand;
use crate::ops::vector::{PairSum, Side};
use crate::ops::{index, math, vector, Binary, Extremum, Op, Ternary, Unary};
use crate::Real;

/// Where a node's values live in the scratch buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub offset: usize,
    pub dim: usize,
    pub wide: bool,
    /// A fused node: one component at a time, computed inside the sum that
    /// consumes it (see `Kind::FusedSum`).
    pub fused: bool,
}

#[derive(Debug, Clone)]
enum Kind {
    Load(usize, Cat),
    Const(f64),
    Unary(Unary),
    Binary(Binary),
    Ternary(Ternary),
    Pow(i32),
    Round(i32),
    Sum(usize),
    Extremum(Extremum),
    Gather(Vec<Option<u32>>),
    Concat,
    OneHot,
    /// Σ_c of an element-wise chain evaluated one component c at a time
    /// (`dim` components): the chain's nodes never hold all their components,
    /// so high-dimensional sums (SqDist, Scalprod, ...) stay in L1 and allow
    /// large tiles.
    FusedSum { dim: usize, chain: Vec<Instr> },
    /// A fused sum that is a [`PairSum`] of its two arguments (see
    /// `PairSum::of_node`): one pass over the tile, the partial sums in
    /// registers.
    SumPairs { dim: usize, pair: PairSum },
    /// Copies a narrow value across the tile (a root that is constant in j).
    Broadcast,
    /// e^(s x) of a wide x, with the negation or narrow factor s of
    /// `Exp(-x)` or `Exp(x * s)` absorbed: one pass instead of two.
    ExpOf(Scale),
    /// A pair term computed by GEMM for a block of rows (see `cpu::gram`):
    /// its slot is filled before each row runs.
    Gram,
}

/// The factor of [`Kind::ExpOf`].
#[derive(Debug, Clone, Copy)]
enum Scale {
    Negated,
    /// By the narrow second argument.
    By,
}

#[derive(Debug, Clone)]
struct Instr {
    kind: Kind,
    out: Slot,
    args: Vec<Slot>,
}

/// Column-major data of one variable (`nrow` points, component c of point p
/// at `values[c * nrow + p]`), in the evaluation precision.
#[derive(Debug, Clone, Copy)]
pub struct Data<'a, T> {
    pub values: &'a [T],
    pub nrow: usize,
}

/// What loads read: the inputs by position, the current output row and the
/// first reduced index of the current tile.
struct Position<'a, 'b, T> {
    inputs: &'b [Data<'a, T>],
    row: usize,
    start: usize,
    len: usize,
}

#[derive(Debug, Clone)]
pub struct Program {
    fixed: Vec<Instr>,
    outer: Vec<Instr>,
    inner: Vec<Instr>,
    mixed: Vec<Instr>,
    pub roots: Vec<Slot>,
    pub scratch_len: usize,
    /// Number of reduced indices per tile.
    pub tile: usize,
    /// Wide values computed per (row, reduced index) pair: a cost estimate.
    pub cost_per_pair: usize,
    /// Which build of the per-row loops runs (detected at run time: the
    /// package is compiled for baseline x86-64).
    pub simd: Simd,
    /// Pair terms computed by GEMM, whose slots the caller fills per row.
    pub grams: Vec<Gram>,
    /// A Sum of s * b whose push multiplies by b (the input position of the
    /// reduced-index variable b): then the only root is s (see
    /// [`GemmUse::dot_weights`]).
    pub dot_weights: Option<usize>,
    /// A Sum of s * w computed by the weights GEMM: then the only root is
    /// s, and the caller multiplies it by w (see `cpu::weights`).
    pub weights: Option<Weights>,
}

/// What the CPU computes by GEMM (chosen by the planner): pair terms of at
/// least `pair_min_dim` components, and, for a Sum reduction with block
/// sums, the product of a scalar term with reduced-index weights of at least
/// `weights_min_cols` columns. `GemmUse::default()`: no GEMM.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GemmUse {
    pub pair_min_dim: Option<usize>,
    pub weights_min_cols: Option<usize>,
    /// A Sum of s * b with b a reduced-index variable of dimension 1 (and s
    /// of dimension 1) multiplies in the push, without storing s * b.
    pub dot_weights: bool,
}

/// The builds of the per-row loops, from the baseline to the widest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Simd {
    /// Baseline x86-64 (SSE2) or another architecture.
    Portable,
    /// AVX2 with fused multiply-adds (256-bit registers).
    Avx2,
    /// AVX-512 F/VL/DQ with fused multiply-adds (512-bit registers).
    Avx512,
}

/// The widest build the CPU supports, capped by the environment variable
/// `KEOPSR_SIMD` (`portable` or `avx2`, for comparisons). Decided once per
/// process.
pub fn detected_simd() -> Simd {
    static SIMD: std::sync::OnceLock<Simd> = std::sync::OnceLock::new();
    *SIMD.get_or_init(|| {
        let cap = match std::env::var("KEOPSR_SIMD").as_deref() {
            Ok("portable") => Simd::Portable,
            Ok("avx2") => Simd::Avx2,
            _ => Simd::Avx512,
        };
        #[cfg(target_arch = "x86_64")]
        let found = if !(std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")) {
            Simd::Portable
        } else if std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx512dq")
        {
            Simd::Avx512
        } else {
            Simd::Avx2
        };
        #[cfg(not(target_arch = "x86_64"))]
        let found = Simd::Portable;
        found.min(cap)
    })
}

/// `out[k] = e^(scale xs[k])` by the exp built for `simd`: AVX2/FMA,
/// AVX-512, or the portable `fast_exp` loop.
#[inline(always)]
pub(crate) fn exp_map_simd<T: Real>(simd: Simd, xs: &[T], scale: T, out: &mut [T]) {
    // SAFETY: a `Simd` above Portable is only used where the CPU has its
    // features (`detected_simd`).
    #[cfg(target_arch = "x86_64")]
    match simd {
        Simd::Avx512 => return unsafe { T::exp_map_avx512(xs, scale, out) },
        Simd::Avx2 => return unsafe { T::exp_map_fma(xs, scale, out) },
        Simd::Portable => {}
    }
    let _ = simd;
    for (o, &x) in out.iter_mut().zip(xs) {
        *o = (scale * x).fast_exp();
    }
}

/// Kernels built once per SIMD level: each defines `name(simd, args)`,
/// which runs `body` compiled for `simd` (the loops inline into each build
/// and use its registers). The instructions of a program call them one run
/// at a time: a call per run of up to a tile of values; the reductions'
/// push is one too (`Monoid::push`). Kept as separate functions rather
/// than inlined into one per-row loop: one function holding every
/// operation at every level took LLVM minutes, on one core, to optimize.
macro_rules! simd_kernels {
    ($($(#[$doc:meta])* fn $name:ident<$T:ident>($($arg:ident: $ty:ty),* $(,)?) $body:block)*) => {$(
        $(#[$doc])*
        #[inline(always)]
        fn $name<$T: $crate::Real>(simd: $crate::cpu::program::Simd, $($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
            #[inline(never)]
            unsafe fn avx512<$T: $crate::Real>($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            #[inline(never)]
            unsafe fn avx2<$T: $crate::Real>($($arg: $ty),*) $body
            #[inline(never)]
            fn portable<$T: $crate::Real>($($arg: $ty),*) $body
            // SAFETY: a level above Portable is only used where the CPU has
            // its features (`detected_simd`).
            #[cfg(target_arch = "x86_64")]
            match simd {
                $crate::cpu::program::Simd::Avx512 => return unsafe { avx512($($arg),*) },
                $crate::cpu::program::Simd::Avx2 => return unsafe { avx2($($arg),*) },
                $crate::cpu::program::Simd::Portable => {}
            }
            let _ = simd;
            portable($($arg),*)
        }
    )*};
}
pub(crate) use simd_kernels;

simd_kernels! {
    fn unary_map<T>(op: Unary, xs: &[T], out: &mut [T]) { op.map(xs, out) }
    fn pow_map<T>(n: i32, xs: &[T], out: &mut [T]) { math::pow_map(n, xs, out) }
    fn round_map<T>(digits: i32, xs: &[T], out: &mut [T]) { math::round_map(digits, xs, out) }
    fn binary_map<T>(op: Binary, x: Operand<'_, T>, y: Operand<'_, T>, out: &mut [T]) { op.map(x, y, out) }
    fn ternary_map<T>(op: Ternary, x: Operand<'_, T>, y: Operand<'_, T>, z: Operand<'_, T>, out: &mut [T]) {
        op.map(x, y, z, out)
    }
    fn sum_groups<T>(xs: &[T], out_dim: usize, group: usize, stride: usize, len: usize, out: &mut [T]) {
        vector::sum_groups(xs, out_dim, group, stride, len, out)
    }
    fn extremum_map<T>(op: Extremum, xs: &[T], dim: usize, stride: usize, len: usize, out: &mut [T]) {
        let mut best = [T::zero(); MAX_TILE];
        op.map(xs, dim, stride, len, out, &mut best)
    }
    fn sum_pairs<T>(pair: PairSum, dim: usize, x: Side<'_, T>, y: Side<'_, T>, len: usize, out: &mut [T]) {
        vector::sum_pairs(pair, dim, x, y, len, out)
    }
}

/// Scratch budget (in values) that the tile size is fitted to: wide slots of
/// a tile stay in the L1/L2 caches whatever the formula's dimensions.
const SCRATCH_BUDGET: usize = 8192;
const MIN_TILE: usize = 16;
pub const MAX_TILE: usize = 1024;

impl Program {
    /// Compiles the formula; what `gemm` allows is computed by GEMM: pair
    /// terms (SqDist, scalar products) of an output-index and a
    /// reduced-index variable, and the weights of a Sum (see [`GemmUse`]).
    pub fn compile(graph: &Graph, roots: &[NodeId], axis: Axis, gemm: GemmUse) -> Program {
        let weighted = weighted_sum(graph, roots, axis, gemm.weights_min_cols);
        let dot = if weighted.is_none() && gemm.dot_weights { dot_weighted(graph, roots, axis) } else { None };
        let roots: &[NodeId] = match (&weighted, &dot) {
            (Some((s, _)), _) | (None, Some((s, _))) => std::slice::from_ref(s),
            _ => roots,
        };
        let gemm_min_dim = gemm.pair_min_dim;
        let inner_bit = axis.inner().dep_bit();
        let outer_bit = axis.outer().dep_bit();
        let live = graph.live(roots);
        let wide = |id: NodeId| graph.deps(id) & inner_bit != 0;
        let fused = fusable(graph, roots, &live, inner_bit | outer_bit);
        let scaled = exp_arguments(graph, roots, &live, &fused, inner_bit);
        let (grams, skipped) = gram_nodes(graph, roots, &live, &fused, axis, gemm_min_dim);
        let wide_dims: usize = (0..graph.len())
            .filter(|&id| live[id] && wide(id) && !skipped[id])
            .map(|id| if fused[id].is_some() { 1 } else { graph.dim(id) })
            .sum();
        let narrow_roots: usize = roots.iter().filter(|&&r| !wide(r)).map(|&r| graph.dim(r)).sum();
        let per_tile = wide_dims + narrow_roots;
        // A multiple of 16, the block of `vector::sum_pairs`.
        let tile = (SCRATCH_BUDGET / per_tile.max(1)).clamp(MIN_TILE, MAX_TILE) / 16 * 16;

        let mut offset = 0;
        let mut slots: Vec<Option<Slot>> = vec![None; graph.len()];
        let mut program = Program {
            fixed: vec![],
            outer: vec![],
            inner: vec![],
            mixed: vec![],
            roots: vec![],
            scratch_len: 0,
            tile,
            cost_per_pair: 0,
            simd: detected_simd(),
            grams: vec![],
            weights: weighted.map(|(_, w)| w),
            dot_weights: dot.map(|(_, pos)| pos),
        };
        if let Some(w) = program.weights {
            program.cost_per_pair += w.cols / GRAM_COST_DIVISOR;
        }
        let mut alloc = |dim: usize, wide: bool, fused: bool| {
            let slot = Slot { offset, dim, wide, fused };
            offset += if wide { dim * tile } else { dim };
            slot
        };
        // The chain of each fused sum, filled in topological order: every
        // fused node belongs to exactly one sum (see `fusable`), so the
        // chains together hold each node once.
        let mut chains: Vec<Vec<Instr>> = vec![Vec::new(); graph.len()];
        for id in (0..graph.len()).filter(|&id| live[id]) {
            let node = graph.node(id);
            if scaled[id].is_some() || skipped[id] {
                continue; // computed by the Exp that uses it, or by a GEMM
            }
            if let Some((pair, x, y, dim)) = grams[id] {
                let out = alloc(1, true, false);
                slots[id] = Some(out);
                program.grams.push(Gram { pair, x, y, dim, out: out.offset });
                program.cost_per_pair += dim / GRAM_COST_DIVISOR;
                push_instr(&mut program, graph, id, Instr { kind: Kind::Gram, out, args: vec![] }, outer_bit, inner_bit);
                continue;
            }
            let out = if fused[id].is_some() { alloc(1, true, true) } else { alloc(node.dim, wide(id), false) };
            slots[id] = Some(out);
            let mut args: Vec<Slot> = Vec::new();
            for &a in &node.args {
                match scaled[a] {
                    Some((x, s)) => args.extend(std::iter::once(x).chain(s).map(|v| slots[v].expect("children precede parents"))),
                    None => args.push(slots[a].expect("children precede parents")),
                }
            }
            let kind = match node.op {
                Op::Unary(Unary::Exp) if scaled[node.args[0]].is_some() => {
                    Kind::ExpOf(if args.len() == 2 { Scale::By } else { Scale::Negated })
                }
                Op::Var(pos) => Kind::Load(pos, graph.var_info(pos).map_or(Cat::P, |v| v.cat)),
                Op::Const(bits) => Kind::Const(f64::from_bits(bits)),
                Op::Unary(u) => Kind::Unary(u),
                Op::Binary(b) => Kind::Binary(b),
                Op::Ternary(t) => Kind::Ternary(t),
                Op::Pow(n) => Kind::Pow(n),
                Op::Round(d) => Kind::Round(d),
                Op::Sum(group) => Kind::Sum(group),
                Op::Extremum(e) => Kind::Extremum(e),
                Op::Gather(table) => Kind::Gather(graph.table(table).to_vec()),
                Op::Concat => Kind::Concat,
                Op::OneHot(_) => Kind::OneHot,
            };
            let kind = match kind {
                Kind::Sum(group) if group == graph.dim(node.args[0]) && fused[node.args[0]].is_some() => {
                    let chain = std::mem::take(&mut chains[id]);
                    program.cost_per_pair += group * chain.len();
                    let pair = PairSum::of_node(graph, id).filter(|(_, x, y, between)| {
                        between.iter().all(|&b| fused[b].is_some()) && fused[*x].is_none() && fused[*y].is_none()
                    });
                    match pair {
                        Some((pair, x, y, _)) => {
                            let args = [x, y].map(|v| slots[v].expect("children precede parents")).to_vec();
                            let instr = Instr { kind: Kind::SumPairs { dim: group, pair }, out, args };
                            push_instr(&mut program, graph, id, instr, outer_bit, inner_bit);
                            continue;
                        }
                        None => Kind::FusedSum { dim: group, chain },
                    }
                }
                other => other,
            };
            let instr = Instr { kind, out, args };
            if let Some(sum) = fused[id] {
                chains[sum].push(instr);
                continue;
            }
            push_instr(&mut program, graph, id, instr, outer_bit, inner_bit);
        }
        for &r in roots {
            let slot = slots[r].expect("roots are live");
            let slot = if slot.wide {
                slot
            } else {
                let out = alloc(slot.dim, true, false);
                program.mixed.push(Instr { kind: Kind::Broadcast, out, args: vec![slot] });
                out
            };
            program.roots.push(slot);
        }
        program.cost_per_pair += 1;
        program.scratch_len = offset;
        program
    }

    /// Runs the constants and parameters.
    pub fn run_fixed<T: Real>(&self, s: &mut [T], inputs: &[Data<'_, T>]) {
        self.run(&self.fixed, s, &Position { inputs, row: 0, start: 0, len: 0 });
    }

    /// Runs what depends on the reduced index only, for the tile at `start`.
    pub fn run_inner<T: Real>(&self, s: &mut [T], inputs: &[Data<'_, T>], start: usize, len: usize) {
        self.run(&self.inner, s, &Position { inputs, row: 0, start, len });
    }

    /// Runs what depends on the output row `row` (for the current tile).
    pub fn run_row<T: Real>(&self, s: &mut [T], inputs: &[Data<'_, T>], row: usize, start: usize, len: usize) {
        let at = Position { inputs, row, start, len };
        self.run(&self.outer, s, &at);
        self.run(&self.mixed, s, &at);
    }

    #[inline(always)]
    fn run<T: Real>(&self, instrs: &[Instr], s: &mut [T], at: &Position<'_, '_, T>) {
        for instr in instrs {
            self.exec(instr, s, at, None);
        }
    }

    #[inline(always)]
    /// Executes one instruction; `comp` is the component being computed
    /// when the instruction belongs to a fused chain.
    fn exec<T: Real>(&self, instr: &Instr, s: &mut [T], at: &Position<'_, '_, T>, comp: Option<usize>) {
        if let Kind::FusedSum { dim, chain } = &instr.kind {
            let (out, src, n) = (instr.out, instr.args[0], if instr.out.wide { at.len } else { 1 });
            s[out.offset..out.offset + n].fill(T::zero());
            for c in 0..*dim {
                for link in chain {
                    self.exec_step(link, s, at, Some(c));
                }
                let (head, tail) = s.split_at_mut(out.offset);
                for (o, &x) in tail[..n].iter_mut().zip(&head[src.offset..src.offset + n]) {
                    *o = *o + x;
                }
            }
            return;
        }
        self.exec_step(instr, s, at, comp)
    }

    /// One instruction other than a fused sum (kept separate from `exec` so
    /// that it is not recursive and inlines into the SIMD builds).
    #[inline(always)]
    fn exec_step<T: Real>(&self, instr: &Instr, s: &mut [T], at: &Position<'_, '_, T>, comp: Option<usize>) {
        let tile = self.tile;
        let out = instr.out;
        let (n, stride) = if out.wide { (at.len, tile) } else { (1, 1) };
        // Arguments always sit before the output in the scratch buffer.
        let (args, rest) = s.split_at_mut(out.offset);
        let dst = &mut rest[..out.dim * stride];
        let run_of = |slot: &Slot, c: usize| -> &[T] {
            let c = if slot.dim == 1 || slot.fused { 0 } else { comp.unwrap_or(c) };
            let w = if slot.wide { tile } else { 1 };
            &args[slot.offset + c * w..slot.offset + c * w + if slot.wide { n } else { 1 }]
        };
        let operand = |slot: &Slot, c: usize| {
            let xs = run_of(slot, c);
            if slot.wide {
                Operand::Run(xs)
            } else {
                Operand::Scalar(xs[0])
            }
        };
        // Unary primitives keep their argument's width: both strides agree.
        let arg0 = instr.args.first().map(|a| &args[a.offset..]);
        match &instr.kind {
            Kind::Load(pos, cat) => {
                let data = &at.inputs[*pos];
                for c in 0..out.dim {
                    let column = &data.values[c * data.nrow..(c + 1) * data.nrow];
                    match cat {
                        Cat::P => dst[c] = data.values[c],
                        _ if out.wide => dst[c * tile..c * tile + n].copy_from_slice(&column[at.start..at.start + n]),
                        _ => dst[c] = column[at.row],
                    }
                }
            }
            Kind::Const(v) => dst[..out.dim].fill(T::from_double(*v)),
            Kind::Gram => {} // filled by the caller before the row runs
            Kind::Unary(Unary::Exp) | Kind::ExpOf(_) => {
                for c in 0..out.dim {
                    let s = exp_scale(&instr.kind, || run_of(&instr.args[1], c)[0]);
                    exp_map_simd(self.simd, run_of(&instr.args[0], c), s, &mut dst[c * stride..c * stride + n]);
                }
            }
            Kind::Unary(u) => {
                for c in 0..out.dim {
                    unary_map(self.simd, *u, run_of(&instr.args[0], c), &mut dst[c * stride..c * stride + n]);
                }
            }
            Kind::Pow(p) => {
                for c in 0..out.dim {
                    pow_map(self.simd, *p, run_of(&instr.args[0], c), &mut dst[c * stride..c * stride + n]);
                }
            }
            Kind::Round(d) => {
                for c in 0..out.dim {
                    round_map(self.simd, *d, run_of(&instr.args[0], c), &mut dst[c * stride..c * stride + n]);
                }
            }
            Kind::Binary(b) => {
                for c in 0..out.dim {
                    let (x, y) = (operand(&instr.args[0], c), operand(&instr.args[1], c));
                    binary_map(self.simd, *b, x, y, &mut dst[c * stride..c * stride + n]);
                }
            }
            Kind::Ternary(t) => {
                for c in 0..out.dim {
                    let (x, y, z) = (operand(&instr.args[0], c), operand(&instr.args[1], c), operand(&instr.args[2], c));
                    ternary_map(self.simd, *t, x, y, z, &mut dst[c * stride..c * stride + n]);
                }
            }
            Kind::Sum(group) => sum_groups(self.simd, arg0.unwrap_or(&[]), out.dim, *group, stride, n, dst),
            Kind::Extremum(e) => extremum_map(self.simd, *e, arg0.unwrap_or(&[]), instr.args[0].dim, stride, n, dst),
            Kind::Gather(table) => index::gather(arg0.unwrap_or(&[]), stride, table, dst, stride, n),
            Kind::OneHot => index::one_hot(arg0.unwrap_or(&[]), out.dim, dst, stride, n),
            Kind::Concat => {
                let (x, y) = (&instr.args[0], &instr.args[1]);
                for c in 0..out.dim {
                    let (slot, k) = if c < x.dim { (x, c) } else { (y, c - x.dim) };
                    let run = &mut dst[c * stride..c * stride + n];
                    match operand(slot, k) {
                        Operand::Run(xs) => run.copy_from_slice(xs),
                        Operand::Scalar(v) => run.fill(v),
                    }
                }
            }
            Kind::FusedSum { .. } => unreachable!("fused sums run before the scratch is split"),
            Kind::SumPairs { dim, pair } => {
                let side = |slot: &Slot| {
                    let values = &args[slot.offset..];
                    let broadcast = slot.dim == 1;
                    if slot.wide {
                        Side::Wide { values, stride: if broadcast { 0 } else { tile } }
                    } else {
                        Side::Narrow { values, step: if broadcast { 0 } else { 1 } }
                    }
                };
                sum_pairs(self.simd, *pair, *dim, side(&instr.args[0]), side(&instr.args[1]), n, dst)
            }
            Kind::Broadcast => {
                for c in 0..out.dim {
                    let v = run_of(&instr.args[0], c)[0];
                    dst[c * tile..c * tile + n].fill(v);
                }
            }
        }
    }
}

/// The factor s of e^(s x): 1 for a plain Exp.
#[inline(always)]
fn exp_scale<T: Real>(kind: &Kind, by: impl FnOnce() -> T) -> T {
    match kind {
        Kind::ExpOf(Scale::Negated) => -T::one(),
        Kind::ExpOf(Scale::By) => by(),
        _ => T::one(),
    }
}

/// The arguments of Exp nodes that the Exp computes itself: `-x` and
/// `x * s` (either order) with x wide and s narrow, used by nothing else.
/// For each such node: x, and s if any.
fn exp_arguments(
    graph: &Graph,
    roots: &[NodeId],
    live: &[bool],
    fused: &[Option<NodeId>],
    inner_bit: u8,
) -> Vec<Option<(NodeId, Option<NodeId>)>> {
    let uses = graph.uses(live);
    let wide = |id: NodeId| graph.deps(id) & inner_bit != 0;
    let mut scaled = vec![None; graph.len()];
    for id in (0..graph.len()).filter(|&id| live[id] && fused[id].is_none()) {
        let node = graph.node(id);
        let Op::Unary(Unary::Exp) = node.op else { continue };
        let a = node.args[0];
        if uses[a] != 1 || roots.contains(&a) || fused[a].is_some() || !wide(a) {
            continue;
        }
        let arg = graph.node(a);
        let same_dim = |x: NodeId| graph.dim(x) == arg.dim;
        scaled[a] = match arg.op {
            Op::Unary(Unary::Minus) => Some((arg.args[0], None)),
            Op::Binary(Binary::Mult) => {
                let (x, s) = (arg.args[0], arg.args[1]);
                match (wide(x), wide(s)) {
                    (true, false) if same_dim(x) => Some((x, Some(s))),
                    (false, true) if same_dim(s) => Some((s, Some(x))),
                    _ => None,
                }
            }
            _ => None,
        };
    }
    scaled
}

/// The factors of a root s * w (either order) for the weights GEMM: s of
/// dimension 1, w a reduced-index variable of at least `min_cols` components.
fn weighted_sum(graph: &Graph, roots: &[NodeId], axis: Axis, min_cols: Option<usize>) -> Option<(NodeId, Weights)> {
    let min_cols = min_cols?;
    let &[root] = roots else { return None };
    let node = graph.node(root);
    if node.op != Op::Binary(Binary::Mult) {
        return None;
    }
    let weights_var = |id: NodeId| match graph.node(id).op {
        Op::Var(pos) if graph.var_info(pos).is_some_and(|v| v.cat == axis.inner()) => Some(pos),
        _ => None,
    };
    let (a, b) = (node.args[0], node.args[1]);
    [(a, b), (b, a)].into_iter().find_map(|(s, w)| {
        let cols = graph.dim(w);
        (graph.dim(s) == 1 && cols >= min_cols).then_some(())?;
        Some((s, Weights { var: weights_var(w)?, cols }))
    })
}

/// The factors of a root s * b for the push's multiply (see
/// [`GemmUse::dot_weights`]): s of dimension 1 first, then b, a variable of
/// the reduced index of dimension 1; gives s and b's input position. The
/// order is kept so that the product is the Mult's own (R's NA and NaN
/// differ by the payload x86 takes from the first operand).
fn dot_weighted(graph: &Graph, roots: &[NodeId], axis: Axis) -> Option<(NodeId, usize)> {
    let &[root] = roots else { return None };
    let node = graph.node(root);
    if node.op != Op::Binary(Binary::Mult) {
        return None;
    }
    let (s, b) = (node.args[0], node.args[1]);
    match graph.node(b).op {
        Op::Var(pos) if graph.dim(s) == 1 && graph.dim(b) == 1 && graph.var_info(pos).is_some_and(|v| v.cat == axis.inner()) => {
            Some((s, pos))
        }
        _ => None,
    }
}

/// Files an instruction under what its node depends on.
fn push_instr(program: &mut Program, graph: &Graph, id: NodeId, instr: Instr, outer_bit: u8, inner_bit: u8) {
    let deps = graph.deps(id);
    match (deps & outer_bit != 0, deps & inner_bit != 0) {
        (false, false) => program.fixed.push(instr),
        (true, false) => program.outer.push(instr),
        (false, true) => program.inner.push(instr),
        (true, true) => {
            program.cost_per_pair += graph.dim(id);
            program.mixed.push(instr)
        }
    }
}

/// A GEMM does a pair's D multiply-adds several times faster than the
/// direct loop: its share of the work estimate that sizes work items.
const GRAM_COST_DIVISOR: usize = 4;

/// The pair sums to compute by GEMM (pair, input positions of the
/// output-index and reduced-index variables, dimension), and the nodes not to
/// compile: the element-wise nodes inside those sums, and variables that
/// nothing else reads. Pair sums qualify when they are SqDist or a scalar
/// product of two variables, one of each index, of dimension at least
/// `min_dim`, whose inner nodes are fused into them (used by nothing else).
#[allow(clippy::type_complexity)]
fn gram_nodes(
    graph: &Graph,
    roots: &[NodeId],
    live: &[bool],
    fused: &[Option<NodeId>],
    axis: Axis,
    min_dim: Option<usize>,
) -> (Vec<Option<(GramPair, usize, usize, usize)>>, Vec<bool>) {
    let n = graph.len();
    let mut grams = vec![None; n];
    let mut skipped = vec![false; n];
    let Some(min_dim) = min_dim else { return (grams, skipped) };
    let var_of = |id: NodeId| match graph.node(id).op {
        Op::Var(pos) => graph.var_info(pos).map(|v| (pos, v.cat)),
        _ => None,
    };
    for id in (0..n).filter(|&id| live[id]) {
        let Some((pair, x, y, between)) = PairSum::of_node(graph, id) else { continue };
        let pair = match pair {
            PairSum::SquaredDifference => GramPair::SqDist,
            PairSum::Product => GramPair::Dot,
            PairSum::AbsoluteDifference => continue,
        };
        // Both of the pair's dimension (a dimension-1 operand broadcasts: not a GEMM).
        let dim = graph.dim(x);
        if dim < min_dim || graph.dim(y) != dim || !between.iter().all(|&b| fused[b] == Some(id)) {
            continue;
        }
        let (Some((px, cx)), Some((py, cy))) = (var_of(x), var_of(y)) else { continue };
        let (px, py) = match (cx, cy) {
            _ if cx == axis.outer() && cy == axis.inner() => (px, py),
            _ if cx == axis.inner() && cy == axis.outer() => (py, px),
            _ => continue,
        };
        grams[id] = Some((pair, px, py, dim));
        for b in between {
            skipped[b] = true;
        }
    }
    let mut needed = vec![false; n];
    for id in (0..n).filter(|&id| live[id] && !skipped[id] && grams[id].is_none()) {
        for &a in &graph.node(id).args {
            needed[a] = true;
        }
    }
    for &r in roots {
        needed[r] = true;
    }
    for id in 0..n {
        if live[id] && !needed[id] && grams[id].is_none() && matches!(graph.node(id).op, Op::Var(_)) {
            skipped[id] = true;
        }
    }
    (grams, skipped)
}

/// Which nodes are fused into the sum that consumes them, and that sum:
/// element-wise nodes that depend on both indices (they change with every
/// pair), are not roots, and are used only by other fused nodes of the same
/// sum or by that sum of all their components; either of dimension >=
/// FUSE_MIN_DIM, or the one or two nodes of a [`PairSum`] (which runs in one
/// pass whatever the dimension). A node shared by two sums is not fused: its
/// chain would be copied into both, and a chain of n nodes each shared with
/// a sum of its own would take memory and time quadratic in n.
/// Smallest dimension worth fusing in general: below it, whole-vector slots
/// are small and per-component dispatch would only add overhead.
const FUSE_MIN_DIM: usize = 16;

/// `KEOPSR_FUSION=off` disables fusion (for before/after measurements).
fn fusable(graph: &Graph, roots: &[NodeId], live: &[bool], both: u8) -> Vec<Option<NodeId>> {
    let n = graph.len();
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if !*ENABLED.get_or_init(|| std::env::var("KEOPSR_FUSION").as_deref() != Ok("off")) {
        return vec![None; n];
    }
    let mut consumers: Vec<Vec<NodeId>> = vec![Vec::new(); n];
    for id in (0..n).filter(|&id| live[id]) {
        for &a in &graph.node(id).args {
            consumers[a].push(id);
        }
    }
    // The one or two element-wise nodes of each pair sum.
    let mut in_pair_sum = vec![false; n];
    for id in (0..n).filter(|&id| live[id]) {
        for b in PairSum::of_node(graph, id).map_or(vec![], |(.., between)| between) {
            in_pair_sum[b] = true;
        }
    }
    let mut fused: Vec<Option<NodeId>> = vec![None; n];
    for id in (0..n).rev() {
        let node = graph.node(id);
        if !(live[id]
            && node.op.is_elementwise()
            && graph.deps(id) & both == both
            && !roots.contains(&id)
            && node.dim >= 2
            && (node.dim >= FUSE_MIN_DIM || in_pair_sum[id]))
        {
            continue;
        }
        // The sum each consumer leads to; all must agree.
        let sum_of = |c: NodeId| if graph.node(c).op == Op::Sum(node.dim) { Some(c) } else { fused[c] };
        let mut sums = consumers[id].iter().map(|&c| sum_of(c));
        if let Some(Some(first)) = sums.next() {
            if sums.all(|s| s == Some(first)) {
                fused[id] = Some(first);
            }
        }
    }
    fused
}
