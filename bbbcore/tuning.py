"""Choose a model's watershed settings on its own training images."""

from __future__ import annotations

import itertools

import numpy as np

from .instances import burned_in_mask, cells_from_boundary, scaled_settings
from .metrics import score_segmentation
from .unet import resize_labels

#: Settings searched (pixels at the model's training pixel size).
DEFAULT_GRID = {
    "threshold": [0.3, 0.5, 0.7],
    "distance_threshold": [0.3, 0.45, 0.6],
    "min_cell_area": [1200, 2500],
}


def tune_watershed(model, images, truths, *, grid: dict | None = None) -> tuple[dict, list]:
    """Grid-search the watershed settings that maximise mean F1 at IoU 0.5.

    Parameters
    ----------
    model : BoundaryModel
    images : list of LoadedImage
        The model's own training images (tuning on held-out images would leak).
    truths : list of (H, W) int arrays
        Truth cells of each image.
    grid : dict, optional
        Setting name -> values (default :data:`DEFAULT_GRID`).

    Returns
    -------
    best : dict of the chosen settings
    ranked : list of (mean F1, settings, per-image F1), best first
    """
    grid = grid or DEFAULT_GRID
    prepared = []
    for image in images:
        maps = model.predict_maps(image.junction, image.pixel_size_um, name=image.name, working_scale=True)
        exclude = resize_labels(burned_in_mask(image.raw), maps["boundary"].shape)
        prepared.append((maps, exclude, image.shape))
    ranked = []
    keys = list(grid)
    for values in itertools.product(*grid.values()):
        chosen = dict(zip(keys, values))
        settings = scaled_settings({**model.card.thresholds, **chosen}, model.card.input_scale)
        f1s = []
        for (maps, exclude, shape), truth in zip(prepared, truths):
            small = cells_from_boundary(maps["boundary"], cell_distance=maps.get("distance"), exclude=exclude, **settings)
            f1s.append(score_segmentation(truth, resize_labels(small, shape), n_bootstrap=0)["f1@0.5"])
        ranked.append((float(np.mean(f1s)), chosen, f1s))
    ranked.sort(key=lambda r: -r[0])
    return ranked[0][1], ranked
