"""GPU capacity of the configured dedicated node group, as Lepton reports it.

Why from the nodes: a deployment gets GPUs on one node of its node group, so each node is a place
(``GET /dedicated-node-groups/{id}/nodes``: ``spec.resource.gpu{total, allocated}``), and the
workloads a node lists are what holds its GPUs: ours by label (through the deployment name), others
named as Lepton names them. Unschedulable nodes offer nothing. Lepton holds a deployment that does
not fit as ``NoCapacity`` until GPUs free up, so the platform queues.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from taoplan.platforms import capacity as shared

from .api import Session


def node_capacity(nodes: Iterable[Any], ours: Mapping[str, str], group: str) -> shared.Capacity:
    """The shared form from SDK ``Node`` objects; ``ours`` maps deployment name -> taoplan job_id."""
    places: list[shared.Place] = []
    holds: list[shared.Hold] = []
    for node in nodes:
        name = str(node.metadata.name or node.metadata.id_)
        gpu = node.spec.resource.gpu if node.spec.resource else None
        if node.spec.unschedulable or gpu is None or not gpu.total:
            continue
        total = int(gpu.total)
        places.append(shared.Place(name, total, max(0, total - int(gpu.allocated or 0)), group))
        for load in (node.status.workloads if node.status else None) or []:
            gpus = int(load.gpu_count or 0)
            job_id = ours.get(load.name)
            who = f"lepton {load.type_} {load.name}" + (
                f" (workspace {load.workspace})" if load.workspace else ""
            )
            holds.append(shared.Hold(name, gpus, job_id=job_id, who=who))
    no_place = "" if places else f"node group {group} has no schedulable node with GPUs"
    return shared.Capacity(places=tuple(places), holds=tuple(holds), no_place=no_place)


def read(session: Session, ours: Mapping[str, str]) -> shared.Capacity:
    """One reading of the node group's nodes (raises PlatformError / ConfigError)."""
    ng_id, ng_name = session.node_group()
    nodes = session.call(
        f"GET /dedicated-node-groups/{ng_id}/nodes", session.client().nodegroup.list_nodes, ng_id
    )
    return node_capacity(nodes, ours, ng_name)
