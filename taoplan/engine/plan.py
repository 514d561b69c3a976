"""The plan as data, and the planner: a pure function of desired x recorded x observed.

Nothing here touches the network. The human printer and --json are two views of ``Plan``;
a saved plan is this object serialized with the state serial it was made against.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from taoplan.common.hashing import NOT_IN_SPEC_HASH
from taoplan.engine import fit, rollout
from taoplan.errors import ConfigError
from taoplan.labels import service_of
from taoplan.platforms.base import Observation
from taoplan.platforms.capacity import Capacity
from taoplan.spec.desired import Desired
from taoplan.store.state import ServiceRecord, State

CREATE, REPLACE, DELETE, NOOP = "create", "replace", "delete", "noop"
ACTIONS = (CREATE, REPLACE, DELETE, NOOP)
PLAN_FORMAT = "1"


@dataclass(frozen=True)
class Change:
    service: str
    action: str
    reasons: tuple[str, ...]
    platform: str
    job_id: str | None = None  # the existing workload this change acts on (replace/delete/noop)
    orphan: bool = False  # a workload that carries our labels but is not in state
    create_before_destroy: bool = False  # a replace that is rolling (engine.rollout); else recreate
    await_ready: bool = False  # noop, but apply still waits for readiness
    state_only: tuple[str, ...] = ()  # fields that change state but not what runs (protect, readiness)
    fit: str = ""  # creates and replaces: fits | queues | cannot fit | unknown (engine.fit)
    fit_detail: str = ""
    #: retiring workloads of this instance (an earlier rollout's) that drain and go once it is ready
    retire: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"service": self.service, "action": self.action, "reasons": list(self.reasons)}
        if self.action == REPLACE:
            out["rollout"] = "rolling" if self.create_before_destroy else "recreate"
        if self.retire:
            out["retire"] = list(self.retire)
        if self.fit:
            out["fit"] = {"verdict": self.fit, "detail": self.fit_detail}
        return out


@dataclass(frozen=True)
class Plan:
    project: str
    lineage: str
    state_serial: int
    changes: tuple[Change, ...]
    warnings: tuple[str, ...] = ()
    refreshed: bool = True

    def summary(self) -> dict[str, int]:
        counts = dict.fromkeys(ACTIONS, 0)
        for change in self.changes:
            counts[change.action] += 1
        return counts

    @property
    def has_changes(self) -> bool:
        return any(c.action != NOOP or c.state_only or c.await_ready or c.retire for c in self.changes)

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": PLAN_FORMAT,
            "changes": [c.to_json() for c in self.changes],
            "summary": self.summary(),
        }

    def to_saved(self) -> dict[str, Any]:
        return {
            "format_version": PLAN_FORMAT,
            "kind": "taoplan-plan",
            "project": self.project,
            "lineage": self.lineage,
            "state_serial": self.state_serial,
            "refreshed": self.refreshed,
            "warnings": list(self.warnings),
            "changes": [asdict(c) for c in self.changes],
        }

    @classmethod
    def from_saved(cls, data: dict[str, Any]) -> Plan:
        changes = tuple(
            Change(
                **{
                    **c,
                    "reasons": tuple(c["reasons"]),
                    "state_only": tuple(c.get("state_only", ())),
                    "retire": tuple(c.get("retire", ())),
                }
            )
            for c in data["changes"]
        )
        return cls(
            project=data["project"],
            lineage=data["lineage"],
            state_serial=data["state_serial"],
            changes=changes,
            warnings=tuple(data.get("warnings", ())),
            refreshed=data.get("refreshed", True),
        )


class ProtectedError(ConfigError):
    """A plan would delete or replace a service marked protect: true."""


ReplaceStrategy = Callable[[Desired], tuple[bool, str]]


@dataclass
class _Builder:
    changes: list[Change] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    protected: list[str] = field(default_factory=list)
    capacities: Mapping[str, Capacity] | None = None
    routed: bool = False


def make_plan(
    desired: Mapping[str, Desired],
    recorded: State,
    observed: Mapping[str, Observation] | None,
    *,
    project: str,
    replace_strategy: ReplaceStrategy,
    targets: Collection[str] = (),
    force_replace: Collection[str] = (),
    delete_reason: str = "not in the services file",
    capacities: Mapping[str, Capacity] | None = None,
    routed: bool = False,
) -> Plan:
    """Decide what apply must do. ``observed is None`` means refresh was off: trust state.

    Keys are instance keys (``labels.instance_key``); ``targets`` and ``force_replace`` may
    name a service (all its replicas) or one instance. ``capacities`` (per platform, read during
    refresh) puts a fit verdict on every create and replace and decides rolling or recreate
    (engine.rollout); without them, and with refresh off, the verdict is "unknown". ``routed``: the
    services file declares a gateway."""
    if targets or force_replace:
        keys = {*desired, *recorded.services, *(r.name for r in recorded.retiring.values())}
        known = keys | {service_of(k) for k in keys}
        for name in [*targets, *force_replace]:
            if name not in known:
                raise ConfigError(f"no service named {name!r} in the services file or in state")

    def named(key: str, names: Collection[str]) -> bool:
        return key in names or service_of(key) in names

    in_scope = (lambda key: named(key, targets)) if targets else (lambda key: True)
    out = _Builder(capacities=capacities, routed=routed)
    recorded_jobs = {r.job_id for r in recorded.records()}
    retiring = recorded.retiring_by_key()

    for name, want in desired.items():
        if in_scope(name):
            olds = retiring.get(name, [])
            change = _decide(
                want,
                recorded.services.get(name),
                observed,
                named(name, force_replace),
                replace_strategy,
                out,
                bool(olds),
            )
            out.changes.append(_with_retiring(change, olds, observed))

    leaving = [(n, r) for n, r in recorded.services.items() if n not in desired and in_scope(n)]
    if leaving:  # a scale down says so: the service stays, with fewer replicas
        wanted = {want.service: want.spec.replicas for want in desired.values()}
        had = Counter(r.service_name for r in recorded.services.values())
    for name, record in leaving:
        why = delete_reason
        if record.service_name in wanted:
            why = f"scale down: replicas {had[record.service_name]} → {wanted[record.service_name]}"
        elif record.protect:
            out.protected.append(
                f"service {name!r} is protected (protect: true) and would be deleted: {delete_reason}"
            )
        out.changes.append(Change(name, DELETE, (why,), record.platform, job_id=record.job_id))

    for job_id, record in recorded.retiring.items():
        if record.name not in desired and in_scope(record.name):
            out.changes.append(
                Change(
                    record.name,
                    DELETE,
                    (f"finish the rollout: retiring workload {job_id[:8]} ({delete_reason})",),
                    record.platform,
                    job_id=job_id,
                )
            )

    for job_id, obs in (observed or {}).items():
        if job_id in recorded_jobs or not in_scope(obs.service):
            continue
        if obs.lineage != recorded.lineage:
            out.warnings.append(
                f"workload {job_id} (service {obs.service!r}) carries project {project!r} but belongs to "
                f"another state (lineage {obs.lineage}); left alone"
            )
            continue
        platform = obs.platform or _platform_of(recorded, desired, obs)
        out.changes.append(
            Change(
                obs.service,
                DELETE,
                (
                    f"orphan: workload {job_id} is not in state (left by an interrupted apply?); status {obs.status}",
                ),
                platform,
                job_id=job_id,
                orphan=True,
            )
        )

    if out.protected:
        raise ProtectedError(out.protected[0], lines=out.protected)
    if capacities is not None or observed is None:
        _judge_fit(out, desired, recorded, capacities)
    return Plan(
        project=project,
        lineage=recorded.lineage,
        state_serial=recorded.serial,
        changes=tuple(out.changes),
        warnings=tuple(out.warnings),
        refreshed=observed is not None,
    )


def _judge_fit(
    out: _Builder,
    desired: Mapping[str, Desired],
    recorded: State,
    capacities: Mapping[str, Capacity] | None,
) -> None:
    """A fit verdict on every create and replace (engine.fit), from the capacities refresh read."""
    asks = [
        fit.Ask(
            c.service,
            c.platform,
            desired[c.service].spec.num_gpus,
            frees=c.job_id if c.action == REPLACE and not c.create_before_destroy else None,
        )
        for c in out.changes
        if c.action in (CREATE, REPLACE) and c.service in desired
    ]
    if not asks:
        return
    if capacities is None:
        why = Capacity.not_known("refresh was off: capacity not read")
        capacities = {a.platform: why for a in asks}
    stopped = [c.job_id for c in out.changes if c.action == DELETE and c.job_id]
    verdicts, warnings = fit.decide(asks, capacities, recorded, stopped)
    out.warnings.extend(warnings)
    out.changes = [
        replace(c, fit=verdicts[c.service].verdict, fit_detail=verdicts[c.service].detail)
        if c.action in (CREATE, REPLACE) and c.service in verdicts
        else c
        for c in out.changes
    ]


def _with_retiring(
    change: Change, retiring: list[ServiceRecord], observed: Mapping[str, Observation] | None
) -> Change:
    """An instance with retiring predecessors (an interrupted rollout) retires them once it is ready."""
    olds = [r for r in retiring if r.job_id != change.job_id]
    if not olds:
        return change
    lines = []
    for old in olds:
        obs = observed.get(old.job_id) if observed is not None else None
        gone = " (already gone)" if obs is not None and obs.status == "missing" else ""
        lines.append(
            f"finish the rollout: drain and delete {old.job_id[:8]} on {old.platform}{gone} once "
            f"{change.service} is ready"
        )
    return replace(change, reasons=(*change.reasons, *lines), retire=tuple(r.job_id for r in olds))


def _platform_of(recorded: State, desired: Mapping[str, Desired], obs: Observation) -> str:
    """Where an orphan runs when the observation does not say (observations built by hand)."""
    if obs.service in desired:
        return desired[obs.service].platform
    record = recorded.services.get(obs.service)
    return record.platform if record else "local-docker"


def _decide(
    want: Desired,
    record: ServiceRecord | None,
    observed: Mapping[str, Observation] | None,
    forced: bool,
    replace_strategy: ReplaceStrategy,
    out: _Builder,
    recorded_retiring: bool = False,
) -> Change:
    if record is None:
        if want.replica > 0:
            why = f"scale up: replica {want.replica + 1} of {want.spec.replicas} ({want.name})"
            return Change(want.name, CREATE, (why,), want.platform)
        return Change(want.name, CREATE, (f"new service: {_what(want)} on {want.platform}",), want.platform)

    obs = observed.get(record.job_id) if observed is not None else _from_record(record)
    diff = (
        spec_reasons(_recorded_comparable(record), want.comparable())
        if record.spec_hash != want.spec_hash
        else []
    )
    if record.platform != want.platform:
        diff = [
            f"platform: {record.platform!r} → {want.platform!r}",
            *[d for d in diff if not d.startswith("platform:")],
        ]

    def replace(*reasons: str) -> Change:
        if want.spec.protect:
            out.protected.append(
                f"service {want.name!r} is protected (protect: true) and would be replaced: {'; '.join(reasons)}"
            )
        choice = rollout.choose(  # only for a replace: a no-op plan of many services skips it
            want,
            replace_strategy(want),
            out.capacities.get(want.platform) if out.capacities is not None else None,
            routed=out.routed,
            moving_from=record.platform if record.platform != want.platform else None,
        )
        return Change(
            want.name,
            REPLACE,
            (*reasons, choice.why),
            want.platform,
            job_id=record.job_id,
            create_before_destroy=choice.rolling,
        )

    if obs is None or obs.status == "missing":
        if record.status in ("failed", "exited") and recorded_retiring:
            gone = (
                f"the last rollout failed ({record.readiness or record.status}) and removed {record.job_id[:8]}; "
                "the old workload keeps serving until a new one is ready"
            )
        elif record.status == "creating":
            gone = f"the previous apply was interrupted before {record.job_id} started"
        else:
            gone = f"workload {record.job_id} is gone (removed outside taoplan)"
        return Change(want.name, CREATE, (gone, *diff), want.platform, job_id=record.job_id)
    if record.status == "creating":
        return replace(f"the previous apply was interrupted while starting {record.job_id}", *diff)
    if obs.status == "failed":
        return replace(f"workload {record.job_id} failed: {obs.detail}", *diff)
    if obs.status == "exited":
        code = f" with code {obs.exit_code}" if obs.exit_code is not None else ""
        return replace(f"workload {record.job_id} exited{code}", *diff)
    if obs.spec_hash and obs.spec_hash != record.spec_hash:
        return replace(
            f"running workload has spec hash {obs.spec_hash}, state recorded {record.spec_hash}", *diff
        )
    if forced:
        return replace("forced by --replace", *diff)
    if diff:
        return replace(*diff)
    if record.status == "failed":
        return replace(f"last apply failed: {record.readiness or 'not ready'}")

    state_only = _state_only_changes(record, want)
    ready = record.status == "ready" and (obs.status in ("running", "ready"))
    reasons = tuple(state_only) + (() if ready else (f"waiting for readiness ({obs.detail or obs.status})",))
    return Change(
        want.name,
        NOOP,
        reasons,
        want.platform,
        job_id=record.job_id,
        await_ready=not ready,
        state_only=tuple(s.split(":", 1)[0] for s in state_only),
    )


def _from_record(record: ServiceRecord) -> Observation:
    status = {"creating": "missing", "exited": "exited", "missing": "missing"}.get(record.status, "running")
    return Observation(job_id=record.job_id, service=record.name, status=status, spec_hash=record.spec_hash)


def _recorded_comparable(record: ServiceRecord) -> dict[str, Any]:
    return {
        **record.spec,
        "image": record.image,
        "platform_settings": record.extra.get("platform_config", {}),
    }


def _state_only_changes(record: ServiceRecord, want: Desired) -> list[str]:
    out = []
    if record.protect != want.spec.protect:
        out.append(f"protect: {record.protect} → {want.spec.protect} (state only)")
    old_timeout = record.spec.get("readiness", {}).get("timeout")
    if old_timeout != want.spec.readiness.timeout:
        out.append(f"readiness.timeout: {old_timeout} → {want.spec.readiness.timeout} (state only)")
    for name in ("rollout", "drain_timeout"):
        old, new = record.spec.get(name), want.spec_dict.get(name)
        if name in record.spec and old != new:
            out.append(f"{name}: {old} → {new} (state only)")
    return out


def spec_reasons(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Human reasons for a replace, one per changed field, e.g. model_path: "a" → "b"."""
    from deepdiff import DeepDiff  # only when a spec changed: deepdiff is slow to import

    ignore = {f"root['{name}']" for name in NOT_IN_SPEC_HASH}
    diff = DeepDiff(old, new, verbose_level=2, exclude_paths=ignore)
    reasons: list[str] = []
    for path, change in diff.get("values_changed", {}).items():
        reasons.append(f"{_path(path)}: {_show(change['old_value'])} → {_show(change['new_value'])}")
    for path, change in diff.get("type_changes", {}).items():
        reasons.append(f"{_path(path)}: {_show(change['old_value'])} → {_show(change['new_value'])}")
    for path, value in diff.get("dictionary_item_added", {}).items():
        reasons.append(f"{_path(path)}: added {_show(value)}")
    for path, value in diff.get("dictionary_item_removed", {}).items():
        reasons.append(f"{_path(path)}: removed (was {_show(value)})")
    for kind in ("iterable_item_added", "iterable_item_removed"):
        for path, value in diff.get(kind, {}).items():
            verb = "added" if kind.endswith("added") else "removed"
            reasons.append(f"{_path(path).rsplit('.', 1)[0]}: {verb} {_show(value)}")
    return sorted(set(reasons)) or ["spec changed"]


def _path(deepdiff_path: str) -> str:
    parts = deepdiff_path.removeprefix("root").replace("']['", ".").replace("'][", ".").replace("][", ".")
    return parts.strip("[]'").replace("['", "").replace("']", "")


def _show(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    return repr(value) if not isinstance(value, (dict, list)) else str(value)


def _what(want: Desired) -> str:
    """The arch, or a server's type and the command it will run."""
    if want.spec.server is None:
        return str(want.spec.network_arch)
    import shlex

    from taoplan.spec import servers
    from taoplan.spec.references import load_references

    return f"server {want.spec.server.type}: {shlex.join(servers.argv(want.spec, load_references()))}"
