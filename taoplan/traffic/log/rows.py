"""One row of the request log, the same for every path (gateway, `taoplan request`, the client)."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from typing import Any


@dataclass
class RequestRow:
    request_id: str  # uuid4 hex
    time: float  # epoch seconds, when the request arrived
    caller: str  # key name (gateway) or OS user / --caller / TAOPLAN_CALLER
    end_user: str | None  # body "user" or x-taoplan-user header
    service: str | None
    job_id: str | None
    platform: str | None
    arch: str | None  # network_arch or server type
    num_gpus: int | None
    started_at: str | None  # the workload's started_at (for uptime cost attribution)
    via: str  # "gateway" | "cli" | "client" | "chat" | "smoke"
    status: int  # HTTP status returned to the caller (0: no HTTP answer, see transport_error)
    error_type: str | None
    latency_ms: float  # total of the answering attempt, as the caller saw it
    upstream_ms: float | None
    ttft_ms: float | None  # time to first token/byte of the answer (streaming)
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    bytes_in: int
    bytes_out: int
    cost: float | None  # per-token cost when pricing gives per-token prices, else None
    defaulted: str | None  # comma-separated sampling fields the gateway filled (server-defaults)
    content: dict[str, Any] | None  # only with log_content: true; already redacted
    # beyond the interface, for `taoplan request --wait` (defaults suit the gateway)
    wait_ms: float = 0.0  # time spent waiting on a service that was still loading
    attempts: int = 1
    transport_error: str | None = None  # why no HTTP answer came (connection refused, timeout)

    def to_record(self) -> dict[str, Any]:
        """The mapping `taoplan stats` reads (time as ISO 8601, as the old JSON lines had it)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["time"] = iso(self.time)
        out["status"] = self.status or None  # 0: no HTTP answer, as the old lines said it
        if self.content is None:
            del out["content"]  # as in the old lines: present only when content was logged
        out["request_bytes"], out["response_bytes"] = self.bytes_in, self.bytes_out
        return out


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(RequestRow))
_CONTENT = COLUMNS.index("content")


def new_request_id() -> str:
    return uuid.uuid4().hex


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds")


def to_params(row: RequestRow) -> tuple[Any, ...]:
    values = [getattr(row, c) for c in COLUMNS]
    values[_CONTENT] = None if row.content is None else json.dumps(row.content, ensure_ascii=False)
    return tuple(values)


def from_params(values: tuple[Any, ...] | list[Any]) -> RequestRow:
    data = dict(zip(COLUMNS, values, strict=True))
    if data["content"] is not None:
        data["content"] = json.loads(data["content"])
    return RequestRow(**data)


def from_jsonl(record: dict[str, Any], line: str) -> RequestRow | None:
    """A line of the old requests.jsonl as a row (its id is derived from the line, so a repeated
    import inserts nothing twice); None when the line has no readable time."""
    try:
        when = datetime.fromisoformat(str(record["time"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)

    def num(name: str, kind: type = float) -> Any:
        value = record.get(name)
        return kind(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    content = record.get("content")
    return RequestRow(
        request_id=hashlib.sha256(line.encode()).hexdigest()[:32],
        time=when.timestamp(),
        caller=str(record.get("caller") or "?"),
        end_user=None,
        service=record.get("service"),
        job_id=record.get("job_id"),
        platform=record.get("platform"),
        arch=record.get("arch"),
        num_gpus=num("num_gpus", int),
        started_at=record.get("started_at"),
        via=str(record.get("via") or "cli"),
        status=num("status", int) or 0,
        error_type=record.get("error_type"),
        latency_ms=num("latency_ms") or 0.0,
        upstream_ms=None,
        ttft_ms=None,
        prompt_tokens=None,
        completion_tokens=None,
        total_tokens=None,
        bytes_in=num("request_bytes", int) or 0,
        bytes_out=num("response_bytes", int) or 0,
        cost=None,
        defaulted=None,
        content=content if isinstance(content, dict) else None,
        wait_ms=num("wait_ms") or 0.0,
        attempts=num("attempts", int) or 1,
        transport_error=record.get("transport_error"),
    )
