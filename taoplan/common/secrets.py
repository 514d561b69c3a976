"""Secret values: the environment first, then the credentials file that ``secrets_file:`` names (the
TAO skills keep theirs in ``~/.config/tao/.env``). The file must be a regular file, mode 0600 (no
access for group or others) and owned by the user; anything else is refused before it is read.

Values stay in this process's memory: never in an argv, a log line, state, an artifact or an error
message (errors about the file name the file and the line number, never the line). Every platform
reads a secret with ``require``; ``use_file`` is called once, by apply, before anything starts.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from taoplan.errors import ConfigError, PlatformError

#: Where the TAO skills keep credentials; doctor reports on it when it exists.
DEFAULT_FILE = "~/.config/tao/.env"

_LINE = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)")

_active: dict[str, str] = {}
_active_display: list[str] = []  # the file apply took secrets from (one, or none)


def resolve(text: str, base: Path) -> Path:
    """``~`` expanded; a relative path is relative to the services file's folder."""
    path = Path(os.path.expanduser(text))
    return path if path.is_absolute() else base / path


def problem(path: Path) -> str | None:
    """Why this file may not hold secrets (missing, not a regular file, readable by others, another
    owner's), with the fix; None when it is fine."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return f"{path} does not exist"
    except OSError as exc:
        return f"{path}: {exc.strerror}"
    if not stat.S_ISREG(info.st_mode):
        return f"{path} is not a regular file"
    if info.st_uid != os.getuid():
        return (
            f"{path} is owned by uid {info.st_uid}, not by you (uid {os.getuid()}): chown it, then chmod 600"
        )
    if info.st_mode & 0o077:
        return f"{path} is mode {stat.S_IMODE(info.st_mode):04o}: it must be 0600 (chmod 600 {path})"
    return None


def parse(path: Path) -> dict[str, str]:
    """``NAME=value`` lines (``export`` allowed, values optionally quoted, ``#`` comments). A bad line is
    named by its number only: its text may be a secret."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read: {type(exc).__name__}") from None
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.fullmatch(line)
        if match is None:
            raise ConfigError(
                f"{path}:{number}: expected NAME=value (the line is not shown: it may be a secret)"
            )
        values[match.group(1)] = _unquote(match.group(2))
    return values


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return re.split(r"\s+#", value, maxsplit=1)[0].strip()


def names_in(path: Path) -> set[str]:
    """The names that the file sets to something (for doctor: names only, the values are dropped)."""
    return {name for name, value in parse(path).items() if value}


def use_file(path: Path, where: str) -> None:
    """Take secrets from this file for the rest of the process (apply), after refusing an unsafe one.
    ``where`` locates the setting in the services file (``FILE:LINE:COL: secrets_file``)."""
    why = problem(path)
    if why is not None:
        raise ConfigError(f"{where}: {why}")
    _active.clear()
    _active.update(parse(path))
    _active_display[:] = [str(path)]


def value(name: str) -> str | None:
    """The environment's value (when set and not empty), else the secrets file's, else None."""
    return os.environ.get(name) or _active.get(name) or None


def sources() -> str:
    """Where ``value`` looks, in words: "the environment" or "the environment or FILE"."""
    return " or ".join(["the environment", *_active_display])


def require(name: str) -> str:
    found = value(name)
    if found is None:
        raise PlatformError(f"secret {name} is not set in {sources()}")
    return found
