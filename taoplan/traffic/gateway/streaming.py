"""``stream: true``: Server-Sent Events for the client, whatever the upstream does.

- A whole JSON answer (the TAO servers) becomes one ``chat.completion.chunk`` holding the message,
  with ``finish_reason`` and, when the upstream reported it, ``usage``; then ``data: [DONE]``.
- A streaming upstream (``text/event-stream``) is passed through byte for byte as chunks arrive;
  ``SSEScan`` watches the events on the way for ``usage`` (the last chunk carries it when the
  upstream reports it) without holding the stream back.
- A failure after the first byte can no longer change the status: it becomes an SSE error event.
"""

from __future__ import annotations

import time
from typing import Any

from taoplan.traffic.gateway.wire import DONE, JSONError, dumps, loads, sse


def whole_as_events(reply: dict[str, Any]) -> bytes:
    """One chunk with the whole message (and usage when reported), then [DONE]."""
    choices = []
    for i, choice in enumerate(reply.get("choices") or []):
        if not isinstance(choice, dict):
            continue
        found = choice.get("message")
        message: dict[str, Any] = found if isinstance(found, dict) else {}
        delta = {"role": message.get("role") or "assistant", "content": message.get("content")}
        if message.get("tool_calls"):
            delta["tool_calls"] = message["tool_calls"]
        choices.append(
            {
                "index": choice.get("index", i),
                "delta": delta,
                "finish_reason": choice.get("finish_reason") or "stop",
            }
        )
    chunk: dict[str, Any] = {
        "id": reply.get("id") or "chatcmpl-taoplan",
        "object": "chat.completion.chunk",
        "created": reply.get("created") or int(time.time()),
        "model": reply.get("model") or "",
        "choices": choices,
    }
    usage = reply.get("usage")
    if isinstance(usage, dict):
        chunk["usage"] = usage
    return sse(chunk) + DONE


def error_event(message: str, type: str, code: str) -> bytes:
    return sse({"error": {"message": message, "type": type, "code": code}})


class SSEScan:
    """Reads SSE events as bytes pass by: the usage object and whether [DONE] came."""

    def __init__(self) -> None:
        self.tail = b""
        self.usage: dict[str, Any] | None = None
        self.done = False
        self.events = 0

    def feed(self, piece: bytes) -> None:
        data = self.tail + piece
        *events, self.tail = data.replace(b"\r\n", b"\n").split(b"\n\n")
        if len(self.tail) > 1 << 20:  # a runaway event: stop looking, keep passing bytes through
            self.tail = b""
        for event in events:
            self.events += 1
            for line in event.split(b"\n"):
                if not line.startswith(b"data:"):
                    continue
                value = line[5:].strip()
                if value == b"[DONE]":
                    self.done = True
                elif b'"usage"' in value:
                    self._usage(value)

    def _usage(self, value: bytes) -> None:
        try:
            obj = loads(value)
        except JSONError:
            return
        if isinstance(obj, dict) and isinstance(obj.get("usage"), dict):
            self.usage = obj["usage"]


def tokens(usage: Any) -> tuple[int | None, int | None, int | None]:
    """(prompt, completion, total) tokens of an OpenAI usage object; None where not reported."""
    if not isinstance(usage, dict):
        return None, None, None

    def count(key: str) -> int | None:
        value = usage.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None

    prompt, completion, total = count("prompt_tokens"), count("completion_tokens"), count("total_tokens")
    if total is None and prompt is not None and completion is not None:
        total = prompt + completion
    return prompt, completion, total


def reply_json(raw: bytes) -> Any:
    try:
        return loads(raw) if raw else None
    except JSONError:
        return None


__all__ = ["SSEScan", "dumps", "error_event", "reply_json", "tokens", "whole_as_events"]
