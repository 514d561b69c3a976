"""`taoplan stats` end to end: the request store, what still runs, pricing, then stats' summary.

This is the edge that reads state, the registry, the services file and the store; the arithmetic
stays in ``taoplan.traffic.stats`` (pure).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Container, Iterable, Mapping

    from taoplan.spec.config import Pricing
    from taoplan.spec.gateway_settings import GatewaySettings
    from taoplan.traffic.log import RequestRow, RequestStore
    from taoplan.traffic.stats import LiveJob, ServiceStats, Usage

BY = ("service", "caller", "end-user")


@dataclass
class Report:
    now: datetime
    since: datetime | None
    pricing: dict[str, Pricing] | None  # None: no services file
    by: str
    services: list[ServiceStats]
    groups: dict[str, Usage] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        from taoplan.traffic.stats import split_group

        doc: dict[str, Any] = {
            "now": self.now.isoformat(),
            "since": self.since.isoformat() if self.since else None,
            "by": self.by,
            "pricing": {k: v.gpu_hour for k, v in (self.pricing or {}).items()},
        }
        tokens = {
            k: v.model_dump(include={"prompt_token", "completion_token"}, exclude_none=True)
            for k, v in (self.pricing or {}).items()
            if v.prompt_token is not None or v.completion_token is not None
        }
        if tokens:
            doc["token_pricing"] = tokens
        if self.by == "service":
            doc["services"] = [s.to_json() for s in self.services]
        elif self.by == "caller":
            doc["callers"] = [{"caller": k, **u.to_json()} for k, u in self.groups.items()]
        else:
            doc["end_users"] = [
                {"caller": split_group(k)[0], "end_user": split_group(k)[1], **u.to_json()}
                for k, u in self.groups.items()
            ]
        return doc


def file_settings(file: Path) -> tuple[GatewaySettings, dict[str, Pricing] | None]:
    """The services file's gateway: settings and pricing: (defaults and None when there is no file)."""
    from taoplan.spec.gateway_settings import GatewaySettings

    if not file.is_file():
        return GatewaySettings(), None
    from taoplan.spec.config import load_services
    from taoplan.spec.references import load_references

    config = load_services(file, load_references())
    return config.gateway, dict(config.pricing)


def live_jobs(file: Path, state_dir: str | None) -> dict[str, LiveJob]:
    """What still runs: the registry's jobs, then this project's state (which wins on the same job id)."""
    from taoplan.store.registry import Registry
    from taoplan.store.state import StateStore, default_state_dir
    from taoplan.traffic.request.routing import targets_from_registry, targets_from_state
    from taoplan.traffic.stats import LiveJob

    state = StateStore(default_state_dir(file, state_dir)).load()
    running = targets_from_registry(Registry().entries()) + targets_from_state(state)
    return {
        t.job_id: LiveJob(
            t.job_id, t.group if t.source == "state" else t.name, t.platform, t.num_gpus, t.started_at
        )
        for t in running
    }


def open_project_store(file: Path, state_dir: str | None) -> RequestStore:
    """The request store the services file names (its gateway.database), in its state directory,
    with the file's pricing and what runs now for ``keys.spent``."""
    from taoplan.store.state import default_state_dir
    from taoplan.traffic.log import open_store

    settings, pricing = file_settings(file)
    return open_store(
        default_state_dir(file, state_dir), settings, pricing=pricing, live=lambda: live_jobs(file, state_dir)
    )


def with_token_cost(record: dict[str, Any], pricing: dict[str, Pricing]) -> dict[str, Any]:
    """The record with ``token_cost``: its own cost, else its tokens at the platform's prices."""
    from taoplan.traffic.log.cost import token_price

    if record.get("cost") is not None:
        record["token_cost"] = record["cost"]
    elif record.get("prompt_tokens") is not None or record.get("completion_tokens") is not None:
        price = token_price(
            pricing, record.get("platform"), record.get("prompt_tokens"), record.get("completion_tokens")
        )
        record["token_cost"] = price or None
    return record


def collect(file: Path, state_dir: str | None, since: str | None, by: str = "service") -> Report:
    from taoplan.store.state import StateStore, default_state_dir
    from taoplan.traffic import stats as st
    from taoplan.traffic.log import open_store

    now = datetime.now(timezone.utc)
    start = now - timedelta(seconds=st.parse_duration(since)) if since else None
    settings, pricing = file_settings(file)
    state = StateStore(default_state_dir(file, state_dir)).load()
    live = live_jobs(file, state_dir)
    with open_store(default_state_dir(file, state_dir), settings) as log:
        rows = log.rows(start.timestamp() if start else None)
    return report(
        rows,
        now=now,
        since=start,
        pricing=pricing,
        state_jobs=[r.job_id for r in state.records()],
        live=live,
        by=by,
    )


def report(
    rows: Iterable[RequestRow],
    *,
    now: datetime,
    since: datetime | None,
    pricing: dict[str, Pricing] | None,
    state_jobs: Iterable[str],  # every recorded workload's job id (retiring ones too)
    live: Mapping[str, LiveJob],
    by: str,
    services: Container[str] | None = None,
) -> Report:
    """The stats of ``rows`` (the store's, newer than ``since``): `taoplan stats` and the dashboard's
    cost view; ``services``: only these services' lines (and their callers' shares)."""
    from taoplan.traffic import stats as st

    records = [with_token_cost(row.to_record(), pricing or {}) for row in rows]
    result = st.summarize(
        records,
        live=live,
        state_jobs=state_jobs,
        pricing={k: v.gpu_hour for k, v in (pricing or {}).items()},
        now=now,
        since=since,
        group=st.end_user_group if by == "end-user" else st.caller_group,
    )
    if services is not None:
        result = [s for s in result if s.service in services]
    groups = st.by_group(result) if by != "service" else {}
    return Report(now, since, pricing, by, result, groups)
