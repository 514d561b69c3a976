"""The inner command and env payload of a TAO service: byte-identical on every platform.

Q(x) = shlex.quote(json.dumps(x, separators=(",", ":"))), as the TAO skill defines it.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from taoplan.spec.config import ServiceSpec
from taoplan.spec.references import References


def _q(obj: Any) -> str:
    return shlex.quote(json.dumps(obj, separators=(",", ":")))


def model_path_for_job(spec: ServiceSpec, refs: References) -> str:
    arch = refs.service.archs[spec.network_arch]
    if arch.strip_hf_prefix and spec.model_path.startswith("hf_model://"):
        return spec.model_path[len("hf_model://") :]
    return spec.model_path


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
    """The command the container runs under /bin/bash -c. ``port`` overrides 8080 where the arch allows."""
    arch = refs.service.archs[spec.network_arch]
    listen = port if port is not None else refs.service.container_port
    parts = ["umask 0 &&", arch.executable]
    if arch.command_style == "predict_flags":
        if spec.model_path.startswith("hf_model://"):
            parts += ["--model", shlex.quote(spec.model_key or "")]
        else:
            parts += ["--checkpoint-path", shlex.quote(spec.model_path)]
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
