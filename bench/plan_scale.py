"""How `taoplan plan` scales: 1,000 and 10,000 services, whole process, against Terraform.

Prints a table of median wall time (>= 5 runs) and peak RSS. When `terraform` is on PATH it plans
the same number of `terraform_data` resources in the same run; otherwise the ratio is against the
anchor measured on this machine kind on 2026-11-24 (1,000: 1.8 s / 130 MB; 10,000: 19.6 s / 746 MB).
Also: a no-op plan of 1,000 services already in state, with refresh off.

    python bench/plan_scale.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, median_run, services_file, taoplan_argv  # noqa: E402

ANCHOR = {1000: (1.8, 130.0), 10000: (19.6, 746.0)}
TARGET_SPEEDUP = {1000: 4.0, 10000: 15.0}
TARGET_RSS_10K = 200.0
TARGET_NOOP = 0.5


def docker_answers() -> bool:
    return (
        subprocess.run(["docker", "info"], capture_output=True).returncode == 0
        if shutil.which("docker")
        else False
    )


def terraform_plan(n: int, folder: Path, runs: int) -> tuple[float, float] | None:
    exe = shutil.which("terraform")
    if not exe:
        return None
    tf = folder / f"tf{n}"
    tf.mkdir()
    (tf / "main.tf").write_text(
        "".join(f'resource "terraform_data" "r{i}" {{\n  input = "svc-{i}"\n}}\n' for i in range(n))
    )
    subprocess.run([exe, "init", "-input=false"], cwd=tf, check=True, capture_output=True)
    return median_run([exe, "plan", "-input=false", "-lock=false", "-refresh=false"], tf, runs)


def noop_state(folder: Path, n: int) -> Path:
    """A state dir that already records n services exactly as the file declares them."""
    from taoplan.spec.config import load_services
    from taoplan.spec.desired import build_desired
    from taoplan.spec.references import load_references
    from taoplan.store.state import ServiceRecord, State, StateStore

    file = folder / f"noop{n}.yaml"
    file.write_text(services_file(n, project="bench-noop"))
    refs = load_references()
    desired = build_desired(load_services(file, refs), refs, os.environ)
    state = State.new()
    for i, want in enumerate(desired.values()):
        state.services[want.name] = ServiceRecord(
            name=want.name,
            job_id=f"00000000-0000-4000-8000-{i:012d}",
            platform=want.platform,
            network_arch=want.spec.network_arch,
            spec=want.spec_dict,
            spec_hash=want.spec_hash,
            image=want.image,
            image_rule=want.image_rule,
            host_url=f"http://localhost:{8080 + i}",
            host_port=8080 + i,
            status="ready",
            protect=want.spec.protect,
            extra={"platform_config": want.platform_config},
        )
    StateStore(folder / f"noop{n}.state").write(state)
    return file


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    refresh = docker_answers()
    mode = "refresh on (Docker answering)" if refresh else "refresh off (no Docker engine)"
    env = {**os.environ, "TAO_INF_MS_STATE": "/dev/null/none"}
    print(f"# plan_scale: {machine()}, python {sys.version.split()[0]}, {mode}, median of {args.runs} runs")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for n in (1000, 10000):
            file = folder / f"s{n}.yaml"
            file.write_text(services_file(n))
            argv = taoplan_argv("plan", "-f", str(file), "--state-dir", str(folder / f"st{n}"))
            if not refresh:
                argv.append("--no-refresh")
            seconds, rss = median_run(argv, folder, args.runs, env=env)
            live = terraform_plan(n, folder, args.runs)
            anchor_s, anchor_mb = live or ANCHOR[n]
            rows.append(
                (
                    n,
                    seconds,
                    rss,
                    anchor_s,
                    anchor_mb,
                    "terraform (this run)" if live else "terraform (anchor)",
                )
            )
        noop_file = noop_state(folder, 1000)
        noop_s, noop_mb = median_run(
            taoplan_argv(
                "plan",
                "-f",
                str(noop_file),
                "--state-dir",
                str(folder / "noop1000.state"),
                "--no-refresh",
                "--detailed-exitcode",
            ),
            folder,
            args.runs,
            env=env,
        )

    print(
        f"{'services':>9} {'taoplan s':>10} {'RSS MB':>7} {'vs':<22} {'s':>6} {'MB':>6} {'speedup':>8} {'target':>7}"
    )
    result = {}
    for n, seconds, rss, other_s, other_mb, label in rows:
        speedup = other_s / seconds
        print(
            f"{n:>9} {seconds:>10.3f} {rss:>7.0f} {label:<22} {other_s:>6.1f} {other_mb:>6.0f} {speedup:>7.1f}x {TARGET_SPEEDUP[n]:>6.0f}x"
        )
        if "anchor" not in label:
            anchor_s, anchor_mb = ANCHOR[n]
            print(
                f"{'':>27} {'terraform (anchor)':<22} {anchor_s:>6.1f} {anchor_mb:>6.0f} {anchor_s / seconds:>7.1f}x"
            )
        result[n] = {
            "seconds": round(seconds, 3),
            "rss_mb": round(rss),
            "speedup": round(speedup, 1),
            "speedup_vs_anchor": round(ANCHOR[n][0] / seconds, 1),
        }
    print(
        f"no-op plan, 1,000 services in state, refresh off: {noop_s:.3f} s, {noop_mb:.0f} MB (target < {TARGET_NOOP} s)"
    )
    verdicts = [
        ("1,000 speedup", result[1000]["speedup"] >= TARGET_SPEEDUP[1000]),
        ("10,000 speedup", result[10000]["speedup"] >= TARGET_SPEEDUP[10000]),
        ("10,000 RSS", result[10000]["rss_mb"] <= TARGET_RSS_10K),
        ("no-op 1,000", noop_s < TARGET_NOOP),
    ]
    print("targets: " + ", ".join(f"{name} {'met' if ok else 'MISSED'}" for name, ok in verdicts))
    print(json.dumps({"plan_scale": result, "noop_1000_seconds": round(noop_s, 3)}))


if __name__ == "__main__":
    main()
