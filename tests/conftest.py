"""Shared fixtures: a small synthetic area written to disk, and an in-process CLI runner."""

from __future__ import annotations

import hashlib
import textwrap
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from geo_send.cli import main

REPO = Path(__file__).resolve().parent.parent
RAW = REPO.parent / "shared" / "data" / "raw"
SEED = 12345

#: Codes of the synthetic 3 x 3 grid of 1 km wards.
GRID_CODES = [f"E0590000{i}" for i in range(1, 10)]


def grid_wards(n: int = 3, size: float = 1000.0) -> gpd.GeoDataFrame:
    """An n x n grid of square wards near Wolverhampton (EPSG:27700)."""
    x0, y0 = 390_000.0, 298_000.0
    cells = [
        box(x0 + c * size, y0 + r * size, x0 + (c + 1) * size, y0 + (r + 1) * size)
        for r in range(n)
        for c in range(n)
    ]
    codes = [f"E059{i:05d}" for i in range(1, n * n + 1)]
    return gpd.GeoDataFrame(
        {"ward_code": codes, "ward_name": [f"Ward {i}" for i in range(1, n * n + 1)]},
        geometry=cells,
        crs="EPSG:27700",
    )


def grid_table(n: int = 3) -> pd.DataFrame:
    """Counts and scores for the grid: need rises from the south-west to the north-east."""
    k = n * n
    rng = np.random.default_rng(SEED)
    pupils = rng.integers(800, 1200, k)
    return pd.DataFrame(
        {
            "ward_code": [f"E059{i:05d}" for i in range(1, k + 1)],
            "pupils": pupils,
            "sen_support": (pupils * np.linspace(0.08, 0.2, k)).astype(int),
            "ehcp": (pupils * np.linspace(0.01, 0.05, k)).astype(int),
            "imd": np.round(np.linspace(10, 50, k), 2),
        }
    )


CONFIG = """
[area]
name = "Grid"

[inputs]
boundaries = "wards.gpkg"
table = "table.csv"
{extra}

[domains.prevalence]
weight = 0.5

[domains.deprivation]
weight = 0.5

[[indicators]]
name = "sen_support_pct"
domain = "prevalence"
kind = "proportion"
numerator = "sen_support"
denominator = "pupils"
multiplier = 100

[[indicators]]
name = "ehcp_per_1000"
domain = "prevalence"
kind = "proportion"
numerator = "ehcp"
denominator = "pupils"
multiplier = 1000

[[indicators]]
name = "imd_score"
domain = "deprivation"
kind = "score"
column = "imd"

[spatial]
permutations = 99
local_permutations = 99
"""


@dataclass
class Area:
    """A synthetic area on disk: its folder, config path and the frames written."""

    folder: Path
    config: Path
    wards: gpd.GeoDataFrame
    table: pd.DataFrame


@pytest.fixture
def make_area(tmp_path: Path) -> Callable[..., Area]:
    """Write the grid area to ``tmp_path/area`` and return it; arguments override parts.

    ``table`` replaces the CSV frame, ``csv_text`` the raw CSV text, ``wards`` the
    boundaries, ``extra`` adds TOML lines to ``[inputs]``, ``config`` replaces the TOML.
    """

    def make(
        *,
        table: pd.DataFrame | None = None,
        csv_text: str | None = None,
        wards: gpd.GeoDataFrame | None = None,
        extra: str = "",
        config: str | None = None,
        n: int = 3,
    ) -> Area:
        folder = tmp_path / "area"
        folder.mkdir(exist_ok=True)
        wards = grid_wards(n) if wards is None else wards
        table = grid_table(n) if table is None else table
        with warnings.catch_warnings():
            # a test may write boundaries without a CRS on purpose
            warnings.filterwarnings("ignore", message="'crs' was not provided")
            wards.to_file(folder / "wards.gpkg", driver="GPKG", engine="pyogrio")
        if csv_text is None:
            table.to_csv(folder / "table.csv", index=False)
        else:
            (folder / "table.csv").write_text(csv_text, encoding="utf-8")
        text = config if config is not None else CONFIG.format(extra=textwrap.dedent(extra))
        path = folder / "geo_send.toml"
        path.write_text(text, encoding="utf-8")
        return Area(folder=folder, config=path, wards=wards, table=table)

    return make


@dataclass
class CliResult:
    """Exit code and captured output of one in-process ``geo-send`` call."""

    exit_code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run ``geo-send`` in-process and capture its exit code and output."""

    def invoke(*args: str) -> CliResult:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return invoke


def folder_digest(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (to prove nothing changed)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }
