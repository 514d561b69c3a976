"""One chat exchange that streams where the server streams, and that Ctrl+C can cancel (``taoplan chat``).

A body with ``stream: true`` to a server that answers ``text/event-stream`` is read event by event:
each piece of text goes to ``on_text`` as it comes, and the events are folded into the one
chat-completions body (content, finish_reason, usage) that the rest of the request path judges and
logs. Any other answer (the TAO servers never stream) is read whole, as ``send`` reads it. There is no
retry here: a turn of a conversation either gets its answer or tells the user why not.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from taoplan.common import httpclients
from taoplan.traffic.request.reply import FAILED, Answer
from taoplan.traffic.request.send import HEADERS, Attempts, Exchange, Post, request_timeout

OnText = Callable[[str], None]
STREAM_HEADERS = {**HEADERS, "Accept": "text/event-stream, application/json"}
CANCELLED = "cancelled by the user (Ctrl+C)"


class Interrupted(KeyboardInterrupt):
    """Ctrl+C during an exchange; ``exchange`` holds what was measured, so the request is still logged."""

    def __init__(self, exchange: Exchange):
        super().__init__()
        self.exchange = exchange


class Events:
    """Server-sent chat-completion chunks folded into one reply body."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.model: str | None = None
        self.error: dict[str, Any] | None = None
        self.done = False

    def feed(self, line: str, on_text: OnText) -> None:
        if not line.startswith("data:"):
            return
        data = line[5:].strip()
        if data == "[DONE]":
            self.done = True
            return
        try:
            chunk = json.loads(data)
        except ValueError:
            return
        if not isinstance(chunk, dict):
            return
        if isinstance(chunk.get("error"), dict):
            self.error = chunk["error"]
            return
        self.model = self.model or chunk.get("model")
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            piece = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(piece, str) and piece:
                self.text.append(piece)
                on_text(piece)
            if isinstance(choice, dict) and choice.get("finish_reason"):
                self.finish_reason = str(choice["finish_reason"])

    def body(self) -> bytes:
        message = {"role": "assistant", "content": "".join(self.text)}
        reply: dict[str, Any] = {
            "object": "chat.completion",
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason}],
        }
        if self.usage is not None:
            reply["usage"] = self.usage
        return json.dumps(reply).encode("utf-8")


def stream(post: Post, on_text: OnText) -> Exchange:
    """POST once; stream an event-stream answer into ``on_text``; raise ``Interrupted`` on Ctrl+C."""
    import httpx

    tries = Attempts(post)
    tries.start()
    try:
        with httpclients.client(timeout=request_timeout(post.timeout)) as http:
            headers = {**STREAM_HEADERS, **post.headers}
            with http.stream("POST", post.endpoint, content=post.payload, headers=headers) as response:
                kind = response.headers.get("content-type", "")
                if response.status_code != 200 or not kind.startswith("text/event-stream"):
                    tries.replied(response.status_code, response.read())
                    return tries.ex
                events = Events()
                for line in response.iter_lines():
                    events.feed(line, on_text)
                    if events.done or events.error is not None:
                        break
                tries.replied(200, events.body())
                tries.ex.response_bytes = response.num_bytes_downloaded
                if events.error is not None:
                    error = events.error
                    tries.ex.answer = Answer(
                        FAILED, 200, str(error.get("type") or "stream_error"), str(error.get("message") or "")
                    )
                elif not events.done:
                    tries.ex.transport_error = "the stream ended before data: [DONE]"
    except httpx.TransportError as exc:
        tries.failed(exc)
    except KeyboardInterrupt:
        tries.failed(RuntimeError(CANCELLED))
        tries.ex.transport_error = CANCELLED
        raise Interrupted(tries.ex) from None
    return tries.ex
