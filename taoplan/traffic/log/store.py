"""The request store: rows are queued by ``write`` and committed by one background thread.

The writer waits at most ``FLUSH_INTERVAL`` for the first queued row, then commits everything
queued in one transaction, so a row is in the database within about 100 ms of ``write`` and a
``kill -9`` loses at most that much. ``flush`` (the SIGTERM path) waits for the queue to be
committed. The same thread deletes rows older than the retention in batches of ``prune_batch``
rows, at most once a minute, between commits of new rows: never on the request path.
"""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taoplan.traffic.log.backend import Engine
from taoplan.traffic.log.rows import COLUMNS, RequestRow, from_jsonl, from_params, to_params

if TYPE_CHECKING:
    from taoplan.spec.config import Pricing
    from taoplan.traffic.log.keys import KeyStore
    from taoplan.traffic.stats import LiveJob

FLUSH_INTERVAL = 0.05  # seconds the writer waits for a first row; a commit follows at once
PRUNE_EVERY = 60.0
PRUNE_BATCH = 1000
OLD_LOG = "requests.jsonl"

#: Rows per INSERT statement: SQLite binds at most 32,766 values in one statement (PostgreSQL 65,535).
#: One multi-row statement, not executemany: executemany takes the GIL back after every row, and a
#: gateway's busy event loop keeps it up to 5 ms each time, so under load a 20,000-row batch took 11 s
#: instead of 0.07 s and the queue (the gateway's memory) grew without bound.
ROWS_PER_STATEMENT = 32766 // len(COLUMNS)
_ROW = "(" + ", ".join("?" for _ in COLUMNS) + ")"


def _insert_rows(count: int) -> str:
    return (
        f"INSERT INTO requests ({', '.join(COLUMNS)}) VALUES {', '.join([_ROW] * count)} "
        "ON CONFLICT (request_id) DO NOTHING"
    )


class _Flush:
    def __init__(self) -> None:
        self.done = threading.Event()


class RequestStore:
    """Thread-safe. ``keys`` is the key store on the same database."""

    def __init__(
        self,
        engine: Engine,
        *,
        retention: float | None = None,
        pricing: Mapping[str, Pricing] | None = None,
        live: Callable[[], Mapping[str, LiveJob]] | None = None,
    ) -> None:
        from taoplan.traffic.log.keys import KeyStore

        self.engine = engine
        self.retention = retention
        self.prune_batch = PRUNE_BATCH
        self.auto_prune = True  # the writer prunes, at most once a minute (tests turn it off)
        self.pricing: Mapping[str, Pricing] = pricing or {}
        self.live = live  # what still runs, for the uptime of live jobs in spent()
        self._lock = threading.Lock()  # guards self._conn (reads, keys, admission)
        self._conn = engine.connect()
        engine.create_schema(self._conn)
        self._wconn = engine.connect()  # the writer thread's own connection
        self._queue: queue.SimpleQueue[RequestRow | _Flush | None] = queue.SimpleQueue()
        self._closed = False
        self._last_prune = 0.0
        self._pruning = False
        self.keys: KeyStore = KeyStore(self)
        self._writer = threading.Thread(target=self._run, name="taoplan-request-log", daemon=True)
        self._writer.start()

    # ------------------------------------------------------------------------------- writing

    def write(self, row: RequestRow) -> None:
        """Queue one row; it is committed within about 100 ms. Never blocks on the database."""
        self._queue.put(row)

    def flush(self, timeout: float = 30.0) -> None:
        """Return once every row written before this call is committed."""
        if not self._writer.is_alive():
            return
        marker = _Flush()
        self._queue.put(marker)
        marker.done.wait(timeout)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.flush()
        self._queue.put(None)
        self._writer.join(30)
        with self._lock, contextlib.suppress(Exception):
            self._conn.close()

    def __enter__(self) -> RequestStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        try:
            while True:
                try:
                    first = self._queue.get(timeout=FLUSH_INTERVAL)
                except queue.Empty:
                    self._maybe_prune(self._wconn)
                    continue
                batch: list[RequestRow] = []
                markers: list[_Flush] = []
                stop = False
                item: RequestRow | _Flush | None = first
                while True:
                    if item is None:
                        stop = True
                    elif isinstance(item, _Flush):
                        markers.append(item)
                    else:
                        batch.append(item)
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                if batch:
                    self._commit(batch)
                for marker in markers:
                    marker.done.set()
                if stop:
                    return
                self._maybe_prune(self._wconn)
        finally:
            with contextlib.suppress(Exception):
                self._wconn.close()

    def _commit(self, batch: list[RequestRow]) -> None:
        try:
            params = [to_params(r) for r in batch]
        except (TypeError, ValueError) as exc:  # content that is not JSON: never stop the writer
            print(f"taoplan: request log: {len(batch)} row(s) not written: {exc}", file=sys.stderr)
            return
        for attempt in range(3):
            try:
                self._insert(self._wconn, params)
                return
            except Exception as exc:  # a busy or lost database: reconnect and retry, then say so
                if attempt == 2:
                    print(f"taoplan: request log: {len(batch)} row(s) not written: {exc}", file=sys.stderr)
                    return
                time.sleep(0.1 * (attempt + 1))
                self._wconn = self._reconnect(self._wconn)

    def _reconnect(self, conn: Any) -> Any:
        """A new connection for one that PostgreSQL closed (a restart, a failover); else the same."""
        if not self.engine.postgres or not (conn.closed or conn.broken):
            return conn
        try:
            fresh = self.engine.connect()
        except Exception:
            return conn
        with contextlib.suppress(Exception):
            conn.close()
        return fresh

    def _insert(self, conn: Any, params: list[tuple[Any, ...]]) -> None:
        chunks = [params[i : i + ROWS_PER_STATEMENT] for i in range(0, len(params), ROWS_PER_STATEMENT)]
        statements = [
            (self.engine.sql(_insert_rows(len(chunk))), [value for row in chunk for value in row])
            for chunk in chunks
        ]
        if self.engine.postgres:
            with conn.transaction(), conn.cursor() as cur:
                for statement, values in statements:
                    cur.execute(statement, values)
        else:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement, values in statements:
                    conn.execute(statement, values)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    # ------------------------------------------------------------------------------- retention

    def _maybe_prune(self, conn: Any) -> None:
        """One batch of the due pruning per turn of the writer, so new rows keep being committed."""
        now = time.time()
        if not self.auto_prune or self.retention is None:
            return
        if not self._pruning and now - self._last_prune < PRUNE_EVERY:
            return
        self._pruning = True
        try:
            if self._prune_batch(conn, now) < self.prune_batch:
                self._pruning, self._last_prune = False, now
        except Exception as exc:
            self._pruning, self._last_prune = False, now
            print(f"taoplan: request log: pruning failed: {exc}", file=sys.stderr)

    def prune_step(self, now: float | None = None) -> int:
        """Delete one batch of rows older than the retention; how many went."""
        if self.retention is None:
            return 0
        with self._lock:
            return self._prune_batch(self._conn, time.time() if now is None else now)

    def prune(self, now: float | None = None) -> int:
        """Delete every row older than the retention, batch by batch; how many went (tests, tools)."""
        if self.retention is None:
            return 0
        now = time.time() if now is None else now
        total = 0
        with self._lock:
            while True:
                gone = self._prune_batch(self._conn, now)
                total += gone
                if gone < self.prune_batch:
                    return total

    def _prune_batch(self, conn: Any, now: float) -> int:
        assert self.retention is not None
        cutoff = now - self.retention
        statements = [
            (
                "DELETE FROM requests WHERE request_id IN "
                "(SELECT request_id FROM requests WHERE time < ? LIMIT ?)",
                (cutoff, self.prune_batch),
            ),
            ("DELETE FROM rate WHERE minute < ?", (int(now // 60) - 1,)),
        ]
        counts = [conn.execute(self.engine.sql(sql), args).rowcount for sql, args in statements]
        return max(0, counts[0])

    # ------------------------------------------------------------------------------- reading

    def rows(self, since: float | None = None) -> list[RequestRow]:
        """Every row (newer than ``since``), oldest first; this process's queued rows included."""
        self.flush()
        return [from_params(r) for r in self.query(*rows_query(since))]

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """One read or write statement on the shared connection (autocommit), with ``?``
        placeholders; once more on a new connection when PostgreSQL dropped the old one."""
        with self._lock:
            try:
                cur = self._conn.execute(self.engine.sql(sql), args)
            except Exception:
                fresh = self._reconnect(self._conn)
                if fresh is self._conn:
                    raise
                self._conn = fresh  # once more on a new connection
                cur = self._conn.execute(self.engine.sql(sql), args)
            return [tuple(r) for r in cur.fetchall()] if cur.description else []

    # ------------------------------------------------------------------------------- import

    def import_jsonl(self, state_dir: Path) -> int | None:
        """Read <state dir>/requests.jsonl into the store once and rename it to .imported.

        Returns how many rows were imported, or None when there was nothing to import. Row ids are
        derived from the lines, so an import cut short and repeated adds nothing twice.
        """
        from taoplan.traffic.log.redact import read_jsonl

        path = state_dir / OLD_LOG
        if not path.is_file() or path.is_symlink():
            return None
        records, _bad = read_jsonl(path)
        rows = [r for r in (from_jsonl(rec, line) for rec, line in records) if r is not None]
        for start in range(0, len(rows), 1000):
            chunk = [to_params(r) for r in rows[start : start + 1000]]
            with self._lock:
                self._insert(self._conn, chunk)
        try:
            path.rename(path.with_name(OLD_LOG + ".imported"))
        except FileNotFoundError:
            return None  # another process imported it at the same time
        return len(rows)


def rows_query(since: float | None = None, service: str | None = None) -> tuple[str, tuple[Any, ...]]:
    """The SELECT of whole rows (newer than ``since``, of one ``service``), oldest first, with ``?``
    placeholders (``Engine.sql`` adapts them); ``from_params`` reads each result row."""
    sql = f"SELECT {', '.join(COLUMNS)} FROM requests"
    where: list[str] = []
    args: list[Any] = []
    if since is not None:
        where.append("time >= ?")
        args.append(since)
    if service is not None:
        where.append("service = ?")
        args.append(service)
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql + " ORDER BY time, request_id", tuple(args)
