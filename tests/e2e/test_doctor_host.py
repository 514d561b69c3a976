"""doctor's GPU host preflight on this machine (Docker, no NVIDIA driver) and the credentials file
(~/.config/tao/.env, secrets_file:) through the real CLI and the real Docker engine."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import pytest

from taoplan.common import procs
from tests.conftest import Run, taoplan
from tests.e2e.conftest import TEST_IMAGE, docker, labelled, services_yaml

pytestmark = pytest.mark.docker

REASON = {"network_arch": "cosmos-rl", "model_path": "/models/r"}
SECRETS_FILE = "secrets_file: ~/.config/tao/.env\n"


def write(
    project: Path, services: dict[str, dict[str, object]], *, top: str = "", **platform: object
) -> None:
    text = services_yaml(project.name, services, **platform)
    (project / "services.yaml").write_text(text.replace("version: 1\n", f"version: 1\n{top}", 1))


def credentials(home: Path, text: str, mode: int = 0o600) -> Path:
    path = home / ".config" / "tao" / ".env"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME of its own (where ~/.config/tao/.env is), and no HF_TOKEN / WANDB_API_KEY in the environment."""
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("HOME", str(folder))
    for name in ("HF_TOKEN", "WANDB_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    return folder


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this host has an NVIDIA driver")
def test_doctor_on_a_host_without_a_driver_says_no_nvidia_driver_found(dproject: Path) -> None:
    write(dproject, {"reason": REASON}, gpus="nvidia")
    run = taoplan("doctor", cwd=dproject)
    assert run.code == 1, run.text
    lines = run.out.splitlines()
    assert "ok   local-docker: docker daemon: " in run.out
    assert any(
        line.startswith(
            "FAIL local-docker: NVIDIA driver: no NVIDIA driver found on this host (nvidia-smi is not installed): "
            "install the NVIDIA driver ≥ 580"
        )
        for line in lines
    ), run.out
    assert any(
        line.startswith("FAIL local-docker: GPU runtime: no nvidia runtime on this host (Docker has ")
        for line in lines
    )
    if shutil.which("nvidia-container-cli") is None and shutil.which("nvidia-ctk") is None:
        toolkit = (
            "FAIL local-docker: Container Toolkit: nvidia-container-cli not found on this host: install the "
        )
        assert toolkit + "NVIDIA Container Toolkit ≥ 1.19.1 (for cosmos-rl)" in run.out, run.out
    # without a driver there is nothing to measure or smoke-test: no CUDA, memory or container lines
    assert not any(word in run.out for word in ("CUDA:", "GPU memory:", "GPU container")), run.out
    assert "Traceback" not in run.text

    write(dproject, {"reason": REASON}, gpus="none")
    run = taoplan("doctor", cwd=dproject)
    assert run.code == 0, run.text
    assert "ok   local-docker: GPU runtime: gpus: none: containers get no GPU, so no GPU preflight" in run.out
    assert "NVIDIA driver" not in run.out


def test_credentials_file_names_are_reported_and_wrong_permissions_refused(
    dproject: Path, home: Path
) -> None:
    canary = "hf-canary-4d2a9e71"
    path = credentials(home, f'# TAO credentials\nexport HF_TOKEN="{canary}"\nNGC_API_KEY=\n', mode=0o644)
    write(dproject, {"reason": {**REASON, "secrets": ["HF_TOKEN", "WANDB_API_KEY"]}})
    runs: list[Run] = []

    # without secrets_file: doctor reports the file (it exists), refuses to read it while 0644
    runs.append(doctor := taoplan("doctor", cwd=dproject))
    assert doctor.code == 1
    assert f"FAIL credentials file: {path} is mode 0644: it must be 0600 (chmod 600 {path})" in doctor.out
    path.chmod(0o600)
    runs.append(doctor := taoplan("doctor", cwd=dproject, env={"WANDB_API_KEY": "wandb-canary-77"}))
    assert (
        "ok   credentials file: ~/.config/tao/.env: 0600 and yours; of the secrets the services use it sets HF_TOKEN"
        in doctor.out
    )
    assert (
        "FAIL secret HF_TOKEN: set in ~/.config/tao/.env, but apply reads that file only with "
        "secrets_file: ~/.config/tao/.env in services.yaml (used by reason)"
    ) in doctor.out
    assert "ok   secret WANDB_API_KEY: set in the environment (used by reason)" in doctor.out

    # with secrets_file: the names are set there; a file that is not 0600 stops apply before anything
    write(dproject, {"reason": {**REASON, "secrets": ["HF_TOKEN"]}}, top=SECRETS_FILE)
    runs.append(doctor := taoplan("doctor", cwd=dproject))
    assert doctor.code == 0, doctor.text
    assert "ok   secret HF_TOKEN: set in ~/.config/tao/.env (used by reason)" in doctor.out
    for mode in (0o640, 0o604):
        path.chmod(mode)
        runs.append(apply := taoplan("apply", "--auto-approve", cwd=dproject))
        assert apply.code == 1, apply.text
        assert apply.err.strip() == (
            f"Error: services.yaml:2:1: secrets_file: {path} is mode {mode:04o}: it must be 0600 (chmod 600 {path})"
        ), apply.err
        assert labelled(dproject.name) == []
    if os.getuid() == 0:  # another owner's file is refused too, whatever its mode
        path.chmod(0o600)
        os.chown(path, 65534, 65534)
        runs.append(apply := taoplan("apply", "--auto-approve", cwd=dproject))
        assert apply.code == 1 and f"{path} is owned by uid 65534, not by you (uid 0)" in apply.err, (
            apply.text
        )
        assert labelled(dproject.name) == []
    state = dproject / ".taoplan" / "state.json"
    assert not state.exists() or json.loads(state.read_text())["services"] == {}
    for run in runs:
        assert canary not in run.text and "Traceback" not in run.text


def test_apply_takes_secrets_from_the_file_the_environment_wins_and_no_value_leaks(
    dproject: Path, home: Path
) -> None:
    from_file, overridden, from_env = "hf-canary-file-5c1e", "wandb-canary-file-0b7d", "wandb-canary-env-93fa"
    credentials(home, f"HF_TOKEN={from_file}\nWANDB_API_KEY='{overridden}'\n")
    env = {"WANDB_API_KEY": from_env}
    write(dproject, {"reason": {**REASON, "secrets": ["HF_TOKEN", "WANDB_API_KEY"]}}, top=SECRETS_FILE)
    canaries = (from_file, overridden, from_env)

    seen: list[str] = []
    done = threading.Event()

    def watch() -> None:  # every process's argv while apply runs
        while not done.is_set():
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    argv = " ".join(procs.argv(int(entry.name)) or [])
                    seen.extend(argv for c in canaries if c in argv)
            done.wait(0.01)

    outputs = [
        taoplan(*args, cwd=dproject, env=env)
        for args in (
            ("validate",),
            ("doctor",),
            ("plan",),
            ("plan", "--json"),
            ("render", "--out", "rendered"),
        )
    ]
    assert "ok   secret HF_TOKEN: set in ~/.config/tao/.env (used by reason)" in outputs[1].out, outputs[
        1
    ].text
    assert "ok   secret WANDB_API_KEY: set in the environment (used by reason)" in outputs[1].out
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        apply = taoplan("apply", "--auto-approve", cwd=dproject, env=env)
    finally:
        done.set()
        watcher.join()
    assert apply.code == 0, apply.text
    outputs.append(apply)
    outputs += [
        taoplan(*args, cwd=dproject, env=env)
        for args in (("status",), ("status", "--json"), ("logs", "reason"))
    ]

    [job] = labelled(dproject.name)
    inspect = json.loads(docker("inspect", job))[0]
    assert inspect["Config"]["Image"] == TEST_IMAGE
    container_env = inspect["Config"]["Env"]
    assert f"HF_TOKEN={from_file}" in container_env  # from the file
    assert f"WANDB_API_KEY={from_env}" in container_env  # the environment wins over the file
    assert not any(overridden in e for e in container_env)
    exposed = json.dumps(
        [inspect["Args"], inspect["Config"]["Cmd"], inspect["Config"]["Labels"], inspect["Path"]]
    )
    outputs.append(taoplan("destroy", "--auto-approve", cwd=dproject, env=env))
    assert outputs[-1].code == 0, outputs[-1].text
    assert seen == []
    for canary in canaries:
        assert canary not in exposed
        for run in outputs:
            assert canary not in run.text, run.text
        for path in [*dproject.rglob("*"), dproject.parent / "registry.json"]:
            if path.is_file():
                assert canary.encode() not in path.read_bytes(), path
