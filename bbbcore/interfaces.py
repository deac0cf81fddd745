"""Cell-cell interfaces: geometry, junction classes and widths per pair of touching cells.

One row per pair of touching cells (JAnaP- and PolarityJaM-like measurements), and per cell the
same classes summed over its interfaces:

* geometry: each cell's outline is traced as its crack points (the middles of the edges between its
  pixels and the others: marching squares' 0.5 contour, so two neighbours trace the same crack),
  cut into runs by the cell across it; an interface's polyline is that run on the outline of its
  smaller id, closed at both ends by the corner where it meets the next run (a tricellular vertex,
  the image frame or a gap). Its length is measured after the pixel staircase is removed
  (Douglas-Peucker, :data:`SIMPLIFY_TOLERANCE_PX`): a straight border at any angle has a linearity
  index of 1.00, a circular arc's length is within 1 %;
* junction signal: the per-cell rule of :func:`bbbcore.features.junction_features` (background,
  cytoplasm level, smoothing, reach, present ratio; :func:`junction_levels`), read along the
  interface every :data:`STEP_PX`: the smoothed plane's maximum within the reach across the border
  must reach ``JUNCTION_PRESENT_RATIO`` x the higher of the two cells' cytoplasm levels (the signal
  is looked for on both sides);
* stretches of present signal are classed as JAnaP does: continuous when at least the continuous
  length long, else perpendicular when their extent across the border (full width at half maximum)
  exceeds ``JUNCTION_PERPENDICULAR_ASPECT`` (1.2) x their length along it, else punctate.

Where this reads the per-cell rule differently, and why (measured in ``benchmarks/junction_validation.py``):

* a stretch ends where its signal, smoothed across the border only, falls below half of its local
  peak above the cytoplasm (a full width at half maximum along the border), not where the blurred
  signal finally drops under the present threshold: that threshold lies far below a junction's
  peak, so the blur of the microscope and of the rule's own smoothing lengthened every dot and
  shortened every gap by 1-2 px per end (dotted lines read at up to twice their coverage);
* the reach is looked for along the normal only, not in a square: it is there because the outline
  may lie a pixel or two off the junction's ridge; along the border it only widened every stretch
  by the reach at both ends. Gaps shorter than twice the reach are still bridged, explicitly;
* samples closer than :data:`OTHER_BORDER_REACHES` reaches to another border (a third cell's, near
  the vertices, farther where borders meet at a sharp angle) are not measured: that border's
  junction lies within the reach there. Stretches are cut where the measured part ends.

Only numpy, scipy and pandas. Work is done per cell in its bounding box (plus a margin
for the profiles), so memory stays bounded on very large images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage as ndi
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from . import config
from .instances import BAND_ROWS, inner_boundaries, label_areas

#: Interface table: name -> (unit, definition), in column order (``image`` and ``image_id`` first when given).
INTERFACE_COLUMNS: dict[str, tuple[str, str]] = {
    "image": ("", "file name of the image"),
    "image_id": ("", "first 16 hex digits of the SHA-256 of the file's bytes"),
    "cell_a": ("", "the smaller of the two cells' ids"),
    "cell_b": ("", "the larger id"),
    "length_px": ("px", "length of the shared border, its pixel staircase removed (Douglas-Peucker, 1 px)"),
    "straight_length_px": ("px", "distance between the border's two end vertices (tricellular junctions, or "
                                 "where it meets the image frame or a gap); empty for a border that closes on itself"),
    "linearity_index": ("", "length_px / straight_length_px: 1 for a straight border, more for a curved or wavy one "
                            "(PolarityJaM's linearity index)"),
    "measured_length_px": ("px", "length over which the junction fractions are measured: the border less where "
                                 "another border (a third cell's, near the vertices) lies within twice the reach"),
    "junction_mean": ("intensity", "mean background-subtracted junction intensity within the reach either side of "
                                   "the border, all along it"),
    "junction_continuity": ("", "share of the measured length where junction signal is present (the per-cell "
                                "rule, read along the border; stretch ends at half their local peak); 1 = closed"),
    "junction_continuous_fraction": ("", "share in present stretches at least the continuous length long"),
    "junction_punctate_fraction": ("", "share in shorter stretches that are not perpendicular (dots)"),
    "junction_perpendicular_fraction": ("", "share in shorter stretches whose extent across the border (full width "
                                            "at half maximum) exceeds 1.2 x their length along it (JAnaP's relative "
                                            "path aspect ratio)"),
    "junction_absent_fraction": ("", "share with no junction signal (1 - junction_continuity)"),
    "junction_width_px": ("px", "full width at half maximum of the mean intensity profile across the border where "
                                "the junction is present, each profile centred on the junction's ridge (empty when "
                                "there is no peak)"),
    "touches_edge": ("", "the border reaches the image frame"),
    "x0": ("px", "column of the border's first end"),
    "y0": ("px", "row of the border's first end"),
    "x1": ("px", "column of its other end"),
    "y1": ("px", "row of its other end"),
    "length_um": ("µm", "length_px x pixel size (empty without one)"),
    "straight_length_um": ("µm", "straight_length_px x pixel size"),
    "measured_length_um": ("µm", "measured_length_px x pixel size"),
    "junction_width_um": ("µm", "junction_width_px x pixel size"),
}

#: Per-cell columns of :func:`cell_junction_classes`, in order. Their definitions are those of the cells
#: table (:data:`bbbcore.features.COLUMNS`, docs/columns.md); ``n_interfaces`` is the cells table's
#: ``n_neighbours`` counted from the interfaces, and stays out of it.
CELL_COLUMNS: tuple[str, ...] = (
    "cell_id", "n_interfaces", "n_vertices", "linearity_mean", "junction_continuity",
    "junction_continuous_fraction", "junction_punctate_fraction", "junction_perpendicular_fraction",
    "junction_absent_fraction",
)

#: Douglas-Peucker tolerance that takes the pixel staircase out of a traced border (px).
SIMPLIFY_TOLERANCE_PX = 1.0

#: Spacing of the samples along an interface (px).
STEP_PX = 0.5

#: Spacing of the profiles across it (px; the width's profiles: half of it, from cubic splines).
ACROSS_STEP_PX = 1.0

#: Where another border (a third cell's) comes closer than this many reaches, an interface is not
#: measured: that border's junction lies within the reach (at its vertices, longer where they meet at
#: a sharp angle). Twice the reach leaves room for half a junction up to two reaches wide.
OTHER_BORDER_REACHES = 2.0

#: Images up to this many pixels are filtered once as a whole (three float32 planes: 0.2 GB at 16 MP).
WHOLE_PLANES_MAX_PX = 16_000_000
_FRAME = -1  # neighbour value outside the image
_IGNORED = -2  # a contact too short to be an interface
_CLASSES = ("absent", "continuous", "punctate", "perpendicular")  # the per-sample class codes


def scaled_px(microns: float, fallback_px: int, pixel_size_um: float | None) -> int:
    """A length given in µm, in whole pixels (at least 1); ``fallback_px`` without a pixel size."""
    if pixel_size_um:
        return max(1, int(round(microns / pixel_size_um)))
    return fallback_px


def junction_band_px(pixel_size_um: float | None) -> int:
    """Width of the junction band in pixels for a pixel size (config defaults)."""
    return scaled_px(config.JUNCTION_BAND_UM, config.JUNCTION_BAND_PX, pixel_size_um)


@dataclass(frozen=True)
class JunctionScale:
    """Lengths (px) of the junction rules for one image.

    Attributes
    ----------
    reach_px : int
        How far across the border the junction's ridge is looked for (the per-cell reach).
    band_px : int
        Width of the border band (what is not band is the interior the cytoplasm level comes from).
    continuous_px : float
        A stretch at least this long is continuous.
    profile_px : float
        Half-length of the profiles sampled across the border.
    """

    reach_px: int
    band_px: int
    continuous_px: float
    profile_px: float

    @property
    def other_border_px(self) -> float:
        """Samples closer than this to another border are not measured (its junction is within the reach)."""
        return OTHER_BORDER_REACHES * self.reach_px


def junction_scale(
    labels: np.ndarray, *, pixel_size_um: float | None = None, diameter_px: float | None = None
) -> JunctionScale:
    """The rules' lengths in px: µm rules with a pixel size, else the per-cell fallbacks and a cell-size scale.

    Without a pixel size the continuous length is ``JUNCTION_CONTINUOUS_MIN_DIAMETERS`` (3 µm over the
    typical BBB cell's 101 µm: 0.03) of ``diameter_px``, or of the cells' median equivalent diameter.
    """
    reach = scaled_px(config.JUNCTION_REACH_UM, config.JUNCTION_REACH_PX, pixel_size_um)
    band = junction_band_px(pixel_size_um)
    if pixel_size_um:
        continuous = config.JUNCTION_CONTINUOUS_MIN_UM / float(pixel_size_um)
    else:
        diameter = float(diameter_px) if diameter_px else _median_diameter(labels)
        continuous = (config.JUNCTION_CONTINUOUS_MIN_DIAMETERS * diameter if diameter > 0
                      else float(config.JUNCTION_CONTINUOUS_MIN_PX))
    # Profiles reach far enough for a baseline beyond the line and for an across extent that can
    # exceed 1.2 x the longest non-continuous stretch.
    profile = math.ceil(max(4.0 * reach, continuous) + reach)  # whole px: the profiles' samples include 0
    return JunctionScale(reach, band, float(continuous), float(profile))


def _median_diameter(labels: np.ndarray) -> float:
    areas = label_areas(labels)[1:]
    areas = areas[areas > 0]
    return float(np.median(np.sqrt(4 * areas / np.pi))) if areas.size else 0.0


@dataclass(frozen=True)
class JunctionLevels:
    """What decides where junction signal is present (as in :func:`bbbcore.features.junction_features`).

    Attributes
    ----------
    background : float
        The plane's ``JUNCTION_BACKGROUND_PERCENTILE`` percentile, subtracted from every pixel.
    floor : float
        2 % of the 99th percentile above background: the lowest cytoplasm level used.
    cytoplasm : (max id + 1,) float
        Median background-subtracted interior of each cell (NaN where none).
    limit : (max id + 1,) float
        The present threshold of each cell (background subtracted).
    """

    background: float
    floor: float
    cytoplasm: np.ndarray
    limit: np.ndarray


def junction_levels(
    labels: np.ndarray,
    junction: np.ndarray,
    *,
    pixel_size_um: float | None = None,
    band_px: int | None = None,
    threshold: float | None = None,
    exclude: np.ndarray | None = None,
    outline: np.ndarray | None = None,
) -> JunctionLevels:
    """Background, cytoplasm level and present threshold of every cell: the per-cell rule's levels.

    The same values as :func:`bbbcore.features.junction_features` uses (5th percentile background, the
    median of every fourth row and column of the interior, nuclei in ``exclude`` left out, threshold
    ``JUNCTION_PRESENT_RATIO`` x the cytoplasm or ``threshold``), computed without a whole-image float copy.
    """
    size = int(labels.max(initial=0)) + 1
    band_px = junction_band_px(pixel_size_um) if band_px is None else int(band_px)
    background, top = np.percentile(junction[::2, ::2].astype(np.float32),
                                    [config.JUNCTION_BACKGROUND_PERCENTILE, 99.0])
    background = float(background)
    floor = 0.02 * max(float(top) - background, 1e-6)
    inside = labels > 0
    outline = inner_boundaries(labels) if outline is None else outline
    # The band (pixels less than band_px from an outline pixel along rows and columns) is only needed
    # where the cytoplasm is sampled: every fourth row and column.
    band = ndi.maximum_filter((outline & inside).view(np.uint8), size=2 * band_px - 1)[::4, ::4].view(bool)
    interior = inside[::4, ::4] & ~band
    del inside, band
    if exclude is not None:
        interior &= ~np.asarray(exclude, bool)[::4, ::4]
    sub_labels = labels[::4, ::4]
    sampled = np.where(interior, sub_labels, 0)
    ids = np.flatnonzero(label_areas(labels, minlength=size)) if size > 1 else np.zeros(0, int)
    ids = ids[ids > 0]
    cytoplasm = np.full(size, np.nan)
    found = ids[np.bincount(sampled.ravel(), minlength=size)[ids] > 0]
    if found.size:
        corrected = np.subtract(junction[::4, ::4], np.float32(background), dtype=np.float32)
        cytoplasm[found] = ndi.median(corrected, sampled, found)
    if threshold is None:
        limit = config.JUNCTION_PRESENT_RATIO * np.maximum(np.nan_to_num(cytoplasm, nan=floor), floor)
    else:
        limit = np.full(size, float(threshold))
    return JunctionLevels(background, floor, cytoplasm, limit)


# --------------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------------


@dataclass
class _Piece:
    """One run of a cell's outline facing one neighbour (crop coordinates, rows and columns)."""

    neighbour: int
    polyline: np.ndarray  # (n, 2) row, col: end vertex, crack points, end vertex (closed: first == last)
    at_frame: bool  # an end meets the image frame
    closed: bool


def _traced_outlines(mask: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every closed outline of a mask with an empty margin, as its crack points in order.

    The crack points are the middles of the edges between a pixel of the mask and one outside it (the
    0.5 level contour of marching squares, as ``skimage.measure.find_contours`` gives it, and in the
    same direction: the mask lies on the (tangent col, -tangent row) side). Where two mask pixels touch
    only at a corner, the outline turns towards the mask (4-connected pieces, find_contours' default).
    Returns, per outline, the (n, 2) points (row, col) and the (2, n) outside pixels.
    """
    height, width = mask.shape
    stride = width + 1  # corners: (height + 1) x (width + 1), corner (i, j) at (i - 0.5, j - 0.5)
    rows, cols = np.nonzero(mask[:, :-1] != mask[:, 1:])  # between (r, c) and (r, c + 1)
    left = mask[rows, cols]
    top_rows, top_cols = np.nonzero(mask[:-1, :] != mask[1:, :])  # between (r, c) and (r + 1, c)
    top = mask[top_rows, top_cols]
    # Directions 0 down, 1 right, 2 up, 3 left; the mask on the (t col, -t row) side.
    upper, lower = rows * stride + cols + 1, (rows + 1) * stride + cols + 1
    right_end, left_end = (top_rows + 1) * stride + top_cols + 1, (top_rows + 1) * stride + top_cols
    start = np.concatenate([np.where(left, upper, lower), np.where(top, right_end, left_end)])
    end = np.concatenate([np.where(left, lower, upper), np.where(top, left_end, right_end)])
    direction = np.concatenate([np.where(left, 0, 2), np.where(top, 3, 1)])
    points = np.concatenate([np.column_stack([rows, cols + 0.5]), np.column_stack([top_rows + 0.5, top_cols])])
    outside = np.concatenate([np.column_stack([rows, np.where(left, cols + 1, cols)]),
                              np.column_stack([np.where(top, top_rows + 1, top_rows), top_cols])]).T
    n = len(start)
    if n == 0:
        return []
    # Each corner has one or (where two mask pixels meet diagonally) two edges leaving it.
    order = np.argsort(start, kind="stable")
    sorted_start = start[order]
    first_at = np.full((height + 1) * stride, -1)
    second_at = np.full((height + 1) * stride, -1)
    is_first = np.r_[True, sorted_start[1:] != sorted_start[:-1]]
    first_at[sorted_start[is_first]] = order[is_first]
    second_at[sorted_start[~is_first]] = order[~is_first]
    first, second = first_at[end], second_at[end]
    # At such a corner, turn towards the mask.
    turn = (direction + 3) % 4
    successor = np.where((second < 0) | (direction[np.maximum(first, 0)] == turn), first, second).tolist()
    seen = np.zeros(n, bool)
    outlines = []
    for begin in range(n):
        if seen[begin]:
            continue
        loop = [begin]
        edge = successor[begin]
        while edge != begin:
            loop.append(edge)
            edge = successor[edge]
        seen[loop] = True
        outlines.append((points[loop], outside[:, loop]))
    return outlines


def _outline_pieces(mask: np.ndarray, neighbours: np.ndarray, min_contact: int) -> list[_Piece]:
    """The runs of a cell's outline, per neighbour.

    ``mask`` is the cell in its box with one empty pixel of margin all round; ``neighbours`` the labels
    of that box, ``_FRAME`` outside the image.
    """
    pieces = []
    for points, outside in _traced_outlines(mask):
        n = len(points)
        found = neighbours[outside[0], outside[1]]
        change = np.flatnonzero(found != np.roll(found, 1))
        if change.size == 0:
            if found[0] >= 0:
                closed = np.vstack([points, points[:1]])
                pieces.append(_Piece(int(found[0]), closed, False, True))
            continue
        order = np.roll(np.arange(n), -change[0])  # start at a change of neighbour
        points, found = points[order], found[order]
        assigned = _absorb_short_runs(found, min_contact)
        change = np.flatnonzero(assigned != np.roll(assigned, 1))
        if change.size == 0:  # one neighbour all round once the short contacts are absorbed
            if assigned[0] >= 0:
                closed = np.vstack([points, points[:1]])
                pieces.append(_Piece(int(assigned[0]), closed, False, True))
            continue
        starts = change
        stops = np.r_[change[1:], change[0] + n]
        for start, stop in zip(starts, stops):
            neighbour = int(assigned[start])
            if neighbour < 0:  # the frame, or a contact too short to count
                continue
            index = np.arange(start, stop) % n
            before, after = (start - 1) % n, stop % n
            first = np.floor((points[before] + points[index[0]]) / 2) + 0.5
            last = np.floor((points[index[-1]] + points[after]) / 2) + 0.5
            polyline = np.vstack([first, points[index], last])
            pieces.append(_Piece(neighbour, polyline, bool(found[before] == _FRAME or found[after] == _FRAME), False))
    return pieces


def _absorb_short_runs(found: np.ndarray, min_contact: int) -> np.ndarray:
    """Runs shorter than ``min_contact`` points join equal runs on both sides, else are ignored (circular)."""
    n = len(found)
    starts = np.flatnonzero(found != np.roll(found, 1))
    if starts.size < 2:
        return found
    stops = np.r_[starts[1:], starts[0] + n]
    values = found[starts]
    assigned = found.copy()
    k = len(starts)
    for i in np.flatnonzero(stops - starts < min_contact):
        index = np.arange(starts[i], stops[i]) % n
        before, after = values[(i - 1) % k], values[(i + 1) % k]
        assigned[index] = before if before == after and k > 2 else _IGNORED
    return assigned


def _planes(junction: np.ndarray, background: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The junction plane less its background: smoothed (presence), as it is (profiles), as cubic-spline
    coefficients (widths)."""
    plane = np.subtract(junction, np.float32(background), dtype=np.float32)
    return (ndi.gaussian_filter(plane, 1.0, truncate=2.0), plane,
            ndi.spline_filter(plane, order=3, mode="mirror", output=np.float32))


def _cell_crops(labels: np.ndarray, margin: int):
    """(cell id, its box grown by 1 px, its box grown by ``margin``) for every cell, clipped to the image."""
    height, width = labels.shape
    for cell_id, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None:
            continue
        grown = []
        for pad in (1, margin):
            grown.append((slice(max(box[0].start - pad, 0), min(box[0].stop + pad, height)),
                          slice(max(box[1].start - pad, 0), min(box[1].stop + pad, width))))
        yield cell_id, grown[0], grown[1]


def _cell_pieces(labels: np.ndarray, cell_id: int, box, min_contact: int) -> list[_Piece]:
    """The outline runs of ``cell_id`` towards larger ids and towards no cell (neighbour 0, a free border),
    in image coordinates (``box``: the cell's, grown by 1)."""
    window = labels[box]
    neighbours = np.pad(window.astype(np.int64), 1, constant_values=_FRAME)  # signed: the frame is -1
    mask = np.pad(window == cell_id, 1)
    pieces = [p for p in _outline_pieces(mask, neighbours, min_contact) if p.neighbour > cell_id or p.neighbour == 0]
    shift = np.array([box[0].start - 1.0, box[1].start - 1.0])  # the box's corner, less the pad
    for piece in pieces:
        piece.polyline = piece.polyline + shift
    return pieces


def _crack_points(window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every point between two 4-neighbour pixels of different labels: (n, 2) row, col and the pair's (n, 2) labels."""
    rows, cols = np.nonzero(window[:, :-1] != window[:, 1:])
    across_rows, across_cols = np.nonzero(window[:-1, :] != window[1:, :])
    points = np.concatenate([np.column_stack([rows, cols + 0.5]), np.column_stack([across_rows + 0.5, across_cols])])
    first = np.concatenate([window[rows, cols], window[across_rows, across_cols]])
    second = np.concatenate([window[rows, cols + 1], window[across_rows + 1, across_cols]])
    return points, np.column_stack([np.minimum(first, second), np.maximum(first, second)])


def interface_polylines(labels: np.ndarray, *, simplify: bool = True) -> dict[tuple[int, int], list[np.ndarray]]:
    """Each interface's border as drawn: ``{(cell_a, cell_b): [(n, 2) array of x, y], ...}``.

    Coordinates are image pixels (x = column, y = row; pixel centres at integers, so a border between
    two pixels lies at .5). A pair touching in several places has several polylines; a closed border
    (a cell inside another) repeats its first point last. ``simplify``: without the pixel staircase.
    """
    labels = np.asarray(labels)
    result: dict[tuple[int, int], list[np.ndarray]] = {}
    for cell_id, box, _ in _cell_crops(labels, 1):
        for piece in _cell_pieces(labels, cell_id, box, config.NEIGHBOUR_MIN_CONTACT_PX):
            if piece.neighbour == 0:  # a free border (facing no cell) is no interface
                continue
            line = _simplify(piece.polyline, SIMPLIFY_TOLERANCE_PX) if simplify else piece.polyline
            result.setdefault((cell_id, piece.neighbour), []).append(line[:, ::-1])
    return result


# --------------------------------------------------------------------------------------------------
# Vertices
# --------------------------------------------------------------------------------------------------


def tricellular_vertices(labels: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Points where three or more cells meet.

    A vertex is a cluster of 2x2 pixel windows holding at least three different cells (windows up
    to 2 px apart join: a raster junction often spans two windows).

    Returns
    -------
    points : (k, 2) float, x and y of each vertex (the mean of its windows' centres)
    cells : list of k int arrays, the cells meeting there
    """
    labels = np.asarray(labels)
    height = labels.shape[0]
    corners, members = [], []
    for top in range(0, max(height - 1, 0), BAND_ROWS):
        block = labels[top:min(top + BAND_ROWS + 1, height)]
        a, b, c, d = block[:-1, :-1], block[:-1, 1:], block[1:, :-1], block[1:, 1:]
        count = (a > 0).astype(np.uint8)
        count += (b > 0) & (b != a)
        count += (c > 0) & (c != a) & (c != b)
        count += (d > 0) & (d != a) & (d != b) & (d != c)
        rows, cols = np.nonzero(count >= 3)
        corners.append(np.column_stack([rows + top, cols]))
        members.append(np.column_stack([a[rows, cols], b[rows, cols], c[rows, cols], d[rows, cols]]))
    corners = np.concatenate(corners) if corners else np.zeros((0, 2), int)
    members = np.concatenate(members) if members else np.zeros((0, 4), labels.dtype)
    if len(corners) == 0:
        return np.zeros((0, 2)), []
    pairs = cKDTree(corners).query_pairs(r=2.0, p=np.inf, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(corners),) * 2)
    n, cluster = connected_components(graph, directed=False)
    order = np.argsort(cluster, kind="stable")
    bounds = np.searchsorted(cluster[order], np.arange(n + 1))
    points, cells = np.zeros((n, 2)), []
    for k in range(n):
        chosen = order[bounds[k]:bounds[k + 1]]
        points[k] = corners[chosen].mean(axis=0)[::-1] + 0.5
        found = np.unique(members[chosen])
        cells.append(found[found > 0])
    return points, cells


def vertex_counts(labels: np.ndarray) -> np.ndarray:
    """Tricellular vertices on each cell's outline, indexed by cell id (:func:`tricellular_vertices`)."""
    counts = np.zeros(int(np.asarray(labels).max(initial=0)) + 1, np.int64)
    for cells in tricellular_vertices(labels)[1]:
        counts[cells] += 1
    return counts


# --------------------------------------------------------------------------------------------------
# Junction signal along an interface
# --------------------------------------------------------------------------------------------------


def _simplify(points: np.ndarray, tolerance: float) -> np.ndarray:
    """Douglas-Peucker: the fewest of the points whose polyline stays within ``tolerance`` of all of them.

    ``skimage.measure.approximate_polygon``'s rule (distance to the segment), without its import of
    scipy.signal (over a second on a first call).
    """
    n = len(points)
    if n < 3:
        return points
    keep = np.zeros(n, bool)
    keep[[0, -1]] = True
    stack = [(0, n - 1)]
    limit = tolerance * tolerance
    while stack:
        first, last = stack.pop()
        if last - first < 2:
            continue
        start, chord = points[first], points[last] - points[first]
        between = points[first + 1:last] - start
        squared = float(chord @ chord)
        if squared > 0:  # (ufuncs rather than np.clip and np.hypot: this loop runs thousands of times)
            along = between @ chord
            along /= squared
            np.minimum(np.maximum(along, 0.0, out=along), 1.0, out=along)
            away = between - along[:, None] * chord
        else:
            away = between
        distance = np.einsum("ij,ij->i", away, away)
        worst = distance.argmax()
        if distance[worst] > limit:
            middle = first + 1 + int(worst)
            keep[middle] = True
            stack += [(first, middle), (middle, last)]
    return points[keep]


def _resample(polyline: np.ndarray, step: float):
    """Points every ~``step`` along a polyline, their arc position, unit tangents and the total length."""
    segments = np.diff(polyline, axis=0)
    lengths = np.hypot(segments[:, 0], segments[:, 1])
    keep = lengths > 0
    segments, lengths, starts = segments[keep], lengths[keep], polyline[:-1][keep]
    total = float(lengths.sum())
    if total == 0:
        return np.zeros((0, 2)), np.zeros(0), np.zeros((0, 2)), 0.0
    cumulative = np.r_[0.0, np.cumsum(lengths)]
    n = max(1, int(round(total / step)))
    where = (np.arange(n) + 0.5) * (total / n)
    index = np.clip(np.searchsorted(cumulative, where, side="right") - 1, 0, len(lengths) - 1)
    tangents = segments[index] / lengths[index, None]
    points = starts[index] + tangents * (where - cumulative[index])[:, None]
    return points, where, tangents, total


def _half_max_extent(profile: np.ndarray, offsets: np.ndarray, base: float, centre_reach: float) -> float:
    """Full width at half maximum of a profile around its peak near the centre (NaN without a peak).

    Where the profile does not fall to half before its end, the width runs to the end.
    """
    central = np.flatnonzero(np.abs(offsets) <= centre_reach)
    peak_index = central[np.argmax(profile[central])]
    height = profile[peak_index] - base
    if not height > 0:
        return math.nan
    half = base + 0.5 * height
    below = profile < half
    left_below = np.flatnonzero(below[:peak_index])
    right_below = np.flatnonzero(below[peak_index + 1:])
    if left_below.size:
        i = left_below[-1]
        left = offsets[i] + (half - profile[i]) / (profile[i + 1] - profile[i]) * (offsets[i + 1] - offsets[i])
    else:
        left = offsets[0]
    if right_below.size:
        j = peak_index + 1 + right_below[0]
        right = offsets[j - 1] + (profile[j - 1] - half) / (profile[j - 1] - profile[j]) * (offsets[j] - offsets[j - 1])
    else:
        right = offsets[-1]
    return float(right - left)


def _runs(flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and stops of the runs of True."""
    edges = np.diff(np.r_[0, flags.view(np.int8) if flags.dtype == bool else flags.astype(np.int8), 0])
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _bridge(present: np.ndarray, max_gap: int) -> np.ndarray:
    """Gaps of fewer than ``max_gap`` samples between two present stretches become present."""
    starts, stops = _runs(~present)
    present = present.copy()
    for start, stop in zip(starts, stops):
        if start > 0 and stop < len(present) and stop - start < max_gap:
            present[start:stop] = True
    return present


def _piece_profiles(piece: _Piece, smooth: np.ndarray, plane: np.ndarray, scale: JunctionScale,
                    offsets: np.ndarray, others: cKDTree | None) -> dict:
    """Samples every ``STEP_PX`` along a piece of border (crop coordinates) and its profiles across.

    ``others``: the crack points of every other border nearby; samples closer than
    ``OTHER_BORDER_REACHES`` reaches to one are not measured.
    """
    line = _simplify(piece.polyline, SIMPLIFY_TOLERANCE_PX)
    points, where, tangents, length = _resample(line, STEP_PX)
    # The cell (the smaller id) lies on the (tangent col, -tangent row) side of its traced outline:
    # the normal points away from it, into the neighbour.
    normals = np.column_stack([-tangents[:, 1], tangents[:, 0]])
    coords = points.T[:, :, None] + normals.T[:, :, None] * offsets[None, None, :]  # (2, samples, offsets)
    inner = np.abs(offsets) <= scale.reach_px
    core = np.ones(len(points), bool)
    if others is not None and len(points):
        near = others.query(points, k=1, distance_upper_bound=scale.other_border_px)[0]
        core = ~np.isfinite(near)
    return {
        "points": points, "normals": normals, "length": length, "core": core,
        # The smoothed plane only decides presence: within the reach.
        "smooth": ndi.map_coordinates(smooth, coords[:, :, inner].reshape(2, -1), order=1,
                                      mode="nearest").reshape(len(points), int(inner.sum())),
        "raw": ndi.map_coordinates(plane, coords.reshape(2, -1), order=1,
                                   mode="nearest").reshape(len(points), len(offsets)),
    }


def _classify(profiles: dict, offsets: np.ndarray, inner: np.ndarray, limit: float, bases: tuple[float, float],
              scale: JunctionScale, half_max: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per sample along a piece: present (bool), class (index into ``_CLASSES``) and the ridge's offset.

    ``bases``: the levels either side of the border (the two cytoplasms). Stretches are cut where the
    piece's measured part ends: a dot must not borrow length from a third cell's junction. The ridge:
    where the profile, smoothed across the border, peaks within the reach (px along the normal).
    """
    signal = profiles["smooth"].max(axis=1)
    present = signal >= limit
    raw = profiles["raw"]
    near = np.abs(offsets) <= scale.reach_px + 2  # the reach and the smoothing's 2 px
    smoothed = ndi.gaussian_filter1d(raw[:, near], 1.0 / ACROSS_STEP_PX, axis=1, truncate=2.0)[:, inner[near]]
    ridge = _peak_offsets(smoothed, offsets[inner])
    if half_max and present.any():
        # Where a stretch ends: half its local peak, on the plane smoothed across the border only (the
        # rule's smoothing along it would lengthen every dot by ~1 px at each end). The maximum across
        # sees the brighter cytoplasm: half the way up from there.
        across = smoothed.max(axis=1)
        window = 2 * int(round(scale.continuous_px / STEP_PX)) + 1
        local = ndi.maximum_filter1d(across, window, mode="nearest")
        base = max(bases)
        present &= (across - base) >= 0.5 * (local - base)
    present = _bridge(present, int(math.ceil(2 * scale.reach_px / STEP_PX))) & profiles["core"]
    base = 0.5 * (bases[0] + bases[1])
    classes = np.zeros(len(signal), np.int8)
    for start, stop in zip(*_runs(present)):
        along = (stop - start) * STEP_PX
        if along >= scale.continuous_px - 1e-9:
            classes[start:stop] = 1
            continue
        across = _half_max_extent(raw[start:stop].mean(axis=0), offsets, base, scale.reach_px)
        perpendicular = across > config.JUNCTION_PERPENDICULAR_ASPECT * along
        classes[start:stop] = 3 if perpendicular else 2
    return present, classes, ridge


def _peak_offsets(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per row, where it peaks (a parabola through the highest sample and its two neighbours)."""
    index = np.clip(np.argmax(values, axis=1), 1, values.shape[1] - 2)
    rows = np.arange(len(values))
    low, mid, high = values[rows, index - 1], values[rows, index], values[rows, index + 1]
    curvature = low - 2 * mid + high
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(curvature < 0, 0.5 * (low - high) / curvature, 0.0)
    step = offsets[1] - offsets[0] if len(offsets) > 1 else 1.0
    return offsets[index] + np.clip(shift, -0.5, 0.5) * step


def _interface_row(cell_a: int, cell_b: int, pieces: list[_Piece], planes: tuple, limit: float,
                   scale: JunctionScale, half_max: bool, crop_offset: np.ndarray, others: cKDTree | None) -> dict:
    """One row of the interface table (``pieces`` in crop coordinates)."""
    smooth, plane, spline = planes
    offsets = np.arange(-scale.profile_px, scale.profile_px + ACROSS_STEP_PX / 2, ACROSS_STEP_PX)
    inner = np.abs(offsets) <= scale.reach_px
    tails = np.abs(offsets) >= scale.profile_px - scale.reach_px
    profiles = [_piece_profiles(p, smooth, plane, scale, offsets, others) for p in pieces]
    length = sum(p["length"] for p in profiles)
    straight = 0.0
    for piece in pieces:
        straight = math.nan if piece.closed else straight + float(np.hypot(*(piece.polyline[-1] - piece.polyline[0])))
    raw = np.concatenate([p["raw"] for p in profiles])
    # Baselines: the cytoplasms' levels a few reaches either side of the border.
    bases = (float(raw[:, tails & (offsets < 0)].mean()), float(raw[:, tails & (offsets > 0)].mean()))
    present, classes, core, width_points, width_normals = [], [], [], [], []
    for piece in profiles:
        flags, kinds, ridge = _classify(piece, offsets, inner, limit, bases, scale, half_max)
        present.append(flags)
        classes.append(kinds)
        core.append(piece["core"])
        if flags.any():
            # Profiles centred on the junction's ridge, not on the traced border (which may wander a
            # pixel or two off it and widen the mean profile): its offset, smoothed along the stretches
            # (a running median over the continuous length), so noise does not pick the centres.
            window = 2 * int(round(scale.continuous_px / STEP_PX)) + 1
            centre = ndi.median_filter(ridge[flags], size=window, mode="nearest")
            points = piece["points"][flags] + centre[:, None] * piece["normals"][flags]
            width_points.append(points[::4])  # 2 px apart is enough for a mean profile
            width_normals.append(piece["normals"][flags][::4])
    present, classes, core = np.concatenate(present), np.concatenate(classes), np.concatenate(core)
    n = int(core.sum())
    # An interface with no sample clear of other borders is too short to be told from them: no fractions.
    fractions = [float(np.count_nonzero(classes[core] == k)) / n if n else math.nan for k in range(4)]
    continuity = float(np.count_nonzero(present[core])) / n if n else math.nan
    width = (_junction_width(spline, np.concatenate(width_points), np.concatenate(width_normals), scale)
             if width_points else math.nan)
    longest = pieces[int(np.argmax([p["length"] for p in profiles]))].polyline + crop_offset
    return {
        "cell_a": cell_a, "cell_b": cell_b, "length_px": length, "straight_length_px": straight,
        "linearity_index": length / straight if straight and straight > 0 else math.nan,
        "measured_length_px": float(core.sum()) * length / max(len(core), 1),
        "junction_mean": float(raw[:, inner].mean()), "junction_continuity": continuity,
        "junction_continuous_fraction": fractions[1], "junction_punctate_fraction": fractions[2],
        "junction_perpendicular_fraction": fractions[3], "junction_absent_fraction": 1.0 - continuity,
        "junction_width_px": width, "touches_edge": any(p.at_frame for p in pieces),
        "x0": longest[0, 1], "y0": longest[0, 0], "x1": longest[-1, 1], "y1": longest[-1, 0],
    }


def _junction_width(spline: np.ndarray, points: np.ndarray, normals: np.ndarray, scale: JunctionScale) -> float:
    """FWHM of the mean cubic-spline profile across the border at these samples (NaN without a peak).

    Cubic splines, at half-pixel steps: linear interpolation blurs by 1/6 px² and widened a 3.5 px line by 5 %.
    """
    if len(points) == 0:
        return math.nan
    offsets = np.arange(-scale.profile_px, scale.profile_px + 0.25, 0.5)
    coords = (points[:, None, :] + offsets[None, :, None] * normals[:, None, :]).reshape(-1, 2).T
    values = ndi.map_coordinates(spline, coords, order=3, mode="mirror", prefilter=False)
    profile = values.reshape(len(points), len(offsets)).mean(axis=0)
    tails = np.abs(offsets) >= scale.profile_px - scale.reach_px
    width = _half_max_extent(profile, offsets, float(profile[tails].mean()), scale.reach_px)
    # A profile that never falls to half its height on either side is no line.
    return width if width < offsets[-1] - offsets[0] else math.nan


def cell_interfaces(
    labels: np.ndarray,
    junction: np.ndarray,
    *,
    pixel_size_um: float | None = None,
    diameter_px: float | None = None,
    threshold: float | None = None,
    exclude: np.ndarray | None = None,
    image: str | None = None,
    image_id: str | None = None,
    half_max: bool = True,
    levels: JunctionLevels | None = None,
    free_borders: bool = False,
) -> pd.DataFrame:
    """One row per pair of touching cells: geometry, junction classes and width of their shared border.

    Parameters
    ----------
    labels : (H, W) int array, 0 = no cell
    junction : (H, W) array
        The junction channel in the file's own units (as for :func:`bbbcore.features.cells_table`).
    pixel_size_um : float, optional
        Sets the rules' lengths in µm and fills the ``_um`` columns (NaN without).
    diameter_px : float, optional
        Typical cell diameter; without a pixel size the continuous length is a share of it
        (default: the cells' median equivalent diameter).
    threshold : float, optional
        One background-subtracted intensity from which signal is present, for all cells (default:
        ``JUNCTION_PRESENT_RATIO`` x the higher of the two cells' cytoplasm levels: the signal is looked
        for on both sides of the border).
    exclude : (H, W) bool, optional
        Pixels left out of the cytoplasm level (nuclei).
    image, image_id : str, optional
        Written as the first two columns when given.
    half_max : bool
        Stretch ends at half the local peak (default); False: where the signal drops under the threshold.
    levels : JunctionLevels, optional
        :func:`junction_levels` of these labels and plane, when already computed.
    free_borders : bool
        Also a row per cell for its border facing no cell (``cell_b`` 0; for the per-cell fractions).

    Returns
    -------
    DataFrame with the columns of :data:`INTERFACE_COLUMNS`, ordered by (cell_a, cell_b). Pairs touching
    along fewer than ``NEIGHBOUR_MIN_CONTACT_PX`` pixel pairs are not interfaces.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be 2-D, got shape {labels.shape}")
    junction = np.asarray(junction)
    if junction.shape != labels.shape:
        raise ValueError(f"junction plane {junction.shape} and labels {labels.shape} differ in shape")
    if labels.dtype.kind not in "iu":
        labels = labels.astype(np.int32)
    scale = junction_scale(labels, pixel_size_um=pixel_size_um, diameter_px=diameter_px)
    if levels is None:
        levels = junction_levels(labels, junction, pixel_size_um=pixel_size_um, band_px=scale.band_px,
                                 threshold=threshold, exclude=exclude)
    margin = int(math.ceil(scale.profile_px)) + 4  # the profiles and the smoothing's 2 px
    # The planes (background subtracted, smoothed, spline coefficients) of the whole image at once when
    # it is small enough: cells' crops overlap by their margins, and filtering each crop again cost
    # several times the image. Very large images are filtered crop by crop (bounded memory).
    whole = _planes(junction, levels.background) if labels.size <= WHOLE_PLANES_MAX_PX else None
    rows = []
    for cell_id, box, crop in _cell_crops(labels, margin):
        pieces = _cell_pieces(labels, cell_id, box, config.NEIGHBOUR_MIN_CONTACT_PX)
        if not pieces:
            continue
        corner = np.array([crop[0].start, crop[1].start], float)
        if whole is None:
            planes, offset = _planes(junction[crop], levels.background), corner
        else:
            planes, offset = whole, np.zeros(2)
        for piece in pieces:
            piece.polyline = piece.polyline - offset
        cracks, pairs = _crack_points(labels[crop])
        cracks = cracks + (corner - offset)
        by_neighbour: dict[int, list[_Piece]] = {}
        for piece in pieces:
            by_neighbour.setdefault(piece.neighbour, []).append(piece)
        for neighbour, group in by_neighbour.items():
            # The signal is looked for on both sides of the border: it must stand out of both cytoplasms
            # (of the cell's own on a free border, facing no cell).
            limit = max(levels.limit[cell_id], levels.limit[neighbour]) if neighbour else levels.limit[cell_id]
            low, high = min(cell_id, neighbour), max(cell_id, neighbour)
            other = (pairs[:, 0] != low) | (pairs[:, 1] != high)
            others = cKDTree(cracks[other]) if other.any() else None
            rows.append(_interface_row(cell_id, neighbour, group, planes, limit, scale, half_max, offset, others))
    table = pd.DataFrame(rows, columns=[c for c in INTERFACE_COLUMNS if c not in ("image", "image_id")])
    if not free_borders:
        table = table[table["cell_b"] != 0]
    table = table.sort_values(["cell_a", "cell_b"], kind="stable").reset_index(drop=True)
    for column in ("cell_a", "cell_b"):
        table[column] = table[column].astype(np.int64)
    table["touches_edge"] = table["touches_edge"].astype(bool)
    size = float(pixel_size_um) if pixel_size_um else math.nan
    for column in ("length", "straight_length", "measured_length", "junction_width"):
        table[f"{column}_um"] = table[f"{column}_px"] * size
    if image_id is not None:
        table.insert(0, "image_id", image_id)
    if image is not None:
        table.insert(0, "image", image)
    return table


# --------------------------------------------------------------------------------------------------
# Per cell
# --------------------------------------------------------------------------------------------------


def cell_junction_classes(labels: np.ndarray, interfaces: pd.DataFrame, *, ids: np.ndarray | None = None
                          ) -> pd.DataFrame:
    """Per cell: the JAnaP fractions from its interfaces, its vertices and the linearity of its borders.

    A cell's fraction is the mean of its borders' fractions weighted by their ``measured_length_px``
    (so the per-cell and per-interface numbers are the same stretches): its interfaces, and its border
    facing no cell when ``interfaces`` has those rows (``cell_b`` 0, ``free_borders=True``), as JAnaP walks
    the whole perimeter; the image frame is left out. ``n_interfaces`` and ``linearity_mean`` (weighted by
    ``length_px``: a short border's index is mostly pixel noise) are of the interfaces only.

    Parameters
    ----------
    labels : (H, W) int array
    interfaces : DataFrame from :func:`cell_interfaces` for these labels
    ids : cell ids, optional (default: every id in ``labels``, ascending)

    Returns
    -------
    DataFrame with the columns of :data:`CELL_COLUMNS`, one row per id (NaN fractions for a cell without
    interfaces).
    """
    labels = np.asarray(labels)
    size = int(labels.max(initial=0)) + 1
    if ids is None:
        ids = np.flatnonzero(label_areas(labels, minlength=size))
        ids = ids[ids > 0]
    ids = np.asarray(ids, np.int64)
    both = pd.concat([interfaces.assign(cell_id=interfaces["cell_a"]),
                      interfaces.assign(cell_id=interfaces["cell_b"])], ignore_index=True)
    both = both[both["cell_id"] > 0]  # a free border's other side is no cell
    shared = (both["cell_a"] > 0) & (both["cell_b"] > 0)
    table = pd.DataFrame({"cell_id": ids})
    weight = both["measured_length_px"].to_numpy(float)
    counts = np.bincount(both.loc[shared, "cell_id"].to_numpy(np.int64), minlength=size)
    table["n_interfaces"] = counts[ids].astype(np.int64)
    table["n_vertices"] = vertex_counts(labels)[ids]
    cell = both["cell_id"].to_numpy(np.int64)

    def weighted(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
        ok = np.isfinite(values) & np.isfinite(weights) & (weights > 0)
        total = np.bincount(cell[ok], weights=weights[ok], minlength=size)
        sums = np.bincount(cell[ok], weights=(values * weights)[ok], minlength=size)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(total > 0, sums / total, np.nan)[ids]

    table["linearity_mean"] = weighted(both["linearity_index"].where(shared).to_numpy(float),
                                       both["length_px"].to_numpy(float))
    for column in ("junction_continuity", "junction_continuous_fraction", "junction_punctate_fraction",
                   "junction_perpendicular_fraction", "junction_absent_fraction"):
        table[column] = weighted(both[column].to_numpy(float), weight)
    return table


def junction_tables(labels: np.ndarray, junction: np.ndarray, **options) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The interfaces (cell-cell only) and the per-cell classes of one image (``options``: :func:`cell_interfaces`'s).

    The per-cell fractions include each cell's border facing no cell.
    """
    borders = cell_interfaces(labels, junction, **{**options, "free_borders": True})
    interfaces = borders[borders["cell_b"] != 0].reset_index(drop=True)
    return interfaces, cell_junction_classes(labels, borders)
