#!/usr/bin/env bash
# Install taoplan (editable) with its development tools, for the current python3.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -e '.[dev]' 2>&1 | grep -v -E "Running pip as the 'root' user|dependency conflicts|requires .* which is not installed|incompatible" || true
python3 -c "import taoplan, _ruamel_yaml" || { echo "install.sh: taoplan did not install" >&2; exit 1; }
echo "install.sh: taoplan $(python3 -c 'import taoplan; print(taoplan.__version__)') installed"
