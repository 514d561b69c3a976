"""Behaviour knobs read from the container environment (all optional).

TAO_FAKE_LOAD_SECONDS   float, how long the model load takes (default 0)
TAO_FAKE_LOAD_FAIL      non-empty: the model load fails (after the delay) with this text
TAO_FAKE_INIT_SECONDS   float, extra time spent in the server's background initialization (default 0)
TAO_FAKE_INIT_FAIL      non-empty: the server's background initialization fails with this text
TAO_FAKE_INFER_SECONDS  float, how long each inference takes (default 0)
TAO_FAKE_INFER_FAIL     non-empty: every inference fails with this text (readiness still says 200)
TAO_FAKE_RECEIVED_PATH  where the "received" record is written (default /tmp/taoplan-fake-received.json)
"""

import logging
import os
import time

logger = logging.getLogger("taoplan_fake")
if not logger.handlers:
    _h = logging.StreamHandler()
    _h.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))
    logger.addHandler(_h)
    logger.setLevel(logging.INFO)
    logger.propagate = False

RECEIVED_PATH_DEFAULT = "/tmp/taoplan-fake-received.json"


def _seconds(name: str) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        logger.warning("ignoring %s=%r: not a number", name, raw)
        return 0.0
    return max(0.0, value)


def _text(name: str):
    value = os.environ.get(name)
    return value if value else None


def load_seconds() -> float:
    return _seconds("TAO_FAKE_LOAD_SECONDS")


def load_fail():
    return _text("TAO_FAKE_LOAD_FAIL")


def init_seconds() -> float:
    return _seconds("TAO_FAKE_INIT_SECONDS")


def init_fail():
    return _text("TAO_FAKE_INIT_FAIL")


def infer_seconds() -> float:
    return _seconds("TAO_FAKE_INFER_SECONDS")


def received_path() -> str:
    return os.environ.get("TAO_FAKE_RECEIVED_PATH") or RECEIVED_PATH_DEFAULT


def simulate_load(where: str, exc_type=RuntimeError) -> None:
    """Spend TAO_FAKE_LOAD_SECONDS, then fail with TAO_FAKE_LOAD_FAIL if it is set."""
    seconds = load_seconds()
    if seconds:
        logger.info("fake model load (%s): sleeping %.2fs (TAO_FAKE_LOAD_SECONDS)", where, seconds)
        time.sleep(seconds)
    message = load_fail()
    if message:
        logger.info("fake model load (%s): failing (TAO_FAKE_LOAD_FAIL): %s", where, message)
        raise exc_type(message)


def simulate_init() -> None:
    """Spend TAO_FAKE_INIT_SECONDS, then fail with TAO_FAKE_INIT_FAIL if it is set."""
    seconds = init_seconds()
    if seconds:
        logger.info("fake server init: sleeping %.2fs (TAO_FAKE_INIT_SECONDS)", seconds)
        time.sleep(seconds)
    message = init_fail()
    if message:
        logger.info("fake server init: failing (TAO_FAKE_INIT_FAIL): %s", message)
        raise RuntimeError(message)


def infer_fail():
    return _text("TAO_FAKE_INFER_FAIL")


def simulate_inference() -> None:
    """Spend TAO_FAKE_INFER_SECONDS, then fail with TAO_FAKE_INFER_FAIL if it is set."""
    seconds = infer_seconds()
    if seconds:
        time.sleep(seconds)
    message = infer_fail()
    if message:
        logger.info("fake inference: failing (TAO_FAKE_INFER_FAIL): %s", message)
        raise RuntimeError(message)
