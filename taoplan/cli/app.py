"""The `taoplan` command group. Errors become messages and exit codes here, and only here.

Only click is imported at start-up; every command imports what it needs, so `taoplan --help`
stays fast.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
import traceback
from typing import TYPE_CHECKING, Any

import click

# taoplan uses no pydantic plugins; looking for them scans every installed package's entry points.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

# At exit the interpreter would walk every object it ever tracked for cycles once more (40 ms after
# a plan, more than parsing 1,000 services); the process is ending, so freeze them instead.
atexit.register(gc.freeze)

if TYPE_CHECKING:
    pass


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


@click.group(
    cls=TaoplanGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.version_option(package_name="taoplan")
def main() -> None:
    """Declarative plan/apply for NVIDIA TAO inference microservices.

    Declare services in services.yaml, see what would change with `taoplan plan`, make it so
    with `taoplan apply`.
    """
