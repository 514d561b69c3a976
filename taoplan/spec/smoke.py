"""The smoke request: the smallest valid chat body for a service's arch, from references/request.yaml.

Pure. Apply sends it once a service reports ready (engine/smoke.py); the service counts as ready only
when it is answered. Every sampling field the arch knows is sent at its reference default, except the
ones that make the answer long, which take their minimum (``max_tokens``: one token, or one frame for
cosmos-predict2.5; ``num_steps``: one step), so the request is cheap and still a real inference.
An arch that requires media (cosmos-rl) needs ``readiness.smoke.image``; without it the smoke is
skipped, with a note saying so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from taoplan.spec.references import RequestRefs

PROMPT = "Reply with the single word OK."
#: sampling fields set to their minimum, not their default
SHORTEST = ("max_tokens", "num_steps")


@dataclass(frozen=True)
class SmokeBody:
    body: dict[str, Any] | None  # None: skipped
    note: str = ""  # why it was skipped


def smoke_body(arch: str, rules: RequestRefs, setting: Any, served_name: str | None = None) -> SmokeBody:
    """``setting``: the service's ``readiness.smoke`` (True, False, or a Smoke with ``image``).
    ``served_name``: a generic server's; its smoke is a one-token OpenAI chat to that model."""
    if setting is False:
        return SmokeBody(None, "readiness.smoke is off")
    if served_name is not None:
        message = {"role": "user", "content": PROMPT}
        return SmokeBody({"model": served_name, "messages": [message], "max_tokens": 1})
    request = rules.archs.get(arch)
    if request is None:
        return SmokeBody(None, f"no request rules for {arch} in references/request.yaml")
    image = getattr(setting, "image", None)
    content: list[dict[str, Any]] = [{"type": "text", "text": PROMPT}]
    if request.requires_media and not image:
        return SmokeBody(
            None,
            f"{arch} requires media: set readiness.smoke.image to an image URL the server can read "
            "to smoke-test it",
        )
    if image:
        content.append({"type": "image_url", "image_url": {"url": image}})
    sampling: dict[str, Any] = {}
    for name, field in request.sampling.items():
        value = field.default
        if name in SHORTEST and field.min is not None:
            value = int(field.min) if field.type == "int" else field.min
        sampling[name] = value
    return SmokeBody({"model": arch, "messages": [{"role": "user", "content": content}], **sampling})
