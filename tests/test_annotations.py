"""bbbcore.annotations: outline annotations -> truth cells."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.draw import line

from bbbcore.annotations import outline_to_cells, read_truth_cells
from bbbcore.errors import AnnotationError


def draw(outline, rows, cols):
    """A closed 1-px polygon, as the annotation tool draws."""
    for i in range(len(rows)):
        rr, cc = line(rows[i - 1], cols[i - 1], rows[i], cols[i])
        outline[rr, cc] = 255


def test_two_neighbours_with_double_line_and_sliver():
    outline = np.zeros((1000, 1300), np.uint8)
    # Two neighbouring squares drawn as separate polygons: a double line with
    # a 2-px sliver between them, as hand annotators leave.
    draw(outline, [20, 20, 180, 180], [20, 150, 150, 20])
    draw(outline, [20, 20, 180, 180], [153, 290, 290, 153])
    cells = outline_to_cells(outline)
    assert cells.max() == 2  # the sliver and the unannotated remainder are gone
    # Outline and sliver pixels were given to the cells: the two now touch.
    assert cells[100, 150] > 0 and cells[100, 153] > 0
    assert set(np.unique(cells[100, 148:156])) == {1, 2}
    # Unannotated space stays unknown.
    assert cells[600, 800] == 0 and cells[5, 5] == 0


def test_specks_and_remainder_are_dropped():
    outline = np.zeros((1000, 1300), np.uint8)
    draw(outline, [100, 100, 140, 140], [100, 140, 140, 100])  # 39 x 39 = 1,521 px speck
    draw(outline, [10, 10, 200, 200], [200, 390, 390, 200])  # a real cell
    cells = outline_to_cells(outline)
    assert cells.max() == 1
    assert cells[100, 300] == 1 and cells[120, 120] == 0


def test_thresholds_are_parameters():
    outline = np.zeros((1000, 1300), np.uint8)
    draw(outline, [100, 100, 140, 140], [100, 140, 140, 100])
    assert outline_to_cells(outline, min_area=1000).max() == 1


def test_empty_annotation_is_an_error(tmp_path):
    from PIL import Image

    path = tmp_path / "blank.outline.png"
    Image.fromarray(np.zeros((50, 50), np.uint8)).save(path)
    with pytest.raises(AnnotationError, match=r"^blank\.outline\.png: the annotation has no outline pixels$"):
        read_truth_cells(path)


@pytest.mark.shared
@pytest.mark.parametrize(
    "name, expected",
    [("bbb_01.outline.annotator_a.png", 60), ("bbb_01.outline.annotator_b.png", 53), ("bbb_02.outline.png", 23)],
)
def test_real_annotations_give_their_cells(shared_data, name, expected):
    cells = read_truth_cells(shared_data / "bbb" / "train" / name)
    assert cells.max() == expected
    areas = np.bincount(cells.ravel())[1:]
    assert areas.min() >= 3000 and areas.max() < 0.08 * cells.size
