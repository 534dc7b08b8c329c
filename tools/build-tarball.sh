#!/usr/bin/env bash
# Builds the release source tarball keopsr_<version>.tar.gz, which installs
# with no network: the Rust crates are vendored into it.
#   bash tools/build-tarball.sh [--outdir DIR] [R CMD build options...]
# Copies the tree (files tracked by git plus untracked ones that are not
# ignored; no target/ folder) into a temporary folder, vendors the crates
# there (tools/vendor.sh: needs the network or cargo's cache), runs
# R CMD build on the copy (vignettes included: the package is installed
# offline from the vendored crates to build them), moves the tarball to DIR
# (default: the package root) and removes the copy. The development tree is
# left untouched.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
outdir=$root
if [ "${1:-}" = "--outdir" ]; then
  outdir=$(mkdir -p "$2" && cd "$2" && pwd)
  shift 2
fi
export PATH="$PATH:$HOME/.cargo/bin"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/keopsr-build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
copy=$tmp/keopsr
mkdir "$copy"

cd "$root"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # Tracked and untracked-but-not-ignored files that exist.
  git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
    tar --null -T - -cf - | tar -xf - -C "$copy"
else
  tar --exclude=./src/rust/target --exclude='./*.tar.gz' --exclude=./keopsr.Rcheck -cf - . |
    tar -xf - -C "$copy"
fi

bash "$root/tools/vendor.sh" "$copy"

cd "$tmp"
R CMD build "$@" keopsr
tarball=$(ls keopsr_*.tar.gz)
contents=$(tar -tzf "$tarball")
grep -qx 'keopsr/src/rust/vendor.tar.xz' <<<"$contents" ||
  { echo "build-tarball: $tarball lacks src/rust/vendor.tar.xz" >&2; exit 1; }
mv "$tarball" "$outdir/"
echo "built $outdir/$tarball ($(du -k "$outdir/$tarball" | cut -f1) kB)"
