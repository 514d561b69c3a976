"""state.json: what taoplan has recorded about each service. Versioned, serial-numbered, atomic, 0600."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from taoplan import labels
from taoplan.common import fsutil
from taoplan.errors import ConfigError

FORMAT_VERSION = 1
STATE_FILE = "state.json"


class ServiceRecord(BaseModel):
    """One workload. ``name`` is its instance key: the service name for the first replica, then
    ``name.1``, ``name.2``... (a dot never occurs in a service name)."""

    model_config = ConfigDict(extra="ignore")

    name: str
    job_id: str
    platform: str
    network_arch: str
    spec: dict[str, Any]
    spec_hash: str
    artifact_hash: str | None = None
    image: str
    image_rule: str
    host_url: str | None = None
    host_port: int | None = None
    docker_url: str | None = None
    platform_job_id: str | None = None
    started_at: str | None = None
    ready_at: str | None = None
    # creating | starting | ready | failed | exited | missing
    status: str = "creating"
    readiness: str | None = None  # the last readiness reason or failure message
    protect: bool = False
    extra: dict[str, Any] = {}
    #: the last apply's phase timings, in order (engine/phases.py); [] in state written before them
    phases: list[dict[str, Any]] = []
    #: out of routing, finishing its in-flight requests before it is stopped (a retiring workload)
    draining: bool = False

    @property
    def service_name(self) -> str:
        """The service this workload serves (instance key ``chat.1`` -> ``chat``)."""
        return labels.service_of(self.name)


class State(BaseModel):
    model_config = ConfigDict(extra="ignore")

    format_version: int = FORMAT_VERSION
    serial: int = 0
    lineage: str
    project: str | None = None
    services: dict[str, ServiceRecord] = {}
    #: workloads a rollout replaced, by job_id: they serve until their successor (the record of the
    #: same instance key in ``services``) is ready, then drain and are deleted
    retiring: dict[str, ServiceRecord] = {}

    @classmethod
    def new(cls) -> State:
        return cls(lineage=str(uuid.uuid4()))

    def records(self) -> list[ServiceRecord]:
        """Every recorded workload: the current ones, then the retiring ones."""
        return [*self.services.values(), *self.retiring.values()]

    def record_of(self, job_id: str) -> ServiceRecord | None:
        """The record of a workload by job id, current or retiring."""
        found = self.retiring.get(job_id)
        if found is not None:
            return found
        return next((r for r in self.services.values() if r.job_id == job_id), None)

    def retiring_by_key(self) -> dict[str, list[ServiceRecord]]:
        """The retiring workloads by instance key, oldest first."""
        out: dict[str, list[ServiceRecord]] = {}
        for record in sorted(self.retiring.values(), key=lambda r: r.started_at or ""):
            out.setdefault(record.name, []).append(record)
        return out

    def retiring_for(self, key: str) -> list[ServiceRecord]:
        """The retiring predecessors of one instance key, oldest first."""
        return self.retiring_by_key().get(key, [])


def default_state_dir(services_file: Path, override: str | None = None) -> Path:
    chosen = override or os.environ.get("TAOPLAN_STATE_DIR")
    return Path(chosen) if chosen else services_file.resolve().parent / ".taoplan"


class StateStore:
    """Reads and writes state.json in a private state directory."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.path = directory / STATE_FILE

    def ensure_dir(self) -> Path:
        return fsutil.ensure_private_dir(self.dir)

    def load(self) -> State:
        fsutil.refuse_symlink(self.dir)
        text = fsutil.read_text(self.path)
        if text is None:
            return State.new()
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{self.path}:{exc.lineno}:{exc.colno}: state file is not valid JSON: {exc.msg}"
            ) from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{self.path}:1:1: state file is not a JSON object")
        version = raw.get("format_version")
        if version != FORMAT_VERSION:
            raise ConfigError(
                f"{self.path}: state format_version {version!r} is not supported (expected {FORMAT_VERSION})"
            )
        try:
            return State.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise ConfigError(
                f"{self.path}: state file is damaged at {'.'.join(map(str, err['loc']))}: {err['msg']}"
            ) from None

    def write(self, state: State) -> State:
        """Persist ``state`` with the next serial; returns the written state."""
        self.ensure_dir()
        state.serial += 1
        fsutil.atomic_write(self.path, state.model_dump_json(indent=2, exclude_none=False) + "\n")
        return state
