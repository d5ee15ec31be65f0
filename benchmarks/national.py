"""National LSOA run: geo_send against the hand-written notebook way, side by side.

Both sides read the same input, England's 33,755 LSOAs as ``geo-send build-data --area
all`` writes them (``boundaries/lsoas.gpkg`` and ``data/lsoa_indicators.csv``, built once
from ``../shared/data/raw/national/``), and each runs in a fresh process so that peak
memory (maximum resident set size, from ``os.wait4``) is its own.

- **baseline**: what an analyst writes in a notebook, written out below in
  :func:`baseline`: ``geopandas.read_file`` and ``pandas.read_csv``, the same index by hand
  (z-scores, weighted means), libpysal ``Queen.from_dataframe``, ``esda.Moran`` and
  ``esda.Moran_Local`` with 999 permutations, ``GeoDataFrame.explore`` with Fisher–Jenks
  saved to HTML, and a CSV.
- **geo_send**: ``geo-send run --config data/england_lsoa.toml`` as a user types it (index,
  global Moran, LISA with 999 permutations and the rest of the pipeline, ranked CSV,
  GeoPackage, HTML map); its step times come from the run manifest.

Both run in this interpreter's environment unless ``--baseline-python`` names another
(for example one with numba, to measure the notebook way as analysts usually have it).
Without numba, mapclassify's Fisher–Jenks is pure Python and quadratic in the number of
areas: on 33,755 LSOAs it takes tens of minutes. ``--baseline-scheme FisherJenksSampled``
(mapclassify's own advice for large data) gives a quicker and kinder baseline.

Usage (from the repository root)::

    python benchmarks/national.py                               # the full comparison
    python benchmarks/national.py --baseline-scheme FisherJenksSampled
    python benchmarks/national.py --raw ../shared/data/raw --work /tmp/geo_send_bench
    python benchmarks/national.py --skip-baseline               # geo_send only

Not part of the test suite. See also ``benchmarks/coldstart.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: The shared open data: ../shared/data/raw from the repository root, or $GEO_SEND_RAW.
DEFAULT_RAW = Path(os.environ.get("GEO_SEND_RAW", REPO.parent / "shared" / "data" / "raw"))
DEFAULT_WORK = Path("/tmp/geo_send_bench")
PERMUTATIONS = 999
SEED = 20260
#: The issue's targets for the national LSOA run.
TARGET_TIME_RATIO, TARGET_MEMORY_RATIO, TARGET_HTML_MB = 0.5, 1.0, 10.0


# -- the hand-written baseline (runs in its own process) ------------------------------------


def baseline(dataset: Path, out: Path, scheme: str) -> dict[str, float]:
    """The notebook way, step by step; returns seconds per step.

    The index is the one ``england_lsoa.toml`` configures, written by hand: each
    indicator oriented and z-scored, the mean of the indicators present in each domain,
    the domains' weighted mean.
    """
    steps: dict[str, float] = {}
    clock = time.perf_counter()

    def done(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        steps[name] = now - clock
        clock = now

    import warnings

    warnings.filterwarnings("ignore")  # the notebook way ignores them too
    import esda
    import geopandas as gpd
    import libpysal
    import pandas as pd

    done("import")
    gdf = gpd.read_file(dataset / "boundaries" / "lsoas.gpkg")
    table = pd.read_csv(dataset / "data" / "lsoa_indicators.csv", dtype={"lsoa_code": str})
    gdf = gdf.merge(table.drop(columns=["lsoa_name", "ward_code"]), on="lsoa_code", how="left")
    done("read")
    values = pd.DataFrame({
        "imd_score": gdf["imd_score"],
        "idaci_per_100": gdf["idaci_count"] / gdf["children_0_15_count"] * 100,
        "cyp_education_score": gdf["cyp_education_score"],
        "disabled_pct": gdf["disabled_count"] / gdf["disability_residents_count"] * 100,
    })
    z = (values - values.mean()) / values.std(ddof=0)
    domains = pd.DataFrame({
        "deprivation": z[["imd_score", "idaci_per_100"]].mean(axis=1),
        "outcomes": z["cyp_education_score"],
        "disability": z["disabled_pct"],
    })
    weights = pd.Series({"deprivation": 0.5, "outcomes": 0.25, "disability": 0.25})
    present = domains.notna().mul(weights, axis=1).sum(axis=1)
    gdf["need_index"] = domains.fillna(0).mul(weights, axis=1).sum(axis=1) / present
    gdf["need_index"] = gdf["need_index"].fillna(gdf["need_index"].mean())
    done("index")
    w = libpysal.weights.Queen.from_dataframe(gdf, use_index=False)
    w.transform = "r"
    done("weights")
    moran = esda.Moran(gdf["need_index"], w, permutations=PERMUTATIONS)
    done("global_moran")
    lisa = esda.Moran_Local(gdf["need_index"], w, permutations=PERMUTATIONS, seed=SEED)
    gdf["lisa_q"] = lisa.q
    gdf["lisa_p"] = lisa.p_sim
    done("local_moran")
    shown = gdf[["lsoa_code", "lsoa_name", "need_index", "lisa_q", "lisa_p", "geometry"]]
    m = shown.explore(column="need_index", scheme=scheme, k=5, cmap="YlOrRd",
                      tooltip=["lsoa_code", "lsoa_name", "need_index"])
    m.save(str(out / "baseline_map.html"))
    done("write_map")
    ranked = gdf.drop(columns="geometry").sort_values("need_index", ascending=False)
    ranked.to_csv(out / "baseline_ranked.csv", index=False)
    done("write_csv")
    steps["moran_I"] = float(moran.I)
    return steps


# -- the driver -----------------------------------------------------------------------------


def national_dataset(raw: Path, work: Path) -> Path:
    """Build England's dataset with ``geo-send build-data --area all`` unless present."""
    folder = work / "england"
    if not (folder / "data" / "england_lsoa.toml").is_file():
        if not (raw / "national").is_dir():
            raise SystemExit(f"{raw / 'national'} not found: give --raw (or set GEO_SEND_RAW)")
        print(f"building the national dataset into {folder} ...", flush=True)
        subprocess.run([sys.executable, "-m", "geo_send", "build-data", "--quiet", "--raw",
                        str(raw), "--area", "all", "--out", str(folder)], check=True,
                       stdout=subprocess.DEVNULL)
    return folder


def measured(command: list[str]) -> tuple[float, int, str]:
    """Run a command; return its wall time, peak memory (KB) and standard output."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code:
        raise SystemExit(f"failed with exit code {code}: {' '.join(command)}")
    return seconds, usage.ru_maxrss, out


def run_baseline(python: str, dataset: Path, out: Path, scheme: str) -> dict:
    """The baseline in a fresh process."""
    out.mkdir(parents=True, exist_ok=True)
    seconds, peak, text = measured([python, __file__, "--side", "baseline", "--dataset",
                                    str(dataset), "--out", str(out), "--baseline-scheme", scheme])
    steps = json.loads(text.strip().splitlines()[-1])
    return {"wall": seconds, "peak_kb": peak, "steps": steps,
            "html_bytes": (out / "baseline_map.html").stat().st_size}


def run_geo_send(dataset: Path, out: Path) -> dict:
    """``geo-send run`` on the national LSOA config, in a fresh process."""
    seconds, peak, _ = measured([sys.executable, "-m", "geo_send", "run", "--quiet", "--config",
                                 str(dataset / "data" / "england_lsoa.toml"), "--out", str(out)])
    manifest = json.loads((out / "run_manifest.json").read_text())
    return {"wall": seconds, "peak_kb": peak, "steps": manifest["timings_s"],
            "html_bytes": (out / "need_map.html").stat().st_size}


#: Rows of the table: label, the baseline's steps and geo_send's steps (manifest names).
ROWS = [
    ("read input", ("read",), ("hash", "load")),
    ("index", ("index",), ("index",)),
    ("spatial statistics", ("weights", "global_moran", "local_moran"), ("spatial",)),
    ("  spatial weights", ("weights",), ()),
    ("  global Moran 999", ("global_moran",), ()),
    ("  LISA 999", ("local_moran",), ()),
    ("ranked CSV", ("write_csv",), ("write ranked_lsoas.csv",)),
    ("GeoPackage", (), ("write need_index.gpkg",)),
    ("HTML map", ("write_map",), ("write need_map.html",)),
]
#: geo_send steps beyond the issue's list (the baseline has no counterpart).
EXTRAS = [
    ("Monte Carlo rank intervals", ("monte_carlo",)),
    ("LSOA-scale check", ("scale",)),
    ("hub siting", ("siting",)),
    ("static figures (PNG)", ("write maps/*.png",)),
    ("report", ("write report.html",)),
]


def table(base: dict | None, ours: dict, scheme: str, python: str) -> str:
    """The comparison as a plain-text table."""

    def total(side: dict | None, names: tuple[str, ...]) -> float | None:
        if side is None or not names or not any(n in side["steps"] for n in names):
            return None
        return sum(float(side["steps"].get(n, 0.0)) for n in names)

    def cell(value: float | None, fmt: str = "{:.1f}") -> str:
        return "-" if value is None else fmt.format(value)

    def ratio(o: float | None, b: float | None) -> str:
        return cell(o / b, "{:.2f}") if b and o is not None else "-"

    width = 30
    lines = [f"{'step':<{width}}{'baseline s':>12}{'geo_send s':>12}{'ratio':>8}"]
    for label, base_names, our_names in ROWS:
        b, o = total(base, base_names), total(ours, our_names)
        if b is None and o is None:
            continue
        lines.append(f"{label:<{width}}{cell(b):>12}{cell(o):>12}{ratio(o, b):>8}")
    our_steps = {k: float(v) for k, v in ours["steps"].items()}
    named = {n for _, _, names in ROWS for n in names} | {n for _, names in EXTRAS for n in names}
    other = sum(v for k, v in our_steps.items() if k not in named)
    extras = sum(v for k, v in our_steps.items() if k in {n for _, ns in EXTRAS for n in ns})
    base_start = None if base is None else base["wall"] - sum(
        v for k, v in base["steps"].items() if k not in ("import", "moran_I"))
    our_start = ours["wall"] - sum(our_steps.values())
    lines.append(f"{'other steps':<{width}}{'-':>12}{other:>12.1f}{'-':>8}")
    lines.append(f"{'start-up and imports':<{width}}{cell(base_start):>12}{our_start:>12.1f}"
                 f"{'-':>8}")
    comparable = ours["wall"] - extras
    base_wall = None if base is None else base["wall"]
    lines.append("-" * (width + 32))
    lines.append(f"{'the same run (issue 7 list)':<{width}}{cell(base_wall):>12}"
                 f"{comparable:>12.1f}{ratio(comparable, base_wall):>8}   target <= "
                 f"{TARGET_TIME_RATIO}")
    for label, names in EXTRAS:
        o = total(ours, names)
        if o is not None:
            lines.append(f"{'+ ' + label:<{width}}{'-':>12}{o:>12.1f}{'-':>8}")
    lines.append(f"{'whole geo-send run':<{width}}{cell(base_wall):>12}{ours['wall']:>12.1f}"
                 f"{ratio(ours['wall'], base_wall):>8}")
    lines.append("-" * (width + 32))
    base_mb = None if base is None else base["peak_kb"] / 1024
    lines.append(f"{'peak memory, MB':<{width}}{cell(base_mb, '{:.0f}'):>12}"
                 f"{ours['peak_kb'] / 1024:>12.0f}{ratio(ours['peak_kb'] / 1024, base_mb):>8}"
                 f"   target <= {TARGET_MEMORY_RATIO}")
    base_html = None if base is None else base["html_bytes"] / 1e6
    lines.append(f"{'HTML map, MB':<{width}}{cell(base_html):>12}{ours['html_bytes'] / 1e6:>12.1f}"
                 f"{ratio(ours['html_bytes'] / 1e6, base_html):>8}   target geo_send < "
                 f"{TARGET_HTML_MB:.0f} MB")
    try:
        import numba  # noqa: F401

        numba_here = "installed"
    except ImportError:
        numba_here = "not installed"
    lines += ["", f"baseline: {python} (map scheme {scheme}); geo_send: {sys.executable}",
              f"numba in this interpreter: {numba_here}. 'The same run' is the whole geo-send "
              "run less the steps listed with +."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Build the input if needed, run both sides, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, default=DEFAULT_RAW)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK,
                        help="folder for the national dataset and both sides' outputs")
    parser.add_argument("--baseline-python", default=sys.executable,
                        help="interpreter for the baseline (default: this one)")
    parser.add_argument("--baseline-scheme", default="FisherJenks",
                        help="mapclassify scheme of the baseline map (default FisherJenks)")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--side", choices=["baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--dataset", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.side == "baseline":
        print(json.dumps(baseline(args.dataset, args.out, args.baseline_scheme)))
        return 0
    args.work.mkdir(parents=True, exist_ok=True)
    dataset = national_dataset(args.raw, args.work)
    print(f"input: {dataset} (33,755 LSOAs of England)", flush=True)
    print("geo_send: geo-send run --config england_lsoa.toml ...", flush=True)
    ours = run_geo_send(dataset, args.work / "geo_send_out")
    base = None
    if not args.skip_baseline:
        print(f"baseline: the notebook way ({args.baseline_scheme}) ...", flush=True)
        base = run_baseline(args.baseline_python, dataset, args.work / "baseline_out",
                            args.baseline_scheme)
    print()
    print(table(base, ours, args.baseline_scheme, args.baseline_python))
    results = args.work / "national_results.json"
    results.write_text(json.dumps({"baseline": base, "geo_send": ours}, indent=2) + "\n")
    print(f"\nraw numbers: {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
