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

Only numpy, scipy and pandas. All borders are traced and measured together, their samples in
batches (:data:`BATCH_POINTS`), so each step is one call for all of them; images larger than
:data:`WHOLE_PLANES_MAX_PX` are measured cell by cell in its bounding box (plus a margin for the
profiles), so memory stays bounded on very large images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage as ndi
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components, depth_first_order
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
# All cells' outlines are traced together (each crack is an edge of the outlines on both its sides),
# in the order, and from the points, that tracing one cell at a time in its box gave.


def _group_ranks(sizes: np.ndarray) -> np.ndarray:
    """Each element's position within its group, for consecutive groups of these sizes."""
    sizes = np.asarray(sizes, np.int64)
    return np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)


@dataclass
class _Pieces:
    """Runs of cells' outlines, each facing one neighbour, their polylines one after another.

    Attributes
    ----------
    cell, neighbour : (p,) int
        The cell whose outline it is, and the label across (0: no cell).
    at_frame, closed : (p,) bool
        An end meets the image frame; the run is a whole outline (its first point repeated last).
    sizes : (p,) int
        Points in each polyline.
    points : (sizes.sum(), 2) float
        The polylines (rows, columns): end vertex, crack points, end vertex.
    """

    cell: np.ndarray
    neighbour: np.ndarray
    at_frame: np.ndarray
    closed: np.ndarray
    sizes: np.ndarray
    points: np.ndarray

    def take(self, index: np.ndarray) -> _Pieces:
        """These pieces, in this order."""
        sizes = self.sizes[index]
        rows = np.repeat((np.cumsum(self.sizes) - self.sizes)[index], sizes) + _group_ranks(sizes)
        return _Pieces(self.cell[index], self.neighbour[index], self.at_frame[index], self.closed[index], sizes,
                       self.points[rows])

    def shifted(self, offset: np.ndarray) -> _Pieces:
        """The same pieces, their points plus ``offset`` (row, col)."""
        return _Pieces(self.cell, self.neighbour, self.at_frame, self.closed, self.sizes, self.points + offset)


def _trace(labels: np.ndarray, cell: int | None = None):
    """Every closed outline of every cell (label > 0) of a labels array, or of ``cell`` only, as crack points in order.

    The crack points are the middles of the edges between a pixel of the cell and one of another label
    (the 0.5 level contour of marching squares of the cell's mask, as ``skimage.measure.find_contours``
    gives it, and in the same direction: the cell lies on the (tangent col, -tangent row) side). Where
    two pixels of the cell touch only at a corner, the outline turns towards the cell (4-connected
    pieces, find_contours' default). Outlines come cell by cell (ascending), a cell's in the order of their
    first crack as np.nonzero finds them (between columns, then between rows, row by row), each starting
    at that crack.

    Returns
    -------
    points : (n, 2) row, col
    across : (n,) the label across each crack (``_FRAME`` outside the array)
    outside : (2, n) the pixel across (row, col)
    owner : (n,) the cell whose outline it is
    sizes : (k,) points per outline
    """
    framed = np.pad(labels.astype(labels.dtype if labels.dtype.kind == "i" else np.int64, copy=False), 1,
                    constant_values=_FRAME)
    height, width = framed.shape
    stride = width + 1  # corners: (height + 1) x (width + 1), corner (i, j) at (i - 0.5, j - 0.5)
    rows, cols = np.nonzero(framed[:, :-1] != framed[:, 1:])  # between (r, c) and (r, c + 1)
    left, right = framed[rows, cols], framed[rows, cols + 1]
    top_rows, top_cols = np.nonzero(framed[:-1, :] != framed[1:, :])  # between (r, c) and (r + 1, c)
    top, bottom = framed[top_rows, top_cols], framed[top_rows + 1, top_cols]
    upper, lower = rows * stride + cols + 1, (rows + 1) * stride + cols + 1
    right_end, left_end = (top_rows + 1) * stride + top_cols + 1, (top_rows + 1) * stride + top_cols

    def both(first: np.ndarray, second: np.ndarray) -> np.ndarray:
        # A crack's two edges next to each other: each cell's edges stay in np.nonzero's order.
        return np.column_stack([first, second]).ravel()

    owner = np.concatenate([both(left, right), both(top, bottom)])
    keep = owner > 0 if cell is None else owner == cell
    owner = owner[keep]
    across = np.concatenate([both(right, left), both(bottom, top)])[keep]
    # Directions 0 down, 1 right, 2 up, 3 left; the cell on the (t col, -t row) side.
    start = np.concatenate([both(upper, lower), both(right_end, left_end)])[keep]
    end = np.concatenate([both(lower, upper), both(left_end, right_end)])[keep]
    direction = np.concatenate([np.tile([0, 2], len(rows)), np.tile([3, 1], len(top_rows))])[keep]
    points = np.concatenate([np.repeat(np.column_stack([rows - 1.0, cols - 0.5]), 2, axis=0),
                             np.repeat(np.column_stack([top_rows - 0.5, top_cols - 1.0]), 2, axis=0)])[keep]
    outside = np.stack([np.concatenate([both(rows, rows), both(top_rows + 1, top_rows)]),
                        np.concatenate([both(cols + 1, cols), both(top_cols, top_cols)])])[:, keep] - 1
    if cell is None:
        by_cell = np.argsort(owner, kind="stable")
        owner, across, start, end, direction, points, outside = (
            owner[by_cell], across[by_cell], start[by_cell], end[by_cell], direction[by_cell], points[by_cell],
            outside[:, by_cell])
    n = len(owner)
    if n == 0:
        return points, across, outside, owner, np.zeros(0, np.int64)
    # Each corner has one or (where two pixels of a cell meet diagonally) two of its edges leaving it.
    corners = (height + 1) * stride
    start_key, end_key = owner.astype(np.int64) * corners + start, owner.astype(np.int64) * corners + end
    by_start = np.argsort(start_key, kind="stable")
    sorted_keys = start_key[by_start]
    at = np.searchsorted(sorted_keys, end_key)
    first = by_start[at]
    following = np.minimum(at + 1, n - 1)
    has_second = (at + 1 < n) & (sorted_keys[following] == end_key)
    # At such a corner, turn towards the cell.
    successor = np.where(~has_second | (direction[first] == (direction + 3) % 4), first, by_start[following])
    # The outlines are the successor's cycles: each from its first edge, in that order (a depth-first
    # walk from an extra node leading to those first edges).
    graph = csr_matrix((np.ones(n, np.int8), successor, np.arange(n + 1)), shape=(n, n))
    count, cycle = connected_components(graph, directed=True, connection="weak")
    begins = np.full(count, n)
    np.minimum.at(begins, cycle, np.arange(n))
    begins.sort()
    walk = csr_matrix((np.ones(n + count, np.int8), np.concatenate([successor, begins]),
                       np.concatenate([np.arange(n + 1), [n + count]])), shape=(n + 1, n + 1))
    order = depth_first_order(walk, n, directed=True, return_predecessors=False)[1:]
    is_begin = np.zeros(n, bool)
    is_begin[begins] = True
    sizes = np.diff(np.append(np.flatnonzero(is_begin[order]), n))
    return points[order], across[order], outside[:, order], owner[order], sizes


def _traced_outlines(mask: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every closed outline of a mask with an empty margin, as its crack points in order (:func:`_trace`).

    Returns, per outline, the (n, 2) points (row, col) and the (2, n) outside pixels.
    """
    points, _, outside, _, sizes = _trace(np.asarray(mask).astype(np.int8))
    bounds = np.cumsum(sizes)[:-1]
    return list(zip(np.split(points, bounds), np.split(outside, bounds, axis=1)))


def _outline_runs(labels: np.ndarray, min_contact: int, cell: int | None = None) -> _Pieces:
    """The runs of every cell's outlines (or of ``cell``'s) by the label across, in the labels' coordinates.

    An outline is cut where its neighbour changes; runs shorter than ``min_contact`` points join equal runs
    on both sides, else are ignored (circular). An outline with one neighbour all round is one closed run.
    A run's polyline is closed at both ends by the corner where it meets the next run. Runs along the
    frame, and ignored ones, are left out.
    """
    points, across, _, owner, sizes = _trace(labels, cell)
    outline = np.repeat(np.arange(len(sizes)), sizes)
    first = np.cumsum(sizes) - sizes
    rank = _group_ranks(sizes)
    previous = np.where(rank > 0, np.arange(len(rank)) - 1, first[outline] + sizes[outline] - 1)  # circular
    # Each outline starts at its first change of neighbour (if it has one).
    changes = np.flatnonzero(across != across[previous])
    changes = changes[np.diff(outline[changes], prepend=-1) != 0]
    shift = np.zeros(len(sizes), np.int64)
    shift[outline[changes]] = rank[changes]
    rotated = first[outline] + (rank + shift[outline]) % sizes[outline]
    points, found = points[rotated], across[rotated]
    assigned = _absorb_short_runs(found, outline, rank, min_contact)

    # The runs of what is assigned (circular): each stops where the next of its outline starts, the last
    # where the first starts, one round later. An outline that is all one is one closed run.
    starts = np.flatnonzero(assigned != assigned[previous])
    run_outline = outline[starts]
    is_first, is_last = np.diff(run_outline, prepend=-1) != 0, np.diff(run_outline, append=-1) != 0
    first_start = rank[starts][np.maximum.accumulate(np.where(is_first, np.arange(len(starts)), 0))]
    whole = np.flatnonzero(np.bincount(run_outline, minlength=len(sizes)) == 0)
    run_outline = np.concatenate([whole, run_outline])
    start = np.concatenate([np.zeros(len(whole), np.int64), rank[starts]])
    stop = np.concatenate([sizes[whole], np.where(is_last, first_start + sizes[outline[starts]],
                                                  np.append(rank[starts][1:], 0))])
    closed = np.arange(len(run_outline)) < len(whole)
    neighbour = assigned[first[run_outline] + start]
    kept = np.flatnonzero(neighbour >= 0)  # not the frame, not a contact too short to count
    kept = kept[np.argsort(run_outline[kept], kind="stable")]  # outline by outline, runs in order
    run_outline, start, stop = run_outline[kept], start[kept], stop[kept]
    closed, neighbour = closed[kept], neighbour[kept]

    def at(position: np.ndarray, runs: np.ndarray) -> np.ndarray:
        """Where a position (circular) on these runs' outlines lies in ``points``."""
        return first[run_outline[runs]] + position % sizes[run_outline[runs]]

    # Polylines: the corner before the run, its crack points, the corner after it (where the crack points
    # of the two runs meet); a closed run's crack points and its first again.
    polyline_sizes = np.where(closed, sizes[run_outline] + 1, stop - start + 2)
    run = np.repeat(np.arange(len(kept)), polyline_sizes)
    row = _group_ranks(polyline_sizes)
    polylines = points[at(start[run] + np.where(closed[run], row, row - 1), run)]
    open_ = np.flatnonzero(~closed)
    before, after = at(start[open_] - 1, open_), at(stop[open_], open_)
    first_row = (np.cumsum(polyline_sizes) - polyline_sizes)[open_]
    last_row = first_row + polyline_sizes[open_] - 1
    polylines[first_row] = np.floor((points[before] + points[at(start[open_], open_)]) / 2) + 0.5
    polylines[last_row] = np.floor((points[at(stop[open_] - 1, open_)] + points[after]) / 2) + 0.5
    at_frame = np.zeros(len(kept), bool)
    at_frame[open_] = (found[before] == _FRAME) | (found[after] == _FRAME)
    return _Pieces(owner[first[run_outline]], neighbour, at_frame, closed, polyline_sizes, polylines)


def _absorb_short_runs(found: np.ndarray, outline: np.ndarray, rank: np.ndarray, min_contact: int) -> np.ndarray:
    """Per point, the neighbour it counts for: runs shorter than ``min_contact`` points join equal runs on
    both sides, else are ``_IGNORED`` (circular; outlines one after another, each starting with a run)."""
    run_first = np.flatnonzero((rank == 0) | (found != np.roll(found, 1)))
    run_length = np.diff(np.append(run_first, len(found)))
    per_outline = np.bincount(outline[run_first])
    runs = per_outline[outline[run_first]]  # on the run's outline
    run_rank = _group_ranks(per_outline)
    first_run = np.arange(len(run_first)) - run_rank
    value = found[run_first]
    before, after = value[first_run + (run_rank - 1) % runs], value[first_run + (run_rank + 1) % runs]
    short = (run_length < min_contact) & (runs >= 2)
    joined = (before == after) & (runs > 2)
    return np.repeat(np.where(short, np.where(joined, before, _IGNORED), value), run_length)


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


def _border_pieces(pieces: _Pieces) -> _Pieces:
    """The pieces that are borders of the table (towards a larger id, or facing no cell: a free border),
    cell by cell, each cell's grouped by neighbour in the order they first appear."""
    pieces = pieces.take(np.flatnonzero((pieces.neighbour > pieces.cell) | (pieces.neighbour == 0)))
    key = pieces.cell.astype(np.int64) * (int(pieces.neighbour.max(initial=0)) + 1) + pieces.neighbour
    first_piece = np.unique(key, return_index=True, return_inverse=True)
    return pieces.take(np.argsort(first_piece[1][first_piece[2]], kind="stable"))


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
    pieces = _outline_runs(np.asarray(labels), config.NEIGHBOUR_MIN_CONTACT_PX)
    pieces = pieces.take(np.flatnonzero(pieces.neighbour > pieces.cell))  # a free border is no interface
    points, sizes = pieces.points, pieces.sizes
    if simplify:
        points, sizes = _simplify_all(points, sizes, SIMPLIFY_TOLERANCE_PX)
    result: dict[tuple[int, int], list[np.ndarray]] = {}
    for cell_id, neighbour, line in zip(pieces.cell.tolist(), pieces.neighbour.tolist(),
                                        np.split(points, np.cumsum(sizes)[:-1])):
        result.setdefault((cell_id, neighbour), []).append(line[:, ::-1])
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
# Junction signal along the interfaces
# --------------------------------------------------------------------------------------------------
# The borders are measured together, their samples one after another (border by border, piece by
# piece), so each step is one numpy or scipy call for all of them. Where a step depends on a piece's
# neighbouring samples (filters along the border, runs of present signal) it is kept within the
# piece. Float32 means are taken in the order the per-border code took them (numpy's pairwise sum of
# one border's block, or rows added one after another), so the values do not move by a float32
# rounding.

#: Borders are measured in batches of about this many outline points (bounded memory on large images).
BATCH_POINTS = 50_000


def _sums_in_order(rows: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Per group of consecutive ``rows``, their sum, added one row after another as ``rows[a:b].sum(axis=0)``
    adds them (one step per row rank, for all groups at once)."""
    total = np.zeros((len(starts),) + rows.shape[1:], rows.dtype)
    for rank in range(int(sizes.max(initial=0))):
        longer = np.flatnonzero(sizes > rank)
        total[longer] += rows[starts[longer] + rank]
    return total


def _filter_within(values: np.ndarray, sizes: np.ndarray, size: int, function) -> np.ndarray:
    """A 1-D filter of odd ``size`` (``function(values, size, mode="nearest")``) run on each group of
    consecutive values by itself: each group is padded with its end values and the groups filtered at once."""
    if not len(values):
        return values.copy()
    half = size // 2
    padded = np.where(sizes > 0, sizes + 2 * half, 0)
    starts = np.cumsum(sizes) - sizes
    rank = _group_ranks(padded) - half  # position in the group, its padding before it negative
    within = np.clip(rank, 0, np.repeat(sizes - 1, padded))
    filtered = function(values[np.repeat(starts, padded) + within], size, mode="nearest")
    return filtered[(rank >= 0) & (rank < np.repeat(sizes, padded))]


def _runs_within(flags: np.ndarray, first: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and stops of the runs of True, cut where a group begins (``first``: True at each group's first)."""
    last = np.r_[first[1:], True]
    starts = np.flatnonzero(flags & (first | ~np.r_[False, flags[:-1]]))
    stops = np.flatnonzero(flags & (last | ~np.r_[flags[1:], False])) + 1
    return starts, stops


def _simplify_all(points: np.ndarray, sizes: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """Douglas-Peucker on each polyline (``sizes`` points each, one after another): the fewest of its points
    whose polyline stays within ``tolerance`` of all of them. Returns the points kept and their number per line.

    ``skimage.measure.approximate_polygon``'s rule (distance to the segment), without its import of
    scipy.signal (over a second on a first call). A segment is split at its farthest point (the first of
    equals) by its ends alone, so all the lines' segments are split together, one level at a time.
    """
    ends = np.cumsum(sizes)
    starts = ends - sizes
    keep = np.repeat(sizes < 3, sizes)  # two points or fewer: kept as they are
    keep[starts[sizes > 0]] = keep[ends[sizes > 0] - 1] = True
    first, last = starts[sizes >= 3], ends[sizes >= 3] - 1
    limit = tolerance * tolerance
    while first.size:
        inside = last - first - 1
        segment = np.repeat(np.arange(len(first)), inside)
        index = np.repeat(first + 1, inside) + _group_ranks(inside)
        start = points[first]
        chord = points[last] - start
        squared = np.einsum("ij,ij->i", chord, chord)
        between = points[index] - start[segment]
        chords = chord[segment]
        # The points lie on the half-pixel grid: these products and sums are exact, in any order.
        along = between[:, 0] * chords[:, 0] + between[:, 1] * chords[:, 1]
        closed = (squared == 0)[segment]  # a closed line's first and last point are one: the distance to it
        along = np.divide(along, squared[segment], out=np.zeros_like(along), where=~closed)
        np.minimum(np.maximum(along, 0.0, out=along), 1.0, out=along)
        away = between - along[:, None] * chords
        away[closed] = between[closed]
        distance = np.einsum("ij,ij->i", away, away)
        farthest = np.maximum.reduceat(distance, np.cumsum(inside) - inside)
        candidates = np.flatnonzero(distance == farthest[segment])
        chosen = candidates[np.diff(segment[candidates], prepend=-1) != 0]
        split = farthest > limit
        middle = index[chosen][split]
        keep[middle] = True
        first, last = np.concatenate([first[split], middle]), np.concatenate([middle, last[split]])
        longer = last - first >= 2
        first, last = first[longer], last[longer]
    return points[keep], np.bincount(np.repeat(np.arange(len(sizes)), sizes)[keep], minlength=len(sizes))


def _resample_all(vertices: np.ndarray, sizes: np.ndarray, step: float):
    """Points every ~``step`` along each polyline (``sizes`` vertices each, one after another): (n, 2) points,
    (n, 2) unit tangents, the number of them on each line and each line's length."""
    line_of_vertex = np.repeat(np.arange(len(sizes)), sizes)
    segments = np.diff(vertices, axis=0)
    lengths = np.hypot(segments[:, 0], segments[:, 1])
    keep = (line_of_vertex[1:] == line_of_vertex[:-1]) & (lengths > 0)
    segments, lengths, starts = segments[keep], lengths[keep], vertices[:-1][keep]
    bounds = np.searchsorted(line_of_vertex[1:][keep], np.arange(len(sizes) + 1)).tolist()
    totals, counts, chosen, along = [], [], [np.zeros(0, np.int64)], [np.zeros(0)]
    # Line by line (a few small calls each): its length as numpy sums it (pairwise) and each sample's
    # segment and way along it, so that the samples fall exactly where the line-by-line code put them.
    for first, stop in zip(bounds[:-1], bounds[1:]):
        total = float(lengths[first:stop].sum())
        count = max(1, int(round(total / step))) if total > 0 else 0
        totals.append(total)
        counts.append(count)
        if count:
            cumulative = np.cumsum(lengths[first:stop])
            where = (np.arange(count) + 0.5) * (total / count)
            index = np.minimum(np.searchsorted(cumulative, where, side="right"), stop - first - 1)
            chosen.append(index + first)
            along.append(where - np.concatenate([[0.0], cumulative])[index])
    chosen, along = np.concatenate(chosen), np.concatenate(along)
    tangents = segments[chosen] / lengths[chosen, None]
    return starts[chosen] + tangents * along[:, None], tangents, np.array(counts, np.int64), np.array(totals)


def _half_max_extents(profiles: np.ndarray, offsets: np.ndarray, bases: np.ndarray, centre_reach: float
                      ) -> np.ndarray:
    """Per profile (row), its full width at half maximum around its peak near the centre (NaN without a peak).

    Where a profile does not fall to half before its end, the width runs to the end. ``bases`` are used in
    the profiles' float type, as a Python float next to a float32 array is.
    """
    count, width = profiles.shape
    rows = np.arange(count)
    central = np.flatnonzero(np.abs(offsets) <= centre_reach)
    peak = central[np.argmax(profiles[:, central], axis=1)]
    bases = np.asarray(bases).astype(profiles.dtype)
    height = profiles[rows, peak] - bases
    half = bases + profiles.dtype.type(0.5) * height
    below = profiles < half[:, None]
    columns = np.arange(width)
    left_below = below & (columns < peak[:, None])
    right_below = below & (columns > peak[:, None])
    extents = np.full(count, np.nan)
    found = height > 0
    left = np.full(count, offsets[0])
    has = found & left_below.any(axis=1)
    i = width - 1 - np.argmax(left_below[has, ::-1], axis=1)  # the last below half left of the peak
    low, high = profiles[has, i], profiles[has, i + 1]
    left[has] = offsets[i] + (half[has] - low) / (high - low) * (offsets[i + 1] - offsets[i])
    right = np.full(count, offsets[-1])
    has = found & right_below.any(axis=1)
    j = np.argmax(right_below[has], axis=1)  # the first below half right of it
    low, high = profiles[has, j], profiles[has, j - 1]
    right[has] = offsets[j - 1] + (high - half[has]) / (high - low) * (offsets[j] - offsets[j - 1])
    extents[found] = (right - left)[found]
    return extents


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


def _border_of_pieces(pieces: _Pieces) -> np.ndarray:
    """Each piece's border (0, 1, ...): a border's pieces are one after another (:func:`_border_pieces`)."""
    new = (np.diff(pieces.cell, prepend=-1) != 0) | (np.diff(pieces.neighbour, prepend=-1) != 0)
    return np.cumsum(new) - 1


def _batches(pieces: _Pieces, points: int) -> list[np.ndarray]:
    """The pieces in runs of whole borders, about ``points`` polyline points each (index arrays)."""
    if not len(pieces.cell):
        return []
    border = _border_of_pieces(pieces)
    border_points = np.bincount(border, weights=pieces.sizes)
    batch = ((np.cumsum(border_points) - border_points) // points).astype(np.int64)[border]
    return np.split(np.arange(len(border)), np.flatnonzero(np.diff(batch)) + 1)


def _clear_of_other_borders(points: np.ndarray, pairs: np.ndarray, per_piece: np.ndarray, spacing: np.ndarray,
                            cracks: cKDTree | None, crack_pairs: np.ndarray, distance: float) -> np.ndarray:
    """Per sample, whether no crack point of another pair of cells than its own (``pairs``: (n, 2) smaller,
    larger id) lies within ``distance``.

    ``per_piece``: the samples of each piece, one after another, ``spacing`` apart along it. Most samples
    are far from every other border, and that distance changes no faster than the way along the piece:
    every fourth sample of a piece is asked how far the nearest other border is (a little beyond
    ``distance``), and the next three are clear when it is farther than ``distance`` plus their way from
    it. The others are asked themselves.
    """
    clear = np.ones(len(points), bool)
    if cracks is None or not len(points):
        return clear
    size = int(max(pairs.max(), crack_pairs.max())) + 1
    keys = pairs[:, 0].astype(np.int64) * size + pairs[:, 1]
    crack_keys = np.append(crack_pairs[:, 0].astype(np.int64) * size + crack_pairs[:, 1], -1)  # -1: none found
    behind = _group_ranks(per_piece) % 4
    way = behind * np.repeat(spacing, per_piece)
    anchor = np.flatnonzero(behind == 0)
    far = np.full(len(points), -np.inf)
    far[anchor] = _other_border_distance(points[anchor], keys[anchor], cracks, crack_keys,
                                         distance + 3 * float(spacing.max(initial=0.0)) + 0.01)
    asked = np.flatnonzero(~(far[np.arange(len(points)) - behind] - way > distance + 1e-6))
    clear[asked] = ~np.isfinite(_other_border_distance(points[asked], keys[asked], cracks, crack_keys, distance))
    return clear


def _other_border_distance(points: np.ndarray, keys: np.ndarray, cracks: cKDTree, crack_keys: np.ndarray,
                           bound: float, first_ask: int = 16) -> np.ndarray:
    """Per point, the distance to the nearest crack point whose key is not its own (inf: none closer than ``bound``).

    The nearest crack points are mostly the point's own border's: as many are asked for as it takes to
    find one of another border or all closer than ``bound``.
    """
    found = np.full(len(points), np.inf)
    open_ = np.arange(len(points))
    k = first_ask
    while open_.size:
        distances, index = cracks.query(points[open_], k=k, distance_upper_bound=bound)
        other = (crack_keys[index] != keys[open_, None]) & (index < cracks.n)
        has = other.any(axis=1)
        found[open_[has]] = distances[has, np.argmax(other[has], axis=1)]
        open_ = open_[~has & (index[:, -1] < cracks.n)]  # all k closer and all its own: ask for more
        k *= 4
    return found


def _measure_borders(pieces: _Pieces, limits: np.ndarray, planes: tuple, scale: JunctionScale, half_max: bool,
                     cracks: cKDTree | None, crack_pairs: np.ndarray, crop_offset: np.ndarray) -> dict[str, np.ndarray]:
    """The columns of the interface table (less the µm ones) for these borders.

    ``pieces``: in the planes' coordinates, a border's one after another (:func:`_border_pieces`);
    ``limits``: the present threshold of each cell id. ``cracks``: the crack points of every border nearby
    and ``crack_pairs`` their cells (smaller, larger id); samples closer than ``OTHER_BORDER_REACHES``
    reaches to one of another pair are not measured. ``crop_offset``: added to the planes' coordinates
    for the image's.
    """
    smooth, plane, spline = planes
    offsets = np.arange(-scale.profile_px, scale.profile_px + ACROSS_STEP_PX / 2, ACROSS_STEP_PX)
    inner = np.abs(offsets) <= scale.reach_px
    tails = np.abs(offsets) >= scale.profile_px - scale.reach_px
    piece_border = _border_of_pieces(pieces)
    pieces_per_border = np.bincount(piece_border)
    first_piece = np.cumsum(pieces_per_border) - pieces_per_border
    cell, neighbour = pieces.cell[first_piece], pieces.neighbour[first_piece]
    # The signal is looked for on both sides of the border: it must stand out of both cytoplasms (of the
    # cell's own on a free border, facing no cell).
    limit = np.where(neighbour > 0, np.maximum(limits[cell], limits[neighbour]), limits[cell])

    # Samples every STEP_PX along the pieces, their staircase removed.
    points, tangents, per_piece, piece_lengths = _resample_all(
        *_simplify_all(pieces.points, pieces.sizes, SIMPLIFY_TOLERANCE_PX), STEP_PX)
    sample_border = np.repeat(piece_border, per_piece)
    per_border = np.bincount(sample_border, minlength=len(first_piece))
    border_starts = np.cumsum(per_border) - per_border
    first_of_piece = np.zeros(len(points), bool)
    first_of_piece[(np.cumsum(per_piece) - per_piece)[per_piece > 0]] = True
    # The cell (the smaller id) lies on the (tangent col, -tangent row) side of its traced outline:
    # the normal points away from it, into the neighbour.
    normals = np.column_stack([-tangents[:, 1], tangents[:, 0]])
    pairs = np.column_stack([np.minimum(cell, neighbour), np.maximum(cell, neighbour)])
    spacing = np.divide(piece_lengths, np.maximum(per_piece, 1))
    core = _clear_of_other_borders(points, pairs[sample_border], per_piece, spacing, cracks, crack_pairs,
                                   scale.other_border_px)
    coords = points.T[:, :, None] + normals.T[:, :, None] * offsets[None, None, :]  # (2, samples, offsets)
    # The smoothed plane only decides presence: within the reach.
    signal = ndi.map_coordinates(smooth, coords[:, :, inner].reshape(2, -1), order=1, mode="nearest"
                                 ).reshape(len(points), int(inner.sum())).max(axis=1)
    raw = ndi.map_coordinates(plane, coords.reshape(2, -1), order=1, mode="nearest").reshape(len(points), len(offsets))
    del coords

    # Baselines: the cytoplasms' levels a few reaches either side of the border.
    blocks = [raw[start:start + count] for start, count in zip(border_starts.tolist(), per_border.tolist())]
    bases = np.array([(float(block[:, tails & (offsets < 0)].mean()), float(block[:, tails & (offsets > 0)].mean()))
                      for block in blocks]).reshape(-1, 2)
    present, classes, ridge = _classify(raw, signal, core, first_of_piece, per_piece, offsets, inner,
                                        limit[sample_border], bases[sample_border], scale, half_max)

    # Profiles centred on the junction's ridge, not on the traced border (which may wander a pixel or two
    # off it and widen the mean profile): its offset, smoothed along the stretches (a running median over
    # the continuous length, each piece's present samples by themselves), so noise does not pick the centres.
    window = 2 * int(round(scale.continuous_px / STEP_PX)) + 1
    flagged = np.flatnonzero(present)
    flagged_per_piece = np.bincount(np.repeat(np.arange(len(per_piece)), per_piece)[flagged], minlength=len(per_piece))
    centre = _filter_within(ridge[flagged], flagged_per_piece, window, ndi.median_filter)
    every_fourth = _group_ranks(flagged_per_piece) % 4 == 0  # 2 px apart is enough for a mean profile
    chosen = flagged[every_fourth]
    width_points = points[chosen] + centre[every_fourth][:, None] * normals[chosen]
    widths = _junction_widths(spline, width_points, normals[chosen], sample_border[chosen], len(first_piece), scale)

    # Per border: sums over its pieces in their order (as the border-by-border code added them).
    length = _sums_in_order(piece_lengths, first_piece, pieces_per_border)
    ends = np.cumsum(pieces.sizes) - 1
    spans = pieces.points[ends] - pieces.points[ends - pieces.sizes + 1]
    straight = _sums_in_order(np.hypot(spans[:, 0], spans[:, 1]), first_piece, pieces_per_border)
    straight[np.bincount(piece_border, weights=pieces.closed, minlength=len(first_piece)) > 0] = np.nan
    counts = np.bincount(sample_border[core] * len(_CLASSES) + classes[core],
                         minlength=len(first_piece) * len(_CLASSES)).reshape(-1, len(_CLASSES))
    measured = counts.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        # A border with no sample clear of other borders is too short to be told from them: no fractions.
        fractions = np.where(measured[:, None] > 0, counts / measured[:, None], np.nan)
        continuity = np.where(measured > 0, np.bincount(sample_border[core & present], minlength=len(first_piece))
                              / measured, np.nan)
        linearity = np.where(straight > 0, length / straight, np.nan)
    # The ends of each border's longest piece (the first of equals).
    candidates = np.flatnonzero(piece_lengths == np.maximum.reduceat(piece_lengths, first_piece)[piece_border])
    longest = candidates[np.diff(piece_border[candidates], prepend=-1) != 0]
    start = pieces.points[(ends - pieces.sizes + 1)[longest]] + crop_offset
    stop = pieces.points[ends[longest]] + crop_offset
    return {
        "cell_a": cell, "cell_b": neighbour, "length_px": length, "straight_length_px": straight,
        "linearity_index": linearity, "measured_length_px": measured.astype(float) * length / np.maximum(per_border, 1),
        "junction_mean": np.array([float(block[:, inner].mean()) for block in blocks]),
        "junction_continuity": continuity, "junction_continuous_fraction": fractions[:, 1],
        "junction_punctate_fraction": fractions[:, 2], "junction_perpendicular_fraction": fractions[:, 3],
        "junction_absent_fraction": 1.0 - continuity, "junction_width_px": widths,
        "touches_edge": np.bincount(piece_border, weights=pieces.at_frame, minlength=len(first_piece)) > 0,
        "x0": start[:, 1], "y0": start[:, 0], "x1": stop[:, 1], "y1": stop[:, 0],
    }


def _classify(raw: np.ndarray, signal: np.ndarray, core: np.ndarray, first_of_piece: np.ndarray,
              per_piece: np.ndarray, offsets: np.ndarray, inner: np.ndarray, limits: np.ndarray,
              bases: np.ndarray, scale: JunctionScale, half_max: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per sample: present (bool), class (index into ``_CLASSES``) and the ridge's offset.

    ``raw``: the profiles across the border; ``signal``: the smoothed plane's maximum within the reach;
    ``limits`` and ``bases`` (the levels either side of the border, the two cytoplasms): per sample, its
    border's. Stretches are cut where a piece's measured part ends: a dot must not borrow length from a
    third cell's junction. The ridge: where the profile, smoothed across the border, peaks within the
    reach (px along the normal).
    """
    present = signal >= limits
    near = np.abs(offsets) <= scale.reach_px + 2  # the reach and the smoothing's 2 px
    smoothed = ndi.gaussian_filter1d(raw[:, near], 1.0 / ACROSS_STEP_PX, axis=1, truncate=2.0)[:, inner[near]]
    ridge = _peak_offsets(smoothed, offsets[inner])
    if half_max:
        # Where a stretch ends: half its local peak, on the plane smoothed across the border only (the
        # rule's smoothing along it would lengthen every dot by ~1 px at each end). The maximum across
        # sees the brighter cytoplasm: half the way up from there.
        across = smoothed.max(axis=1)
        window = 2 * int(round(scale.continuous_px / STEP_PX)) + 1
        local = _filter_within(across, per_piece, window, ndi.maximum_filter1d)
        base = bases.max(axis=1).astype(across.dtype)
        present &= (across - base) >= across.dtype.type(0.5) * (local - base)
    # Gaps shorter than twice the reach between two present stretches of a piece are bridged.
    starts, stops = _runs_within(~present, first_of_piece)
    last_of_piece = np.r_[first_of_piece[1:], True]
    inside = ~first_of_piece[starts] & ~last_of_piece[stops - 1]
    short = inside & (stops - starts < math.ceil(2 * scale.reach_px / STEP_PX))
    present = _fill_runs(present, starts[short], stops[short]) & core
    classes = np.zeros(len(present), np.int8)
    starts, stops = _runs_within(present, first_of_piece)
    continuous = (stops - starts) * STEP_PX >= scale.continuous_px - 1e-9
    classes = _fill_runs(classes, starts[continuous], stops[continuous], 1)
    starts, stops = starts[~continuous], stops[~continuous]
    if starts.size:
        # A shorter stretch's extent across: the FWHM of its mean profile, above the two cytoplasms' mean.
        sizes = stops - starts
        profiles = _sums_in_order(raw, starts, sizes)
        profiles /= sizes[:, None]
        base = 0.5 * (bases[starts, 0] + bases[starts, 1])
        across = _half_max_extents(profiles, offsets, base, scale.reach_px)
        perpendicular = across > config.JUNCTION_PERPENDICULAR_ASPECT * (sizes * STEP_PX)
        classes = _fill_runs(classes, starts[perpendicular], stops[perpendicular], 3)
        classes = _fill_runs(classes, starts[~perpendicular], stops[~perpendicular], 2)
    return present, classes, ridge


def _fill_runs(values: np.ndarray, starts: np.ndarray, stops: np.ndarray, value=True) -> np.ndarray:
    """A copy of ``values`` with ``value`` from each start up to its stop (the runs do not overlap)."""
    depth = np.bincount(starts, minlength=len(values) + 1) - np.bincount(stops, minlength=len(values) + 1)
    values = values.copy()
    values[np.cumsum(depth[:-1]) > 0] = value
    return values


def _junction_widths(spline: np.ndarray, points: np.ndarray, normals: np.ndarray, border: np.ndarray,
                     count: int, scale: JunctionScale) -> np.ndarray:
    """Per border, the FWHM of its mean cubic-spline profile across it at its samples (``border``: each
    sample's; NaN without samples or without a peak).

    Cubic splines, at half-pixel steps: linear interpolation blurs by 1/6 px² and widened a 3.5 px line by 5 %.
    """
    widths = np.full(count, np.nan)
    if len(points) == 0:
        return widths
    offsets = np.arange(-scale.profile_px, scale.profile_px + 0.25, 0.5)
    coords = (points[:, None, :] + offsets[None, :, None] * normals[:, None, :]).reshape(-1, 2).T
    values = ndi.map_coordinates(spline, coords, order=3, mode="mirror", prefilter=False)
    values = values.reshape(len(points), len(offsets))
    sizes = np.bincount(border, minlength=count)
    measured = np.flatnonzero(sizes)
    sizes = sizes[measured]
    profiles = _sums_in_order(values, np.cumsum(sizes) - sizes, sizes)
    profiles /= sizes[:, None]
    tails = np.abs(offsets) >= scale.profile_px - scale.reach_px
    bases = [float(profile[tails].mean()) for profile in profiles]  # numpy's pairwise sum, profile by profile
    found = _half_max_extents(profiles, offsets, bases, scale.reach_px)
    # A profile that never falls to half its height on either side is no line.
    widths[measured] = np.where(found < offsets[-1] - offsets[0], found, np.nan)
    return widths


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
    min_contact = config.NEIGHBOUR_MIN_CONTACT_PX
    columns = []
    if whole is not None:
        pieces = _border_pieces(_outline_runs(labels, min_contact))
        # The crack points of the whole image (a sample's other borders within a few reaches lie in its
        # cell's crop).
        cracks, pairs = _crack_points(labels)
        tree = cKDTree(cracks) if len(cracks) else None
        for batch in _batches(pieces, BATCH_POINTS):
            columns.append(_measure_borders(pieces.take(batch), levels.limit, whole, scale, half_max, tree, pairs,
                                            np.zeros(2)))
    else:  # filtered crop by crop, measured cell by cell in crop coordinates
        for cell_id, box, crop in _cell_crops(labels, margin):
            pieces = _border_pieces(_outline_runs(labels[box], min_contact, cell=cell_id))
            if not len(pieces.cell):
                continue
            corner = np.array([crop[0].start, crop[1].start], float)
            pieces = pieces.shifted(np.array([box[0].start, box[1].start]) - corner)
            cracks, pairs = _crack_points(labels[crop])
            columns.append(_measure_borders(pieces, levels.limit, _planes(junction[crop], levels.background), scale,
                                            half_max, cKDTree(cracks) if len(cracks) else None, pairs, corner))
    if columns:
        table = pd.DataFrame({name: np.concatenate([batch[name] for batch in columns]) for name in columns[0]})
    else:
        table = pd.DataFrame([], columns=[c for c in INTERFACE_COLUMNS if c not in ("image", "image_id")])
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
