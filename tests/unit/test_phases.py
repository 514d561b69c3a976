"""Phase timings (engine/phases.py): what each reported reason means, and the spans state keeps."""

from __future__ import annotations

from taoplan.engine import phases
from taoplan.engine.phases import (
    CONTAINER_START,
    FIRST_ANSWER,
    IMAGE_PULL,
    MODEL_LOADING,
    QUEUED,
    READY,
    SERVER_INIT,
    Clock,
    phase_of,
)
from taoplan.store.state import ServiceRecord


def test_reasons_from_platforms_and_the_tao_server() -> None:
    cases = {
        "pending: PENDING (Resources)": QUEUED,  # Slurm
        "pending: submitted": QUEUED,
        "pending: pod tao-a-1 Pending (not scheduled yet)": QUEUED,  # Kubernetes
        "pending: ContainerCreating": CONTAINER_START,
        "pending: pod tao-a-1 Pending on node-1": CONTAINER_START,
        "pending: ErrImagePull: pull access denied": IMAGE_PULL,
        "connecting": CONTAINER_START,
        "the pod is not Ready; the server does not answer yet": CONTAINER_START,
        "server_initializing": SERVER_INIT,
        "model_loading": MODEL_LOADING,
        "the pod is not Ready yet (the server says: model_loading)": MODEL_LOADING,
        "HTTP 503": CONTAINER_START,
    }
    assert {reason: phase_of(reason) for reason in cases} == cases


def test_a_clock_keeps_ordered_spans_and_relabels_a_start_that_was_queued() -> None:
    clock = Clock()
    clock.begin(CONTAINER_START, at=10.0, implicit=True)  # the start call (sbatch)
    clock.saw("pending: PENDING (Resources)")  # it was queued all along
    clock.begin(CONTAINER_START, at=20.0)
    clock.begin(MODEL_LOADING, at=22.0, detail="model_loading")
    clock.begin(MODEL_LOADING, at=23.0)  # the same phase again: one span
    clock.ready(at=25.0)
    clock.begin(FIRST_ANSWER, at=25.0)
    clock.close(at=25.5)
    spans = clock.spans()
    assert [(s["phase"], s["seconds"]) for s in spans] == [
        (QUEUED, 10.0),
        (CONTAINER_START, 2.0),
        (MODEL_LOADING, 3.0),
        (READY, 0.0),
        (FIRST_ANSWER, 0.5),
    ]
    assert spans[0]["detail"] == "pending: PENDING (Resources)"
    assert spans[0]["start"] == "1970-01-01T00:00:10+00:00"
    assert phases.slowest(spans) == "queued 10.0s"


def test_a_platform_timed_pull_comes_first_and_old_state_has_no_phases() -> None:
    clock = Clock()
    clock.add(IMAGE_PULL, 1.0, 4.0)
    clock.begin(CONTAINER_START, at=4.0, implicit=True)
    clock.saw("pending: PENDING (Priority)")  # the engine-opened start span was a queue
    assert [s["phase"] for s in clock.spans()] == [IMAGE_PULL, QUEUED]
    old = ServiceRecord.model_validate(
        {"name": "a", "job_id": "j", "platform": "p", "network_arch": "x", "spec": {}, "spec_hash": "h",
         "image": "i", "image_rule": "r"}
    )  # fmt: skip
    assert old.phases == [] and phases.slowest(old.phases) is None
