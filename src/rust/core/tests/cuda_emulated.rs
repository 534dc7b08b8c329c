//! The generated CUDA kernels, run on the CPU: the kernel source is compiled
//! by the host C++ compiler with a small shim for the CUDA keywords, and
//! executed with one thread per block (so a thread stages whole tiles itself
//! and `__syncthreads` has nothing to wait for), block by block. The partial
//! states are merged by the CPU monoid exactly as the GPU launcher does, and
//! the results must match the CPU engine. This checks every operation's CUDA
//! template and every reduction's CUDA push without a GPU. Skipped when no
//! C++ compiler is found (`CXX`, else `g++`).

use std::process::Command;

use keopsr_core::cuda;
use keopsr_core::formula::{Axis, Formula};
use keopsr_core::reduction::{Monoid, SumScheme, EMPTY};
use keopsr_core::{evaluate, Input, Options, Precision};

const SHIM: &str = r#"
#include <math.h>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <vector>
#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__
#define __shared__ static
struct Dim3 { unsigned x, y, z; };
static Dim3 blockIdx, threadIdx, blockDim;
static inline void __syncthreads() {}
static inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
using std::isnan; using std::min;
static inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
static inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
"#;

mod common;

struct Case {
    formula: Formula,
    text: String,
    precision: Precision,
    scheme: SumScheme,
    data: Vec<(Vec<f64>, usize, usize)>,
    rows: usize,
    inner: usize,
    splits: usize,
}

const A: &[&str] = &["x = Vi(2)", "y = Vj(2)", "b = Vj(1)", "p = Pm(1)", "z = Vi(4)", "w = Vj(4)"];

const BODIES: &[&str] = &[
    "Exp(x - y) + Log(Square(x) + 1) + Sqrt(Square(y) + 0.5) + Rsqrt(Square(x) + 1) + Inv(b + 3) + Abs(x) - y",
    "Sin(x * y) + Cos(x + y) + Asin(x * 0.5) + Acos(y * 0.5) + Atan(x * y) + Atan2(x, y) + Powf(Square(y) + 0.5, x)",
    "XLogX(Square(x)) + SinXDivX(x - y) + Pow(x - y, 3) + Pow(x + 2, -2) + Sign(x) + Step(y) + ReLU(x - y) + Floor(x * 3) + Round(y, 1)",
    "IfElse(x - y, x * y, Square(y)) + Clamp(x, -0.5, y) + ClampInt(y * 3, -1, 1) + Mod(x * 3, 1.5, -0.2) * p",
    "Equal(Floor(x * 2), Floor(y * 2)) + NotEqual(x, y) + LessThan(x, y) + LessOrEqual(x, y) + x / (y + 3)",
    "Concat(Max(x - y), Min(x * y)) + Concat(ArgMax(x), ArgMin(y)) + Concat(Elem(x, 0), Extract(y, 1, 1)) + ElemT(b, 2, 1) + ExtractT(b, 0, 2)",
    "Concat(Sum(x), SqNorm2(y)) + Concat(Norm2(x), SqDist(x, y)) + (x | y) + Normalize(x - y) + OneHot(b * 2 + 1, 2)",
    "MatVecMult(z, y) + VecMatMult(x, w) + Extract(TensorProd(y, x), 1, 2) + TensorDot(z, y, Ind(2, 2), Ind(2), Ind(1), Ind(0)) + Extract(Kron(x, y, Ind(2), Ind(2)), 0, 2)",
    "WeightedSqDist(w, x, y) + WeightedSqNorm(b, x) + WeightedSqDist(y, x, y) + Concat(p, p)",
    "ComplexMult(x, ComplexExp(y)) + ComplexDivide(x, Real2Complex(b) + 5) + Conj(ComplexExp1j(b)) + ComplexAbs(x) * ComplexAngle(y) + ComplexSum(z)",
    "Grad(Exp(-SqDist(x, y)) * b, x, p) + Grad(Grad(Sin(x | y), x, b), x, y) + Diff(Norm2(x - y) * y, x, y)",
    "SqNormDiag(y, x) + SqNormIso(p, x) + SymSqNorm(w, x) + Sum(SumT(b, 2) * x) + Sum(Zero(2) + x) * IntInv(3) * RatCst(2, 3) + Sum(AdjointOperator(MatVecMult(w, x), x, y)) + TraceOperator(MatVecMult(w, x), x) + Sum(GradMatrix(Sin(x) * y, x)) + Divergence(x * SqNorm2(y - x), x) + Laplacian(Exp(-SqDist(x, y)), x)",
];

const REDUCTIONS: &[&str] = &[
    "Sum_Reduction({F}, 1)",
    "Sum_Reduction({F}, 0)",
    "Min_ArgMin_Reduction({F}, 1)",
    "Max_Reduction({F}, 0)",
    "KMin_ArgKMin_Reduction({F}, 3, 1)",
    "LogSumExp_Reduction({F}, 1)",
    "LogSumExp_Reduction(Sum({F}), 0, Exp(y))",
    "SumSoftMaxWeight_Reduction(Sum({F}), 1, x)",
    "Max_SumShiftExpWeight_Reduction(Sum({F}), 1, x)",
    "Max_SumShiftExp_Reduction(Sum({F}), 0)",
];

/// High-dimensional formulas: pair sums read their variables component by
/// component (no per-thread arrays of dimension 500 or 2000), and variables
/// too large for shared memory are read from global memory. High-dimensional
/// outputs (a kernel times weights of dimension 64 to 150) are computed in
/// chunks of components, one chunk per `blockIdx.z`.
const HIGH_DIM: &[(&str, &[&str], Precision, SumScheme)] = &[
    ("Sum_Reduction(Exp(-SqDist(x, y) * p) * b, 1)", &["x = Vi(500)", "y = Vj(500)", "b = Vj(1)", "p = Pm(1)"], Precision::F64, SumScheme::Block),
    ("Sum_Reduction(Sum(Abs(x - y)) + (x | y) + SqNorm2(x), 0)", &["x = Vi(500)", "y = Vj(500)"], Precision::F64, SumScheme::Block),
    ("KMin_ArgKMin_Reduction(SqDist(x, y), 3, 1)", &["x = Vi(2000)", "y = Vj(2000)"], Precision::F64, SumScheme::Block),
    ("LogSumExp_Reduction(-SqDist(x, y) + (x | y) * 0.001, 0)", &["x = Vi(2000)", "y = Vj(2000)"], Precision::F64, SumScheme::Block),
    ("Sum_Reduction(Exp(-SqDist(x, y) * p) * b, 1)", &["x = Vi(3)", "y = Vj(3)", "b = Vj(100)", "p = Pm(1)"], Precision::F64, SumScheme::Block),
    ("Sum_Reduction(Sin(b) * Exp(-SqDist(x, y)) + b * p, 1)", &["x = Vi(3)", "y = Vj(3)", "b = Vj(70)", "p = Pm(1)"], Precision::F32, SumScheme::Kahan),
    ("SumSoftMaxWeight_Reduction(-SqDist(x, y), 1, Exp(b * 0.1) - b)", &["x = Vi(3)", "y = Vj(3)", "b = Vj(70)"], Precision::F64, SumScheme::Block),
    ("SumSoftMaxWeight_Reduction(x | y, 1, b)", &["x = Vi(2)", "y = Vj(2)", "b = Vj(64)"], Precision::F64, SumScheme::Block),
    ("LogSumExp_Reduction(-SqDist(x, y) * 0.01, 0, Exp(x * 0.1))", &["x = Vi(150)", "y = Vj(150)"], Precision::F64, SumScheme::Block),
    // Register blocks with the reduced-index operand first, a computed row
    // operand, and two pair sums in one formula.
    ("Sum_Reduction(Exp(-SqDist(y, x * p)) * b + (y | x), 1)", &["x = Vi(20)", "y = Vj(20)", "b = Vj(1)", "p = Pm(1)"], Precision::F32, SumScheme::Block),
];

/// The sizes of the per-thread arrays a kernel declares (`T name[size]`).
fn thread_arrays(source: &str) -> Vec<usize> {
    source
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with("T "))
        .flat_map(|l| l.split('[').skip(1).filter_map(|rest| rest.split(']').next()?.parse::<usize>().ok()))
        .collect()
}

fn case(text: &str, precision: Precision, scheme: SumScheme, seed: u64) -> Case {
    case_with(text, A, precision, scheme, seed)
}

fn case_with(text: &str, aliases: &[&str], precision: Precision, scheme: SumScheme, seed: u64) -> Case {
    let formula = Formula::parse(text, aliases).unwrap_or_else(|e| panic!("{text}: {e}"));
    let (ni, nj) = (13, 37);
    let vars = formula.variables().unwrap();
    let data = common::random_data(&vars, ni, nj, seed);
    let (rows, inner) = if formula.axis == Axis::J { (ni, nj) } else { (nj, ni) };
    Case { formula, text: text.to_string(), precision, scheme, data, rows, inner, splits: 3 }
}

/// C++ for case k: its kernel in a namespace and a runner reading inputs
/// from in_k.bin and writing the states to out_k.bin.
fn program(k: usize, c: &Case) -> String {
    let options = Options { precision: c.precision, sum_scheme: c.scheme, ..Options::default() };
    let kernel = cuda::kernel(&c.formula, &options);
    let t = if c.precision == Precision::F64 { "double" } else { "float" };
    let nvars = c.data.len();
    let mut s = format!("namespace k{k} {{\n{}\n}}\n", kernel.source.replace("extern \"C\" ", ""));
    s += &format!("static void run{k}() {{\n  FILE* f = std::fopen(\"in_{k}.bin\", \"rb\");\n  std::vector<std::vector<{t}>> in({nvars});\n  std::vector<long long> n({nvars});\n");
    s += &format!("  for (int v = 0; v < {nvars}; v++) {{ long long len; if (std::fread(&n[v], 8, 1, f) != 1 || std::fread(&len, 8, 1, f) != 1) std::abort(); in[v].resize(len); if (std::fread(in[v].data(), sizeof({t}), len, f) != (size_t)len) std::abort(); }}\n");
    s += "  long long rows, inner, chunk, splits;\n  if (std::fread(&rows, 8, 1, f) != 1 || std::fread(&inner, 8, 1, f) != 1 || std::fread(&chunk, 8, 1, f) != 1 || std::fread(&splits, 8, 1, f) != 1) std::abort();\n  std::fclose(f);\n";
    s += &format!(
        "  std::vector<{t}> acc(splits * rows * {vl} + 1); std::vector<long long> arg(splits * rows * {kl} + 1);\n  blockDim = {{1, 1, 1}}; threadIdx = {{0, 0, 0}};\n",
        vl = kernel.value_len,
        kl = kernel.index_len
    );
    let args: Vec<String> = (0..nvars).map(|v| format!("in[{v}].data(), n[{v}]")).collect();
    s += &format!(
        "  for (unsigned bz = 0; bz < {}; bz++) for (long long by = 0; by < splits; by++) for (long long bx = 0; bx < rows; bx++) {{ blockIdx = {{(unsigned)bx, (unsigned)by, bz}}; k{k}::keopsr_reduce({}{}rows, inner, chunk, acc.data(), arg.data()); }}\n",
        kernel.out_chunks,
        args.join(", "),
        if args.is_empty() { "" } else { ", " }
    );
    s += &format!("  FILE* o = std::fopen(\"out_{k}.bin\", \"wb\");\n  std::fwrite(acc.data(), sizeof({t}), acc.size() - 1, o);\n  std::fwrite(arg.data(), 8, arg.size() - 1, o);\n  std::fclose(o);\n}}\n");
    s
}

fn write_inputs(dir: &std::path::Path, k: usize, c: &Case) {
    let mut bytes: Vec<u8> = Vec::new();
    for (values, n, _) in &c.data {
        bytes.extend((*n as i64).to_le_bytes());
        bytes.extend((values.len() as i64).to_le_bytes());
        for &v in values {
            match c.precision {
                Precision::F64 => bytes.extend(v.to_le_bytes()),
                Precision::F32 => bytes.extend((v as f32).to_le_bytes()),
            }
        }
    }
    let chunk = c.inner.div_ceil(c.splits);
    for v in [c.rows, c.inner, chunk, c.splits] {
        bytes.extend((v as i64).to_le_bytes());
    }
    std::fs::write(dir.join(format!("in_{k}.bin")), bytes).unwrap();
}

/// Merges the emulated kernel's partial states and compares with the CPU.
fn check(dir: &std::path::Path, k: usize, c: &Case) {
    let monoid = Monoid { reduction: c.formula.reduction, scheme: c.scheme };
    let (vl, kl) = monoid.state_len();
    let bytes = std::fs::read(dir.join(format!("out_{k}.bin"))).unwrap();
    let size = if c.precision == Precision::F64 { 8 } else { 4 };
    let n_acc = c.splits * c.rows * vl;
    let acc: Vec<f64> = bytes[..n_acc * size]
        .chunks(size)
        .map(|b| if size == 8 { f64::from_le_bytes(b.try_into().unwrap()) } else { f32::from_le_bytes(b.try_into().unwrap()) as f64 })
        .collect();
    let arg: Vec<i64> = bytes[n_acc * size..].chunks(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect();
    let inputs: Vec<Input<'_>> = c.data.iter().map(|(v, r, d)| Input::matrix(v, *r, *d)).collect();
    let options = Options { precision: c.precision, sum_scheme: c.scheme, ..Options::default() };
    let cpu = evaluate(&c.formula, &inputs, &options, &mut || false).unwrap();
    let (value_cols, index_cols) = c.formula.reduction.output_cols();
    let tol = if c.precision == Precision::F64 { 1e-12 } else { 1e-4 };
    for r in 0..c.rows {
        let (mut v, mut kk) = (vec![0.0f64; vl], vec![EMPTY; kl]);
        monoid.init(&mut v, &mut kk);
        for split in 0..c.splits {
            let at = split * c.rows + r;
            let ok: Vec<usize> = arg[at * kl..(at + 1) * kl].iter().map(|&i| if i < 0 { EMPTY } else { i as usize }).collect();
            monoid.merge(&mut v, &mut kk, &acc[at * vl..(at + 1) * vl], &ok);
        }
        let (mut values, mut indices) = (vec![0.0; value_cols], vec![0i32; index_cols]);
        monoid.finalize(&v, &kk, &mut values, &mut indices);
        if let Some((_, cv)) = &cpu.values {
            for (col, &x) in values.iter().enumerate() {
                let y = cv[col * c.rows + r];
                let same = (x.is_nan() && y.is_nan()) || x == y || (x - y).abs() <= tol * y.abs().max(1.0);
                assert!(same, "{} ({:?}): row {r} column {col}: kernel {x} vs CPU {y}", c.text, c.precision);
            }
        }
        if let Some((_, ci)) = &cpu.indices {
            for (col, &x) in indices.iter().enumerate() {
                assert_eq!(x, ci[col * c.rows + r], "{} ({:?}): row {r} index column {col}", c.text, c.precision);
            }
        }
    }
}

#[test]
fn generated_kernels_match_the_cpu_engine() {
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "g++".into());
    if Command::new(&cxx).arg("--version").output().is_err() {
        eprintln!("skipped: no C++ compiler ({cxx})");
        return;
    }
    let mut cases = Vec::new();
    for (b, body) in BODIES.iter().enumerate() {
        for reduction in REDUCTIONS {
            let text = reduction.replace("{F}", body);
            cases.push(case(&text, Precision::F64, SumScheme::Block, b as u64 * 10));
        }
        cases.push(case(&format!("Sum_Reduction({body}, 1)"), Precision::F32, SumScheme::Kahan, 7));
        cases.push(case(&format!("Sum_Reduction({body}, 0)"), Precision::F32, SumScheme::Direct, 9));
    }
    for (k, &(text, aliases, precision, scheme)) in HIGH_DIM.iter().enumerate() {
        let c = case_with(text, aliases, precision, scheme, 100 + k as u64);
        let kernel = cuda::kernel(&c.formula, &Options { precision, sum_scheme: scheme, ..Options::default() });
        // Pair sums of dimension >= 16 between a row and a reduced-index
        // operand run in register blocks.
        let high = aliases.iter().any(|a| ["(20)", "(150)", "(500)", "(2000)"].iter().any(|d| a.ends_with(d)));
        assert_eq!(kernel.source.contains("pair sum in blocks"), high, "{text}:\n{}", kernel.source);
        let arrays = thread_arrays(&kernel.source);
        assert!(arrays.iter().all(|&n| n <= 64), "{text}: per-thread arrays of sizes {arrays:?} in\n{}", kernel.source);
        let output_dim = c.formula.reduction.output_cols().0;
        let width = cuda::codegen::out_chunk(precision);
        assert_eq!(kernel.out_chunks, if output_dim >= 64 { output_dim.div_ceil(width) } else { 1 }, "{text}");
        cases.push(c);
    }
    let dir = std::env::temp_dir().join(format!("keopsr-emulated-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut src = SHIM.to_string();
    for (k, c) in cases.iter().enumerate() {
        src += &program(k, c);
        write_inputs(&dir, k, c);
    }
    src += "int main() {\n";
    for k in 0..cases.len() {
        src += &format!("  run{k}();\n");
    }
    src += "  return 0;\n}\n";
    std::fs::write(dir.join("kernels.cpp"), &src).unwrap();
    let built = Command::new(&cxx).current_dir(&dir).args(["-O1", "-w", "-o", "kernels", "kernels.cpp"]).output().unwrap();
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    let ran = Command::new(dir.join("kernels")).current_dir(&dir).output().unwrap();
    assert!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));
    for (k, c) in cases.iter().enumerate() {
        check(&dir, k, c);
    }
    let _ = std::fs::remove_dir_all(dir);
}
