"""Slurm's GPU capacity, read in one SSH round trip: ``sinfo`` GRES per node of the partition (and
the node's state), ``squeue`` for the running jobs that hold GPUs (anyone's), and one
``sbatch --test-only`` per GPU count the file asks for (the scheduler's own start estimate).

The parsing is pure text in, values out, so each rule is tested on recorded outputs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from taoplan import labels
from taoplan.platforms.capacity import Capacity, Hold, Place
from taoplan.platforms.common.ssh import command
from taoplan.platforms.slurm.jobs import decode_comment

SINFO_FORMAT = "NodeHost:|,Partition:|,Gres:|,GresUsed:|,StateLong:|"
SQUEUE_FORMAT = "JobID:|,UserName:|,Name:|,NodeList:|,tres-per-node:|,Comment:|"
#: node states in which a node runs (or will run) jobs; drained, down, failed, maint... do not
USABLE = ("idle", "mixed", "allocated", "completing", "planned")
SEPARATOR = "--- taoplan capacity ---"
_GPU_COUNT = re.compile(r"gpu(?::[^:,(]+)?:(\d+)")


def gpu_count(gres: str) -> int:
    """GPUs in a GRES string: "gpu:2", "gpu:a100:4(S:0-1)", "gpu:1(IDX:0)", "gres:gpu:1", "gres/gpu:2"."""
    return sum(int(m.group(1)) for m in _GPU_COUNT.finditer(gres.replace("gres/", "").replace("gres:", "")))


def script(partition: str | None, account: str | None, cpus: int, time: str, wanted: Sequence[int]) -> str:
    """The one remote command line: sinfo, squeue, then an sbatch --test-only per GPU count."""
    part = ["-p", partition] if partition else []
    parts = [
        command("sinfo", "-h", "-N", *part, "-O", SINFO_FORMAT),
        f"echo {command(SEPARATOR)}",
        command("squeue", "-h", "-t", "running", "-O", SQUEUE_FORMAT),
    ]
    for gpus in wanted:
        args = ["sbatch", "--test-only", "--nodes=1", f"--gres=gpu:{int(gpus)}", f"--cpus-per-task={cpus}"]
        args += [f"--time={time}", *part, *(["-A", account] if account else []), "--wrap", "true"]
        parts += [f"echo {command(SEPARATOR)}", command(*args) + " 2>&1 || true"]
    return "; ".join(parts)


def parse_nodes(text: str, partition: str | None) -> tuple[list[Place], list[str]]:
    """(usable nodes of the partition, or of the default one; "node: state" of the unusable ones)."""
    rows = []
    for line in text.splitlines():
        fields = line.split("|")
        if len(fields) >= 5 and fields[0].strip():
            rows.append([f.strip() for f in fields[:5]])
    if partition is None:
        default = [r for r in rows if r[1].endswith("*")]
        rows = default or rows
    places, unusable = [], []
    for node, part, gres, used, state in rows:
        base = state.rstrip("*~#!%$@^-+").lower()
        if base not in USABLE or state.endswith("*"):
            unusable.append(f"{node}: {state}")
            continue
        total = gpu_count(gres)
        places.append(Place(node, total, max(0, total - gpu_count(used)), group=part.rstrip("*")))
    return places, unusable


def parse_holds(text: str, nodes: set[str]) -> list[Hold]:
    holds = []
    for line in text.splitlines():
        fields = line.rstrip().removesuffix("|").split("|", 5)  # -O ends each field with "|"
        if len(fields) < 6 or not fields[0].strip():
            continue
        job, user, name, node, tres, comment = (f.strip() for f in fields)
        gpus = gpu_count(tres)
        if not gpus or node not in nodes:
            continue
        lbl = decode_comment(comment)
        if lbl:
            who = f"service {lbl.get(labels.SERVICE)} of project {lbl.get(labels.PROJECT)} (slurm job {job})"
            holds.append(Hold(node, gpus, job_id=name, who=who))
        else:
            holds.append(Hold(node, gpus, who=f"slurm job {job} ({user}: {name})"))
    return holds


def parse_estimate(text: str) -> str:
    """``sbatch --test-only``'s answer as one line for the plan."""
    match = re.search(r"Job \d+ to start at (\S+) using .* on nodes (\S+)", text)
    if match:
        return f"Slurm estimates a start at {match.group(1)} on {match.group(2)} (sbatch --test-only)"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return f"sbatch --test-only: {lines[-1] if lines else 'no answer'}"


def parse(text: str, partition: str | None, wanted: Sequence[int]) -> Capacity:
    sections = text.split(SEPARATOR)
    places, unusable = parse_nodes(sections[0], partition)
    holds = parse_holds(sections[1] if len(sections) > 1 else "", {p.name for p in places})
    estimates: Mapping[int, str] = {
        gpus: parse_estimate(sections[2 + i]) for i, gpus in enumerate(wanted) if len(sections) > 2 + i
    }
    which = f"partition {partition}" if partition else "the default partition"
    no_place = ""
    if not places:
        no_place = (
            f"{which} has no node that can run jobs ({', '.join(unusable)})"
            if unusable
            else f"{which} matches no node (sinfo lists none)"
        )
    return Capacity(
        resource="GPU", places=tuple(places), holds=tuple(holds), no_place=no_place, estimates=estimates
    )
