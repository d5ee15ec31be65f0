"""Indicators from counts and scores: one value per area for each configured indicator."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .config import IndicatorSpec

__all__ = ["compute_indicators"]


def compute_indicators(table: pd.DataFrame, indicators: Sequence[IndicatorSpec]) -> pd.DataFrame:
    """Compute each indicator's value per area.

    Parameters
    ----------
    table : DataFrame
        Numeric input columns, indexed by area code.
    indicators : sequence of IndicatorSpec

    Returns
    -------
    DataFrame
        One column per indicator, named ``spec.name``, in the configured units
        (``numerator / denominator * multiplier`` for count-based indicators; the column
        itself for scores). A zero or missing denominator gives a missing value.
    """
    out = pd.DataFrame(index=table.index)
    for spec in indicators:
        if spec.is_count_based:
            den = table[spec.denominator].where(table[spec.denominator] > 0)
            out[spec.name] = table[spec.numerator] / den * spec.multiplier
        else:
            out[spec.name] = table[spec.column].astype(float)
    return out.astype(float).replace([np.inf, -np.inf], np.nan)
