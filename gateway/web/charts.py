"""Small bar charts drawn on the server: the geometry an SVG template draws, no script.

The labels (the scale's top, the first and last day) are HTML around the
drawing, so they keep their size however narrow the screen.

A chart is a run of days (oldest first) and one or more series of counts per
day.  Series are stacked (parts of one total, such as messages per channel)
or side by side (two different things, such as codes and logins).  Colours
come from the stylesheet through each series' class, so the charts follow
the light and dark themes; every bar carries a ``<title>`` with its numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 800
HEIGHT = 160
_LEFT = 2
_RIGHT = WIDTH - 2
_TOP = 4
_BOTTOM = HEIGHT - 2


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    #: The CSS class that colours its bars (``series-1`` ... ``series-4``).
    css: str
    counts: Sequence[int]


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    w: float
    h: float
    css: str
    title: str


@dataclass(frozen=True, slots=True)
class Chart:
    """What the template draws, and a sentence that says the same for a screen reader."""

    width: int
    height: int
    #: Where the plot starts and ends, left to right.
    left: int
    right: int
    bars: list[Bar]
    gridlines: list[float]
    #: The scale's top (the upper gridline), and the first and last day, as labels.
    top: int
    first: str
    last: str
    legend: list[Series]
    summary: str
    empty: bool


def _label(day: str) -> str:
    """``2026-12-06`` as ``6 Dec``."""
    months = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    _, month, dom = day.split("-")
    return f"{int(dom)} {months[int(month) - 1]}"


def _ceiling(peak: int) -> int:
    """A round top for the scale: 1, 2, 5, 10, 20, 50, ..."""
    top = 1
    while True:
        for step in (1, 2, 5):
            if top * step >= peak:
                return top * step
        top *= 10


def bar_chart(days: Sequence[str], series: Sequence[Series], *, stacked: bool, what: str) -> Chart:
    """The geometry of one chart; *what* names it in the summary (``messages received``)."""
    n = len(days)
    totals = [sum(s.counts[i] for s in series) for i in range(n)]
    per_day = (
        totals if stacked else [max((s.counts[i] for s in series), default=0) for i in range(n)]
    )
    top = _ceiling(max(per_day, default=0))
    slot = (_RIGHT - _LEFT) / max(n, 1)
    gap = max(1.0, slot * 0.18)
    plot = _BOTTOM - _TOP
    bars: list[Bar] = []
    for i, day in enumerate(days):
        x0 = _LEFT + i * slot + gap / 2
        width = slot - gap
        base = float(_BOTTOM)
        for k, s in enumerate(series):
            count = s.counts[i]
            if count <= 0:
                continue
            h = plot * count / top
            title = f"{_label(day)}: {count} {s.name}"
            if stacked:
                base -= h
                bars.append(
                    Bar(round(x0, 2), round(base, 2), round(width, 2), round(h, 2), s.css, title)
                )
            else:
                w = width / len(series)
                bars.append(
                    Bar(
                        round(x0 + k * w, 2),
                        round(_BOTTOM - h, 2),
                        round(w, 2),
                        round(h, 2),
                        s.css,
                        title,
                    )
                )
    parts = [f"{sum(s.counts)} {s.name}" for s in series]
    period = f"from {_label(days[0])} to {_label(days[-1])}" if n else ""
    summary = f"Bar chart of {what} per day {period}: {', '.join(parts)} in all."
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        left=_LEFT,
        right=_RIGHT,
        bars=bars,
        top=top,
        first=_label(days[0]) if n else "",
        last=_label(days[-1]) if n else "",
        gridlines=[float(_TOP), _TOP + plot / 2, float(_BOTTOM)],
        legend=list(series),
        summary=summary,
        empty=not any(totals),
    )
