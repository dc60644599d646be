#!/bin/bash
# Start a Docker engine on a host without systemd as PID 1 (if not already up) and make
# sure the image the tests use, local/busybox:latest, exists (no registry: built from
# the static busybox binary). Idempotent.
set -euo pipefail

LOG=${DOCKERD_LOG:-/var/log/dockerd.log}
IMAGE=local/busybox:latest
log() { echo "[start-dockerd] $*"; }

# Serialize concurrent callers (several test processes): one dockerd, one import.
exec 9>/run/hlsys-start-dockerd.lock
flock 9

if docker info >/dev/null 2>&1; then
  log "dockerd already running"
else
  log "starting dockerd (log: $LOG)"
  setsid dockerd >"$LOG" 2>&1 </dev/null 9>&- &   # 9>&-: dockerd must not hold the lock
  for ((i = 0; ; i++)); do
    docker info >/dev/null 2>&1 && break
    if ((i >= 300)); then            # 300 x 0.2 s = 60 s
      log "dockerd did not come up within 60s; log tail:"; tail -40 "$LOG" >&2; exit 1
    fi
    sleep 0.2
  done
  log "dockerd is up"
fi

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "$IMAGE already present"
else
  log "importing $IMAGE from /bin/busybox"
  bb=$(mktemp -d); trap 'rm -rf "$bb"' EXIT
  mkdir -p "$bb/bin" "$bb/tmp" && chmod 1777 "$bb/tmp" && cp /bin/busybox "$bb/bin/"
  for a in sh sleep true echo touch test wget nc httpd cat; do ln -sf busybox "$bb/bin/$a"; done
  tar -C "$bb" -c . | docker import - "$IMAGE" >/dev/null
  log "imported $IMAGE"
fi
