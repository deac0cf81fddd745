"""Pictures of a segmentation: outlines drawn over the image."""

from __future__ import annotations

import numpy as np
from skimage import segmentation

from .instances import touches_edge

#: Outline colours (RGB, 0-255).
CELL_COLOUR = (255, 221, 0)
EDGE_CELL_COLOUR = (0, 170, 255)


def overlay_outlines(
    junction: np.ndarray,
    labels: np.ndarray,
    *,
    colour: tuple[int, int, int] = CELL_COLOUR,
    edge_colour: tuple[int, int, int] = EDGE_CELL_COLOUR,
    thickness: int = 1,
) -> np.ndarray:
    """RGB uint8 picture: the normalised junction channel in gray, cell outlines on top.

    Cells touching the image edge are drawn in ``edge_colour``.
    """
    gray = (np.clip(junction, 0, 1) * 255).astype(np.uint8)
    picture = np.repeat(gray[..., None], 3, axis=-1)
    edges = segmentation.find_boundaries(labels, mode="inner")
    if thickness > 1:
        from scipy import ndimage as ndi

        edges = ndi.binary_dilation(edges, iterations=thickness - 1) & (labels > 0)
    on_edge = touches_edge(labels)[labels]
    picture[edges & ~on_edge] = colour
    picture[edges & on_edge] = edge_colour
    return picture
