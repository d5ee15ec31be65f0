"""Time the spatial statistics at ward scale (20 areas) and national LSOA scale (~34k).

Run with ``python benchmarks/spatial.py [--repeats N] [--lsoas PATH] [--synthetic]``. Uses the
England LSOA 2021 boundaries (default ``../shared/data/raw/national/england_lsoa21.gpkg``
beside the repository) when present, otherwise a
synthetic 184 x 184 lattice of 1 km squares (33,856 areas). Values are synthetic (a
north-south gradient plus noise), so the timings do not depend on any data set.
Prints the median wall time of each step, and of :func:`geo_send.spatial.analyse` on a
national-run-like set of variables: an index and four indicators, two of them
count-based rates (each also tested with EB Moran's I) and one missing in 2.4% of the
areas (tested over the rest with its own weights), as England's LSOA run has them.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_send.config import SpatialSettings
from geo_send.spatial import Variable, analyse, build_weights, global_moran, local_statistics

LSOA_FILE = (
    Path(__file__).resolve().parents[1].parent / "shared/data/raw/national/england_lsoa21.gpkg"
)
SEED = 1


def lattice(rows: int, cols: int, name: str) -> gpd.GeoDataFrame:
    """Lattice of 1 km squares in EPSG:27700 indexed by string codes."""
    geoms = [
        shapely.box(c * 1000.0, r * 1000.0, (c + 1) * 1000.0, (r + 1) * 1000.0)
        for r in range(rows)
        for c in range(cols)
    ]
    codes = pd.Index([f"A{i:06d}" for i in range(rows * cols)], name=name)
    return gpd.GeoDataFrame(geometry=geoms, index=codes, crs="EPSG:27700")


def national_lsoas(path: Path) -> tuple[gpd.GeoDataFrame, str]:
    """England's LSOAs if the raw file is present, else a synthetic lattice of similar size."""
    if path.is_file():
        gdf = gpd.read_file(path, columns=["LSOA21CD"])
        gdf = gdf.set_index("LSOA21CD").rename_axis("lsoa_code")
        return gdf, f"England LSOA 2021 ({path.name})"
    return lattice(184, 184, "lsoa_code"), "synthetic 184 x 184 lattice"


def values(gdf: gpd.GeoDataFrame) -> pd.Series:
    """Return a north-south gradient plus noise, indexed like ``gdf``."""
    north = gdf.geometry.centroid.y.to_numpy()
    noise = np.random.default_rng(SEED).normal(size=len(gdf))
    y = (north - north.mean()) / north.std() + noise
    return pd.Series(y, index=gdf.index, name="y")


def variables(gdf: gpd.GeoDataFrame) -> dict[str, Variable]:
    """Return an index and four indicators like the national run's (two rates, one with gaps)."""
    y = values(gdf)
    rng = np.random.default_rng(SEED + 1)
    n = len(gdf)
    population = pd.Series(rng.integers(200, 600, n).astype(float), index=gdf.index)
    events = pd.Series(rng.binomial(population.astype(int), 0.2).astype(float), index=gdf.index)
    gaps = pd.Series(rng.random(n) < 0.024, index=gdf.index)
    with_gaps = events.mask(gaps)
    return {
        "need_index": Variable("Need index", y),
        "score_a": Variable("Score A", y + rng.normal(size=n)),
        "rate_gaps": Variable("Rate with gaps", with_gaps / population, with_gaps, population),
        "score_b": Variable("Score B", y * 0.5 + rng.normal(size=n)),
        "rate": Variable("Rate", events / population, events, population),
    }


def median_time(func: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(label: str, gdf: gpd.GeoDataFrame, permutations: int, repeats: int) -> None:
    """Time weights, global Moran and local statistics on one geography."""
    settings = SpatialSettings()
    t_weights = median_time(lambda: build_weights(gdf, settings), max(1, repeats // 3))
    w = build_weights(gdf, settings)
    y = values(gdf)
    t_global = median_time(
        lambda: global_moran(y, w, permutations=permutations, seed=SEED), repeats
    )
    t_local = median_time(
        lambda: local_statistics(y, w, permutations=permutations, seed=SEED), repeats
    )
    spatial_settings = SpatialSettings(permutations=permutations, local_permutations=permutations)
    found = variables(gdf)
    t_analyse = median_time(
        lambda: analyse(gdf, found, spatial_settings, seed=SEED), max(1, repeats // 2)
    )
    print(f"{label}: n = {len(gdf):,}, {permutations:,} permutations, {repeats} repeats")
    print(f"  build_weights (queen) median {t_weights:8.3f} s")
    print(f"  global_moran          median {t_global:8.3f} s")
    print(f"  local_statistics      median {t_local:8.3f} s")
    print(f"  analyse (5 variables) median {t_analyse:8.3f} s")


def main() -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--lsoas", type=Path, default=LSOA_FILE, help="LSOA GeoPackage")
    parser.add_argument("--synthetic", action="store_true", help="use the lattice anyway")
    args = parser.parse_args()
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.simplefilter("ignore", FutureWarning)
    logging.disable(logging.WARNING)  # islands and gaps are reported on every repeat
    run("20 wards (4 x 5 lattice)", lattice(4, 5, "ward_code"), 9999, args.repeats)
    gdf, label = national_lsoas(Path("/nonexistent") if args.synthetic else args.lsoas)
    run(label, gdf, 999, max(1, args.repeats // 2 + 1))


if __name__ == "__main__":
    main()
