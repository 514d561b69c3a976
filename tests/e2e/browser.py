"""Headless Chromium for the dashboard tests: Debian's chromium and chromium-driver through selenium
(``scripts/ensure-chromium.sh`` installs them), waits that are bounded polls, and screenshots."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

LAPTOP = (1366, 900)
PHONE = (360, 780)
WAIT = 20.0  # the most any wait below takes; a wait that ends sooner is not a timing assertion


@contextmanager
def chromium(size: tuple[int, int] = LAPTOP) -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    if not Path("/usr/bin/chromedriver").exists():
        pytest.skip("chromium-driver is not installed (bash scripts/ensure-chromium.sh)")
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager downloads nothing
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={size[0]},{size[1]}", "--hide-scrollbars"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: Any, what: str, check: Any, timeout: float = WAIT) -> Any:
    """Wait (up to ``timeout``) until ``check(driver)`` is truthy; fail naming ``what``."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        from selenium.common.exceptions import StaleElementReferenceException

        wait = WebDriverWait(
            driver, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)
        )
        return wait.until(check)
    except TimeoutException:
        raise AssertionError(f"{what}: not within {timeout:.0f} s; page text:\n{_text(driver)}") from None


def _text(driver: Any) -> str:
    try:
        return str(driver.find_element("tag name", "body").text)[:3000]
    except Exception:  # noqa: BLE001 - only for the failure message
        return "?"


_CELLS = """
const out = {};
for (const row of document.querySelectorAll('#' + arguments[0] + ' tbody tr:not(.empty)')) {
  const values = {};
  for (const td of row.cells) values[td.dataset.label] = td.innerText.trim();
  const badge = row.querySelector('[data-state]');
  if (badge) values.state = badge.dataset.state;
  if (row.cells.length) out[row.cells[0].innerText.trim()] = values;
}
return out;
"""


def cells(driver: Any, table_id: str) -> dict[str, dict[str, str]]:
    """The rows of a dashboard table, by first cell: {column label: text} (read in one script call,
    so a table the page redraws meanwhile is never half read)."""
    return dict(driver.execute_script(_CELLS, table_id))


def state_of(driver: Any, name: str) -> str | None:
    """The state the services table shows for ``name`` (its badge's data-state), or None."""
    return cells(driver, "services").get(name, {}).get("state")


def shoot(driver: Any, path: Path, size: tuple[int, int] = LAPTOP) -> Path:
    """A screenshot of the whole page, from its top, at ``size`` width (a phone's is a mobile viewport)."""
    phone = size[0] < 600
    metrics = {"width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": phone}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    driver.execute_script("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)")
    height = driver.execute_script("return document.documentElement.scrollHeight")
    metrics["height"] = max(size[1], min(int(height), 4000))
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    return path


def enter_key(driver: Any, key: str) -> None:
    form = wait_for(driver, "the key form", lambda d: _visible(d, "key-form"))
    form.find_element("id", "key-input").send_keys(key)
    form.find_element("css selector", "button[type=submit]").click()


def _visible(driver: Any, element_id: str) -> Any:
    found = driver.find_elements("id", element_id)
    return found[0] if found and found[0].is_displayed() else None
