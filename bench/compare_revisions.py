"""The same measures for this tree and an older revision, side by side in one run (interleaved, so both
see the same machine): `taoplan --help`, `validate` of 3 services, `plan` of 1,000 and 10,000 services.

python bench/compare_revisions.py [REV] [--runs 5]     (REV default: HEAD~1)

The older revision is checked out with `git worktree` into a temporary folder and run through the same
console script with PYTHONPATH pointing at it, so only taoplan's own code differs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, run_once, services_file, taoplan_argv  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def measure(argv: list[str], cwd: Path, trees: dict[str, Path], runs: int) -> dict[str, tuple[float, float]]:
    """Median seconds and max RSS per tree, alternating trees on every run."""
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
    for tree in trees.values():  # one warm-up each
        run_once(argv, cwd, {**os.environ, "PYTHONPATH": str(tree)})
    for _ in range(runs):
        for name, tree in trees.items():
            seconds, mb, code = run_once(argv, cwd, {**os.environ, "PYTHONPATH": str(tree)})
            if code not in (0, 2):
                raise SystemExit(f"{name}: {' '.join(argv)} exited {code}")
            samples[name].append((seconds, mb))
    return {n: (statistics.median(s for s, _ in v), max(m for _, m in v)) for n, v in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("rev", nargs="?", default="HEAD~1")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"# compare_revisions: this tree vs {args.rev}; {machine()}; median of {args.runs}, interleaved")
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(old), args.rev],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        try:
            trees = {"this tree": ROOT, args.rev: old}
            folder = Path(tmp) / "work"
            folder.mkdir()
            cases = [("--help", [], 3), ("validate (3)", ["validate"], 3)]
            for n in (1000, 10000):
                (folder / f"s{n}.yaml").write_text(services_file(n))
                cases.append(
                    (
                        f"plan ({n:,})",
                        ["plan", "-f", f"s{n}.yaml", "--no-refresh", "--state-dir", f"st{n}"],
                        n,
                    )
                )
            (folder / "services.yaml").write_text(services_file(3))
            print(f"{'measure':<16} {'this tree':>16} {args.rev:>16} {'ratio':>7}")
            for label, extra, _ in cases:
                argv = taoplan_argv(*(["--help"] if label == "--help" else extra))
                got = measure(argv, folder, trees, args.runs)
                new_s, new_mb = got["this tree"]
                old_s, old_mb = got[args.rev]
                print(
                    f"{label:<16} {new_s:>8.3f} s {new_mb:>4.0f} MB {old_s:>8.3f} s {old_mb:>4.0f} MB "
                    f"{new_s / old_s:>6.2f}x"
                )
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=ROOT, capture_output=True)


if __name__ == "__main__":
    main()
