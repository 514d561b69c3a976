"""The only network code: POST one chat request, retrying a service that is not ready yet.

``send`` and ``asend`` run the same loop (only the awaits differ) around ``Attempts``, which
holds the one retry policy: retry 202/503-not-ready replies and refused connections with
``backoff`` delays while ``wait`` seconds last; give up on anything else at once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from taoplan.common import httpclients
from taoplan.traffic.request.reply import RETRY, Answer, classify

if TYPE_CHECKING:
    from taoplan.spec.references import ChatRefs

OnWait = Callable[[Answer, float], None]
HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


@dataclass(frozen=True)
class Post:
    """One request to send: where, what, and how long to wait for a reply and for a loading service."""

    url: str  # the service's base URL
    payload: bytes
    chat: ChatRefs
    timeout: float
    wait: float
    on_wait: OnWait | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)  # the endpoint's (a secret)

    @property
    def endpoint(self) -> str:
        return self.url.rstrip("/") + self.chat.path


@dataclass
class Exchange:
    """One request as it happened on the wire (after any retries)."""

    status: int | None = None
    body: Any = None
    latency_ms: float = 0.0  # the final attempt
    wait_ms: float = 0.0  # time spent waiting on a service that was not ready
    attempts: int = 0
    request_bytes: int = 0
    response_bytes: int = 0
    transport_error: str | None = None
    answer: Answer | None = None
    started: float = field(default_factory=time.time)


def backoff(attempt: int) -> float:
    """Seconds before retry ``attempt`` (1-based): 0.5, 1, 2, 4, then 5 s."""
    return float(min(5.0, 0.5 * 2 ** (attempt - 1)))


def _decode(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return None


def request_timeout(seconds: float) -> Any:
    import httpx

    return httpx.Timeout(seconds, connect=min(10.0, seconds))


def _transport(exc: Exception, timeout: float) -> str:
    import httpx

    if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
        return f"no reply within {timeout:g}s (--timeout)"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class Attempts:
    """The retry policy of one request, shared by ``send`` and ``asend``: after each attempt,
    either stop (None) or wait this many seconds and try again (only while ``wait`` lasts)."""

    def __init__(self, post: Post):
        self.ex = Exchange(request_bytes=len(post.payload))
        self.post = post
        self.first = time.monotonic()
        self.ex.started = time.time()
        self.deadline = self.first + post.wait
        self.sent = self.first

    def start(self) -> None:
        self.ex.attempts += 1
        self.sent = time.monotonic()

    def _timing(self) -> None:
        self.ex.latency_ms = (time.monotonic() - self.sent) * 1000
        self.ex.wait_ms = (self.sent - self.first) * 1000 if self.ex.attempts > 1 else 0.0

    def replied(self, status: int, content: bytes) -> float | None:
        ex = self.ex
        self._timing()
        ex.status, ex.response_bytes, ex.body = status, len(content), _decode(content)
        ex.answer = classify(status, ex.body, self.post.chat)
        return self._again(ex.answer) if ex.answer.kind == RETRY else None

    def failed(self, exc: Exception) -> float | None:
        import httpx

        self._timing()
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
            delay = self._again(Answer(RETRY, 0, "connecting", type(exc).__name__))
            if delay is not None:
                return delay
        self.ex.transport_error = _transport(exc, self.post.timeout)
        return None

    def _again(self, answer: Answer) -> float | None:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            return None
        if self.post.on_wait is not None:
            self.post.on_wait(answer, remaining)
        return min(backoff(self.ex.attempts), remaining)


def send(post: Post) -> Exchange:
    """POST the chat request; retry a not-ready service (202/503, or refused connections) for ``wait`` s."""
    import httpx

    with httpclients.client(timeout=request_timeout(post.timeout)) as http:
        tries = Attempts(post)
        while True:
            tries.start()
            try:
                response = http.post(post.endpoint, content=post.payload, headers={**HEADERS, **post.headers})
            except httpx.TransportError as exc:
                delay = tries.failed(exc)
            else:
                delay = tries.replied(response.status_code, response.content)
            if delay is None:
                return tries.ex
            time.sleep(delay)


async def asend(post: Post) -> Exchange:
    """``send`` for asyncio callers."""
    import asyncio

    import httpx

    async with httpclients.async_client(timeout=request_timeout(post.timeout)) as http:
        tries = Attempts(post)
        while True:
            tries.start()
            try:
                response = await http.post(
                    post.endpoint, content=post.payload, headers={**HEADERS, **post.headers}
                )
            except httpx.TransportError as exc:
                delay = tries.failed(exc)
            else:
                delay = tries.replied(response.status_code, response.content)
            if delay is None:
                return tries.ex
            await asyncio.sleep(delay)
