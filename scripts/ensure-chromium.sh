#!/usr/bin/env bash
# Ensures headless Chromium works here for screenshot tests: Debian's `chromium`, `chromium-driver` and
# `fonts-dejavu-core` installed when missing, pip `selenium` importable by python3, and one real check:
# selenium drives headless Chromium to a data: URL and saves a PNG screenshot.
#   bash scripts/ensure-chromium.sh            # prints: chromium <version>, chromedriver, selenium <version>, PNG path
#   bash scripts/ensure-chromium.sh --verify   # run the screenshot check even when it passed before
# Idempotent: the check is remembered under /var/cache/taoplan/ per (chromium, driver, selenium) version,
# so a second run only looks at versions (well under a second).
set -euo pipefail

CACHE="${TAOPLAN_CACHE:-/var/cache/taoplan}"
PY="${PYTHON:-python3}"
SELENIUM_REQ="${SELENIUM_REQ:-selenium>=4.20}"
FORCE=0
[[ "${1:-}" == "--verify" ]] && FORCE=1

log() { echo "ensure-chromium: $*" >&2; }
die() { echo "ensure-chromium: $*" >&2; exit 1; }

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
[[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]] || missing+=(fonts-dejavu-core)
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi
if ! "$PY" -c 'import selenium' 2>/dev/null; then
  log "installing $SELENIUM_REQ"
  "$PY" -m pip install -q --disable-pip-version-check "$SELENIUM_REQ" >&2
fi

# Package versions from dpkg (starting the browser just to ask costs about a second).
CHROMIUM_VERSION="$(dpkg-query -W -f '${Version}' chromium 2>/dev/null || chromium --version | awk '{print $2}')"
DRIVER_VERSION="$(dpkg-query -W -f '${Version}' chromium-driver 2>/dev/null || chromedriver --version | awk '{print $2}')"
SELENIUM_VERSION="$("$PY" -c 'import selenium; print(selenium.__version__)')"
KEY="$(printf '%s %s %s\n' "$CHROMIUM_VERSION" "$DRIVER_VERSION" "$SELENIUM_VERSION" | sha256sum | cut -c1-12)"
STAMP="$CACHE/chromium-ok-$KEY"
SHOT="$CACHE/chromium-check.png"
mkdir -p "$CACHE"

if [[ "$FORCE" == 0 && -f "$STAMP" && -s "$SHOT" ]]; then
  echo "chromium $CHROMIUM_VERSION, chromedriver $DRIVER_VERSION, selenium $SELENIUM_VERSION, $SHOT (checked before)"
  exit 0
fi

# The real check. Selenium is given the Debian driver and browser, so Selenium Manager downloads nothing.
SE_OFFLINE=true SHOT="$SHOT" timeout 120 "$PY" - <<'EOF' || die "headless Chromium could not take a screenshot (see above)"
import os
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=640,360"):
    options.add_argument(arg)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
try:
    html = "<html><body style='font-family:DejaVu Sans'><h1 id='t'>taoplan chromium check</h1></body></html>"
    driver.get("data:text/html;charset=utf-8," + html)
    text = driver.find_element("id", "t").text
    if text != "taoplan chromium check":
        sys.exit(f"page text was {text!r}")
    png = driver.get_screenshot_as_png()
finally:
    driver.quit()
if not png.startswith(b"\x89PNG") or len(png) < 1000:
    sys.exit(f"not a PNG screenshot ({len(png)} bytes)")
path = os.environ["SHOT"]
with open(path + ".tmp", "wb") as out:
    out.write(png)
os.replace(path + ".tmp", path)
EOF
touch "$STAMP"
echo "chromium $CHROMIUM_VERSION, chromedriver $DRIVER_VERSION, selenium $SELENIUM_VERSION, $SHOT"
