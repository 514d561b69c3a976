"""`taoplan request`, the Python client, the request log and `taoplan stats`, against the real TAO server.

The services run the real nvidia-tao-core 7.3.0 server class with a tiny fake model that echoes what
the server handed it (testimage/README.md), so each test sees exactly what arrived.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import stat
import struct
import sys
import zlib
from pathlib import Path
from typing import Any

import pexpect
import pytest

from taoplan.traffic.stats import percentile
from tests.conftest import Run, taoplan
from tests.e2e.conftest import services_yaml

pytestmark = pytest.mark.docker

FOUR = {
    "reason-a": {"network_arch": "cosmos-rl", "model_path": "/models/a"},
    "reason-b": {"network_arch": "cosmos-rl", "model_path": "/models/b"},
    "data": {"network_arch": "tao-dataservices", "model_path": "hf_model://Qwen/Qwen3-VL-8B-Instruct"},
    "predict": {
        "network_arch": "cosmos-predict2.5",
        "model_path": "hf_model://nvidia/Cosmos-Predict2.5-2B",
        "model_key": "base-2b",
    },
}
URL_IMAGE = "https://example.com/cat.jpg"
RL_VALUES = ("--max-tokens", "16", "--temperature", "0.1", "--top-p", "0.5")


def tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


def mp4_boxes(data: bytes) -> dict[str, bytes]:
    boxes, at = {}, 0
    while at < len(data):
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        boxes[kind.decode()] = data[at + 8 : at + size]
        at += size
    return boxes


def req(project: Path, *args: str, env: dict[str, str] | None = None) -> Run:
    """`taoplan request` with no terminal on stdin."""
    return taoplan("request", *args, cwd=project, env=env, stdin="")


def echo(run: Run) -> dict[str, Any]:
    assert run.code == 0, run.text
    data: dict[str, Any] = json.loads(run.out)
    return data


def fails(run: Run, message: str) -> str:
    assert run.code == 1, run.text
    assert message in run.err, run.err
    assert "Traceback" not in run.text
    return run.err


def log_lines(project: Path, *, smoke: bool = False) -> list[dict[str, Any]]:
    """The request log's rows, as the old requests.jsonl lines had them (the store replaced the file).
    Apply's own smoke requests (via smoke) are rows too; most assertions count what users sent."""
    from taoplan.traffic.log import open_store

    if not (project / ".taoplan" / "gateway.db").exists():
        return []
    with open_store(project / ".taoplan", quiet=True) as store:
        return [row.to_record() for row in store.rows() if smoke or row.via != "smoke"]


def log_bytes(project: Path) -> bytes:
    """Every byte the request log's database files hold."""
    state = project / ".taoplan"
    return b"".join((state / n).read_bytes() for n in sorted(os.listdir(state)) if n.startswith("gateway.db"))


def services(project: Path) -> dict[str, dict[str, Any]]:
    run = taoplan("status", "--json", "--no-refresh", cwd=project)
    return {row["name"]: row for row in json.loads(run.out)["services"]}


def test_routing_rules_outputs_client_log_and_stats(dproject: Path) -> None:
    (dproject / "services.yaml").write_text(
        services_yaml(dproject.name, FOUR) + "pricing:\n  local-docker: {gpu_hour: 3.6}\n"
    )
    apply = taoplan("apply", "--auto-approve", cwd=dproject)
    assert apply.code == 0, apply.text
    rows = services(dproject)
    png = dproject / "dot.png"
    png.write_bytes(tiny_png())
    clip = dproject / "clip.mkv"
    clip.write_bytes(b"\x1aE\xdf\xa3 not really a video")

    # ---- routing: ambiguity is an error that lists every candidate; never "latest"
    err = fails(req(dproject, "--prompt", "hi", "--accept-defaults"), "4 services are running")
    for row in rows.values():
        assert f"name={row['name']} job_id={row['job_id']}" in err
    err = fails(req(dproject, "--arch", "cosmos-rl", "--prompt", "hi"), "2 services run cosmos-rl")
    for name in ("reason-a", "reason-b"):
        row = rows[name]
        assert (
            f"name={name} job_id={row['job_id']} started_at={row['started_at']} host_url={row['host_url']}"
        ) in err
    assert "name=data" not in err

    run = req(dproject, "--arch", "tao-dataservices", "--prompt", "hi", "--accept-defaults")
    data = rows["data"]
    assert (
        f"Sending to name=data job_id={data['job_id']} arch=tao-dataservices url={data['host_url']}"
    ) in run.err
    assert echo(run)["sampling"] == {"max_new_tokens": 1024, "temperature": 0.7, "top_p": 0.8}

    got = echo(
        req(
            dproject,
            "reason-a",
            "--prompt",
            "what?",
            "--system",
            "be brief",
            "--image",
            URL_IMAGE,
            *RL_VALUES,
        )
    )
    assert (got["prompt"], got["system"], got["media"]) == ("what?", "be brief", [URL_IMAGE])
    assert got["model_path"] == "/models/a"
    assert got["sampling"] == {"max_new_tokens": 16, "temperature": 0.1, "top_p": 0.5}  # verbatim

    b_job = str(rows["reason-b"]["job_id"])
    run = req(dproject, "--job-id", b_job, "--prompt", "p", "--image", URL_IMAGE, *RL_VALUES)
    assert echo(run)["model_path"] == "/models/b" and f"name=reason-b job_id={b_job}" in run.err
    fails(req(dproject, "--job-id", "no-such-job", "--prompt", "p"), "no service with job id no-such-job")
    fails(req(dproject, "data", "--arch", "cosmos-rl", "--prompt", "p"), "service data runs tao-dataservices")
    fails(req(dproject, "ghost", "--prompt", "p"), "no service named 'ghost' in state")

    # a service the TAO skill started itself exists only in the registry: reachable by job id only
    registry_path = dproject.parent / "registry.json"
    registry = json.loads(registry_path.read_text())
    registry["skill-started-1"] = {
        "job_id": "skill-started-1",
        "platform": "local-docker",
        "network_arch": "tao-dataservices",
        "host_url": data["host_url"],
        "started_at": "2026-01-01T00:00:00+00:00",
    }
    registry_path.write_text(json.dumps(registry))
    run = req(dproject, "--job-id", "skill-started-1", "--prompt", "from the skill", "--accept-defaults")
    assert "Sending to name=- job_id=skill-started-1 arch=tao-dataservices" in run.err
    assert echo(run)["prompt"] == "from the skill"
    err = fails(req(dproject, "--prompt", "hi"), "4 services are running")
    assert "skill-started-1" not in err

    # ---- body: local files become data: URIs where the arch allows them
    got = echo(
        req(
            dproject,
            "data",
            "--prompt",
            "look",
            "--image",
            str(png),
            "--video",
            "clip.mkv",
            "--accept-defaults",
        )
    )
    assert got["media"] == [
        f"data:image/png;{png.stat().st_size} bytes",
        f"data:video/x-matroska;{clip.stat().st_size} bytes",
    ]
    assert got["images_seen"] == [{"format": "PNG", "mode": "RGB", "size": [1, 1]}]

    # ---- every rule is checked before anything is sent
    sent_before = len(log_lines(dproject))
    big = dproject / "big.mp4"
    with big.open("wb") as fh:
        fh.truncate(512 * 2**20 + 1)  # sparse
    rl = ("reason-a", "--prompt", "p", *RL_VALUES)
    fails(req(dproject, *rl), "cosmos-rl requires at least one --image or --video")
    fails(req(dproject, *rl, "--image", str(png)), "cosmos-rl does not accept inline data: URIs")
    fails(req(dproject, *rl, "--image", "s3://bucket/cat.jpg"), "cloud-storage URIs are not supported")
    fails(req(dproject, *rl, "--image", "https://example.com/cat.heic"), "must end in one of .jpg")
    fails(
        req(dproject, *rl, "--image", URL_IMAGE, "--guidance", "3"), "--guidance does not apply to cosmos-rl"
    )
    fails(
        req(dproject, "data", "--prompt", "p", "--image", "cat.heic", "--accept-defaults"),
        "unsupported image type",
    )
    fails(
        req(dproject, "data", "--prompt", "p", "--video", str(big), "--accept-defaults"),
        "512 MiB media limit",
    )
    fails(
        req(dproject, "data", "--prompt", "p", "--top-p", "1.5", "--accept-defaults"),
        "--top-p 1.5 is out of range",
    )
    fails(
        req(dproject, "predict", "--prompt", "p", "--temperature", "0.3", "--accept-defaults"),
        "--temperature does not apply to cosmos-predict2.5",
    )
    # without a terminal, every applicable field must be given or the defaults accepted
    err = fails(req(dproject, "data", "--prompt", "p", "--max-tokens", "8"), "there is no terminal to ask")
    assert "--temperature (float, default 0.7, 0..2)" in err and "--top-p (float, default 0.8, 0..1)" in err
    assert "--accept-defaults" in err and "--max-tokens" not in err
    assert len(log_lines(dproject)) == sent_before

    # ---- replies: a video is decoded to --output, printed raw only into a pipe, whole with --json
    predict_values = ("--max-tokens", "5", "--guidance", "3", "--num-steps", "2", "--seed", "1")
    run = req(
        dproject,
        "predict",
        "--prompt",
        "a cat",
        *predict_values,
        "--negative-prompt",
        "blurry",
        "--output",
        "out.mp4",
    )
    assert run.code == 0 and run.out == "" and "Wrote out.mp4 (video/mp4," in run.err, run.text
    boxes = mp4_boxes((dproject / "out.mp4").read_bytes())
    assert set(boxes) == {"ftyp", "free", "mdat"}
    assert json.loads(boxes["free"])["predict_params"] == {
        "num_output_frames": 5,
        "guidance": 3.0,
        "num_steps": 2,
        "seed": 1,
        "negative_prompt": "blurry",
    }
    run = req(dproject, "predict", "--prompt", "a cat", "--accept-defaults")
    assert run.code == 0 and run.out.startswith("data:video/mp4;base64,"), run.text
    run = req(dproject, "data", "--prompt", "p", "--accept-defaults", "--json")
    assert json.loads(run.out)["object"] == "chat.completion"
    # a 500 from the server: its error.type and message, one line
    err = fails(
        req(
            dproject,
            "data",
            "--prompt",
            "p",
            "--image",
            "https://nonexistent.invalid/x.png",
            "--accept-defaults",
        ),
        "data answered HTTP 500: internal_error: ",
    )
    assert len(err.strip().splitlines()) == 2  # the Sending line and the error

    # ---- the terminal prompt: one round, type and default shown, Enter accepts, ranges re-asked
    env = {**os.environ, "NO_COLOR": "1"}
    child = pexpect.spawn(
        sys.executable,
        ["-m", "taoplan", "request", "data", "--prompt", "tty", "--temperature", "0.3"],
        cwd=str(dproject),
        env=env,
        encoding="utf-8",
        timeout=120,
    )
    child.expect_exact("Sampling values for data (tao-dataservices); Enter accepts the default:")
    child.expect_exact("max_tokens (int, default 1024): ")
    child.sendline("")
    child.expect_exact("top_p (float, default 0.8): ")
    child.sendline("1.5")
    child.expect_exact("top_p (float, default 0.8): ")
    child.sendline("0.25")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    reply = json.loads(str(child.before).strip().splitlines()[-1])
    assert reply["sampling"] == {"max_new_tokens": 1024, "temperature": 0.3, "top_p": 0.25}
    # a video reply is never dumped on a terminal
    child = pexpect.spawn(
        sys.executable,
        ["-m", "taoplan", "request", "predict", "--prompt", "tty", "--accept-defaults"],
        cwd=str(dproject),
        env=env,
        encoding="utf-8",
        timeout=120,
    )
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "The reply is video/mp4" in str(child.before) and "base64" not in str(child.before)

    # ---- the Python client: same routing, same rules, same log
    from taoplan import client
    from taoplan.errors import RequestError

    svc = client.get_service("data", file=dproject / "services.yaml", caller="notebook")
    assert (svc.arch, svc.url) == ("tao-dataservices", data["host_url"])
    text = svc.chat("client", images=[str(png)], system="sys", max_tokens=7, temperature=0.5, top_p=0.5)
    assert json.loads(text)["sampling"] == {"max_new_tokens": 7, "temperature": 0.5, "top_p": 0.5}
    assert svc.raw("raw", accept_defaults=True)["object"] == "chat.completion"
    assert json.loads(asyncio.run(svc.achat("async", accept_defaults=True)))["prompt"] == "async"
    with pytest.raises(
        RequestError, match="give them, or accept these defaults explicitly with accept_defaults=True"
    ):
        svc.chat("no values")
    by_job = client.get_service(job_id=str(rows["predict"]["job_id"]), file=dproject / "services.yaml")
    mime, video = client.decode_data_uri(by_job.chat("a cat", accept_defaults=True)) or ("", b"")
    assert mime == "video/mp4" and b"ftyp" in video
    with pytest.raises(RequestError, match="2 services run cosmos-rl"):
        client.get_service(arch="cosmos-rl", file=dproject / "services.yaml")

    # ---- the log: one line per request sent, nothing of the content unless asked, never a secret
    canary = "hf-canary-5eb1d2c0"
    secret_env = {"HF_TOKEN": canary}
    req(
        dproject, "data", "--prompt", "zebra-marker", "--accept-defaults", "--caller", "carol", env=secret_env
    )
    req(
        dproject,
        "data",
        "--prompt",
        f"zebra-marker {canary}",
        "--accept-defaults",
        "--log-content",
        env=secret_env,
    )
    path = dproject / ".taoplan" / "gateway.db"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = log_bytes(dproject).decode("utf-8", "replace")
    assert canary not in text
    lines = log_lines(dproject)
    keys = {"time", "service", "job_id", "caller", "status", "latency_ms", "request_bytes", "response_bytes"}
    assert all(keys <= set(line) for line in lines)
    assert {line["via"] for line in lines} == {"cli", "client"}
    assert "zebra-marker" not in json.dumps([line for line in lines if "content" not in line])
    carol, logged = lines[-2], lines[-1]
    assert (carol["caller"], carol["service"], carol["status"]) == ("carol", "data", 200)
    assert carol["job_id"] == data["job_id"] and carol["request_bytes"] > 0 and carol["response_bytes"] > 0
    assert logged["caller"] == (os.environ.get("TAOPLAN_CALLER") or getpass.getuser())
    assert logged["content"]["prompt"] == "zebra-marker [REDACTED]"
    assert [line["caller"] for line in lines if line["via"] == "client"].count("notebook") == 3
    assert any(line["service"] is None and line["job_id"] == "skill-started-1" for line in lines)
    assert any(line["status"] == 500 and line["error_type"] == "internal_error" for line in lines)

    # ---- stats on a known set of requests
    for caller in ("alice", "alice", "bob"):
        assert req(dproject, "data", "--prompt", "s", "--accept-defaults", "--caller", caller).code == 0
    bad = req(
        dproject,
        "data",
        "--prompt",
        "s",
        "--image",
        "https://nonexistent.invalid/y.png",
        "--accept-defaults",
        "--caller",
        "bob",
    )
    assert bad.code == 1
    run = taoplan("stats", "--json", cwd=dproject)
    assert run.code == 0, run.text
    report = json.loads(run.out)
    assert report["pricing"] == {"local-docker": 3.6}
    by_service = {s["service"]: s for s in report["services"]}
    stats = by_service["data"]
    callers = {c["caller"]: c for c in stats["callers"]}
    assert (callers["alice"]["requests"], callers["alice"]["errors"]) == (2, 0)
    assert (callers["bob"]["requests"], callers["bob"]["errors"]) == (2, 1)
    bob_latencies = [line["latency_ms"] for line in log_lines(dproject) if line["caller"] == "bob"]
    assert callers["bob"]["p50_ms"] == round(percentile(bob_latencies, 50) or 0, 3)
    assert callers["bob"]["max_ms"] == round(max(bob_latencies), 3)
    data_lines = [line for line in log_lines(dproject) if line["service"] == "data"]
    # stats count apply's smoke request too, as its own caller, with no share of the cost
    every_data_line = [line for line in log_lines(dproject, smoke=True) if line["service"] == "data"]
    assert len(every_data_line) == len(data_lines) + 1
    assert stats["requests"] == len(every_data_line)
    assert stats["errors"] == sum(1 for line in every_data_line if line["status"] != 200)
    assert (callers["taoplan-smoke"]["requests"], callers["taoplan-smoke"]["cost"]) == (1, 0)
    assert stats["cost"] == pytest.approx(stats["gpu_seconds"] / 3600 * 3.6, rel=1e-3)
    assert sum(c["cost"] for c in stats["callers"]) == pytest.approx(stats["cost"], rel=1e-3)
    alice_ms = sum(line["latency_ms"] for line in data_lines if line["caller"] == "alice")
    users_ms = sum(line["latency_ms"] for line in data_lines)  # the smoke request takes no share
    assert callers["alice"]["share"] == pytest.approx(alice_ms / users_ms, rel=1e-3)
    assert by_service["skill-started-1"]["requests"] == 1
    assert set(by_service) >= {"data", "reason-a", "reason-b", "predict"}
    table = taoplan("stats", "--since", "1h", cwd=dproject)
    assert table.code == 0, table.text
    assert "SERVICE" in table.out and "COST" in table.out
    assert any(row.split()[:4] == ["data", "bob", "2", "1"] for row in table.out.splitlines())
    assert "split among callers by their share of request time" in table.out
    fails(taoplan("stats", "--since", "soon", cwd=dproject), "expected a duration")


def test_slow_and_failed_loads(dproject: Path) -> None:
    services = {
        "slow": {
            "network_arch": "cosmos-rl",
            "model_path": "/models/slow",
            "env": {"TAO_FAKE_LOAD_SECONDS": "20"},
            "readiness": {"timeout": 2},
        },
        "broken": {
            "network_arch": "cosmos-rl",
            "model_path": "/models/broken",
            "env": {"TAO_FAKE_LOAD_FAIL": "weights are corrupt"},
        },
    }
    (dproject / "services.yaml").write_text(services_yaml(dproject.name, services))
    apply = taoplan("apply", "--auto-approve", cwd=dproject)
    assert apply.code == 3, apply.text  # slow times out (it keeps loading), broken fails
    args = ("--prompt", "p", "--image", URL_IMAGE, "--accept-defaults")

    fails(
        req(dproject, "slow", *args),
        "slow is not ready yet (model_loading: Model is currently loading, please wait); pass --wait SECONDS",
    )
    fails(
        req(dproject, "slow", *args, "--wait", "1"), "slow is still not ready after waiting 1s (model_loading"
    )
    run = req(dproject, "slow", *args, "--wait", "300")
    assert "Waiting for slow: model_loading" in run.err
    assert echo(run)["model_path"] == "/models/slow"
    fails(
        req(dproject, "broken", *args, "--wait", "30"),
        "broken cannot serve requests (model_load_error: Model failed to load: weights are corrupt); "
        "see taoplan logs broken",
    )
    fails(
        req(dproject, "--arch", "tao-dataservices", *args), "no service with arch tao-dataservices in state"
    )

    lines = log_lines(dproject)
    assert [(line["service"], line["status"]) for line in lines] == [
        ("slow", 202),
        ("slow", 202),
        ("slow", 200),
        ("broken", 503),
    ]
    assert lines[1]["attempts"] > 1 and lines[2]["attempts"] > 1 and lines[2]["wait_ms"] > 0
    assert lines[3]["attempts"] == 1  # a failed load is never retried
    assert [line["error_type"] for line in lines] == [
        "model_loading",
        "model_loading",
        None,
        "model_load_error",
    ]
