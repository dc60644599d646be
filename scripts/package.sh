#!/bin/bash
# Build the Debian package: target/debian/hlsys_<version>-<revision>_<arch>.deb, carrying
# hlsys, hlsys-generator, man pages, completions and examples ([package.metadata.deb]
# in Cargo.toml). Installs the pinned cargo-deb first (skipped when that version is there).
#
#   scripts/package.sh [CARGO-DEB ARGS...]     e.g. --deb-version 0.1.0-2 --output DIR
#
# One release build of both binaries (a no-op when fresh), then `cargo deb --no-build`:
# the generator is another workspace package, which cargo-deb would not build itself.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"; }

CARGO_DEB_VERSION=3.8.0
log() { echo "[package] $*" >&2; }

if [ "$(cargo deb --version 2>/dev/null)" != "cargo-deb $CARGO_DEB_VERSION" ]; then
  log "installing cargo-deb $CARGO_DEB_VERSION"
  cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked --quiet
fi

t0=$SECONDS
cargo build --release -p hlsys -p hlsys-generator
log "release build: $((SECONDS - t0)) s"

# With a polkit rule in dbus/, the variant that installs it (see Cargo.toml).
variant=()
if compgen -G 'dbus/*.rules' >/dev/null; then variant=(--variant polkit); fi

t0=$SECONDS
cargo deb -p hlsys --no-build "${variant[@]}" "$@"
log "cargo deb: $((SECONDS - t0)) s"
