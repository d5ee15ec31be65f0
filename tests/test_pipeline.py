"""End-to-end runs: the embedded default, the council input paths, determinism."""

from __future__ import annotations

import dataclasses
import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

import geo_send as gs
from geo_send.pipeline import count_located_pupils

from .conftest import GRID_CODES

WOLVERHAMPTON_WARDS = [f"E0501{n}" for n in range(4838, 4858)]


@pytest.fixture(scope="module")
def default_result():
    return gs.run(gs.Config.default())


def test_default_run_ranks_the_twenty_current_wards(default_result):
    ranked = default_result.ranked
    assert sorted(ranked.index) == WOLVERHAMPTON_WARDS
    assert ranked["rank"].tolist() == list(range(1, 21))
    assert ranked["need_index"].is_monotonic_decreasing
    assert set(ranked["lisa_label"]) <= {"High-High", "Low-Low", "High-Low", "Low-High",
                                         "Not significant"}
    assert default_result.wards.crs == "EPSG:27700"


def test_default_run_puts_the_jsna_high_need_wards_near_the_top(default_result):
    # The 2026 JSNA names Bushbury South & Low Hill and East Park as high-need wards.
    top = default_result.ranked.head(5)["ward_name"].tolist()
    assert "East Park" in top and "Bushbury South & Low Hill" in top


def test_run_does_not_write_anything(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    gs.run(gs.Config.default())
    assert list(tmp_path.iterdir()) == []


def test_outputs_are_written_and_byte_identical_on_rerun(cli, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    assert cli("run", "--out", first).exit_code == 0
    assert cli("run", "--out", second).exit_code == 0
    names = {"ranked_wards.csv", "need_index.gpkg", "need_map.html", "run_manifest.json"}
    assert names <= {p.name for p in first.iterdir()}
    for name in ("ranked_wards.csv", "need_map.html", "report.html", "hubs.csv",
                 "maps/need_index.png", "maps/lisa_clusters.png", "maps/rank_intervals.png"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    csv = pd.read_csv(first / "ranked_wards.csv", dtype={"ward_code": str})
    gpkg = gpd.read_file(first / "need_index.gpkg", layer="wards")
    assert len(csv) == len(gpkg) == 20
    assert gpkg.crs == "EPSG:27700"
    assert csv["ward_code"].tolist() == gpkg["ward_code"].tolist()
    manifest = json.loads((first / "run_manifest.json").read_text())
    assert manifest["seed"] == gs.Config.default().seed
    assert manifest["rows"]["areas"] == 20
    assert all(len(h) == 64 for h in manifest["inputs_sha256"].values())
    assert len(manifest["inputs_sha256"]) == 5
    html = (first / "need_map.html").read_text()
    assert "East Park" in html and "legend" in html.lower()


def test_csv_floats_use_a_fixed_format(default_result, tmp_path):
    paths = gs.write_outputs(default_result, tmp_path)
    text = paths["ranked_csv"].read_text()
    assert "\r" not in text
    assert text.splitlines()[0].startswith("ward_code,ward_name,rank,need_index")


def test_synthetic_area_runs_and_ranks_the_high_need_corner_first(make_area):
    area = make_area()
    result = gs.run(gs.Config.from_toml(area.config))
    assert result.ranked.index[0] == GRID_CODES[-1]
    assert result.ranked.index[-1] == GRID_CODES[0]


def test_ward_level_council_table_is_joined_by_code(make_area):
    council = pd.DataFrame({"code": GRID_CODES[::-1], "resident_ehcp": np.arange(9) + 10,
                            "resident_pupils": np.full(9, 1000)})
    area = make_area(extra='[[inputs.extra_tables]]\npath = "council.csv"\ncode_column = "code"\n')
    council.to_csv(area.folder / "council.csv", index=False)
    text = area.config.read_text().replace(
        'numerator = "ehcp"\ndenominator = "pupils"',
        'numerator = "resident_ehcp"\ndenominator = "resident_pupils"')
    area.config.write_text(text)
    result = gs.run(gs.Config.from_toml(area.config))
    # council rows are reversed: ward E05900009 has resident_ehcp 10 -> 10 per 1,000
    assert result.wards.loc[GRID_CODES[-1], "ehcp_per_1000"] == pytest.approx(10.0)
    assert result.wards.loc[GRID_CODES[0], "ehcp_per_1000"] == pytest.approx(18.0)


def _pupils_xy(n_per_ward: int = 20) -> pd.DataFrame:
    rows = []
    for i, code in enumerate(GRID_CODES):
        r, c = divmod(i, 3)
        for j in range(n_per_ward):
            status = "EHCP" if j < i else ("SEN support" if j < 2 * i + 2 else "none")
            rows.append({"pupil_id": f"{code}-{j}", "x": 390_000 + c * 1000 + 100 + 30 * j,
                         "y": 298_000 + r * 1000 + 500, "sen": status, "lsoa": f"L{i}"})
    return pd.DataFrame(rows)


def test_pupil_level_records_located_by_easting_northing(make_area):
    pupils = _pupils_xy()
    area = make_area(extra='[inputs.pupils]\npath = "pupils.csv"\nstatus_column = "sen"\n'
                           'easting_column = "x"\nnorthing_column = "y"\n')
    pupils.to_csv(area.folder / "pupils.csv", index=False)
    text = area.config.read_text().replace(
        'numerator = "ehcp"\ndenominator = "pupils"',
        'numerator = "resident_ehcp_count"\ndenominator = "resident_pupils_count"')
    area.config.write_text(text)
    result = gs.run(gs.Config.from_toml(area.config))
    got = result.table.loc[GRID_CODES, ["resident_pupils_count", "resident_ehcp_count",
                                        "resident_sen_support_count"]]
    assert got["resident_pupils_count"].tolist() == [20] * 9
    assert got["resident_ehcp_count"].tolist() == list(range(9))
    assert got["resident_sen_support_count"].tolist() == [i + 2 for i in range(9)]


def test_pupil_level_records_located_by_lsoa(make_area):
    pupils = _pupils_xy()
    area = make_area(extra='lsoa_table = "lsoas.csv"\n[inputs.pupils]\npath = "pupils.csv"\n'
                           'status_column = "sen"\nlsoa_column = "lsoa"\n')
    pupils.to_csv(area.folder / "pupils.csv", index=False)
    pd.DataFrame({"lsoa_code": [f"L{i}" for i in range(9)], "ward_code": GRID_CODES}).to_csv(
        area.folder / "lsoas.csv", index=False)
    result = gs.run(gs.Config.from_toml(area.config))
    assert result.table.loc[GRID_CODES, "resident_ehcp_count"].tolist() == list(range(9))


def test_stages_do_not_mutate_their_inputs(make_area):
    area = make_area()
    cfg = gs.Config.from_toml(area.config)
    areas = gs.load_areas(cfg)
    table = gs.load_table(cfg, areas)
    before = table.copy()
    values = gs.compute_indicators(table, cfg.indicators)
    values_before = values.copy()
    gs.build_index(values, cfg.indicators, cfg.domains, cfg.index)
    pd.testing.assert_frame_equal(table, before)
    pd.testing.assert_frame_equal(values, values_before)


def test_ranked_table_carries_local_spatial_statistics(default_result):
    ranked = default_result.ranked
    for column in ("lisa_label", "lisa_p", "gi_z", "gi_label", "p_floor"):
        assert column in ranked.columns
    assert set(ranked["gi_label"]) <= {"Hot spot", "Cold spot", "Not significant"}
    assert ((ranked["lisa_p"] >= ranked["p_floor"]) & (ranked["lisa_p"] <= 1)).all()


def test_spatial_stats_cover_the_index_and_every_indicator(default_result):
    cfg = gs.Config.default()
    stats = default_result.spatial_stats
    assert list(stats["variables"]) == ["need_index"] + [s.name for s in cfg.indicators]
    assert stats["weights"]["kind"] == cfg.spatial.weights and stats["weights"]["n"] == 20
    for spec in cfg.indicators:
        entry = stats["variables"][spec.name]
        assert entry["headline"] == ("eb_moran" if spec.is_count_based else "moran")
        head = entry[entry["headline"]]
        assert head["seed"] == cfg.seed and head["permutations"] == cfg.spatial.permutations
        assert head["alternative"] == "two-sided" and entry["correction"] == cfg.spatial.correction
        assert entry["sentence"].startswith(spec.label)
    scale = stats["scale_sensitivity"]
    assert scale["level"] == "lsoa" and scale["lsoa_statistics"]["n"] == 161
    assert "imd_score" in scale["indicators_used"]


def test_lsoa_scale_check_summarises_161_lsoas_by_ward(default_result):
    scale = default_result.scale
    assert sorted(scale.index) == WOLVERHAMPTON_WARDS
    assert scale["lsoa_count"].sum() == 161
    assert scale["rank"].tolist() == default_result.wards.loc[scale.index, "rank"].tolist()


def test_spatial_outputs_are_written_and_identical_on_rerun(default_result, tmp_path):
    first = gs.write_outputs(default_result, tmp_path / "a")
    second = gs.write_outputs(gs.run(gs.Config.default()), tmp_path / "b")
    for key in ("spatial_stats", "scale_csv", "ranked_csv"):
        assert first[key].read_bytes() == second[key].read_bytes(), key
    stats = json.loads(first["spatial_stats"].read_text())
    assert stats == default_result.spatial_stats
    gpkg = gpd.read_file(first["geopackage"], layer="wards")
    assert {"lisa_label", "lisa_p", "gi_z", "gi_label", "p_floor"} <= set(gpkg.columns)


# -- the index: intervals, drivers, uncertainty, weights ----------------------------------


def test_ranked_csv_carries_intervals_drivers_and_rank_uncertainty(default_result, tmp_path):
    paths = gs.write_outputs(default_result, tmp_path)
    csv = pd.read_csv(paths["ranked_csv"], dtype={"ward_code": str})
    for column in ("rank_p05", "rank_median", "rank_p95", "p_top5", "top_drivers",
                   "prevalence_contribution", "ehcp_per_1000_raw", "ehcp_per_1000_lo",
                   "ehcp_per_1000_hi", "ehcp_per_1000_small_n", "ehcp_per_1000_vs_benchmark",
                   "imd_score_contribution"):
        assert column in csv.columns, column
    assert (csv["rank_p05"] <= csv["rank"]).all() and (csv["rank"] <= csv["rank_p95"]).all()
    assert csv["p_top5"].sum() == pytest.approx(5.0)
    assert set(csv["ehcp_per_1000_vs_benchmark"]) <= {"higher", "similar", "lower"}
    assert csv["top_drivers"].notna().all()
    gpkg = gpd.read_file(paths["geopackage"], layer="wards")
    assert {"rank_p95", "top_drivers", "sen_support_pct_lo"} <= set(gpkg.columns)
    manifest = json.loads(paths["manifest"].read_text())
    index = manifest["index"]
    assert [row["assumption"] for row in index["sensitivity"]] == [
        "count_noise", "weights", "method", "all"]
    assert index["uncertainty"]["draws"] == 1000 and index["uncertainty"]["seed"] == 20260
    assert index["comparators"]["ehcp_per_1000"] == {
        "value": pytest.approx(default_result.comparators["ehcp_per_1000"]),
        "source": "whole-area rate"}
    assert default_result.sensitivity.loc["all", "mean_abs_rank_shift"] > 0


def _disagreeing_area(make_area):
    """Prevalence rises from ward 1 to ward 9; deprivation falls: the weights decide."""
    table = pd.DataFrame({
        "ward_code": GRID_CODES,
        "pupils": [1000] * 9,
        "sen_support": [100, 113, 118, 131, 137, 152, 158, 171, 185],
        "ehcp": [20, 21, 25, 26, 29, 30, 34, 35, 39],
        "imd": [50.0, 47.5, 41.0, 40.2, 33.0, 31.7, 26.1, 22.4, 17.0],
    })
    return make_area(table=table)


def test_changing_one_weight_in_the_toml_changes_the_ranking_and_the_manifest(
        make_area, tmp_path):
    area = _disagreeing_area(make_area)
    text = area.config.read_text()
    for weight, top in (("0.9", GRID_CODES[-1]), ("0.1", GRID_CODES[0])):
        area.config.write_text(text.replace("[domains.prevalence]\nweight = 0.5",
                                            f"[domains.prevalence]\nweight = {weight}"))
        result = gs.run(gs.Config.from_toml(area.config))
        assert result.ranked.index[0] == top
        out = tmp_path / f"w{weight}"
        paths = gs.write_outputs(result, out)
        manifest = json.loads(paths["manifest"].read_text())
        domains = {d["name"]: d["weight"] for d in manifest["config"]["domains"]}
        assert domains == {"prevalence": float(weight), "deprivation": 0.5}


def test_with_weights_changes_the_ranking_as_the_toml_edit_does(make_area):
    area = _disagreeing_area(make_area)
    cfg = gs.Config.from_toml(area.config)
    assert gs.run(cfg.with_weights(domains={"deprivation": 5.0})).ranked.index[0] == GRID_CODES[0]
    assert gs.run(cfg.with_weights(domains={"prevalence": 5.0})).ranked.index[0] == GRID_CODES[-1]


def test_no_draws_leaves_rank_intervals_missing(make_area):
    area = make_area()
    area.config.write_text(area.config.read_text() + "\n[index]\ndraws = 0\n")
    result = gs.run(gs.Config.from_toml(area.config))
    assert result.uncertainty is None and result.sensitivity.empty
    assert result.ranked[["rank_p05", "rank_median", "rank_p95", "p_top5"]].isna().all().all()


def test_same_seed_same_rank_intervals_through_the_pipeline(make_area):
    area = make_area()
    cfg = gs.Config.from_toml(area.config)
    a, b = gs.run(cfg), gs.run(cfg)
    columns = ["rank_p05", "rank_median", "rank_p95", "p_top5"]
    pd.testing.assert_frame_equal(a.ranked[columns], b.ranked[columns])
    other = gs.run(cfg.replace(seed=cfg.seed + 1))
    assert (other.ranked[columns[:3]] - a.ranked[columns[:3]]).abs().max().max() <= 2


# -- LSOA level -----------------------------------------------------------------------------


def test_lsoa_level_run_ranks_the_161_lsoas_and_names_outputs_by_level(cli, tmp_path):
    cfg = gs.Config.from_toml(gs.config.default_root() / "data" / "wolverhampton_lsoa.toml")
    result = gs.run(cfg)
    assert result.wards.index.name == "lsoa_code" and len(result.wards) == 161
    assert result.ranked["rank"].tolist() == list(range(1, 162))
    assert "lsoa_name" in result.ranked.columns and "ward_name" not in result.ranked.columns
    paths = gs.write_outputs(result, tmp_path)
    assert paths["ranked_csv"].name == "ranked_lsoas.csv"
    assert gpd.list_layers(paths["geopackage"])["name"].tolist() == ["lsoas"]
    manifest = json.loads(paths["manifest"].read_text())
    assert {"load", "index", "spatial", "write need_map.html"} <= set(manifest["timings_s"])


def test_too_few_areas_is_a_clear_error(make_area):
    area = make_area(table=grid_table_with_one_index())
    with pytest.raises(gs.ValidationError, match="need at least 3"):
        gs.run(gs.Config.from_toml(area.config))


def grid_table_with_one_index() -> pd.DataFrame:
    from .conftest import grid_table

    table = grid_table().astype({"pupils": float, "sen_support": float, "ehcp": float,
                                 "imd": float})
    table.loc[1:, ["pupils", "sen_support", "ehcp", "imd"]] = np.nan
    return table


# -- pupil records at scale ------------------------------------------------------------------


def _pupil_area(make_area, pupils: pd.DataFrame, *, by: str):
    located = ('easting_column = "x"\nnorthing_column = "y"\n' if by == "xy"
               else 'lsoa_column = "lsoa"\n')
    extra = ('lsoa_table = "lsoas.csv"\n' if by == "lsoa" else "") + (
        '[inputs.pupils]\npath = "pupils.csv"\nstatus_column = "sen"\n' + located)
    area = make_area(extra=extra)
    pupils.to_csv(area.folder / "pupils.csv", index=False)
    pd.DataFrame({"lsoa_code": [f"L{i}" for i in range(9)], "ward_code": GRID_CODES}).to_csv(
        area.folder / "lsoas.csv", index=False)
    return gs.Config.from_toml(area.config)


@pytest.mark.parametrize("by", ["xy", "lsoa"])
def test_pupil_counts_do_not_depend_on_the_chunk_size(make_area, monkeypatch, by):
    cfg = _pupil_area(make_area, _pupils_xy(), by=by)
    areas = gs.load_areas(cfg)
    whole = count_located_pupils(cfg, areas)
    monkeypatch.setattr("geo_send.load.PUPIL_CHUNK_ROWS", 7)
    chunked = count_located_pupils(cfg, areas)
    pd.testing.assert_frame_equal(whole, chunked)
    assert whole["resident_ehcp_count"].tolist() == list(range(9))


def test_pupil_just_outside_the_boundary_goes_to_the_nearest_area(make_area, caplog):
    pupils = _pupils_xy(1)
    pupils.loc[0, "x"] = 389_900  # 100 m west of the grid
    cfg = _pupil_area(make_area, pupils, by="xy")
    counts = count_located_pupils(cfg, gs.load_areas(cfg))
    assert counts["resident_pupils_count"].tolist() == [1] * 9
    assert "1 pupil(s) lie just outside" in caplog.text


@pytest.mark.parametrize(
    "x, message",
    [("380000", r"outside every area, farther than 250 m \(row 2\)"),
     ("", r"1 row\(s\) have no x/y: row\(s\) 2"),
     ("east", r"column 'x' has 1 non-numeric value\(s\): 2: 'east'")],
    ids=["far-away", "blank", "text"],
)
def test_unlocatable_pupils_are_errors_naming_the_rows(make_area, x, message):
    pupils = _pupils_xy(1).astype({"x": str})
    pupils.loc[0, "x"] = x
    cfg = _pupil_area(make_area, pupils, by="xy")
    with pytest.raises(gs.ValidationError, match=message):
        count_located_pupils(cfg, gs.load_areas(cfg))


def test_unknown_lsoa_and_status_are_errors_naming_the_rows(make_area):
    pupils = _pupils_xy(1)
    pupils.loc[1, "lsoa"] = "E01999999"
    cfg = _pupil_area(make_area, pupils, by="lsoa")
    with pytest.raises(gs.ValidationError, match=r"row 3: 'E01999999'"):
        count_located_pupils(cfg, gs.load_areas(cfg))
    pupils = _pupils_xy(1)
    pupils.loc[2, "sen"] = "maybe"
    cfg = _pupil_area(make_area, pupils, by="lsoa")
    with pytest.raises(gs.ValidationError, match=r"row 4: 'maybe'"):
        count_located_pupils(cfg, gs.load_areas(cfg))


def test_report_says_where_the_hubs_are_and_who_needs_outreach(default_result, tmp_path):
    from geo_send.siting import describe_siting

    siting = default_result.siting
    names = default_result.wards["ward_name"]
    lines = describe_siting(siting, names)
    share = siting.summaries.iloc[0]["need_covered_share"]
    assert lines[0].startswith(f"{len(siting.hubs)} hub site(s) chosen by maximal covering")
    assert f"They have {share:.0%} of children's need" in lines[0]
    assert lines[0].endswith("within 2 km in a straight line.")
    for row in siting.hubs.itertuples():
        assert f"{row.site_name} ({names[row.ward_code]})" in lines[0]
    lscp = siting.summaries.loc["lscp"]
    assert lines[1] == f"Reaching all of it would take {int(lscp['n_sites'])} sites (set covering)."
    hub_priority = names[siting.wards.index[siting.wards["tier"] == "Hub priority"]]
    assert f"Hub priority: {', '.join(hub_priority)}." in lines
    assert lines[-1].endswith("none needs outreach.")
    # a ward flagged for outreach is named
    flagged = siting.wards.assign(outreach=siting.wards["high_need"]
                                  & (siting.wards["need_covered_share"] < 1.0))
    outreach_names = names[flagged.index[flagged["outreach"]]]
    assert len(outreach_names) > 0
    strict = dataclasses.replace(siting, wards=flagged)
    assert describe_siting(strict, names)[-1] == (
        f"Outreach (high need, under 50% of it within 2 km of a hub): "
        f"{', '.join(outreach_names)}.")
    # long lists are cut to five names and a count
    everyone = dataclasses.replace(siting, wards=siting.wards.assign(outreach=True))
    assert describe_siting(everyone, names)[-1].endswith(
        f"{', '.join(names[siting.wards.index[:5]])} and 15 more (see the ranked table).")
    paths = gs.write_outputs(default_result, tmp_path)
    report = paths["report"].read_text()
    assert "Community SEND hubs" in report and "none needs outreach" in report
