"""`taoplan keys` and `taoplan stats` on the request store, run as a user runs them (no Docker)."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

from taoplan.traffic.log import RequestRow, new_request_id, open_store
from taoplan.traffic.log.keys import KEY_RE
from tests.conftest import Run, taoplan, write
from tests.unit.logdb import PASSWORD_VAR, database, postgres_dsn

__all__ = ["database", "postgres_dsn"]  # fixtures

SERVICES = """
version: 1
services:
  a: {network_arch: cosmos-rl, model_path: /models/a}
  b: {network_arch: cosmos-rl, model_path: /models/b}
pricing:
  local-docker: {gpu_hour: 3.6, prompt_token: 0.001}
"""


def make_project(folder: Path, database: str = "sqlite") -> Path:
    folder.mkdir(exist_ok=True)
    gateway = (
        ""
        if database == "sqlite"
        else f"gateway:\n  database: '{database}'\n  password_secret: {PASSWORD_VAR}\n"
    )
    write(folder, SERVICES + gateway)
    return folder


def fails(run: Run, message: str) -> None:
    assert run.code == 1, run.text
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], run.err
    assert "Traceback" not in run.text and run.out == ""


def test_keys_create_list_revoke(project: Path) -> None:
    folder = make_project(project)
    run = taoplan("keys", "create", "app", "--services", "a", "--rpm", "60", "--budget", "5", cwd=folder)
    assert run.code == 0, run.text
    token = run.out.strip()
    assert run.out == token + "\n" and KEY_RE.fullmatch(token)  # alone on its line
    assert run.err.count("\n") == 1 and token not in run.err and "shown only now" in run.err
    listed = taoplan("keys", "list", "--json", cwd=folder)
    assert listed.code == 0, listed.text
    assert json.loads(listed.out)["keys"] == [
        {"name": "app", "services": ["a"], "rpm": 60, "budget": 5.0, "spent": 0.0}
    ]
    table = taoplan("keys", "list", cwd=folder)
    assert table.out.splitlines()[1].split() == ["app", "a", "60", "5", "0.0000"]
    state = folder / ".taoplan"
    every_byte = b"".join((state / n).read_bytes() for n in os.listdir(state))
    assert token.encode() not in every_byte and token[11:].encode() not in every_byte
    assert token not in listed.out + table.out
    fails(taoplan("keys", "create", "app", cwd=folder), "a key named 'app' exists")
    fails(taoplan("keys", "create", "no good", cwd=folder), "key name 'no good'")
    fails(taoplan("keys", "create", "x", "--rpm", "0", cwd=folder), "--rpm 0: must be at least 1")
    fails(taoplan("keys", "create", "x", "--services", "a,zz", cwd=folder), "--services: zz not in")
    fails(taoplan("keys", "revoke", "nobody", cwd=folder), "no key named 'nobody' (keys: app)")
    run = taoplan("keys", "revoke", "app", cwd=folder)
    assert run.code == 0 and "Revoked key 'app'" in run.err
    assert "No keys" in taoplan("keys", "list", cwd=folder).out


def test_two_projects_on_one_database_share_keys(project: Path, database: str) -> None:
    """Two hosts with their own state dirs on one database see the same keys (SQLite: one file,
    named by gateway.database: sqlite:///PATH)."""
    if database == "sqlite":
        database = f"sqlite://{project / 'shared' / 'gateway.db'}"
    first, second = make_project(project / "one", database), make_project(project / "two", database)
    run = taoplan("keys", "create", "shared", "--rpm", "5", cwd=first)
    assert run.code == 0, run.text
    listed = json.loads(taoplan("keys", "list", "--json", cwd=second).out)["keys"]
    assert [k["name"] for k in listed] == ["shared"]
    assert taoplan("keys", "revoke", "shared", cwd=second).code == 0
    assert json.loads(taoplan("keys", "list", "--json", cwd=first).out)["keys"] == []


def test_stats_imports_an_old_log_once_and_groups_by_caller_and_end_user(project: Path) -> None:
    folder = make_project(project)
    state = folder / ".taoplan"
    state.mkdir(mode=0o700)
    now = time.time()
    at = datetime.fromtimestamp(now - 120, timezone.utc).isoformat()
    old = {"format": 1, "time": at, "service": "a", "job_id": "j1", "platform": "local-docker",
           "num_gpus": 1, "caller": "carol", "via": "cli", "status": 200, "latency_ms": 100.0,
           "wait_ms": 0, "attempts": 1, "request_bytes": 10, "response_bytes": 20}  # fmt: skip
    (state / "requests.jsonl").write_text(json.dumps(old) + "\n")
    run = taoplan("stats", "--by", "caller", "--json", cwd=folder)
    assert run.code == 0, run.text
    [said] = run.err.splitlines()
    assert said.startswith("Imported 1 request(s) from ") and "requests.jsonl.imported" in said
    assert [c["caller"] for c in json.loads(run.out)["callers"]] == ["carol"]
    assert not (state / "requests.jsonl").exists() and (state / "requests.jsonl.imported").exists()
    again = taoplan("stats", "--by", "caller", "--json", cwd=folder)
    assert again.err == "" and json.loads(again.out)["callers"][0]["requests"] == 1

    with open_store(state, quiet=True) as store:
        for user, tokens in (("u1", 100), ("u2", 300), (None, None)):
            store.write(gateway_row(now - 60, "app", user, tokens))
    report = json.loads(taoplan("stats", "--by", "end-user", "--json", cwd=folder).out)
    rows = {(e["caller"], e["end_user"]): e for e in report["end_users"]}
    assert set(rows) == {("app", "u1"), ("app", "u2"), ("app", "-"), ("carol", "-")}
    assert rows[("app", "u2")]["token_cost"] == 0.3 and rows[("app", "u1")]["token_cost"] == 0.1
    assert report["token_pricing"] == {"local-docker": {"prompt_token": 0.001}}
    callers = json.loads(taoplan("stats", "--by", "caller", "--json", cwd=folder).out)["callers"]
    app = next(c for c in callers if c["caller"] == "app")
    assert app["requests"] == 3 and app["token_cost"] == 0.4
    table = taoplan("stats", "--by", "end-user", cwd=folder)
    assert table.code == 0 and table.out.splitlines()[0].split()[:3] == ["CALLER", "END_USER", "REQUESTS"]
    assert "plus per-token prices" in table.out
    services = json.loads(taoplan("stats", "--json", cwd=folder).out)["services"]
    assert [s["service"] for s in services] == ["a"] and services[0]["requests"] == 4


def gateway_row(at: float, caller: str, user: str | None, tokens: int | None) -> RequestRow:
    return RequestRow(
        new_request_id(), at, caller, user, "a", "j1", "local-docker", "cosmos-rl", 1, None, "gateway", 200,
        None, 50.0, 45.0, None, tokens, None, tokens, 10, 20, None, None, None,
    )  # fmt: skip
