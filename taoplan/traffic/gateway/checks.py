"""The incoming chat body: parsed, shaped, then checked with the arch's rules before anything is sent.

The arch's rules are the ones ``taoplan request`` applies (references/request.yaml through
``taoplan.traffic.request``): fields meant for another arch and values out of range
(``sampling.cross_check``), media kinds, schemes, data: URIs and sizes (``media.resolve_media``),
media required, and the sampling fields a body must carry. Messages name the body field (JSON path).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from taoplan.errors import RequestError
from taoplan.traffic.gateway.errors import GatewayError, bad_request
from taoplan.traffic.gateway.wire import JSONError, dumps, loads
from taoplan.traffic.request.media import resolve_media
from taoplan.traffic.request.sampling import cross_check, describe_fields

if TYPE_CHECKING:
    from taoplan.spec.references import RequestRefs

#: Keys of a chat body that are not sampling fields: the gateway reads them itself.
STRUCTURAL = frozenset({"model", "messages", "stream", "stream_options", "user"})
ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
PART_TYPES = {"text": None, "image_url": "image", "video_url": "video"}
#: A chat body with more messages than this is refused (400); the TAO servers read one user message.
MAX_MESSAGES = 4096
MAX_PARTS = 1024


@dataclass
class Incoming:
    """A chat body that passed the shape checks; ``raw`` is what is sent upstream."""

    body: dict[str, Any]
    raw: bytes
    model: str
    stream: bool
    end_user: str | None
    defaulted: tuple[str, ...] = ()


def content_type_ok(value: bytes | None) -> bool:
    if value is None:
        return False
    kind = value.split(b";", 1)[0].strip().lower()
    return kind == b"application/json" or (kind.startswith(b"application/") and kind.endswith(b"+json"))


def parse(raw: bytes, user_header: str | None) -> Incoming:
    """Bytes -> a JSON object with a model and well-formed messages, or a 400 that says what is wrong."""
    if not raw:
        raise bad_request("the body is empty; send a JSON object", code="invalid_json")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad_request(f"the body is not UTF-8 (byte {exc.start})", code="invalid_encoding") from None
    try:
        body = loads(raw)
    except JSONError as exc:
        raise bad_request(f"the body is not valid JSON: {exc}", code="invalid_json") from None
    except RecursionError:
        raise bad_request("the body nests too deeply", code="invalid_json") from None
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object", code="invalid_json")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request(
            "model: required, a service name (GET /v1/models lists them)", code="missing_model", param="model"
        )
    _check_messages(body.get("messages"))
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise bad_request("stream: must be true or false", param="stream")
    options = body.get("stream_options")
    if options is not None and not (isinstance(options, dict) and set(options) <= {"include_usage"}):
        raise bad_request("stream_options: only {include_usage: bool} is understood", param="stream_options")
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise bad_request("user: must be a string", param="user")
    return Incoming(body, raw, model, stream, user or user_header or None)


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise bad_request("messages: required, a non-empty list", param="messages")
    if len(messages) > MAX_MESSAGES:
        raise bad_request(f"messages: {len(messages)} items; the limit is {MAX_MESSAGES}", param="messages")
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise bad_request(f"{where}: must be an object with role and content", param=where)
        role = message.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise bad_request(f"{where}.role: expected one of {', '.join(sorted(ROLES))}", param=where)
        content = message.get("content")
        if content is None or isinstance(content, str):
            continue
        if not isinstance(content, list) or len(content) > MAX_PARTS:
            raise bad_request(
                f"{where}.content: a string or a list of at most {MAX_PARTS} parts", param=where
            )
        for j, part in enumerate(content):
            _check_part(part, f"{where}.content[{j}]")


def _check_part(part: Any, where: str) -> None:
    kind = part.get("type") if isinstance(part, dict) else None
    if not isinstance(kind, str) or kind not in PART_TYPES:
        raise bad_request(f"{where}.type: expected one of {', '.join(PART_TYPES)}", param=where)
    if kind == "text":
        if not isinstance(part.get("text"), str):
            raise bad_request(f"{where}.text: a string is required", param=where)
        return
    holder = part.get(kind)
    if not isinstance(holder, dict) or not isinstance(holder.get("url"), str) or not holder["url"]:
        raise bad_request(f"{where}.{kind}.url: a URL string is required", param=where)


def media_items(body: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(kind, url, JSON path) of every image/video part, in order."""
    out = []
    for i, message in enumerate(body["messages"]):
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for j, part in enumerate(content):
            kind = PART_TYPES[part["type"]]
            if kind is not None:
                key = part["type"]
                out.append((kind, part[key]["url"], f"messages[{i}].content[{j}].{key}.url"))
    return out


def check(incoming: Incoming, arch: str, rules: RequestRefs, sampling: str) -> Incoming:
    """The arch's rules (400 naming the field); ``sampling: server-defaults`` fills missing fields."""
    if arch not in rules.archs:
        return incoming
    body = incoming.body
    given = {k: v for k, v in body.items() if k not in STRUCTURAL}
    problems = cross_check(arch, rules, given, _same)
    media = media_items(body)
    for kind, url, where in media:
        problems.extend(_media_problem(kind, url, where, arch, rules))
    if rules.archs[arch].requires_media and not media:
        problems.append(f"{arch} requires at least one image_url or video_url part in a user message")
    if problems:
        raise bad_request("; ".join(problems), code="invalid_for_arch")
    fields = rules.archs[arch].sampling
    missing = [name for name in fields if name not in given]
    if not missing:
        return incoming
    if sampling != "server-defaults":
        raise GatewayError(
            400,
            f"{arch} needs sampling values; missing: {describe_fields(arch, rules, missing, _same)} "
            "(send them, or set gateway.sampling: server-defaults to fill these defaults)",
            code="missing_sampling",
            param=missing[0],
        )
    filled = {**body, **{name: fields[name].default for name in missing}}
    return Incoming(filled, dumps(filled), incoming.model, incoming.stream, incoming.end_user, tuple(missing))


def to_server(incoming: Incoming, served_name: str | None) -> Incoming:
    """A generic server's body: the OpenAI body as sent (every message, no TAO rules), with ``model``
    set to the name the server answers to (the client named the service). TAO bodies are unchanged."""
    if served_name is None or incoming.body.get("model") == served_name:
        return incoming
    body = {**incoming.body, "model": served_name}
    return Incoming(body, dumps(body), incoming.model, incoming.stream, incoming.end_user, incoming.defaulted)


def _same(name: str) -> str:
    return name


def _media_problem(kind: str, url: str, where: str, arch: str, rules: RequestRefs) -> list[str]:
    if not url.lower().startswith("data:") and "://" not in url:
        return [
            f"{where}: give an http(s) URL or a data: URI (a local path cannot travel through the gateway)"
        ]
    try:
        resolve_media(kind, url, arch, rules, lambda _kind: where)
    except RequestError as exc:
        return [exc.message]
    return []
