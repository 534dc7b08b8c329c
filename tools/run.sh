#!/usr/bin/env bash
# Sets up a fresh Debian machine for keopsr, builds it, and runs the demo or
# the whole test suite:
#   bash tools/run.sh demo
#   bash tools/run.sh test    # cargo tests, release tarball (vignettes built) + R CMD check, testthat
#   bash tools/run.sh check   # only the release tarball: built, installed offline, R CMD check
# Installs R and the R packages from Debian if missing (CRAN is not needed);
# the Rust crates come from crates.io through cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-test}

packages=(r-base-dev r-cran-testthat r-cran-knitr r-cran-rmarkdown r-cran-roxygen2 r-cran-fnn r-cran-rann r-cran-rspectra r-cran-callr r-cran-cli r-cran-ggplot2 r-cran-future r-cran-future.apply r-cran-parallelly r-cran-progressr iproute2)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

export PATH="$PATH:$HOME/.cargo/bin"
if ! command -v cargo >/dev/null; then
  echo "cargo (Rust) is needed to build keopsr: install it with rustup (https://rustup.rs)" >&2
  exit 1
fi

# The release tarball (crates vendored), installed with no network and
# checked with R CMD check --no-manual (tools/check-release.sh). Its folder
# is removed when everything passed, kept for inspection otherwise.
release=""
check_release() {
  release=$(mktemp -d "${TMPDIR:-/tmp}/keopsr-release.XXXXXX")
  bash tools/check-release.sh "$release"
}
if [ "$what" = check ]; then
  check_release
  rm -rf "$release"
  exit 0
fi

# Install into the site library when writable, else into the user library.
lib=$(Rscript -e 'cat(.libPaths()[1])')
if [ ! -w "$lib" ]; then
  lib=$(Rscript -e 'cat(path.expand(Sys.getenv("R_LIBS_USER")))')
  mkdir -p "$lib"
fi
R CMD INSTALL --no-multiarch --library="$lib" .
export R_LIBS="$lib${R_LIBS:+:$R_LIBS}"

case "$what" in
  demo)
    Rscript demo/keopsr.R
    ;;
  test)
    # NVRTC (no GPU needed) so that every generated CUDA kernel is compiled.
    nvrtc_env="${KEOPSR_NVRTC_VENV:-$HOME/.cache/keopsr-nvrtc}"
    if [ -z "${KEOPSR_NVRTC:-}" ]; then
      if ! python3 -m venv --help >/dev/null 2>&1; then
        sudo=""
        [ "$(id -u)" -ne 0 ] && sudo=sudo
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-venv python3-pip
      fi
      [ -x "$nvrtc_env/bin/pip" ] || python3 -m venv "$nvrtc_env"
      "$nvrtc_env/bin/pip" install -q nvidia-cuda-nvrtc-cu12
      KEOPSR_NVRTC=$(ls "$nvrtc_env"/lib/python3*/site-packages/nvidia/cuda_nvrtc/lib/libnvrtc.so.* | head -1)
      export KEOPSR_NVRTC
    fi
    export KEOPSR_REQUIRE_NVRTC=1
    (cd src/rust && cargo test --profile ci --jobs 2 -p keopsr-core)
    # R CMD build runs every vignette (an error fails the build), and the
    # testthat suite runs below: R CMD check does not run them a second time.
    CHECK_ARGS="--no-tests --ignore-vignettes" check_release
    # The testthat suite (R CMD check above ran it too, quietly) against the
    # package installed from the release tarball, with the closing
    # "testthat: N passed, N failed, N skipped" line.
    status=0
    R_LIBS="$release/lib:$R_LIBS" Rscript tools/test.R || status=$?
    [ "$status" -eq 0 ] && rm -rf "$release"
    exit "$status"
    ;;
  *)
    echo "usage: bash tools/run.sh demo|test|check" >&2
    exit 2
    ;;
esac
