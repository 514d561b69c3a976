"""Reading a pod's status in the core's words: running, starting, pending or exited, and whether it is fatal.

Why a module of its own: observe, logs, the readiness gate and the forwarder each pick a pod and judge
it, and they must judge it the same way. The Kubernetes status model (phases, conditions, container
waiting reasons, deletion timestamps) is read here and nowhere else. Pure functions only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: Fatal pod conditions (Unschedulable, ImagePullBackOff, CrashLoopBackOff...) are reported with this
#: Observation.status: the core's readiness loop stops waiting on it and shows the detail.
FATAL_STATUS = "failed"
#: Container waiting reasons that will not clear by themselves. ErrImagePull is left out: it is the
#: first, possibly transient, failure; ImagePullBackOff follows when it repeats.
FATAL_WAITING = frozenset(
    {"ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName", "CreateContainerConfigError"}
)


def condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    """The status condition of type ``kind`` of any object (pod, node, Deployment); {} if absent."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return cond
    return {}


def pod_is_ready(pod: Mapping[str, Any]) -> bool:
    meta = pod.get("metadata") or {}
    return not meta.get("deletionTimestamp") and condition(pod, "Ready").get("status") == "True"


@dataclass(frozen=True)
class PodState:
    """What one pod says, in the core's words (running | starting | pending | exited)."""

    status: str
    detail: str
    fatal: bool = False
    exit_code: int | None = None


def pod_state(pod: Mapping[str, Any]) -> PodState:
    """Classify a pod: fatal conditions (Unschedulable, image pull back-off, a bad secret ref) are marked."""
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    name = meta.get("name", "?")
    node = (pod.get("spec") or {}).get("nodeName")
    phase = status.get("phase", "Pending")
    if meta.get("deletionTimestamp"):
        return PodState("pending", f"pod {name} is terminating")
    scheduled = condition(pod, "PodScheduled")
    if scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
        return PodState("pending", f"Unschedulable: {scheduled.get('message', '').strip()}", fatal=True)
    if phase in ("Succeeded", "Failed"):
        reason = status.get("reason") or phase
        message = status.get("message") or ""
        return PodState("exited", f"pod {name} {reason}" + (f": {message}" if message else ""))
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting")
        if not waiting:
            continue
        reason, message = waiting.get("reason", ""), (waiting.get("message") or "").strip()
        if reason == "CrashLoopBackOff":
            last = (cs.get("lastState") or {}).get("terminated") or {}
            code = last.get("exitCode")
            why = f", {last['reason']}" if last.get("reason") else ""
            return PodState(
                "exited",
                f"CrashLoopBackOff: restarted {cs.get('restartCount', 0)} time(s), last exit code {code}{why}",
                fatal=True,
                exit_code=code if isinstance(code, int) else None,
            )
        if reason in FATAL_WAITING:
            return PodState("pending", f"{reason}: {message}" if message else reason, fatal=True)
        if reason:
            return PodState("pending", f"{reason}: {message}" if message else reason)
    if phase == "Pending":
        return PodState(
            "pending", f"pod {name} Pending" + (f" on {node}" if node else " (not scheduled yet)")
        )
    if condition(pod, "Ready").get("status") == "True":
        return PodState("running", f"Ready on {node}")
    started = all(cs.get("started") for cs in status.get("containerStatuses") or [{}])
    return PodState("starting", f"Running on {node}, not Ready" + ("" if started else " (startup probe)"))


def newest(items: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The most recently created item, preferring those not being deleted; None for no items."""
    live = [i for i in items if not (i.get("metadata") or {}).get("deletionTimestamp")] or list(items)
    if not live:
        return None
    return max(live, key=lambda i: (i.get("metadata") or {}).get("creationTimestamp") or "")
