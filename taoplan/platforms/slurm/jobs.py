"""Slurm's answers, read exactly: a job as squeue or sacct prints it, its state in taoplan's words.

Pure text in, values out, no SSH: squeue and sacct lines, Slurm durations and exit codes, and the
--comment in which a job carries its labels (project, service, spec hash, lineage, node port), the
way a container carries Docker labels. Kept apart so each rule is testable without a cluster.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from taoplan import labels

SQUEUE_FORMAT = "%i|%j|%T|%r|%N|%L|%k"
SACCT_FIELDS = "JobIDRaw,JobName,State,ExitCode,NodeList"

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

    @property
    def submission_order(self) -> int:
        """The numeric job id, so the newest of several jobs of one name sorts last (0 if not numeric)."""
        return int(self.slurm_id) if self.slurm_id.isdigit() else 0


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


def parse_exit_code(text: str) -> int | None:
    """sacct's CODE:SIGNAL; a signal is reported like a shell does (128 + N)."""
    match = re.fullmatch(r"(\d+):(\d+)", text.strip())
    if not match:
        return None
    code, sig = int(match.group(1)), int(match.group(2))
    return 128 + sig if code == 0 and sig else code


def parse_squeue(text: str) -> list[Job]:
    """Lines of ``squeue -o SQUEUE_FORMAT``; the comment field is last, so it may hold "|"."""
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
    """Lines of ``sacct -P -o SACCT_FIELDS``: final states and exit codes of jobs that left squeue."""
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
