"""Corrections of a labels image by hand: delete, merge, draw and split cells.

Plain functions on labels arrays (0 = no cell, one id per cell), each
returning a new array and leaving its input as it was, so an editor can keep
the versions for undo. The dashboard and ``python -m bbbcore edit`` call
these same functions.

Coordinates of drawn shapes follow :mod:`bbbcore.polygons`: ``x`` is the
column and ``y`` the row, pixel ``(row, col)`` covers ``[col, col + 1] x
[row, row + 1]``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy import ndimage as ndi
from skimage import draw

from .instances import tidy_labels
from .polygons import rasterise_polygons


class EditError(ValueError):
    """An edit that cannot be made (a missing cell, cells that do not touch, a line that cuts nothing)."""


def delete_cells(labels: np.ndarray, cell_ids: Iterable[int]) -> np.ndarray:
    """The labels with ``cell_ids`` removed (their pixels become 0: no cell).

    Raises
    ------
    EditError
        An id that is no cell of ``labels``.
    """
    ids = _existing(labels, cell_ids)
    edited = np.array(labels, copy=True)
    edited[np.isin(edited, ids)] = 0
    return edited


def merge_cells(labels: np.ndarray, cell_ids: Iterable[int]) -> tuple[np.ndarray, int]:
    """The labels with ``cell_ids`` joined into one cell (the smallest id), and that id.

    The pixels between them that belong to no cell stay 0; the cells must
    touch one another (directly or through the others), or the result would be
    one cell in pieces.

    Raises
    ------
    EditError
        Fewer than two ids, an id that is no cell, or cells that do not touch.
    """
    ids = _existing(labels, cell_ids)
    if len(ids) < 2:
        raise EditError("merging needs at least two cells")
    chosen = np.isin(labels, ids)
    _, pieces = ndi.label(chosen)
    if pieces > 1:
        raise EditError(f"cells {', '.join(map(str, ids))} do not all touch: merged they would be "
                        f"{pieces} separate pieces (pick cells that share a border)")
    edited = np.array(labels, copy=True)
    edited[chosen] = ids[0]
    return edited, int(ids[0])


def draw_cell(labels: np.ndarray, polygon: np.ndarray, *, new_id: int | None = None) -> tuple[np.ndarray, int]:
    """The labels with a new cell drawn as ``polygon`` ((n, 2) ``x, y``), and its id.

    The new cell takes every pixel whose centre lies inside the polygon, from
    whichever cells held them; a cell cut in pieces keeps its largest piece
    (the others join the neighbour they touch most). The new id is ``new_id``,
    by default one more than the largest (an editor that keeps a log passes
    the next id never used, so a deleted cell's id is not given again).

    Raises
    ------
    EditError
        A polygon of fewer than 3 points, or one that covers no pixel centre.
    """
    polygon = np.asarray(polygon, float)
    if polygon.ndim != 2 or polygon.shape[1] != 2 or len(polygon) < 3:
        raise EditError("a drawn cell needs at least 3 points (x, y)")
    inside = rasterise_polygons({1: polygon}, labels.shape) > 0
    if not inside.any():
        raise EditError("the drawn shape covers no pixel of the image")
    new_id = _new_id(labels, new_id)
    covered = np.unique(labels[inside])
    edited = np.array(labels, copy=True)
    edited[inside] = new_id
    # Only the cells it covered can have been cut in pieces; the others stay exactly as they were.
    return tidy_labels(edited, in_place=True, ids=covered[covered > 0]), new_id


def split_cell(labels: np.ndarray, cell_id: int, line: np.ndarray, *, new_id: int | None = None,
               ) -> tuple[np.ndarray, list[int]]:
    """The labels with cell ``cell_id`` cut in two (or more) along a drawn line ((n, 2) ``x, y``).

    The line must cross the cell from border to border. The largest part keeps
    the id, the others get new ones from ``new_id`` on (default: one more than
    the largest); the pixels under the line go to the part beside them.

    Returns
    -------
    labels, and the ids of the parts (``cell_id`` first)

    Raises
    ------
    EditError
        No such cell, a line of fewer than 2 points, or one that leaves the cell in one piece.
    """
    (cell_id,) = _existing(labels, [cell_id])
    line = np.asarray(line, float)
    if line.ndim != 2 or line.shape[1] != 2 or len(line) < 2:
        raise EditError("a split line needs at least 2 points (x, y)")
    cut = np.zeros(labels.shape, bool)
    # Pixel-edge x, y -> the row and column of the pixel under each point.
    rows = np.clip(np.floor(line[:, 1]), 0, labels.shape[0] - 1).astype(int)
    cols = np.clip(np.floor(line[:, 0]), 0, labels.shape[1] - 1).astype(int)
    for r0, c0, r1, c1 in zip(rows[:-1], cols[:-1], rows[1:], cols[1:]):
        rr, cc = draw.line(r0, c0, r1, c1)
        cut[rr, cc] = True
    cell = labels == cell_id
    # 4-connected parts once the line (8-connected, so it leaks no 4-connected path) is taken out.
    parts, n = ndi.label(cell & ~cut)
    if n < 2:
        raise EditError(f"the line does not cut cell {cell_id} in two: draw it across the cell, from border to border")
    sizes = np.bincount(parts.ravel())[1:]
    order = np.argsort(-sizes, kind="stable") + 1  # largest part first
    edited = np.array(labels, copy=True)
    next_id = _new_id(labels, new_id)
    new_ids = [cell_id]
    for rank, part in enumerate(order):
        part_id = cell_id if rank == 0 else next_id + rank - 1
        edited[parts == part] = part_id
        if rank:
            new_ids.append(part_id)
    # The line's own pixels of the cell go to the nearest part.
    on_line = cell & cut
    if on_line.any():
        box = ndi.find_objects(cell.astype(np.uint8))[0]  # within the cell's box: the cost of the cell, not the image
        rows_in, cols_in = ndi.distance_transform_edt(~(cell & ~cut)[box], return_distances=False,
                                                      return_indices=True)
        window = edited[box]
        line_here = on_line[box]
        window[line_here] = window[rows_in[line_here], cols_in[line_here]]
    return edited, new_ids


def _new_id(labels: np.ndarray, new_id: int | None) -> int:
    """``new_id``, checked to be free, or one more than the largest id."""
    if new_id is None:
        return int(labels.max(initial=0)) + 1
    if new_id <= 0 or (labels == new_id).any():
        raise EditError(f"id {new_id} is taken or not a positive number")
    return int(new_id)


def _existing(labels: np.ndarray, cell_ids: Iterable[int]) -> np.ndarray:
    """``cell_ids`` sorted and unique, checked to be cells of ``labels``."""
    ids = np.unique(np.asarray(list(cell_ids), dtype=np.int64))
    present = np.zeros(int(labels.max(initial=0)) + 1, bool)
    present[np.unique(labels)] = True
    present[0] = False
    missing = [int(i) for i in ids if i <= 0 or i >= present.size or not present[i]]
    if missing:
        raise EditError(f"no cell {', '.join(map(str, missing))} in these labels "
                        f"({int(present.sum())} cells, ids up to {present.size - 1})")
    return ids


#: The operations :func:`apply_edit` knows, with what each needs.
OPERATIONS = ("delete", "merge", "draw", "split")


def apply_edit(labels: np.ndarray, operation: str, *, cells: Iterable[int] = (), points: np.ndarray | None = None,
               new_id: int | None = None) -> tuple[np.ndarray, str, list[int]]:
    """One edit by name: the new labels, what it did in words, and the ids of the cells it made.

    ``operation``: "delete" or "merge" (``cells``), "draw" (``points``: the outline), "split"
    (``cells``: the one cell, ``points``: the line).
    """
    cells = [int(c) for c in cells]
    if operation == "delete":
        return delete_cells(labels, cells), f"deleted cell{'s' if len(cells) > 1 else ''} {_listed(cells)}", []
    if operation == "merge":
        edited, merged = merge_cells(labels, cells)
        return edited, f"merged cells {_listed(sorted(set(cells)))} into cell {merged}", []
    if operation == "draw":
        edited, drawn = draw_cell(labels, points if points is not None else np.zeros((0, 2)), new_id=new_id)
        return edited, f"drew cell {drawn}", [drawn]
    if operation == "split":
        if len(cells) != 1:
            raise EditError("splitting needs exactly one cell")
        edited, parts = split_cell(labels, cells[0], points if points is not None else np.zeros((0, 2)),
                                   new_id=new_id)
        return edited, f"split cell {cells[0]} into cells {_listed(parts)}", parts[1:]
    raise EditError(f"unknown edit {operation!r} (one of {', '.join(OPERATIONS)})")


def cell_under(labels: np.ndarray, polygon: np.ndarray) -> int:
    """The cell that covers most of the pixels inside ``polygon`` ((n, 2) ``x, y``): the one a shape drawn
    on it means.

    Raises
    ------
    EditError
        A polygon of fewer than 3 points, or one over no cell.
    """
    polygon = np.asarray(polygon, float)
    if polygon.ndim != 2 or polygon.shape[1] != 2 or len(polygon) < 3:
        raise EditError("draw a shape of at least 3 points (x, y) over the cell")
    inside = rasterise_polygons({1: polygon}, labels.shape) > 0
    counts = np.bincount(labels[inside].ravel(), minlength=1)
    counts[0] = 0
    if not counts.any():
        raise EditError("the shape covers no cell: draw it over the cell to split")
    return int(np.argmax(counts))


def selection_cells(selection) -> list[int]:
    """The cell ids a person selected in :func:`bbbcore.overlay.cells_figure` (a Streamlit plotly
    selection: markers clicked, boxed or lassoed), in the order shown."""
    found = []
    for point in (selection or {}).get("points", []) or []:
        value = point.get("customdata")
        value = value[0] if isinstance(value, (list, tuple)) and value else value
        if isinstance(value, (int, float, np.integer)) and not isinstance(value, bool) and int(value) == value:
            found.append(int(value))
    return sorted(set(found))


def selection_outline(selection) -> np.ndarray | None:
    """The last lasso drawn in a Streamlit plotly selection, (n, 2) ``x, y`` (None when there is none)."""
    lassos = (selection or {}).get("lasso", []) or []
    if not lassos:
        return None
    last = lassos[-1]
    outline = np.column_stack([np.asarray(last.get("x", []), float), np.asarray(last.get("y", []), float)])
    finite = np.isfinite(outline).all(axis=1)
    return outline[finite] if finite.sum() >= 3 else None


def edit_from_selection(labels: np.ndarray, action: str, selection) -> dict:
    """What a person's selection in the editing view asks for: :func:`apply_edit`'s arguments.

    ``action``: "delete" or "merge" (the selected cells), "draw" (a new cell: the last lasso),
    "split" (the cell under the last lasso is cut along the lasso's outline: the part inside
    becomes a new cell). Returns ``{"operation", "cells", "points"}``.

    Raises
    ------
    EditError
        The selection does not hold what the action needs (said so the person knows what to do).
    """
    if action in ("delete", "merge"):
        cells = selection_cells(selection)
        wanted = 1 if action == "delete" else 2
        if len(cells) < wanted:
            raise EditError(f"select {'a cell' if wanted == 1 else 'two or more touching cells'} first: click a "
                            "cell's dot, or draw a box or lasso around the dots")
        return {"operation": action, "cells": cells, "points": None}
    if action in ("draw", "split"):
        outline = selection_outline(selection)
        if outline is None:
            raise EditError("draw a lasso first: choose the lasso tool above the picture and draw "
                            + ("the new cell's outline" if action == "draw" else "around the part to cut off"))
        if action == "draw":
            return {"operation": "draw", "cells": [], "points": outline}
        closed = np.vstack([outline, outline[:1]])  # the whole outline is the cut
        return {"operation": "split", "cells": [cell_under(labels, outline)], "points": closed}
    raise EditError(f"unknown edit {action!r} (one of {', '.join(OPERATIONS)})")


def selection_view(labels: np.ndarray, selection, *, margin: float = 0.25,
                   least: int = 64) -> tuple[float, float, float, float] | None:
    """A window around what is selected (cells and the last lasso), ``(x0, x1, y0, y1)`` in pixels, to
    zoom the editing view on; None when nothing is selected.

    ``margin``: added on each side, as a fraction of the window; ``least``: the smallest side, px.
    """
    from scipy import ndimage as ndi

    xs, ys = [], []
    cells = selection_cells(selection)
    if cells:
        boxes = ndi.find_objects(np.where(np.isin(labels, cells), labels, 0))
        for box in (b for b in boxes if b is not None):
            ys += [box[0].start, box[0].stop]
            xs += [box[1].start, box[1].stop]
    outline = selection_outline(selection)
    if outline is not None:
        xs += [float(outline[:, 0].min()), float(outline[:, 0].max())]
        ys += [float(outline[:, 1].min()), float(outline[:, 1].max())]
    if not xs:
        return None
    height, width = labels.shape
    window = []
    for low, high, size in ((min(xs), max(xs), width), (min(ys), max(ys), height)):
        pad = max((high - low) * margin, (least - (high - low)) / 2, 0)
        window += [max(0.0, low - pad), min(float(size), high + pad)]
    return window[0], window[1], window[2], window[3]


def touched_cells(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Ids of ``after`` whose pixels an edit changed, or that lost pixels to it (a cell a drawn one cut)."""
    changed = before != after
    ids = np.union1d(np.unique(after[changed]), np.unique(before[changed]))
    present = np.unique(after)
    return np.intersect1d(ids[ids > 0], present)


def _listed(ids) -> str:
    return ", ".join(str(int(i)) for i in ids)
