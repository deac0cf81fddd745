"""bbbcore.tables: one reader for every table, numbers checked with their row and column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bbbcore.errors import BBBError
from bbbcore.tables import TableError, decode_text, numeric_columns, read_table, require_columns, sniff_delimiter

PLAIN = "file,area,condition\na.png,1.5,control\nb.png,2.5,tat\n"


@pytest.mark.parametrize("data", [
    PLAIN.encode(),
    PLAIN.encode("utf-8-sig"),
    PLAIN.encode("utf-16"),  # with its BOM, little-endian here
    b"\xfe\xff" + PLAIN.encode("utf-16-be"),
    PLAIN.replace(",", ";").encode(),
    PLAIN.replace(",", "\t").encode("utf-16"),
    PLAIN.replace("\n", "\r\n").encode(),
], ids=["utf8", "utf8-bom", "utf16-le", "utf16-be", "semicolon", "tab-utf16", "crlf"])
def test_every_spreadsheet_flavour_reads_the_same(data):
    table = read_table(data, name="t.csv")
    assert list(table.columns) == ["file", "area", "condition"]
    assert table["file"].tolist() == ["a.png", "b.png"] and table["area"].tolist() == [1.5, 2.5]


def test_latin1_is_the_fallback():
    table = read_table("file;condition\nä.png;Kontrolle µ\n".encode("latin-1"), name="t.csv")
    assert table["file"].tolist() == ["ä.png"] and table["condition"].tolist() == ["Kontrolle µ"]


def test_a_path_is_read_and_named(tmp_path):
    path = tmp_path / "plate 1.csv"
    path.write_text(PLAIN, encoding="utf-8")
    assert len(read_table(path)) == 2
    with pytest.raises(TableError, match=r"^missing\.csv: file not found$"):
        read_table(tmp_path / "missing.csv")
    with pytest.raises(TableError, match=r": is a folder, not a table file$"):
        read_table(tmp_path)


@pytest.mark.parametrize("data, problem", [
    (b"", "the file is empty"),
    (b"  \n\n", "the file is empty"),
    (b"\xef\xbb\xbf", "the file is empty"),
    (b"PK\x03\x04" + bytes(30), "a zip or Excel workbook, not a text table (save it as CSV)"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary content, not a text table (save it as CSV, UTF-8)"),
    (b"a,b\n1,2\n3,4,5\n", "not a readable table (row 3 has 3 comma-separated fields, the header 2)"),
    (b"a;b\n1;2;3\n", "not a readable table (row 2 has 3 semicolon-separated fields, the header 2)"),
])
def test_what_is_not_a_table_gets_one_line(data, problem):
    with pytest.raises(TableError) as info:
        read_table(data, name="t.csv")
    assert str(info.value) == f"t.csv: {problem}"
    assert isinstance(info.value, BBBError)


def test_blank_rows_and_trailing_delimiters_are_dropped_but_keep_their_row_numbers():
    table = read_table(b"a;b;\n1;x;\n;;\n\n2;y;\n", name="t.csv")
    assert list(table.columns) == ["a", "b"]
    assert table["b"].tolist() == ["x", "y"]
    assert list(table.index + 2) == [2, 5]  # spreadsheet rows


def test_text_only_keeps_every_value_as_text():
    table = read_table(b"file,dose\na.png,\nb.png,NA\n", name="t.csv", text_only=True)
    assert table["dose"].tolist() == ["", "NA"]


@pytest.mark.parametrize("text, expected", [
    ("a,b\n1,2\n", ","), ("a;b\n1,5;2\n", ";"), ("a\tb\n1\t2\n", "\t"), ("file\na.png\n", ","),
    ('"x;y",b\n"1;2",3\n', ","),
])
def test_the_delimiter_is_sniffed(text, expected):
    assert sniff_delimiter(text) == expected


def test_decode_text_refuses_what_is_not_utf8_when_asked():
    assert decode_text("ä".encode("latin-1"), name="t") == "ä"
    with pytest.raises(TableError, match="^t: not UTF-8 text$"):
        decode_text("ä".encode("latin-1"), name="t", fallback=None)


def test_numbers_are_converted_and_the_first_bad_value_is_named():
    table = read_table(b"area;perimeter\n1,5;2\n 3 ;x\nbig;4\n", name="cells.csv")
    with pytest.raises(TableError) as info:
        numeric_columns(table, ["area", "perimeter"], name="cells.csv")
    assert str(info.value) == "cells.csv: row 3, column perimeter: 'x' is not a number"
    good, warning = numeric_columns(table.drop(index=[1, 2]), ["area", "perimeter"], name="cells.csv")
    assert good["area"].tolist() == [1.5] and good["area"].dtype == np.float64 and warning is None


def test_the_bad_value_is_shown_short_and_on_one_line():
    table = pd.DataFrame({"area": ["1", "x" * 100], "b": ["2", "a\nb"]})
    with pytest.raises(TableError) as info:
        numeric_columns(table, ["b", "area"], name="t.csv")
    assert str(info.value) == "t.csv: row 3, column b: 'a\\nb' is not a number"
    with pytest.raises(TableError, match=r"^t\.csv: row 3, column area: 'xxx.*\.\.\. is not a number$"):
        numeric_columns(table, ["area"], name="t.csv")


def test_missing_and_infinite_values_are_counted_and_made_nan():
    table = read_table(b"area,perimeter,dose\n1,2,\ninf,2,0\n3,,0\n4,-inf,\n5,6,1\n", name="cells.csv")
    checked, warning = numeric_columns(table, ["area", "perimeter", "dose"], name="cells.csv",
                                       report_missing=["area", "perimeter"], note="; see the manual")
    assert warning == ("cells.csv: 3 row(s) with missing or infinite values in area, perimeter were left out "
                       "(rows 3, 4, 5); see the manual")
    assert checked["area"].isna().tolist() == [False, True, False, False, False]
    assert checked["perimeter"].isna().tolist() == [False, False, True, True, False]
    assert len(checked) == 5  # the command leaves the values out; the rows stay


def test_many_left_out_rows_are_summarised():
    table = pd.DataFrame({"area": [np.nan] * 8 + [1.0]})
    _, warning = numeric_columns(table, ["area"], name="t.csv")
    assert warning == ("t.csv: 8 row(s) with missing or infinite values in area were left out "
                       "(rows 2, 3, 4, 5, 6 and 3 more)")


def test_require_columns_names_the_missing_ones_in_order():
    with pytest.raises(TableError, match=r"^t\.csv: missing column\(s\) c, a \(hint\)$"):
        require_columns(pd.DataFrame({"b": [1]}), ["c", "b", "a"], name="t.csv", hint=" (hint)")
