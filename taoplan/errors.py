"""One error tree. Each error carries the message a user sees and the exit code the CLI returns.

The CLI maps these to output in exactly one place (``taoplan.cli``); nothing else prints tracebacks.
"""

from __future__ import annotations


class TaoplanError(Exception):
    """Base of every error taoplan reports to a user."""

    exit_code = 1

    def __init__(self, message: str, *, lines: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        # Several problems (one line each), e.g. every validation error of a file.
        self.lines = lines or [message]


class ConfigError(TaoplanError):
    """The services file or a references/ file is wrong. Nothing was changed."""


class PlatformError(TaoplanError):
    """A platform could not be reached or refused an operation."""


class LockHeldError(TaoplanError):
    exit_code = 5


class StalePlanError(TaoplanError):
    exit_code = 6


class UnsafePathError(TaoplanError):
    """A state or registry path is a symlink or has unsafe ownership: never followed."""


class ApplyFailed(TaoplanError):
    """At least one service did not converge; the others did and state records each outcome."""

    exit_code = 3


class RequestError(TaoplanError):
    """A request to a service could not be built, routed or answered."""
