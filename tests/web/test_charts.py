"""Chart geometry (pure) and the small formatting rules the pages rely on."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from streamr_coordinator.web.charts import (
    HEIGHT,
    LABEL_ROOM,
    WIDTH,
    Share,
    bar_chart,
    hourly_split_chart,
)
from streamr_coordinator.web.formatting import money, size
from streamr_coordinator.web.pages import rtmp_url


def test_bars_scale_to_the_largest_value_and_keep_every_nth_label() -> None:
    chart = bar_chart([("a", 50), ("b", 100), ("c", 0), ("d", 25)], str, "d", label_every=2)
    plot = HEIGHT - LABEL_ROOM
    assert [bar.height for bar in chart.bars] == [plot / 2, plot, 0, plot / 4]
    assert [bar.y + bar.height for bar in chart.bars] == [plot] * 4  # all stand on the axis
    assert [bar.label for bar in chart.bars] == ["a", "", "c", ""]
    assert chart.bars[1].title == "b: 100" and chart.maximum == 100


@given(st.lists(st.integers(min_value=0, max_value=10**12), max_size=60))
def test_bars_stay_inside_the_chart(values: list[int]) -> None:
    chart = bar_chart([(str(i), v) for i, v in enumerate(values)], str, "d")
    assert chart.empty == (not values)
    for bar in chart.bars:
        assert bar.x >= 0 and bar.x + bar.width <= WIDTH + 0.01
        assert bar.y >= 0 and bar.y + bar.height <= HEIGHT - LABEL_ROOM + 0.01


def test_negative_values_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        bar_chart([("a", -1)], str, "d")


def test_share_is_the_edges_part_of_viewer_time() -> None:
    share = Share("last hour", edge_seconds=1800, origin_seconds=600)
    assert share.edge_percent == 75.0 and share.edge_width(600) == 450.0
    assert Share("empty", 0, 0).edge_percent == 0.0


def test_formats() -> None:
    assert money(123456, "credits") == "1,234.56 credits"
    assert money(300, "EUR") == "3.00 EUR"
    assert size(999) == "999 B" and size(3_000_000) == "3.0 MB"
    assert rtmp_url("rtmp://203.0.113.7/live", "coord") == "rtmp://203.0.113.7/live"
    assert rtmp_url(None, "coord.example.org") == "rtmp://coord.example.org/live"


def test_hourly_bars_stack_friends_below_the_origin() -> None:
    chart = hourly_split_chart([("08:00", 1800, 600), ("09:00", 0, 0), ("10:00", 0, 1200)], "d")
    plot = HEIGHT - LABEL_ROOM
    first, empty, last = chart.bars
    edge, origin = first.segments
    assert (edge.css_class, origin.css_class) == ("edge", "origin")
    assert edge.y + edge.height == plot and origin.y + origin.height == edge.y
    assert edge.height + origin.height == plot  # the fullest hour fills the plot
    assert [s.height for s in empty.segments] == [0, 0] and empty.title.endswith("no viewers")
    assert last.segments[0].height == 0 and last.segments[1].height == plot / 2
    assert first.title == "08:00: 40.0 viewer-minutes, 75 % by friends"
    with pytest.raises(ValueError, match="must not be negative"):
        hourly_split_chart([("x", -1, 0)], "d")
