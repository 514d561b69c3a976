"""What a request row may hold: who the caller is, and no secret ever. Known credential values
(references' secret_names and secret-looking environment variables) and credential patterns are
redacted from every string before a row is written. ``build_row`` turns one `taoplan request` /
client exchange into its row; the gateway builds its own rows and scrubs content with ``Redactor``.
"""

from __future__ import annotations

import getpass
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taoplan.common import fsutil
from taoplan.traffic.log.rows import RequestRow, new_request_id

if TYPE_CHECKING:
    from taoplan.spec.references import References
    from taoplan.traffic.request import Exchange, Prepared, Session

# Environment variables whose values are treated as secrets besides references' secret_names.
SECRETISH_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|ACCESS_KEY|PRIVATE_KEY)", re.IGNORECASE)
MIN_SECRET_LEN = 6
REDACTED = "[REDACTED]"
# taoplan's own gateway keys, wherever they would appear
KEY_PATTERN = re.compile(r"tp-[A-Za-z0-9_-]{32}")


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
        patterns = tuple(re.compile(p) for p in refs.service.secret_value_patterns) + (KEY_PATTERN,)
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

    def row(self, row: RequestRow) -> RequestRow:
        """The row with every string field scrubbed (in place; returned for chaining)."""
        for name, value in vars(row).items():
            if isinstance(value, (str, dict)):
                setattr(row, name, self.scrub(value))
        return row


def build_row(session: Session, prepared: Prepared, ex: Exchange) -> RequestRow:
    """The row for one request of `taoplan request` or the client (pure; not yet redacted)."""
    target = session.target
    answer = ex.answer
    content: dict[str, Any] | None = None
    if session.log_content:
        from taoplan.traffic.request.media import data_uri_summary, decode_data_uri
        from taoplan.traffic.request.reply import reply_content

        content = dict(prepared.content)
        reply = reply_content(ex.body) if ex.status == 200 else None
        if reply is not None:
            decoded = decode_data_uri(reply)
            content["response"] = data_uri_summary(decoded[0], len(decoded[1])) if decoded else reply
    usage = ex.body.get("usage") if isinstance(ex.body, dict) else None
    usage = usage if isinstance(usage, dict) else {}

    def tokens(name: str) -> int | None:
        value = usage.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    return RequestRow(
        request_id=new_request_id(),
        time=ex.started,
        caller=session.caller,
        end_user=None,
        service=target.group if target.source == "state" else target.name,
        job_id=target.job_id,
        platform=target.platform,
        arch=target.arch,
        num_gpus=target.num_gpus,
        started_at=target.started_at,
        via=session.via,
        status=ex.status or 0,
        error_type=(answer.error_type or None) if answer is not None and answer.kind != "ok" else None,
        latency_ms=round(ex.latency_ms, 3),
        upstream_ms=round(ex.latency_ms, 3) if ex.status is not None else None,
        ttft_ms=None,
        prompt_tokens=tokens("prompt_tokens"),
        completion_tokens=tokens("completion_tokens"),
        total_tokens=tokens("total_tokens"),
        bytes_in=ex.request_bytes,
        bytes_out=ex.response_bytes,
        cost=None,
        defaulted=None,
        content=content,
        wait_ms=round(ex.wait_ms, 3),
        attempts=ex.attempts,
        transport_error=ex.transport_error,
    )


def read_jsonl(path: Path) -> tuple[list[tuple[dict[str, Any], str]], int]:
    """Every readable line of an old requests.jsonl with its text, and how many could not be read."""
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
            records.append((data, line))
        else:
            bad += 1
    return records, bad


def _lines(text: str) -> Iterator[str]:
    for line in text.splitlines():
        if line.strip():
            yield line
