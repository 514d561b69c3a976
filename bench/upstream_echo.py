"""A minimal, fast OpenAI-compatible echo upstream for the gateway benchmarks.

    python bench/upstream_echo.py --port 8199 [--host 127.0.0.1] [--ttft-ms 0] [--itl-ms 0] [--model echo]

Endpoints: POST /v1/chat/completions (whole answer, or ``stream: true`` as SSE: a role chunk, one chunk per
word of the echoed text, a finish chunk, a usage chunk with ``choices: []``, then ``data: [DONE]``),
GET /v1/models, GET /health (also at TAO's /api/v1/health/readiness, so a gateway sees it ready). The reply echoes the text of the last user message. No model, no weights.

Built on a bare asyncio Protocol with the httptools parser (and uvloop when importable), so that the
upstream costs as little CPU as possible and the benchmark measures the proxy in front of it.
``--ttft-ms`` delays the first answer byte (whole answers and the first SSE chunk alike); ``--itl-ms``
delays each further SSE chunk (a body field ``echo_itl_ms`` overrides it for one request, so that
a benchmark can tell a proxy that streams from one that buffers). HTTP/1.1 keep-alive and pipelining are supported; answers stay in order.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time

import httptools

try:
    import orjson

    def _dumps(obj: object) -> bytes:
        return orjson.dumps(obj)

    _loads = orjson.loads
except ImportError:  # pragma: no cover - orjson is optional

    def _dumps(obj: object) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()

    _loads = json.loads

_REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 405: b"Method Not Allowed", 413: b"Too Large"}
MAX_BODY = 64 * 1024 * 1024


def _text_of(body: dict) -> str:
    """The text of the last user message (string content, or the text parts of a content list)."""
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(
                    str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text"
                )
    return ""


def _error(status: int, message: str, kind: str = "invalid_request_error") -> tuple[int, bytes]:
    return status, _dumps({"error": {"message": message, "type": kind, "code": status}})


class Echo:
    """The answers, independent of the transport."""

    def __init__(self, model: str, ttft: float, itl: float) -> None:
        self.model = model
        self.ttft = ttft
        self.itl = itl
        self.counter = 0
        self.models = _dumps(
            {"object": "list", "data": [{"id": model, "object": "model", "created": 0, "owned_by": "echo"}]}
        )

    def parse(self, raw: bytes) -> tuple[dict | None, tuple[int, bytes] | None]:
        try:
            body = _loads(raw)
        except (ValueError, UnicodeDecodeError):
            return None, _error(400, "body is not valid JSON")
        if not isinstance(body, dict):
            return None, _error(400, "body must be a JSON object")
        if not isinstance(body.get("messages"), list):
            return None, _error(400, "messages: required, a list")
        return body, None

    def whole(self, body: dict) -> bytes:
        self.counter += 1
        text = _text_of(body)
        prompt = max(1, len(text.split()))
        return _dumps(
            {
                "id": f"chatcmpl-echo-{self.counter}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model") or self.model,
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": prompt, "completion_tokens": prompt, "total_tokens": 2 * prompt},
            }
        )

    def chunks(self, body: dict) -> list[bytes]:
        """SSE events (each ``data: ...\\n\\n``) of a streamed answer, [DONE] last."""
        self.counter += 1
        text = _text_of(body)
        words = text.split(" ") if text else []
        base = {
            "id": f"chatcmpl-echo-{self.counter}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model") or self.model,
        }
        out = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
        for i, word in enumerate(words):
            piece = word if i == 0 else " " + word
            out.append(
                {**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
            )
        out.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        prompt = max(1, len(text.split()))
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": len(words),
            "total_tokens": prompt + len(words),
        }
        out.append({**base, "choices": [], "usage": usage})
        return [b"data: " + _dumps(o) + b"\n\n" for o in out] + [b"data: [DONE]\n\n"]


def _head(status: int, ctype: bytes, length: int | None, keep_alive: bool) -> bytes:
    lines = [b"HTTP/1.1 %d %s" % (status, _REASONS.get(status, b"X")), b"content-type: " + ctype]
    if length is None:
        lines += [b"transfer-encoding: chunked", b"cache-control: no-cache"]
    else:
        lines.append(b"content-length: %d" % length)
    if not keep_alive:
        lines.append(b"connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


class EchoProtocol(asyncio.Protocol):
    def __init__(self, echo: Echo) -> None:
        self.echo = echo
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.body: list[bytes] = []
        self.size = 0
        self.tail: asyncio.Future | None = None  # the last delayed answer, so that answers stay in order

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.tail is not None:
            self.tail.cancel()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            status, payload = _error(400, "malformed HTTP request")
            self._write(_head(status, b"application/json", len(payload), False) + payload)
            if self.transport is not None:
                self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url, self.body, self.size = b"", [], 0

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size <= MAX_BODY:
            self.body.append(body)

    def on_message_complete(self) -> None:
        method = self.parser.get_method()
        keep = self.parser.should_keep_alive()
        path = self.url.split(b"?", 1)[0]
        if path == b"/v1/chat/completions":
            if method != b"POST":
                self._answer(*_error(405, "use POST"), keep)
            elif self.size > MAX_BODY:
                self._answer(*_error(413, "body too large"), keep)
            else:
                self._chat(b"".join(self.body), keep)
        elif path == b"/v1/models" and method == b"GET":
            self._answer(200, self.echo.models, keep)
        elif (
            path in (b"/health", b"/api/v1/health/readiness") and method == b"GET"
        ):  # TAO's readiness path too
            self._answer(200, b'{"status":"ok"}', keep)
        else:
            self._answer(*_error(404, f"no route {path.decode('latin-1')}", "not_found_error"), keep)

    # answers
    def _write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def _answer(self, status: int, payload: bytes, keep: bool) -> None:
        data = _head(status, b"application/json", len(payload), keep) + payload
        if self.tail is None:
            self._write(data)
            self._finish(keep)
        else:
            self._chain(self._later_whole(data, keep, 0.0))

    def _finish(self, keep: bool) -> None:
        if not keep and self.transport is not None:
            self.transport.close()

    def _chat(self, raw: bytes, keep: bool) -> None:
        body, problem = self.echo.parse(raw)
        if problem is not None:
            self._answer(*problem, keep)
            return
        if body.get("stream"):
            itl = body.get("echo_itl_ms")
            itl = float(itl) / 1000.0 if isinstance(itl, (int, float)) else self.echo.itl
            self._chain(self._stream(self.echo.chunks(body), keep, itl))
            return
        payload = self.echo.whole(body)
        data = _head(200, b"application/json", len(payload), keep) + payload
        if self.echo.ttft <= 0 and self.tail is None:
            self._write(data)
            self._finish(keep)
        else:
            self._chain(self._later_whole(data, keep, self.echo.ttft))

    def _chain(self, coro) -> None:
        previous = self.tail
        task = asyncio.ensure_future(self._after(previous, coro))
        self.tail = task
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Future) -> None:
        if self.tail is task:
            self.tail = None

    async def _after(self, previous: asyncio.Future | None, coro) -> None:
        if previous is not None:
            try:
                await previous
            except asyncio.CancelledError:
                coro.close()
                raise
        await coro

    async def _later_whole(self, data: bytes, keep: bool, delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        self._write(data)
        self._finish(keep)

    async def _stream(self, events: list[bytes], keep: bool, itl: float) -> None:
        self._write(_head(200, b"text/event-stream", None, keep))
        if self.echo.ttft > 0:
            await asyncio.sleep(self.echo.ttft)
        for i, event in enumerate(events):
            if i and itl > 0:
                await asyncio.sleep(itl)
            self._write(b"%x\r\n%s\r\n" % (len(event), event))
        self._write(b"0\r\n\r\n")
        self._finish(keep)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ttft-ms", type=float, default=0.0, help="delay before the first answer byte")
    parser.add_argument("--itl-ms", type=float, default=0.0, help="delay between streamed chunks")
    parser.add_argument("--model", default="echo")
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    echo = Echo(args.model, args.ttft_ms / 1000.0, args.itl_ms / 1000.0)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: EchoProtocol(echo), args.host, args.port, backlog=1024)
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        print(f"upstream_echo listening on http://{args.host}:{args.port}", flush=True)
        await stop.wait()
        server.close()

    try:
        asyncio.run(serve())
    except OSError as exc:
        print(f"upstream_echo: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
