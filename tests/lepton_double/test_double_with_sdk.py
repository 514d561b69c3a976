"""The Lepton double driven through the REAL leptonai SDK (0.47.x): what the platform will rely on."""

from __future__ import annotations

import json
import shlex
import time
import uuid

import pytest
import requests
from leptonai.api.v2 import APIClient, ClientError, WorkspaceUnauthorizedError
from leptonai.api.v2.deployment import DeploymentAPI
from leptonai.api.v2.endpoint import EndpointAPI
from leptonai.api.v2.types.affinity import LeptonResourceAffinity
from leptonai.api.v2.types.common import Metadata
from leptonai.api.v2.types.deployment import (
    ContainerPort,
    EnvValue,
    EnvVar,
    LeptonContainer,
    LeptonDeployment,
    LeptonDeploymentUserSpec,
    ResourceRequirement,
    TokenValue,
    TokenVar,
)
from leptonai.api.v2.types.secret import SecretItem

from tests.lepton_double import Double, start_double
from tests.lepton_double.conftest import TEST_IMAGE

pytestmark = pytest.mark.docker


def inner(fake_env: dict[str, str] | None = None) -> str:
    """The production cosmos-rl inner command line, as on every platform."""
    job_id = str(uuid.uuid4())
    job = {"job_id": job_id, "specs": {"model_path": "/models/a"}, "neural_network_name": "cosmos-rl"}
    env = {"TAO_EXECUTION_BACKEND": "lepton", "TAO_API_JOB_ID": job_id, "CLOUD_BASED": "False"}
    q = lambda o: shlex.quote(json.dumps(o, separators=(",", ":")))  # noqa: E731
    return f"umask 0 && cosmos-rl-inference-microservice --job {q(job)} --docker_env_vars {q(env)}"


def deployment(
    double: Double,
    name: str,
    *,
    command: str | None = None,
    envs: list[EnvVar] | None = None,
    tokens: list[TokenVar] | None = None,
    shape: str = "gpu.1xh200",
    image: str | None = TEST_IMAGE,
    node_group: str | None = None,
    rr: ResourceRequirement | None = None,
) -> LeptonDeployment:
    return LeptonDeployment(
        metadata=Metadata(id=name, name=name, labels={"taoplan.project": "p1"}),
        spec=LeptonDeploymentUserSpec(
            container=LeptonContainer(
                image=image,
                command=["/bin/bash", "-c", command or inner()],
                ports=[ContainerPort(container_port=8080)],
            ),
            resource_requirement=rr
            or ResourceRequirement(
                resource_shape=shape,
                min_replicas=1,
                max_replicas=1,
                shared_memory_size=64,
                affinity=LeptonResourceAffinity(
                    allowed_dedicated_node_groups=[node_group or double.node_group_id]
                ),
            ),
            envs=envs,
            api_tokens=tokens,
        ),
    )


def wait_state(client: APIClient, name: str, want: set[str], limit: float = 120) -> LeptonDeployment:
    """Poll until status.state is one of `want` (a deadline for failing, not a timed assertion)."""
    deadline = time.monotonic() + limit
    while True:
        dep = client.deployment.get(name)
        if dep.status.state.value in want:
            return dep
        assert time.monotonic() < deadline, f"{name} stuck in {dep.status.state.value}"
        time.sleep(0.3)


def read_log(client: APIClient, name: str, replica_id: str, want: str) -> str:
    """get_log follows the log; read until `want` appears, then drop the stream."""
    text = ""
    try:
        for chunk in client.deployment.get_log(name, replica_id, timeout=5):
            text += chunk
            if want in text:
                break
    except requests.exceptions.ConnectionError:  # read timeout while following: the stream idled
        pass
    return text


def test_lifecycle_secret_env_endpoint_logs_delete(lepton: Double) -> None:
    client = APIClient(lepton.ws, lepton.token, url=lepton.url)
    assert isinstance(client.deployment, DeploymentAPI)  # legacy family, from GET /workspace
    client.secret.create(
        [SecretItem(name="SVC_SECRET", value="canary-svc-1"), SecretItem(name="EP_TOKEN", value="ep-tok-1")]
    )
    assert {s.name for s in client.secret.list_all()} == {"SVC_SECRET", "EP_TOKEN"}
    assert all(s.value is None for s in client.secret.list_all())  # values are write-only
    spec = deployment(
        lepton,
        "tao-svc-a",
        envs=[
            EnvVar(name="PLAIN", value="1"),
            EnvVar(name="HF_TOKEN", value_from=EnvValue(secret_name_ref="SVC_SECRET")),
        ],
        tokens=[TokenVar(value_from=TokenValue(token_name_ref="EP_TOKEN"))],
    )
    assert client.deployment.create(spec) is True
    dep = wait_state(client, "tao-svc-a", {"Ready"})
    assert dep.metadata.labels == {"taoplan.project": "p1"}
    assert "tao-svc-a" in [d.metadata.name for d in client.deployment.list_all()]

    env = lepton.dk.containers.get(lepton.container_id("tao-svc-a")).attrs["Config"]["Env"]
    assert "HF_TOKEN=canary-svc-1" in env and "PLAIN=1" in env

    url = dep.status.endpoint.external_endpoint
    assert url.startswith("http://127.0.0.1:")
    ready = url + "/api/v1/health/readiness"
    assert requests.get(ready, timeout=10).status_code == 401
    assert requests.get(ready, headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 401
    assert requests.get(ready, headers={"Authorization": "Bearer ep-tok-1"}, timeout=10).status_code == 200

    content = [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        {"type": "text", "text": "Describe it."},
    ]
    chat = requests.post(
        url + "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": content}]},
        headers={"Authorization": "Bearer ep-tok-1"},
        timeout=60,
    )
    assert chat.status_code == 200, chat.text

    (replica,) = client.deployment.get_replicas("tao-svc-a")
    readiness = client.deployment.get_readiness("tao-svc-a").root
    assert readiness[replica.metadata.id_][0].reason.value == "Ready"
    assert "Job data" in read_log(client, "tao-svc-a", replica.metadata.id_, "Job data")
    assert [e.reason for e in client.deployment.get_events("tao-svc-a")][:1] == ["Started"]

    assert client.deployment.delete("tao-svc-a") is True
    assert lepton.containers() == []
    with pytest.raises(ClientError) as err:
        client.deployment.get("tao-svc-a")
    assert err.value.response.status_code == 404


def test_wrong_workspace_token_is_401(lepton: Double) -> None:
    client = APIClient(lepton.ws, "not-the-token", url=lepton.url)
    with pytest.raises(WorkspaceUnauthorizedError):
        client.info()
    with pytest.raises(ClientError) as err:
        client.deployment.list_all()  # the /workspace probe fails, legacy is committed, then 401
    assert err.value.response.status_code == 401
    assert err.value.response.json()["code"] == "Unauthorized"
    with pytest.raises(ClientError):
        client.secret.create([SecretItem(name="X", value="y")])
    assert lepton.secrets == {}


def test_no_capacity_then_scheduled_when_freed(lepton: Double) -> None:
    client = APIClient(lepton.ws, lepton.token, url=lepton.url)
    lepton.set_node_group_capacity(1)
    client.deployment.create(deployment(lepton, "first", tokens=[TokenVar(value="t")]))
    client.deployment.create(deployment(lepton, "second", tokens=[TokenVar(value="t")]))
    assert lepton.container_id("first") and lepton.container_id("second") is None
    assert client.deployment.get("second").status.state.value == "Starting"
    (issue,) = next(iter(client.deployment.get_readiness("second").root.values()))
    assert issue.reason.value == "NoCapacity" and "0 of 1 GPUs free" in issue.message
    client.deployment.delete("first")
    assert lepton.container_id("second") is not None
    assert len(lepton.containers()) == 1


def test_generated_endpoint_token(lepton: Double) -> None:
    client = APIClient(lepton.ws, lepton.token, url=lepton.url)
    created = client.deployment.create_with_response(deployment(lepton, "gen-token"))
    token = created.spec.api_tokens[0].value
    assert token and client.deployment.get("gen-token").spec.api_tokens[0].value == token
    url = wait_state(client, "gen-token", {"Ready"}).status.endpoint.external_endpoint
    assert requests.get(url + "/api/v1/health/liveness", timeout=10).status_code == 401
    ok = requests.get(
        url + "/api/v1/health/liveness", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert ok.status_code == 200


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"image": None}, "spec.container.image is required"),
        ({"shape": "gpu.3xfoo"}, "resource shape 'gpu.3xfoo' is not offered"),
        ({"node_group": "ng-nope"}, "dedicated node group 'ng-nope' not found"),
        ({"envs": [EnvVar(name="A", value_from=EnvValue(secret_name_ref="NOPE"))]}, "secret 'NOPE'"),
        ({"tokens": [TokenVar(value_from=TokenValue(token_name_ref="NOPE"))]}, "secret 'NOPE'"),
        ({"rr": ResourceRequirement(resource_shape="gpu.1xh200", min_replicas=1)}, "max_replicas must be"),
        ({"name": "1abc"}, "must start with a lowercase letter"),
        ({"name": "Tao-job"}, "must start with a lowercase letter"),
        ({"name": "tao-job-" + "x" * 29}, "longer than 36 characters"),
    ],
)
def test_rejected_specs(lepton: Double, kwargs: dict, message: str) -> None:
    client = APIClient(lepton.ws, lepton.token, url=lepton.url)
    name = kwargs.pop("name", "rejected")
    with pytest.raises(ClientError) as err:
        # The SDK replaces literal api token values in error bodies with ***: use a distinctive one.
        kwargs.setdefault("tokens", [TokenVar(value="tok-4c1d9e")])
        client.deployment.create(deployment(lepton, name, **kwargs))
    assert err.value.response.status_code == 400
    assert message in err.value.response.json()["message"]
    assert lepton.deployments == {} and lepton.containers() == []


def test_sdk_itself_rejects_max_without_min() -> None:
    with pytest.raises(TypeError):  # a raw TypeError from the validator, not a ValidationError
        ResourceRequirement(max_replicas=1)
    assert Metadata(id_="x").id_ is None  # id_= is silently dropped: pass id=


def test_model_load_failure_is_not_ready_and_exit_is_error(lepton: Double) -> None:
    client = APIClient(lepton.ws, lepton.token, url=lepton.url)
    fail = [EnvVar(name="TAO_FAKE_LOAD_FAIL", value="weights corrupt")]
    client.deployment.create(deployment(lepton, "bad-load", envs=fail, tokens=[TokenVar(value="t")]))
    client.deployment.create(
        deployment(lepton, "exits", command="echo bye; exit 3", tokens=[TokenVar(value="t")])
    )
    wait_state(client, "bad-load", {"Not Ready"})
    (issue,) = next(iter(client.deployment.get_readiness("bad-load").root.values()))
    assert issue.reason.value == "InProgress" and "model_load_failed" in issue.message
    wait_state(client, "exits", {"Error"})
    (term,) = next(iter(client.deployment.get_termination("exits").root.values()))
    assert term.exit_code == 3 and term.message == "bye"


def test_out_of_band_delete_and_new_api_flag(lepton: Double) -> None:
    client = APIClient(lepton.ws, lepton.token, url=lepton.url)
    client.deployment.create(deployment(lepton, "oob", tokens=[TokenVar(value="t")]))
    lepton.delete_deployment_out_of_band("oob")
    assert client.deployment.list_all() == [] and lepton.containers() == []
    other = start_double(workspace_id="wsnew", new_api=True)
    try:
        client2 = APIClient(other.ws, other.token, url=other.url)
        assert isinstance(client2.deployment, EndpointAPI)  # the /endpoints family, which the double lacks
        with pytest.raises(ClientError) as err:
            client2.deployment.list_all()
        assert err.value.response.status_code == 404
    finally:
        other.stop()


def test_stop_update_restart(lepton: Double) -> None:
    client = APIClient(lepton.ws, lepton.token, url=lepton.url)
    client.deployment.create(deployment(lepton, "cycle", tokens=[TokenVar(value="tok-cycle-1")]))
    first = lepton.container_id("cycle")
    stopped = client.deployment.stop("cycle")
    assert (stopped.status.state.value, stopped.status.phase.value) == ("Not Ready", "Stopped")
    assert lepton.containers() == [] and client.deployment.get_replicas("cycle") == []
    spec = client.deployment.get("cycle")
    spec.spec.resource_requirement.min_replicas = 1
    client.deployment.update("cycle", LeptonDeployment(spec=spec.spec))
    second = lepton.container_id("cycle")
    assert second and second != first
    client.deployment.restart("cycle")
    assert lepton.container_id("cycle") not in (None, second) and len(lepton.containers()) == 1
    wait_state(client, "cycle", {"Ready"})
