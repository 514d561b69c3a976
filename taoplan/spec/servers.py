"""Generic model servers (a service's ``server:`` block): vLLM, SGLang, TensorRT-LLM, NIM, llama.cpp, custom.

The per-type facts are data in references/servers.yaml; this module validates a block against them and
builds the inner command, the env, the port and the readiness contract, identically for every platform.
Pure.
"""

from __future__ import annotations

import re
import shlex
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator

from taoplan.spec.references import ReadinessRefs, References, ServerType

if TYPE_CHECKING:
    from taoplan.spec.config import ServiceSpec

#: a Hugging Face repo id: org/name
HF_REPO_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")
#: what a model is never: a cloud or web URI
CLOUD_SCHEMES = ("s3://", "gs://", "gcs://", "az://", "abfs://", "wasb://", "oci://", "http://", "https://")
#: where a multi-node SGLang job's rank 0 listens for its peers (--dist-init-addr)
SGLANG_DIST_PORT = 50000


class ServerBlock(BaseModel):
    """``server:`` as declared; ``served_name`` is filled in by the loader (``resolve``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    type: str
    model: StrictStr | None = None
    served_name: StrictStr | None = None
    args: list[StrictStr] = Field(default_factory=list)
    command: list[StrictStr] | None = None  # custom only
    port: Annotated[StrictInt, Field(ge=1, le=65535)] | None = None  # custom only
    readiness_path: StrictStr | None = None  # custom only

    @field_validator("type")
    @classmethod
    def _type(cls, value: str, info: Any) -> str:
        refs: References = info.context["refs"]
        if value not in refs.servers.types:
            raise ValueError(f"unknown server type {value!r}; valid: {', '.join(refs.servers.types)}")
        return value

    @field_validator("args", "command", mode="before")
    @classmethod
    def _list(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError("must be a list of strings (one flag or value per item), never a string")
        return value

    @field_validator("model")
    @classmethod
    def _model(cls, value: str | None, info: Any) -> str | None:
        if value is None:
            return value
        refs: References = info.context["refs"]
        lowered = value.lower()
        if lowered.startswith(CLOUD_SCHEMES) or "://" in value:
            raise ValueError(
                f"{value!r}: a cloud or web URI is not a model; give a Hugging Face repo id (org/name) "
                "or an absolute path inside the container"
            )
        for placeholder in refs.service.model_path.placeholders:
            if placeholder in value:
                raise ValueError(f"{value!r} looks like a placeholder; give a real repo id or absolute path")
        if not value.startswith("/") and not HF_REPO_RE.fullmatch(value):
            raise ValueError(
                f"{value!r}: give a Hugging Face repo id (org/name) or an absolute path inside the container"
            )
        return value

    @field_validator("served_name")
    @classmethod
    def _served_name(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or any(c.isspace() for c in value)):
            raise ValueError("served_name is one word without whitespace")
        return value

    @field_validator("readiness_path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError(f"{value!r}: a readiness path starts with '/'")
        return value


def kind_of(refs: References, block: ServerBlock) -> ServerType:
    return refs.servers.types[block.type]


def check(spec: ServiceSpec, refs: References) -> list[tuple[str, str]]:
    """Cross-field rules of a server service, as (field, message)."""
    block = spec.server
    assert block is not None
    kind = kind_of(refs, block)
    out: list[tuple[str, str]] = []
    for name in ("model_path", "model_key", "output_dir"):
        if getattr(spec, name) is not None:
            out.append((name, f"{name} is for TAO services (network_arch); a server takes server.model"))
    if kind.model in ("repo_or_path", "path") and block.model is None:
        out.append(("server.model", f"{block.type} needs server.model"))
    if kind.model == "path" and block.model is not None and not block.model.startswith("/"):
        out.append(("server.model", f"{block.type} takes a model file: an absolute path in the container"))
    if kind.model == "none" and block.model is not None:
        out.append(("server.model", f"{block.type}: the image is the model; set image: and leave out model"))
    custom = block.type == "custom"
    for name in ("command", "port", "readiness_path"):
        given = getattr(block, name) is not None
        if custom and not given:
            out.append((f"server.{name}", f"a custom server needs server.{name}"))
        elif not custom and given:
            out.append((f"server.{name}", f"server.{name} is for type custom; {block.type} has its own"))
    if custom and block.command is not None and not block.command:
        out.append(("server.command", "an empty command"))
    if kind.image is None and spec.image is None:
        out.append(("image", f"{block.type} has no default image: set image:"))
    for secret in kind.required_secrets:
        if secret not in spec.secrets:
            out.append(("secrets", f"{block.type} needs {secret} listed under secrets:"))
    if spec.num_nodes > 1:
        if kind.multi_node is None:
            out.append(("num_nodes", f"{block.type} runs on one node; num_nodes > 1 is for vllm and sglang"))
        elif spec.platform not in refs.servers.multi_node_platforms:
            where = ", ".join(refs.servers.multi_node_platforms)
            out.append(("num_nodes", f"num_nodes > 1 is not possible on {spec.platform} (only on {where})"))
    return out


def served_name(block: ServerBlock, service: str, refs: References) -> str:
    if block.served_name:
        return block.served_name
    if kind_of(refs, block).served_name_default == "model" and block.model:
        return block.model
    return service


def container_port(block: ServerBlock, refs: References) -> int:
    port = kind_of(refs, block).port or block.port
    assert port is not None
    return port


def takes_port(block: ServerBlock, refs: References) -> bool:
    """Whether the listening port is a flag of the command (so a platform may move it)."""
    return not kind_of(refs, block).port_in_env


def readiness(block: ServerBlock, refs: References) -> ReadinessRefs:
    path = kind_of(refs, block).readiness_path or block.readiness_path
    assert path is not None
    return refs.servers.readiness_for(path)


def _fill(template: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        template = template.replace("{" + key + "}", value)
    return template


def _values(spec: ServiceSpec, refs: References, port: int | None) -> dict[str, str]:
    block = spec.server
    assert block is not None
    return {
        "model": block.model or "",
        "port": str(port if port is not None else container_port(block, refs)),
        "served_name": block.served_name or "",
        "tp": str(spec.num_gpus * spec.num_nodes),
    }


def env(spec: ServiceSpec, refs: References) -> dict[str, str]:
    """The type's own env (NIM's NIM_SERVER_PORT...), non-secret."""
    block = spec.server
    assert block is not None
    values = _values(spec, refs, None)
    return {k: _fill(v, values) for k, v in kind_of(refs, block).env.items()}


def multi_node_flags(spec: ServiceSpec, refs: References) -> list[str]:
    """SGLang's rank flags from Slurm's env (a Ray cluster for vLLM is the launcher's, not flags)."""
    block = spec.server
    assert block is not None
    if spec.num_nodes <= 1 or kind_of(refs, block).multi_node != "sglang":
        return []
    return [
        "--nnodes",
        '"$SLURM_NNODES"',
        "--node-rank",
        '"$SLURM_NODEID"',
        "--dist-init-addr",
        f'"$TAOPLAN_HEAD_NODE:{SGLANG_DIST_PORT}"',
    ]


def argv(spec: ServiceSpec, refs: References, port: int | None = None) -> list[str]:
    """The server's command line as a list (before shell quoting), ``port`` overriding the type's."""
    block = spec.server
    assert block is not None
    kind = kind_of(refs, block)
    values = _values(spec, refs, port)
    words = list(block.command or []) if block.type == "custom" else [_fill(t, values) for t in kind.command]
    words += [_fill(t, values) for t in kind.tp]
    return words + list(block.args)


def inner_command(spec: ServiceSpec, refs: References, port: int | None = None) -> str:
    """What the container runs under /bin/bash -c: ``exec`` so the server gets the signals."""
    block = spec.server
    assert block is not None
    kind = kind_of(refs, block)
    prefix = f'PATH="$PATH:{kind.path_prepend}" ' if kind.path_prepend else ""
    rank = multi_node_flags(spec, refs)
    line = shlex.join(argv(spec, refs, port))
    if rank:
        line += " " + " ".join(rank)  # quoted for the shell, expanded on each node
    return f"{prefix}exec {line}"
