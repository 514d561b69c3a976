"""`taoplan chat`: the CLI face of taoplan.traffic.chat.

Only click is imported here at start-up; the rest is imported when the command runs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from taoplan.cli.options import (
    SAMPLING_FLAGS,
    caller_options,
    common,
    sampling_options,
    sampling_prompt,
    target_options,
)

if TYPE_CHECKING:
    from taoplan.spec.references import SamplingField


def _repl_prompt(header: str) -> Any:
    """``sampling_prompt`` inside the chat: Ctrl+C or Ctrl+D at a value cancels the round, not the chat."""
    ask = sampling_prompt(header)

    def repl_ask(name: str, spec: SamplingField) -> Any:
        try:
            return ask(name, spec)
        except click.Abort:
            raise KeyboardInterrupt from None

    return repl_ask


@click.command()
@common
@target_options
@click.option("--system", default=None, help="The system message to start with (/system changes it).")
@sampling_options
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Seconds to wait for each reply [default: 300].",
)
@caller_options
def chat(
    file: Path,
    state_dir: str | None,
    name: str | None,
    job_id: str | None,
    arch: str | None,
    system: str | None,
    accept_defaults: bool,
    timeout: float | None,
    caller: str | None,
    log_content: bool,
    **sampling: Any,
) -> None:
    """Talk with one service in the terminal (/help lists the commands).

    The target is NAME, --job-id or --arch, as for `taoplan request`. A model server (server:) gets the
    whole conversation, streamed; a TAO service gets each message on its own.
    """
    from taoplan.traffic.chat import open_chat, run_chat

    session, values, directory = open_chat(
        file,
        state_dir,
        name=name,
        job_id=job_id,
        arch=arch,
        caller=caller,
        log_content=log_content,
        sampling={k: v for k, v in sampling.items() if k in SAMPLING_FLAGS},
        accept_defaults=accept_defaults,
        make_ask=sampling_prompt if sys.stdin.isatty() else None,
    )
    click.echo(session.sending_line(), err=True)
    run_chat(session, values, _repl_prompt, directory, timeout=timeout, system=system)
