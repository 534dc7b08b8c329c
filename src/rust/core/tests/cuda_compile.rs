//! Every generated CUDA kernel compiles with NVRTC (no GPU needed): every
//! operation of the catalogue, every reduction, gradient formulas, both
//! precisions and summation schemes. Skipped when libnvrtc is not found,
//! unless KEOPSR_REQUIRE_NVRTC=1 (CI sets it).

use keopsr_core::cuda;
use keopsr_core::formula::Formula;
use keopsr_core::reduction::SumScheme;
use keopsr_core::{Options, Precision};

const A: &[&str] = &["x = Vi(2)", "y = Vj(2)", "b = Vj(1)", "p = Pm(1)", "z = Vi(4)", "w = Vj(4)"];

/// Bodies that, together, use every operation of the catalogue.
const BODIES: &[&str] = &[
    "Exp(x - y) + Log(Square(x) + 1) + Sqrt(Square(y) + 0.5) + Rsqrt(Square(x) + 1) + Inv(b + 3) + Abs(x) + Minus(y)",
    "Sin(x * y) + Cos(x + y) + Asin(x * 0.5) + Acos(y * 0.5) + Atan(x * y) + Atan2(x, y) + Powf(Square(y) + 0.5, x)",
    "XLogX(Square(x) + 0.1) + SinXDivX(x) + Pow(x - y, 3) + Pow(x, -2) + Sign(x) + Step(y) + ReLU(x - y) + Floor(x) + Round(y, 2)",
    "IfElse(x - y, x * y, Square(y)) + Clamp(x, -0.5, y) + ClampInt(y, -1, 1) + Mod(x * 3, 1.5, -0.2) * p + IntCst(3)",
    "Equal(x, y) + NotEqual(x, y) + LessThan(x, y) + LessOrEqual(x, y) + Add(x, y) + Subtract(x, y) + Mult(x, y) + Divide(x, y + 3)",
    "Concat(Max(x - y), Min(x * y)) + Concat(ArgMax(x), ArgMin(y)) + Concat(Elem(x, 0), Extract(y, 1, 1)) + ElemT(b, 2, 1) + ExtractT(b, 0, 2)",
    "Concat(Sum(x), SqNorm2(y)) + Concat(Norm2(x), SqDist(x, y)) + Concat(Scalprod(x, y), (x | y)) + Normalize(x - y) + OneHot(b * 2, 2)",
    "MatVecMult(z, y) + VecMatMult(x, w) + Extract(TensorProd(y, x), 1, 2) + TensorDot(z, y, Ind(2, 2), Ind(2), Ind(1), Ind(0)) + Extract(Kron(x, y, Ind(2), Ind(2)), 0, 2)",
    "WeightedSqDist(w, x, y) + WeightedSqNorm(b, x) + WeightedSqDist(y, x, y)",
    "ComplexMult(x, ComplexExp(y)) + ComplexDivide(x, Real2Complex(b) + 5) + Conj(ComplexExp1j(b)) + ComplexAdd(x, Imag2Complex(b)) + ComplexSubtract(x, y) + ComplexRealScal(b, y) + ComplexSum(z)",
    "Concat(ComplexReal(x), ComplexImag(y)) + Concat(ComplexAbs(x), ComplexAngle(y)) + Concat(ComplexSquareAbs(x), p)",
    "Grad(Exp(-SqDist(x, y)) * b, x, p) + Grad(Grad(Sin(x | y), x, b), x, y) + Diff(Norm2(x - y) * y, x, y)",
    "SqNormDiag(y, x) + SqNormIso(p, x) + SymSqNorm(w, x) + Sum(SumT(b, 2) * x) + Sum(Zero(2) + x) * IntInv(3) * RatCst(2, 3) + Sum(AdjointOperator(MatVecMult(w, x), x, y)) + TraceOperator(MatVecMult(w, x), x) + Sum(GradMatrix(Sin(x) * y, x)) + Divergence(x * SqNorm2(y - x), x) + Laplacian(Exp(-SqDist(x, y)), x)",
];

const REDUCTIONS: &[&str] = &[
    "Sum_Reduction({F}, 1)",
    "Sum_Reduction({F}, 0)",
    "Min_Reduction({F}, 1)",
    "Max_ArgMax_Reduction({F}, 0)",
    "ArgMin_Reduction({F}, 1)",
    "KMin_ArgKMin_Reduction({F}, 3, 1)",
    "LogSumExp_Reduction({F}, 1)",
    "LogSumExp_Reduction(Sum({F}), 0, y)",
    "SumSoftMaxWeight_Reduction(Sum({F}), 1, x)",
    "Max_SumShiftExpWeight_Reduction(Sum({F}), 1, x)",
    "Max_SumShiftExp_Reduction(Sum({F}), 0)",
];

fn nvrtc_found() -> bool {
    match cuda::nvrtc::load(None) {
        Ok(_) => true,
        Err(e) => {
            assert!(std::env::var("KEOPSR_REQUIRE_NVRTC").as_deref() != Ok("1"), "NVRTC is required here: {e}");
            eprintln!("skipped: {e}");
            false
        }
    }
}

#[test]
fn every_operation_is_covered_by_the_bodies() {
    let all = BODIES.join(" ");
    for entry in keopsr_core::ops::catalogue() {
        assert!(all.contains(&format!("{}(", entry.name)), "no kernel test uses {}", entry.name);
    }
}

#[test]
fn every_kernel_compiles_with_nvrtc() {
    if !nvrtc_found() {
        return;
    }
    let mut compiled = 0;
    for body in BODIES {
        for reduction in REDUCTIONS {
            let formula = reduction.replace("{F}", body);
            let f = Formula::parse(&formula, A).unwrap_or_else(|e| panic!("{formula}: {e}"));
            for (precision, scheme) in [(Precision::F64, SumScheme::Block), (Precision::F32, SumScheme::Kahan)] {
                let options = Options { precision, sum_scheme: scheme, ..Options::default() };
                let kernel = cuda::kernel(&f, &options);
                let out = cuda::nvrtc::compile(&kernel.source, "compute_80")
                    .unwrap_or_else(|e| panic!("{formula} ({precision:?}): {e}\n{}", kernel.source));
                assert!(!out.image.is_empty());
                compiled += 1;
            }
        }
    }
    // High dimensions (pair sums read component by component).
    for d in [20, 500, 2000] {
        let aliases = [format!("x = Vi({d})"), format!("y = Vj({d})"), "b = Vj(1)".to_string()];
        let aliases: Vec<&str> = aliases.iter().map(String::as_str).collect();
        for formula in ["Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)", "ArgKMin_Reduction(SqDist(x, y) + Sum(Abs(x - y)), 10, 1)"] {
            let f = Formula::parse(formula, &aliases).unwrap();
            let kernel = cuda::kernel(&f, &Options::default());
            cuda::nvrtc::compile(&kernel.source, "compute_80").unwrap_or_else(|e| panic!("{formula}, D = {d}: {e}"));
        }
    }
    // High-dimensional outputs (chunked along blockIdx.z), both precisions.
    let aliases = ["x = Vi(3)", "y = Vj(3)", "b = Vj(1000)"];
    for formula in ["Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)", "SumSoftMaxWeight_Reduction(-SqDist(x, y), 1, b)"] {
        let f = Formula::parse(formula, &aliases).unwrap();
        for (precision, scheme) in [(Precision::F64, SumScheme::Block), (Precision::F32, SumScheme::Kahan)] {
            let kernel = cuda::kernel(&f, &Options { precision, sum_scheme: scheme, ..Options::default() });
            assert_eq!(kernel.out_chunks, 1000usize.div_ceil(cuda::codegen::out_chunk(precision)), "{formula}");
            cuda::nvrtc::compile(&kernel.source, "compute_80").unwrap_or_else(|e| panic!("{formula}, {precision:?}: {e}"));
        }
    }
    // A real architecture gives a CUBIN.
    let f = Formula::parse("Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)", A).unwrap();
    let out = cuda::compile(&f, &Options::default(), "sm_90", None).unwrap();
    assert!(out.is_cubin && out.image.starts_with(b"\x7fELF"));
    assert!(compiled >= BODIES.len() * REDUCTIONS.len() * 2);
}

#[test]
fn the_kernel_cache_survives_corruption() {
    if !nvrtc_found() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("keopsr-cache-test-{}", std::process::id()));
    *cuda::nvrtc::cache_dir().lock().unwrap() = Some(dir.clone());
    let src = cuda::kernel(&Formula::parse("Sum_Reduction(x * y, 1)", A).unwrap(), &Options::default()).source;
    let first = cuda::nvrtc::compile_cached(&src, "compute_80").unwrap();
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(files.len(), 1);
    // A truncated entry is recompiled and rewritten.
    std::fs::write(&files[0], b"garbage").unwrap();
    let again = cuda::nvrtc::compile_cached(&src, "compute_80").unwrap();
    assert_eq!(again.image, first.image);
    // The rewritten entry holds the image after its header (length, checksum).
    let entry = std::fs::read(&files[0]).unwrap();
    assert!(entry.len() > first.image.len() && entry.ends_with(&first.image));
    assert!(!again.cached && cuda::nvrtc::compile_cached(&src, "compute_80").unwrap().cached);
    *cuda::nvrtc::cache_dir().lock().unwrap() = None;
    let _ = std::fs::remove_dir_all(dir);
}
