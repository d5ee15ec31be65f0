"""Progress lines for long steps, and --quiet."""

from __future__ import annotations

import logging

import pytest

from geo_send._progress import Progress, step

log = logging.getLogger("geo_send.test")


def test_step_says_what_it_does_and_records_its_time(caplog):
    timings: dict[str, float] = {}
    with caplog.at_level(logging.INFO, logger="geo_send"):
        with step(log, "weights", "building spatial weights", timings=timings):
            pass
    assert "building spatial weights" in caplog.text
    assert set(timings) == {"weights"} and timings["weights"] >= 0


def test_a_failed_step_records_no_time():
    timings: dict[str, float] = {}
    with pytest.raises(RuntimeError), step(log, "map", "writing", timings=timings):
        raise RuntimeError("boom")
    assert timings == {}


def test_progress_lines_show_count_share_and_respect_the_interval(caplog):
    with caplog.at_level(logging.INFO, logger="geo_send"):
        quiet = Progress(log, "permutations", total=999, every=3600)
        quiet.update(500)
        loud = Progress(log, "permutations", total=1000, every=0)
        loud.update(250)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [lines[0]] and "permutations: 250/1,000 (25%)" in lines[0]
    assert repr(loud) == "Progress('permutations', total=1000, every=0 s)"


def test_cli_reports_long_steps_and_quiet_silences_them(cli, tmp_path):
    loud = cli("run", "--out", tmp_path / "a")
    assert loud.exit_code == 0
    for words in ("loading boundaries", "Monte Carlo", "LISA and Gi*", "writing need_map.html"):
        assert words in loud.err
    quiet = cli("run", "--quiet", "--out", tmp_path / "b")
    assert quiet.exit_code == 0 and quiet.err == ""
