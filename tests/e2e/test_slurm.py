"""Platform `slurm` end to end: the real CLI against a real one-node Slurm cluster behind a real sshd.

`scripts/slurm-lab.sh up` brings the cluster up (idempotent). Jobs use `container_runtime: docker`
with the TAO test image, so the real server runs inside the job and is reached through the ssh
tunnel taoplan opens, exactly as on a cluster.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, Run, taoplan
from tests.e2e.conftest import TEST_IMAGE, docker
from tests.e2e.phasecheck import assert_phases_ordered

pytestmark = pytest.mark.slurm

LAB = Path(os.environ.get("TAOPLAN_SLURM_LAB", "/var/lib/taoplan-slurm-lab"))
HF = {"network_arch": "tao-dataservices", "model_path": "hf_model://Qwen/Qwen3-VL-8B-Instruct"}
PREDICT = {
    "network_arch": "cosmos-predict2.5",
    "model_path": "hf_model://nvidia/Cosmos-Predict2.5-2B",
    "model_key": "base-2b",
}
LIVE = ("PENDING", "RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "REQUEUED")


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def slurm_lab(docker_engine: None) -> dict[str, str]:
    """The lab cluster, up; its connection variables (SLURM_USER, SLURM_HOSTNAME, SSH_KEY_PATH...)."""
    script = str(ROOT / "scripts" / "slurm-lab.sh")
    up = subprocess.run(["bash", script, "up"], capture_output=True, text=True, timeout=900)
    assert up.returncode == 0, f"slurm-lab.sh up failed:\n{up.stdout}\n{up.stderr}"
    env = subprocess.run(["bash", script, "env"], capture_output=True, text=True, check=True).stdout
    return dict(line.removeprefix("export ").split("=", 1) for line in env.splitlines() if "=" in line)


@pytest.fixture
def sproject(slurm_lab: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A project folder with a unique name; its jobs, tunnels and job containers are removed afterwards."""
    folder = tmp_path / f"s{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    monkeypatch.setenv("TAO_INF_MS_STATE", str(tmp_path / "registry.json"))
    monkeypatch.delenv("TAOPLAN_STATE_DIR", raising=False)
    for key, value in slurm_lab.items():
        monkeypatch.setenv(key, value)
    yield folder
    jobs = jobs_of(folder.name)
    if jobs:
        subprocess.run(["scancel", *[j["id"] for j in jobs]], capture_output=True)
        subprocess.run(["docker", "rm", "-f", *[j["name"] for j in jobs]], capture_output=True)
    for pid in tunnels_of(folder):
        os.kill(pid, signal.SIGTERM)
    shutil.rmtree(LAB / "remote" / folder.name, ignore_errors=True)


def slurm_settings(project: str, **overrides: Any) -> dict[str, Any]:
    return {
        "ssh_port": int(os.environ["SLURM_SSH_PORT"]),
        "ssh_options": {"UserKnownHostsFile": os.environ["SLURM_KNOWN_HOSTS"]},
        "container_runtime": "docker",
        "remote_dir": str(LAB / "remote" / project),
        "cpus_per_task": 1,
        **overrides,
    }


def write(project: Path, services: dict[str, dict[str, Any]], **slurm: Any) -> None:
    """A services file: slurm services by default, local-docker where a service says so."""
    lines = [
        "version: 1",
        f"project: {project.name}",
        "defaults:",
        f"  image: {TEST_IMAGE}",
        "  platform: slurm",
        "  readiness: {timeout: 120}",
        "platforms:",
        f"  slurm: {json.dumps(slurm_settings(project.name, **slurm))}",
        '  local-docker: {"gpus": "none", "shm_size": "64m"}',
        "services:",
    ]
    lines += [f"  {name}: {json.dumps(fields)}" for name, fields in services.items()]
    (project / "services.yaml").write_text("\n".join(lines) + "\n")


# ------------------------------------------------------------------------------------------ observations


def jobs_of(project: str) -> list[dict[str, str]]:
    """Every job on the cluster whose --comment names this project (squeue -t all: recent ones too)."""
    out = subprocess.run(
        ["squeue", "-h", "-t", "all", "-o", "%i|%j|%T|%r|%k"], capture_output=True, text=True, check=True
    ).stdout
    jobs = []
    for line in out.splitlines():
        slurm_id, name, state, reason, comment = line.split("|", 4)
        if f"taoplan.project={project};" in comment + ";":
            jobs.append({"id": slurm_id, "name": name, "state": state, "reason": reason})
    return jobs


def live_jobs(project: str) -> list[dict[str, str]]:
    return [j for j in jobs_of(project) if j["state"] in LIVE]


def state_of(project: Path) -> dict[str, Any]:
    return json.loads((project / ".taoplan" / "state.json").read_text())


def registry_of(project: Path) -> dict[str, Any]:
    path = project.parent / "registry.json"
    return json.loads(path.read_text()) if path.exists() else {}


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    if stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X"):
        return []
    return [a.decode() for a in raw.split(b"\0") if a]


def ssh_forwards() -> dict[int, str]:
    """Every live ssh process that forwards a port: pid -> its -L spec."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            argv = cmdline(int(entry.name))
            if argv and os.path.basename(argv[0]) == "ssh" and "-L" in argv:
                out[int(entry.name)] = argv[argv.index("-L") + 1]
    return out


def tunnel_spec(record: dict[str, Any]) -> str:
    return f"{record['host_port']}:{record['extra']['slurm_node']}:{record['extra']['slurm_port']}"


def tunnels_of(project: Path) -> list[int]:
    """Live ssh forwards that serve a port this project's state records (for cleanup and checks)."""
    try:
        records = state_of(project)["services"].values()
    except (OSError, ValueError):
        return []
    ports = {r["host_port"] for r in records if r.get("host_port")}
    return [pid for pid, spec in ssh_forwards().items() if int(spec.split(":")[0]) in ports]


def status(project: Path) -> dict[str, dict[str, Any]]:
    run = taoplan("status", "--json", cwd=project)
    assert run.code == 0, run.text
    return {row["name"]: row for row in json.loads(run.out)["services"]}


def ready(url: str) -> int:
    return httpx.get(url + "/api/v1/health/readiness", timeout=5, trust_env=False).status_code


def files_under(*roots: Path) -> Iterator[Path]:
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink() and not path.is_socket():
                yield path


# ------------------------------------------------------------------------------------------ tests


def gpu_blocker(seconds: int) -> str:
    """A job started outside taoplan that holds both lab GPUs; returned once it RUNS (bounded wait), so
    that what follows sees the GPUs held, not a job still waiting for an earlier test's to finish."""
    job = subprocess.run(
        ["sbatch", "--parsable", "--gres=gpu:2", "--output=/dev/null", "--wrap", f"sleep {seconds}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = subprocess.run(
            ["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True, check=True
        ).stdout.strip()
        if state == "RUNNING":
            return job
        time.sleep(0.2)
    subprocess.run(["scancel", job], check=False)
    raise AssertionError(f"the blocker job {job} did not start in 120 s (last state {state!r})")


def test_two_slurm_services_converge_through_tunnels_and_stay_converged(sproject: Path) -> None:
    write(sproject, {"hf": HF, "predict": PREDICT})

    plan = taoplan("plan", "--detailed-exitcode", cwd=sproject)
    assert plan.code == 2, plan.text
    assert plan.out.count("+ create") == 2
    assert plan.out.count("slurm: --gres=gpu:1, its own node port (--port, chosen at apply)") == 2

    apply = taoplan("apply", "--auto-approve", cwd=sproject)
    assert apply.code == 0, apply.text
    rows = status(sproject)
    records = state_of(sproject)["services"]
    forwards = ssh_forwards()
    for name in ("hf", "predict"):
        row, record = rows[name], records[name]
        assert row["state"] == "ready" and row["platform"] == "slurm", row
        assert row["host_url"] == f"http://localhost:{record['host_port']}"
        assert ready(row["host_url"]) == 200
        assert re.fullmatch(r"4h00m|3h[0-5]\dm", row["time_left"]), row  # walltime 04:00:00, counting down
        # the tunnel is exactly the recorded ssh process, forwarding to the job's node and port
        assert forwards[record["extra"]["tunnel_pid"]] == tunnel_spec(record)
    assert records["hf"]["extra"]["slurm_port"] != records["predict"]["extra"]["slurm_port"]
    jobs = {j["name"]: j for j in jobs_of(sproject.name)}
    assert {records[n]["job_id"] for n in records} == set(jobs)
    assert all(j["state"] == "RUNNING" for j in jobs.values())
    registry = registry_of(sproject)
    for record in records.values():
        entry = registry[record["job_id"]]
        assert entry["platform"] == "slurm" and entry["slurm_node"] == record["extra"]["slurm_node"]
        assert (
            entry["host_url"] == record["host_url"]
            and entry["platform_job_id"] == jobs[record["job_id"]]["id"]
        )

    again = taoplan("plan", "--detailed-exitcode", cwd=sproject)
    assert again.code == 0, again.text
    assert "No changes." in again.out

    logs = taoplan("logs", "hf", "--tail", "50", cwd=sproject)
    assert logs.code == 0 and "/api/v1/health/readiness" in logs.out, logs.text

    # a dead tunnel: status reopens it on the same local port and records the new PID
    hf = records["hf"]
    os.kill(hf["extra"]["tunnel_pid"], signal.SIGTERM)
    row = status(sproject)["hf"]
    assert row["state"] == "ready" and row["host_url"] == hf["host_url"]
    reopened = state_of(sproject)["services"]["hf"]["extra"]["tunnel_pid"]
    assert reopened != hf["extra"]["tunnel_pid"] and ssh_forwards()[reopened] == tunnel_spec(hf)
    # ... and so does a request
    os.kill(reopened, signal.SIGTERM)
    asked = taoplan("request", "hf", "--prompt", "hello", "--accept-defaults", cwd=sproject)
    assert asked.code == 0 and "hello" in asked.out, asked.text
    reopened = state_of(sproject)["services"]["hf"]["extra"]["tunnel_pid"]
    assert ssh_forwards()[reopened] == tunnel_spec(hf)
    # ... and so do a fresh plan and apply
    os.kill(reopened, signal.SIGTERM)
    plan = taoplan("plan", "--detailed-exitcode", cwd=sproject)
    assert plan.code == 2 and "endpoint down (tunnel down): apply reopens it" in plan.out, plan.text
    apply = taoplan("apply", "--auto-approve", cwd=sproject)
    assert apply.code == 0, apply.text
    assert ready(hf["host_url"]) == 200
    assert ssh_forwards()[state_of(sproject)["services"]["hf"]["extra"]["tunnel_pid"]] == tunnel_spec(hf)
    assert taoplan("plan", "--detailed-exitcode", cwd=sproject).code == 0

    # a spec change replaces exactly that job: old job cancelled, old tunnel and container gone
    write(sproject, {"hf": {**HF, "model_path": "hf_model://Qwen/Qwen3-VL-2B-Instruct"}, "predict": PREDICT})
    data = json.loads(taoplan("plan", "--json", cwd=sproject).out)
    assert data["summary"] == {"create": 0, "replace": 1, "delete": 0, "noop": 1}
    [replace] = [c for c in data["changes"] if c["action"] == "replace"]
    assert replace["service"] == "hf"
    assert (
        'model_path: "hf_model://Qwen/Qwen3-VL-8B-Instruct" → "hf_model://Qwen/Qwen3-VL-2B-Instruct"'
        in (replace["reasons"])
    )
    old = state_of(sproject)["services"]["hf"]
    apply = taoplan("apply", "--auto-approve", cwd=sproject)
    assert apply.code == 0, apply.text
    new = state_of(sproject)["services"]["hf"]
    assert new["job_id"] != old["job_id"] and ready(new["host_url"]) == 200
    assert old["job_id"] not in {j["name"] for j in live_jobs(sproject.name)}
    assert old["extra"]["tunnel_pid"] not in ssh_forwards()
    assert old["job_id"] not in docker("ps", "-a", "--format", "{{.Names}}").split()
    assert taoplan("plan", "--detailed-exitcode", cwd=sproject).code == 0

    # scancel from outside taoplan: the plan sees it, status shows it, apply repairs it
    victim = state_of(sproject)["services"]["predict"]
    subprocess.run(["scancel", victim["platform_job_id"]], check=True)
    plan = taoplan("plan", cwd=sproject)
    assert "-/+ replace  predict" in plan.out and f"workload {victim['job_id']} exited" in plan.out, plan.out
    assert status(sproject)["predict"]["state"] == "exited"
    apply = taoplan("apply", "--auto-approve", cwd=sproject)
    assert apply.code == 0, apply.text
    assert all(row["ready"] for row in status(sproject).values())
    assert len(live_jobs(sproject.name)) == 2
    assert taoplan("plan", "--detailed-exitcode", cwd=sproject).code == 0

    # destroy: no job, no tunnel, no sidecar, no state or registry entry; nothing left to plan away
    records = state_of(sproject)["services"]
    destroy = taoplan("destroy", "--auto-approve", cwd=sproject)
    assert destroy.code == 0, destroy.text
    assert live_jobs(sproject.name) == []
    forwards = ssh_forwards()
    assert all(r["extra"]["tunnel_pid"] not in forwards for r in records.values())
    assert all(tunnel_spec(r) not in forwards.values() for r in records.values())
    assert list((LAB / "remote" / sproject.name).glob("env/*")) == []
    running = docker("ps", "-a", "--format", "{{.Names}}").split()
    assert all(r["job_id"] not in running for r in records.values())
    assert state_of(sproject)["services"] == {}
    assert [k for k in registry_of(sproject) if k != "latest"] == []
    plan = taoplan("plan", cwd=sproject)
    assert "Plan: 2 to create, 0 to replace, 0 to delete, 0 unchanged." in plan.out, plan.out


def test_a_job_that_cannot_be_scheduled_pends_with_its_reason_and_one_that_cannot_fit_is_refused(
    sproject: Path,
) -> None:
    # both GPUs are taken by a job started outside taoplan: ours is accepted but waits (Resources)
    blocker = gpu_blocker(600)
    try:
        waits = {**HF, "readiness": {"timeout": 20}, "secrets": ["HF_TOKEN"]}
        # more GPUs than the node has: the plan says so, and apply starts nothing at all
        write(sproject, {"waits": waits, "toobig": {**HF, "num_gpus": 3}})
        apply = taoplan("apply", "--auto-approve", cwd=sproject, env={"HF_TOKEN": "hf-pending-canary"})
        assert apply.code == 1, apply.text
        assert "fit: cannot fit: needs 3 GPUs on one place; the largest place (vm) has 2" in apply.out
        assert (
            "Error: toobig: cannot fit: needs 3 GPUs on one place; the largest place (vm) has 2" in apply.err
        )
        assert (
            f"Error: waits: queues: needs 1 GPU, 0 free now on one place; 2 GPUs held by slurm job {blocker} "
            "(root: wrap)" in apply.err
        ), apply.err
        assert "(apply --allow-queue lets it wait)" in apply.err and "Error: nothing was started" in apply.err
        assert live_jobs(sproject.name) == []

        # --allow-queue: the queued one is submitted and waits with Slurm's reason
        write(sproject, {"waits": waits})
        apply = taoplan(
            "apply", "--auto-approve", "--allow-queue", cwd=sproject, env={"HF_TOKEN": "hf-pending-canary"}
        )
        assert apply.code == 3, apply.text
        assert "waits: pending: PENDING (Resources)" in apply.err
        assert (
            "waits: create failed: timeout: not ready after 20s (last: pending: PENDING (Resources))"
            in apply.err
        )

        waiting = [j for j in live_jobs(sproject.name) if j["state"] == "PENDING"]
        assert len(waiting) == 1 and waiting[0]["reason"] == "Resources"
        # until the job starts, its secrets wait in a sidecar only the user can read
        [sidecar] = (LAB / "remote" / sproject.name / "env").iterdir()
        assert sidecar.name == f"{waiting[0]['name']}.env"
        assert oct(sidecar.stat().st_mode & 0o777) == "0o600"
        assert oct(sidecar.parent.stat().st_mode & 0o777) == "0o700"
        shown = taoplan("status", cwd=sproject)
        assert "waits: starting: PENDING (Resources)" in shown.out, shown.text
        plan = taoplan("plan", cwd=sproject)
        assert "-/+ replace  waits" in plan.out and "PENDING (Resources)" in plan.out, plan.out
    finally:
        subprocess.run(["scancel", blocker], check=True)
    assert taoplan("destroy", "--auto-approve", cwd=sproject).code == 0
    assert live_jobs(sproject.name) == []
    assert list((LAB / "remote" / sproject.name / "env").iterdir()) == []  # destroy removed the sidecar


def test_plan_knows_whether_gpus_fit_queue_behind_named_holders_or_cannot_fit(sproject: Path) -> None:
    """The lab's 2 fake GPUs (GRES): fill them with two services, then plan a third and a 3-GPU one."""
    write(sproject, {"a": HF, "b": HF})
    plan = json.loads(taoplan("plan", "--json", cwd=sproject).out)
    assert [c["fit"]["verdict"] for c in plan["changes"]] == ["fits", "fits"], plan
    assert plan["changes"][1]["fit"]["detail"] == "1 GPU on vm (1 of 2 free)"
    apply = taoplan("apply", "--auto-approve", cwd=sproject)
    assert apply.code == 0, apply.text
    records = state_of(sproject)["services"]

    write(sproject, {"a": HF, "b": HF, "c": HF, "huge": {**HF, "num_gpus": 3}})
    plan = taoplan("plan", "--json", cwd=sproject)
    assert plan.code == 0, plan.text
    fits = {c["service"]: c.get("fit") for c in json.loads(plan.out)["changes"]}
    assert fits["a"] is None and fits["b"] is None  # no-ops carry no verdict
    assert fits["c"]["verdict"] == "queues"
    detail = fits["c"]["detail"]
    assert detail.startswith("needs 1 GPU, 0 free now on one place; "), detail
    for name in ("a", "b"):
        assert f"1 GPU held by service {name} ({records[name]['job_id'][:8]})" in detail, detail
    assert "Slurm estimates a start at " in detail and detail.endswith("on vm (sbatch --test-only)"), detail
    assert fits["huge"] == {
        "verdict": "cannot fit",
        "detail": "needs 3 GPUs on one place; the largest place (vm) has 2",
    }
    human = taoplan("plan", cwd=sproject).out
    assert "fit: queues: needs 1 GPU, 0 free now" in human and "fit: cannot fit: needs 3 GPUs" in human

    apply = taoplan("apply", "--auto-approve", "--allow-queue", cwd=sproject)
    assert apply.code == 1, apply.text
    assert "Error: huge: cannot fit: needs 3 GPUs on one place; the largest place (vm) has 2" in apply.err
    assert len(live_jobs(sproject.name)) == 2  # nothing was started

    # two new ones that fit one by one but not together, once a and b are gone
    write(sproject, {"c": HF, "d": {**HF, "num_gpus": 2}})
    plan = json.loads(taoplan("plan", "--json", cwd=sproject).out)
    verdicts = {c["service"]: c.get("fit", {}).get("verdict") for c in plan["changes"]}
    assert verdicts == {"c": "fits", "d": "queues", "a": None, "b": None}, plan
    [d] = [c for c in plan["changes"] if c["service"] == "d"]
    assert d["fit"]["detail"].startswith("fits alone but not together with c (started by this apply)")
    human = taoplan("plan", cwd=sproject).out
    assert "Warning: slurm: d fit one by one but not together with c (2 GPUs free in all)" in human, human
    assert taoplan("destroy", "--auto-approve", cwd=sproject).code == 0


def test_secret_canary_reaches_only_the_server_never_a_file_or_command_line_on_the_cluster(
    sproject: Path,
) -> None:
    canary, other = "hf-canary-5e1b7c0d", "wandb-canary-2f9a"
    env = {"HF_TOKEN": canary, "WANDB_API_KEY": other}
    write(sproject, {"hf": {**HF, "secrets": ["HF_TOKEN", "WANDB_API_KEY"]}})

    seen_on_a_command_line: list[str] = []
    watching = threading.Event()

    def watch() -> None:  # every process's argv while apply runs: ssh, sbatch, the job, docker...
        while not watching.is_set():
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    argv = " ".join(cmdline(int(entry.name)))
                    if canary in argv or other in argv:
                        seen_on_a_command_line.append(argv)
            time.sleep(0.01)

    outputs: list[Run] = []
    for args in (("validate",), ("doctor",), ("plan",), ("plan", "--json"), ("render", "--out", "rendered")):
        outputs.append(taoplan(*args, cwd=sproject, env=env))
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        apply = taoplan("apply", "--auto-approve", cwd=sproject, env=env)
    finally:
        watching.set()
        watcher.join()
    assert apply.code == 0, apply.text
    outputs.append(apply)
    for args in (("status",), ("status", "--json"), ("logs", "hf")):
        outputs.append(taoplan(*args, cwd=sproject, env=env))

    record = state_of(sproject)["services"]["hf"]
    # it did arrive where it belongs: the server's environment
    inspect = json.loads(docker("inspect", record["job_id"]))[0]
    assert f"HF_TOKEN={canary}" in inspect["Config"]["Env"]
    assert f"WANDB_API_KEY={other}" in inspect["Config"]["Env"]
    exposed = json.dumps(
        [inspect["Args"], inspect["Config"]["Cmd"], inspect["Config"]["Labels"], inspect["Path"]]
    )
    assert canary not in exposed and other not in exposed
    # ... and nowhere else: the job script Slurm holds, the job as scontrol shows it, and every file
    # on the "cluster": slurmctld's saved job script and environment, slurmd's spool, the accounting
    # database, logs, remote_dir (whose sidecar the job has removed)
    script = subprocess.run(
        ["scontrol", "write", "batch_script", record["platform_job_id"], "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"#SBATCH --job-name={record['job_id']}" in script and "--env HF_TOKEN \\" in script
    shown = subprocess.run(
        ["scontrol", "show", "job", "-dd", record["platform_job_id"]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert list((LAB / "remote" / sproject.name / "env").iterdir()) == []
    for path in files_under(LAB):
        data = path.read_bytes()
        assert canary.encode() not in data and other.encode() not in data, path
    for text in (script, shown):
        assert canary not in text and other not in text
    # the script Slurm runs is the one `taoplan render` shows for this job
    rendered = taoplan("render", "hf", cwd=sproject).out.split("\n", 1)[1]
    assert rendered.replace("18080", str(record["extra"]["slurm_port"])) == script
    assert seen_on_a_command_line == []

    outputs.append(taoplan("destroy", "--auto-approve", cwd=sproject, env=env))
    for run in outputs:
        assert canary not in run.text and other not in run.text
    for path in [*files_under(sproject), sproject.parent / "registry.json"]:
        if path.exists():
            data = path.read_bytes()
            assert canary.encode() not in data and other.encode() not in data, path


def test_mixed_local_docker_and_slurm_services_plan_and_apply_in_one_run(sproject: Path) -> None:
    write(
        sproject,
        {
            "near": {"network_arch": "cosmos-rl", "model_path": "/models/r", "platform": "local-docker"},
            "far": HF,
        },
        time="00:45:00",
    )
    plan = taoplan("plan", cwd=sproject)
    assert "new service: cosmos-rl on local-docker" in plan.out
    assert "new service: tao-dataservices on slurm" in plan.out
    assert "Plan: 2 to create, 0 to replace, 0 to delete, 0 unchanged." in plan.out

    apply = taoplan("apply", "--auto-approve", cwd=sproject)
    assert apply.code == 0, apply.text
    rows = status(sproject)
    assert (rows["near"]["platform"], rows["far"]["platform"]) == ("local-docker", "slurm")
    assert rows["near"]["host_url"] != rows["far"]["host_url"]
    for row in rows.values():
        assert row["ready"] and ready(row["host_url"]) == 200
    assert rows["near"]["time_left"] is None and re.fullmatch(r"4\dm", rows["far"]["time_left"]), rows

    # converged; the plan flags the Slurm job whose walltime ends within the hour
    again = taoplan("plan", "--detailed-exitcode", cwd=sproject)
    assert again.code == 0 and "No changes." in again.out, again.text
    far = rows["far"]["job_id"]
    assert f"Warning: service 'far': workload {far} ends in 4" in again.out, again.out

    destroy = taoplan("destroy", "--auto-approve", cwd=sproject)
    assert destroy.code == 0, destroy.text
    assert live_jobs(sproject.name) == []
    assert rows["near"]["job_id"] not in docker("ps", "-a", "--format", "{{.Names}}").split()
    assert state_of(sproject)["services"] == {}


def test_doctor_plan_and_render_explain_the_cluster_without_starting_anything(sproject: Path) -> None:
    write(sproject, {"reason": {"network_arch": "cosmos-rl", "model_path": "/m"}}, container_runtime="pyxis")
    doctor = taoplan("doctor", cwd=sproject)
    lines = doctor.out.splitlines()
    for check in ("ssh", "sinfo", "partition", "account", "GPUs", "remote_dir"):
        assert any(line.startswith(f"ok   slurm: {check}:") for line in lines), doctor.out
    # the lab has no Pyxis/Enroot: doctor says so, without printing any credentials
    assert any(line.startswith("FAIL slurm: enroot credentials:") for line in lines), doctor.out
    assert any(line.startswith("FAIL slurm: pyxis:") for line in lines), doctor.out
    # the GPU host preflight on a node, through one short srun: the lab node has no NVIDIA driver (or,
    # while other jobs hold both GPUs, srun --immediate gives up and it is a note)
    assert any(
        line.startswith("FAIL slurm: NVIDIA driver: no NVIDIA driver found on node ")
        or (line.startswith("ok   slurm: GPU host: ") and "srun could not run them now" in line)
        for line in lines
    ), doctor.out
    assert "slurm: GPU runtime" not in doctor.out  # Pyxis: Docker does not run the job
    assert doctor.code == 1

    plan = taoplan("plan", cwd=sproject)
    assert "--exclusive (cosmos-rl takes no port flag: the whole node, port 8080)" in plan.out, plan.out
    render = taoplan("render", "reason", cwd=sproject)
    assert "#SBATCH --exclusive\n" in render.out
    assert "exec srun --ntasks=1 --container-image='localhost#taoplan/tao-test:7.3.0' \\\n" in render.out
    assert live_jobs(sproject.name) == []

    write(sproject, {"big": {**HF, "num_gpus": 3}}, account="nosuch")
    doctor = taoplan("doctor", cwd=sproject)
    assert doctor.code == 1
    assert "FAIL slurm: account: nosuch: no association for this user" in doctor.out, doctor.out
    assert (
        "FAIL slurm: GPUs: up to 3 per service; gpu nodes have 2: sbatch would refuse the job" in doctor.out
    )

    write(sproject, {"x": HF}, ssh_port=1)  # nothing listens there
    doctor = taoplan("doctor", cwd=sproject)
    assert doctor.code == 1 and "FAIL slurm: ssh:" in doctor.out, doctor.text
    plan = taoplan("plan", cwd=sproject)
    assert plan.code == 1 and "Error: ssh root@127.0.0.1:1:" in plan.err, plan.text


def test_a_lost_sbatch_reply_finds_the_job_by_name_and_never_submits_twice(sproject: Path) -> None:
    """The connection drops after sbatch ran: the job is looked up by its exact name, not resubmitted."""
    from taoplan.engine.workspace import Workspace
    from taoplan.errors import PlatformError
    from taoplan.platforms.common.ssh import Reply
    from taoplan.platforms.slurm.platform import Slurm
    from taoplan.spec.deployment import build_deployment

    write(sproject, {"lost": HF, "never": HF})
    ws = Workspace.open(sproject / "services.yaml")
    state = ws.store.load()
    slurm = ws.platform("slurm", state.lineage)
    assert isinstance(slurm, Slurm)
    desired = ws.desired()
    lost = build_deployment(ws, desired["lost"], str(uuid.uuid4()), state.lineage)
    placements = slurm.prepare([lost], set())
    [artifact] = slurm.render(lost, placements[lost.job_id])
    submitted = slurm.conn.run(
        f"mkdir -p {slurm.remote_dir}/logs && cd {slurm.remote_dir} && sbatch --parsable",
        stdin=artifact.content,
    )
    assert submitted.ok, submitted.err
    dropped = Reply(255, "", "Connection to 127.0.0.1 closed by remote host.")
    found = slurm.after_ambiguous_submit(lost, dropped)
    assert found == submitted.out.strip().split(";")[0]
    assert [j["name"] for j in jobs_of(sproject.name)] == [lost.job_id]  # one job, not two

    never = build_deployment(ws, desired["never"], str(uuid.uuid4()), state.lineage)
    with pytest.raises(PlatformError) as info:
        slurm.after_ambiguous_submit(never, dropped)
    assert f"no job named {never.job_id} is queued; nothing was resubmitted" in info.value.message
    assert [j["name"] for j in jobs_of(sproject.name)] == [lost.job_id]
    slurm.remove(lost.job_id)
    assert live_jobs(sproject.name) == []


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


def test_phase_timings_of_a_job_that_queues_then_loads_for_3s(sproject: Path) -> None:
    """A job held in the queue by another job's GPUs, then a 3 s model load: queued first, then the rest."""
    blocker = gpu_blocker(8)
    try:
        slow = {**HF, "env": {"TAO_FAKE_LOAD_SECONDS": "3"}}
        write(sproject, {"slow": slow})
        apply = taoplan("apply", "--auto-approve", "--allow-queue", cwd=sproject)
        assert apply.code == 0, apply.text
    finally:
        subprocess.run(["scancel", blocker], check=True)
    row = status(sproject)["slow"]
    assert_phases_ordered(row, "queued", "container start", "model loading", "ready", "first answer")
    assert row["phases"][0]["phase"] == "queued" and "PENDING" in row["phases"][0]["detail"], row
    assert taoplan("destroy", "--auto-approve", cwd=sproject).code == 0
