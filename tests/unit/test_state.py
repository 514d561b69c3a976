"""State, registry and lock files: atomic, private, never through a symlink."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from taoplan.errors import LockHeldError, UnsafePathError
from taoplan.store.lock import StateLock
from taoplan.store.registry import Registry
from taoplan.store.state import ServiceRecord, State, StateStore


def record(name: str, job: str) -> ServiceRecord:
    return ServiceRecord(
        name=name,
        job_id=job,
        platform="local-docker",
        network_arch="cosmos-rl",
        spec={},
        spec_hash="h",
        image="i/x:1",
        image_rule="service.image",
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_state_writes_are_private_and_serial_numbered(tmp_path: Path) -> None:
    store = StateStore(tmp_path / ".taoplan")
    state = store.load()
    assert state.serial == 0
    state.services["a"] = record("a", "j1")
    store.write(state)
    store.write(state)
    again = store.load()
    assert again.serial == 2 and again.lineage == state.lineage
    assert mode(store.dir) == 0o700 and mode(store.path) == 0o600
    assert json.loads(store.path.read_text())["format_version"] == 1
    assert [p.name for p in store.dir.iterdir()] == ["state.json"]  # no temp file left behind


def test_symlinked_state_dir_and_file_are_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / ".taoplan").symlink_to(elsewhere)
    with pytest.raises(UnsafePathError, match="symlink"):
        StateStore(tmp_path / ".taoplan").write(State.new())
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (real / "state.json").symlink_to(tmp_path / "target.json")
    with pytest.raises(UnsafePathError, match="symlink"):
        StateStore(real).load()
    assert not (tmp_path / "target.json").exists()


def test_registry_follows_the_skill_rules_and_keeps_foreign_entries(tmp_path: Path) -> None:
    path = tmp_path / "reg.json"
    path.write_text(
        json.dumps(
            {
                "skill-job": {
                    "job_id": "skill-job",
                    "platform": "local-docker",
                    "started_at": "2026-01-01T00:00:00+00:00",
                },
                "latest": "skill-job",
            }
        )
    )
    reg = Registry(path)
    reg.add({"job_id": "a", "platform": "local-docker", "started_at": "2026-02-01T00:00:00+00:00"})
    reg.add({"job_id": "b", "platform": "local-docker", "started_at": "2026-03-01T00:00:00+00:00"})
    assert reg.read()["latest"] == "b"
    reg.remove("b")
    assert reg.read()["latest"] == "a"  # the remaining entry with the greatest started_at
    reg.remove("a")
    assert reg.read() == {
        "skill-job": {
            "job_id": "skill-job",
            "platform": "local-docker",
            "started_at": "2026-01-01T00:00:00+00:00",
        },
        "latest": "skill-job",
    }
    assert mode(path) == 0o600


def test_registry_refuses_a_planted_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / "reg.json").symlink_to(victim)
    with pytest.raises(UnsafePathError, match="symlink"):
        Registry(tmp_path / "reg.json").add({"job_id": "a", "started_at": "x"})
    assert victim.read_text() == "precious"


def test_registry_is_created_private(tmp_path: Path) -> None:
    Registry(tmp_path / "new.json").add({"job_id": "a", "started_at": "x"})
    assert mode(tmp_path / "new.json") == 0o600


HOLD = """
import sys, time
from pathlib import Path
from taoplan.store.lock import StateLock
with StateLock(Path(sys.argv[1]), 0, "apply"):
    print("held", flush=True)
    time.sleep(60)
"""


def test_second_writer_waits_then_names_the_holder(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LockHeldError) as info, StateLock(tmp_path, timeout=0.3):
            pass
        assert f"pid {holder.pid}" in info.value.message and "apply" in info.value.message
        assert info.value.exit_code == 5
    finally:
        holder.kill()
        holder.wait()
    warnings: list[str] = []
    with StateLock(tmp_path, warn=warnings.append):
        pass
    assert warnings and f"pid {holder.pid}" in warnings[0] and "gone" in warnings[0]
