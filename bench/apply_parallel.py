"""Apply on a real Docker engine with the TAO test image and a 5 s fake model load.

- apply of 1 service vs 10 services (target: 10 <= 1.5x the time of 1);
- 10 services vs the TAO skill's sequential procedure: start one, poll readiness every 10 s,
  then the next (target: >= 5x faster), running the very same rendered `docker run` lines;
- readiness detection latency: from the server logging "Model loaded" to taoplan recording
  ready_at in state (target <= 1 s);
- the machine's floor: the same rendered `docker run` lines started at once by hand, no taoplan,
  readiness polled every 50 ms. On few cores ten real TAO servers importing at once bound the
  ratio before taoplan adds anything.

    python bench/apply_parallel.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, machine, taoplan_argv  # noqa: E402
from taoplan.platforms.common import ports  # noqa: E402

IMAGE = "localhost/taoplan/tao-test:7.3.0"
LOAD_SECONDS = 5
SKILL_POLL = 10.0


def write_file(folder: Path, n: int, project: str) -> None:
    lines = [
        "version: 1",
        f"project: {project}",
        "defaults:",
        f"  image: {IMAGE}",
        f'  env: {{TAO_FAKE_LOAD_SECONDS: "{LOAD_SECONDS}"}}',
        "platforms:",
        "  local-docker: {gpus: none, shm_size: 64m}",
        "services:",
    ]
    lines += [f"  svc-{i}: {{network_arch: cosmos-rl, model_path: /models/m{i}}}" for i in range(n)]
    (folder / "services.yaml").write_text("\n".join(lines) + "\n")


def tp(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        taoplan_argv(*args), cwd=folder, capture_output=True, text=True, env=os.environ.copy()
    )


def timed_apply(folder: Path) -> float:
    started = time.perf_counter()
    result = tp(folder, "apply", "--auto-approve")
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"apply failed:\n{result.stderr}")
    return elapsed


def detection_latency(folder: Path) -> list[float]:
    state = json.loads((folder / ".taoplan" / "state.json").read_text())
    out = []
    for record in state["services"].values():
        logs = subprocess.run(["docker", "logs", record["job_id"]], capture_output=True, text=True).stderr
        line = next(ln for ln in (logs + "\n").splitlines() if "Model loaded successfully" in ln)
        loaded = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=timezone.utc)
        out.append((datetime.fromisoformat(record["ready_at"]) - loaded).total_seconds())
    return out


def start_spread(folder: Path) -> float:
    """Seconds from the first journaled intent to the last container started: taoplan's own share."""
    lines = [json.loads(line) for line in (folder / ".taoplan" / "journal.jsonl").read_text().splitlines()]
    last_run = next(r["run"] for r in reversed(lines) if r.get("command") == "apply")
    lines = [r for r in lines if r["run"] == last_run]
    intents = [datetime.fromisoformat(r["ts"]) for r in lines if r["phase"] == "intent"]
    starts = [
        datetime.fromisoformat(r["ts"])
        for r in lines
        if r["phase"] == "executed" and r.get("action") == "start"
    ]
    return (max(starts) - min(intents)).total_seconds()


def rendered_scripts(folder: Path) -> list[tuple[Path, int, str]]:
    """taoplan's rendered run.sh per service, each given a port free right now (render allocates
    offline), as (script, port, container name)."""
    rendered = folder / "rendered"
    shutil.rmtree(rendered, ignore_errors=True)
    result = tp(folder, "render", "--out", str(rendered))
    if result.returncode != 0:
        raise SystemExit(result.stderr)
    out = []
    taken: set[int] = set()
    for script in sorted(rendered.glob("*/run.sh")):
        text = script.read_text()
        port = ports.first_free(taken, free=ports.claim, what="benchmark port")
        taken.add(port)
        # --publish [127.0.0.1:]HOST_PORT:CONTAINER_PORT: only the host port changes
        script.write_text(re.sub(r"(--publish (?:[\d.]+:)?)\d+:", rf"\g<1>{port}:", text, count=1))
        out.append((script, port, text.split("--name ", 1)[1].split()[0]))
    return out


def sequential_skill(folder: Path) -> float:
    """The skill's procedure on the same rendered run.sh lines: start one, poll every 10 s, then the next."""
    import httpx

    scripts = rendered_scripts(folder)
    started = time.perf_counter()
    try:
        with httpx.Client(timeout=5) as http:
            for script, port, _ in scripts:
                subprocess.run(["sh", str(script)], check=True, capture_output=True)
                while not _ready(http, port):
                    time.sleep(SKILL_POLL)
        return time.perf_counter() - started
    finally:
        subprocess.run(["docker", "rm", "-f", *(name for _, _, name in scripts)], capture_output=True)


def bare_docker(folder: Path) -> float:
    """The machine's floor: the same rendered run.sh lines all started at once by hand and polled
    every 50 ms, with no taoplan at all (no plan, state, journal or progress)."""
    import httpx

    scripts = rendered_scripts(folder)
    started = time.perf_counter()
    try:
        for proc in [
            subprocess.Popen(["sh", str(script)], stdout=subprocess.DEVNULL) for script, _, _ in scripts
        ]:
            proc.wait()
        waiting = {port for _, port, _ in scripts}
        with httpx.Client(timeout=5) as http:
            while waiting:
                waiting = {port for port in waiting if not _ready(http, port)}
                time.sleep(0.05)
        return time.perf_counter() - started
    finally:
        subprocess.run(["docker", "rm", "-f", *(name for _, _, name in scripts)], capture_output=True)


def _ready(http: Any, port: int) -> bool:
    import httpx

    try:
        return http.get(f"http://localhost:{port}/api/v1/health/readiness").status_code == 200
    except httpx.TransportError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3, help="rounds of apply 1 / apply 10 (median)")
    args = parser.parse_args()
    for script in ("ensure-dockerd.sh", "build-test-image.sh"):
        subprocess.run(["bash", str(ROOT / "scripts" / script)], check=True, capture_output=True)
    print(
        f"# apply_parallel: {machine()}, fake model load {LOAD_SECONDS} s, parallelism 8, "
        f"median of {args.runs} rounds (1 then 10)"
    )
    ones: list[float] = []
    tens: list[float] = []
    latency: list[float] = []
    spreads: list[float] = []
    bare_ones: list[float] = []
    bare_tens: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TAO_INF_MS_STATE"] = str(Path(tmp) / "registry.json")
        one, ten, seq = Path(tmp) / "one", Path(tmp) / "ten", Path(tmp) / "seq"
        for folder, n in ((one, 1), (ten, 10), (seq, 10)):
            folder.mkdir()
            write_file(folder, n, f"bench-{folder.name}-{os.getpid()}")
        try:
            for _ in range(args.runs):
                ones.append(timed_apply(one))
                tp(one, "destroy", "--auto-approve")
                tens.append(timed_apply(ten))
                latency += detection_latency(ten)
                spreads.append(start_spread(ten))
                tp(ten, "destroy", "--auto-approve")
                bare_ones.append(bare_docker(one))
                bare_tens.append(bare_docker(ten))
            tseq = sequential_skill(seq)
        finally:
            for folder in (one, ten):
                tp(folder, "destroy", "--auto-approve")
    t1, t10, spread = statistics.median(ones), statistics.median(tens), statistics.median(spreads)
    b1, b10 = statistics.median(bare_ones), statistics.median(bare_tens)
    ratio, speedup = t10 / t1, tseq / t10
    print(f"apply 1 service:    {t1:6.2f} s  (rounds: {', '.join(f'{t:.2f}' for t in ones)})")
    print(
        f"apply 10 services:  {t10:6.2f} s  ({ratio:.2f}x of 1; target <= 1.5x: {'met' if ratio <= 1.5 else 'MISSED'})"
        f"  (rounds: {', '.join(f'{t:.2f}' for t in tens)})"
    )
    print(f"                    (all 10 containers started {spread:.2f} s after the first intent)")
    print(
        f"floor, no taoplan:  1: {b1:.2f} s, 10: {b10:.2f} s ({b10 / b1:.2f}x): the same run.sh lines started"
        " at once by hand, polled every 50 ms"
    )
    print(
        f"taoplan's share:    1: {t1 - b1:+.2f} s, 10: {t10 - b10:+.2f} s (start-up, plan, state, journal,"
        " 0.5 s polls)"
    )
    print(
        f"skill, sequential:  {tseq:6.2f} s  (taoplan {speedup:.1f}x faster; target >= 5x: {'met' if speedup >= 5 else 'MISSED'})"
    )
    print(
        f"readiness detection latency: median {sorted(latency)[len(latency) // 2]:.2f} s, max {max(latency):.2f} s "
        f"(target <= 1 s: {'met' if max(latency) <= 1 else 'MISSED'})"
    )
    print(
        json.dumps(
            {
                "runs": args.runs,
                "apply_1": round(t1, 2),
                "apply_10": round(t10, 2),
                "sequential_10": round(tseq, 2),
                "latency_max": round(max(latency), 3),
                "start_spread_10": round(spread, 2),
                "floor_1": round(b1, 2),
                "floor_10": round(b10, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
