"""Jinja rendering of per-platform artifacts: StrictUndefined, no network, no secret values."""

from __future__ import annotations

import json
import shlex
from functools import lru_cache
from typing import Any

from taoplan.common.paths import templates_dir
from taoplan.platforms.base import Artifact


@lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["shquote"] = lambda value: shlex.quote(str(value))
    env.filters["tojson_compact"] = lambda value: json.dumps(value, separators=(",", ":"), sort_keys=True)
    env.filters["yamlstr"] = lambda value: json.dumps(str(value))  # a JSON string is a valid YAML scalar
    return env


def render_template(
    platform: str, template: str, context: dict[str, Any], *, name: str | None = None, mode: int = 0o644
) -> Artifact:
    """Render templates/<platform>/<template> into an Artifact named ``name`` (default: template minus .j2)."""
    text = _environment().get_template(f"{platform}/{template}").render(**context)
    return Artifact(name=name or template.removesuffix(".j2"), content=text, mode=mode)
