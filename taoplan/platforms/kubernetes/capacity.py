"""GPU capacity: which nodes a pod of this platform could land on, and how many GPUs they can still give.

Why a module of its own: plan (replace strategy, describe), the server-side dry run and doctor all ask
"does it fit?", and the answer must come from one reading of nodes and pods: quantities parsed the
same way, the same eligibility rule (Ready, schedulable, node selector, tolerated taints).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from taoplan import labels
from taoplan.errors import PlatformError
from taoplan.platforms import capacity as shared
from taoplan.spec.platform_settings import KubernetesConfig

from .api import Session, api_message
from .pods import condition


def parse_quantity(text: Any) -> int:
    """An integer resource quantity (GPU counts: "4", 4, "4000m"); 0 when unreadable."""
    value = str(text).strip()
    try:
        if value.endswith("m"):
            return int(value[:-1]) // 1000
        return int(float(value))
    except ValueError:
        return 0


def pod_gpus(pod: Mapping[str, Any], resource: str) -> int:
    total = 0
    for container in (pod.get("spec") or {}).get("containers") or []:
        res = container.get("resources") or {}
        amount = (res.get("requests") or {}).get(resource, (res.get("limits") or {}).get(resource))
        total += parse_quantity(amount) if amount is not None else 0
    return total


@dataclass
class Capacity:
    """What the eligible nodes can still allocate of the GPU resource, from one observe()."""

    resource: str
    allocatable: dict[str, int] = field(default_factory=dict)  # per eligible node
    free: dict[str, int] = field(default_factory=dict)
    note: str = ""
    holds: list[shared.Hold] = field(default_factory=list)  # pods holding GPUs on eligible nodes

    def shared(self, cfg: KubernetesConfig) -> shared.Capacity:
        """The platform-neutral form that engine.fit judges."""
        places = tuple(shared.Place(n, self.allocatable[n], self.free[n]) for n in sorted(self.free))
        no_place = ""
        if not places:
            selector = ", ".join(f"{k}={v}" for k, v in cfg.node_selector.items())
            no_place = "no Ready, schedulable node" + (
                f" matches node_selector {selector}" if selector else ""
            )
            no_place += " (with the tolerations given)" if cfg.tolerations else ""
        return shared.Capacity(
            resource=self.resource, places=places, holds=tuple(self.holds), no_place=no_place
        )

    @property
    def largest(self) -> tuple[str, int]:
        if not self.free:
            return "", 0
        node = max(self.free, key=lambda n: (self.free[n], n))
        return node, self.free[node]

    def fits(self, gpus: int) -> bool:
        return self.largest[1] >= gpus

    def describe(self, gpus: int) -> str:
        node, most = self.largest
        total = sum(self.free.values())
        where = f"{len(self.free)} eligible node(s)"
        note = f"; {self.note}" if self.note else ""
        if not self.free:
            return f"{gpus} {self.resource}: does NOT fit: no eligible node{note}"
        if most >= gpus:
            return f"{gpus} {self.resource}: fits ({most} free on {node}; {total} free on {where}{note})"
        return (
            f"{gpus} {self.resource}: does NOT fit what the nodes can still allocate (at most {most} free "
            f"on one node, {total} on {where}{note}): the pod would be Unschedulable"
        )


def eligible(node: Mapping[str, Any], cfg: KubernetesConfig) -> bool:
    """Could a pod with this platform's node selector and tolerations be scheduled on ``node``?"""
    meta, spec = node.get("metadata") or {}, node.get("spec") or {}
    if spec.get("unschedulable") or condition(node, "Ready").get("status") != "True":
        return False
    node_labels = meta.get("labels") or {}
    if any(node_labels.get(k) != v for k, v in cfg.node_selector.items()):
        return False
    for taint in spec.get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not any(
            t.tolerates(taint) for t in cfg.tolerations
        ):
            return False
    return True


def capacity(
    nodes: Sequence[Mapping[str, Any]], pods: Sequence[Mapping[str, Any]], cfg: KubernetesConfig
) -> Capacity:
    out = Capacity(cfg.gpu_resource)
    for node in nodes:
        if eligible(node, cfg):
            name = node["metadata"]["name"]
            out.allocatable[name] = parse_quantity(
                ((node.get("status") or {}).get("allocatable") or {}).get(cfg.gpu_resource, 0)
            )
    used: dict[str, int] = {}
    for pod in pods:
        node_name = (pod.get("spec") or {}).get("nodeName")
        if node_name in out.allocatable and (pod.get("status") or {}).get("phase") not in (
            "Succeeded",
            "Failed",
        ):
            gpus = pod_gpus(pod, cfg.gpu_resource)
            used[node_name] = used.get(node_name, 0) + gpus
            if gpus:
                out.holds.append(_hold(pod, node_name, gpus))
    out.free = {n: max(0, a - used.get(n, 0)) for n, a in out.allocatable.items()}
    return out


def _hold(pod: Mapping[str, Any], node: str, gpus: int) -> shared.Hold:
    meta = pod.get("metadata") or {}
    lbl = meta.get("labels") or {}
    where = f"pod {meta.get('namespace', '')}/{meta.get('name', '')}"
    if lbl.get(labels.K8S_JOB_ID):
        who = f"service {lbl.get(labels.K8S_SERVICE)} of project {lbl.get(labels.K8S_PROJECT)} ({where})"
        return shared.Hold(node, gpus, job_id=lbl[labels.K8S_JOB_ID], who=who)
    return shared.Hold(node, gpus, who=where)


def current_capacity(session: Session) -> Capacity:
    """Read the nodes and the pods that hold GPUs now (only this namespace's if that is all we may list)."""
    nodes = session.items("/api/v1/nodes")
    status, data = session.call(
        "GET", "/api/v1/pods", query=[("fieldSelector", "status.phase!=Succeeded,status.phase!=Failed")]
    )
    note = ""
    if status == 403:
        data = session.ok("GET", session.paths()["Pod"], "list pods")
        note = f"only namespace {session.namespace}'s pods could be listed"
    elif not 200 <= status < 300:
        raise PlatformError(f"kubernetes: list pods: {api_message(status, data)}")
    cap = capacity(nodes, list((data or {}).get("items") or []), session.config)
    cap.note = note
    return cap
