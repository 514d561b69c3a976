"""The smoke request after readiness: one small real chat (spec/smoke.py builds the body), sent with
the shared httpx clients; the service counts as ready only when it is answered with 200.

A server that is still loading (503 with one of the chat retry types) is asked again for a few
seconds; any other answer fails the service with the server's own message, like model_load_failed.
What the request was (status, latency, tokens, bytes) goes to ``on_smoke`` as request-log fields
(caller ``taoplan-smoke``, via ``smoke``, no cost), which the CLI writes to the request store: the
engine does not import the traffic layer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from taoplan.common import httpclients
from taoplan.platforms.base import Platform
from taoplan.spec import payload
from taoplan.spec.desired import Desired
from taoplan.spec.references import RequestRefs
from taoplan.spec.smoke import smoke_body
from taoplan.store.state import ServiceRecord

CALLER = "taoplan-smoke"
VIA = "smoke"
RETRY_SECONDS = 10.0  # a server that says "still loading" right after readiness: how long to ask again


@dataclass(frozen=True)
class SmokeResult:
    ok: bool
    message: str  # the server's answer when it failed; the reply's first words when it worked
    elapsed: float
    row: Mapping[str, Any] = field(default_factory=dict)  # request-log fields


def server_message(status: int, text: str) -> str:
    """The server's own words: error.message / message / detail of a JSON body, else the text."""
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            kind = f"{error['type']}: " if error.get("type") else ""
            return f"HTTP {status}: {kind}{error['message']}"
        for key in ("message", "detail", "error"):
            if isinstance(body.get(key), str) and body[key]:
                return f"HTTP {status}: {body[key]}"
    first = " ".join(text.split())[:300]
    return f"HTTP {status}: {first or 'empty answer'}"


def _retry_type(text: str, rules: RequestRefs) -> bool:
    try:
        body = json.loads(text)
    except ValueError:
        return False
    error = body.get("error") if isinstance(body, dict) else None
    kind = error.get("type") if isinstance(error, dict) else None
    return kind in rules.chat.retry_types


async def send(
    url: str,
    body: Mapping[str, Any],
    rules: RequestRefs,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> SmokeResult:
    import httpx

    payload = json.dumps(body).encode()
    target = url.rstrip("/") + rules.chat.path
    started_at, started = time.time(), time.monotonic()
    deadline = started + RETRY_SECONDS
    send_headers = {"content-type": "application/json", **dict(headers or {})}
    status, text, error_type = 0, "", None
    async with httpclients.async_client(
        timeout=httpx.Timeout(timeout or rules.chat.timeout_seconds)
    ) as client:
        while True:
            try:
                reply = await client.post(target, content=payload, headers=send_headers)
                status, text = reply.status_code, reply.text
            except httpx.HTTPError as exc:
                status, text, error_type = 0, "", type(exc).__name__
                break
            if status == 503 and _retry_type(text, rules) and time.monotonic() < deadline:
                await asyncio.sleep(1.0)
                continue
            break
    elapsed = time.monotonic() - started
    usage: dict[str, Any] = {}
    answer = ""
    if status == 200:
        try:
            data = json.loads(text)
            usage = data.get("usage") or {}
            answer = str(((data.get("choices") or [{}])[0].get("message") or {}).get("content") or "")
        except (ValueError, AttributeError, IndexError):
            answer = text[:80]
    row = {
        "request_id": uuid.uuid4().hex,
        "time": started_at,
        "caller": CALLER,
        "via": VIA,
        "status": status,
        "error_type": error_type or (None if status == 200 else f"HTTP {status}"),
        "latency_ms": round(elapsed * 1000, 3),
        "prompt_tokens": usage.get("prompt_tokens"),
        "completion_tokens": usage.get("completion_tokens"),
        "total_tokens": usage.get("total_tokens"),
        "bytes_in": len(payload),
        "bytes_out": len(text.encode()),
        "cost": 0.0,  # a health check, not usage: excluded from cost
    }
    if status == 200:
        return SmokeResult(True, " ".join(answer.split())[:80], elapsed, row)
    if status == 0:
        return SmokeResult(False, f"no answer ({error_type})", elapsed, row)
    return SmokeResult(False, server_message(status, text), elapsed, row)


OnSmoke = Callable[[Mapping[str, Any]], None]


async def check(
    want: Desired,
    platform: Platform,
    record: ServiceRecord,
    rules: RequestRefs,
    phase: Callable[[str], None],
    on_smoke: OnSmoke | None,
) -> SmokeResult | None:
    """The smoke request of one service that just became ready; None when skipped (the note is in
    ``record.extra["smoke"]``). The outcome is noted there too; the request goes to ``on_smoke``."""
    built = smoke_body(
        want.spec.kind, rules, want.spec.readiness.smoke, served_name=payload.served_name(want.spec)
    )
    if built.body is None:
        record.extra = {**record.extra, "smoke": f"skipped: {built.note}"}
        return None
    phase("smoke request")
    found = await asyncio.to_thread(platform.endpoint, record)
    url = found.url or record.host_url
    if url is None:
        return SmokeResult(False, f"no endpoint for the smoke request ({found.detail})", 0.0)
    result = await send(url, built.body, rules, found.headers)
    outcome = f"answered in {result.elapsed:.2f}s" if result.ok else f"failed: {result.message}"
    record.extra = {**record.extra, "smoke": outcome}
    if on_smoke is not None:
        row = {
            **result.row,
            "service": record.name,
            "job_id": record.job_id,
            "platform": record.platform,
            "arch": record.network_arch,
            "num_gpus": want.spec.num_gpus,
            "started_at": record.started_at,
        }
        with contextlib.suppress(Exception):  # the log records the check; it never decides it
            on_smoke(row)
    return result
