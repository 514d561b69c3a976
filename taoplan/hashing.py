"""Stable hashes: the spec hash decides replace; the artifact hash records what was run."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

#: Fields that change how taoplan treats a service, not what runs: never a reason to replace.
NOT_IN_SPEC_HASH = frozenset({"protect", "readiness"})


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def spec_hash(spec: dict[str, Any], image: str, platform_config: dict[str, Any]) -> str:
    hashed = {k: v for k, v in spec.items() if k not in NOT_IN_SPEC_HASH}
    return digest(canonical({"spec": hashed, "image": image, "platform": platform_config}))


def artifact_hash(contents: Iterable[str]) -> str:
    return digest("\x00".join(contents))
