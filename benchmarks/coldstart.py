"""Cold start: ``geo-send run`` on the embedded default against importing the libraries.

The target: a whole run on the Wolverhampton default (every output written) takes no
more than 1.5 times as long as ``python -c "import geopandas, esda, folium"``, the least
any Python tool built on those libraries pays. Each command runs ``--repeats`` times
(default 7), alternating, each in a fresh process; the script prints the medians and
their ratio. No just-in-time compilation is involved: numba is not installed.

Usage (from the repository root)::

    python benchmarks/coldstart.py [--repeats 7] [--config other.toml]

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time

TARGET = 1.5


def timed(command: list[str]) -> float:
    """Wall seconds of one run of ``command`` (which must succeed)."""
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    """Time both commands alternately and print medians and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--config", default=None,
                        help="another configuration to time (default: the embedded one)")
    args = parser.parse_args(argv)
    imports = [sys.executable, "-c", "import geopandas, esda, folium"]
    config = ["--config", args.config] if args.config else []
    with tempfile.TemporaryDirectory() as out:
        run = [sys.executable, "-m", "geo_send", "run", "--quiet", *config, "--out", out]
        timed(run)  # warm the file cache (and byte-compile) once; not counted
        times: dict[str, list[float]] = {"import": [], "run": []}
        for _ in range(args.repeats):
            times["import"].append(timed(imports))
            times["run"].append(timed(run))
    base = statistics.median(times["import"])
    ours = statistics.median(times["run"])
    print(f"{'command':<48}{'median s':>10}{'min s':>8}{'max s':>8}")
    for label, key in (('python -c "import geopandas, esda, folium"', "import"),
                       (f"geo-send run ({args.config or 'Wolverhampton default'})", "run")):
        t = times[key]
        print(f"{label:<48}{statistics.median(t):>10.2f}{min(t):>8.2f}{max(t):>8.2f}")
    print(f"\nratio run / import: {ours / base:.2f} (target <= {TARGET}); "
          f"{args.repeats} runs each, alternating")
    return 0


if __name__ == "__main__":
    sys.exit(main())
