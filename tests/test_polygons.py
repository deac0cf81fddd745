"""bbbcore.polygons: cell outlines as polygons in pixel-edge coordinates, and back to labels.

Known answers used below. A pixel (row, col) is the square [col, col + 1] x [row, row + 1];
the outline runs through the midpoints of the cell's boundary pixel edges (marching squares
at 0.5), so every convex corner of a cell is cut by a triangle of area 1/8 and every concave
corner adds one. A simply connected cell has four more convex corners than concave ones, so
its polygon's area is its pixel count - 0.5, and rasterising the polygon (pixel centres inside)
gives back exactly its pixels.
"""

from __future__ import annotations

import numpy as np
import pytest

from bbbcore.polygons import cell_polygons, polygon_area, polygon_length, rasterise_polygons


def vertex_set(points: np.ndarray) -> set[tuple[float, float]]:
    return {(float(x), float(y)) for x, y in points}


def test_a_rectangle_is_an_octagon_through_its_edge_midpoints():
    labels = np.zeros((10, 12), np.int32)
    labels[2:6, 3:8] = 1  # rows 2-5, columns 3-7: the square [3, 8] x [2, 6], 20 pixels
    outline = cell_polygons(labels)[1]
    assert outline.shape == (8, 2)
    assert vertex_set(outline) == {
        (3.5, 2.0), (7.5, 2.0),  # top edge, corners cut by half a pixel
        (8.0, 2.5), (8.0, 5.5),  # right
        (7.5, 6.0), (3.5, 6.0),  # bottom
        (3.0, 5.5), (3.0, 2.5),  # left
    }
    assert not np.array_equal(outline[0], outline[-1])  # not closed
    assert polygon_area(outline) == 20 - 0.5
    # Straight runs 4 + 4 + 3 + 3, four cut corners of length sqrt(0.5).
    assert polygon_length(outline) == pytest.approx(14 + 4 * np.sqrt(0.5))
    np.testing.assert_array_equal(rasterise_polygons({1: outline}, labels.shape), labels)


def test_simplify_drops_only_vertices_on_straight_runs():
    labels = np.zeros((12, 12), np.int32)
    labels[2:9, 2:9] = 1
    labels[2:5, 6:9] = 0  # an L: one concave corner
    full = cell_polygons(labels, simplify=False)[1]
    short = cell_polygons(labels)[1]
    assert len(short) == 12  # 5 convex corners cut (2 vertices each) + 1 concave cut (2 vertices)
    assert len(full) > len(short)
    assert vertex_set(short) <= vertex_set(full)
    assert polygon_area(short) == polygon_area(full) == labels.sum() - 0.5
    np.testing.assert_array_equal(rasterise_polygons({1: full}, labels.shape), labels)
    np.testing.assert_array_equal(rasterise_polygons({1: short}, labels.shape), labels)


def test_synthetic_cells_round_trip_exactly(synthetic_monolayer):
    truth = synthetic_monolayer["truth"]
    polygons = cell_polygons(truth)
    assert sorted(polygons) == list(range(1, truth.max() + 1))
    counts = np.bincount(truth.ravel())
    for cell_id, outline in polygons.items():
        assert polygon_area(outline) == counts[cell_id] - 0.5, cell_id
    np.testing.assert_array_equal(rasterise_polygons(polygons, truth.shape), truth)


def test_a_cell_at_the_image_edge_reaches_the_image_border():
    labels = np.zeros((6, 8), np.int32)
    labels[0:3, 0:4] = 1  # the top-left corner of the image
    labels[3:6, 5:8] = 2  # the bottom-right corner
    polygons = cell_polygons(labels)
    x, y = polygons[1][:, 0], polygons[1][:, 1]
    assert (x.min(), y.min(), x.max(), y.max()) == (0.0, 0.0, 4.0, 3.0)
    x, y = polygons[2][:, 0], polygons[2][:, 1]
    assert (x.min(), y.min(), x.max(), y.max()) == (5.0, 3.0, 8.0, 6.0)  # the image is 8 x 6
    np.testing.assert_array_equal(rasterise_polygons(polygons, labels.shape), labels)


@pytest.mark.parametrize("rows, cols, vertices", [
    # One pixel: a diamond through its four edge midpoints, area 1/2.
    (slice(2, 3), slice(2, 3), {(2.5, 2.0), (3.0, 2.5), (2.5, 3.0), (2.0, 2.5)}),
    # A horizontal one-pixel-wide cell, columns 1-5: a hexagon.
    (slice(2, 3), slice(1, 6), {(1.5, 2.0), (5.5, 2.0), (6.0, 2.5), (5.5, 3.0), (1.5, 3.0), (1.0, 2.5)}),
    # A vertical one, rows 0-3 (touching the top edge).
    (slice(0, 4), slice(4, 5), {(4.5, 0.0), (5.0, 0.5), (5.0, 3.5), (4.5, 4.0), (4.0, 3.5), (4.0, 0.5)}),
])
def test_one_pixel_wide_cells(rows, cols, vertices):
    labels = np.zeros((6, 8), np.int32)
    labels[rows, cols] = 3
    outline = cell_polygons(labels)[3]
    assert vertex_set(outline) == vertices
    assert polygon_area(outline) == labels.astype(bool).sum() - 0.5
    np.testing.assert_array_equal(rasterise_polygons({3: outline}, labels.shape), labels)


def test_a_cell_around_a_hole_keeps_its_hole():
    labels = np.zeros((60, 60), np.int32)
    labels[10:50, 10:50] = 1
    labels[25:35, 25:35] = 0  # a masked caption inside the cell
    labels[0:5, 0:5] = 2
    rings = cell_polygons(labels, holes=True)
    assert len(rings[1]) == 2
    np.testing.assert_array_equal(rasterise_polygons(rings, labels.shape), labels)


def test_hole_ring_areas_add_up_to_the_pixel_count():
    labels = np.zeros((20, 20), np.int32)
    labels[2:16, 3:17] = 1  # 14 x 14 = 196
    labels[6:9, 7:11] = 0  # a 3 x 4 hole
    labels[12, 12] = 0  # a one-pixel hole
    rings = cell_polygons(labels, holes=True)[1]
    assert len(rings) == 3
    outer, *holes = rings
    assert polygon_area(outer) == 196 - 0.5
    assert sorted(polygon_area(h) for h in holes) == [1 - 0.5, 12 - 0.5]
    # Each hole ring also loses 1/2 to its cut corners: the cell's area is its pixels - 1/2 + 1/2 per hole.
    assert polygon_area(outer) - sum(polygon_area(h) for h in holes) == (labels == 1).sum() - 0.5 + 2 * 0.5
    np.testing.assert_array_equal(rasterise_polygons({1: rings}, labels.shape), labels)
    # Without holes=True: the outer ring only, which rasterises to the filled cell.
    outline = cell_polygons(labels)[1]
    np.testing.assert_array_equal(outline, outer)
    filled = np.zeros_like(labels)
    filled[2:16, 3:17] = 1
    np.testing.assert_array_equal(rasterise_polygons({1: outline}, labels.shape), filled)


def test_a_cell_inside_another_cells_hole_stays_on_top():
    labels = np.zeros((12, 12), np.int32)
    labels[1:11, 1:11] = 1
    labels[4:8, 4:8] = 0
    labels[5:7, 5:7] = 2  # a small cell in the hole, a ring of background around it
    rings = cell_polygons(labels, holes=True)
    assert len(rings[1]) == 2 and len(rings[2]) == 1
    np.testing.assert_array_equal(rasterise_polygons(rings, labels.shape), labels)
    # Larger polygons are drawn first, whatever the order given: the inner cell wins.
    outer_only = {2: rings[2][0], 1: rings[1][0]}
    back = rasterise_polygons(outer_only, labels.shape)
    assert (back[5:7, 5:7] == 2).all() and (back[4, 4:8] == 1).all()


def test_a_cell_in_pieces_gives_its_largest_piece():
    labels = np.zeros((10, 10), np.int32)
    labels[1:4, 1:4] = 1  # 9 pixels
    labels[6:8, 6:8] = 1  # 4 pixels, detached
    labels[4:6, 4:6] = 1  # 4 pixels touching the first piece only at a corner: another piece
    outline = cell_polygons(labels)[1]
    assert polygon_area(outline) == 9 - 0.5
    expected = np.zeros_like(labels)
    expected[1:4, 1:4] = 1
    np.testing.assert_array_equal(rasterise_polygons({1: outline}, labels.shape), expected)


def test_ids_are_kept_and_missing_ids_are_skipped():
    labels = np.zeros((8, 8), np.int32)
    labels[1:3, 1:3] = 2
    labels[5:7, 5:7] = 5
    polygons = cell_polygons(labels)
    assert sorted(polygons) == [2, 5]
    np.testing.assert_array_equal(rasterise_polygons(polygons, labels.shape), labels)
    assert cell_polygons(np.zeros((5, 5), np.int32)) == {}


def test_rasterise_takes_lists_rings_and_clips_to_the_shape():
    square = [[1, 1], [4, 1], [4, 3], [1, 3]]  # columns 1-3, rows 1-2
    triangle_outside = np.array([[-5.0, -5.0], [-4.0, -5.0], [-4.0, -4.0]])
    labels = rasterise_polygons([square, triangle_outside, [[0, 0], [1, 1]]], (5, 6))
    assert labels.dtype == np.int32 and labels.shape == (5, 6)
    expected = np.zeros((5, 6), np.int32)
    expected[1:3, 1:4] = 1  # list ids start at 1; the other two draw nothing
    np.testing.assert_array_equal(labels, expected)
    # Partly outside the image: only the inside part is drawn.
    labels = rasterise_polygons({7: np.array([[3.0, -2.0], [9.0, -2.0], [9.0, 2.0], [3.0, 2.0]])}, (5, 6))
    expected = np.zeros((5, 6), np.int32)
    expected[0:2, 3:6] = 7
    np.testing.assert_array_equal(labels, expected)


def test_polygon_area_and_length_of_known_shapes():
    unit = np.array([[0, 0], [1, 0], [1, 1], [0, 1]])
    assert polygon_area(unit) == 1.0 and polygon_length(unit) == 4.0
    assert polygon_area(unit[::-1]) == 1.0  # orientation does not matter
    triangle = [[0, 0], [3, 0], [0, 4]]
    assert polygon_area(triangle) == 6.0 and polygon_length(triangle) == 12.0
    assert polygon_area([[0, 0], [1, 1]]) == 0.0


def test_an_empty_polygon_draws_nothing():
    labels = rasterise_polygons({1: [], 2: [[0, 0], [3, 0], [3, 3], [0, 3]]}, (4, 4))
    assert set(np.unique(labels)) == {0, 2} and (labels == 2).sum() == 9
