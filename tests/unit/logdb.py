"""The databases the request-log tests run on: SQLite, and a fresh schema on the tests' PostgreSQL
(scripts/ensure-postgres.sh; scripts/test.sh passes its DSN in TAOPLAN_TEST_POSTGRES_DSN)."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from taoplan.spec.gateway_settings import GatewaySettings

ROOT = Path(__file__).resolve().parents[2]

PASSWORD_VAR = "TAOPLAN_PG_PASSWORD"


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """The tests' PostgreSQL: $TAOPLAN_TEST_POSTGRES_DSN (scripts/test.sh sets it), else started here
    by the same script; its password is $TAOPLAN_PG_PASSWORD or the file the script keeps."""
    dsn = os.environ.get("TAOPLAN_TEST_POSTGRES_DSN")
    if not dsn:
        run = subprocess.run(
            ["bash", str(ROOT / "scripts" / "ensure-postgres.sh")], capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr
        dsn = run.stdout.strip().splitlines()[-1]
    if not os.environ.get(PASSWORD_VAR):
        cache = Path(os.environ.get("TAOPLAN_CACHE", "/var/cache/taoplan"))
        os.environ[PASSWORD_VAR] = (cache / "postgres-password").read_text().strip()
    return dsn


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database: sqlite (gateway.db in the state dir), or a fresh schema on the test server
    (the password comes from the environment variable that gateway.password_secret names)."""
    if request.param == "sqlite":
        yield "sqlite"
        return
    import psycopg

    dsn = request.getfixturevalue("postgres_dsn")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    password = os.environ[PASSWORD_VAR]
    with psycopg.connect(dsn, password=password, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{dsn}{'&' if '?' in dsn else '?'}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(dsn, password=password, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def settings(database: str, **kw: Any) -> GatewaySettings:
    secret = None if database == "sqlite" else PASSWORD_VAR
    return GatewaySettings(database=database, password_secret=secret, **kw)
