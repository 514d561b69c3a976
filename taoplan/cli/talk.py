"""`taoplan request` and `taoplan stats`: the CLI face of taoplan.traffic.request and taoplan.traffic.stats.

Only click is imported here at start-up; the rest is imported when a command runs.
"""

from __future__ import annotations

import json
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
    from taoplan.traffic.request import Answer


def _on_wait(who: str) -> Any:
    last = ""

    def on_wait(answer: Answer, remaining: float) -> None:
        nonlocal last
        if answer.error_type != last:
            last = answer.error_type
            click.echo(f"Waiting for {who}: {answer.error_type} (up to {remaining:.0f}s more)", err=True)

    return on_wait


@click.command()
@common
@target_options
@click.option("--prompt", required=True, help="The user prompt.")
@click.option("--system", default=None, help="A system prompt.")
@click.option("--image", "images", multiple=True, metavar="PATH|URL", help="An image (repeatable).")
@click.option("--video", "videos", multiple=True, metavar="PATH|URL", help="A video (repeatable).")
@sampling_options
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Seconds to wait for the reply [default: 300].",
)
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Seconds to keep retrying a service that is still loading.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the whole response as JSON.")
@click.option(
    "--output",
    "output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the reply to FILE (a video reply is decoded).",
)
@caller_options
def request(
    file: Path,
    state_dir: str | None,
    name: str | None,
    job_id: str | None,
    arch: str | None,
    prompt: str,
    system: str | None,
    images: tuple[str, ...],
    videos: tuple[str, ...],
    accept_defaults: bool,
    timeout: float | None,
    wait: float,
    as_json: bool,
    output: Path | None,
    caller: str | None,
    log_content: bool,
    **sampling: Any,
) -> None:
    """Send one chat request to a service and print the reply.

    The target is NAME, --job-id or --arch; with none of them, the only service in state.
    """
    from taoplan.traffic import request as rq

    session = rq.open_session(
        file, state_dir, name=name, job_id=job_id, arch=arch, caller=caller, log_content=log_content
    )
    target = session.target
    header = f"Sampling values for {target.who} ({target.arch}); Enter accepts the default:"
    prepared = rq.prepare_for(
        target,
        session.refs.request,
        prompt=prompt,
        system=system,
        images=images,
        videos=videos,
        sampling={k: v for k, v in sampling.items() if k in SAMPLING_FLAGS},
        accept_defaults=accept_defaults,
        ask=sampling_prompt(header) if sys.stdin.isatty() else None,
    )
    click.echo(session.sending_line(), err=True)
    body = rq.perform(session, prepared, timeout=timeout, wait=wait, on_wait=_on_wait(target.who))
    _show(body, as_json=as_json, output=output)


def _show(body: dict[str, Any], *, as_json: bool, output: Path | None) -> None:
    from taoplan.errors import RequestError
    from taoplan.traffic.request import decode_data_uri, reply_content

    content = reply_content(body) or ""
    decoded = decode_data_uri(content)
    if output is not None:
        data = decoded[1] if decoded else content.encode("utf-8")
        try:
            output.write_bytes(data)
        except OSError as exc:
            raise RequestError(f"--output {output}: {exc.strerror}") from None
        what = f"{decoded[0]}, " if decoded else ""
        click.echo(f"Wrote {output} ({what}{len(data)} bytes).", err=True)
    if as_json:
        click.echo(json.dumps(body, indent=2))
    elif output is None:
        if decoded and sys.stdout.isatty():
            click.echo(
                f"The reply is {decoded[0]} ({len(decoded[1])} bytes); not printed on a terminal. "
                "Pass --output FILE to save it (the service also keeps a copy in its output_dir).",
                err=True,
            )
        else:
            click.echo(content)


@click.command()
@common
@click.option(
    "--since", default=None, metavar="DURATION", help="Only requests newer than this (30m, 2h, 7d)."
)
@click.option(
    "--by",
    type=click.Choice(["service", "caller", "end-user"]),
    default="service",
    show_default=True,
    help="One line per service and caller, per caller (a key or OS user), or per caller and end user.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as JSON.")
def stats(file: Path, state_dir: str | None, since: str | None, by: str, as_json: bool) -> None:
    """Requests, errors, latency and attributed cost per service, caller or end user, from the request log."""
    from taoplan.cli import views as output
    from taoplan.traffic import stats as st
    from taoplan.traffic.usage import collect

    report = collect(file, state_dir, since, by)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
        return
    result = report.services
    if not result:
        click.echo("No requests logged" + (f" in the last {since}." if since else "."))
        return
    if by == "service":
        click.echo(output.table(st.rows(result), st.COLUMNS))
    else:
        click.echo(output.table(st.group_rows(report.groups, by), st.GROUP_COLUMNS[by]))
    unpriced = sorted({s.platform or "?" for s in result if not s.priced})
    if report.pricing is None:
        click.echo(f"Costs are not priced: {file} was not found.")
    elif unpriced:
        click.echo(
            f"No price for {', '.join(unpriced)}: add pricing: {{{unpriced[0]}: {{gpu_hour: N}}}} to {file}."
        )
    click.echo(
        "Cost = GPU-seconds of uptime x gpu_hour / 3600, split among callers by their share of request time"
        + (
            ", plus per-token prices."
            if any(p.prompt_token or p.completion_token for p in (report.pricing or {}).values())
            else "."
        )
    )
