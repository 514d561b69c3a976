"""A real LLM (llama.cpp with Gemma 3 270M, testimage-llm/) as a `server: {type: llamacpp}` service, used
as a user would on local-docker, on the Slurm lab and on the Kubernetes lab's real kubelet node: apply,
readiness, `taoplan status`, `taoplan request`, the gateway with the official `openai` client (whole,
streamed, multi-turn, OpenAI fields the TAO rules would refuse), destroy.

The model is weak (a base 270M model under ChatML): replies are checked for being real generated text,
non-empty and different for different prompts, never for being right. Nothing asserts a duration.
One platform at a time: each test starts one LLM.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest

from bench.gateway import gateway_project
from tests.conftest import ROOT, taoplan
from tests.e2e.conftest import labelled, services_yaml
from tests.e2e.gateway_support import GatewayProcess, create_key, free_port, until, user
from tests.e2e.test_kubernetes import (  # noqa: F401 - the Kubernetes lab's fixtures
    REAL_NODE,
    Project,
    kproject,
    kubeconfig,
    lab,
    real_node,
)
from tests.e2e.test_slurm import live_jobs, slurm_lab, sproject  # noqa: F401 - the Slurm lab's fixtures
from tests.e2e.test_slurm import write as write_slurm

GGUF = "/models/gemma-3-270m-q4_k_m.gguf"
SERVED = "gemma"
#: 16 tokens at temperature 0: short, and the same prompt gives the same text
VALUES = {"max_tokens": 16, "temperature": 0.0, "top_p": 1.0}
CLI_VALUES = ("--max-tokens", "16", "--temperature", "0", "--top-p", "1")
PROMPTS = ("What is the capital of France?", "Name three colours of the rainbow.")


def llm(image: str) -> dict[str, Any]:
    return {
        "server": {"type": "llamacpp", "model": GGUF, "served_name": SERVED, "args": ["-c", "2048"]},
        "image": image,
        "readiness": {"timeout": 600},  # a loaded 2-core machine: the first health can take a minute
    }


# ------------------------------------------------------------------------------------------ the user's steps


def apply_and_check_status(folder: Path, env: dict[str, str] | None = None) -> None:
    # other projects may hold the labs' GPUs for a while: wait in the queue like a user on a busy cluster
    run = taoplan("apply", "--auto-approve", "--allow-queue", cwd=folder, env=env)
    assert run.code == 0, run.text
    assert f"server llamacpp: llama-server --model {GGUF} --host 0.0.0.0 --port" in run.text  # the plan
    status = taoplan("status", "--json", cwd=folder, env=env)
    assert status.code == 0, status.text
    (row,) = json.loads(status.out)["services"]
    assert (row["name"], row["arch"], row["state"]) == ("chat", "llamacpp", "ready"), row
    record = json.loads((folder / ".taoplan" / "state.json").read_text())["services"]["chat"]
    assert record["spec"]["server"]["served_name"] == SERVED
    registry = Path(os.environ["TAO_INF_MS_STATE"])  # the TAO skill's: TAO services only
    assert not registry.exists() or record["job_id"] not in registry.read_text()


def request_twice(folder: Path, env: dict[str, str] | None = None) -> None:
    """`taoplan request` with two prompts, by name and by server type: real text, different for each."""
    replies = []
    for prompt, target in zip(PROMPTS, (["chat"], ["--arch", "llamacpp"]), strict=False):
        run = taoplan(
            "request", *target, "--prompt", prompt, *CLI_VALUES, "--json", cwd=folder, env=env, stdin=""
        )
        assert run.code == 0, run.text
        body = json.loads(run.out)
        assert body["model"] == SERVED and body["usage"]["completion_tokens"] > 0, body
        replies.append(body["choices"][0]["message"]["content"])
    assert all(r.strip() for r in replies) and replies[0] != replies[1], replies


def through_the_gateway(folder: Path, env: dict[str, str] | None = None) -> None:
    """The official client through `taoplan gateway`: whole, streamed, multi-turn, plain OpenAI fields."""
    key = create_key(folder / ".taoplan", "app")
    gw = GatewayProcess(folder, env={**os.environ, **(env or {})})
    try:
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0, timeout=300)
        listed = {m.id: (m.model_extra or {})["x_taoplan"] for m in client.models.list()}
        until("the gateway sees chat ready (on /health, not TAO's path)", lambda: _ready(client), timeout=60)
        assert listed["chat"]["arch"] == "llamacpp"

        # ---- whole answers: real text, different per prompt
        texts = []
        for prompt in PROMPTS:
            reply = client.chat.completions.create(model="chat", messages=user(prompt), **VALUES)
            assert reply.model == SERVED and reply.usage and reply.usage.completion_tokens > 0
            texts.append(reply.choices[0].message.content or "")
        assert all(t.strip() for t in texts) and texts[0] != texts[1], texts

        # ---- streaming is real: the server's own chunks, more than one with content, usage at the end
        chunks = list(
            client.chat.completions.create(
                model="chat",
                messages=user(PROMPTS[0]),
                stream=True,
                stream_options={"include_usage": True},
                **VALUES,
            )
        )
        pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
        assert len(pieces) > 1 and "".join(pieces).strip(), chunks
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0

        # ---- multi-turn is sent whole: the server counts the earlier turns' tokens too
        last = user("And of Italy?")
        alone = client.chat.completions.create(model="chat", messages=last, **VALUES)
        turns = [*user(PROMPTS[0]), {"role": "assistant", "content": texts[0]}, *last]
        whole = client.chat.completions.create(model="chat", messages=turns, **VALUES)
        assert alone.usage and whole.usage
        assert whole.usage.prompt_tokens > alone.usage.prompt_tokens, (alone.usage, whole.usage)
        assert (whole.choices[0].message.content or "").strip()

        # ---- a pooled connection the server closed while idle (llama.cpp: after 5 s) is never reused:
        # through a Kubernetes port-forward that close does not reach the gateway in time
        time.sleep(6)
        again = client.chat.completions.create(model="chat", messages=last, **VALUES)
        assert again.usage and again.usage.completion_tokens > 0

        # ---- an OpenAI body passes through: no TAO sampling demands, no TAO field rules
        reply = client.chat.completions.create(
            model="chat", messages=user("Hello"), max_tokens=8, stop=["\n\n"], presence_penalty=0.0
        )
        assert reply.usage and reply.usage.completion_tokens > 0
        # ---- media reaches the server unexamined (no TAO media rules): this text-only model refuses it
        with pytest.raises(openai.APIStatusError) as refused:
            client.chat.completions.create(
                model="chat", messages=user("What is it?", "data:image/png;base64,iVBORw0KGgo="), max_tokens=4
            )
        assert "image input is not supported" in refused.value.message  # llama.cpp's own words
    finally:
        gw.stop()


def _ready(client: openai.OpenAI) -> bool:
    return any((m.model_extra or {})["x_taoplan"]["ready"] for m in client.models.list() if m.id == "chat")


def destroy(folder: Path, env: dict[str, str] | None = None) -> None:
    run = taoplan("destroy", "--auto-approve", cwd=folder, env=env)
    assert run.code == 0, run.text
    assert json.loads((folder / ".taoplan" / "state.json").read_text())["services"] == {}


def use_as_a_user(folder: Path, gone: Callable[[], bool], env: dict[str, str] | None = None) -> None:
    apply_and_check_status(folder, env)
    through_the_gateway(folder, env)
    request_twice(folder, env)
    destroy(folder, env)
    assert gone(), "the workload is still there after destroy"


# ------------------------------------------------------------------------------------------ platforms


@pytest.mark.docker
def test_llamacpp_on_docker_as_a_user(llm_image: str, dproject: Path) -> None:
    (dproject / "services.yaml").write_text(services_yaml(dproject.name, {"chat": llm(llm_image)}))
    use_as_a_user(dproject, lambda: not labelled(dproject.name))


@pytest.mark.slurm
def test_llamacpp_on_slurm_as_a_user(llm_image: str, sproject: Path) -> None:  # noqa: F811
    write_slurm(sproject, {"chat": llm(llm_image)})
    use_as_a_user(sproject, lambda: not live_jobs(sproject.name))


@pytest.fixture
def llm_node(llm_image: str, real_node: str) -> str:  # noqa: F811
    """The real kubelet node with the LLM image imported (node-up imports it once per image id);
    the image."""
    lab("node-up")
    return llm_image


@pytest.mark.kubernetes
def test_llamacpp_on_a_real_kubelet_node_as_a_user(llm_node: str, kproject: Project) -> None:  # noqa: F811
    kproject.write({"chat": llm(llm_node)}, timeout=600, **REAL_NODE)

    def gone() -> bool:
        return not any(kproject.objects().values())

    use_as_a_user(kproject.folder, gone, kproject.env)


# ------------------------------------------------------------------------------------------ served_name


def test_the_upstream_body_names_the_served_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The gateway sends a server the body as given, but with ``model`` set to its served_name (the
    client names the service). bench/upstream_echo.py echoes the ``model`` it received."""
    monkeypatch.setenv("TAO_INF_MS_STATE", str(tmp_path / "registry.json"))
    port = free_port()
    echo = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "upstream_echo.py"), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        project = gateway_project(tmp_path / "proj", port, 4999, "none", served_name="echo-model")
        gw = GatewayProcess(project)
        try:
            client = openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0)
            until("echo ready", lambda: client.models.list().data[0].model_extra["x_taoplan"]["ready"])
            turns = [*user("one"), {"role": "assistant", "content": "two"}, *user("three four")]
            reply = client.chat.completions.create(model="echo", messages=turns, max_tokens=4)
            assert reply.model == "echo-model"
            assert reply.choices[0].message.content == "three four"
        finally:
            gw.stop()
    finally:
        echo.kill()
        echo.wait()
