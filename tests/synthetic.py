"""Realistic synthetic test images made in code."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree
from skimage import segmentation


def png_bytes(array: np.ndarray) -> bytes:
    """An array as the bytes of a PNG file (what an upload or a file on disk holds)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


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


#: The irregular kinds :func:`cell_population` draws: shape changes and size outliers.
IRREGULAR_KINDS = ("elongated", "concave", "fragmented", "large", "small")


def cell_population(n_cells=600, *, anomalous_fraction=0.08, seed=0, canvas=96,
                    kinds=("elongated", "concave", "fragmented")):
    """Cells drawn one by one with a known truth: regular convex polygon-like cells and a
    known share of irregular ones, measured by cells_table.

    ``kinds`` are the irregular kinds drawn (each irregular cell one of them, at random):
    "elongated" (same area, aspect 2.2-3.5), "concave" (a star), "fragmented" (bites out of
    the border), "large" (a regular cell 1.7-1.9x as wide) and "small" (0.4-0.5x as wide).

    Returns
    -------
    cells : DataFrame, one row per cell (``touches_edge`` all False)
    truth : (n,) bool, True for the irregular cells
    kinds : (n,) str, "regular" or the irregular kind
    """
    from skimage import draw

    from bbbcore.features import cells_table

    rng = np.random.default_rng(seed)
    n_odd = int(round(anomalous_fraction * n_cells))
    kinds = np.array(["regular"] * (n_cells - n_odd) + list(rng.choice(list(kinds), n_odd)))
    rng.shuffle(kinds)
    side = int(np.ceil(np.sqrt(n_cells)))
    labels = np.zeros((side * canvas, side * canvas), np.int32)
    centre = canvas / 2
    for index, kind in enumerate(kinds):
        radius = rng.normal(22, 2.5)
        if kind in ("large", "small"):  # a regular shape, far off the usual size
            radius = 22 * (rng.uniform(1.7, 1.9) if kind == "large" else rng.uniform(0.4, 0.5))
        k = int(rng.integers(5, 8))
        angles = np.arange(k) * 2 * np.pi / k + rng.uniform(0, 2 * np.pi) + rng.uniform(-0.15, 0.15, k)
        radii = radius * rng.uniform(0.92, 1.08, k)
        if kind == "concave":  # a star: notches between the corners
            mid = angles + np.pi / k
            angles = np.ravel(np.column_stack([angles, mid]))
            radii = np.ravel(np.column_stack([radii * 1.15, radii * rng.uniform(0.35, 0.55, k)]))
        x, y = radii * np.cos(angles), radii * np.sin(angles)
        if kind == "elongated":  # same area, aspect 2.2-3.5, any direction
            factor = rng.uniform(2.2, 3.5)
            turn = rng.uniform(0, np.pi)
            u, v = x * np.sqrt(factor), y / np.sqrt(factor)
            x, y = u * np.cos(turn) - v * np.sin(turn), u * np.sin(turn) + v * np.cos(turn)
        mask = np.zeros((canvas, canvas), bool)
        rows, cols = draw.polygon(centre + y, centre + x, shape=mask.shape)
        mask[rows, cols] = True
        if kind == "fragmented":  # ragged: bites taken out of the border
            for _ in range(int(rng.integers(4, 8))):
                theta = rng.uniform(0, 2 * np.pi)
                rr, cc = draw.disk((centre + radius * np.sin(theta), centre + radius * np.cos(theta)),
                                   radius * rng.uniform(0.3, 0.5), shape=mask.shape)
                mask[rr, cc] = False
            pieces, count = ndi.label(mask)
            if count > 1:  # keep the largest piece: one cell, one object
                mask = pieces == (np.argmax(np.bincount(pieces.ravel())[1:]) + 1)
        top, left = (index // side) * canvas, (index % side) * canvas
        block = labels[top:top + canvas, left:left + canvas]
        block[mask] = index + 1
    cells = cells_table(labels)
    truth = kinds[cells["cell_id"].to_numpy() - 1] != "regular"
    return cells, truth, kinds[cells["cell_id"].to_numpy() - 1]
