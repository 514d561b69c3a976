#!/usr/bin/env bash
# k8s-lab.sh -- a real Kubernetes control plane (etcd + kube-apiserver +
# kube-controller-manager + kube-scheduler) with kwok-simulated GPU nodes, for
# testing taoplan against a real API server on a machine without a container
# registry.
#
#   scripts/k8s-lab.sh build    build the binaries once (cached by version)
#   scripts/k8s-lab.sh up       start everything (idempotent; builds if needed)
#   scripts/k8s-lab.sh status   one line per component; non-zero if any is down
#   scripts/k8s-lab.sh env      print `export KUBECONFIG=...`
#   scripts/k8s-lab.sh down     stop every daemon by its recorded PID
#   scripts/k8s-lab.sh verify   end-to-end checks (GPU scheduling, SSA, dry-run)
#   scripts/k8s-lab.sh destroy  down, then delete the lab dir (etcd data, certs)
#   scripts/k8s-lab.sh node-up    up, plus one REAL node: kubelet + private containerd
#                                 + bridge CNI, images imported from Docker (see below)
#   scripts/k8s-lab.sh node-down  stop the real node (kubelet, its containerd)
#
# Layout: $TAOPLAN_K8S_LAB/{kubeconfig,pki/,kubeconfigs/,etcd/,run/*.pid,logs/*.log}
# Ports (loopback only): apiserver 6443, etcd 2479/2480, controller-manager
# 10257, scheduler 10259, kwok 10247 (the fake nodes' "kubelet" endpoint).
#
# Pinned versions: Kubernetes v1.33.13 (k8s.io/kubernetes from the Go module
# proxy, staging modules v0.33.13 via replace lines in scripts/k8s-lab/go.mod,
# see kubernetes/kubernetes#79384), kwok v0.7.0 (built against k8s v0.33.x).
# etcd is Debian's etcd-server (3.4.x).
#
# Timings on the 2-core dev machine (nice -n 19, GOFLAGS=-p=1, other builds
# and tests running alongside):
#   cold build, empty GOCACHE: 606 s (~10 min) for all six binaries
#     (kube-apiserver 325 s, kube-controller-manager 76, kube-scheduler 5,
#     kubectl 31, kwok 142, kubelet 27); a first run without kubelet and less
#     load took 450 s. Module download (~1 GB GOMODCACHE in total, shared)
#     adds well under a minute here.
#   rebuild after the binary cache was deleted but GOCACHE is warm: ~30 s
#   build with the binaries present: instant (never rebuilt; keyed by version)
#   up, fresh lab dir (certs, etcd, 2 nodes Ready): 8-10 s; up after down: ~5 s;
#   up with everything running: 0.3 s; down: ~5 s.
#   node-up, first time (pause image built, TAO test image imported, node
#     Ready): ~20 s, 8 s of it the 305 MB image import; with everything
#     running: 0.7 s; node-down: ~4 s (pods drained first).
#
# Environment:
#   TAOPLAN_CACHE    cache root      (default /var/cache/taoplan); binaries in
#                    $TAOPLAN_CACHE/k8s/<version>/bin/
#   TAOPLAN_K8S_LAB  lab state dir   (default /var/lib/taoplan-k8s-lab)
#   K8S_LAB_NODES    number of kwok fake nodes (default 2)
#   K8S_LAB_GPUS     nvidia.com/gpu per fake node (default 4)
#   K8S_LAB_KUBELET  =0 to skip building kubelet (the kwok lab does not run it)
set -euo pipefail

K8S_VERSION=v1.33.13
KWOK_VERSION=v0.7.0

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MODDIR="$HERE/k8s-lab"
CACHE_ROOT=${TAOPLAN_CACHE:-/var/cache/taoplan}
BIN="$CACHE_ROOT/k8s/$K8S_VERSION/bin"
LAB=${TAOPLAN_K8S_LAB:-/var/lib/taoplan-k8s-lab}
NODES=${K8S_LAB_NODES:-2}
GPUS=${K8S_LAB_GPUS:-4}
APISERVER_PORT=6443
ETCD_CLIENT_PORT=2479   # not 2379, so a system etcd (if any) does not clash
ETCD_PEER_PORT=2480
export PATH="$PATH:/usr/local/go/bin"

log() { printf '[k8s-lab] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- build ----

CONTROL_PLANE=(kube-apiserver kube-controller-manager kube-scheduler kubectl)

go_env() {
  # Share the default GOMODCACHE/GOCACHE with later runs; leave one core free.
  local flags
  flags="$(go env GOFLAGS) -p=1"
  env GOFLAGS="$flags" GOTOOLCHAIN=local nice -n 19 "$@"
}

k8s_ldflags() {
  local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  local d x=""
  d=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    x+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    x+=" -X $p.gitTreeState=clean -X $p.buildDate=$d"
  done
  echo "-s -w$x"
}

cmd_build() {
  command -v go >/dev/null || die "go not found (expected /usr/local/go/bin/go)"
  local want=("${CONTROL_PLANE[@]}" kwok)
  [[ ${K8S_LAB_KUBELET:-1} == 1 ]] && want+=(kubelet)
  local missing=()
  for b in "${want[@]}"; do [[ -x $BIN/$b ]] || missing+=("$b"); done
  if ((${#missing[@]} == 0)); then
    log "binaries present in $BIN (version $K8S_VERSION, kwok $KWOK_VERSION); not rebuilding"
    return 0
  fi
  mkdir -p "$BIN"
  # One build at a time per version (other sessions may share this cache).
  exec 9>"$BIN/../.build.lock"
  flock -w 3600 9 || die "could not lock $BIN/../.build.lock"
  missing=()
  for b in "${want[@]}"; do [[ -x $BIN/$b ]] || missing+=("$b"); done
  ((${#missing[@]} == 0)) && { log "binaries were built meanwhile by another process"; return 0; }
  BUILD_TMP=$(mktemp -d "$BIN/.build.XXXXXX")
  trap 'rm -rf "$BUILD_TMP"' EXIT
  local tmp=$BUILD_TMP
  local t0=$SECONDS ldflags; ldflags=$(k8s_ldflags)
  for b in "${missing[@]}"; do
    local t1=$SECONDS
    if [[ $b == kwok ]]; then
      log "building kwok $KWOK_VERSION ..."
      # kwok is a normal module: go install pkg@version uses its own go.mod.
      (cd "$tmp" && go_env env GOBIN="$tmp" go install \
        -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" \
        "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION")
    else
      log "building $b $K8S_VERSION ..."
      (cd "$MODDIR" && go_env go build -trimpath -ldflags "$ldflags" \
        -o "$tmp/$b" "k8s.io/kubernetes/cmd/$b")
    fi
    mv -f "$tmp/$b" "$BIN/$b"
    log "built $b in $((SECONDS - t1))s"
  done
  rm -rf "$tmp"
  log "build finished in $((SECONDS - t0))s -> $BIN"
}

need_bins() {
  for b in "${CONTROL_PLANE[@]}" kwok; do
    [[ -x $BIN/$b ]] || die "$BIN/$b missing; run: $0 build"
  done
}

# ----------------------------------------------------------------- certs ---

PKI="$LAB/pki"

# sign_cert NAME CN O EKU [SANS]  -> $PKI/NAME.{key,crt}, signed by the lab CA
sign_cert() {
  local name=$1 cn=$2 o=$3 eku=$4 sans=${5:-}
  [[ -s $PKI/$name.crt && -s $PKI/$name.key ]] && return 0
  local subj="/CN=$cn"; [[ -n $o ]] && subj="/O=$o$subj"
  local ext="$PKI/$name.ext"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [[ -n $sans ]] && echo "subjectAltName=$sans"
  } >"$ext"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
    -CAcreateserial -days 3650 -sha256 -extfile "$ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$ext"
  chmod 600 "$PKI/$name.key"
}

make_pki() {
  mkdir -p "$PKI"; chmod 700 "$PKI"
  if [[ ! -s $PKI/ca.crt ]]; then
    log "creating CA, serving/client certs and service-account key in $PKI"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout "$PKI/ca.key" -out "$PKI/ca.crt" -days 3650 -sha256 \
      -subj "/CN=taoplan-k8s-lab-ca" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
    chmod 600 "$PKI/ca.key"
  fi
  sign_cert apiserver kube-apiserver "" serverAuth \
    "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.96.0.1"
  sign_cert admin kubernetes-admin system:masters clientAuth
  sign_cert controller-manager system:kube-controller-manager "" clientAuth
  sign_cert scheduler system:kube-scheduler "" clientAuth
  # kwok updates node and pod status of every fake node: give it admin rights.
  sign_cert kwok kwok system:masters clientAuth
  # kwok's "kubelet" server (logs/exec/port-forward are proxied to it by the
  # apiserver; nodes advertise 127.0.0.1:10247 so nothing leaves loopback).
  sign_cert kwok-serving kwok-serving "" serverAuth "DNS:localhost,IP:127.0.0.1"
  # kube-apiserver -> kubelet (kwok) client identity
  sign_cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters clientAuth
  # Front proxy (aggregation layer) identity. Without --requestheader-* flags on
  # the apiserver, the scheduler/controller-manager log "missing content for CA
  # bundle ... requestheader-client-ca-file" errors forever.
  sign_cert front-proxy-client front-proxy-client "" clientAuth
  if [[ ! -s $PKI/sa.key ]]; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$PKI/sa.key" 2>/dev/null
    openssl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
    chmod 600 "$PKI/sa.key"
  fi
}

# write_kubeconfig FILE CERTNAME USER
write_kubeconfig() {
  local file=$1 cert=$2 user=$3
  [[ -s $file ]] && return 0
  local b64="base64 -w0"
  cat >"$file.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: taoplan-k8s-lab
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $($b64 <"$PKI/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $($b64 <"$PKI/$cert.crt")
    client-key-data: $($b64 <"$PKI/$cert.key")
contexts:
- name: $user@taoplan-k8s-lab
  context:
    cluster: taoplan-k8s-lab
    user: $user
    namespace: default
current-context: $user@taoplan-k8s-lab
EOF
  chmod 600 "$file.tmp"; mv "$file.tmp" "$file"
}

# --------------------------------------------------------------- daemons ---

pidfile() { echo "$LAB/run/$1.pid"; }
logfile() { echo "$LAB/logs/$1.log"; }

# running NAME: the recorded PID is alive and is still our binary (guards
# against PID reuse after a reboot of the container).
running() {
  local pf; pf=$(pidfile "$1")
  [[ -s $pf ]] || return 1
  local pid; pid=$(<"$pf")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  local exe; exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  [[ $(basename "${exe% (deleted)}") == "$2" ]]
}

# start NAME BINARY ARGS... (background, own session, PID file, log file)
start() {
  local name=$1 bin=$2; shift 2
  if running "$name" "$(basename "$bin")"; then
    return 0
  fi
  local lf; lf=$(logfile "$name")
  { echo; echo "=== $(date -u +%FT%TZ) starting $name: $bin $*"; } >>"$lf"
  # 8>&- 9>&-: daemons must not inherit (and so hold forever) the lock fds.
  setsid "$bin" "$@" >>"$lf" 2>&1 </dev/null 8>&- 9>&- &
  echo $! >"$(pidfile "$name")"
  log "started $name (pid $!, log $lf)"
}

# wait_for DESC SECONDS CMD...
wait_for() {
  local desc=$1 t=$2; shift 2
  local end=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= end)); then
      die "timed out after ${t}s waiting for $desc (logs in $LAB/logs)"
    fi
    sleep 0.5
  done
}

CURL=(curl -fsS --max-time 3)
etcd_healthy() { "${CURL[@]}" "http://127.0.0.1:$ETCD_CLIENT_PORT/health" | grep -q '"health":"true"'; }
api_ready() {
  "${CURL[@]}" --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "https://127.0.0.1:$APISERVER_PORT/readyz" | grep -q '^ok$'
}
https_healthy() { "${CURL[@]}" -k "https://127.0.0.1:$1/healthz" | grep -q '^ok$'; }
kwok_healthy() { "${CURL[@]}" --cacert "$PKI/ca.crt" "https://127.0.0.1:10247/healthz" | grep -q '^ok$'; }
kctl() { "$BIN/kubectl" --kubeconfig "$LAB/kubeconfig" "$@"; }

ensure_etcd() {
  if ! command -v etcd >/dev/null; then
    log "installing etcd-server (Debian)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends etcd-server >/dev/null \
      || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends etcd-server >/dev/null; } \
      || die "could not install etcd-server"
  fi
}

cmd_up() {
  local t0=$SECONDS
  cmd_build
  need_bins
  ensure_etcd
  mkdir -p "$LAB"/{run,logs,etcd,kubeconfigs,certs-kcm,certs-sched}
  chmod 700 "$LAB/etcd"
  make_pki
  write_kubeconfig "$LAB/kubeconfig" admin kubernetes-admin
  write_kubeconfig "$LAB/kubeconfigs/controller-manager" controller-manager system:kube-controller-manager
  write_kubeconfig "$LAB/kubeconfigs/scheduler" scheduler system:kube-scheduler
  write_kubeconfig "$LAB/kubeconfigs/kwok" kwok kwok

  # etcd (Debian 3.4): plain HTTP on loopback only, dedicated ports.
  start etcd "$(command -v etcd)" \
    --name taoplan-k8s-lab --data-dir "$LAB/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "taoplan-k8s-lab=http://127.0.0.1:$ETCD_PEER_PORT" \
    --quota-backend-bytes 2147483648 --snapshot-count 10000 \
    --log-level warn
  wait_for "etcd" 30 etcd_healthy

  # kube-apiserver. --endpoint-reconciler-type=none: the endpoints of the
  # "kubernetes" Service would be 127.0.0.1, which Endpoints validation rejects.
  start kube-apiserver "$BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 \
    --secure-port "$APISERVER_PORT" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types InternalIP,Hostname \
    --requestheader-client-ca-file "$PKI/ca.crt" \
    --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User \
    --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$PKI/front-proxy-client.crt" \
    --proxy-client-key-file "$PKI/front-proxy-client.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$PKI/sa.pub" \
    --service-account-signing-key-file "$PKI/sa.key" \
    --service-cluster-ip-range 10.96.0.0/16 \
    --authorization-mode Node,RBAC \
    --allow-privileged=true \
    --endpoint-reconciler-type none \
    --profiling=false \
    --v 1
  wait_for "kube-apiserver /readyz" 120 api_ready

  start kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig "$LAB/kubeconfigs/controller-manager" \
    --authentication-kubeconfig "$LAB/kubeconfigs/controller-manager" \
    --authorization-kubeconfig "$LAB/kubeconfigs/controller-manager" \
    --bind-address 127.0.0.1 --secure-port 10257 --cert-dir "$LAB/certs-kcm" \
    --service-account-private-key-file "$PKI/sa.key" \
    --root-ca-file "$PKI/ca.crt" \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --use-service-account-credentials=true \
    --service-cluster-ip-range 10.96.0.0/16 \
    --leader-elect=false --profiling=false --v 1
  start kube-scheduler "$BIN/kube-scheduler" \
    --kubeconfig "$LAB/kubeconfigs/scheduler" \
    --authentication-kubeconfig "$LAB/kubeconfigs/scheduler" \
    --authorization-kubeconfig "$LAB/kubeconfigs/scheduler" \
    --bind-address 127.0.0.1 --secure-port 10259 --cert-dir "$LAB/certs-sched" \
    --leader-elect=false --profiling=false --v 1
  # kwok: manages only nodes annotated kwok.x-k8s.io/node=fake, default
  # ("fast") node and pod stages: pods bound to a fake node become Running and
  # Ready at once. Pod IPs come from --cidr and are fake: nothing listens there,
  # never connect to them. The node address is 127.0.0.1:10247 (kwok's own
  # kubelet-like server), so apiserver->"kubelet" traffic stays on loopback.
  start kwok "$BIN/kwok" \
    --kubeconfig "$LAB/kubeconfigs/kwok" \
    --manage-all-nodes=false \
    --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --cidr 10.244.0.1/16 --node-ip 127.0.0.1 --node-port 10247 \
    --server-address 127.0.0.1:10247 \
    --tls-cert-file "$PKI/kwok-serving.crt" --tls-private-key-file "$PKI/kwok-serving.key" \
    --node-lease-duration-seconds 40
  wait_for "kube-controller-manager /healthz" 60 https_healthy 10257
  wait_for "kube-scheduler /healthz" 60 https_healthy 10259
  wait_for "kwok /healthz" 60 kwok_healthy

  local i name
  for ((i = 0; i < NODES; i++)); do
    name="kwok-node-$i"
    if ! kctl get node "$name" >/dev/null 2>&1; then
      sed -e "s/@NAME@/$name/g" -e "s/@GPUS@/$GPUS/g" "$MODDIR/kwok-node.yaml" | kctl create -f - >/dev/null
      log "created fake node $name (nvidia.com/gpu: $GPUS)"
    fi
  done
  wait_for "fake nodes Ready" 60 nodes_ready
  wait_for "default ServiceAccount" 60 kctl get serviceaccount default -n default
  log "up in $((SECONDS - t0))s; $(cmd_env)"
}

nodes_ready() {
  local got
  got=$(kctl get nodes -l type=kwok \
    -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c '^True$')
  ((got >= NODES))
}

# stop_daemons NAME...: TERM every named daemon at once, wait up to 15 s, then KILL.
stop_daemons() {
  local name pid pids=() names=()
  for name in "$@"; do
    local pf; pf=$(pidfile "$name")
    [[ -s $pf ]] || continue
    if running "$name" "$name"; then
      pid=$(<"$pf"); kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid"); names+=("$name")
    fi
    rm -f "$pf"
  done
  local i j alive
  for ((i = 0; i < 150; i++)); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for ((j = 0; j < ${#pids[@]}; j++)); do
    if kill -0 "${pids[j]}" 2>/dev/null; then
      log "${names[j]} (pid ${pids[j]}) did not stop on TERM; sending KILL"
      kill -KILL "${pids[j]}" 2>/dev/null || true
    fi
    log "stopped ${names[j]} (pid ${pids[j]})"
  done
}

cmd_down() {
  cmd_node_down
  # Clients of the apiserver and the apiserver first, etcd last.
  stop_daemons kwok kube-scheduler kube-controller-manager kube-apiserver
  stop_daemons etcd
}

cmd_status() {
  local bad=0 name pid state health
  for name in etcd kube-apiserver kube-controller-manager kube-scheduler kwok; do
    pid=$(cat "$(pidfile "$name")" 2>/dev/null || true)
    if running "$name" "$name"; then
      state="running pid $pid"
      case $name in
        etcd) etcd_healthy && health="healthy http://127.0.0.1:$ETCD_CLIENT_PORT" || health=UNHEALTHY ;;
        kube-apiserver) api_ready && health="ready https://127.0.0.1:$APISERVER_PORT" || health=NOT-READY ;;
        kube-controller-manager) https_healthy 10257 && health=healthy || health=UNHEALTHY ;;
        kube-scheduler) https_healthy 10259 && health=healthy || health=UNHEALTHY ;;
        kwok) kwok_healthy && health=healthy || health=UNHEALTHY ;;
      esac
      [[ $health == UNHEALTHY || $health == NOT-READY ]] && bad=1
    else
      state=DOWN; health=""; bad=1
    fi
    printf '%-24s %-18s %s\n' "$name" "$state" "$health"
  done
  if api_ready 2>/dev/null; then
    local n
    n=$(kctl get nodes -l type=kwok \
      -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' 2>/dev/null | grep -c '^True$' || true)
    printf '%-24s %-18s %s\n' "nodes" "$n/$NODES Ready" "nvidia.com/gpu: $GPUS each (kwok)"
    ((n >= NODES)) || bad=1
  else
    printf '%-24s %-18s\n' "nodes" "unknown"
  fi
  # the real node (node-up), only when it was started
  if [[ -s $(pidfile kubelet) ]]; then
    for name in containerd kubelet; do
      running "$name" "$name" && state="running pid $(<"$(pidfile "$name")")" || { state=DOWN; bad=1; }
      printf '%-24s %-18s\n' "$name" "$state"
    done
    if node_is_ready 2>/dev/null; then
      printf '%-24s %-18s %s\n' "$NODE_NAME" "Ready" "$NODE_IP, real kubelet, taint $NODE_TAINT"
    else
      printf '%-24s %-18s\n' "$NODE_NAME" "NOT Ready"; bad=1
    fi
  fi
  return $bad
}

cmd_env() {
  echo "export KUBECONFIG=$LAB/kubeconfig"
}

cmd_destroy() {
  cmd_down
  [[ $LAB == / || $LAB == "$HOME" ]] && die "refusing to delete $LAB"
  [[ -d $LAB ]] && rm -rf -- "$LAB" && log "removed $LAB"
  return 0
}

# ---------------------------------------------------------------- verify ---

# verify: end-to-end checks against the running lab, in a scratch namespace
# that is deleted afterwards.
cmd_verify() {
  need_bins
  api_ready || die "lab is not up (run: $0 up)"
  local ns=k8s-lab-verify fails=0 passes=0 i
  ok() { printf 'PASS  %s\n' "$*"; passes=$((passes + 1)); }
  ko() { printf 'FAIL  %s\n' "$*"; fails=$((fails + 1)); }
  kctl delete namespace "$ns" --ignore-not-found --wait=true >/dev/null 2>&1 || true
  kctl create namespace "$ns" >/dev/null
  wait_for "ServiceAccount $ns/default" 30 kctl -n "$ns" get serviceaccount default

  # 1. Deployment asking for one GPU -> pod Running/Ready on a kwok node.
  kctl -n "$ns" apply -f - >/dev/null <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata: {name: gpu-one}
spec:
  replicas: 1
  selector: {matchLabels: {app: gpu-one}}
  template:
    metadata: {labels: {app: gpu-one}}
    spec:
      containers:
      - name: main
        image: nvcr.io/nvidia/tao/tao-toolkit:fake
        resources:
          limits: {nvidia.com/gpu: 1}
EOF
  if kctl -n "$ns" wait --for=condition=Available deployment/gpu-one --timeout=60s >/dev/null &&
     kctl -n "$ns" wait --for=condition=Ready pod -l app=gpu-one --timeout=30s >/dev/null; then
    local node; node=$(kctl -n "$ns" get pod -l app=gpu-one -o jsonpath='{.items[0].spec.nodeName}')
    ok "Deployment with nvidia.com/gpu: 1 -> pod Ready on $node"
  else
    ko "Deployment with nvidia.com/gpu: 1 did not become Available"
    kctl -n "$ns" get pods -o wide || true
  fi

  # 1b. GPU accounting across nodes: NODES*GPUS one-GPU replicas fit, one more does not.
  local total=$((NODES * GPUS)) ready pending
  kctl -n "$ns" scale deployment/gpu-one --replicas=$((total + 1)) >/dev/null
  for ((i = 0; i < 60; i++)); do
    ready=$(kctl -n "$ns" get deployment gpu-one -o jsonpath='{.status.readyReplicas}')
    pending=$(kctl -n "$ns" get pods -l app=gpu-one --field-selector=status.phase=Pending -o name | wc -l)
    [[ $ready == "$total" && $pending == 1 ]] && break
    sleep 0.5
  done
  [[ $ready == "$total" && $pending == 1 ]] &&
    ok "$((total + 1)) one-GPU replicas on $NODES x $GPUS GPUs: $ready Ready, 1 Pending" ||
    ko "GPU accounting: $ready Ready, $pending Pending (want $total and 1)"
  kctl -n "$ns" delete deployment gpu-one --wait=false >/dev/null

  # 2. A pod asking for more GPUs than any node has stays Pending/Unschedulable.
  kctl -n "$ns" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: gpu-too-many}
spec:
  containers:
  - name: main
    image: nvcr.io/nvidia/tao/tao-toolkit:fake
    resources:
      limits: {nvidia.com/gpu: $((GPUS + 1))}
EOF
  local msg=""
  for ((i = 0; i < 60; i++)); do
    msg=$(kctl -n "$ns" get pod gpu-too-many \
      -o jsonpath='{.status.phase} {.status.conditions[?(@.type=="PodScheduled")].reason}: {.status.conditions[?(@.type=="PodScheduled")].message}')
    [[ $msg == *Unschedulable* ]] && break
    sleep 0.5
  done
  if [[ $msg == Pending\ Unschedulable:*"Insufficient nvidia.com/gpu"* ]]; then
    ok "pod asking for $((GPUS + 1)) GPUs stays $msg"
  else
    ko "over-asking pod: unexpected status '$msg'"
  fi

  # 3. Server-side apply: raw PATCH application/apply-patch+yaml with a field manager.
  local url="https://127.0.0.1:$APISERVER_PORT/api/v1/namespaces/$ns/configmaps/ssa-probe"
  local auth=(--cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key")
  local body='{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"ssa-probe"},"data":{"a":"1"}}'
  local out
  out=$(curl -fsS "${auth[@]}" -X PATCH -H 'Content-Type: application/apply-patch+yaml' \
        --data "$body" "$url?fieldManager=taoplan&force=true") &&
    jq -e '.data.a == "1" and ([.metadata.managedFields[] | select(.manager == "taoplan" and .operation == "Apply")] | length == 1)' <<<"$out" >/dev/null &&
    ok "server-side apply (PATCH application/apply-patch+yaml, fieldManager=taoplan) created ConfigMap" ||
    ko "server-side apply create: $out"
  # A conflicting apply by another manager must be refused (409) without force.
  local code
  code=$(curl -sS -o /dev/null -w '%{http_code}' "${auth[@]}" -X PATCH \
         -H 'Content-Type: application/apply-patch+yaml' \
         --data '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"ssa-probe"},"data":{"a":"2"}}' \
         "$url?fieldManager=someone-else")
  [[ $code == 409 ]] && ok "conflicting apply by another field manager -> 409 Conflict" ||
    ko "conflicting apply returned HTTP $code (want 409)"

  # 4. Server-side dry-run: the change is validated and returned but not stored.
  out=$(curl -fsS "${auth[@]}" -X PATCH -H 'Content-Type: application/apply-patch+yaml' \
        --data '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"ssa-probe"},"data":{"a":"1","b":"dry"}}' \
        "$url?fieldManager=taoplan&dryRun=All")
  if [[ $(jq -r '.data.b' <<<"$out") == dry && $(kctl -n "$ns" get configmap ssa-probe -o jsonpath='{.data.b}') == "" ]]; then
    ok "server-side dry-run (dryRun=All) returned the change and stored nothing"
  else
    ko "server-side dry-run: $out"
  fi
  # and invalid objects are rejected by real validation under dry-run:
  code=$(curl -sS -o /dev/null -w '%{http_code}' "${auth[@]}" -X PATCH \
         -H 'Content-Type: application/apply-patch+yaml' \
         --data '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"Bad_Name"},"spec":{}}' \
         "https://127.0.0.1:$APISERVER_PORT/apis/apps/v1/namespaces/$ns/deployments/Bad_Name?fieldManager=taoplan&dryRun=All")
  [[ $code == 422 ]] && ok "invalid Deployment under dry-run -> 422 Invalid" ||
    ko "invalid Deployment under dry-run returned HTTP $code (want 422)"
  kctl -n "$ns" apply --server-side --field-manager=taoplan --dry-run=server -f - >/dev/null <<'EOF' &&
apiVersion: v1
kind: ConfigMap
metadata: {name: kubectl-ssa-dry}
data: {x: "1"}
EOF
    ok "kubectl apply --server-side --dry-run=server" || ko "kubectl apply --server-side --dry-run=server"

  kctl delete namespace "$ns" --wait=true --timeout=60s >/dev/null 2>&1 ||
    log "warning: namespace $ns still terminating"
  echo "$passes passed, $fails failed"
  ((fails == 0))
}

# ------------------------------------------------------------ real node ----
# `node-up`: one REAL node next to the kwok ones: a private containerd (Debian
# 1.6, own socket/root/state) with the bridge CNI, and the kubelet built above.
# Pods on it really run: the pause image, the TAO test image and (when built)
# the LLM test image are imported from the local Docker engine (no registry), so taoplan's readiness probe,
# port-forward and `taoplan request` go through real components. The node is
# tainted taoplan.io/real-node=true:NoSchedule (only pods that tolerate it land
# there) and advertises nvidia.com/gpu: $GPUS through a status patch (no GPUs
# are passed to containers; the test image needs none).

NODE_NAME=${K8S_LAB_NODE_NAME:-taoplan-node-0}
NODE_IF=tpk8s0                      # a port-less bridge carrying the node IP (no dummy module here)
NODE_IP=${K8S_LAB_NODE_IP:-10.213.0.1}
POD_SUBNET=${K8S_LAB_POD_SUBNET:-10.214.0.0/16}
NODE_DIR="$LAB/node"
NODE_RUN=/run/taoplan-k8s-lab
CTRD_SOCK="$NODE_RUN/containerd.sock"
TEST_IMAGE=${TAOPLAN_TEST_IMAGE:-localhost/taoplan/tao-test:7.3.0}
LLM_IMAGE=${TAOPLAN_LLM_IMAGE:-localhost/taoplan/llamacpp-test:1}   # scripts/build-llm-image.sh; optional
PAUSE_IMAGE=registry.k8s.io/pause:3.10
NODE_TAINT=taoplan.io/real-node=true:NoSchedule

ctr_k8s() { ctr --address "$CTRD_SOCK" --namespace k8s.io "$@"; }

node_network() {
  if ! ip link show "$NODE_IF" >/dev/null 2>&1; then
    ip link add "$NODE_IF" type bridge || die "cannot create interface $NODE_IF (CAP_NET_ADMIN?)"
  fi
  ip link set "$NODE_IF" up
  ip -4 addr show dev "$NODE_IF" | grep -q "inet $NODE_IP/" || ip addr add "$NODE_IP/32" dev "$NODE_IF"
  sysctl -qw net.ipv4.ip_forward=1 || true
  mkdir -p "$NODE_DIR/cni"
  cat >"$NODE_DIR/cni/10-taoplan.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "taoplan-lab",
  "plugins": [
    {"type": "bridge", "bridge": "tpk8s-br0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_SUBNET"}]], "routes": [{"dst": "0.0.0.0/0"}],
              "dataDir": "$NODE_DIR/cni-ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}
EOF
}

node_containerd() {
  mkdir -p "$NODE_DIR/containerd" "$NODE_RUN"
  cat >"$NODE_DIR/containerd.toml" <<EOF
version = 2
root = "$NODE_DIR/containerd"
state = "$NODE_RUN/containerd"

[grpc]
  address = "$CTRD_SOCK"
[ttrpc]
  address = "$NODE_RUN/containerd.ttrpc.sock"
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # REQUIRED here: without it runc cannot write oom_score_adj (no CAP_SYS_RESOURCE).
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NODE_DIR/cni"
[plugins."io.containerd.internal.v1.opt"]
  path = "$NODE_DIR/containerd-opt"
EOF
  start containerd "$(command -v containerd)" --config "$NODE_DIR/containerd.toml" --log-level warn
  wait_for "containerd ($CTRD_SOCK)" 30 ctr --address "$CTRD_SOCK" version
}

# import_image REF: docker image REF -> the node's containerd, once per image id.
import_image() {
  local ref=$1 id stamp
  id=$(docker image inspect --format '{{.Id}}' "$ref") || die "docker image $ref is missing"
  stamp="$NODE_DIR/images/$(echo "$ref" | tr '/:' '__').id"
  mkdir -p "$NODE_DIR/images"
  if [[ -s $stamp && $(<"$stamp") == "$id" ]] && ctr_k8s images ls -q | grep -qxF "$ref"; then
    return 0
  fi
  local t=$SECONDS
  docker save "$ref" | ctr_k8s images import - >/dev/null
  echo "$id" >"$stamp"
  log "imported $ref into the node's containerd in $((SECONDS - t))s"
}

pause_image() {
  if docker image inspect "$PAUSE_IMAGE" >/dev/null 2>&1; then return 0; fi
  local dir="$NODE_DIR/pause-build"
  rm -rf "$dir"; mkdir -p "$dir"
  cat >"$dir/main.go" <<'EOF'
// pause: the pod sandbox's PID 1. Waits for SIGTERM/SIGINT and reaps children.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range sigs {
		if s == syscall.SIGCHLD {
			for {
				var ws syscall.WaitStatus
				if pid, _ := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 {
					break
				}
			}
			continue
		}
		os.Exit(0)
	}
}
EOF
  printf 'module pause\n\ngo 1.22\n' >"$dir/go.mod"
  (cd "$dir" && CGO_ENABLED=0 GOTOOLCHAIN=local go build -trimpath -ldflags '-s -w' -o pause .) ||
    die "could not build the pause binary"
  printf 'FROM scratch\nCOPY pause /pause\nENTRYPOINT ["/pause"]\n' >"$dir/Dockerfile"
  DOCKER_BUILDKIT=0 docker build -q -t "$PAUSE_IMAGE" "$dir" >/dev/null || die "docker build of $PAUSE_IMAGE failed"
  log "built $PAUSE_IMAGE (static Go pause, FROM scratch)"
}

node_kubelet() {
  sign_cert "kubelet-$NODE_NAME" "system:node:$NODE_NAME" system:nodes clientAuth
  sign_cert "kubelet-$NODE_NAME-serving" "$NODE_NAME" "" serverAuth "DNS:$NODE_NAME,IP:$NODE_IP,IP:127.0.0.1"
  write_kubeconfig "$LAB/kubeconfigs/kubelet" "kubelet-$NODE_NAME" "system:node:$NODE_NAME"
  mkdir -p "$NODE_DIR/kubelet"
  cat >"$NODE_DIR/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: AlwaysAllow}
tlsCertFile: $PKI/kubelet-$NODE_NAME-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-$NODE_NAME-serving.key
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
protectKernelDefaults: false
containerRuntimeEndpoint: unix://$CTRD_SOCK
imageServiceEndpoint: unix://$CTRD_SOCK
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
maxPods: 30
registerWithTaints:
- {key: taoplan.io/real-node, value: "true", effect: NoSchedule}
EOF
  start kubelet "$BIN/kubelet" \
    --config "$NODE_DIR/kubelet.yaml" \
    --kubeconfig "$LAB/kubeconfigs/kubelet" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" \
    --node-labels "taoplan.io/lab=kubelet,kubernetes.io/hostname=$NODE_NAME" \
    --root-dir "$NODE_DIR/kubelet" --cert-dir "$NODE_DIR/kubelet/pki" \
    --v 1
  wait_for "node $NODE_NAME Ready" 120 node_is_ready
  # extended resources are advertised through the status subresource (as a device plugin would)
  if [[ $(kctl get node "$NODE_NAME" -o jsonpath='{.status.capacity.nvidia\.com/gpu}') != "$GPUS" ]]; then
    kctl patch node "$NODE_NAME" --subresource=status --type=json \
      -p "[{\"op\":\"add\",\"path\":\"/status/capacity/nvidia.com~1gpu\",\"value\":\"$GPUS\"}]" >/dev/null
  fi
  wait_for "nvidia.com/gpu allocatable on $NODE_NAME" 60 node_has_gpus
}

node_is_ready() {
  [[ $(kctl get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}') == True ]]
}
node_has_gpus() {
  [[ $(kctl get node "$NODE_NAME" -o jsonpath='{.status.allocatable.nvidia\.com/gpu}') == "$GPUS" ]]
}

# Debian packages the real node needs: containerd and runc come with docker.io; the CNI plugins
# (bridge, host-local, portmap, loopback) do not.
node_packages() {
  local pkg missing=()
  command -v containerd >/dev/null || missing+=(containerd)
  command -v runc >/dev/null || missing+=(runc)
  [[ -x /usr/lib/cni/bridge ]] || missing+=(containernetworking-plugins)
  ((${#missing[@]})) || return 0
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; } \
    || die "apt-get install ${missing[*]} failed"
}

cmd_node_up() {
  local t0=$SECONDS
  cmd_up
  [[ -x $BIN/kubelet ]] || K8S_LAB_KUBELET=1 cmd_build
  command -v docker >/dev/null && docker info >/dev/null 2>&1 ||
    die "node-up needs a running Docker engine (scripts/ensure-dockerd.sh) for the images"
  docker image inspect "$TEST_IMAGE" >/dev/null 2>&1 ||
    die "$TEST_IMAGE is missing: run scripts/build-test-image.sh"
  node_packages
  node_network
  node_containerd
  pause_image
  import_image "$PAUSE_IMAGE"
  import_image "$TEST_IMAGE"
  if docker image inspect "$LLM_IMAGE" >/dev/null 2>&1; then
    import_image "$LLM_IMAGE"
  else
    log "$LLM_IMAGE is not built (scripts/build-llm-image.sh): llama.cpp pods cannot run on the node"
  fi
  node_kubelet
  log "real node $NODE_NAME ($NODE_IP) up in $((SECONDS - t0))s; taint $NODE_TAINT"
}

cmd_node_down() {
  if api_ready 2>/dev/null && kctl get node "$NODE_NAME" >/dev/null 2>&1; then
    # pods still bound to the node would be left behind with their sandboxes: drain them first
    kctl delete pods --all-namespaces --field-selector "spec.nodeName=$NODE_NAME" \
      --grace-period=5 --wait=true --timeout=60s >/dev/null 2>&1 || true
  fi
  stop_daemons kubelet
  # sandboxes and containers of the private containerd, then containerd itself
  if [[ -S $CTRD_SOCK ]]; then
    local task
    for task in $(ctr_k8s tasks ls -q 2>/dev/null); do ctr_k8s tasks kill -s KILL "$task" >/dev/null 2>&1 || true; done
  fi
  stop_daemons containerd
}

# ---------------------------------------------------- real kubelet notes ---
# Ladder step 3 (real kubelet on Debian containerd + bridge CNI), first
# assessed by hand on this machine (Firecracker VM, kernel 6.18, cgroup v1
# hierarchies mounted rw plus an empty cgroup2 at /sys/fs/cgroup/unified, root
# ext4, no swap, no systemd, nearly all capabilities but NOT CAP_SYS_RESOURCE),
# now automated by `node-up` above. What it takes (and what node-up does):
#  * `build` also builds kubelet (K8S_LAB_KUBELET=1, +33 s with a warm GOCACHE).
#  * Debian containerd 1.6.20 + runc 1.1.5 + containernetworking-plugins: run a
#    private containerd (own root/state/socket, CRI plugin on, overlayfs,
#    SystemdCgroup=false, cni bin_dir=/usr/lib/cni, bridge+host-local+portmap
#    conflist in its own conf_dir). Docker's containerd, if running, is separate.
#  * REQUIRED: `restrict_oom_score_adj = true` in the CRI plugin section.
#    Without it every sandbox fails with "runc create failed: unable to start
#    container process: can't get final child's PID from pipe: EOF": runc's
#    nsexec writes oom_score_adj=-998 and gets EACCES (no CAP_SYS_RESOURCE).
#  * No registry: the sandbox image must be imported. A static Go "pause"
#    (wait for SIGTERM) packed as a hand-made OCI tar (oci-layout, index.json
#    with io.containerd.image.name=registry.k8s.io/pause:3.10) imports with
#    `ctr -n k8s.io images import`; the TAO test image would go the same way
#    (`docker save` | ctr import), pods use imagePullPolicy: Never.
#  * kubelet config: cgroupDriver cgroupfs, failCgroupV1: false (1.33 still
#    allows v1, it is in maintenance mode), failSwapOn false,
#    protectKernelDefaults false, client cert O=system:nodes
#    CN=system:node:<name> from the lab CA. Harmless errors: "RuntimeConfig ...
#    Unimplemented" (containerd 1.6), "Failed to set rlimit", "failed to find
#    pid namespace of init process".
#  * --node-ip 127.0.0.1 is refused ("nodeIP can't be loopback address"; the
#    node still registers and goes Ready, but logs it every status update).
#    node-up gives the node 10.213.0.1 on a port-less bridge (tpk8s0): this
#    kernel has no `dummy` link type ("Unknown device type"). All traffic stays
#    on this machine; the pods get 10.214.0.0/16 on the tpk8s-br0 bridge.
#  * The pause image is built from a 30-line static Go program with
#    `docker build` FROM scratch and, like the TAO test image, goes
#    `docker save | ctr -n k8s.io images import -` (once per image id).
#  * nvidia.com/gpu is advertised with a PATCH of the node's status (as a
#    device plugin would); kubelet keeps it across restarts.
#  * The lab has no kube-proxy and no cluster DNS: Service ClusterIPs and
#    NodePorts do not answer; port-forward (apiserver -> kubelet -> containerd
#    CRI streaming) does. kube-proxy would need its own dependencies added to
#    scripts/k8s-lab/go.mod/go.sum (not in the pinned module graph today).
#  * Result: node Ready (v1.33.13), a pod ran for real on it (sandbox + container
#    started, pod IP 10.88.0.x from the bridge CNI, exec readiness probes ran).
#    Verdict: feasible; cost ~1 min extra build plus the image plumbing above.
#    With node-up, taoplan's tests run the real TAO server in pods on it.

# ------------------------------------------------------------------ main ---

lab_lock() {
  mkdir -p "$LAB"
  exec 8>"$LAB/.lock"
  flock -w 300 8 || die "another k8s-lab.sh up/down holds $LAB/.lock"
}

main() {
  local cmd=${1:-}
  case $cmd in up | down | destroy | node-up | node-down) lab_lock ;; esac
  case $cmd in
    build) cmd_build ;;
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) cmd_env ;;
    destroy) cmd_destroy ;;
    verify) cmd_verify ;;
    node-up) cmd_node_up ;;
    node-down) cmd_node_down ;;
    *) echo "usage: $0 {build|up|down|status|env|verify|destroy|node-up|node-down}" >&2; exit 2 ;;
  esac
}

main "$@"
