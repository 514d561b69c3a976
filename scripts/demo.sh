#!/usr/bin/env bash
# The demo, on a fresh Debian machine as root: Docker engine, the locally built TAO test image,
# then `taoplan apply` of services.yaml, a look at what runs, and `taoplan gateway` in the background
# with one request through it from the official openai client (examples/gateway_client.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash scripts/ensure-dockerd.sh
bash scripts/build-test-image.sh
set -x
taoplan validate
taoplan plan
taoplan apply --auto-approve
taoplan status
taoplan plan --detailed-exitcode
taoplan request reason --prompt "What is happening on this street?" --image https://example.com/street.jpg --accept-defaults
taoplan request captions --prompt "Describe the scene." --accept-defaults --caller demo-user
taoplan stats
set +x  # the key is printed once by `keys create`; it stays in this shell's variable, never on screen
taoplan keys revoke demo-app >/dev/null 2>&1 || true
TAOPLAN_KEY=$(taoplan keys create demo-app --rpm 600); export TAOPLAN_KEY
mkdir -p .taoplan
# a gateway left by an earlier demo run holds the port: stop it first
[ -f .taoplan/gateway.pid ] && kill "$(cat .taoplan/gateway.pid)" 2>/dev/null && sleep 1
nohup taoplan gateway >.taoplan/gateway.out 2>&1 &
gateway_pid=$!
echo "$gateway_pid" >.taoplan/gateway.pid
python3 - "$gateway_pid" <<'PY' || { cat .taoplan/gateway.out; exit 1; }
import os, sys, time, urllib.request
for _ in range(150):  # the gateway is ready once it has seen a ready service (at most 30 s)
    try:
        os.kill(int(sys.argv[1]), 0)
    except OSError:
        sys.exit("the gateway exited")
    try:
        urllib.request.urlopen("http://127.0.0.1:4000/health/ready", timeout=1)
        sys.exit(0)
    except OSError:
        time.sleep(0.2)
sys.exit("the gateway did not become ready in 30 s")
PY
echo "+ python3 examples/gateway_client.py   (through the gateway at http://127.0.0.1:4000/v1)"
python3 examples/gateway_client.py
taoplan stats --by caller
cat <<TXT

The gateway runs in the background (pid $gateway_pid, log .taoplan/gateway.out) at http://127.0.0.1:4000/v1.
Stop it with:        kill $gateway_pid
Remove the services: taoplan destroy --auto-approve
TXT
