"""A workspace: one services file, its references, state, registry and platforms, wired once per command."""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taoplan import platforms
from taoplan.config import ServicesConfig, load_services
from taoplan.desired import Desired, build_desired
from taoplan.errors import PlatformError
from taoplan.plan import Plan, make_plan
from taoplan.platforms.base import Observation, Platform, PlatformContext
from taoplan.references import References, load_references
from taoplan.registry import Registry
from taoplan.state import State, StateStore, default_state_dir


@dataclass
class Workspace:
    file: Path
    config: ServicesConfig
    refs: References
    store: StateStore
    registry: Registry
    environ: Mapping[str, str]
    _platforms: dict[str, Platform] = field(default_factory=dict)

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
                project=self.project, lineage=lineage, state_dir=self.store.dir, refs=self.refs
            )
            self._platforms[name] = cls(config, ctx)
        return self._platforms[name]

    def platforms_in_use(self, state: State) -> list[str]:
        names = {spec.platform for spec in self.config.services.values()}
        names |= {record.platform for record in state.services.values()}
        return sorted(n for n in names if platforms.is_available(n))

    def refresh(self, state: State) -> dict[str, Observation]:
        """Observe every platform in use, concurrently. Raises PlatformError if one is unreachable."""
        names = self.platforms_in_use(state)
        if not names:
            return {}
        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            results = list(pool.map(lambda n: self.platform(n, state.lineage).observe(), names))
        observed: dict[str, Observation] = {}
        for result in results:
            observed.update(result)
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
        observed = self.refresh(state) if refresh else None

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
        )
        return plan, desired

    def describe(self) -> dict[str, Any]:
        return {"file": str(self.file), "project": self.project, "state_dir": str(self.store.dir)}
