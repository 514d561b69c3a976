"""What a chat holds between turns, and the request body of the next turn (pure).

A TAO server reads only the first user message, so each TAO turn is a request of its own, built by
``taoplan.traffic.request.prepare`` exactly as ``taoplan request`` builds it. A generic
OpenAI-compatible server (``server:``) gets the whole conversation: the system message, every earlier
user and assistant message, then the new user message, with ``stream: true``. The conversation changes
only when a turn ends (``answered``, ``failed``), in one assignment, so a cancelled turn leaves it
as it was, attachments included.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from taoplan.errors import RequestError
from taoplan.traffic.request import Prepared, prepare, rules_for
from taoplan.traffic.request.media import resolve_media
from taoplan.traffic.request.sampling import check_value

if TYPE_CHECKING:
    from taoplan.spec.references import RequestRefs
    from taoplan.traffic.request import Target


def command_flag(name: str) -> str:
    """How a field or option is named in chat messages: the REPL command that sets it."""
    return {"image": "/image", "video": "/video", "prompt": "the message"}.get(name, name)


@dataclass(frozen=True)
class Conversation:
    """The chat with one service: its rules, the sampling values, the system message, what is attached
    to the next message, and (generic servers only) the messages so far."""

    arch: str
    rules: RequestRefs  # the target's (traffic.request.rules_for): a generic server's type is an arch
    served_name: str | None  # a generic server's model name; None for a TAO service
    values: dict[str, Any]
    system: str | None = None
    images: tuple[str, ...] = ()
    videos: tuple[str, ...] = ()
    history: tuple[dict[str, Any], ...] = field(default=(), repr=False)

    @classmethod
    def start(
        cls, target: Target, rules: RequestRefs, values: dict[str, Any], system: str | None = None
    ) -> Conversation:
        return cls(target.arch, rules_for(target, rules), target.served_name, values, system or None)

    @property
    def multi_turn(self) -> bool:
        return self.served_name is not None

    @property
    def fields(self) -> dict[str, Any]:
        """The arch's sampling fields (references/request.yaml), by name."""
        return dict(self.rules.archs[self.arch].sampling)

    def attach(self, kind: str, ref: str) -> Conversation:
        """``/image`` or ``/video``: checked now (kind, scheme, type, size) by the rules of ``taoplan request``."""
        if not ref:
            raise RequestError(f"/{kind} needs a URL or a file path")
        resolve_media(kind, ref, self.arch, self.rules, command_flag)
        if kind == "image":
            return replace(self, images=(*self.images, ref))
        return replace(self, videos=(*self.videos, ref))

    def with_params(self, assignments: Sequence[str]) -> Conversation:
        """``/params name=value ...``: every value checked (type, range) before any is kept."""
        fields = self.fields
        values = dict(self.values)
        for item in assignments:
            name, sep, text = item.partition("=")
            if not sep or name not in fields:
                takes = " ".join(f"{n}=..." for n in fields)
                raise RequestError(f"/params {item}: {self.arch} takes {takes}")
            values[name] = parse_value(name, fields[name], text, self.arch)
        return replace(self, values=values)

    def with_values(self, values: dict[str, Any]) -> Conversation:
        """Sampling values answered at a prompt, checked again (type, range) before they are kept."""
        fields = self.fields
        for name, value in values.items():
            problem = check_value(name, fields[name], value, lambda n: n, self.arch)
            if problem:
                raise RequestError(problem)
        return replace(self, values={**self.values, **values})

    def with_system(self, text: str | None) -> Conversation:
        return replace(self, system=text or None)

    def turn(self, text: str) -> Prepared:
        """The request of the next turn; the conversation itself does not change."""
        prepared = prepare(
            self.arch,
            self.rules,
            prompt=text,
            system=self.system,
            images=self.images,
            videos=self.videos,
            sampling=self.values,
            flag=command_flag,
            model=self.served_name,
        )
        if not self.multi_turn:
            return prepared
        messages = list(prepared.body["messages"])
        user = messages.pop()
        body = {
            **prepared.body,
            "messages": [*messages, *self.history, user],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        content = {**prepared.content, "history": [_loggable(m) for m in self.history]}
        return Prepared(body, json.dumps(body).encode("utf-8"), content)

    def answered(self, prepared: Prepared, reply: str) -> Conversation:
        """The conversation after a turn that got its reply: attachments used, messages kept (servers)."""
        history = self.history
        if self.multi_turn:
            user = prepared.body["messages"][-1]
            history = (*history, user, {"role": "assistant", "content": reply})
        return replace(self, images=(), videos=(), history=history)

    def failed(self) -> Conversation:
        """After a turn the service refused or could not answer: its attachments are used up."""
        return replace(self, images=(), videos=())

    def reset(self) -> Conversation:
        return replace(self, images=(), videos=(), history=())


def parse_value(name: str, spec: Any, text: str, arch: str) -> Any:
    """A typed sampling value from text, refused when of the wrong type or out of range (never clamped)."""
    value: Any = text
    try:
        if spec.type == "int":
            value = int(text)
        elif spec.type == "float":
            value = float(text)
    except ValueError:
        raise RequestError(f"{name} must be {spec.type}, got {text!r}") from None
    problem = check_value(name, spec, value, lambda n: n, arch)
    if problem:
        raise RequestError(problem)
    return value


def _loggable(message: dict[str, Any]) -> dict[str, Any]:
    """An earlier message as the request log may keep it (with --log-content): its text, no media."""
    content = message.get("content")
    if isinstance(content, list):
        content = " ".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return {"role": message.get("role"), "content": content}
