"""Phase timings of one service in one apply: when each phase of its start began and ended.

The phases come from what the platform and the TAO server report, never from guesses:

- **queued**: the platform holds the workload back (Slurm PENDING, a pod not scheduled yet, just submitted);
- **image pull**: the platform pulled the image (local-docker reports its pull; a pod's pull shows as such);
- **container start**: from the start call (or the end of the queue or pull) until the server answers;
- **server initializing** / **model loading**: the readiness reasons (``server_initializing``,
  ``model_loading``...), also when Kubernetes relays them ("the pod is not Ready yet (the server
  says: model_loading)");
- **ready**: the moment readiness said 200 (start and end are that instant);
- **first answer**: the smoke request, from sending it to its answer.

A phase ends when the next one begins, and a later phase is never followed by an earlier one (a
wait reason that would step back belongs to the phase it is in). State keeps the list in order (``ServiceRecord.phases``):
``{"phase", "start", "end", "seconds", "detail"}`` with ISO 8601 UTC times.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

QUEUED, IMAGE_PULL, CONTAINER_START = "queued", "image pull", "container start"
SERVER_INIT, MODEL_LOADING, READY, FIRST_ANSWER = (
    "server initializing",
    "model loading",
    "ready",
    "first answer",
)
ORDER = (QUEUED, IMAGE_PULL, CONTAINER_START, SERVER_INIT, MODEL_LOADING, READY, FIRST_ANSWER)


def phase_of(reason: str) -> str:
    """The phase a readiness-wait reason (or a platform's detail while there is no endpoint) means."""
    low = reason.lower()
    body = low.removeprefix("pending: ")
    if "pull" in body:
        return IMAGE_PULL
    if "initializ" in body:
        return SERVER_INIT
    if "loading" in body or "model_not" in body:
        return MODEL_LOADING
    if low.startswith("pending") or "submitted" in body or "not in the queue" in body:
        # a pod on its node is past the queue: ContainerCreating, "pod X Pending on NODE"
        if "containercreating" in body or " pending on " in body or "podinitializing" in body:
            return CONTAINER_START
        return QUEUED
    return CONTAINER_START


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat()


class Clock:
    """Collects the phases of one service as they are seen; ``spans()`` is what state keeps."""

    def __init__(self) -> None:
        self._spans: list[dict[str, Any]] = []
        self._implicit = False  # the current span was opened by the engine, not seen

    def add(self, phase: str, start: float, end: float, detail: str = "") -> None:
        """A phase the platform timed itself (local-docker's image pull)."""
        self.close(start)
        self._spans.append({"phase": phase, "start": start, "end": end, "detail": detail})
        self._implicit = False

    def begin(self, phase: str, at: float | None = None, detail: str = "", implicit: bool = False) -> None:
        at = time.time() if at is None else at
        last = self._spans[-1] if self._spans else None
        if last is not None and last["end"] is None:
            if last["phase"] == phase:
                return
            if self._implicit and phase == QUEUED and last["phase"] == CONTAINER_START:
                last["phase"], last["detail"] = QUEUED, detail  # it was queued from the start call on
                self._implicit = False
                return
            if phase in ORDER and last["phase"] in ORDER and ORDER.index(phase) < ORDER.index(last["phase"]):
                # never backwards: a pod whose server loaded waits for the kubelet's probe ("the pod
                # is not Ready yet (the server says: ready)"); that is still the phase it was in
                return
        self.close(at)
        self._spans.append({"phase": phase, "start": at, "end": None, "detail": detail})
        self._implicit = implicit

    def saw(self, reason: str) -> None:
        self.begin(phase_of(reason), detail=reason)

    def close(self, at: float | None = None) -> None:
        if self._spans and self._spans[-1]["end"] is None:
            self._spans[-1]["end"] = time.time() if at is None else at

    def ready(self, at: float | None = None) -> None:
        at = time.time() if at is None else at
        self.close(at)
        self._spans.append({"phase": READY, "start": at, "end": at, "detail": ""})

    def spans(self) -> list[dict[str, Any]]:
        out = []
        for span in self._spans:
            end = span["end"] if span["end"] is not None else span["start"]
            out.append(
                {
                    "phase": span["phase"],
                    "start": iso(span["start"]),
                    "end": iso(end),
                    "seconds": round(max(0.0, end - span["start"]), 3),
                    "detail": span["detail"],
                }
            )
        return out


def slowest(spans: Sequence[dict[str, Any]]) -> str | None:
    """ "model loading 3.0s": the longest recorded phase, for `taoplan status`."""
    timed = [s for s in spans if s.get("phase") != READY and isinstance(s.get("seconds"), (int, float))]
    if not timed:
        return None
    worst = max(timed, key=lambda s: s["seconds"])
    return f"{worst['phase']} {worst['seconds']:.1f}s"
