"""The Brev instance a platform block names: found in `brev ls`, created, started or refused, and
waited for until its shell is READY and an exec answers (a fresh instance reports RUNNING before its
sshd is up)."""

from __future__ import annotations

import re
import threading
import time

from taoplan.errors import PlatformError
from taoplan.platforms.brev import vm as vm_mod
from taoplan.platforms.brev.cli import BrevCLI, Instance
from taoplan.spec.platform_settings import BrevConfig

POLL = 2.0  # seconds between `brev ls` while waiting for a state
FIRST_EXEC = 600.0  # the first exec on a fresh instance may take this long (the skill's figure)
GONE = ("STOPPED", "STOPPING")  # every container on it has stopped
BROKEN = ("DELETING", "FAILURE")  # a clear error, whatever the plan wants
WAITING = ("STARTING", "DEPLOYING")


def instance_name(config: BrevConfig, project: str) -> str:
    """The configured instance, or the one taoplan creates for this project."""
    if config.instance:
        return config.instance
    return re.sub(r"[^a-zA-Z0-9._-]", "-", f"taoplan-{project}")[:63]


def seen(listed: list[Instance]) -> str:
    return ", ".join(i.display for i in listed) or "no instances"


class Lifecycle:
    """Bring the instance to RUNNING + shell READY, as the settings allow; once per run."""

    def __init__(self, cli: BrevCLI, config: BrevConfig, name: str) -> None:
        self.cli = cli
        self.config = config
        self.name = name
        self._lock = threading.Lock()
        self._ready: Instance | None = None
        self.started = False  # this run started a STOPPED instance: what ran on it before is gone

    def lookup(self) -> Instance | None:
        """The instance as `brev ls` shows it now; DELETING/FAILURE are errors."""
        found, _ = self.cli.find(self.name)
        if found is not None and found.status in BROKEN:
            raise PlatformError(
                f"brev: instance {self.name} is {found.status}: nothing can run on it "
                "(wait until brev ls no longer lists it, or name another instance)"
            )
        return found

    def ensure(self) -> Instance:
        with self._lock:
            if self._ready is None:
                self._ready = self._ensure()
            return self._ready

    def _ensure(self) -> Instance:
        found, listed = self.cli.find(self.name)
        fresh = False
        if found is None:
            if self.config.create is None:
                raise PlatformError(f"brev: instance {self.name!r} not found; brev ls shows: {seen(listed)}")
            self.cli.create(self.name, self.config.create.type, self.config.create.timeout)
            fresh = True
        elif found.status in BROKEN:
            raise PlatformError(
                f"brev: instance {self.name} is {found.status}; brev ls shows: {seen(listed)}"
            )
        elif found.status == "STOPPING":
            raise PlatformError(f"brev: instance {self.name} is STOPPING; start it again once it is STOPPED")
        elif found.status == "STOPPED":
            if not self.config.start_stopped:
                raise PlatformError(
                    f"brev: instance {self.name} is STOPPED: start it (brev start {self.name}) "
                    "or set start_stopped: true"
                )
            self.cli.start(self.name)
            fresh = self.started = True
        elif found.status in WAITING:
            fresh = True
        ready = self._wait_ready(found if not fresh else None)
        if fresh or not vm_mod.has_alias(self.name):
            self.cli.refresh()  # writes Host <name> into ~/.brev/ssh_config
        if fresh:
            self._probe_exec()
        return ready

    def _wait_ready(self, current: Instance | None) -> Instance:
        """Poll `brev ls` until the shell is READY (create -d returns at once; start returns early)."""
        timeout = float(self.config.create.timeout if self.config.create else 900)
        deadline = time.monotonic() + timeout
        last = current
        while last is None or not last.ready:
            if time.monotonic() > deadline:
                shown = last.display if last else "not listed"
                raise PlatformError(f"brev: instance {self.name} not READY after {timeout:g}s ({shown})")
            if last is not None:
                time.sleep(POLL)
            last, _ = self.cli.find(self.name)
            if last is None:
                if self.config.create is None:
                    raise PlatformError(f"brev: instance {self.name} disappeared while starting")
                time.sleep(POLL)  # a create not listed yet
            elif last.status in BROKEN:
                raise PlatformError(f"brev: instance {self.name} became {last.status} while starting")
        return last

    def _probe_exec(self) -> None:
        """`brev exec NAME "echo ..."` until it answers: a RUNNING instance's sshd may not be up yet."""
        deadline = time.monotonic() + FIRST_EXEC
        while True:
            result = self.cli.exec_probe(self.name, timeout=FIRST_EXEC)
            if result.code == 0:
                return
            if time.monotonic() > deadline:
                raise PlatformError(f"brev: instance {self.name} does not answer exec: {result.message()}")
            time.sleep(5)
