"""The inner command and env payload of a TAO service: byte-identical on every platform.

Q(x) = shlex.quote(json.dumps(x, separators=(",", ":"))), as the TAO skill defines it.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from typing import Any

from taoplan.spec import servers
from taoplan.spec.config import ServiceSpec
from taoplan.spec.references import ReadinessRefs, References


def _q(obj: Any) -> str:
    return shlex.quote(json.dumps(obj, separators=(",", ":")))


def model_path_for_job(spec: ServiceSpec, refs: References) -> str:
    arch = refs.service.archs[str(spec.network_arch)]
    model_path = str(spec.model_path)
    if arch.strip_hf_prefix and model_path.startswith("hf_model://"):
        return model_path[len("hf_model://") :]
    return model_path


def job_payload(spec: ServiceSpec, job_id: str, refs: References) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "specs": {"model_path": model_path_for_job(spec, refs)},
        "neural_network_name": spec.network_arch,
    }


def env_payload(platform: str, job_id: str, refs: References) -> dict[str, str]:
    """The TAO env payload. Secrets never go here: the server logs --docker_env_vars."""
    return {
        "TAO_EXECUTION_BACKEND": refs.service.execution_backend[platform],
        "TAO_API_JOB_ID": job_id,
        "CLOUD_BASED": "False",
    }


def inner_command(
    spec: ServiceSpec, job_id: str, platform: str, refs: References, port: int | None = None
) -> str:
    """The command the container runs under /bin/bash -c. ``port`` overrides 8080 where the arch allows.

    A server's (``server:``) comes from references/servers.yaml (spec/servers.py)."""
    if spec.server is not None:
        if port is not None and not servers.takes_port(spec.server, refs):
            raise ValueError(f"{spec.server.type} does not take a port flag")
        return servers.inner_command(spec, refs, port)
    arch = refs.service.archs[str(spec.network_arch)]
    listen = port if port is not None else refs.service.container_port
    parts = ["umask 0 &&", arch.executable]
    if arch.command_style == "predict_flags":
        if str(spec.model_path).startswith("hf_model://"):
            parts += ["--model", shlex.quote(spec.model_key or "")]
        else:
            parts += ["--checkpoint-path", shlex.quote(str(spec.model_path))]
        parts += ["--output-dir", shlex.quote(spec.output_dir or arch.default_output_dir or "/tmp/outputs")]
        parts += [arch.port_flag or "--port", str(listen)]
        return " ".join(parts)
    if arch.port_flag:
        parts += [arch.port_flag, str(listen)]
    elif port is not None and port != refs.service.container_port:
        raise ValueError(f"{spec.network_arch} does not take a port flag")
    parts += ["--job", _q(job_payload(spec, job_id, refs))]
    parts += ["--docker_env_vars", _q(env_payload(platform, job_id, refs))]
    return " ".join(parts)


def accepts_port(arch: str, refs: References) -> bool:
    return refs.service.archs[arch].port_flag is not None


def takes_port(spec: ServiceSpec, refs: References) -> bool:
    """Whether a platform may move the listening port (a flag of the inner command)."""
    if spec.server is not None:
        return servers.takes_port(spec.server, refs)
    return accepts_port(str(spec.network_arch), refs)


def service_env(spec: ServiceSpec, platform: str, job_id: str, refs: References) -> dict[str, str]:
    """The non-secret env of a service: its own, plus the TAO payload or the server type's env."""
    extra = servers.env(spec, refs) if spec.server is not None else env_payload(platform, job_id, refs)
    return {**spec.env, **extra}


def container_port(spec: ServiceSpec, refs: References) -> int:
    if spec.server is not None:
        return servers.container_port(spec.server, refs)
    return refs.service.container_port


def readiness(spec: ServiceSpec, refs: References) -> ReadinessRefs:
    """The readiness contract: TAO's (with its reasons) or the server type's own (200 ready)."""
    if spec.server is not None:
        return servers.readiness(spec.server, refs)
    return refs.request.readiness


def served_name(spec: ServiceSpec) -> str | None:
    """The model name a server answers to (the upstream body's ``model``); None for TAO."""
    return spec.server.served_name if spec.server is not None else None


def reset_entrypoint(spec: ServiceSpec, refs: References) -> bool:
    return spec.server is not None and servers.kind_of(refs, spec.server).reset_entrypoint


def readiness_of(spec_dict: Mapping[str, Any], refs: References) -> ReadinessRefs:
    """The readiness contract of a recorded spec (state's ``spec``), as ``readiness`` gives it."""
    server = spec_dict.get("server")
    if not isinstance(server, Mapping) or server.get("type") not in refs.servers.types:
        return refs.request.readiness
    path = refs.servers.types[server["type"]].readiness_path or server.get("readiness_path") or "/health"
    return refs.servers.readiness_for(str(path))


def container_port_of(spec_dict: Mapping[str, Any], refs: References) -> int:
    """The port the server listens on in its container, from a recorded spec (``container_port``)."""
    server = spec_dict.get("server")
    if not isinstance(server, Mapping) or server.get("type") not in refs.servers.types:
        return refs.service.container_port
    port = refs.servers.types[server["type"]].port or server.get("port")
    return int(port) if isinstance(port, int) else refs.service.container_port


def in_registry(spec_dict: Mapping[str, Any]) -> bool:
    """The TAO skill registry has entries for TAO services only (its format has no place for others)."""
    return spec_dict.get("server") is None
