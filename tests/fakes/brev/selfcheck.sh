#!/usr/bin/env bash
# selfcheck.sh -- bring the brev lab up and check the fake brev CLI against it, end to end.
#   bash tests/fakes/brev/selfcheck.sh        (root; leaves the lab up; prints one line per check)
# Uses a throw-away HOME and state file; removes the containers it started on the VM.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
BREV="$HERE/brev"
IMAGE=localhost/taoplan/tao-test:7.3.0
pass=0
ok() { printf 'ok   %s\n' "$*"; pass=$((pass + 1)); }
ko() { printf 'FAIL %s\n' "$*"; exit 1; }
now() { date +%s.%N; }
since() { awk -v s="$1" -v e="$(now)" 'BEGIN{printf "%.1f", e-s}'; }

t0=$(now)
bash "$ROOT/scripts/brev-lab.sh" up
ok "brev-lab.sh up ($(since "$t0")s)"
eval "$(bash "$ROOT/scripts/brev-lab.sh" env)"

export HOME; HOME=$(mktemp -d /tmp/brev-selfcheck.XXXXXX)
export TAOPLAN_FAKE_BREV_STATE="$HOME/.brev/fake-state.json"
trap 'rm -rf "$HOME"' EXIT
mkdir -p "$HOME/.brev"
knob() { python3 - "$TAOPLAN_FAKE_BREV_STATE" "$1" "$2" <<'EOF'
import json, sys, pathlib
p = pathlib.Path(sys.argv[1]); s = json.loads(p.read_text()) if p.exists() else {}
s[sys.argv[2]] = json.loads(sys.argv[3]); p.write_text(json.dumps(s))
EOF
}
knob valid_token '"tok-selfcheck"'

# 1. logged out: prompt on stdout, EOF on stdin -> exit 1
out=$("$BREV" ls --json </dev/null 2>/dev/null) && ko "ls while logged out exited 0"
[[ $out == *'would you like to log in? [Y/n]: '* ]] || ko "logged-out prompt missing: $out"
"$BREV" login --token wrong </dev/null 2>/dev/null && ko "a wrong token was accepted"
"$BREV" login --token tok-selfcheck </dev/null || ko "login --token failed"
ok "logged-out prompt + EOF exit 1; login --token"

# 2. ls shapes
[[ $("$BREV" ls --json </dev/null | tr -d ' \n') == '{"workspaces":null}' ]] || ko "empty ls is not {\"workspaces\": null}"
knob instances '[{"name":"box-a","id":"aaaa11111","status":"RUNNING","build_status":"COMPLETED"},
                 {"name":"box-b","id":"bbbb22222","status":"RUNNING","build_status":"COMPLETED"}]'
knob ls_shape '"array"'
"$BREV" ls --json </dev/null | python3 -c 'import json,sys; d=json.load(sys.stdin); assert isinstance(d, list) and len(d) == 2' \
  || ko "array shape"
knob ls_shape '"object"'
"$BREV" ls --json </dev/null | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["workspaces"][0]["shell_status"] == "READY"' \
  || ko "object shape"
ok "ls --json: null when empty, bare array and object shapes"

# 3. refresh writes ssh_config + Include; plain ssh through it reaches the VM engine
"$BREV" refresh </dev/null >/dev/null
grep -q "^Include $HOME/.brev/ssh_config" "$HOME/.ssh/config" || ko "no Include line in ~/.ssh/config"
grep -q "Hostname $BREV_LAB_VM_IP" "$HOME/.brev/ssh_config" || ko "ssh_config does not name the VM"
out=$(ssh -F "$HOME/.brev/ssh_config" box-a docker ps 2>/dev/null) || ko "ssh -F ~/.brev/ssh_config box-a docker ps failed"
[[ $out == 'CONTAINER ID'* ]] || ko "docker ps over ssh: $out"
ok "refresh + ssh -F ~/.brev/ssh_config box-a docker ps"

# 4. exec: output, then the instance name (stdout not a TTY)
out=$("$BREV" exec box-a "docker ps" </dev/null 2>/dev/null)
[[ $out == 'CONTAINER ID'* && $(tail -n1 <<<"$out") == box-a ]] || ko "exec output/trailing name: $out"
out=$(echo box-b | "$BREV" exec box-a "echo hi" 2>/dev/null)
[[ $out == $'hi\nbox-a\nhi\nbox-b' ]] || ko "names from stdin: $out"
ok "exec prints output + trailing name; reads instance names from stdin"

# 5. a failing remote command is run twice and reported as exit 1
mark=/tmp/brev-selfcheck-replay.$$
rc=0; "$BREV" exec box-a "echo x >>$mark; exit 7" </dev/null >/dev/null 2>&1 || rc=$?
n=$(ssh -F "$HOME/.brev/ssh_config" box-a "wc -l <$mark; rm -f $mark" 2>/dev/null)
[[ $rc == 1 && $n == 2 ]] || ko "remote exit 7: rc=$rc (want 1), runs=$n (want 2)"
ok "remote exit 7 -> replayed (2 runs), exit 1"

# 6. a dropped connection after the command ran: docker run -d happens twice (PR #459)
knob fail_next_exec '{"count": 1, "mode": "after"}'
rc=0; "$BREV" exec box-a "docker run -d --name brev-selfcheck-dup $IMAGE sleep 60" </dev/null >/dev/null 2>&1 || rc=$?
[[ $rc == 1 ]] || ko "replayed docker run: rc=$rc, want 1 (second run hits the name conflict)"
docker -H "$BREV_LAB_DOCKER_HOST" rm -f brev-selfcheck-dup >/dev/null
ok "forced drop after run -> replay -> name conflict -> exit 1"

# 7. port publishing on the VM engine answers at the VM address from the host
job='{"job_id":"brev-selfcheck","specs":{"model_path":"/m"},"neural_network_name":"cosmos-rl"}'
envj='{"TAO_EXECUTION_BACKEND":"local-docker","TAO_API_JOB_ID":"brev-selfcheck","CLOUD_BASED":"False"}'
inner="umask 0 && cosmos-rl-inference-microservice --job $(printf %q "$job") --docker_env_vars $(printf %q "$envj")"
remote="docker rm -f brev-selfcheck-tao >/dev/null 2>&1; docker run -d --init --name brev-selfcheck-tao -p 8080:8080 $IMAGE /bin/bash -c $(printf %q "$inner")"
"$BREV" exec box-a "$remote" </dev/null >/dev/null 2>&1 || ko "docker run -p 8080:8080 on the VM"
t1=$(now); code=000
for _ in $(seq 1 120); do
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$BREV_LAB_VM_IP:8080/api/v1/health/readiness" || true)
  [[ $code == 200 ]] && break; sleep 0.5
done
[[ $code == 200 ]] || ko "readiness at http://$BREV_LAB_VM_IP:8080 answered $code"
docker ps -a --format '{{.Names}}' | grep -qx brev-selfcheck-tao && ko "the container is on the HOST engine"
"$BREV" exec box-a "docker rm -f brev-selfcheck-tao" </dev/null >/dev/null 2>&1
ok "TAO test image on the VM: readiness 200 at http://$BREV_LAB_VM_IP:8080 after $(since "$t1")s; not on the host engine"

# 8. create returns before shell READY; delete is asynchronous
knob steps '{"create": {"ls_calls": 1, "seconds": 600}, "delete": {"ls_calls": 1, "seconds": 600}}'
"$BREV" create box-new -t n1-highmem-4:nvidia-tesla-t4:1 -d --timeout 60 </dev/null >/dev/null
shell() { "$BREV" ls --json </dev/null | python3 -c 'import json,sys; print(*[w["status"]+"/"+w["shell_status"] for w in json.load(sys.stdin)["workspaces"] or [] if w["name"]=="box-new"])'; }
s1=$(shell); s2=$(shell); s3=$(shell)
[[ $s1 == "DEPLOYING/NOT READY" && $s2 == "RUNNING/NOT READY" && $s3 == "RUNNING/READY" ]] || ko "create: $s1 -> $s2 -> $s3"
"$BREV" delete box-new </dev/null >/dev/null
d1=$(shell); d2=$(shell)
[[ $d1 == "DELETING/NOT READY" && -z $d2 ]] || ko "delete: '$d1' -> '$d2'"
ok "create -d: $s1 -> $s2 -> $s3; delete: $d1 -> gone"

# 9. exec on a STOPPED instance starts it and runs the command (after a failed first try)
knob steps '{"stop": {"ls_calls": 1, "seconds": 600}}'
"$BREV" stop box-b </dev/null >/dev/null; "$BREV" ls --json </dev/null >/dev/null
out=$("$BREV" exec box-b "echo up" </dev/null 2>/dev/null) || ko "exec on a stopped instance"
[[ $out == $'up\nbox-b' ]] || ko "exec on stopped: $out"
ok "exec on a STOPPED instance: starts it, runs once"

t2=$(now)
bash "$ROOT/scripts/brev-lab.sh" up 2>/dev/null
ok "cached brev-lab.sh up ($(since "$t2")s)"
echo "selfcheck: $pass checks passed"
