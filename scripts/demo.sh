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
taoplan request reason --prompt "What is happening on this street?" --image https://example.com/street.jpg --accept-defaults
taoplan request captions --prompt "Describe the scene." --accept-defaults --caller demo-user
taoplan stats
