"""Replicas and rollouts in the plan: instance keys, scaling in place, rolling or recreate and why,
and an interrupted rollout that the next plan finishes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from taoplan.engine import rollout
from taoplan.engine.plan import CREATE, DELETE, NOOP, REPLACE, make_plan
from taoplan.platforms.capacity import Capacity, Place
from taoplan.spec.config import load_services
from taoplan.spec.desired import Desired, build_desired
from taoplan.spec.references import load_references
from taoplan.store.state import State
from tests.conftest import write
from tests.unit.test_planner import recorded, running, want

REFS = load_references()
NO_GPUS = (True, "no GPUs are held (gpus: none)")


def replicas(name: str, n: int, **fields: object) -> dict[str, Desired]:
    """The desired instances of one service with ``replicas: n``, keyed as the planner sees them."""
    base = want(name, replicas=n, **fields)
    keys = [name] + [f"{name}.{i}" for i in range(1, n)]
    return {key: replace(base, name=key, replica=i) for i, key in enumerate(keys)}


def plan(desired: dict[str, Desired], state: State, **kw: object):  # type: ignore[no-untyped-def]
    kw.setdefault("replace_strategy", lambda d: NO_GPUS)
    return make_plan(desired, state, running(state), project="demo", **kw)  # type: ignore[arg-type]


def actions(p) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {c.service: c.action for c in p.changes}


def test_the_services_file_expands_replicas_into_instance_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "version: 1\nservices:\n  chat:\n    network_arch: cosmos-rl\n"
        "    model_path: /models/a\n    replicas: 3\n",
    )
    desired = build_desired(load_services(path, REFS), REFS, {})
    assert list(desired) == ["chat", "chat.1", "chat.2"]
    assert {d.service for d in desired.values()} == {"chat"}
    assert len({d.spec_hash for d in desired.values()}) == 1


def test_replicas_with_a_fixed_host_port_is_a_located_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "version: 1\nservices:\n  chat:\n    network_arch: cosmos-rl\n    model_path: /models/a\n"
        "    host_port: 18000\n    replicas: 2\n",
    )
    from taoplan.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        load_services(path, REFS)
    assert "services.chat.replicas" in info.value.message and "host_port 18000" in info.value.message
    assert "services.yaml:7:5:" in info.value.message  # the line of replicas


def test_scale_up_adds_replicas_and_leaves_the_first_alone() -> None:
    state = recorded(want("chat"))
    p = plan(replicas("chat", 3), state)
    assert actions(p) == {"chat": NOOP, "chat.1": CREATE, "chat.2": CREATE}
    created = [c for c in p.changes if c.action == CREATE]
    assert created[0].reasons == ("scale up: replica 2 of 3 (chat.1)",)


def test_scale_down_drains_the_extra_replicas_only() -> None:
    three = replicas("chat", 3)
    state = recorded(*three.values())
    p = plan(replicas("chat", 1), state)
    assert actions(p) == {"chat": NOOP, "chat.1": DELETE, "chat.2": DELETE}
    assert {c.reasons for c in p.changes if c.action == DELETE} == {("scale down: replicas 3 → 1",)}


def test_changing_replicas_alone_changes_no_spec_hash() -> None:
    assert want("chat", replicas=1).spec_hash == want("chat", replicas=4, drain_timeout=5).spec_hash


def test_a_spec_change_rolls_every_replica_and_says_why() -> None:
    state = recorded(*replicas("chat", 2).values())
    p = plan(replicas("chat", 2, model_path="/models/b"), state)
    assert actions(p) == {"chat": REPLACE, "chat.1": REPLACE}
    for change in p.changes:
        assert change.create_before_destroy
        assert change.reasons[-1] == "rolling: no GPUs are held (gpus: none)"
        assert any(r.startswith("model_path:") for r in change.reasons)
    assert [c["rollout"] for c in p.to_json()["changes"]] == ["rolling", "rolling"]


def test_an_interrupted_rollout_is_finished_by_the_next_plan() -> None:
    old = recorded(want("chat"))
    new = want("chat", model_path="/models/b")
    state = recorded(new)
    state.lineage = old.lineage
    state.services["chat"].job_id = "job-new"
    state.retiring["job-chat"] = old.services["chat"]
    observed = running(state)
    observed["job-chat"] = replace(observed["job-new"], job_id="job-chat")
    p = make_plan({"chat": new}, state, observed, project="demo", replace_strategy=lambda d: NO_GPUS)
    (change,) = p.changes
    assert change.action == NOOP and change.retire == ("job-chat",)
    assert (
        "finish the rollout: drain and delete job-chat on local-docker once chat is ready" in change.reasons
    )
    assert p.has_changes
    assert p.to_json()["changes"][0]["retire"] == ["job-chat"]
    gone = make_plan({}, state, observed, project="demo", replace_strategy=lambda d: NO_GPUS)
    assert sorted(c.job_id or "" for c in gone.changes if c.action == DELETE) == ["job-chat", "job-new"]


def gpus(free: int, total: int) -> Capacity:
    return Capacity(places=(Place("host", total, free),))


@pytest.mark.parametrize(
    ("fields", "structural", "capacity", "routed", "rolling", "why"),
    [
        ({"num_gpus": 2}, (True, ""), gpus(2, 4), False, True, "rolling: needs 2 more GPUs during the rollout; 2 are free"),
        ({"num_gpus": 1}, (True, ""), gpus(0, 1), True, False, "recreate: only 1 GPU on this host"),
        ({"num_gpus": 1}, (True, ""), gpus(0, 4), False, False, "recreate: a rolling replace needs 1 more GPU during the rollout; 0 are free"),
        ({"rollout": "rolling"}, (True, ""), gpus(0, 1), False, True, "rolling (rollout: rolling): needs 1 more GPU during the rollout; 0 are free now"),
        ({"rollout": "recreate"}, NO_GPUS, None, True, False, "recreate: rollout: recreate (the old workload stops first)"),
        ({}, (False, "fixed host_port 18000"), None, True, False, "recreate: fixed host_port 18000"),
        ({}, NO_GPUS, None, False, True, "rolling: no GPUs are held (gpus: none)"),
        ({}, (True, ""), Capacity.not_known("no nvidia-smi"), True, True, "rolling: needs 1 more GPU during the rollout; free GPUs not known (no nvidia-smi)"),
        ({"replicas": 2}, (True, ""), None, False, True, "rolling: needs 1 more GPU during the rollout; free GPUs not known (refresh was off)"),
        ({}, (True, ""), None, False, False, "recreate: free GPUs not known (refresh was off); set rollout: rolling to start the new workload first"),
    ],
)  # fmt: skip
def test_rolling_or_recreate_is_chosen_and_worded(
    fields: dict[str, object],
    structural: tuple[bool, str],
    capacity: Capacity | None,
    routed: bool,
    rolling: bool,
    why: str,
) -> None:
    assert rollout.choose(want("chat", **fields), structural, capacity, routed=routed) == rollout.Choice(
        rolling, why
    )


def test_a_move_between_platforms_is_rolling() -> None:
    choice = rollout.choose(want("chat"), (True, ""), gpus(0, 1), routed=False, moving_from="local-docker")
    assert choice.rolling and choice.why.startswith("rolling: moving from local-docker")
