#!/usr/bin/env bash
# The demo, on a fresh Debian machine as root: Docker engine, the locally built TAO test image,
# then `taoplan apply` of services.yaml and a look at what runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash scripts/ensure-dockerd.sh
bash scripts/build-test-image.sh
set -x
taoplan validate
taoplan plan
taoplan apply --auto-approve
taoplan status
taoplan plan --detailed-exitcode
