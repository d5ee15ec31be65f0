"""Solve times of the siting models for p = 1..6, on Wolverhampton and on the West Midlands CA.

Demand: LSOA 2021 representative points, weight = children aged 0-15 x percentile of the IMD 2025
score (a stand-in for the need index). Candidates: schools with a GIAS location. Straight-line
service distance 2 km; HiGHS (``scipy.optimize.milp``, in-process) with a time limit of 120 s per
solve (``--time-limit``). Reads ../shared/data/raw/national (or GEO_SEND_RAW); prints median
seconds over ``--repeats`` runs: building the sparse programme, solving it (both stages: the
optimum, then the tie-break) and the total.

    python benchmarks/siting.py [--repeats 3] [--models mclp,pmedian,lscp] [--areas wolverhampton,wmca]

The West Midlands CA p-median is large (1,719 demand points x 1,114 schools, about 1.9 million
assignment variables): run it on its own, e.g. ``--areas wmca --models pmedian --p 3``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import geopandas as gpd
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from geo_send import siting  # noqa: E402


def _raw_folder() -> Path:
    """``GEO_SEND_RAW``, else the nearest ``shared/data/raw`` beside the repository or above."""
    if "GEO_SEND_RAW" in os.environ:
        return Path(os.environ["GEO_SEND_RAW"])
    for parent in Path(__file__).resolve().parents[1:]:
        if (parent / "shared" / "data" / "raw").is_dir():
            return parent / "shared" / "data" / "raw"
    raise SystemExit("no shared/data/raw found; set GEO_SEND_RAW")


RAW = _raw_folder()
AREAS = {
    "wolverhampton": ("E08000031",),
    "wmca": (
        "E08000025",  # Birmingham
        "E08000026",  # Coventry
        "E08000027",  # Dudley
        "E08000028",  # Sandwell
        "E08000029",  # Solihull
        "E08000030",  # Walsall
        "E08000031",  # Wolverhampton
    ),
}
SERVICE_DISTANCE_M = 2000.0


def load(codes: tuple[str, ...]) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Demand points and school candidates for the local authorities ``codes``."""
    national = RAW / "national"
    where = "LAD25CD IN ({})".format(", ".join(f"'{c}'" for c in codes))
    lsoas = gpd.read_file(national / "england_lsoa21.gpkg", where=where)
    lsoas = lsoas.rename(columns={"LSOA21CD": "lsoa_code"}).set_index("lsoa_code")
    pop = pd.read_csv(national / "census21_population_lsoa21_england.csv",
                      usecols=["lsoa21_code", "age_0_15"]).set_index("lsoa21_code")
    imd = pd.read_csv(national / "imd2025_lsoa21_england.csv",
                      usecols=["lsoa21_code", "IMD_score"]).set_index("lsoa21_code")
    lookup = pd.read_csv(national / "lookup_lsoa21_ward_lad.csv",
                         usecols=["lsoa21_code", "wd25cd"]).set_index("lsoa21_code")
    lsoas = lsoas.join(pop).join(imd).join(lookup)
    lsoas = lsoas.rename(columns={"age_0_15": "children_0_15_count", "wd25cd": "ward_code"})
    demand = siting.demand_from_lsoas(lsoas, need_column="IMD_score")
    schools = pd.read_csv(national / "schools_sen_jan2023_england.csv",
                          dtype={"urn": "Int64", "new_la_code": str})
    schools = schools.loc[schools["new_la_code"].isin(codes)]
    candidates = siting.candidate_sites(schools, unlocated="drop")
    return demand, candidates


SOLVERS = {
    "mclp": lambda a, p, t: siting._solve_mclp(a, p, SERVICE_DISTANCE_M, t),
    "pmedian": lambda a, p, t: siting._solve_pmedian(a, p, SERVICE_DISTANCE_M, t),
    "lscp": lambda a, p, t: siting._solve_lscp(a, SERVICE_DISTANCE_M, "ignore", t),
}


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print a table of medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default="mclp,pmedian,lscp")
    parser.add_argument("--areas", default="wolverhampton,wmca")
    parser.add_argument("--p", default="1,2,3,4,5,6")
    parser.add_argument("--time-limit", type=float, default=120.0,
                        help="seconds per HiGHS solve (as SitingSettings.time_limit_s)")
    args = parser.parse_args(argv)
    ps = [int(p) for p in args.p.split(",")]
    print(f"{'area':<14}{'demand':>7}{'sites':>7}  {'model':<8}{'p':>3}"
          f"{'build s':>9}{'solve s':>9}{'total s':>9}  sites  covered  status", flush=True)
    for area in args.areas.split(","):
        t0 = time.perf_counter()
        demand, candidates = load(AREAS[area])
        arrays = siting._arrays(demand, candidates, ())
        load_s = time.perf_counter() - t0
        for model in args.models.split(","):
            for p in ps if model != "lscp" else [0]:
                runs = [SOLVERS[model](arrays, p, args.time_limit) for _ in range(args.repeats)]
                build = statistics.median(r.build_seconds for r in runs)
                solve = statistics.median(r.solve_seconds for r in runs)
                total = statistics.median(r.build_seconds + r.solve_seconds for r in runs)
                plan = runs[0]
                assert all(r.site_ids == plan.site_ids for r in runs), "plans differ between runs"
                print(f"{area:<14}{len(demand):>7}{len(candidates):>7}  {model:<8}"
                      f"{p if p else '-':>3}{build:>9.2f}{solve:>9.2f}{total:>9.2f}"
                      f"  {plan.n_sites:>5}  {plan.need_covered_share:6.1%}  {plan.status}", flush=True)
        print(f"{area}: loading {load_s:.1f} s", flush=True)


if __name__ == "__main__":
    main()
