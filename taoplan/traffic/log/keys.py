"""Gateway keys: ``tp-`` + 32 random URL-safe characters, shown once, stored only as a salted hash.

A key's first 8 characters after ``tp-`` are its id (not secret: 24 random characters remain), so
verifying a key reads one row. Rate limits are counted in the database, one row per key and
minute, so gateways sharing a database agree on them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from taoplan.errors import TaoplanError

if TYPE_CHECKING:
    from taoplan.traffic.log.store import RequestStore

PREFIX = "tp-"
KEY_RE = re.compile(r"tp-[A-Za-z0-9_-]{32}")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,62}")
ID_LEN = 8
ITERATIONS = 10_000  # keys are 192 random bits; the KDF is defence in depth, not the strength
CACHE_SECONDS = 5.0
CACHE_MAX = 10_000


class KeyError_(TaoplanError):  # noqa: N801 - not the builtin KeyError
    """A bad key name, limit or an unknown key: one line for the user."""


@dataclass(frozen=True)
class Key:
    name: str
    services: tuple[str, ...] | None  # None: every service
    rpm: int | None
    budget: float | None


def _hash(token: str, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", token.encode(), salt, ITERATIONS)


def _digest(token: str) -> bytes:
    """What the verify cache is keyed by, so the token itself is not kept around."""
    return hashlib.sha256(token.encode()).digest()


class KeyStore:
    def __init__(self, store: RequestStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._verified: dict[bytes, tuple[float, Key | None]] = {}
        self._spent: dict[str, tuple[float, float]] = {}

    def create(self, name: str, services: Sequence[str] | None, rpm: int | None, budget: float | None) -> str:
        """A new key for ``name``; the returned ``tp-...`` value is never stored or shown again."""
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise KeyError_(
                f"key name {name!r}: use letters, digits, '_', '.', '@' or '-' (at most 63, "
                "starting with a letter or digit)"
            )
        if rpm is not None and rpm <= 0:
            raise KeyError_(f"--rpm {rpm}: must be at least 1")
        if budget is not None and not budget >= 0:
            raise KeyError_(f"--budget {budget}: must be 0 or more")
        listed = None if services is None else tuple(dict.fromkeys(s.strip() for s in services if s.strip()))
        if listed == ():
            raise KeyError_("--services: name at least one service")
        if self.store.query("SELECT 1 FROM keys WHERE name = ?", (name,)):
            raise KeyError_(f"a key named {name!r} exists; revoke it first or choose another name")
        token = PREFIX + secrets.token_urlsafe(24)
        salt = secrets.token_bytes(16)
        try:
            self.store.query(
                "INSERT INTO keys (name, key_id, salt, hash, services, rpm, budget, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    token[len(PREFIX) : len(PREFIX) + ID_LEN],
                    salt,
                    _hash(token, salt),
                    None if listed is None else json.dumps(list(listed)),
                    rpm,
                    budget,
                    time.time(),
                ),
            )
        except Exception as exc:  # a second creator of the same name won the race
            if self.store.query("SELECT 1 FROM keys WHERE name = ?", (name,)):
                raise KeyError_(
                    f"a key named {name!r} exists; revoke it first or choose another name"
                ) from None
            raise TaoplanError(f"cannot create key {name!r}: {exc}") from None
        return token

    def list(self) -> list[Key]:
        found = self.store.query("SELECT name, services, rpm, budget FROM keys ORDER BY name")
        return [_key(*row) for row in found]

    def revoke(self, name: str) -> bool:
        """Remove the key; True if there was one. Other gateways stop accepting it within 5 s."""
        gone = bool(self.store.query("DELETE FROM keys WHERE name = ? RETURNING name", (name,)))
        with self._lock:
            self._verified.clear()
        return gone

    def verify(self, token: str) -> Key | None:
        """The key this bearer token is, or None. Cached for a few seconds, by a digest of the token."""
        now = time.monotonic()
        digest = _digest(token)
        with self._lock:
            hit = self._verified.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        key = self._lookup(token) if KEY_RE.fullmatch(token or "") else None
        with self._lock:
            if len(self._verified) >= CACHE_MAX:
                self._verified.clear()
            self._verified[digest] = (now + CACHE_SECONDS, key)
        return key

    def _lookup(self, token: str) -> Key | None:
        key_id = token[len(PREFIX) : len(PREFIX) + ID_LEN]
        found = self.store.query(
            "SELECT name, services, rpm, budget, salt, hash FROM keys WHERE key_id = ?", (key_id,)
        )
        if not found:
            return None
        name, services, rpm, budget, salt, stored = found[0]
        if not hmac.compare_digest(_hash(token, bytes(salt)), bytes(stored)):
            return None
        return _key(name, services, rpm, budget)

    def admit(self, key: Key, now: float) -> float | None:
        """Count one request of ``key`` in the current minute: None if allowed, else the seconds
        until the next minute starts (Retry-After). Counted in the database, so every gateway on
        it shares the count."""
        if key.rpm is None:
            return None
        minute = int(now // 60)
        found = self.store.query(
            "INSERT INTO rate (name, minute, n) VALUES (?, ?, 1) ON CONFLICT (name, minute) "
            "DO UPDATE SET n = rate.n + 1 RETURNING n",
            (key.name, minute),
        )
        if int(found[0][0]) <= key.rpm:
            return None
        return max(0.001, (minute + 1) * 60 - now)

    def spent(self, key: Key) -> float:
        """The cost attributed to this caller so far, as `taoplan stats` computes it (cached 5 s)."""
        now = time.monotonic()
        with self._lock:
            hit = self._spent.get(key.name)
        if hit is not None and hit[0] > now:
            return hit[1]
        from taoplan.traffic.log.cost import caller_cost

        value = caller_cost(self.store, key.name)
        with self._lock:
            self._spent[key.name] = (now + CACHE_SECONDS, value)
        return value


def _key(name: str, services: str | None, rpm: int | None, budget: float | None) -> Key:
    return Key(
        name,
        None if services is None else tuple(json.loads(services)),
        None if rpm is None else int(rpm),
        None if budget is None else float(budget),
    )
