"""Human views of plans and status. Plain text that reads well in a terminal, a CI log or a pipe."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

from taoplan.engine.plan import CREATE, DELETE, NOOP, REPLACE, Plan

_FIT_COLOR = {"fits": "green", "queues": "yellow", "cannot fit": "red", "unknown": None}
_SYMBOL = {CREATE: ("+", "green"), REPLACE: ("-/+", "yellow"), DELETE: ("-", "red"), NOOP: ("=", None)}


def format_plan(plan: Plan, *, color: bool = False, show_noop: bool = False) -> str:
    def style(text: str, fg: str | None) -> str:
        return click.style(text, fg=fg) if color and fg else text

    lines: list[str] = []
    for warning in plan.warnings:
        lines.append(style(f"Warning: {warning}", "yellow"))
    shown = [c for c in plan.changes if c.action != NOOP or c.reasons or show_noop]
    if shown:
        lines.append(
            f"taoplan will perform these actions (project {plan.project}, state serial {plan.state_serial}):"
        )
        lines.append("")
    for change in shown:
        symbol, fg = _SYMBOL[change.action]
        what = "no-op" if change.action == NOOP else change.action
        head = f"  {symbol:>3} {what:<8} {change.service}"
        if change.job_id and change.action != CREATE:
            head += f"  ({change.job_id})"
        lines.append(style(head, fg))
        lines.extend(f"          - {reason}" for reason in change.reasons)
        if change.fit:
            lines.append(
                style(f"          fit: {change.fit}: {change.fit_detail}", _FIT_COLOR.get(change.fit))
            )
    summary = plan.summary()
    if not plan.has_changes:
        lines.append(f"No changes. {summary[NOOP]} service(s) up to date.")
    else:
        if shown:
            lines.append("")
        lines.append(
            f"Plan: {summary[CREATE]} to create, {summary[REPLACE]} to replace, "
            f"{summary[DELETE]} to delete, {summary[NOOP]} unchanged."
        )
    if not plan.refreshed:
        lines.append("Note: refresh was off; the plan trusts recorded state.")
    return "\n".join(lines)


def plan_json(plan: Plan) -> str:
    return json.dumps(plan.to_json(), indent=2)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """Aligned plain-text columns."""
    cells = [[str(_cell(row.get(col))) for col in columns] for row in rows]
    widths = [max([len(col)] + [len(r[i]) for r in cells]) for i, col in enumerate(columns)]
    out = ["  ".join(col.upper().ljust(widths[i]) for i, col in enumerate(columns)).rstrip()]
    out += ["  ".join(r[i].ljust(widths[i]) for i in range(len(columns))).rstrip() for r in cells]
    return "\n".join(out)


def _cell(value: Any) -> Any:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.1f}s"
    return value
