"""``taoplan chat``: a terminal conversation with one service, on top of ``taoplan.traffic.request``.

conversation holds what a chat keeps between turns and builds each turn's request (pure); repl is the
read-send-print loop. Routing, body and media checks, sampling prompting and the request log are the
ones of ``taoplan request``: nothing here decides them again. May import traffic.request and below.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taoplan.traffic.chat.conversation import Conversation
from taoplan.traffic.chat.repl import HISTORY_FILE, Repl, run_chat

if TYPE_CHECKING:
    from taoplan.traffic.request import Session
    from taoplan.traffic.request.sampling import Ask

__all__ = ["HISTORY_FILE", "Conversation", "Repl", "open_chat", "run_chat"]


def open_chat(
    file: Path,
    state_dir: str | None,
    *,
    name: str | None,
    job_id: str | None,
    arch: str | None,
    caller: str | None,
    log_content: bool,
    sampling: Mapping[str, Any],
    accept_defaults: bool,
    make_ask: Callable[[str], Ask] | None,
) -> tuple[Session, dict[str, Any], Path]:
    """Route as ``taoplan request`` routes, then settle the sampling values before the first turn: given
    as flags, accepted defaults, or asked in one round (``make_ask(header)``, on a terminal); else an
    error listing them with their defaults."""
    from taoplan.store.state import default_state_dir
    from taoplan.traffic.request import open_session, resolve_sampling, rules_for

    session = open_session(
        file,
        state_dir,
        name=name,
        job_id=job_id,
        arch=arch,
        caller=caller,
        via="chat",
        log_content=log_content,
    )
    target = session.target
    rules = rules_for(target, session.refs.request)
    given = {k: v for k, v in sampling.items() if v is not None}
    header = f"Sampling values for {target.who} ({target.arch}); Enter accepts the default:"
    ask = make_ask(header) if make_ask is not None else None
    values = resolve_sampling(target.arch, rules, given, accept_defaults=accept_defaults, ask=ask)
    return session, values, default_state_dir(file, state_dir)
