"""The request log and gateway keys: one store for every path (gateway, `taoplan request`, the
Python client), in SQLite (``<state dir>/gateway.db``, WAL, 0600) or PostgreSQL.

    store = open_store(state_dir, settings)   # settings: GatewaySettings (None: the defaults)
    store.write(row)                          # queued; committed within ~100 ms by a writer thread
    store.flush()                             # SIGTERM: everything written so far is committed
    key = store.keys.verify(token)            # Key | None
    retry_after = store.keys.admit(key, time.time())
    store.keys.spent(key)                     # cost attributed so far (stats' model, cached 5 s)

``store.pricing`` (name -> Pricing) and ``store.live`` (a callable returning job id -> LiveJob of
what still runs) feed ``spent``; set them, or pass them to ``open_store``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from taoplan.traffic.log.keys import Key, KeyError_, KeyStore
from taoplan.traffic.log.redact import Redactor, build_row, resolve_caller
from taoplan.traffic.log.rows import RequestRow, new_request_id
from taoplan.traffic.log.store import RequestStore

if TYPE_CHECKING:
    from taoplan.spec.config import Pricing
    from taoplan.spec.gateway_settings import GatewaySettings
    from taoplan.traffic.stats import LiveJob

__all__ = [
    "Key",
    "KeyError_",
    "KeyStore",
    "Redactor",
    "RequestRow",
    "RequestStore",
    "build_row",
    "new_request_id",
    "open_store",
    "resolve_caller",
]


def open_store(
    state_dir: Path,
    settings: GatewaySettings | None = None,
    environ: Mapping[str, str] = os.environ,
    *,
    pricing: Mapping[str, Pricing] | None = None,
    live: Callable[[], Mapping[str, LiveJob]] | None = None,
    quiet: bool = False,
) -> RequestStore:
    """The project's request store. On first open, an old ``requests.jsonl`` is imported and
    renamed to ``requests.jsonl.imported``, which is said on stderr in one line (unless quiet)."""
    from taoplan.spec.gateway_settings import GatewaySettings
    from taoplan.traffic.log.backend import engine_for

    settings = settings or GatewaySettings()
    engine = engine_for(state_dir, settings.database, settings.password_secret, environ)
    store = RequestStore(engine, retention=settings.retention_seconds, pricing=pricing, live=live)
    imported = store.import_jsonl(state_dir)
    if imported is not None and not quiet:
        print(
            f"Imported {imported} request(s) from {state_dir / 'requests.jsonl'} into {engine.where}; "
            "the old file is now requests.jsonl.imported",
            file=sys.stderr,
        )
    return store
