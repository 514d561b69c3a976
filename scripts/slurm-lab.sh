#!/usr/bin/env bash
# slurm-lab.sh -- a real one-node Slurm cluster on this machine, reached over a
# real sshd on loopback exactly as a user reaches a login node.
#
#   scripts/slurm-lab.sh up      install (if missing) + start everything, then
#                                verify with test jobs; idempotent, and fast
#                                (status only, no test jobs) when already up
#   scripts/slurm-lab.sh check   re-run the job checks against a running lab
#   scripts/slurm-lab.sh status  one line per component; non-zero if any is down
#   scripts/slurm-lab.sh env     print `export ...` lines for a test harness
#   scripts/slurm-lab.sh down    scancel all jobs, stop every daemon by its PID
#
# Debian bookworm packages only (slurm 22.05.8, munge 0.5.15, MariaDB 10.11,
# OpenSSH 9.2). Must run as root. No systemd: every daemon is started here, by
# absolute path, in the foreground mode of the daemon, in its own session
# (setsid) and in the background; its PID is recorded under $LAB/run/pids.
#
# Components (all state, configs, logs under $LAB):
#   munged     private key + socket          $LAB/munge, $LAB/run/munge
#   mariadbd   127.0.0.1:$DB_PORT, own datadir/socket, small buffers
#   slurmdbd   127.0.0.1:6819  (so sacct works; cluster+account "taoplan")
#   slurmctld  127.0.0.1:6817  partition "gpu" (Default, MaxTime=INFINITE)
#   slurmd     node `hostname -s` at 127.0.0.1, CPUs=16 RealMemory=16000,
#              Gres=gpu:2 backed by mknod'ed fake devices $LAB/dev/nvidia{0,1}
#   sshd       127.0.0.1:$SSH_PORT, key-only root login, own host keys;
#              client key $LAB/id_ed25519, known_hosts $LAB/known_hosts
#
# Environment:
#   TAOPLAN_SLURM_LAB     lab dir (default /var/lib/taoplan-slurm-lab)
#   SLURM_LAB_SSH_PORT    sshd port (default 2222)
#   SLURM_LAB_DB_PORT     private MariaDB port (default 3307, not 3306)
#   SLURM_LAB_TIMEOUT     seconds to wait for each readiness step (default 60)
#   SLURM_LAB_PROCTRACK   force proctrack plugin (cgroup|linuxproc|pgid)
#
# `up` checks, after (re)starting anything: a --gres=gpu:1 job submitted over
# ssh reaches COMPLETED in sacct; two gpu:1 jobs run together while a third
# pends (Resources); gpu:3 is refused at submit; `docker run` works in a job.
#
# Timings on the 2-core dev VM (gVisor, 2026-11-24): package install ~18 s
# (apt, once); up with a wiped lab dir ~15 s (7 s to a ready cluster + 8 s
# of job checks); up after `down` with the lab dir kept ~10 s; up when
# already up ~1.2 s (status only); check ~8.5 s; down ~1-5 s.
#
# PITFALLS (learned the hard way; keep in mind when editing):
#  * /usr/sbin/policy-rc.d refuses service starts during apt-get install, and
#    there is no systemd: every daemon is started here by absolute path.
#  * PID 1 in this VM reaps orphans slowly: a stopped daemon can stay a zombie
#    (state Z) for a while. Treat Z as dead, and check /proc/PID/exe before
#    signalling a recorded PID (PIDs get reused). slurmctld/slurmd are
#    alternatives symlinks to *-wlm, so compare realpaths.
#  * Jobs are not children of slurmd: `down` scancels everything first, then
#    stops daemons by their own recorded PIDs (never pkill -f patterns).
#  * Daemons are started with setsid: otherwise killing the caller's process
#    group (e.g. a CI step timeout) takes the whole cluster down with it.
#  * slurmdbd refuses a slurmdbd.conf that is not mode 0600 and owned by
#    SlurmUser.
#  * The private munge socket is named twice in slurm.conf: AuthInfo=socket=
#    for slurmctld/slurmd RPCs, and AccountingStoragePass= for every client's
#    connection to slurmdbd (sacct, sacctmgr, slurmctld); without the latter
#    they try /run/munge/munge.socket.2. slurmdbd has no -f option: it reads
#    slurmdbd.conf from the directory of $SLURM_CONF.
#  * sacct without slurmdbd: "Slurm accounting storage is disabled", rc 1.
#  * A count-only gres.conf line is ignored and the node drains with "gres/gpu
#    count reported lower than configured"; File= must name real character
#    devices, hence `mknod $LAB/dev/nvidiaN c 195 N`.
#  * CPUs/RealMemory larger than the VM need SlurmdParameters=config_overrides;
#    task/affinity would then pin to CPUs that do not exist: keep task/none.
#  * Without DefMemPerCPU a job gets the whole node's memory under
#    CR_Core_Memory and two jobs could never run together.
#  * sacct lags squeue by 3-5 s (first nothing, then PENDING); read live state
#    from squeue and the final state from sacct. squeue -j ID prints nothing
#    (rc 0) for a finished job unless `-t all`.
#  * ssh joins its arguments into one remote shell string: quote every remote
#    argument. One round trip is ~0.36 s; the checks reuse one ControlMaster.
#  * `docker run` inside a job talks to the host dockerd; scancel does NOT stop
#    that container. Job scripts must `trap 'docker rm -f NAME' TERM` and run
#    `docker run ... & wait`.
#  * The mpi/pmix "can not load PMIx library" lines in slurmd.log are harmless
#    (slurmd probes every mpi plugin at start, even with MpiDefault=none).
#  * Clients (sinfo, sbatch, sacct) must find the lab's slurm.conf: sshd sets
#    SLURM_CONF for login sessions (SetEnv), and /etc/slurm/slurm.conf is made
#    a symlink to it unless a real file already exists there.
#  * A job asking for more GPUs than any node has (gpu:3 > Gres=gpu:2) never
#    pends: sbatch fails at once, rc 1, "Requested node configuration is not
#    available" -- yet sacct still records a job id for it as FAILED.
#  * slurmdbd logs "Database settings not recommended values:
#    innodb_buffer_pool_size innodb_log_file_size": harmless, the buffers are
#    small on purpose.
#  * slurmd 22.05 loads the cgroup plugin at start whatever ProctrackType is:
#    the linuxproc fallback only helps when cgroup *process tracking* fails
#    (slurmd exits, or the first test job fails), not when cgroups are
#    unusable to slurmd altogether.
#  * The tunnel target for a job is the node name (`hostname -s`) resolved on
#    the login side: it must resolve (it does via /etc/hosts here); `up` warns
#    otherwise.
#  * The flock fd ($LAB/.lock, fd 9) is inherited by anything started in the
#    background: daemons and the ssh ControlMaster get `9>&-`, or the next
#    `up`/`down` waits forever for the lock.
#  * If authorized_keys lives below a group/world-writable dir (e.g. /tmp),
#    sshd's StrictModes rejects it: StrictModes is turned off in that case.
set -euo pipefail

LAB=${TAOPLAN_SLURM_LAB:-/var/lib/taoplan-slurm-lab}
SSH_PORT=${SLURM_LAB_SSH_PORT:-2222}
DB_PORT=${SLURM_LAB_DB_PORT:-3307}
TIMEOUT=${SLURM_LAB_TIMEOUT:-60}
CLUSTER=taoplan
ACCOUNT=taoplan
PARTITION=gpu
NGPUS=2
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TEMPLATES="$HERE/slurm-lab"
PACKAGES=(slurm-wlm slurmctld slurmd slurm-client slurmdbd munge mariadb-server openssh-server openssh-client)

ETC="$LAB/etc"; RUN="$LAB/run"; PIDS="$LAB/run/pids"; LOGS="$LAB/log"
KEY="$LAB/id_ed25519"; KNOWN="$LAB/known_hosts"; CTL="$RUN/ssh-ctl"
MUNGE_SOCK="$RUN/munge/munge.socket.2"
DB_SOCK="$RUN/mysql/mysqld.sock"
export SLURM_CONF="$ETC/slurm.conf"
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

log() { printf '[slurm-lab] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { date +%s.%N; }
since() { awk -v s="$1" -v e="$(now)" 'BEGIN{printf "%.1f", e-s}'; }

# wait_for SECONDS CMD...: poll CMD every 0.25 s until it succeeds.
wait_for() {
  local t=$1; shift
  local deadline=$(( $(date +%s) + t ))
  until "$@" >/dev/null 2>&1; do
    (( $(date +%s) < deadline )) || return 1
    sleep 0.25
  done
}

# ----------------------------------------------------------- processes ----

# Daemon name -> binary (realpath is compared with /proc/PID/exe).
bin_of() {
  case $1 in
    munged) echo /usr/sbin/munged ;;
    mariadbd) echo /usr/sbin/mariadbd ;;
    slurmdbd) echo /usr/sbin/slurmdbd ;;
    slurmctld) echo /usr/sbin/slurmctld ;;
    slurmd) echo /usr/sbin/slurmd ;;
    sshd) echo /usr/sbin/sshd ;;
    *) return 1 ;;
  esac
}

# pid_alive NAME: the recorded PID exists, is not a zombie and runs NAME's binary.
pid_alive() {
  local name=$1 pid state exe
  [[ -s "$PIDS/$name" ]] || return 1
  pid=$(<"$PIDS/$name")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/stat ]] || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ $state != Z && $state != X ]] || return 1
  exe=$(readlink -f "/proc/$pid/exe" 2>/dev/null) || return 1
  [[ $exe == "$(readlink -f "$(bin_of "$name")")" ]]
}

# start_daemon NAME CMD...: start CMD (foreground mode) in its own session.
# In a non-interactive shell a background child is never a process-group
# leader, so setsid does not fork and $! is the daemon's PID.
start_daemon() {
  local name=$1; shift
  mkdir -p "$PIDS"
  printf '=== %s starting: %s\n' "$(date -Is)" "$*" >>"$LOGS/$name.out"
  # 9>&-: the daemon must not inherit (and keep holding) the $LAB/.lock fd.
  setsid "$@" >>"$LOGS/$name.out" 2>&1 </dev/null 9>&- &
  echo $! >"$PIDS/$name"
  sleep 0.1
  pid_alive "$name" && return 0
  tail -n 20 "$LOGS/$name.out" >&2
  log "$name exited at once; see $LOGS/$name.out"
  return 1
}

# stop_daemon NAME: TERM the recorded PID, wait (zombie == dead), then KILL.
stop_daemon() {
  local name=$1 pid i
  if ! pid_alive "$name"; then rm -f "$PIDS/$name"; echo "$name: not running"; return 0; fi
  pid=$(<"$PIDS/$name")
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 80; i++)); do
    pid_alive "$name" || { rm -f "$PIDS/$name"; echo "$name: stopped (pid $pid)"; return 0; }
    sleep 0.25
  done
  kill -KILL "$pid" 2>/dev/null || true
  sleep 0.5
  rm -f "$PIDS/$name"
  echo "$name: killed (pid $pid, ignored TERM for 20 s)"
}

# --------------------------------------------------------------- probes ----

probe_munged()   { pid_alive munged && munge -S "$MUNGE_SOCK" -n </dev/null | unmunge -S "$MUNGE_SOCK" >/dev/null 2>&1; }
probe_mariadbd() { pid_alive mariadbd && mariadb-admin --defaults-file="$ETC/my.cnf" --connect-timeout=2 ping >/dev/null 2>&1; }
probe_slurmdbd() { pid_alive slurmdbd && timeout 10 sacctmgr -n -P show cluster format=cluster 2>/dev/null | grep -qx "$CLUSTER"; }
probe_slurmctld(){ pid_alive slurmctld && timeout 10 scontrol ping 2>/dev/null | grep -q 'is UP'; }
node_state()     { timeout 10 sinfo -h -N -n "$NODE" -o '%T' 2>/dev/null | head -n1; }
probe_slurmd()   { pid_alive slurmd && [[ $(node_state) =~ ^(idle|mixed|allocated|completing)$ ]]; }
ssh_base() {
  ssh -p "$SSH_PORT" -i "$KEY" -o BatchMode=yes -o UserKnownHostsFile="$KNOWN" \
      -o StrictHostKeyChecking=yes -o ConnectTimeout=5 "$@"
}
probe_sshd()     { pid_alive sshd && ssh_base root@127.0.0.1 'sinfo -h' >/dev/null 2>&1; }

# rsh CMD: run CMD on the "login node" through one multiplexed connection.
rsh() {
  # 9>&-: the backgrounded ControlMaster must not keep the lock fd open.
  ssh_base -o ControlMaster=auto -o ControlPath="$CTL" -o ControlPersist=60 root@127.0.0.1 "$@" 9>&-
}

close_master() { ssh -O exit -o ControlPath="$CTL" root@127.0.0.1 >/dev/null 2>&1 || true; }

NODE=$(hostname -s)
COMPONENTS=(munged mariadbd slurmdbd slurmctld slurmd sshd)

# ------------------------------------------------------------- install -----

install_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then return 0; fi
  local t0; t0=$(now)
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >"$LOGS/apt.log" 2>&1 || { tail -n 20 "$LOGS/apt.log" >&2; die "apt-get update failed"; }
  # policy-rc.d (exit 101) makes the postinst scripts skip starting services: fine.
  apt-get install -y "${PACKAGES[@]}" >>"$LOGS/apt.log" 2>&1 \
    || { tail -n 30 "$LOGS/apt.log" >&2; die "apt-get install failed; see $LOGS/apt.log"; }
  log "installed ${missing[*]} in $(since "$t0")s"
}

# ------------------------------------------------------------- configs -----

# render TEMPLATE DEST [MODE [OWNER]]: substitute @VARS@, replace DEST only if changed.
# Returns 0 if DEST changed, 1 if it was already up to date.
render() {
  local src="$TEMPLATES/$1" dst=$2 mode=${3:-0644} owner=${4:-root:root} tmp
  [[ -r $src ]] || die "missing template $src"
  tmp=$(mktemp "$dst.XXXXXX")
  sed -e "s#@LAB@#$LAB#g" -e "s#@NODE@#$NODE#g" -e "s#@SSH_PORT@#$SSH_PORT#g" \
      -e "s#@DB_PORT@#$DB_PORT#g" -e "s#@CLUSTER@#$CLUSTER#g" -e "s#@PARTITION@#$PARTITION#g" \
      -e "s#@NGPUS@#$NGPUS#g" -e "s#@GPU_MAX@#$((NGPUS - 1))#g" -e "s#@MUNGE_SOCK@#$MUNGE_SOCK#g" \
      -e "s#@DB_SOCK@#$DB_SOCK#g" -e "s#@PROCTRACK@#$PROCTRACK#g" -e "s#@STRICT_MODES@#$STRICT_MODES#g" \
      -e "s#@DB_PASS@#${DB_PASS:-}#g" "$src" >"$tmp"
  chmod "$mode" "$tmp"; chown "$owner" "$tmp"
  if [[ -f $dst ]] && cmp -s "$tmp" "$dst" && [[ $(stat -c '%a %U:%G' "$dst") == "${mode#0} $owner" ]]; then
    rm -f "$tmp"; return 1
  fi
  mv -f "$tmp" "$dst"
  return 0
}

# Any group/world-writable ancestor of the lab dir makes sshd's StrictModes
# reject $LAB/ssh/authorized_keys.
strict_modes() {
  local d=$LAB m
  while [[ $d != / && -n $d ]]; do
    m=$(stat -c '%a' "$d")
    (( (8#$m & 8#022) == 0 )) || { echo no; return; }
    d=$(dirname "$d")
  done
  echo yes
}

prepare_lab() {
  umask 022
  mkdir -p "$LAB" "$ETC" "$RUN" "$PIDS" "$LOGS" "$LAB/dev" "$LAB/jobs" "$LAB/slurm/spool" "/run/sshd"
  chmod 0755 "$LAB" "$ETC" "$RUN" "$LOGS" "$LAB/jobs"
  install -d -m 0700 -o munge -g munge "$LAB/munge" "$LOGS/munge"
  install -d -m 0755 -o munge -g munge "$RUN/munge"
  install -d -m 0750 -o mysql -g mysql "$LAB/mysql"
  install -d -m 0755 -o mysql -g mysql "$RUN/mysql"
  install -d -m 0700 -o slurm -g slurm "$LAB/slurm/state"
  install -d -m 0700 "$LAB/ssh"
  local f
  for f in slurmctld.log slurmdbd.log; do
    [[ -e $LOGS/$f ]] || install -m 0640 -o slurm -g slurm /dev/null "$LOGS/$f"
  done
  [[ -e $LOGS/mariadbd.err ]] || install -m 0640 -o mysql -g mysql /dev/null "$LOGS/mariadbd.err"

  # Fake GPUs: real character devices (major 195 = nvidia).
  local i
  for ((i = 0; i < NGPUS; i++)); do
    [[ -c $LAB/dev/nvidia$i ]] || { rm -f "$LAB/dev/nvidia$i"; mknod -m 0666 "$LAB/dev/nvidia$i" c 195 "$i"; }
  done

  # munge key (private to this lab).
  if [[ ! -s $LAB/munge/munge.key ]]; then
    dd if=/dev/urandom of="$LAB/munge/munge.key" bs=1024 count=1 status=none
  fi
  chown munge:munge "$LAB/munge/munge.key"; chmod 0400 "$LAB/munge/munge.key"

  # Database password for the slurm DB user.
  if [[ ! -s $ETC/db.pass ]]; then
    (umask 077; head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$ETC/db.pass")
  fi
  DB_PASS=$(<"$ETC/db.pass")

  # ssh: host key, client key, authorized_keys, known_hosts.
  [[ -s $LAB/ssh/ssh_host_ed25519_key ]] || ssh-keygen -q -t ed25519 -N '' -C "slurm-lab-host" -f "$LAB/ssh/ssh_host_ed25519_key"
  [[ -s $KEY ]] || ssh-keygen -q -t ed25519 -N '' -C "slurm-lab-client" -f "$KEY"
  chmod 0600 "$KEY" "$LAB/ssh/ssh_host_ed25519_key"
  install -m 0600 "$KEY.pub" "$LAB/ssh/authorized_keys"
  printf '[127.0.0.1]:%s %s\n' "$SSH_PORT" "$(cut -d' ' -f1,2 "$LAB/ssh/ssh_host_ed25519_key.pub")" >"$KNOWN"
  chmod 0644 "$KNOWN"
  STRICT_MODES=$(strict_modes)

  # proctrack/cgroup unless it was found not to work here (see start_slurmd).
  PROCTRACK=${SLURM_LAB_PROCTRACK:-$(cat "$ETC/proctrack" 2>/dev/null || echo cgroup)}

  render my.cnf "$ETC/my.cnf" 0644 || true
  render slurmdbd.conf "$ETC/slurmdbd.conf" 0600 slurm:slurm || true
  SLURM_CONF_CHANGED=0
  render slurm.conf "$ETC/slurm.conf" 0644 && SLURM_CONF_CHANGED=1
  render gres.conf "$ETC/gres.conf" 0644 && SLURM_CONF_CHANGED=1
  render cgroup.conf "$ETC/cgroup.conf" 0644 && SLURM_CONF_CHANGED=1
  render sshd_config "$ETC/sshd_config" 0644 || true
  link_etc_slurm
}

# Let clients outside ssh sessions (and job steps) find the lab config too.
link_etc_slurm() {
  local l=/etc/slurm/slurm.conf
  mkdir -p /etc/slurm
  if [[ -L $l || ! -e $l ]]; then
    [[ $(readlink "$l" 2>/dev/null) == "$ETC/slurm.conf" ]] || ln -sfn "$ETC/slurm.conf" "$l"
  elif [[ ! -f $ETC/.etc-warned ]]; then
    log "note: $l is a real file, left alone; use SLURM_CONF=$ETC/slurm.conf outside ssh"
    touch "$ETC/.etc-warned"
  fi
}

# -------------------------------------------------------------- starts -----

start_munged() {
  probe_munged && return 1
  pid_alive munged && stop_daemon munged >/dev/null
  start_daemon munged setpriv --reuid=munge --regid=munge --init-groups \
    /usr/sbin/munged -F --key-file="$LAB/munge/munge.key" --socket="$MUNGE_SOCK" \
    --pid-file="$RUN/munge/munged.pid" --seed-file="$LAB/munge/munged.seed" \
    --log-file="$LOGS/munge/munged.log" || die "munged failed to start"
  wait_for "$TIMEOUT" probe_munged || die "munged does not answer; see $LOGS/munge/munged.log"
}

start_mariadbd() {
  probe_mariadbd && return 1
  pid_alive mariadbd && stop_daemon mariadbd >/dev/null
  if [[ ! -d $LAB/mysql/data/mysql ]]; then
    rm -rf "$LAB/mysql/data"
    install -d -m 0750 -o mysql -g mysql "$LAB/mysql/data"
    mariadb-install-db --defaults-file="$ETC/my.cnf" --user=mysql --skip-test-db \
      --auth-root-authentication-method=socket >"$LOGS/mariadb-install-db.log" 2>&1 \
      || { tail -n 20 "$LOGS/mariadb-install-db.log" >&2; die "mariadb-install-db failed"; }
  fi
  start_daemon mariadbd /usr/sbin/mariadbd --defaults-file="$ETC/my.cnf" || die "mariadbd failed to start"
  wait_for "$TIMEOUT" probe_mariadbd || { tail -n 20 "$LOGS/mariadbd.err" >&2; die "mariadbd does not answer"; }
  # slurm DB user + database (idempotent).
  mariadb --defaults-file="$ETC/my.cnf" -uroot <<SQL || die "creating the slurm database failed"
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
SQL
}

sacctmgr_ready() { timeout 10 sacctmgr -n -P show cluster format=cluster >/dev/null 2>&1; }

start_slurmdbd() {
  local started=1
  if ! pid_alive slurmdbd; then
    # no -f option: slurmdbd reads slurmdbd.conf next to $SLURM_CONF
    start_daemon slurmdbd /usr/sbin/slurmdbd -D || die "slurmdbd failed to start"
    started=0
  fi
  wait_for "$TIMEOUT" sacctmgr_ready || { tail -n 20 "$LOGS/slurmdbd.log" >&2; die "slurmdbd does not answer"; }
  # Cluster, account, user (each only if missing; sacctmgr fails on duplicates).
  local changed=1
  if ! sacctmgr -n -P show cluster format=cluster | grep -qx "$CLUSTER"; then
    sacctmgr -i add cluster "$CLUSTER" >/dev/null; changed=0
  fi
  if ! sacctmgr -n -P show account "$ACCOUNT" format=account | grep -qx "$ACCOUNT"; then
    sacctmgr -i add account "$ACCOUNT" Cluster="$CLUSTER" Description="taoplan lab" Organization=taoplan >/dev/null; changed=0
  fi
  if ! sacctmgr -n -P show assoc where user=root account="$ACCOUNT" cluster="$CLUSTER" format=user | grep -qx root; then
    sacctmgr -i add user root Account="$ACCOUNT" DefaultAccount="$ACCOUNT" Cluster="$CLUSTER" >/dev/null; changed=0
  fi
  (( started == 0 || changed == 0 )) && return 0 || return 1
}

start_slurmctld() {
  if pid_alive slurmctld; then
    if (( SLURM_CONF_CHANGED )); then scontrol reconfigure >/dev/null 2>&1 || true; return 0; fi
    probe_slurmctld && return 1
    stop_daemon slurmctld >/dev/null
  fi
  start_daemon slurmctld /usr/sbin/slurmctld -D -f "$ETC/slurm.conf" || die "slurmctld failed to start"
  wait_for "$TIMEOUT" probe_slurmctld || { tail -n 20 "$LOGS/slurmctld.log" >&2; die "slurmctld does not answer"; }
}

node_usable() { [[ $(node_state) =~ ^(idle|mixed|allocated|completing)$ ]]; }

# wait_node SECONDS: until the node is usable; fails early if slurmd died.
wait_node() {
  local deadline=$(( $(date +%s) + $1 ))
  while (( $(date +%s) < deadline )); do
    node_usable && return 0
    pid_alive slurmd || return 1
    sleep 0.25
  done
  return 1
}

# proctrack/cgroup needs a usable cgroup hierarchy (slurm 22.05's cgroup/v2
# wants systemd delegation); if slurmd dies or jobs fail with it, switch to
# proctrack/linuxproc for good (remembered in $ETC/proctrack). A change of
# ProctrackType needs a restart of slurmctld and slurmd, not a reconfigure.
switch_to_linuxproc() {
  log "proctrack/cgroup does not work here ($1); switching to proctrack/linuxproc"
  echo linuxproc >"$ETC/proctrack"; PROCTRACK=linuxproc
  render slurm.conf "$ETC/slurm.conf" 0644 || true
  stop_daemon slurmd >/dev/null
  stop_daemon slurmctld >/dev/null
  SLURM_CONF_CHANGED=0
  start_slurmctld
  start_slurmd
}

start_slurmd() {
  if pid_alive slurmd && (( ! SLURM_CONF_CHANGED )) && node_usable; then return 1; fi
  pid_alive slurmd && stop_daemon slurmd >/dev/null
  if start_daemon slurmd /usr/sbin/slurmd -D -f "$ETC/slurm.conf" && wait_node 15; then return 0; fi
  if ! pid_alive slurmd; then
    [[ $PROCTRACK == cgroup ]] && { switch_to_linuxproc "slurmd exited"; return 0; }
    tail -n 20 "$LOGS/slurmd.log" >&2
    die "slurmd exited; see $LOGS/slurmd.log"
  fi
  # A node left DOWN/DRAIN by an earlier run: resume it.
  scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true
  wait_node "$TIMEOUT" || {
    tail -n 20 "$LOGS/slurmd.log" >&2
    die "node $NODE is '$(node_state)': $(sinfo -h -N -n "$NODE" -o '%E' 2>/dev/null)"
  }
}

start_sshd() {
  if pid_alive sshd; then
    probe_sshd && return 1
    stop_daemon sshd >/dev/null
  fi
  mkdir -p /run/sshd; chmod 0755 /run/sshd
  /usr/sbin/sshd -t -f "$ETC/sshd_config" 2>"$LOGS/sshd-test.log" || { cat "$LOGS/sshd-test.log" >&2; die "sshd_config invalid"; }
  start_daemon sshd /usr/sbin/sshd -D -f "$ETC/sshd_config" -E "$LOGS/sshd.log" || die "sshd failed to start"
  wait_for "$TIMEOUT" probe_sshd || { tail -n 20 "$LOGS/sshd.log" >&2; die "ssh root@127.0.0.1:$SSH_PORT does not work"; }
}

# -------------------------------------------------------------- checks -----

q() { printf '%q' "$1"; }

# job_final ID: wait until sacct reports a final state; print it.
job_final() {
  local id=$1 st deadline=$(( $(date +%s) + TIMEOUT ))
  while (( $(date +%s) < deadline )); do
    st=$(rsh "sacct -j $id -X -n -P -o State" 2>/dev/null | head -n1 || true)
    case $st in
      COMPLETED|FAILED*|CANCELLED*|TIMEOUT|OUT_OF_MEMORY|NODE_FAIL|BOOT_FAIL|PREEMPTED|DEADLINE) echo "$st"; return 0 ;;
    esac
    sleep 0.5
  done
  echo "${st:-<none>}"; return 1
}

two_running() { [[ $(rsh "squeue -h -j $TWO_IDS -t running -o %i" | wc -l) -eq 2 ]]; }
pending_with_reason() { local s; s=$(squeue_state "$PEND_ID"); [[ $s == PENDING\ * && $s != 'PENDING None' ]]; }

# squeue_state ID: live state (%T) and reason (%r) of a job.
squeue_state() { rsh "squeue -h -t all -j $1 -o $(q '%T %r')" 2>/dev/null || true; }

check_jobs() {
  local t0 id st out ids=() a b c
  mkdir -p "$LAB/jobs"
  # 1. a tiny gpu job, submitted over ssh, final state from sacct.
  t0=$(now)
  id=$(rsh "sbatch --parsable --account=$ACCOUNT --gres=gpu:1 --output=$(q "$LAB/jobs/%j.out") --wrap $(q 'echo ok CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES')") \
    || die "sbatch over ssh failed"
  id=${id%%;*}
  st=$(job_final "$id") || die "test job $id did not finish (last sacct state: $st)"
  if [[ $st != COMPLETED && $PROCTRACK == cgroup ]]; then
    switch_to_linuxproc "test job $id ended $st"
    id=$(rsh "sbatch --parsable --account=$ACCOUNT --gres=gpu:1 --output=$(q "$LAB/jobs/%j.out") --wrap $(q 'echo ok CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES')") \
      || die "sbatch over ssh failed"
    id=${id%%;*}
    st=$(job_final "$id") || die "test job $id did not finish (last sacct state: $st)"
  fi
  [[ $st == COMPLETED ]] || die "test job $id ended $st; see $LAB/jobs/$id.out and $LOGS/slurmd.log"
  out=$(cat "$LAB/jobs/$id.out" 2>/dev/null || true)
  [[ $out == ok* ]] || die "test job $id output unexpected: $out"
  log "check: job $id (--gres=gpu:1) COMPLETED in sacct after $(since "$t0")s ($out)"

  # 2. two gpu:1 jobs run together, a third one waits (PENDING, reason
  #    Resources), and a gpu:3 request is refused at submission.
  #    PITFALL: a job asking for more GPUs than any node has (gpu:3 > Gres=gpu:2)
  #    never pends: sbatch fails at once (rc 1) with "Requested node
  #    configuration is not available". taoplan must treat that as an error.
  t0=$(now)
  for _ in 1 2 3; do
    id=$(rsh "sbatch --parsable --gres=gpu:1 --output=$(q "$LAB/jobs/%j.out") --wrap $(q 'echo CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES; sleep 60')") \
      || die "sbatch failed"
    ids+=("${id%%;*}")
  done
  TWO_IDS="${ids[0]},${ids[1]}"; PEND_ID=${ids[2]}
  if ! wait_for 30 two_running; then
    rsh "scancel ${ids[*]}" || true
    die "two --gres=gpu:1 jobs did not run together: $(squeue_state "${ids[0]}") / $(squeue_state "${ids[1]}")"
  fi
  a=$(rsh "squeue -h -j $TWO_IDS -o $(q '%i=%b')" | tr '\n' ' ')
  wait_for 15 pending_with_reason || true
  b=$(squeue_state "$PEND_ID")
  c=$(rsh "sbatch --parsable --gres=gpu:3 --output=/dev/null --wrap true" 2>&1) && c="ACCEPTED ${c%%;*}"
  rsh "scancel ${ids[*]} $( [[ $c == ACCEPTED* ]] && echo "${c#ACCEPTED }")" || true
  [[ $b == PENDING\ * && $b != 'PENDING None' ]] || die "third --gres=gpu:1 job $PEND_ID is '$b', expected PENDING with a reason"
  [[ $c == *'Requested node configuration is not available'* ]] || die "--gres=gpu:3 submission: expected rejection, got: $c"
  log "check: two gpu:1 jobs ran together (${a% }), a third was '$b', gpu:3 rejected at submit; cancelled ($(since "$t0")s)"
}

check_docker() {
  local t0 img id st out
  t0=$(now)
  if [[ -f $HERE/ensure-dockerd.sh ]]; then
    bash "$HERE/ensure-dockerd.sh" >"$LOGS/ensure-dockerd.log" 2>&1 9>&- || { log "WARN: ensure-dockerd.sh failed; see $LOGS/ensure-dockerd.log; docker check skipped"; return 0; }
  elif ! timeout 10 docker info >/dev/null 2>&1; then
    command -v dockerd >/dev/null || { log "WARN: no dockerd on this machine; docker check skipped"; return 0; }
    start_dockerd_fallback || { log "WARN: could not start dockerd; docker check skipped"; return 0; }
  fi
  # Prefer small, shell-bearing images; else any local image.
  img=$(docker images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null | grep -v '<none>' \
        | awk '{p=9} /busybox|alpine/{p=1} /debian|ubuntu/{p=2} /python/{p=3} {print p, $0}' | sort -n | head -n1 | cut -d' ' -f2- || true)
  local cmd
  if [[ -n $img ]]; then
    cmd="docker run --rm --name slurm-lab-check-\$SLURM_JOB_ID $(q "$img") true && echo docker-run-ok"
  else
    cmd="docker info --format '{{.ServerVersion}}' && echo docker-info-ok"
  fi
  id=$(rsh "sbatch --parsable --output=$(q "$LAB/jobs/%j.out") --wrap $(q "$cmd")") || { log "WARN: docker check: sbatch failed"; return 0; }
  id=${id%%;*}
  st=$(job_final "$id") || true
  out=$(tail -n1 "$LAB/jobs/$id.out" 2>/dev/null || true)
  if [[ $st == COMPLETED && -n $img ]]; then
    log "check: docker run --rm $img from job $id works ($(since "$t0")s)"
  elif [[ $st == COMPLETED ]]; then
    log "check: no local docker image yet, docker run skipped; docker info from job $id works ($(since "$t0")s)"
  else
    log "WARN: docker check job $id ended '$st': $out (see $LAB/jobs/$id.out)"
  fi
}

start_dockerd_fallback() {
  setsid dockerd >>"$LOGS/dockerd.out" 2>&1 </dev/null 9>&- &
  echo $! >"$PIDS/dockerd.fallback"
  wait_for "$TIMEOUT" timeout 10 docker info
}

# ------------------------------------------------------------ commands -----

lock() {
  mkdir -p "$LAB"
  exec 9>"$LAB/.lock"
  flock -w 300 9 || die "another slurm-lab.sh holds $LAB/.lock"
}

cmd_status() {
  local rc=0 c ok
  for c in "${COMPONENTS[@]}"; do
    if "probe_$c" 2>/dev/null; then ok="up (pid $(<"$PIDS/$c"))"; else ok=DOWN; rc=1; fi
    case $c in
      mariadbd) ok+=" 127.0.0.1:$DB_PORT" ;;
      slurmdbd) ok+=" 127.0.0.1:6819" ;;
      slurmctld) ok+=" 127.0.0.1:6817" ;;
      slurmd) ok+=" node $NODE: $(node_state || true)" ;;
      sshd) ok+=" root@127.0.0.1:$SSH_PORT" ;;
    esac
    printf '%-10s %s\n' "$c:" "$ok"
  done
  return $rc
}

cmd_up() {
  [[ $(id -u) -eq 0 ]] || die "must run as root"
  local t0 c started=()
  t0=$(now)
  mkdir -p "$LOGS"
  install_packages
  lock
  prepare_lab
  getent hosts "$NODE" >/dev/null || log "WARN: node name $NODE does not resolve; ssh -L tunnels to $NODE:PORT will fail"
  for c in "${COMPONENTS[@]}"; do
    if "start_$c"; then
      started+=("$c")
      log "$c: started (pid $(<"$PIDS/$c"))"
    fi
  done
  if ((${#started[@]} == 0)); then
    log "already up, all components answer ($(since "$t0")s; 'check' re-runs the job checks)"
    return 0
  fi
  log "cluster ready: node $NODE idle, ssh root@127.0.0.1:$SSH_PORT works ($(since "$t0")s)"
  check_jobs
  check_docker
  close_master
  log "up done in $(since "$t0")s"
}

cmd_check() {
  lock
  cmd_status >/dev/null || { cmd_status >&2; die "lab is not fully up"; }
  check_jobs
  check_docker
  close_master
}

cmd_down() {
  local t0 ids i
  t0=$(now)
  [[ -d $LAB ]] || { log "nothing to stop ($LAB missing)"; return 0; }
  lock
  if pid_alive slurmctld && timeout 10 scontrol ping 2>/dev/null | grep -q 'is UP'; then
    ids=$(timeout 10 squeue -h -o '%i' 2>/dev/null | tr '\n' ' ' || true)
    if [[ -n ${ids// } ]]; then
      # shellcheck disable=SC2086
      scancel $ids 2>/dev/null || true
      for ((i = 0; i < 60; i++)); do
        [[ -z $(timeout 10 squeue -h -t running,completing,configuring -o '%i' 2>/dev/null) ]] && break
        sleep 0.5
      done
      log "scancelled jobs: $ids"
    fi
  fi
  close_master
  local c
  for c in sshd slurmd slurmctld slurmdbd mariadbd munged; do
    log "$(stop_daemon "$c")"
  done
  log "down in $(since "$t0")s"
}

cmd_env() {
  cat <<EOF
export SLURM_USER=root
export SLURM_HOSTNAME=127.0.0.1
export SLURM_SSH_PORT=$SSH_PORT
export SSH_KEY_PATH=$LAB/id_ed25519
export SLURM_KNOWN_HOSTS=$LAB/known_hosts
export SLURM_PARTITION=$PARTITION
export SLURM_ACCOUNT=$ACCOUNT
EOF
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  check) cmd_check ;;
  *) echo "usage: $0 {up|down|status|env|check}" >&2; exit 2 ;;
esac
