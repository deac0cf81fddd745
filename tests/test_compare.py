"""bbbcore.compare: groups, per-image means and the descriptive comparison with a control.

The tables below are built so that every answer is known: each image's cells are
symmetric around the image's mean, and edge cells carry a value far from it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bbbcore.compare import NO_CONDITION, compare_table, group_labels, image_means

#: (condition, dose, image, values of inner cells); every image's mean is the middle value.
IMAGES = [
    ("tat", 80.0, "tat_a", [19.0, 20.0, 21.0]),  # mean 20
    ("control", np.nan, "control_a", [9.0, 11.0]),  # mean 10
    ("tat", 80.0, "tat_b", [28.0, 30.0, 32.0, 30.0]),  # mean 30
    ("control", np.nan, "control_b", [13.0, 15.0]),  # mean 14
    ("tat", 40.0, "tat_c", [15.0, 17.0]),  # mean 16, the only 40 ng image
]


def cells_table(edge_value: float = 1000.0) -> pd.DataFrame:
    rows = []
    for condition, dose, image, values in IMAGES:
        for index, value in enumerate([*values, edge_value]):
            rows.append({"image": f"{image}.tif", "image_id": image, "cell_id": index + 1, "area": value,
                         "touches_edge": index == len(values), "condition": condition, "dose": dose,
                         "dose_unit": "ng" if condition == "tat" else None})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("columns, by_dose, expected", [
    ({"condition": ["tat", None, "control"]}, False, ["tat", NO_CONDITION, "control"]),
    ({"condition": ["tat", "tat"], "dose": [80.0, 0.5], "dose_unit": ["ng", "µM"]}, True, ["tat 80 ng", "tat 0.5 µM"]),
    ({"condition": ["tat", "tat"], "dose": [80.0, 0.5], "dose_unit": ["ng", "µM"]}, False, ["tat", "tat"]),
    # No dose: the condition alone; a dose without its unit: the number alone.
    ({"condition": ["control", "tat"], "dose": [np.nan, 80.0], "dose_unit": ["ng", None]}, True, ["control", "tat 80"]),
    # Doses typed as text in a sample sheet are read as numbers; text that is no number is dropped.
    ({"condition": ["tat", "tat"], "dose": ["80", "high"], "dose_unit": ["ng", "ng"]}, True, ["tat 80 ng", "tat"]),
    ({"area": [1.0, 2.0]}, True, [NO_CONDITION, NO_CONDITION]),
    ({"condition": [None], "dose": [40.0], "dose_unit": ["ng"]}, True, [f"{NO_CONDITION} 40 ng"]),
])
def test_group_labels(columns, by_dose, expected):
    assert group_labels(pd.DataFrame(columns), by_dose=by_dose).tolist() == expected


def test_group_labels_by_dose_without_a_unit_column():
    cells = pd.DataFrame({"condition": ["tat", "control"], "dose": [80.0, np.nan]})
    assert group_labels(cells, by_dose=True).tolist() == ["tat 80", "control"]


def test_image_means_are_per_image_without_edge_cells():
    means = image_means(cells_table(), "area")
    assert means.columns.tolist() == ["group", "image", "image_id", "n_cells", "mean", "median"]
    assert means["image_id"].tolist() == [image for _, _, image, _ in IMAGES]  # order of appearance
    assert means["group"].tolist() == ["tat", "control", "tat", "control", "tat"]
    assert means["n_cells"].tolist() == [3, 2, 4, 2, 2]
    assert means["mean"].tolist() == [20.0, 10.0, 30.0, 14.0, 16.0]
    assert means["median"].tolist() == [20.0, 10.0, 30.0, 14.0, 16.0]


def test_image_means_with_edge_cells_and_by_dose():
    means = image_means(cells_table(edge_value=100.0), "area", exclude_edge=False).set_index("image_id")
    assert means.loc["control_a", "n_cells"] == 3
    assert means.loc["control_a", "mean"] == pytest.approx((9 + 11 + 100) / 3)
    assert means.loc["control_a", "median"] == 11.0
    by_dose = image_means(cells_table(), "area", by_dose=True)
    assert by_dose["group"].tolist() == ["tat 80 ng", "control", "tat 80 ng", "control", "tat 40 ng"]


def test_image_means_skip_missing_values():
    cells = cells_table()
    cells.loc[(cells["image_id"] == "tat_b") & (cells["cell_id"] == 1), "area"] = np.nan  # the 28
    row = image_means(cells, "area").set_index("image_id").loc["tat_b"]
    assert row["mean"] == pytest.approx((30 + 32 + 30) / 3)
    assert row["median"] == 30.0


def test_compare_table_gives_the_difference_to_control():
    table = compare_table(cells_table(), "area", control="control")
    # Control first, then the other groups in order of appearance.
    assert table["group"].tolist() == ["control", "tat"]
    control, tat = table.iloc[0], table.iloc[1]
    # control: image means 10 and 14; tat: 20, 30 and 16 (edge cells left out).
    assert (control["n_images"], control["n_cells"]) == (2, 4)
    assert (tat["n_images"], tat["n_cells"]) == (3, 9)
    assert control["mean"] == 12.0 and control["median"] == 12.0
    assert tat["mean"] == pytest.approx(22.0) and tat["median"] == 20.0
    assert control["sd_between_images"] == pytest.approx(np.sqrt(8))  # (10, 14): sd 2 sqrt 2
    assert tat["sd_between_images"] == pytest.approx(np.std([20, 30, 16], ddof=1))
    assert control["difference"] == 0.0 and tat["difference"] == pytest.approx(10.0)
    assert control["percent_of_control"] == 100.0 and tat["percent_of_control"] == pytest.approx(22 / 12 * 100)


def test_compare_table_by_dose():
    table = compare_table(cells_table(), "area", control="control", by_dose=True).set_index("group")
    assert table.index.tolist() == ["control", "tat 80 ng", "tat 40 ng"]
    assert table.loc["tat 80 ng", "mean"] == 25.0 and table.loc["tat 80 ng", "difference"] == 13.0
    # One image: its mean, no spread between images.
    assert table.loc["tat 40 ng", "n_images"] == 1 and table.loc["tat 40 ng", "difference"] == 4.0
    assert np.isnan(table.loc["tat 40 ng", "sd_between_images"])


@pytest.mark.parametrize("control", [None, "vehicle"])
def test_compare_table_without_a_control_has_no_differences(control):
    table = compare_table(cells_table(), "area", control=control)
    assert table["group"].tolist() == ["tat", "control"]  # order of appearance
    assert table["difference"].isna().all()
    assert "percent_of_control" not in table
    assert table.set_index("group").loc["tat", "mean"] == pytest.approx(22.0)


def test_compare_table_of_no_cells_is_empty():
    table = compare_table(cells_table().iloc[:0], "area", control="control")
    assert len(table) == 0
    assert table.columns.tolist() == ["group", "n_images", "n_cells", "mean", "mean_ci_low", "mean_ci_high",
                                      "median", "sd_between_images", "difference"]
