"""Server-rendered SVG charts of one metric across versions: geometry here, markup in the
`chart.html` macro. Readable without colour: the PRODUCTION version is a diamond with a text
label, every other version a circle, and each point has a text title with its value."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 720
HEIGHT = 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 16, 24, 40
_TICKS = 4
# Up to this many versions every one gets a marker with its value as a tooltip; beyond, the
# line alone shows the trend (the page stays small and fast) and only PRODUCTION is marked.
MAX_MARKERS = 200


@dataclass(frozen=True)
class ChartPoint:
    x: float
    y: float
    label: str  # e.g. "v7"
    value: float
    highlighted: bool  # the PRODUCTION version

    @property
    def label_anchor(self) -> str:
        """Where the PRODUCTION label hangs, so that it stays inside the chart at its edges."""
        if self.x > WIDTH - _RIGHT - 60:
            return "end"
        if self.x < _LEFT + 60:
            return "start"
        return "middle"


@dataclass(frozen=True)
class Tick:
    position: float
    text: str


@dataclass(frozen=True)
class Chart:
    metric: str
    width: int
    height: int
    points: list[ChartPoint]  # those drawn as markers
    every_point_marked: bool
    polyline: str
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    plot_left: int
    plot_right: int
    plot_top: int
    plot_bottom: int


def metric_chart(
    metric: str, series: Sequence[tuple[str, float | None, bool]], max_x_labels: int = 12
) -> Chart | None:
    """A chart of (label, value or None, highlighted) in order; None when no value exists."""
    valued = [
        (i, label, value, mark)
        for i, (label, value, mark) in enumerate(series)
        if value is not None
    ]
    if not valued:
        return None
    low = min(v for _, _, v, _ in valued)
    high = max(v for _, _, v, _ in valued)
    if high == low:
        low, high = low - 1.0, high + 1.0
    plot_w = WIDTH - _LEFT - _RIGHT
    plot_h = HEIGHT - _TOP - _BOTTOM
    span = max(len(series) - 1, 1)

    def x_of(index: int) -> float:
        return _LEFT + (plot_w * index / span if len(series) > 1 else plot_w / 2)

    def y_of(value: float) -> float:
        return _TOP + plot_h * (1 - (value - low) / (high - low))

    every_point_marked = len(valued) <= MAX_MARKERS
    polyline = " ".join(f"{x_of(i):.1f},{y_of(v):.1f}" for i, _, v, _ in valued)
    points = [
        ChartPoint(round(x_of(i), 1), round(y_of(v), 1), label, v, mark)
        for i, label, v, mark in valued
        if mark or every_point_marked
    ]
    y_ticks = [
        Tick(
            round(y_of(low + (high - low) * k / _TICKS), 1),
            f"{low + (high - low) * k / _TICKS:.4g}",
        )
        for k in range(_TICKS + 1)
    ]
    step = max(1, -(-len(series) // max_x_labels))
    x_ticks = [Tick(round(x_of(i), 1), series[i][0]) for i in range(0, len(series), step)]
    return Chart(
        metric=metric,
        width=WIDTH,
        height=HEIGHT,
        points=points,
        polyline=polyline,
        every_point_marked=every_point_marked,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        plot_left=_LEFT,
        plot_right=WIDTH - _RIGHT,
        plot_top=_TOP,
        plot_bottom=HEIGHT - _BOTTOM,
    )
