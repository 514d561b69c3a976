"""A load loop for the rollout tests: the official `openai` client sends chat completions through a
running `taoplan gateway` at about 20 requests per second, bounded in count and time, to loopback
only, and keeps every outcome so a test can assert that none failed."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai

from tests.e2e.gateway_support import SAMPLING, URL_IMAGE, GatewayProcess, create_key, until, user

RATE = 20.0  # requests per second
WORKERS = 8  # threads, so that slow replies do not slow the rate down
MOST = 6000  # requests, whatever happens
LONGEST = 600.0  # seconds, whatever happens


@dataclass
class LoadLoop:
    base_url: str  # the gateway's, http://127.0.0.1:PORT
    key: str
    model: str
    image: str | None = URL_IMAGE  # cosmos-rl wants media; None for an arch that does not
    replies: list[dict[str, Any]] = field(default_factory=list)  # the fake model's echo of each
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _sent: int = 0
    _began: float = 0.0

    def __enter__(self) -> LoadLoop:
        self._began = time.monotonic()
        for i in range(WORKERS):
            thread = threading.Thread(target=self._run, name=f"load-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(90)

    def _ticket(self) -> int | None:
        """The next request's number, or None when the loop is over."""
        with self._lock:
            if self._stop.is_set() or self._sent >= MOST or time.monotonic() - self._began > LONGEST:
                return None
            self._sent += 1
            return self._sent

    def _run(self) -> None:
        client = openai.OpenAI(base_url=self.base_url + "/v1", api_key=self.key, max_retries=0, timeout=60)
        while (n := self._ticket()) is not None:
            time.sleep(max(0.0, self._began + n / RATE - time.monotonic()))
            try:
                reply = client.chat.completions.create(
                    model=self.model, messages=user(f"request {n}", self.image), **SAMPLING
                )
                self.replies.append(json.loads(reply.choices[0].message.content or ""))
            except Exception as exc:  # noqa: BLE001 - every failure is counted, whatever its kind
                self.failures.append(f"request {n} at {time.monotonic() - self._began:.2f} s: {exc!r}")
        client.close()

    def wait_for(self, count: int, timeout: float = 60) -> None:
        """Until at least ``count`` more replies came back (the loop runs meanwhile)."""
        target = len(self.replies) + len(self.failures) + count
        deadline = time.monotonic() + timeout
        while len(self.replies) + len(self.failures) < target:
            assert time.monotonic() < deadline, f"the load loop stalled: {self.summary()}"
            time.sleep(0.05)

    def model_paths(self) -> Counter[str]:
        return Counter(str(r.get("model_path")) for r in self.replies)

    def summary(self) -> str:
        head = "; ".join(self.failures[:5])
        return f"{len(self.replies)} answered, {len(self.failures)} failed: {head}"


class Served:
    """A running gateway with a key, answering for ``chat``; stopped on exit."""

    def __init__(
        self,
        project: Path,
        model: str = "chat",
        env: dict[str, str] | None = None,
        image: str | None = URL_IMAGE,  # None for an arch that takes text only
    ) -> None:
        self.key = create_key(project / ".taoplan", "load")
        self.model = model
        self.image = image
        self.gw = GatewayProcess(project, env=env)
        until(f"the gateway routes {model}", self.answers, timeout=120)

    def answers(self) -> str:
        reply = self.gw.chat({"model": self.model, "messages": user("hi", self.image), **SAMPLING}, self.key)
        return "" if reply.status_code != 200 else reply.text

    def load(self) -> LoadLoop:
        return LoadLoop(self.gw.url, self.key, self.model, self.image)

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.gw.stop() == 0, self.gw.text()
