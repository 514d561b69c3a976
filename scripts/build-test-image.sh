#!/usr/bin/env bash
# Build the taoplan TAO test image (localhost/taoplan/tao-test:7.3.0) with NO registry access.
#
#   scripts/build-test-image.sh [--force]
#
# Idempotent: the image carries the label taoplan.test-image-hash=<sha256 of testimage/>; when an
# image with that tag and hash exists, this prints "... up to date" and exits 0 at once.
# Works as root on a fresh Debian bookworm machine: installs docker.io (via ensure-dockerd.sh),
# mmdebstrap and python3-pip when missing.
#
# Steps: (1) base rootfs: mmdebstrap minbase tarball -> `docker import` (tarball cached),
#        (2) wheels: `pip download` on the host (cached; pip inside `docker build` cannot reach PyPI),
#        (3) `DOCKER_BUILDKIT=0 docker build` of testimage/ + wheels/.
#
# Env: TAOPLAN_CACHE (default /var/cache/taoplan), TAOPLAN_TEST_IMAGE (tag override),
#      TAOPLAN_DEBIAN_MIRROR (default: from /etc/apt/sources.list.d/debian.sources).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SRC="$ROOT/testimage"
TAG=${TAOPLAN_TEST_IMAGE:-localhost/taoplan/tao-test:7.3.0}
CACHE=${TAOPLAN_CACHE:-/var/cache/taoplan}
SUITE=bookworm
HASH_LABEL=taoplan.test-image-hash
FORCE=0

for arg in "$@"; do
    case "$arg" in
        --force) FORCE=1 ;;
        -h|--help) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-test-image: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

log() { echo "build-test-image: $*" >&2; }
die() { echo "build-test-image: ERROR: $*" >&2; exit 1; }
t0=$(date +%s.%N)
elapsed() { awk -v s="$1" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e-s}'; }

[[ -f "$SRC/Dockerfile" ]] || die "missing $SRC/Dockerfile"

# Hash of everything in testimage/ (paths + contents), ignoring Python caches.
tree_hash() {
    (cd "$SRC" && find . -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 \
        | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-64
}
HASH=$(tree_hash)

image_hash() {
    docker image inspect --format "{{ index .Config.Labels \"$HASH_LABEL\" }}" "$TAG" 2>/dev/null || true
}

"$ROOT/scripts/ensure-dockerd.sh" >&2

if [[ $FORCE -eq 0 && "$(image_hash)" == "$HASH" ]]; then
    echo "build-test-image: $TAG up to date (hash ${HASH:0:12})"
    exit 0
fi

[[ $(id -u) -eq 0 ]] || die "building needs root (apt-get, mmdebstrap, $CACHE)"
mkdir -p "$CACHE/logs" "$CACHE/rootfs" "$CACHE/wheels"

# One build at a time (several test sessions may call us concurrently).
exec 8>"$CACHE/build.lock"
flock -w 900 8 || die "could not take $CACHE/build.lock"
if [[ $FORCE -eq 0 && "$(image_hash)" == "$HASH" ]]; then
    echo "build-test-image: $TAG up to date (hash ${HASH:0:12}; built by a concurrent run)"
    exit 0
fi

APT_UPDATED=0
apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if [[ $APT_UPDATED -eq 0 ]]; then apt-get update -qq >/dev/null; APT_UPDATED=1; fi
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null || die "apt-get install $* failed"
}

# ---- 1. base image: mmdebstrap rootfs tarball -> docker import -----------------------------------
debian_mirror() {
    if [[ -n "${TAOPLAN_DEBIAN_MIRROR:-}" ]]; then echo "$TAOPLAN_DEBIAN_MIRROR"; return; fi
    local f=/etc/apt/sources.list.d/debian.sources uri=""
    if [[ -f $f ]]; then
        # First URIs: of a stanza whose Suites: contains the plain suite name (not -security).
        uri=$(awk -v suite="$SUITE" '
            BEGIN { RS=""; FS="\n" }
            {
                u=""; ok=0
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^URIs:/)   { sub(/^URIs:[ \t]*/, "", $i); split($i, a, /[ \t]+/); u=a[1] }
                    if ($i ~ /^Suites:/) { n=split($i, s, /[ \t]+/); for (j = 2; j <= n; j++) if (s[j] == suite) ok=1 }
                }
                if (ok && u != "") { print u; exit }
            }' "$f")
    fi
    if [[ -z "$uri" && -f /etc/apt/sources.list ]]; then
        uri=$(awk -v suite="$SUITE" '$1 == "deb" && $3 == suite { print $2; exit }' /etc/apt/sources.list)
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

MIRROR=$(debian_mirror)
mapfile -t BASE_PKGS < <(grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$SRC/base-packages.txt" | sed 's/[[:space:]]//g' | grep .)
INCLUDE=$(IFS=,; echo "${BASE_PKGS[*]}")
MMDEBSTRAP_ARGS=(
    --variant=minbase --format=tar --include="$INCLUDE"
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
    --aptopt='APT::Install-Recommends "false"'
    --aptopt='Acquire::Check-Valid-Until "false"'
    --dpkgopt='path-exclude=/usr/share/man/*'
    --dpkgopt='path-exclude=/usr/share/doc/*'
    --dpkgopt='path-include=/usr/share/doc/*/copyright'
    --dpkgopt='path-exclude=/usr/share/locale/*'
    --dpkgopt='path-exclude=/usr/share/info/*'
)
ROOTFS_KEY=$(printf '%s\n' "$SUITE" "$MIRROR" "${MMDEBSTRAP_ARGS[@]}" | sha256sum | cut -c1-16)
ROOTFS_TAR="$CACHE/rootfs/$SUITE-$ROOTFS_KEY.tar"
BASE_TAG="localhost/taoplan/tao-test-base:$SUITE-$ROOTFS_KEY"

if docker image inspect "$BASE_TAG" >/dev/null 2>&1; then
    log "base image $BASE_TAG present"
else
    if [[ ! -s "$ROOTFS_TAR" ]]; then
        command -v mmdebstrap >/dev/null 2>&1 || { log "installing mmdebstrap"; apt_install mmdebstrap; }
        [[ -d /usr/share/mmdebstrap/hooks/merged-usr ]] || die "mmdebstrap has no merged-usr hook"
        log "mmdebstrap $SUITE ($INCLUDE) from $MIRROR ..."
        t=$(date +%s.%N)
        tmp_tar="$ROOTFS_TAR.tmp.$$.tar"   # mmdebstrap picks the format from the extension
        if ! mmdebstrap "${MMDEBSTRAP_ARGS[@]}" "$SUITE" "$tmp_tar" "$MIRROR" >"$CACHE/logs/mmdebstrap.log" 2>&1; then
            rm -f "$tmp_tar"; tail -n 30 "$CACHE/logs/mmdebstrap.log" >&2
            die "mmdebstrap failed (log: $CACHE/logs/mmdebstrap.log)"
        fi
        mv -f "$tmp_tar" "$ROOTFS_TAR"
        log "rootfs tarball $(du -h "$ROOTFS_TAR" | cut -f1) in $(elapsed "$t")s"
    fi
    docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["/bin/bash"]' \
        "$ROOTFS_TAR" "$BASE_TAG" >/dev/null || die "docker import failed"
    log "imported $BASE_TAG"
fi

# ---- 2. wheels, downloaded on the host -----------------------------------------------------------
REQ="$SRC/requirements.txt"
WHEELS="$CACHE/wheels/$(sha256sum "$REQ" | cut -c1-16)"
if [[ -f "$WHEELS/.complete" ]]; then
    log "wheels cached in $WHEELS"
else
    PY=python3
    if ! "$PY" -m pip --version >/dev/null 2>&1; then
        log "installing python3-pip"; apt_install python3-pip
    fi
    CERT_ARGS=()
    [[ -f /etc/ssl/certs/ca-certificates.crt ]] && CERT_ARGS=(--cert /etc/ssl/certs/ca-certificates.crt)
    tmp_w="$WHEELS.tmp.$$"
    rm -rf "$tmp_w"; mkdir -p "$tmp_w"
    log "downloading wheels ..."
    t=$(date +%s.%N)
    # Bypass the host's pip configuration (e.g. find-links to a local wheelhouse) and fetch exactly
    # the pinned cp311 manylinux wheels for the image's Python (Debian bookworm: 3.11).
    if ! env -u PIP_FIND_LINKS -u PIP_NO_INDEX -u PIP_REQUIRE_VIRTUALENV PIP_CONFIG_FILE=/dev/null \
            "$PY" -m pip download --quiet --disable-pip-version-check "${CERT_ARGS[@]}" \
            --no-deps --only-binary=:all: \
            --python-version 3.11 --implementation cp --abi cp311 \
            --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
            -d "$tmp_w" -r "$REQ" >"$CACHE/logs/pip-download.log" 2>&1; then
        tail -n 30 "$CACHE/logs/pip-download.log" >&2
        rm -rf "$tmp_w"
        die "pip download failed (log: $CACHE/logs/pip-download.log)"
    fi
    touch "$tmp_w/.complete"
    rm -rf "$WHEELS"; mv "$tmp_w" "$WHEELS"
    log "$(ls "$WHEELS"/*.whl | wc -l) wheels ($(du -sh "$WHEELS" | cut -f1)) in $(elapsed "$t")s"
fi

# ---- 3. docker build -----------------------------------------------------------------------------
CTX=$(mktemp -d "$CACHE/ctx.XXXXXX")
trap 'rm -rf "$CTX"' EXIT
cp -a "$SRC"/. "$CTX"/
find "$CTX" -name __pycache__ -prune -exec rm -rf {} +
mkdir -p "$CTX/wheels"
cp -l "$WHEELS"/*.whl "$CTX/wheels/" 2>/dev/null || cp "$WHEELS"/*.whl "$CTX/wheels/"

BUILD_LOG="$CACHE/logs/docker-build.log"
log "docker build $TAG (hash ${HASH:0:12}) ..."
t=$(date +%s.%N)
if ! DOCKER_BUILDKIT=0 docker build \
        --build-arg "BASE_IMAGE=$BASE_TAG" \
        --label "$HASH_LABEL=$HASH" \
        -t "$TAG" "$CTX" >"$BUILD_LOG" 2>&1; then
    tail -n 40 "$BUILD_LOG" >&2
    die "docker build failed (log: $BUILD_LOG)"
fi
# Drop the previous (now untagged) versions of this image; other images are never touched.
docker image prune -f --filter "label=taoplan.test-image=1" >/dev/null 2>&1 || true

size=$(docker image inspect --format '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1/1000/1000}')
echo "build-test-image: built $TAG (hash ${HASH:0:12}, $size) in $(elapsed "$t0")s"
