"""`taoplan chat` through a pseudo-terminal, as a user types it, against real services: the TAO test image
(whose fake model echoes what the real server handed it) and the llama.cpp LLM test image (a real model,
so a conversation sent whole is visible in the server's token counts and the request store).

Nothing here asserts a duration. A reply that is slow on purpose (TAO_FAKE_INFER_SECONDS) is cancelled
only once the chat's connection to the service is seen open.
"""

from __future__ import annotations

import getpass
import json
import os
import stat
import sys
import time
from pathlib import Path
from typing import Any

import pexpect
import pytest

from tests.conftest import taoplan
from tests.e2e.conftest import services_yaml
from tests.e2e.test_request import log_lines, tiny_png

pytestmark = pytest.mark.docker

SLOW_SECONDS = "20"  # the slow service's every reply; the test cancels one and waits for the next
TAO = {
    "data": {"network_arch": "tao-dataservices", "model_path": "hf_model://Qwen/Qwen3-VL-8B-Instruct"},
    "reason": {
        "network_arch": "cosmos-rl",
        "model_path": "/models/a",
        "env": {"TAO_FAKE_INFER_SECONDS": SLOW_SECONDS},
    },
}
CAT = "https://example.com/cat.jpg"


def chat(project: Path, *args: str) -> pexpect.spawn:
    """`taoplan chat` on a pseudo-terminal (TERM=dumb: readline without screen escapes)."""
    env = {**os.environ, "NO_COLOR": "1", "TERM": "dumb"}
    return pexpect.spawn(
        sys.executable,
        ["-m", "taoplan", "chat", *args],
        cwd=str(project),
        env=env,
        encoding="utf-8",
        timeout=300,
        dimensions=(50, 400),
    )


def say(child: pexpect.spawn, prompt: str, line: str) -> str:
    """Type ``line`` at the ``prompt``; return everything the chat printed up to the next prompt."""
    child.sendline(line)
    child.expect_exact(line + "\r\n")
    child.expect_exact(prompt)
    return str(child.before).replace("\r\n", "\n")


def echo(printed: str) -> dict[str, Any]:
    """The TAO fake model's echo: the one JSON line of a reply."""
    line = next(x for x in printed.splitlines() if x.startswith("{"))
    data: dict[str, Any] = json.loads(line)
    return data


def leave(child: pexpect.spawn) -> str:
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    return str(child.before)


def connected(pid: int, port: int) -> bool:
    """Whether an open TCP connection to ``port`` is seen from the chat's network namespace."""
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "01" and int(fields[2].rsplit(":", 1)[1], 16) == port:
                return True
    return False


def chat_rows(project: Path) -> list[dict[str, Any]]:
    return [row for row in log_lines(project) if row["via"] == "chat"]


def test_chat_with_tao_services(dproject: Path) -> None:
    (dproject / "services.yaml").write_text(services_yaml(dproject.name, TAO))
    apply = taoplan("apply", "--auto-approve", cwd=dproject)
    assert apply.code == 0, apply.text
    (dproject / "dot.png").write_bytes(tiny_png())

    # ---- a bad command line is one Error: line and exit 1, before any chat starts
    def refused(*args: str) -> str:
        run = taoplan("chat", *args, cwd=dproject, stdin="")
        assert run.code == 1 and "Traceback" not in run.text, run.text
        assert len(run.err.strip().splitlines()) == 1, run.err
        return run.err

    assert refused("nope", "--accept-defaults").startswith("Error: no service named 'nope'")
    err = refused("data")  # no terminal to ask on, and no values given
    assert "no terminal to ask" in err and "--max-tokens (int, default 1024" in err
    assert "--temperature 5.0 is out of range" in refused("data", "--temperature", "5", "--accept-defaults")
    assert "--guidance does not apply to tao-dataservices" in refused("data", "--guidance", "3")

    # ---- the sampling prompt: one round, each field with its type and default; ranges re-asked
    child = chat(dproject, "data")
    child.expect_exact("Sampling values for data (tao-dataservices); Enter accepts the default:")
    child.expect_exact("max_tokens (int, default 1024): ")
    child.sendline("")
    child.expect_exact("temperature (float, default 0.7): ")
    child.sendline("0.3")
    child.expect_exact("top_p (float, default 0.8): ")
    child.sendline("1.5")
    child.expect_exact("top_p (float, default 0.8): ")
    child.sendline("0.25")
    child.expect_exact("Chat with data (tao-dataservices).")
    child.expect_exact("Note: tao-dataservices reads only the first user message")
    child.expect_exact("data> ")

    # ---- /system and /image go with the next message; the reply is the server's echo of what arrived
    assert "System message set" in say(child, "data> ", "/system Answer briefly.")
    assert "Attached to the next message (1 attachment)" in say(child, "data> ", "/image dot.png")
    got = echo(say(child, "data> ", "What is in this picture?"))
    assert got["prompt"] == "What is in this picture?"
    assert got["system"] == "Answer briefly."
    assert got["media"] == [f"data:image/png;{len(tiny_png())} bytes"]
    assert len(got["images_seen"]) == 1
    assert got["sampling"] == {"max_new_tokens": 1024, "temperature": 0.3, "top_p": 0.25}

    # each TAO turn is sent on its own: the attachment is used up, no earlier turn travels
    got = echo(say(child, "data> ", "And now?"))
    assert got["prompt"] == "And now?" and got["media"] == [] and got["system"] == "Answer briefly."

    # ---- /params: inline values are checked (one line, nothing kept); the round shows current values
    printed = say(child, "data> ", "/params temperature=9")
    assert printed.strip() == (
        "Error: temperature 9.0 is out of range for tao-dataservices (0..2); values are never clamped"
    )
    assert "Error: /params seed=1: tao-dataservices takes" in say(child, "data> ", "/params seed=1")
    child.sendline("/params")
    child.expect_exact("max_tokens (int, default 1024): ")
    child.sendline("64")
    child.expect_exact("temperature (float, default 0.3): ")
    child.sendline("")
    child.expect_exact("top_p (float, default 0.25): ")
    child.sendline("")
    child.expect_exact("Sampling: max_tokens=64 temperature=0.3 top_p=0.25")
    child.expect_exact("data> ")
    assert "Sampling: max_tokens=32" in say(child, "data> ", "/params max_tokens=32")
    got = echo(say(child, "data> ", "Third"))
    assert got["sampling"] == {"max_new_tokens": 32, "temperature": 0.3, "top_p": 0.25}

    # ---- bad input is one line and the chat goes on
    assert (
        say(child, "data> ", "/video ftp://x/y.mp4")
        .strip()
        .startswith("Error: /video ftp://x/y.mp4: unsupported scheme ftp://")
    )
    assert say(child, "data> ", "/image nothere.png").strip() == "Error: /image nothere.png: no such file"
    assert "Unknown command /nope; /help lists commands." in say(child, "data> ", "/nope")
    assert "/params k=v" in say(child, "data> ", "/help")

    # ---- Ctrl+D leaves with exit 0; no traceback anywhere
    assert "Traceback" not in leave(child)

    rows = chat_rows(dproject)
    assert [r["status"] for r in rows] == [200, 200, 200]
    assert {r["caller"] for r in rows} == {getpass.getuser()} and {r["service"] for r in rows} == {"data"}

    # ---- history: the state dir's chat_history (0600); Up recalls the last line of the last chat
    history = dproject / ".taoplan" / "chat_history"
    assert stat.S_IMODE(history.stat().st_mode) == 0o600
    assert "What is in this picture?" in history.read_text()
    child = chat(dproject, "data", "--accept-defaults")
    child.expect_exact("data> ")
    child.send("\x1b[A\r")  # Up, Enter: the last line typed, "/help"
    child.expect_exact("/params k=v")
    child.expect_exact("data> ")
    leave(child)

    # ---- a media kind the arch refuses; Ctrl+C during a slow reply cancels that turn, not the chat
    child = chat(dproject, "reason", "--accept-defaults", "--caller", "alice")
    child.expect_exact("Sending to name=reason ")
    child.expect(r"url=http://127\.0\.0\.1:(\d+)")
    port = int(child.match.group(1))
    child.expect_exact("reason> ")
    printed = say(child, "reason> ", "/image dot.png")
    assert printed.strip().startswith("Error: /image dot.png: cosmos-rl does not accept inline data: URIs")
    assert "Attached" in say(child, "reason> ", f"/image {CAT}")
    child.sendline("A slow question")
    child.expect_exact("A slow question\r\n")
    while not connected(child.pid, port):  # the request is on its way: cancel it in flight
        time.sleep(0.05)
    child.sendintr()
    child.expect_exact("Cancelled; the conversation is as it was before this message.")
    child.expect_exact("reason> ")
    # the cancelled turn left nothing half-done: the attachment is still there for the next message
    got = echo(say(child, "reason> ", "After the cancel"))
    assert got["prompt"] == "After the cancel" and got["media"] == [CAT]
    assert "Traceback" not in leave(child)

    rows = [r for r in chat_rows(dproject) if r["service"] == "reason"]
    assert [(r["status"], r["transport_error"], r["caller"]) for r in rows] == [
        (None, "cancelled by the user (Ctrl+C)", "alice"),
        (200, None, "alice"),
    ]


GEMMA = {
    "server": {
        "type": "llamacpp",
        "model": "/models/gemma-3-270m-q4_k_m.gguf",
        "served_name": "gemma",
        "args": ["-c", "2048"],
    },
    "readiness": {"timeout": 600},  # a loaded 2-core machine: the first health can take a minute
}


def streamed(printed: str) -> str:
    """A streamed reply as printed: what came between the typed line and the next prompt."""
    return printed.strip("\n")


def test_chat_with_a_model_server_keeps_the_conversation(dproject: Path, llm_image: str) -> None:
    (dproject / "services.yaml").write_text(
        services_yaml(dproject.name, {"gemma": {**GEMMA, "image": llm_image}})
    )
    apply = taoplan("apply", "--auto-approve", cwd=dproject)
    assert apply.code == 0, apply.text

    # the values given as flags: no sampling round; a server gets the whole conversation, so no TAO note
    child = chat(
        dproject, "gemma", "--max-tokens", "12", "--temperature", "0", "--top-p", "1", "--log-content"
    )
    child.expect_exact("Chat with gemma (llamacpp).")
    child.expect_exact("gemma> ")
    assert "Sampling values" not in str(child.before) and "first user message" not in str(child.before)
    assert "System message set" in say(child, "gemma> ", "/system You are a helpful assistant.")
    first = streamed(say(child, "gemma> ", "The capital of France is"))
    second = streamed(say(child, "gemma> ", "Three colours of the rainbow are"))
    assert first.strip() and second.strip()  # real text; the weak model may repeat itself, so no more

    # Ctrl+C while tokens stream in: that turn is dropped whole, the next one follows the second
    assert "Sampling: max_tokens=400" in say(child, "gemma> ", "/params max_tokens=400")
    child.sendline("Tell me a very long story about a cat")
    child.expect_exact("Tell me a very long story about a cat\r\n")
    child.expect(r"\S")  # the first streamed token is on the screen: the reply is in flight
    child.sendintr()
    child.expect_exact("Cancelled; the conversation is as it was before this message.")
    child.expect_exact("gemma> ")
    say(child, "gemma> ", "/params max_tokens=12")
    third = streamed(say(child, "gemma> ", "And the capital of Italy is"))
    assert third.strip()
    assert "Traceback" not in leave(child)

    rows = chat_rows(dproject)
    assert [(r["status"], r["transport_error"]) for r in rows] == [
        (200, None),
        (200, None),
        (None, "cancelled by the user (Ctrl+C)"),
        (200, None),
    ]
    one, two, _, three = rows
    user = getpass.getuser()
    assert {r["caller"] for r in rows} == {user} and {r["arch"] for r in rows} == {"llamacpp"}
    # what was streamed is what was logged, and each reply is real generated text
    replies = [one["content"]["response"], two["content"]["response"], three["content"]["response"]]
    assert [r.strip() for r in replies] == [first.strip(), second.strip(), third.strip()]
    assert all(r["completion_tokens"] > 0 for r in (one, two, three))
    # the second turn carried the first exchange; the third the two before it, not the cancelled one
    assert one["content"]["history"] == []
    turn1 = [
        {"role": "user", "content": "The capital of France is"},
        {"role": "assistant", "content": replies[0]},
    ]
    assert two["content"]["history"] == turn1
    assert three["content"]["history"] == [
        *turn1,
        {"role": "user", "content": "Three colours of the rainbow are"},
        {"role": "assistant", "content": replies[1]},
    ]
    assert all(r["content"]["system"] == "You are a helpful assistant." for r in rows)
    # and the server read it all: its own prompt token count grows with the conversation
    assert one["prompt_tokens"] < two["prompt_tokens"] < three["prompt_tokens"]
    assert two["prompt_tokens"] > one["prompt_tokens"] + one["completion_tokens"]
