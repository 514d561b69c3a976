"""The Python client: the same routing, body rules, request log and errors as `taoplan request`.

    from taoplan import client

    svc = client.get_service("reason", file="services.yaml")
    text = svc.chat("What is in this image?", images=["https://example.com/cat.jpg"],
                    max_tokens=256, temperature=0.2, top_p=0.9)

Failures raise ``taoplan.errors.RequestError`` with the same one-line message the CLI prints.
Sampling values are never filled in silently: pass every field of the arch, or ``accept_defaults=True``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taoplan.traffic.request import (
    Prepared,
    Session,
    aperform,
    decode_data_uri,
    open_session,
    perform,
    prepare_for,
    reply_content,
    rules_for,
)

__all__ = ["Service", "get_service", "decode_data_uri"]

log = logging.getLogger("taoplan.client")


def get_service(
    name: str | None = None,
    *,
    job_id: str | None = None,
    arch: str | None = None,
    file: str | Path = "services.yaml",
    state_dir: str | None = None,
    caller: str | None = None,
    log_content: bool = False,
) -> Service:
    """The service to talk to, chosen by the rules of `taoplan request` (job id, name, arch, the only one)."""
    session = open_session(
        Path(file),
        state_dir,
        name=name,
        job_id=job_id,
        arch=arch,
        caller=caller,
        via="client",
        log_content=log_content,
    )
    return Service(session)


def _keyword(field: str) -> str:
    """How a request field is named in messages to Python callers."""
    return "accept_defaults=True" if field == "accept_defaults" else field


@dataclass(frozen=True)
class Service:
    """One routed service. Every call is one row in the project's request log (gateway.database)."""

    session: Session

    @property
    def name(self) -> str | None:
        return self.session.target.name

    @property
    def job_id(self) -> str:
        return self.session.target.job_id

    @property
    def arch(self) -> str:
        return self.session.target.arch

    @property
    def url(self) -> str:
        return self.session.url

    @property
    def sampling_defaults(self) -> dict[str, Any]:
        """The sampling fields this arch takes and their defaults (references/request.yaml)."""
        fields = rules_for(self.session.target, self.session.refs.request).archs[self.arch].sampling
        return {name: spec.default for name, spec in fields.items()}

    def _prepare(
        self,
        prompt: str,
        images: Sequence[str],
        system: str | None,
        *,
        videos: Sequence[str] = (),
        accept_defaults: bool = False,
        **sampling: Any,
    ) -> Prepared:
        """The request options every call takes besides timeout and wait, checked before sending."""
        prepared = prepare_for(
            self.session.target,
            self.session.refs.request,
            prompt=prompt,
            system=system,
            images=[str(i) for i in images],
            videos=[str(v) for v in videos],
            sampling=sampling,
            accept_defaults=accept_defaults,
            flag=_keyword,
        )
        log.info("%s", self.session.sending_line())
        return prepared

    def raw(
        self,
        prompt: str,
        images: Sequence[str] = (),
        system: str | None = None,
        *,
        timeout: float | None = None,
        wait: float = 0.0,
        **options: Any,
    ) -> dict[str, Any]:
        """The whole chat-completions response. ``options``: videos, accept_defaults, sampling fields."""
        prepared = self._prepare(prompt, images, system, **options)
        return perform(self.session, prepared, timeout=timeout, wait=wait)

    def chat(self, prompt: str, images: Sequence[str] = (), system: str | None = None, **options: Any) -> str:
        """The reply text (cosmos-predict2.5: a ``data:video/mp4;base64,…`` string; see decode_data_uri).

        Takes what ``raw`` takes.
        """
        return reply_content(self.raw(prompt, images, system, **options)) or ""

    async def araw(
        self,
        prompt: str,
        images: Sequence[str] = (),
        system: str | None = None,
        *,
        timeout: float | None = None,
        wait: float = 0.0,
        **options: Any,
    ) -> dict[str, Any]:
        """``raw`` for asyncio."""
        prepared = self._prepare(prompt, images, system, **options)
        return await aperform(self.session, prepared, timeout=timeout, wait=wait)

    async def achat(
        self, prompt: str, images: Sequence[str] = (), system: str | None = None, **options: Any
    ) -> str:
        """``chat`` for asyncio."""
        return reply_content(await self.araw(prompt, images, system, **options)) or ""
