"""Fault injection for the crash-safety tests: TAOPLAN_FAULT=<step> kills the process there with SIGKILL."""

from __future__ import annotations

import os
import signal


def point(step: str) -> None:
    if os.environ.get("TAOPLAN_FAULT") == step:
        os.kill(os.getpid(), signal.SIGKILL)
