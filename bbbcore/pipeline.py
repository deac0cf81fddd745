"""Image -> boundary probability -> cells -> table, in one call."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .features import cells_table
from .instances import burned_in_mask, cells_from_boundary, scaled_settings
from . import config
from .io import LoadedImage, normalise
from .unet import resize_labels, resize_to


@dataclass
class Segmentation:
    """Everything one image's segmentation produced.

    Attributes
    ----------
    image : LoadedImage
    boundary_probability : (H, W) float32
    cell_distance : (H, W) float32 or None, predicted distance to the border
    labels : (H, W) int32, one id per cell
    cells : DataFrame, one row per cell
    pixel_size_um : float or None, the pixel size used
    timings : dict of seconds per stage
    """

    image: LoadedImage
    boundary_probability: np.ndarray
    cell_distance: np.ndarray | None
    labels: np.ndarray
    cells: pd.DataFrame
    pixel_size_um: float | None
    timings: dict = field(default_factory=dict)


def segment_image(
    image: LoadedImage,
    model,
    *,
    pixel_size_um: float | None = None,
    use_nuclei: bool = False,
    settings: dict | None = None,
    condition: str | None = None,
    dose: float | None = None,
) -> Segmentation:
    """Segment one loaded image with a :class:`~bbbcore.unet.BoundaryModel`.

    Parameters
    ----------
    image : LoadedImage
    model : BoundaryModel
    pixel_size_um : float, optional
        Overrides the file's pixel size. When neither is known the image is
        taken to be at the model's pixel size.
    use_nuclei : bool
        Seed the watershed from the nuclear channel when the image has one.
    settings : dict, optional
        Watershed settings (see :data:`bbbcore.instances.DEFAULT_SETTINGS`),
        in pixels at the model's training pixel size; they override the card's
        and are rescaled to the network's grid.
    condition, dose : optional
        Written into the table.
    """
    size = pixel_size_um if pixel_size_um is not None else image.pixel_size_um
    timings = {}
    started = time.perf_counter()
    # The watershed runs on the network's grid (4x fewer pixels at 10x) and
    # its labels are mapped back to the image's own grid.
    junction = image.junction
    if tuple(model.card.normalise_percentiles) != tuple(config.NORMALISE_PERCENTILES):
        plane = image.raw if image.raw.ndim == 2 else image.raw[..., image.junction_channel]
        junction = normalise(plane, tuple(model.card.normalise_percentiles))
    maps = model.predict_maps(junction, size, name=image.name, working_scale=True)
    timings["inference_s"] = time.perf_counter() - started
    started = time.perf_counter()
    small_shape = maps["boundary"].shape
    chosen = scaled_settings({**model.card.thresholds, **(settings or {})}, model.card.input_scale)
    exclude = resize_labels(burned_in_mask(image.raw), small_shape)
    nuclei = resize_to(image.nuclei, small_shape, antialias=True) if use_nuclei and image.nuclei is not None else None
    small_labels = cells_from_boundary(
        maps["boundary"], cell_distance=maps.get("distance"), nuclei=nuclei, exclude=exclude,
        intensity=resize_to(junction, small_shape, antialias=True),
        **chosen,
    )
    labels = resize_labels(small_labels, image.shape)
    probability = resize_to(maps["boundary"], image.shape)
    distance = resize_to(maps["distance"], image.shape) if "distance" in maps else None
    timings["postprocess_s"] = time.perf_counter() - started
    started = time.perf_counter()
    table = cells_table(
        labels, image=image.name, image_id=image.image_id, pixel_size_um=size, condition=condition, dose=dose
    )
    timings["measure_s"] = time.perf_counter() - started
    return Segmentation(image, probability, distance, labels, table, size, timings)


def write_labels_tiff(path: str | Path, labels: np.ndarray, *, pixel_size_um: float | None = None) -> Path:
    """Write a labels image Fiji opens with the right values.

    16-bit when the ids fit, else 32-bit float (exact up to 2**24 ids);
    ImageJ metadata carry the pixel size in µm when known.
    """
    import tifffile

    path = Path(path)
    if labels.max() < 2**16:
        data = labels.astype(np.uint16)
    else:
        data = labels.astype(np.float32)
    kwargs = {}
    if pixel_size_um:
        kwargs = {"resolution": (1 / pixel_size_um, 1 / pixel_size_um), "metadata": {"unit": "um"}}
    tifffile.imwrite(path, data, imagej=True, compression="zlib", **kwargs)
    return path


def read_labels_tiff(path: str | Path) -> np.ndarray:
    """Read a labels TIFF (as written by :func:`write_labels_tiff` or Fiji)."""
    import tifffile

    data = tifffile.imread(path)
    return np.asarray(np.squeeze(data)).astype(np.int32)
