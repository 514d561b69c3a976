"""The dashboard's pure parts: the last hour of one service, the SVG chart, the chat form from the
request rules, the state rules shared with `taoplan status`, and the files the package must ship."""

from __future__ import annotations

import ast
import fnmatch
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

from taoplan.engine.status import observed_state, ready_state
from taoplan.platforms.base import Observation
from taoplan.platforms.common.health import Verdict
from taoplan.spec.references import load_references
from taoplan.store.state import ServiceRecord
from taoplan.traffic.dashboard import pages
from taoplan.traffic.dashboard.activity import LAST, Reader, activity, chat_form
from taoplan.traffic.dashboard.chart import minute_chart
from taoplan.traffic.log import open_store
from taoplan.traffic.log.rows import RequestRow, new_request_id

ROOT = Path(__file__).resolve().parents[2]
NOW = 1_800_000_000.0


def row(at: float, **kw: object) -> RequestRow:
    base = RequestRow(
        new_request_id(), at, "alice", None, "svc", "j1", "local-docker", "cosmos-rl", 1,
        None, "gateway", 200, None, 10.0, 8.0, None, None, None, None, 100, 200, None, None, None,
    )  # fmt: skip
    return replace(base, **kw)  # type: ignore[arg-type]


def test_last_hour_per_minute_errors_by_type_and_newest_first() -> None:
    rows = [row(NOW - 3000, latency_ms=5.0), row(NOW - 30, latency_ms=10.0), row(NOW - 20, latency_ms=30.0)]
    rows += [row(NOW - 10, status=400, error_type="invalid_for_arch", latency_ms=1.0)]
    rows += [row(NOW - 5, status=0, error_type=None, latency_ms=99.0)]  # no HTTP answer: no latency
    found = activity(rows, NOW)
    per = found["per_minute"]
    assert len(per["requests"]) == 60 and sum(per["requests"]) == 5
    assert per["requests"][-1] == 4 and per["p50_ms"][-1] == 10.0 and per["p95_ms"][-1] == 30.0
    assert per["p50_ms"][0] is None  # a minute without requests has no latency (a gap in the line)
    assert found["errors_by_type"] == [
        {"type": "invalid_for_arch", "count": 1},
        {"type": "no_answer", "count": 1},
    ]
    assert [r["status"] for r in found["last"]] == [0, 400, 200, 200, 200]
    assert set(found["last"][0]) == {"time", "caller", "status", "latency_ms", "error_type"}  # no content
    many = activity([row(NOW - 100 + i) for i in range(80)], NOW)
    assert len(many["last"]) == LAST


def test_chart_is_svg_of_numbers_with_a_bar_per_busy_minute() -> None:
    requests = [0] * 60
    requests[10], requests[59] = 3, 12
    p50 = [None] * 60
    p50[10], p50[59] = 4.0, 9.0
    svg = ET.fromstring(minute_chart(requests, p50, p50))
    bars = [e for e in svg.iter() if e.get("class") == "bar"]
    dots = [e for e in svg.iter() if (e.get("class") or "").endswith("dot")]
    assert len(bars) == 2 and len(dots) == 4  # two lone minutes per line: dots, not lines
    assert ET.fromstring(minute_chart([0] * 60, [None] * 60, [None] * 60)).tag.endswith("svg")


def test_chat_form_shows_every_sampling_field_with_default_and_range() -> None:
    rules = load_references().request
    predict = chat_form(rules, "cosmos-predict2.5")
    assert predict["reply"] == "video" and predict["tao"] is True
    fields = {f["name"]: f for f in predict["sampling"]}
    assert set(fields) == set(rules.archs["cosmos-predict2.5"].sampling)
    assert fields["guidance"] == {
        "name": "guidance",
        "type": "float",
        "default": 7.0,
        "min": 0.0,
        "max": 7.0,
        "help": None,
    }
    assert fields["negative_prompt"]["default"] == ""
    assert chat_form(rules, "cosmos-rl")["requires_media"] is True
    server = chat_form(rules, "vllm")  # a generic server: the rules every server: block takes
    assert rules.server is not None
    assert server["tao"] is False and [f["name"] for f in server["sampling"]] == list(rules.server.sampling)


def test_state_rules_shared_with_status() -> None:
    assert observed_state(None) == ("missing", "")
    assert observed_state(Observation("j", "s", "exited", exit_code=143)) == ("exited", "exit code 143")
    assert observed_state(Observation("j", "s", "running")) is None
    record = ServiceRecord(
        name="s", job_id="j", platform="local-docker", network_arch="cosmos-rl", spec={}, spec_hash="h",
        image="i", image_rule="r",
    )  # fmt: skip
    assert ready_state(record, Verdict("ready", "ready")) == ("ready", "")
    assert ready_state(record, Verdict("wait", "model_loading", "2 steps")) == ("starting", "model_loading")
    assert ready_state(record, Verdict("fatal", "model_load_failed", "no weights"))[0] == "failed"
    smoked = record.model_copy(update={"readiness": "smoke_failed: 500"})
    assert ready_state(smoked, Verdict("ready", "ready")) == ("failed", "smoke_failed: 500")


def test_reader_reads_one_service_since_a_time(tmp_path: Path) -> None:
    with open_store(tmp_path, quiet=True) as store:
        for r in (row(NOW - 7200), row(NOW - 60), row(NOW - 30, service="other")):
            store.write(r)
        store.flush()
        reader = Reader(store.engine)
        try:
            assert [r.time for r in reader.rows(NOW - 3600, "svc")] == [NOW - 60]
            assert len(reader.rows(None)) == 3
        finally:
            reader.close()


def test_templates_and_static_files_render_and_ship() -> None:
    html = pages.render("index.html", page="index", service=None, auth="keys").decode()
    assert 'id="key-form"' in html and "/ui/static/style.css" in html
    chat = pages.render("chat.html", page="chat", service="a<b", auth="none").decode()
    assert "a&lt;b" in chat and 'id="key-form"' not in chat
    for name in pages.STATIC:
        assert pages.static(name)
    found = re.search(
        r'^"taoplan\.traffic\.dashboard" = (\[.*\])$', (ROOT / "pyproject.toml").read_text(), re.M
    )
    assert found, "pyproject.toml: [tool.setuptools.package-data] names no dashboard files"
    shipped = ast.literal_eval(found.group(1))
    folder = ROOT / "taoplan" / "traffic" / "dashboard"
    for path in folder.rglob("*"):
        if path.is_file() and path.suffix != ".py" and "__pycache__" not in path.parts:
            relative = path.relative_to(folder).as_posix()
            assert any(fnmatch.fnmatch(relative, g) for g in shipped), f"{relative} would not ship"


def test_services_table_has_a_row_per_workload_grouped_by_service_with_draining_marked() -> None:
    import asyncio
    from types import SimpleNamespace

    from taoplan.traffic.dashboard.live import Observer, services
    from taoplan.traffic.gateway.table import Service, Table
    from taoplan.traffic.request.routing import Target

    refs = load_references()
    table = Table(refs.request.archs)
    for key, job, kw in [
        ("chat.1", "j1", {}),
        ("chat", "j2", {}),
        ("chat", "j0", {"retiring": True, "draining": True}),
        ("alpha", "j3", {}),
    ]:
        target = Target(job, "vllm", key, f"http://h/{job}", service=key.split(".")[0], **kw)  # type: ignore[arg-type]
        service = Service(target, target.host_url)
        service.set_verdict(Verdict("ready", "ready"))
        table.add(service)
    gw = SimpleNamespace(table=table, refs=refs, watcher=SimpleNamespace(workspace=None))
    found = asyncio.run(services(gw, Observer(gw), lambda name: name != "alpha"))  # type: ignore[arg-type]
    rows = [(r["name"], r["replica"], r["job_id"], r["draining"], r["retiring"]) for r in found["services"]]
    assert rows == [
        ("chat", "chat", "j2", False, False),  # replica 0, then the workload it replaced, then chat.1
        ("chat", "chat", "j0", True, True),
        ("chat", "chat.1", "j1", False, False),
    ]
    assert {r["state"] for r in found["services"]} == {"ready"}
