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
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio

from ._errors import InputFileError, ValidationError, close_matches, preview

__all__ = [
    "read_boundaries",
    "read_table",
    "read_sites",
    "read_pupil_chunks",
    "read_raw_area",
    "read_lads",
    "file_sha256",
    "PUPIL_CHUNK_ROWS",
    "NATIONAL_FILES",
    "DELIMITERS",
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
    "lads": "national/england_lad.gpkg",
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
        layers = [name for name, _ in pyogrio.list_layers(path)]
        if layer is not None and layer not in layers:
            raise InputFileError(
                f"{path}: no layer {layer!r}; layers are {', '.join(layers)}"
                f"{close_matches(layer, layers)}"
            )
        if layer is None and len(layers) > 1:
            raise InputFileError(
                f"{path}: holds {len(layers)} layers ({', '.join(layers)}); say which one with "
                "[inputs] boundaries_layer"
            )
        gdf = gpd.read_file(path, layer=layer, engine="pyogrio")
    except InputFileError:
        raise
    except Exception as exc:  # pyogrio raises several types for unreadable files
        raise InputFileError(f"{path}: cannot read as a boundary file ({exc})") from None
    if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry.name not in gdf.columns:
        raise InputFileError(
            f"{path}: has no geometry; expected area polygons (GeoPackage, GeoJSON, Shapefile, ...)"
        )
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
            code_name: gdf[code_column].astype("string").str.strip().fillna("").astype(str),
            level_name: gdf[name_column or code_column].astype("string").fillna("").astype(str),
        },
        geometry=gdf.geometry.values,
        crs=gdf.crs,
    )
    out.attrs["source"] = str(path)
    return out.set_index(code_name)


#: Delimiters a table may use, in order of preference when two fit equally well.
DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "bar"}
#: Lines looked at to choose the delimiter.
_SNIFF_LINES = 200


def _encoding(path: Path) -> str:
    """Detect a text file's encoding: UTF-8 (BOM or not), UTF-16 (BOM) or Windows-1252.

    Raises
    ------
    InputFileError
        If the file is a spreadsheet workbook or other binary file, or is neither UTF-8
        nor Windows-1252 text.
    """
    with open(path, "rb") as f:
        head = f.read(1_000_000)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\xd0\xcf\x11\xe0"):
        raise InputFileError(
            f"{path}: is a spreadsheet workbook (or other zip/OLE file), not a CSV; in Excel use "
            "Save As > 'CSV UTF-8 (Comma delimited)'"
        )
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if b"\x00" in head:
        raise InputFileError(
            f"{path}: holds NUL bytes, so it is a binary file or UTF-16 text without a byte-order "
            "mark; expected a CSV in UTF-8 or Windows-1252"
        )
    for encoding in ("utf-8", "cp1252"):
        try:
            head.decode(encoding)
        except UnicodeDecodeError as exc:
            if encoding == "utf-8" and len(head) == 1_000_000 and exc.start >= len(head) - 4:
                return "utf-8"  # a multi-byte character cut at the end of the sample
            bad = exc
            continue
        return encoding
    raise InputFileError(
        f"{path}: is neither UTF-8 nor Windows-1252 text (byte 0x{head[bad.start]:02x} at offset "
        f"{bad.start}); save it as 'CSV UTF-8'"
    )


def _decode(path: Path) -> str:
    encoding = _encoding(path)
    try:
        return path.read_bytes().decode(encoding)
    except UnicodeDecodeError as exc:
        raise InputFileError(
            f"{path}: is not valid {encoding} text (offset {exc.start}); save it as 'CSV UTF-8'"
        ) from None


def _choose_delimiter(lines: Sequence[str]) -> str:
    """Choose the delimiter that splits the header into most columns and most rows alike.

    Each candidate in :data:`DELIMITERS` parses the first lines; it scores the share of
    non-blank rows with as many fields as the header, provided the header has at least
    two fields. A file with no candidate splitting its header is read as one column
    (comma), which :func:`read_table` then reports.
    """
    best, best_score = ",", (0.0, 0)
    for delimiter in DELIMITERS:
        rows = [r for r in csv.reader(lines, delimiter=delimiter) if any(f.strip() for f in r)]
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        body = rows[1:] or rows
        score = (sum(len(r) == width for r in body) / len(body), width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _sniff_delimiter(path: Path, encoding: str) -> str:
    with open(path, encoding=encoding, newline="") as f:
        lines = [line for _, line in zip(range(_SNIFF_LINES), f, strict=False)]
    return _choose_delimiter(lines)


def read_table(path: Path, *, code_column: str, code_name: str = "ward_code") -> pd.DataFrame:
    """Read an area-level CSV as text, indexed by its line number in the file.

    Every value is read as a string; :func:`geo_send.validate.to_numbers` turns the
    columns an analysis needs into numbers and reports every value it cannot read.
    The encoding (UTF-8 with or without BOM, UTF-16 with BOM, or Windows-1252) and the
    delimiter (comma, semicolon, tab or bar) are detected; blank rows (including rows of
    empty fields, such as an Excel export's trailing rows) are dropped; header names and
    codes lose surrounding spaces. A row shorter than the header has its missing trailing
    values left blank (missing); a longer row is an error.

    Returns
    -------
    DataFrame
        Text columns, the code column renamed ``code_name``; the index ``csv_row`` is the
        line number in the file (the header is line 1), so messages point at the line a
        text editor shows.

    Raises
    ------
    InputFileError
        If the file is missing, empty, binary (e.g. an Excel workbook), not UTF-8 or
        Windows-1252 text, or has no data rows.
    ValidationError
        Listing every structural problem: missing code column (with a hint when the file
        was read as one column), duplicated header names, rows with too many values.
    """
    path = Path(path)
    _require_file(path)
    text = _decode(path)
    lines = text.splitlines(keepends=True)
    delimiter = _choose_delimiter(lines[:_SNIFF_LINES])
    reader = csv.reader(lines, delimiter=delimiter)
    header: list[str] | None = None
    rows: list[list[str]] = []
    numbers: list[int] = []
    long_rows: list[str] = []
    mixed: list[str] = []
    previous = 0
    try:
        for fields in reader:
            line = previous + 1
            previous = reader.line_num
            if not any(f.strip() for f in fields):
                continue
            if header is None:
                header = [f.strip().lstrip("\ufeff").strip() for f in fields]
                continue
            if len(fields) > len(header):
                long_rows.append(f"{line} ({len(fields)} values)")
                continue
            if len(fields) < len(header) and any(
                d in "".join(fields) for d in DELIMITERS if d != delimiter
            ):
                mixed.append(str(line))
                continue
            rows.append(fields + [""] * (len(header) - len(fields)))
            numbers.append(line)
    except csv.Error as exc:
        raise InputFileError(
            f"{path}: cannot read as CSV (line {reader.line_num}: {exc})"
        ) from None
    if header is None:
        raise InputFileError(f"{path}: file is empty (only blank lines)")
    if not rows and not long_rows and not mixed:
        raise InputFileError(f"{path}: no data rows (only a header)")
    header = [h or f"unnamed_{i + 1}" for i, h in enumerate(header)]
    problems = []
    name = _DELIMITER_NAMES[delimiter]
    if long_rows:
        problems.append(
            f"{path}: {len(long_rows)} row(s) have more values than the {len(header)} columns of "
            f"the header ({name}-delimited): line(s) {preview(long_rows)}; expected one value per "
            "column (is there an unquoted delimiter inside a value, such as a name?)"
        )
    if mixed:
        problems.append(
            f"{path}: line(s) {preview(mixed)} use a different delimiter from the header "
            f"({name}); expected one delimiter throughout the file"
        )
    seen: dict[str, list[int]] = {}
    for i, h in enumerate(header, start=1):
        seen.setdefault(h, []).append(i)
    for h, positions in seen.items():
        if len(positions) > 1:
            problems.append(
                f"{path}: column name {h!r} appears {len(positions)} times (columns "
                f"{', '.join(map(str, positions))}); expected unique column names"
            )
    if code_column not in header:
        hint = close_matches(code_column, header)
        if len(header) == 1:
            hint += (
                f"; the file was read as a single column {header[0]!r}: expected a comma, "
                "semicolon, tab or bar between columns"
                + (" (it seems to use spaces)" if " " in header[0].strip() else "")
            )
        problems.append(
            f"{path}: code column {code_column!r} not found{hint} (columns: {', '.join(header)})"
        )
    if problems:
        raise ValidationError(problems)
    frame = pd.DataFrame(rows, columns=header, dtype=object).astype(str)
    frame[code_column] = frame[code_column].str.strip()
    frame = frame.rename(columns={code_column: code_name})
    frame.index = pd.Index(numbers, name="csv_row")  # the header is line 1
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
    path: Path,
    columns: Sequence[str],
    *,
    chunk_rows: int | None = None,
    dtypes: Mapping[str, str] | None = None,
    na_values: Mapping[str, Sequence[str]] | None = None,
) -> Iterator[pd.DataFrame]:
    """Stream pupil-level records in chunks of ``chunk_rows`` (bounded memory).

    Encoding and delimiter are detected as in :func:`read_table`; rows whose requested
    columns are all blank are dropped. Only ``columns`` are parsed (pandas' C parser
    with ``usecols``), each with its dtype from ``dtypes`` (default ``str``):
    ``"category"`` keeps a code column to a few bytes per row, ``"float64"`` parses
    coordinates without building strings. Memory is that of one chunk, whatever the size
    of the file.

    Parameters
    ----------
    path : Path
        CSV with a header row; encoding and delimiter are detected.
    columns : sequence of str
        Columns to read (surrounding spaces in the header are ignored).
    chunk_rows : int, optional
        Rows per chunk; default :data:`PUPIL_CHUNK_ROWS`.
    dtypes : mapping of str to str, optional
        dtype per column.
    na_values : mapping of str to sequence of str, optional
        Text read as missing, per column (other columns keep every value as text).

    Yields
    ------
    DataFrame
        One chunk, indexed by the CSV row number (``csv_row``; the header is row 1).

    Raises
    ------
    InputFileError
        If the file is missing, empty, binary or not readable as CSV.
    ValidationError
        If a requested column is missing.
    """
    path = Path(path)
    _require_file(path)
    encoding = _encoding(path)
    sep = _sniff_delimiter(path, encoding)
    try:
        header = pd.read_csv(path, nrows=0, encoding=encoding, sep=sep).columns
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{path}: cannot read as CSV ({exc})") from None
    raw_name = {str(c).strip(): c for c in header}
    missing = [c for c in columns if c not in raw_name]
    if missing:
        raise ValidationError(
            [f"{path}: column {c!r} not found{close_matches(c, list(raw_name))}" for c in missing]
        )
    dtypes = dict(dtypes or {})
    reader = pd.read_csv(
        path,
        usecols=[raw_name[c] for c in columns],
        dtype={raw_name[c]: dtypes.get(c, str) for c in columns},
        na_values={raw_name[c]: list(v) for c, v in (na_values or {}).items()},
        keep_default_na=False,
        encoding=encoding,
        sep=sep,
        engine="c",
        low_memory=False,  # one parse per chunk: no sub-chunks whose categories need merging
        chunksize=chunk_rows or PUPIL_CHUNK_ROWS,
    )
    first = 2
    try:
        with reader:
            for chunk in reader:
                chunk.columns = [str(c).strip() for c in chunk.columns]
                chunk.index = pd.RangeIndex(first, first + len(chunk), name="csv_row")
                first += len(chunk)
                blank = np.logical_and.reduce([_blank(chunk[c]) for c in chunk.columns])
                yield chunk.loc[~blank] if blank.any() else chunk
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{path}: cannot read as CSV near record {first} ({exc})") from None


def _blank(column: pd.Series) -> np.ndarray:
    """Whether each value is blank, looking at each distinct value of a categorical once."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        labels = column.cat.categories.astype(str).str.strip() == ""
        return np.append(labels, True)[column.cat.codes.to_numpy()]  # code -1: missing
    if pd.api.types.is_numeric_dtype(column):
        return column.isna().to_numpy()
    return (column.astype(str).str.strip() == "").to_numpy()


# -- raw open data for the dataset builder ------------------------------------------------


def _raw(raw: Path, relative: str) -> Path:
    path = raw / relative
    _require_file(path)
    return path


def _in_list(column: str, codes: Sequence[str]) -> str:
    quoted = ", ".join("'" + c.replace("'", "''") + "'" for c in codes)
    return f"{column} IN ({quoted})"


def read_lads(raw: Path) -> pd.DataFrame:
    """Codes and names of every local authority district (LAD 2025), without geometry."""
    path = _raw(Path(raw), NATIONAL_FILES["lads"])
    return pyogrio.read_dataframe(path, columns=["LAD25CD", "LAD25NM"], read_geometry=False)


def read_raw_area(raw: Path, lad_codes: Sequence[str] | None) -> dict[str, pd.DataFrame]:
    """Read the national open files for some local authorities.

    Parameters
    ----------
    raw : Path
        The raw data folder (``../shared/data/raw``); see its ``PROVENANCE.md``.
    lad_codes : sequence of str or None
        Local authority district codes (LAD 2025), e.g. ``["E08000031"]``; ``None``
        reads all of England.

    Returns
    -------
    dict of str to DataFrame
        ``wards`` and ``lsoas`` (GeoDataFrames, EPSG:27700), ``lookup``, ``imd``,
        ``population``, ``schools`` and, when the area includes Wolverhampton,
        ``child_poverty``; each filtered to the requested authorities.
    """
    raw = Path(raw)
    codes = None if lad_codes is None else list(lad_codes)
    where = None if codes is None else _in_list("LAD25CD", codes)

    def keep(frame: pd.DataFrame, column: str) -> pd.DataFrame:
        return frame if codes is None else frame.loc[frame[column].isin(codes)]

    out: dict[str, pd.DataFrame] = {}
    log.info("reading national boundaries (wards, LSOAs)")
    out["wards"] = gpd.read_file(_raw(raw, NATIONAL_FILES["wards"]), where=where, engine="pyogrio")
    out["lsoas"] = gpd.read_file(_raw(raw, NATIONAL_FILES["lsoas"]), where=where, engine="pyogrio")
    log.info("reading national tables (lookup, IoD 2025, Census 2021, schools)")
    lookup = pd.read_csv(_raw(raw, NATIONAL_FILES["lookup"]), dtype=str)
    out["lookup"] = keep(lookup, "lad25cd")
    imd = pd.read_csv(_raw(raw, NATIONAL_FILES["imd"]), dtype={"lsoa21_code": str})
    out["imd"] = keep(imd, "lad25cd")
    pop = pd.read_csv(_raw(raw, NATIONAL_FILES["population"]), dtype={"lsoa21_code": str})
    out["population"] = keep(pop, "lad25cd")
    schools = pd.read_csv(
        _raw(raw, NATIONAL_FILES["schools"]),
        dtype={"urn": "Int64", "new_la_code": str, "school_name": str},
    )
    if codes is None:
        out["schools"] = schools
    else:
        # Schools belong to the education authority: a county (E10) for its districts
        # (E07), whose codes never appear here. A district keeps the schools located in
        # its LSOAs instead.
        districts = [c for c in codes if c not in set(schools["new_la_code"])]
        own = schools["new_la_code"].isin(codes)
        if districts:
            inside = out["lookup"].loc[out["lookup"]["lad25cd"].isin(districts), "lsoa21_code"]
            own |= schools["lsoa21_code_from_point"].isin(set(inside))
            log.info("%s: not education authorities; their schools are those located in "
                     "their LSOAs", ", ".join(districts))
        out["schools"] = schools.loc[own]
    if codes is not None and "E08000031" in codes:
        out["child_poverty"] = pd.read_csv(
            _raw(raw, CHILD_POVERTY_FILE), dtype=str, thousands=","
        )
    for key, frame in out.items():
        frame.attrs["source"] = key
    log.info("read national open data for %s",
             "all of England" if codes is None else ", ".join(codes))
    return out


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (for the run manifest)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
