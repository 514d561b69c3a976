"""Docker image references, by the grammar of distribution/reference (what `docker pull` accepts).

``name``, ``name:tag``, ``ns/name:tag``, ``host:port/ns/name:tag`` and ``…@sha256:…`` are valid;
``check`` returns why a malformed one is not (None when it is valid). Pure.
"""

from __future__ import annotations

import re

_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
NAME_MAX = 255


def check(ref: str) -> str | None:
    """Why ``ref`` is not a valid image reference, or None."""
    if not ref:
        return "empty image reference"
    if any(c.isspace() for c in ref):
        return "an image reference has no whitespace"
    if "://" in ref:
        return "an image reference, not a URL: drop the scheme (registry/name:tag)"
    name, at, digest = ref.partition("@")
    if at:
        if not _DIGEST.fullmatch(digest):
            return f"bad digest {digest!r} (expected ALGORITHM:HEX such as sha256:<64 hex digits>)"
        if digest.startswith("sha256:") and len(digest) != len("sha256:") + 64:
            return "a sha256 digest has exactly 64 hex digits"
    tag = ""
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG.fullmatch(tag):
            return (
                f"bad tag {tag!r} (letters, digits, '_', '.', '-'; at most 128; not starting with '.' or '-')"
            )
    if not name:
        return "no repository name"
    if len(name) > NAME_MAX:
        return f"repository name longer than {NAME_MAX} characters"
    parts = name.split("/")
    first = parts[0]
    if len(parts) > 1 and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        if not _DOMAIN.fullmatch(first):
            return f"bad registry host {first!r}"
        parts = parts[1:]
    for part in parts:
        if not part:
            return "empty path component (a doubled or trailing '/')"
        if part != part.lower():
            return f"repository name {part!r} must be lowercase"
        if not _COMPONENT.fullmatch(part):
            return f"bad path component {part!r} (lowercase letters and digits, separated by '.', '_', '__' or '-')"
    return None
