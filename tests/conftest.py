"""Shared fixtures: a small synthetic area written to disk, and an in-process CLI runner."""

from __future__ import annotations

import hashlib
import os
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
#: The shared open data beside the checkout; GEO_SEND_RAW points elsewhere (a git worktree).
RAW = Path(os.environ.get("GEO_SEND_RAW", REPO.parent / "shared" / "data" / "raw"))
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


# -- maps and the headless browser (test_mapping, test_figures, test_report, test_browser) --

#: Debian's Chromium, driven by Playwright; never a downloaded browser.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
#: Screenshots also go here when the tests run from a checkout (git ignores outputs/*).
SCREENSHOTS = REPO / "outputs" / "screenshots"
NS = "Not significant"
LISA_CYCLE = ["High-High", NS, "Low-Low", NS, "High-Low", NS, "Low-High", NS, NS, NS]


def map_frame(rows: int = 4, cols: int = 5, size: float = 1000.0) -> gpd.GeoDataFrame:
    """A rows x cols grid of wards near Wolverhampton with every column the map can show.

    Wards are numbered row by row from the south-west; need rises with the number, so the
    last ward (north-east corner) has rank 1.
    """
    x0, y0 = 390_000.0, 298_000.0
    n = rows * cols
    cells = [box(x0 + c * size, y0 + r * size, x0 + (c + 1) * size, y0 + (r + 1) * size)
             for r in range(rows) for c in range(cols)]
    need = np.round(np.linspace(-1.5, 1.5, n), 3)
    rank = n - np.argsort(np.argsort(need))
    pct = np.round(np.linspace(8.0, 20.0, n), 2)
    frame = pd.DataFrame(
        {
            "ward_name": [f"Ward {i}" for i in range(1, n + 1)],
            "rank": rank,
            "rank_p05": np.maximum(rank - 2, 1),
            "rank_p95": np.minimum(rank + 2, n),
            "need_index": need,
            "top_drivers": ["SEN support; IMD"] * n,
            "sen_support_pct": pct,
            "sen_support_pct_lo": pct - 1.5,
            "sen_support_pct_hi": pct + 1.5,
            "imd_score": np.round(np.linspace(50.0, 10.0, n), 1),
            "lisa_label": [LISA_CYCLE[i % len(LISA_CYCLE)] for i in range(n)],
            "lisa_p": np.round(np.linspace(0.0001, 0.5, n), 4),
            "gi_label": ["Hot spot 95%" if i > 14 else "Cold spot 95%" if i < 3
                         else "Not significant" for i in range(n)],
        },
        index=pd.Index([f"E059{i:05d}" for i in range(1, n + 1)], name="ward_code"),
    )
    return gpd.GeoDataFrame(frame, geometry=cells, crs="EPSG:27700")


@pytest.fixture
def wards_for_map() -> gpd.GeoDataFrame:
    """The 4 x 5 grid of wards with every column the map shows."""
    return map_frame()


@pytest.fixture(scope="session")
def chromium():
    """A headless Chromium for the session.

    Skips when Chromium or Playwright is missing, unless ``GEO_SEND_REQUIRE_BROWSER=1``
    (set by ``.ci/run``), where a missing browser is a failure.
    """
    give_up = pytest.fail if os.environ.get("GEO_SEND_REQUIRE_BROWSER") == "1" else pytest.skip
    if not CHROMIUM.exists():
        give_up(f"{CHROMIUM} not found (apt-get install chromium)")
    try:
        from playwright import sync_api
    except ImportError:
        give_up("playwright is not installed (pip install -e '.[test]')")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class OfflinePage:
    """A page opened with the network blocked, and what happened while it was open."""

    page: object
    errors: list[str]
    requests: list[str]
    dialogs: list[str]

    @property
    def blocked(self) -> list[str]:
        """Requests that tried to leave the machine."""
        return [u for u in self.requests if not u.startswith(("file:", "data:"))]


@pytest.fixture
def open_offline(chromium) -> Callable[..., OfflinePage]:
    """Open a local file with every request that is not ``file:`` or ``data:`` aborted."""
    pages = []

    def open_(path: Path, *, width: int = 1200, height: int = 800) -> OfflinePage:
        page = chromium.new_page(viewport={"width": width, "height": height})
        pages.append(page)
        seen = OfflinePage(page, [], [], [])
        page.on("console", lambda m: seen.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: seen.errors.append(str(e)))
        page.on("request", lambda r: seen.requests.append(r.url))

        def dialog(d) -> None:
            seen.dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", dialog)
        page.route(
            "**/*",
            lambda route: route.continue_()
            if route.request.url.startswith(("file:", "data:"))
            else route.abort(),
        )
        page.goto(Path(path).resolve().as_uri())
        return seen

    yield open_
    for page in pages:
        page.close()


@pytest.fixture
def screenshot(tmp_path: Path) -> Callable[..., Path]:
    """Save a page's screenshot in ``tmp_path`` and, from a checkout, in outputs/screenshots."""

    def take(seen: OfflinePage, name: str, **kwargs) -> Path:
        path = tmp_path / name
        seen.page.screenshot(path=str(path), **kwargs)
        if SCREENSHOTS.parent.is_dir():
            SCREENSHOTS.mkdir(exist_ok=True)
            (SCREENSHOTS / name).write_bytes(path.read_bytes())
        return path

    return take


#: TOML lines declaring the synthetic long tables of :func:`write_long_tables`.
LONG_TABLES = """
[inputs.trends]
path = "trends.csv"
count_columns = ["sen_support_count", "ehcp_count"]
denominator_column = "pupils_count"

[inputs.conversion]
path = "conversion.csv"
breakdown_columns = ["gender"]

[inputs.representation]
path = "representation.csv"
breakdown_columns = ["ethnicity"]
"""


def write_long_tables(folder: Path) -> dict[str, pd.DataFrame]:
    """Write synthetic yearly and breakdown tables for the 3 x 3 grid (SEED-fixed).

    The north-east corner ward (E05900009) has SEN support rising 15% a year and converts
    at three times the rate of the rest; ward E05900001 has only 2 EHC plans a year (a
    count to suppress); group "B" is over-represented among EHC plans everywhere.
    """
    rng = np.random.default_rng(SEED)
    trend_rows, conversion_rows, representation_rows = [], [], []
    for i, code in enumerate(GRID_CODES):
        growth = 1.15 if i == 8 else 1.02
        for k, year in enumerate(range(2019, 2024)):
            pupils = 1000 + 10 * k
            trend_rows.append({"ward_code": code, "year": year, "pupils_count": pupils,
                               "sen_support_count": int(120 * growth**k),
                               "ehcp_count": 2 if i == 0 else 25 + k})
            for gender in ("F", "M"):
                sen = int(rng.integers(40, 80))
                rate = 0.12 if i == 8 else 0.04
                conversion_rows.append({"ward_code": code, "year": year, "gender": gender,
                                        "sen_support_count": sen,
                                        "new_ehcp_count": int(rng.binomial(sen, rate))})
        for group, pupils, rate in (("A", 600, 0.02), ("B", 300, 0.06), ("C", 100, 0.03)):
            representation_rows.append({"ward_code": code, "ethnicity": group,
                                        "pupils_count": pupils,
                                        "ehcp_count": int(rng.binomial(pupils, rate))})
    frames = {"trends": pd.DataFrame(trend_rows), "conversion": pd.DataFrame(conversion_rows),
              "representation": pd.DataFrame(representation_rows)}
    for name, frame in frames.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return frames
