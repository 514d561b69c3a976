"""`taoplan keys create|list|revoke`: the gateway's callers. A key is printed once and stored only
as a salted hash in the request log's database (the services file's gateway.database)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from taoplan.cli.options import common


@click.group()
def keys() -> None:
    """Keys for `taoplan gateway`: one per caller, with optional services, rpm and budget."""


@keys.command()
@common
@click.argument("name")
@click.option("--services", default=None, metavar="A,B", help="Only these services [default: every service].")
@click.option("--rpm", type=int, default=None, help="Requests per minute at most [default: no limit].")
@click.option(
    "--budget",
    type=float,
    default=None,
    metavar="AMOUNT",
    help="Cost this caller may run up (as `taoplan stats` prices it) [default: no limit].",
)
def create(
    file: Path, state_dir: str | None, name: str, services: str | None, rpm: int | None, budget: float | None
) -> None:
    """Create a key for NAME and print it once (stdout, alone on a line)."""
    from taoplan.errors import TaoplanError
    from taoplan.traffic.usage import open_project_store

    listed = None if services is None else [s.strip() for s in services.split(",") if s.strip()]
    if listed is not None:
        if not listed:
            raise TaoplanError("--services: name at least one service (a,b)")
        if file.is_file():
            from taoplan.spec.config import load_services
            from taoplan.spec.references import load_references

            declared = load_services(file, load_references()).services
            unknown = [s for s in listed if s not in declared]
            if unknown:
                raise TaoplanError(
                    f"--services: {', '.join(unknown)} not in {file} (declared: {', '.join(declared)})"
                )
    with open_project_store(file, state_dir) as store:
        token = store.keys.create(name, listed, rpm, budget)
        where = store.engine.where
    click.echo(token)
    limits = [
        f"services {','.join(listed)}" if listed else "every service",
        f"{rpm} requests/minute" if rpm else "no rpm limit",
        f"budget {budget:g}" if budget is not None else "no budget",
    ]
    click.echo(
        f"Created key {name!r} ({'; '.join(limits)}) in {where}. It is shown only now: "
        "keep it in your secret store.",
        err=True,
    )


@keys.command(name="list")
@common
@click.option("--json", "as_json", is_flag=True, help="Print the keys as JSON.")
def list_keys(file: Path, state_dir: str | None, as_json: bool) -> None:
    """Every key's name, services and limits, and what its caller has spent (never the key)."""
    from taoplan.cli import views as output
    from taoplan.traffic.usage import open_project_store

    with open_project_store(file, state_dir) as store:
        found = [(k, store.keys.spent(k)) for k in store.keys.list()]
    if as_json:
        doc = [
            {
                "name": k.name,
                "services": None if k.services is None else list(k.services),
                "rpm": k.rpm,
                "budget": k.budget,
                "spent": round(spent, 6),
            }
            for k, spent in found
        ]
        click.echo(json.dumps({"keys": doc}, indent=2))
        return
    if not found:
        click.echo("No keys. Create one with: taoplan keys create NAME")
        return
    rows = [
        {
            "name": k.name,
            "services": ",".join(k.services) if k.services else "(all)",
            "rpm": k.rpm,
            "budget": None if k.budget is None else f"{k.budget:g}",
            "spent": f"{spent:.4f}",
        }
        for k, spent in found
    ]
    click.echo(output.table(rows, ("name", "services", "rpm", "budget", "spent")))


@keys.command()
@common
@click.argument("name")
def revoke(file: Path, state_dir: str | None, name: str) -> None:
    """Revoke NAME's key: gateways refuse it within 5 seconds."""
    from taoplan.errors import TaoplanError
    from taoplan.traffic.usage import open_project_store

    with open_project_store(file, state_dir) as store:
        if not store.keys.revoke(name):
            known = ", ".join(k.name for k in store.keys.list()) or "none"
            raise TaoplanError(f"no key named {name!r} (keys: {known})")
    click.echo(f"Revoked key {name!r}.", err=True)
