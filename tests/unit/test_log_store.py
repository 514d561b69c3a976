"""The request store on SQLite and on a real PostgreSQL (scripts/ensure-postgres.sh): rows, durability
after kill -9, retention in batches, keys kept as salted hashes, rpm windows shared between processes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from taoplan.errors import UnsafePathError
from taoplan.spec.config import Pricing
from taoplan.traffic.log import Key, KeyError_, RequestRow, RequestStore, new_request_id, open_store
from taoplan.traffic.log.keys import KEY_RE
from taoplan.traffic.stats import LiveJob, summarize
from tests.unit.logdb import database, postgres_dsn, settings

__all__ = ["database", "postgres_dsn"]  # fixtures

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("_log_child.py")


def row(at: float, **kw: Any) -> RequestRow:
    base = RequestRow(
        new_request_id(), at, "alice", "u1", "svc", "j1", "local-docker", "cosmos-rl", 1,
        "2026-01-01T00:00:00+00:00", "gateway", 200, None, 10.0, 8.0, 2.0, 5, 7, 12, 100, 200, None,
        None, None,
    )  # fmt: skip
    return replace(base, **kw)


# ------------------------------------------------------------------------------------------ databases


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / ".taoplan"


@pytest.fixture
def store(state_dir: Path, database: str) -> Iterator[RequestStore]:
    with open_store(state_dir, settings(database)) as opened:
        yield opened


def child(*args: str, stdin: bool = False) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(CHILD), *args],
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE if stdin else None,
        text=True,
        cwd=ROOT,
    )


# ------------------------------------------------------------------------------------------ rows


def test_rows_round_trip_every_field(store: RequestStore) -> None:
    now = time.time()
    first = row(now - 10, content={"prompt": "p", "n": [1, 2]}, defaulted="max_tokens,top_p", cost=0.5)
    second = row(now, end_user=None, status=0, transport_error="connection refused", wait_ms=3.0, attempts=4)
    store.write(first)
    store.write(second)
    assert store.rows() == [first, second]  # rows() sees this process's queued rows
    assert store.rows(since=now - 1) == [second]
    assert second.to_record()["status"] is None  # no HTTP answer reads as the old lines said it


def test_sqlite_file_is_private_wal_and_never_a_symlink(tmp_path: Path) -> None:
    state = tmp_path / ".taoplan"
    with open_store(state) as opened:
        opened.write(row(time.time()))
        opened.flush()
        for name in os.listdir(state):
            assert stat.S_IMODE(os.stat(state / name).st_mode) == 0o600, name
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    with sqlite3.connect(state / "gateway.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    other = tmp_path / "other"
    other.mkdir(mode=0o700)
    (other / "gateway.db").symlink_to(tmp_path / "elsewhere.db")
    with pytest.raises(UnsafePathError, match="symlink"):
        open_store(other)


def test_flush_makes_every_written_row_durable_before_a_kill(state_dir: Path, database: str) -> None:
    proc = child("flushed", str(state_dir), database, "500")
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "flushed"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with open_store(state_dir, settings(database)) as opened:
        assert {r.request_id for r in opened.rows()} == {f"c{i}" for i in range(500)}


def test_kill_9_under_load_loses_at_most_the_last_200_ms(state_dir: Path, database: str) -> None:
    proc = child("write", str(state_dir), database, "100000")
    written: dict[str, float] = {}
    try:
        assert proc.stdout is not None
        while len(written) < 2000:
            index, at = proc.stdout.readline().split()
            written[f"c{index}"] = float(at)
    finally:
        proc.send_signal(signal.SIGKILL)
        killed = time.time()
        proc.wait()
    with open_store(state_dir, settings(database)) as opened:
        stored = {r.request_id for r in opened.rows()}
    missing = [at for rid, at in written.items() if rid not in stored]
    assert all(at > killed - 0.2 for at in missing), (len(missing), killed - min(missing))
    assert len(stored) >= 1000


# ------------------------------------------------------------------------------------------ retention


def test_retention_deletes_old_rows_in_batches(store: RequestStore) -> None:
    store.auto_prune = False  # here the test prunes, batch by batch
    now = time.time()
    old = now - 31 * 86400
    for i in range(2500):
        store.write(row(old + i))
    fresh = [row(now - 60) for _ in range(10)]
    for r in fresh:
        store.write(r)
    store.flush()
    store.prune_batch = 1000
    assert store.retention == 30 * 86400  # the default gateway.retention
    assert store.prune_step(now) == 1000  # one statement deletes one batch
    assert len(store.rows()) == 1510
    assert store.prune(now) == 1500
    assert store.rows() == sorted(fresh, key=lambda r: r.request_id)


def test_the_writer_prunes_by_itself(state_dir: Path, database: str) -> None:
    config = settings(database, retention="1h")
    with open_store(state_dir, config) as first:
        for i in range(30):
            first.write(row(time.time() - 7200 + i))
        first.write(row(time.time()))
    with open_store(state_dir, config) as second:  # a new writer prunes on its first idle turn
        for _ in range(600):
            if len(second.rows()) == 1:
                break
            time.sleep(0.05)
        assert len(second.rows()) == 1


# ------------------------------------------------------------------------------------------ keys


def test_keys_are_stored_only_as_salted_hashes(store: RequestStore, state_dir: Path, database: str) -> None:
    token = store.keys.create("app", ["svc", "other"], 10, 5.0)
    assert KEY_RE.fullmatch(token)
    again = store.keys.create("app2", None, None, None)
    assert again != token
    key = store.keys.verify(token)
    assert key is not None and (key.name, key.services, key.rpm, key.budget) == (
        "app",
        ("svc", "other"),
        10,
        5.0,
    )
    assert store.keys.verify(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert store.keys.verify("tp-short") is None and store.keys.verify("") is None
    listed = store.keys.list()
    assert [k.name for k in listed] == ["app", "app2"] and token not in repr(listed)
    secret = token[len("tp-") + 8 :]  # what follows the (public) key id
    if database == "sqlite":
        store.flush()
        blob = b"".join((state_dir / name).read_bytes() for name in os.listdir(state_dir))
        assert b"keys" in blob and secret.encode() not in blob and token.encode() not in blob
    dump = json.dumps(store.query("SELECT * FROM keys"), default=lambda b: bytes(b).hex())
    assert secret not in dump and secret.encode().hex() not in dump


def test_bad_keys_input(store: RequestStore) -> None:
    store.keys.create("app", None, None, None)
    cases: list[tuple[tuple[Any, ...], str]] = [
        (("app", None, None, None), "exists"),
        (("bad name", None, None, None), "key name"),
        (("", None, None, None), "key name"),
        (("x", None, 0, None), "--rpm 0"),
        (("x", None, -3, None), "--rpm -3"),
        (("x", None, None, -1.0), "--budget"),
        (("x", [], None, None), "--services"),
    ]
    for args, message in cases:
        with pytest.raises(KeyError_, match=message):
            store.keys.create(*args)
    assert [k.name for k in store.keys.list()] == ["app"]


def test_revoke(store: RequestStore) -> None:
    token = store.keys.create("app", None, None, None)
    assert store.keys.verify(token) is not None
    assert store.keys.revoke("app") is True
    assert store.keys.verify(token) is None  # this process forgets it at once
    assert store.keys.revoke("app") is False
    store.keys.create("app", None, None, None)  # the name is free again


def test_rpm_is_counted_per_key_and_minute(store: RequestStore) -> None:
    store.keys.create("app", None, 3, None)
    store.keys.create("free", None, None, None)
    [app, free] = store.keys.list()
    minute = time.time() // 60 * 60  # windows older than the last minute are pruned
    assert [store.keys.admit(app, minute + 10) for _ in range(3)] == [None, None, None]
    assert store.keys.admit(app, minute + 10) == pytest.approx(50)
    assert store.keys.admit(app, minute + 59.5) == pytest.approx(0.5)
    assert store.keys.admit(app, minute + 60) is None  # a new minute
    assert all(store.keys.admit(free, minute + 10) is None for _ in range(100))


def test_two_processes_on_one_database_agree_on_rpm(
    store: RequestStore, state_dir: Path, database: str
) -> None:
    store.keys.create("shared", None, 50, None)
    now = str(time.time() // 60 * 60 + 1)
    procs = [
        child("admit", str(state_dir), database, "shared", "50", now, "40", stdin=True) for _ in range(2)
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    allowed = [int(proc.communicate()[0].strip()) for proc in procs]
    assert sum(allowed) == 50 and all(a >= 10 for a in allowed)


# ------------------------------------------------------------------------------------------ spent


def test_spent_uses_the_cost_model_of_stats(store: RequestStore) -> None:
    t0 = time.time() // 60 * 60 - 3600  # an hour ago (rows older than the retention are pruned)
    started = datetime.fromtimestamp(t0, timezone.utc).isoformat()
    no_tokens = {"prompt_tokens": None, "completion_tokens": None, "started_at": started}
    rows = [
        row(t0 + 10, caller="alice", latency_ms=300.0, num_gpus=2, **no_tokens),
        row(t0 + 20, caller="bob", latency_ms=700.0, num_gpus=2, **no_tokens),
        row(t0 + 30, caller="alice", job_id="j2", service="b", latency_ms=100.0, started_at=started,
            prompt_tokens=1000, completion_tokens=500),
        row(t0 + 40, caller="alice", job_id="j2", service="b", latency_ms=100.0, started_at=started, cost=0.25),
    ]  # fmt: skip
    for r in rows:
        store.write(r)
    store.pricing = {"local-docker": Pricing(gpu_hour=3.6, prompt_token=0.001, completion_token=0.002)}
    store.live = lambda: {"j1": LiveJob("j1", "svc", "local-docker", 2, started)}  # j2 is gone
    now = time.time()
    from taoplan.traffic.log.cost import caller_cost

    exact = caller_cost(store, "alice", now=now)
    records = [r.to_record() for r in store.rows()]
    result = summarize(
        records,
        live=store.live(),
        pricing={"local-docker": 3.6},
        now=datetime.fromtimestamp(now, timezone.utc),
    )
    uptime = sum(s.callers["alice"].cost or 0.0 for s in result if "alice" in s.callers)
    # j1 runs: an hour x 2 GPUs, alice's share 300/1000; j2 is gone: up to the end of its last request
    assert uptime == pytest.approx((now - t0) * 2 / 3600 * 3.6 * 0.3 + 40.1 / 3600 * 3.6)
    tokens = 1000 * 0.001 + 500 * 0.002 + 0.25  # priced tokens, and a row's own cost
    assert exact == pytest.approx(uptime + tokens)
    assert store.keys.spent(Key("alice", None, None, None)) == pytest.approx(exact, rel=1e-3)
    assert store.keys.spent(Key("nobody", None, None, None)) == 0.0


# ------------------------------------------------------------------------------------------ import


def test_an_old_requests_jsonl_is_imported_once(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state_dir.mkdir(mode=0o700)
    at = datetime.fromtimestamp(time.time() // 1 - 60, timezone.utc)  # within the retention
    first, second = at.isoformat(timespec="milliseconds"), (at + timedelta(seconds=1)).isoformat()
    lines = [
        {"format": 1, "time": first, "service": "data", "job_id": "j1",
         "caller": "carol", "status": 200, "latency_ms": 12.5, "wait_ms": 0, "attempts": 1,
         "request_bytes": 100, "response_bytes": 50, "via": "cli"},
        {"format": 1, "time": second, "service": "data", "job_id": "j1",
         "caller": "carol", "status": None, "latency_ms": 1.0, "transport_error": "refused",
         "request_bytes": 100, "response_bytes": 0, "via": "client"},
    ]  # fmt: skip
    old = state_dir / "requests.jsonl"
    old.write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"half a line\n')
    with open_store(state_dir) as opened:
        got = opened.rows()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Imported 2 request(s)" in err and "requests.jsonl.imported" in err
    assert not old.exists() and (state_dir / "requests.jsonl.imported").exists()
    assert [(r.caller, r.status, r.bytes_in, r.via) for r in got] == [
        ("carol", 200, 100, "cli"),
        ("carol", 0, 100, "client"),
    ]
    assert got[1].transport_error == "refused" and got[1].to_record()["status"] is None
    (state_dir / "requests.jsonl.imported").rename(old)  # the same lines again: nothing twice
    with open_store(state_dir, quiet=True) as opened:
        assert len(opened.rows()) == 2
    with open_store(state_dir) as opened:
        assert len(opened.rows()) == 2
    assert capsys.readouterr().err == ""


def test_a_dropped_postgresql_connection_is_reopened(store: RequestStore, database: str) -> None:
    if database == "sqlite":
        return  # a file has no connection to lose
    store.write(row(time.time()))
    store.flush()
    import psycopg

    dsn = database.split("&options=")[0].split("?options=")[0]
    pids = [store._conn.info.backend_pid, store._wconn.info.backend_pid]  # this store's sessions only
    with psycopg.connect(dsn, password=os.environ["TAOPLAN_PG_PASSWORD"], autocommit=True) as admin:
        for pid in pids:  # the server ends them, as a restart or a failover would
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    store.write(row(time.time()))
    assert len(store.rows()) == 2  # the writer and the reader both came back
    store.keys.create("after", None, 1, None)
    assert [k.name for k in store.keys.list()] == ["after"]
