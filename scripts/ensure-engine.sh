#!/usr/bin/env bash
# scripts/ensure-engine.sh — make sure a Docker Engine answers on the default socket.
#
# If `docker version` gets a server answer, nothing happens. Otherwise the engine is
# started: through systemd when systemd runs this machine, else by launching dockerd
# directly in the background (setsid + nohup, so it outlives make and this shell),
# logging to $COMPOUND_DOCKERD_LOG (default /var/log/compound/dockerd.log). Then we
# wait up to $COMPOUND_ENGINE_TIMEOUT seconds (default 60) for it to answer.
# Needs root to start the engine (re-run with sudo otherwise).

set -euo pipefail

LOG=${COMPOUND_DOCKERD_LOG:-/var/log/compound/dockerd.log}
TIMEOUT=${COMPOUND_ENGINE_TIMEOUT:-60}
PIDFILE=/var/run/docker.pid

say() { printf '[engine] %s\n' "$*" >&2; }
die() { printf '[engine] error: %s\n' "$*" >&2; exit 1; }

answers() { timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

command -v docker >/dev/null 2>&1 || die "docker CLI not found — apt-get install docker.io (or: make deps)"

if answers; then
  say "Docker Engine $(docker version --format '{{.Server.Version}}' 2>/dev/null) is running"
  exit 0
fi

if [[ -n ${DOCKER_HOST:-} ]]; then
  die "DOCKER_HOST=$DOCKER_HOST does not answer; not starting a local engine for a remote/custom host"
fi
[[ $(id -u) == 0 ]] || die "the Docker Engine is not running and starting it needs root: sudo $0"
command -v dockerd >/dev/null 2>&1 || die "dockerd not found — apt-get install docker.io (or: make deps)"

# the log of this attempt only (after our last marker line), last 25 lines
log_tail() {
  [[ -f $LOG ]] || return 0
  awk '/^==== .* ensure-engine.sh starting dockerd ====$/ { n = 0; delete buf; next } { buf[++n] = $0 }
       END { for (i = (n > 25 ? n - 24 : 1); i <= n; i++) print buf[i] }' "$LOG" >&2
}

wait_for_engine() { # how, pid-or-empty
  local deadline=$((SECONDS + TIMEOUT))
  while ((SECONDS < deadline)); do
    if answers; then
      say "Docker Engine $(docker version --format '{{.Server.Version}}' 2>/dev/null) is up ($1, $((SECONDS - start))s)"
      return 0
    fi
    if [[ -n ${2:-} ]] && ! kill -0 "$2" 2>/dev/null && ! pgrep -x dockerd >/dev/null; then
      say "dockerd exited; last lines of $LOG:"
      log_tail
      die "dockerd failed to start (see $LOG)"
    fi
    sleep 0.5
  done
  say "no answer from the Docker Engine after ${TIMEOUT}s; last lines of $LOG:"
  log_tail
  die "Docker Engine did not come up within ${TIMEOUT}s (log: $LOG)"
}

start=$SECONDS
mkdir -p "$(dirname "$LOG")"

# A machine booted with systemd: let it own the daemon.
if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
  say "starting docker.service via systemd"
  if systemctl start docker.service 2>>"$LOG"; then
    wait_for_engine systemd ""
    exit 0
  fi
  say "systemctl start docker failed (see: journalctl -u docker.service); trying dockerd directly"
fi

# dockerd already running but not (yet) answering? Don't start a second one.
existing=$(pgrep -x dockerd | head -n1 || true)
if [[ -n $existing ]]; then
  say "dockerd is already running (pid $existing) but not answering yet; waiting"
  wait_for_engine "existing pid $existing" "$existing"
  exit 0
fi

# A stale pid file from a killed dockerd makes the new one refuse to start.
if [[ -f $PIDFILE ]]; then
  oldpid=$(cat "$PIDFILE" 2>/dev/null || true)
  if [[ -z $oldpid ]] || ! kill -0 "$oldpid" 2>/dev/null || [[ $(cat "/proc/$oldpid/comm" 2>/dev/null) != dockerd ]]; then
    rm -f "$PIDFILE"
  fi
fi

say "starting dockerd (log: $LOG)"
printf '\n==== %s ensure-engine.sh starting dockerd ====\n' "$(date -Is)" >>"$LOG"
# setsid: own session, no controlling terminal, survives make/CI shell exit;
# stdin from /dev/null so it never waits on a terminal.
# shellcheck disable=SC2086  # COMPOUND_DOCKERD_ARGS is a list of flags
setsid nohup dockerd ${COMPOUND_DOCKERD_ARGS:-} </dev/null >>"$LOG" 2>&1 &
pid=$!
disown "$pid" 2>/dev/null || true
wait_for_engine "dockerd pid $pid" "$pid"
