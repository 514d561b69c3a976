"""The one check of phase timings every platform's e2e test makes (no durations: those are bench figures)."""

from __future__ import annotations

from typing import Any

from taoplan.engine.phases import ORDER


def assert_phases_ordered(row: dict[str, Any], *expected: str) -> None:
    """Phase timings of one status --json row: each expected phase present, in ORDER, none overlapping."""
    spans = row["phases"]
    assert isinstance(spans, list) and spans, row
    names = [s["phase"] for s in spans]
    assert all(name in names for name in expected), names
    assert names == sorted(names, key=ORDER.index), names  # the phases' own order
    for span, after in zip(spans, spans[1:], strict=False):
        assert span["start"] <= span["end"] <= after["start"], spans
    assert row["slowest_phase"] and any(str(row["slowest_phase"]).startswith(n) for n in names), row
