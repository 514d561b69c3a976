"""The pages (Jinja2 templates of this package, autoescaped) and the static files, with the
headers every page gets: no caching of data, no framing, nothing loaded from elsewhere."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

STATIC = {
    "style.css": b"text/css; charset=utf-8",
    "common.js": b"text/javascript; charset=utf-8",
    "dashboard.js": b"text/javascript; charset=utf-8",
    "service.js": b"text/javascript; charset=utf-8",
    "chat.js": b"text/javascript; charset=utf-8",
}
HTML = b"text/html; charset=utf-8"
# Media URLs the user types are shown as given (images, the produced video as a data: URI).
CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    b"img-src 'self' data: blob: https: http:; media-src 'self' data: blob: https: http:; "
    b"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


@functools.lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("taoplan.traffic.dashboard", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str, **context: Any) -> bytes:
    return str(_environment().get_template(template).render(**context)).encode()


@functools.lru_cache(maxsize=len(STATIC))
def static(name: str) -> bytes:
    """A static file's bytes (``name`` is one of STATIC)."""
    return resources.files("taoplan.traffic.dashboard").joinpath("static", name).read_bytes()
