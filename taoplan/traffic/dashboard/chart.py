"""The per-service chart, drawn as SVG here (no chart library, no CDN): requests per minute as bars
on the left axis, p50 and p95 latency as lines on the right axis, the last hour left to right.

Only numbers go into the markup; colours and fonts come from the one stylesheet (classes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

W, H = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 52, 84, 16, 34


def _nice(top: float) -> float:
    """A round axis maximum at or above ``top`` (1, 2, 5 x 10^n)."""
    if top <= 0:
        return 1.0
    step = 1.0
    while step * 10 <= top:
        step *= 10
    while step > top * 10:
        step /= 10
    for factor in (1, 2, 5, 10):
        if step * factor >= top:
            return step * factor
    return step * 10


def _label(value: float, unit: str = "") -> str:
    if value >= 1000 and unit == "ms":
        return f"{value / 1000:g} s"
    text = f"{value:g}" if value < 1e6 else f"{value:.3g}"
    return f"{text} {unit}".strip()


def _lines(
    values: Sequence[float | None], x: list[float], y_of: Callable[[float], float], css: str
) -> list[str]:
    """One polyline per run of minutes with a value; a lone minute is a dot."""
    out: list[str] = []
    run: list[str] = []

    def close() -> None:
        if len(run) > 1:
            out.append(f'<polyline class="{css}" points="{" ".join(run)}"/>')
        elif run:
            cx, cy = run[0].split(",")
            out.append(f'<circle class="{css} dot" cx="{cx}" cy="{cy}" r="2.5"/>')
        run.clear()

    for xi, value in zip(x, values, strict=True):
        if value is None:
            close()
        else:
            run.append(f"{xi:.1f},{y_of(value):.1f}")
    close()
    return out


def minute_chart(requests: Sequence[int], p50: Sequence[float | None], p95: Sequence[float | None]) -> str:
    """The SVG of one hour of minutes (oldest first)."""
    n = len(requests)
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    slot = plot_w / max(1, n)
    r_max = _nice(max(requests, default=0))
    ms_max = _nice(max((v for v in p95 if v is not None), default=0.0))

    def y_req(v: float) -> float:
        return TOP + plot_h - v / r_max * plot_h

    def y_ms(v: float) -> float:
        return TOP + plot_h - v / ms_max * plot_h

    x = [LEFT + (i + 0.5) * slot for i in range(n)]
    parts = [
        f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" xmlns="http://www.w3.org/2000/svg" '
        'aria-label="requests per minute and p50/p95 latency, last hour">',
        "<title>Requests per minute (bars) and p50/p95 latency (lines), last 60 minutes</title>",
    ]
    for frac in (0.0, 0.5, 1.0):
        y = TOP + plot_h - frac * plot_h
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="axis req" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f"{_label(r_max * frac)}</text>")  # fmt: skip
        parts.append(
            f'<text class="axis ms" x="{W - RIGHT + 6}" y="{y + 4:.1f}">{_label(ms_max * frac, "ms")}</text>'
        )
    for i, count in enumerate(requests):
        if count:
            top = y_req(count)
            parts.append(
                f'<rect class="bar" x="{LEFT + i * slot + 1:.1f}" y="{top:.1f}" '
                f'width="{max(1.0, slot - 2):.1f}" height="{TOP + plot_h - top:.1f}"><title>{count} requests</title></rect>'
            )
    parts += _lines(p50, x, y_ms, "p50")
    parts += _lines(p95, x, y_ms, "p95")
    base = H - 8
    for i, text in ((0, "-60 min"), (n // 2, "-30 min"), (n, "now")):
        anchor = "start" if i == 0 else "end" if i == n else "middle"
        parts.append(
            f'<text class="axis" x="{LEFT + i * slot:.1f}" y="{base}" text-anchor="{anchor}">{text}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
