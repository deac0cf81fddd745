"""Conditions from sample sheets and file names."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bbbcore.metadata import (
    SAMPLE_FIELDS,
    SampleSheetError,
    empty_sheet,
    parse_file_name,
    read_sample_sheet,
    sample_of,
    sample_sheet_for,
    write_sample_sheet,
)


@pytest.mark.parametrize("name, condition, dose, unit, replicate", [
    ("tat3b_80ng_frame02.tif", "tat3b", 80.0, "ng", None),
    ("control_frame01.tif", "control", None, None, None),
    ("Tat-2.5uM_rep3_04.png", "Tat", 2.5, "µM", "3"),
    ("/data/run 1/tat 40ng r2.jpg", "tat", 40.0, "ng", "2"),
    ("vehicle.ome.tif", "vehicle", None, None, None),
])
def test_file_names_like_the_study(name, condition, dose, unit, replicate):
    fields = parse_file_name(name)
    assert fields["condition"] == condition
    assert fields["dose"] == dose
    assert fields["dose_unit"] == unit
    assert fields["replicate"] == replicate


def test_an_unparseable_name_gives_empty_fields():
    fields = parse_file_name("0001.tif")
    assert all(value is None for value in fields.values())


def test_the_pattern_is_configurable():
    pattern = r"^(?P<well>[A-H]\d{2})_(?P<condition>[a-z]+)_(?P<dose>\d+)"
    fields = parse_file_name("B04_tat_80_field3.tif", pattern)
    assert (fields["well"], fields["condition"], fields["dose"]) == ("B04", "tat", 80.0)


def test_a_broken_pattern_is_a_clear_error():
    with pytest.raises(SampleSheetError, match="not a valid regular expression"):
        parse_file_name("a.tif", "(?P<condition>")


def test_sheet_read_with_excel_habits(tmp_path):
    # Excel writes a BOM, European Excel a semicolon, and people name columns their way.
    path = tmp_path / "plate 1.csv"
    path.write_bytes("\ufeffFile name;Treatment;Dose;Unit;Replicate\n"
                     "a.tif;control;0;ng;1\nb.tif;tat;80;ng;1\nc.tif;tat; ;;2\n".encode("utf-8"))
    sheet = read_sample_sheet(path)
    assert list(sheet.columns) == list(SAMPLE_FIELDS)  # every field of the one schema, in order
    assert sheet["file"].tolist() == ["a.tif", "b.tif", "c.tif"]
    assert sheet["dose"].tolist()[:2] == [0.0, 80.0] and np.isnan(sheet["dose"].iloc[2])
    assert sheet["replicate"].tolist() == ["1", "1", "2"]


@pytest.mark.parametrize("content, message", [
    (b"", "plate.csv: the file is empty"),
    (b"condition,dose\ncontrol,0\n", "plate.csv: missing column 'file'"),
    (b"file,dose\na.tif,eighty\n", "plate.csv: row 2: dose 'eighty' is not a number"),
    (b"file,dose\na.tif,1\nA.TIF,2\n", "plate.csv: file 'A.TIF' is listed twice"),
    (b"file,dose\na.tif,-3\n", "plate.csv: row 2: dose '-3' must be zero or more"),
    (b"file,pixel_size_um\na.tif,0.6\nb.tif,-1\n",
     "plate.csv: row 3: pixel_size_um '-1' must be a positive number of µm per pixel (leave it empty to use "
     "the file's)"),
    (b"file,diameter_px\na.tif,inf\n",
     "plate.csv: row 2: diameter_px 'inf' must be a positive number of pixels (leave it empty to estimate it)"),
    (b"file,pixel_size_um\na.tif,nan\n", "plate.csv: row 2: pixel_size_um 'nan' is not a number"),
])
def test_bad_sheets_say_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "plate.csv"
    path.write_bytes(content)
    with pytest.raises(SampleSheetError) as info:
        read_sample_sheet(path)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_sheet_round_trip(tmp_path):
    sheet = sample_sheet_for(["tat_80ng_1.tif", "control_1.tif"])
    sheet.loc[1, "well"] = "=cmd|' /C calc'!A0"  # a formula must not survive into a spreadsheet
    path = write_sample_sheet(sheet, tmp_path / "s.csv")
    back = read_sample_sheet(path)
    assert back["condition"].tolist() == ["tat", "control"]
    assert back["dose"].iloc[0] == 80.0
    assert back["well"].iloc[1].startswith("'=")


def test_sheet_first_then_names_and_nothing_dropped():
    sheet = empty_sheet(["tat_80ng_01.tif"])
    sheet.loc[0, ["condition", "dose", "dose_unit"]] = ["Tat (batch 3)", 40.0, "ng"]
    result = sample_sheet_for(["TAT_80NG_01.TIF", "control_02.tif", "0003.tif"], sheet=sheet)
    assert result["file"].tolist() == ["TAT_80NG_01.TIF", "control_02.tif", "0003.tif"]
    assert result["source"].tolist() == ["sheet", "file name", ""]
    assert result.loc[0, "condition"] == "Tat (batch 3)" and result.loc[0, "dose"] == 40.0
    assert result.loc[1, "condition"] == "control" and np.isnan(result.loc[1, "dose"])
    assert pd.isna(result.loc[2, "condition"])


def test_overrides_win_and_sample_of_reads_one_file():
    result = sample_sheet_for(["tat_80ng_01.tif"], overrides={"condition": "control", "dose": 0.0})
    assert sample_of(result, "tat_80ng_01.tif") == {
        "condition": "control", "dose": 0.0, "dose_unit": "ng", "replicate": None, "well": None,
        "pixel_size_um": None, "channel": None, "nuclear_channel": None, "diameter_px": None,
    }
    assert sample_of(result, "other.tif") == {}


def test_one_schema_reads_every_field_and_checks_every_number(tmp_path):
    path = tmp_path / "sheet.csv"
    path.write_text("file,condition,pixel size,channel,nuclear_channel,diameter\n"
                    "a.tif,control,0,65,ZO-1,DAPI,31\n".replace(",0,65", ",0.65"), encoding="utf-8")
    sheet = read_sample_sheet(path)
    assert sample_of(sheet, "a.tif") == {
        "condition": "control", "dose": None, "dose_unit": None, "replicate": None, "well": None,
        "pixel_size_um": 0.65, "channel": "ZO-1", "nuclear_channel": "DAPI", "diameter_px": 31.0,
    }
    path.write_text("file,diameter_px\na.tif,31\nb.tif,big\n", encoding="utf-8")
    with pytest.raises(SampleSheetError, match="row 3: diameter_px 'big' is not a number"):
        read_sample_sheet(path)


def test_apply_sample_sheet_fills_every_table_field_but_keeps_the_measured_pixel_size():
    from bbbcore.metadata import TABLE_SAMPLE_FIELDS, apply_sample_sheet

    cells = pd.DataFrame({"image": ["a.tif", "a.tif", "b.tif"], "cell_id": [1, 2, 1],
                          "pixel_size_um": [0.5, 0.5, np.nan], "condition": ["old", "old", "old"]})
    sheet = sample_sheet_for(["a.tif"], overrides={"condition": "tat", "dose": 80.0, "pixel_size_um": 9.0})
    table = apply_sample_sheet(cells, sheet)
    assert table["condition"].tolist()[:2] == ["tat", "tat"] and pd.isna(table["condition"].iloc[2])
    assert table["dose"].tolist()[:2] == [80.0, 80.0] and table["dose"].dtype == float
    assert table["pixel_size_um"].tolist()[:2] == [0.5, 0.5]  # as measured, not the sheet's
    assert set(TABLE_SAMPLE_FIELDS) <= set(table.columns)
    assert cells["condition"].tolist() == ["old"] * 3  # the input is not changed


def test_output_stem_names_files_once():
    from bbbcore.metadata import output_stem

    assert output_stem("dir/a.ome.tif") == "a" and output_stem("b.labels.tif") == "b"
    used: set[str] = set()
    assert output_stem("x/a.png", image_id="1234567890", used=used) == "a"
    assert output_stem("y/a.png", image_id="abcdefgh99", used=used) == "a-abcdefgh"
    assert output_stem("z/a.png", used=used) == "a-2"
    assert used == {"a", "a-abcdefgh", "a-2"}


def test_a_zero_pixel_size_or_diameter_in_a_sheet_leaves_it_unset_as_in_the_app(tmp_path):
    path = tmp_path / "sheet.csv"
    path.write_text("file,dose,pixel_size_um,diameter_px\na.tif,0,0,0\n", encoding="utf-8")
    fields = sample_of(read_sample_sheet(path), "a.tif")
    assert fields["dose"] == 0.0 and fields["pixel_size_um"] is None and fields["diameter_px"] is None
