"""The configuration: defaults, every problem reported at once, helpful suggestions."""

from __future__ import annotations

import pytest

import geo_send as gs


def test_default_config_describes_the_wolverhampton_index():
    cfg = gs.Config.default()
    assert cfg.area_name == "Wolverhampton" and cfg.level == "ward"
    assert {d.name for d in cfg.domains} == {"prevalence", "deprivation", "outcomes"}
    assert {i.name for i in cfg.indicators} >= {"sen_support_pct", "ehcp_per_1000", "imd_score",
                                                 "idaci_per_100", "cyp_education_score"}
    assert all(p.is_file() for p in cfg.inputs.files())


def test_config_is_frozen_and_replace_returns_a_copy():
    cfg = gs.Config.default()
    with pytest.raises(AttributeError):
        cfg.seed = 1  # type: ignore[misc]
    assert cfg.replace(seed=1).seed == 1 and cfg.seed != 1


def test_with_weights_changes_only_the_named_weights():
    cfg = gs.Config.default()
    new = cfg.with_weights(domains={"outcomes": 0.5}, indicators={"imd_score": 2.0})
    assert {d.name: d.weight for d in new.domains}["outcomes"] == 0.5
    assert {i.name: i.weight for i in new.indicators}["imd_score"] == 2.0
    with pytest.raises(gs.ConfigError, match="unknown"):
        cfg.with_weights(domains={"nope": 1.0})


def test_all_problems_are_listed_together(make_area):
    area = make_area()
    text = area.config.read_text()
    text = text.replace('kind = "score"', 'kind = "scor"').replace("[spatial]", "[spatail]")
    text = text.replace('domain = "deprivation"', 'domain = "deprivaton"')
    area.config.write_text(text)
    with pytest.raises(gs.ConfigError) as err:
        gs.Config.from_toml(area.config)
    message = str(err.value)
    assert "'scor' is not one of" in message and "did you mean 'score'" in message
    assert "unknown key 'spatail'" in message and "did you mean 'spatial'" in message
    assert "'deprivaton' is not declared" in message


def test_not_toml(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[area\nname=")
    with pytest.raises(gs.ConfigError, match="not valid TOML"):
        gs.Config.from_toml(path)


def test_paths_are_relative_to_the_config_file(make_area):
    area = make_area()
    cfg = gs.Config.from_toml(area.config)
    assert cfg.inputs.table == (area.folder / "table.csv").resolve()


def test_index_settings_are_checked(make_area):
    area = make_area()
    text = area.config.read_text() + "\n[index]\nweight_spread = 1.5\ntop_n = 0\n"
    text = text.replace('column = "imd"', 'column = "imd"\nbenchmark = 30')
    area.config.write_text(text)
    with pytest.raises(gs.ConfigError) as err:
        gs.Config.from_toml(area.config)
    message = str(err.value)
    assert "weight_spread must be at least 0 and below 1" in message
    assert "top_n must be at least 1" in message
    assert "benchmark applies to count-based indicators only" in message


def test_siting_models_are_checked_and_kept_in_order(make_area):
    area = make_area()
    area.config.write_text(area.config.read_text() + '\n[siting]\nmodels = ["lscp", "mclp"]\n')
    assert gs.Config.from_toml(area.config).siting.models == ("lscp", "mclp")
    area.config.write_text(area.config.read_text().replace('"lscp", "mclp"', '"pmedain"'))
    with pytest.raises(gs.ConfigError, match="did you mean 'pmedian'"):
        gs.Config.from_toml(area.config)
