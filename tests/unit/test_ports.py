"""Port reservations keep two taoplan processes from picking the same port at the same moment."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from taoplan.platforms.common import ports

HOLD = """
import sys, time
from taoplan.platforms.common import ports
print(ports.reserve(int(sys.argv[1])), flush=True)
time.sleep(60)
"""


def test_a_port_reserved_by_a_live_process_is_skipped_until_it_dies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TAOPLAN_PORT_RESERVATIONS", str(tmp_path / "reservations"))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, "18777"],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "True"
        assert ports.reserve(18777) is False
        assert ports.first_free(set(), start=18777, free=ports.reserve) == 18778
    finally:
        holder.kill()
        holder.wait()
    assert ports.reserve(18777) is True  # the holder is gone: its reservation is stale
    assert (tmp_path / "reservations").stat().st_mode & 0o777 == 0o700


RACE = """
import sys, time
from taoplan.platforms.common import ports
start = float(sys.argv[1])
time.sleep(max(0.0, start - time.time()))
print(ports.first_free(set(), start=18790, free=ports.reserve), flush=True)
time.sleep(5)
"""


def test_processes_reserving_at_the_same_moment_each_get_their_own_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stale claim left by a dead process must be taken over by exactly one of the racers."""
    reservations = tmp_path / "reservations"
    reservations.mkdir(mode=0o700)
    (reservations / "local-18790").write_text("")  # a claim its writer never finished
    monkeypatch.setenv("TAOPLAN_PORT_RESERVATIONS", str(reservations))
    start = time.time() + 1.5
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, str(start)],
            stdout=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        for _ in range(8)
    ]
    try:
        got = [int(r.stdout.readline()) for r in racers if r.stdout is not None]
    finally:
        for r in racers:
            r.kill()
            r.wait()
    assert sorted(got) == list(range(18790, 18798))
