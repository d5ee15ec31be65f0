"""geo_send: a SEND Geographical Need Index for English local authorities.

>>> import geo_send as gs
>>> cfg = gs.Config.default()          # the embedded Wolverhampton data
>>> res = gs.run(cfg)                  # pure: returns frames, writes nothing
>>> res.ranked.head()                  # doctest: +SKIP
>>> gs.write_outputs(res, "outputs/")  # doctest: +SKIP
"""

from __future__ import annotations

from ._errors import (
    ConfigError,
    GeoSendError,
    InputFileError,
    JoinError,
    OutputError,
    SitingError,
    ValidationError,
)
from .build import AreaDataset, build_dataset
from .config import Config
from .disclosure import Publication, publishable
from .equity import compute_conversion, compute_representation
from .indicators import compute_indicators
from .index import build_index, rank_areas
from .join import weighted_mean
from .load import read_raw_area
from .outputs import write_dataset, write_outputs
from .pipeline import Result, load_areas, load_table, run
from .trends import compute_trends
from .uncertainty import Uncertainty, assess_uncertainty

__all__ = [
    "AreaDataset",
    "Config",
    "ConfigError",
    "GeoSendError",
    "InputFileError",
    "JoinError",
    "OutputError",
    "Publication",
    "Result",
    "SitingError",
    "Uncertainty",
    "ValidationError",
    "assess_uncertainty",
    "build_dataset",
    "build_index",
    "compute_conversion",
    "compute_indicators",
    "compute_representation",
    "compute_trends",
    "load_areas",
    "load_table",
    "publishable",
    "rank_areas",
    "read_raw_area",
    "run",
    "weighted_mean",
    "write_dataset",
    "write_outputs",
]

__version__ = "0.1.0"
