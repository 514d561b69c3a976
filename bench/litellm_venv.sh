#!/usr/bin/env bash
# Creates (once) a separate venv with LiteLLM Proxy for the side-by-side gateway benchmark, and prints the
# path of its `litellm` executable. Cached by the hash of the requirement under /var/cache/taoplan/;
# a second run with the same requirement returns at once.
#   bash bench/litellm_venv.sh            -> /var/cache/taoplan/venv-litellm-<hash>/bin/litellm
#   LITELLM_REQ='litellm[proxy]==1.80.8' bash bench/litellm_venv.sh
# 1.80.8 installs from the package index reachable here; 1.110.x does not (a sub-package is missing).
set -euo pipefail

REQ="${LITELLM_REQ:-litellm[proxy]==1.80.8}"
PY="${LITELLM_PYTHON:-$(command -v python3.11 || command -v python3)}"
CACHE="${TAOPLAN_CACHE:-/var/cache/taoplan}"
HASH="$(printf '%s\n%s\n' "$REQ" "$("$PY" -c 'import sys; print(sys.version.split()[0])')" | sha256sum | cut -c1-12)"
VENV="$CACHE/venv-litellm-$HASH"
MARK="$VENV/.taoplan-ready"

if [[ -f "$MARK" && -x "$VENV/bin/litellm" ]]; then
  echo "$VENV/bin/litellm"
  exit 0
fi

mkdir -p "$CACHE"
exec 9>"$CACHE/venv-litellm.lock"
flock 9
if [[ -f "$MARK" && -x "$VENV/bin/litellm" ]]; then  # another run finished it while we waited
  echo "$VENV/bin/litellm"
  exit 0
fi

if ! "$PY" -c 'import ensurepip, venv' 2>/dev/null; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
fi
rm -rf "$VENV"
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check --upgrade pip >&2
"$VENV/bin/pip" install -q --disable-pip-version-check "$REQ" >&2
"$VENV/bin/litellm" --help >/dev/null
printf '%s\n' "$REQ" >"$MARK"
echo "$VENV/bin/litellm"
