"""Who is calling, and may they: ``auth: keys`` (Bearer keys of ``taoplan keys``) or ``auth: none``.

- keys: no or a wrong key -> 401; a service the key may not use -> 403; over its rpm -> 429 with
  Retry-After; over its budget -> 429 ``budget_exceeded``. The caller is the key's name.
- none (loopback only, enforced by the settings and the CLI): the caller is the OS user.

Key checks are the store's (``KeyStore.verify/admit/spent``: salted hashes, shared rate counters);
this module only asks them in order and words the answers. A key's value is never kept or logged.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from taoplan.traffic.gateway.errors import GatewayError

if TYPE_CHECKING:
    from taoplan.traffic.log import Key

#: How long a caller's spend is trusted before the store is asked again (budget checks).
SPENT_TTL = 1.0


def _unauthorized(message: str) -> GatewayError:
    return GatewayError(
        401, message, type="authentication_error", code="invalid_api_key",
        headers=[(b"www-authenticate", b'Bearer realm="taoplan"')],
    )  # fmt: skip


class Auth:
    def __init__(self, mode: str, keys: Any, os_user: str) -> None:
        self.mode = mode
        self.keys = keys  # KeyStore, or None with auth: none
        self.os_user = os_user
        self._spent: dict[str, tuple[float, float]] = {}

    def caller(self, authorization: bytes | None) -> tuple[str, Key | None]:
        """(caller name, key) for the request's Authorization header; 401 when keys are required."""
        if self.mode == "none":
            return self.os_user, None
        if not authorization:
            raise _unauthorized("no API key: send Authorization: Bearer <key> (taoplan keys create NAME)")
        scheme, _, token = authorization.decode("latin-1").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized("the Authorization header must be: Bearer <key>")
        key = self.keys.verify(token)
        if key is None:
            raise _unauthorized("the API key is not valid (revoked, mistyped, or of another project)")
        return key.name, key

    def allow_service(self, key: Key | None, service: str) -> None:
        if key is None or key.services is None or service in key.services:
            return
        allowed = ", ".join(key.services) or "none"
        raise GatewayError(
            403,
            f"key {key.name!r} may not use service {service!r} (it may use: {allowed})",
            type="permission_denied",
            code="service_not_allowed",
        )

    async def admit(self, key: Key | None, now: float | None = None) -> None:
        """Budget first (a spent key is refused before it is counted), then the rpm window."""
        if key is None:
            return
        if key.budget is not None:
            spent = await self.spent(key)
            if spent >= key.budget:
                raise GatewayError(
                    429,
                    f"key {key.name!r} has spent {spent:.4g} of its budget {key.budget:g}",
                    type="insufficient_quota",
                    code="budget_exceeded",
                )
        if key.rpm is not None:
            retry = self.keys.admit(key, time.time() if now is None else now)
            if retry is not None:
                seconds = str(max(1, int(retry + 0.999))).encode()
                raise GatewayError(
                    429,
                    f"key {key.name!r} is over its limit of {key.rpm} requests per minute",
                    type="rate_limit_error",
                    code="rate_limit_exceeded",
                    headers=[(b"retry-after", seconds)],
                )

    async def spent(self, key: Key) -> float:
        """The store's figure (it flushes and aggregates: off the event loop), trusted SPENT_TTL s."""
        now = time.monotonic()
        cached = self._spent.get(key.name)
        if cached is not None and now - cached[0] < SPENT_TTL:
            return cached[1]
        value = float(await asyncio.to_thread(self.keys.spent, key))
        self._spent[key.name] = (now, value)
        return value

    def charged(self, caller: str, cost: float | None) -> None:
        """A request's cost counts at once against the cached spend (the store catches up)."""
        if cost and caller in self._spent:
            at, value = self._spent[caller]
            self._spent[caller] = (at, value + cost)
