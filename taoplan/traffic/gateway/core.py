"""The gateway's shared parts, wired once: settings, rules, the routing table and its watcher, auth,
metrics, the request store and the upstream client; and ``record``, the one place a finished chat
request becomes a request-log row and metric samples."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taoplan.traffic.gateway.streaming import tokens

if TYPE_CHECKING:
    from taoplan.spec.gateway_settings import GatewaySettings
    from taoplan.spec.references import References
    from taoplan.traffic.gateway.auth import Auth
    from taoplan.traffic.gateway.chat import Call
    from taoplan.traffic.gateway.metrics import Metrics
    from taoplan.traffic.gateway.table import Table
    from taoplan.traffic.gateway.watcher import Watcher
    from taoplan.traffic.log import Redactor, RequestStore


_VERSION_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_VERSION_SET = (0x4000 << 64) | (0x8000 << 48)


def request_id() -> str:
    """A uuid4-shaped hex id from the process's PRNG: an id, not a secret, and no syscall per request."""
    return f"{(random.getrandbits(128) & _VERSION_CLEAR) | _VERSION_SET:032x}"


@dataclass
class Gateway:
    settings: GatewaySettings
    refs: References
    table: Table
    auth: Auth
    metrics: Metrics
    store: RequestStore
    redactor: Redactor
    file: Path
    state_dir: str | None
    session: Any = None  # aiohttp.ClientSession, made inside the event loop
    watcher: Watcher = field(init=False)
    in_flight: int = 0
    draining: bool = False

    def record(self, call: Call) -> None:
        """One row in the request store and the metrics for a finished chat request."""

        from taoplan.traffic.log import RequestRow

        seconds = time.perf_counter() - call.started
        service = call.service
        target = service.target if service is not None else None
        prompt, completion, total = tokens(call.usage)
        cost = self.token_cost(service, prompt, completion)
        row = RequestRow(
            request_id=request_id(),
            time=call.time,
            caller=call.caller,
            end_user=call.end_user,
            service=target.group if target else None,  # the service, whichever replica answered
            job_id=target.job_id if target else None,
            platform=target.platform if target else None,
            arch=target.arch if target else None,
            num_gpus=target.num_gpus if target else None,
            started_at=target.started_at if target else None,
            via="gateway",
            status=call.status,
            error_type=call.error_type,
            latency_ms=round(seconds * 1000, 3),
            upstream_ms=None if call.upstream_s is None else round(call.upstream_s * 1000, 3),
            ttft_ms=None if call.ttft_s is None else round(call.ttft_s * 1000, 3),
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=total,
            bytes_in=call.bytes_in,
            bytes_out=call.bytes_out,
            cost=cost,
            defaulted=",".join(call.defaulted) or None,
            content=call.content,
        )
        if call.end_user is not None or call.content is not None:
            self.redactor.row(row)
        self.store.write(row)
        busy = cost
        if busy is None and service is not None and service.gpu_hour and call.upstream_s:
            busy = call.upstream_s * (target.num_gpus if target else 1) * service.gpu_hour / 3600.0
        self.auth.charged(call.caller, busy)
        self.metrics.observe(
            service.name if service is not None else "-",
            call.caller,
            call.status,
            seconds,
            call.upstream_s,
            call.ttft_s,
            busy,
        )

    def token_cost(self, service: Any, prompt: int | None, completion: int | None) -> float | None:
        """Per-token cost when the platform's pricing gives per-token prices and tokens were reported."""
        if service is None or (prompt is None and completion is None):
            return None
        pricing = self.watcher.workspace.config.pricing if self.watcher.workspace is not None else {}
        price = pricing.get(service.target.platform or "")
        if price is None or (price.prompt_token is None and price.completion_token is None):
            return None
        return (prompt or 0) * (price.prompt_token or 0.0) + (completion or 0) * (
            price.completion_token or 0.0
        )

    def content_of(self, body: dict[str, Any]) -> dict[str, Any]:
        """What ``log_content: true`` keeps of a request: messages (data: URIs as type and size) and sampling."""
        from taoplan.traffic.gateway.checks import STRUCTURAL
        from taoplan.traffic.request.media import data_uri_summary, decode_data_uri

        def part(item: Any) -> Any:
            if isinstance(item, dict):
                for key in ("image_url", "video_url"):
                    url = (item.get(key) or {}).get("url") if isinstance(item.get(key), dict) else None
                    if isinstance(url, str) and url.startswith("data:"):
                        decoded = decode_data_uri(url)
                        size = len(decoded[1]) if decoded else None
                        mime = decoded[0] if decoded else None
                        return {"type": key, key: {"url": data_uri_summary(mime, size)}}
            return item

        messages = []
        for message in body.get("messages") or []:
            content = message.get("content")
            if isinstance(content, list):
                message = {**message, "content": [part(p) for p in content]}
            messages.append(message)
        sampling = {k: v for k, v in body.items() if k not in STRUCTURAL}
        return {"messages": messages, "sampling": sampling}

    def reply_summary(self, body: dict[str, Any]) -> Any:
        from taoplan.traffic.request.media import data_uri_summary, decode_data_uri
        from taoplan.traffic.request.reply import reply_content

        text = reply_content(body)
        if text is None:
            return None
        decoded = decode_data_uri(text)
        return data_uri_summary(decoded[0], len(decoded[1])) if decoded else text
