"""The one module that reads files.

Readers turn files into frames and raise :class:`InputFileError` when a file cannot be
read at all (missing, empty, wrong format). Rules about the *content* (columns, codes,
values, geometry) live in :mod:`geo_send.validate`, so every content problem can be
collected and reported together.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from ._errors import InputFileError, ValidationError, close_matches

__all__ = [
    "read_boundaries",
    "read_table",
    "read_sites",
    "read_pupil_chunks",
    "read_raw_area",
    "file_sha256",
    "PUPIL_CHUNK_ROWS",
    "NATIONAL_FILES",
]

log = logging.getLogger(__name__)

#: Rows per chunk when streaming pupil-level records.
PUPIL_CHUNK_ROWS = 500_000

#: National open files (relative to the raw folder) the dataset builder reads.
NATIONAL_FILES = {
    "wards": "national/england_wards_current.gpkg",
    "lsoas": "national/england_lsoa21.gpkg",
    "lookup": "national/lookup_lsoa21_ward_lad.csv",
    "imd": "national/imd2025_lsoa21_england.csv",
    "population": "national/census21_population_lsoa21_england.csv",
    "schools": "national/schools_sen_jan2023_england.csv",
}
#: Wolverhampton-only extra: children in relative low-income families by current ward.
CHILD_POVERTY_FILE = "child_poverty/children_low_income_ahc_ward_fye2024_2025_wolverhampton.csv"


def _require_file(path: Path) -> None:
    if not path.exists():
        raise InputFileError(f"{path}: file not found")
    if path.is_dir():
        raise InputFileError(f"{path}: is a folder, expected a file")
    if path.stat().st_size == 0:
        raise InputFileError(f"{path}: file is empty")


def read_boundaries(
    path: Path,
    *,
    code_column: str,
    name_column: str | None,
    code_name: str = "ward_code",
    layer: str | None = None,
) -> gpd.GeoDataFrame:
    """Read area boundaries in any format pyogrio reads.

    Parameters
    ----------
    path : Path
        Boundary file (GeoPackage, GeoJSON, Shapefile, FlatGeobuf, ...).
    code_column, name_column : str
        Columns holding the area code and display name.
    code_name : str
        Name given to the code index (``ward_code`` or ``lsoa_code``).
    layer : str, optional
        Layer to read from a multi-layer file.

    Returns
    -------
    geopandas.GeoDataFrame
        Indexed by ``code_name`` (strings, surrounding spaces removed), with the name as
        ``{level}_name`` and the geometry; the CRS is kept as found (checked later).

    Raises
    ------
    InputFileError
        If the file is missing, empty or unreadable, or the layer does not exist.
    ValidationError
        If the code or name column is missing.
    """
    path = Path(path)
    _require_file(path)
    try:
        if layer is not None:
            layers = [name for name, _ in pyogrio.list_layers(path)]
            if layer not in layers:
                raise InputFileError(
                    f"{path}: no layer {layer!r}; layers are {', '.join(layers)}"
                    f"{close_matches(layer, layers)}"
                )
        gdf = gpd.read_file(path, layer=layer, engine="pyogrio")
    except InputFileError:
        raise
    except Exception as exc:  # pyogrio raises several types for unreadable files
        raise InputFileError(f"{path}: cannot read as a boundary file ({exc})") from None
    if len(gdf) == 0:
        raise InputFileError(f"{path}: boundary file has no features")
    wanted = [c for c in (code_column, name_column) if c]
    missing = [c for c in wanted if c not in gdf.columns]
    if missing:
        columns = [str(c) for c in gdf.columns if c != gdf.geometry.name]
        raise ValidationError(
            [
                f"{path}: column {c!r} not found{close_matches(c, columns)} "
                f"(columns: {', '.join(columns)})"
                for c in missing
            ]
        )
    level_name = code_name.replace("_code", "_name")
    out = gpd.GeoDataFrame(
        {
            code_name: gdf[code_column].astype("string").str.strip().astype(str),
            level_name: (
                gdf[name_column].astype(str) if name_column else gdf[code_column].astype(str)
            ),
        },
        geometry=gdf.geometry.values,
        crs=gdf.crs,
    )
    out.attrs["source"] = str(path)
    return out.set_index(code_name)


def _sniff_delimiter(path: Path, encoding: str) -> str:
    with open(path, encoding=encoding, newline="") as f:
        sample = f.read(64_000)
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _encoding(path: Path) -> str:
    """UTF-8 (with or without a byte-order mark), else Windows-1252."""
    raw = path.read_bytes()[:1_000_000]
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8-sig"


def read_table(path: Path, *, code_column: str, code_name: str = "ward_code") -> pd.DataFrame:
    """Read an area-level CSV as text, indexed by its code column.

    Every value is read as a string; :func:`geo_send.validate.to_numbers` turns the
    columns an analysis needs into numbers and reports every value it cannot read.
    The encoding (UTF-8 with or without BOM, or Windows-1252) and the delimiter
    (comma, semicolon, tab or bar) are detected; blank rows are dropped.

    Raises
    ------
    InputFileError
        If the file is missing, empty or has no data rows.
    ValidationError
        If the code column is missing.
    """
    path = Path(path)
    _require_file(path)
    encoding = _encoding(path)
    try:
        frame = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            encoding=encoding,
            sep=_sniff_delimiter(path, encoding),
            skip_blank_lines=True,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputFileError(f"{path}: cannot read as CSV ({exc})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    blank = frame.apply(lambda col: col.str.strip() == "").all(axis=1)
    frame = frame.loc[~blank]
    if frame.empty:
        raise InputFileError(f"{path}: no data rows")
    if code_column not in frame.columns:
        raise ValidationError(
            f"{path}: code column {code_column!r} not found{close_matches(code_column, frame.columns)}"
            f" (columns: {', '.join(frame.columns)})"
        )
    frame[code_column] = frame[code_column].str.strip()
    frame = frame.rename(columns={code_column: code_name})
    frame.index = pd.RangeIndex(2, len(frame) + 2, name="csv_row")  # row 1 is the header
    frame.attrs["source"] = str(path)
    return frame


def read_sites(path: Path) -> pd.DataFrame:
    """Read a council's CSV of candidate hub sites as text.

    Same encoding and delimiter detection as :func:`read_table`; the columns are checked and
    converted by :func:`geo_send.siting.candidate_sites`.

    Raises
    ------
    InputFileError
        If the file is missing, empty or has no data rows.
    """
    path = Path(path)
    _require_file(path)
    encoding = _encoding(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding,
                            sep=_sniff_delimiter(path, encoding), skip_blank_lines=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputFileError(f"{path}: cannot read as CSV ({exc})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    frame = frame.loc[~frame.apply(lambda col: col.str.strip() == "").all(axis=1)]
    if frame.empty:
        raise InputFileError(f"{path}: no data rows")
    frame = frame.apply(lambda col: col.str.strip())
    frame.attrs["source"] = str(path)
    return frame.reset_index(drop=True)


def read_pupil_chunks(
    path: Path, columns: Sequence[str], *, chunk_rows: int = PUPIL_CHUNK_ROWS
) -> Iterator[pd.DataFrame]:
    """Stream pupil-level records in chunks of ``chunk_rows`` (bounded memory).

    Raises
    ------
    InputFileError
        If the file is missing or empty.
    ValidationError
        If a requested column is missing.
    """
    path = Path(path)
    _require_file(path)
    encoding = _encoding(path)
    sep = _sniff_delimiter(path, encoding)
    header = pd.read_csv(path, nrows=0, encoding=encoding, sep=sep).columns
    header = [str(c).strip() for c in header]
    missing = [c for c in columns if c not in header]
    if missing:
        raise ValidationError(
            [f"{path}: column {c!r} not found{close_matches(c, header)}" for c in missing]
        )
    reader = pd.read_csv(
        path,
        usecols=lambda c: str(c).strip() in columns,
        dtype=str,
        keep_default_na=False,
        encoding=encoding,
        sep=sep,
        chunksize=chunk_rows,
    )
    first = 2
    for chunk in reader:
        chunk.columns = [str(c).strip() for c in chunk.columns]
        chunk.index = pd.RangeIndex(first, first + len(chunk), name="csv_row")
        first += len(chunk)
        yield chunk


# -- raw open data for the dataset builder ------------------------------------------------


def _raw(raw: Path, relative: str) -> Path:
    path = raw / relative
    _require_file(path)
    return path


def _in_list(column: str, codes: Sequence[str]) -> str:
    quoted = ", ".join("'" + c.replace("'", "''") + "'" for c in codes)
    return f"{column} IN ({quoted})"


def read_raw_area(raw: Path, lad_codes: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Read the national open files for some local authorities.

    Parameters
    ----------
    raw : Path
        The raw data folder (``../shared/data/raw``); see its ``PROVENANCE.md``.
    lad_codes : sequence of str
        Local authority district codes (LAD 2025), e.g. ``["E08000031"]``.

    Returns
    -------
    dict of str to DataFrame
        ``wards`` and ``lsoas`` (GeoDataFrames, EPSG:27700), ``lookup``, ``imd``,
        ``population``, ``schools`` and, when the area includes Wolverhampton,
        ``child_poverty``; each filtered to the requested authorities.
    """
    raw = Path(raw)
    codes = list(lad_codes)
    out: dict[str, pd.DataFrame] = {}
    out["wards"] = gpd.read_file(
        _raw(raw, NATIONAL_FILES["wards"]), where=_in_list("LAD25CD", codes), engine="pyogrio"
    )
    out["lsoas"] = gpd.read_file(
        _raw(raw, NATIONAL_FILES["lsoas"]), where=_in_list("LAD25CD", codes), engine="pyogrio"
    )
    lookup = pd.read_csv(_raw(raw, NATIONAL_FILES["lookup"]), dtype=str)
    out["lookup"] = lookup.loc[lookup["lad25cd"].isin(codes)]
    imd = pd.read_csv(_raw(raw, NATIONAL_FILES["imd"]), dtype={"lsoa21_code": str})
    out["imd"] = imd.loc[imd["lad25cd"].isin(codes)]
    pop = pd.read_csv(_raw(raw, NATIONAL_FILES["population"]), dtype={"lsoa21_code": str})
    out["population"] = pop.loc[pop["lad25cd"].isin(codes)]
    schools = pd.read_csv(
        _raw(raw, NATIONAL_FILES["schools"]),
        dtype={"urn": "Int64", "new_la_code": str, "school_name": str},
    )
    out["schools"] = schools.loc[schools["new_la_code"].isin(codes)]
    if "E08000031" in codes:
        out["child_poverty"] = pd.read_csv(
            _raw(raw, CHILD_POVERTY_FILE), dtype=str, thousands=","
        )
    for key, frame in out.items():
        frame.attrs["source"] = key
    log.info("read national open data for %s", ", ".join(codes))
    return out


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (for the run manifest)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
