#!/usr/bin/env bash
# Vendors the Rust crates of the package at DIR (default: the current
# directory) for an offline build: writes DIR/src/rust/vendor.tar.xz (every
# crate of Cargo.lock, from `cargo vendor`) and DIR/src/rust/vendor-config.toml
# (cargo's source replacement; configure copies it to src/rust/.cargo/).
# Needs the network (or cargo's cache). Meant for a temporary copy of the tree:
# tools/build-tarball.sh calls it; the development tree keeps no vendored files
# (both are in .gitignore).
set -euo pipefail
dir=${1:-.}
cd "$dir/src/rust"
export PATH="$PATH:$HOME/.cargo/bin"
rm -rf vendor vendor.tar.xz
# --locked: the versions are exactly those of Cargo.lock.
cargo vendor --locked --versioned-dirs --quiet vendor > /dev/null
# Reproducible archive: sorted names, fixed owner and dates.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='2000-01-01 00:00Z' \
  -cf - vendor | xz -9e -T1 > vendor.tar.xz
rm -rf vendor
cat > vendor-config.toml <<'TOML'
# Written by tools/vendor.sh. configure copies this file to
# src/rust/.cargo/config.toml, which the build uses as CARGO_HOME: "vendor"
# is then src/rust/vendor (unpacked from vendor.tar.xz by configure).
[source.crates-io]
replace-with = "vendored-sources"

[source.vendored-sources]
directory = "vendor"
TOML
echo "vendored $(tar -tJf vendor.tar.xz | grep -c '^vendor/[^/]*/$') crates into $(pwd)/vendor.tar.xz ($(du -k vendor.tar.xz | cut -f1) kB)"
