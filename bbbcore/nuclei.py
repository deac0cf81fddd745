"""Nuclei: from a DAPI channel, or the bright ovals of a ZO-1 image that has none.

Used by the watershed (a cell holding no nucleus is a piece of a neighbour)
and by the ``nuclei_count`` column.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage import filters, morphology

from . import config


def find_nuclei(nuclei: np.ndarray, *, pixel_size_um: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Nuclei: Otsu's threshold of the smoothed nuclear channel, specks dropped.

    Found on every other row and column (a nucleus is 15 px or more across at
    10x, so nothing is lost, at a quarter of the cost).

    Returns
    -------
    mask : (H, W) bool, the nuclei at full size
    centres : (n, 2) float, row and column of each nucleus' centre
    """
    shape = np.shape(nuclei)
    # Every other pixel taken before the float copy: a 48 MP plane's float32 copy is 0.2 GB.
    small = ndi.gaussian_filter(np.asarray(nuclei[::2, ::2], np.float32), 0.5, truncate=2.0)
    if np.ptp(small) == 0:
        return np.zeros(shape, bool), np.zeros((0, 2))
    mask = small > filters.threshold_otsu(small)
    min_area = config.MIN_NUCLEUS_AREA_UM2 / pixel_size_um**2 if pixel_size_um else config.MIN_NUCLEUS_AREA_PX
    found, n = ndi.label(mask)
    sizes = np.bincount(found.ravel())
    sizes[0] = 0
    keep = sizes >= min_area / 4  # areas counted on the half-size grid
    mask = keep[found]
    rows, cols = np.nonzero(mask)
    which = found[rows, cols]
    count = np.bincount(which, minlength=n + 1)
    kept = np.flatnonzero(keep)
    centres = np.column_stack([
        np.bincount(which, weights=rows, minlength=n + 1)[kept] / count[kept],
        np.bincount(which, weights=cols, minlength=n + 1)[kept] / count[kept],
    ]) * 2
    full = np.repeat(np.repeat(mask, 2, axis=0), 2, axis=1)[: shape[0], : shape[1]]
    return full, centres


def count_nuclei(labels: np.ndarray, centres: np.ndarray, *, ids: np.ndarray | None = None) -> np.ndarray:
    """Number of nuclei whose centre (row, column) lies in each cell; touching nuclei count as one."""
    labels = np.asarray(labels)
    ids = np.unique(labels[labels > 0]) if ids is None else np.asarray(ids)
    counts = np.zeros(int(labels.max()) + 1, np.int64)
    if len(centres):
        rows = np.clip(np.round(centres[:, 0]).astype(int), 0, labels.shape[0] - 1)
        cols = np.clip(np.round(centres[:, 1]).astype(int), 0, labels.shape[1] - 1)
        owners = labels[rows, cols]
        counts += np.bincount(owners[owners > 0], minlength=counts.size)
    return counts[ids]


def find_bright_nuclei(plane: np.ndarray, *, pixel_scale: float = 1.0) -> np.ndarray:
    """Nuclei as blobs brighter than the cytoplasm around them: the ovals of a ZO-1 image.

    Used when an image has no nuclear channel (a DAPI channel goes through
    :func:`find_nuclei`, as for the ``nuclei_count`` column).

    A white top-hat: an opening with a 13-px square removes bright structures
    narrower than a nucleus (junction lines, specks), the plane is smoothed
    (sigma 4 px), and its background (an opening with a 61-px square, wider
    than any nucleus) is subtracted, so that bright cytoplasm stays below
    Otsu's threshold. Blobs smaller than 300 px (about 115 µm² at 10x) are
    dropped. Sizes are in pixels at the 10x scale of the shipped model and are
    multiplied by ``pixel_scale`` (its square for the area), as in
    :meth:`bbbcore.instances.WatershedSettings.scaled`. Square openings are separable, hence fast.

    Returns
    -------
    (H, W) bool
    """
    plane = np.asarray(plane, np.float32)
    line_px = 2 * max(1, round(6 * pixel_scale)) + 1
    blobs_only = ndi.grey_opening(plane, size=(line_px, line_px))
    smooth = ndi.gaussian_filter(blobs_only, 4.0 * pixel_scale)
    background_px = 2 * max(1, round(30 * pixel_scale)) + 1
    excess = smooth - ndi.grey_opening(smooth, size=(background_px, background_px))
    if np.ptp(excess) == 0:
        return np.zeros(plane.shape, bool)
    blobs = excess > filters.threshold_otsu(excess)
    return morphology.remove_small_objects(blobs, max_size=max(0, int(300 * pixel_scale**2) - 1))
