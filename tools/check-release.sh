#!/usr/bin/env bash
# Builds the release tarball (tools/build-tarball.sh), installs it with no
# network, and runs R CMD check --no-manual on it, as CRAN would:
#   bash tools/check-release.sh [WORKDIR]
# WORKDIR (default: a new temporary folder, kept) receives the tarball, the
# library lib/ with the installed package, install.log and keopsr.Rcheck/.
# The install runs in a network namespace with no network (unshare -n as
# root, unshare -rn otherwise) when the system allows it; configure then
# builds from the vendored crates with cargo --offline and a CARGO_HOME
# inside the build folder, so nothing can be downloaded and ~/.cargo is not
# used. R CMD check reuses that installation (--install=check:install.log)
# and runs everything, tests and vignettes included, unless CHECK_ARGS adds
# options (tools/run.sh test passes --no-tests --ignore-vignettes: it runs
# both itself, once). Inside the namespace the loopback interface is
# brought up, so that local sockets (future's multisession workers) work
# while the outside network stays unreachable.
# Fails on any ERROR or WARNING of R CMD check; prints the NOTEs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d "${TMPDIR:-/tmp}/keopsr-release.XXXXXX")}
mkdir -p "$work"
work=$(cd "$work" && pwd)
rm -rf "$work/lib" "$work/keopsr.Rcheck" "$work"/keopsr_*.tar.gz
mkdir -p "$work/lib"

echo "== release tarball"
bash "$root/tools/build-tarball.sh" --outdir "$work"
tarball=$(ls "$work"/keopsr_*.tar.gz)

# A new network namespace has only a loopback interface, and it is down.
lo_up='command -v ip >/dev/null && ip link set lo up; exec "$@"'
nonet=()
if unshare -n true 2>/dev/null; then
  nonet=(unshare -n sh -c "$lo_up" sh)
elif unshare -rn true 2>/dev/null; then
  nonet=(unshare -rn sh -c "$lo_up" sh)
else
  echo "note: no network namespace available; the install relies on cargo --offline alone"
fi

echo "== offline install of $(basename "$tarball") (${nonet[0]:-cargo} ${nonet[1]:---offline})"
# _R_SHLIB_BUILD_OBJECTS_SYMBOL_TABLES_: record the symbols of src/*.o, as
# R CMD check does for its own install, so that its compiled-code check looks
# at keopsr's objects (not at Rust's standard library inside the .so).
if ! "${nonet[@]}" env CARGO_NET_OFFLINE=true _R_SHLIB_BUILD_OBJECTS_SYMBOL_TABLES_=TRUE \
     R CMD INSTALL --no-multiarch \
     --library="$work/lib" "$tarball" > "$work/install.log" 2>&1; then
  tail -n 40 "$work/install.log"
  echo "offline install of the release tarball failed (log: $work/install.log)" >&2
  exit 1
fi
grep -E '^keopsr: |^\* DONE' "$work/install.log"

echo "== R CMD check --no-manual"
cd "$work"
status=0
"${nonet[@]}" env _R_CHECK_FORCE_SUGGESTS_=true R CMD check --no-manual ${CHECK_ARGS:-} \
  --install="check:$work/install.log" --library="$work/lib" "$tarball" > check.out 2>&1 || status=$?
grep -E '\.\.\. (NOTE|WARNING|ERROR)$' check.out || true
result=$(grep '^Status:' check.out || echo "Status: no result")
echo "R CMD check: $result (log: $work/keopsr.Rcheck/00check.log)"
if [ "$status" -ne 0 ] || grep -qE 'WARNING|ERROR|no result' <<<"$result"; then
  # The details of each problem.
  sed -n '/\.\.\. \(WARNING\|ERROR\)$/,/^\* /p' check.out
  echo "R CMD check of the release tarball failed" >&2
  exit 1
fi
