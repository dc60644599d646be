#!/bin/bash
# The project's test command (README). Tests that need root/Docker/systemd-nspawn skip
# outside CI and fail when CI=true; .ci/run installs and starts what they need first.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"; }

echo "== cargo test --workspace"
cargo test --workspace --no-fail-fast "$@"

# ---- further test steps go below this line ----
