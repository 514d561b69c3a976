"""The options every command shares, and small output helpers."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from taoplan.engine.workspace import Workspace


def common(fn: Callable[..., Any]) -> Callable[..., Any]:
    """-f/--file, --state-dir and --debug on every command."""

    @click.option(
        "-f",
        "--file",
        "file",
        default="services.yaml",
        show_default=True,
        type=click.Path(path_type=Path),
        help="The services file.",
    )
    @click.option(
        "--state-dir",
        default=None,
        help="State directory (default: .taoplan beside the file, or TAOPLAN_STATE_DIR).",
    )
    @click.option("--debug", is_flag=True, hidden=True)
    @functools.wraps(fn)
    def wrapper(*args: Any, debug: bool, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return wrapper


def lock_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--lock-timeout",
        default=0.0,
        show_default=True,
        type=float,
        help="Seconds to wait for the state lock before giving up (exit 5).",
    )(fn)


def selection(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--target and --replace, as in Terraform."""
    fn = click.option(
        "--replace",
        "force_replace",
        multiple=True,
        metavar="NAME",
        help="Replace this service even if unchanged (repeatable).",
    )(fn)
    return click.option(
        "--target",
        "targets",
        multiple=True,
        metavar="NAME",
        help="Limit the change to this service (repeatable).",
    )(fn)


def open_workspace(file: Path, state_dir: str | None) -> Workspace:
    from taoplan.engine.workspace import Workspace

    return Workspace.open(file, state_dir)


def warn(message: str) -> None:
    click.echo(click.style(f"Warning: {message}", fg="yellow"), err=True)


def color() -> bool:
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")
