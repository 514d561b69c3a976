"""Stable hashes: the spec hash decides replace; the artifact hash records what was run."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

#: Fields that change how taoplan treats a service, not what runs: never a reason to replace.
NOT_IN_SPEC_HASH = frozenset({"protect", "readiness", "replicas", "rollout", "drain_timeout"})


_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def canonical(obj: Any) -> str:
    return _ENCODE(obj)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def spec_hash(spec: dict[str, Any], image: str, platform_text: str) -> str:
    """The hash of canonical({"spec": spec minus NOT_IN_SPEC_HASH, "image": image, "platform": ...}).

    ``platform_text`` is canonical(platform settings), encoded once per platform rather than once
    per service; the keys are written in canonical (sorted) order, so the bytes are the same.
    """
    hashed = {k: v for k, v in spec.items() if k not in NOT_IN_SPEC_HASH}
    return digest(f'{{"image":{_ENCODE(image)},"platform":{platform_text},"spec":{_ENCODE(hashed)}}}')


def artifact_hash(contents: Iterable[str]) -> str:
    return digest("\x00".join(contents))
