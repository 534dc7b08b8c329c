# First calls of every operation of keops_operations() (issue 19): each
# operation in a formula never seen before (a fresh integer constant in it),
# reduced over M = N = 1e3 points, timed from the formula string to the
# result (keops_kernel() + the call: parse, differentiation where the
# formula has derivatives, planning, evaluation), then the median of later
# calls of the same formula. The goal is every first call under 20 ms.
#
# Run: Rscript bench/first_call_ops.R [--n=1e3] [--threads=2] [--runs=5]
#        [--out=bench/RESULTS-first-call-ops.md]
library(keopsr)
source("bench/common.R")
N <- as.numeric(arg("n", "1e3"))
threads <- as.integer(arg("threads", "2"))
runs <- as.integer(arg("runs", "5"))
out <- arg("out", "bench/RESULTS-first-call-ops.md")
goal_ms <- 20

# One expression per operation, in x = Vi(4), y = Vj(4) (points in (0, 1),
# so that x * y is inside every domain), s = Vj(1) and A = Pm(16); x and y
# are also 2 complex numbers each.
F <- "Exp(-SqDist(x, y))"
ops <- c(
  Minus = "Minus(x * y)", Exp = "Exp(x * y)", Log = "Log(x * y)", Sqrt = "Sqrt(x * y)", Rsqrt = "Rsqrt(x * y)",
  Inv = "Inv(x * y)", Square = "Square(x * y)", Abs = "Abs(x - y)", Sin = "Sin(x * y)", Cos = "Cos(x * y)",
  Asin = "Asin(x * y)", Acos = "Acos(x * y)", Atan = "Atan(x * y)", Sign = "Sign(x - y)", Step = "Step(x - y)",
  ReLU = "ReLU(x - y)", XLogX = "XLogX(x * y)", SinXDivX = "SinXDivX(x - y)", Floor = "Floor(x * 3 + y)",
  Pow = "Pow(x * y, 7)", Round = "Round(x * y, 2)", IntCst = "IntCst(3) * x", Add = "x + y", Subtract = "x - y",
  Mult = "x * y", Divide = "x / y", Atan2 = "Atan2(x, y)", Powf = "Powf(x, y)", Equal = "Equal(x, y)",
  NotEqual = "NotEqual(x, y)", LessThan = "LessThan(x, y)", LessOrEqual = "LessOrEqual(x, y)",
  IfElse = "IfElse(x - y, x, y)", Clamp = "Clamp(x, y, x + 1)", Mod = "Mod(x, y + 1, y)",
  Grad = sprintf("Grad(%s, x, s)", F), Diff = sprintf("Diff(%s, x, y)", F), ClampInt = "ClampInt(x - y, 0, 1)",
  Sum = "Sum(x * y)", SqNorm2 = "SqNorm2(x - y)", Norm2 = "Norm2(x - y)", Normalize = "Normalize(x - y)",
  SqDist = "SqDist(x, y)", Scalprod = "(x | y)", WeightedSqNorm = "WeightedSqNorm(s, x - y)",
  WeightedSqDist = "WeightedSqDist(s, x, y)", SqNormDiag = "SqNormDiag(x, y)", SqNormIso = "SqNormIso(s, x - y)",
  SymSqNorm = "SymSqNorm(A, x - y)", SumT = "SumT(s, 4) * x", Zero = "Zero(4) + x", IntInv = "IntInv(3) * x",
  RatCst = "RatCst(2, 3) * x", Max = "Max(x * y)", Min = "Min(x * y)", ArgMax = "ArgMax(x * y)",
  ArgMin = "ArgMin(x * y)", Elem = "Elem(x * y, 2)", ElemT = "ElemT(s, 4, 1) * x", Extract = "Extract(x * y, 1, 2)",
  ExtractT = "ExtractT(Extract(x * y, 0, 2), 1, 4)", Concat = "Concat(x, y)", OneHot = "OneHot(Floor(s * 3), 4)",
  MatVecMult = "MatVecMult(A, x - y)", VecMatMult = "VecMatMult(x - y, A)", TensorProd = "TensorProd(x, y)",
  TensorDot = "TensorDot(x, y, Ind(4), Ind(4), Ind(0), Ind(0))", Kron = "Kron(x, y, Ind(2, 2), Ind(2, 2))",
  ComplexReal = "ComplexReal(x * y)", ComplexImag = "ComplexImag(x * y)", Real2Complex = "Real2Complex(x - y)",
  Imag2Complex = "Imag2Complex(x - y)", Conj = "Conj(x - y)", ComplexAbs = "ComplexAbs(x - y)",
  ComplexSquareAbs = "ComplexSquareAbs(x - y)", ComplexAngle = "ComplexAngle(x - y)",
  ComplexExp = "ComplexExp(x - y)", ComplexExp1j = "ComplexExp1j(x - y)", ComplexAdd = "ComplexAdd(x, y)",
  ComplexSubtract = "ComplexSubtract(x, y)", ComplexMult = "ComplexMult(x, y)", ComplexDivide = "ComplexDivide(x, y)",
  ComplexRealScal = "ComplexRealScal(Extract(x, 0, 2), y)", ComplexSum = "ComplexSum(x * y)",
  AdjointOperator = sprintf("AdjointOperator(%s, x, s)", F), GradMatrix = sprintf("GradMatrix(%s, x)", F),
  Divergence = "Divergence(Exp(-(x * y)), x)", Laplacian = sprintf("Laplacian(%s, x)", F),
  TraceOperator = "TraceOperator(Exp(-(x * y)), x)"
)
missing <- setdiff(keops_operations()$name, names(ops))
if (length(missing)) stop("no benchmark formula for: ", paste(missing, collapse = ", "))

set.seed(1)
x <- matrix(runif(4 * N), N)
y <- matrix(runif(4 * N), N)
s <- runif(N)
A <- runif(16)
decl <- c("x = Vi(4)", "y = Vj(4)", "s = Vj(1)", "A = Pm(16)")
keops_options(threads = threads)
invisible(keops_kernel("Sum_Reduction(x * y, 1)", decl)(list(x, y, s, A))) # loads the library and thread pool
rows <- lapply(names(ops), function(name) {
  formula <- sprintf("Sum_Reduction(Sum(%s) * IntCst(%d), 1)", ops[[name]], sample(1e6, 1) + 1e6)
  first <- elapsed(res <- keops_kernel(formula, decl)(list(x, y, s, A)))
  op <- keops_kernel(formula, decl)
  later <- stats::median(vapply(seq_len(runs), function(r) elapsed(op(list(x, y, s, A))), 0))
  data.frame(op = name, first_ms = 1e3 * first, later_ms = 1e3 * later, finite = all(is.finite(res)))
})
rows <- do.call(rbind, rows)
slowest <- rows[which.max(rows$first_ms), ]
lines <- c(
  "# First calls of every operation (bench/first_call_ops.R)",
  "",
  report_header("first_call_ops.R"),
  sprintf("- %d threads, float64", threads),
  sprintf("- `Sum_Reduction(Sum(OP) * IntCst(fresh), 1)` over M = N = %s (x = Vi(4), y = Vj(4), s = Vj(1), A = Pm(16)); first call: from the formula string to the result, a formula never seen before; later: median of %d calls",
          format(N, big.mark = ","), runs),
  sprintf("- Every first call under %d ms: **%s** (slowest: %s, %.1f ms); %d of %d operations give finite results everywhere",
          goal_ms, if (all(rows$first_ms < goal_ms)) "yes" else "no", slowest$op, slowest$first_ms, sum(rows$finite),
          nrow(rows)),
  "",
  "| operation | expression | first call (ms) | later calls (ms) |",
  "|---|---|---|---|",
  sprintf("| %s | `%s` | %.1f | %.1f |", rows$op, gsub("|", "\\|", ops[rows$op], fixed = TRUE), rows$first_ms, rows$later_ms)
)
writeLines(lines, out)
cat(lines, sep = "\n")
