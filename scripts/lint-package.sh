#!/bin/bash
# lintian on the package scripts/package.sh built (the newest target/debian/hlsys_*.deb,
# or the one named): fails on any error or warning. Overrides, each with its reason,
# ship in the package (debian/lintian-overrides).
set -euo pipefail
cd "$(dirname "$0")/.."
deb=${1:-$(ls -t target/debian/hlsys_*.deb 2>/dev/null | head -1)}
[ -n "$deb" ] && [ -f "$deb" ] || { echo "[lint-package] no package; run scripts/package.sh" >&2; exit 1; }
echo "[lint-package] lintian $deb" >&2
# -I -E: show the informational and experimental tags too (they do not fail).
lintian -I -E --fail-on error,warning "$deb"
