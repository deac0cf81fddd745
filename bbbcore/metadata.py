"""Which condition, dose and replicate each image belongs to.

The primary source is a **sample sheet**: a CSV with one row per image file
and the columns of :data:`SAMPLE_FIELDS` (only ``file`` is required;
``image``, ``filename`` or ``file_name`` are accepted for it). Without a sheet, fields are parsed from the file name by a regular
expression with named groups (``condition``, ``dose``, ``dose_unit``,
``replicate``, ``well``); the default, :data:`DEFAULT_NAME_PATTERN`, reads
names like the original study's::

    tat3b_80ng_frame02.tif   -> condition tat3b, dose 80, dose_unit ng
    control_frame01.tif      -> condition control (no dose)
    Tat-2.5uM_rep3_04.png    -> condition Tat, dose 2.5, dose_unit µM, replicate 3

A name the pattern does not match keeps empty fields; no image is dropped.
Explicit values (the user, the CLI's ``--condition``) override both.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import BBBError

#: The per-image sample fields, one schema everywhere: the sample sheet's
#: columns (in order), the store's image columns, the tables' columns (where
#: ``file`` is the ``image`` column) and the dashboard's editable table. The
#: last four say how to analyse the image; they may stay empty.
SAMPLE_FIELDS: dict[str, str] = {
    "file": "the image file's name",
    "condition": "treatment or group, e.g. control, tat",
    "dose": "dose as a number (its unit in dose_unit)",
    "dose_unit": "unit of the dose: ng, µM, …",
    "replicate": "biological replicate (the unit of statistics when given)",
    "well": "well or dish",
    "pixel_size_um": "µm per pixel (empty or 0: from the file, else unknown: no µm columns)",
    "channel": "junction channel: an index, a colour (green) or a name (ZO-1); empty: automatic",
    "nuclear_channel": "nuclear channel, as for channel; empty: automatic",
    "diameter_px": "typical cell diameter in pixels (empty or 0: estimated)",
}
#: Sample fields holding numbers (floats; the others are text).
NUMERIC_SAMPLE_FIELDS = ("dose", "pixel_size_um", "diameter_px")
#: Fields describing the sample; editing them never changes a segmentation.
DESCRIPTIVE_FIELDS = ("condition", "dose", "dose_unit", "replicate", "well")
#: Columns of a sample sheet, in order (the same names).
SHEET_COLUMNS = tuple(SAMPLE_FIELDS)
#: Sample fields a cells table carries besides ``image`` (its own
#: ``pixel_size_um`` column is the one its µm columns were measured with).
TABLE_SAMPLE_FIELDS = tuple(f for f in SAMPLE_FIELDS if f not in ("file", "pixel_size_um"))

#: Other spellings accepted for a sheet's columns (lower case).
_ALIASES = {
    "image": "file", "filename": "file", "file_name": "file", "file name": "file", "name": "file",
    "treatment": "condition", "group": "condition",
    "concentration": "dose", "unit": "dose_unit", "dose unit": "dose_unit",
    "rep": "replicate", "biological_replicate": "replicate",
    "pixel_size": "pixel_size_um", "pixel size": "pixel_size_um", "pixel size (µm/px)": "pixel_size_um",
    "diameter": "diameter_px", "cell_diameter_px": "diameter_px",
}

#: Units recognised in file names, spelled as written in tables.
_UNITS = {
    "pg": "pg", "ng": "ng", "ug": "µg", "µg": "µg", "mg": "mg",
    "pm": "pM", "nm": "nM", "um": "µM", "µm": "µM", "mm": "mM",
    "ngml": "ng/ml", "ugml": "µg/ml", "µgml": "µg/ml", "pct": "%", "%": "%",
}

#: The default file-name pattern: the first token is the condition, an
#: optional next token ``<number><unit>`` the dose, and ``rep<N>`` anywhere
#: later the replicate. Tokens are separated by ``_``, ``-``, space or ``.``.
DEFAULT_NAME_PATTERN = (
    r"^(?P<condition>[A-Za-z][A-Za-z0-9]*)"
    r"(?:[_\-\s.]+(?P<dose>\d+(?:[.,]\d+)?)\s*(?P<dose_unit>ngml|ugml|µgml|pg|ng|ug|µg|mg|pm|nm|um|µm|mm|pct|%)"
    r"(?![A-Za-z]))?"
    r"(?:.*?[_\-\s.](?:rep|replicate|r)(?P<replicate>\d+)(?![0-9]))?"
)


class SampleSheetError(BBBError):
    """A sample sheet that cannot be read."""


def parse_file_name(name: str, pattern: str = DEFAULT_NAME_PATTERN) -> dict:
    """Sample fields from one file name.

    Parameters
    ----------
    name : str
        A file name or path; the folder and the extension are ignored.
    pattern : str
        A regular expression (searched case-insensitively in the file's stem)
        whose named groups are sample fields.

    Returns
    -------
    dict with every field of :data:`SHEET_COLUMNS` but ``file``; fields the
    pattern does not give are None, ``dose`` is a float.
    """
    stem = output_stem(name)
    fields = {key: None for key in SHEET_COLUMNS[1:]}
    try:
        match = re.search(pattern, stem, flags=re.IGNORECASE)
    except re.error as exc:
        raise SampleSheetError(f"file-name pattern {pattern!r}: not a valid regular expression ({exc})") from None
    if match is None:
        return fields
    for key, value in match.groupdict().items():
        if key in fields and value not in (None, ""):
            fields[key] = value
    if fields["dose"] is not None:
        fields["dose"] = float(str(fields["dose"]).replace(",", "."))
    if fields["dose_unit"] is not None:
        fields["dose_unit"] = _UNITS.get(fields["dose_unit"].lower(), fields["dose_unit"])
    return fields


def empty_sheet(files: Iterable[str] = ()) -> pd.DataFrame:
    """A sample sheet with the given files and empty fields."""
    files = list(files)
    sheet = pd.DataFrame({"file": pd.Series(files, dtype=object)})
    for column in SHEET_COLUMNS[1:]:
        sheet[column] = np.nan if column in NUMERIC_SAMPLE_FIELDS else None
    return tidy_sheet(sheet)


def tidy_sheet(sheet: pd.DataFrame) -> pd.DataFrame:
    """A sheet with every field of :data:`SAMPLE_FIELDS`, in order, numbers as floats, text or None."""
    sheet = sheet.copy()
    for column in SHEET_COLUMNS:
        if column not in sheet.columns:
            sheet[column] = None
        if column in NUMERIC_SAMPLE_FIELDS:
            sheet[column] = pd.to_numeric(sheet[column], errors="coerce").astype(float)
        elif column != "file":
            sheet[column] = sheet[column].astype(object).map(
                lambda v: None if v is None or (not isinstance(v, str) and pd.isna(v)) or v == "" else str(v))
    return sheet[list(SHEET_COLUMNS)].reset_index(drop=True)


def sheet_for_editing(sheet: pd.DataFrame) -> pd.DataFrame:
    """The sheet with one fixed type per column: text columns pandas strings, numbers floats.

    An editable table is recreated (and an edit being typed lost) when a column's type changes,
    as an all-empty text column becomes text once a value is typed: here no column's type
    depends on its values.
    """
    sheet = tidy_sheet(sheet)
    for column in SHEET_COLUMNS:
        if column not in NUMERIC_SAMPLE_FIELDS:
            sheet[column] = sheet[column].astype(pd.StringDtype())
    return sheet


def read_sample_sheet(source: str | Path | bytes, *, name: str | None = None) -> pd.DataFrame:
    """Read a sample sheet CSV (comma, semicolon or tab separated; UTF-8, UTF-16, BOM allowed).

    The file is read by :func:`bbbcore.tables.read_table`, as every table is.

    Raises
    ------
    SampleSheetError
        One line naming the file and the problem: unreadable, no ``file``
        column, a dose that is not a number, a file listed twice.
    """
    from .errors import display_name
    from .tables import TableError, read_table

    label = name or (Path(source).name if isinstance(source, (str, Path)) else "sample sheet")
    try:
        sheet = read_table(source, name=label, text_only=True)
    except TableError as exc:
        raise SampleSheetError(str(exc)) from None
    label = display_name(label)
    sheet.columns = [_ALIASES.get(str(c).strip().lower(), str(c).strip().lower()) for c in sheet.columns]
    if "file" not in sheet.columns:
        raise SampleSheetError(
            f"{label}: missing column 'file' (the image file name); columns found: {', '.join(sheet.columns)}"
        )
    sheet = sheet[[c for c in sheet.columns if c in SHEET_COLUMNS]].copy()
    for column in SHEET_COLUMNS:
        if column not in sheet.columns:
            sheet[column] = ""
    sheet = sheet.apply(lambda column: column.str.strip())
    sheet = sheet[sheet["file"] != ""]
    for column in NUMERIC_SAMPLE_FIELDS:
        text = sheet[column].str.replace(",", ".", regex=False)
        numeric = pd.to_numeric(text.where(text != ""), errors="coerce")
        bad = (text != "") & numeric.isna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            hint = " (put the unit in dose_unit)" if column == "dose" else ""
            raise SampleSheetError(f"{label}: row {int(sheet.index[row]) + 2}: {column} "
                                   f"{display_name(repr(sheet[column].iloc[row]))} is not a number{hint}")
        numeric = numeric.astype(float)
        if column == "dose":
            wrong, must = ~(np.isfinite(numeric) & (numeric >= 0)), "zero or more"
        else:  # 0 leaves it unset, as the app's fields do
            numeric = numeric.mask(numeric == 0)
            wrong, must = ~(np.isfinite(numeric) & (numeric > 0)), (
                "a positive number of µm per pixel (leave it empty to use the file's)" if column == "pixel_size_um"
                else "a positive number of pixels (leave it empty to estimate it)")
        wrong &= numeric.notna()
        if wrong.any():
            row = int(np.flatnonzero(wrong.to_numpy())[0])
            raise SampleSheetError(f"{label}: row {int(sheet.index[row]) + 2}: {column} "
                                   f"{display_name(repr(sheet[column].iloc[row]))} must be {must}")
        sheet[column] = numeric
    duplicated = sheet["file"].str.lower().duplicated()
    if duplicated.any():
        raise SampleSheetError(f"{label}: file {display_name(repr(sheet['file'][duplicated].iloc[0]))} is listed twice")
    return tidy_sheet(sheet)


def write_sample_sheet(sheet: pd.DataFrame, path: str | Path) -> Path:
    """Write a sample sheet CSV (the columns of :data:`SHEET_COLUMNS`, safe for spreadsheets)."""
    from .export import write_csv

    columns = [c for c in SHEET_COLUMNS if c in sheet.columns]
    return write_csv(sheet[columns], path)


def sample_sheet_for(
    files: Iterable[str],
    *,
    sheet: pd.DataFrame | None = None,
    pattern: str | None = DEFAULT_NAME_PATTERN,
    overrides: Mapping[str, object] | None = None,
) -> pd.DataFrame:
    """The sample fields of each file: from the sheet, else the file name.

    Parameters
    ----------
    files : iterable of str
        File names (paths are reduced to their names).
    sheet : DataFrame, optional
        A sample sheet (:func:`read_sample_sheet`). A file matches a row by
        its name, case-insensitively, with or without the extension.
    pattern : str or None
        File-name pattern for files not in the sheet; None: no parsing.
    overrides : mapping, optional
        Fields set for every file (for example ``{"condition": "control"}``).

    Returns
    -------
    DataFrame with :data:`SHEET_COLUMNS` plus ``source`` ("sheet", "file name"
    or "" when nothing was found), one row per file, in order.
    """
    index: dict[str, pd.Series] = {}
    if sheet is not None:
        for _, row in sheet.iterrows():
            key = str(row["file"]).strip().lower()
            index[key] = row
            index.setdefault(key.rsplit(".", 1)[0], row)
    rows = []
    for file in files:
        name = Path(str(file)).name
        found = next((index[key] for key in _sheet_keys(name) if key in index), None)
        if found is not None:
            fields = {c: found.get(c) for c in SHEET_COLUMNS[1:]}
            source = "sheet"
        else:
            fields = parse_file_name(name, pattern) if pattern else {c: None for c in SHEET_COLUMNS[1:]}
            source = "file name" if any(v is not None for v in fields.values()) else ""
        for key_, value in (overrides or {}).items():
            if value is not None and key_ in fields:
                fields[key_] = value
        rows.append({"file": name, **fields, "source": source})
    result = tidy_sheet(pd.DataFrame(rows, columns=[*SHEET_COLUMNS, "source"]))
    result["source"] = [row["source"] for row in rows]
    return result


def _sheet_keys(name: str) -> list[str]:
    """The sheet file names that match image ``name``, best first: itself, its stem, and for one scene of a
    file with several (``a.czi#2``) the file's name and stem (its row holds for every scene)."""
    from .formats import split_scene

    keys = []
    for candidate in dict.fromkeys((name, split_scene(name)[0])):
        key = candidate.lower()
        keys += [key, key.rsplit(".", 1)[0]]
    return list(dict.fromkeys(keys))


def unmatched_sheet_files(sheet: pd.DataFrame, files: Iterable[str]) -> list[str]:
    """The sheet's file names that match none of ``files`` (as :func:`sample_sheet_for` matches them)."""
    keys = set()
    for file in files:
        keys.update(_sheet_keys(Path(str(file)).name))
    return [str(f) for f in sheet["file"]
            if str(f).strip().lower() not in keys and str(f).strip().lower().rsplit(".", 1)[0] not in keys]


def unmatched_warning(sheet_name: str, sheet: pd.DataFrame, files: Iterable[str]) -> str | None:
    """One line naming the sheet's rows that match no file (the CLI and the dashboard print it), or None."""
    from .errors import display_name

    unmatched = unmatched_sheet_files(sheet, files)
    if not unmatched:
        return None
    shown = ", ".join(display_name(n) for n in unmatched[:10]) + (" …" if len(unmatched) > 10 else "")
    return f"{display_name(sheet_name)}: {len(unmatched)} row(s) name no file of this run: {shown} (check the names)"


def sample_of(sheet: pd.DataFrame, file: str) -> dict:
    """The sample fields of one file from :func:`sample_sheet_for`'s result."""
    rows = sheet[sheet["file"] == Path(str(file)).name]
    if rows.empty:
        return {}
    row = rows.iloc[0]
    return {c: (None if pd.isna(row[c]) else row[c]) for c in SHEET_COLUMNS[1:] if c in row.index}


def apply_sample_sheet(cells: pd.DataFrame, sheet: pd.DataFrame) -> pd.DataFrame:
    """The cells table with each image's sample fields taken from ``sheet`` (by file name).

    Every field of :data:`TABLE_SAMPLE_FIELDS` is written (empty for files the
    sheet does not list); ``pixel_size_um`` stays the one the cells were
    measured with.
    """
    table = cells.copy()
    if "image" not in table or table.empty:
        return table
    indexed = tidy_sheet(sheet).drop_duplicates("file").set_index("file")
    names = table["image"].map(lambda name: Path(str(name)).name)
    for column in TABLE_SAMPLE_FIELDS:
        values = names.map(indexed[column]) if len(indexed) else pd.Series(None, index=table.index, dtype=object)
        table[column] = pd.to_numeric(values, errors="coerce").astype(float) \
            if column in NUMERIC_SAMPLE_FIELDS else values.astype(object).where(values.notna(), np.nan)
    return table


def output_stem(name: str, *, image_id: str = "", used: set[str] | None = None) -> str:
    """The stem that names an image's output files (``<stem>.labels.tif``, ...).

    The file name without its folder and extension (``.ome.tif``,
    ``.ome.zarr`` and ``.labels.tif`` lose both parts); one scene of a file
    with several keeps its number (``a.czi#2`` -> ``a_scene2``). With ``used``, a stem taken already (two
    files of one name from different folders) gets ``-<first 8 characters of
    image_id>`` (or a counter) and is added to ``used``.
    """
    from .formats import split_scene

    file, scene = split_scene(Path(str(name)).name)
    stem = file.rsplit(".", 1)[0] if "." in file else file
    if stem.endswith((".ome", ".labels")):
        stem = stem.rsplit(".", 1)[0]
    stem = stem if scene is None else f"{stem}_scene{scene}"
    if used is None:
        return stem
    final, counter = stem, 2
    if final in used:
        final = f"{stem}-{image_id[:8]}" if image_id else f"{stem}-{counter}"
    while final in used:
        counter += 1
        final = f"{stem}-{counter}"
    used.add(final)
    return final
