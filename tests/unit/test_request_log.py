"""The request log: what a row holds, what it never holds, and how it is read back from the store."""

from __future__ import annotations

import json
import os
import stat
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from taoplan.spec.references import load_references
from taoplan.traffic.log import Redactor, RequestStore, build_row, open_store, resolve_caller
from taoplan.traffic.request import Answer, Exchange, Session, Target, prepare

REFS = load_references()
TARGET = Target(
    "j1", "tao-dataservices", "data", "http://h:1", "2026-01-01T00:00:00+00:00", "local-docker", 2
)


def session(store: RequestStore, *, log_content: bool = False) -> Session:
    return Session(REFS, TARGET, "http://h:1", store, "alice", "cli", log_content)


def log(s: Session, prepared: Any, ex: Exchange) -> None:
    """What session._finish does with an exchange."""
    s.log.write(Redactor.from_environ(REFS).row(build_row(s, prepared, ex)))


def exchange(started: float = 1767225600.0) -> Exchange:
    body = {"choices": [{"message": {"content": "a red dot"}}]}
    return Exchange(200, body, 12.5, 0.0, 1, 100, 50, None, Answer("ok", 200), started)


def test_caller_precedence() -> None:
    assert resolve_caller("cli-flag", {"TAOPLAN_CALLER": "env"}) == "cli-flag"
    assert resolve_caller(None, {"TAOPLAN_CALLER": "env"}) == "env"
    assert resolve_caller(None, {}) != ""  # the OS user


def test_record_without_content(tmp_path: Path) -> None:
    prepared = prepare("tao-dataservices", REFS.request, prompt="secret plans", accept_defaults=True)
    with open_store(tmp_path) as store:
        row = build_row(session(store), prepared, exchange())
    record = row.to_record()
    assert record["time"] == "2026-01-01T00:00:00.000+00:00"
    assert {k: record[k] for k in ("service", "job_id", "caller", "status", "latency_ms", "num_gpus")} == {
        "service": "data",
        "job_id": "j1",
        "caller": "alice",
        "status": 200,
        "latency_ms": 12.5,
        "num_gpus": 2,
    }
    assert record["request_bytes"] == 100 and record["response_bytes"] == 50
    assert row.content is None and "secret plans" not in json.dumps(asdict(row))


def test_log_is_private_append_only_and_redacted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mp = monkeypatch
    mp.setenv("HF_TOKEN", "hf-canary-0123456789")
    mp.setenv("MY_SERVICE_PASSWORD", "pw-canary-987")
    prompt = "use hf-canary-0123456789, pw-canary-987 and nvapi-abcdefghijklmnopqrstuvwxyz"
    prepared = prepare("tao-dataservices", REFS.request, prompt=prompt, accept_defaults=True)
    state = tmp_path / ".taoplan"
    with open_store(state) as store:
        s = Session(REFS, TARGET, "http://h:1", store, "alice", "cli", True)
        log(s, prepared, exchange(time.time()))  # recent: the writer prunes rows past the retention
        log(s, prepared, exchange(time.time()))  # recent: the writer prunes rows past the retention
        records = [r.to_record() for r in store.rows()]
    path = state / "gateway.db"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    data = b"".join((state / name).read_bytes() for name in os.listdir(state))
    assert b"canary" not in data and b"nvapi-" not in data
    assert len(records) == 2
    assert records[0]["content"]["prompt"] == "use [REDACTED], [REDACTED] and [REDACTED]"
    assert records[0]["content"]["response"] == "a red dot"


def test_redactor_ignores_short_values() -> None:
    redactor = Redactor.from_environ(REFS, {"HF_TOKEN": "abc", "NGC_API_KEY": "ngc-long-value"})
    assert redactor.text("abc ngc-long-value") == "abc [REDACTED]"


def test_gateway_keys_are_redacted_wherever_they_appear() -> None:
    redactor = Redactor.from_environ(REFS, {})
    assert redactor.text("Bearer tp-" + "aZ_-" * 8 + " done") == "Bearer [REDACTED] done"
