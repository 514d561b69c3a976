"""The pure parts of `taoplan chat`: what a conversation keeps between turns, each turn's body, and the
folding of a streamed reply into one chat-completions body."""

from __future__ import annotations

import json
from typing import Any

import pytest

from taoplan.errors import RequestError
from taoplan.spec.references import load_references
from taoplan.traffic.chat import Conversation
from taoplan.traffic.request import Target
from taoplan.traffic.request.stream import Events

RULES = load_references().request
TAO = Target(job_id="j1", arch="tao-dataservices", name="data")
RL = Target(job_id="j2", arch="cosmos-rl", name="reason")
LLM = Target(job_id="j3", arch="llamacpp", name="gemma", served_name="gemma")
TAO_VALUES = {"max_tokens": 64, "temperature": 0.2, "top_p": 0.5}
LLM_VALUES = {"max_tokens": 16, "temperature": 0.0, "top_p": 1.0}


def test_a_tao_turn_is_the_request_of_taoplan_request_and_carries_no_earlier_turn() -> None:
    conv = Conversation.start(TAO, RULES, TAO_VALUES, "Be brief.").attach("image", "https://x/cat.jpg")
    first = conv.turn("What is it?")
    assert first.body == {
        "model": "tao-dataservices",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is it?"},
                    {"type": "image_url", "image_url": {"url": "https://x/cat.jpg"}},
                ],
            },
        ],
        **TAO_VALUES,
    }
    conv = conv.answered(first, "a cat")
    assert not conv.multi_turn and conv.history == () and conv.images == ()
    second = conv.turn("And now?")
    assert [m["role"] for m in second.body["messages"]] == ["system", "user"]
    assert "stream" not in second.body


def test_a_server_turn_sends_the_whole_conversation_streamed() -> None:
    conv = Conversation.start(LLM, RULES, LLM_VALUES, "Be brief.")
    first = conv.turn("Hello")
    assert first.body["model"] == "gemma" and first.body["stream"] is True
    assert first.body["stream_options"] == {"include_usage": True}
    assert {k: first.body[k] for k in LLM_VALUES} == LLM_VALUES
    conv = conv.answered(first, "Hi there")
    second = conv.turn("How are you?")
    messages = second.body["messages"]
    assert [
        (m["role"], m["content"] if m["role"] != "user" else m["content"][0]["text"]) for m in messages
    ] == [
        ("system", "Be brief."),
        ("user", "Hello"),
        ("assistant", "Hi there"),
        ("user", "How are you?"),
    ]
    assert json.loads(second.payload) == second.body
    assert second.content["history"] == [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi there"},
    ]


def test_a_failed_turn_uses_up_its_attachments_and_keeps_the_conversation() -> None:
    conv = Conversation.start(LLM, RULES, LLM_VALUES)
    conv = conv.answered(conv.turn("one"), "two")
    pending = conv.attach("image", "https://x/a.png")
    pending.turn("three")  # building a turn changes nothing
    assert pending.images == ("https://x/a.png",) and len(pending.history) == 2
    after = pending.failed()
    assert after.images == () and after.history == conv.history
    assert after.reset().history == ()


def test_bad_input_is_one_request_error() -> None:
    rl = Conversation.start(RL, RULES, {"max_tokens": 8, "temperature": 0.1, "top_p": 0.5})
    with pytest.raises(RequestError, match="cosmos-rl does not accept inline data: URIs"):
        rl.attach("image", "./dot.png")
    with pytest.raises(RequestError, match="unsupported scheme ftp://"):
        rl.attach("video", "ftp://x/y.mp4")
    with pytest.raises(RequestError, match="cosmos-rl requires at least one /image or /video"):
        rl.turn("no media")
    with pytest.raises(RequestError, match=r"temperature 9.0 is out of range for cosmos-rl \(0..2\)"):
        rl.with_params(["temperature=9"])
    with pytest.raises(RequestError, match="max_tokens must be int, got 'many'"):
        rl.with_params(["max_tokens=many"])
    with pytest.raises(RequestError, match="/params seed=1: cosmos-rl takes max_tokens="):
        rl.with_params(["seed=1"])
    assert rl.with_params(["temperature=0.3", "max_tokens=4"]).values == {
        "max_tokens": 4,
        "temperature": 0.3,
        "top_p": 0.5,
    }
    with pytest.raises(RequestError, match="top_p 2 is out of range"):
        rl.with_values({"top_p": 2})


def test_a_server_is_asked_for_the_server_sampling_fields() -> None:
    conv = Conversation.start(LLM, RULES, LLM_VALUES)
    assert {name: spec.default for name, spec in conv.fields.items()} == {
        "max_tokens": 512,
        "temperature": 0.7,
        "top_p": 0.95,
    }


def chunk(**fields: Any) -> str:
    return "data: " + json.dumps({"object": "chat.completion.chunk", "model": "gemma", **fields})


def test_streamed_events_fold_into_one_reply() -> None:
    seen: list[str] = []
    events = Events()
    lines = [
        chunk(choices=[{"index": 0, "delta": {"role": "assistant", "content": None}}]),
        "",
        chunk(choices=[{"index": 0, "delta": {"content": "Hel"}}]),
        ": a comment",
        chunk(choices=[{"index": 0, "delta": {"content": "lo"}}]),
        chunk(choices=[{"index": 0, "delta": {}, "finish_reason": "length"}]),
        chunk(choices=[], usage={"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}),
        "data: [DONE]",
    ]
    for line in lines:
        events.feed(line, seen.append)
    assert seen == ["Hel", "lo"] and events.done and events.error is None
    body = json.loads(events.body())
    assert body["choices"][0] == {
        "index": 0,
        "message": {"role": "assistant", "content": "Hello"},
        "finish_reason": "length",
    }
    assert body["usage"]["completion_tokens"] == 2 and body["model"] == "gemma"


def test_an_error_event_is_kept() -> None:
    events = Events()
    events.feed('data: {"error": {"message": "context full", "type": "server_error"}}', lambda _: None)
    assert events.error == {"message": "context full", "type": "server_error"} and not events.done
