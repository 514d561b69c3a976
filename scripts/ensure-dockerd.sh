#!/usr/bin/env bash
# Make sure a Docker engine answers `docker info` on this machine.
#
# Idempotent and fast when the engine is already up (one `docker info`).
# Otherwise (as root, Debian bookworm, no systemd):
#   1. install Debian's docker.io if `dockerd` is missing (apt-get update once),
#   2. start `dockerd` in the background, logging to $TAOPLAN_DOCKERD_LOG
#      (default /var/log/taoplan-dockerd.log),
#   3. poll `docker info` until it answers (timeout $TAOPLAN_DOCKERD_TIMEOUT, default 60 s),
#   4. check that `docker run --init` can work (docker-init is present).
# Prints exactly one line saying what it did; exits non-zero on failure.
set -euo pipefail

LOG=${TAOPLAN_DOCKERD_LOG:-/var/log/taoplan-dockerd.log}
TIMEOUT=${TAOPLAN_DOCKERD_TIMEOUT:-60}
LOCK=${TAOPLAN_DOCKERD_LOCK:-/var/lock/taoplan-dockerd.lock}

die() { echo "ensure-dockerd: ERROR: $*" >&2; exit 1; }

docker_up() { command -v docker >/dev/null 2>&1 && timeout 10 docker info >/dev/null 2>&1; }

# `docker run --init` needs docker-init next to dockerd (Debian: /usr/bin/docker-init
# from docker.io). If some other install lacks it, Debian's tini is the same binary.
find_init() {
    local p
    for p in "$(command -v docker-init 2>/dev/null || true)" /usr/bin/docker-init /usr/local/bin/docker-init \
             /usr/libexec/docker/docker-init; do
        [[ -n "$p" && -x "$p" ]] && { echo "$p"; return 0; }
    done
    return 1
}

# Fast path: engine already answers.
if docker_up; then
    echo "ensure-dockerd: docker engine already running ($(docker info --format '{{.ServerVersion}}' 2>/dev/null || echo '?'))"
    exit 0
fi

[[ $(id -u) -eq 0 ]] || die "docker engine is not answering and starting it needs root"

# Serialise concurrent callers (several test sessions may call us at once).
mkdir -p "$(dirname "$LOCK")"
exec 9>"$LOCK"
flock -w $((TIMEOUT + 120)) 9 || die "could not take lock $LOCK"

# Someone else may have started it while we waited for the lock.
if docker_up; then
    echo "ensure-dockerd: docker engine came up meanwhile ($(docker info --format '{{.ServerVersion}}' 2>/dev/null || echo '?'))"
    exit 0
fi

did=()
if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    # policy-rc.d may refuse to start services from the package scripts: harmless, we start dockerd ourselves.
    apt-get install -y -qq docker.io >/dev/null 2>&1 || apt-get install -y docker.io >&2 \
        || die "apt-get install docker.io failed"
    did+=("installed docker.io")
fi
command -v dockerd >/dev/null 2>&1 || die "dockerd still missing after installing docker.io"

init_path=$(find_init || true)
if [[ -z "$init_path" ]]; then
    if ! command -v tini >/dev/null 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        apt-get install -y -qq tini >/dev/null 2>&1 || die "apt-get install tini failed"
    fi
    init_path=$(command -v tini)
    did+=("using $init_path as docker-init")
fi

# A process that was killed can linger as a zombie until PID 1 reaps it (slowly, on these VMs).
live() { [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

# dockerd trusts the pid file of the containerd it manages: a stale one (left by a killed daemon)
# makes it wait for a containerd that is gone, and fail after a timeout. Remove it unless it is live.
ctrd_pid_file=/var/run/docker/containerd/containerd.pid
if [[ -s $ctrd_pid_file ]]; then
    p=$(cat "$ctrd_pid_file" 2>/dev/null || true)
    if ! live "$p" || ! grep -q containerd "/proc/$p/cmdline" 2>/dev/null; then
        rm -f "$ctrd_pid_file"
    fi
fi

# Is a dockerd already running but not answering yet (e.g. just started by someone)?
running_pid=""
if [[ -s /var/run/docker.pid ]]; then
    p=$(cat /var/run/docker.pid 2>/dev/null || true)
    if live "$p" && grep -q dockerd "/proc/$p/cmdline" 2>/dev/null; then
        running_pid=$p
    else
        rm -f /var/run/docker.pid   # stale
    fi
fi

if [[ -z "$running_pid" ]]; then
    mkdir -p "$(dirname "$LOG")"
    args=()
    [[ "$init_path" != "$(command -v docker-init 2>/dev/null || true)" ]] && args+=(--init-path "$init_path")
    # setsid + nohup: the daemon must survive the shell/process group that called us.
    {
        echo "=== $(date -Is) ensure-dockerd: starting dockerd ${args[*]:-}"
    } >>"$LOG"
    setsid nohup dockerd "${args[@]}" >>"$LOG" 2>&1 </dev/null &
    running_pid=$!
    did+=("started dockerd (pid $running_pid, log $LOG)")
else
    did+=("waited for running dockerd (pid $running_pid)")
fi

start=$(date +%s.%N)
deadline=$(( $(date +%s) + TIMEOUT ))
until docker_up; do
    if ! kill -0 "$running_pid" 2>/dev/null; then
        tail -n 20 "$LOG" >&2 || true
        die "dockerd (pid $running_pid) exited; see $LOG"
    fi
    if (( $(date +%s) >= deadline )); then
        tail -n 20 "$LOG" >&2 || true
        die "docker info did not answer within ${TIMEOUT}s; see $LOG"
    fi
    sleep 0.2
done
elapsed=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e-s}')

# `docker run --init` works only when the engine can find its init binary.
init_bin=$(docker info --format '{{.InitBinary}}' 2>/dev/null || true)
init_bin=${init_bin:-docker-init}
if [[ "$init_bin" == /* ]]; then [[ -x "$init_bin" ]]; else command -v "$init_bin" >/dev/null 2>&1; fi \
    || die "docker engine is up but its init binary '$init_bin' is missing (docker run --init would fail)"

ver=$(docker info --format '{{.ServerVersion}}' 2>/dev/null || echo '?')
echo "ensure-dockerd: $(printf '%s; ' "${did[@]}")engine $ver answering after ${elapsed}s"
