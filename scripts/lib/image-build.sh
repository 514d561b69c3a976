# Shared steps of the local test-image builds (sourced, not run): scripts/build-test-image.sh and
# scripts/build-llm-image.sh. No registry anywhere: a mmdebstrap rootfs tarball goes through
# `docker import`, wheels are downloaded on the host, and `DOCKER_BUILDKIT=0 docker build` does the rest.
#
# The caller sets, before sourcing:
#   IB_NAME      prefix of every message (e.g. build-test-image)
#   IB_LOGS      prefix of the log file names under $CACHE/logs ("" or e.g. "llm-")
#   CACHE        cache root (default /var/cache/taoplan)   SUITE  Debian suite (bookworm)
# and then calls, in order: ib_up_to_date_or_lock, ib_base_image, ib_wheels, ib_docker_build.

log() { echo "$IB_NAME: $*" >&2; }
die() { echo "$IB_NAME: ERROR: $*" >&2; exit 1; }
elapsed() { awk -v s="$1" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e-s}'; }

# Hash of everything in DIR (paths + contents), ignoring Python caches.
ib_tree_hash() {
    (cd "$1" && find . -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 \
        | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-64
}

# The value of label $2 on image $1 ("" when the image or the label is missing).
ib_image_label() {
    docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

# ib_up_to_date_or_lock TAG LABEL HASH FORCE: print "up to date" and exit 0 when TAG already carries
# LABEL=HASH; otherwise take $CACHE/build.lock (one build at a time, shared by every image script)
# and check again, since a concurrent run may have built it meanwhile.
ib_up_to_date_or_lock() {
    local tag=$1 label=$2 hash=$3 force=$4
    if [[ $force -eq 0 && "$(ib_image_label "$tag" "$label")" == "$hash" ]]; then
        echo "$IB_NAME: $tag up to date (hash ${hash:0:12})"
        exit 0
    fi
    [[ $(id -u) -eq 0 ]] || die "building needs root (apt-get, mmdebstrap, $CACHE)"
    mkdir -p "$CACHE/logs" "$CACHE/rootfs" "$CACHE/wheels"
    exec 8>"$CACHE/build.lock"
    flock -w 900 8 || die "could not take $CACHE/build.lock"
    if [[ $force -eq 0 && "$(ib_image_label "$tag" "$label")" == "$hash" ]]; then
        echo "$IB_NAME: $tag up to date (hash ${hash:0:12}; built by a concurrent run)"
        exit 0
    fi
}

IB_APT_UPDATED=0
ib_apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if [[ $IB_APT_UPDATED -eq 0 ]]; then apt-get update -qq >/dev/null; IB_APT_UPDATED=1; fi
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null || die "apt-get install $* failed"
}

ib_debian_mirror() {
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

# ib_base_image PACKAGES_FILE BASE_REPO: make sure BASE_REPO:$SUITE-<recipe hash> exists (mmdebstrap
# minbase tarball with the packages of PACKAGES_FILE, cached in $CACHE/rootfs/, then `docker import`).
# Sets IB_BASE_TAG. The recipe hash covers suite, mirror and every mmdebstrap argument, so two
# package lists give two cached tarballs side by side.
ib_base_image() {
    local pkgfile=$1 repo=$2 mirror include key tar t tmp_tar
    local -a pkgs args
    mirror=$(ib_debian_mirror)
    mapfile -t pkgs < <(grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$pkgfile" | sed 's/[[:space:]]//g' | grep .)
    include=$(IFS=,; echo "${pkgs[*]}")
    args=(
        --variant=minbase --format=tar --include="$include"
        --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
        --aptopt='APT::Install-Recommends "false"'
        --aptopt='Acquire::Check-Valid-Until "false"'
        --dpkgopt='path-exclude=/usr/share/man/*'
        --dpkgopt='path-exclude=/usr/share/doc/*'
        --dpkgopt='path-include=/usr/share/doc/*/copyright'
        --dpkgopt='path-exclude=/usr/share/locale/*'
        --dpkgopt='path-exclude=/usr/share/info/*'
    )
    key=$(printf '%s\n' "$SUITE" "$mirror" "${args[@]}" | sha256sum | cut -c1-16)
    tar="$CACHE/rootfs/$SUITE-$key.tar"
    IB_BASE_TAG="$repo:$SUITE-$key"

    if docker image inspect "$IB_BASE_TAG" >/dev/null 2>&1; then
        log "base image $IB_BASE_TAG present"
        return 0
    fi
    if [[ ! -s "$tar" ]]; then
        command -v mmdebstrap >/dev/null 2>&1 || { log "installing mmdebstrap"; ib_apt_install mmdebstrap; }
        [[ -d /usr/share/mmdebstrap/hooks/merged-usr ]] || die "mmdebstrap has no merged-usr hook"
        log "mmdebstrap $SUITE ($include) from $mirror ..."
        t=$(date +%s.%N)
        tmp_tar="$tar.tmp.$$.tar"   # mmdebstrap picks the format from the extension
        if ! mmdebstrap "${args[@]}" "$SUITE" "$tmp_tar" "$mirror" >"$CACHE/logs/${IB_LOGS}mmdebstrap.log" 2>&1; then
            rm -f "$tmp_tar"; tail -n 30 "$CACHE/logs/${IB_LOGS}mmdebstrap.log" >&2
            die "mmdebstrap failed (log: $CACHE/logs/${IB_LOGS}mmdebstrap.log)"
        fi
        mv -f "$tmp_tar" "$tar"
        log "rootfs tarball $(du -h "$tar" | cut -f1) in $(elapsed "$t")s"
    fi
    docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["/bin/bash"]' \
        "$tar" "$IB_BASE_TAG" >/dev/null || die "docker import failed"
    log "imported $IB_BASE_TAG"
}

# ib_wheels REQUIREMENTS [PIP_ARGS...]: the pinned wheels of REQUIREMENTS (cp311 manylinux, no deps),
# downloaded on the host into $CACHE/wheels/<hash of REQUIREMENTS>/ (pip inside `docker build` cannot
# reach PyPI). Extra pip arguments (e.g. --require-hashes) follow. Sets IB_WHEELS.
ib_wheels() {
    local req=$1 py=python3 t tmp_w
    shift
    local -a cert=()
    IB_WHEELS="$CACHE/wheels/$(sha256sum "$req" | cut -c1-16)"
    if [[ -f "$IB_WHEELS/.complete" ]]; then
        log "wheels cached in $IB_WHEELS"
        return 0
    fi
    if ! "$py" -m pip --version >/dev/null 2>&1; then
        log "installing python3-pip"; ib_apt_install python3-pip
    fi
    [[ -f /etc/ssl/certs/ca-certificates.crt ]] && cert=(--cert /etc/ssl/certs/ca-certificates.crt)
    tmp_w="$IB_WHEELS.tmp.$$"
    rm -rf "$tmp_w"; mkdir -p "$tmp_w"
    log "downloading wheels ..."
    t=$(date +%s.%N)
    # Bypass the host's pip configuration (e.g. find-links to a local wheelhouse) and fetch exactly
    # the pinned cp311 manylinux wheels for the image's Python (Debian bookworm: 3.11).
    if ! env -u PIP_FIND_LINKS -u PIP_NO_INDEX -u PIP_REQUIRE_VIRTUALENV PIP_CONFIG_FILE=/dev/null \
            "$py" -m pip download --quiet --disable-pip-version-check "${cert[@]}" \
            --no-deps --only-binary=:all: \
            --python-version 3.11 --implementation cp --abi cp311 \
            --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
            "$@" -d "$tmp_w" -r "$req" >"$CACHE/logs/${IB_LOGS}pip-download.log" 2>&1; then
        tail -n 30 "$CACHE/logs/${IB_LOGS}pip-download.log" >&2
        rm -rf "$tmp_w"
        die "pip download failed (log: $CACHE/logs/${IB_LOGS}pip-download.log)"
    fi
    touch "$tmp_w/.complete"
    rm -rf "$IB_WHEELS"; mv "$tmp_w" "$IB_WHEELS"
    log "$(ls "$IB_WHEELS"/*.whl | wc -l) wheels ($(du -sh "$IB_WHEELS" | cut -f1)) in $(elapsed "$t")s"
}

# ib_docker_build SRC TAG LABEL HASH PRUNE_LABEL: `docker build` (legacy builder) of a temporary
# context made of SRC plus wheels/ (hard links to $IB_WHEELS), with BASE_IMAGE=$IB_BASE_TAG and the
# label LABEL=HASH. Then drops the dangling (previous) images that carry PRUNE_LABEL=1.
ib_docker_build() {
    local src=$1 tag=$2 label=$3 hash=$4 prune_label=$5 build_log="$CACHE/logs/${IB_LOGS}docker-build.log"
    IB_CTX=$(mktemp -d "$CACHE/ctx.XXXXXX")
    trap 'rm -rf "$IB_CTX"' EXIT
    cp -a "$src"/. "$IB_CTX"/
    find "$IB_CTX" -name __pycache__ -prune -exec rm -rf {} +
    mkdir -p "$IB_CTX/wheels"
    cp -l "$IB_WHEELS"/*.whl "$IB_CTX/wheels/" 2>/dev/null || cp "$IB_WHEELS"/*.whl "$IB_CTX/wheels/"

    log "docker build $tag (hash ${hash:0:12}) ..."
    if ! DOCKER_BUILDKIT=0 docker build \
            --build-arg "BASE_IMAGE=$IB_BASE_TAG" \
            --label "$label=$hash" \
            -t "$tag" "$IB_CTX" >"$build_log" 2>&1; then
        tail -n 40 "$build_log" >&2
        die "docker build failed (log: $build_log)"
    fi
    # Drop the previous (now untagged) versions of this image; other images are never touched.
    docker image prune -f --filter "label=$prune_label=1" >/dev/null 2>&1 || true
}

# Size of image $1 as "N MB".
ib_image_size() {
    docker image inspect --format '{{.Size}}' "$1" | awk '{printf "%.0f MB", $1/1000/1000}'
}
