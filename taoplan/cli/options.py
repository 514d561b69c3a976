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
    from taoplan.spec.references import SamplingField


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


#: the keyword names of the sampling flags (``sampling_options``)
SAMPLING_FLAGS = ("max_tokens", "top_p", "temperature", "guidance", "num_steps", "seed", "negative_prompt")


def sampling_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The sampling flags of every arch and --accept-defaults (`taoplan request`, `taoplan chat`)."""
    for option in reversed(
        (
            click.option(
                "--max-tokens", type=int, default=None, help="Max new tokens (cosmos-predict2.5: frames)."
            ),
            click.option("--top-p", type=float, default=None),
            click.option("--temperature", type=float, default=None),
            click.option("--guidance", type=float, default=None, help="cosmos-predict2.5 only."),
            click.option("--num-steps", type=int, default=None, help="cosmos-predict2.5 only."),
            click.option("--seed", type=int, default=None),
            click.option("--negative-prompt", default=None, help="cosmos-predict2.5 only."),
            click.option(
                "--accept-defaults",
                is_flag=True,
                help="Use the arch's defaults for sampling values not given.",
            ),
        )
    ):
        fn = option(fn)
    return fn


def target_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """NAME, --job-id and --arch: which service a request or a chat goes to (traffic.request.route)."""
    fn = click.option("--arch", default=None, help="Target the only service running this network_arch.")(fn)
    fn = click.option(
        "--job-id", default=None, help="Target this job id (state or the TAO skill's registry)."
    )(fn)
    return click.argument("name", required=False)(fn)


def caller_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--caller and --log-content: how requests are logged."""
    fn = click.option("--log-content", is_flag=True, help="Also log the prompt, media references and reply.")(
        fn
    )
    return click.option(
        "--caller",
        default=None,
        help="Who is asking, for the request log [default: $TAOPLAN_CALLER, else the OS user].",
    )(fn)


def sampling_prompt(header: str) -> Any:
    """A terminal prompt for sampling fields: one round, each with its type and default; Enter accepts it."""
    shown = False

    def ask(name: str, spec: SamplingField) -> Any:
        nonlocal shown
        if not shown:
            click.echo(header, err=True)
            shown = True
        kind: Any
        if spec.type == "int":
            kind = click.IntRange(
                None if spec.min is None else int(spec.min), None if spec.max is None else int(spec.max)
            )
        elif spec.type == "float":
            kind = click.FloatRange(spec.min, spec.max)
        else:
            kind = str
        note = f"; {spec.help}" if spec.help else ""
        text = f"  {name} ({spec.type}, default {spec.default!r}{note})"
        return click.prompt(text, default=spec.default, type=kind, show_default=False, err=True)

    return ask


def open_workspace(file: Path, state_dir: str | None) -> Workspace:
    from taoplan.engine.workspace import Workspace

    return Workspace.open(file, state_dir)


def warn(message: str) -> None:
    click.echo(click.style(f"Warning: {message}", fg="yellow"), err=True)


def color() -> bool:
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")
