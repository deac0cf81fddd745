"""One reader for every table a person gives the tool (cells tables, sample sheets).

:func:`read_table` accepts what spreadsheets write: comma, semicolon or tab
separated; UTF-8 (with or without a byte-order mark), UTF-16 with a
byte-order mark (Excel's "Unicode text"), else Latin-1. :func:`numeric_columns`
turns the columns a command uses into numbers, naming the row and column of
the first value that is not one, and reports the rows whose values are
missing or infinite. Every failure is a :class:`TableError` whose message is
one line, ``"<file name>: <problem>"``.

Row numbers in messages are spreadsheet row numbers: the header is row 1,
the first data row is row 2. The index of a table returned by
:func:`read_table` is that row number minus 2 (blank lines are dropped but
keep their numbers), so a message about index label ``i`` says row ``i + 2``.
"""

from __future__ import annotations

import csv
import io
import os
import re
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import BBBError, display_name, named_message, read_input

#: Delimiters looked for, in order of preference when the header is ambiguous.
DELIMITERS = (",", ";", "\t")
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
#: Characters of the text the delimiter is sniffed from.
_SNIFF_CHARS = 64 * 1024
_SNIFF_LINES = 50
#: How many row numbers a message lists.
_ROWS_SHOWN = 5


class TableError(BBBError):
    """A table that cannot be read or used; the message is ``"<file name>: <problem>"``."""

    def __init__(self, source: str, problem: str):
        self.source = str(source)
        self.problem = problem
        super().__init__(named_message(self.source, problem))


def decode_text(data: bytes, *, name: str = "table", fallback: str | None = "latin-1") -> str:
    """Text of a file's bytes: UTF-8 (BOM allowed), UTF-16 with a BOM, else ``fallback``.

    Parameters
    ----------
    data : bytes
    name : str
        The file's name, for messages.
    fallback : str or None
        Encoding used when the bytes are not UTF-8; None: refuse them.

    Returns
    -------
    str
        The text, without its byte-order mark.

    Raises
    ------
    TableError
        Binary content (NUL bytes: a spreadsheet workbook, an image, UTF-16
        without a byte-order mark) or undecodable text.
    """
    if data.startswith(b"\xff\xfe") or data.startswith(b"\xfe\xff"):
        encoding = "utf-16-le" if data.startswith(b"\xff\xfe") else "utf-16-be"
        try:
            return data[2:].decode(encoding)
        except UnicodeDecodeError:
            raise TableError(name, f"not readable text (broken {encoding.upper()})") from None
    if data.startswith(b"PK\x03\x04"):
        raise TableError(name, "a zip or Excel workbook, not a text table (save it as CSV)")
    if b"\x00" in data[:_SNIFF_CHARS]:
        raise TableError(name, "binary content, not a text table (save it as CSV, UTF-8)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        if fallback is None:
            raise TableError(name, "not UTF-8 text") from None
        return data.decode(fallback)


def sniff_delimiter(text: str) -> str:
    """The delimiter of a table's text: comma, semicolon or tab.

    :class:`csv.Sniffer` decides on the first lines; its choice must occur
    in the header. Otherwise the delimiter most frequent in the header wins
    (a one-column table: comma).
    """
    sample = "\n".join(text[:_SNIFF_CHARS].splitlines()[:_SNIFF_LINES])
    header = sample.split("\n", 1)[0]
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        delimiter = None
    if delimiter in DELIMITERS and delimiter in header:
        return delimiter
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_table(
    source: str | os.PathLike | bytes,
    *,
    name: str | None = None,
    text_only: bool = False,
) -> pd.DataFrame:
    """Read a CSV-like table from a file or its bytes.

    Parameters
    ----------
    source : path or bytes
        The table. Comma, semicolon or tab separated (sniffed); UTF-8, UTF-8
        with a byte-order mark, UTF-16 with a byte-order mark, else Latin-1.
    name : str, optional
        Name used in messages (default: the file name; ``"table"`` for bytes).
    text_only : bool
        Keep every value as text (empty cells as ``""``), as a sample sheet
        wants; by default pandas infers numbers (empty cells are NaN).

    Returns
    -------
    DataFrame
        Column names stripped of spaces; blank rows and unnamed empty
        columns (trailing delimiters) dropped. The index is the spreadsheet
        row number minus 2 (see the module docstring).

    Raises
    ------
    TableError
        One line: the file is missing, a folder, unreadable, empty, binary,
        or not a table (a row with more fields than the header).
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        label, data = name or "table", bytes(source)
    else:
        path = Path(source)
        label = name or path.name
        data = read_input(path, TableError, label=label, kind="a table file")
    if not data.strip():
        raise TableError(label, "the file is empty")
    text = decode_text(data, name=label)
    if not text.strip():
        raise TableError(label, "the file is empty")
    delimiter = sniff_delimiter(text)
    options = {"dtype": str, "keep_default_na": False} if text_only else {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            table = pd.read_csv(io.StringIO(text), sep=delimiter, index_col=False, skip_blank_lines=False,
                                **options)
    except pd.errors.ParserWarning:
        raise TableError(label, f"not a readable table ({_long_row(text, delimiter)})") from None
    except pd.errors.EmptyDataError:
        raise TableError(label, "the file is empty") from None
    except (pd.errors.ParserError, csv.Error, ValueError) as exc:
        raise TableError(label, f"not a readable table ({_parser_problem(exc, text, delimiter)})") from None
    table.columns = [str(c).strip() for c in table.columns]
    blank = pd.DataFrame({c: _blank(table[c]) for c in table.columns}, index=table.index)
    unnamed = [c for c in table.columns if c.startswith("Unnamed: ") and blank[c].all()]
    table = table.drop(columns=unnamed)
    return table[~blank.drop(columns=unnamed).all(axis=1)]


def _blank(column: pd.Series) -> pd.Series:
    """Empty cells of a column: NaN, or text of spaces only."""
    empty = column.isna()
    if pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column):
        empty |= column.astype(object).map(lambda v: isinstance(v, str) and not v.strip()).astype(bool)
    return empty


def _parser_problem(exc: Exception, text: str, delimiter: str) -> str:
    """pandas' parser error in a person's words."""
    message = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
    if match:
        expected, line, seen = match.groups()
        return (f"row {line} has {seen} {_DELIMITER_NAMES[delimiter]}-separated fields, "
                f"the header {expected}")
    return message


def _long_row(text: str, delimiter: str) -> str:
    """Which row has more fields than the header (pandas only warns about the first data row)."""
    rows = csv.reader(io.StringIO(text[:_SNIFF_CHARS]), delimiter=delimiter)
    header = next(rows, [])
    for number, row in enumerate(rows, start=2):
        if len(row) > len(header):
            return f"row {number} has {len(row)} {_DELIMITER_NAMES[delimiter]}-separated fields, the header {len(header)}"
    return "a row has more fields than the header"


def require_columns(table: pd.DataFrame, columns: Iterable[str], *, name: str, hint: str = "") -> None:
    """Raise a :class:`TableError` naming the columns of ``columns`` the table lacks.

    Parameters
    ----------
    table : DataFrame
    columns : iterable of str
    name : str
        The table's file name, for the message.
    hint : str
        Appended to the message, e.g. ``" (as written by `segment`)"``.
    """
    missing = [c for c in dict.fromkeys(columns) if c not in table.columns]
    if missing:
        raise TableError(name, f"missing column(s) {', '.join(missing)}{hint}")


def numeric_columns(
    table: pd.DataFrame,
    columns: Iterable[str],
    *,
    name: str,
    report_missing: Iterable[str] | None = None,
    note: str = "",
) -> tuple[pd.DataFrame, str | None]:
    """The table with ``columns`` as floats; non-finite values reported.

    Parameters
    ----------
    table : DataFrame
        As read by :func:`read_table` (its index gives the row numbers).
    columns : iterable of str
        Columns that must hold numbers. Text is accepted when it reads as a
        number (spaces around it, a decimal comma).
    name : str
        The table's file name, for messages.
    report_missing : iterable of str, optional
        Columns whose empty, NaN or infinite values are reported (default:
        all of ``columns``); in the others an empty value is allowed.
    note : str
        Appended to the warning, e.g. ``"; they get no anomaly score"``.

    Returns
    -------
    table : DataFrame
        A copy, ``columns`` as float64, infinite values made NaN (left out
        by the commands, as missing values are).
    warning : str or None
        ``"<name>: N row(s) with missing or infinite values in a, b were left
        out (rows 3, 7)"``, or None when every reported value is finite.

    Raises
    ------
    TableError
        A missing column, or ``"<name>: row 7, column area: 'big' is not a
        number"`` for the first value (in reading order) that is not a number.
    """
    columns = list(dict.fromkeys(columns))
    require_columns(table, columns, name=name)
    reported = columns if report_missing is None else [c for c in columns if c in set(report_missing)]
    result = table.copy()
    first_bad: tuple[int, int, str, object] | None = None
    for order, column in enumerate(columns):
        values, bad = _to_float(table[column])
        if bad.any():
            position = int(np.flatnonzero(bad.to_numpy())[0])
            candidate = (position, order, column, table[column].iloc[position])
            if first_bad is None or candidate[:2] < first_bad[:2]:
                first_bad = candidate
        result[column] = values.where(np.isfinite(values))
    if first_bad is not None:
        position, _, column, value = first_bad
        raise TableError(name, f"row {_row_number(table, position)}, column {column}: "
                               f"{_shown(value)} is not a number")
    if not reported or result.empty:
        return result, None
    missing = result[reported].isna()
    rows = missing.any(axis=1)
    if not rows.any():
        return result, None
    numbers = [_row_number(table, p) for p in np.flatnonzero(rows.to_numpy())]
    shown = ", ".join(str(n) for n in numbers[:_ROWS_SHOWN])
    if len(numbers) > _ROWS_SHOWN:
        shown += f" and {len(numbers) - _ROWS_SHOWN} more"
    where = ", ".join(c for c in reported if missing[c].any())
    warning = (f"{display_name(name)}: {len(numbers)} row(s) with missing or infinite values in {where} "
               f"were left out (row{'s' if len(numbers) > 1 else ''} {shown}){note}")
    return result, warning


def _to_float(column: pd.Series) -> tuple[pd.Series, pd.Series]:
    """The column as float64 and the mask of values that are no number (empty ones are NaN, not bad)."""
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return column.astype("float64"), pd.Series(False, index=column.index)
    text = column.astype(object).map(lambda v: v if isinstance(v, str) else ("" if pd.isna(v) else str(v)))
    text = text.str.strip()
    values = pd.to_numeric(text.str.replace(",", ".", regex=False).where(text != ""), errors="coerce")
    return values.astype("float64"), (text != "") & values.isna() & ~text.str.lower().isin(_NAN_WORDS)


#: Words pandas reads as missing; written out they are missing values, not bad text.
_NAN_WORDS = {"nan", "na", "n/a", "null", "none", "-nan", "#n/a", "<na>"}


def _row_number(table: pd.DataFrame, position: int) -> int:
    """Spreadsheet row number of the row at ``position`` (header = row 1)."""
    label = table.index[position]
    return int(label) + 2 if isinstance(label, (int, np.integer)) else position + 2


def _shown(value: object) -> str:
    """A cell's value in a message: quoted, escaped, at most 40 characters."""
    text = repr(str(value))
    return display_name(text if len(text) <= 40 else text[:37] + "...")
