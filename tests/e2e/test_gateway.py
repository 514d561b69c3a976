"""`taoplan gateway` in front of real TAO test-image services on Docker, driven by the official
`openai` client (sync, async, streaming) and by raw HTTP where the client cannot misbehave enough.

The services run the real nvidia-tao-core 7.3.0 server class with the fake models of testimage/,
which echo what the server received. Nothing here asserts a duration: waits are bounded polls.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from taoplan.traffic.log import resolve_caller
from tests.conftest import taoplan
from tests.e2e.conftest import docker, services_yaml
from tests.e2e.gateway_support import (
    SAMPLING,
    URL_IMAGE,
    GatewayProcess,
    create_key,
    error_of,
    rows,
    until,
    user,
)

pytestmark = pytest.mark.docker

SERVICES = {
    "rl-a": {"network_arch": "cosmos-rl", "model_path": "/models/a"},
    "rl-b": {"network_arch": "cosmos-rl", "model_path": "/models/b"},
    "data": {"network_arch": "tao-dataservices", "model_path": "hf_model://Qwen/Qwen3-VL-8B-Instruct"},
    "broken": {
        "network_arch": "cosmos-rl",
        "model_path": "/models/x",
        "env": {"TAO_FAKE_LOAD_FAIL": "no weights"},
    },
}


def status_rows(project: Path) -> dict[str, dict[str, Any]]:
    run = taoplan("status", "--json", "--no-refresh", cwd=project)
    return {row["name"]: row for row in json.loads(run.out)["services"]}


def apply(project: Path, text: str, code: int = 0) -> None:
    (project / "services.yaml").write_text(text)
    run = taoplan("apply", "--auto-approve", cwd=project)
    assert run.code == code, run.text


def test_official_client_routing_auth_limits_streaming_log_and_metrics(dproject: Path) -> None:
    apply(dproject, services_yaml(dproject.name, SERVICES), code=3)  # broken fails to load, by design
    state_dir = dproject / ".taoplan"
    keys = {
        "app": create_key(state_dir, "app"),
        "data-only": create_key(state_dir, "data-only", services=["data"]),
        "slow": create_key(state_dir, "slow", rpm=2),
        "broke": create_key(state_dir, "broke", budget=0.0),
    }
    gw = GatewayProcess(dproject)
    try:
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key=keys["app"], max_retries=0)

        # ---- sync: a service by name; the echo shows what the real server received
        reply = client.chat.completions.create(
            model="rl-a", messages=user("what is it?", URL_IMAGE), user="alice", **SAMPLING
        )
        echo = json.loads(reply.choices[0].message.content or "")
        assert (echo["prompt"], echo["media"], echo["model_path"]) == (
            "what is it?",
            [URL_IMAGE],
            "/models/a",
        )
        assert echo["sampling"] == {"max_new_tokens": 16, "temperature": 0.1, "top_p": 0.5}
        # an arch name routes when exactly one ready service runs it
        reply = client.chat.completions.create(
            model="tao-dataservices",
            messages=user("hi data"),
            extra_headers={"x-taoplan-user": "bob"},
            **SAMPLING,
        )
        assert json.loads(reply.choices[0].message.content or "")["prompt"] == "hi data"

        # ---- streaming: a TAO server answers whole -> one chunk, then [DONE] (the client stops on it)
        chunks = list(
            client.chat.completions.create(
                model="rl-b", messages=user("stream me", URL_IMAGE), stream=True, **SAMPLING
            )
        )
        streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert json.loads(streamed)["prompt"] == "stream me" and chunks[-1].choices[0].finish_reason == "stop"

        # ---- async, concurrent, and async streaming
        async def concurrently() -> list[str]:
            aclient = openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=keys["app"], max_retries=0)
            calls = [
                aclient.chat.completions.create(model=m, messages=user(f"n{i}", URL_IMAGE), **SAMPLING)
                for i, m in enumerate(["rl-a", "rl-b", "rl-a", "rl-b"])
            ]
            calls.append(aclient.chat.completions.create(model="data", messages=user("n4"), **SAMPLING))
            answers = [
                json.loads(r.choices[0].message.content or "")["prompt"] for r in await asyncio.gather(*calls)
            ]
            stream = await aclient.chat.completions.create(
                model="data", messages=user("async stream"), stream=True, **SAMPLING
            )
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
            answers.append(json.loads(text)["prompt"])
            await aclient.close()
            return answers

        assert asyncio.run(concurrently()) == ["n0", "n1", "n2", "n3", "n4", "async stream"]

        # ---- /v1/models: every service with readiness, arch, platform, job id
        listed = {m.id: (m.model_extra or {})["x_taoplan"] for m in client.models.list()}
        assert set(listed) == set(SERVICES)
        assert listed["rl-a"]["ready"] and listed["rl-a"]["arch"] == "cosmos-rl"
        assert listed["rl-a"]["platform"] == "local-docker"
        assert listed["rl-a"]["job_id"] == status_rows(dproject)["rl-a"]["job_id"]
        assert not listed["broken"]["ready"] and listed["broken"]["reason"] == "model_load_failed"

        # ---- refusals, each through the official client
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=gw.url + "/v1", api_key="tp-not-a-key", max_retries=0).models.list()
        assert error_of(gw.chat({"model": "rl-a", "messages": user("x")}))["code"] == "invalid_api_key"
        with pytest.raises(openai.PermissionDeniedError) as denied:
            openai.OpenAI(
                base_url=gw.url + "/v1", api_key=keys["data-only"], max_retries=0
            ).chat.completions.create(model="rl-a", messages=user("x", URL_IMAGE), **SAMPLING)
        assert denied.value.code == "service_not_allowed" and "data" in denied.value.message
        limited = openai.OpenAI(base_url=gw.url + "/v1", api_key=keys["slow"], max_retries=0)
        answered = 0
        with pytest.raises(openai.RateLimitError) as limit:
            for _ in range(5):  # 2 per minute: the third is refused (unless a minute turns in between)
                limited.chat.completions.create(model="data", messages=user("ok"), **SAMPLING)
                answered += 1
        assert answered >= 2 and limit.value.code == "rate_limit_exceeded"
        assert int(limit.value.response.headers["retry-after"]) >= 1
        with pytest.raises(openai.RateLimitError) as budget:
            openai.OpenAI(
                base_url=gw.url + "/v1", api_key=keys["broke"], max_retries=0
            ).chat.completions.create(model="data", messages=user("x"), **SAMPLING)
        assert budget.value.code == "budget_exceeded"
        with pytest.raises(openai.NotFoundError) as unknown:
            client.chat.completions.create(model="ghost", messages=user("x"), **SAMPLING)
        assert unknown.value.code == "model_not_found" and "rl-a" in unknown.value.message
        with pytest.raises(openai.BadRequestError) as ambiguous:
            client.chat.completions.create(model="cosmos-rl", messages=user("x", URL_IMAGE), **SAMPLING)
        assert "2 ready services run cosmos-rl" in ambiguous.value.message
        assert (
            "rl-a (ready)" in ambiguous.value.message
            and "broken (model_load_failed)" in ambiguous.value.message
        )
        with pytest.raises(openai.BadRequestError) as missing:
            client.chat.completions.create(model="data", messages=user("x"))
        assert missing.value.code == "missing_sampling"
        assert "max_tokens (int, default 1024, >= 1)" in missing.value.message
        with pytest.raises(openai.BadRequestError) as other_arch:
            client.chat.completions.create(
                model="data", messages=user("x"), extra_body={"guidance": 2.0}, **SAMPLING
            )
        assert "guidance does not apply to tao-dataservices" in other_arch.value.message
        with pytest.raises(openai.BadRequestError) as no_media:
            client.chat.completions.create(model="rl-a", messages=user("no picture"), **SAMPLING)
        assert "cosmos-rl requires at least one image_url or video_url" in no_media.value.message
        with pytest.raises(openai.BadRequestError) as inline:
            client.chat.completions.create(
                model="rl-a", messages=user("x", "data:image/png;base64,iVBORw0KGgo="), **SAMPLING
            )
        assert (
            "messages[0].content[1].image_url.url: cosmos-rl does not accept data: URIs"
            in inline.value.message
        )
        with pytest.raises(openai.BadRequestError) as out_of_range:
            client.chat.completions.create(
                model="data", messages=user("x"), max_tokens=16, temperature=9, top_p=0.5
            )
        assert "temperature 9 is out of range" in out_of_range.value.message
        with pytest.raises(openai.InternalServerError) as unready:
            client.chat.completions.create(model="broken", messages=user("x", URL_IMAGE), **SAMPLING)
        assert unready.value.status_code == 503 and unready.value.code == "model_load_failed"
        assert "no weights" in unready.value.message and unready.value.response.headers["retry-after"]

        # ---- one row per request, with caller and end user
        logged = until("rows", lambda: (r := rows(state_dir)) and len(r) >= 20 and r)
        by_status = {(r.caller, r.status) for r in logged}
        for pair in [
            ("app", 200),
            ("-", 401),
            ("data-only", 403),
            ("slow", 429),
            ("broke", 429),
            ("app", 404),
        ]:
            assert pair in by_status, (pair, by_status)
        assert {("app", 400), ("app", 503)} <= by_status
        alice = next(r for r in logged if r.end_user == "alice")
        assert (alice.service, alice.arch, alice.platform, alice.status) == (
            "rl-a",
            "cosmos-rl",
            "local-docker",
            200,
        )
        assert alice.job_id == status_rows(dproject)["rl-a"]["job_id"] and alice.upstream_ms is not None
        assert alice.bytes_in > 0 and alice.bytes_out > 0 and alice.latency_ms >= alice.upstream_ms
        assert any(r.end_user == "bob" and r.service == "data" for r in logged)
        assert any(r.ttft_ms is not None and r.service == "rl-b" for r in logged)

        # ---- metrics: requests by service/caller/status, histograms, readiness, in flight
        metrics = gw.get("/metrics").text
        assert 'taoplan_gateway_requests_total{caller="app",service="rl-a",status="200"}' in metrics
        assert 'taoplan_gateway_requests_total{caller="slow",service="data",status="429"} 1.0' in metrics
        assert (
            'taoplan_gateway_service_ready{arch="cosmos-rl",platform="local-docker",service="broken"} 0.0'
            in metrics
        )
        assert (
            'taoplan_gateway_service_ready{arch="cosmos-rl",platform="local-docker",service="rl-a"} 1.0'
            in metrics
        )
        for name in ("request_duration_seconds", "upstream_duration_seconds", "time_to_first_token_seconds"):
            assert f"taoplan_gateway_{name}_count" in metrics
        assert "taoplan_gateway_requests_in_flight 0.0" in metrics and "taoplan_gateway_cost_total" in metrics
        assert gw.get("/health/ready").json() == {"services": 4, "ready": 3, "status": "ready"}
        assert gw.get("/openapi.json").json()["openapi"].startswith("3.")
        gw_pid = gw.proc.pid
        cmdline = Path(f"/proc/{gw_pid}/cmdline").read_bytes() + Path(f"/proc/{gw_pid}/environ").read_bytes()
    finally:
        code = gw.stop()
    assert code == 0, gw.text()

    # ---- the secret canary, extended to gateway keys: never in logs, state, metrics, argv, containers
    exposed = [gw.text().encode(), metrics.encode(), cmdline]
    for job in (r["job_id"] for r in status_rows(dproject).values()):
        exposed.append(docker("inspect", str(job)).encode())
    for path in [*dproject.parent.rglob("*")]:
        if path.is_file():
            exposed.append(path.read_bytes())
    for value in keys.values():
        assert value.startswith("tp-")
        assert not any(value.encode() in blob for blob in exposed), "a key value leaked"


def test_server_defaults_fill_and_say_so(dproject: Path) -> None:
    text = services_yaml(dproject.name, {"data": SERVICES["data"]})
    apply(dproject, text)
    (dproject / "defaults.yaml").write_text(text + "gateway: {auth: none, sampling: server-defaults}\n")
    gw = GatewayProcess(dproject, "-f", "defaults.yaml")
    try:
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0)
        raw = client.chat.completions.with_raw_response.create(model="data", messages=user("fill"), top_p=0.3)
        assert raw.headers["x-taoplan-defaulted"] == "max_tokens,temperature"
        echo = json.loads(raw.parse().choices[0].message.content or "")
        assert echo["sampling"] == {"max_new_tokens": 1024, "temperature": 0.7, "top_p": 0.3}
        logged = until("row", lambda: rows(dproject / ".taoplan"))
        assert logged[-1].defaulted == "max_tokens,temperature"
        assert logged[-1].caller == resolve_caller(None)  # auth: none: the OS user
    finally:
        assert gw.stop() == 0


def test_readiness_follows_apply_and_failures_are_clean(dproject: Path) -> None:
    base = {
        "one": SERVICES["rl-a"],
        "slow": {**SERVICES["rl-b"], "env": {"TAO_FAKE_INFER_SECONDS": "6"}},
        "medium": {**SERVICES["data"], "env": {"TAO_FAKE_INFER_SECONDS": "2"}},
    }
    settings = "gateway: {auth: none, upstream_timeout: 4}\n"
    text = services_yaml(dproject.name, base) + settings
    apply(dproject, text)
    jobs = {name: str(row["job_id"]) for name, row in status_rows(dproject).items()}
    gw = GatewayProcess(dproject)
    one = {"model": "one", "messages": user("x", URL_IMAGE), **SAMPLING}
    try:
        assert gw.chat(one).status_code == 200

        # ---- a service that stops answering leaves routing; it comes back when it answers again
        docker("pause", jobs["one"])
        try:
            refused = until("503 while paused", lambda: (r := gw.chat(one)).status_code == 503 and r)
            assert refused.headers["retry-after"] and error_of(refused)["code"] == "connecting"
            listed = {m["id"]: m["x_taoplan"] for m in gw.get("/v1/models").json()["data"]}
            assert listed["one"]["ready"] is False
        finally:
            docker("unpause", jobs["one"])
        until("routed again", lambda: gw.chat(one).status_code == 200)

        # ---- apply adds a service: routed without a restart; removing it takes it out again
        apply(dproject, services_yaml(dproject.name, {**base, "two": SERVICES["rl-b"]}) + settings)
        two = {**one, "model": "two"}
        until("new service routed", lambda: gw.chat(two).status_code == 200)
        apply(dproject, text)
        until("removed service gone", lambda: gw.chat(two).status_code == 404)

        # ---- slower than upstream_timeout -> 504
        slow = {**one, "model": "slow"}
        timed_out = gw.chat(slow)
        assert timed_out.status_code == 504 and error_of(timed_out)["code"] == "upstream_timeout"

        # ---- a client that goes away cancels its request: the row says 499, nothing stays in flight
        with pytest.raises(httpx.TimeoutException):
            gw.chat({**one, "model": "medium", "messages": user("bye")}, timeout=0.5)
        until("499 row", lambda: any(r.status == 499 for r in rows(dproject / ".taoplan")))
        until(
            "nothing in flight", lambda: "taoplan_gateway_requests_in_flight 0.0" in gw.get("/metrics").text
        )

        # ---- the upstream dies mid-request: a clean 502, no hang; then it is out of routing
        result: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: result.update(reply=gw.chat(slow, timeout=60)))
        thread.start()
        until(
            "slow request in flight",
            lambda: "taoplan_gateway_requests_in_flight 1.0" in gw.get("/metrics").text,
        )
        docker("kill", jobs["slow"])
        thread.join(60)
        assert result["reply"].status_code == 502, result["reply"].text
        assert error_of(result["reply"])["code"] == "upstream_disconnected"
        until("dead service unready", lambda: gw.chat(slow).status_code == 503)

        # ---- SIGTERM: stop accepting, finish what is in flight, flush the log, exit 0
        thread = threading.Thread(
            target=lambda: result.update(
                drained=gw.chat({**one, "model": "medium", "messages": user("drain")})
            )
        )
        thread.start()
        until("medium in flight", lambda: "taoplan_gateway_requests_in_flight 1.0" in gw.get("/metrics").text)
        gw.proc.send_signal(signal.SIGTERM)
        thread.join(60)
        assert result["drained"].status_code == 200
        assert json.loads(result["drained"].json()["choices"][0]["message"]["content"])["prompt"] == "drain"
    finally:
        code = gw.stop()
    assert code == 0, gw.text()
    with pytest.raises(httpx.ConnectError):
        gw.get("/health/live")
    drained = [r for r in rows(dproject / ".taoplan") if r.service == "medium" and r.status == 200]
    assert drained, "the drained request is in the log after SIGTERM"


def test_bad_input_is_always_a_4xx_in_the_openai_shape_and_a_fuzz_finds_no_5xx(dproject: Path) -> None:
    text = (
        services_yaml(dproject.name, {"rl": SERVICES["rl-a"]}) + "gateway: {auth: none, max_body: 256KiB}\n"
    )
    apply(dproject, text)
    gw = GatewayProcess(dproject)
    ok = {"model": "rl", "messages": user("x", URL_IMAGE), **SAMPLING}
    try:
        cases: list[tuple[Any, dict[str, str], int, str]] = [
            (b'{"model": "rl", "messages": [', {}, 400, "invalid_json"),
            (b"[1, 2]", {}, 400, "invalid_json"),
            (b"", {}, 400, "invalid_json"),
            (
                b'{"model":"rl","messages":[{"role":"user","content":"\xff\xfe"}]}',
                {},
                400,
                "invalid_encoding",
            ),
            ({"messages": user("x")}, {}, 400, "missing_model"),
            ({**ok, "messages": user("x", URL_IMAGE) * 5000}, {}, 413, "body_too_large"),
            ({**ok, "messages": user("x") * 4097}, {}, 400, "invalid_request"),
            (
                {**ok, "messages": [{"role": "user", "content": {"not": "a list"}}]},
                {},
                400,
                "invalid_request",
            ),
            ({**ok, "messages": [{"role": 7}]}, {}, 400, "invalid_request"),
            ({**ok, "stream": "yes"}, {}, 400, "invalid_request"),
            ({**ok, "max_tokens": 0}, {}, 400, "invalid_for_arch"),
            ({**ok, "messages": user("x", "s3://bucket/cat.jpg")}, {}, 400, "invalid_for_arch"),
            ({**ok, "messages": user("x", "/etc/passwd")}, {}, 400, "invalid_for_arch"),
            (ok, {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
            (ok, {"Content-Type": "multipart/form-data; boundary=x"}, 415, "unsupported_media_type"),
            (ok, {"Content-Type": ""}, 415, "unsupported_media_type"),
        ]
        for body, headers, status, code in cases:
            reply = gw.chat(body, headers=headers)
            assert reply.status_code == status, (
                body if isinstance(body, bytes) else str(body)[:120],
                reply.text,
            )
            assert error_of(reply)["code"] == code, reply.text
        big = httpx.post(
            gw.url + "/v1/chat/completions",
            content=b"{" + b" " * (300 * 1024) + b"}",
            headers={"Content-Type": "application/json"},
        )
        assert big.status_code == 413 and error_of(big)["code"] == "body_too_large"
        assert error_of(gw.get("/v1/nothing"))["code"] == "not_found"
        assert gw.get("/v1/chat/completions").status_code == 405
        assert gw.chat(ok).status_code == 200

        # ---- schema-driven fuzz of the served OpenAPI document: no 5xx anywhere
        fuzz = subprocess.run(
            ["schemathesis", "run", gw.url + "/openapi.json", "--checks", "not_a_server_error",
             "--max-examples", "60", "--seed", "7", "--request-timeout", "20"],
            capture_output=True, text=True, timeout=900, cwd=dproject.parent,
        )  # fmt: skip
        assert fuzz.returncode == 0, fuzz.stdout[-4000:] + fuzz.stderr[-2000:]
        assert "internal error" not in gw.text()
    finally:
        assert gw.stop() == 0
