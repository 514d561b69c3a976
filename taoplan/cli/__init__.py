"""The command line: click commands only. Each parses its flags, calls one function of a lower layer
and prints through ``views``; errors become messages and exit codes in one place (``app``).

Only click is imported at start-up; every command imports what it needs when it runs, so
``taoplan --help`` stays fast. Nothing imports this layer.
"""

from __future__ import annotations

from taoplan.cli import converge, show, talk
from taoplan.cli.app import main
from taoplan.cli.chat import chat
from taoplan.cli.gateway import gateway
from taoplan.cli.keys import keys

for _command in (
    converge.validate,
    converge.schema,
    converge.plan,
    converge.apply,
    converge.destroy,
    converge.unlock,
    show.status,
    show.logs,
    show.render,
    show.doctor,
    talk.request,
    talk.stats,
    chat,
    gateway,
    keys,
):
    main.add_command(_command)

__all__ = ["main"]
