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


def median_seconds(call: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    """Median wall time of ``repeats`` calls (after one warm-up call)."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
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

    without = cfg.replace(index=dataclasses.replace(cfg.index, draws=0))
    with_mc, _ = median_seconds(lambda: gs.run(cfg), args.repeats)
    without_mc, _ = median_seconds(lambda: gs.run(without), args.repeats)
    print(f"gs.run with {args.draws} draws: median {with_mc:.3f} s; with 0 draws: "
          f"{without_mc:.3f} s; the Monte Carlo adds {with_mc - without_mc:.3f} s")


if __name__ == "__main__":
    main()
