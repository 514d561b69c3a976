"""JSON and Server-Sent Events on the wire: orjson when installed (it is a dependency), else json."""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson

    def dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)

    def loads(raw: bytes) -> Any:
        return orjson.loads(raw)

    JSONError: tuple[type[Exception], ...] = (orjson.JSONDecodeError,)
except ImportError:  # pragma: no cover - orjson is a dependency

    def dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()

    def loads(raw: bytes) -> Any:
        return json.loads(raw)

    JSONError = (ValueError,)

JSON = b"application/json"
SSE = b"text/event-stream"
DONE = b"data: [DONE]\n\n"


def sse(obj: Any) -> bytes:
    return b"data: " + dumps(obj) + b"\n\n"
