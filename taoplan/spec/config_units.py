"""Sizes and durations as written in the services file: '64MiB', '1.5GB', '30d', '1h30m'."""

from __future__ import annotations

import re

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_SIZE_UNITS |= {"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_size_text(text: str) -> int:
    """'64MiB' -> 67108864; a bare number is bytes. ValueError when malformed or not positive."""
    match = _SIZE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r}: expected a size such as 64MiB, 512KiB or 1GB")
    value = float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()]
    if value < 1:
        raise ValueError(f"{text!r}: a size must be at least 1 byte")
    return int(value)


def parse_duration_text(text: str) -> float:
    """'90s', '15m', '1h30m', '30d' -> seconds. ValueError when malformed."""
    cleaned = text.strip().lower() if isinstance(text, str) else ""
    parts = _DURATION.findall(cleaned)
    if not cleaned or "".join(n + u for n, u in parts) != cleaned:
        raise ValueError(f"{text!r}: expected a duration such as 30s, 15m, 2h, 1h30m or 30d")
    return sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
