"""Platform `slurm`: one batch job per service, submitted over SSH to a login node.

The job script is rendered from templates/slurm/sbatch.sh.j2 and submitted exactly as rendered
(`sbatch --parsable`, the script on stdin, over one multiplexed SSH connection). The job's name is
the job_id, and its --comment carries the labels (project, service, spec hash, lineage), so
observe() lists this project's jobs the way Docker lists containers by label. Secrets travel in a
mode-0600 env sidecar written from stdin; the script sources and removes it. A running job is
reached through `ssh -N -L LOCAL:NODE:PORT`, whose PID state records.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel

from taoplan import labels
from taoplan.common import fsutil
from taoplan.errors import ConfigError, PlatformError
from taoplan.platforms.base import (
    Artifact,
    Check,
    Deployment,
    Endpoint,
    Observation,
    Placement,
    PlatformContext,
    Started,
)
from taoplan.platforms.common import ports, tunnel
from taoplan.platforms.common.ssh import Connection, Reply, Target, command, quote
from taoplan.platforms.common.templates import render_template
from taoplan.spec import payload
from taoplan.spec.config import expand_env
from taoplan.spec.platform_settings import SlurmConfig
from taoplan.store.state import ServiceRecord

if TYPE_CHECKING:
    from taoplan.spec.config import ServiceSpec

#: Services with a port flag listen on their own node port from here up. It is apart from the
#: local ports (8080 up) so that they never meet when the cluster is this machine, as in the tests.
NODE_FIRST_PORT = 18080
SQUEUE_FORMAT = "%i|%j|%T|%r|%N|%L|%k"
SACCT_FIELDS = "JobIDRaw,JobName,State,ExitCode,NodeList"
LOOKUP_SECONDS = 5.0  # how long an ambiguous submission is looked for by name
STOP_WAIT_SECONDS = 60.0  # how long stop() waits for a cancelled job to finish
REMOVED_FILE = "slurm-removed.json"  # job_ids taoplan cancelled (see _forget)
REMOVED_KEEP_SECONDS = 7 * 24 * 3600


# Every other state (PENDING, CONFIGURING, REQUEUED, REQUEUE_HOLD...) counts as pending.
RUNNING_STATES = frozenset({"RUNNING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "RESIZING"})
# COMPLETING: the job is ending (scancel, end of script); for a service that means it is gone.
ENDED_STATES = frozenset(
    {
        "COMPLETING", "COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL",
        "BOOT_FAIL", "DEADLINE", "PREEMPTED", "REVOKED",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Job:
    """One Slurm job as squeue or sacct shows it."""

    slurm_id: str
    name: str
    state: str  # RUNNING, PENDING, "CANCELLED by 0"...
    reason: str = ""
    node: str = ""
    time_left: float | None = None
    labels: Mapping[str, str] | None = None
    exit_code: int | None = None

    @property
    def base_state(self) -> str:
        return self.state.split()[0].rstrip("+") if self.state else ""

    @property
    def status(self) -> str:
        """The core's vocabulary: running | pending | exited."""
        base = self.base_state
        if base in RUNNING_STATES:
            return "running"
        if base in ENDED_STATES:
            return "exited"
        return "pending"  # not serving yet, not over

    @property
    def detail(self) -> str:
        if self.status == "pending":
            return f"{self.state} ({self.reason})" if self.reason and self.reason != "None" else self.state
        if self.status == "running":
            return f"{self.state} on {self.node}" if self.node else self.state
        return self.state


# ------------------------------------------------------------------------------------------ parsing


def encode_comment(values: Mapping[str, str]) -> str:
    return ";".join(f"{k}={v}" for k, v in sorted(values.items()))


def decode_comment(text: str) -> dict[str, str]:
    """The labels in a job's --comment; {} for a comment that is not ours."""
    out = {}
    for part in text.strip().split(";"):
        key, sep, value = part.partition("=")
        if sep and key.startswith("taoplan."):
            out[key] = value
    return out if labels.PROJECT in out else {}


def parse_duration(text: str) -> float | None:
    """Slurm's [days-]hours:minutes:seconds (and shorter forms) in seconds; None for UNLIMITED etc."""
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text.strip())
    if not match:
        return None
    days, first, second, third = match.groups()
    parts = [int(p) for p in (first, second, third) if p is not None]
    if days is not None:
        hours, minutes, seconds = (parts + [0, 0])[:3]
    elif len(parts) == 3:
        hours, minutes, seconds = parts
    elif len(parts) == 2:
        hours, minutes, seconds = 0, parts[0], parts[1]
    else:
        hours, minutes, seconds = 0, parts[0], 0
    return float(((int(days or 0) * 24 + hours) * 60 + minutes) * 60 + seconds)


def parse_squeue(text: str) -> list[Job]:
    jobs = []
    for line in text.splitlines():
        fields = line.split("|", 6)
        if len(fields) != 7 or not fields[0].strip():
            continue
        slurm_id, name, state, reason, node, left, comment = fields
        jobs.append(
            Job(
                slurm_id=slurm_id.strip(),
                name=name.strip(),
                state=state.strip(),
                reason=reason.strip(),
                node=node.strip(),
                time_left=parse_duration(left),
                labels=decode_comment(comment),
            )
        )
    return jobs


def parse_sacct(text: str) -> list[Job]:
    jobs = []
    for line in text.splitlines():
        fields = line.split("|")
        if len(fields) < 5 or not fields[0].strip():
            continue
        slurm_id, name, state, exit_code, node = fields[:5]
        jobs.append(
            Job(
                slurm_id=slurm_id.strip(),
                name=name.strip(),
                state=state.strip(),
                node=node.strip(),
                exit_code=parse_exit_code(exit_code),
            )
        )
    return jobs


def parse_exit_code(text: str) -> int | None:
    """sacct's CODE:SIGNAL; a signal is reported like a shell does (128 + N)."""
    match = re.fullmatch(r"(\d+):(\d+)", text.strip())
    if not match:
        return None
    code, sig = int(match.group(1)), int(match.group(2))
    return 128 + sig if code == 0 and sig else code


def pyxis_image(image: str) -> str:
    """An image as Pyxis wants it: registry/image:tag and docker://registry/image:tag -> registry#image:tag."""
    bare = image.removeprefix("docker://")
    if bare.startswith("/") or bare.endswith(".sqsh") or "#" in bare:
        return bare
    first, sep, rest = bare.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return f"{first}#{rest}"
    return bare


def remote_path(path: str) -> str:
    """A path for the remote shell: a leading ~ expands there, the rest is quoted."""
    if path == "~" or path == "~/":
        return "~"
    if path.startswith("~/"):
        return "~/" + quote(path[2:])
    return quote(path)


def gpus_per_node(gres: str) -> int:
    """The GPU count in an sinfo %G field such as gpu:2, gpu:a100:8(S:0-1) or (null)."""
    total = 0
    for item in gres.split(","):
        match = re.match(r"gpu(?::[^:(]+)?:(\d+)", item.strip())
        if match:
            total += int(match.group(1))
    return total


# ------------------------------------------------------------------------------------------ platform


class Slurm:
    name: ClassVar[str] = "slurm"
    Config: ClassVar[type[BaseModel]] = SlurmConfig

    def __init__(self, config: SlurmConfig, ctx: PlatformContext) -> None:
        self.config = config
        self.ctx = ctx
        self._conn: Connection | None = None
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[float, Job | None]] = {}  # job_id -> (when, job): observe/probe cache
        self._submitted: dict[str, float] = {}

    # ----------------------------------------------------------------------------- settings

    def _expand(self, text: str, field: str) -> str:
        return expand_env(text, dict(os.environ), f"platforms.slurm.{field}")

    @property
    def partition(self) -> str | None:
        value = self.config.partition or os.environ.get("SLURM_PARTITION") or None
        return self._checked_name(value, "partition")

    @property
    def account(self) -> str | None:
        value = self.config.account or os.environ.get("SLURM_ACCOUNT") or None
        return self._checked_name(value, "account")

    def _checked_name(self, value: str | None, field: str) -> str | None:
        if value is None:
            return None
        value = self._expand(value, field)
        if not re.fullmatch(r"[A-Za-z0-9_.,-]+", value):
            raise ConfigError(f"platforms.slurm.{field}: {value!r} is not a valid Slurm name")
        return value

    @property
    def remote_dir(self) -> str:
        """remote_dir as a shell word for the login node."""
        return remote_path(self._expand(self.config.remote_dir, "remote_dir"))

    def target(self) -> Target:
        login = self._expand(self.config.login, "login")
        user, _, hosts = login.partition("@")
        login = f"{user}@{hosts.split(',')[0]}"  # SLURM_HOSTNAME may list failover hosts: use the first
        if not re.fullmatch(r"[^\s@'\"\\-][^\s@'\"\\]*@[^\s@'\"\\,]+", login):
            raise ConfigError(f"platforms.slurm.login: {login!r} is not user@host")
        identity = self.config.identity_file or os.environ.get("SSH_KEY_PATH") or None
        if identity:
            identity = os.path.expanduser(self._expand(identity, "identity_file"))
        options = {k: self._expand(v, f"ssh_options.{k}") for k, v in self.config.ssh_options.items()}
        return Target(login=login, port=self.config.ssh_port, identity_file=identity, options=options)

    @property
    def conn(self) -> Connection:
        with self._lock:
            if self._conn is None:
                self._conn = Connection(self.target(), self.ctx.state_dir)
            return self._conn

    # ----------------------------------------------------------------------------- planning facts

    def replace_strategy(self, num_gpus: int, host_port: int | None) -> tuple[bool, str]:
        return False, f"a Slurm job's GPUs ({num_gpus}) are not requested twice"

    def warm(self, writing: bool = False) -> None:
        """Nothing to import: the cluster is reached with the ssh binary."""

    def dry_run(
        self, deployment: Deployment, placement: Placement, artifacts: Sequence[Artifact]
    ) -> list[str]:
        """Slurm has no dry run that does not need the job's resources; `sbatch --test-only` would queue-check
        only. The script's own checks run at render time."""
        return []

    def describe(self, spec: ServiceSpec) -> tuple[str, ...]:
        if payload.accepts_port(spec.network_arch, self.ctx.refs):
            listen = "its own node port (--port, chosen at apply)"
        else:
            listen = f"--exclusive ({spec.network_arch} takes no port flag: the whole node, port {self._container_port})"
        return (f"slurm: --gres=gpu:{spec.num_gpus}, {listen}, reached through an ssh tunnel",)

    @property
    def _container_port(self) -> int:
        return self.ctx.refs.service.container_port

    # ----------------------------------------------------------------------------- apply

    def prepare(self, deployments: Sequence[Deployment], taken: set[int]) -> dict[str, Placement]:
        local_taken = set(taken) | {d.host_port for d in deployments if d.host_port is not None}
        node_taken = self._node_ports_in_use()
        out: dict[str, Placement] = {}
        for d in deployments:
            local = d.host_port
            if local is None:
                local = ports.first_free(local_taken, what="local port for a tunnel")
                local_taken.add(local)
            if payload.accepts_port(d.network_arch, self.ctx.refs):
                node_port = ports.first_free(
                    node_taken, NODE_FIRST_PORT, free=lambda p: True, what="node port"
                )
                node_taken.add(node_port)
                out[d.job_id] = Placement(
                    host_port=local, values={"node_port": node_port, "exclusive": False}
                )
            else:
                out[d.job_id] = Placement(
                    host_port=local, values={"node_port": self._container_port, "exclusive": True}
                )
        return out

    def _node_ports_in_use(self) -> set[int]:
        """Node ports of every live taoplan job of this user (any project): a new job avoids them."""
        used = set()
        for job in self._squeue("-t", "pending,running,suspended,configuring,completing"):
            port = (job.labels or {}).get(labels.NODE_PORT, "")
            if port.isdigit():
                used.add(int(port))
        return used

    def render(self, deployment: Deployment, placement: Placement) -> list[Artifact]:
        d = deployment
        takes_port = payload.accepts_port(d.network_arch, self.ctx.refs)
        node_port = int(
            placement.values.get("node_port", NODE_FIRST_PORT if takes_port else self._container_port)
        )
        inner = payload.inner_command(
            d.spec, d.job_id, self.name, self.ctx.refs, port=node_port if takes_port else None
        )
        comment = {k: v for k, v in d.labels.items() if k not in (labels.JOB_ID, labels.TAO_JOB)} | {
            labels.NODE_PORT: str(node_port)
        }
        mounts = [self._expand(m, "container_mounts") for m in self.config.container_mounts]
        context = {
            "d": d,
            "cfg": self.config,
            "comment": encode_comment(comment),
            "node_port": node_port,
            "exclusive": not takes_port,
            "inner_command": inner,
            "env_names": sorted(d.env) + list(d.secret_names),
            "pyxis_image": pyxis_image(d.image),
            "mounts": mounts,
            "partition": self.partition,
            "account": self.account,
        }
        return [render_template(self.name, "sbatch.sh.j2", context, mode=0o644)]

    def start(self, deployment: Deployment, placement: Placement, artifacts: Sequence[Artifact]) -> Started:
        d = deployment
        script = next(a.content for a in artifacts if a.name == "sbatch.sh")
        where = self.remote_dir
        sidecar = f"env/{d.job_id}.env"
        if d.secret_names:
            lines = []
            for name in d.secret_names:
                if name not in os.environ:
                    raise PlatformError(f"secret {name} is not set in the environment")
                lines.append(f"export {name}={quote(os.environ[name])}\n")
            # the values travel on stdin only, into a file created 0600 (umask 077 before it exists)
            self.conn.check(
                f"mkdir -p {where} && cd {where} && umask 077 && mkdir -p env && cat > {quote(sidecar)}",
                stdin="".join(lines),
                what="writing the secrets sidecar",
            )
        reply = self.conn.run(f"mkdir -p {where}/logs && cd {where} && sbatch --parsable", stdin=script)
        slurm_id = reply.out.strip().split(";")[0] if reply.ok else ""
        if not re.fullmatch(r"\d+", slurm_id):
            slurm_id = self.after_ambiguous_submit(d, reply)
        self._submitted[d.job_id] = time.monotonic()
        self._await_listed(d.job_id)
        return Started(
            host_url=None,
            host_port=placement.host_port,
            platform_job_id=slurm_id,
            extra={
                "slurm_port": int(placement.values.get("node_port", self._container_port)),
                "slurm_exclusive": bool(placement.values.get("exclusive", False)),
            },
        )

    def after_ambiguous_submit(self, d: Deployment, reply: Reply) -> str:
        """sbatch gave no job id: find the job by its exact name before anything else; never resubmit."""
        refused = not reply.transport_failed and "error" in (reply.err + reply.out).lower()
        deadline = time.monotonic() + (1.0 if refused else LOOKUP_SECONDS)
        while True:
            job = self._lookup(d.job_id)
            # an sbatch that refused the job may still leave a FAILED record under its name
            if job is not None and not (refused and job.status == "exited"):
                return job.slurm_id  # the submission went through; the reply was lost
            if time.monotonic() >= deadline:
                break
            time.sleep(0.5)
        self._cleanup(d.job_id)
        if refused:
            raise PlatformError(f"sbatch refused the job: {reply.message().removeprefix('sbatch: error: ')}")
        raise PlatformError(
            f"the reply of sbatch was lost ({reply.message()}) and no job named {d.job_id} "
            "is queued; nothing was resubmitted"
        )

    def _await_listed(self, job_id: str) -> None:
        """squeue shows a new job up to a second after sbatch returns: wait for it, so probes see it."""
        deadline = time.monotonic() + 15.0
        while time.monotonic() < deadline:
            if self._squeue_job(job_id) is not None:
                return
            time.sleep(0.3)

    def stop(self, record: ServiceRecord) -> None:
        self.remove(record.job_id)
        self._close_tunnel(record)

    def remove(self, job_id: str) -> None:
        """scancel by the job's name (so an unseen duplicate of an ambiguous submission goes too)."""
        self._forget(job_id)
        reply = self.conn.run(
            f"{command('scancel', '--me', '--name', job_id)}; {self._cleanup_command(job_id)}"
        )
        if reply.transport_failed:
            raise PlatformError(f"ssh {self.conn.target.display}: scancel {job_id}: {reply.message()}")
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        while time.monotonic() < deadline:
            job = self._squeue_job(job_id)
            if job is None or (job.status == "exited" and job.base_state != "COMPLETING"):
                return
            time.sleep(0.5)

    def _cleanup_command(self, job_id: str) -> str:
        return f"rm -f -- {self.remote_dir}/{quote(f'env/{job_id}.env')}"

    def _cleanup(self, job_id: str) -> None:
        self.conn.run(self._cleanup_command(job_id))

    # An ended job stays in squeue for a while (MinJobAge) but is history, not a workload. One that
    # taoplan cancelled is "removed", like a deleted container, and observe() no longer lists it; one
    # that ended by itself or was cancelled by someone else is listed as exited, so plan sees it.

    @property
    def _removed_path(self) -> Path:
        return self.ctx.state_dir / REMOVED_FILE

    def _removed(self) -> dict[str, float]:
        try:
            data = json.loads(fsutil.read_text(self._removed_path) or "{}")
        except json.JSONDecodeError:
            return {}
        return (
            {k: v for k, v in data.items() if isinstance(v, (int, float))} if isinstance(data, dict) else {}
        )

    def _forget(self, job_id: str) -> None:
        with self._lock:
            now = time.time()
            kept = {k: v for k, v in self._removed().items() if now - v < REMOVED_KEEP_SECONDS}
            kept[job_id] = now
            fsutil.ensure_private_dir(self.ctx.state_dir)
            fsutil.atomic_write(self._removed_path, json.dumps(kept, indent=1) + "\n")

    def _close_tunnel(self, record: ServiceRecord) -> None:
        node, port = record.extra.get("slurm_node"), record.extra.get("slurm_port")
        if node and port and record.host_port:
            tunnel.close_tunnel(record.extra.get("tunnel_pid"), tunnel.forward(record.host_port, node, port))

    # ----------------------------------------------------------------------------- observe

    def _squeue(self, *args: str) -> list[Job]:
        reply = self.conn.run(command("squeue", "--me", "-h", *args, "-o", SQUEUE_FORMAT))
        if not reply.ok:
            raise PlatformError(f"ssh {self.conn.target.display}: squeue: {reply.message()}")
        return parse_squeue(reply.out)

    def _squeue_job(self, job_id: str) -> Job | None:
        jobs = [j for j in self._squeue("-t", "all", "--name", job_id) if j.name == job_id]
        job = max(jobs, key=lambda j: int(j.slurm_id) if j.slurm_id.isdigit() else 0) if jobs else None
        self._seen[job_id] = (time.monotonic(), job)
        return job

    def _sacct(self, *args: str) -> list[Job]:
        reply = self.conn.run(command("sacct", "-X", "-n", "-P", *args, "-o", SACCT_FIELDS))
        if not reply.ok:
            raise PlatformError(f"ssh {self.conn.target.display}: sacct: {reply.message()}")
        return parse_sacct(reply.out)

    def _lookup(self, job_id: str) -> Job | None:
        """squeue while the job is live (and shortly after); sacct once it has left squeue."""
        job = self._squeue_job(job_id)
        if job is not None and job.status == "exited":
            job = self._with_exit_code([job])[0]
        if job is None:
            ended = [j for j in self._sacct("--name", job_id, "-S", "now-7days") if j.name == job_id]
            job = ended[-1] if ended else None
        return job

    def _with_exit_code(self, jobs: list[Job]) -> list[Job]:
        """Ended jobs get their final state and exit code from sacct."""
        ended = [j for j in jobs if j.status == "exited"]
        if not ended:
            return jobs
        final = {j.slurm_id: j for j in self._sacct("-j", ",".join(j.slurm_id for j in ended))}
        out = []
        for job in jobs:
            known = final.get(job.slurm_id)
            if job.status == "exited" and known is not None and known.base_state in ENDED_STATES:
                job = dataclasses.replace(job, state=known.state, exit_code=known.exit_code)
            out.append(job)
        return out

    def observe(self) -> dict[str, Observation]:
        removed = self._removed()
        jobs = [
            j
            for j in self._squeue("-t", "all")
            if (j.labels or {}).get(labels.PROJECT) == self.ctx.project
            and not (j.status == "exited" and j.name in removed)
        ]
        latest: dict[str, Job] = {}
        for job in sorted(jobs, key=lambda j: int(j.slurm_id) if j.slurm_id.isdigit() else 0):
            latest[job.name] = job
        now = time.monotonic()
        out = {}
        for job in self._with_exit_code(list(latest.values())):
            self._seen[job.name] = (now, job)
            out[job.name] = self._observation(job)
        return out

    def probe(self, job_id: str) -> Observation:
        job = self._lookup(job_id)
        if job is None:
            if time.monotonic() - self._submitted.get(job_id, -1e9) < 60:
                return Observation(job_id=job_id, service="", status="pending", detail="submitted")
            return Observation(job_id=job_id, service="", status="missing")
        return self._observation(job)

    def _observation(self, job: Job) -> Observation:
        lbl = job.labels or {}
        return Observation(
            job_id=job.name,
            service=lbl.get(labels.SERVICE, ""),
            status=job.status,
            spec_hash=lbl.get(labels.SPEC_HASH),
            lineage=lbl.get(labels.LINEAGE),
            exit_code=job.exit_code if job.status == "exited" and job.base_state != "CANCELLED" else None,
            detail=job.detail,
            expires_in=job.time_left if job.status == "running" else None,
        )

    def _job(self, job_id: str, max_age: float = 2.0) -> Job | None:
        seen = self._seen.get(job_id)
        if seen is not None and time.monotonic() - seen[0] <= max_age:
            return seen[1]
        return self._squeue_job(job_id)

    # ----------------------------------------------------------------------------- endpoint

    def endpoint(self, record: ServiceRecord, reopen: bool = True) -> Endpoint:
        job = self._job(record.job_id)
        if job is None:
            return Endpoint(None, f"job {record.job_id} is not in the queue")
        if job.status != "running":
            return Endpoint(None, job.detail)
        node, node_port = job.node, record.extra.get("slurm_port")
        if not node or not isinstance(node_port, int):
            return Endpoint(None, f"{job.detail}: no node or port known")
        pid, local, old_node = (
            record.extra.get("tunnel_pid"),
            record.host_port,
            record.extra.get("slurm_node"),
        )
        if local and old_node == node and tunnel.is_ours(pid, tunnel.forward(local, node, node_port)):
            return Endpoint(f"http://localhost:{local}")
        if old_node is None:
            why = "the job runs"
        else:
            why = "tunnel down" if old_node == node else f"the job moved from {old_node} to {node}"
        if not reopen:
            return Endpoint(None, why)
        self._close_tunnel(record)  # a tunnel to the node the job left
        log = self.ctx.state_dir / "tunnels" / f"{record.job_id}.log"
        last: PlatformError | None = None
        for _ in range(3):  # a port taken between the check and ssh's bind: take the next one
            if not local or not ports.bindable(local, reuse=True):
                local = ports.first_free(set(), what="local port for a tunnel")
            try:
                pid = tunnel.open_tunnel(
                    self.conn.argv(multiplex=False),
                    self.conn.target.login,
                    tunnel.forward(local, node, node_port),
                    local,
                    log,
                )
                break
            except PlatformError as exc:
                last, local = exc, None
        else:
            assert last is not None
            raise last
        url = f"http://localhost:{local}"
        return Endpoint(
            url,
            detail=f"tunnel localhost:{local} -> {node}:{node_port} opened ({why})",
            updates={
                "host_url": url,
                "host_port": local,
                "extra": {"tunnel_pid": pid, "slurm_node": node},
            },
        )

    # ----------------------------------------------------------------------------- logs, doctor

    def logs(self, record: ServiceRecord, tail: int, follow: bool) -> Iterator[str]:
        slurm_id = record.platform_job_id
        if not slurm_id:
            job = self._lookup(record.job_id)
            if job is None:
                raise PlatformError(f"{record.name}: job {record.job_id} is unknown to Slurm")
            slurm_id = job.slurm_id
        path = f"{self.remote_dir}/{quote(f'logs/{record.job_id}-{slurm_id}.out')}"
        if follow:
            yield from self.conn.stream(f"tail -n {int(tail)} -F -- {path}")
            return
        reply = self.conn.run(f"tail -n {int(tail)} -- {path}")
        if not reply.ok:
            raise PlatformError(f"{record.name}: no job output yet ({reply.message()})")
        yield from reply.out.splitlines()

    def doctor(self, deployments: Sequence[Deployment]) -> list[Check]:
        try:
            target = self.target()
            reply = self.conn.run("true")
        except (PlatformError, ConfigError) as exc:
            return [Check("ssh", False, exc.message)]
        if not reply.ok:
            return [
                Check("ssh", False, f"{target.display}: {reply.message()} (BatchMode: no password prompts)")
            ]
        checks = [Check("ssh", True, f"{target.display}: key login works without a prompt")]
        sinfo = self.conn.run(command("sinfo", "-h", "-o", "%P|%a|%G|%D"))
        if not sinfo.ok:
            return [*checks, Check("sinfo", False, sinfo.message())]
        rows = [line.split("|") for line in sinfo.out.splitlines() if line.count("|") == 3]
        checks.append(Check("sinfo", True, f"{len(rows)} partition line(s)"))
        names = {r[0].rstrip("*") for r in rows}
        default = next((r[0].rstrip("*") for r in rows if r[0].endswith("*")), None)
        try:
            partition, account = self.partition, self.account
        except ConfigError as exc:
            return [*checks, Check("settings", False, exc.message)]
        chosen = partition or default
        if chosen in names:
            checks.append(
                Check("partition", True, f"{chosen}" + ("" if partition else " (the cluster default)"))
            )
        else:
            checks.append(
                Check(
                    "partition",
                    False,
                    f"{chosen or 'no default partition'} not in: {', '.join(sorted(names))}",
                )
            )
        if account:
            assoc = self.conn.run(
                f'sacctmgr -n -P show assoc user="$USER" {command("account=" + account, "format=Account")}'
            )
            ok = assoc.ok and account in assoc.out.split()
            checks.append(Check("account", ok, account if ok else f"{account}: no association for this user"))
        else:
            checks.append(Check("account", True, "none set (the cluster decides)"))
        wanted = max((d.num_gpus for d in deployments), default=0)
        have = max((gpus_per_node(r[2]) for r in rows if r[0].rstrip("*") == chosen), default=0)
        checks.append(
            Check(
                "GPUs",
                wanted <= have,
                f"up to {wanted} per service; {chosen} nodes have {have}"
                + ("" if wanted <= have else ": sbatch would refuse the job"),
            )
        )
        where = self.remote_dir
        writable = self.conn.run(f"mkdir -p {where} && test -w {where}")
        checks.append(
            Check(
                "remote_dir",
                writable.ok,
                self.config.remote_dir + ("" if writable.ok else f": {writable.message()}"),
            )
        )
        if self.config.container_runtime == "pyxis":
            creds = self.conn.run("test -s ~/.config/enroot/.credentials && echo OK || echo MISSING")
            ok = creds.out.strip() == "OK"
            checks.append(
                Check(
                    "enroot credentials",
                    ok,
                    "~/.config/enroot/.credentials is present"
                    if ok
                    else "~/.config/enroot/.credentials is missing: Pyxis cannot pull from nvcr.io "
                    '("Could not process JSON input")',
                )
            )
            pyxis = self.conn.run("srun --help 2>&1 | grep -q -- --container-image")
            checks.append(
                Check(
                    "pyxis",
                    pyxis.ok,
                    "srun --container-image"
                    + (" is available" if pyxis.ok else " is unknown: no Pyxis plugin"),
                )
            )
        return checks


PLATFORM = Slurm
