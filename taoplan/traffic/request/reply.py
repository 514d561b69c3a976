"""What a reply means, and the one-line message a failed one becomes (pure).

Not-ready (202/503 with a retry type) is told apart from will-never-load (a fatal type) so that
--wait retries only what can still succeed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taoplan.spec.references import ChatRefs
    from taoplan.traffic.request.routing import Target

OK, RETRY, FATAL, FAILED = "ok", "retry", "fatal", "failed"


@dataclass(frozen=True)
class Answer:
    """What one reply means: ok, retry (not ready yet), fatal (will never load), failed (this request)."""

    kind: str
    status: int
    error_type: str = ""
    message: str = ""


def classify(status: int, body: Any, chat: ChatRefs) -> Answer:
    error_type, message = "", ""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error_type = str(body["error"].get("type") or "")
        message = str(body["error"].get("message") or "")
    elif isinstance(body, dict) and isinstance(body.get("error"), str):
        message = body["error"]
    if status == 200:
        if reply_content(body) is None:
            return Answer(FAILED, status, "bad_reply", "the reply has no choices[0].message.content")
        return Answer(OK, status)
    if error_type in chat.fatal_types:
        return Answer(FATAL, status, error_type, message)
    if status in (202, 503) and (error_type in chat.retry_types or status == 202):
        return Answer(RETRY, status, error_type or f"HTTP {status}", message)
    if body is None:
        return Answer(FAILED, status, f"HTTP {status}", "the reply is not JSON")
    return Answer(FAILED, status, error_type or f"HTTP {status}", message)


def reply_content(body: Any) -> str | None:
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return None
    return content if isinstance(content, str) else json.dumps(content)


def failure_message(target: Target, answer: Answer, *, wait: float, waited: bool) -> str:
    text = f"{answer.error_type}: {answer.message}" if answer.message else answer.error_type
    if answer.kind == RETRY:
        if waited:
            return f"{target.who} is still not ready after waiting {wait:g}s ({text})"
        return f"{target.who} is not ready yet ({text}); pass --wait SECONDS to wait for it"
    if answer.kind == FATAL:
        logs = f"taoplan logs {target.name}" if target.name else f"the logs of job {target.job_id}"
        return f"{target.who} cannot serve requests ({text}); see {logs}"
    return f"{target.who} answered HTTP {answer.status}: {text}"
