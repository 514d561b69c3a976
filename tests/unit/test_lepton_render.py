"""The Lepton deployment is what apply sends: rendered from templates, read back, checked by the real
SDK's own model. Also the pure parts: settings, names, placeholders, the endpoint headers kept out of
repr. Nothing here talks to a workspace (tests/e2e/test_lepton.py drives the double).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from taoplan import labels
from taoplan.errors import ConfigError, PlatformError
from taoplan.platforms.base import Artifact, Deployment, Endpoint, Placement, PlatformContext
from taoplan.platforms.lepton.names import (
    deployment_name,
    env_of_workspace_secret,
    name_problem,
    workspace_secret,
)
from taoplan.platforms.lepton.objects import parse, placeholder, sdk_deployment
from taoplan.platforms.lepton.platform import Lepton
from taoplan.spec import payload
from taoplan.spec.config import ServiceSpec
from taoplan.spec.platform_settings import LeptonConfig
from taoplan.spec.references import load_references

REFS = load_references()
JOB = "11111111-2222-4333-8444-555555555555"
PLACED = Placement(values={"node_group_id": "ng-1", "resource_shape": "gpu.1xh200"})


def deployment(service: str = "reason", secrets: tuple[str, ...] = ("HF_TOKEN",)) -> Deployment:
    spec = ServiceSpec.model_validate(
        {
            "network_arch": "cosmos-rl",
            "model_path": '/models/it\'s "here"',
            "env": {"TAO_LOG_LEVEL": "INFO"},
            "secrets": list(secrets),
            "platform": "lepton",
        },
        context={"refs": REFS},
    )
    return Deployment(
        service=service,
        job_id=JOB,
        network_arch="cosmos-rl",
        image="nvcr.io/nvidia/tao/x:1",
        spec_hash="abc123",
        num_gpus=1,
        inner_command=payload.inner_command(spec, JOB, "lepton", REFS),
        env={**spec.env, **payload.env_payload("lepton", JOB, REFS)},
        secret_names=secrets,
        labels=labels.for_deployment("demo", "lin-1", service, JOB, "abc123"),
        host_port=None,
        spec=spec,
    )


def platform(**settings: Any) -> Lepton:
    where = lambda loc: "services.yaml:7:5"  # noqa: E731
    ctx = PlatformContext("demo", "lin-1", Path("/nonexistent"), REFS, locate=where)
    config = LeptonConfig.model_validate({"workspace_id": "ws1", "node_group": "ng", **settings})
    return Lepton(config, ctx)


def rendered(**settings: Any) -> dict[str, str]:
    return {a.name: a.content for a in platform(**settings).render(deployment(), PLACED)}


def test_deployment_json_is_what_the_sdk_sends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "canary-value-123")
    files = rendered(image_pull_secret="nvcr-pull", shared_memory_size="2Gi")
    assert set(files) == {"deployment.json", "secrets.json"}
    assert not any("canary-value-123" in text for text in files.values())
    obj = json.loads(files["deployment.json"])
    assert obj["metadata"]["id"] == obj["metadata"]["name"] == "tao-reason-11111111"
    assert obj["metadata"]["labels"][labels.JOB_ID] == JOB
    spec = obj["spec"]
    assert spec["container"]["command"] == ["/bin/bash", "-c", deployment().inner_command]
    assert '"TAO_EXECUTION_BACKEND":"lepton"' in spec["container"]["command"][2]
    assert spec["container"]["ports"] == [{"container_port": 8080}]
    assert spec["resource_requirement"] == {
        "resource_shape": "gpu.1xh200",
        "min_replicas": 1,
        "max_replicas": 1,
        "affinity": {"allowed_dedicated_node_groups": ["ng-1"]},
        "shared_memory_size": 2048,
    }
    assert spec["image_pull_secrets"] == ["nvcr-pull"]
    assert "api_tokens" not in spec  # Lepton generates one
    assert {"name": "HF_TOKEN", "value_from": {"secret_name_ref": "TAOPLAN_11111111_HF_TOKEN"}} in spec[
        "envs"
    ]
    assert {"name": "TAO_LOG_LEVEL", "value": "INFO"} in spec["envs"]
    model = sdk_deployment(obj)  # the real SDK model sends exactly this object
    assert model.model_dump(exclude_none=True, by_alias=True) == obj


def test_secret_values_only_in_memory_and_endpoint_token_by_reference(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_TOKEN", "canary-value-123")
    monkeypatch.setenv("LEPTON_ENDPOINT_TOKEN", "canary-ep-456")
    p = platform(endpoint_token_secret="LEPTON_ENDPOINT_TOKEN")
    artifacts = p.render(deployment(), PLACED)
    assert not any("canary" in a.content for a in artifacts)
    obj, secrets = parse(artifacts, fill_secrets=True)
    assert obj["spec"]["api_tokens"] == [
        {"value_from": {"token_name_ref": "TAOPLAN_11111111_LEPTON_ENDPOINT_TOKEN"}}
    ]
    assert secrets == [
        {"name": "TAOPLAN_11111111_HF_TOKEN", "value": "canary-value-123"},
        {"name": "TAOPLAN_11111111_LEPTON_ENDPOINT_TOKEN", "value": "canary-ep-456"},
    ]
    _, unfilled = parse(artifacts, fill_secrets=False)
    assert unfilled[0]["value"] == placeholder("HF_TOKEN")
    assert not any("canary" in a.content for a in artifacts)  # the artifacts were not touched
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(PlatformError, match="secret HF_TOKEN is not set"):
        parse(artifacts, fill_secrets=True)


def test_a_secrets_file_holding_a_value_is_refused() -> None:
    bad = Artifact("secrets.json", json.dumps([{"name": "TAOPLAN_11111111_HF_TOKEN", "value": "hf_x"}]))
    good = platform().render(deployment(), PLACED)[-1]
    with pytest.raises(PlatformError, match="not a placeholder"):
        parse([bad, good], fill_secrets=False)


def test_a_deployment_the_sdk_would_change_is_refused() -> None:
    obj = json.loads(platform().render(deployment(secrets=()), PLACED)[0].content)
    obj["spec"]["not_a_field"] = 1
    with pytest.raises(PlatformError, match="would not send"):
        sdk_deployment(obj)


def test_names() -> None:
    assert deployment_name("reason", JOB) == "tao-reason-11111111"
    assert name_problem("tao-reason-11111111") == ""
    why = name_problem(deployment_name("a-service-name-of-thirty-chars", JOB))
    assert "is 43 characters" in why and "at most 23 characters" in why
    assert env_of_workspace_secret(workspace_secret(JOB, "HF_TOKEN")) == "HF_TOKEN"
    assert env_of_workspace_secret("HF_TOKEN") is None
    with pytest.raises(ConfigError, match=r"services.yaml:7:5: services.a-service-name-of-thirty-chars: "):
        platform().render(deployment(service="a-service-name-of-thirty-chars"), PLACED)


def test_settings() -> None:
    assert LeptonConfig().shared_memory_mib == 16384
    assert LeptonConfig(shared_memory_size=512).shared_memory_mib == 512
    assert LeptonConfig(shared_memory_size="1Ti").shared_memory_mib == 1024 * 1024
    for bad in (
        {"shared_memory_size": "16GB"},
        {"token_secret": "lowercase"},
        {"url": "ftp://x"},
        {"zone": 1},
    ):
        with pytest.raises(ValidationError):
            LeptonConfig.model_validate(bad)


def test_missing_workspace_and_token_are_located(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEPTON_WORKSPACE_ID", raising=False)
    monkeypatch.delenv("LEPTON_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("LEPTON_WORKSPACE_TOKEN", raising=False)
    p = platform(workspace_id=None)
    with pytest.raises(ConfigError, match=r"^services.yaml:7:5: platforms.lepton.workspace_id: no Lepton"):
        p.session.client()
    monkeypatch.setenv("LEPTON_WORKSPACE_ID", "ws2")
    with pytest.raises(ConfigError, match=r"platforms.lepton.token_secret: LEPTON_AUTH_TOKEN is not set"):
        p.session.client()
    monkeypatch.setenv("LEPTON_WORKSPACE_TOKEN", "x" * 12)
    assert p.session.token_name == "LEPTON_WORKSPACE_TOKEN"  # the skill's other name


def test_endpoint_headers_stay_out_of_repr() -> None:
    found = Endpoint("http://127.0.0.1:1", headers={"Authorization": "Bearer canary-xyz"})
    assert "canary-xyz" not in repr(found) and "canary-xyz" not in str(found)
