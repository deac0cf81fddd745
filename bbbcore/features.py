"""Per-cell measurements: one row per cell, tidy.

Column definitions (pixels unless the name carries a unit):

=====================  ==============================================================
``image``              file name
``image_id``           first 16 hex digits of the SHA-256 of the file's bytes
``cell_id``            the cell's value in the labels image
``area``               pixel count (px²)
``perimeter``          scikit-image ``perimeter`` (4-connected contour length, px)
``aspect_ratio``       bounding-box width / height (the original analysis's definition)
``extent``             area / bounding-box area
``equivalent_diameter`` sqrt(4 area / pi) (px)
``touches_edge``       the cell reaches the image edge (left out of summaries)
``centroid_y/x``       centre of mass (px)
``*_um``, ``*_um2``    the same in µm / µm², only when a pixel size is known
=====================  ==============================================================
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from skimage import measure

from .instances import touches_edge

def cells_table(
    labels: np.ndarray,
    *,
    image: str = "",
    image_id: str = "",
    pixel_size_um: float | None = None,
    condition: str | None = None,
    dose: float | None = None,
) -> pd.DataFrame:
    """Measure every cell of a labels image.

    Parameters
    ----------
    labels : (H, W) int array, 0 = no cell
    image, image_id : str
        Written into every row.
    pixel_size_um : float, optional
        Adds ``area_um2``, ``perimeter_um`` and ``equivalent_diameter_um``.
    condition, dose : optional
        Written into every row when given.

    Returns
    -------
    DataFrame, one row per cell, ordered by ``cell_id``.
    """
    labels = np.asarray(labels)
    props = measure.regionprops_table(
        labels, properties=("label", "area", "perimeter", "bbox", "centroid", "equivalent_diameter_area")
    )
    height = props["bbox-2"] - props["bbox-0"]
    width = props["bbox-3"] - props["bbox-1"]
    area = props["area"].astype(float)
    table = pd.DataFrame(
        {
            "image": image,
            "image_id": image_id,
            "cell_id": props["label"].astype(np.int64),
            "area": area,
            "perimeter": props["perimeter"].astype(float),
            "aspect_ratio": width / np.maximum(height, 1),
            "extent": area / np.maximum(width * height, 1),
            "equivalent_diameter": props["equivalent_diameter_area"].astype(float),
            "touches_edge": touches_edge(labels)[props["label"]] if len(props["label"]) else np.zeros(0, bool),
            "centroid_y": props["centroid-0"],
            "centroid_x": props["centroid-1"],
        }
    )
    if pixel_size_um is not None:
        table["area_um2"] = table["area"] * pixel_size_um**2
        table["perimeter_um"] = table["perimeter"] * pixel_size_um
        table["equivalent_diameter_um"] = table["equivalent_diameter"] * pixel_size_um
    if condition is not None:
        table["condition"] = condition
    if dose is not None:
        table["dose"] = dose
    return table
