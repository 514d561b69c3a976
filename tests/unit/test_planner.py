"""The planner is a pure function: desired x recorded x observed -> create / replace / delete / no-op."""

from __future__ import annotations

from typing import Any

import pytest

from taoplan.common.hashing import canonical, spec_hash
from taoplan.engine.plan import CREATE, DELETE, NOOP, REPLACE, Plan, make_plan
from taoplan.errors import ConfigError
from taoplan.platforms.base import Observation
from taoplan.spec.config import ServiceSpec
from taoplan.spec.desired import Desired
from taoplan.spec.references import load_references
from taoplan.store.state import ServiceRecord, State

REFS = load_references()
PLATFORM = {"gpus": "none"}


def want(name: str, **fields: Any) -> Desired:
    data = {"network_arch": "cosmos-rl", "model_path": f"hf_model://nvidia/{name}", **fields}
    spec = ServiceSpec.model_validate(data, context={"refs": REFS})
    spec_dict = spec.model_dump(mode="json")
    image = "nvcr.io/x/y:1"
    return Desired(
        name,
        spec,
        spec_dict,
        spec_hash(spec_dict, image, canonical(PLATFORM)),
        image,
        "service.image",
        PLATFORM,
    )


def test_the_spec_hash_of_a_given_spec_never_changes() -> None:
    """State written by an older taoplan records these hashes: a new formula would replace everything."""
    spec = {
        "network_arch": "cosmos-rl",
        "model_path": "hf_model://nvidia/Cosmos-Reason2-8B",
        "num_gpus": 1,
        "env": {"Ä": 'ü "q"'},
        "secrets": ["HF_TOKEN"],
        "protect": True,
        "readiness": {"timeout": 900},
    }
    platform = canonical({"shm_size": "8g", "gpus": "none"})
    assert spec_hash(spec, "nvcr.io/x/y:1", platform) == "ff169bf93cd298ad"
    assert (
        spec_hash({**spec, "protect": False, "readiness": {}}, "nvcr.io/x/y:1", platform)
        == "ff169bf93cd298ad"
    )


def recorded(*wants: Desired, status: str = "ready", **overrides: Any) -> State:
    state = State.new()
    for i, w in enumerate(wants):
        state.services[w.name] = ServiceRecord(
            name=w.name,
            job_id=f"job-{w.name}",
            platform="local-docker",
            network_arch=w.spec.network_arch,
            spec=w.spec_dict,
            spec_hash=w.spec_hash,
            image=w.image,
            image_rule=w.image_rule,
            host_port=8080 + i,
            status=status,
            protect=w.spec.protect,
            extra={"platform_config": PLATFORM},
            **overrides,
        )
    return state


def running(state: State, **overrides: Any) -> dict[str, Observation]:
    return {
        r.job_id: Observation(
            **{
                "job_id": r.job_id,
                "service": r.name,
                "status": "running",
                "spec_hash": r.spec_hash,
                "lineage": state.lineage,
                **overrides,
            }
        )
        for r in state.services.values()
    }


def plan(desired: list[Desired], state: State, observed: dict[str, Observation] | None, **kw: Any) -> Plan:
    return make_plan(
        {d.name: d for d in desired},
        state,
        observed,
        project="demo",
        replace_strategy=lambda d: (True, ""),
        **kw,
    )


def actions(p: Plan) -> dict[str, str]:
    return {c.service: c.action for c in p.changes}


def test_empty_state_creates_every_service() -> None:
    p = plan([want("a"), want("b"), want("c")], State.new(), {})
    assert actions(p) == {"a": CREATE, "b": CREATE, "c": CREATE}
    assert p.summary() == {"create": 3, "replace": 0, "delete": 0, "noop": 0}
    assert p.has_changes


def test_second_plan_after_apply_is_empty() -> None:
    ws = [want("a"), want("b")]
    state = recorded(*ws)
    p = plan(ws, state, running(state))
    assert actions(p) == {"a": NOOP, "b": NOOP}
    assert not p.has_changes


def test_model_path_change_is_one_replace_with_the_field_as_reason() -> None:
    a, b = want("a"), want("b")
    state = recorded(a, b)
    changed = want("b", model_path="hf_model://nvidia/other")
    p = plan([a, changed], state, running(state))
    assert actions(p) == {"a": NOOP, "b": REPLACE}
    reasons = p.changes[1].reasons
    assert 'model_path: "hf_model://nvidia/b" → "hf_model://nvidia/other"' in reasons


def test_env_addition_is_named_in_the_reason() -> None:
    a = want("a")
    state = recorded(a)
    p = plan([want("a", env={"TAO_LOG_LEVEL": "DEBUG"})], state, running(state))
    assert p.changes[0].action == REPLACE
    assert any(r.startswith('env.TAO_LOG_LEVEL: added "DEBUG"') for r in p.changes[0].reasons)


def test_removed_container_is_recreated() -> None:
    a = want("a")
    state = recorded(a)
    p = plan([a], state, {})
    assert p.changes[0].action == CREATE
    assert "gone" in p.changes[0].reasons[0]


def test_exited_container_is_replaced_with_its_exit_code() -> None:
    a = want("a")
    state = recorded(a)
    p = plan([a], state, running(state, status="exited", exit_code=137))
    assert p.changes[0].action == REPLACE
    assert "exited with code 137" in p.changes[0].reasons[0]


def test_running_container_with_other_spec_hash_is_drift() -> None:
    a = want("a")
    state = recorded(a)
    p = plan([a], state, running(state, spec_hash="deadbeef"))
    assert p.changes[0].action == REPLACE
    assert "spec hash deadbeef" in p.changes[0].reasons[0]


def test_failed_service_is_replaced() -> None:
    a = want("a")
    state = recorded(a, status="failed", readiness="model_load_failed: boom")
    p = plan([a], state, running(state))
    assert p.changes[0].action == REPLACE
    assert "model_load_failed: boom" in p.changes[0].reasons[0]


def test_service_removed_from_file_is_deleted() -> None:
    a, b = want("a"), want("b")
    state = recorded(a, b)
    p = plan([a], state, running(state))
    assert actions(p) == {"a": NOOP, "b": DELETE}
    assert p.changes[1].reasons == ("not in the services file",)


def test_orphan_of_this_state_is_deleted_and_foreign_one_left_alone() -> None:
    a = want("a")
    state = recorded(a)
    observed = running(state)
    observed["stray"] = Observation("stray", "a", "running", lineage=state.lineage)
    observed["foreign"] = Observation("foreign", "a", "running", lineage="someone-else")
    p = plan([a], state, observed)
    orphans = [c for c in p.changes if c.orphan]
    assert [(c.job_id, c.action) for c in orphans] == [("stray", DELETE)]
    assert any("foreign" in w for w in p.warnings)


def test_protect_blocks_replace_and_delete() -> None:
    a = want("a", protect=True)
    state = recorded(a)
    with pytest.raises(ConfigError, match="protected"):
        plan([want("a", protect=True, model_path="hf_model://x/y")], state, running(state))
    with pytest.raises(ConfigError, match="protected"):
        plan([], state, running(state))


def test_protect_change_alone_is_state_only() -> None:
    a = want("a")
    state = recorded(a)
    p = plan([want("a", protect=True)], state, running(state))
    assert p.changes[0].action == NOOP
    assert p.changes[0].state_only == ("protect",)
    assert p.has_changes


def test_target_limits_the_plan() -> None:
    p = plan([want("a"), want("b")], State.new(), {}, targets=["b"])
    assert actions(p) == {"b": CREATE}


def test_force_replace() -> None:
    a = want("a")
    state = recorded(a)
    p = plan([a], state, running(state), force_replace=["a"])
    assert p.changes[0].action == REPLACE
    assert p.changes[0].reasons[0] == "forced by --replace"


def test_unknown_target_is_an_error() -> None:
    with pytest.raises(ConfigError, match="no service named 'zzz'"):
        plan([want("a")], State.new(), {}, targets=["zzz"])


def test_plan_says_when_it_must_destroy_first() -> None:
    a = want("a")
    state = recorded(a)
    p = make_plan(
        {"a": want("a", num_gpus=2)},
        state,
        running(state),
        project="demo",
        replace_strategy=lambda d: (False, "the GPUs (2) cannot be held twice"),
    )
    assert p.changes[0].reasons[-1] == "recreate: the GPUs (2) cannot be held twice"
    assert not p.changes[0].create_before_destroy


def test_refresh_off_trusts_state() -> None:
    a = want("a")
    state = recorded(a)
    p = plan([a], state, None)
    assert actions(p) == {"a": NOOP}
    assert not p.refreshed


def test_json_view_has_the_documented_shape() -> None:
    p = plan([want("a")], State.new(), {})
    assert p.to_json() == {
        "format_version": "1",
        "changes": [
            {"service": "a", "action": "create", "reasons": ["new service: cosmos-rl on local-docker"]}
        ],
        "summary": {"create": 1, "replace": 0, "delete": 0, "noop": 0},
    }


def test_saved_plan_round_trips() -> None:
    a = want("a")
    state = recorded(a)
    p = plan([want("a", num_gpus=3)], state, running(state))
    assert Plan.from_saved(p.to_saved()) == p
