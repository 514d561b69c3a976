"""The double's world: workspace catalogue (shapes, node groups), spec validation, and JSON shapes.

Every shape here is what leptonai 0.47.1 parses (leptonai/api/v2/types/*.py); see docs/lepton-double.md.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

# api/v2/types/deployment.py LeptonDeploymentState (legacy servers collapse Stopped to "Not Ready").
STARTING, READY, NOT_READY, ERROR, STOPPED = "Starting", "Ready", "Not Ready", "Error", "Stopped"
NAME_RE = re.compile(r"^[a-z][a-z0-9-]*$")
NAME_MAX = 36


class ApiError(Exception):
    """A 4xx/5xx answer in the API's error shape: {"code": ..., "message": ...}."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass
class NodeGroup:
    id: str
    name: str
    gpus: int
    gpu_product: str = "NVIDIA-H200"
    #: GPUs held by another workspace's workload on the node group (name, gpus): what a shared node
    #: group shows as a foreign workload on its node
    foreign: tuple[str, int] | None = None
    shapes: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        # api/v2/types/dedicated_node_group.py DedicatedNodeGroup{metadata, spec, status}
        return {
            "metadata": {"id": self.id, "name": self.name},
            "spec": {"gpu_product": self.gpu_product, "desired_nodes": 1},
            "status": {"ready_nodes": 1, "quota_enabled": True},
        }


def default_shapes(ng_id: str) -> list[dict[str, Any]]:
    """Shapes a node group offers: api/v2/types/shape.py Shape{metadata, spec: ShapeSpec}."""
    out = []
    for name, gpus, cpu, mem in (("gpu.1xh200", 1, 16, 196608), ("gpu.8xh200", 8, 128, 1572864)):
        out.append(
            {
                "metadata": {"id": name, "name": name},
                "spec": {
                    "name": name,
                    "cpu": cpu,
                    "memory_in_mb": mem,
                    "accelerator_type": "NVIDIA-H200",
                    "accelerator_num": gpus,
                    "accelerator_memory_in_mb": 143771,
                    "listable_in": ["deployment", "pod", "job"],
                    "node_group_id": ng_id,
                },
            }
        )
    out.append(
        {
            "metadata": {"id": "cpu.small", "name": "cpu.small"},
            "spec": {
                "name": "cpu.small",
                "cpu": 1,
                "memory_in_mb": 4096,
                "listable_in": ["deployment", "pod", "job"],
                "node_group_id": ng_id,
            },
        }
    )
    return out


def shape_gpus(shape: dict[str, Any]) -> int:
    return int(shape["spec"].get("accelerator_num") or 0)


def now_ms() -> int:
    return int(time.time() * 1000)


def iso_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def workspace_info(ws: str, new_api: bool, n_deployments: int, n_secrets: int) -> dict[str, Any]:
    """GET /workspace: every required field of api/v2/types/workspace.py WorkspaceInfo."""
    zero = {"cpu": 0, "memory": 0, "accelerator_num": 0}
    return {
        "build_time": "2026-01-01T00:00:00Z",
        "git_commit": "lepton-double",
        "workspace_name": ws,
        "workspace_tier": "enterprise",
        "workspace_state": "normal",
        "supported_shapes": {},
        "workspace_disk_usage_bytes": 0,
        "workloads": {
            "num_deployments": n_deployments,
            "num_jobs": 0,
            "num_pods": 0,
            "num_secrets": n_secrets,
            "num_image_pull_secrets": 0,
        },
        "resource_quota": {"limit": zero, "used": zero},
        "dedicated_node_group_only": True,
        "features": {"enable_new_deployment_api": new_api, "enable_secure_endpoint_defaults": True},
    }


def bad(message: str) -> ApiError:
    return ApiError(400, "InvalidParameterValue", message)


def validate_name(meta: dict[str, Any]) -> str:
    name, id_ = meta.get("name"), meta.get("id")
    if not name and not id_:
        raise bad("metadata.name is required")
    if name and id_ and name != id_:
        raise bad(f"metadata.id {id_!r} and metadata.name {name!r} differ")
    name = name or id_
    if len(name) > NAME_MAX:
        raise bad(f"deployment name {name!r} is longer than {NAME_MAX} characters")
    if not NAME_RE.match(name) or name.endswith("-"):
        raise bad(
            f"deployment name {name!r} must start with a lowercase letter and hold only "
            "lowercase letters, digits and '-'"
        )
    return name


def validate_replicas(rr: dict[str, Any], create: bool) -> None:
    """Mirrors ResourceRequirement.validate_max_replicas (types/deployment.py) on the server side."""
    lo, hi = rr.get("min_replicas"), rr.get("max_replicas")
    if hi is not None and lo is None:
        raise bad("resource_requirement.min_replicas must be specified if max_replicas is specified")
    if create and lo is not None and hi is None:
        raise bad("resource_requirement.max_replicas must be specified together with min_replicas")
    for key, v in (("min_replicas", lo), ("max_replicas", hi)):
        if v is not None and (not isinstance(v, int) or v < 0):
            raise bad(f"resource_requirement.{key} must be a non-negative integer")
    if lo is not None and hi is not None and lo > hi:
        raise bad(f"min_replicas must be smaller than max_replicas (found {lo} > {hi})")
    if (hi or 0) > 1 or (lo or 0) > 1:
        raise bad("the lepton double runs at most one replica per deployment")


def validate_spec(
    spec: dict[str, Any], node_groups: dict[str, NodeGroup], secrets: dict[str, str], create: bool
) -> tuple[NodeGroup, dict[str, Any]]:
    """Reject what the real API rejects; return the chosen node group and shape."""
    container = spec.get("container") or {}
    if not container.get("image"):
        raise bad("spec.container.image is required")
    cmd = container.get("command")
    if cmd is not None and (not isinstance(cmd, list) or not all(isinstance(c, str) for c in cmd)):
        raise bad("spec.container.command must be a list of strings")
    rr = spec.get("resource_requirement") or {}
    validate_replicas(rr, create)
    groups = (rr.get("affinity") or {}).get("allowed_dedicated_node_groups") or []
    if not groups:
        raise bad("this workspace is dedicated-node-group only: set affinity.allowed_dedicated_node_groups")
    for gid in groups:
        if gid not in node_groups:
            raise bad(f"dedicated node group {gid!r} not found in this workspace")
    shape_name = rr.get("resource_shape")
    if not shape_name:
        raise bad("spec.resource_requirement.resource_shape is required")
    for gid in groups:
        for shape in node_groups[gid].shapes:
            if shape["metadata"]["name"] == shape_name:
                break
        else:
            continue
        break
    else:
        raise bad(f"resource shape {shape_name!r} is not offered by node group(s) {', '.join(groups)}")
    for env in spec.get("envs") or []:
        if not env.get("name"):
            raise bad("every spec.envs item needs a name")
        ref = (env.get("value_from") or {}).get("secret_name_ref")
        if ref is not None and ref not in secrets:
            raise bad(f"secret {ref!r} referenced by env {env['name']!r} not found")
    for tok in spec.get("api_tokens") or []:
        ref = (tok.get("value_from") or {}).get("token_name_ref")
        if ref is not None and ref not in secrets:
            # Not "api_tokens": the SDK redacts a whole error body that names that field.
            raise bad(f"secret {ref!r} referenced by an endpoint token not found")
        if ref is None and not tok.get("value"):
            raise bad("every endpoint token needs a value or value_from.token_name_ref")
    return node_groups[gid], shape


def merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """JSON merge of a PATCH body (lists replace, dicts merge)."""
    out = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out
