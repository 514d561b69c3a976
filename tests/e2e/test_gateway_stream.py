"""`taoplan gateway` in front of a streaming upstream (bench/upstream_echo.py, a real OpenAI-compatible
server process: SSE with one chunk per word), with the official `openai` client. No Docker needed.

The TAO servers answer whole (tests/e2e/test_gateway.py); this covers the pass-through path: chunks
as they arrive, usage on the last chunk, an upstream that dies mid-stream, a client that leaves.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from bench.gateway import gateway_project
from tests.conftest import ROOT
from tests.e2e.gateway_support import SAMPLING, GatewayProcess, free_port, rows, until, user


@pytest.fixture
def echo_gateway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[GatewayProcess, subprocess.Popen[bytes], Path]]:
    monkeypatch.setenv("TAO_INF_MS_STATE", str(tmp_path / "registry.json"))
    port = free_port()
    echo = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "upstream_echo.py"), "--port", str(port), "--itl-ms", "150"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    project = gateway_project(tmp_path / "proj", port, 4999, "none")  # --listen overrides the port
    until("echo up", lambda: _answers(port))
    gw = GatewayProcess(project)
    try:
        yield gw, echo, project / ".taoplan"
    finally:
        gw.stop()
        echo.kill()
        echo.wait()


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_streaming_upstream_is_passed_through_chunk_by_chunk_with_usage(echo_gateway) -> None:
    gw, _echo, state_dir = echo_gateway
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0)
    whole = client.chat.completions.create(model="echo", messages=user("one two three"), **SAMPLING)
    assert (
        whole.choices[0].message.content == "one two three" and whole.usage and whole.usage.total_tokens == 6
    )
    stream = client.chat.completions.create(
        model="echo",
        messages=user("a b c d"),
        stream=True,
        stream_options={"include_usage": True},
        **SAMPLING,
    )
    chunks = list(stream)
    words = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert words == ["a", " b", " c", " d"]  # the upstream's own chunks, not one merged answer
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4
    row = until("row", lambda: [r for r in rows(state_dir) if r.total_tokens == 8])[-1]
    assert row.status == 200 and row.ttft_ms is not None and row.ttft_ms < row.latency_ms
    assert (row.prompt_tokens, row.completion_tokens) == (4, 4)


def test_an_upstream_dying_mid_stream_is_an_sse_error_event(echo_gateway) -> None:
    gw, echo, state_dir = echo_gateway
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0)
    stream = client.chat.completions.create(
        model="echo", messages=user(" ".join(["w"] * 40)), stream=True, **SAMPLING
    )
    got = iter(stream)
    next(got)
    echo.send_signal(signal.SIGKILL)
    with pytest.raises(openai.APIError) as failed:
        for _ in got:
            pass
    assert "closed the connection" in failed.value.message or "without [DONE]" in failed.value.message
    until(
        "row",
        lambda: any(
            r.error_type in ("upstream_disconnected", "upstream_incomplete") for r in rows(state_dir)
        ),
    )


def test_a_client_leaving_mid_stream_cancels_the_upstream_request(echo_gateway) -> None:
    gw, _echo, state_dir = echo_gateway
    body = {"model": "echo", "stream": True, "messages": user(" ".join(["w"] * 40)), **SAMPLING}
    with httpx.stream("POST", gw.url + "/v1/chat/completions", json=body, timeout=30) as reply:
        assert reply.status_code == 200
        next(reply.iter_bytes())
    until("499 row", lambda: any(r.status == 499 for r in rows(state_dir)))
    until("nothing in flight", lambda: "taoplan_gateway_requests_in_flight 0.0" in gw.get("/metrics").text)
    assert (
        gw.chat({**body, "stream": False, "messages": user("still fine")}).json()["choices"][0]["message"][
            "content"
        ]
        == "still fine"
    )
