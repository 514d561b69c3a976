"""The gateway in front of a service's replicas and a rollout's retiring workloads: least outstanding
requests, draining, a table keyed by job id, model by service or by instance key, the report a
rollout waits on, and a request that goes once more when its workload went away.

The upstreams are real aiohttp servers on loopback; the gateway is its ASGI app with the real
table, watcher (probing those servers), upstream client, auth and request store, without uvicorn.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from aiohttp import web

from taoplan.platforms.common.health import READY, Verdict
from taoplan.spec.gateway_settings import GatewaySettings
from taoplan.spec.references import load_references
from taoplan.store.gateways import HEARTBEAT, live_reports, report_path
from taoplan.store.state import ServiceRecord, State, StateStore
from taoplan.traffic.gateway.app import App
from taoplan.traffic.gateway.auth import Auth
from taoplan.traffic.gateway.core import Gateway
from taoplan.traffic.gateway.errors import GatewayError
from taoplan.traffic.gateway.metrics import Metrics
from taoplan.traffic.gateway.reports import Reporter
from taoplan.traffic.gateway.table import Service, Table
from taoplan.traffic.gateway.upstream import make_session
from taoplan.traffic.gateway.watcher import Watcher
from taoplan.traffic.log import Redactor, open_store
from taoplan.traffic.request.routing import Target, route, targets_from_state

pytestmark = pytest.mark.timeout(60)

REFS = load_references()
BODY = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


def record(
    key: str, job: str, port: int, service: str | None = None, draining: bool = False
) -> ServiceRecord:
    return ServiceRecord(
        name=key, service=service or key.split(".")[0], job_id=job, platform="test", network_arch="vllm",
        spec={}, spec_hash="h", image="i", image_rule="r", host_url=f"http://127.0.0.1:{port}",
        started_at=f"2026-01-01T00:00:0{job[-1]}+00:00", status="ready", draining=draining,
    )  # fmt: skip


# ----------------------------------------------------------------------------- upstreams


class Upstream:
    """A server on loopback: ready, and answers a chat with its own name (held while ``hold`` is
    clear). ``mode``: "ok", or "reset" (it closes the connection without a byte of answer)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.hold = asyncio.Event()
        self.hold.set()
        self.mode = "ok"
        self.chats = 0
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def start(self, port: int = 0) -> Upstream:
        app = web.Application()
        app.router.add_get(REFS.request.readiness.path, self.ready)
        app.router.add_post(REFS.request.chat.path, self.chat)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def ready(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ready"})

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.chats += 1
        if self.mode == "reset":
            assert request.transport is not None
            request.transport.close()
            await asyncio.sleep(0.05)
            return web.Response(status=200)
        await self.hold.wait()
        reply = {
            "choices": [{"message": {"role": "assistant", "content": self.name}, "finish_reason": "stop"}]
        }
        reply["model"] = body.get("model")
        return web.json_response(reply)


class Harness:
    def __init__(self, gw: Gateway, client: httpx.AsyncClient, store: StateStore) -> None:
        self.gw, self.client, self.store = gw, client, store

    @property
    def table(self) -> Table:
        return self.gw.table

    async def write(self, services: list[ServiceRecord], retiring: list[ServiceRecord] = ()) -> int:  # type: ignore[assignment]
        state = self.store.load()
        state.services = {r.name: r for r in services}
        state.retiring = {r.job_id: r for r in retiring}
        self.store.write(state)
        await self.gw.watcher.refresh()
        return state.serial

    async def ready(self, *jobs: str) -> None:
        await until(lambda: all(j in self.table.services and self.table.services[j].ready for j in jobs))

    async def chat(self, model: str) -> httpx.Response:
        return await self.client.post("/v1/chat/completions", json={**BODY, "model": model})


async def until(check: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def harness(tmp_path: Path, services: list[ServiceRecord]) -> AsyncIterator[Harness]:
    state_dir = tmp_path / "state"
    store = StateStore(state_dir)
    state = State.new()
    state.services = {r.name: r for r in services}
    store.write(state)
    settings = GatewaySettings(auth="none")
    log = open_store(tmp_path, quiet=True)
    table = Table(REFS.request.archs)
    gw = Gateway(
        settings, REFS, table, Auth("none", None, "tester"), Metrics(), log, Redactor.from_environ(REFS),
        tmp_path / "absent.yaml", str(state_dir),
    )  # fmt: skip
    gw.session = make_session()
    probes = make_session()
    gw.watcher = Watcher(table, gw.file, gw.state_dir, REFS.request.readiness, gw.metrics, probes)
    gw.watcher.workspace = SimpleNamespace(store=store, config=SimpleNamespace(pricing={}), refs=REFS)  # type: ignore[assignment]
    gw.watcher.interval = 0.05
    await gw.watcher.start()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=App(gw)), base_url="http://gw")  # type: ignore[arg-type]
    try:
        yield Harness(gw, client, store)
    finally:
        await client.aclose()
        await gw.watcher.stop()
        await gw.session.close()
        await probes.close()
        log.close()


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- the table alone


def workload(key: str, job: str, arch: str = "cosmos-rl", ready: bool = True, **kw: Any) -> Service:
    target = Target(job, arch, key, f"http://h/{job}", service=key.split(".")[0], **kw)
    found = Service(target, target.host_url)
    if ready:
        found.set_verdict(Verdict(READY, "ready"))
    return found


def table_of(*services: Service) -> Table:
    table = Table(REFS.request.archs)
    for s in services:
        table.add(s)
    return table


def test_least_outstanding_among_replicas_and_turns_among_equals() -> None:
    a, b, c = workload("chat", "j0"), workload("chat.1", "j1"), workload("chat.2", "j2")
    table = table_of(c, a, b)
    picked = [table.pick("chat") for _ in range(3)]
    assert sorted(s.job_id for s in picked) == ["j0", "j1", "j2"]  # idle ones take turns
    table.release(b)  # b finished: it is the least busy
    assert table.pick("chat") is b
    table.release(a)
    table.release(c)  # a and c at 0, b at 1: a or c, in turn
    assert {table.pick("chat").job_id, table.pick("chat").job_id} == {"j0", "j2"}
    assert table.inflight == {"j0": 1, "j1": 1, "j2": 1}
    assert (a.inflight, b.inflight, c.inflight) == (1, 1, 1)


def test_model_by_service_or_instance_key_and_what_404_lists() -> None:
    table = table_of(
        workload("chat", "j0"), workload("chat.1", "j1"), workload("data", "j3", "tao-dataservices")
    )
    assert all(table.pick("chat.1").job_id == "j1" for _ in range(4))  # that replica only
    assert {table.pick("chat").job_id for _ in range(4)} == {"j0"}  # j1 is busier now
    with pytest.raises(GatewayError) as unknown:
        table.pick("ghost")
    assert unknown.value.status == 404 and "(services: chat, data)" in unknown.value.message
    assert table.names() == ["chat", "data"]


def test_an_arch_counts_services_not_replicas() -> None:
    table = table_of(workload("rl", "j0"), workload("rl.1", "j1"))
    assert table.pick("cosmos-rl").name == "rl"  # one service, two replicas: not ambiguous
    table.add(workload("other", "j2"))
    with pytest.raises(GatewayError) as ambiguous:
        table.pick("cosmos-rl")
    assert "2 ready services run cosmos-rl" in ambiguous.value.message
    assert "other (ready), rl (ready)" in ambiguous.value.message


def test_draining_leaves_routing_and_the_refusal_names_the_best_candidate() -> None:
    old = workload("chat", "j0", draining=True, retiring=True)
    new = workload("chat", "j1", ready=False)
    new.set_verdict(Verdict("wait", "model_loading", "2 of 4"))
    table = table_of(old, new)
    with pytest.raises(GatewayError) as refused:
        table.pick("chat")
    assert refused.value.status == 503 and refused.value.code == "model_loading"
    assert "service chat is not ready (model_loading): 2 of 4" in refused.value.message
    assert table.routed() == frozenset()
    table.drop("j1")
    with pytest.raises(GatewayError) as draining:
        table.pick("chat")
    assert draining.value.code == "draining"


def test_targets_and_the_cli_route_know_services_replicas_and_retiring() -> None:
    state = State.new()
    state.services = {"chat": record("chat", "j2", 1), "chat.1": record("chat.1", "j1", 2)}
    state.retiring = {"j0": record("chat", "j0", 3, draining=True)}
    targets = targets_from_state(state)
    assert [(t.name, t.job_id, t.retiring, t.draining) for t in targets] == [
        ("chat", "j2", False, False),
        ("chat", "j0", True, True),
        ("chat.1", "j1", False, False),
    ]
    assert {t.group for t in targets} == {"chat"}
    assert route(targets, [], name="chat").job_id == "j2"
    assert route(targets, [], name="chat.1").job_id == "j1"
    assert route(targets, []).job_id == "j2"  # one service: no hint needed
    assert route(targets, [], job_id="j0", name="chat").job_id == "j0"


# ----------------------------------------------------------------------------- through the gateway


def test_requests_spread_by_least_outstanding_over_real_replicas(tmp_path: Path) -> None:
    async def test() -> None:
        ups = [await Upstream(n).start() for n in ("a", "b", "c")]
        records = [
            record(k, f"j{i}", u.port)
            for i, (k, u) in enumerate(zip(["chat", "chat.1", "chat.2"], ups, strict=True))
        ]
        try:
            async with harness(tmp_path, records) as h:
                await h.ready("j0", "j1", "j2")
                ups[0].hold.clear()  # a holds its requests: the next ones go to b and c
                held = asyncio.ensure_future(h.chat("chat"))
                await until(lambda: sum(u.chats for u in ups) == 1)
                slow = next(u for u in ups if u.chats == 1)
                answers = [
                    (await h.chat("chat")).json()["choices"][0]["message"]["content"] for _ in range(4)
                ]
                assert slow.name not in answers and len(set(answers)) == 2  # the two idle ones, in turn
                assert h.table.inflight == {f"j{ups.index(slow)}": 1}
                slow.hold.set()
                reply = await held
                assert reply.status_code == 200 and reply.headers["x-taoplan-service"] == "chat"
                assert h.table.inflight == {}
                models = (await h.client.get("/v1/models")).json()["data"]
                assert [m["id"] for m in models] == ["chat"]
                assert [r["replica"] for r in models[0]["x_taoplan"]["replicas"]] == [
                    "chat",
                    "chat.1",
                    "chat.2",
                ]
                assert (await h.client.get("/health/ready")).json() == {
                    "services": 1,
                    "ready": 1,
                    "status": "ready",
                }
                metrics = (await h.client.get("/metrics")).text
                assert (
                    'taoplan_gateway_service_ready{arch="vllm",platform="test",service="chat"} 1.0' in metrics
                )
                assert (
                    'replica="chat.2"' in metrics and "taoplan_gateway_replica_requests_in_flight" in metrics
                )
                h.gw.store.flush()
                rows = h.gw.store.rows(None)
                assert {r.service for r in rows} == {"chat"} and len({r.job_id for r in rows}) == 3
        finally:
            for u in ups:
                await u.stop()

    run(test)


def test_a_rollout_keeps_readiness_drains_and_the_report_follows(tmp_path: Path) -> None:
    async def test() -> None:
        old, new = await Upstream("old").start(), await Upstream("new").start()
        try:
            async with harness(tmp_path, [record("chat", "j1", old.port)]) as h:
                reporter = Reporter(h.table, h.store.dir)
                await h.ready("j1")
                before = h.table.services["j1"]
                old.hold.clear()
                held = asyncio.ensure_future(h.chat("chat"))
                await until(lambda: old.chats == 1)
                # the rollout: j1 moves to retiring and keeps serving; the same entry, still ready
                serial = await h.write([record("chat", "j2", new.port)], [record("chat", "j1", old.port)])
                assert h.table.services["j1"] is before and before.ready and before.target.retiring
                assert h.table.serial == serial
                assert await reporter.tick()
                (report,) = live_reports(h.store.dir)
                assert report.serial == serial and report.routed == {"j1"} and report.inflight == {"j1": 1}
                await h.ready("j2")
                await reporter.tick()
                assert live_reports(h.store.dir)[0].routed == {"j1", "j2"}
                # apply marks j1 draining: out of routing at once, its request still in flight
                serial = await h.write(
                    [record("chat", "j2", new.port)], [record("chat", "j1", old.port, draining=True)]
                )
                assert h.table.services["j1"] is before and before.ready and not before.routable
                for _ in range(3):
                    assert (await h.chat("chat")).json()["choices"][0]["message"]["content"] == "new"
                await reporter.tick()
                report = live_reports(h.store.dir)[0]
                assert (report.serial, report.routed, report.inflight) == (serial, {"j2"}, {"j1": 1})
                old.hold.set()
                reply = await held  # a draining workload's request finishes normally
                assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"] == "old"
                await reporter.tick()
                assert live_reports(h.store.dir)[0].inflight == {}
                # apply stops it and forgets it: out of the table
                await h.write([record("chat", "j2", new.port)])
                assert set(h.table.services) == {"j2"}
        finally:
            await old.stop()
            await new.stop()

    run(test)


def test_the_report_file_its_heartbeat_staleness_and_clean_removal(tmp_path: Path) -> None:
    async def test() -> None:
        table = table_of(workload("chat", "j0"), workload("chat.1", "j1", draining=True))
        table.serial = 7
        reporter = Reporter(table, tmp_path)
        assert await reporter.tick()
        path = report_path(tmp_path)
        raw = json.loads(path.read_text())
        assert raw["pid"] == os.getpid() and raw["serial"] == 7
        assert raw["routed"] == ["j0"] and raw["inflight"] == {}  # draining: not routed
        assert not await reporter.tick()  # nothing changed, heartbeat not due
        picked = table.pick("chat")
        assert await reporter.tick()
        assert json.loads(path.read_text())["inflight"] == {"j0": 1}
        table.release(picked)
        assert await reporter.tick()
        reporter.written -= HEARTBEAT  # a second later, unchanged: written again (a fresh "at")
        at = json.loads(path.read_text())["at"]
        await asyncio.sleep(0.01)
        assert await reporter.tick() and json.loads(path.read_text())["at"] > at
        assert [r.pid for r in live_reports(tmp_path)] == [os.getpid()]
        assert live_reports(tmp_path, now=time.time() + 30) == []  # a gateway killed -9: stale, ignored
        reporter.start()
        await asyncio.sleep(0.12)
        await reporter.stop()
        assert not path.exists() and live_reports(tmp_path) == []

    run(test)


def test_a_refused_or_reset_connection_goes_once_more_to_another_replica(tmp_path: Path) -> None:
    async def test() -> None:
        a, b = await Upstream("a").start(), await Upstream("b").start()
        try:
            async with harness(tmp_path, [record("chat", "j0", a.port), record("chat.1", "j1", b.port)]) as h:
                await h.ready("j0", "j1")
                h.gw.watcher.interval = 30.0  # no probe notices a's end before the request does
                await asyncio.sleep(0.1)
                for mode in ("reset", "refused"):
                    b.hold.clear()  # b is busier, so the request goes to a first
                    held = asyncio.ensure_future(h.chat("chat.1"))
                    await until(lambda: h.table.inflight.get("j1") == 1)
                    if mode == "reset":
                        a.mode = "reset"
                    else:
                        await a.stop()
                    answer = asyncio.ensure_future(h.chat("chat"))
                    await asyncio.sleep(0.2)
                    b.hold.set()
                    reply = await answer
                    assert reply.status_code == 200, reply.text
                    assert reply.json()["choices"][0]["message"]["content"] == "b"
                    assert (await held).status_code == 200
                    assert h.table.inflight == {}
                assert not h.table.services["j0"].ready  # refused: out of routing at once
                # the reset reached a twice (a pooled connection closed while idle is tried once more
                # on a new one), then went to b; the refused one never reached a
                assert a.chats == 2 and b.chats == 4
        finally:
            await a.stop()
            await b.stop()

    run(test)


def test_no_other_workload_when_the_model_names_the_replica_that_went_away(tmp_path: Path) -> None:
    async def test() -> None:
        a, b = await Upstream("a").start(), await Upstream("b").start()
        try:
            async with harness(tmp_path, [record("chat", "j0", a.port), record("chat.1", "j1", b.port)]) as h:
                await h.ready("j0", "j1")
                h.gw.watcher.interval = 30.0
                await asyncio.sleep(0.1)
                await b.stop()
                gone = await h.chat("chat.1")  # that replica only: not sent to a
                assert gone.status_code == 502 and gone.json()["error"]["code"] == "upstream_unreachable"
                assert a.chats == 0
                assert (await h.chat("chat.1")).status_code == 503  # out of routing now
                assert (await h.chat("chat")).json()["choices"][0]["message"]["content"] == "a"
                assert h.table.inflight == {}
        finally:
            await a.stop()
            await b.stop()

    run(test)
