"""Realistic synthetic test images made in code."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree
from skimage import segmentation


def voronoi_monolayer(shape=(384, 512), n_cells=40, *, seed=0, border_px=2.0, noise=0.05):
    """A confluent monolayer: Voronoi cells with bright blurred borders.

    Returns
    -------
    dict with ``junction`` (float32 [0,1], borders bright with noise and
    uneven background), ``nuclei`` (float32, one bright blob per cell),
    ``truth`` (int32 labels, every pixel belongs to a cell) and ``border``
    (bool, the drawn border pixels).
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    # Poisson-disc-like seeds: reject points too close, so no cell is tiny.
    min_dist = 0.6 * np.sqrt(h * w / n_cells)
    points = []
    while len(points) < n_cells:
        p = rng.uniform([0, 0], [h, w])
        if all(np.hypot(*(p - q)) >= min_dist for q in points):
            points.append(p)
        if len(points) < n_cells and rng.random() < 1e-4:
            min_dist *= 0.95
    points = np.array(points)
    yy, xx = np.mgrid[0:h, 0:w]
    _, nearest = cKDTree(points).query(np.column_stack([yy.ravel(), xx.ravel()]))
    truth = (nearest.reshape(h, w) + 1).astype(np.int32)
    border = segmentation.find_boundaries(truth, mode="thick")
    junction = ndi.gaussian_filter(border.astype(np.float32), border_px / 2) * 3
    junction += 0.15 * ndi.gaussian_filter(rng.normal(size=shape), 20)  # uneven background
    nuclei = np.zeros(shape, np.float32)
    for y, x in points:
        nuclei += np.exp(-(((yy - y) / 9) ** 2 + ((xx - x) / 12) ** 2))
    junction += 0.25 * nuclei  # nuclei bleed into the junction channel, as in real ZO-1 images
    junction += rng.normal(0, noise, shape)
    junction = (junction - junction.min()) / (junction.max() - junction.min())
    nuclei = np.clip(nuclei + rng.normal(0, noise, shape), 0, 1)
    return {"junction": junction.astype(np.float32), "nuclei": nuclei.astype(np.float32), "truth": truth, "border": border}
