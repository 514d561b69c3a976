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
IB_NAME=build-test-image
IB_LOGS=""
# shellcheck source=lib/image-build.sh
source "$ROOT/scripts/lib/image-build.sh"

for arg in "$@"; do
    case "$arg" in
        --force) FORCE=1 ;;
        -h|--help) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-test-image: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

t0=$(date +%s.%N)
[[ -f "$SRC/Dockerfile" ]] || die "missing $SRC/Dockerfile"
HASH=$(ib_tree_hash "$SRC")

"$ROOT/scripts/ensure-dockerd.sh" >&2

ib_up_to_date_or_lock "$TAG" "$HASH_LABEL" "$HASH" "$FORCE"
ib_base_image "$SRC/base-packages.txt" localhost/taoplan/tao-test-base   # sets IB_BASE_TAG
ib_wheels "$SRC/requirements.txt"                                       # sets IB_WHEELS
ib_docker_build "$SRC" "$TAG" "$HASH_LABEL" "$HASH" taoplan.test-image

echo "build-test-image: built $TAG (hash ${HASH:0:12}, $(ib_image_size "$TAG")) in $(elapsed "$t0")s"
