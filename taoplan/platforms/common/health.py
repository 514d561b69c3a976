"""The readiness contract of a service's endpoint: what one reply means (pure), and one check.

Shared by the apply engine's wait loop, ``taoplan status`` and platforms that look at a pod's server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from taoplan.common import httpclients
from taoplan.spec.references import ReadinessRefs

READY, WAIT, FATAL = "ready", "wait", "fatal"


@dataclass(frozen=True)
class Verdict:
    kind: str  # ready | wait | fatal
    reason: str
    message: str = ""


def classify(status: int, body: Any, rules: ReadinessRefs) -> Verdict:
    """One readiness reply -> ready / wait / fatal. Understands the server's `reason` and the skill's `error.type`."""
    reason, message = "", ""
    if isinstance(body, dict):
        reason = str(body.get("reason") or "")
        message = str(body.get("message") or "")
        error = body.get("error")
        if isinstance(error, dict):
            reason = reason or str(error.get("type") or "")
            message = message or str(error.get("message") or "")
        if not reason and isinstance(body.get("status"), str) and status != rules.ready_status:
            reason = body["status"]
    if status == rules.ready_status:
        return Verdict(READY, "ready", message)
    if reason in rules.fatal_reasons:
        return Verdict(FATAL, reason, message)
    if status in rules.wait_statuses or reason in rules.wait_reasons:
        return Verdict(WAIT, reason or f"HTTP {status}", message)
    return Verdict(WAIT, reason or f"HTTP {status}", message)


CONNECTING = "connecting"
#: While a server does not answer, ask its platform whether the workload is still alive this often.
PROBE_INTERVAL = 1.5


def verdict_of(response: Any, rules: ReadinessRefs) -> Verdict:
    try:
        body = response.json()
    except ValueError:
        body = None
    return classify(response.status_code, body, rules)


def check(
    url: str, rules: ReadinessRefs, timeout: float = 2.0, headers: Mapping[str, str] | None = None
) -> Verdict:
    """One readiness request (for status and platforms); a server that does not answer is CONNECTING.

    ``headers``: the endpoint's own (``Endpoint.headers``, an Authorization header).
    """
    import httpx

    try:
        with httpclients.client(timeout=timeout) as http:
            response = http.get(url.rstrip("/") + rules.path, headers=dict(headers or {}))
    except httpx.HTTPError as exc:
        return Verdict(WAIT, CONNECTING, type(exc).__name__)
    return verdict_of(response, rules)
