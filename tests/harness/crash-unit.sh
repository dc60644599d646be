#!/bin/bash
# Crash a service's main process the way a real crash looks to systemd, then prove that
# it happened. Runs INSIDE a machine: copy it in (machine.sh copy-in; the checkout may be
# below /tmp, the machine's own tmpfs), then machine.sh exec NAME bash PATH UNIT.
#
#   crash-unit.sh UNIT [TIMEOUT_S]
#
# Why not `systemctl kill --signal=KILL UNIT`: that signals every process of the unit's
# cgroup, and on a cgroup v1 host systemd 252 refuses with "Failed to send signal SIGKILL
# to auxiliary processes: Input/output error" (seen on this project's CI machines). A
# crash is the daemon dying, so only the main process is signalled:
#   1. `systemctl kill --kill-whom=main --signal=KILL UNIT` (systemd's own way);
#   2. if systemctl refuses, kill(2) on the unit's MainPID directly, which needs no cgroup
#      support at all.
# Then it waits until systemd has noticed: a different MainPID (the old one gone) or the
# unit in failed/auto-restart, with NRestarts counted up where Restart= is set. It exits
# non-zero, saying why, when no crash can be shown: a test must never go on to check
# "recovery" from a crash that did not happen.
#
# Prints one line: "crashed UNIT: pid OLD killed via (systemctl|kill); now STATE, NRestarts A -> B".
set -uo pipefail
unit=${1:?usage: crash-unit.sh UNIT [TIMEOUT_S]}
timeout_s=${2:-30}

prop() { systemctl show -P "$1" "$unit" 2>/dev/null; }

old_pid=$(prop MainPID)
old_restarts=$(prop NRestarts)
if ! [[ $old_pid =~ ^[1-9][0-9]*$ ]]; then
  echo "crash-unit: $unit has no main process to crash (MainPID=${old_pid:-?}, state $(prop ActiveState))" >&2
  exit 1
fi

if err=$(systemctl kill --kill-whom=main --signal=KILL "$unit" 2>&1); then
  via=systemctl
else
  echo "crash-unit: systemctl kill --kill-whom=main refused ($err); signalling MainPID $old_pid directly" >&2
  if ! err=$(kill -KILL "$old_pid" 2>&1); then
    echo "crash-unit: kill -KILL $old_pid failed too: $err" >&2
    exit 1
  fi
  via=kill
fi

# Proof that the crash happened, seen by systemd: the old process is gone and systemd
# either has a new main process for the unit or holds it failed/auto-restart.
deadline=$((SECONDS + timeout_s))
while ((SECONDS < deadline)); do
  pid=$(prop MainPID) state=$(prop ActiveState) sub=$(prop SubState) restarts=$(prop NRestarts)
  gone=true; kill -0 "$old_pid" 2>/dev/null && gone=false
  if $gone && { [[ $pid != "$old_pid" && $pid != 0 ]] || [[ $state == failed || $sub == auto-restart ]]; }; then
    echo "crashed $unit: pid $old_pid killed via $via; now $state/$sub (MainPID ${pid:-0}), NRestarts ${old_restarts:-?} -> ${restarts:-?}"
    exit 0
  fi
  sleep 0.1
done
echo "crash-unit: no crash of $unit seen within ${timeout_s}s (MainPID ${old_pid} -> $(prop MainPID), $(prop ActiveState)/$(prop SubState))" >&2
exit 1
