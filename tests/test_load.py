"""The reader: encodings, delimiters, line numbers, structural problems."""

from __future__ import annotations

import pytest

from geo_send import InputFileError, ValidationError
from geo_send.load import _choose_delimiter, read_table


@pytest.mark.parametrize(
    "text, expected",
    [("a,b\n1,2\n", ","), ("a;b\n1,5;2\n", ";"), ("a\tb\n1\t2\n", "\t"), ("a|b\n1|2\n", "|"),
     ("a b c\n1 2 3\n", ","), ('name,n\n"x; y",2\n', ",")],
    ids=["comma", "semicolon-with-decimal-comma", "tab", "bar", "spaces-not-a-delimiter",
         "quoted-semicolon"],
)
def test_the_delimiter_is_the_one_that_splits_header_and_rows_alike(text, expected):
    assert _choose_delimiter(text.splitlines(keepends=True)) == expected


def test_rows_keep_their_line_numbers_across_blank_lines(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("\n\ufeffward_code, pupils \n\nE1,5\n,\n  \nE2,6\n", encoding="utf-8")
    frame = read_table(path, code_column="ward_code")
    assert list(frame.columns) == ["ward_code", "pupils"]
    assert frame.index.tolist() == [4, 7] and frame["ward_code"].tolist() == ["E1", "E2"]


def test_a_short_row_is_padded_with_missing_values(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("ward_code,a,b\nE1,1\nE2,2,3\n")
    assert read_table(path, code_column="ward_code")["b"].tolist() == ["", "3"]


def test_structural_problems_are_all_reported_together(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("code,a,a\nE1,1,2,3\nE2,1,2\nE3,1,2,3,4\n")
    with pytest.raises(ValidationError) as err:
        read_table(path, code_column="ward_code")
    assert len(err.value.problems) == 3
    text = str(err.value)
    assert "line(s) 2 (4 values), 4 (5 values)" in text
    assert "column name 'a' appears 2 times (columns 2, 3)" in text
    assert "'ward_code' not found" in text


@pytest.mark.parametrize(
    "data, message",
    [(b"", "file is empty"), (b"\n\n", "only blank lines"), (b"PK\x03\x04xx", "workbook"),
     (b"\xd0\xcf\x11\xe0xx", "workbook"), (b"a\x00b", "NUL bytes"),
     (b"ward_code\nE1\x81\n", "neither UTF-8 nor Windows-1252"),
     (b"ward_code,a\n", "no data rows")],
    ids=["empty", "blank", "xlsx", "xls", "nul", "bad-bytes", "header-only"],
)
def test_unreadable_files_say_why(tmp_path, data, message):
    path = tmp_path / "t.csv"
    path.write_bytes(data)
    with pytest.raises(InputFileError, match=message):
        read_table(path, code_column="ward_code")
