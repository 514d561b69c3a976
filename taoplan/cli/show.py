"""Commands that look at what runs: status, logs, render, doctor."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from taoplan.cli.options import common, open_workspace

if TYPE_CHECKING:
    pass


@click.command()
@common
@click.option("--json", "as_json", is_flag=True)
@click.option("--refresh/--no-refresh", default=True, show_default=True)
def status(file: Path, state_dir: str | None, as_json: bool, refresh: bool) -> None:
    """Show each service: where it runs, whether it is ready, and how long it took."""
    from taoplan.cli import views as output
    from taoplan.engine.status import COLUMNS, collect

    ws = open_workspace(file, state_dir)
    state = ws.store.load()
    rows = collect(ws, state, refresh)
    if as_json:
        click.echo(json.dumps({"project": ws.project, "services": rows}, indent=2))
    elif rows:
        click.echo(output.table(rows, COLUMNS))
        for row in rows:
            if row["state"] in ("failed", "exited", "starting") and row["detail"]:
                click.echo(f"{row['name']}: {row['state']}: {row['detail']}")
    else:
        click.echo("No services recorded. Run 'taoplan apply' to start them.")


@click.command()
@common
@click.argument("name")
@click.option("--tail", default=100, show_default=True, type=click.IntRange(0))
@click.option("--follow", is_flag=True)
def logs(file: Path, state_dir: str | None, name: str, tail: int, follow: bool) -> None:
    """Print a service's logs."""
    from taoplan.engine.status import service_logs

    ws = open_workspace(file, state_dir)
    for line in service_logs(ws, ws.store.load(), name, tail, follow):
        click.echo(line)


@click.command()
@common
@click.argument("names", nargs=-1)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Write artifacts here (default: print).",
)
def render(file: Path, state_dir: str | None, names: tuple[str, ...], out_dir: Path | None) -> None:
    """Render the per-platform artifacts apply would run."""
    from taoplan.engine.rendering import render_all

    ws = open_workspace(file, state_dir)
    state = ws.store.load()
    for service, artifact in render_all(ws, state, names):
        if out_dir is None:
            click.echo(f"# ---- {service}/{artifact.name}")
            click.echo(artifact.content, nl=False)
            continue
        target = out_dir / service / artifact.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(artifact.content)
        target.chmod(artifact.mode)
        click.echo(f"wrote {target}")


@click.command()
@common
def doctor(file: Path, state_dir: str | None) -> None:
    """Check that every platform in use is reachable and ready, and that secrets are set."""
    from taoplan.engine.doctor import run_checks

    ws = open_workspace(file, state_dir)
    checks = run_checks(ws)
    for check in checks:
        mark = click.style("ok  ", fg="green") if check.ok else click.style("FAIL", fg="red")
        click.echo(f"{mark} {check.name}: {check.detail}")
    if not all(c.ok for c in checks):
        sys.exit(1)
