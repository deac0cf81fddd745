"""Classical baseline: what a careful CellProfiler / Fiji user would build.

Steps: background subtraction (a large Gaussian), a multi-scale ridge filter
(Sato tubeness, bright ridges) that lights up the thin ZO-1 lines, a
percentile scaling into a [0, 1] "border" map, then a seeded watershed on it.
Seeds are one of: the border-free basins (h-maxima of their distance to a
border, as the model's fallback uses); the nuclei, the bright blobs of these
images (a Gaussian-smoothed image thresholded by Otsu); or the regional
minima of the smoothed ridge map deeper than a ``dynamic`` (MorphoLibJ's
"Morphological Segmentation" in Fiji, the tool such a user reaches for).
Neighbours whose shared border shows no ridge are merged, and a cell holding no
nucleus joins its neighbour across a weak border (as in the U-Net pipeline). The parameters are tuned by :func:`tune` with a grid
search on the two annotated images, which favours the baseline (it sees the
images it is scored on).

Run ``python benchmarks/classical.py`` to re-tune and print the scores.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from skimage import filters

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bbbcore.instances import WatershedSettings, burned_in_mask, labels_from_maps  # noqa: E402
from bbbcore.io import LoadedImage  # noqa: E402

#: Chosen by ``tune`` (see benchmarks/README.md for the grid and its scores).
TUNED = {"sigmas": (1.0, 2.0, 3.0), "threshold": 0.2, "marker_erosion": 4.0, "marker_h": 10.0, "smoothing_sigma": 2.0,
         "seeds": "basins", "merge_threshold": 0.3, "dynamic": 0.1, "nucleus_check": True}


def ridge_map(junction: np.ndarray, *, sigmas=(1.0, 2.0, 3.0), background_sigma: float = 30.0) -> np.ndarray:
    """Ridge (tubeness) response of the junction channel scaled to [0, 1]."""
    image = np.asarray(junction, dtype=np.float32)
    flat = image - ndi.gaussian_filter(image, background_sigma)
    ridges = filters.sato(flat, sigmas=sigmas, black_ridges=False)
    high = np.percentile(ridges, 99.5)
    return np.clip(ridges / max(high, 1e-6), 0, 1).astype(np.float32)


def nuclei_map(junction: np.ndarray) -> np.ndarray:
    """Nuclei as a [0, 1] map: the smoothed image, bright blobs stand out."""
    smooth = ndi.gaussian_filter(np.asarray(junction, np.float32), 4)
    return (smooth - smooth.min()) / max(float(np.ptp(smooth)), 1e-6)


def classical_segment(
    junction: np.ndarray, raw: np.ndarray | None = None, *, border: np.ndarray | None = None, **params
) -> np.ndarray:
    """Labels image from the classical pipeline with ``TUNED`` (or given) parameters.

    The ridge map stands in for the network's boundary map and goes through the
    U-Net pipeline's own labels stage (:func:`bbbcore.instances.labels_from_maps`)
    on the image's grid, with the defaults for the settings not tuned here. With
    ``nucleus_check`` a cell holding no nucleus joins its neighbour across a weak
    border, as there.
    """
    p = {**TUNED, **params}
    if border is None:
        border = ridge_map(junction, sigmas=p["sigmas"])
    if p["seeds"] == "hminima":
        return morphological_segmentation(border, raw, dynamic=p["dynamic"], smoothing_sigma=p["smoothing_sigma"],
                                          merge_threshold=p["merge_threshold"])
    settings = WatershedSettings(
        threshold=p["threshold"], marker_erosion=p["marker_erosion"], marker_h=p["marker_h"],
        smoothing_sigma=p["smoothing_sigma"], merge_threshold=p["merge_threshold"],
        empty_fraction=0.0,  # tuned without the empty-region step
        nucleus_merge_threshold=WatershedSettings.nucleus_merge_threshold if p["nucleus_check"] else 0.0,
        nucleus_max_boundary=1.0,  # the ridge map is no probability: nuclei light it up too
    )
    image = LoadedImage(name="classical", image_id="", raw=junction if raw is None else raw, junction=junction,
                        nuclei=None, pixel_size_um=None)
    return labels_from_maps({"boundary": border}, image, settings, junction=junction,
                            nuclei=nuclei_map(junction) if p["seeds"] == "nuclei" else None,
                            seed_from_nuclei=p["seeds"] == "nuclei")


def morphological_segmentation(border, raw=None, *, dynamic=0.1, smoothing_sigma=4.0, merge_threshold=0.0,
                               min_cell_area=1200):
    """Watershed of the smoothed ridge map from its minima deeper than ``dynamic``."""
    from skimage import measure, morphology, segmentation

    from bbbcore.instances import merge_weak_borders

    elevation = ndi.gaussian_filter(border, smoothing_sigma)
    markers = measure.label(morphology.h_minima(elevation, dynamic))
    exclude = None if raw is None else burned_in_mask(raw)
    if exclude is not None:
        markers[exclude] = 0
    labels = segmentation.watershed(elevation, markers)
    if merge_threshold > 0:
        labels = merge_weak_borders(labels, border, merge_threshold)
    areas = np.bincount(labels.ravel())
    small = np.isin(labels, np.flatnonzero(areas < min_cell_area))
    labels = segmentation.watershed(elevation, np.where(small, 0, labels))  # small ones join neighbours
    if exclude is not None:
        labels[exclude] = 0
    return segmentation.relabel_sequential(labels)[0].astype(np.int32)


def tune(cases, grid=None):
    """Grid search: mean F1 at IoU 0.5 over ``cases`` [(junction, raw, truth)]."""
    from bbbcore.metrics import score_segmentation

    grid = grid or {
        "sigmas": [(1.0, 2.0, 3.0)],
        "seeds": ["hminima"],
        "dynamic": [0.05, 0.1, 0.2, 0.3],
        "smoothing_sigma": [2.0, 4.0, 6.0],
        "merge_threshold": [0.0, 0.2],
    }
    ridge_cache = {}
    results = []
    keys = list(grid)
    for values in itertools.product(*grid.values()):
        p = dict(zip(keys, values))
        f1s = []
        for i, (junction, raw, truth) in enumerate(cases):
            key = (i, p["sigmas"])
            if key not in ridge_cache:
                ridge_cache[key] = ridge_map(junction, sigmas=p["sigmas"])
            labels = classical_segment(junction, raw, border=ridge_cache[key], **p)
            f1s.append(score_segmentation(truth, labels, n_bootstrap=0)["f1@0.5"])
        results.append((float(np.mean(f1s)), p, f1s))
    results.sort(key=lambda r: -r[0])
    return results


if __name__ == "__main__":
    from bbbcore.annotations import read_truth_cells
    from bbbcore.io import load_image

    data = Path(__file__).resolve().parents[2] / "shared" / "data" / "bbb" / "train"
    cases = []
    for stem, outline in [("bbb_01", "bbb_01.outline.annotator_a.png"), ("bbb_02", "bbb_02.outline.png")]:
        image = load_image(data / f"{stem}.png")
        cases.append((image.junction, image.raw, read_truth_cells(data / outline)))
    # The first grid (72 settings of basin / nuclei seeds, run on this machine)
    # peaked at mean F1@0.5 0.216 (basins, threshold 0.2, marker_h 10, merge
    # 0.3); this grid tries the MorphoLibJ-style h-minima watershed.
    ranked = tune(cases)
    print(f"{len(ranked)} settings tried on {len(cases)} images")
    for mean_f1, params, f1s in ranked[:10]:
        print(f"mean F1@0.5 {mean_f1:.3f}  per image {[round(f, 3) for f in f1s]}  {params}")
