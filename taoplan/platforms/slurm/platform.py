"""Platform `slurm`: one batch job per service, submitted over SSH to a login node.

The job script is rendered from templates/slurm/sbatch.sh.j2 (script.py) and submitted exactly as
rendered (`sbatch --parsable`, the script on stdin, over one multiplexed SSH connection: remote.py).
The job's name is the job_id, and its --comment carries the labels (project, service, spec hash,
lineage), so observe() lists this project's jobs the way Docker lists containers by label (jobs.py).
Secrets travel in a mode-0600 env sidecar written from stdin; the script sources and removes it. A
running job is reached through `ssh -N -L LOCAL:NODE:PORT`, whose PID state records.

This module is the Platform of platforms/base.py: it places services on ports, turns jobs into
observations, and keeps the tunnels; the cluster commands, the script and the checks live beside it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel

from taoplan import labels
from taoplan.errors import PlatformError
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
from taoplan.platforms.capacity import Capacity
from taoplan.platforms.common import ports, tunnel
from taoplan.platforms.common.ssh import Connection, Reply, quote
from taoplan.platforms.slurm import capacity as gpu_capacity
from taoplan.platforms.slurm import doctor, script
from taoplan.platforms.slurm.jobs import Job
from taoplan.platforms.slurm.remote import Cluster
from taoplan.platforms.slurm.settings import Settings
from taoplan.spec import payload
from taoplan.spec.platform_settings import SlurmConfig
from taoplan.store.state import ServiceRecord

if TYPE_CHECKING:
    from taoplan.spec.config import ServiceSpec


class Slurm:
    name: ClassVar[str] = "slurm"
    Config: ClassVar[type[BaseModel]] = SlurmConfig

    def __init__(self, config: SlurmConfig, ctx: PlatformContext) -> None:
        self.config = config
        self.ctx = ctx
        self.settings = Settings(config)
        self.cluster = Cluster(self.settings, ctx.state_dir)

    @property
    def conn(self) -> Connection:
        return self.cluster.conn

    @property
    def remote_dir(self) -> str:
        """remote_dir as a shell word for the login node."""
        return self.settings.remote_dir

    @property
    def _container_port(self) -> int:
        return self.ctx.refs.service.container_port

    # ----------------------------------------------------------------------------- planning facts

    def replace_strategy(self, num_gpus: int, host_port: int | None) -> tuple[bool, str]:
        return True, ""  # the GPUs free, read at refresh, decide (engine.rollout)

    def warm(self, writing: bool = False) -> None:
        """Nothing to import: the cluster is reached with the ssh binary."""

    def dry_run(
        self, deployment: Deployment, placement: Placement, artifacts: Sequence[Artifact]
    ) -> list[str]:
        """Slurm has no dry run that does not need the job's resources; `sbatch --test-only` would queue-check
        only. The script's own checks run at render time."""
        return []

    def describe(self, spec: ServiceSpec) -> tuple[str, ...]:
        if payload.takes_port(spec, self.ctx.refs):
            listen = "its own node port (--port, chosen at apply)"
        else:
            port = payload.container_port(spec, self.ctx.refs)
            listen = f"--exclusive ({spec.kind} takes no port flag: the whole node, port {port})"
        return (f"slurm: --gres=gpu:{spec.num_gpus}, {listen}, reached through an ssh tunnel",)

    # ----------------------------------------------------------------------------- apply

    def prepare(self, deployments: Sequence[Deployment], taken: set[int]) -> dict[str, Placement]:
        local_taken = set(taken) | {d.host_port for d in deployments if d.host_port is not None}
        node_taken = self.cluster.node_ports_in_use()
        out: dict[str, Placement] = {}
        for d in deployments:
            local = d.host_port
            if local is None:
                local = ports.first_free(local_taken, what="local port for a tunnel")
                local_taken.add(local)
            if d.takes_port:
                node_port = ports.first_free(
                    node_taken, script.NODE_FIRST_PORT, free=lambda p: True, what="node port"
                )
                node_taken.add(node_port)
                out[d.job_id] = Placement(
                    host_port=local, values={"node_port": node_port, "exclusive": False}
                )
            else:
                out[d.job_id] = Placement(
                    host_port=local, values={"node_port": d.container_port, "exclusive": True}
                )
        return out

    def render(self, deployment: Deployment, placement: Placement) -> list[Artifact]:
        return [script.render_script(self.name, deployment, placement, self.ctx, self.settings)]

    def start(self, deployment: Deployment, placement: Placement, artifacts: Sequence[Artifact]) -> Started:
        text = next(a.content for a in artifacts if a.name == script.SCRIPT)
        slurm_id = self.cluster.submit(deployment, text)
        return Started(
            host_url=None,
            host_port=placement.host_port,
            platform_job_id=slurm_id,
            extra={
                "slurm_port": int(placement.values.get("node_port", deployment.container_port)),
                "slurm_exclusive": bool(placement.values.get("exclusive", False)),
            },
        )

    def after_ambiguous_submit(self, d: Deployment, reply: Reply) -> str:
        """sbatch gave no job id: find the job by its exact name before anything else; never resubmit."""
        return self.cluster.after_ambiguous_submit(d, reply)

    def stop(self, record: ServiceRecord) -> None:
        self.remove(record.job_id)
        self._close_tunnel(record)

    def remove(self, job_id: str) -> None:
        """scancel by the job's name (so an unseen duplicate of an ambiguous submission goes too)."""
        self.cluster.cancel(job_id)

    def _close_tunnel(self, record: ServiceRecord) -> None:
        node, port = record.extra.get("slurm_node"), record.extra.get("slurm_port")
        if node and port and record.host_port:
            tunnel.close_tunnel(record.extra.get("tunnel_pid"), tunnel.forward(record.host_port, node, port))

    # ----------------------------------------------------------------------------- observe

    def observe(self) -> dict[str, Observation]:
        return {job.name: self._observation(job) for job in self.cluster.project_jobs(self.ctx.project)}

    def capacity(self, wanted: tuple[int, ...]) -> Capacity:
        """sinfo GRES of the partition's nodes, squeue's running jobs, sbatch --test-only per size."""
        partition = self.settings.partition
        line = gpu_capacity.script(
            partition, self.settings.account, self.config.cpus_per_task, self.config.time, wanted
        )
        reply = self.conn.run(line)
        if reply.transport_failed or gpu_capacity.SEPARATOR not in reply.out:
            raise PlatformError(f"ssh {self.conn.target.display}: sinfo/squeue: {reply.message()}")
        return gpu_capacity.parse(reply.out, partition, wanted)

    def probe(self, job_id: str) -> Observation:
        job = self.cluster.lookup(job_id)
        if job is None:
            if self.cluster.just_submitted(job_id):
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

    # ----------------------------------------------------------------------------- endpoint

    def endpoint(self, record: ServiceRecord, reopen: bool = True) -> Endpoint:
        job = self.cluster.job(record.job_id)
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
        local, pid = tunnel.open_on_free_port(
            self.conn.argv(multiplex=False), self.conn.target.login, local, node, node_port, log
        )
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
            job = self.cluster.lookup(record.job_id)
            if job is None:
                raise PlatformError(f"{record.name}: job {record.job_id} is unknown to Slurm")
            slurm_id = job.slurm_id
        path = f"{self.remote_dir}/{quote(script.log_file(record.job_id, slurm_id))}"
        if follow:
            yield from self.conn.stream(f"tail -n {int(tail)} -F -- {path}")
            return
        reply = self.conn.run(f"tail -n {int(tail)} -- {path}")
        if not reply.ok:
            raise PlatformError(f"{record.name}: no job output yet ({reply.message()})")
        yield from reply.out.splitlines()

    def doctor(self, deployments: Sequence[Deployment]) -> list[Check]:
        return doctor.checks(self.cluster, deployments, self.ctx.refs.service.gpu_host)


PLATFORM = Slurm
