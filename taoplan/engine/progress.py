"""Progress while apply waits: a live line per service on a terminal, plain lines elsewhere."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import click


class Reporter:
    """Plain output: one line per phase change. Safe to call from several threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started: dict[str, float] = {}
        self._finished: dict[str, float] = {}

    def _elapsed(self, service: str) -> float:
        start = self._started.setdefault(service, time.monotonic())
        return max(0.0, self._finished.get(service, time.monotonic()) - start)

    def phase(self, service: str, text: str) -> None:
        with self._lock:
            click.echo(f"{service}: {text} ({self._elapsed(service):.1f}s)", err=True)

    def done(self, service: str, ok: bool, text: str) -> None:
        with self._lock:
            self._finished[service] = time.monotonic()
            mark = click.style("✓", fg="green") if ok else click.style("✗", fg="red")
            click.echo(f"{mark} {service}: {text} ({self._elapsed(service):.1f}s)", err=True)

    def close(self) -> None:
        pass


class LiveReporter(Reporter):
    """A rich live table on a terminal: phase and elapsed time per service."""

    def __init__(self) -> None:
        super().__init__()
        from rich.console import Console
        from rich.live import Live

        self._phases: dict[str, tuple[str, bool | None]] = {}
        self._console = Console(stderr=True)
        self._live = Live(console=self._console, refresh_per_second=4, get_renderable=self._table)
        self._live.__enter__()

    def _table(self) -> Any:
        from rich.table import Table

        table = Table.grid(padding=(0, 2))
        with self._lock:
            rows = list(self._phases.items())
        for service, (text, ok) in rows:
            mark = "[green]✓[/]" if ok else "[red]✗[/]" if ok is False else "[yellow]…[/]"
            table.add_row(mark, service, text, f"{self._elapsed(service):.1f}s")
        return table

    def phase(self, service: str, text: str) -> None:
        with self._lock:
            self._elapsed(service)
            self._phases[service] = (text, None)

    def done(self, service: str, ok: bool, text: str) -> None:
        with self._lock:
            self._finished[service] = time.monotonic()
            self._phases[service] = (text, ok)

    def close(self) -> None:
        self._live.__exit__(None, None, None)


def make_reporter() -> Reporter:
    return LiveReporter() if sys.stderr.isatty() else Reporter()
