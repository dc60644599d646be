#!/bin/bash
# Boot a throw-away machine with a real systemd (252, the host's) as PID 1 and a real
# dockerd (docker.service) inside, in systemd-nspawn, over a copy-on-write overlay of
# this host's root. Needs root and: systemd-container docker.io busybox-static
# (scripts/install-deps.sh). See README.md next to this file.
#
#   machine.sh start NAME              boot; stops a leftover NAME first. PRE_BOOT='cmds'
#                                      runs before boot with $ROOT = the machine's root;
#                                      BOOT_TIMEOUT (s, default 90). DOCKER_STATE=DIR (a
#                                      real filesystem) holds /var/lib/docker instead of a
#                                      tmpfs, so Docker's state outlives `crash`
#   machine.sh crash NAME              power cut: SIGKILL the machine's PID 1, no shutdown;
#                                      its root (overlay upper layer) and DOCKER_STATE stay
#   machine.sh boot NAME               boot a crashed NAME again on the same root (pass the
#                                      same DOCKER_STATE): the boot after a power cut
#   machine.sh exec NAME CMD...        run CMD inside (all namespaces of its PID 1, cwd /)
#   machine.sh wait-docker NAME        wait for dockerd inside, import local/busybox:latest
#   machine.sh copy-in NAME SRC DST    copy host file/dir SRC to DST inside the machine
#   machine.sh log NAME                print the console log (systemd-nspawn output)
#   machine.sh stop NAME               power off and remove every trace
set -euo pipefail
cmd=${1:?start|exec|wait-docker|copy-in|log|crash|boot|stop}; name=${2:?machine name}; shift 2
[[ $name =~ ^[A-Za-z0-9][A-Za-z0-9_-]*$ ]] || { echo "bad machine name: $name" >&2; exit 2; }
base=/run/hlsys-machines/$name
IMAGE=local/busybox:latest

# PID from FILE if that process is still the one we started (pids may be reused; /run
# may not be a tmpfs here, so a stale file can survive a reboot).
live_pid() { # FILE COMM
  local pid; pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = "$2" ] && echo "$pid"
}
init_pid() {
  live_pid "$base.init" systemd || { echo "machine $name is not running" >&2; exit 1; }
}
inside() { local pid; pid=$(init_pid) || exit 1; nsenter -t "$pid" -a "$@"; }

# Closes every descriptor above 2 of the calling (sub)shell.
close_inherited_fds() {
  local fd
  for fd in /proc/$BASHPID/fd/*; do
    fd=${fd##*/}
    if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
  done
}

stop() {
  local nspawn init
  nspawn=$(live_pid "$base.pid" systemd-nspawn || true)
  init=$(live_pid "$base.init" systemd || true)
  # SIGRTMIN+4 asks systemd for a clean poweroff; nspawn exits when its PID 1 does.
  [ -n "$init" ] && kill -s SIGRTMIN+4 "$init" 2>/dev/null || true
  for _ in $(seq 100); do
    [ -n "$nspawn" ] && kill -0 "$nspawn" 2>/dev/null || break; sleep 0.1
  done
  # Killing nspawn alone would orphan the container; killing its PID 1 ends the pid ns.
  [ -n "$init" ] && kill -9 "$init" 2>/dev/null || true
  [ -n "$nspawn" ] && kill -9 "$nspawn" 2>/dev/null || true
  umount "$base/root" 2>/dev/null || umount -l "$base/root" 2>/dev/null || true
  umount "$base" 2>/dev/null || umount -l "$base" 2>/dev/null || true
  rmdir "$base" 2>/dev/null || true
  rm -f "$base".{pid,init,log,uuid,crashed}
}

# Boots systemd-nspawn on the overlay mounted at $base/root and waits until it is up.
boot() {
  [ -s "$base.uuid" ] || tr -d - </proc/sys/kernel/random/uuid >"$base.uuid"
  local docker_state=--tmpfs=/var/lib/docker
  if [ -n "${DOCKER_STATE:-}" ]; then mkdir -p "$DOCKER_STATE"; docker_state=--bind=$DOCKER_STATE:/var/lib/docker; fi
  # --private-network: dockerd inside makes its bridges/iptables in the machine's own
  #   netns (only loopback), never on the host or in another machine.
  # --tmpfs=/var/lib/docker: overlay2 cannot sit on the overlay root; with DOCKER_STATE a
  #   bind of a real directory instead, which survives `crash` (a power cut).
  # --uuid: one per machine, kept across `boot` (same machine, booted again).
  # --keep-unit --register=no: the host has no systemd as PID 1 (no machined) to register with.
  # --bind=/sys/fs/cgroup: systemd and dockerd inside need the (host's) cgroup hierarchy.
  # --capability=all, --system-call-filter: dockerd needs them (keyrings, bpf for devices).
  # systemd.mask=postgresql.service, docker-registry.service, prometheus.service: the host
  #   root enables them (the registry is installed for tests/e2e_prepare.rs, which runs its
  #   own; prometheus for promtool, tests/e2e_notify.rs); not wanted in every test machine.
  # close_inherited_fds: a machine outlives a test that was killed (the next start of the
  #   name stops it); it must not keep that test's descriptors, such as the lock of
  #   `flock LOCK cargo test`, or every later run waits on a machine nobody owns.
  ( close_inherited_fds
    exec setsid systemd-nspawn -D "$base/root" --register=no --keep-unit -M "$name" \
    --uuid="$(cat "$base.uuid")" --private-network \
    --capability=all --system-call-filter='@keyring bpf' --bind=/sys/fs/cgroup \
    "$docker_state" \
    -b -- systemd.unit=multi-user.target systemd.mask=postgresql.service systemd.mask=docker-registry.service systemd.mask=prometheus.service
  ) </dev/null >"$base.log" 2>&1 &
  echo $! >"$base.pid"
  t0=${EPOCHREALTIME/./}; deadline=$((EPOCHSECONDS + ${BOOT_TIMEOUT:-90}))
  while ((EPOCHSECONDS < deadline)); do
    init=$(pgrep -P "$(cat "$base.pid")" -x systemd || true)
    if [ -n "$init" ]; then
      echo "$init" >"$base.init"
      # --wait blocks until boot is finished; "degraded" (a failed unit) still counts as
      # booted: tests may install generators/units that fail on purpose.
      state=$(timeout $((deadline - EPOCHSECONDS + 1)) \
        nsenter -t "$init" -a systemctl is-system-running --wait 2>/dev/null || true)
      if [ "$state" = running ] || [ "$state" = degraded ]; then
        echo "booted $name in $(( (${EPOCHREALTIME/./} - t0) / 1000 )) ms (state $state, PID 1 is host pid $init)"
        [ "$state" = running ] || nsenter -t "$init" -a systemctl --failed --no-legend --no-pager >&2 || true
        return 0
      fi
    fi
    kill -0 "$(cat "$base.pid")" 2>/dev/null || break
    sleep 0.2
  done
  echo "boot of $name failed; console log:" >&2; tail -40 "$base.log" >&2; stop; return 1
}

case $cmd in
start)
  if [ -e "$base" ] || [ -e "$base.pid" ]; then echo "stopping leftover machine $name"; stop; fi
  # All of the machine's writes go to a tmpfs: the host's disk is never touched and
  # stop leaves nothing behind.
  mkdir -p "$base"; mountpoint -q "$base" || mount -t tmpfs tmpfs "$base"
  mkdir -p "$base"/{upper,work,root}
  # Copy-on-write overlay of the host root: the machine has every host binary (systemd,
  # dockerd, busybox, this repo) without building an image.
  mount -t overlay overlay -o lowerdir=/,upperdir="$base/upper",workdir="$base/work" "$base/root"
  if [ -n "${PRE_BOOT:-}" ]; then ROOT="$base/root" bash -ec "$PRE_BOOT"; fi
  boot ;;
exec)
  inside "$@" ;;
wait-docker)
  init_pid >/dev/null
  for ((i = 0; ; i++)); do
    inside docker info >/dev/null 2>&1 && break
    if ((i >= 300)); then
      echo "dockerd in $name not up after 60s:" >&2
      inside systemctl status --no-pager -n 30 docker.service >&2 || true; exit 1
    fi
    sleep 0.2
  done
  # No registry: build the image from the host's static busybox (visible inside).
  inside bash -ec '
    docker image inspect "$1" >/dev/null 2>&1 && exit 0
    bb=$(mktemp -d); trap "rm -rf $bb" EXIT
    mkdir -p "$bb/bin" "$bb/tmp" && chmod 1777 "$bb/tmp" && cp /bin/busybox "$bb/bin/"
    for a in sh sleep true echo touch test wget nc httpd cat; do ln -sf busybox "$bb/bin/$a"; done
    tar -C "$bb" -c . | docker import - "$1" >/dev/null' _ "$IMAGE"
  echo "docker ready in $name ($IMAGE present)" ;;
copy-in)
  # Through the machine's own mount namespace: /tmp, /run, /var/lib/docker are mounts
  # inside it, so writing under the overlay from the host would not always land.
  src=${1:?SRC}; dst=${2:?DST}; init_pid >/dev/null
  if [ -d "$src" ]; then
    tar -C "$src" -c . | inside bash -ec 'mkdir -p "$1" && tar -C "$1" -x' _ "$dst"
  else
    inside install -D -m "$(stat -c %a "$src")" /dev/stdin "$dst" <"$src"
  fi ;;
log)
  cat "$base.log" ;;
crash)
  # A power cut: SIGKILL to PID 1 ends the machine's pid namespace, so dockerd, containerd,
  # the shims and every container die at once; nothing is stopped in order and Docker's
  # state (DOCKER_STATE) still says "running". The tmpfs with the overlay's upper layer
  # stays (the machine's disk); `boot` mounts it again, `stop` removes it.
  init=$(live_pid "$base.init" systemd || true); nspawn=$(live_pid "$base.pid" systemd-nspawn || true)
  [ -n "$init$nspawn" ] || { echo "machine $name is not running" >&2; exit 1; }
  [ -n "$init" ] && kill -9 "$init" 2>/dev/null || true
  for _ in $(seq 100); do [ -n "$nspawn" ] && kill -0 "$nspawn" 2>/dev/null || break; sleep 0.1; done
  [ -n "$nspawn" ] && kill -9 "$nspawn" 2>/dev/null || true
  for _ in $(seq 50); do umount "$base/root" 2>/dev/null && break; sleep 0.2; done
  if mountpoint -q "$base/root"; then echo "cannot unmount $base/root after the crash" >&2; exit 1; fi
  rm -f "$base".{pid,init}; touch "$base.crashed"; echo "crashed $name" ;;
boot)
  [ -e "$base.crashed" ] || { echo "machine $name has not crashed (use start)" >&2; exit 1; }
  mount -t overlay overlay -o lowerdir=/,upperdir="$base/upper",workdir="$base/work" "$base/root"
  rm -f "$base.crashed"
  boot ;;
stop)
  stop; echo "stopped $name" ;;
*) echo "usage: $0 start|exec|wait-docker|copy-in|log|crash|boot|stop NAME ..." >&2; exit 2 ;;
esac
