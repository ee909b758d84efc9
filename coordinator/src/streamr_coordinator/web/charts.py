"""Chart geometry for inline SVG, computed here so pages need no JavaScript and no chart library.

Pure functions: numbers in, rectangles and labels out; the templates only draw them.
"""

from __future__ import annotations

from dataclasses import dataclass

# The page's content width (72rem less padding at 16px), so a chart across the page draws its
# axis labels at their CSS size.
WIDTH = 1120
HEIGHT = 200
LABEL_ROOM = 18  # below the bars, for the axis labels
MIN_SLOTS = 12  # a short series keeps bars of a sensible width instead of filling the chart


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: int
    title: str  # what a screen reader and a hover tooltip say


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    bars: list[Bar]
    maximum: int
    description: str  # the chart's text alternative
    maximum_text: str  # the largest value as the page says values (with its unit)

    @property
    def empty(self) -> bool:
        return not self.bars


def bar_chart(
    points: list[tuple[str, int]],
    describe_value,
    description: str,
    width: int = WIDTH,
    height: int = HEIGHT,
    label_every: int = 1,
) -> BarChart:
    """Bars for (label, value) points, scaled to the largest value; every `label_every`-th bar
    keeps its axis label so long series stay readable."""
    if any(value < 0 for _, value in points):
        raise ValueError("bar_chart: values must not be negative")
    maximum = max((value for _, value in points), default=0)
    plot_height = height - LABEL_ROOM
    slot = width / max(len(points), MIN_SLOTS)
    bars = []
    for index, (label, value) in enumerate(points):
        bar_height = plot_height * value / maximum if maximum else 0
        bars.append(
            Bar(
                x=round(index * slot + slot * 0.1, 2),
                y=round(plot_height - bar_height, 2),
                width=round(slot * 0.8, 2),
                height=round(bar_height, 2),
                label=label if index % label_every == 0 else "",
                value=value,
                title=f"{label}: {describe_value(value)}",
            )
        )
    return BarChart(width, height, bars, maximum, description, describe_value(maximum))


@dataclass(frozen=True)
class Share:
    """How viewer time split between friends' edges and the origin over a window."""

    window: str
    edge_seconds: float
    origin_seconds: float

    @property
    def total_seconds(self) -> float:
        return self.edge_seconds + self.origin_seconds

    @property
    def edge_percent(self) -> float:
        """The origin bandwidth saved: the share of viewer time that friends served."""
        return 100 * self.edge_seconds / self.total_seconds if self.total_seconds else 0.0

    def edge_width(self, width: int = WIDTH) -> float:
        return round(width * self.edge_percent / 100, 2)


@dataclass(frozen=True)
class Segment:
    y: float
    height: float
    css_class: str


@dataclass(frozen=True)
class StackedBar:
    x: float
    width: float
    label: str
    segments: list[Segment]
    title: str


@dataclass(frozen=True)
class StackedChart:
    width: int
    height: int
    bars: list[StackedBar]
    maximum: float
    description: str


def hourly_split_chart(
    points: list[tuple[str, float, float]],
    description: str,
    width: int = WIDTH,
    height: int = HEIGHT,
    label_every: int = 4,
) -> StackedChart:
    """Per (label, edge seconds, origin seconds): a bar of viewer time, friends' part below."""
    if any(edge < 0 or origin < 0 for _, edge, origin in points):
        raise ValueError("hourly_split_chart: viewer seconds must not be negative")
    maximum = max((edge + origin for _, edge, origin in points), default=0)
    plot_height = height - LABEL_ROOM
    slot = width / max(len(points), MIN_SLOTS)
    bars = []
    for index, (label, edge, origin) in enumerate(points):
        edge_height = plot_height * edge / maximum if maximum else 0
        origin_height = plot_height * origin / maximum if maximum else 0
        total = edge + origin
        share = f"{100 * edge / total:.0f} % by friends" if total else "no viewers"
        bars.append(
            StackedBar(
                x=round(index * slot + slot * 0.1, 2),
                width=round(slot * 0.8, 2),
                label=label if index % label_every == 0 else "",
                segments=[
                    Segment(round(plot_height - edge_height, 2), round(edge_height, 2), "edge"),
                    Segment(
                        round(plot_height - edge_height - origin_height, 2),
                        round(origin_height, 2),
                        "origin",
                    ),
                ],
                title=f"{label}: {total / 60:.1f} viewer-minutes, {share}",
            )
        )
    return StackedChart(width, height, bars, maximum, description)
