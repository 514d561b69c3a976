"""Checks before anything changes: `taoplan doctor`'s five findings, in order, and the dry run's problems.

Why a module of its own: whether the SDK imports, the token is set, the workspace answers, the shape
exists on the node group and the pull secret exists are read-only questions, asked the same way by
doctor and by `plan --server-dry-run`. Each needs the one before it, so doctor stops at the first
that fails among the first three.
"""

from __future__ import annotations

from collections.abc import Sequence

from taoplan.errors import TaoplanError
from taoplan.platforms.base import Artifact, Check, Deployment, Placement

from .api import Session
from .names import deployment_name, name_problem
from .objects import parse, sdk_deployment


def sdk_check() -> Check:
    try:
        import leptonai.api.v2  # noqa: F401
    except ImportError as exc:
        return Check("SDK", False, f"leptonai does not import: {exc} (pip install leptonai)")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return Check("SDK", True, f"leptonai {version('leptonai')}")
    except PackageNotFoundError:
        return Check("SDK", True, "leptonai (version unknown)")


def pull_secrets(session: Session) -> list[str]:
    """The workspace's image pull secret names (GET /imagepullsecrets: the SDK has no API for them)."""
    client = session.client()
    response = session.call("GET /imagepullsecrets", client._get, "/imagepullsecrets")
    if not response.ok:
        raise TaoplanError(f"lepton: GET /imagepullsecrets: HTTP {response.status_code}")
    try:
        items = response.json()
    except ValueError:
        items = []
    names = []
    for item in items if isinstance(items, list) else []:
        meta = item.get("metadata") if isinstance(item, dict) else None
        name = (meta or {}).get("name") or (meta or {}).get("id") if isinstance(meta, dict) else None
        if name:
            names.append(str(name))
    return names


def pull_secret_problems(session: Session, images: Sequence[str]) -> list[str]:
    name = session.config.image_pull_secret
    if name is None:
        on_ngc = sorted({i for i in images if i.startswith("nvcr.io/")})
        if on_ngc:
            return [
                f"{session.where('image_pull_secret')}: required for {on_ngc[0]} (nvcr.io): create the "
                "registry secret in the Lepton console and name it here (taoplan never creates it)"
            ]
        return []
    if name not in pull_secrets(session):
        return [
            f"{session.where('image_pull_secret')}: image pull secret {name!r} does not exist in workspace "
            f"{session.workspace_id}: create it in the Lepton console (registry nvcr.io, user $oauthtoken, "
            "your NGC key); taoplan never creates it"
        ]
    return []


def name_problems(session: Session, deployments: Sequence[Deployment]) -> list[str]:
    out = []
    for d in deployments:
        why = name_problem(deployment_name(d.service, d.job_id))
        if why:
            out.append(f"{session.ctx.where(('services', d.service))}: {why}")
    return out


def doctor(session: Session, deployments: Sequence[Deployment]) -> list[Check]:
    checks = [sdk_check()]
    if not checks[-1].ok:
        return checks
    try:
        session.token()
        checks.append(Check("token", True, f"{session.token_name} is set"))
    except TaoplanError as exc:
        return [*checks, Check("token", False, exc.message)]
    try:
        session.client()
        checks.append(
            Check("workspace", True, f"{session.workspace_id} at {session.shown_url()} (/deployments API)")
        )
    except TaoplanError as exc:
        return [*checks, Check("workspace", False, exc.message)]
    try:
        shape = session.shape()
        ng_id, ng_name = session.node_group()
        gpus = int(getattr(shape.spec, "accelerator_num", 0) or 0)
        checks.append(
            Check("shape", True, f"{shape.metadata.name} ({gpus} GPUs) on node group {ng_name} ({ng_id})")
        )
    except TaoplanError as exc:
        checks.append(Check("shape", False, exc.message))
    try:
        problems = pull_secret_problems(session, [d.image for d in deployments])
    except TaoplanError as exc:
        problems = [exc.message]
    if problems:
        checks.append(Check("pull secret", False, problems[0]))
    elif session.config.image_pull_secret:
        checks.append(Check("pull secret", True, f"{session.config.image_pull_secret} exists"))
    else:
        checks.append(Check("pull secret", True, "none set (no image on nvcr.io)"))
    names = name_problems(session, deployments)
    checks.append(Check("deployment names", not names, names[0] if names else "each fits Lepton's 36"))
    return checks


def dry_run(
    session: Session, deployment: Deployment, placement: Placement, artifacts: Sequence[Artifact]
) -> list[str]:
    """What the API would refuse, found without changing anything (Lepton has no server-side dry run):
    the SDK's own model of the rendered deployment, the secrets in the environment, the pull secret."""
    d = deployment
    problems: list[str] = []
    try:
        obj, _ = parse(artifacts, fill_secrets=False)
        sdk_deployment(obj)
    except TaoplanError as exc:
        problems.append(f"{d.service}: {exc.message}")
    try:
        parse(artifacts, fill_secrets=True)
    except TaoplanError as exc:
        problems.append(f"{d.service}: {exc.message}")
    try:
        problems += [f"{d.service}: {p}" for p in pull_secret_problems(session, [d.image])]
    except TaoplanError as exc:
        problems.append(f"{d.service}: {exc.message}")
    return problems
