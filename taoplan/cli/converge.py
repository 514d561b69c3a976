"""Commands that read the file and change the world: validate, schema, plan, apply, destroy, unlock."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from taoplan.cli.options import color, common, lock_option, open_workspace, selection, warn
from taoplan.common.perf import paused_gc

if TYPE_CHECKING:
    from taoplan.engine.plan import Plan
    from taoplan.engine.workspace import Workspace
    from taoplan.store.state import State


# ------------------------------------------------------------------------------------------ validate / schema


@click.command()
@common
def validate(file: Path, state_dir: str | None) -> None:
    """Check the services file (and resolve images) without touching anything."""
    from taoplan.engine.workspace import Workspace
    from taoplan.spec.desired import build_desired

    ws = Workspace.open(file, state_dir)
    desired = build_desired(ws.config, ws.refs, os.environ)
    click.echo(f"{file}: valid; project {ws.project}, {len(desired)} service(s).")


@click.command()
def schema() -> None:
    """Print the JSON Schema of the services file, for editors."""
    from taoplan.spec.schema import services_schema

    click.echo(json.dumps(services_schema(), indent=2))


# ------------------------------------------------------------------------------------------ plan


@click.command()
@common
@selection
@click.option(
    "-out",
    "--out",
    "out",
    type=click.Path(path_type=Path),
    default=None,
    help="Save the plan to FILE for `apply FILE`.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 for no changes, 2 for changes, 1 for errors.")
@click.option(
    "--server-dry-run",
    is_flag=True,
    help="Ask each platform to validate what would start (admission errors...).",
)
@click.option(
    "--refresh/--no-refresh", default=True, show_default=True, help="Observe what really runs first."
)
def plan(
    file: Path,
    state_dir: str | None,
    targets: tuple[str, ...],
    force_replace: tuple[str, ...],
    out: Path | None,
    as_json: bool,
    detailed_exitcode: bool,
    server_dry_run: bool,
    refresh: bool,
) -> None:
    """Show what apply would create, replace and delete, and why."""
    from taoplan.cli import views as output

    ws = open_workspace(file, state_dir)
    state = ws.store.load()
    with paused_gc():
        the_plan, desired = ws.plan(state, refresh=refresh, targets=targets, force_replace=force_replace)
    if as_json:
        click.echo(output.plan_json(the_plan))
    else:
        click.echo(output.format_plan(the_plan, color=color()))
    if server_dry_run:
        from taoplan.engine.dryrun import dry_run
        from taoplan.errors import PlatformError

        problems = dry_run(ws, the_plan, desired, state)
        if problems:
            raise PlatformError(
                f"server dry run: {problems[0]}", lines=[f"server dry run: {p}" for p in problems]
            )
        click.echo("Server dry run: every platform accepts what apply would start.")
    if out is not None:
        from taoplan.engine import saved_plan

        saved_plan.save(out, the_plan, ws, desired)
        if not as_json:
            click.echo(f"Saved the plan to {out}. Apply exactly it with: taoplan apply {out}")
    if detailed_exitcode and the_plan.has_changes:
        sys.exit(2)


# ------------------------------------------------------------------------------------------ apply / destroy


def _confirm(auto_approve: bool, verb: str) -> None:
    from taoplan.errors import ConfigError

    if auto_approve:
        return
    if not sys.stdin.isatty():
        raise ConfigError(f"{verb} needs --auto-approve (or a saved plan file) when not run on a terminal")
    if not click.confirm(f"Do you want to {verb} these changes?", default=False, err=True):
        click.echo(f"{verb.capitalize()} cancelled; nothing changed.", err=True)
        sys.exit(1)


def _check_secrets(ws: Workspace, the_plan: Plan) -> None:
    """Every secret of what starts is set (in the environment, else in secrets_file), before anything
    changes; a secrets_file that is not 0600 and the user's own is refused."""
    from taoplan.common import secrets
    from taoplan.engine.plan import CREATE, REPLACE
    from taoplan.errors import ConfigError
    from taoplan.labels import service_of

    starting = sorted({service_of(c.service) for c in the_plan.changes if c.action in (CREATE, REPLACE)})
    if starting and ws.config.secrets_file is not None:
        where = f"{ws.config.source.where(('secrets_file',))}: secrets_file"
        path = secrets.resolve(ws.config.secrets_file, ws.file.parent)
        needed = {n for s in starting for n in ws.config.services[s].secrets if not os.environ.get(n)}
        if needed or path.exists():  # a file that is not there is fine while the environment has all
            secrets.use_file(path, where)
    missing = [f"{s}: {n}" for s in starting for n in ws.config.services[s].secrets if not secrets.value(n)]
    if missing:
        lines = [
            f"secret {m} is not set in {secrets.sources()} (set it before apply; taoplan never stores it)"
            for m in missing
        ]
        raise ConfigError(lines[0], lines=lines)


def _execute(
    ws: Workspace, state: State, the_plan: Plan, desired: dict[str, Any], parallelism: int, command: str
) -> None:
    from taoplan.engine.apply import Applier
    from taoplan.engine.progress import make_reporter
    from taoplan.errors import ApplyFailed
    from taoplan.store.journal import Journal

    reporter = make_reporter()
    smoke_log = _SmokeLog(ws)
    try:
        applier = Applier(ws, state, Journal(ws.store.dir, command), reporter, parallelism, smoke_log)
        outcomes = applier.run(the_plan, desired)
    finally:
        reporter.close()
        smoke_log.close()
    failed = [o for o in outcomes if not o.ok]
    done = len(outcomes) - len(failed)
    click.echo(f"{command.capitalize()} complete: {done} succeeded, {len(failed)} failed.")
    if failed:
        lines = [f"{o.service}: {o.action} failed: {o.message}" for o in failed]
        raise ApplyFailed(lines[0], lines=lines)


class _SmokeLog:
    """apply's smoke requests into the request log (caller taoplan-smoke, via smoke, cost 0): the
    engine hands over the fields, this layer owns the store, opened on the first smoke request."""

    UNSET = {"end_user": None, "upstream_ms": None, "ttft_ms": None, "defaulted": None, "content": None}

    def __init__(self, ws: Workspace) -> None:
        import threading

        self.ws = ws
        self.store: Any = None
        self.lock = threading.Lock()

    def __call__(self, fields: Any) -> None:
        from taoplan.traffic.log import RequestRow, open_store

        with self.lock:
            if self.store is None:
                self.store = open_store(self.ws.store.dir, self.ws.config.gateway, quiet=True)
        self.store.write(RequestRow(**{**self.UNSET, **dict(fields)}))

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


@click.command()
@common
@lock_option
@click.argument("plan_file", required=False, type=click.Path(path_type=Path))
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--parallelism", default=8, show_default=True, type=click.IntRange(1, 256), help="Actions run at once."
)
@click.option(
    "--allow-queue",
    is_flag=True,
    help="Start services whose fit verdict is 'queues' (they wait for GPUs); 'cannot fit' always refuses.",
)
@selection
def apply(
    file: Path,
    state_dir: str | None,
    lock_timeout: float,
    plan_file: Path | None,
    auto_approve: bool,
    parallelism: int,
    allow_queue: bool,
    targets: tuple[str, ...],
    force_replace: tuple[str, ...],
) -> None:
    """Make what runs match the services file (or apply a saved plan exactly)."""
    from taoplan.cli import views as output
    from taoplan.engine.fit import check_apply
    from taoplan.store.lock import StateLock

    ws = open_workspace(file, state_dir)
    with StateLock(ws.store.dir, lock_timeout, "apply", warn=warn):
        state = ws.store.load()
        if plan_file is not None:
            from taoplan.engine import saved_plan

            the_plan, desired = saved_plan.load_for_apply(plan_file, ws, state)
            click.echo(output.format_plan(the_plan, color=color()))
            check_apply(the_plan.changes, allow_queue)
        else:
            with paused_gc():
                the_plan, desired = ws.plan(state, targets=targets, force_replace=force_replace)
            click.echo(output.format_plan(the_plan, color=color()))
            if not the_plan.has_changes:
                return
            check_apply(the_plan.changes, allow_queue)
            _confirm(auto_approve, "apply")
        if not the_plan.has_changes:
            return
        _check_secrets(ws, the_plan)
        _execute(ws, state, the_plan, desired, parallelism, "apply")


@click.command()
@common
@lock_option
@click.argument("names", nargs=-1)
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation.")
@click.option("--parallelism", default=8, show_default=True, type=click.IntRange(1, 256))
def destroy(
    file: Path,
    state_dir: str | None,
    lock_timeout: float,
    names: tuple[str, ...],
    auto_approve: bool,
    parallelism: int,
) -> None:
    """Stop and remove services (all, or NAMES), their state and registry entries."""
    from taoplan.cli import views as output
    from taoplan.engine.plan import make_plan
    from taoplan.store.lock import StateLock

    ws = open_workspace(file, state_dir)
    with StateLock(ws.store.dir, lock_timeout, "destroy", warn=warn):
        state = ws.store.load()
        observed = ws.refresh(state)
        the_plan = make_plan(
            {},
            state,
            observed,
            project=ws.project,
            replace_strategy=lambda d: (False, ""),
            targets=names,
            delete_reason="destroy requested",
        )
        click.echo(output.format_plan(the_plan, color=color()))
        if not the_plan.has_changes:
            return
        _confirm(auto_approve, "destroy")
        _execute(ws, state, the_plan, {}, parallelism, "destroy")


@click.command()
@click.option(
    "-f", "--file", "file", default="services.yaml", show_default=True, type=click.Path(path_type=Path)
)
@click.option("--state-dir", default=None)
@click.option("--force", is_flag=True, help="Remove the lock even if its holder is alive.")
@click.option("--debug", is_flag=True, hidden=True)
def unlock(file: Path, state_dir: str | None, force: bool, debug: bool) -> None:
    """Release a state lock left behind by a process that is gone."""
    from taoplan.errors import LockHeldError
    from taoplan.store import lock
    from taoplan.store.state import default_state_dir

    directory = default_state_dir(file, state_dir)
    holder = lock.read_holder(directory)
    if lock.is_held(directory):
        who = lock.describe(holder) if holder else "a live process"
        if not force:
            raise LockHeldError(f"the lock is held by {who}; use --force only if you are sure it is stuck")
        (directory / lock.LOCK_FILE).unlink()
        click.echo(f"Removed the lock held by {who}.")
        return
    lock.force_unlock(directory)
    click.echo(
        f"Unlocked (the last holder was {lock.describe(holder)})." if holder else "The state was not locked."
    )


# ------------------------------------------------------------------------------------------ observe
