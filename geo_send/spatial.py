"""Spatial weights and spatial autocorrelation: global Moran's I and local Moran (LISA)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from esda.moran import Moran_Local
from libpysal.graph import Graph

__all__ = ["build_weights", "global_moran", "local_moran", "LISA_LABELS"]

LISA_LABELS = {1: "High-High", 2: "Low-High", 3: "Low-Low", 4: "High-Low"}


def build_weights(gdf) -> Graph:
    """Queen contiguity, row-standardised."""
    return Graph.build_contiguity(gdf, rook=False).transform("r")


def global_moran(y: pd.Series, graph: Graph, *, permutations: int, seed: int) -> dict:
    """Moran's I with a two-sided permutation pseudo p-value.

    Notes
    -----
    I = (n / S0) · zᵀWz / zᵀz with z = y − ȳ. The pseudo p-value folds the permutation
    distribution: p = (M + 1) / (R + 1), M = #{|I_sim − E_sim| ≥ |I − E_sim|}.
    """
    w = graph.sparse
    z = (y - y.mean()).to_numpy(dtype=float)
    n = len(z)
    s0 = w.sum()
    moran = n / s0 * (z @ (w @ z)) / (z @ z)
    rng = np.random.default_rng(seed)
    sims = np.empty(permutations)
    for r in range(permutations):
        zp = rng.permutation(z)
        sims[r] = n / s0 * (zp @ (w @ zp)) / (zp @ zp)
    centre = sims.mean()
    extreme = np.sum(np.abs(sims - centre) >= abs(moran - centre))
    return {
        "I": float(moran),
        "expected_I": -1.0 / (n - 1),
        "z_sim": float((moran - centre) / sims.std()),
        "p_sim": float((extreme + 1) / (permutations + 1)),
        "permutations": permutations,
        "seed": seed,
        "alternative": "two-sided",
    }


def local_moran(
    y: pd.Series, graph: Graph, *, permutations: int, seed: int, alpha: float
) -> pd.DataFrame:
    """Local Moran's I with a two-sided conditional-permutation pseudo p-value."""
    w = graph.to_W()
    with warnings.catch_warnings():
        # esda 2.9 announces a change of default; the p-value below is two-sided anyway.
        warnings.filterwarnings("ignore", message="The alternative hypothesis", category=DeprecationWarning)
        lisa = Moran_Local(
            y.to_numpy(dtype=float), w, transformation="r", permutations=permutations,
            seed=seed, keep_simulations=True,
        )
    centre = lisa.sim.mean(axis=0)
    extreme = (np.abs(lisa.sim - centre) >= np.abs(lisa.Is - centre)).sum(axis=0)
    p = (extreme + 1) / (permutations + 1)
    labels = np.where(p <= alpha, pd.Series(lisa.q).map(LISA_LABELS), "Not significant")
    return pd.DataFrame(
        {"lisa_i": lisa.Is, "lisa_p": p, "lisa_label": labels}, index=y.index
    )
