#!/usr/bin/env bash
# brev-lab.sh -- a REAL stand-in for a Brev GPU VM, inside this machine: its own
# network namespace and address, its own sshd (user ubuntu, key only) and its
# own dockerd, with the TAO test image loaded. Only the `brev` CLI is faked
# (tests/fakes/brev/brev); everything it reaches over ssh is real.
#
#   scripts/brev-lab.sh up      create/start what is missing; idempotent, ~1 s when up
#   scripts/brev-lab.sh status  one line per component; non-zero if any is down
#   scripts/brev-lab.sh env     print `export ...` lines for a test harness
#   scripts/brev-lab.sh down    remove all VM containers, stop sshd+dockerd, delete the netns
#   scripts/brev-lab.sh purge   down, then delete the VM engine's data-root and the keys
#
# Layout (defaults; all overridable by the BREV_LAB_* variables below):
#   netns      taoplan-brev; veth tpbrev0 (host, 10.213.7.1/24) <-> tpbrev1 (VM, 10.213.7.2/24)
#              Nothing is routed beyond that /24: the VM has no default route.
#   sshd       10.213.7.2:22 inside the netns, key-only, AllowUsers ubuntu, UsePAM no;
#              host key + client key under /var/cache/taoplan/brev-lab/ (brev.pem = client key)
#   dockerd    inside the netns (and the mount namespace `ip netns exec` makes), own
#              --data-root /var/lib/taoplan-brev-lab/docker, --exec-root /run/taoplan-brev/exec,
#              --pidfile, -H unix:///run/taoplan-brev/docker.sock, --bip 10.216.7.1/24,
#              --cgroup-parent /taoplan-brev, own --config-file (host daemon.json ignored).
#              Published ports answer at 10.213.7.2:PORT from the host.
#   user       ubuntu (host account, home /home/ubuntu), member of group `brev-docker`, which
#              owns the VM socket. It is NOT in the host's `docker` group, so a command that
#              misses the VM engine fails loudly instead of silently using the host engine.
#              sshd sets DOCKER_HOST=unix:///run/taoplan-brev/docker.sock for every session
#              (SetEnv), so plain `docker ...` over ssh reaches the VM engine.
#   image      localhost/taoplan/tao-test:7.3.0 copied from the host engine
#              (docker save | docker -H VM load), skipped when the VM has the same image id.
#
# Environment:
#   BREV_LAB_NETNS (taoplan-brev)  BREV_LAB_HOST_IP (10.213.7.1)  BREV_LAB_VM_IP (10.213.7.2)
#   BREV_LAB_BIP (10.216.7.1/24)   BREV_LAB_DIR (/var/lib/taoplan-brev-lab)
#   BREV_LAB_CACHE (/var/cache/taoplan/brev-lab)  BREV_LAB_RUN (/run/taoplan-brev)
#   BREV_LAB_IMAGE (localhost/taoplan/tao-test:7.3.0)  BREV_LAB_IMAGE_WAIT (1800 s)
#   BREV_LAB_TIMEOUT (60 s per readiness step)
#
# Timings on the 2-core dev VM (2026-12-02, while other builds ran): fresh up (empty data-root)
# 12-23 s, of which docker save|load of the ~370 MB image is 10-21 s; up after `down` (data-root
# kept, image cached) 2.4 s; up when already up 0.7-1.5 s; down 1.4-1.6 s; purge ~20 s (rm of
# the data-root). Idle cost: VM dockerd ~77 MB RSS + its containerd ~42 MB, ~0 CPU.
#
# PITFALLS:
#  * `ip netns exec` runs the command in a fresh mount namespace (slave of the host's, /sys
#    remounted for the netns). dockerd's overlay mounts therefore stay invisible to the host,
#    but files it creates (the socket in /run/taoplan-brev) are visible: same filesystems.
#  * `ip netns exec` execs its command in place, and setsid does not fork in a non-interactive
#    shell: $! is the daemon's PID. Check /proc/PID/exe before trusting a recorded PID.
#  * sshd with UsePAM no refuses a locked account ("!" in shadow) even for key login:
#    the ubuntu account gets password "*" (no password, not locked).
#  * ssh run by a test with HOME=<tmp> still reads ~/.ssh/config from the passwd home (/root);
#    use `ssh -F ~/.brev/ssh_config` or the full path.
set -euo pipefail

NS=${BREV_LAB_NETNS:-taoplan-brev}
HOST_IF=tpbrev0
VM_IF=tpbrev1
HOST_IP=${BREV_LAB_HOST_IP:-10.213.7.1}
VM_IP=${BREV_LAB_VM_IP:-10.213.7.2}
PREFIX=24
BIP=${BREV_LAB_BIP:-10.216.7.1/24}
LAB=${BREV_LAB_DIR:-/var/lib/taoplan-brev-lab}
CACHE=${BREV_LAB_CACHE:-/var/cache/taoplan/brev-lab}
RUN=${BREV_LAB_RUN:-/run/taoplan-brev}
IMAGE=${BREV_LAB_IMAGE:-localhost/taoplan/tao-test:7.3.0}
IMAGE_WAIT=${BREV_LAB_IMAGE_WAIT:-1800}
TIMEOUT=${BREV_LAB_TIMEOUT:-60}
VM_USER=ubuntu
VM_GROUP=brev-docker
SOCK="$RUN/docker.sock"
KEY="$CACHE/brev.pem"
HOSTKEY="$CACHE/ssh_host_ed25519_key"
KNOWN="$CACHE/known_hosts"
ETC="$LAB/etc"; LOGS="$LAB/log"; PIDS="$RUN/pids"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PACKAGES=(openssh-server openssh-client iproute2 docker.io curl)
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

log() { printf '[brev-lab] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { date +%s.%N; }
since() { awk -v s="$1" -v e="$(now)" 'BEGIN{printf "%.1f", e-s}'; }

wait_for() {
  local t=$1; shift
  local deadline=$(( $(date +%s) + t ))
  until "$@" >/dev/null 2>&1; do
    (( $(date +%s) < deadline )) || return 1
    sleep 0.25
  done
}

# wait_while_alive NAME SECONDS CMD...: like wait_for, but gives up as soon as NAME has died.
wait_while_alive() {
  local name=$1 t=$2; shift 2
  local deadline=$(( $(date +%s) + t ))
  until "$@" >/dev/null 2>&1; do
    pid_alive "$name" || return 1
    (( $(date +%s) < deadline )) || return 1
    sleep 0.25
  done
}

vdocker() { docker -H "unix://$SOCK" "$@"; }

# ----------------------------------------------------------- processes ----

bin_of() { case $1 in sshd) echo /usr/sbin/sshd ;; dockerd) command -v dockerd ;; *) return 1 ;; esac; }

pid_alive() {
  local name=$1 pid state exe
  [[ -s "$PIDS/$name" ]] || return 1
  pid=$(<"$PIDS/$name")
  [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/stat ]] || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ $state != Z && $state != X ]] || return 1
  exe=$(readlink -f "/proc/$pid/exe" 2>/dev/null) || return 1
  [[ $exe == "$(readlink -f "$(bin_of "$name")")" ]]
}

# start_in_ns NAME CMD...: start CMD (foreground mode) inside the netns, in its own session.
start_in_ns() {
  local name=$1; shift
  mkdir -p "$PIDS" "$LOGS"
  printf '=== %s starting: %s\n' "$(date -Is)" "$*" >>"$LOGS/$name.out"
  setsid ip netns exec "$NS" "$@" >>"$LOGS/$name.out" 2>&1 </dev/null 9>&- &
  local pid=$! i
  echo "$pid" >"$PIDS/$name"
  for ((i = 0; i < 30; i++)); do  # the wrapper execs the daemon: wait until /proc/PID/exe is it
    pid_alive "$name" && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  tail -n 20 "$LOGS/$name.out" >&2
  die "$name exited at once; see $LOGS/$name.out"
}

stop_daemon() {
  local name=$1 pid i
  if ! pid_alive "$name"; then rm -f "$PIDS/$name"; echo "$name: not running"; return 0; fi
  pid=$(<"$PIDS/$name")
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 120; i++)); do
    pid_alive "$name" || { rm -f "$PIDS/$name"; echo "$name: stopped (pid $pid)"; return 0; }
    sleep 0.25
  done
  kill -KILL "$pid" 2>/dev/null || true
  sleep 0.5
  rm -f "$PIDS/$name"
  echo "$name: killed (pid $pid, ignored TERM for 30 s)"
}

# --------------------------------------------------------------- probes ----

ssh_vm() {
  ssh -i "$KEY" -o BatchMode=yes -o IdentitiesOnly=yes -o UserKnownHostsFile="$KNOWN" \
      -o StrictHostKeyChecking=yes -o ConnectTimeout=5 -o LogLevel=ERROR "$VM_USER@$VM_IP" "$@"
}
probe_netns()   { ip netns exec "$NS" ip -4 addr show dev "$VM_IF" 2>/dev/null | grep -q "inet $VM_IP/"; }
probe_veth()    { ip -4 addr show dev "$HOST_IF" 2>/dev/null | grep -q "inet $HOST_IP/"; }
probe_dockerd() { pid_alive dockerd && timeout 10 docker -H "unix://$SOCK" info --format '{{.ID}}' >/dev/null 2>&1; }
probe_sshd()    { pid_alive sshd && ssh_vm 'docker info --format "{{.Name}}"' >/dev/null 2>&1; }
image_id()      { "$@" image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null; }
probe_image()   { local v; v=$(image_id vdocker) && [[ -n $v && $v == "$(image_id docker)" ]]; }

# ------------------------------------------------------------- install -----

install_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  # docker.io is not needed when a docker engine + CLI came from elsewhere.
  if [[ " ${missing[*]} " == *" docker.io "* ]] && command -v dockerd >/dev/null && command -v docker >/dev/null; then
    missing=("${missing[@]/docker.io/}")
  fi
  [[ -n ${missing[*]// } ]] || return 0
  local t0; t0=$(now)
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >"$LOGS/apt.log" 2>&1 || { tail -n 20 "$LOGS/apt.log" >&2; die "apt-get update failed"; }
  # shellcheck disable=SC2068
  apt-get install -y ${missing[@]} >>"$LOGS/apt.log" 2>&1 \
    || { tail -n 30 "$LOGS/apt.log" >&2; die "apt-get install failed; see $LOGS/apt.log"; }
  log "installed ${missing[*]} in $(since "$t0")s"
}

# --------------------------------------------------------------- setup -----

write_if_changed() {  # write_if_changed DEST MODE  (content on stdin)
  local dst=$1 mode=$2 tmp
  tmp=$(mktemp "$dst.XXXXXX"); cat >"$tmp"; chmod "$mode" "$tmp"
  if [[ -f $dst ]] && cmp -s "$tmp" "$dst"; then rm -f "$tmp"; return 1; fi
  mv -f "$tmp" "$dst"
}

prepare() {
  umask 022
  mkdir -p "$LAB" "$ETC" "$LOGS" "$RUN" "$PIDS" "$LAB/docker" /run/sshd
  install -d -m 0700 "$CACHE"
  chmod 0755 /run/sshd "$RUN"
  [[ -s $HOSTKEY ]] || ssh-keygen -q -t ed25519 -N '' -C brev-lab-host -f "$HOSTKEY"
  [[ -s $KEY ]] || ssh-keygen -q -t ed25519 -N '' -C brev-lab-client -f "$KEY"
  chmod 0600 "$KEY" "$HOSTKEY"
  printf '%s %s\n' "$VM_IP" "$(cut -d' ' -f1,2 "$HOSTKEY.pub")" | write_if_changed "$KNOWN" 0644 || true

  getent group "$VM_GROUP" >/dev/null || groupadd --system "$VM_GROUP"
  if ! id "$VM_USER" >/dev/null 2>&1; then
    useradd -m -s /bin/bash -G "$VM_GROUP" "$VM_USER"
  fi
  id -nG "$VM_USER" | tr ' ' '\n' | grep -qx "$VM_GROUP" || usermod -aG "$VM_GROUP" "$VM_USER"
  # "*": no password, but not locked (sshd with UsePAM no refuses "!" accounts).
  [[ $(getent shadow "$VM_USER" | cut -d: -f2) == '*' ]] || usermod -p '*' "$VM_USER"
  local home; home=$(getent passwd "$VM_USER" | cut -d: -f6)
  install -d -m 0700 -o "$VM_USER" -g "$VM_USER" "$home/.ssh"
  cut -d' ' -f1,2 "$KEY.pub" | write_if_changed "$home/.ssh/authorized_keys" 0600 || true
  chown "$VM_USER:$VM_USER" "$home/.ssh/authorized_keys"
  # For interactive shells too (SetEnv below covers every ssh session).
  grep -qs 'taoplan-brev' "$home/.profile" ||
    printf '\nexport DOCKER_HOST=unix://%s  # taoplan-brev lab engine\n' "$SOCK" >>"$home/.profile"

  SSHD_CHANGED=0
  write_if_changed "$ETC/sshd_config" 0644 <<EOF && SSHD_CHANGED=1 || true
# Private sshd of the brev lab VM (written by scripts/brev-lab.sh).
ListenAddress $VM_IP:22
HostKey $HOSTKEY
PidFile $RUN/sshd.pid
AllowUsers $VM_USER
PermitRootLogin no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes yes
X11Forwarding no
AllowTcpForwarding yes
MaxStartups 50:30:100
MaxSessions 50
SetEnv DOCKER_HOST=unix://$SOCK
Subsystem sftp internal-sftp
EOF

  DOCKERD_CHANGED=0
  write_if_changed "$ETC/daemon.json" 0644 <<EOF && DOCKERD_CHANGED=1 || true
{
  "log-level": "warn",
  "log-driver": "json-file",
  "log-opts": {"max-size": "10m", "max-file": "2"},
  "max-concurrent-downloads": 1,
  "max-concurrent-uploads": 1
}
EOF
}

net_up() {
  if ! ip netns list | awk '{print $1}' | grep -qx "$NS"; then ip netns add "$NS"; fi
  if ! ip link show "$HOST_IF" >/dev/null 2>&1; then
    ip netns exec "$NS" ip link del "$VM_IF" 2>/dev/null || true
    ip link add "$HOST_IF" type veth peer name "$VM_IF"
    ip link set "$VM_IF" netns "$NS"
  fi
  ip -4 addr show dev "$HOST_IF" | grep -q "inet $HOST_IP/" || ip addr add "$HOST_IP/$PREFIX" dev "$HOST_IF"
  ip link set "$HOST_IF" up
  ip netns exec "$NS" ip link set lo up
  ip netns exec "$NS" ip -4 addr show dev "$VM_IF" | grep -q "inet $VM_IP/" ||
    ip netns exec "$NS" ip addr add "$VM_IP/$PREFIX" dev "$VM_IF"
  ip netns exec "$NS" ip link set "$VM_IF" up
}

# `ip netns exec` mounts a fresh /sys, which hides the host's /sys/fs/cgroup mounts ("Devices
# cgroup isn't mounted"). The wrapper mounts the same hierarchies again, from the host's list,
# inside that mount namespace, then execs dockerd (so $! stays dockerd's PID).
write_cgroup_wrapper() {
  {
    echo '#!/bin/sh'
    echo 'set -e'
    echo 'mountpoint -q /sys/fs/cgroup || mount -t tmpfs -o mode=755 cgroup_root /sys/fs/cgroup'
    awk '$2 ~ "^/sys/fs/cgroup/" && ($3 == "cgroup" || $3 == "cgroup2") {
           printf "mkdir -p %s; mountpoint -q %s || mount -t %s -o %s %s %s\n", $2, $2, $3, $4, $1, $2 }' /proc/mounts
    echo 'exec "$@"'
  } | write_if_changed "$ETC/with-cgroups.sh" 0755 || true
}

start_dockerd() {
  if pid_alive dockerd; then
    if (( ! DOCKERD_CHANGED )) && probe_dockerd; then return 1; fi
    stop_daemon dockerd >/dev/null
  fi
  mkdir -p "$RUN/exec"
  # A stale containerd pid file (killed daemon) makes dockerd wait for a containerd that is gone.
  local cp="$RUN/exec/containerd/containerd.pid"
  if [[ -s $cp ]] && ! kill -0 "$(<"$cp")" 2>/dev/null; then rm -f "$cp"; fi
  rm -f "$SOCK" "$RUN/dockerd.pid"
  write_cgroup_wrapper
  start_in_ns dockerd /bin/sh "$ETC/with-cgroups.sh" "$(command -v dockerd)" --config-file "$ETC/daemon.json" \
    --data-root "$LAB/docker" --exec-root "$RUN/exec" --pidfile "$RUN/dockerd.pid" \
    -H "unix://$SOCK" -G "$VM_GROUP" --bip "$BIP" --cgroup-parent /taoplan-brev
  wait_while_alive dockerd "$TIMEOUT" probe_dockerd || { tail -n 20 "$LOGS/dockerd.out" >&2; die "VM dockerd does not answer on $SOCK"; }
}

start_sshd() {
  if pid_alive sshd; then
    if (( ! SSHD_CHANGED )) && probe_sshd; then return 1; fi
    stop_daemon sshd >/dev/null
  fi
  /usr/sbin/sshd -t -f "$ETC/sshd_config" 2>"$LOGS/sshd-test.log" || { cat "$LOGS/sshd-test.log" >&2; die "sshd_config invalid"; }
  start_in_ns sshd /usr/sbin/sshd -D -f "$ETC/sshd_config" -E "$LOGS/sshd.log"
  wait_while_alive sshd "$TIMEOUT" probe_sshd || { tail -n 20 "$LOGS/sshd.log" >&2; die "ssh $VM_USER@$VM_IP 'docker info' does not work"; }
}

load_image() {
  local hid vid t0
  t0=$(now)
  if ! timeout 10 docker info >/dev/null 2>&1; then
    bash "$HERE/ensure-dockerd.sh" >&2 9>&- || die "the host docker engine does not answer (scripts/ensure-dockerd.sh)"
  fi
  if ! image_id docker >/dev/null; then
    # build-test-image.sh is idempotent and serialised by its own lock: it waits for a build
    # already under way, or builds the image on a fresh machine.
    if [[ $IMAGE == localhost/taoplan/tao-test:7.3.0 && -f $HERE/build-test-image.sh ]]; then
      log "host engine has no $IMAGE yet: running scripts/build-test-image.sh"
      bash "$HERE/build-test-image.sh" >"$LOGS/build-test-image.log" 2>&1 9>&- \
        || { tail -n 20 "$LOGS/build-test-image.log" >&2; die "scripts/build-test-image.sh failed"; }
    fi
    log "waiting up to ${IMAGE_WAIT}s for $IMAGE on the host engine"
    wait_for "$IMAGE_WAIT" image_id docker || die "host engine has no $IMAGE; run scripts/build-test-image.sh"
  fi
  hid=$(image_id docker); vid=$(image_id vdocker || true)
  [[ $hid == "$vid" ]] && return 1
  docker save "$IMAGE" | vdocker load -q >/dev/null || die "docker save | docker -H unix://$SOCK load failed"
  vid=$(image_id vdocker || true)
  [[ $hid == "$vid" ]] || die "VM engine image id $vid != host $hid after load"
  log "loaded $IMAGE (${hid:7:12}) into the VM engine in $(since "$t0")s"
}

# ------------------------------------------------------------ commands -----

lock() {
  mkdir -p "$LAB"
  exec 9>"$LAB/.lock"
  flock -w 600 9 || die "another brev-lab.sh holds $LAB/.lock"
}

cmd_status() {
  local rc=0 c line
  for c in netns veth dockerd sshd image; do
    if "probe_$c" 2>/dev/null; then
      case $c in
        netns) line="up $NS $VM_IF $VM_IP/$PREFIX" ;;
        veth) line="up $HOST_IF $HOST_IP/$PREFIX" ;;
        dockerd) line="up (pid $(<"$PIDS/dockerd")) unix://$SOCK" ;;
        sshd) line="up (pid $(<"$PIDS/sshd")) $VM_USER@$VM_IP:22" ;;
        image) line="loaded $IMAGE" ;;
      esac
    else line=DOWN; rc=1; fi
    printf '%-8s %s\n' "$c:" "$line"
  done
  return $rc
}

cmd_up() {
  [[ $(id -u) -eq 0 ]] || die "must run as root"
  local t0 did=()
  t0=$(now)
  mkdir -p "$LOGS"
  lock
  install_packages
  prepare
  probe_netns && probe_veth || { net_up; did+=(network); }
  start_dockerd && did+=(dockerd)
  start_sshd && did+=(sshd)
  load_image && did+=(image)
  if ((${#did[@]} == 0)); then log "already up ($(since "$t0")s)"; else log "up: started ${did[*]} ($(since "$t0")s)"; fi
}

# The fake brev's ssh_config multiplexes (ControlPath ~/.ssh/brev-control-%C, ControlPersist 10m;
# ~ is the passwd home). A master whose VM went away would make the next ssh wait for it:
# ask every such master to exit (ssh -O exit), while the VM still answers.
close_masters() {
  local home sock n=0
  home=$(getent passwd "$(id -un)" | cut -d: -f6)
  for sock in "$home"/.ssh/brev-control-*; do
    [[ -S $sock ]] || continue
    ssh -o ControlPath="$sock" -O exit brev-lab >/dev/null 2>&1 && n=$((n + 1))
  done
  ((n == 0)) || log "closed $n ssh control master(s)"
}

cmd_down() {
  local t0 ids
  t0=$(now)
  [[ -d $LAB || -d $RUN ]] || { log "nothing to stop"; return 0; }
  lock
  if probe_dockerd; then
    ids=$(vdocker ps -aq 2>/dev/null | tr '\n' ' ')
    # shellcheck disable=SC2086
    [[ -z ${ids// } ]] || { vdocker rm -f $ids >/dev/null 2>&1 || true; log "removed VM containers: $ids"; }
  fi
  close_masters
  log "$(stop_daemon sshd)"
  log "$(stop_daemon dockerd)"
  if ip netns list | awk '{print $1}' | grep -qx "$NS"; then ip netns del "$NS"; log "netns $NS deleted"; fi
  ip link del "$HOST_IF" 2>/dev/null || true
  rm -rf "$RUN"
  log "down in $(since "$t0")s"
}

cmd_purge() {
  cmd_down
  lock
  rm -rf "$LAB/docker" "$CACHE"
  log "purged $LAB/docker and $CACHE (user $VM_USER and group $VM_GROUP kept)"
}

cmd_env() {
  cat <<EOF
export BREV_LAB_VM_IP=$VM_IP
export BREV_LAB_VM_USER=$VM_USER
export BREV_LAB_SSH_KEY=$KEY
export BREV_LAB_KNOWN_HOSTS=$KNOWN
export BREV_LAB_DOCKER_HOST=unix://$SOCK
export BREV_LAB_NETNS=$NS
export BREV_LAB_IMAGE=$IMAGE
export BREV_LAB_FAKE_BREV_DIR=$(dirname "$HERE")/tests/fakes/brev
EOF
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  purge) cmd_purge ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) echo "usage: $0 {up|down|status|env|purge}" >&2; exit 2 ;;
esac
