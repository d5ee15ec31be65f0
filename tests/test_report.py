"""report.html: content, escaping, and what the writer puts beside it."""

from __future__ import annotations

import re

import pytest

from geo_send import figures, report
from geo_send._errors import ValidationError
from geo_send.config import Config


def strip(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.mark.parametrize(
    ("stats", "start"),
    [
        ({"I": 0.34, "p_sim": 0.007, "expected_I": -0.05, "permutations": 9999},
         "Need is geographically clustered"),
        ({"I": 0.05, "p_sim": 0.4, "expected_I": -0.05}, "There is no clear geographical pattern"),
        ({"I": -0.4, "p_sim": 0.01, "expected_I": -0.05}, "Need is geographically dispersed"),
        (None, "Spatial autocorrelation was not computed"),
    ],
    ids=["clustered", "no-pattern", "dispersed", "missing"],
)
def test_moran_in_words(stats, start):
    assert report.describe_moran(stats).startswith(start)


def test_moran_sentence_quotes_the_figures():
    text = report.describe_moran({"I": 0.337, "p_sim": 0.007, "expected_I": -0.0526,
                                  "permutations": 9999})
    assert "Moran's I = 0.34, against -0.05 expected with no pattern" in text
    assert "p = 0.007 from 9,999 permutations" in text


def test_report_lists_top_areas_with_intervals_and_drivers(wards_for_map):
    html = report.render_report(wards_for_map.drop(columns="geometry"), area_name="Grid", top_n=3)
    flat = strip(html)
    assert flat.count("<tr>") == 4  # header and three areas
    first = html.index("Ward 20")
    assert first < html.index("Ward 19") < html.index("Ward 18")
    assert "Ward 17" not in html
    assert "<tdclass=\"num\">1–3</td>" in flat  # rank interval of the top ward
    assert "SENsupport;IMD" in flat
    assert '<ahref="ranked_wards.csv">' in flat and '<ahref="need_map.html">' in flat


def test_report_is_self_contained(wards_for_map):
    png = figures.to_png(figures.index_map(wards_for_map))
    html = report.render_report(wards_for_map.drop(columns="geometry"), area_name="Grid",
                                figures={"Need index": png})
    assert "data:image/png;base64," in html
    assert not re.search(r"<(script|link)\b", html)
    assert not re.search(r"https?://", html)


def test_report_escapes_every_value(wards_for_map):
    frame = wards_for_map.drop(columns="geometry")
    frame.loc[frame.index[-1], "ward_name"] = "<script>alert(1)</script>"
    frame["top_drivers"] = "<img src=x onerror=alert(1)>"
    html = report.render_report(
        frame, area_name="<b>Grid</b>", run={"<i>key</i>": "<u>value</u>"},
        vintages={"x": "<s>source</s>"}, caveats=["<em>care</em>"], attribution="<q>OGL</q>",
    )
    for raw in ("<script>alert", "<img src=x", "<b>Grid", "<i>key", "<u>value", "<s>source",
                "<em>care", "<q>OGL"):
        assert raw not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;Grid&lt;/b&gt;" in html


def test_report_refuses_absolute_links_and_non_png_figures(wards_for_map):
    frame = wards_for_map.drop(columns="geometry")
    with pytest.raises(ValidationError, match="relative"):
        report.render_report(frame, area_name="Grid", links={"x": "javascript:alert(1)"})
    with pytest.raises(ValidationError, match="not PNG"):
        report.render_report(frame, area_name="Grid", figures={"x": b"GIF89a"})
    with pytest.raises(ValidationError, match="need_index"):
        report.render_report(frame.drop(columns="need_index"), area_name="Grid")


def test_run_summary_names_the_configuration_and_vintages():
    run, vintages = report.run_summary(Config.default(), n_areas=20, version="0.1.0")
    assert run["Areas"] == "20 wards in Wolverhampton"
    assert run["Seed"] == str(Config.default().seed)
    assert "January 2023" in vintages["SEN support, % of pupils (mainstream schools in ward)"]


def test_run_writes_map_figures_and_report(make_area, cli, tmp_path):
    area = make_area()
    out = tmp_path / "out"
    result = cli("run", "--config", area.config, "--out", out)
    assert result.exit_code == 0, result.err
    assert (out / "maps" / "need_index.png").read_bytes().startswith(b"\x89PNG")
    assert (out / "maps" / "lisa_clusters.png").is_file()
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "SEND need index: Grid" in html
    assert 'href="ranked_wards.csv"' in html
    assert (out / "need_map.html").stat().st_size < 1_000_000


def test_extra_sections_follow_the_first_page_escaped_or_are_absent(wards_for_map):
    frame = wards_for_map.drop(columns="geometry")
    assert 'class="more"' not in report.render_report(frame, area_name="Grid")
    png = figures.to_png(figures.index_map(wards_for_map))
    html = report.render_report(frame, area_name="Grid", sections=[
        report.ReportSection("Trends over time", ("Rising <fast>.", "Counts withheld."), png,
                             "Trend lines"),
        report.ReportSection("Representation", ("No group stands out.",)),
    ])
    flat = strip(html)
    assert flat.index('<divclass="more">') > flat.index("Readwithcare")
    assert "<h2>Trendsovertime</h2><p>Rising&lt;fast&gt;.</p><p>Countswithheld.</p>" in flat
    assert html.count("data:image/png;base64,") == 1
    assert "<h2>Representation</h2><p>Nogroupstandsout.</p></section>" in flat
