"""Per-cell features against shapes with known answers and against scikit-image."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from skimage import draw, measure

from bbbcore.features import COLUMNS, SUMMARY_COLUMNS, cells_table, image_record, summary_table
from tests.conftest import ROOT


def one_cell(mask: np.ndarray) -> pd.Series:
    """The row of the single cell drawn in ``mask`` (placed away from the edge)."""
    table = cells_table(mask.astype(np.int32))
    assert len(table) == 1
    return table.iloc[0]


def test_rectangle_has_its_textbook_features():
    labels = np.zeros((100, 100), np.int32)
    labels[30:50, 20:60] = 1  # 20 rows x 40 columns
    row = one_cell(labels)
    assert row["area"] == 800
    assert row["aspect_ratio"] == pytest.approx(2.0)  # width / height, the original definition
    assert row["extent"] == pytest.approx(1.0)
    assert row["equivalent_diameter"] == pytest.approx(np.sqrt(4 * 800 / np.pi))
    assert row["solidity"] == pytest.approx(1.0)
    assert row["feret_diameter_max"] == pytest.approx(np.hypot(40, 20))
    assert row["feret_diameter_min"] == pytest.approx(20.0)
    assert row["elongation"] == pytest.approx(2.0, rel=0.01)
    assert row["eccentricity"] == pytest.approx(np.sqrt(1 - 0.25), rel=0.01)
    assert row["orientation_deg"] % 180 == pytest.approx(0.0, abs=1e-6)  # major axis along x
    assert (row["centroid_x"], row["centroid_y"]) == pytest.approx((39.5, 39.5))
    assert not row["touches_edge"]


def test_disc_is_round():
    labels = np.zeros((100, 100), np.int32)
    rows, cols = draw.disk((50, 50), 30)
    labels[rows, cols] = 1
    row = one_cell(labels)
    assert row["aspect_ratio"] == pytest.approx(1.0)
    assert row["extent"] == pytest.approx(np.pi / 4, abs=0.03)
    assert 0.88 < row["circularity"] <= 1.0
    assert row["feret_diameter_min"] == pytest.approx(row["feret_diameter_max"], rel=0.04)
    assert row["feret_diameter_max"] == pytest.approx(61, abs=1.5)
    assert row["elongation"] == pytest.approx(1.0, abs=0.01)


def test_l_shape_is_not_convex():
    labels = np.zeros((60, 60), np.int32)
    labels[10:50, 10:20] = 1  # vertical bar 40 x 10
    labels[40:50, 20:50] = 1  # foot 10 x 30
    row = one_cell(labels)
    assert row["area"] == 700
    # Hull of the pixel corners: the 40 x 40 square minus the 30 x 30 / 2 corner triangle.
    assert row["solidity"] == pytest.approx(700 / (1600 - 450))
    assert row["extent"] == pytest.approx(700 / 1600)
    assert row["circularity"] < 0.5


def test_rotated_ellipse_orientation_is_imagej_angle():
    labels = np.zeros((200, 200), np.int32)
    rows, cols = draw.ellipse(100, 100, 20, 70, rotation=np.deg2rad(30))
    labels[rows, cols] = 1
    row = one_cell(labels)
    # draw.ellipse's rotation turns the major axis counter-clockwise as displayed
    # (to the upper right: rows decrease as columns increase), as ImageJ measures angles.
    assert np.polyfit(cols, rows, 1)[0] < 0
    assert row["orientation_deg"] == pytest.approx(30, abs=1)
    assert row["elongation"] == pytest.approx(70 / 20, rel=0.05)


def test_agrees_with_skimage_regionprops(synthetic_monolayer):
    labels = synthetic_monolayer["truth"]
    table = cells_table(labels).set_index("cell_id")
    props = pd.DataFrame(measure.regionprops_table(labels, properties=(
        "label", "area", "perimeter", "equivalent_diameter_area", "axis_major_length",
        "axis_minor_length", "eccentricity", "solidity", "feret_diameter_max", "centroid",
    ))).set_index("label")
    np.testing.assert_allclose(table["area"], props["area"])
    np.testing.assert_allclose(table["perimeter"], props["perimeter"])
    np.testing.assert_allclose(table["equivalent_diameter"], props["equivalent_diameter_area"])
    np.testing.assert_allclose(table["major_axis_length"], props["axis_major_length"])
    np.testing.assert_allclose(table["minor_axis_length"], props["axis_minor_length"])
    np.testing.assert_allclose(table["eccentricity"], props["eccentricity"])
    np.testing.assert_allclose(table["centroid_y"], props["centroid-0"])
    np.testing.assert_allclose(table["centroid_x"], props["centroid-1"])
    # Hull on pixel corners (ImageJ) vs skimage's rasterised hull: within a pixel.
    np.testing.assert_allclose(table["solidity"], props["solidity"], atol=0.02)
    np.testing.assert_allclose(table["feret_diameter_max"], props["feret_diameter_max"], atol=1.5)
    assert (table["feret_diameter_min"] <= table["feret_diameter_max"]).all()


@pytest.mark.parametrize("offset, expected", [(0, 4), (5, 6)])
def test_neighbour_counts_on_a_known_tessellation(offset, expected):
    # A grid of 10 x 10 px cells; with every other row shifted by half a cell
    # (bricks), an inner cell has 6 neighbours, else 4 (corners do not count).
    labels = np.zeros((60, 80), np.int32)
    next_id = 1
    for r in range(6):
        shift = offset if r % 2 else 0
        for c in range(-1, 9):
            left, right = max(c * 10 + shift, 0), min(c * 10 + shift + 10, 80)
            if right > left:
                labels[r * 10:(r + 1) * 10, left:right] = next_id
                next_id += 1
    table = cells_table(labels)
    inner = table[~table["touches_edge"]]
    assert len(inner) > 0
    assert (inner["n_neighbours"] == expected).all()


def test_physical_units_sit_beside_pixel_columns():
    labels = np.zeros((50, 50), np.int32)
    labels[10:30, 10:20] = 1
    plain = cells_table(labels)
    assert not any(c.endswith(("_um", "_um2")) for c in plain.columns if c != "pixel_size_um")
    assert plain["pixel_size_um"].isna().all()
    scaled = cells_table(labels, pixel_size_um=0.5)
    assert scaled["area"].iloc[0] == 200  # plain names stay in pixels
    assert scaled["area_um2"].iloc[0] == pytest.approx(200 * 0.25)
    for column in ("perimeter", "equivalent_diameter", "feret_diameter_max", "feret_diameter_min",
                   "major_axis_length", "minor_axis_length", "centroid_x", "centroid_y"):
        assert scaled[f"{column}_um"].iloc[0] == pytest.approx(scaled[column].iloc[0] * 0.5)


def square_with_junction(erase: slice | None = None, dotted: bool = False, seed: int = 0):
    """Cell 1: a 100 x 100 square; cell 2 around it; a bright 2-px junction on the square's border."""
    rng = np.random.default_rng(seed)
    labels = np.full((200, 200), 2, np.int32)
    labels[50:150, 50:150] = 1
    plane = np.full((200, 200), 20.0)  # cytoplasm over a background of 10
    plane[:5, :] = plane[-5:, :] = 10.0  # some true background
    line = np.zeros((200, 200), bool)
    line[49:51, 49:151] = line[149:151, 49:151] = True  # top and bottom
    line[49:151, 49:51] = line[49:151, 149:151] = True  # left and right
    if erase is not None:
        line[49:151, 149:151][erase] = False  # part of the right side
    if dotted:
        keep = np.zeros(102, bool)
        keep[::16] = keep[1::16] = True  # 2-px dots every 16 px on the left side
        line[49:151, 49:51] &= keep[:, None]
    plane[line] = 100.0
    plane += rng.normal(0, 1.0, plane.shape)
    return labels, plane


def test_junction_continuity_of_a_closed_border_is_one():
    labels, plane = square_with_junction()
    row = cells_table(labels, junction=plane).set_index("cell_id").loc[1]
    assert row["junction_continuity"] == pytest.approx(1.0, abs=0.02)
    assert row["junction_continuous_fraction"] == pytest.approx(1.0, abs=0.02)
    assert row["junction_border_mean"] > 2 * row["junction_interior_mean"]
    assert row["junction_border_to_cytoplasm"] > 2


def test_a_quarter_of_the_border_erased_gives_continuity_three_quarters():
    labels, plane = square_with_junction(erase=slice(None))  # the whole right side: 25 % of the outline
    row = cells_table(labels, junction=plane).set_index("cell_id").loc[1]
    # Tolerance: the band reaches 3 px round each corner of the erased side.
    assert row["junction_continuity"] == pytest.approx(0.75, abs=0.03)
    assert row["junction_absent_fraction"] == pytest.approx(0.25, abs=0.03)


def test_dotted_junction_is_punctate():
    labels, plane = square_with_junction(dotted=True)
    row = cells_table(labels, junction=plane).set_index("cell_id").loc[1]
    # The left side (a quarter of the outline) is 2-px dots every 16 px: short present
    # stretches (punctate) covering 2/16 of it, between absent gaps; the other sides are
    # continuous. Tolerance: a dot's half-maximum ends move by up to 1 px each (7 dots).
    dots = 0.25 * 2 / 16
    assert row["junction_punctate_fraction"] + row["junction_perpendicular_fraction"] == pytest.approx(dots, abs=0.015)
    assert row["junction_continuous_fraction"] == pytest.approx(0.75, abs=0.02)
    assert row["junction_absent_fraction"] == pytest.approx(0.25 - dots, abs=0.02)


def test_one_threshold_for_all_images_overrides_the_cytoplasm_rule():
    labels, plane = square_with_junction()
    strict = cells_table(labels, junction=plane, junction_threshold=1000).set_index("cell_id").loc[1]
    assert strict["junction_continuity"] == 0.0


def test_no_junction_means_absent():
    labels, plane = square_with_junction()
    flat = np.full_like(plane, 20.0) + np.random.default_rng(1).normal(0, 1.0, plane.shape)
    flat[:5] = 10.0
    row = cells_table(labels, junction=flat).set_index("cell_id").loc[1]
    assert row["junction_continuity"] < 0.05
    assert row["junction_border_to_cytoplasm"] == pytest.approx(1.0, abs=0.1)


def test_nuclei_are_counted_per_cell():
    labels = np.zeros((200, 300), np.int32)
    labels[:, :150] = 1
    labels[:, 150:] = 2
    nuclei = np.zeros(labels.shape)
    for y, x in [(50, 50), (140, 90), (100, 220)]:
        rows, cols = draw.disk((y, x), 12)
        nuclei[rows, cols] = 1.0
    table = cells_table(labels, nuclei=nuclei).set_index("cell_id")
    assert table.loc[1, "nuclei_count"] == 2 and table.loc[2, "nuclei_count"] == 1


def test_a_huge_image_is_measured_one_column_group_at_a_time_with_the_same_result(monkeypatch, synthetic_monolayer):
    from bbbcore import features

    labels, junction, nuclei = (synthetic_monolayer[key] for key in ("truth", "junction", "nuclei"))
    side_by_side = cells_table(labels, junction=junction, nuclei=nuclei)
    monkeypatch.setattr(features, "ONE_AT_A_TIME_ABOVE_PX", labels.size - 1)  # "huge": no second thread
    started = []
    monkeypatch.setattr(features, "ThreadPoolExecutor", lambda *a, **k: started.append(1))
    pd.testing.assert_frame_equal(cells_table(labels, junction=junction, nuclei=nuclei), side_by_side)
    assert not started


def test_sample_fields_fill_every_row():
    labels = np.zeros((50, 50), np.int32)
    labels[5:20, 5:20] = 1
    labels[25:40, 25:40] = 2
    table = cells_table(labels, image="a.png", image_id="abc",
                        sample={"condition": "tat", "dose": "80", "dose_unit": "ng"})
    assert (table["condition"] == "tat").all() and (table["dose"] == 80.0).all()
    assert table["replicate"].isna().all()
    assert list(table.columns[:3]) == ["image", "image_id", "cell_id"]


def test_summary_leaves_edge_cells_out_and_counts_them(synthetic_monolayer):
    labels = synthetic_monolayer["truth"]
    cells = cells_table(labels, image="m.png", image_id="m1", pixel_size_um=0.5, sample={"condition": "control"})
    record = image_record(labels, image="m.png", image_id="m1", pixel_size_um=0.5)
    summary = summary_table(cells, images=[record])
    assert len(summary) == 1
    row = summary.iloc[0]
    inner = cells[~cells["touches_edge"]]
    assert row["n_cells"] == len(inner) and row["n_edge_excluded"] == cells["touches_edge"].sum()
    assert row["area_mean"] == pytest.approx(inner["area"].mean())
    assert row["area_um2_median"] == pytest.approx(inner["area_um2"].median())
    field_mm2 = labels.size * (0.5 / 1000) ** 2
    assert row["cells_per_mm2"] == pytest.approx((len(inner) + 0.5 * cells["touches_edge"].sum()) / field_mm2)
    assert row["cell_coverage"] == pytest.approx(1.0)
    assert row["condition"] == "control"
    everything = summary_table(cells, images=[record], exclude_edge=False).iloc[0]
    assert everything["n_cells"] == len(cells) and everything["n_edge_excluded"] == 0


def test_summary_keeps_an_image_without_cells():
    empty = np.zeros((40, 40), np.int32)
    cells = cells_table(empty, image="empty.png", image_id="e")
    summary = summary_table(cells, images=[image_record(empty, image="empty.png", image_id="e")])
    assert len(summary) == 1 and summary["n_cells"].iloc[0] == 0


def test_every_column_is_documented(synthetic_monolayer):
    text = (ROOT / "docs" / "columns.md").read_text(encoding="utf-8")
    labels = synthetic_monolayer["truth"]
    cells = cells_table(labels, junction=synthetic_monolayer["junction"], nuclei=synthetic_monolayer["nuclei"],
                        pixel_size_um=0.62)
    assert set(cells.columns) <= set(COLUMNS)
    for column in [*COLUMNS, *SUMMARY_COLUMNS]:
        assert f"`{column}`" in text, f"{column} is not in docs/columns.md"
