"""Pupil-level scale: aggregate a synthetic 9-million-pupil file to England's wards.

England's school census holds about 9 million pupils a year. This script writes a
synthetic pupil-level CSV of that size (once, into a temporary folder), then counts it to
the 6,826 wards of England twice, each time in a fresh process so that peak memory is the
process's own:

- ``lsoa``: each pupil located by an LSOA 2021 code (LSOA -> ward best-fit lookup);
- ``xy``: each pupil located by British National Grid easting/northing (point in polygon).

It prints the time and peak memory (maximum resident set size) of each, and checks the
totals. The national dataset is built first with ``geo-send build-data --area all`` (once).

Usage (from the repository root)::

    python benchmarks/pupils.py                       # 9,000,000 pupils
    python benchmarks/pupils.py --rows 1000000        # a quicker look
    python benchmarks/pupils.py --raw ../shared/data/raw --work /tmp/geo_send_bench

Not part of the test suite.
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
ROWS = 9_000_000
CHUNK = 500_000
SEED = 20260
#: Shares of pupils with an EHC plan and with SEN support (England, January 2023).
EHCP_SHARE, SUPPORT_SHARE = 0.043, 0.130


def national_dataset(raw: Path, work: Path) -> Path:
    """Build England's dataset with ``geo-send build-data --area all`` unless present."""
    if not (raw / "national").is_dir():
        raise SystemExit(f"{raw / 'national'} not found: give --raw (or set GEO_SEND_RAW)")
    folder = work / "england"
    if not (folder / "data" / "england.toml").is_file():
        print(f"building the national dataset into {folder} ...", flush=True)
        subprocess.run([sys.executable, "-m", "geo_send", "build-data", "--quiet", "--raw",
                        str(raw), "--area", "all", "--out", str(folder)], check=True,
                       stdout=subprocess.DEVNULL)
    return folder


def generate(folder: Path, path: Path, rows: int) -> None:
    """Write ``rows`` synthetic pupils, chunk by chunk (memory is one chunk).

    Pupils are spread over LSOAs in proportion to their Census 2021 residents aged 0–15;
    each gets a random point inside its LSOA (rejection sampling in the bounding box) and
    an SEN status drawn with the national shares. Columns mimic a census extract, with
    some the aggregation does not need.
    """
    import geopandas as gpd
    import numpy as np
    import pandas as pd
    import shapely

    lsoas = gpd.read_file(folder / "boundaries" / "lsoas.gpkg", layer="lsoas").set_index(
        "lsoa_code")
    table = pd.read_csv(folder / "data" / "lsoa_indicators.csv", index_col="lsoa_code")
    weight = table["children_0_15_count"].reindex(lsoas.index).astype(float)
    weight /= weight.sum()
    geoms = lsoas.geometry.to_numpy()
    shapely.prepare(geoms)
    bounds = shapely.bounds(geoms)
    codes = lsoas.index.to_numpy(dtype=object)
    status_codes = np.array(["N", "K", "E"], dtype=object)
    rng = np.random.default_rng(SEED)
    tmp = path.with_suffix(".part")
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write("pupil_id,lsoa21_code,easting,northing,sen_status,ncyear,fsm\n")
        for start in range(0, rows, CHUNK):
            n = min(CHUNK, rows - start)
            which = rng.choice(len(geoms), size=n, p=weight.to_numpy())
            x = np.empty(n)
            y = np.empty(n)
            todo = np.arange(n)
            while len(todo):
                b = bounds[which[todo]]
                tx = rng.uniform(b[:, 0], b[:, 2])
                ty = rng.uniform(b[:, 1], b[:, 3])
                ok = shapely.contains_xy(geoms[which[todo]], tx, ty)
                x[todo[ok]], y[todo[ok]] = tx[ok], ty[ok]
                todo = todo[~ok]
            u = rng.random(n)
            status = np.where(u < EHCP_SHARE, 2, np.where(u < EHCP_SHARE + SUPPORT_SHARE, 1, 0))
            pd.DataFrame({
                "pupil_id": np.arange(start + 1, start + n + 1),
                "lsoa21_code": codes[which],
                "easting": np.round(x, 1),
                "northing": np.round(y, 1),
                "sen_status": status_codes[status],
                "ncyear": rng.integers(0, 14, n),
                "fsm": rng.random(n) < 0.24,
            }).to_csv(f, header=False, index=False, lineterminator="\n")
            print(f"  generated {start + n:,} / {rows:,} pupils", flush=True)
    os.replace(tmp, path)


CHILD = r"""
import json, resource, sys, time
from pathlib import Path
import geo_send as gs
from geo_send.pipeline import count_located_pupils
config, pupils, method = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
cfg = gs.Config.from_toml(config)
areas = gs.load_areas(cfg)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
located = ({"lsoa_column": "lsoa21_code"} if method == "lsoa"
           else {"easting_column": "easting", "northing_column": "northing"})
spec = gs.config.PupilInput(path=pupils, status_column="sen_status", **located)
cfg = cfg.replace(inputs=gs.config.dataclasses.replace(cfg.inputs, pupils=spec))
started = time.perf_counter()
counts = count_located_pupils(cfg, areas)
seconds = time.perf_counter() - started
print(json.dumps({
    "seconds": seconds, "rss_before_kb": before,
    "totals": counts.sum().astype(int).to_dict(),
    "counts": counts["resident_pupils_count"].astype(int).tolist(),
}))
"""


def measure(config: Path, pupils: Path, method: str) -> dict:
    """Count the pupils in a fresh process; add its wall time and peak memory."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(config), str(pupils), method],
                            stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{method}: child failed with exit code {proc.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    result["wall_seconds"] = time.perf_counter() - started
    result["peak_kb"] = usage.ru_maxrss
    return result


def main(argv: list[str] | None = None) -> int:
    """Generate the file if needed, measure both locating methods, print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, default=DEFAULT_RAW)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK,
                        help="folder for the national dataset and the synthetic file")
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--methods", default="lsoa,xy")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    folder = national_dataset(args.raw, args.work)
    pupils = args.work / f"pupils_{args.rows}.csv"
    if not pupils.is_file():
        print(f"writing {pupils} ...", flush=True)
        started = time.perf_counter()
        generate(folder, pupils, args.rows)
        print(f"  written in {time.perf_counter() - started:.0f} s", flush=True)
    size_mb = pupils.stat().st_size / 1e6
    config = folder / "data" / "england.toml"
    print(f"\n{args.rows:,} pupils ({size_mb:,.0f} MB CSV) -> 6,826 wards of England; "
          f"chunks of 500,000 rows\n")
    print(f"{'located by':<14}{'count s':>9}{'process s':>11}{'peak MB':>9}"
          f"{'areas-only MB':>15}{'pupils/s':>12}")
    results = {}
    for method in args.methods.split(","):
        r = measure(config, pupils, method)
        results[method] = r
        assert r["totals"]["resident_pupils_count"] == args.rows, r["totals"]
        print(f"{method:<14}{r['seconds']:>9.1f}{r['wall_seconds']:>11.1f}"
              f"{r['peak_kb'] / 1024:>9.0f}{r['rss_before_kb'] / 1024:>15.0f}"
              f"{args.rows / r['seconds']:>12,.0f}", flush=True)
    if len(results) == 2:
        a, b = (results[m]["counts"] for m in results)
        same = sum(x == y for x, y in zip(a, b))
        moved = sum(abs(x - y) for x, y in zip(a, b)) // 2
        print(f"\nwards with identical counts by both methods: {same:,} of {len(a):,}; "
              f"pupils placed in another ward by the LSOA best fit: {moved:,} "
              f"({moved / args.rows:.1%})")
    print("\npeak MB: maximum resident set size of the process (imports, boundaries and "
          "the counting); areas-only MB: the same just before the pupils are read.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
