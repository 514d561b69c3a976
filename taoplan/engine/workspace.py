"""A workspace: one services file, its references, state, registry and platforms, wired once per command."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taoplan import platforms
from taoplan.engine.plan import CREATE, NOOP, REPLACE, Change, Plan, make_plan
from taoplan.errors import LockHeldError, PlatformError
from taoplan.platforms.base import Endpoint, Observation, Platform, PlatformContext
from taoplan.platforms.capacity import Capacity, capacity_of
from taoplan.spec.config import ServicesConfig, load_services
from taoplan.spec.desired import Desired, build_desired
from taoplan.spec.references import References, load_references
from taoplan.store.lock import StateLock
from taoplan.store.registry import Registry
from taoplan.store.state import ServiceRecord, State, StateStore, default_state_dir

#: How long status/request wait for the state lock to record a reopened endpoint.
ENDPOINT_LOCK_WAIT = 10.0
#: A plan warns about workloads that the platform ends sooner than this (a Slurm walltime).
EXPIRY_WARNING_SECONDS = 3600


@dataclass
class Workspace:
    file: Path
    config: ServicesConfig
    refs: References
    store: StateStore
    registry: Registry
    environ: Mapping[str, str]
    _platforms: dict[str, Platform] = field(default_factory=dict)
    #: per platform, what the last refresh with ``wanted`` read of its GPUs (engine.fit judges it)
    capacities: dict[str, Capacity] = field(default_factory=dict)

    @classmethod
    def open(cls, file: Path, state_dir: str | None = None) -> Workspace:
        refs = load_references()
        config = load_services(file, refs)
        store = StateStore(default_state_dir(file, state_dir))
        return cls(file=file, config=config, refs=refs, store=store, registry=Registry(), environ=os.environ)

    @property
    def project(self) -> str:
        return self.config.project

    def desired(self) -> dict[str, Desired]:
        return build_desired(self.config, self.refs, self.environ)

    def platform(self, name: str, lineage: str) -> Platform:
        if name not in self._platforms:
            if not platforms.is_available(name):
                raise PlatformError(f"platform {name!r} is not implemented in this version")
            cls = platforms.platform_class(name)
            config = self.config.platforms.get(name) or cls.Config()
            ctx = PlatformContext(
                project=self.project,
                lineage=lineage,
                state_dir=self.store.dir,
                refs=self.refs,
                locate=self.config.source.where,
            )
            self._platforms[name] = cls(config, ctx)
        return self._platforms[name]

    def platforms_in_use(self, state: State) -> list[str]:
        names = {spec.platform for spec in self.config.services.values()}
        names |= {record.platform for record in state.records()}
        return sorted(n for n in names if platforms.is_available(n))

    def refresh(
        self, state: State, wanted: Mapping[str, tuple[int, ...]] | None = None
    ) -> dict[str, Observation]:
        """Observe every platform in use, concurrently. Raises PlatformError if one is unreachable.

        With ``wanted`` (platform -> the GPU counts the file asks of it), each of those platforms also
        reports its GPU capacity, in the same pass, into ``self.capacities``."""
        names = self.platforms_in_use(state)
        if not names:
            return {}
        platforms_ = [self.platform(name, state.lineage) for name in names]
        for platform in platforms_:
            platform.warm()  # imports are not safe to race from threads

        def read(name: str, platform: Platform) -> dict[str, Observation]:
            found = platform.observe()
            if wanted is not None and name in wanted:
                try:
                    self.capacities[name] = capacity_of(platform, wanted[name])
                except PlatformError as exc:  # capacity is advice: it never stops a plan
                    self.capacities[name] = Capacity.not_known(f"capacity not read: {exc.message}")
            return found

        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            results = list(pool.map(read, names, platforms_))
        observed: dict[str, Observation] = {}
        for name, result in zip(names, results, strict=True):
            observed.update({job: dataclasses.replace(obs, platform=name) for job, obs in result.items()})
        return observed

    def plan(
        self,
        state: State,
        *,
        refresh: bool = True,
        targets: tuple[str, ...] = (),
        force_replace: tuple[str, ...] = (),
    ) -> tuple[Plan, dict[str, Desired]]:
        desired = self.desired()
        wanted: dict[str, set[int]] = {}
        for want in desired.values():
            wanted.setdefault(want.platform, set()).add(want.spec.num_gpus)
        sizes = {name: tuple(sorted(counts)) for name, counts in wanted.items()}
        observed = self.refresh(state, sizes) if refresh else None

        def strategy(want: Desired) -> tuple[bool, str]:
            return self.platform(want.platform, state.lineage).replace_strategy(
                want.spec.num_gpus, want.spec.host_port
            )

        plan = make_plan(
            desired,
            state,
            observed,
            project=self.project,
            replace_strategy=strategy,
            targets=targets,
            force_replace=force_replace,
            capacities=self.capacities if refresh else None,
            routed=self.config.gateway_declared,
        )
        return self._annotate(plan, desired, state, observed), desired

    def _annotate(
        self,
        plan: Plan,
        desired: Mapping[str, Desired],
        state: State,
        observed: Mapping[str, Observation] | None,
    ) -> Plan:
        """Add what platforms know to the plan: how they will run what is created, endpoints that
        are down (apply reopens them) and workloads that end soon."""
        changes: list[Change] = []
        warnings = list(plan.warnings)
        for change in plan.changes:
            want = desired.get(change.service)
            if change.action in (CREATE, REPLACE) and want is not None:
                notes = self.platform(change.platform, state.lineage).describe(want.spec)
                change = dataclasses.replace(change, reasons=(*change.reasons, *notes))
            record = state.services.get(change.service)
            obs = observed.get(change.job_id or "") if observed is not None else None
            if change.action == NOOP and not change.await_ready and record is not None and obs is not None:
                found = self.platform(change.platform, state.lineage).endpoint(record, reopen=False)
                if found.url is None:
                    change = dataclasses.replace(
                        change,
                        await_ready=True,
                        reasons=(*change.reasons, f"endpoint down ({found.detail}): apply reopens it"),
                    )
            if obs is not None and obs.expires_in is not None and obs.expires_in < EXPIRY_WARNING_SECONDS:
                warnings.append(
                    f"service {change.service!r}: workload {obs.job_id} ends in {format_duration(obs.expires_in)} "
                    "(the platform's time limit); apply does not extend it"
                )
            changes.append(change)
        return dataclasses.replace(plan, changes=tuple(changes), warnings=tuple(warnings))

    # ----------------------------------------------------------------------------- endpoints

    def endpoint(self, state: State, record: ServiceRecord) -> Endpoint:
        """The platform's endpoint for commands that do not hold the state lock (status, request).

        It first only looks; if the endpoint is down (a dead tunnel), it takes the state lock, asks
        the platform to reopen it and saves what that changed in state and in the registry.
        """
        platform = self.platform(record.platform, state.lineage)
        found = platform.endpoint(record, reopen=False)
        if found.url is not None:
            return found
        try:
            with StateLock(self.store.dir, ENDPOINT_LOCK_WAIT, f"reopen the endpoint of {record.name}"):
                current = self.store.load()
                fresh = current.record_of(record.job_id)
                if fresh is None:
                    return found
                found = platform.endpoint(fresh)
                if found.updates:
                    found.apply_to(fresh)
                    self.store.write(current)
                    if fresh.host_url:
                        self.registry.add(self.registry_entry(fresh))
                    found.apply_to(record)
                return found
        except LockHeldError as exc:
            return Endpoint(None, f"{found.detail}; not reopened: {exc.message}")

    def registry_entry(self, record: ServiceRecord) -> dict[str, Any]:
        """The TAO skill's registry entry for a running service."""
        entry: dict[str, Any] = {
            "job_id": record.job_id,
            "platform": record.platform,
            "network_arch": record.network_arch,
            "host_url": record.host_url,
            "started_at": record.started_at,
            "managed_by": "taoplan",
            "project": self.project,
            "service": record.name,
        }
        for key in ("docker_url", "host_port", "platform_job_id"):
            value = getattr(record, key)
            if value is not None:
                entry[key] = value
        if "slurm_node" in record.extra:  # the skill's registry field for Slurm
            entry["slurm_node"] = record.extra["slurm_node"]
        for key in ("brev_instance", "instance_id", "brev_port"):  # brev: which VM, and the port there
            if record.extra.get(key) is not None:
                entry[key] = record.extra[key]
        return entry


def format_duration(seconds: float) -> str:
    """3h05m, 42m, 30s."""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m" if minutes else f"{seconds}s"
