"""The patient page's risk per horizon: a small bar chart and its table.

One bar per horizon the model estimates (:mod:`icans.horizons`: the next 72 hours, the next 7
days, by day 28), its height the probability, a whisker its 95% uncertainty interval, labelled
with the window's days; then the same figures in a table. Drawn as inline SVG written here, not
with matplotlib: a few rectangles and lines, text a screen reader and a search can read, no
image to decode and nothing to load (no JavaScript, no external resource, like the rest of the
page). The risks are nested: each window contains the shorter ones, so the risk within 72 hours
<= within 7 days <= by day 28, the interval bounds too (one model, monotone in the window:
:mod:`model.risk_model`); the page says so.
"""

from __future__ import annotations

from collections.abc import Sequence

from reports import html as h
from runtime.assessor import HorizonRisk

SHORT = {"72h": "next 72 h", "7d": "next 7 days", "day28": "by day 28"}
"""The bars' labels (the horizons' full labels are in the table)."""

NESTED = (
    "The risks are nested: each window contains the shorter ones, so the risk within the next "
    "72 hours is at most the risk within the next 7 days, which is at most the risk by day 28 "
    "(72 h <= 7 d <= day 28), for the estimates and for each bound of their intervals. Near "
    "day 28 the windows end on day 28 and so become one."
)

WIDTH, HEIGHT = 420, 230  # the SVG's size in pixels
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 22, 52  # margins: the axis, the labels below the bars
SCALES = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)  # the axis ends at the first that holds all


def _percent(p: float) -> str:
    return f"{100 * p:.1f}%"


def window_text(landmark_day: int, end_day: int) -> str:
    """The window's days after prediction day ``landmark_day``: 'days 6-8', or 'day 28'."""
    first = landmark_day + 1
    return f"day {end_day}" if first == end_day else f"days {first}-{end_day}"


def _scale(risks: Sequence[HorizonRisk]) -> float:
    top = max(max(r.probability, r.interval[1] if r.interval else 0.0) for r in risks)
    return next(s for s in SCALES if top <= s)


def chart_svg(risks: Sequence[HorizonRisk], landmark_day: int) -> str:
    """The bars (``<rect class="bar" data-horizon=... data-probability=...>``), their interval
    whiskers and labels, as one inline ``<svg>`` element."""
    scale = _scale(risks)
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / len(risks)
    bar_w = min(70.0, slot * 0.5)

    def y(p: float) -> float:
        return TOP + plot_h * (1 - p / scale)

    parts = [
        f'<svg class="horizons" role="img" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" aria-labelledby="horizons-title">'
        '<title id="horizons-title">Risk by horizon, with 95% uncertainty intervals</title>'
    ]
    for k in range(5):  # the axis: five ticks from 0 to the scale
        p = scale * k / 4
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(p):.1f}" y2="{y(p):.1f}" '
            f'stroke="#ddd"/><text x="{LEFT - 4}" y="{y(p) + 4:.1f}" text-anchor="end" '
            f'font-size="10">{h.e(f"{100 * p:g}%")}</text>'
        )
    for i, r in enumerate(risks):
        centre = LEFT + slot * (i + 0.5)
        top = y(r.probability)
        parts.append(
            f'<rect class="bar" data-horizon="{h.e(r.horizon)}" '
            f'data-probability="{r.probability!r}" x="{centre - bar_w / 2:.1f}" '
            f'y="{top:.3f}" width="{bar_w:.1f}" height="{y(0) - top:.3f}" fill="#d62728">'
            f"<title>{h.e(r.label)}: {h.e(_percent(r.probability))}</title></rect>"
        )
        label_y = top - 4
        if r.interval is not None:
            low, high = y(r.interval[0]), y(r.interval[1])
            parts.append(
                f'<g class="interval" data-horizon="{h.e(r.horizon)}" stroke="#222">'
                f'<line x1="{centre:.1f}" x2="{centre:.1f}" y1="{low:.3f}" y2="{high:.3f}"/>'
                f'<line x1="{centre - 6:.1f}" x2="{centre + 6:.1f}" y1="{low:.3f}" '
                f'y2="{low:.3f}"/><line x1="{centre - 6:.1f}" x2="{centre + 6:.1f}" '
                f'y1="{high:.3f}" y2="{high:.3f}"/></g>'
            )
            label_y = min(label_y, high - 4)
        parts.append(
            f'<text x="{centre + bar_w / 2 + 3:.1f}" y="{max(label_y, 10):.1f}" '
            f'font-size="11">{h.e(_percent(r.probability))}</text>'
            f'<text class="horizon-label" x="{centre:.1f}" y="{HEIGHT - BOTTOM + 16}" '
            f'text-anchor="middle" font-size="12">{h.e(SHORT.get(r.horizon, r.horizon))}</text>'
            f'<text class="window" x="{centre:.1f}" y="{HEIGHT - BOTTOM + 32}" '
            f'text-anchor="middle" font-size="10" fill="#555">'
            f"{h.e(window_text(landmark_day, r.end_day))}</text>"
        )
    parts.append(
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="#222"/>'
        "</svg>"
    )
    return "".join(parts)


def horizons_section(risks: Sequence[HorizonRisk], landmark_day: int) -> str:
    """The chart, the table of every horizon's figures and the note that they are nested; for
    a model fitted for day 28 alone, a sentence saying so (one bar would say nothing more)."""
    if len(risks) < 2:
        return h.p(
            "This model version estimates the risk by day 28 only (no shorter horizons).",
            cls="horizons-note",
        )
    rows = [
        (
            r.label,
            window_text(landmark_day, r.end_day),
            _percent(r.probability),
            "-"
            if r.interval is None
            else f"{_percent(r.interval[0])} to {_percent(r.interval[1])}",
        )
        for r in risks
    ]
    return (
        h.p(
            "Risk by horizon after the landmark day (bars: the estimate; whiskers: its 95% "
            "uncertainty interval):"
        )
        + f"<figure>{chart_svg(risks, landmark_day)}</figure>"
        + h.table(["horizon", "window", "risk", "95% uncertainty interval"], rows, cls="horizons")
        + h.p(NESTED, cls="horizons-note")
        + h.p("The drivers and contributions below explain the risk by day 28.")
    )
