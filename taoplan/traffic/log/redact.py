"""The request log: one JSON line per request at <state dir>/requests.jsonl (append-only, 0600).

A line says who asked which service, how it went and how long it took. It holds no prompt or reply
unless the caller asked for --log-content, and never a secret: known credential values and patterns
are redacted from every string before the line is written.
"""

from __future__ import annotations

import getpass
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taoplan.common import fsutil

if TYPE_CHECKING:
    from taoplan.spec.references import References
    from taoplan.traffic.request import Exchange, Prepared, Session

LOG_FILE = "requests.jsonl"
FORMAT = 1
# Environment variables whose values are treated as secrets besides references' secret_names.
SECRETISH_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|ACCESS_KEY|PRIVATE_KEY)", re.IGNORECASE)
MIN_SECRET_LEN = 6
REDACTED = "[REDACTED]"


def resolve_caller(explicit: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """--caller, else TAOPLAN_CALLER, else the OS user."""
    env = os.environ if environ is None else environ
    if explicit:
        return explicit
    if env.get("TAOPLAN_CALLER"):
        return env["TAOPLAN_CALLER"]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid-{os.getuid()}"


@dataclass(frozen=True)
class Redactor:
    """Replaces secret values and credential-looking text in strings."""

    values: tuple[str, ...]
    patterns: tuple[re.Pattern[str], ...]

    @classmethod
    def from_environ(cls, refs: References, environ: Mapping[str, str] | None = None) -> Redactor:
        env = os.environ if environ is None else environ
        names = set(refs.service.secret_names)
        values = {
            value
            for name, value in env.items()
            if (name in names or SECRETISH_NAME.search(name)) and len(value) >= MIN_SECRET_LEN
        }
        patterns = tuple(re.compile(p) for p in refs.service.secret_value_patterns)
        # longest first, so a secret that contains another is replaced whole
        return cls(tuple(sorted(values, key=len, reverse=True)), patterns)

    def text(self, value: str) -> str:
        for secret in self.values:
            value = value.replace(secret, REDACTED)
        for pattern in self.patterns:
            value = pattern.sub(REDACTED, value)
        return value

    def scrub(self, data: Any) -> Any:
        if isinstance(data, str):
            return self.text(data)
        if isinstance(data, dict):
            return {self.text(str(k)): self.scrub(v) for k, v in data.items()}
        if isinstance(data, (list, tuple)):
            return [self.scrub(v) for v in data]
        return data


def build_record(session: Session, prepared: Prepared, ex: Exchange) -> dict[str, Any]:
    """The log line for one request (pure)."""
    target = session.target
    answer = ex.answer
    record: dict[str, Any] = {
        "format": FORMAT,
        "time": datetime.fromtimestamp(ex.started, timezone.utc).isoformat(timespec="milliseconds"),
        "service": target.name,
        "job_id": target.job_id,
        "arch": target.arch,
        "platform": target.platform,
        "num_gpus": target.num_gpus,
        "started_at": target.started_at,
        "caller": session.caller,
        "via": session.via,
        "status": ex.status,
        "error_type": (answer.error_type or None) if answer is not None and answer.kind != "ok" else None,
        "transport_error": ex.transport_error,
        "latency_ms": round(ex.latency_ms, 3),
        "wait_ms": round(ex.wait_ms, 3),
        "attempts": ex.attempts,
        "request_bytes": ex.request_bytes,
        "response_bytes": ex.response_bytes,
    }
    if session.log_content:
        from taoplan.traffic.request.media import data_uri_summary, decode_data_uri
        from taoplan.traffic.request.reply import reply_content

        content = dict(prepared.content)
        reply = reply_content(ex.body) if ex.status == 200 else None
        if reply is not None:
            decoded = decode_data_uri(reply)
            content["response"] = data_uri_summary(decoded[0], len(decoded[1])) if decoded else reply
        record["content"] = content
    return record


class RequestLog:
    def __init__(self, state_dir: Path, refs: References) -> None:
        self.dir = state_dir
        self.path = state_dir / LOG_FILE
        self.refs = refs

    def append(self, session: Session, prepared: Prepared, ex: Exchange) -> None:
        record = Redactor.from_environ(self.refs).scrub(build_record(session, prepared, ex))
        fsutil.ensure_private_dir(self.dir)
        fsutil.append_line(self.path, json.dumps(record, ensure_ascii=False), sync=False)


def read(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Every readable line of a request log, and how many lines could not be read."""
    text = fsutil.read_text(path)
    if text is None:
        return [], 0
    records, bad = [], 0
    for line in _lines(text):
        try:
            data = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(data, dict) and isinstance(data.get("time"), str):
            records.append(data)
        else:
            bad += 1
    return records, bad


def _lines(text: str) -> Iterator[str]:
    for line in text.splitlines():
        if line.strip():
            yield line
