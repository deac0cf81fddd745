"""Image -> boundary probability -> cells -> table, in one call."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from collections.abc import Mapping

import numpy as np
import pandas as pd

from .export import read_labels_tiff, write_labels_tiff  # noqa: F401  (re-exported)
from .features import cells_table, find_nuclei
from .instances import burned_in_mask, cells_from_boundary, find_bright_nuclei, scaled_settings, tidy_labels
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
    sample: Mapping[str, object] | None = None,
    junction_threshold: float | None = None,
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
    sample : mapping, optional
        ``condition``, ``dose``, ``dose_unit``, ``replicate``, ``well``,
        written into the table.
    junction_threshold : float, optional
        See :func:`bbbcore.features.cells_table`.
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
    small_junction = resize_to(junction, small_shape, antialias=True)
    small_nuclei = resize_to(image.nuclei, small_shape, antialias=True) if image.nuclei is not None else None
    # Nuclei from DAPI when there is a nuclear channel (as the nuclei_count
    # column finds them), else the bright ovals of the ZO-1 image itself;
    # cells holding none are pieces of a neighbour, to be joined.
    nucleus_mask = None
    if chosen["nucleus_merge_threshold"] > 0:
        if small_nuclei is not None:
            grid_um = model.card.pixel_size_um / model.card.input_scale if model.card.pixel_size_um else None
            nucleus_mask, _ = find_nuclei(small_nuclei, pixel_size_um=grid_um)
        else:
            nucleus_mask = find_bright_nuclei(small_junction, pixel_scale=model.card.input_scale)
    small_labels = cells_from_boundary(
        maps["boundary"], cell_distance=maps.get("distance"), nuclei=small_nuclei if use_nuclei else None,
        exclude=exclude, intensity=small_junction, nucleus_mask=nucleus_mask, **chosen,
    )
    labels = tidy_labels(resize_labels(small_labels, image.shape))
    probability = resize_to(maps["boundary"], image.shape)
    distance = resize_to(maps["distance"], image.shape) if "distance" in maps else None
    timings["postprocess_s"] = time.perf_counter() - started
    started = time.perf_counter()
    table = cells_table(
        labels, junction=image.junction_raw, nuclei=image.nuclei_raw, image=image.name,
        image_id=image.image_id, pixel_size_um=size, sample=sample, junction_threshold=junction_threshold,
    )
    timings["measure_s"] = time.perf_counter() - started
    return Segmentation(image, probability, distance, labels, table, size, timings)


def measure_labels(
    labels: np.ndarray,
    *,
    image: LoadedImage | None = None,
    name: str = "",
    image_id: str = "",
    pixel_size_um: float | None = None,
    sample: Mapping[str, object] | None = None,
    junction_threshold: float | None = None,
) -> pd.DataFrame:
    """Measure an existing labels image (corrected in Fiji, or another tool's).

    Parameters
    ----------
    labels : (H, W) int array
    image : LoadedImage, optional
        The image the labels belong to: adds the junction and nuclei columns,
        and gives the table its ``image`` and ``image_id``.
    name, image_id : str
        Used when no image is given (the labels file's name).
    pixel_size_um, sample, junction_threshold
        As for :func:`segment_image`; the pixel size defaults to the image's.

    Raises
    ------
    ImageReadError
        The labels and the image differ in height and width.
    """
    from .errors import ImageReadError

    labels = np.asarray(labels)
    if image is not None and labels.shape != image.shape:
        raise ImageReadError(
            name or image.name,
            f"labels are {labels.shape[1]}x{labels.shape[0]} px but {image.name} is "
            f"{image.shape[1]}x{image.shape[0]} px",
        )
    size = pixel_size_um if pixel_size_um is not None else (image.pixel_size_um if image is not None else None)
    return cells_table(
        labels,
        junction=image.junction_raw if image is not None else None,
        nuclei=image.nuclei_raw if image is not None else None,
        image=image.name if image is not None else name,
        image_id=image.image_id if image is not None else image_id,
        pixel_size_um=size,
        sample=sample,
        junction_threshold=junction_threshold,
    )
