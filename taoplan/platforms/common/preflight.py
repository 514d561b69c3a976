"""The GPU host preflight of `taoplan doctor`, written once for every platform that runs containers on a
GPU host it can reach (local Docker; a Brev VM over ssh). A platform supplies a ``GpuHost``: how to
run a shell script there, Docker's ``info`` and a GPU container; this module asks the same questions
of each and says what to fix.

- the NVIDIA driver and the CUDA version it supports (``nvidia-smi -q -x``), against references'
  ``gpu_host`` minimums (those of the TAO 7.x containers; a generic server gets none);
- the NVIDIA Container Toolkit (``nvidia-container-cli --version``, else ``nvidia-ctk --version``) and
  an ``nvidia`` runtime (or CDI) registered with Docker;
- Jetson (L4T, ``/etc/nv_tegra_release``), reported as such;
- the free memory of each GPU against the most GPUs one service asks for;
- a GPU smoke container per image (``docker run --rm --gpus all --entrypoint nvidia-smi IMAGE -L``),
  only with an image already on the host: doctor never pulls tens of GB.

The three probes run as one script, in one round trip. Nothing is changed on the host.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from taoplan.errors import PlatformError
from taoplan.platforms.base import Check, Deployment
from taoplan.platforms.common.gpuhost import NO_DRIVER
from taoplan.platforms.common.ssh import Reply, command
from taoplan.spec.references import GpuHostRefs

DRIVER_DOCS = "https://docs.nvidia.com/datacenter/tesla/driver-installation-guide/"
TOOLKIT_DOCS = "https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/install-guide.html"
CONFIGURE_RUNTIME = "sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker"

#: One round trip: each probe's output after a marker line, its exit status after.
PROBES = {
    "smi": "nvidia-smi -q -x",
    "toolkit": "nvidia-container-cli --version 2>&1 || nvidia-ctk --version",
    "tegra": "cat /etc/nv_tegra_release",
}
MARK = "@@taoplan-probe"
#: The note of a platform whose containers get no GPU.
SKIPPED = "gpus: none: containers get no GPU, so no GPU preflight"
#: The other way out of a host without GPUs, where a platform has a gpus: setting.
NO_GPUS = "set gpus: none for a host without GPUs"


class NotReachable(Exception):
    """Commands cannot be run on the GPU host from here now; the message says why, for a note.
    ``docker``: Docker there still answers (a remote daemon), so its checks run all the same."""

    def __init__(self, why: str, *, docker: bool = False) -> None:
        super().__init__(why)
        self.docker = docker


class GpuHost(Protocol):
    """How a platform reaches the host its containers run on."""

    @property
    def where(self) -> str:
        """The host in words: "this host", "brev instance box"."""
        ...

    def run_script(self, script: str) -> Reply:
        """Run a POSIX sh script there (on stdin) and return what it printed; NotReachable when
        commands cannot be run on that host from here now (a remote Docker daemon, a busy partition)."""
        ...

    def docker_info(self) -> Mapping[str, Any]:
        """Docker's ``info`` there (``GET /info``); PlatformError when Docker does not answer."""
        ...

    def gpu_container(self, image: str) -> Reply:
        """``docker run --rm --gpus all --entrypoint nvidia-smi IMAGE -L`` there, never pulling: an image
        that is not there answers "No such image"."""
        ...


@dataclass(frozen=True)
class ShellHost:
    """A GPU host reached by a shell (a Brev VM over ssh): the probes on ``sh -s``'s stdin, docker's CLI."""

    where: str
    run: Callable[[str, str | None], Reply]  # (remote command line, stdin) -> reply
    info: Callable[[], Mapping[str, Any]]

    def run_script(self, script: str) -> Reply:
        return self.run("sh -s", script)

    def docker_info(self) -> Mapping[str, Any]:
        return self.info()

    def gpu_container(self, image: str) -> Reply:
        return self.run(smoke_command(image), None)


def smoke_command(image: str) -> str:
    """The GPU smoke container as a shell line: never pulls; the image's own nvidia-smi lists the GPUs."""
    argv = ("docker", "run", "--rm", "--gpus", "all", "--pull", "never", "--entrypoint", "nvidia-smi")
    return command(*argv, image, "-L")


# ------------------------------------------------------------------------------------------ parsing


def probe_script(probes: Mapping[str, str] = PROBES) -> str:
    """One sh script that runs each probe (a shell line): its output after a marker, its status after."""
    return "".join(f'echo "{MARK} {name}"; {cmd} 2>&1; echo "{MARK}-rc $?"\n' for name, cmd in probes.items())


def split_probes(text: str) -> dict[str, tuple[int, str]]:
    """The probe script's output: name -> (exit status, output)."""
    out: dict[str, tuple[int, str]] = {}
    name: str | None = None
    lines: list[str] = []
    for line in text.splitlines():
        if line.startswith(f"{MARK}-rc ") and name is not None:
            code = line.split()[-1]
            out[name] = (int(code) if code.isdigit() else 1, "\n".join(lines))
            name, lines = None, []
        elif line.startswith(f"{MARK} "):
            name, lines = line.split(" ", 1)[1].strip(), []
        elif name is not None:
            lines.append(line)
    return out


@dataclass(frozen=True)
class GpuMemory:
    index: int
    name: str
    total_mib: int | None  # None: not reported (a Jetson's memory is shared with the CPU)
    free_mib: int | None


@dataclass(frozen=True)
class SmiReport:
    driver: str
    cuda: str
    gpus: tuple[GpuMemory, ...]


def parse_smi_xml(text: str) -> SmiReport:
    """``nvidia-smi -q -x``: the driver, the CUDA version it supports and each GPU's framebuffer memory
    (the GPU's own ``fb_memory_usage``, not its MIG instances'). ValueError when it is not that XML."""
    start = text.find("<nvidia_smi_log")
    if start < 0:
        raise ValueError("no <nvidia_smi_log> in the output")
    body = re.sub(r"<!DOCTYPE[^>]*>", "", text[start:])
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise ValueError(f"not XML: {exc}") from None
    gpus = []
    for position, gpu in enumerate(root.findall("gpu")):
        minor = (gpu.findtext("minor_number") or "").strip()
        gpus.append(
            GpuMemory(
                index=int(minor) if minor.isdigit() else position,
                name=(gpu.findtext("product_name") or "GPU").strip(),
                total_mib=_mib(gpu.findtext("fb_memory_usage/total")),
                free_mib=_mib(gpu.findtext("fb_memory_usage/free")),
            )
        )
    driver = (root.findtext("driver_version") or "").strip()
    cuda = (root.findtext("cuda_version") or "").strip()
    return SmiReport(driver, cuda, tuple(sorted(gpus, key=lambda g: g.index)))


def _mib(text: str | None) -> int | None:
    match = re.match(r"\s*(\d+)\s*MiB", text or "")
    return int(match.group(1)) if match else None


def toolkit_version(text: str) -> str | None:
    """``cli-version: 1.17.5`` (nvidia-container-cli) or ``... CLI version 1.17.5`` (nvidia-ctk)."""
    match = re.search(r"(?:cli-version:|CLI version)\s*v?(\d+(?:\.\d+)+)", text)
    return match.group(1) if match else None


def l4t_release(text: str) -> str | None:
    """``# R36 (release), REVISION: 3.0, ...`` -> "R36.3.0"."""
    match = re.search(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text)
    return f"R{match.group(1)}.{match.group(2)}" if match else None


def docker_runtimes(info: Mapping[str, Any]) -> tuple[list[str], bool]:
    """(the runtimes Docker has registered, whether CDI spec directories are set)."""
    return sorted(info.get("Runtimes") or {}), bool(info.get("CDISpecDirs"))


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text))


def at_least(found: str, minimum: str) -> bool:
    have, need = version_tuple(found), version_tuple(minimum)
    width = max(len(have), len(need))
    return have + (0,) * (width - len(have)) >= need + (0,) * (width - len(need))


# ------------------------------------------------------------------------------------------ checks


@dataclass(frozen=True)
class Needs:
    """What the services on one host ask of it: None where no minimum applies (a generic server)."""

    driver: str | None
    cuda: str | None
    toolkit: str | None
    toolkit_why: str
    gpus: int
    free_fraction: float
    otherwise: str = NO_GPUS

    @classmethod
    def of(cls, deployments: Sequence[Deployment], refs: GpuHostRefs) -> Needs:
        tao = sorted({d.network_arch for d in deployments if d.registry})
        toolkit, why = refs.container_toolkit_min, "TAO 7.x"
        for arch in tao:
            higher = refs.container_toolkit_min_by_arch.get(arch)
            if higher and at_least(higher, toolkit):
                toolkit, why = higher, arch
        return cls(
            driver=refs.driver_min if tao else None,
            cuda=refs.cuda_min if tao else None,
            toolkit=toolkit if tao else None,
            toolkit_why=why,
            gpus=max((d.num_gpus for d in deployments), default=0),
            free_fraction=refs.free_memory_min_fraction,
        )


def preflight(
    host: GpuHost,
    deployments: Sequence[Deployment],
    refs: GpuHostRefs,
    *,
    memory: bool = True,
    docker: bool = True,
    otherwise: str = NO_GPUS,
) -> list[Check]:
    """The preflight's checks for the GPU services of one host, each failing one naming its fix.
    ``memory``: judge free GPU memory (not where a scheduler hands out whole GPUs); ``docker``: the
    containers run with Docker there (its nvidia runtime, the GPU smoke container); ``otherwise``: the
    fix that avoids the GPU host altogether."""
    needs = replace(Needs.of(deployments, refs), otherwise=otherwise)
    images = list(dict.fromkeys(d.image for d in deployments)) if docker else []
    try:
        reply = host.run_script(probe_script())
    except NotReachable as exc:
        note = Check("GPU host", True, f"{host.where}: driver, toolkit and GPU memory not checked: {exc}")
        if not (docker and exc.docker):
            return [note]
        return [note, runtime_check(host, otherwise)] + [_container_check(host, image) for image in images]
    probes = split_probes(reply.out)
    if not probes:
        return [Check("GPU host", False, f"{host.where}: the probes did not run: {reply.message()}")]
    checks: list[Check] = []
    jetson = _jetson(probes.get("tegra"))
    if jetson:
        checks.append(
            Check("Jetson", True, f"{host.where}: L4T {jetson} (Jetson: the GPU shares memory with the CPU)")
        )
    smi = _driver_checks(host.where, probes.get("smi"), needs, jetson, checks)
    checks.append(_toolkit_check(host.where, probes.get("toolkit"), needs))
    if docker:
        checks.append(runtime_check(host, otherwise))
    if smi is not None:
        if memory and not jetson:
            checks.append(_memory_check(host.where, smi, needs))
        checks += [_container_check(host, image) for image in images]
    return checks


def _jetson(probe: tuple[int, str] | None) -> str | None:
    if probe is None or probe[0] != 0:
        return None
    return l4t_release(probe[1]) or "(release unknown)"


def _driver_checks(
    where: str, probe: tuple[int, str] | None, needs: Needs, jetson: str | None, checks: list[Check]
) -> SmiReport | None:
    code, text = probe or (127, "no output")
    minimum = f" ≥ {needs.driver}" if needs.driver else ""
    if code != 0:
        first = next((line.strip() for line in text.splitlines() if line.strip()), f"exit code {code}")
        why = "nvidia-smi is not installed" if code == 127 else f"nvidia-smi: {first}"
        fix = (
            f"install a JetPack whose driver is{minimum} with CUDA ≥ {needs.cuda or '?'}"
            if jetson
            else f"install the NVIDIA driver{minimum} ({DRIVER_DOCS}), or {needs.otherwise}"
        )
        checks.append(Check("NVIDIA driver", False, f"{NO_DRIVER} on {where} ({why}): {fix}"))
        return None
    try:
        report = parse_smi_xml(text)
    except ValueError as exc:
        checks.append(Check("NVIDIA driver", False, f"{where}: nvidia-smi -q -x: {exc}"))
        return None
    checks.append(
        _version_check("NVIDIA driver", where, report.driver, needs.driver, "upgrade the NVIDIA driver")
    )
    checks.append(
        _version_check(
            "CUDA",
            where,
            report.cuda,
            needs.cuda,
            f"upgrade the NVIDIA driver (its version sets the CUDA it supports; {DRIVER_DOCS})",
        )
    )
    return report


def _version_check(name: str, where: str, found: str, minimum: str | None, fix: str) -> Check:
    if not found:
        return Check(name, False, f"{where}: nvidia-smi reports no {name} version: {fix}")
    if minimum is None:
        return Check(name, True, f"{found} on {where}")
    if at_least(found, minimum):
        return Check(name, True, f"{found} on {where} (≥ {minimum})")
    return Check(name, False, f"{found} on {where}; the TAO 7.x containers need ≥ {minimum}: {fix}")


def _toolkit_check(where: str, probe: tuple[int, str] | None, needs: Needs) -> Check:
    code, text = probe or (127, "")
    found = toolkit_version(text) if code == 0 else None
    minimum = f" ≥ {needs.toolkit} (for {needs.toolkit_why})" if needs.toolkit else ""
    if found is None:
        return Check(
            "Container Toolkit",
            False,
            f"nvidia-container-cli not found on {where}: install the NVIDIA Container Toolkit{minimum} "
            f"({TOOLKIT_DOCS})",
        )
    if needs.toolkit is None:
        return Check("Container Toolkit", True, f"{found} on {where}")
    if at_least(found, needs.toolkit):
        return Check("Container Toolkit", True, f"{found} on {where} (≥ {needs.toolkit})")
    return Check(
        "Container Toolkit",
        False,
        f"{found} on {where}; {needs.toolkit_why} needs ≥ {needs.toolkit}: upgrade the NVIDIA Container "
        f"Toolkit ({TOOLKIT_DOCS})",
    )


def runtime_check(host: GpuHost, otherwise: str = NO_GPUS) -> Check:
    """An ``nvidia`` runtime (or CDI) registered with Docker on the host."""
    try:
        runtimes, cdi = docker_runtimes(host.docker_info())
    except PlatformError as exc:
        return Check("GPU runtime", False, exc.message)
    if "nvidia" in runtimes:
        return Check("GPU runtime", True, f"nvidia runtime registered with Docker on {host.where}")
    if cdi:
        return Check("GPU runtime", True, f"CDI spec directories set in Docker on {host.where}")
    return Check(
        "GPU runtime",
        False,
        f"no nvidia runtime on {host.where} (Docker has {', '.join(runtimes) or 'none'}): install the NVIDIA "
        f"Container Toolkit, then {CONFIGURE_RUNTIME}; or {otherwise}",
    )


def _memory_check(where: str, report: SmiReport, needs: Needs) -> Check:
    if not report.gpus:
        return Check("GPU memory", False, f"the driver on {where} sees no GPU: check nvidia-smi there")
    free, busy = [], []
    for gpu in report.gpus:
        if gpu.total_mib is None or gpu.free_mib is None:
            busy.append(f"GPU {gpu.index} {gpu.name}: memory not reported")
        elif gpu.free_mib >= needs.free_fraction * gpu.total_mib:
            free.append(gpu)
        else:
            busy.append(f"GPU {gpu.index} {gpu.name}: {gpu.free_mib} of {gpu.total_mib} MiB free")
    kinds = ", ".join(sorted({g.name for g in report.gpus}))
    share = f"{needs.free_fraction:.0%}"
    detail = (
        f"{len(report.gpus)} GPU(s) on {where} ({kinds}), {len(free)} with ≥ {share} of their memory free"
        f"; a service asks for up to {needs.gpus}"
    )
    if len(report.gpus) < needs.gpus:
        return Check("GPU memory", False, f"{detail}: lower num_gpus, or use a host with more GPUs")
    if len(free) < needs.gpus:
        return Check(
            "GPU memory",
            False,
            f"{detail} ({'; '.join(busy)}): free them (nvidia-smi lists what holds them; this project's own "
            "running services count too) or lower num_gpus",
        )
    return Check("GPU memory", True, detail)


def _container_check(host: GpuHost, image: str) -> Check:
    name = f"GPU container {image}"
    reply = host.gpu_container(image)
    if reply.ok:
        listed = [line for line in reply.out.splitlines() if line.startswith("GPU ")]
        return Check(name, True, f"nvidia-smi in the container on {host.where} sees {len(listed)} GPU(s)")
    message = reply.message()
    if "No such image" in (reply.err + reply.out):
        return Check(
            name, True, f"skipped: the image is not on {host.where} yet (apply pulls it; doctor never does)"
        )
    if "could not select device driver" in message or "unknown or invalid runtime" in message:
        return Check(
            name, False, f"{message}: install the NVIDIA Container Toolkit, then {CONFIGURE_RUNTIME}"
        )
    return Check(name, False, f"docker run --gpus all on {host.where}: {message}")
