"""The `taoplan` command line. Errors become messages and exit codes here, and only here.

Only click is imported at start-up; every command imports what it needs, so `taoplan --help`
stays fast.
"""

from __future__ import annotations

import atexit
import functools
import gc
import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from taoplan.perf import paused_gc

# taoplan uses no pydantic plugins; looking for them scans every installed package's entry points.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

# At exit the interpreter would walk every object it ever tracked for cycles once more (40 ms after
# a plan, more than parsing 1,000 services); the process is ending, so freeze them instead.
atexit.register(gc.freeze)

if TYPE_CHECKING:
    from taoplan.plan import Plan
    from taoplan.state import State
    from taoplan.workspace import Workspace


# ------------------------------------------------------------------------------------------ error mapping


class TaoplanGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        from taoplan.errors import TaoplanError

        debug = os.environ.get("TAOPLAN_DEBUG") == "1" or "--debug" in sys.argv
        try:
            return super().invoke(ctx)
        except TaoplanError as exc:
            for line in exc.lines:
                click.echo(f"Error: {line}", err=True)
            if debug:
                traceback.print_exc()
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            changing = ctx.invoked_subcommand in ("apply", "destroy")
            click.echo(
                "Interrupted: services already started keep running and are recorded; run 'taoplan apply' to finish."
                if changing
                else "Interrupted.",
                err=True,
            )
            ctx.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except BrokenPipeError:
            ctx.exit(1)
        except Exception as exc:  # noqa: BLE001 - the one place an unexpected error becomes a message
            click.echo(
                f"Error: internal error: {type(exc).__name__}: {exc} (run with --debug for details)", err=True
            )
            if debug:
                traceback.print_exc()
            ctx.exit(1)


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


def _open(file: Path, state_dir: str | None) -> Workspace:
    from taoplan.workspace import Workspace

    return Workspace.open(file, state_dir)


def _warn(message: str) -> None:
    click.echo(click.style(f"Warning: {message}", fg="yellow"), err=True)


def _color() -> bool:
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


@click.group(
    cls=TaoplanGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.version_option(package_name="taoplan")
def main() -> None:
    """Declarative plan/apply for NVIDIA TAO inference microservices.

    Declare services in services.yaml, see what would change with `taoplan plan`, make it so
    with `taoplan apply`.
    """


# ------------------------------------------------------------------------------------------ validate / schema


@main.command()
@common
def validate(file: Path, state_dir: str | None) -> None:
    """Check the services file (and resolve images) without touching anything."""
    from taoplan.desired import build_desired
    from taoplan.workspace import Workspace

    ws = Workspace.open(file, state_dir)
    desired = build_desired(ws.config, ws.refs, os.environ)
    click.echo(f"{file}: valid; project {ws.project}, {len(desired)} service(s).")


@main.command()
def schema() -> None:
    """Print the JSON Schema of the services file, for editors."""
    from taoplan.schema import services_schema

    click.echo(json.dumps(services_schema(), indent=2))


# ------------------------------------------------------------------------------------------ plan


@main.command()
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
    from taoplan import output

    ws = _open(file, state_dir)
    state = ws.store.load()
    with paused_gc():
        the_plan, desired = ws.plan(state, refresh=refresh, targets=targets, force_replace=force_replace)
    if as_json:
        click.echo(output.plan_json(the_plan))
    else:
        click.echo(output.format_plan(the_plan, color=_color()))
    if server_dry_run:
        from taoplan.dryrun import dry_run
        from taoplan.errors import PlatformError

        problems = dry_run(ws, the_plan, desired, state)
        if problems:
            raise PlatformError(
                f"server dry run: {problems[0]}", lines=[f"server dry run: {p}" for p in problems]
            )
        click.echo("Server dry run: every platform accepts what apply would start.")
    if out is not None:
        from taoplan import saved_plan

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
    from taoplan.errors import ConfigError
    from taoplan.plan import CREATE, REPLACE

    missing = []
    for change in the_plan.changes:
        if change.action in (CREATE, REPLACE):
            spec = ws.config.services[change.service]
            missing += [f"{change.service}: {name}" for name in spec.secrets if not os.environ.get(name)]
    if missing:
        lines = [
            f"secret {m} is not set in the environment (set it before apply; taoplan never stores it)"
            for m in missing
        ]
        raise ConfigError(lines[0], lines=lines)


def _execute(
    ws: Workspace, state: State, the_plan: Plan, desired: dict[str, Any], parallelism: int, command: str
) -> None:
    from taoplan.apply import Applier
    from taoplan.errors import ApplyFailed
    from taoplan.journal import Journal
    from taoplan.progress import make_reporter

    reporter = make_reporter()
    try:
        outcomes = Applier(ws, state, Journal(ws.store.dir, command), reporter, parallelism).run(
            the_plan, desired
        )
    finally:
        reporter.close()
    failed = [o for o in outcomes if not o.ok]
    done = len(outcomes) - len(failed)
    click.echo(f"{command.capitalize()} complete: {done} succeeded, {len(failed)} failed.")
    if failed:
        lines = [f"{o.service}: {o.action} failed: {o.message}" for o in failed]
        raise ApplyFailed(lines[0], lines=lines)


@main.command()
@common
@lock_option
@click.argument("plan_file", required=False, type=click.Path(path_type=Path))
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--parallelism", default=8, show_default=True, type=click.IntRange(1, 256), help="Actions run at once."
)
@selection
def apply(
    file: Path,
    state_dir: str | None,
    lock_timeout: float,
    plan_file: Path | None,
    auto_approve: bool,
    parallelism: int,
    targets: tuple[str, ...],
    force_replace: tuple[str, ...],
) -> None:
    """Make what runs match the services file (or apply a saved plan exactly)."""
    from taoplan import output
    from taoplan.lock import StateLock

    ws = _open(file, state_dir)
    with StateLock(ws.store.dir, lock_timeout, "apply", warn=_warn):
        state = ws.store.load()
        if plan_file is not None:
            from taoplan import saved_plan

            the_plan, desired = saved_plan.load_for_apply(plan_file, ws, state)
            click.echo(output.format_plan(the_plan, color=_color()))
        else:
            with paused_gc():
                the_plan, desired = ws.plan(state, targets=targets, force_replace=force_replace)
            click.echo(output.format_plan(the_plan, color=_color()))
            if not the_plan.has_changes:
                return
            _confirm(auto_approve, "apply")
        if not the_plan.has_changes:
            return
        _check_secrets(ws, the_plan)
        _execute(ws, state, the_plan, desired, parallelism, "apply")


@main.command()
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
    from taoplan import output
    from taoplan.lock import StateLock
    from taoplan.plan import make_plan

    ws = _open(file, state_dir)
    with StateLock(ws.store.dir, lock_timeout, "destroy", warn=_warn):
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
        click.echo(output.format_plan(the_plan, color=_color()))
        if not the_plan.has_changes:
            return
        _confirm(auto_approve, "destroy")
        _execute(ws, state, the_plan, {}, parallelism, "destroy")


@main.command()
@click.option(
    "-f", "--file", "file", default="services.yaml", show_default=True, type=click.Path(path_type=Path)
)
@click.option("--state-dir", default=None)
@click.option("--force", is_flag=True, help="Remove the lock even if its holder is alive.")
@click.option("--debug", is_flag=True, hidden=True)
def unlock(file: Path, state_dir: str | None, force: bool, debug: bool) -> None:
    """Release a state lock left behind by a process that is gone."""
    from taoplan import lock
    from taoplan.errors import LockHeldError
    from taoplan.state import default_state_dir

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


@main.command()
@common
@click.option("--json", "as_json", is_flag=True)
@click.option("--refresh/--no-refresh", default=True, show_default=True)
def status(file: Path, state_dir: str | None, as_json: bool, refresh: bool) -> None:
    """Show each service: where it runs, whether it is ready, and how long it took."""
    from taoplan import output
    from taoplan.status import COLUMNS, collect

    ws = _open(file, state_dir)
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


@main.command()
@common
@click.argument("name")
@click.option("--tail", default=100, show_default=True, type=click.IntRange(0))
@click.option("--follow", is_flag=True)
def logs(file: Path, state_dir: str | None, name: str, tail: int, follow: bool) -> None:
    """Print a service's logs."""
    from taoplan.errors import ConfigError

    ws = _open(file, state_dir)
    state = ws.store.load()
    record = state.services.get(name)
    if record is None:
        raise ConfigError(f"no service named {name!r} in state; known: {', '.join(state.services) or 'none'}")
    for line in ws.platform(record.platform, state.lineage).logs(record, tail, follow):
        click.echo(line)


@main.command()
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
    from taoplan.rendering import render_all

    ws = _open(file, state_dir)
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


@main.command()
@common
def doctor(file: Path, state_dir: str | None) -> None:
    """Check that every platform in use is reachable and ready, and that secrets are set."""
    from taoplan.doctor import run_checks

    ws = _open(file, state_dir)
    checks = run_checks(ws)
    for check in checks:
        mark = click.style("ok  ", fg="green") if check.ok else click.style("FAIL", fg="red")
        click.echo(f"{mark} {check.name}: {check.detail}")
    if not all(c.ok for c in checks):
        sys.exit(1)


from taoplan.cli_request import request, stats  # noqa: E402

main.add_command(request)
main.add_command(stats)
