"""The two database engines behind the request log: SQLite (one file, WAL) and PostgreSQL.

Both speak the same SQL here; statements are written with ``?`` placeholders and ``sql()`` turns
them into psycopg's ``%s``. Each connection is used by one thread at a time (the store holds a lock
per connection). psycopg is imported only when a PostgreSQL database is configured.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taoplan.common import fsutil
from taoplan.errors import TaoplanError
from taoplan.traffic.log.rows import COLUMNS

DB_FILE = "gateway.db"
SCHEMA_VERSION = 1

_TYPES = {
    "time": "REAL NOT NULL",
    "num_gpus": "INTEGER",
    "status": "INTEGER NOT NULL",
    "latency_ms": "REAL NOT NULL",
    "upstream_ms": "REAL",
    "ttft_ms": "REAL",
    "prompt_tokens": "INTEGER",
    "completion_tokens": "INTEGER",
    "total_tokens": "INTEGER",
    "bytes_in": "INTEGER NOT NULL",
    "bytes_out": "INTEGER NOT NULL",
    "cost": "REAL",
    "wait_ms": "REAL NOT NULL",
    "attempts": "INTEGER NOT NULL",
}


def _ddl(postgres: bool) -> list[str]:
    def kind(column: str) -> str:
        if column == "request_id":
            return "TEXT PRIMARY KEY"
        text = _TYPES.get(column, "TEXT")
        if postgres:
            text = text.replace("REAL", "DOUBLE PRECISION").replace("INTEGER", "BIGINT")
        return text

    blob = "BYTEA" if postgres else "BLOB"
    real = "DOUBLE PRECISION" if postgres else "REAL"
    return [
        "CREATE TABLE IF NOT EXISTS requests (" + ", ".join(f"{c} {kind(c)}" for c in COLUMNS) + ")",
        "CREATE INDEX IF NOT EXISTS requests_time ON requests (time)",
        "CREATE INDEX IF NOT EXISTS requests_caller ON requests (caller, time)",
        f"CREATE TABLE IF NOT EXISTS keys (name TEXT PRIMARY KEY, key_id TEXT NOT NULL UNIQUE, "
        f"salt {blob} NOT NULL, hash {blob} NOT NULL, services TEXT, rpm INTEGER, budget {real}, "
        f"created {real} NOT NULL)",
        "CREATE TABLE IF NOT EXISTS rate (name TEXT NOT NULL, minute BIGINT NOT NULL, "
        "n INTEGER NOT NULL, PRIMARY KEY (name, minute))",
        "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ]


@dataclass(frozen=True)
class Engine:
    """How to open connections to one database, and its SQL dialect."""

    kind: str  # "sqlite" | "postgresql"
    where: str  # the file, or the DSN without password (for messages)
    path: Path | None = None
    dsn: str | None = None
    password: str | None = None

    @property
    def postgres(self) -> bool:
        return self.kind == "postgresql"

    def sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self.postgres else statement

    def connect(self) -> Any:
        if self.postgres:
            return self._connect_postgres()
        assert self.path is not None
        # autocommit off is managed by hand: isolation_level=None and explicit BEGIN
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives the process being killed (not a power cut)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def _connect_postgres(self) -> Any:
        try:
            import psycopg
        except ImportError:  # pragma: no cover - a dependency of taoplan
            raise TaoplanError("gateway.database is PostgreSQL but psycopg is not installed") from None
        try:
            return psycopg.connect(
                self.dsn or "", password=self.password, autocommit=True, connect_timeout=10
            )
        except psycopg.OperationalError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise TaoplanError(f"cannot connect to {self.where}: {first}") from None

    def create_schema(self, conn: Any) -> None:
        if self.postgres:
            with conn.transaction():
                # one creator at a time when several gateways start together
                conn.execute("SELECT pg_advisory_xact_lock(4242010)")
                for statement in _ddl(True):
                    conn.execute(statement)
        else:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _ddl(False):
                    conn.execute(statement)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise


def engine_for(
    state_dir: Path, database: str, password_secret: str | None, environ: Mapping[str, str]
) -> Engine:
    """The engine a ``gateway.database`` setting names (password from the named environment variable)."""
    if database == "sqlite" or database.startswith("sqlite:///"):
        if database == "sqlite":
            fsutil.ensure_private_dir(state_dir)
            path = state_dir / DB_FILE
        else:
            path = Path(database[len("sqlite:///") - 1 :])
            fsutil.ensure_private_dir(path.parent)
        _private_file(path)
        return Engine("sqlite", str(path), path=path)
    password = None
    if password_secret:
        password = environ.get(password_secret)
        if password is None:
            raise TaoplanError(f"gateway.password_secret: {password_secret} is not set in the environment")
    where = database.split("?", 1)[0]
    return Engine("postgresql", where, dsn=database, password=password)


def _private_file(path: Path) -> None:
    """Create the database file 0600 before SQLite does, never through a symlink."""
    for name in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        fsutil.refuse_symlink(name)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise TaoplanError(f"{path}: cannot open the request log: {exc.strerror}") from None
    try:
        os.fchmod(fd, 0o600)  # SQLite gives its -wal and -shm files the database file's mode
    finally:
        os.close(fd)
