"""Size and writing time of the interactive need map, for 20 wards and for England's LSOAs.

Usage::

    python benchmarks/map_size.py                 # the embedded Wolverhampton wards
    python benchmarks/map_size.py --national      # also all 33,755 LSOAs in England
    python benchmarks/map_size.py --national --explore   # and a plain GeoDataFrame.explore()
    python benchmarks/map_size.py --national --raw /path/to/shared/data/raw

The national frame is built from the national open files in ``../shared/data/raw/national``
(IMD 2025 as the index, domain scores as indicators, Wilson intervals for two proportions).
Its LISA and Gi* columns are stand-ins with the same shape as real ones: this script
measures the map, not the statistics. Targets: wards < 1 MB, national LSOAs < 10 MB.

For each map the geometry encoding (``_webenc.encode_geometry``) is also timed on its own,
split into its steps: rings (read and snap the vertices), arcs (junctions, shared arcs),
simplify (Douglas–Peucker per arc and the topology checks) and the rest (reprojecting the
kept vertices and writing the strings).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from geo_send import _webenc, mapping  # noqa: E402
from geo_send.config import MapSettings  # noqa: E402

DEFAULT_RAW = ROOT.parent / "shared" / "data" / "raw"
RUNS = 3
SEED = 20260
DOMAINS = {
    "Income_score": "Income",
    "Employment_score": "Employment",
    "Education_score": "Education, skills and training",
    "Health_score": "Health and disability",
    "Crime_score": "Crime",
    "Housing_and_Services_score": "Barriers to housing and services",
    "Environment_score": "Living environment",
}


def wilson(k: pd.Series, n: pd.Series, z: float = 1.959964) -> tuple[pd.Series, pd.Series]:
    """Wilson score interval of a proportion, in per cent."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return 100 * (centre - half), 100 * (centre + half)


def national_frame(raw: Path) -> tuple[gpd.GeoDataFrame, list[mapping.MapLayer]]:
    """All LSOAs in England with the columns a national run would map."""
    national = raw / "national"
    lsoas = gpd.read_file(national / "england_lsoa21.gpkg", engine="pyogrio")
    imd = pd.read_csv(national / "imd2025_lsoa21_england.csv")
    pop = pd.read_csv(national / "census21_population_lsoa21_england.csv")
    frame = (
        lsoas[["LSOA21CD", "LSOA21NM", "geometry"]]
        .rename(columns={"LSOA21CD": "lsoa_code", "LSOA21NM": "lsoa_name"})
        .merge(imd.drop(columns=["lsoa21_name"]), left_on="lsoa_code", right_on="lsoa21_code")
        .merge(pop[["lsoa21_code", "age_0_15", "ts038_disabled_equality_act",
                    "ts038_total_residents"]], on="lsoa21_code")
        .set_index("lsoa_code")
    )
    n = len(frame)
    rng = np.random.default_rng(SEED)
    out = frame[["lsoa_name", "geometry"]].copy()
    out["rank"] = frame["IMD_rank"].astype(int)
    spread = (0.02 * n * rng.uniform(0.5, 1.5, n)).round().astype(int)
    out["rank_p05"] = (out["rank"] - spread).clip(lower=1)
    out["rank_p95"] = (out["rank"] + spread).clip(upper=n)
    out["need_index"] = frame["IMD_score"]
    ranks = frame[[c.replace("_score", "_rank") for c in DOMAINS]].to_numpy()
    names = np.array(list(DOMAINS.values()))
    top = np.argsort(ranks, axis=1)[:, :2]
    out["top_drivers"] = [f"{names[a]}; {names[b]}" for a, b in top]
    for column in DOMAINS:
        out[column.lower()] = frame[column]
    idaci = frame["idaci_numerator"]
    out["idaci_pct"] = 100 * idaci / frame["age_0_15"]
    out["idaci_pct_lo"], out["idaci_pct_hi"] = wilson(idaci, frame["age_0_15"])
    dis, res = frame["ts038_disabled_equality_act"], frame["ts038_total_residents"]
    out["disabled_pct"] = 100 * dis / res
    out["disabled_pct_lo"], out["disabled_pct_hi"] = wilson(dis, res)
    # stand-ins for the spatial statistics (same types and value ranges as real ones)
    decile = frame["IMD_decile"].to_numpy()
    out["lisa_p"] = rng.uniform(0.0001, 1, n).round(4)
    out["lisa_label"] = np.where(
        out["lisa_p"] > 0.05, "Not significant",
        np.where(decile <= 2, "High-High", np.where(decile >= 9, "Low-Low", "High-Low")),
    )
    out["gi_label"] = np.where(
        out["lisa_p"] > 0.05, "Not significant",
        np.where(decile <= 3, "Hot spot 95%", "Cold spot 95%"),
    )
    out = gpd.GeoDataFrame(out, geometry="geometry", crs=lsoas.crs)
    extra = {c.lower(): f"IoD 2025 {label} score" for c, label in DOMAINS.items()}
    extra["idaci_pct"] = "Children in income-deprived families, %"
    extra["disabled_pct"] = "Disabled residents (Equality Act), %"
    layers = mapping.default_layers(out, extra)
    return out, layers


def wards_frame() -> tuple[gpd.GeoDataFrame, list[mapping.MapLayer]]:
    """Return the embedded Wolverhampton run (20 wards) and its map layers."""
    import geo_send as gs

    result = gs.run()
    return result.wards, mapping.layers_for_config(result.wards, result.config)


def measure(write: Callable[[Path], None], name: str) -> tuple[float, list[float]]:
    """Write ``RUNS`` times; return the size in bytes and the times in seconds."""
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        for _ in range(RUNS):
            start = time.perf_counter()
            write(path)
            times.append(time.perf_counter() - start)
        size = path.stat().st_size
    return size, times


def geometry_split(frame: gpd.GeoDataFrame) -> dict[str, list[float]]:
    """Time the geometry encoding ``RUNS`` times, in total and step by step (seconds)."""
    geoms, crs = frame.geometry.values, frame.crs
    tolerance = _webenc.auto_tolerance(geoms)
    times: dict[str, list[float]] = {}
    for _ in range(RUNS):
        start = time.perf_counter()
        _webenc.encode_geometry(geoms, crs=crs, tolerance=tolerance)
        times.setdefault("geometry", []).append(time.perf_counter() - start)
        with _webenc._collector_paused():
            start = time.perf_counter()
            rings = _webenc._rings(geoms, _webenc.SNAP_UNITS)
            times.setdefault("rings", []).append(time.perf_counter() - start)
            start = time.perf_counter()
            topology = _webenc._topology(rings)
            times.setdefault("arcs", []).append(time.perf_counter() - start)
            start = time.perf_counter()
            _webenc._simplify_arcs(topology, tolerance)
            times.setdefault("simplify", []).append(time.perf_counter() - start)
        steps = [times[k][-1] for k in ("rings", "arcs", "simplify")]
        times.setdefault("rest", []).append(times["geometry"][-1] - sum(steps))
    return times


def report_split(times: dict[str, list[float]]) -> None:
    """Print the median of each step of the geometry encoding."""
    median = {k: statistics.median(v) for k, v in times.items()}
    steps = ", ".join(f"{k} {median[k]:.2f}" for k in ("rings", "arcs", "simplify", "rest"))
    print(f"{'  of which geometry':<34} {median['geometry']:6.2f} s median ({steps})")


def report(label: str, size: float, times: list[float], target_mb: float | None) -> None:
    """Print the size of a map and the median of its writing times."""
    verdict = ""
    if target_mb is not None:
        met = "met" if size < target_mb * 1e6 else "MISSED"
        verdict = f"  (target < {target_mb:g} MB: {met})"
    print(
        f"{label:<34} {size / 1e6:8.3f} MB  {size / 1e3:10.0f} KB   "
        f"write median {statistics.median(times):6.2f} s over {len(times)} runs{verdict}"
    )


def main(argv: list[str] | None = None) -> int:
    """Measure the maps; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--national", action="store_true", help="also map England's 33,755 LSOAs")
    parser.add_argument("--explore", action="store_true", help="also time a plain explore()")
    parser.add_argument("--raw", type=Path, default=DEFAULT_RAW, help="the shared raw data folder")
    args = parser.parse_args(argv)
    settings = MapSettings()

    def writer(frame: gpd.GeoDataFrame, layers: list, title: str) -> Callable[[Path], None]:
        def write(path: Path) -> None:
            html = mapping.render_map(frame, layers, settings=settings, title=title)
            path.write_text(html, encoding="utf-8")

        return write

    wards, layers = wards_frame()
    size, times = measure(writer(wards, layers, "Wolverhampton wards"), "need_map.html")
    report(f"need map, {len(wards)} wards", size, times, 1)
    report_split(geometry_split(wards))

    if args.national:
        frame, layers = national_frame(args.raw)
        size, times = measure(writer(frame, layers, "England LSOAs"), "need_map.html")
        report(f"need map, {len(frame):,} LSOAs", size, times, 10)
        report_split(geometry_split(frame))
        if args.explore:
            def plain(path: Path) -> None:
                frame.drop(columns=["lisa_label", "gi_label"]).explore("need_index").save(path)

            global RUNS
            RUNS = 1
            size, times = measure(plain, "explore.html")
            report(f"plain explore(), {len(frame):,} LSOAs", size, times, None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
