"""Trends, conversion and representation through the config, the pipeline and the writer."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import geo_send as gs

from .conftest import GRID_CODES, LONG_TABLES, write_long_tables


@pytest.fixture
def long_area(make_area):
    area = make_area()
    area.config.write_text(area.config.read_text() + LONG_TABLES)
    write_long_tables(area.folder)
    return area


def test_without_long_tables_the_result_has_none_and_nothing_extra_is_written(make_area,
                                                                              tmp_path):
    result = gs.run(gs.Config.from_toml(make_area().config))
    assert result.trends is None and result.conversion is None and result.representation is None
    gs.write_outputs(result, tmp_path / "out")
    assert not (tmp_path / "out" / "trends.csv").exists()
    assert not (tmp_path / "out" / "charts").exists()


def test_declared_long_tables_give_trends_conversion_and_representation(long_area):
    cfg = gs.Config.from_toml(long_area.config)
    assert cfg.inputs.conversion.breakdown_columns == ("gender",)
    assert cfg.inputs.trends.path in cfg.inputs.files()
    result = gs.run(cfg)
    trends = result.trends.set_index(["measure", "ward_code"])
    assert trends.loc[("sen_support", GRID_CODES[-1]), "trend_vs_la"] == "faster"
    assert trends.loc[("sen_support", "all"), "ward_name"] == "Grid"
    conversion = result.conversion.set_index(["breakdown", "group"])
    assert conversion.loc[("ward", GRID_CODES[-1]), "vs_la"].startswith("higher")
    assert conversion.loc[("ward", GRID_CODES[-1]), "group_name"] == "Ward 9"
    assert set(conversion.loc["gender"].index) == {"F", "M", "all"}
    representation = result.representation.set_index(["ward_code", "group"])
    assert representation.loc[("all", "B"), "representation"] == "over-represented"
    # the true values stay in the result; only what is written is suppressed
    assert trends.loc[("ehcp", GRID_CODES[0]), "first_count"] == 2


def test_published_tables_and_charts_suppress_small_counts(long_area, tmp_path):
    result = gs.run(gs.Config.from_toml(long_area.config))
    paths = gs.write_outputs(result, tmp_path / "out")
    for key in ("trends_chart", "trend_map", "conversion_chart", "representation_chart"):
        assert paths[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    manifest = json.loads(paths["manifest"].read_text())
    assert manifest["outputs"]["trends_chart"] == "charts/trends.png"
    counts = {
        "trends_csv": ["first_count", "last_count", "min_count"],
        "trend_series_csv": ["count", "denominator_count"],
        "conversion_csv": ["sen_support_count", "new_ehcp_count"],
        "representation_csv": ["ehcp_count", "population_count"],
    }
    for key, columns in counts.items():
        table = pd.read_csv(paths[key], dtype=str, keep_default_na=False)
        for column in columns:
            shown = pd.to_numeric(table[column].where(table[column] != "c"), errors="coerce")
            assert not ((shown > 0) & (shown < 5)).any(), (key, column)
    series = pd.read_csv(paths["trend_series_csv"], dtype=str)
    ehcp = series.loc[series["measure"] == "ehcp"]
    # ward 1's 2 plans a year are hidden, and so is one more ward per year (secondary)
    assert (ehcp.groupby("year")["count"].apply(lambda s: (s == "c").sum()) == 2).all()
    assert (ehcp.loc[ehcp["count"] == "c", "pct"] == "c").all()
    trends = pd.read_csv(paths["trends_csv"], dtype=str).set_index(["measure", "ward_code"])
    assert trends.loc[("ehcp", GRID_CODES[0]), "annual_change_pct"] == "c"


def test_the_published_csvs_are_byte_identical_on_rerun(long_area, tmp_path):
    cfg = gs.Config.from_toml(long_area.config)
    first = gs.write_outputs(gs.run(cfg), tmp_path / "a")
    second = gs.write_outputs(gs.run(cfg), tmp_path / "b")
    for key in ("trends_csv", "trend_series_csv", "conversion_csv", "representation_csv"):
        assert first[key].read_bytes() == second[key].read_bytes()


def test_every_problem_in_the_long_tables_is_reported_together(long_area):
    frames = write_long_tables(long_area.folder)
    trends = frames["trends"].astype({"year": object})
    trends.loc[0, "ward_code"] = "E05001321"            # a pre-2023 Wolverhampton ward
    trends.loc[1, "sen_support_count"] = -3
    trends.loc[2, "year"] = "2021.5"
    trends.to_csv(long_area.folder / "trends.csv", index=False)
    conversion = frames["conversion"]
    conversion = pd.concat([conversion, conversion.head(1)])  # a repeated ward + year + gender
    conversion.to_csv(long_area.folder / "conversion.csv", index=False)
    frames["representation"].rename(columns={"ethnicity": "Ethnicity"}).to_csv(
        long_area.folder / "representation.csv", index=False)
    with pytest.raises(gs.ValidationError) as err:
        gs.run(gs.Config.from_toml(long_area.config))
    problems = err.value.problems
    text = "\n".join(problems)
    assert len(problems) == 5, text
    assert "E05001321 (row 2)" in text and "pre-2023" in text
    assert "'sen_support_count' should hold whole counts of 0 or more; row 3: -3" in text
    assert "'year' must hold a whole year" in text
    assert "ward_code + year + gender should appear once" in text
    assert "column 'ethnicity' not found; did you mean 'Ethnicity'?" in text


def test_a_missing_value_marker_stays_missing(long_area):
    frames = write_long_tables(long_area.folder)
    trends = frames["trends"].astype({"ehcp_count": object})
    trends.loc[trends["ward_code"] == GRID_CODES[3], "ehcp_count"] = "c"
    trends.to_csv(long_area.folder / "trends.csv", index=False)
    result = gs.run(gs.Config.from_toml(long_area.config))
    row = result.trends.set_index(["measure", "ward_code"]).loc[("ehcp", GRID_CODES[3])]
    assert row["years_count"] == 0 and pd.isna(row["annual_change_pct"])


def test_misspelt_long_table_keys_are_reported_with_suggestions(long_area):
    text = long_area.config.read_text().replace("count_columns", "count_colums")
    long_area.config.write_text(text.replace('breakdown_columns = ["gender"]',
                                             'breakdown_columns = "gender"'))
    with pytest.raises(gs.ConfigError) as err:
        gs.Config.from_toml(long_area.config)
    message = str(err.value)
    assert "[inputs.trends] unknown key 'count_colums'; did you mean 'count_columns'" in message
    assert "[inputs.conversion] breakdown_columns must be a list of column names" in message


def test_the_cli_reports_a_bad_long_table_in_one_line(long_area, cli, tmp_path):
    (long_area.folder / "conversion.csv").write_text("ward_code,year\nE05900001,2020\n")
    result = cli("run", "--config", long_area.config, "--out", tmp_path / "out")
    assert result.exit_code == gs.ValidationError.exit_code
    assert "sen_support_count" in result.err and "Traceback" not in result.err
    assert not (tmp_path / "out").exists()


def test_one_year_is_not_enough_for_trends_or_conversion(long_area):
    frames = write_long_tables(long_area.folder)
    frames["trends"].query("year == 2023").to_csv(long_area.folder / "trends.csv", index=False)
    with pytest.raises(gs.ValidationError, match="trends need at least two years in 'year'"):
        gs.run(gs.Config.from_toml(long_area.config))
    frames["trends"].to_csv(long_area.folder / "trends.csv", index=False)
    text = long_area.config.read_text().replace('breakdown_columns = ["gender"]',
                                                'breakdown_columns = ["gender"]\n'
                                                'cohort_years = [2023]')
    long_area.config.write_text(text)
    with pytest.raises(gs.ValidationError, match=r"year t \+ 1, but the table has years 2019, "
                                                 r"2020, 2021, 2022, 2023 and cohort_years"):
        gs.run(gs.Config.from_toml(long_area.config))


def test_a_blank_breakdown_value_is_reported(long_area):
    frames = write_long_tables(long_area.folder)
    frames["representation"].loc[4, "ethnicity"] = ""
    frames["representation"].to_csv(long_area.folder / "representation.csv", index=False)
    with pytest.raises(gs.ValidationError, match="column 'ethnicity' is empty on row"):
        gs.run(gs.Config.from_toml(long_area.config))


def test_plain_sentences_name_only_published_groups(long_area):
    from geo_send.equity import (
        describe_conversion,
        describe_representation,
        publish_representation,
    )
    from geo_send.trends import describe_trends, publish_trends

    result = gs.run(gs.Config.from_toml(long_area.config))
    trends, _ = publish_trends(result.trends, result.trend_series, threshold=5)
    sentences = describe_trends(trends)
    assert sentences[0].startswith("SEN support: across the whole area the rate changed by +")
    assert "Faster than the rest of the area: Ward 9." in sentences[0]
    assert "No area's trend differs clearly" in sentences[1]
    conversion = describe_conversion(result.conversion)
    assert "Well above the area's rate (99.8% funnel limit): Ward 9 (" in conversion[0]
    assert conversion[1].endswith("Every group is within the 95% funnel limits.")
    published = publish_representation(result.representation, threshold=5)
    text = describe_representation(published)[0]
    assert text.startswith("Among EHC plans across the whole area, by ethnicity, "
                           "over-represented: B (ratio 1.91")
    assert "; under-represented: A (ratio 0.59" in text


def test_the_report_gains_the_three_sections_only_with_the_data(long_area, make_area, tmp_path):
    paths = gs.write_outputs(gs.run(gs.Config.from_toml(long_area.config)), tmp_path / "with")
    html = paths["report"].read_text()
    for heading in ("Trends over time", "From SEN support to an EHC plan",
                    "Representation among EHC plans"):
        assert f"<h2>{heading}</h2>" in html
    assert "Faster than the rest of the area: Ward 9." in html
    assert "Counts below 5 are withheld (c)" in html
    more = html[html.index('<div class="more">'):]
    assert more.count("data:image/png;base64,") == 3
    plain = make_area()  # the same folder with the plain configuration
    html = gs.write_outputs(gs.run(gs.Config.from_toml(plain.config)),
                            tmp_path / "without")["report"].read_text()
    assert 'class="more"' not in html and "Trends over time" not in html
