"""The pure parts of `taoplan request`: routing, sampling rules, media rules, body and reply handling."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from taoplan.errors import RequestError
from taoplan.spec.references import load_references
from taoplan.traffic.request import (
    FAILED,
    FATAL,
    OK,
    RETRY,
    Target,
    backoff,
    build_body,
    classify,
    decode_data_uri,
    failure_message,
    prepare,
    prepare_for,
    resolve_sampling,
    route,
    targets_from_registry,
)

RULES = load_references().request
ARCHS = list(RULES.archs)

A = Target("j-a", "cosmos-rl", "reason-a", "http://h:8080", "2026-01-01T00:00:00+00:00")
B = Target("j-b", "cosmos-rl", "reason-b", "http://h:8081", "2026-01-01T00:01:00+00:00")
D = Target("j-d", "tao-dataservices", "data", "http://h:8082", "2026-01-01T00:02:00+00:00")
SKILL = Target("j-skill", "cosmos-predict2.5", None, "http://h:8090", None, source="registry")


# ------------------------------------------------------------------------------------------ routing


def test_route_order_job_id_then_name_then_arch_then_the_only_one() -> None:
    services = [A, B, D]
    assert route(services, [SKILL], job_id="j-b") is B
    assert route(services, [SKILL], job_id="j-skill") is SKILL  # registry-only, by job id
    assert route(services, [SKILL], name="data") is D
    assert route(services, [SKILL], arch="tao-dataservices", valid_archs=ARCHS) is D
    assert route([D], [SKILL]) is D


def test_route_ambiguity_lists_every_candidate_and_never_picks_latest() -> None:
    with pytest.raises(RequestError) as arch_err:
        route([A, B, D], [], arch="cosmos-rl", valid_archs=ARCHS)
    assert "2 services run cosmos-rl" in arch_err.value.message
    listed = "\n".join(arch_err.value.lines[1:])
    for t in (A, B):
        assert f"name={t.name} job_id={t.job_id} started_at={t.started_at} host_url={t.host_url}" in listed
    assert "data" not in listed

    with pytest.raises(RequestError) as none_err:
        route([A, B, D], [SKILL])
    assert len(none_err.value.lines) == 4
    assert "j-skill" not in "\n".join(none_err.value.lines)  # registry entries never join the no-hint choice


def test_route_errors() -> None:
    cases: list[tuple[dict[str, str], str]] = [
        ({"job_id": "nope"}, "no service with job id nope in state or in the registry"),
        ({"name": "ghost"}, "no service named 'ghost' in state (known: reason-a, reason-b, data)"),
        ({"arch": "cosmos-predict2.5"}, "no service with arch cosmos-predict2.5 in state"),
        ({"arch": "bogus"}, "unknown arch 'bogus'"),
        ({"name": "data", "arch": "cosmos-rl"}, "service data runs tao-dataservices, not cosmos-rl"),
        ({"job_id": "j-a", "name": "data"}, "job id j-a is service reason-a, not data"),
        ({"job_id": "j-a", "arch": "tao-dataservices"}, "job id j-a runs cosmos-rl, not tao-dataservices"),
    ]
    for kwargs, message in cases:
        with pytest.raises(RequestError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
            route([A, B, D], [], valid_archs=ARCHS, **kwargs)
    with pytest.raises(RequestError, match="no services in state; run 'taoplan apply' first"):
        route([], [])


def test_registry_entries_from_the_skill_become_targets() -> None:
    entries = {
        "j1": {
            "job_id": "j1",
            "platform": "local-docker",
            "network_arch": "cosmos-rl",
            "host_url": "http://localhost:8085",
            "started_at": "2026-01-01T00:00:00+00:00",
        }
    }
    [target] = targets_from_registry(entries)
    assert (target.job_id, target.arch, target.name, target.source) == ("j1", "cosmos-rl", None, "registry")
    assert target.num_gpus == 1 and target.host_url == "http://localhost:8085"


# ------------------------------------------------------------------------------------------ sampling


def test_sampling_never_silently_defaults() -> None:
    with pytest.raises(RequestError) as err:
        resolve_sampling("cosmos-rl", RULES, {"max_tokens": 10})
    message = err.value.message
    assert "no terminal to ask" in message and "--accept-defaults" in message
    assert "--temperature (float, default 0.7, 0..2)" in message
    assert "--top-p (float, default 0.8, 0..1)" in message
    assert "--max-tokens" not in message  # given, so not listed
    assert resolve_sampling("cosmos-rl", RULES, {"max_tokens": 10}, accept_defaults=True) == {
        "max_tokens": 10,
        "temperature": 0.7,
        "top_p": 0.8,
    }


def test_sampling_asks_only_for_missing_fields_in_data_order() -> None:
    asked: list[str] = []

    def ask(name: str, spec: object) -> object:
        asked.append(name)
        return {"max_tokens": 5, "num_steps": 2, "seed": 9, "negative_prompt": ""}[name]

    values = resolve_sampling("cosmos-predict2.5", RULES, {"guidance": 3.5}, ask=ask)
    assert asked == ["max_tokens", "num_steps", "seed", "negative_prompt"]
    assert values == {"max_tokens": 5, "guidance": 3.5, "num_steps": 2, "seed": 9, "negative_prompt": ""}


def test_cross_checks_and_ranges_are_errors_before_sending() -> None:
    bad: list[tuple[str, dict[str, Any], str]] = [
        (
            "cosmos-rl",
            {"guidance": 3.0},
            "--guidance does not apply to cosmos-rl (it applies to cosmos-predict2.5)",
        ),
        ("cosmos-predict2.5", {"temperature": 0.3}, "--temperature does not apply to cosmos-predict2.5"),
        ("cosmos-predict2.5", {"top_p": 0.3}, "--top-p does not apply to cosmos-predict2.5"),
        ("tao-dataservices", {"num_steps": 3}, "--num-steps does not apply to tao-dataservices"),
        ("tao-dataservices", {"top_p": 1.5}, "--top-p 1.5 is out of range for tao-dataservices (0..1)"),
        (
            "cosmos-predict2.5",
            {"guidance": 7.5},
            "--guidance 7.5 is out of range for cosmos-predict2.5 (0..7)",
        ),
        ("cosmos-rl", {"max_tokens": 0}, "--max-tokens 0 is out of range for cosmos-rl (>= 1)"),
        ("cosmos-rl", {"max_tokens": 2.5}, "--max-tokens must be int, got 2.5"),
        ("cosmos-rl", {"temperature": True}, "--temperature must be float, got True"),
        ("cosmos-rl", {"temperature": float("nan")}, "--temperature must be a finite number"),
    ]
    for arch, given, message in bad:
        with pytest.raises(RequestError) as err:
            resolve_sampling(arch, RULES, given, accept_defaults=True)
        assert message in err.value.message, (arch, given, err.value.message)
    # edges are accepted verbatim: no clamping, no rounding
    values = resolve_sampling("cosmos-predict2.5", RULES, {"guidance": 7, "seed": 0}, accept_defaults=True)
    assert values["guidance"] == 7 and values["seed"] == 0


def test_every_cross_check_problem_is_reported_at_once() -> None:
    with pytest.raises(RequestError) as err:
        prepare(
            "cosmos-rl",
            RULES,
            prompt="p",
            sampling={"guidance": 1.0, "num_steps": 3, "top_p": 2.0},
            accept_defaults=True,
        )
    assert len(err.value.lines) == 4  # three fields and the missing media
    assert err.value.lines[-1] == "cosmos-rl requires at least one --image or --video"


# ------------------------------------------------------------------------------------------ media and body


def test_media_rules(tmp_path: Path) -> None:
    png = tmp_path / "dot.png"
    png.write_bytes(b"\x89PNG fake")
    big = tmp_path / "big.mp4"
    with big.open("wb") as fh:  # sparse: one byte over the cap without using disk
        fh.truncate(RULES.chat.max_media_bytes + 1)
    (tmp_path / "dir.png").mkdir()

    def err(arch: str, **kw: object) -> str:
        with pytest.raises(RequestError) as e:
            prepare(arch, RULES, prompt="p", accept_defaults=True, **kw)  # type: ignore[arg-type]
        return e.value.message

    assert "cloud-storage URIs are not supported" in err("tao-dataservices", images=["s3://bucket/a.png"])
    assert "cloud-storage URIs are not supported" in err("cosmos-rl", videos=["GS://bucket/a.mp4"])
    assert "unsupported scheme ftp://" in err("tao-dataservices", images=["ftp://h/a.png"])
    assert "unsupported image type" in err("tao-dataservices", images=[str(tmp_path / "a.heic")])
    assert "unsupported video type" in err("tao-dataservices", videos=[str(png)])
    assert "the URL's path must end in one of .jpg" in err("cosmos-rl", images=["https://h/a.txt?x=1"])
    assert "no such file" in err("tao-dataservices", images=[str(tmp_path / "missing.png")])
    assert "not a regular file" in err("tao-dataservices", images=[str(tmp_path / "dir.png")])
    assert "over the 512 MiB media limit" in err("tao-dataservices", videos=[str(big)])
    refused = err("cosmos-rl", images=[str(png)])
    assert "cosmos-rl does not accept inline data: URIs, so a local file cannot be sent" in refused
    assert "does not accept data: URIs" in err("cosmos-rl", images=["data:image/png;base64,AAAA"])
    assert "media type image/heic is not supported" in err(
        "tao-dataservices", images=["data:image/heic;base64,AA"]
    )


def test_body_is_openai_chat_with_one_user_message(tmp_path: Path) -> None:
    png = tmp_path / "dot.PNG"
    png.write_bytes(b"\x89PNG fake")
    clip = tmp_path / "clip.mkv"
    clip.write_bytes(b"mkv")
    prepared = prepare(
        "tao-dataservices",
        RULES,
        prompt="describe",
        system="be brief",
        images=[str(png), "https://h/x.jpg?sig=secret"],
        videos=[str(clip)],
        sampling={"max_tokens": 64, "temperature": 0.2, "top_p": 0.9},
    )
    body = prepared.body
    assert body["max_tokens"] == 64 and body["temperature"] == 0.2 and body["top_p"] == 0.9
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["messages"][0]["content"] == "be brief"
    items = body["messages"][1]["content"]
    assert items[0] == {"type": "text", "text": "describe"}
    assert (
        items[1]["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(b"\x89PNG fake").decode()
    )
    assert items[2] == {"type": "image_url", "image_url": {"url": "https://h/x.jpg?sig=secret"}}
    assert items[3]["video_url"]["url"].startswith("data:video/x-matroska;base64,")
    assert json.loads(prepared.payload) == body
    # what --log-content may keep: no bytes, no query strings
    assert prepared.content["media"] == [
        "data:image/png;9 bytes (dot.PNG)",
        "https://h/x.jpg?…",
        "data:video/x-matroska;3 bytes (clip.mkv)",
    ]
    assert "system" not in {m["role"] for m in build_body("cosmos-rl", "p", None, [], {})["messages"]}


def test_a_server_target_gets_an_openai_body_naming_its_served_name_under_the_server_rules() -> None:
    gemma = Target("j-g", "llamacpp", "chat", "http://h:8083", None, served_name="gemma")
    values = {"max_tokens": 16, "temperature": 0.0, "top_p": 1.0}
    body = prepare_for(gemma, RULES, prompt="hi", sampling=values).body
    assert body["model"] == "gemma" and body["max_tokens"] == 16
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    with pytest.raises(RequestError) as wrong:  # a TAO-only field is not a server's
        prepare_for(gemma, RULES, prompt="hi", sampling={**values, "guidance": 2.0})
    assert "guidance" in wrong.value.message
    with pytest.raises(RequestError):  # sampling values are never filled in silently, for servers too
        prepare_for(gemma, RULES, prompt="hi", sampling={"max_tokens": 16})
    assert prepare_for(D, RULES, prompt="x", sampling=values).body["model"] == "tao-dataservices"


# ------------------------------------------------------------------------------------------ replies


def test_reply_classification() -> None:
    chat = RULES.chat

    def err(kind: str, message: str = "m") -> dict[str, object]:
        return {"error": {"type": kind, "message": message}}

    ok = {"choices": [{"message": {"content": "hi"}}]}
    assert classify(200, ok, chat).kind == OK
    assert classify(200, {"choices": []}, chat).kind == FAILED
    assert classify(202, err("model_loading"), chat).kind == RETRY
    assert classify(202, err("server_initializing"), chat).kind == RETRY
    assert classify(503, err("model_not_ready"), chat).kind == RETRY
    assert classify(503, err("model_load_error"), chat).kind == FATAL
    assert classify(503, err("initialization_error"), chat).kind == FATAL
    assert classify(503, None, chat).kind == FAILED  # a proxy's 503 is not the server saying "loading"
    bad = classify(400, err("invalid_request", "Unsupported media type: image/heic"), chat)
    assert (bad.kind, bad.error_type, bad.message) == (
        FAILED,
        "invalid_request",
        "Unsupported media type: image/heic",
    )
    assert classify(500, err("internal_error"), chat).kind == FAILED
    assert classify(502, None, chat).message == "the reply is not JSON"


def test_failure_messages_are_one_line_and_point_somewhere() -> None:
    chat = RULES.chat
    loading = classify(
        202, {"error": {"type": "model_loading", "message": "Model is currently loading"}}, chat
    )
    assert failure_message(A, loading, wait=0, waited=False) == (
        "reason-a is not ready yet (model_loading: Model is currently loading); pass --wait SECONDS to wait for it"
    )
    assert "still not ready after waiting 30s" in failure_message(A, loading, wait=30, waited=True)
    fatal = classify(503, {"error": {"type": "model_load_error", "message": "Model failed to load: x"}}, chat)
    assert failure_message(A, fatal, wait=0, waited=False).endswith("see taoplan logs reason-a")
    assert "the logs of job j-skill" in failure_message(SKILL, fatal, wait=0, waited=False)
    bad = classify(400, {"error": {"type": "invalid_request", "message": "nope"}}, chat)
    assert failure_message(D, bad, wait=0, waited=False) == "data answered HTTP 400: invalid_request: nope"


def test_data_uri_decoding_and_backoff() -> None:
    assert decode_data_uri("data:video/mp4;base64," + base64.b64encode(b"ftyp").decode()) == (
        "video/mp4",
        b"ftyp",
    )
    assert decode_data_uri("plain text") is None
    assert decode_data_uri("data:video/mp4;base64,@@@") is None
    assert [backoff(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
