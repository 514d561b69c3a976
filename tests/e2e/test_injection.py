"""Hostile values reach the TAO server byte-for-byte and never run as shell.

The test image's server writes what it received (argv, parsed job, predict flags, its pid) to
/tmp/taoplan-fake-received.json; the server process's own environment is read from /proc.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import taoplan
from tests.e2e.conftest import services_yaml

pytestmark = pytest.mark.docker

EVIL = "it's \"quoted\" $(touch /tmp/pwned-a) `touch /tmp/pwned-b`; touch /tmp/pwned-c && echo 'x' | cat\nnext line \\ end"
PATH_EVIL = "/ckpt/" + EVIL
DIR_EVIL = "/tmp/out dir/$(touch /tmp/pwned-d)"
KEY_EVIL = "base-2b'; touch /tmp/pwned-e; echo '"


def received(job_id: str) -> dict[str, object]:
    out = subprocess.run(
        ["docker", "exec", job_id, "cat", "/tmp/taoplan-fake-received.json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def process_env(job_id: str, pid: int) -> dict[str, str]:
    raw = subprocess.run(
        ["docker", "exec", job_id, "cat", f"/proc/{pid}/environ"], capture_output=True, check=True
    ).stdout
    return dict(item.decode().split("=", 1) for item in raw.split(b"\0") if item)


def pwned(job_id: str) -> list[str]:
    out = subprocess.run(
        ["docker", "exec", job_id, "sh", "-c", "ls /tmp | grep pwned || true"], capture_output=True, text=True
    )
    return out.stdout.split()


def test_hostile_paths_env_values_and_model_keys_arrive_byte_for_byte(dproject: Path) -> None:
    services = {
        "rl": {"network_arch": "cosmos-rl", "model_path": PATH_EVIL, "env": {"NASTY": EVIL}},
        "predict": {
            "network_arch": "cosmos-predict2.5",
            "model_path": PATH_EVIL,
            "output_dir": DIR_EVIL,
            "env": {"NASTY": EVIL},
        },
        "keyed": {
            "network_arch": "cosmos-predict2.5",
            "model_path": "hf_model://nvidia/P",
            "model_key": KEY_EVIL,
        },
    }
    (dproject / "services.yaml").write_text(services_yaml(dproject.name, services))
    apply = taoplan("apply", "--auto-approve", cwd=dproject)
    # the hostile model key is (rightly) unknown to the server: only that service fails
    assert apply.code == 3, apply.text
    assert "keyed: create failed: model_load_failed" in apply.err
    rows = {r["name"]: r for r in json.loads(taoplan("status", "--json", cwd=dproject).out)["services"]}
    assert rows["rl"]["ready"] and rows["predict"]["ready"]

    rl = received(str(rows["rl"]["job_id"]))
    assert rl["model_path"] == PATH_EVIL
    assert rl["job"]["specs"]["model_path"] == PATH_EVIL  # type: ignore[index]
    assert process_env(str(rows["rl"]["job_id"]), int(rl["pid"]))["NASTY"] == EVIL  # type: ignore[arg-type]

    predict = received(str(rows["predict"]["job_id"]))
    assert predict["predict"]["checkpoint_path"] == PATH_EVIL  # type: ignore[index]
    assert predict["predict"]["output_dir"] == DIR_EVIL  # type: ignore[index]
    assert process_env(str(rows["predict"]["job_id"]), int(predict["pid"]))["NASTY"] == EVIL  # type: ignore[arg-type]

    keyed = received(str(rows["keyed"]["job_id"]))
    assert keyed["predict"]["model"] == KEY_EVIL  # type: ignore[index]

    for row in rows.values():
        assert pwned(str(row["job_id"])) == [], "a value ran as shell"
    assert not list(Path("/tmp").glob("pwned-*"))
    assert taoplan("destroy", "--auto-approve", cwd=dproject).code == 0
