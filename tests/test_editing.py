"""bbbcore.editing: delete, merge, draw and split cells on tiny hand-built labels."""

from __future__ import annotations

import numpy as np
import pytest

from bbbcore.editing import EditError, delete_cells, draw_cell, merge_cells, split_cell


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
