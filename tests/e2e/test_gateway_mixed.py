"""`taoplan gateway` in front of one Slurm service and one Kubernetes service of one file.

The Slurm service runs as a batch job of the lab cluster, reached through taoplan's ssh tunnel; the
Kubernetes one runs on the lab's real kubelet node, reached through taoplan's port-forward. The
official `openai` client talks to both through one gateway: sync, async and streaming. Both run the
TAO test image, whose fake models echo what the real server class received.
"""

from __future__ import annotations

import asyncio
import json
import os

import openai
import pytest

from tests.e2e.conftest import TEST_IMAGE
from tests.e2e.gateway_support import SAMPLING, URL_IMAGE, GatewayProcess, create_key, rows, user
from tests.e2e.test_kubernetes import (  # noqa: F401 - the Kubernetes lab's fixtures
    REAL_NODE,
    Project,
    kproject,
    kubeconfig,
    real_node,
)
from tests.e2e.test_slurm import slurm_lab, slurm_settings  # noqa: F401 - the Slurm lab's fixture

pytestmark = [pytest.mark.kubernetes, pytest.mark.slurm]


def write_mixed(project: Project) -> None:
    kubernetes = {"namespace": project.namespace, "shm_size": "64Mi", **REAL_NODE}
    lines = [
        "version: 1",
        f"project: {project.name}",
        "defaults:",
        f"  image: {TEST_IMAGE}",
        "  readiness: {timeout: 180}",
        "platforms:",
        f"  kubernetes: {json.dumps(kubernetes)}",
        f"  slurm: {json.dumps(slurm_settings(project.name))}",
        "services:",
        '  on-k8s: {"network_arch": "cosmos-rl", "model_path": "/models/k", "platform": "kubernetes"}',
        '  on-slurm: {"network_arch": "tao-dataservices", "model_path": "hf_model://Qwen/Qwen3-VL-8B-Instruct",'
        ' "platform": "slurm"}',
    ]
    (project.folder / "services.yaml").write_text("\n".join(lines) + "\n")


def test_official_client_through_one_gateway_to_a_slurm_job_and_a_kubernetes_pod(
    real_node: str,  # noqa: F811
    kproject: Project,  # noqa: F811
    slurm_lab: dict[str, str],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in slurm_lab.items():
        monkeypatch.setenv(key, value)
    kproject.env.update(slurm_lab)
    write_mixed(kproject)
    apply = kproject.run("apply", "--auto-approve")
    try:
        assert apply.code == 0, apply.text
        platforms = {name: row["platform"] for name, row in kproject.status().items()}
        assert platforms == {"on-k8s": "kubernetes", "on-slurm": "slurm"}
        key = create_key(kproject.folder / ".taoplan", "app")
        gw = GatewayProcess(kproject.folder, env={**os.environ, **kproject.env})
        try:
            client = openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)
            listed = {m.id: (m.model_extra or {})["x_taoplan"] for m in client.models.list()}
            assert {n: (x["platform"], x["ready"]) for n, x in listed.items()} == {
                "on-k8s": ("kubernetes", True),
                "on-slurm": ("slurm", True),
            }

            # sync, to each platform: the echo shows what the real server behind it received
            reply = client.chat.completions.create(
                model="on-k8s", messages=user("through the port-forward", URL_IMAGE), **SAMPLING
            )
            echo = json.loads(reply.choices[0].message.content or "")
            assert (echo["prompt"], echo["model_path"]) == ("through the port-forward", "/models/k")
            reply = client.chat.completions.create(
                model="on-slurm", messages=user("through the tunnel"), user="alice", **SAMPLING
            )
            assert json.loads(reply.choices[0].message.content or "")["prompt"] == "through the tunnel"

            # streaming through each (TAO answers whole: one chunk, then [DONE])
            for model, messages in (("on-k8s", user("s1", URL_IMAGE)), ("on-slurm", user("s2"))):
                chunks = list(
                    client.chat.completions.create(model=model, messages=messages, stream=True, **SAMPLING)
                )
                text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
                assert json.loads(text)["prompt"] in ("s1", "s2")

            # async, both platforms at once
            async def both() -> list[str]:
                aclient = openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)
                calls = [
                    aclient.chat.completions.create(
                        model="on-k8s", messages=user("a1", URL_IMAGE), **SAMPLING
                    ),
                    aclient.chat.completions.create(model="on-slurm", messages=user("a2"), **SAMPLING),
                ]
                answers = [
                    json.loads(r.choices[0].message.content or "")["prompt"]
                    for r in await asyncio.gather(*calls)
                ]
                await aclient.close()
                return answers

            assert asyncio.run(both()) == ["a1", "a2"]
        finally:
            assert gw.stop() == 0, gw.text()

        logged = rows(kproject.folder / ".taoplan")
        by_service = {(r.service, r.platform, r.status) for r in logged}
        assert by_service == {("on-k8s", "kubernetes", 200), ("on-slurm", "slurm", 200)}
        assert len(logged) == 6 and all(r.caller == "app" for r in logged)
        assert [r.end_user for r in logged if r.end_user] == ["alice"]
    finally:
        destroy = kproject.run("destroy", "--auto-approve")
    assert destroy.code == 0, destroy.text
    assert not any(kproject.objects().values())
