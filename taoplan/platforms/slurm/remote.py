"""The cluster over SSH: submit, find, list and cancel jobs, each one command on the login node.

Every call goes through one multiplexed Connection (platforms/common/ssh.py), opened on first use.
A submission is never repeated: when sbatch's reply is lost, the job is looked up by its exact name.
squeue shows live jobs, sacct the ones that left it; what was last seen is cached for two seconds,
so observe() followed by endpoint() costs one round trip, not two. Jobs taoplan cancelled are
remembered in a small file, so that they read as removed rather than exited.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
import time
from pathlib import Path

from taoplan import labels
from taoplan.common import fsutil
from taoplan.errors import PlatformError
from taoplan.platforms.base import Deployment
from taoplan.platforms.common.ssh import Connection, Reply, command, quote
from taoplan.platforms.slurm import script
from taoplan.platforms.slurm.jobs import (
    ENDED_STATES,
    SACCT_FIELDS,
    SQUEUE_FORMAT,
    Job,
    parse_sacct,
    parse_squeue,
)
from taoplan.platforms.slurm.settings import Settings

LOOKUP_SECONDS = 5.0  # how long an ambiguous submission is looked for by name
STOP_WAIT_SECONDS = 60.0  # how long cancel() waits for a cancelled job to finish
LISTED_SECONDS = 15.0  # how long a new job may take to show in squeue
SUBMITTED_SECONDS = 60.0  # a job submitted this recently and not listed yet counts as pending
REMOVED_FILE = "slurm-removed.json"  # job_ids taoplan cancelled (see RemovedJobs)
REMOVED_KEEP_SECONDS = 7 * 24 * 3600


class RemovedJobs:
    """job_ids taoplan cancelled, with when, in the state folder; entries expire after a week.

    An ended job stays in squeue for a while (MinJobAge) but is history, not a workload. One that
    taoplan cancelled is "removed", like a deleted container, and observe() no longer lists it; one
    that ended by itself or was cancelled by someone else is listed as exited, so plan sees it.
    """

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        return self.state_dir / REMOVED_FILE

    def read(self) -> dict[str, float]:
        try:
            data = json.loads(fsutil.read_text(self.path) or "{}")
        except json.JSONDecodeError:
            return {}
        return (
            {k: v for k, v in data.items() if isinstance(v, (int, float))} if isinstance(data, dict) else {}
        )

    def add(self, job_id: str) -> None:
        with self._lock:
            now = time.time()
            kept = {k: v for k, v in self.read().items() if now - v < REMOVED_KEEP_SECONDS}
            kept[job_id] = now
            fsutil.ensure_private_dir(self.state_dir)
            fsutil.atomic_write(self.path, json.dumps(kept, indent=1) + "\n")


class Cluster:
    """One login node as this platform uses it; settings are read when a command needs them."""

    def __init__(self, settings: Settings, state_dir: Path) -> None:
        self.settings = settings
        self.state_dir = state_dir
        self.removed = RemovedJobs(state_dir)
        self._conn: Connection | None = None
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[float, Job | None]] = {}  # job_id -> (when, job): observe/probe cache
        self._submitted: dict[str, float] = {}

    @property
    def conn(self) -> Connection:
        with self._lock:
            if self._conn is None:
                self._conn = Connection(self.settings.target(), self.state_dir)
            return self._conn

    # ----------------------------------------------------------------------------- reading the queue

    def squeue(self, *args: str) -> list[Job]:
        reply = self.conn.run(command("squeue", "--me", "-h", *args, "-o", SQUEUE_FORMAT))
        if not reply.ok:
            raise PlatformError(f"ssh {self.conn.target.display}: squeue: {reply.message()}")
        return parse_squeue(reply.out)

    def squeue_job(self, job_id: str) -> Job | None:
        """The newest job of this exact name in squeue (any state), remembered for job()."""
        jobs = [j for j in self.squeue("-t", "all", "--name", job_id) if j.name == job_id]
        job = max(jobs, key=lambda j: j.submission_order) if jobs else None
        self._seen[job_id] = (time.monotonic(), job)
        return job

    def sacct(self, *args: str) -> list[Job]:
        reply = self.conn.run(command("sacct", "-X", "-n", "-P", *args, "-o", SACCT_FIELDS))
        if not reply.ok:
            raise PlatformError(f"ssh {self.conn.target.display}: sacct: {reply.message()}")
        return parse_sacct(reply.out)

    def lookup(self, job_id: str) -> Job | None:
        """squeue while the job is live (and shortly after); sacct once it has left squeue."""
        job = self.squeue_job(job_id)
        if job is not None and job.status == "exited":
            job = self.with_exit_code([job])[0]
        if job is None:
            ended = [j for j in self.sacct("--name", job_id, "-S", "now-7days") if j.name == job_id]
            job = ended[-1] if ended else None
        return job

    def with_exit_code(self, jobs: list[Job]) -> list[Job]:
        """Ended jobs get their final state and exit code from sacct."""
        ended = [j for j in jobs if j.status == "exited"]
        if not ended:
            return jobs
        final = {j.slurm_id: j for j in self.sacct("-j", ",".join(j.slurm_id for j in ended))}
        out = []
        for job in jobs:
            known = final.get(job.slurm_id)
            if job.status == "exited" and known is not None and known.base_state in ENDED_STATES:
                job = dataclasses.replace(job, state=known.state, exit_code=known.exit_code)
            out.append(job)
        return out

    def project_jobs(self, project: str) -> list[Job]:
        """The newest job of each name labelled with this project, less the ones taoplan removed."""
        removed = self.removed.read()
        jobs = [
            j
            for j in self.squeue("-t", "all")
            if (j.labels or {}).get(labels.PROJECT) == project
            and not (j.status == "exited" and j.name in removed)
        ]
        latest: dict[str, Job] = {}
        for job in sorted(jobs, key=lambda j: j.submission_order):
            latest[job.name] = job
        now = time.monotonic()
        out = self.with_exit_code(list(latest.values()))
        for job in out:
            self._seen[job.name] = (now, job)
        return out

    def job(self, job_id: str, max_age: float = 2.0) -> Job | None:
        """The job as last seen, if that was at most max_age seconds ago; else asked anew."""
        seen = self._seen.get(job_id)
        if seen is not None and time.monotonic() - seen[0] <= max_age:
            return seen[1]
        return self.squeue_job(job_id)

    def node_ports_in_use(self) -> set[int]:
        """Node ports of every live taoplan job of this user (any project): a new job avoids them."""
        used = set()
        for job in self.squeue("-t", "pending,running,suspended,configuring,completing"):
            port = (job.labels or {}).get(labels.NODE_PORT, "")
            if port.isdigit():
                used.add(int(port))
        return used

    def just_submitted(self, job_id: str) -> bool:
        """Submitted by this process so recently that squeue may not list it yet."""
        return time.monotonic() - self._submitted.get(job_id, -1e9) < SUBMITTED_SECONDS

    # ----------------------------------------------------------------------------- changing it

    def submit(self, d: Deployment, text: str) -> str:
        """Write the secrets sidecar (if any), sbatch the script on stdin; the Slurm job id."""
        where = self.settings.remote_dir
        if d.secret_names:
            secrets = script.sidecar_content(d.secret_names)
            # the values travel on stdin only, into a file created 0600 (umask 077 before it exists)
            self.conn.check(
                f"mkdir -p {where} && cd {where} && umask 077 && mkdir -p env "
                f"&& cat > {quote(script.sidecar(d.job_id))}",
                stdin=secrets,
                what="writing the secrets sidecar",
            )
        reply = self.conn.run(f"mkdir -p {where}/logs && cd {where} && sbatch --parsable", stdin=text)
        slurm_id = reply.out.strip().split(";")[0] if reply.ok else ""
        if not re.fullmatch(r"\d+", slurm_id):
            slurm_id = self.after_ambiguous_submit(d, reply)
        self._submitted[d.job_id] = time.monotonic()
        self._await_listed(d.job_id)
        return slurm_id

    def after_ambiguous_submit(self, d: Deployment, reply: Reply) -> str:
        """sbatch gave no job id: find the job by its exact name before anything else; never resubmit."""
        refused = not reply.transport_failed and "error" in (reply.err + reply.out).lower()
        deadline = time.monotonic() + (1.0 if refused else LOOKUP_SECONDS)
        while True:
            job = self.lookup(d.job_id)
            # an sbatch that refused the job may still leave a FAILED record under its name
            if job is not None and not (refused and job.status == "exited"):
                return job.slurm_id  # the submission went through; the reply was lost
            if time.monotonic() >= deadline:
                break
            time.sleep(0.5)
        self.cleanup(d.job_id)
        if refused:
            raise PlatformError(f"sbatch refused the job: {reply.message().removeprefix('sbatch: error: ')}")
        raise PlatformError(
            f"the reply of sbatch was lost ({reply.message()}) and no job named {d.job_id} "
            "is queued; nothing was resubmitted"
        )

    def _await_listed(self, job_id: str) -> None:
        """squeue shows a new job up to a second after sbatch returns: wait for it, so probes see it."""
        deadline = time.monotonic() + LISTED_SECONDS
        while time.monotonic() < deadline:
            if self.squeue_job(job_id) is not None:
                return
            time.sleep(0.3)

    def cancel(self, job_id: str) -> None:
        """scancel by the job's name (so an unseen duplicate of an ambiguous submission goes too)."""
        self.removed.add(job_id)
        reply = self.conn.run(
            f"{command('scancel', '--me', '--name', job_id)}; "
            f"{script.cleanup_command(self.settings.remote_dir, job_id)}"
        )
        if reply.transport_failed:
            raise PlatformError(f"ssh {self.conn.target.display}: scancel {job_id}: {reply.message()}")
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        while time.monotonic() < deadline:
            job = self.squeue_job(job_id)
            if job is None or (job.status == "exited" and job.base_state != "COMPLETING"):
                return
            time.sleep(0.5)

    def cleanup(self, job_id: str) -> None:
        self.conn.run(script.cleanup_command(self.settings.remote_dir, job_id))
