"""Progress for long steps: log lines that say what is being done, and how far it got.

Only the CLI configures logging handlers; ``--quiet`` raises the level to WARNING, which
silences every line written here. Nothing is printed directly, so Jupyter users see the
lines only when they turn on logging (``logging.basicConfig(level=logging.INFO)``).

>>> import logging
>>> log = logging.getLogger("geo_send.example")
>>> with step(log, "weights", "building spatial weights", timings={}):  # doctest: +SKIP
...     pass
>>> progress = Progress(log, "permutations", total=999)                  # doctest: +SKIP
>>> for done in range(0, 999, 100):                                     # doctest: +SKIP
...     progress.update(done)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager

__all__ = ["Progress", "step", "EVERY_S"]

#: Seconds between two progress lines of the same loop.
EVERY_S = 5.0


@contextmanager
def step(
    log: logging.Logger, name: str, message: str, *, timings: MutableMapping[str, float]
) -> Iterator[None]:
    """Say what a step is doing, time it and store the seconds in ``timings[name]``.

    The start is logged at INFO; the time taken at DEBUG (it is recorded in the run
    manifest anyway). A step that fails records nothing.
    """
    log.info("%s", message)
    started = time.perf_counter()
    yield
    seconds = time.perf_counter() - started
    timings[name] = timings.get(name, 0.0) + seconds
    log.debug("%s: %.2f s", name, seconds)


class Progress:
    """Periodic log lines for a long loop: at most one every ``every`` seconds.

    Parameters
    ----------
    log : logging.Logger
    what : str
        What is counted, e.g. ``"pupil records read"`` or ``"permutations"``.
    total : int, optional
        Known total, shown as ``done/total (percent)``; ``None`` shows the count only.
    every : float
        Minimum seconds between two lines.

    Notes
    -----
    Calling :meth:`update` costs one clock read, so it can be called on every chunk or
    every batch of permutations; a loop that finishes within ``every`` seconds logs nothing.
    """

    def __init__(
        self, log: logging.Logger, what: str, *, total: int | None = None, every: float = EVERY_S
    ) -> None:
        self.log, self.what, self.total, self.every = log, what, total, every
        self.started = self.last = time.perf_counter()

    def update(self, done: int) -> None:
        """Log ``done`` (and the share of ``total``) when ``every`` seconds have passed."""
        now = time.perf_counter()
        if now - self.last < self.every:
            return
        self.last = now
        elapsed = now - self.started
        if self.total:
            self.log.info("  %s: %s/%s (%.0f%%), %.0f s", self.what, f"{done:,}",
                          f"{self.total:,}", 100 * done / self.total, elapsed)
        else:
            self.log.info("  %s: %s, %.0f s", self.what, f"{done:,}", elapsed)

    def __repr__(self) -> str:
        return f"Progress({self.what!r}, total={self.total}, every={self.every} s)"
