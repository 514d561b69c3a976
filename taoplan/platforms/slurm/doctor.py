"""`taoplan doctor` for Slurm: can this user submit these services there, asked of the cluster itself.

Each check is one cheap command on the login node (no job is submitted): key login without a
prompt, sinfo's partitions and their GPUs, the account association, a writable remote_dir and,
for Pyxis, enroot credentials and srun's --container-image. A failing check says what to fix. Then
the GPU host preflight on a compute node, with one short srun (slurm/node.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from taoplan.errors import ConfigError, PlatformError
from taoplan.platforms.base import Check, Deployment
from taoplan.platforms.common.ssh import command
from taoplan.platforms.slurm import node
from taoplan.platforms.slurm.remote import Cluster
from taoplan.spec.references import GpuHostRefs


def gpus_per_node(gres: str) -> int:
    """The GPU count in an sinfo %G field such as gpu:2, gpu:a100:8(S:0-1) or (null)."""
    total = 0
    for item in gres.split(","):
        match = re.match(r"gpu(?::[^:(]+)?:(\d+)", item.strip())
        if match:
            total += int(match.group(1))
    return total


def checks(cluster: Cluster, deployments: Sequence[Deployment], refs: GpuHostRefs) -> list[Check]:
    """One Check per question, in order; a failure at the door (ssh, sinfo, settings) ends the list.
    Last, the GPU host preflight on a node of the partition (slurm/node.py), when the partition exists."""
    settings = cluster.settings
    try:
        target = settings.target()
        reply = cluster.conn.run("true")
    except (PlatformError, ConfigError) as exc:
        return [Check("ssh", False, exc.message)]
    if not reply.ok:
        return [Check("ssh", False, f"{target.display}: {reply.message()} (BatchMode: no password prompts)")]
    conn = cluster.conn
    out = [Check("ssh", True, f"{target.display}: key login works without a prompt")]
    sinfo = conn.run(command("sinfo", "-h", "-o", "%P|%a|%G|%D"))
    if not sinfo.ok:
        return [*out, Check("sinfo", False, sinfo.message())]
    rows = [line.split("|") for line in sinfo.out.splitlines() if line.count("|") == 3]
    out.append(Check("sinfo", True, f"{len(rows)} partition line(s)"))
    names = {r[0].rstrip("*") for r in rows}
    default = next((r[0].rstrip("*") for r in rows if r[0].endswith("*")), None)
    try:
        partition, account = settings.partition, settings.account
    except ConfigError as exc:
        return [*out, Check("settings", False, exc.message)]
    chosen = partition or default
    if chosen in names:
        out.append(Check("partition", True, f"{chosen}" + ("" if partition else " (the cluster default)")))
    else:
        out.append(
            Check(
                "partition", False, f"{chosen or 'no default partition'} not in: {', '.join(sorted(names))}"
            )
        )
    if account:
        assoc = conn.run(
            f'sacctmgr -n -P show assoc user="$USER" {command("account=" + account, "format=Account")}'
        )
        ok = assoc.ok and account in assoc.out.split()
        out.append(Check("account", ok, account if ok else f"{account}: no association for this user"))
    else:
        out.append(Check("account", True, "none set (the cluster decides)"))
    wanted = max((d.num_gpus for d in deployments), default=0)
    have = max((gpus_per_node(r[2]) for r in rows if r[0].rstrip("*") == chosen), default=0)
    out.append(
        Check(
            "GPUs",
            wanted <= have,
            f"up to {wanted} per service; {chosen} nodes have {have}"
            + ("" if wanted <= have else ": sbatch would refuse the job"),
        )
    )
    where = settings.remote_dir
    writable = conn.run(f"mkdir -p {where} && test -w {where}")
    suffix = "" if writable.ok else f": {writable.message()}"
    out.append(Check("remote_dir", writable.ok, settings.config.remote_dir + suffix))
    if settings.config.container_runtime == "pyxis":
        out.extend(_pyxis_checks(cluster))
    if chosen in names:
        out.extend(node.checks(cluster, deployments, refs))
    return out


def _pyxis_checks(cluster: Cluster) -> list[Check]:
    """Pyxis pulls with enroot's credentials and needs the plugin's srun flag."""
    creds = cluster.conn.run("test -s ~/.config/enroot/.credentials && echo OK || echo MISSING")
    ok = creds.out.strip() == "OK"
    found = (
        "~/.config/enroot/.credentials is present"
        if ok
        else "~/.config/enroot/.credentials is missing: Pyxis cannot pull from nvcr.io "
        '("Could not process JSON input")'
    )
    pyxis = cluster.conn.run("srun --help 2>&1 | grep -q -- --container-image")
    flag = "srun --container-image" + (" is available" if pyxis.ok else " is unknown: no Pyxis plugin")
    return [Check("enroot credentials", ok, found), Check("pyxis", pyxis.ok, flag)]
