"""What a Slurm job is made of before it is submitted: the sbatch script, its secrets sidecar, its files.

The script is rendered from templates/slurm/sbatch.sh.j2 at plan time and submitted exactly as
rendered, so a dry run shows what runs. Secrets never enter it: their values travel on stdin into
a mode-0600 sidecar env/<job_id>.env that the script sources and removes. The file names under
remote_dir are spelled here once, for the writer, the log reader and the cleanup alike.
"""

from __future__ import annotations

from collections.abc import Sequence

from taoplan import labels
from taoplan.common import secrets
from taoplan.platforms.base import Artifact, Deployment, Placement, PlatformContext
from taoplan.platforms.common.ssh import quote
from taoplan.platforms.common.templates import render_template
from taoplan.platforms.slurm.jobs import encode_comment
from taoplan.platforms.slurm.settings import Settings
from taoplan.spec import payload

#: Services with a port flag listen on their own node port from here up. It is apart from the
#: local ports (8080 up) so that they never meet when the cluster is this machine, as in the tests.
NODE_FIRST_PORT = 18080
SCRIPT = "sbatch.sh"


def sidecar(job_id: str) -> str:
    """The secrets sidecar, relative to remote_dir (the script sources it from $SLURM_SUBMIT_DIR)."""
    return f"env/{job_id}.env"


def log_file(job_id: str, slurm_id: str) -> str:
    """The job's output, relative to remote_dir: the script's --output=logs/%x-%j.out."""
    return f"logs/{job_id}-{slurm_id}.out"


def cleanup_command(remote_dir: str, job_id: str) -> str:
    """The shell line that removes a job's sidecar, whether or not the script got to it."""
    return f"rm -f -- {remote_dir}/{quote(sidecar(job_id))}"


def sidecar_content(secret_names: Sequence[str]) -> str:
    """``export NAME=value`` lines (the environment, else the secrets file); for stdin only, never a file here."""
    return "".join(f"export {name}={quote(secrets.require(name))}\n" for name in secret_names)


def pyxis_image(image: str) -> str:
    """An image as Pyxis wants it: registry/image:tag and docker://registry/image:tag -> registry#image:tag."""
    bare = image.removeprefix("docker://")
    if bare.startswith("/") or bare.endswith(".sqsh") or "#" in bare:
        return bare
    first, sep, rest = bare.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return f"{first}#{rest}"
    return bare


def render_script(
    platform: str, d: Deployment, placement: Placement, ctx: PlatformContext, settings: Settings
) -> Artifact:
    """The sbatch script for one deployment at its placement (node port, --exclusive or not)."""
    takes_port = d.takes_port
    node_port = int(placement.values.get("node_port", NODE_FIRST_PORT if takes_port else d.container_port))
    inner = payload.inner_command(
        d.spec, d.job_id, platform, ctx.refs, port=node_port if takes_port else None
    )
    comment = {k: v for k, v in d.labels.items() if k not in (labels.JOB_ID, labels.TAO_JOB)} | {
        labels.NODE_PORT: str(node_port)
    }
    mounts = settings.mounts
    context = {
        "d": d,
        "cfg": settings.config,
        "comment": encode_comment(comment),
        "node_port": node_port,
        "exclusive": not takes_port,
        "inner_command": inner,
        "env_names": sorted(d.env) + list(d.secret_names),
        "pyxis_image": pyxis_image(d.image),
        "mounts": mounts,
        "partition": settings.partition,
        "account": settings.account,
    }
    return render_template(platform, f"{SCRIPT}.j2", context, mode=0o644)
