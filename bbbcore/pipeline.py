"""One image through the named stages: predict -> labels from maps -> measure.

::

    maps = predict(image, model)                                   # network maps on its grid
    labels = labels_from_maps(maps, image, settings, ...)          # bbbcore.instances
    cells = measure_labels(labels, image=image)                    # one row per cell

:func:`segment_image` composes them and returns an :class:`ImageResult`,
the one type an image's result has everywhere (CLI, session, store).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import config
from .export import read_labels_tiff, write_labels_tiff  # noqa: F401  (re-exported)
from .features import image_record, measure_cells
from .instances import WatershedSettings, labels_from_maps
from .io import NO_SIGNAL, LoadedImage, normalise
from .metadata import output_stem
from .resize import resize_to

#: Added to an image's source when its cells were corrected by hand (:meth:`ImageResult.corrected_by_hand`).
CORRECTED_BY_HAND = "corrected by hand"


@dataclass
class ImageResult:
    """One image's cells and what produced them.

    Attributes
    ----------
    image : LoadedImage
    labels : (H, W) int32, one id per cell, 0 = no cell
    cells : DataFrame, one row per cell
    pixel_size_um : float or None, the pixel size the µm columns use
    model_name, model_version : str, the model that drew the cells ("" when none did)
    source : str, where the cells came from, in words ("model bbb_unet 1.3", "labels file x.tif")
    seconds : float, time it took
    timings : dict of seconds per stage
    maps : dict of the network's output maps on its own grid (empty when no model ran)
    warnings : list of one-line messages about the result (e.g. a blank image)
    diameter_estimated_px, diameter_used_px : float or None, the cell diameter estimated from the image
        and the one it was segmented as having (see :mod:`bbbcore.scale`)
    interfaces : DataFrame or None, one row per pair of touching cells (:mod:`bbbcore.interfaces`); None
        when not measured yet (:meth:`interface_table` measures it then)
    """

    image: LoadedImage
    labels: np.ndarray
    cells: pd.DataFrame
    pixel_size_um: float | None
    model_name: str = ""
    model_version: str = ""
    source: str = ""
    seconds: float = 0.0
    timings: dict = field(default_factory=dict)
    maps: dict = field(default_factory=dict, repr=False)
    warnings: list[str] = field(default_factory=list)
    diameter_estimated_px: float | None = None
    diameter_used_px: float | None = None
    interfaces: pd.DataFrame | None = field(default=None, repr=False)
    _quality: dict | None = field(default=None, repr=False, compare=False)
    _outlines: dict | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.image.name

    @property
    def stem(self) -> str:
        """The file's stem, as per-image output files are named."""
        return output_stem(self.name)

    @property
    def boundary_probability(self) -> np.ndarray | None:
        """The boundary probability at the image's size (None when no model ran)."""
        if "boundary" not in self.maps:
            return None
        return resize_to(self.maps["boundary"], self.image.shape)

    def outlines(self) -> dict:
        """:func:`bbbcore.polygons.cell_polygons` of the labels, computed once (cell id -> (n, 2) x, y)."""
        if self._outlines is None:
            from .polygons import cell_polygons

            self._outlines = cell_polygons(self.labels)
        return self._outlines

    def interface_table(self) -> pd.DataFrame:
        """The interfaces of the cells, measured now when they were not (an experiment stored before they were)."""
        if self.interfaces is None:
            from .interfaces import cell_interfaces

            self.interfaces = cell_interfaces(self.labels, self.image.junction_raw, pixel_size_um=self.pixel_size_um,
                                              diameter_px=self.diameter_used_px, image=self.name,
                                              image_id=self.image.image_id)
        return self.interfaces

    @property
    def corrected_by_hand(self) -> bool:
        """The cells were corrected by hand (deleted, merged, drawn or split) after the model made them."""
        return CORRECTED_BY_HAND in self.source

    def record(self) -> dict:
        """:func:`bbbcore.features.image_record` of this image, its quality figures included (computed once)."""
        if self._quality is None:
            from .instances import burned_in_mask
            from .quality import image_quality

            self._quality = image_quality(self.image.junction_raw, self.image.junction,
                                          exclude=burned_in_mask(self.image.raw))
        return image_record(self.labels, image=self.name, image_id=self.image.image_id,
                            pixel_size_um=self.pixel_size_um, diameter_estimated_px=self.diameter_estimated_px,
                            diameter_used_px=self.diameter_used_px, quality=self._quality,
                            corrected_by_hand=self.corrected_by_hand)


def model_input(image: LoadedImage, card) -> np.ndarray:
    """The junction plane normalised as the model was trained (its card's percentiles)."""
    if tuple(card.normalise_percentiles) == tuple(config.NORMALISE_PERCENTILES):
        return image.junction
    plane = image.raw if image.raw.ndim == 2 else image.raw[..., image.junction_channel]
    return normalise(plane, tuple(card.normalise_percentiles))


def predict(image: LoadedImage, model, *, zoom: float = 1.0) -> dict[str, np.ndarray]:
    """The network's output maps (``"boundary"``, ``"distance"``) on its working grid, the image resized by ``zoom``."""
    return model.predict_maps(model_input(image, model.card), zoom=zoom, name=image.name, working_scale=True)


def segment_image(
    image: LoadedImage,
    model,
    *,
    pixel_size_um: float | None = None,
    diameter_px: float | None = None,
    use_nuclei: bool = False,
    settings: Mapping[str, float] | None = None,
    sample: Mapping[str, object] | None = None,
    junction_threshold: float | None = None,
) -> ImageResult:
    """Segment and measure one loaded image with a :class:`~bbbcore.unet.BoundaryModel`.

    Parameters
    ----------
    image : LoadedImage
    model : BoundaryModel
    pixel_size_um : float, optional
        Overrides the file's pixel size. It only sets the µm columns: the
        scale the image is segmented at comes from its cells.
    diameter_px : float, optional
        The typical cell diameter in pixels; default: estimated from the image
        (:func:`bbbcore.scale.choose_scale`). The image is resized so its cells
        match the model's training diameter.
    use_nuclei : bool
        Seed the watershed from the nuclear channel when the image has one.
    settings : mapping, optional
        Watershed settings (:class:`~bbbcore.instances.WatershedSettings`), in
        pixels at the model's training scale; they override the card's and
        are rescaled to the network's grid.
    sample : mapping, optional
        Sample fields (:data:`bbbcore.metadata.SAMPLE_FIELDS`) written into the table.
    junction_threshold : float, optional
        See :func:`bbbcore.features.cells_table`.
    """
    prepared = predict_scaled(image, model, diameter_px=diameter_px)
    return finish_segmentation(prepared, model, pixel_size_um=pixel_size_um, use_nuclei=use_nuclei,
                               settings=settings, sample=sample, junction_threshold=junction_threshold)


@dataclass
class Prediction:
    """What :func:`predict_scaled` gives :func:`finish_segmentation`: the network's part of one image."""

    image: LoadedImage
    junction: np.ndarray
    scale: object  # bbbcore.scale.Scale
    maps: dict
    timings: dict


def predict_scaled(image: LoadedImage, model, *, diameter_px: float | None = None) -> Prediction:
    """The network's part of :func:`segment_image`: the diameter estimate and the maps at that scale.

    Separate so a batch can predict the next image (ONNX Runtime releases the GIL) while the
    previous one's watershed and measuring run.
    """
    from .errors import display_name
    from .scale import choose_scale

    started = time.perf_counter()
    junction = model_input(image, model.card)
    scale = choose_scale(junction, model, diameter_px=diameter_px, name=display_name(image.name),
                         nuclei=image.nuclei)
    scaled = time.perf_counter()
    maps = model.predict_maps(junction, zoom=scale.zoom, name=image.name, working_scale=True)
    timings = {"scale_s": scaled - started, "inference_s": time.perf_counter() - scaled}
    return Prediction(image, junction, scale, maps, timings)


def finish_segmentation(
    prepared: Prediction,
    model,
    *,
    pixel_size_um: float | None = None,
    use_nuclei: bool = False,
    settings: Mapping[str, float] | None = None,
    sample: Mapping[str, object] | None = None,
    junction_threshold: float | None = None,
) -> ImageResult:
    """The rest of :func:`segment_image` (same parameters): watershed and measuring on the predicted maps."""
    card, image, scale = model.card, prepared.image, prepared.scale
    size = pixel_size_um if pixel_size_um is not None else image.pixel_size_um
    started = time.perf_counter()
    grid_um = card.pixel_size_um / card.input_scale if card.pixel_size_um else None
    chosen = WatershedSettings.from_card(card, settings).scaled(card.input_scale)
    labels = labels_from_maps(prepared.maps, image, chosen, junction=prepared.junction, seed_from_nuclei=use_nuclei,
                              grid_pixel_size_um=grid_um)
    labelled = time.perf_counter()
    cells, interfaces = measure(labels, image=image, pixel_size_um=size, sample=sample,
                                junction_threshold=junction_threshold, diameter_px=scale.diameter_used_px)
    measured = time.perf_counter()
    timings = {**prepared.timings, "postprocess_s": labelled - started, "measure_s": measured - labelled}
    blank = blank_warning(image, cells)
    # A blank image's own line says more than "no channel holds signal": one line for one problem.
    warnings = [line for line in image.warnings if not (blank and line.endswith(NO_SIGNAL))]
    warnings += blank or ([scale.warning] if scale.warning else [])
    return ImageResult(image, labels, cells, size, model_name=card.name, model_version=card.version,
                       source=f"model {card.name} {card.version}", seconds=sum(timings.values()),
                       timings=timings, maps=prepared.maps, warnings=warnings,
                       diameter_estimated_px=scale.diameter_estimated_px, diameter_used_px=scale.diameter_used_px,
                       interfaces=interfaces)


def blank_warning(image: LoadedImage, cells: pd.DataFrame) -> list[str]:
    """``["<name>: no cells: the image is blank"]`` for an image without contrast, else ``[]``."""
    from .errors import display_name

    plane = image.junction_raw
    if plane.size == 0 or float(np.ptp(plane)) == 0.0:
        return [f"{display_name(image.name)}: no cells: the image is blank (one value everywhere); "
                "check the channel and the exposure"]
    return []


def measure_labels(
    labels: np.ndarray,
    *,
    image: LoadedImage | None = None,
    name: str = "",
    image_id: str = "",
    pixel_size_um: float | None = None,
    sample: Mapping[str, object] | None = None,
    junction_threshold: float | None = None,
    diameter_px: float | None = None,
) -> pd.DataFrame:
    """The cells table of a labels image (:func:`measure` without the interfaces)."""
    return measure(labels, image=image, name=name, image_id=image_id, pixel_size_um=pixel_size_um, sample=sample,
                   junction_threshold=junction_threshold, diameter_px=diameter_px)[0]


def measure(
    labels: np.ndarray,
    *,
    image: LoadedImage | None = None,
    name: str = "",
    image_id: str = "",
    pixel_size_um: float | None = None,
    sample: Mapping[str, object] | None = None,
    junction_threshold: float | None = None,
    diameter_px: float | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Measure a labels image (the model's, corrected in Fiji, or another tool's): its cells and its
    interfaces (:func:`bbbcore.features.measure_cells`; no interface without an image).

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
    diameter_px : float, optional
        The cells' typical diameter (the junction rules' lengths without a pixel size).

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
    if size is not None and not (np.isfinite(size) and size > 0):
        raise ImageReadError(name or (image.name if image is not None else "image"),
                             f"pixel size {size!r} µm/px is not a positive number: give the right one, or none "
                             "(no µm columns)")
    return measure_cells(
        labels,
        junction=image.junction_raw if image is not None else None,
        nuclei=image.nuclei_raw if image is not None else None,
        image=image.name if image is not None else name,
        image_id=image.image_id if image is not None else image_id,
        pixel_size_um=size,
        sample=sample,
        junction_threshold=junction_threshold,
        diameter_px=diameter_px,
    )


def result_from_labels(
    image: LoadedImage,
    labels_data: bytes,
    labels_name: str,
    *,
    pixel_size_um: float | None = None,
    junction_threshold: float | None = None,
) -> ImageResult:
    """An image's result from a labels TIFF (its cells corrected by hand in Fiji).

    Raises
    ------
    ImageReadError
        Not a labels TIFF, or not the image's height and width.
    """
    from .errors import ImageReadError

    started = time.perf_counter()
    if not labels_data:
        raise ImageReadError(labels_name, "the file is empty (0 bytes)")
    try:
        labels = read_labels_tiff(labels_data)
    except Exception as exc:  # tifffile raises many kinds for non-TIFF bytes
        raise ImageReadError(labels_name, f"not a readable labels TIFF ({type(exc).__name__}: {exc})") from None
    size = pixel_size_um if pixel_size_um is not None else image.pixel_size_um
    cells, interfaces = measure(labels, image=image, name=labels_name, pixel_size_um=size,
                                junction_threshold=junction_threshold)
    return ImageResult(image, labels, cells, size, source=f"labels file {labels_name}",
                       seconds=time.perf_counter() - started, interfaces=interfaces)
