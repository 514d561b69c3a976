"""The GPUs of this host, as the NVIDIA driver reports them: through NVML (``nvidia-ml-py``, imported
only when asked) or, without it, ``nvidia-smi``. No driver: an empty list and the reason, never a guess.

Used by local-docker's capacity; the doctor's GPU host preflight (``preflight.py``) reads
``nvidia-smi -q -x`` itself, on whichever host a platform reaches, and shares the ``NO_DRIVER`` verdict.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

NO_DRIVER = "no NVIDIA driver found"


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    uuid: str
    memory_total_mib: int
    memory_free_mib: int


def parse_query_csv(text: str) -> list[Gpu]:
    """``nvidia-smi --query-gpu=index,name,uuid,memory.total,memory.free --format=csv,noheader,nounits``."""
    gpus = []
    for line in text.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) < 5 or not fields[0].isdigit():
            continue
        index, name, uuid, total, free = fields[:5]
        gpus.append(Gpu(int(index), name, uuid, _mib(total), _mib(free)))
    return gpus


def _mib(text: str) -> int:
    try:
        return int(float(text))
    except ValueError:
        return 0


QUERY = "index,name,uuid,memory.total,memory.free"


def _nvml() -> tuple[list[Gpu] | None, str]:
    try:
        import pynvml  # nvidia-ml-py: optional
    except ImportError:
        return None, "nvidia-ml-py is not installed"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return None, f"NVML: {exc}"
    try:
        out = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            name = pynvml.nvmlDeviceGetName(handle)
            uuid = pynvml.nvmlDeviceGetUUID(handle)
            out.append(
                Gpu(
                    index,
                    name.decode() if isinstance(name, bytes) else str(name),
                    uuid.decode() if isinstance(uuid, bytes) else str(uuid),
                    int(memory.total) // (1024 * 1024),
                    int(memory.free) // (1024 * 1024),
                )
            )
        return out, ""
    except pynvml.NVMLError as exc:
        return None, f"NVML: {exc}"
    finally:
        pynvml.nvmlShutdown()


def _smi() -> tuple[list[Gpu] | None, str]:
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return None, "nvidia-smi is not on PATH"
    try:
        proc = subprocess.run(
            [binary, f"--query-gpu={QUERY}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"nvidia-smi: {exc}"
    if proc.returncode != 0:
        first = (proc.stdout + proc.stderr).strip().splitlines()
        return None, f"nvidia-smi: {first[0] if first else f'exit code {proc.returncode}'}"
    return parse_query_csv(proc.stdout), ""


def host_gpus() -> tuple[list[Gpu] | None, str]:
    """(the GPUs, "") or (None, why not: "no NVIDIA driver found (NVML: ...; nvidia-smi ...)")."""
    found, nvml_why = _nvml()
    if found is not None:
        return found, ""
    found, smi_why = _smi()
    if found is not None:
        return found, ""
    return None, f"{NO_DRIVER} ({nvml_why}; {smi_why})"
