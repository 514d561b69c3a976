"""references/: the facts of the TAO service as data, and image resolution from them."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from taoplan.common.paths import references_dir
from taoplan.errors import ConfigError
from taoplan.spec import yamlsrc


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ArchCommand(_Strict):
    command_style: Literal["job_payload", "predict_flags"]
    executable: str
    port_flag: str | None = None
    strip_hf_prefix: bool = False
    model_keys: list[str] = []
    default_output_dir: str | None = None


class EnvRules(_Strict):
    forbidden: list[str]
    forbidden_prefixes: tuple[str, ...]
    reserved: list[str]
    allowed_docker_env_var_names: list[str]


class ModelPathRules(_Strict):
    protocols: list[str]
    rejected_prefixes: tuple[str, ...]
    placeholders: list[str]


class GpuHostRefs(_Strict):
    """The GPU host minimums of the TAO containers (versions as dotted text: "580", "13.0")."""

    driver_min: str
    cuda_min: str
    container_toolkit_min: str
    container_toolkit_min_by_arch: dict[str, str] = {}
    free_memory_min_fraction: float


class ServiceRefs(_Strict):
    format_version: int
    valid_archs: list[str]
    image_mapping: dict[str, str]
    fallback_image_key: str
    archs: dict[str, ArchCommand]
    container_port: int
    execution_backend: dict[str, str]
    env: EnvRules
    secret_names: list[str]
    secret_value_patterns: list[str]
    model_path: ModelPathRules
    gpu_host: GpuHostRefs


class ReadinessRefs(_Strict):
    path: str
    poll_interval_seconds: float
    ready_status: int
    wait_reasons: list[str]
    wait_statuses: list[int]
    fatal_reasons: list[str]


class SamplingField(_Strict):
    type: Literal["int", "float", "str"]
    default: Any
    min: float | None = None
    max: float | None = None
    help: str | None = None


class ArchRequest(_Strict):
    requires_media: bool
    accepts_data_uri: bool
    media_kinds: list[str]
    reply: Literal["text", "video"] = "text"
    sampling: dict[str, SamplingField]


class ChatRefs(_Strict):
    path: str
    timeout_seconds: float
    max_media_bytes: int
    cloud_prefixes: list[str]
    retry_types: list[str]
    fatal_types: list[str]


class RequestRefs(_Strict):
    format_version: int
    readiness: ReadinessRefs
    chat: ChatRefs
    media: dict[str, dict[str, str]]
    archs: dict[str, ArchRequest]
    server: ArchRequest | None = None  # what a generic OpenAI-compatible server (``server:``) takes

    def for_server(self, server_type: str) -> RequestRefs:
        """These rules with ``server_type`` as one more arch, ruled by ``server``: a generic server's turn
        is then checked (media, sampling ranges) and its sampling asked for as a TAO arch's is."""
        if self.server is None or server_type in self.archs:
            return self
        return self.model_copy(update={"archs": {**self.archs, server_type: self.server}})


class ServerType(_Strict):
    """One generic model server type of references/servers.yaml."""

    image: str | None
    reset_entrypoint: bool
    command: list[str]
    tp: list[str]
    port: int | None
    port_in_env: bool = False
    readiness_path: str | None
    model: Literal["repo_or_path", "path", "optional", "none"]
    multi_node: Literal["ray", "sglang"] | None = None
    served_name_default: Literal["service", "model"] = "service"
    path_prepend: str | None = None
    env: dict[str, str] = {}
    required_secrets: list[str] = []


class ServerReadiness(_Strict):
    poll_interval_seconds: float
    ready_status: int
    wait_statuses: list[int]


class ServersRefs(_Strict):
    format_version: int
    types: dict[str, ServerType]
    readiness: ServerReadiness
    multi_node_platforms: list[str]

    def readiness_for(self, path: str) -> ReadinessRefs:
        """A server's readiness contract: its own path, 200 ready, no TAO reasons."""
        r = self.readiness
        return ReadinessRefs(
            path=path,
            poll_interval_seconds=r.poll_interval_seconds,
            ready_status=r.ready_status,
            wait_reasons=[],
            wait_statuses=r.wait_statuses,
            fatal_reasons=[],
        )


@dataclass(frozen=True)
class References:
    root: Path
    service: ServiceRefs
    request: RequestRefs
    versions: Mapping[str, Any]
    servers: ServersRefs

    def arch_config(self, arch: str) -> dict[str, Any] | None:
        """configs/{arch}.config.json, or None when it is missing or empty."""
        path = self.root / "configs" / f"{arch}.config.json"
        if not path.is_file():
            return None
        try:
            text = path.read_text(encoding="utf-8").strip()
            return json.loads(text) if text else None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: not valid JSON: {exc}") from None


def _load_model(path: Path, model: type[BaseModel]) -> Any:
    source = yamlsrc.load(path)
    if not isinstance(source.data, dict):
        raise ConfigError(f"{path}:1:1: expected a mapping")
    try:
        return model.model_validate(source.data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = [p for p in err["loc"] if isinstance(p, (str, int))]
            lines.append(f"{source.where(loc)}: {'.'.join(map(str, loc))}: {err['msg']}")
        raise ConfigError(lines[0], lines=lines) from None


@lru_cache(maxsize=4)
def _load(root: Path) -> References:
    versions_src = yamlsrc.load(root / "versions.yaml")
    if not isinstance(versions_src.data, dict):
        raise ConfigError(f"{root / 'versions.yaml'}:1:1: expected a mapping")
    service = _load_model(root / "service.yaml", ServiceRefs)
    for pattern in service.secret_value_patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(
                f"{root / 'service.yaml'}: secret_value_patterns: bad regex {pattern!r}: {exc}"
            ) from None
    return References(
        root=root,
        service=service,
        request=_load_model(root / "request.yaml", RequestRefs),
        versions=versions_src.data,
        servers=_load_model(root / "servers.yaml", ServersRefs),
    )


def load_references(root: Path | None = None) -> References:
    return _load((root or references_dir()).resolve())


# ---------------------------------------------------------------- image resolution


@dataclass(frozen=True)
class ResolvedImage:
    image: str
    rule: str  # which rule resolved it, recorded in state


def _looks_like_key(value: str) -> bool:
    return (
        "/" not in value
        and ":" not in value
        and bool(re.fullmatch(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*", value))
    )


def _versions_lookup(refs: References, dotted: str) -> str | None:
    parts = dotted.split(".")
    if parts[0] != "images":
        parts = ["images", *parts]
    node: Any = refs.versions
    for part in parts:
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, str) and node else None


def resolve_image(
    arch: str, service_image: str | None, refs: References, environ: Mapping[str, str] | None = None
) -> ResolvedImage:
    """The image for a service, by the four rules of the TAO skill, in order."""
    env = os.environ if environ is None else environ
    if service_image:
        return ResolvedImage(service_image, "service.image")
    config = refs.arch_config(arch)
    key = ((config or {}).get("api_params") or {}).get("image") if isinstance(config, dict) else None
    fallback = not key
    if fallback:
        key = refs.service.fallback_image_key
    suffix = f" (fallback: no image key in configs/{arch}.config.json)" if fallback else ""
    env_name = f"IMAGE_{key}"
    if env.get(env_name):
        return ResolvedImage(env[env_name], f"env:{env_name}{suffix}")
    mapped = refs.service.image_mapping.get(str(key))
    if mapped is None:
        raise ConfigError(
            f"{refs.root / 'service.yaml'}: image_mapping has no key {key!r} (needed by {arch})"
        )
    if not _looks_like_key(mapped):
        return ResolvedImage(mapped, f"mapping:{key}{suffix}")
    image = _versions_lookup(refs, mapped)
    if image is None:
        raise ConfigError(
            f"{refs.root / 'versions.yaml'}: key 'images.{mapped.removeprefix('images.')}' not found (needed by {arch})"
        )
    return ResolvedImage(image, f"versions:images.{mapped.removeprefix('images.')} via {key}{suffix}")


def resolve_server_image(
    kind: str, service_image: str | None, refs: References, environ: Mapping[str, str] | None = None
) -> ResolvedImage:
    """A server's image: service.image, else IMAGE_SERVER_<TYPE> from the environment, else the type's
    default in references/servers.yaml (NIM and custom have none: the loader requires image:)."""
    env = os.environ if environ is None else environ
    if service_image:
        return ResolvedImage(service_image, "service.image")
    env_name = f"IMAGE_SERVER_{kind.upper()}"
    if env.get(env_name):
        return ResolvedImage(env[env_name], f"env:{env_name}")
    default = refs.servers.types[kind].image
    if default is None:
        raise ConfigError(f"{refs.root / 'servers.yaml'}: {kind} has no default image (set image:)")
    return ResolvedImage(default, f"servers:{kind}")
