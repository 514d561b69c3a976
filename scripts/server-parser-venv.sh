#!/usr/bin/env bash
# A throwaway venv with the REAL argument parsers of vLLM and SGLang, for tests/unit/test_server_parsers.py
# (which skips without it). NOT part of scripts/test.sh: vLLM pulls torch and the CUDA libraries from PyPI,
# about 7 GB installed; measured 5.5 min on the 2-core machine (downloads ~1 min, the rest unpacking).
#
#   scripts/server-parser-venv.sh          # prints the venv's python; idempotent (a stamp of the versions)
#
# Versions: the image tags of references/servers.yaml (vllm/vllm-openai:vX, lmsysorg/sglang:vY), so the
# flags are checked against what the default images run. sglang is installed without its dependencies
# (its GPU kernels do not install here); its ServerArgs parser needs only torch (from vLLM), IPython and
# orjson besides.
#
# Env: TAOPLAN_CACHE (default /var/cache/taoplan); the venv is $TAOPLAN_CACHE/server-parsers/venv.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${TAOPLAN_CACHE:-/var/cache/taoplan}/server-parsers
VENV=$DIR/venv
tag() { sed -n "s#^ *image: $1:v\([0-9][0-9.a-z]*\).*#\1#p" "$ROOT/references/servers.yaml" | head -1; }
VLLM=$(tag vllm/vllm-openai)
SGLANG=$(tag lmsysorg/sglang)
[[ -n $VLLM && -n $SGLANG ]] || { echo "server-parser-venv: no versions in references/servers.yaml" >&2; exit 1; }
WANT="vllm==$VLLM sglang==$SGLANG"

if [[ -x $VENV/bin/python && $(cat "$VENV/.taoplan-stamp" 2>/dev/null) == "$WANT" ]]; then
  echo "$VENV/bin/python"
  exit 0
fi
t0=$SECONDS
rm -rf "$VENV"
mkdir -p "$DIR"
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip >&2
echo "server-parser-venv: installing vllm==$VLLM (torch and CUDA libraries: several GB) ..." >&2
"$VENV/bin/pip" install -q "vllm==$VLLM" >&2
"$VENV/bin/pip" install -q --no-deps "sglang==$SGLANG" >&2
"$VENV/bin/pip" install -q ipython orjson >&2
echo "$WANT" >"$VENV/.taoplan-stamp"
echo "server-parser-venv: $WANT in $((SECONDS - t0)) s" >&2
echo "$VENV/bin/python"
