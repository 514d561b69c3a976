"""Images and videos: what each --image/--video becomes on the wire, and data: URIs both ways.

An http(s) URL passes through for the service to fetch; a local file is read and inlined as a
data: URI. Type (by extension or MIME), size and scheme are checked here, before anything is sent:
the TAO server cannot fetch cloud-storage URIs, so those are refused with a clear message.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from taoplan.errors import RequestError
from taoplan.traffic.request.sampling import flag_name

if TYPE_CHECKING:
    from taoplan.spec.references import ArchRequest, RequestRefs

# The server's own `_reject_cloud_uri` list (nvidia-tao-core 7.3.0): it cannot authenticate to a cloud.
PASS_THROUGH_SCHEMES = ("http", "https")


@dataclass(frozen=True)
class MediaItem:
    kind: str  # image | video
    url: str  # what is sent: an http(s) URL or a data: URI
    source: str  # what the user gave (a path or a URL)
    mime: str | None = None
    size: int | None = None  # bytes of a local file


def _mime_for(kind: str, path: str, media: Mapping[str, Mapping[str, str]]) -> str | None:
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    return media.get(kind, {}).get(ext)


def _extensions(kind: str, media: Mapping[str, Mapping[str, str]]) -> str:
    return ", ".join("." + e for e in media.get(kind, {}))


def resolve_media(
    kind: str, ref: str, arch: str, rules: RequestRefs, flag_of: Callable[[str], str] = flag_name
) -> MediaItem:
    """One --image/--video: an http(s) URL passes through; a local file becomes a data: URI."""
    arch_rules = rules.archs[arch]
    flag = flag_of(kind)
    if kind not in arch_rules.media_kinds:
        raise RequestError(f"{arch} does not take {kind}s ({flag} {ref})")
    lowered = ref.lower()
    if lowered.startswith(tuple(rules.chat.cloud_prefixes)):
        raise RequestError(
            f"{flag} {ref}: cloud-storage URIs are not supported by the TAO inference service; "
            "give a local file or an http(s) URL"
        )
    if lowered.startswith("data:"):
        return _given_data_uri(kind, ref, arch, arch_rules, rules, flag)
    scheme = urlsplit(ref).scheme.lower() if "://" in ref else ""
    if scheme:
        if scheme not in PASS_THROUGH_SCHEMES:
            raise RequestError(
                f"{flag} {ref}: unsupported scheme {scheme}://; give a local file or an http(s) URL"
            )
        path = urlsplit(ref).path
        mime = _mime_for(kind, path, rules.media)
        if mime is None:
            raise RequestError(
                f"{flag} {safe_url(ref)}: the URL's path must end in one of {_extensions(kind, rules.media)}"
            )
        return MediaItem(kind, ref, ref, mime)
    return _local_file(kind, ref, arch, arch_rules, rules, flag)


def _given_data_uri(
    kind: str, ref: str, arch: str, arch_rules: ArchRequest, rules: RequestRefs, flag: str
) -> MediaItem:
    if not arch_rules.accepts_data_uri:
        raise RequestError(f"{flag}: {arch} does not accept data: URIs; give an http(s) URL")
    parts = _split_data_uri(ref)
    if parts is None:
        raise RequestError(f"{flag}: a data: URI must look like data:<mime>;base64,<payload>")
    mime, payload = parts[0].lower(), parts[1]
    if mime not in rules.media.get(kind, {}).values():
        allowed = ", ".join(sorted(set(rules.media.get(kind, {}).values())))
        raise RequestError(f"{flag}: media type {mime} is not supported for {kind}s (allowed: {allowed})")
    size = len(payload) * 3 // 4
    if size > rules.chat.max_media_bytes:
        raise RequestError(
            f"{flag}: the data: URI holds {size} bytes; the limit is {rules.chat.max_media_bytes}"
        )
    return MediaItem(kind, ref, f"data:{mime};base64,…", mime, size)


def _local_file(
    kind: str, ref: str, arch: str, arch_rules: ArchRequest, rules: RequestRefs, flag: str
) -> MediaItem:
    path = Path(ref).expanduser()
    mime = _mime_for(kind, path.name, rules.media)
    if mime is None:
        raise RequestError(
            f"{flag} {ref}: unsupported {kind} type; {arch} takes {_extensions(kind, rules.media)}"
        )
    if not arch_rules.accepts_data_uri:
        raise RequestError(
            f"{flag} {ref}: {arch} does not accept inline data: URIs, so a local file cannot be sent; "
            "give an http(s) URL the service can fetch"
        )
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise RequestError(f"{flag} {ref}: no such file") from None
    except OSError as exc:
        raise RequestError(f"{flag} {ref}: {exc.strerror}") from None
    if not path.is_file():
        raise RequestError(f"{flag} {ref}: not a regular file")
    limit = rules.chat.max_media_bytes
    if size > limit:
        raise RequestError(f"{flag} {ref}: {size} bytes is over the {limit // 2**20} MiB media limit")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RequestError(f"{flag} {ref}: {exc.strerror}") from None
    url = f"data:{mime};base64," + base64.b64encode(data).decode("ascii")
    return MediaItem(kind, url, ref, mime, size)


def safe_url(url: str) -> str:
    """A URL without user info or query string: those may carry credentials (presigned URLs)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    query = "?…" if parts.query else ""
    return f"{parts.scheme}://{host}{parts.path}{query}"


def _split_data_uri(text: str) -> tuple[str, str] | None:
    """(mime, base64 payload) of ``data:<mime>;base64,<payload>``; the caller has checked the prefix."""
    head, sep, payload = text.partition(",")
    if not sep or not head.endswith(";base64"):
        return None
    return head[5:].split(";", 1)[0], payload


def decode_data_uri(text: str) -> tuple[str, bytes] | None:
    """(mime, bytes) of a ``data:<mime>;base64,…`` string, or None when it is not one."""
    parts = _split_data_uri(text) if text.startswith("data:") else None
    if parts is None:
        return None
    try:
        return parts[0], base64.b64decode(parts[1], validate=True)
    except ValueError:
        return None


def data_uri_summary(mime: str | None, size: int | None) -> str:
    """What the request log keeps of a data: URI: its type and size, never the payload."""
    return f"data:{mime};{size} bytes"
