"""From indicator values to one need index: normalise, weight, aggregate, rank."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .config import DomainSpec, IndexSettings, IndicatorSpec

__all__ = ["normalise", "build_index", "rank_areas"]


def normalise(values: pd.Series, method: str) -> pd.Series:
    """Normalise one indicator (already oriented so that higher = more need).

    ``zscore``: (x − mean) / standard deviation (population, ddof=0).
    """
    if method != "zscore":
        raise NotImplementedError(method)
    std = values.std(ddof=0)
    centred = values - values.mean()
    return centred / std if std > 0 else centred * 0.0


def build_index(
    values: pd.DataFrame,
    indicators: Sequence[IndicatorSpec],
    domains: Sequence[DomainSpec],
    settings: IndexSettings,
) -> pd.DataFrame:
    """Combine indicator values into domain scores and the need index.

    Returns
    -------
    DataFrame
        ``{domain}_score`` per domain, ``need_index`` and ``indicators_missing_count``.
        A missing indicator is left out of its domain's weighted mean (the remaining
        weights are rescaled), and counted in ``indicators_missing_count``.
    """
    out = pd.DataFrame(index=values.index)
    domain_scores = {}
    for domain in domains:
        specs = [s for s in indicators if s.domain == domain.name]
        norm = pd.DataFrame(
            {s.name: normalise(values[s.name] * s.direction, settings.normalisation) for s in specs}
        )
        w = pd.Series({s.name: s.weight for s in specs}, dtype=float)
        present = norm.notna()
        weight_sum = present.mul(w, axis=1).sum(axis=1)
        score = norm.fillna(0).mul(w, axis=1).sum(axis=1) / weight_sum.where(weight_sum > 0)
        domain_scores[domain.name] = score
        out[f"{domain.name}_score"] = score
    dw = pd.Series({d.name: d.weight for d in domains}, dtype=float)
    frame = pd.DataFrame(domain_scores)
    present = frame.notna()
    weight_sum = present.mul(dw, axis=1).sum(axis=1)
    out["need_index"] = frame.fillna(0).mul(dw, axis=1).sum(axis=1) / weight_sum.where(weight_sum > 0)
    out["indicators_missing_count"] = values[[s.name for s in indicators]].isna().sum(axis=1)
    return out


def rank_areas(index: pd.Series) -> pd.Series:
    """Rank 1 = highest need; ties broken by area code (stable, deterministic)."""
    order = (
        pd.DataFrame({"v": index, "code": index.index})
        .sort_values(["v", "code"], ascending=[False, True], kind="stable", na_position="last")
    )
    ranks = pd.Series(np.arange(1, len(order) + 1), index=order.index, name="rank")
    return ranks.reindex(index.index)
