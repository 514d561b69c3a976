"""Cold start: `taoplan --help` and `taoplan validate` of a 3-service file, whole process (target <= 0.25 s).

python bench/cold_start.py [--runs 10]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, median_run, services_file, taoplan_argv  # noqa: E402

TARGET = 0.25


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    print(f"# cold_start: {machine()}, python {sys.version.split()[0]}, median of {args.runs} runs")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "services.yaml").write_text(services_file(3))
        for name, argv in (("--help", taoplan_argv("--help")), ("validate", taoplan_argv("validate"))):
            seconds, rss = median_run(argv, folder, args.runs)
            results[name] = round(seconds, 3)
            verdict = "met" if seconds <= TARGET else "MISSED"
            print(f"taoplan {name:<9} {seconds:.3f} s  {rss:.0f} MB  (target <= {TARGET} s: {verdict})")
    print(json.dumps({"cold_start": results}))


if __name__ == "__main__":
    main()
