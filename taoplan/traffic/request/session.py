"""One request end to end: find the service and its endpoint, send, log one row, explain failures.

This is the edge where state, the registry, platforms and the request log are read or written;
everything it calls on either side (routing, body rules, reply rules) stays pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taoplan.errors import RequestError
from taoplan.traffic.request.reply import OK, failure_message
from taoplan.traffic.request.routing import Target, route, targets_from_registry, targets_from_state
from taoplan.traffic.request.send import Exchange, OnWait, Post, asend, send
from taoplan.traffic.request.stream import Interrupted, OnText, stream

if TYPE_CHECKING:
    from taoplan.spec.references import References
    from taoplan.store.state import State
    from taoplan.traffic.log import RequestStore
    from taoplan.traffic.request.body import Prepared


@dataclass(frozen=True)
class Session:
    """A routed target plus what every request to it needs: rules, endpoint, log, caller."""

    refs: References
    target: Target
    url: str
    log: RequestStore
    caller: str
    via: str = "cli"
    log_content: bool = False
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)  # the endpoint's (a secret)

    def sending_line(self) -> str:
        t = self.target
        return f"Sending to name={t.name or '-'} job_id={t.job_id} arch={t.arch} url={self.url}"


def open_session(
    file: Path,
    state_dir: str | None = None,
    *,
    name: str | None = None,
    job_id: str | None = None,
    arch: str | None = None,
    caller: str | None = None,
    via: str = "cli",
    log_content: bool = False,
) -> Session:
    """Load state and the registry, route, and find the endpoint. Needs no services file for a job id."""
    from taoplan.spec.references import load_references
    from taoplan.store.registry import Registry
    from taoplan.store.state import StateStore, default_state_dir
    from taoplan.traffic.log import resolve_caller
    from taoplan.traffic.usage import open_project_store

    refs = load_references()
    store = StateStore(default_state_dir(file, state_dir))
    state = store.load()
    registry = targets_from_registry(Registry().entries())
    target = route(
        targets_from_state(state),
        registry,
        name=name,
        job_id=job_id,
        arch=arch,
        valid_archs=[*refs.request.archs, *refs.servers.types],  # a server's type routes like an arch
    )
    url, headers = _endpoint(file, state_dir, state, target)
    log = open_project_store(file, state_dir)
    return Session(refs, target, url, log, resolve_caller(caller), via, log_content, headers)


def _endpoint(
    file: Path, state_dir: str | None, state: State, target: Target
) -> tuple[str, Mapping[str, str]]:
    """The platform's current endpoint for a state service (it may reopen a tunnel) and the headers
    it wants (in memory only); else host_url."""
    if target.source == "state" and target.name and file.is_file():
        from taoplan import platforms
        from taoplan.engine.workspace import Workspace

        record = state.record_of(target.job_id)
        if record is not None and platforms.is_available(record.platform):
            ws = Workspace.open(file, state_dir)
            # Workspace.endpoint (when present) reopens a dead tunnel under the state lock and
            # reports an Endpoint(url, detail); older platforms return the URL directly.
            reopen: Any = getattr(ws, "endpoint", None)
            if reopen is None:
                return str(ws.platform(record.platform, state.lineage).endpoint(record)), {}
            found = reopen(state, record)
            if found.url is None:
                raise RequestError(f"{target.name} cannot be reached now: {found.detail}")
            return str(found.url), dict(found.headers)
    if not target.host_url:
        raise RequestError(f"{target.who} has no endpoint recorded (is it started?)")
    return target.host_url, {}


def _post(
    session: Session, prepared: Prepared, timeout: float | None, wait: float, on_wait: OnWait | None
) -> Post:
    chat = session.refs.request.chat
    return Post(
        session.url, prepared.payload, chat, timeout or chat.timeout_seconds, wait, on_wait, session.headers
    )


def _log(session: Session, prepared: Prepared, ex: Exchange) -> None:
    from taoplan.traffic.log import Redactor, build_row

    session.log.write(Redactor.from_environ(session.refs).row(build_row(session, prepared, ex)))
    session.log.flush()  # a command or script may exit right after its request


def _finish(session: Session, prepared: Prepared, post: Post, ex: Exchange) -> dict[str, Any]:
    """Log the exchange, then return the reply body or raise the one-line reason it failed."""
    _log(session, prepared, ex)
    if ex.transport_error is not None:
        raise RequestError(f"cannot reach {session.target.who} at {session.url}: {ex.transport_error}")
    assert ex.answer is not None
    if ex.answer.kind != OK:
        waited = post.wait > 0 and ex.attempts > 1
        raise RequestError(failure_message(session.target, ex.answer, wait=post.wait, waited=waited))
    body: dict[str, Any] = ex.body
    return body


def perform(
    session: Session,
    prepared: Prepared,
    *,
    timeout: float | None = None,
    wait: float = 0.0,
    on_wait: OnWait | None = None,
) -> dict[str, Any]:
    """Send, log one line, and return the reply body; a failure raises RequestError (one line)."""
    post = _post(session, prepared, timeout, wait, on_wait)
    return _finish(session, prepared, post, send(post))


async def aperform(
    session: Session,
    prepared: Prepared,
    *,
    timeout: float | None = None,
    wait: float = 0.0,
    on_wait: OnWait | None = None,
) -> dict[str, Any]:
    """``perform`` for asyncio callers."""
    post = _post(session, prepared, timeout, wait, on_wait)
    return _finish(session, prepared, post, await asend(post))


def perform_streaming(
    session: Session, prepared: Prepared, on_text: OnText, *, timeout: float | None = None
) -> dict[str, Any]:
    """``perform`` for a conversation turn: streamed into ``on_text`` where the server streams, no retry.
    Ctrl+C cancels it: the row is logged as cancelled, then KeyboardInterrupt goes on to the caller."""
    post = _post(session, prepared, timeout, 0.0, None)
    try:
        ex = stream(post, on_text)
    except Interrupted as exc:
        _log(session, prepared, exc.exchange)
        raise KeyboardInterrupt from None
    return _finish(session, prepared, post, ex)
