"""The gateway's web dashboard and chat page, in headless Chromium, against a real gateway in front of
real TAO test-image services on Docker. Screenshots of every page (laptop and 360 px wide) are saved
under the test's tmp dir (``screenshots/``); TAOPLAN_DASHBOARD_PNG names a path for the dashboard's.

Nothing here asserts a duration: every wait is a bounded poll (WebDriverWait, ``until``).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import taoplan
from tests.e2e.browser import PHONE, cells, chromium, enter_key, shoot, state_of, wait_for
from tests.e2e.conftest import docker, services_yaml
from tests.e2e.gateway_support import SAMPLING, URL_IMAGE, GatewayProcess, create_key, error_of, user

pytestmark = pytest.mark.docker

SERVICES = {
    "data": {"network_arch": "tao-dataservices", "model_path": "hf_model://Qwen/Qwen3-VL-8B-Instruct"},
    "rl": {"network_arch": "cosmos-rl", "model_path": "/models/rl"},
}


def _api(gw: GatewayProcess, path: str, key: str | None) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return gw.get(path, headers=headers)


def _refusals(gw: GatewayProcess, admin: str, data_only: str) -> None:
    """The JSON endpoints: a key is needed, a scoped key sees its services only, bad input is a 4xx."""
    for path in ("/ui/api/services", "/ui/api/cost", "/ui/api/services/data", "/ui/api/services/data/logs"):
        assert error_of(_api(gw, path, None))["code"] == "invalid_api_key"
        assert _api(gw, path, "tp-" + "x" * 32).status_code == 401
    listed = _api(gw, "/ui/api/services", data_only).json()["services"]
    assert [s["name"] for s in listed] == ["data"]
    for path in ("/ui/api/services/rl", "/ui/api/services/rl/form", "/ui/api/services/rl/logs"):
        reply = _api(gw, path, data_only)
        assert reply.status_code == 403 and error_of(reply)["code"] == "service_not_allowed"
    bad = {
        "/ui/api/cost?window=2y": 400,
        "/ui/api/services/data/logs?tail=abc": 400,
        "/ui/api/services/data/logs?tail=0": 400,
        "/ui/api/services/data/logs?tail=" + "9" * 5000: 400,
        "/ui/api/services/data/nothing": 404,
        "/ui/api/services/nope": 404,
        "/ui/api/services/%00bad": 404,
        "/ui/api/whatever": 404,
        "/ui/elsewhere": 404,
        "/ui/static/../../etc/passwd": 404,
    }
    for path, status in bad.items():
        reply = _api(gw, path, admin)
        assert reply.status_code == status, (path, reply.text)
        error_of(reply)
    posted = gw.chat({}, admin)  # the chat endpoint is untouched; a POST to a page is a 405
    assert posted.status_code == 400
    import httpx

    reply = httpx.post(gw.url + "/", headers={"Authorization": f"Bearer {admin}"}, timeout=10)
    assert reply.status_code == 405 and error_of(reply)["code"] == "method_not_allowed"


def test_dashboard_services_live_state_chat_keys_and_cost(dproject: Path, tmp_path: Path) -> None:
    priced = services_yaml(dproject.name, SERVICES) + "pricing: {local-docker: {gpu_hour: 2.5}}\n"
    (dproject / "services.yaml").write_text(priced)
    run = taoplan("apply", "--auto-approve", cwd=dproject)
    assert run.code == 0, run.text
    state_dir = dproject / ".taoplan"
    admin = create_key(state_dir, "admin")
    data_only = create_key(state_dir, "data-only", services=["data"])
    shots = tmp_path / "screenshots"
    gw = GatewayProcess(dproject)
    try:
        _refusals(gw, admin, data_only)
        # some traffic for the chart, the error counts and the cost view: two callers, one end user
        for i in range(3):
            assert gw.chat({"model": "data", "messages": user(f"n{i}"), **SAMPLING}, admin).status_code == 200
        body = {"model": "rl", "messages": user("look", URL_IMAGE), "user": "alice", **SAMPLING}
        assert gw.chat(body, data_only).status_code == 403
        assert gw.chat({**body, "top_p": 7}, admin).status_code == 400  # invalid_for_arch: an error row
        assert gw.chat(body, admin).status_code == 200

        with chromium() as driver:
            # ---- the services table, with the admin key (asked once, kept in session storage)
            driver.get(gw.url + "/")
            enter_key(driver, "tp-" + "w" * 32)  # a wrong key: refused, asked again with the reason
            wait_for(driver, "the refusal", lambda d: "not valid" in d.find_element("id", "key-error").text)
            assert driver.execute_script("return sessionStorage.getItem('taoplan.key')") is None
            enter_key(driver, admin)
            wait_for(
                driver, "both services ready", lambda d: state_of(d, "data") == state_of(d, "rl") == "ready"
            )
            rows = cells(driver, "services")
            assert (
                rows["data"]["Arch / server"] == "tao-dataservices"
                and rows["rl"]["Platform"] == "local-docker"
            )
            assert rows["rl"]["GPUs"] == "1" and rows["rl"]["Host URL"].startswith("http://")
            wait_for(driver, "the cost per caller", lambda d: "admin" in cells(d, "cost-callers"))
            assert admin not in driver.page_source
            assert driver.execute_script("return sessionStorage.getItem('taoplan.key')") == admin
            shoot(driver, shots / "dashboard.png")
            shoot(driver, shots / "dashboard-360.png", PHONE)
            if os.environ.get("TAOPLAN_DASHBOARD_PNG"):
                shutil.copy(shots / "dashboard.png", os.environ["TAOPLAN_DASHBOARD_PNG"])

            # ---- the cost view has the numbers of `taoplan stats` (requests and errors per caller)
            stats = taoplan("stats", "--since", "24h", "--by", "caller", "--json", cwd=dproject)
            expected = {c["caller"]: (c["requests"], c["errors"]) for c in json.loads(stats.out)["callers"]}
            shown = {
                k: (int(v["Requests"]), int(v["Errors"])) for k, v in cells(driver, "cost-callers").items()
            }
            assert shown == expected and expected["admin"] == (6, 2)  # with the empty body of _refusals
            wait_for(
                driver,
                "the end user",
                lambda d: any(v.get("End user") == "alice" for v in cells(d, "cost-users").values()),
            )

            # ---- the chat page: every sampling field shown with its default; the echoed reply
            driver.get(gw.url + "/ui/chat/data")
            wait_for(driver, "the sampling fields", lambda d: d.find_elements("id", "f-top_p"))
            values = {f: driver.find_element("id", f"f-{f}").get_attribute("value") for f in SAMPLING}
            assert values == {"max_tokens": "1024", "temperature": "0.7", "top_p": "0.8"}
            driver.find_element("id", "f-max_tokens").clear()
            driver.find_element("id", "f-max_tokens").send_keys("12")
            driver.find_element("id", "prompt").send_keys("hello from the page")
            driver.find_element("id", "system").send_keys("be brief")
            driver.find_element("id", "send").click()
            answer = wait_for(
                driver, "the echoed reply", lambda d: d.find_elements("css selector", ".answer.done")
            )[0]
            echo = json.loads(answer.text)
            assert echo["prompt"] == "hello from the page"
            assert echo["sampling"] == {"max_new_tokens": 12, "temperature": 0.7, "top_p": 0.8}
            shoot(driver, shots / "chat.png")
            shoot(driver, shots / "chat-360.png", PHONE)

            # ---- one service: chart, errors by type, last requests, the logs tail
            driver.get(gw.url + "/ui/services/rl")
            wait_for(
                driver, "the chart's bars", lambda d: d.find_elements("css selector", "#chart svg rect.bar")
            )
            wait_for(driver, "the error type", lambda d: "invalid_for_arch" in cells(d, "errors"))
            wait_for(driver, "the logs tail", lambda d: len(d.find_element("id", "logs").text) > 20)
            recent = driver.find_elements("css selector", "#recent tbody tr")
            assert len(recent) == 3  # the 403, the 400 and the 200 (never content)
            assert "look" not in driver.find_element("id", "recent").text
            shoot(driver, shots / "service.png")
            shoot(driver, shots / "service-360.png", PHONE)

            # ---- a stopped container shows on the open page, without a reload
            driver.get(gw.url + "/")
            wait_for(driver, "rl ready", lambda d: state_of(d, "rl") == "ready")
            marker = driver.execute_script("window.notReloaded = true; return window.notReloaded")
            container = docker("ps", "-q", "--filter", f"label=taoplan.project={dproject.name}",
                               "--filter", "label=taoplan.service=rl").split()  # fmt: skip
            docker("stop", "-t", "1", *container)
            wait_for(driver, "rl exited on the page", lambda d: state_of(d, "rl") == "exited", timeout=10)
            assert marker and driver.execute_script("return window.notReloaded") is True
            assert state_of(driver, "data") == "ready"
            shoot(driver, shots / "dashboard-exited.png")

            # ---- a key limited to one service sees only that one (a new tab session)
            driver.execute_script("sessionStorage.clear()")
            driver.get(gw.url + "/")
            enter_key(driver, data_only)
            wait_for(driver, "the data service", lambda d: state_of(d, "data") == "ready")
            assert list(cells(driver, "services")) == ["data"]
            callers = wait_for(driver, "its cost view", lambda d: cells(d, "cost-callers"))
            assert "admin" in callers and "data-only" not in callers  # data-only's one request went to rl
            driver.get(gw.url + "/ui/services/rl")
            wait_for(
                driver, "the refusal", lambda d: "may not use service" in d.find_element("id", "banner").text
            )
        assert admin not in gw.text() and data_only not in gw.text()
    finally:
        gw.stop()


PREDICT = {
    "network_arch": "cosmos-predict2.5",
    "model_path": "hf_model://nvidia/Cosmos-Predict2.5-2B",
    "model_key": "base-2b",
}


def test_dashboard_without_keys_on_loopback_and_a_video_reply(dproject: Path, tmp_path: Path) -> None:
    text = services_yaml(dproject.name, {"data": SERVICES["data"], "predict": PREDICT})
    (dproject / "services.yaml").write_text(text + "gateway: {auth: none}\n")
    run = taoplan("apply", "--auto-approve", cwd=dproject)
    assert run.code == 0, run.text
    shots = tmp_path / "screenshots"
    gw = GatewayProcess(dproject)
    try:
        assert [s["name"] for s in gw.get("/ui/api/services").json()["services"]] == ["data", "predict"]
        with chromium() as driver:
            driver.get(gw.url + "/")
            wait_for(driver, "data ready", lambda d: state_of(d, "data") == "ready")
            assert not driver.find_elements("id", "key-form")
            driver.get(gw.url + "/ui/chat/data")
            wait_for(driver, "the form", lambda d: d.find_elements("id", "f-top_p"))
            driver.find_element("id", "prompt").send_keys("no key needed")
            driver.find_element("id", "send").click()
            answer = wait_for(driver, "the reply", lambda d: d.find_elements("css selector", ".answer.done"))[
                0
            ]
            assert json.loads(answer.text)["prompt"] == "no key needed"

            # cosmos-predict2.5: its own fields with their defaults; the produced video inline
            driver.get(gw.url + "/ui/chat/predict")
            wait_for(driver, "the form", lambda d: d.find_elements("id", "f-negative_prompt"))
            shown = {
                f: driver.find_element("id", f"f-{f}").get_attribute("value")
                for f in ("guidance", "num_steps", "seed")
            }
            assert shown == {"guidance": "7", "num_steps": "35", "seed": "0"}
            driver.find_element("id", "f-num_steps").clear()
            driver.find_element("id", "f-num_steps").send_keys("2")
            driver.find_element("id", "prompt").send_keys("a robot arm")
            driver.find_element("id", "send").click()
            video = wait_for(
                driver, "the video", lambda d: d.find_elements("css selector", "video.reply-video")
            )[0]
            assert video.get_attribute("src").startswith("data:video/mp4;base64,")
            shoot(driver, shots / "chat-predict.png")
    finally:
        gw.stop()
