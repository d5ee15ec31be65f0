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

from ._errors import InputFileError, ValidationError, close_matches, preview

__all__ = [
    "read_boundaries",
    "read_table",
    "read_sites",
    "read_pupil_chunks",
    "read_raw_area",
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
    path: Path, columns: Sequence[str], *, chunk_rows: int = PUPIL_CHUNK_ROWS
) -> Iterator[pd.DataFrame]:
    """Stream pupil-level records in chunks of ``chunk_rows`` (bounded memory).

    Encoding and delimiter are detected as in :func:`read_table`; rows whose requested
    columns are all blank are dropped. The index ``csv_row`` counts records (header = 1).

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
    try:
        for chunk in reader:
            chunk.columns = [str(c).strip() for c in chunk.columns]
            chunk.index = pd.RangeIndex(first, first + len(chunk), name="csv_row")
            first += len(chunk)
            blank = chunk.apply(lambda col: col.str.strip() == "").all(axis=1)
            yield chunk.loc[~blank]
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{path}: cannot read as CSV near record {first} ({exc})") from None


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
