# Developer shortcuts; the README's commands (tools/run.sh) also set up the machine.
.PHONY: install test demo document rust-test bench

install:
	R CMD INSTALL --no-multiarch .

rust-test:
	cd src/rust && cargo test --profile ci --jobs 2 -p keopsr-core

test: install rust-test
	Rscript tools/check-vignettes.R
	Rscript tools/test.R

demo: install
	Rscript demo/keopsr.R

# Regenerates R/extendr-wrappers.R, NAMESPACE and man/.
document:
	Rscript tools/document.R

# Benchmark suite (bench/README.md): writes bench/RESULTS.md. Quick check:
# make bench BENCH_ARGS=--quick
bench: install
	Rscript bench/run.R $(BENCH_ARGS)
