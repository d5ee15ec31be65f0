"""How long the Monte Carlo adds to a run on the embedded Wolverhampton data.

Not a test: run it by hand and read the medians.

    python benchmarks/uncertainty.py            # 1,000 draws, 7 repeats
    python benchmarks/uncertainty.py --draws 5000 --repeats 5

Prints the median time of :func:`geo_send.uncertainty.assess_uncertainty` alone, and of a
whole :func:`geo_send.run` with the configured draws and with ``draws = 0``; their
difference is what the Monte Carlo adds to a run (target: under 2 s for 1,000 draws).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from collections.abc import Callable

import geo_send as gs
from geo_send.spatial import build_weights
from geo_send.uncertainty import assess_uncertainty


def seconds(call: Callable[[], object]) -> float:
    """Wall time of one call."""
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def median_seconds(call: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    """Median wall time of ``repeats`` calls (after one warm-up call)."""
    call()
    times = [seconds(call) for _ in range(repeats)]
    return statistics.median(times), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    cfg = gs.Config.default()
    cfg = cfg.replace(index=dataclasses.replace(cfg.index, draws=args.draws))
    areas = gs.load_areas(cfg)
    table = gs.load_table(cfg, areas)
    graph = build_weights(areas)

    alone, times = median_seconds(
        lambda: assess_uncertainty(table, cfg.indicators, cfg.domains, cfg.index,
                                   seed=cfg.seed, weights=graph),
        args.repeats,
    )
    print(f"assess_uncertainty, {args.draws} draws x {len(table)} areas: median {alone:.3f} s "
          f"(runs: {', '.join(f'{t:.3f}' for t in times)})")

    # whole runs with and without the Monte Carlo, interleaved so that a change in the
    # machine's load affects both alike
    without = cfg.replace(index=dataclasses.replace(cfg.index, draws=0))
    gs.run(cfg)
    pairs = []
    for _ in range(args.repeats):
        pairs.append([seconds(lambda c=c: gs.run(c)) for c in (cfg, without)])
    with_mc = statistics.median(p[0] for p in pairs)
    without_mc = statistics.median(p[1] for p in pairs)
    added = statistics.median(p[0] - p[1] for p in pairs)
    print(f"gs.run with {args.draws} draws: median {with_mc:.3f} s; with 0 draws: "
          f"{without_mc:.3f} s; the Monte Carlo adds {added:.3f} s (median of paired runs)")


if __name__ == "__main__":
    main()
