"""The job's Lepton deployment and workspace secrets: rendered from templates, read back, sent, deleted.

Why a module of its own: apply sends exactly what `taoplan render` shows. deployment.json and
secrets.json are rendered from templates/lepton/, parsed back from those files, the secret values
filled in from the environment (in memory only), and sent through the SDK: the secrets first
(POST /usersecrets), then the deployment (POST /deployments). The deployment must survive the SDK's
own model unchanged, so what goes on the wire is byte for byte the rendered object.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Sequence
from typing import Any

from taoplan.common import secrets as secret_values
from taoplan.errors import ConfigError, PlatformError
from taoplan.platforms.base import Artifact, Deployment, Placement
from taoplan.platforms.common.templates import render_template

from .api import Session
from .names import deployment_name, lepton_labels, name_problem, secret_prefix, workspace_secret

TEMPLATES = "lepton"  # templates/lepton/
DEPLOYMENT_FILE, SECRETS_FILE = "deployment.json", "secrets.json"
PLACEHOLDER = re.compile(r"<redacted: from the environment variable ([A-Z_][A-Z0-9_]*) at apply>")


def placeholder(env_name: str) -> str:
    return f"<redacted: from the environment variable {env_name} at apply>"


def secret_refs(session: Session, d: Deployment) -> list[tuple[str, str]]:
    """(environment variable, workspace secret) for each secret of the service."""
    return [(name, workspace_secret(d.job_id, name)) for name in d.secret_names]


def token_ref(session: Session, d: Deployment) -> tuple[str, str] | None:
    """(environment variable, workspace secret) of the endpoint token; None: Lepton generates one."""
    name = session.config.endpoint_token_secret
    return (name, workspace_secret(d.job_id, name)) if name else None


def placement_values(session: Session) -> dict[str, str]:
    """The node group's id and the shape's name, as the workspace lists them (one lookup per process)."""
    ng_id, _ = session.node_group()
    return {"node_group_id": ng_id, "resource_shape": str(session.shape().metadata.name)}


def render(session: Session, d: Deployment, placement: Placement) -> list[Artifact]:
    """deployment.json (and secrets.json). The node group id comes from the workspace: `taoplan render`
    (which prepares nothing) looks it up, so rendering needs the workspace token too."""
    why = name_problem(deployment_name(d.service, d.job_id))
    if why:
        raise ConfigError(f"{session.ctx.where(('services', d.service))}: {why}")
    values = placement.values or placement_values(session)
    refs = secret_refs(session, d)
    token = token_ref(session, d)
    stored = refs + ([token] if token else [])
    context = {
        "d": d,
        "cfg": session.config,
        "name": deployment_name(d.service, d.job_id),
        "labels": lepton_labels(d),
        "container_port": d.container_port,
        "shape": values["resource_shape"],
        "node_group_id": values["node_group_id"],
        "shm_mib": session.config.shared_memory_mib,
        "secret_refs": refs,
        "token_ref": token[1] if token else None,
        "placeholder": placeholder,
    }
    artifacts = []
    if stored:
        artifacts.append(render_template(TEMPLATES, "secrets.json.j2", {**context, "secret_refs": stored}))
    artifacts.append(render_template(TEMPLATES, "deployment.json.j2", context))
    return artifacts


def parse(
    artifacts: Sequence[Artifact], *, fill_secrets: bool
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """(the deployment object, the workspace secrets) from the rendered files.

    ``fill_secrets`` replaces each placeholder by the value of its environment variable, in memory only;
    a secret file that holds anything but placeholders is refused.
    """
    deployment: dict[str, Any] | None = None
    secrets: list[dict[str, str]] = []
    for artifact in artifacts:
        try:
            data = json.loads(artifact.content)
        except ValueError as exc:
            raise PlatformError(f"lepton: {artifact.name} is not JSON: {exc}") from None
        if artifact.name == DEPLOYMENT_FILE and isinstance(data, dict):
            deployment = data
        elif artifact.name == SECRETS_FILE and isinstance(data, list):
            for item in data:
                match = PLACEHOLDER.fullmatch(str(item.get("value"))) if isinstance(item, dict) else None
                if match is None or not isinstance(item.get("name"), str):
                    raise PlatformError(
                        f"lepton: {artifact.name} holds a value that is not a placeholder: refused"
                    )
                value = item["value"]
                if fill_secrets:
                    value = secret_values.require(match.group(1))
                secrets.append({"name": item["name"], "value": value})
        else:
            raise PlatformError(f"lepton: {artifact.name} is not a deployment or secrets file")
    if deployment is None:
        raise PlatformError(f"lepton: no {DEPLOYMENT_FILE} among the rendered files")
    return deployment, secrets


def sdk_deployment(obj: dict[str, Any]) -> Any:
    """The SDK's LeptonDeployment of ``obj``; refused unless the SDK sends ``obj`` exactly."""
    from leptonai.api.v2.types.deployment import LeptonDeployment

    try:
        model = LeptonDeployment.model_validate(obj)
    except ValueError as exc:
        raise PlatformError(f"lepton: {DEPLOYMENT_FILE} is not a LeptonDeployment: {exc}") from None
    sent = model.model_dump(exclude_none=True, by_alias=True)  # what the SDK POSTs (safe_json)
    if sent != obj:
        raise PlatformError(
            f"lepton: the SDK would not send {DEPLOYMENT_FILE} as rendered (it drops or changes fields): refused"
        )
    return model


def create(session: Session, d: Deployment, artifacts: Sequence[Artifact]) -> Any:
    """Secrets, then the deployment; the created deployment as the API returns it. Nothing is left
    behind when the API refuses the deployment."""
    from leptonai.api.v2.types.secret import SecretItem

    obj, secrets = parse(artifacts, fill_secrets=True)
    model = sdk_deployment(obj)
    client = session.client()
    name = obj["metadata"]["name"]
    existing = session.call(f"GET /deployments/{name}", _get_or_none, session, name)
    if existing is not None:
        raise PlatformError(
            f"lepton: deployment {name} already exists (job-id label "
            f"{(existing.metadata.labels or {}).get('taoplan.job-id')!r}); refusing to take it over"
        )
    if secrets:
        items = [SecretItem(name=s["name"], value=s["value"]) for s in secrets]
        session.call("POST /usersecrets", client.secret.create, items)
    try:
        return session.call(f"POST /deployments ({name})", client.deployment.create_with_response, model)
    except PlatformError:
        with contextlib.suppress(PlatformError):
            delete_secrets(session, d.job_id)
        raise


def _get_or_none(session: Session, name: str) -> Any:
    from leptonai.api.v2 import ClientError

    try:
        return session.client().deployment.get(name)
    except ClientError as exc:
        if exc.response.status_code == 404:
            return None
        raise


def get(session: Session, name: str) -> Any:
    """The deployment, or None when it is gone."""
    return session.call(f"GET /deployments/{name}", _get_or_none, session, name)


def delete_secrets(session: Session, job_id: str) -> None:
    client = session.client()
    prefix = secret_prefix(job_id)
    for item in session.call("GET /usersecrets", client.secret.list_all):
        if item.name.startswith(prefix):
            with contextlib.suppress(PlatformError):  # gone meanwhile: fine
                session.call(f"DELETE /usersecrets/{item.name}", client.secret.delete, item.name)


def remove(session: Session, name: str | None, job_id: str) -> None:
    """Delete the job's deployment (by name) and its workspace secrets; a deployment already gone is fine."""
    from leptonai.api.v2 import ClientError

    client = session.client()
    if name is not None:

        def delete() -> None:
            try:
                client.deployment.delete(name)
            except ClientError as exc:
                if exc.response.status_code != 404:
                    raise

        session.call(f"DELETE /deployments/{name}", delete)
    delete_secrets(session, job_id)
