"""The web UI's pure helpers: Markdown sanitising, which URIs may become links, where a
sign-in may send the browser, and the geometry of the metric chart."""

from __future__ import annotations

import pytest

from modelregistry.http.ui.charts import MAX_MARKERS, metric_chart
from modelregistry.http.ui.rendering import markdown_html, path_breaks, resource_link, safe_link
from modelregistry.http.ui.signing import safe_next


def test_markdown_keeps_formatting_and_drops_every_script_vector() -> None:
    html = str(
        markdown_html(
            "# Card\n\n**bold** <script>alert(1)</script> <img src=x onerror=alert(1)>\n\n"
            "[bad](javascript:alert(1)) [good](https://example.com) "
            '<a href="javascript:alert(1)">raw</a>\n\n| a | b |\n|---|---|\n| 1 | 2 |\n'
        )
    )
    assert "<h1>Card</h1>" in html
    assert "<strong>bold</strong>" in html
    assert "<table>" in html
    assert '<a href="https://example.com" rel="noopener noreferrer nofollow">good</a>' in html
    assert "<script" not in html
    assert "<img" not in html
    assert '<a href="javascript' not in html


@pytest.mark.parametrize(
    ("uri", "linked"),
    [
        ("https://git.example.com/repo.git", True),
        ("http://example.com/x", True),
        ("javascript:alert(1)", False),
        ("JaVaScRiPt:alert(1)", False),
        (" javascript:alert(1)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("vbscript:msgbox", False),
        ("s3://bucket/key", False),
        ("https://example.com/\x00x", False),
        ("", False),
    ],
)
def test_only_http_uris_become_links(uri: str, linked: bool) -> None:
    assert (safe_link(uri) is not None) is linked


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/models/vision", "/models/vision"),
        ("//evil.example/x", "/models"),
        ("https://evil.example/", "/models"),
        ("/\\evil.example", "/models"),
        ("", "/models"),
    ],
)
def test_sign_in_only_returns_to_a_path_of_this_site(target: str, expected: str) -> None:
    assert safe_next(target) == expected


def test_audited_resources_link_only_to_pages_that_exist() -> None:
    assert resource_link("models/vision") == "/models/vision"
    assert resource_link("models/vision/versions/3") == "/models/vision/versions/3"
    assert resource_link("models/vision/versions/3/comments/1") is None
    assert resource_link("tokens/abc") is None
    assert resource_link("models//versions/3") is None


def test_chart_marks_production_with_a_distinct_point() -> None:
    chart = metric_chart("loss", [("v1", 0.5, False), ("v2", None, False), ("v3", 0.2, True)])
    assert chart is not None
    assert [(p.label, p.highlighted) for p in chart.points] == [("v1", False), ("v3", True)]
    low, high = chart.points
    assert low.y < high.y  # 0.5 is drawn higher up (smaller y) than 0.2
    assert chart.every_point_marked


def test_a_long_series_keeps_the_line_and_marks_only_production() -> None:
    series = [(f"v{i}", float(i), i == 7) for i in range(MAX_MARKERS + 50)]
    chart = metric_chart("acc", series)
    assert chart is not None
    assert [p.label for p in chart.points] == ["v7"]
    assert chart.polyline.count(",") == len(series)
    assert not chart.every_point_marked
    assert len(chart.x_ticks) <= 12


def test_no_chart_without_values() -> None:
    assert metric_chart("acc", [("v1", None, False)]) is None


def test_the_production_label_stays_inside_the_chart_at_either_edge() -> None:
    chart = metric_chart("acc", [("v1", 0.1, True), ("v2", 0.2, False), ("v3", 0.3, False)])
    assert chart is not None
    assert chart.points[0].label_anchor == "start"
    chart = metric_chart("acc", [("v1", 0.1, False), ("v2", 0.2, False), ("v3", 0.3, True)])
    assert chart is not None
    assert chart.points[-1].label_anchor == "end"


def test_a_file_path_may_wrap_only_after_its_slashes_and_stays_escaped() -> None:
    shown = str(path_breaks('weights/"><img src=x>/model.bin'))
    assert shown == "weights/<wbr>&#34;&gt;&lt;img src=x&gt;/<wbr>model.bin"
