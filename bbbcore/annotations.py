"""Truth cells from hand-drawn outline annotations.

One function, :func:`outline_to_cells`, turns an outline image into a labels
image of truth cells. Training, ``evaluate`` and the tests all call it, so the
rules below hold everywhere:

1. Outline pixels are the non-zero pixels of the annotation (1-px polygons).
2. Candidate cells are the 4-connected regions of non-outline pixels.
3. The unannotated remainder is dropped: every region larger than
   ``max_area_fraction`` of the image (un-drawn space that leaks around the
   annotated cells and out of the frame; the largest annotated BBB cell is
   5.7 % of a 1344 x 1024 frame, the remainder 11-44 %).
4. Slivers (the thin gap between two neighbours' double line) are dropped: a
   region whose largest inscribed disc has a radius below ``min_thickness`` px.
5. Specks are dropped: regions smaller than ``min_area`` px (at 10x a BBB
   cell is 5,800 px or more; the slivers and specks of the shared annotations
   are all below 2,600 px).
6. The outline pixels, dropped slivers, and unknown pixels lying within
   ``outline_reach`` px of two different cells are given to the nearest kept
   cell, so annotated neighbours touch, as model cells do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from skimage import measure, segmentation

from .errors import AnnotationError

#: Thresholds of the truth-cell rule (pixels at the annotation's own scale).
OUTLINE_RULES = {
    "min_area": 3000,
    "min_thickness": 6.0,
    "max_area_fraction": 0.08,
    "outline_reach": 4,
}


def outline_to_cells(
    outline: np.ndarray,
    *,
    min_area: int = OUTLINE_RULES["min_area"],
    min_thickness: float = OUTLINE_RULES["min_thickness"],
    max_area_fraction: float = OUTLINE_RULES["max_area_fraction"],
    outline_reach: int = OUTLINE_RULES["outline_reach"],
) -> np.ndarray:
    """Turn a 1-px outline annotation into a labels image of truth cells.

    Parameters
    ----------
    outline : (H, W) array
        Non-zero on the drawn outlines, zero elsewhere.
    min_area, min_thickness, max_area_fraction, outline_reach
        The thresholds of the rule in the module docstring.

    Returns
    -------
    labels : (H, W) int32 array
        1..N for the truth cells, 0 where the truth is unknown.
    """
    outline = np.asarray(outline)
    if outline.ndim == 3:
        outline = outline.max(axis=-1)
    if outline.ndim != 2:
        raise ValueError(f"outline must be a 2-D image, got shape {outline.shape}")
    drawn = outline > 0
    regions = measure.label(~drawn, connectivity=1)
    n_pixels = drawn.size
    keep = np.zeros(regions.max() + 1, dtype=bool)
    for region in measure.regionprops(regions):
        if region.area > max_area_fraction * n_pixels:
            continue
        if region.area < min_area:
            continue
        crop = np.pad(region.image, 1)
        if ndi.distance_transform_edt(crop).max() < min_thickness:
            continue
        keep[region.label] = True
    cells = np.where(keep[regions], regions, 0)
    cells, _, _ = segmentation.relabel_sequential(cells)
    if outline_reach > 0:
        # Outline pixels and dropped slivers are given to the closest cell, but
        # never spread into the unknown remainder.
        grown = segmentation.expand_labels(cells, distance=outline_reach)
        sizes = np.bincount(regions.ravel())
        sliver = (sizes <= max_area_fraction * n_pixels) & ~keep
        sliver[0] = False
        # Unknown pixels squeezed between two different cells (an open sliver
        # between neighbours' double line) are claimed too.
        size = 2 * outline_reach + 1
        high = ndi.maximum_filter(grown, size=size)
        low = ndi.minimum_filter(np.where(grown > 0, grown, np.iinfo(grown.dtype).max), size=size)
        between = (grown > 0) & (high != low) & (low != np.iinfo(grown.dtype).max)
        claimable = drawn | sliver[regions] | between
        cells = np.where((cells == 0) & claimable, grown, cells)
    return cells.astype(np.int32)


def read_outline(path: str | Path) -> np.ndarray:
    """Read an outline annotation image (PNG/TIFF) as a boolean array."""
    from .io import read_array

    array = read_array(path)
    if array.ndim == 3:
        array = array.max(axis=-1)
    drawn = array > 0
    if not drawn.any():
        raise AnnotationError(Path(path).name, "the annotation has no outline pixels")
    return drawn


def read_truth_cells(path: str | Path, **rules) -> np.ndarray:
    """Read an outline annotation file and return its truth cells."""
    cells = outline_to_cells(read_outline(path), **rules)
    if cells.max() == 0:
        raise AnnotationError(Path(path).name, "no closed cell outline was found")
    return cells
