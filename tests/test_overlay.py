"""bbbcore.overlay: pictures of a segmentation, checked pixel by pixel on small hand-made labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import pytest

from bbbcore.overlay import (
    CELL_COLOUR,
    EDGE_CELL_COLOUR,
    cell_centres,
    cell_markers,
    cells_figure,
    draw_ids,
    feature_colours,
    overlay_outlines,
    render_cells,
)

VIRIDIS_LOW, VIRIDIS_HIGH = (68, 1, 84), (253, 231, 37)  # '#440154' and '#fde725'


def hex_rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def test_viridis_ends_are_the_colours_named_here():
    assert hex_rgb(px.colors.sequential.Viridis[0]) == VIRIDIS_LOW
    assert hex_rgb(px.colors.sequential.Viridis[-1]) == VIRIDIS_HIGH


def scene():
    """12 x 14 px: cell 1 inside (rows 3-8, columns 2-7), cell 2 in the top-right corner (rows 0-3, columns 10-13)."""
    labels = np.zeros((12, 14), np.int32)
    labels[3:9, 2:8] = 1
    labels[0:4, 10:14] = 2
    junction = np.linspace(0.05, 0.95, labels.size).reshape(labels.shape)  # every pixel its own gray
    return junction, labels


def gray_of(junction):
    return (np.clip(junction, 0, 1) * 255).astype(np.uint8)


def ring(labels, cell_id, width=1):
    """A cell's pixels within ``width`` px of a pixel outside it (the image border does not count)."""
    inside = labels == cell_id
    padded = np.pad(inside, width, mode="edge")
    core = np.ones_like(inside)
    for dr in range(-width, width + 1):
        for dc in range(-width, width + 1):
            if abs(dr) + abs(dc) <= width:
                core &= padded[width + dr:width + dr + inside.shape[0], width + dc:width + dc + inside.shape[1]]
    return inside & ~core


def test_ring_helper_on_a_square():
    labels = np.zeros((8, 8), np.int32)
    labels[1:7, 1:7] = 1
    expected = labels.astype(bool).copy()
    expected[2:6, 2:6] = False
    np.testing.assert_array_equal(ring(labels, 1), expected)


def test_outlines_are_drawn_on_the_cells_border_and_the_rest_keeps_the_image():
    junction, labels = scene()
    picture = overlay_outlines(junction, labels)
    assert picture.shape == (12, 14, 3) and picture.dtype == np.uint8
    inner = ring(labels, 1)
    assert inner.sum() == 6 * 6 - 4 * 4
    assert (picture[inner] == CELL_COLOUR).all()
    # The edge cell's outline: its row 3 and its column 10, not the image border.
    edge = np.zeros_like(inner)
    edge[3, 10:14] = True
    edge[0:4, 10] = True
    np.testing.assert_array_equal(ring(labels, 2), edge)
    assert (picture[edge] == EDGE_CELL_COLOUR).all()
    rest = ~(inner | edge)
    gray = gray_of(junction)
    for channel in range(3):
        np.testing.assert_array_equal(picture[..., channel][rest], gray[rest])


@pytest.mark.parametrize("thickness", [1, 3])
def test_outlines_drawn_in_bands_of_rows_equal_those_drawn_at_once(monkeypatch, thickness):
    from bbbcore import overlay

    rng = np.random.default_rng(5)
    seeds = np.zeros((90, 70), np.int32)
    seeds[rng.integers(0, 90, 30), rng.integers(0, 70, 30)] = np.arange(1, 31)
    from skimage.segmentation import watershed

    labels = watershed(np.zeros((90, 70)), seeds)
    labels[40:50, 10:30] = 0  # a gap across band edges
    junction = rng.random((90, 70)).astype(np.float32)
    whole = overlay_outlines(junction, labels, thickness=thickness)
    for rows in (1, 7, 16):  # bands of one row, and bands whose edges cut cells
        monkeypatch.setattr(overlay, "BAND_ROWS", rows)
        np.testing.assert_array_equal(overlay_outlines(junction, labels, thickness=thickness), whole)


def test_neighbours_both_draw_their_side_of_a_shared_border():
    labels = np.zeros((8, 10), np.int32)
    labels[2:6, 2:5] = 1
    labels[2:6, 5:8] = 2
    picture = overlay_outlines(np.zeros((8, 10)), labels)
    assert (picture[3:5, 4] == CELL_COLOUR).all() and (picture[3:5, 5] == CELL_COLOUR).all()
    assert (picture[3:5, 3] == 0).all() and (picture[3:5, 6] == 0).all()  # interiors stay black


def test_junction_is_clipped_and_colours_and_thickness_are_parameters():
    junction, labels = scene()
    junction[0, 0], junction[11, 0] = -0.7, 1.8
    picture = overlay_outlines(junction, labels, colour=(1, 2, 3), edge_colour=(4, 5, 6), thickness=2)
    assert tuple(picture[0, 0]) == (0, 0, 0) and tuple(picture[11, 0]) == (255, 255, 255)
    thick = ring(labels, 1, width=2)
    assert thick.sum() == 6 * 6 - 2 * 2
    assert (picture[thick] == (1, 2, 3)).all()
    assert (picture[ring(labels, 2, width=2)] == (4, 5, 6)).all()
    # The thick outline stays inside the cells: background keeps the image.
    gray = gray_of(junction)
    background = labels == 0
    np.testing.assert_array_equal(picture[..., 1][background], gray[background])
    cell_centre = labels == 1
    cell_centre[ring(labels, 1, width=2)] = False
    np.testing.assert_array_equal(picture[..., 0][cell_centre], gray[cell_centre])


def test_feature_colours_map_the_robust_range_to_the_colormap_ends():
    values = np.linspace(0.0, 10.0, 51)
    colours, low, high = feature_colours(values)
    assert colours.shape == (51, 3) and colours.dtype == np.uint8
    assert (low, high) == pytest.approx((0.2, 9.8))  # the 2nd and 98th percentiles
    assert tuple(colours[0]) == VIRIDIS_LOW and tuple(colours[1]) == VIRIDIS_LOW  # 0 and 0.2
    assert tuple(colours[-1]) == VIRIDIS_HIGH and tuple(colours[-2]) == VIRIDIS_HIGH
    middle = tuple(colours[25])
    assert middle not in (VIRIDIS_LOW, VIRIDIS_HIGH)
    # Another colormap: Greys runs from white to black.
    greys, _, _ = feature_colours(np.array([3.0, 1.0, 2.0]), colormap="Greys")
    assert tuple(greys[1]) == (255, 255, 255) and tuple(greys[0]) == (0, 0, 0)
    assert 0 < greys[2][0] < 255


def test_one_outlier_does_not_squash_the_other_colours():
    values = np.arange(1.0, 101.0)
    values[-1] = 1e9
    colours, low, high = feature_colours(values)
    assert high < 100  # the 98th percentile, not the outlier
    assert tuple(colours[-1]) == VIRIDIS_HIGH
    assert tuple(colours[49]) not in (VIRIDIS_LOW, VIRIDIS_HIGH)


def test_feature_colours_of_missing_equal_and_no_values():
    colours, low, high = feature_colours(np.array([np.nan, 2.0, np.inf, 8.0]))
    assert tuple(colours[0]) == (128, 128, 128) and tuple(colours[2]) == (128, 128, 128)
    assert tuple(colours[1]) == VIRIDIS_LOW and tuple(colours[3]) == VIRIDIS_HIGH
    colours, low, high = feature_colours(np.array([5.0, 5.0]))  # no range: all at the low end
    assert (low, high) == (5.0, 6.0) and (colours == VIRIDIS_LOW).all()
    colours, low, high = feature_colours(np.array([]))
    assert colours.shape == (0, 3) and (low, high) == (0.0, 1.0)
    colours, low, high = feature_colours(np.array([np.nan]))
    assert tuple(colours[0]) == (128, 128, 128) and (low, high) == (0.0, 1.0)


def test_render_cells_defaults_to_the_outline_overlay():
    junction, labels = scene()
    np.testing.assert_array_equal(render_cells(junction, labels), overlay_outlines(junction, labels))
    bare = render_cells(junction, labels, outlines=False)
    np.testing.assert_array_equal(bare, np.repeat(gray_of(junction)[..., None], 3, axis=-1))


def test_colour_by_feature_fills_low_and_high_cells_with_the_colormap_ends():
    junction, labels = scene()
    labels[6:9, 9:12] = 3  # a third cell, inside
    # Id 99 is no cell: its value is dropped before the colour range (2nd-98th percentile: 0.2-9.8) is set.
    picture = render_cells(junction, labels, values={1: 0.0, 2: 5.0, 3: 10.0, 99: 1000.0}, outlines=False,
                           fill_alpha=1.0)
    assert (picture[labels == 1] == VIRIDIS_LOW).all()
    assert (picture[labels == 3] == VIRIDIS_HIGH).all()
    assert (picture[labels == 2] == (150, 150, 150)).all()  # edge cells gray, whatever their value
    gray = gray_of(junction)
    np.testing.assert_array_equal(picture[..., 2][labels == 0], gray[labels == 0])


def test_fill_mixes_the_image_and_the_colour():
    junction = np.full((6, 6), 0.4)  # gray 102
    labels = np.zeros((6, 6), np.int32)
    labels[1:5, 1:5] = 1
    picture = render_cells(junction, labels, values={1: 7.0}, outlines=False, fill_alpha=0.25)
    expected = (0.75 * 102 + 0.25 * np.array(VIRIDIS_LOW)).astype(np.uint8)  # one value: the low end
    assert (picture[labels == 1] == expected).all()
    assert (picture[labels == 0] == 102).all()
    # Outlines are drawn over the fill.
    outlined = render_cells(junction, labels, values={1: 7.0}, fill_alpha=0.25)
    assert (outlined[ring(labels, 1)] == CELL_COLOUR).all()
    assert (outlined[2:4, 2:4] == expected).all()


def test_fill_without_values_gives_each_cell_one_colour():
    junction, labels = scene()
    labels[6:9, 9:12] = 3
    picture = render_cells(junction, labels, fill=True, outlines=False, fill_alpha=1.0)
    first, third = picture[labels == 1], picture[labels == 3]
    assert (first == first[0]).all() and (third == third[0]).all()
    assert (first[0] >= 60).all() and not np.array_equal(first[0], third[0])
    assert (picture[labels == 2] == (150, 150, 150)).all()
    np.testing.assert_array_equal(picture, render_cells(junction, labels, fill=True, outlines=False, fill_alpha=1.0))


def test_highlighted_cells_get_a_thick_ring_of_their_own_colour():
    junction, labels = scene()
    picture = render_cells(junction, labels, highlight={1}, highlight_colour=(9, 8, 7))
    thick = ring(labels, 1, width=2)
    assert (picture[thick] == (9, 8, 7)).all()
    centre = (labels == 1) & ~thick
    assert not (picture[centre] == (9, 8, 7)).all(axis=1).any()
    assert (picture[ring(labels, 2)] == EDGE_CELL_COLOUR).all()  # cell 2 is not highlighted
    assert not (picture[labels == 0] == (9, 8, 7)).all(axis=1).any()


def test_empty_labels_give_the_plain_image():
    junction = np.full((5, 7), 0.5)
    for picture in (render_cells(junction, np.zeros((5, 7), np.int32), fill=True, highlight={1}),
                    render_cells(junction, np.zeros((5, 7), np.int32), values={})):
        assert (picture == 127).all()


def test_cell_centres_are_the_deepest_points():
    labels = np.zeros((10, 14), np.int32)
    labels[2:7, 3:8] = 4  # rows 2-6, columns 3-7: centre at column 5, row 4
    labels[7:10, 0:3] = 6
    labels[9, 3:14] = 6  # an L: its deepest point is in the square part
    centres = cell_centres(labels)
    assert sorted(centres) == [4, 6]
    assert centres[4] == (5, 4)
    x, y = centres[6]
    assert labels[y, x] == 6 and (x, y) == (1, 8)


def test_draw_ids_writes_each_id_at_its_centre():
    labels = np.zeros((60, 120), np.int32)
    labels[5:55, 5:55] = 1
    labels[5:55, 65:115] = 2
    picture = np.zeros((60, 120, 3), np.uint8)
    written = draw_ids(picture, labels, colour=(255, 0, 0))
    assert written.shape == picture.shape and written.dtype == np.uint8
    marked = written.any(axis=-1)  # antialiased red text (its black stroke is invisible on black)
    assert (written[marked][:, 0] > 0).all() and not written[..., 1:].any()
    assert marked[:, :60].sum() > 10 and marked[:, 60:].sum() > 10
    # Text only near the two centres, about (30, 30) and (90, 30).
    rows, cols = np.nonzero(marked)
    assert (np.abs(rows - 30) <= 10).all()
    assert (np.minimum(np.abs(cols - 30), np.abs(cols - 90)) <= 10).all()
    assert not picture.any()  # the input is left as it was


def hover_cells():
    labels = np.zeros((20, 30), np.int32)
    labels[2:8, 3:9] = 1
    labels[10:20, 20:30] = 2
    cells = pd.DataFrame({"cell_id": [1, 2], "image": ["a.png", "a.png"], "area": [36, 100],
                          "circularity": [0.785398, 0.5]})
    return labels, cells


def hover_table(labels: np.ndarray) -> pd.DataFrame:
    from bbbcore.features import cells_table

    table = cells_table(labels, image="a.png", image_id="x")
    if len(table) == 2:
        table["circularity"] = [0.785398, 0.5]
    return table


def test_cells_figure_has_the_picture_and_one_marker_per_cell_with_its_features():
    labels, _ = hover_cells()
    cells = hover_table(labels)
    picture = np.zeros((*labels.shape, 3), np.uint8)
    figure = cells_figure(picture, labels, cells, columns=["area", "circularity", "not_there"], ids=True)
    image, markers = figure.data
    assert image.type == "image" and image.source.startswith("data:image/jpeg;base64,")
    assert (image.dx, image.dy) == (1, 1)
    assert list(markers.customdata) == [1, 2] and list(markers.text) == ["1", "2"]
    assert markers.hovertext[0] == "cell 1<br>area: 36<br>circularity: 0.7854"
    # Each marker sits inside its cell, at its centroid (pixel-edge coordinates: + 0.5).
    assert (markers.x[0], markers.y[0]) == (6.0, 5.0) and (markers.x[1], markers.y[1]) == (25.0, 15.0)
    assert tuple(figure.layout.xaxis.range) == (0, 30) and tuple(figure.layout.yaxis.range) == (20, 0)
    zoomed = cells_figure(picture, labels, cells, columns=[], view=(2, 12, 1, 9), selected={2})
    assert tuple(zoomed.layout.xaxis.range) == (2, 12) and tuple(zoomed.layout.yaxis.range) == (9, 1)
    assert list(zoomed.data[1].marker.size) == [7, 13] and zoomed.data[1].text is None


def test_a_cell_whose_centroid_lies_outside_it_gets_a_marker_inside():
    labels = np.zeros((40, 40), np.int32)
    labels[5:35, 5:12] = 1  # a U: its centroid falls in the gap between the arms
    labels[28:35, 5:35] = 1
    labels[5:35, 28:35] = 1
    labels[14:22, 16:24] = 2
    markers = cell_markers(labels, hover_table(labels))
    for cell_id, (x, y) in markers.items():
        assert labels[int(np.floor(y)), int(np.floor(x))] == cell_id
    assert cell_markers(labels, pd.DataFrame(columns=["cell_id", "centroid_x", "centroid_y"])) == {}


def test_cells_figure_of_a_wide_image_costs_one_trace_for_many_cells():
    labels = np.zeros((40, 2000), np.int32)
    for i in range(100):
        labels[5:35, 20 * i + 1:20 * i + 19] = i + 1
    figure = cells_figure(np.zeros((*labels.shape, 3), np.uint8), labels, hover_table(labels), columns=["area"],
                          max_width=500)
    image, markers = figure.data
    assert image.dx == pytest.approx(4.0) and image.dy == pytest.approx(4.0)  # shown at 500 x 10 px
    assert len(markers.x) == 100 and len(figure.data) == 2


def test_hover_picture_and_markers_share_pixel_edge_coordinates():
    labels, _ = hover_cells()
    figure = cells_figure(np.zeros((*labels.shape, 3), np.uint8), labels, hover_table(labels), columns=[])
    image = figure.data[0]
    left = (image.x0 or 0) - image.dx / 2
    top = (image.y0 or 0) - image.dy / 2
    assert (left, top) == (0, 0)  # pixel (0, 0) covers [0, 1] x [0, 1], as in bbbcore.polygons
