"""Private files done safely: 0700 dirs, 0600 files, atomic replace, never through a symlink."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from taoplan.errors import UnsafePathError


def refuse_symlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISLNK(os.lstat(path).st_mode):
            raise UnsafePathError(
                f"{path}: is a symlink; refusing to follow it (remove it if it is not yours)"
            )


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` 0700 if missing; refuse a symlink planted in its place."""
    refuse_symlink(path)
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise UnsafePathError(f"{path}: cannot create state directory: {exc.strerror}") from None
    refuse_symlink(path)
    if not path.is_dir():
        raise UnsafePathError(f"{path}: exists and is not a directory")
    return path


def read_text(path: Path) -> str | None:
    """The file's text, or None when missing. Never follows a symlink."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == 40:  # ELOOP: the last component is a symlink
            raise UnsafePathError(f"{path}: is a symlink; refusing to follow it") from None
        raise
    with os.fdopen(fd, "r", encoding="utf-8") as fh:
        return fh.read()


def atomic_write(path: Path, text: str, mode: int = 0o600, *, sync: bool = True) -> None:
    """Write to a temp file beside ``path``, fsync, rename over it, fsync the directory.

    ``sync=False`` for scratch files that need atomicity but not durability across a power cut.
    """
    refuse_symlink(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if not sync:
        return
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def append_line(path: Path, line: str, *, sync: bool = True) -> None:
    refuse_symlink(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, (line.rstrip("\n") + "\n").encode())
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def open_lock_file(path: Path) -> int:
    refuse_symlink(path)
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
