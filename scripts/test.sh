#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine as root: installs and starts everything it needs
# (Docker engine, the TAO test image, the Slurm lab, the Kubernetes lab with a real kubelet node), then lints, type-checks and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
bash scripts/install.sh
bash scripts/ensure-dockerd.sh
bash scripts/ensure-chromium.sh  # headless Chromium and selenium: the dashboard's browser tests
bash scripts/build-test-image.sh
bash scripts/build-llm-image.sh
bash scripts/slurm-lab.sh up
bash scripts/brev-lab.sh up
bash scripts/k8s-lab.sh up
bash scripts/k8s-lab.sh node-up
TAOPLAN_TEST_POSTGRES_DSN=$(bash scripts/ensure-postgres.sh); export TAOPLAN_TEST_POSTGRES_DSN
echo "== ruff"; ruff check . && ruff format --check .
echo "== mypy"; mypy
echo "== import layers"; lint-imports --no-cache
echo "== package structure"; python3 scripts/check-structure.py
echo "== pytest"
python3 -m pytest -q -p no:cacheprovider tests "$@"
echo "test.sh: done in $((SECONDS - started)) s"
