"""bbbcore.annotations: outline annotations -> truth cells."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
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


def _enclosed_regions(path) -> np.ndarray:
    """The data README's reading of an outline file, done here without bbbcore: the 4-connected
    non-outline regions bigger than a speck (3,000 px) and smaller than the unannotated remainder
    (8 % of the frame). Slivers between double lines are far below 3,000 px in these files."""
    from PIL import Image

    outline = np.asarray(Image.open(path))
    outline = outline.max(axis=-1) if outline.ndim == 3 else outline
    regions, _ = ndi.label(outline == 0)  # 4-connected by default
    areas = np.bincount(regions.ravel())
    keep = (areas >= 3000) & (areas < 0.08 * outline.size)
    keep[0] = False
    return np.where(keep[regions], regions, 0)


@pytest.mark.shared
@pytest.mark.parametrize("name", ["bbb_01.outline.annotator_a.png", "bbb_01.outline.annotator_b.png",
                                  "bbb_02.outline.png"])
def test_real_annotations_give_their_cells(shared_data, name):
    path = shared_data / "bbb" / "train" / name
    cells = read_truth_cells(path)
    enclosed = _enclosed_regions(path)
    region_ids = np.unique(enclosed[enclosed > 0])
    assert cells.max() == len(region_ids) > 0
    # Each drawn polygon is one truth cell: its inside lies in exactly one cell, and each cell
    # holds exactly one polygon's inside (it only gains the outline and slivers around it).
    owner = {int(r): np.unique(cells[enclosed == r]) for r in region_ids}
    assert all(len(ids) == 1 and ids[0] > 0 for ids in owner.values())
    assert sorted(int(ids[0]) for ids in owner.values()) == list(range(1, cells.max() + 1))
    cell_area, region_area = np.bincount(cells.ravel()), np.bincount(enclosed.ravel())
    grown = [cell_area[owner[int(r)][0]] / region_area[r] for r in region_ids]
    assert min(grown) >= 1.0 and max(grown) < 1.25  # outline + sliver only: a few px around a 3,000+ px cell


# --- polygon files: bad JSON, absurd nesting, coordinates beyond the image ---------


def _labelbox(*cells) -> bytes:
    import json

    return json.dumps([{"Labeled Data": "a.png", "Label": {"Cell": [{"geometry": [{"x": x, "y": y} for x, y in c]}
                                                                   for c in cells]}}]).encode()


SQUARE = [(2, 2), (10, 2), (10, 10), (2, 10)]


def test_json_depth_ignores_brackets_in_strings():
    from bbbcore.annotations import json_depth

    assert json_depth(b'[{"a": "[[[[{{{{"}, [1, [2]]]') == 3
    assert json_depth(b'"just a string"') == 0
    assert json_depth(b"[" * 100_000 + b"]" * 100_000) == 100_000


def test_deep_nesting_is_refused_before_parsing():
    from bbbcore.annotations import read_polygon_annotations

    with pytest.raises(AnnotationError) as info:
        read_polygon_annotations("deep.json", data=b"[" * 100_000 + b"]" * 100_000)
    assert str(info.value) == "deep.json: not an annotation file: its JSON is nested 100000 levels deep (the limit is 64)"


@pytest.mark.parametrize("data, message", [
    (b'[{"Labeled Data": "a.png",\n "Label": {]', "a.json: not valid JSON: line 2, column 12: Expecting property name "
                                                  "enclosed in double quotes"),
    (b"\xff\x00\x00", "a.json: not valid JSON: not UTF-8 text (byte 1)"),
])
def test_bad_json_is_one_line_with_its_place(data, message):
    from bbbcore.annotations import read_polygon_annotations

    with pytest.raises(AnnotationError) as info:
        read_polygon_annotations("a.json", data=data)
    assert str(info.value) == message


def test_utf16_json_is_read():
    from bbbcore.annotations import read_polygon_annotations

    (annotation,) = read_polygon_annotations("a.json", data=_labelbox(SQUARE).decode().encode("utf-16"))
    assert annotation.image == "a.png" and annotation.origins == ["record 1, cell 1"]


def test_polygons_are_checked_against_the_image_before_drawing():
    from bbbcore.annotations import read_polygon_annotations

    (annotation,) = read_polygon_annotations("a.json", data=_labelbox(SQUARE, [(5, 5), (70, 5), (70, 20)]))
    assert annotation.labels_shape("a.json", (48, 80)) == (48, 80)
    with pytest.raises(AnnotationError) as info:
        annotation.labels_shape("a.json", (48, 64))
    assert str(info.value) == ("a.json: a.png: record 1, cell 2: the point x 70, y 5 lies outside the image "
                               "(64 x 48 px)")
    assert annotation.labels_shape("a.json", None) == (20, 70)  # the polygons' extent


def test_without_the_image_the_extent_is_bounded_like_an_image():
    from bbbcore.annotations import read_polygon_annotations

    (annotation,) = read_polygon_annotations("a.json", data=_labelbox(SQUARE, [(1e5, 1e5), (1e5 + 9, 1e5),
                                                                                (1e5, 1e5 + 9)]))
    with pytest.raises(AnnotationError) as info:
        annotation.labels_shape("a.json")
    assert str(info.value) == ("a.json: a.png: record 1, cell 2 reaches x 100009, y 100009: labels of 100009 x "
                               "100009 px would be too large (10002 megapixels; the limit is 50); give the image "
                               "(--image) or fix the coordinates")


def test_geojson_polygons_are_named_by_feature():
    import json

    from bbbcore.annotations import read_polygon_annotations

    square = [[x, y] for x, y in [*SQUARE, SQUARE[0]]]
    far = [[0, 0], [500, 0], [500, 9], [0, 0]]
    content = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [c]}, "properties": {}}
        for c in (square, far)]}
    (annotation,) = read_polygon_annotations("m.geojson", data=json.dumps(content).encode())
    with pytest.raises(AnnotationError, match=r"^m\.geojson: m: feature 2: the point x 500, y 0 lies outside"):
        annotation.labels_shape("m.geojson", (48, 64))
