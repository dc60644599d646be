#!/bin/bash
# The project's test command (README). Tests that need root/Docker/systemd-nspawn skip
# outside CI and fail when CI=true; .ci/run installs and starts what they need first.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"; }

# The Debian package first: its release build is the one tests/e2e_deb.rs installs (there
# scripts/package.sh only repackages), and lintian must pass with no error or warning
# (the package's overrides, with reasons, are in debian/lintian-overrides).
echo "== package"
bash scripts/package.sh
echo "== lintian"
bash scripts/lint-package.sh

echo "== cargo test --workspace"
cargo test --workspace --no-fail-fast "$@"

# ---- further test steps go below this line ----
