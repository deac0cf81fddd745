"""Cell outlines as polygons, and polygons back to a labels image.

Coordinates follow ImageJ and QuPath: ``x`` is the column, ``y`` the row,
and pixel ``(row, col)`` covers the square ``[col, col + 1] x [row, row + 1]``,
so its centre is at ``(col + 0.5, row + 0.5)``. An outline runs along the
pixel edges' midpoints around the cell (marching squares at level 0.5), and
a pixel belongs to a polygon when its centre lies inside it; so
labels -> polygons -> labels gives back the same pixels, up to the
pixels of a cell's smaller pieces or holes (an outline is one ring).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage import draw, measure


def cell_polygons(labels: np.ndarray, *, simplify: bool = True, holes: bool = False) -> dict:
    """The outline of every cell.

    Parameters
    ----------
    labels : (H, W) int array, 0 = no cell
    simplify : bool
        Drop vertices that lie on the straight line through their two
        neighbours (exact: the outline and its pixels do not change).
    holes : bool
        Also return the rings around holes (a cell around a masked caption).

    Returns
    -------
    dict cell_id -> (n, 2) float array of ``x, y`` vertices of the outer ring
    (not closed: the last vertex is not a repeat of the first); with
    ``holes=True``, cell_id -> list of rings, the outer one first. A cell in
    several pieces gives its largest piece.
    """
    labels = np.asarray(labels)
    polygons: dict = {}
    for cell_id, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None:
            continue
        crop = labels[box] == cell_id
        pieces, n = ndi.label(crop)
        if n > 1:
            crop = pieces == (np.argmax(np.bincount(pieces.ravel())[1:]) + 1)
        # The holes are the parts of the crop's outside that do not reach its edge (cheaper than
        # ndi.binary_fill_holes, and they are the rings asked for with ``holes``).
        outside, n_outside = ndi.label(np.pad(~crop, 1, constant_values=True))
        hole_ids = np.arange(2, n_outside + 1)  # part 1 holds the pad's corner: the true outside
        filled = crop | np.isin(outside[1:-1, 1:-1], hole_ids) if n_outside > 1 else crop
        origin = (box[0].start, box[1].start)
        outer = _outer_ring(filled, origin, simplify)
        if not holes:
            polygons[cell_id] = outer
            continue
        polygons[cell_id] = [outer] + [_outer_ring(outside[1:-1, 1:-1] == hole, origin, simplify) for hole in hole_ids]
    return polygons


def _outer_ring(mask: np.ndarray, origin: tuple[int, int], simplify: bool) -> np.ndarray:
    """The outer ring of one connected mask, in image ``x, y`` pixel-edge coordinates."""
    contours = measure.find_contours(np.pad(mask, 1).astype(np.float32), 0.5)
    outline = max(contours, key=len)
    outline = outline[:-1] if np.allclose(outline[0], outline[-1]) else outline
    if simplify:
        outline = _drop_collinear(outline)
    # padded-crop index -> image index (-1 for the pad, + the crop's origin),
    # then +0.5 from index coordinates (pixel centres at integers) to edges.
    rows = outline[:, 0] - 1 + origin[0] + 0.5
    cols = outline[:, 1] - 1 + origin[1] + 0.5
    return np.column_stack([cols, rows])


def _drop_collinear(points: np.ndarray) -> np.ndarray:
    """Remove the vertices of a closed polygon that lie on a straight run."""
    before = points - np.roll(points, 1, axis=0)
    after = np.roll(points, -1, axis=0) - points
    cross = before[:, 0] * after[:, 1] - before[:, 1] * after[:, 0]
    keep = np.abs(cross) > 1e-9
    return points[keep] if keep.sum() >= 3 else points


def rasterise_polygons(polygons: dict | list, shape: tuple[int, int]) -> np.ndarray:
    """Labels image from polygons in ``x, y`` pixel-edge coordinates.

    Parameters
    ----------
    polygons : dict id -> polygon, or a list (ids 1, 2, ... in order)
        A polygon is an (n, 2) array, or a list of rings: the outer one
        first, then holes.
    shape : (height, width)

    Returns
    -------
    (H, W) int32 labels. Larger polygons are drawn first, so a cell that
    another one encloses stays on top.
    """
    items = polygons.items() if isinstance(polygons, dict) else enumerate(polygons, start=1)
    items = [(cell_id, _rings(polygon)) for cell_id, polygon in items]
    items.sort(key=lambda item: -polygon_area(item[1][0]))
    labels = np.zeros(shape, np.int32)
    for cell_id, rings in items:
        for index, ring in enumerate(rings):
            if len(ring) < 3:
                continue
            rows, cols = draw.polygon(ring[:, 1] - 0.5, ring[:, 0] - 0.5, shape=shape)
            if index == 0:
                labels[rows, cols] = int(cell_id)
            else:
                inside = labels[rows, cols] == int(cell_id)
                labels[rows[inside], cols[inside]] = 0
    return labels


def _rings(polygon) -> list[np.ndarray]:
    """A polygon as a list of (n, 2) float rings, the outer one first."""
    if isinstance(polygon, np.ndarray) and polygon.ndim == 2:
        return [polygon.astype(float)]
    if len(polygon) == 0:  # no points: nothing to draw
        return [np.zeros((0, 2))]
    if np.ndim(polygon[0]) == 1:  # a single ring given as a list of points
        return [np.asarray(polygon, float)]
    return [np.asarray(ring, float) for ring in polygon]


def polygon_length(points: np.ndarray) -> float:
    """Length of a closed polygon's outline."""
    points = np.asarray(points, float)
    return float(np.linalg.norm(np.roll(points, -1, axis=0) - points, axis=1).sum())


def polygon_area(points: np.ndarray) -> float:
    """Area enclosed by a polygon (shoelace formula, absolute value)."""
    points = np.asarray(points, float)
    if len(points) < 3:
        return 0.0
    x, y = points[:, 0], points[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)
