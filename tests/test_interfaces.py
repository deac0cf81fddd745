"""Cell-cell interfaces against drawn images with known answers (lengths, classes, widths, vertices)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage import measure

from bbbcore import config
from bbbcore.features import junction_features
from bbbcore.instances import shared_borders
from bbbcore.interfaces import (
    CELL_COLUMNS,
    INTERFACE_COLUMNS,
    _traced_outlines,
    cell_interfaces,
    cell_junction_classes,
    interface_polylines,
    junction_levels,
    junction_scale,
    tricellular_vertices,
    vertex_counts,
)

FRACTIONS = ("junction_continuous_fraction", "junction_punctate_fraction", "junction_perpendicular_fraction",
             "junction_absent_fraction")


def two_cells(width: int = 300):
    """Cell 1 above cell 2 (crack at row 59.5, frame to frame), no-cell strips above and below; plane and lines."""
    labels = np.zeros((120, width), np.int32)
    labels[10:60] = 1
    labels[60:110] = 2
    plane = np.full(labels.shape, 20.0)  # cytoplasm
    plane[labels == 0] = 10.0  # background
    return labels, plane


def one_interface(labels, plane, **options):
    table = cell_interfaces(labels, plane, **options)
    assert list(zip(table["cell_a"], table["cell_b"])) == [(1, 2)]
    return table.iloc[0]


def test_columns_and_a_straight_border():
    labels, plane = two_cells()
    plane[59:61] = 100.0  # a 2-px line on the border
    table = cell_interfaces(labels, plane, image="a.png", image_id="abc")
    assert list(table.columns) == list(INTERFACE_COLUMNS)
    row = table.iloc[0]
    assert row["length_px"] == pytest.approx(300.0)
    assert row["straight_length_px"] == pytest.approx(300.0)
    assert row["linearity_index"] == pytest.approx(1.0)
    assert row["touches_edge"]  # it runs from frame to frame
    assert (row["x0"], row["x1"]) in ((-0.5, 299.5), (299.5, -0.5)) and row["y0"] == row["y1"] == 59.5
    assert row["measured_length_px"] == pytest.approx(300.0)  # no other border within twice the reach
    assert row["junction_continuity"] == pytest.approx(1.0)
    assert row["junction_continuous_fraction"] == pytest.approx(1.0)
    assert row["junction_mean"] > 30  # background subtracted, within the reach of the border
    assert np.isnan(row["length_um"]) and np.isnan(row["junction_width_um"])


@pytest.mark.parametrize("angle", [0.0, 8.0, 22.5, 37.0, 45.0, 63.0, 81.0])
def test_a_straight_border_at_any_angle_has_linearity_one(angle):
    size = 240
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    normal = np.deg2rad(angle)
    side = (xx - 120.3) * np.cos(normal) + (yy - 119.6) * np.sin(normal)
    disc = (xx - 120.3) ** 2 + (yy - 119.6) ** 2 < 90**2
    labels = np.where(disc, np.where(side < 0, 1, 2), 3).astype(np.int32)
    row = cell_interfaces(labels, np.ones(labels.shape)).set_index(["cell_a", "cell_b"]).loc[(1, 2)]
    assert row["linearity_index"] == pytest.approx(1.0, abs=0.005)
    assert row["length_px"] == pytest.approx(180.0, rel=0.03)  # a diameter of the disc
    assert row["straight_length_px"] == pytest.approx(180.0, rel=0.03)


@pytest.mark.parametrize("radius", [20, 45])
def test_a_circular_arc_has_its_length_and_linearity(radius):
    yy, xx = np.mgrid[0:160, 0:160].astype(float)
    inside = (xx - 80.2) ** 2 + (yy - 79.6) ** 2 < radius**2
    labels = np.where(inside, 1, np.where(yy < 79.6, 2, 3)).astype(np.int32)  # a disc across two cells
    row = cell_interfaces(labels, np.ones(labels.shape)).set_index(["cell_a", "cell_b"]).loc[(1, 2)]
    assert row["length_px"] == pytest.approx(np.pi * radius, rel=0.02)  # the upper half circle
    assert row["straight_length_px"] == pytest.approx(2 * radius, rel=0.03)
    assert row["linearity_index"] == pytest.approx(np.pi / 2, rel=0.03)


def hexagons(spacing: float = 40.0, shape=(260, 300)):
    """A honeycomb: nearest-centre labels of a triangular lattice (ids by position)."""
    rows = np.arange(-1, int(shape[0] / (spacing * np.sqrt(3) / 2)) + 2)
    centres = [(r * spacing * np.sqrt(3) / 2, c * spacing + (r % 2) * spacing / 2)
               for r in rows for c in range(-1, int(shape[1] / spacing) + 2)]
    centres = np.array(centres) + [3.3, 7.1]
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    distance = (yy[..., None] - centres[:, 0]) ** 2 + (xx[..., None] - centres[:, 1]) ** 2
    nearest = distance.argmin(axis=-1)
    _, labels = np.unique(nearest, return_inverse=True)
    return (labels.reshape(shape) + 1).astype(np.int32)


def test_hexagons_have_six_equal_straight_sides_and_six_vertices():
    labels = hexagons()
    table = cell_interfaces(labels, np.ones(labels.shape))
    cells = cell_junction_classes(labels, table).set_index("cell_id")
    assert list(cells.reset_index().columns) == list(CELL_COLUMNS)
    edge = np.zeros(labels.max() + 1, bool)
    edge[np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))] = True
    inner = [i for i in cells.index if not edge[i]]
    assert len(inner) >= 12
    assert (cells.loc[inner, "n_vertices"] == 6).all()
    assert (cells.loc[inner, "n_interfaces"] == 6).all()
    sides = table[~table["cell_a"].map(lambda a: edge[a]) & ~table["cell_b"].map(lambda b: edge[b])]
    side = 40.0 / np.sqrt(3)
    assert sides["length_px"].to_numpy() == pytest.approx(side, rel=0.07)
    assert sides["straight_length_px"].to_numpy() == pytest.approx(side, rel=0.07)
    assert sides["linearity_index"].to_numpy() == pytest.approx(1.0, abs=0.01)
    assert not sides["touches_edge"].any()
    assert cells.loc[inner, "linearity_mean"].to_numpy() == pytest.approx(1.0, abs=0.01)


def test_vertices_of_rectangles():
    labels = np.zeros((100, 100), np.int32)
    labels[:50, :50], labels[:50, 50:], labels[50:, :] = 1, 2, 3  # a T junction
    points, cells = tricellular_vertices(labels)
    assert points.tolist() == [[49.5, 49.5]]  # x, y of the corner shared by the three
    assert cells[0].tolist() == [1, 2, 3]
    assert vertex_counts(labels)[1:].tolist() == [1, 1, 1]
    labels[50:, 50:] = 4  # a four-way junction is one vertex
    assert vertex_counts(labels)[1:].tolist() == [1, 1, 1, 1]
    assert len(tricellular_vertices(labels)[0]) == 1


def test_interface_ends_at_its_vertex_and_polylines_match():
    labels = np.zeros((100, 120), np.int32)
    labels[:50, :60], labels[:50, 60:], labels[50:, :] = 1, 2, 3
    table = cell_interfaces(labels, np.ones(labels.shape)).set_index(["cell_a", "cell_b"])
    row = table.loc[(1, 2)]
    assert {(row["x0"], row["y0"]), (row["x1"], row["y1"])} == {(59.5, -0.5), (59.5, 49.5)}
    assert row["touches_edge"]  # its other end is on the frame
    assert table.loc[(1, 3), "length_px"] == pytest.approx(60.0)
    lines = interface_polylines(labels)
    assert set(lines) == {(1, 2), (1, 3), (2, 3)}
    line = lines[(1, 2)][0]
    assert line[[0, -1]].tolist() in ([[59.5, -0.5], [59.5, 49.5]], [[59.5, 49.5], [59.5, -0.5]])
    # Measured: the border less twice the reach (2 px) from the 1|3 and 2|3 borders at its lower end.
    assert row["measured_length_px"] == pytest.approx(50.0 - 4, abs=1.0)


def test_tracing_is_find_contours_order_and_points():
    rng = np.random.default_rng(1)
    for trial in range(40):
        mask = np.pad(ndi.gaussian_filter(rng.random((24, 30)), 1.2) > 0.5 if trial % 2 else rng.random((12, 12)) > 0.5,
                      1)
        reference = {frozenset(map(tuple, c[:-1])): c[:-1] for c in measure.find_contours(mask.view(np.uint8), 0.5)}
        traced = _traced_outlines(mask)
        assert len(traced) == len(reference)
        for points, outside in traced:
            expected = reference[frozenset(map(tuple, points))]
            start = np.flatnonzero((expected == points[0]).all(axis=1))[0]
            assert np.array_equal(np.roll(expected, -start, axis=0), points)
            assert not mask[outside[0], outside[1]].any()


def test_gap_of_known_length_gives_its_continuity():
    labels, plane = two_cells()
    plane[59:61] = 100.0
    plane[59:61, 140:160] = 20.0  # a 20 px gap
    row = one_interface(labels, plane, pixel_size_um=0.5)
    assert row["junction_continuity"] == pytest.approx(1 - 20 / 300, abs=0.01)
    assert row["junction_continuous_fraction"] == pytest.approx(row["junction_continuity"])
    assert row["junction_absent_fraction"] == pytest.approx(20 / 300, abs=0.01)


def test_dotted_line_is_punctate_with_its_coverage():
    labels, plane = two_cells()
    dots = np.zeros(300, bool)
    for start in range(5, 295, 15):
        dots[start:start + 3] = True  # 3 px dots, period 15 px: 20 % of the border
    plane[59:61, dots] = 100.0
    row = one_interface(labels, plane, pixel_size_um=0.5)  # continuous from 3 µm = 6 px
    assert row["junction_continuity"] == pytest.approx(0.2, abs=0.02)
    assert row["junction_punctate_fraction"] == pytest.approx(row["junction_continuity"])
    assert row["junction_continuous_fraction"] == 0.0
    assert row["junction_perpendicular_fraction"] == 0.0


def test_perpendicular_spikes_are_perpendicular():
    labels, plane = two_cells()
    for column in range(6, 295, 15):
        plane[53:67, column:column + 2] = 100.0  # spikes 14 px across the border, 2 px thick
    row = one_interface(labels, plane, pixel_size_um=0.5)
    assert row["junction_continuity"] == pytest.approx(2 / 15, abs=0.03)
    assert row["junction_perpendicular_fraction"] == pytest.approx(row["junction_continuity"])
    assert row["junction_punctate_fraction"] == row["junction_continuous_fraction"] == 0.0


def test_continuous_length_is_in_um_or_a_share_of_the_cell_diameter():
    labels, plane = two_cells()
    for start in range(5, 295, 20):
        plane[59:61, start:start + 8] = 100.0  # 8 px dashes
    for size, kind in ((1.0, "continuous"), (0.25, "punctate")):  # 3 µm: 3 px, 12 px
        row = one_interface(labels, plane, pixel_size_um=size)
        assert row[f"junction_{kind}_fraction"] == pytest.approx(row["junction_continuity"])
    # Without a pixel size: JUNCTION_CONTINUOUS_MIN_DIAMETERS of the cell diameter.
    assert junction_scale(labels, diameter_px=100).continuous_px == pytest.approx(
        100 * config.JUNCTION_CONTINUOUS_MIN_UM / config.TYPICAL_CELL_DIAMETER_UM)
    for diameter, kind in ((100, "continuous"), (600, "punctate")):  # 3 px, 18 px
        row = one_interface(labels, plane, diameter_px=diameter)
        assert row[f"junction_{kind}_fraction"] == pytest.approx(row["junction_continuity"])


@pytest.mark.parametrize("sigma", [1.5, 2.5])
def test_width_is_the_fwhm_of_a_gaussian_line(sigma):
    labels, plane = two_cells()
    rows = np.arange(120)[:, None]
    plane = plane + 100.0 * np.exp(-((rows - 59.8) ** 2) / (2 * sigma**2))
    row = one_interface(labels, plane, pixel_size_um=0.5)
    assert row["junction_width_px"] == pytest.approx(2.3548 * sigma, rel=0.04)
    assert row["junction_width_um"] == pytest.approx(0.5 * row["junction_width_px"])
    assert row["length_um"] == pytest.approx(0.5 * row["length_px"])
    assert row["measured_length_um"] == pytest.approx(0.5 * row["measured_length_px"])


def test_width_follows_the_ridge_when_the_border_wanders():
    yy, xx = np.mgrid[0:200, 0:300].astype(float)
    labels = np.where(yy < 100.3 + 2 * np.sin(2 * np.pi * xx / 40), 1, 2).astype(np.int32)  # +-2 px off the line
    plane = 10 + 100 * np.exp(-((yy - 100.3) ** 2) / (2 * 1.5**2))
    row = one_interface(labels, plane)
    assert row["junction_width_px"] == pytest.approx(2.3548 * 1.5, rel=0.08)


def test_no_line_is_absent_and_a_fixed_threshold_applies():
    labels, plane = two_cells()
    row = one_interface(labels, plane)
    assert row["junction_continuity"] == 0.0
    assert row["junction_absent_fraction"] == 1.0
    assert np.isnan(row["junction_width_px"])
    plane[59:61] = 100.0
    assert one_interface(labels, plane, threshold=1000.0)["junction_continuity"] == 0.0
    assert one_interface(labels, plane, threshold=50.0)["junction_continuity"] == 1.0


def test_a_cells_fractions_are_the_length_weighted_mean_of_its_interfaces():
    labels = hexagons()
    rng = np.random.default_rng(4)
    plane = 20.0 + rng.normal(0, 1.0, labels.shape)
    plane[labels == labels.max()] = 5.0  # some background
    border = np.zeros(labels.shape, bool)
    border[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    border[:-1, :] |= labels[:-1, :] != labels[1:, :]
    keep = rng.random(labels.max() + 1) < 0.6  # borders of some cells drawn, others not
    plane[border & keep[labels]] = 100.0
    table = cell_interfaces(labels, plane)
    cells = cell_junction_classes(labels, table).set_index("cell_id")
    for cell in cells.index:
        mine = table[(table["cell_a"] == cell) | (table["cell_b"] == cell)]
        mine = mine[mine["measured_length_px"] > 0]
        if mine.empty:
            continue
        weights = mine["measured_length_px"].to_numpy()
        for column in ("junction_continuity", *FRACTIONS):
            expected = np.sum(mine[column].to_numpy() * weights) / weights.sum()
            assert cells.loc[cell, column] == pytest.approx(expected)
        total = sum(cells.loc[cell, c] for c in FRACTIONS)
        assert total == pytest.approx(1.0)
    assert (table["junction_continuity"].dropna() > 0.5).any() and (table["junction_continuity"].dropna() < 0.5).any()


def test_real_image_interfaces_are_touching_cells(shared_data):
    from bbbcore.annotations import read_truth_cells
    from bbbcore.io import load_image

    folder = shared_data / "bbb" / "train"
    image = load_image(folder / "bbb_02.png")
    labels = read_truth_cells(folder / "bbb_02.outline.png")
    table = cell_interfaces(labels, image.junction_raw, image=image.name, image_id=image.image_id)
    assert len(table) > 10
    pairs, _, contact = shared_borders(labels, None)
    touching = {tuple(p) for p, n in zip(pairs.tolist(), contact) if n >= config.NEIGHBOUR_MIN_CONTACT_PX}
    assert set(zip(table["cell_a"], table["cell_b"])) <= touching
    assert (table["cell_a"] < table["cell_b"]).all()
    assert (table["length_px"] > 0).all()
    assert (table["linearity_index"].dropna() >= 0.99).all()
    measured = table[table["measured_length_px"] > 0]
    assert len(measured) > 10
    sums = measured[list(FRACTIONS)].sum(axis=1)
    assert sums.to_numpy() == pytest.approx(1.0)
    assert (measured["junction_continuity"] + measured["junction_absent_fraction"]).to_numpy() == pytest.approx(1.0)
    cells = cell_junction_classes(labels, table)
    assert len(cells) == len(np.unique(labels[labels > 0]))
    assert (cells["n_vertices"] >= 0).all()
    assert (table["image"] == "bbb_02.png").all()


def test_levels_are_the_per_cell_rules_levels():
    labels = hexagons()
    rng = np.random.default_rng(2)
    plane = rng.uniform(15, 40, labels.max() + 1)[labels] + rng.normal(0, 2, labels.shape)
    plane[labels == 1] = 3.0
    nuclei = np.zeros(labels.shape, bool)
    nuclei[::9, ::5] = True
    levels = junction_levels(labels, plane, exclude=nuclei)
    ids = np.unique(labels)
    features = junction_features(labels, plane, ids=ids, exclude=nuclei)
    cytoplasm = (features["junction_border_mean"] / features["junction_border_to_cytoplasm"]).to_numpy()
    known = np.isfinite(cytoplasm)
    assert known.sum() > 10
    assert levels.cytoplasm[ids][known] == pytest.approx(cytoplasm[known])
    assert levels.limit[ids][known] == pytest.approx(config.JUNCTION_PRESENT_RATIO * cytoplasm[known])


def test_empty_single_and_unsigned_labels():
    empty = cell_interfaces(np.zeros((50, 60), np.int32), np.ones((50, 60)))
    assert empty.empty and list(empty.columns) == [c for c in INTERFACE_COLUMNS if c not in ("image", "image_id")]
    single = np.zeros((50, 60), np.int32)
    single[10:40, 10:50] = 1
    assert cell_interfaces(single, np.ones(single.shape)).empty
    cells = cell_junction_classes(single, cell_interfaces(single, np.ones(single.shape)))
    assert cells["cell_id"].tolist() == [1] and cells["n_interfaces"].tolist() == [0]
    assert np.isnan(cells["junction_continuity"].iloc[0])
    labels, plane = two_cells()
    plane[59:61] = 100.0
    signed = cell_interfaces(labels, plane)
    unsigned = cell_interfaces(labels.astype(np.uint16), plane)
    assert len(unsigned) == 1  # the frame is not taken for a cell 65535
    assert unsigned.equals(signed)
    with pytest.raises(ValueError, match="differ in shape"):
        cell_interfaces(labels, plane[:-1])


def test_a_cell_inside_another_has_a_closed_border():
    yy, xx = np.mgrid[0:120, 0:120]
    labels = np.where((yy - 60) ** 2 + (xx - 60) ** 2 < 30**2, 2, 1).astype(np.int32)
    row = one_interface(labels, np.ones(labels.shape))
    assert row["length_px"] == pytest.approx(2 * np.pi * 30, rel=0.01)
    assert np.isnan(row["straight_length_px"]) and np.isnan(row["linearity_index"])
    assert not row["touches_edge"]
    assert vertex_counts(labels)[1:].tolist() == [0, 0]


def test_a_border_between_a_dim_and_a_bright_cell_needs_a_junction_brighter_than_both():
    # Background 10; cytoplasms 20 and 24 (10 and 14 above background). A line 18 above background is
    # 1.8x the dim cell's level but only 1.3x the bright one's: under the rule (1.5x the brighter of the
    # two: the signal must stand out on both sides) it is absent; a line 30 above is present.
    rng = np.random.default_rng(3)
    labels = np.zeros((160, 220), np.int32)
    labels[20:140, 10:110], labels[20:140, 110:210] = 1, 2  # rows 0-19 and 140-159: no cell (background)
    plane = np.full(labels.shape, 10.0)
    plane[labels == 1], plane[labels == 2] = 20.0, 24.0
    plane += rng.normal(0, 0.3, plane.shape)
    for line, expected in ((28.0, 0.0), (40.0, 1.0)):
        drawn = plane.copy()
        drawn[20:140, 109:111] = line
        interfaces = cell_interfaces(labels, drawn)
        [row] = interfaces.itertuples()
        assert (row.cell_a, row.cell_b) == (1, 2)
        assert row.junction_continuity == pytest.approx(expected, abs=0.05), line
