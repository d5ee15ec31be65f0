"""One small hierarchy of errors; the CLI turns each into one line and an exit code."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

__all__ = [
    "GeoSendError",
    "ConfigError",
    "InputFileError",
    "ValidationError",
    "JoinError",
    "SitingError",
    "OutputError",
    "combine",
    "close_matches",
    "preview",
]


class GeoSendError(Exception):
    """Base class of every error geo_send raises on purpose.

    Attributes
    ----------
    exit_code : int
        Process exit code used by the command-line interface.
    """

    exit_code: int = 1


class ConfigError(GeoSendError, ValueError):
    """The TOML configuration is missing, malformed or inconsistent."""

    exit_code = 2


class InputFileError(GeoSendError, FileNotFoundError):
    """An input file is missing, empty or cannot be read."""

    exit_code = 3


class ValidationError(GeoSendError, ValueError):
    """Input data were read but break a rule (columns, codes, values, geometry).

    Parameters
    ----------
    problems : sequence of str
        Every problem found, one line each; all are reported together.
    """

    exit_code = 4

    def __init__(self, problems: Sequence[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        if len(self.problems) == 1:
            message = self.problems[0]
        else:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            message = f"{len(self.problems)} problems in the input:\n{lines}"
        super().__init__(message)


class JoinError(ValidationError):
    """Codes on one side of a join have no partner on the other."""


class SitingError(GeoSendError, ValueError):
    """A siting problem is infeasible or ill-posed."""

    exit_code = 5


class OutputError(GeoSendError, OSError):
    """The output folder cannot be used: it is a file, not writable, or holds inputs."""

    exit_code = 6


def _problems(error: GeoSendError) -> list[str]:
    return list(getattr(error, "problems", None) or [str(error)])


def combine(errors: Sequence[GeoSendError]) -> GeoSendError:
    """Merge errors collected from several files into one, listing every problem.

    The result is an :class:`InputFileError` when any file could not be read at all
    (exit code 3), else a :class:`ValidationError` (exit code 4); a single error is
    returned unchanged.
    """
    if len(errors) == 1:
        return errors[0]
    problems = [p for e in errors for p in _problems(e)]
    if any(isinstance(e, InputFileError) for e in errors):
        lines = "\n".join(f"  - {p}" for p in problems)
        return InputFileError(f"{len(problems)} problems in the input:\n{lines}")
    return ValidationError(problems)


def preview(values: Iterable[object], limit: int = 5) -> str:
    """Return the first few values and how many there are, e.g. ``'a, b (2)'``."""
    items = [str(v) for v in values]
    shown = ", ".join(items[:limit])
    more = f", … ({len(items)} in all)" if len(items) > limit else f" ({len(items)})"
    return shown + more


def close_matches(word: str, choices: Iterable[str]) -> str:
    """Return a ``did you mean …?`` hint, or an empty string."""
    matches = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(m) for m in matches)}?" if matches else ""
