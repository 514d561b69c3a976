"""Helpers of the gateway e2e tests: a real `taoplan gateway` process, keys, rows, polling."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

URL_IMAGE = "https://example.com/cat.jpg"
SAMPLING = {"max_tokens": 16, "temperature": 0.1, "top_p": 0.5}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class GatewayProcess:
    """`python -m taoplan gateway` in a project folder, logging to a file beside it."""

    def __init__(self, project: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = project.parent / f"gateway-{self.port}.log"
        argv = [sys.executable, "-m", "taoplan", "gateway", "--listen", f"127.0.0.1:{self.port}", *args]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(argv, cwd=project, stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"gateway exited {self.proc.returncode}: {self.text()}")
            try:
                if httpx.get(self.url + "/health/live", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError(f"gateway did not start: {self.text()}")

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 45) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10, **kw)

    def chat(self, body: Any, key: str | None = None, **kw: Any) -> httpx.Response:
        headers = {"Content-Type": "application/json", **kw.pop("headers", {})}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.post(
            self.url + "/v1/chat/completions",
            content=content,
            headers=headers,
            timeout=kw.pop("timeout", 30),
            **kw,
        )


def user(text: str, image: str | None = None) -> list[dict[str, Any]]:
    if image is None:
        return [{"role": "user", "content": text}]
    parts = [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": image}}]
    return [{"role": "user", "content": parts}]


def until(what: str, check: Callable[[], Any], timeout: float = 30.0, every: float = 0.2) -> Any:
    """Poll until ``check()`` is truthy (bounded; no timing is asserted)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"{what}: not after {timeout:.0f} s (last: {last!r})")


def create_key(state_dir: Path, name: str, **limits: Any) -> str:
    from taoplan.traffic.log import open_store

    store = open_store(state_dir, quiet=True)
    try:
        return store.keys.create(name, limits.get("services"), limits.get("rpm"), limits.get("budget"))
    finally:
        store.close()


def rows(state_dir: Path) -> list[Any]:
    from taoplan.traffic.log import open_store

    store = open_store(state_dir, quiet=True)
    try:
        return [r for r in store.rows() if r.via == "gateway"]
    finally:
        store.close()


def error_of(reply: httpx.Response) -> dict[str, Any]:
    """The OpenAI error object of a refusal; never a traceback, never a 500."""
    assert reply.status_code != 500, reply.text
    assert "Traceback" not in reply.text
    body = reply.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert {"message", "type", "code"} <= set(error), error
    return error
