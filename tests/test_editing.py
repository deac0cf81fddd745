"""bbbcore.editing: delete, merge, draw and split cells on tiny hand-built labels."""

from __future__ import annotations

import numpy as np
import pytest

from bbbcore.editing import (
    EditError,
    apply_edit,
    cell_under,
    delete_cells,
    draw_cell,
    edit_from_selection,
    merge_cells,
    selection_cells,
    selection_outline,
    selection_view,
    split_cell,
)


def grid() -> np.ndarray:
    """Four 10 x 10 cells in a 2 x 2 grid (ids 1 2 / 3 4) and a fifth, 5, apart at the right."""
    labels = np.zeros((20, 32), np.int32)
    labels[:10, :10], labels[:10, 10:20], labels[10:, :10], labels[10:, 10:20] = 1, 2, 3, 4
    labels[5:15, 25:30] = 5
    return labels


def test_deleting_leaves_no_cell_there_and_the_rest_untouched():
    labels = grid()
    edited = delete_cells(labels, [2, 5])
    assert (edited[:10, 10:20] == 0).all() and not (edited == 5).any()
    kept = (labels != 2) & (labels != 5)
    np.testing.assert_array_equal(edited[kept], labels[kept])
    assert (labels == 2).sum() == 100  # the input is not changed


def test_merging_touching_cells_gives_one_cell_with_the_smallest_id():
    labels = grid()
    edited, merged = merge_cells(labels, [4, 2, 3])  # 2-4 share a border, 3-4 too
    assert merged == 2
    assert (edited[:10, 10:20] == 2).all() and (edited[10:, :20][:, 10:] == 2).all() and (edited[10:, :10] == 2).all()
    assert set(np.unique(edited)) == {0, 1, 2, 5}


def test_cells_that_do_not_touch_are_not_merged():
    with pytest.raises(EditError, match="do not all touch"):
        merge_cells(grid(), [1, 5])
    with pytest.raises(EditError, match="at least two"):
        merge_cells(grid(), [1])


def test_a_missing_cell_is_named_in_the_message():
    with pytest.raises(EditError, match=r"no cell 9 .*5 cells"):
        delete_cells(grid(), [1, 9])


def test_a_drawn_cell_takes_the_pixels_inside_its_outline_from_the_cells_it_covers():
    labels = grid()
    square = np.array([[5, 5], [15, 5], [15, 15], [5, 15]], float)  # x, y: pixel edges; the grid's centre
    edited, new_id = draw_cell(labels, square)
    assert new_id == 6
    assert (edited[5:15, 5:15] == 6).all() and (edited == 6).sum() == 100
    for cell in (1, 2, 3, 4):  # each keeps its outer L
        assert (edited == cell).sum() == 75
    assert (edited == 5).sum() == 50  # a cell it did not cover is as it was


def test_a_drawn_cell_that_cuts_a_cell_in_two_leaves_it_one_piece():
    labels = grid()
    band = np.array([[10, 4], [20, 4], [20, 6], [10, 6]], float)  # a bar across cell 2, rows 4-5
    edited, new_id = draw_cell(labels, band)
    from scipy import ndimage as ndi

    assert ndi.label(edited == 2)[1] == 1  # the smaller piece joined a neighbour
    assert (edited[4:6, 10:20] == new_id).all()
    with pytest.raises(EditError, match="at least 3 points"):
        draw_cell(labels, np.array([[1, 1], [5, 5]]))


def test_splitting_along_a_line_gives_two_cells_the_larger_keeping_the_id():
    labels = grid()
    edited, parts = split_cell(labels, 2, np.array([[13.5, -1], [13.5, 11]]))  # a vertical cut at column 13
    assert parts == [2, 6]
    assert (edited == 2).sum() + (edited == 6).sum() == 100  # nothing lost: the line's pixels are given out
    assert (edited[:10, 14:20] == 2).all() and (edited[:10, 10:13] == 6).all()
    diagonal, _ = split_cell(labels, 1, np.array([[0.5, 0.5], [9.5, 9.5]]))
    halves = [(diagonal == i).sum() for i in (1, 6)]
    assert sum(halves) == 100 and min(halves) >= 40  # an 8-connected cut: no 4-connected leak across it


def test_a_line_that_does_not_cross_the_cell_is_refused():
    with pytest.raises(EditError, match="does not cut cell 2 in two"):
        split_cell(grid(), 2, np.array([[12, 2], [15, 5]]))  # inside, border to nowhere


def test_new_cells_can_take_an_id_never_used_and_a_taken_one_is_refused():
    labels = delete_cells(grid(), [5])  # 5 is gone; a log would not give it again
    edited, new_id = draw_cell(labels, np.array([[22, 2], [30, 2], [30, 10], [22, 10]], float), new_id=6)
    assert new_id == 6 and (edited == 6).sum() == 64
    _, parts = split_cell(edited, 2, np.array([[13.5, -1], [13.5, 11]]), new_id=7)
    assert parts == [2, 7]
    with pytest.raises(EditError, match="id 3 is taken"):
        draw_cell(labels, np.array([[22, 2], [30, 2], [30, 10]], float), new_id=3)


def square(x0: float, y0: float, x1: float, y1: float) -> list[list[float]]:
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def lasso(points) -> dict:
    """A Streamlit plotly selection holding one lasso (and no points)."""
    points = np.asarray(points, float)
    return {"points": [], "box": [], "lasso": [{"xref": "x", "yref": "y", "x": list(points[:, 0]),
                                                "y": list(points[:, 1])}]}


def test_a_selection_gives_the_cells_clicked_or_enclosed_and_the_last_lasso():
    clicked = {"points": [{"curve_number": 1, "point_index": 3, "customdata": 4}, {"customdata": [2]},
                          {"customdata": 4}, {"curve_number": 0, "x": 3.0}, {"customdata": "7"},
                          {"customdata": True}], "box": [], "lasso": []}
    assert selection_cells(clicked) == [2, 4]  # markers only: not the picture, text or flags
    assert selection_outline(clicked) is None and selection_cells({}) == [] and selection_cells(None) == []
    drawn = lasso(square(1, 1, 9, 9))
    drawn["lasso"].insert(0, {"x": [0, 1, 2], "y": [0, 1, 0]})
    np.testing.assert_array_equal(selection_outline(drawn), square(1, 1, 9, 9))  # the last one
    assert selection_outline(lasso([[1, 1], [2, 2]])) is None  # too few points for a shape


def test_what_a_selection_asks_for_and_why_it_cannot_be_done():
    labels = grid()
    assert edit_from_selection(labels, "delete", {"points": [{"customdata": 5}]}) == {
        "operation": "delete", "cells": [5], "points": None}
    with pytest.raises(EditError, match="select two or more touching cells first"):
        edit_from_selection(labels, "merge", {"points": [{"customdata": 5}]})
    with pytest.raises(EditError, match="select a cell first: click a cell's dot"):
        edit_from_selection(labels, "delete", lasso(square(1, 1, 9, 9)))
    with pytest.raises(EditError, match="draw a lasso first"):
        edit_from_selection(labels, "split", {"points": [{"customdata": 5}]})
    drawn = edit_from_selection(labels, "draw", lasso(square(2, 2, 8, 8)))
    assert drawn["operation"] == "draw" and drawn["points"].shape == (4, 2)


def test_a_lasso_over_part_of_a_cell_splits_that_part_off():
    labels = grid()
    # Most of the lasso lies over cell 2 (x 10-20); a little over cell 1.
    edit = edit_from_selection(labels, "split", lasso(square(8, 0, 15, 6)))
    assert edit["cells"] == [2] and np.array_equal(edit["points"][0], edit["points"][-1])  # closed
    edited, said, made = apply_edit(labels, edit["operation"], cells=edit["cells"], points=edit["points"])
    assert said.startswith("split cell 2 into cells 2, ") and len(made) == 1
    assert (labels == 2).sum() == (edited == 2).sum() + (edited == made[0]).sum()
    assert (edited[:5, 10:14] == made[0]).all() and (edited[7:10, 15:20] == 2).all()
    np.testing.assert_array_equal(edited[labels != 2], labels[labels != 2])  # cell 1 and the rest untouched
    with pytest.raises(EditError, match="covers no cell"):
        cell_under(labels, square(21, 0, 24, 4))


def test_the_view_zooms_around_the_selection_with_a_margin_inside_the_image():
    labels = grid()
    assert selection_view(labels, {"points": []}) is None
    x0, x1, y0, y1 = selection_view(labels, {"points": [{"customdata": 5}]}, margin=0.0, least=1)
    assert (x0, x1, y0, y1) == (25, 30, 5, 15)
    x0, x1, y0, y1 = selection_view(labels, {"points": [{"customdata": 1}]}, margin=0.5, least=1)
    assert (x0, x1, y0, y1) == (0, 15, 0, 15)  # 5 px on each side, clipped at the image's edge
    x0, x1, y0, y1 = selection_view(labels, lasso(square(14, 9, 16, 11)), margin=0.0, least=10)
    assert (x0, x1, y0, y1) == (10, 20, 5, 15)  # at least 10 px across
