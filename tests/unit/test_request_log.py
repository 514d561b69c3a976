"""The request log: what a line holds, what it never holds, and how it is read back."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from taoplan.spec.references import load_references
from taoplan.traffic.request import Answer, Exchange, Session, Target, prepare
from taoplan.traffic.requestlog import LOG_FILE, Redactor, RequestLog, build_record, read, resolve_caller

REFS = load_references()
TARGET = Target(
    "j1", "tao-dataservices", "data", "http://h:1", "2026-01-01T00:00:00+00:00", "local-docker", 2
)


def session(tmp_path: Path, *, log_content: bool = False) -> Session:
    return Session(REFS, TARGET, "http://h:1", RequestLog(tmp_path, REFS), "alice", "cli", log_content)


def exchange() -> Exchange:
    body = {"choices": [{"message": {"content": "a red dot"}}]}
    return Exchange(200, body, 12.5, 0.0, 1, 100, 50, None, Answer("ok", 200), 1767225600.0)


def test_caller_precedence() -> None:
    assert resolve_caller("cli-flag", {"TAOPLAN_CALLER": "env"}) == "cli-flag"
    assert resolve_caller(None, {"TAOPLAN_CALLER": "env"}) == "env"
    assert resolve_caller(None, {}) != ""  # the OS user


def test_record_without_content(tmp_path: Path) -> None:
    prepared = prepare("tao-dataservices", REFS.request, prompt="secret plans", accept_defaults=True)
    record = build_record(session(tmp_path), prepared, exchange())
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
    assert "content" not in record and "secret plans" not in json.dumps(record)


def test_log_is_private_append_only_and_redacted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mp = monkeypatch
    mp.setenv("HF_TOKEN", "hf-canary-0123456789")
    mp.setenv("MY_SERVICE_PASSWORD", "pw-canary-987")
    prompt = "use hf-canary-0123456789, pw-canary-987 and nvapi-abcdefghijklmnopqrstuvwxyz"
    prepared = prepare("tao-dataservices", REFS.request, prompt=prompt, accept_defaults=True)
    log = RequestLog(tmp_path / ".taoplan", REFS)
    s = Session(REFS, TARGET, "http://h:1", log, "alice", "cli", True)
    log.append(s, prepared, exchange())
    log.append(s, prepared, exchange())
    path = tmp_path / ".taoplan" / LOG_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    text = path.read_text()
    assert "canary" not in text and "nvapi-" not in text
    records, bad = read(path)
    assert len(records) == 2 and bad == 0
    assert records[0]["content"]["prompt"] == "use [REDACTED], [REDACTED] and [REDACTED]"
    assert records[0]["content"]["response"] == "a red dot"
    with path.open("a") as fh:
        fh.write('{"half a line\n')
    assert read(path)[1] == 1


def test_redactor_ignores_short_values() -> None:
    redactor = Redactor.from_environ(REFS, {"HF_TOKEN": "abc", "NGC_API_KEY": "ngc-long-value"})
    assert redactor.text("abc ngc-long-value") == "abc [REDACTED]"
