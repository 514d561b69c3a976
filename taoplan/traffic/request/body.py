"""The OpenAI chat-completions body, built only after every rule that can be checked before sending.

``prepare`` gathers all problems it can (wrong-arch fields, bad values, bad media) into one error,
so a user fixes a command once rather than one flag at a time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from taoplan.errors import RequestError
from taoplan.traffic.request.media import MediaItem, data_uri_summary, resolve_media, safe_url
from taoplan.traffic.request.sampling import Ask, cross_check, flag_name, resolve_sampling

if TYPE_CHECKING:
    from taoplan.spec.references import RequestRefs
    from taoplan.traffic.request.routing import Target


@dataclass(frozen=True)
class Prepared:
    """A request body ready to send, and what may be logged about it with --log-content."""

    body: dict[str, Any]
    payload: bytes
    content: dict[str, Any]


def build_body(
    arch: str,
    prompt: str,
    system: str | None,
    media: Sequence[MediaItem],
    sampling: Mapping[str, Any],
    model: str | None = None,
) -> dict[str, Any]:
    """OpenAI chat completions: an optional system message, then the one user message the server reads.
    ``model``: what the body names (a generic server's served_name); default: the arch."""
    items: list[dict[str, Any]] = [{"type": "text", "text": prompt}]
    for item in media:
        key = f"{item.kind}_url"
        items.append({"type": key, key: {"url": item.url}})
    messages: list[dict[str, Any]] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": items})
    return {"model": model or arch, "messages": messages, **sampling}


def prepare(
    arch: str,
    rules: RequestRefs,
    *,
    prompt: str,
    system: str | None = None,
    images: Sequence[str] = (),
    videos: Sequence[str] = (),
    sampling: Mapping[str, Any] | None = None,
    accept_defaults: bool = False,
    ask: Ask | None = None,
    flag: Callable[[str], str] = flag_name,
    model: str | None = None,
) -> Prepared:
    """Check everything that can be checked before anything is sent, then build the body."""
    if arch not in rules.archs:
        raise RequestError(f"no request rules for arch {arch!r} in references/request.yaml")
    if not isinstance(prompt, str) or not prompt.strip():
        raise RequestError(f"a prompt is required ({flag('prompt')})")
    given = {k: v for k, v in (sampling or {}).items() if v is not None}
    problems = cross_check(arch, rules, given, flag)
    media = [resolve_media("image", ref, arch, rules, flag) for ref in images]
    media += [resolve_media("video", ref, arch, rules, flag) for ref in videos]
    if rules.archs[arch].requires_media and not media:
        problems.append(f"{arch} requires at least one {flag('image')} or {flag('video')}")
    if problems:
        raise RequestError(problems[0], lines=problems)
    values = resolve_sampling(arch, rules, given, accept_defaults=accept_defaults, ask=ask, flag=flag)
    body = build_body(arch, prompt, system, media, values, model)
    content = {
        "system": system,
        "prompt": prompt,
        "media": [_loggable_media(m) for m in media],
        "sampling": values,
    }
    return Prepared(body, json.dumps(body).encode("utf-8"), content)


def rules_for(target: Target, rules: RequestRefs) -> RequestRefs:
    """A generic server (``server:``) is ruled by the ``server`` rules of references/request.yaml,
    under its type's name; a TAO service by its arch's."""
    return rules.for_server(target.arch) if target.served_name is not None else rules


def prepare_for(target: Target, rules: RequestRefs, **options: Any) -> Prepared:
    """``prepare`` for a routed target; a generic server's body names its ``served_name``."""
    return prepare(target.arch, rules_for(target, rules), model=target.served_name, **options)


def _loggable_media(item: MediaItem) -> str:
    if item.url.startswith("data:"):
        return f"{data_uri_summary(item.mime, item.size)} ({os.path.basename(item.source) or 'inline'})"
    return safe_url(item.url)
