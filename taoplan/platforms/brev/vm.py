"""The VM's Docker engine, reached with the docker CLI on the VM over ssh through brev's own ssh config
(`ssh -F ~/.brev/ssh_config <instance> ...`, one multiplexed connection per instance).

Not through `brev exec`: it reads stdin as instance names (so no secret or script can travel on it),
replays a failed command, reports 1 for every failure and appends the instance name to the output.
Over ssh the exit status is the remote one and data (secret values, the start script, NGC_KEY) goes
on stdin. Every command is still safe to run twice: containers are named by job_id and start.sh does
nothing when that container exists.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from taoplan import labels
from taoplan.errors import PlatformError
from taoplan.platforms.base import Observation
from taoplan.platforms.common import containers
from taoplan.platforms.common.ssh import Connection, Reply, Target, quote

NGC_REGISTRY = "nvcr.io"
NGC_KEY = "NGC_KEY"


def brev_home() -> Path:
    """The folder brev writes its ssh config in: $HOME/.brev (brev uses os.UserHomeDir)."""
    home = os.environ.get("HOME") or pwd.getpwuid(os.getuid()).pw_dir
    return Path(home) / ".brev"


def ssh_config() -> Path:
    return brev_home() / "ssh_config"


def has_alias(name: str) -> bool:
    """True when brev's ssh config defines ``Host name`` (brev refresh writes RUNNING instances)."""
    try:
        text = ssh_config().read_text()
    except OSError:
        return False
    return any(line.split()[1:] == [name] for line in text.splitlines() if line.strip().startswith("Host "))


def export_lines(values: Mapping[str, str]) -> str:
    """`export NAME='value'` lines for the remote shell's stdin (never argv, never a file)."""
    return "".join(f"export {name}={quote(value)}\n" for name, value in values.items())


class VM:
    """Docker commands on one Brev instance, over ssh."""

    def __init__(self, instance: str, state_dir: Path) -> None:
        self.instance = instance
        self.conn = Connection(
            Target(login=instance, config_file=str(ssh_config()), options={"RequestTTY": "no"}), state_dir
        )

    def run(self, remote: str, *, stdin: str | None = None, timeout: float = 120) -> Reply:
        return self.conn.run(remote, stdin=stdin, timeout=timeout)

    def check(self, remote: str, *, stdin: str | None = None, what: str, timeout: float = 120) -> str:
        reply = self.run(remote, stdin=stdin, timeout=timeout)
        if not reply.ok:
            raise PlatformError(f"brev {self.instance}: {what}: {reply.message()}")
        return reply.out

    def address(self) -> str:
        """The VM's address as brev's ssh config resolves it (`ssh -G`: Hostname, after Include/Match)."""
        proc = subprocess.run(
            ["ssh", "-G", "-F", str(ssh_config()), self.instance],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=20,
        )
        for line in proc.stdout.splitlines():
            key, _, value = line.partition(" ")
            if key == "hostname" and value:
                return value.strip()
        raise PlatformError(f"brev {self.instance}: no Hostname in {ssh_config()}")

    # ------------------------------------------------------------------------------------- observe

    def inspect_project(self, project: str) -> list[dict[str, Any]]:
        """`docker inspect` of every container labelled with this project."""
        flt = quote(f"{labels.PROJECT}={project}")
        out = self.check(
            f'ids=$(docker ps -aq --filter label={flt}) && {{ [ -z "$ids" ] && echo "[]" || docker inspect $ids; }}',
            what="docker ps",
        )
        return _json_list(out, self.instance)

    def probe(self, job_id: str) -> Observation:
        reply = self.run(f"docker inspect --type container {quote(job_id)}")
        if not reply.ok:
            if "No such" in reply.err or "no such" in reply.err:
                return Observation(job_id=job_id, service="", status="missing")
            raise PlatformError(f"brev {self.instance}: docker inspect {job_id}: {reply.message()}")
        attrs = _json_list(reply.out, self.instance)
        if not attrs:
            return Observation(job_id=job_id, service="", status="missing")
        return containers.from_inspect(attrs[0], job_id=job_id)

    def ports_in_use(self) -> set[int]:
        """TCP ports that listen on the VM, and every port a container there (running or not) binds."""
        out = self.check(
            "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null; echo ---; ids=$(docker ps -aq) && "
            "{ [ -z \"$ids\" ] || docker inspect --format '{{json .HostConfig.PortBindings}}' $ids; }",
            what="listening ports",
        )
        sockets, _, bindings = out.partition("---\n")
        used: set[int] = set()
        for line in sockets.splitlines():
            fields = line.split()
            if len(fields) > 3 and fields[3] == "0A" and ":" in fields[1]:  # 0A: LISTEN
                used.add(int(fields[1].rsplit(":", 1)[1], 16))
        for line in bindings.splitlines():
            try:
                data = json.loads(line) or {}
            except json.JSONDecodeError:
                continue
            for binds in data.values():
                used |= {int(b["HostPort"]) for b in binds or [] if str(b.get("HostPort") or "").isdigit()}
        return used

    def job_containers(self) -> list[str]:
        """Every container taoplan started on this VM, any project."""
        out = self.check(f"docker ps -aq --filter label={quote(labels.JOB_ID)}", what="docker ps")
        return out.split()

    # ------------------------------------------------------------------------------------- change

    def start(self, script: str, secrets: Mapping[str, str], job_id: str) -> str:
        """Run start.sh with `sh -s`, the secret values first on stdin. A dropped connection is
        retried once: start.sh finds the container it may already have started, and runs nothing."""
        text = export_lines(secrets) + script
        reply = self.run("sh -s", stdin=text, timeout=900)
        if reply.transport_failed:
            reply = self.run("sh -s", stdin=text, timeout=900)
        if not reply.ok:
            raise PlatformError(f"brev {self.instance}: docker run {job_id} failed: {reply.message()}")
        return reply.out

    def ngc_login(self, image: str) -> bool:
        """`docker login nvcr.io` on the VM with NGC_KEY on stdin, when an nvcr.io image is not there yet.
        False when nothing was needed (no key, another registry, or the image is present)."""
        key = os.environ.get(NGC_KEY)
        if not key or not image.startswith(NGC_REGISTRY + "/"):
            return False
        if self.run(f"docker image inspect {quote(image)} >/dev/null 2>&1").ok:
            return False
        reply = self.run(
            f"docker login {NGC_REGISTRY} --username '$oauthtoken' --password-stdin", stdin=key, timeout=120
        )
        if not reply.ok:
            message = reply.message().replace(key, "***")
            raise PlatformError(
                f"brev {self.instance}: docker login {NGC_REGISTRY} with {NGC_KEY} failed: {message}"
            )
        return True

    def remove(self, job_id: str) -> None:
        reply = self.run(f"docker rm -f {quote(job_id)}")
        if not reply.ok and "No such container" not in reply.err:
            raise PlatformError(f"brev {self.instance}: cannot remove {job_id}: {reply.message()}")

    def logs(self, job_id: str, tail: int, follow: bool) -> Iterator[str]:
        remote = f"docker logs --tail {int(tail)} {'-f ' if follow else ''}{quote(job_id)} 2>&1"
        if follow:
            yield from self.conn.stream(remote)
            return
        reply = self.run(remote)
        if not reply.ok:
            raise PlatformError(f"brev {self.instance}: docker logs {job_id}: {reply.message()}")
        yield from reply.out.splitlines()

    def info(self) -> dict[str, Any]:
        out = self.check("docker info --format '{{json .}}'", what="docker info")
        try:
            data = json.loads(out)
        except json.JSONDecodeError:
            raise PlatformError(f"brev {self.instance}: docker info printed no JSON") from None
        return data if isinstance(data, dict) else {}


def _json_list(text: str, instance: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        first = re.sub(r"\s+", " ", text.strip())[:120]
        raise PlatformError(f"brev {instance}: docker printed no JSON: {first!r}") from None
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []
