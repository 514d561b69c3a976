"""`taoplan gateway`: the CLI face of taoplan.traffic.gateway (imported when the command runs)."""

from __future__ import annotations

from pathlib import Path

import click

from taoplan.cli.options import common


@click.command()
@common
@click.option(
    "--listen",
    default=None,
    metavar="HOST:PORT",
    help="Where to listen (default: gateway.listen of the file, else 127.0.0.1:4000).",
)
def gateway(file: Path, state_dir: str | None, listen: str | None) -> None:
    """Serve one OpenAI-compatible endpoint in front of every service, in the foreground.

    POST /v1/chat/completions (model = a service name), GET /v1/models, /health/live,
    /health/ready, /metrics and /openapi.json. Follows apply's changes while it runs. Ctrl+C or
    SIGTERM: stop accepting, finish in-flight requests (up to 30 s), flush the request log, exit 0.
    """
    from taoplan.traffic.gateway.server import run

    raise SystemExit(run(file, state_dir, listen))
