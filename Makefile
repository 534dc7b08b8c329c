# Developer shortcuts; the README's commands (tools/run.sh) also set up the machine.
.PHONY: install test demo document rust-test

install:
	R CMD INSTALL --no-multiarch .

rust-test:
	cd src/rust && cargo test --release --jobs 2 -p keopsr-core

test: install rust-test
	Rscript tools/check-vignettes.R
	Rscript tools/test.R

demo: install
	Rscript demo/keopsr.R

# Regenerates R/extendr-wrappers.R, NAMESPACE and man/.
document:
	Rscript tools/document.R
