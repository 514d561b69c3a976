"""A rolling replace on a real Docker engine with the TAO test image and a 5 s fake model load.

Prints, for a model_path change of one service:
- the time from `taoplan apply` to the old workload's removal, and its steps from the journal
  (start, load to ready, routed by the gateways, drained, deleted);
- the floor, measured by hand in the same run with no taoplan: the same rendered `docker run` line
  started, readiness polled every 50 ms, then the old container removed (start + load), plus the
  drain: the in-flight requests' own remaining time (0 with no traffic, at most one inference with
  traffic);
- the same with a `taoplan gateway` in front and 20 requests per second of 0.5 s inferences, so the
  drain waits for real requests; every request's outcome is counted (the failures must be 0).

    python bench/rollout.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.apply_parallel import _ready, rendered_scripts, tp  # noqa: E402
from bench.common import ROOT, machine  # noqa: E402

IMAGE = "localhost/taoplan/tao-test:7.3.0"
LOAD_SECONDS = 5.0
INFER_SECONDS = 0.5


def write_file(folder: Path, model_path: str) -> None:
    env = {"TAO_FAKE_LOAD_SECONDS": str(LOAD_SECONDS), "TAO_FAKE_INFER_SECONDS": str(INFER_SECONDS)}
    service = {"network_arch": "cosmos-rl", "model_path": model_path, "env": env}
    lines = [
        "version: 1",
        f"project: {folder.name}",
        "defaults:",
        f"  image: {IMAGE}",
        "platforms:",
        "  local-docker: {gpus: none, shm_size: 64m}",
        "gateway: {}",
        "services:",
        f"  chat: {json.dumps(service)}",
    ]
    (folder / "services.yaml").write_text("\n".join(lines) + "\n")


def rollout(folder: Path, version: int) -> dict[str, float]:
    """One model_path change applied; seconds from apply to each journaled step of the rollout."""
    write_file(folder, f"/models/v{version}")
    began = time.time()
    result = tp(folder, "apply", "--auto-approve")
    total = time.time() - began
    if result.returncode != 0:
        raise SystemExit(f"apply failed:\n{result.stderr}")
    lines = [json.loads(x) for x in (folder / ".taoplan" / "journal.jsonl").read_text().splitlines()]
    run = lines[-1]["run"]
    at: dict[str, float] = {"apply": total}
    for entry in (e for e in lines if e["run"] == run):
        when = datetime.fromisoformat(entry["ts"]).timestamp() - began
        key = entry.get("step") or f"{entry['phase']}:{entry.get('action')}:{entry.get('outcome', '')}"
        at.setdefault(key, when)
    return at


def by_hand(folder: Path) -> float:
    """The floor: the rendered `docker run` of the new workload, readiness polled every 50 ms, then
    the old container removed. No plan, state, journal, gateway or drain."""
    import httpx

    old = subprocess.run(
        ["docker", "run", "-d", "--rm", "--entrypoint", "sleep", IMAGE, "600"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (script, port, recorded), *_ = rendered_scripts(folder)
    name = f"bench-by-hand-{os.getpid()}"  # render names it after the running workload's job id
    script.write_text(script.read_text().replace(recorded, name))
    began = time.perf_counter()
    try:
        subprocess.run(["sh", str(script)], check=True, capture_output=True)
        with httpx.Client(timeout=5) as http:
            while not _ready(http, port):
                time.sleep(0.05)
        subprocess.run(["docker", "rm", "-f", old], check=True, capture_output=True)
        return time.perf_counter() - began
    finally:
        subprocess.run(["docker", "rm", "-f", name, old], capture_output=True)


def with_traffic(folder: Path, runs: int) -> tuple[list[dict[str, float]], int, int]:
    """Rollouts while a gateway serves 20 req/s of 0.5 s inferences; (steps, answered, failed)."""
    from tests.e2e.rollout_support import Served

    steps = []
    with Served(folder) as served, served.load() as load:
        load.wait_for(20)
        for i in range(runs):
            steps.append(rollout(folder, 100 + i))
        load.wait_for(20)
    return steps, len(load.replies), len(load.failures)


def show(name: str, steps: list[dict[str, float]], floor: float, drain_floor: float) -> None:
    def med(key: str) -> float:
        return statistics.median(s.get(key, float("nan")) for s in steps)

    removed = med("outcome:retire:deleted")
    bound = floor + drain_floor
    print(f"\n## {name}")
    print("| step (s from apply) | median |")
    print("|---|---|")
    for key, label in (
        ("executed:start:", "new container started"),
        ("outcome:replace:ready", "new workload ready"),
        ("routed", "routed by every gateway"),
        ("draining", "old marked draining"),
        ("drained", "old drained"),
        ("outcome:retire:deleted", "old workload removed"),
        ("apply", "apply exits"),
    ):
        print(f"| {label} | {med(key):.2f} |")
    print(
        f"\napply -> old removed {removed:.2f} s; floor (start + load by hand {floor:.2f} s + drain "
        f"{drain_floor:.2f} s) {bound:.2f} s; ratio {removed / bound:.2f}x; taoplan's share {removed - bound:+.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for script in ("ensure-dockerd.sh", "build-test-image.sh"):
        subprocess.run(["bash", str(ROOT / "scripts" / script)], check=True, capture_output=True)
    print(f"# rollout: {machine()}, fake model load {LOAD_SECONDS:.0f} s, median of {args.runs} rollouts")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TAO_INF_MS_STATE"] = str(Path(tmp) / "registry.json")
        folder = Path(tmp) / f"bench-rollout-{os.getpid()}"
        folder.mkdir()
        try:
            write_file(folder, "/models/v0")
            if tp(folder, "apply", "--auto-approve").returncode != 0:
                raise SystemExit("the first apply failed")
            quiet: list[dict[str, Any]] = [rollout(folder, i + 1) for i in range(args.runs)]
            floors = [by_hand(folder) for _ in range(args.runs)]
            busy, answered, failed = with_traffic(folder, args.runs)
        finally:
            tp(folder, "destroy", "--auto-approve")
    floor = statistics.median(floors)
    show("no traffic", quiet, floor, 0.0)
    show(f"20 req/s of {INFER_SECONDS} s inferences through the gateway", busy, floor, INFER_SECONDS)
    print(f"\nrequests during the rollouts with traffic: {answered} answered, {failed} failed")


if __name__ == "__main__":
    main()
