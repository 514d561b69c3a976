"""The TAO skill's service registry (/tmp/tao-inf-ms-state.json), kept compatible.

One JSON object keyed by job_id plus "latest". We read-modify-write it under an flock, touch only
the entries we own, and never follow a symlink planted at its path.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from taoplan.common import fsutil

DEFAULT_PATH = "/tmp/tao-inf-ms-state.json"


def registry_path() -> Path:
    return Path(os.environ.get("TAO_INF_MS_STATE") or DEFAULT_PATH)


class Registry:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or registry_path()
        self.lock_path = self.path.with_name(self.path.name + ".lock")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = fsutil.open_lock_file(self.lock_path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def read(self) -> dict[str, Any]:
        """The registry; a missing or unparseable file reads as {} (the skill's rule)."""
        text = fsutil.read_text(self.path)
        if not text:
            return {}
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return {}
        return data if isinstance(data, dict) else {}

    def entries(self) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.read().items() if k != "latest" and isinstance(v, dict)}

    def _write(self, data: dict[str, Any]) -> None:
        text = fsutil.read_text(self.path)
        if text:
            try:
                json.loads(text)
            except json.JSONDecodeError:
                # keep what we could not parse rather than silently dropping someone's entries
                aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
                fsutil.atomic_write(aside, text)
        fsutil.atomic_write(self.path, json.dumps(data, indent=2) + "\n")

    def add(self, entry: dict[str, Any]) -> None:
        with self._locked():
            data = self.read()
            data[entry["job_id"]] = entry
            data["latest"] = entry["job_id"]
            self._write(data)

    def remove(self, job_id: str) -> None:
        with self._locked():
            data = self.read()
            if job_id not in data:
                return
            data.pop(job_id)
            if data.get("latest") == job_id:
                rest = [v for k, v in data.items() if k != "latest" and isinstance(v, dict)]
                if rest:
                    data["latest"] = max(rest, key=lambda e: str(e.get("started_at", "")))["job_id"]
                else:
                    data.pop("latest")
            self._write(data)
