"""PostgreSQL drivers side by side on the local test server (scripts/ensure-postgres.sh).

    python bench/pg_drivers.py [--n 5000]

Per driver: --n sequential `select 1` round trips, --n single-row inserts (autocommit), and one batch insert
of --n rows (executemany), into a temporary table. The password is $TAOPLAN_PG_PASSWORD or the file
ensure-postgres.sh keeps.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def dsn_and_password() -> tuple[str, str]:
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "ensure-postgres.sh")], check=True, stdout=subprocess.PIPE, text=True
    ).stdout
    dsn = out.strip().splitlines()[-1]
    password = os.environ.get("TAOPLAN_PG_PASSWORD")
    if not password:
        cache = Path(os.environ.get("TAOPLAN_CACHE", "/var/cache/taoplan"))
        password = (cache / "postgres-password").read_text().strip()
    return dsn, password


def bench_psycopg(dsn: str, password: str, n: int) -> dict[str, float]:
    import psycopg

    out = {}
    with psycopg.connect(dsn, password=password, autocommit=True) as conn:
        conn.execute("create temporary table t (id int, caller text, latency double precision)")
        started = time.perf_counter()
        for _ in range(n):
            conn.execute("select 1").fetchone()
        out["select1_us"] = (time.perf_counter() - started) / n * 1e6
        started = time.perf_counter()
        for i in range(n):
            conn.execute("insert into t values (%s, %s, %s)", (i, "app", 1.5))
        out["insert_us"] = (time.perf_counter() - started) / n * 1e6
        rows = [(i, "app", 1.5) for i in range(n)]
        started = time.perf_counter()
        with conn.cursor() as cur:
            cur.executemany("insert into t values (%s, %s, %s)", rows)
        out["batch_us_per_row"] = (time.perf_counter() - started) / n * 1e6
    return out


def bench_asyncpg(dsn: str, password: str, n: int) -> dict[str, float]:
    import asyncpg

    async def run() -> dict[str, float]:
        out = {}
        conn = await asyncpg.connect(dsn, password=password)
        try:
            await conn.execute("create temporary table t (id int, caller text, latency double precision)")
            started = time.perf_counter()
            for _ in range(n):
                await conn.fetchval("select 1")
            out["select1_us"] = (time.perf_counter() - started) / n * 1e6
            started = time.perf_counter()
            for i in range(n):
                await conn.execute("insert into t values ($1, $2, $3)", i, "app", 1.5)
            out["insert_us"] = (time.perf_counter() - started) / n * 1e6
            rows = [(i, "app", 1.5) for i in range(n)]
            started = time.perf_counter()
            await conn.executemany("insert into t values ($1, $2, $3)", rows)
            out["batch_us_per_row"] = (time.perf_counter() - started) / n * 1e6
        finally:
            await conn.close()
        return out

    return asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=5000)
    args = parser.parse_args(argv)
    dsn, password = dsn_and_password()
    print(
        f"{dsn}, n={args.n}\n\n| driver | version | select 1 µs | insert µs | batch insert µs/row |\n|---|---|---|---|---|"
    )
    for name, fn in (("psycopg", bench_psycopg), ("asyncpg", bench_asyncpg)):
        try:
            module = __import__(name)
        except ImportError:
            print(f"| {name} | not installed | - | - | - |")
            continue
        version = getattr(module, "__version__", "?")
        if name == "psycopg":
            version += f" ({module.pq.__impl__} libpq {module.pq.version()})"
        fig = fn(dsn, password, args.n)
        print(
            f"| {name} | {version} | {fig['select1_us']:.0f} | {fig['insert_us']:.0f} "
            f"| {fig['batch_us_per_row']:.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
