"""Platform `brev` end to end: the real CLI against a real VM (scripts/brev-lab.sh: its own network
namespace at 10.213.7.2, sshd and dockerd, the TAO test image loaded); only the `brev` binary is fake
(tests/fakes/brev/brev, quirks of brev-cli v0.6.327, state in a JSON file under a test HOME).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, Run, taoplan
from tests.e2e.conftest import TEST_IMAGE
from tests.e2e.test_slurm import slurm_lab, slurm_settings  # noqa: F401 - the Slurm lab fixture

pytestmark = pytest.mark.brev

LAB_SCRIPT = ROOT / "scripts" / "brev-lab.sh"
NGC_IMAGE = "nvcr.io/nvidia/tao/tao-toolkit:0.0.0-taoplan-test"
HF = {"network_arch": "tao-dataservices", "model_path": "hf_model://Qwen/Qwen3-VL-8B-Instruct"}
RL = {"network_arch": "cosmos-rl", "model_path": "/models/r"}


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def brev_lab(docker_engine: None) -> dict[str, str]:
    """The lab VM, up (idempotent); its variables (BREV_LAB_VM_IP, BREV_LAB_DOCKER_HOST, ...)."""
    up = subprocess.run(["bash", str(LAB_SCRIPT), "up"], capture_output=True, text=True, timeout=1800)
    assert up.returncode == 0, f"brev-lab.sh up failed:\n{up.stdout}\n{up.stderr}"
    env = subprocess.run(["bash", str(LAB_SCRIPT), "env"], capture_output=True, text=True, check=True).stdout
    return dict(line.removeprefix("export ").split("=", 1) for line in env.splitlines() if "=" in line)


class Brev:
    """One test's view of the fake brev's state file and of the VM's Docker engine."""

    def __init__(self, lab: dict[str, str], home: Path) -> None:
        self.lab = lab
        self.home = home
        self.state_file = home / ".brev" / "fake-state.json"

    def state(self) -> dict[str, Any]:
        return json.loads(self.state_file.read_text()) if self.state_file.exists() else {}

    def set(self, **values: Any) -> None:
        state = self.state()
        state.update(values)
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(state, indent=2))

    def instance(self, name: str) -> dict[str, Any] | None:
        return next((i for i in self.state().get("instances", []) if i["name"] == name), None)

    def edit_instance(self, name: str, **values: Any) -> None:
        state = self.state()
        for inst in state["instances"]:
            if inst["name"] == name:
                inst.update(values)
        self.state_file.write_text(json.dumps(state, indent=2))

    def drop_instance(self, name: str) -> None:
        state = self.state()
        state["instances"] = [i for i in state["instances"] if i["name"] != name]
        self.state_file.write_text(json.dumps(state, indent=2))

    def docker(self, *args: str, check: bool = True) -> str:
        """docker against the VM's engine (not the host's)."""
        proc = subprocess.run(
            ["docker", "-H", self.lab["BREV_LAB_DOCKER_HOST"], *args], capture_output=True, text=True
        )
        if check:
            assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def containers(self, project: str) -> dict[str, str]:
        """name -> state of this project's containers on the VM."""
        out = self.docker(
            "ps", "-a", "--filter", f"label=taoplan.project={project}", "--format", "{{.Names}} {{.State}}"
        )
        return dict(line.split(" ", 1) for line in out.splitlines())

    def exec_log(self) -> list[dict[str, Any]]:
        return list(self.state().get("exec_log", []))


@pytest.fixture
def brev(brev_lab: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Brev]:
    """A test HOME with the fake brev on PATH (logged in, no instances); the project's containers on
    the VM and its tunnels are removed afterwards."""
    home = tmp_path / "home"
    (home / ".brev").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("PATH", f"{brev_lab['BREV_LAB_FAKE_BREV_DIR']}:{os.environ['PATH']}")
    monkeypatch.setenv("TAOPLAN_FAKE_BREV_STATE", str(home / ".brev" / "fake-state.json"))
    monkeypatch.setenv("TAO_INF_MS_STATE", str(tmp_path / "registry.json"))
    monkeypatch.delenv("TAOPLAN_STATE_DIR", raising=False)
    for name in ("BREV_API_TOKEN", "NGC_KEY"):
        monkeypatch.delenv(name, raising=False)
    for key, value in brev_lab.items():
        monkeypatch.setenv(key, value)
    fake = Brev(brev_lab, home)
    fake.set(
        logged_in=True,
        instances=[],
        steps={
            "create": {"ls_calls": 1, "seconds": 600},
            "start": {"ls_calls": 1, "seconds": 600},
            "stop": {"ls_calls": 1, "seconds": 600},
            "delete": {"ls_calls": 1, "seconds": 600},
        },
    )
    yield fake
    leftovers = fake.docker("ps", "-aq", "--filter", "label=taoplan.project", check=False).split()
    projects = {p.name for p in tmp_path.iterdir() if p.is_dir() and p.name.startswith("b")}
    for cid in leftovers:
        label = fake.docker(
            "inspect", "--format", '{{index .Config.Labels "taoplan.project"}}', cid, check=False
        )
        if label.strip() in projects:
            fake.docker("rm", "-f", cid, check=False)
    for pid, argv in ssh_processes().items():
        if str(home) in " ".join(argv):
            os.kill(pid, signal.SIGTERM)


@pytest.fixture
def bproject(brev: Brev, tmp_path: Path) -> Path:
    folder = tmp_path / f"b{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    return folder


def running_instance(brev: Brev, name: str = "box", **extra: Any) -> str:
    brev.set(
        instances=[
            *brev.state().get("instances", []),
            {
                "name": name,
                "id": uuid.uuid4().hex[:9],
                "status": "RUNNING",
                "build_status": "COMPLETED",
                **extra,
            },
        ]
    )
    return name


def write(project: Path, services: dict[str, dict[str, Any]], **settings: Any) -> None:
    """A services file: brev services by default (gpus: none, the lab VM has no GPU runtime)."""
    brev_settings = {"gpus": "none", "shm_size": "64m", **settings}
    lines = [
        "version: 1",
        f"project: {project.name}",
        "defaults:",
        f"  image: {TEST_IMAGE}",
        "  platform: brev",
        "  readiness: {timeout: 120}",
        "platforms:",
        f"  brev: {json.dumps(brev_settings)}",
        '  local-docker: {"gpus": "none", "shm_size": "64m"}',
    ]
    if any(s.get("platform") == "slurm" for s in services.values()):
        lines.append(f"  slurm: {json.dumps(slurm_settings(project.name))}")
    lines.append("services:")
    lines += [f"  {name}: {json.dumps(fields)}" for name, fields in services.items()]
    (project / "services.yaml").write_text("\n".join(lines) + "\n")


# ------------------------------------------------------------------------------------------ observations


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def ssh_processes() -> dict[int, list[str]]:
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            argv = cmdline(int(entry.name))
            if argv and os.path.basename(argv[0]) == "ssh":
                out[int(entry.name)] = argv
    return out


def state_of(project: Path) -> dict[str, Any]:
    return json.loads((project / ".taoplan" / "state.json").read_text())


def registry_of(project: Path) -> dict[str, Any]:
    path = project.parent / "registry.json"
    return json.loads(path.read_text()) if path.exists() else {}


def status(project: Path) -> dict[str, dict[str, Any]]:
    run = taoplan("status", "--json", cwd=project)
    assert run.code == 0, run.text
    return {row["name"]: row for row in json.loads(run.out)["services"]}


def ready(url: str) -> int:
    return httpx.get(url + "/api/v1/health/readiness", timeout=5, trust_env=False).status_code


def tunnel_of(record: dict[str, Any]) -> str | None:
    """The -L spec of the recorded tunnel PID, if that process is a live ssh."""
    argv = ssh_processes().get(record["extra"].get("tunnel_pid") or -1, [])
    return argv[argv.index("-L") + 1] if "-L" in argv else None


def apply_ok(project: Path, env: dict[str, str] | None = None) -> Run:
    run = taoplan("apply", "--auto-approve", cwd=project, env=env)
    assert run.code == 0, run.text
    return run


# ------------------------------------------------------------------------------------------ tests


def test_two_services_on_an_existing_instance_through_tunnels_with_ports_allocated_on_the_vm(
    brev: Brev, bproject: Path
) -> None:
    box = running_instance(brev)
    # something outside taoplan already holds 8080 on the VM: ports are counted there, not here
    blocker = f"blocker-{bproject.name}"
    brev.docker(
        "run",
        "-d",
        "--name",
        blocker,
        "--label",
        f"taoplan.project={bproject.name}",
        "-p",
        "8080:8080",
        TEST_IMAGE,
        "sleep",
        "600",
    )
    try:
        write(bproject, {"hf": HF, "rl": RL}, instance=box)
        plan = taoplan("plan", "--detailed-exitcode", cwd=bproject)
        assert plan.code == 2, plan.text
        assert plan.out.count("brev: docker on instance box, reached through an ssh tunnel") == 2

        apply_ok(bproject)
        rows, records = status(bproject), state_of(bproject)["services"]
        vm_ports = sorted(r["extra"]["brev_port"] for r in records.values())
        assert vm_ports == [8081, 8082], vm_ports  # lowest free from 8080 on the VM
        registry = registry_of(bproject)
        box_id = brev.instance(box)["id"]  # type: ignore[index]
        for name in ("hf", "rl"):
            row, record = rows[name], records[name]
            assert row["state"] == "ready" and row["platform"] == "brev", row
            assert row["host_url"] == f"http://localhost:{record['host_port']}"
            assert ready(row["host_url"]) == 200
            # the tunnel is exactly the recorded ssh process, to the VM's loopback and the VM port
            assert tunnel_of(record) == f"{record['host_port']}:127.0.0.1:{record['extra']['brev_port']}"
            entry = registry[record["job_id"]]
            assert (entry["platform"], entry["brev_instance"], entry["instance_id"]) == ("brev", box, box_id)
            assert entry["brev_port"] == record["extra"]["brev_port"]
        # the containers run on the VM's engine, published on its loopback only, never on the host's
        on_vm = brev.containers(bproject.name)
        assert all(on_vm[r["job_id"]] == "running" for r in records.values())
        ports = brev.docker("port", records["hf"]["job_id"])
        assert ports.strip() == f"8080/tcp -> 127.0.0.1:{records['hf']['extra']['brev_port']}", ports
        host = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label=taoplan.project={bproject.name}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert host.split() == []

        again = taoplan("plan", "--detailed-exitcode", cwd=bproject)
        assert again.code == 0 and "No changes." in again.out, again.text
        logs = taoplan("logs", "hf", "--tail", "20", cwd=bproject)
        assert logs.code == 0 and "/api/v1/health/readiness" in logs.out, logs.text
        asked = taoplan("request", "hf", "--prompt", "hello", "--accept-defaults", cwd=bproject)
        assert asked.code == 0 and "hello" in asked.out, asked.text

        # a dead tunnel: status reopens it on the same local port and records the new PID
        hf = records["hf"]
        os.kill(hf["extra"]["tunnel_pid"], signal.SIGTERM)
        row = status(bproject)["hf"]
        assert row["state"] == "ready" and row["host_url"] == hf["host_url"]
        fresh = state_of(bproject)["services"]["hf"]
        assert fresh["extra"]["tunnel_pid"] != hf["extra"]["tunnel_pid"] and tunnel_of(fresh)

        # a spec change replaces exactly that container
        write(
            bproject,
            {"hf": {**HF, "model_path": "hf_model://Qwen/Qwen3-VL-2B-Instruct"}, "rl": RL},
            instance=box,
        )
        apply_ok(bproject)
        new = state_of(bproject)["services"]["hf"]
        assert new["job_id"] != hf["job_id"] and ready(new["host_url"]) == 200
        assert hf["job_id"] not in brev.containers(bproject.name)
        assert tunnel_of(hf) is None

        # nothing here went through `brev exec` (docker runs over ssh)
        assert brev.exec_log() == []
        records = state_of(bproject)["services"]
        destroy = taoplan("destroy", "--auto-approve", cwd=bproject)
        assert destroy.code == 0, destroy.text
        assert set(brev.containers(bproject.name)) == {blocker}
        assert all(tunnel_of(r) is None for r in records.values())
        assert state_of(bproject)["services"] == {}
        assert [k for k in registry_of(bproject) if k != "latest"] == []
        assert brev.instance(box) is not None  # an existing instance is never deleted
    finally:
        brev.docker("rm", "-f", blocker, check=False)


def test_mixed_docker_brev_and_slurm_services_in_one_file(
    brev: Brev,
    bproject: Path,
    slurm_lab: dict[str, str],  # noqa: F811 - the fixture imported above
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in slurm_lab.items():
        monkeypatch.setenv(key, value)
    box = running_instance(brev)
    write(
        bproject,
        {
            "near": {**RL, "platform": "local-docker"},
            "vm": {**RL},
            "far": {**HF, "platform": "slurm"},
        },
        instance=box,
        access="public",
    )
    plan = taoplan("plan", cwd=bproject)
    assert plan.code == 0, plan.text
    for line in ("cosmos-rl on local-docker", "cosmos-rl on brev", "tao-dataservices on slurm"):
        assert f"new service: {line}" in plan.out, plan.out
    assert "brev: docker on instance box, reached through the VM's address" in plan.out
    try:
        apply_ok(bproject)
        rows = status(bproject)
        assert {n: r["platform"] for n, r in rows.items()} == {
            "near": "local-docker",
            "vm": "brev",
            "far": "slurm",
        }
        vm_record = state_of(bproject)["services"]["vm"]
        port = vm_record["extra"]["brev_port"]
        assert (
            rows["vm"]["host_url"] == f"http://{brev.lab['BREV_LAB_VM_IP']}:{port}" == vm_record["host_url"]
        )
        assert vm_record["host_port"] == port and "tunnel_pid" not in vm_record["extra"]
        published = set(brev.docker("port", vm_record["job_id"]).split("\n")) - {""}
        assert published <= {f"8080/tcp -> 0.0.0.0:{port}", f"8080/tcp -> [::]:{port}"}, published
        assert f"8080/tcp -> 0.0.0.0:{port}" in published  # every interface (IPv6 too where dockerd binds it)
        for row in rows.values():
            assert row["ready"] and ready(row["host_url"]) == 200, row
        assert taoplan("plan", "--detailed-exitcode", cwd=bproject).code == 0
    finally:
        destroy = taoplan("destroy", "--auto-approve", cwd=bproject)
    assert destroy.code == 0, destroy.text
    assert brev.containers(bproject.name) == {}
    assert state_of(bproject)["services"] == {}


def test_a_stopped_instance_fails_unless_start_stopped_and_its_services_count_as_gone(
    brev: Brev, bproject: Path
) -> None:
    box = running_instance(brev)
    write(bproject, {"rl": RL}, instance=box)
    apply_ok(bproject)
    old = state_of(bproject)["services"]["rl"]

    # stopped out of band: the VM's containers stop with it
    brev.edit_instance(box, status="STOPPED")
    brev.docker("stop", "-t", "1", old["job_id"])
    plan = taoplan("plan", cwd=bproject)
    assert (
        plan.code == 0 and "+ create   rl" in plan.out and f"workload {old['job_id']} is gone" in plan.out
    ), plan.text
    assert status(bproject)["rl"]["state"] == "missing"
    apply = taoplan("apply", "--auto-approve", cwd=bproject)
    assert apply.code != 0
    assert "brev: instance box is STOPPED: start it (brev start box) or set start_stopped: true" in apply.text
    doctor = taoplan("doctor", cwd=bproject)
    assert "FAIL brev: instance: box (STOPPED, shell NOT READY)" in doctor.out, doctor.out

    # start_stopped: true starts it (brev start, poll ls until READY, probe with one exec), then replaces
    write(bproject, {"rl": RL}, instance=box, start_stopped=True)
    apply_ok(bproject)
    assert brev.instance(box)["status"] == "RUNNING"  # type: ignore[index]
    new = state_of(bproject)["services"]["rl"]
    assert new["job_id"] != old["job_id"] and ready(new["host_url"]) == 200
    assert brev.containers(bproject.name) == {new["job_id"]: "running"}
    assert [e["command"] for e in brev.exec_log()] == ["echo taoplan-ok"]
    assert not brev.instance(box).get("started_by_exec")  # type: ignore[union-attr]
    assert taoplan("destroy", "--auto-approve", cwd=bproject).code == 0


def test_created_ephemeral_instance_survives_out_of_band_deletion_and_goes_with_destroy(
    brev: Brev, bproject: Path
) -> None:
    # the fresh instance's sshd is not up at first: two exec tries fail before one answers
    brev.set(fail_next_exec={"count": 3, "mode": "before"})
    create = {"type": "n1-highmem-4:nvidia-tesla-t4:1", "ephemeral": True}
    write(bproject, {"rl": RL}, create=create)
    name = f"taoplan-{bproject.name}"
    doctor = taoplan("doctor", cwd=bproject)
    assert f"ok   brev: instance: {name}: apply creates it (n1-highmem-4:nvidia-tesla-t4:1)" in doctor.out
    apply_ok(bproject)
    inst = brev.instance(name)
    assert inst is not None and inst["status"] == "RUNNING" and inst["instance_type"] == create["type"]
    record = state_of(bproject)["services"]["rl"]
    assert ready(record["host_url"]) == 200 and record["extra"]["brev_instance"] == name
    probes = brev.exec_log()
    assert {e["command"] for e in probes} == {"echo taoplan-ok"} and probes[-1]["rc"] == 0
    assert len(probes) == 4  # 2 brev exec calls, each one try and one replay; the last answered

    # deleted out of band: everything on it is gone; apply creates the instance again
    brev.drop_instance(name)
    brev.docker("rm", "-f", record["job_id"])
    plan = taoplan("plan", cwd=bproject)
    assert "+ create   rl" in plan.out and f"workload {record['job_id']} is gone" in plan.out, plan.text
    apply_ok(bproject)
    again = state_of(bproject)["services"]["rl"]
    assert again["extra"]["instance_id"] == brev.instance(name)["id"] != record["extra"]["instance_id"]  # type: ignore[index]
    assert ready(again["host_url"]) == 200

    # destroy deletes an ephemeral instance (asynchronously: DELETING, then gone)
    destroy = taoplan("destroy", "--auto-approve", cwd=bproject)
    assert destroy.code == 0, destroy.text
    assert brev.instance(name)["status"] == "DELETING"  # type: ignore[index]
    plan = taoplan("plan", cwd=bproject)
    assert plan.code == 1 and f"brev: instance {name} is DELETING" in plan.err, plan.text
    assert brev.containers(bproject.name) == {}
    listed = subprocess.run(
        ["brev", "ls", "--json"], stdin=subprocess.DEVNULL, capture_output=True, text=True
    )
    assert json.loads(listed.stdout) == {"workspaces": None}  # gone: the delete finished


def test_a_replayed_start_never_starts_a_second_container(brev: Brev, bproject: Path) -> None:
    """brev exec replays a command whose connection dropped after it ran (PR #459: a doubled docker run).
    start.sh is safe to replay: the second run finds the container named by the job_id, and succeeds."""
    box = running_instance(brev)
    write(bproject, {"rl": RL}, instance=box)
    rendered = taoplan("render", "rl", "--out", "rendered", cwd=bproject)
    assert rendered.code == 0, rendered.text
    [folder] = (bproject / "rendered").iterdir()
    start = (folder / "start.sh").read_text()
    job = next(line.split()[1] for line in start.splitlines() if line.startswith("  --name "))
    subprocess.run(["brev", "refresh"], stdin=subprocess.DEVNULL, capture_output=True, check=True)
    brev.set(fail_next_exec={"count": 1, "mode": "after"})
    run = subprocess.run(
        ["brev", "exec", box, start], stdin=subprocess.DEVNULL, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert "Connection failed, checking instance status..." in run.stderr
    assert f"taoplan: container {job} already exists" in run.stdout
    log = brev.exec_log()
    assert [(e["attempt"], e["ran"]) for e in log] == [(1, True), (2, True)]
    assert brev.containers(bproject.name) == {job: "running"}
    # what apply itself sends over ssh is the same text: taoplan's own apply adopts nothing twice
    apply_ok(bproject)
    record = state_of(bproject)["services"]["rl"]
    assert set(brev.containers(bproject.name)) == {job, record["job_id"]}
    brev.docker("rm", "-f", job)
    assert taoplan("destroy", "--auto-approve", cwd=bproject).code == 0


def test_logged_out_cli_logs_in_with_the_token_and_never_prompts(brev: Brev, bproject: Path) -> None:
    box = running_instance(brev)
    brev.set(logged_in=False, valid_token="brev-token-a1b2c3")
    write(bproject, {"rl": RL}, instance=box)
    plan = taoplan("plan", cwd=bproject)
    assert plan.code == 1, plan.text
    assert "brev: the CLI is logged out and BREV_API_TOKEN is not set" in plan.err
    assert "[Y/n]" not in plan.text
    doctor = taoplan("doctor", cwd=bproject)
    assert "FAIL brev: login: logged out and BREV_API_TOKEN is not set" in doctor.out, doctor.out
    wrong = taoplan("plan", cwd=bproject, env={"BREV_API_TOKEN": "not-the-token"})
    assert wrong.code == 1 and "brev: login with BREV_API_TOKEN failed: invalid token" in wrong.err, (
        wrong.text
    )
    assert "not-the-token" not in wrong.text
    plan = taoplan("plan", cwd=bproject, env={"BREV_API_TOKEN": "brev-token-a1b2c3"})
    assert plan.code == 0 and "+ create   rl" in plan.out, plan.text
    assert brev.state()["logged_in"] is True
    assert taoplan("plan", cwd=bproject).code == 0  # logged in now: no token needed


def test_canary_brev_token_and_ngc_key_never_in_outputs_files_or_process_lists(
    brev: Brev, bproject: Path
) -> None:
    token, ngc, hf = "brev-canary-7c1d9e", "ngc-canary-3f8a2b", "hf-canary-91d0"
    env = {"BREV_API_TOKEN": token, "NGC_KEY": ngc, "HF_TOKEN": hf}
    box = running_instance(brev)
    brev.set(logged_in=False, valid_token=token)
    write(bproject, {"rl": {**RL, "secrets": ["HF_TOKEN"]}, "ngc": {**RL, "image": NGC_IMAGE}}, instance=box)

    exposed: list[str] = []
    watching = threading.Event()

    def watch() -> None:  # every process's argv, here and on the VM (same process table)
        while not watching.is_set():
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    argv = cmdline(int(entry.name))
                    text = " ".join(argv)
                    if ngc in text or hf in text:
                        exposed.append(text)
                    elif token in text and argv[-3:] != ["login", "--token", token]:
                        exposed.append(text)  # brev-cli takes the token only as `login --token`
            time.sleep(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    outputs: list[Run] = []
    try:
        for args in (("validate",), ("doctor",), ("plan",), ("render", "--out", "rendered")):
            outputs.append(taoplan(*args, cwd=bproject, env=env))
        apply = taoplan("apply", "--auto-approve", cwd=bproject, env=env)
        outputs.append(apply)
        for args in (("status",), ("status", "--json"), ("logs", "rl")):
            outputs.append(taoplan(*args, cwd=bproject, env=env))
    finally:
        watching.set()
        watcher.join()
    # the nvcr.io image is not on the VM: apply logged in with NGC_KEY on stdin (the lab has no route out)
    assert apply.code != 0
    assert "ngc: create failed: brev box: docker login nvcr.io with NGC_KEY failed:" in apply.text, apply.text
    assert "rl: ready" in apply.text or "✓ rl" in apply.text, apply.text
    record = state_of(bproject)["services"]["rl"]
    inspect = json.loads(brev.docker("inspect", record["job_id"]))[0]
    assert f"HF_TOKEN={hf}" in inspect["Config"]["Env"]  # the secret reached the server, and only it
    assert hf not in json.dumps([inspect["Args"], inspect["Config"]["Cmd"], inspect["Config"]["Labels"]])
    outputs.append(taoplan("destroy", "--auto-approve", cwd=bproject, env=env))
    assert exposed == []
    for run in outputs:
        for secret in (token, ngc, hf):
            assert secret not in run.text, run.text
    fake_server_side = brev.state_file  # the fake's "Brev API": it holds the valid token by design
    files = [
        p
        for p in [*bproject.rglob("*"), *brev.home.rglob("*"), bproject.parent / "registry.json"]
        if p.is_file() and not p.is_symlink() and p != fake_server_side
    ]
    for path in files:
        data = path.read_bytes()
        for secret in (token, ngc, hf):
            assert secret.encode() not in data, path
    docker_config = Path("/home/ubuntu/.docker/config.json")
    if docker_config.exists():
        assert ngc.encode() not in docker_config.read_bytes()


def test_bad_brev_settings_get_located_errors(bproject: Path, brev: Brev) -> None:
    cases = {
        "{}": "services.yaml:8:3: platforms.brev: give instance: (an existing instance) or create: {type: ...}",
        '{"instance": "a", "create": {"type": "t4"}}': "platforms.brev: give instance: or create:, not both",
        '{"instance": "-bad name"}': "platforms.brev.instance: String should match pattern",
        '{"instance": "'
        + "a" * 64
        + '"}': "platforms.brev.instance: String should have at most 63 characters",
        '{"instance": "a", "access": "vpn"}': "platforms.brev.access: Input should be 'tunnel' or 'public'",
    }
    for settings, expected in cases.items():
        text = (
            f"version: 1\nproject: {bproject.name}\ndefaults:\n  image: {TEST_IMAGE}\n"
            f"  platform: brev\nplatforms:\n  local-docker: {{}}\n  brev: {settings}\n"
            f"services:\n  rl: {json.dumps(RL)}\n"
        )
        (bproject / "services.yaml").write_text(text)
        run = taoplan("validate", cwd=bproject)
        assert run.code == 1 and expected in run.err, (settings, run.text)
        assert "Traceback" not in run.text and len(run.err.strip().splitlines()) == 1, run.text
    (bproject / "services.yaml").write_text(
        f"version: 1\nproject: {bproject.name}\ndefaults:\n  image: {TEST_IMAGE}\nservices:\n"
        f"  rl: {json.dumps({**RL, 'platform': 'brev'})}\n"
    )
    run = taoplan("validate", cwd=bproject)
    assert (
        run.code == 1
        and "services.rl.platform: give instance:" in run.err
        and "under platforms.brev" in run.err
    )
    assert "Traceback" not in run.text, run.text


def test_doctor_checks_cli_login_instance_docker_and_gpu_runtime(brev: Brev, bproject: Path) -> None:
    box = running_instance(brev)
    write(bproject, {"rl": RL}, instance=box, gpus="nvidia")
    doctor = taoplan("doctor", cwd=bproject)
    lines = doctor.out.splitlines()
    for check in ("brev CLI", "login", "instance", "docker"):
        assert any(line.startswith(f"ok   brev: {check}:") for line in lines), doctor.out
    # the GPU host preflight runs on the VM over ssh: the lab VM has Docker but no NVIDIA driver
    assert (
        "FAIL brev: NVIDIA driver: no NVIDIA driver found on box (nvidia-smi is not installed)" in doctor.out
    )
    assert "FAIL brev: GPU runtime: no nvidia runtime on box (Docker has " in doctor.out, doctor.out
    assert "or set gpus: none for a host without GPUs" in doctor.out
    write(bproject, {"rl": RL}, instance="nosuch")
    doctor = taoplan("doctor", cwd=bproject)
    assert "FAIL brev: instance: 'nosuch' not found; brev ls shows: box (RUNNING, shell READY)" in doctor.out
    plan = taoplan("plan", cwd=bproject)
    assert plan.code == 0, plan.text  # nothing runs there yet: the plan only creates
    apply = taoplan("apply", "--auto-approve", cwd=bproject)
    assert (
        apply.code != 0
        and "brev: instance 'nosuch' not found; brev ls shows: box (RUNNING, shell READY)" in apply.text
    )
    hidden = os.environ["PATH"].replace(brev.lab["BREV_LAB_FAKE_BREV_DIR"] + ":", "")
    doctor = taoplan("doctor", cwd=bproject, env={"PATH": hidden})
    assert "FAIL brev: brev CLI: brev is not on PATH" in doctor.out, doctor.out
    assert shutil.which("brev", path=hidden) is None
