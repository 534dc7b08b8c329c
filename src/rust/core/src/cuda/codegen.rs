//! A formula as one CUDA C kernel, generated from the same operation tables
//! (the `cuda` columns in `ops/`) and reduction monoids (`Monoid::cuda`) as
//! the CPU engine.
//!
//! Scheme ("1D" with split reduction): one thread per output row; the
//! reduced index is cut into `gridDim.y` contiguous chunks, one per block
//! row, so that problems with few output rows still fill the GPU; each chunk
//! is walked in tiles whose reduced-index variables are staged in shared
//! memory. Each thread keeps its monoid state in registers and writes it,
//! unfinalized, to `out_acc`/`out_arg[(chunk * rows + row) * len + s]`: the
//! host merges the chunks with the CPU monoid and finalizes, so the GPU and
//! CPU results follow the same rules. Every node is a small local array
//! `T n<id>[dim]`; values that depend on the output row only are computed
//! once per thread, the others once per pair.
//!
//! Large dimensions: sums over components of (x - y)², x y, |x - y| and x²
//! (SqDist, Scalprod, norms, L1 distances) are one loop over the components
//! that stores none of its terms, and variables used only by such sums are
//! read component by component, so a D = 2000 SqDist keeps no per-thread
//! array of 2000 values (no register spilling). Reduced-index variables
//! that would leave shared-memory tiles of fewer than 32 indices are read
//! from global memory (the same address for the whole block: a broadcast).
//!
//! Register blocks: a pair sum of dimension >= 16 between an output-row
//! operand and a reduced-index operand (the term of a GEMM: SqDist,
//! Scalprod, L1 distances of high-dimensional points) is computed for
//! [`JBLOCK`] reduced indices at a time, so each component of the row's
//! operand is loaded once for 8 multiply-adds (one load per term otherwise);
//! the rest of the formula and the push then run index by index as before.
//!
//! Large outputs: when the reduced formula with many components (F of a sum,
//! the weights G of a weighted log-sum-exp or softmax: a kernel times
//! high-dimensional weights) is element-wise in variables and scalars, each
//! block computes [`out_chunk`] of its components (`blockIdx.z` picks which)
//! with the reduction cut to those components (`Monoid::output_chunk`). The
//! scalar part (the kernel) is computed again for every chunk, but no thread
//! holds more than two accumulators per component of its chunk.
//!
//! Sums of the block scheme (the default) add each tile of the reduced
//! index on its own and then to the running sum, as the CPU does, which
//! keeps float32 sums of many terms accurate.

use std::fmt::Write;

use crate::formula::{Cat, Formula, Graph, NodeId, DEP_I, DEP_J};
use crate::ops::vector::PairSum;
use crate::ops::{Extremum, Op};
use crate::options::Precision;
use crate::reduction::{CudaCode, Monoid, OutputChunk, Slot};

/// Threads per block (= output rows per block).
pub const BLOCK: usize = 128;
/// Shared memory a block may use for staged variables, in bytes.
const SHARED_BYTES: usize = 32 * 1024;
/// Fewest reduced indices per staged tile.
const MIN_TILE: usize = 32;
/// Output components per block when the output is chunked: 32 in float32,
/// 16 in float64 (the same registers; a block-scheme sum keeps a running and
/// a tile sum of each, besides the chunk's values).
pub fn out_chunk(precision: Precision) -> usize {
    match precision {
        Precision::F64 => 16,
        Precision::F32 => 32,
    }
}
/// Most nodes in the chunked part of an output (see [`chunking`]).
const MAX_CHUNKED_PART: usize = 256;
/// Smallest output dimension that is chunked.
const OUT_CHUNK_MIN: usize = 64;

/// Reduced indices per register block of a high-dimensional pair sum (see
/// the module comment).
const JBLOCK: usize = 8;
/// Smallest dimension of a pair sum computed in register blocks.
const JBLOCK_MIN_DIM: usize = 16;

/// Name of the generated kernel function.
pub const KERNEL_NAME: &str = "keopsr_reduce";

/// A generated kernel and what the launcher needs to know about it.
#[derive(Debug, Clone)]
pub struct Kernel {
    pub source: String,
    /// Reduced indices per tile staged in shared memory (0: read from global memory).
    pub tile: usize,
    /// Monoid state length: values and indices.
    pub value_len: usize,
    pub index_len: usize,
    /// Blocks along `blockIdx.z`: chunks of the output components (1: not chunked).
    pub out_chunks: usize,
}

fn literal(v: f64) -> String {
    if v.is_nan() {
        "(T)NAN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "(T)INFINITY".into() } else { "(-(T)INFINITY)".into() }
    } else {
        format!("(T){v:e}")
    }
}

/// Substitutes the arguments and the precision suffix into an expression template.
fn expand(template: &str, args: &[(&str, String)]) -> String {
    let mut s = template.to_string();
    for (name, value) in args {
        s = s.replace(name, value);
    }
    s
}

/// `n<id>[c]`, or `n<id>[0]` for a dimension-1 node broadcast to `c`.
fn at(g: &Graph, id: NodeId, c: &str) -> String {
    if g.dim(id) == 1 { format!("n{id}[0]") } else { format!("n{id}[{c}]") }
}

/// A pair sum Σ_c pair(x_c, y_c) (see [`PairSum`]) in one loop over the
/// components: its element-wise terms are never stored, and variables used
/// only by such sums are read from memory component by component, so that
/// formulas of dimension 100 to several thousands (SqDist, Scalprod, L1
/// distances) keep no per-thread arrays of that size (no register spilling).
struct PairSumCode {
    pair: PairSum,
    x: NodeId,
    y: NodeId,
}

impl PairSumCode {
    /// The term of one component, of the C expressions `a` (of x) and `b` (of y).
    fn term(&self, a: &str, b: &str) -> String {
        self.pair.cuda().replace("{a}", a).replace("{b}", b)
    }
}

/// `n<id>[c]` or, for a variable read directly, its load of component `c`.
fn operand(g: &Graph, id: NodeId, c: &str, direct: &[bool], load: &Load<'_>) -> String {
    match g.node(id).op {
        Op::Var(pos) if direct[id] => {
            let cat = g.var_info(pos).map_or(Cat::P, |v| v.cat);
            load(pos, cat, if g.dim(id) == 1 { "0" } else { c })
        }
        _ => at(g, id, c),
    }
}

/// Load of component `c` (a number or a C expression) of variable `pos`.
type Load<'a> = dyn Fn(usize, Cat, &str) -> String + 'a;

/// One component of a constant or element-wise node, as a C expression of
/// the same component of its arguments (`args`); `None` for other nodes.
fn elementwise(op: Op, args: &[String]) -> Option<String> {
    Some(match op {
        Op::Const(bits) => literal(f64::from_bits(bits)),
        Op::Unary(u) => expand(u.cuda(), &[("{x}", args[0].clone())]),
        Op::Binary(b) => expand(b.cuda(), &[("{a}", args[0].clone()), ("{b}", args[1].clone())]),
        Op::Ternary(t) => expand(t.cuda(), &[("{a}", args[0].clone()), ("{b}", args[1].clone()), ("{c}", args[2].clone())]),
        Op::Pow(n) => format!("keops_powi({}, {n})", args[0]),
        Op::Round(digits) => format!("keops_round({}, {digits})", args[0]),
        _ => return None,
    })
}

/// The statements computing node `id` (arguments already computed).
fn node_code(g: &Graph, id: NodeId, load: &Load<'_>) -> String {
    let node = g.node(id);
    let d = node.dim;
    let a = &node.args;
    let at_c: Vec<String> = a.iter().map(|&x| at(g, x, "c")).collect();
    if let Some(body) = elementwise(node.op, &at_c) {
        return format!("for (int c = 0; c < {d}; c++) n{id}[c] = {body};");
    }
    match node.op {
        Op::Var(pos) => {
            let cat = g.var_info(pos).map_or(Cat::P, |v| v.cat);
            (0..d).map(|c| format!("n{id}[{c}] = {};", load(pos, cat, &c.to_string()))).collect::<Vec<_>>().join(" ")
        }
        Op::Sum(group) => format!(
            "for (int k = 0; k < {d}; k++) {{ T s = (T)0; for (int c = 0; c < {group}; c++) s += n{x}[k * {group} + c]; n{id}[k] = s; }}",
            x = a[0]
        ),
        Op::Extremum(e) => {
            let (max, arg) = match e {
                Extremum::Min => (false, false),
                Extremum::Max => (true, false),
                Extremum::ArgMin => (false, true),
                Extremum::ArgMax => (true, true),
            };
            format!(
                "{{ T best = n{x}[0]; int at = 0; for (int c = 1; c < {dx}; c++) {{ T v = n{x}[c]; \
                 if (isnan(best) ? !isnan(v) : ({cmp})) {{ best = v; at = c; }} }} n{id}[0] = {res}; }}",
                x = a[0],
                dx = g.dim(a[0]),
                cmp = if max { "v > best" } else { "v < best" },
                res = if arg { "(T)at" } else { "best" }
            )
        }
        Op::Gather(t) => g
            .table(t)
            .iter()
            .enumerate()
            .map(|(k, s)| match s {
                Some(s) => format!("n{id}[{k}] = n{}[{s}];", a[0]),
                None => format!("n{id}[{k}] = (T)0;"),
            })
            .collect::<Vec<_>>()
            .join(" "),
        Op::Concat => {
            let dx = g.dim(a[0]);
            format!(
                "for (int c = 0; c < {dx}; c++) n{id}[c] = n{x}[c]; for (int c = {dx}; c < {d}; c++) n{id}[c] = n{y}[c - {dx}];",
                x = a[0],
                y = a[1]
            )
        }
        Op::OneHot(_) => format!("for (int c = 0; c < {d}; c++) n{id}[c] = (round{{f}}(n{}[0]) == (T)c ? (T)1 : (T)0);", a[0]),
        op => unreachable!("element-wise ops are handled above: {op:?}"),
    }
}

/// The output chunking of a formula (see the module comment): the reduction
/// cut to a chunk, the formula holding the components, and the nodes
/// computed one component at a time (`part`; none of them is stored).
struct Chunking {
    chunk: OutputChunk,
    root: NodeId,
    part: Vec<bool>,
}

/// Whether the formula's output is chunked: its reduction splits by
/// component, with at least `OUT_CHUNK_MIN` of them, and the formula holding
/// them is element-wise down to variables and scalars, with no node used
/// elsewhere (variables may be).
fn chunking(formula: &Formula, monoid: &Monoid, width: usize, uses: &[usize]) -> Option<Chunking> {
    let g = &formula.graph;
    let chunk = monoid.output_chunk(width).filter(|c| c.dim >= OUT_CHUNK_MIN)?;
    let root = formula.roots[chunk.root];
    let mut part = vec![false; g.len()];
    let mut parts = 0;
    let mut todo = vec![root];
    while let Some(id) = todo.pop() {
        let node = g.node(id);
        // Nodes other than variables are computed in place: used by their
        // parent only (the root by nothing), and not another root.
        let in_place = || {
            uses[id] == usize::from(id != root) && formula.roots.iter().filter(|&&r| r == id).count() == usize::from(id == root)
        };
        let elementwise = match node.op {
            Op::Var(_) => true,
            op => (matches!(op, Op::Const(_)) || op.is_elementwise()) && in_place(),
        };
        if !elementwise {
            return None;
        }
        // `component` writes the part as one C expression, recursively:
        // a long chain (a sum of thousands of terms) is computed node by node.
        parts += 1;
        if parts > MAX_CHUNKED_PART {
            return None;
        }
        part[id] = true;
        for &a in &node.args {
            match g.dim(a) {
                1 => {}
                d if d == chunk.dim => todo.push(a),
                _ => return None,
            }
        }
    }
    Some(Chunking { chunk, root, part })
}

/// Component `c` (a C expression) of a node of the chunked part, as one
/// C expression (the same templates as [`node_code`]).
fn component(g: &Graph, id: NodeId, c: &str, part: &[bool], direct: &[bool], load: &Load<'_>) -> String {
    let node = g.node(id);
    if let Op::Var(_) = node.op {
        return operand(g, id, c, direct, load);
    }
    let args: Vec<String> = node
        .args
        .iter()
        .map(|&a| if part[a] { component(g, a, c, part, direct, load) } else { operand(g, a, c, direct, load) })
        .collect();
    format!("({})", elementwise(node.op, &args).expect("the chunked part is element-wise"))
}

const PRELUDE: &str = r#"
#ifndef NAN
#define NAN __int_as_float(0x7fffffff)
#endif
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif
__device__ __forceinline__ T keops_powi(T x, int n) {
    bool inv = n < 0; unsigned int m = inv ? -(unsigned int)n : n; T r = (T)1;
    while (m) { if (m & 1u) r *= x; x *= x; m >>= 1; }
    return inv ? (T)1 / r : r;
}
__device__ __forceinline__ double keops_powi_d(double x, int n) {
    bool inv = n < 0; unsigned int m = inv ? -(unsigned int)n : n; double r = 1.0;
    while (m) { if (m & 1u) r *= x; x *= x; m >>= 1; }
    return inv ? 1.0 / r : r;
}
/* ops::math::round: in double, with R's limits for large |d|. */
__device__ __forceinline__ T keops_round(T xt, int d) {
    double x = (double)xt;
    if (!isfinite(x) || x == 0.0 || d > 323) return xt;
    if (d < -308) return (T)0;
    if (d == 0) return (T)round(x);
    if (0.30102999566398119521 * (0.5 + logb(x)) + (double)d > 15.0) return xt;
    double s1 = keops_powi_d(10.0, d < 308 ? d : 308), s2 = keops_powi_d(10.0, d > 308 ? d - 308 : 0);
    double r = round(x * s1 * s2) / s2 / s1;
    if (!isfinite(r)) r = trunc(x * s1 * s2) / s2 / s1;
    return (T)r;
}
/* ops::arith::powf: R's a^b. */
__device__ __forceinline__ T keops_powf(T a, T b) {
    if (a == (T)1 || b == (T)0) return (T)1;
    if (a == (T)0) return b > (T)0 ? (T)0 : (b < (T)0 ? (T)INFINITY : b);
    if (isfinite(a) && isfinite(b)) return pow{f}(a, b);
    if (isnan(a) || isnan(b)) return a + b;
    if (isinf(a)) {
        if (a > (T)0) return b < (T)0 ? (T)0 : (T)INFINITY;
        if (isfinite(b) && b == floor{f}(b)) return b < (T)0 ? (T)0 : (fmod{f}(b, (T)2) != (T)0 ? a : -a);
        return (T)NAN;
    }
    if (a >= (T)0) return ((b > (T)0) == (a >= (T)1)) ? (T)INFINITY : (T)0;
    return (T)NAN;
}
/* Order of selections (as the CPU's ranks_before): NaN last, ties to the
   smallest index, -1 = empty. */
__device__ __forceinline__ bool keops_before(bool mx, T a, long long ia, T b, long long ib) {
    if (ib < 0) return ia >= 0;
    if (ia < 0) return false;
    bool an = isnan(a), bn = isnan(b);
    if (!an && bn) return true;
    if (an && !bn) return false;
    if (an && bn) return ia < ib;
    if (a == b) return ia < ib;
    return (a < b) != mx;
}
"#;

/// Generates the kernel of `formula` for a precision and summation scheme.
pub fn generate(formula: &Formula, precision: Precision, monoid: &Monoid) -> Kernel {
    let g = &formula.graph;
    let inner_bit = match formula.axis.inner() {
        Cat::I => DEP_I,
        _ => DEP_J,
    };
    let vars = g.vars();
    let inner_cat = formula.axis.inner();
    let live = g.live(&formula.roots);
    let (scalar, suffix, bytes) = match precision {
        Precision::F64 => ("double", "", 8),
        Precision::F32 => ("float", "f", 4),
    };
    // Pair sums, the element-wise nodes they absorb, and the variables
    // they read directly.
    let uses = g.uses(&live);
    let mut absorbed = vec![false; g.len()];
    let mut pair_sums: Vec<Option<PairSumCode>> = (0..g.len()).map(|_| None).collect();
    for id in (0..g.len()).filter(|&id| live[id]) {
        if let Some((pair, x, y, between)) = PairSum::of_node(g, id) {
            if between.iter().all(|&b| uses[b] == 1 && !formula.roots.contains(&b)) {
                between.iter().for_each(|&b| absorbed[b] = true);
                pair_sums[id] = Some(PairSumCode { pair, x, y });
            }
        }
    }
    // The chunked part of the output is computed inside the push, one
    // component at a time; its variables are read directly.
    let chunking = chunking(formula, monoid, out_chunk(precision), &uses);
    let in_part = |id: NodeId| chunking.as_ref().is_some_and(|ch| ch.part[id]);
    for id in (0..g.len()).filter(|&id| in_part(id) && !matches!(g.node(id).op, Op::Var(_))) {
        absorbed[id] = true;
    }
    let mut stored = vec![false; g.len()]; // used by a node that is computed
    for id in (0..g.len()).filter(|&id| live[id] && !absorbed[id]) {
        for &a in &g.node(id).args {
            stored[a] = true;
        }
    }
    for &r in formula.roots.iter().filter(|&&r| !in_part(r)) {
        stored[r] = true;
    }
    let direct: Vec<bool> =
        (0..g.len()).map(|id| live[id] && matches!(g.node(id).op, Op::Var(_)) && !stored[id]).collect();
    let computed = |id: NodeId| live[id] && !absorbed[id] && !direct[id];
    // High-dimensional pair sums of a row operand and a reduced-index one,
    // computed in register blocks: (id, whether x is the row operand).
    let blocked: Vec<(NodeId, bool)> = (0..g.len())
        .filter(|&id| computed(id) && g.deps(id) & inner_bit != 0)
        .filter_map(|id| {
            let p = pair_sums[id].as_ref()?;
            let (dx, dy) = (g.dim(p.x), g.dim(p.y));
            if dx != dy || dx < JBLOCK_MIN_DIM {
                return None;
            }
            match (g.deps(p.x) & inner_bit == 0, g.deps(p.y) & inner_bit == 0) {
                (true, false) => Some((id, true)),
                (false, true) => Some((id, false)),
                _ => None,
            }
        })
        .collect();

    // Reduced-index variables staged in shared memory: offsets in tile units.
    let mut staged: Vec<(usize, usize, usize)> = Vec::new(); // (pos, dim, offset)
    let mut staged_dims = 0;
    // Variables that would leave tiles of fewer than MIN_TILE indices (high
    // dimensions) are read from global memory instead: every thread of a
    // block reads the same address there, a broadcast from the cache. So are
    // those of a chunked output, of which a block reads one chunk.
    let chunked_var = |pos: usize| (0..g.len()).any(|id| in_part(id) && g.node(id).op == Op::Var(pos));
    for (pos, v) in vars.iter().enumerate() {
        if let Some(v) = v {
            if v.cat == inner_cat && !chunked_var(pos) && (staged_dims + v.dim) * bytes * MIN_TILE <= SHARED_BYTES {
                staged.push((pos, v.dim, staged_dims));
                staged_dims += v.dim;
            }
        }
    }
    let tile = if staged_dims == 0 { BLOCK } else { (SHARED_BYTES / (staged_dims * bytes)).min(BLOCK) };
    let load = |pos: usize, cat: Cat, c: &str| -> String {
        match cat {
            Cat::P => format!("in{pos}[{c}]"),
            _ if cat == inner_cat => match staged.iter().find(|s| s.0 == pos) {
                Some(&(_, _, off)) if tile > 0 => match c.parse::<usize>() {
                    Ok(c) => format!("sh[{} + t]", (off + c) * tile),
                    Err(_) => format!("sh[({off} + {c}) * {tile} + t]"),
                },
                _ => format!("in{pos}[{c} * nrow{pos} + j]"),
            },
            _ => format!("in{pos}[{c} * nrow{pos} + row]"),
        }
    };
    let code = |id: NodeId| match &pair_sums[id] {
        Some(p) => format!(
            "{{ T s = (T)0; for (int c = 0; c < {d}; c++) s += {term}; n{id}[0] = s; }}",
            d = g.dim(p.x).max(g.dim(p.y)),
            term = p.term(&operand(g, p.x, "c", &direct, &load), &operand(g, p.y, "c", &direct, &load))
        ),
        None => node_code(g, id, &load),
    };
    // The full state (what the host merges) and the one a thread keeps.
    let (value_len, index_len) = monoid.state_len();
    let acc_monoid = chunking.as_ref().map_or(*monoid, |ch| ch.chunk.monoid);
    let (acc_len, arg_len) = acc_monoid.state_len();
    let CudaCode { init, push, end_tile } = acc_monoid.cuda();

    let mut src = String::new();
    let _ = writeln!(src, "// keopsr kernel, {scalar}, {:?}", monoid.reduction);
    let _ = writeln!(src, "typedef {scalar} T;");
    src.push_str(PRELUDE);
    let params: Vec<String> = (0..vars.len()).map(|pos| format!("const T* __restrict__ in{pos}, long long nrow{pos}")).collect();
    let _ = writeln!(
        src,
        "extern \"C\" __global__ void {KERNEL_NAME}({}{}long long rows, long long inner, long long chunk, T* __restrict__ out_acc, long long* __restrict__ out_arg) {{",
        params.join(", "),
        if params.is_empty() { "" } else { ", " }
    );
    if tile > 0 && staged_dims > 0 {
        let _ = writeln!(src, "  __shared__ T sh[{}];", tile * staged_dims);
    }
    src.push_str(
        "  const long long row = (long long)blockIdx.x * blockDim.x + threadIdx.x;\n  const bool active = row < rows;\n  \
         const long long begin = (long long)blockIdx.y * chunk;\n  const long long end = min(begin + chunk, inner);\n",
    );
    let _ = writeln!(src, "  T acc[{}]; long long arg[{}];", acc_len.max(1), arg_len.max(1));
    if let Some(ch) = &chunking {
        let _ = writeln!(src, "  const int first = blockIdx.z * {}; // first output component of this block", ch.chunk.width);
    }
    let _ = writeln!(src, "  {init}");
    for id in (0..g.len()).filter(|&id| computed(id)) {
        let _ = writeln!(src, "  T n{id}[{}];", g.dim(id));
    }
    // Values of the output row (and constants): once per thread.
    src.push_str("  if (active) {\n");
    for id in (0..g.len()).filter(|&id| computed(id) && g.deps(id) & inner_bit == 0) {
        let _ = writeln!(src, "    /* node {id}: {:?} */ {}", g.node(id).op, code(id));
    }
    src.push_str("  }\n");
    src.push_str("  for (long long t0 = begin; t0 < end; t0 += ");
    let step = if tile > 0 { tile } else { BLOCK };
    let _ = writeln!(src, "{step}) {{");
    let _ = writeln!(src, "    const int len = (int)min((long long){step}, end - t0);");
    if tile > 0 && staged_dims > 0 {
        src.push_str("    __syncthreads();\n    for (int t = threadIdx.x; t < len; t += blockDim.x) {\n");
        for &(pos, dim, off) in &staged {
            for c in 0..dim {
                let _ = writeln!(src, "      sh[{} + t] = in{pos}[{c} * nrow{pos} + t0 + t];", (off + c) * tile);
            }
        }
        src.push_str("    }\n    __syncthreads();\n");
    }
    if blocked.is_empty() {
        src.push_str("    if (active) for (int t = 0; t < len; t++) {\n      const long long j = t0 + t; (void)j;\n");
    } else {
        let _ = writeln!(src, "    if (active) for (int tb = 0; tb < len; tb += {JBLOCK}) {{\n      const int nb = min({JBLOCK}, len - tb);");
        for &(id, x_is_row) in &blocked {
            let p = pair_sums[id].as_ref().expect("blocked nodes are pair sums");
            let (row_side, inner_side) = if x_is_row { (p.x, p.y) } else { (p.y, p.x) };
            let a = "a".to_string();
            let b = operand(g, inner_side, "c", &direct, &load);
            let (ta, tb) = if x_is_row { (a, b) } else { (b, a) };
            let _ = writeln!(
                src,
                "      /* node {id}: pair sum in blocks */ T ps{id}[{JBLOCK}];\n#pragma unroll\n      for (int k = 0; k < {JBLOCK}; k++) ps{id}[k] = (T)0;\n      \
                 for (int c = 0; c < {d}; c++) {{\n        const T a = {row};\n#pragma unroll\n        \
                 for (int k = 0; k < {JBLOCK}; k++) if (k < nb) {{ const int t = tb + k; const long long j = t0 + t; (void)j; ps{id}[k] += {term}; }}\n      }}",
                d = g.dim(p.x),
                row = operand(g, row_side, "c", &direct, &load),
                term = p.term(&ta, &tb)
            );
        }
        src.push_str("      for (int k = 0; k < nb; k++) {\n      const int t = tb + k; const long long j = t0 + t; (void)j;\n");
    }
    for id in (0..g.len()).filter(|&id| computed(id) && g.deps(id) & inner_bit != 0) {
        if blocked.iter().any(|&(b, _)| b == id) {
            let _ = writeln!(src, "      /* node {id}: from its block */ n{id}[0] = ps{id}[k];");
            continue;
        }
        let _ = writeln!(src, "      /* node {id}: {:?} */ {}", g.node(id).op, code(id));
    }
    let mut roots: Vec<String> = formula.roots.iter().map(|r| format!("n{r}")).collect();
    if let Some(ch) = &chunking {
        let _ = writeln!(
            src,
            "      T part[{w}];\n#pragma unroll\n      for (int k = 0; k < {w}; k++) {{ const int c = first + k; part[k] = c < {d} ? {value} : (T)0; }}",
            w = ch.chunk.width,
            d = ch.chunk.dim,
            value = component(g, ch.root, "c", &ch.part, &direct, &load)
        );
        roots[ch.chunk.root] = "part".into();
    }
    let weight = roots.get(1).map_or(String::new(), |r| format!(" const T* G = {r};"));
    let _ = writeln!(src, "      {{ const T* F = {};{weight} {push} }}", roots[0]);
    src.push_str(if blocked.is_empty() { "    }\n" } else { "      }\n    }\n" });
    if !end_tile.is_empty() {
        let _ = writeln!(src, "    if (active) {{ {end_tile} }}");
    }
    src.push_str("  }\n");
    src.push_str("  if (active) {\n    const long long at = (long long)blockIdx.y * rows + row;\n");
    match &chunking {
        Some(ch) => {
            for slot in &ch.chunk.slots {
                let _ = match *slot {
                    Slot::Fixed { from, to } => writeln!(src, "    out_acc[at * {value_len} + {to}] = acc[{from}];"),
                    Slot::Components { from, to } => writeln!(
                        src,
                        "    for (int k = 0; k < {w}; k++) if (first + k < {d}) out_acc[at * {value_len} + {to} + first + k] = acc[{from} + k];",
                        w = ch.chunk.width,
                        d = ch.chunk.dim
                    ),
                };
            }
        }
        None => {
            let _ = writeln!(src, "    for (int s = 0; s < {value_len}; s++) out_acc[at * {value_len} + s] = acc[s];");
        }
    }
    let _ = writeln!(src, "    for (int s = 0; s < {index_len}; s++) out_arg[at * {index_len} + s] = arg[s];\n  }}\n}}");
    let out_chunks = chunking.as_ref().map_or(1, |ch| ch.chunk.dim.div_ceil(ch.chunk.width));
    Kernel { source: src.replace("{f}", suffix), tile, value_len, index_len, out_chunks }
}
