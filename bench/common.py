"""Shared helpers for the benchmarks: run a whole process, return its wall time and peak RSS."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARCHS = ("cosmos-rl", "cosmos-predict2.5", "tao-dataservices")


def run_once(argv: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """(seconds, peak RSS in MB, exit code) of one whole process."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.stderr is not None:
        proc.stderr.close()
    return elapsed, usage.ru_maxrss / 1024, proc.returncode


def median_run(
    argv: Sequence[str], cwd: Path, runs: int = 5, env: dict[str, str] | None = None, ok: Sequence[int] = (0,)
) -> tuple[float, float]:
    """Median wall time and max peak RSS over ``runs`` runs (after one warm-up run)."""
    run_once(argv, cwd, env)
    times, rss = [], []
    for _ in range(runs):
        seconds, mb, code = run_once(argv, cwd, env)
        if code not in ok:
            raise SystemExit(f"{' '.join(argv)} exited {code}")
        times.append(seconds)
        rss.append(mb)
    return statistics.median(times), max(rss)


def taoplan_argv(*args: str) -> list[str]:
    """The console script installed beside this interpreter (not a version-manager shim such as
    pyenv's, which adds its own ~0.1 s per run), else PATH, else `python -m taoplan`."""
    beside = Path(sys.executable).parent / "taoplan"
    exe = str(beside) if beside.exists() else shutil.which("taoplan")
    return [exe, *args] if exe else [sys.executable, "-m", "taoplan", *args]


def services_file(n: int, project: str = "bench") -> str:
    """n local-docker services with varied archs and fields."""
    lines = [
        "version: 1",
        f"project: {project}",
        "defaults:",
        "  platform: local-docker",
        "  env: {TAO_LOG_LEVEL: INFO}",
        "platforms:",
        "  local-docker: {gpus: none, shm_size: 64m}",
        "services:",
    ]
    for i in range(n):
        arch = ARCHS[i % 3]
        lines.append(f"  svc-{i:05d}:")
        lines.append(f"    network_arch: {arch}")
        if arch == "cosmos-predict2.5":
            lines += [
                f"    model_path: hf_model://nvidia/Cosmos-Predict2.5-{i}",
                "    model_key: base-2b",
                f"    output_dir: /outputs/{i}",
            ]
        elif i % 7 == 0:
            lines.append(f"    model_path: /models/local/{i}")
        else:
            lines.append(f"    model_path: hf_model://org/model-{i}")
        lines.append(f"    num_gpus: {1 + i % 4}")
        lines.append(f'    env: {{SHARD: "{i}", TAO_LOG_LEVEL: {"DEBUG" if i % 2 else "INFO"}}}')
        if i % 5 == 0:
            lines.append("    secrets: [HF_TOKEN]")
        if i % 11 == 0:
            lines.append("    readiness: {timeout: 900}")
    return "\n".join(lines) + "\n"


def machine() -> str:
    mem_kb = int(
        next(
            line.split()[1]
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
    )
    return f"{os.cpu_count()} cores, {mem_kb / 1024 / 1024:.0f} GiB"
