"""Command-line interface: ``geo-send run`` and ``geo-send build-data``.

Errors raised on purpose (:class:`GeoSendError`) become one message on stderr and a
non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from ._errors import GeoSendError

__all__ = ["main", "DEFAULT_RAW"]

log = logging.getLogger("geo_send")

#: Where the shared open data live relative to a source checkout.
DEFAULT_RAW = Path("..") / "shared" / "data" / "raw"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="geo-send",
        description="SEND Geographical Need Index for English local authorities.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true",
                        help="only print warnings and errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", parents=[common], help="run the analysis and write the outputs")
    run.add_argument("--config", type=Path, default=None,
                     help="TOML configuration (default: the embedded Wolverhampton data)")
    run.add_argument("--out", type=Path, default=Path("outputs"),
                     help="output folder (default: outputs)")
    run.add_argument("--seed", type=int, default=None, help="override the configured seed")
    run.add_argument("--unsuppressed-internal-copy", action="store_true",
                     help="also write the true small counts to *_UNSUPPRESSED_INTERNAL files "
                          "(for use inside the organisation only; never publish them)")

    build = sub.add_parser("build-data", parents=[common], help="derive an area's dataset from the open data")
    build.add_argument("--raw", type=Path, default=DEFAULT_RAW,
                       help=f"raw open-data folder (default: {DEFAULT_RAW})")
    build.add_argument("--area", default=None,
                       help="local authority code(s) or name(s), comma-separated, or 'all' for "
                            "England (default: E08000031, rebuilding the embedded Wolverhampton "
                            "data)")
    build.add_argument("--name", default=None,
                       help="display name of the area (default: the authorities' names)")
    build.add_argument("--out", type=Path, default=None,
                       help="folder to write boundaries/ and data/ into (required with --area)")
    return parser


def _run(args: argparse.Namespace) -> int:
    from .config import Config
    from .outputs import check_out_dir, write_outputs
    from .pipeline import run

    cfg = Config.from_toml(args.config) if args.config else Config.default()
    if args.seed is not None:
        cfg = cfg.replace(seed=args.seed)
    check_out_dir(args.out, cfg)  # fail before the analysis, not after
    started = time.perf_counter()
    log.info("running %s (%s level, seed %d)", cfg.area_name, cfg.level, cfg.seed)
    result = run(cfg)
    paths = write_outputs(result, args.out, progress=log.info,
                          unsuppressed_internal_copy=args.unsuppressed_internal_copy)
    log.info("done in %.1f s: %d areas ranked; outputs in %s", time.perf_counter() - started,
             len(result.wards), args.out)
    top = result.ranked.head(5)
    for code, row in top.iterrows():
        log.info("  %2d  %s  %s  index %.2f", row["rank"], code, row[cfg.name_name],
                 row["need_index"])
    for path in paths.values():
        print(path)
    return 0


def _build(args: argparse.Namespace) -> int:
    from .build import build_dataset, resolve_areas
    from .config import default_root
    from .load import read_lads, read_raw_area
    from .outputs import write_dataset

    if args.area is not None and args.out is None:
        raise _UsageError("--out is required with --area (a folder for the new dataset)")
    if not args.raw.is_dir():
        raise _UsageError(f"{args.raw}: raw open-data folder not found (use --raw)")
    codes: list[str] | None
    if args.area is None:
        codes, root = ["E08000031"], args.out or default_root()
    else:
        codes, root = resolve_areas(args.area.split(","), read_lads(args.raw)), args.out
    started = time.perf_counter()
    log.info("building the dataset for %s from %s",
             "all of England" if codes is None else ", ".join(codes), args.raw)
    dataset = build_dataset(read_raw_area(args.raw, codes), codes, name=args.name)
    log.info("what the build found (also in data/README.md):")
    for note in dataset.notes:
        log.info("  - %s", note)
    log.info("writing %s: %d wards, %d LSOAs, %d schools", root, len(dataset.wards),
             len(dataset.lsoas), len(dataset.schools))
    for path in write_dataset(dataset, root).values():
        print(path)
    log.info("done in %.1f s; run it with: geo-send run --config %s", time.perf_counter() - started,
             Path(root) / "data" / f"{dataset.slug}.toml")
    return 0


class _UsageError(GeoSendError):
    exit_code = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``geo-send``; returns the exit code."""
    args = _parser().parse_args(argv)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.WARNING if args.quiet else logging.INFO)
    # mapclassify falls back to numpy without numba (deliberately not installed: no JIT cost)
    warnings.filterwarnings("ignore", message="Numba not installed")
    try:
        return _run(args) if args.command == "run" else _build(args)
    except GeoSendError as exc:
        print(f"geo-send: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("geo-send: interrupted", file=sys.stderr)
        return 130
    finally:
        log.removeHandler(handler)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (so in-process callers can capture it)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


if __name__ == "__main__":
    sys.exit(main())
