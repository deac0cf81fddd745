"""Per-cell measurements (one row per cell) and per-image summaries.

Every column is defined once, in :data:`COLUMNS` (name -> unit, definition);
``docs/columns.md`` is that table, and a test keeps the two in step. Plain
names are in pixels; with a pixel size, physical columns are added beside
them with the unit in the name (``area_um2``, ``perimeter_um``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
from scipy import ndimage as ndi
from scipy.spatial import ConvexHull, QhullError
from skimage import measure

from . import config
from .instances import inner_boundaries, label_areas, shared_borders, touches_edge
from .interfaces import CELL_COLUMNS as JUNCTION_CELL_COLUMNS
from .interfaces import (
    INTERFACE_COLUMNS,
    JunctionLevels,
    cell_interfaces,
    cell_junction_classes,
    junction_band_px,
    junction_levels,
)
from .metadata import NUMERIC_SAMPLE_FIELDS, TABLE_SAMPLE_FIELDS
from .metadata import SAMPLE_FIELDS as _FIELD_HELP
from .nuclei import count_nuclei, find_nuclei

#: Sample fields carried into every row (the schema is :data:`bbbcore.metadata.SAMPLE_FIELDS`).
SAMPLE_FIELDS = TABLE_SAMPLE_FIELDS

#: name -> (unit, definition). The order is the column order of the tables.
COLUMNS: dict[str, tuple[str, str]] = {
    "image": ("", "file name of the image"),
    "image_id": ("", "first 16 hex digits of the SHA-256 of the file's bytes (two files with one name stay apart)"),
    "cell_id": ("", "the cell's value in the labels image (`<stem>.labels.tif`)"),
    "area": ("px²", "number of pixels of the cell"),
    "perimeter": ("px", "length of the cell's outline (scikit-image `perimeter`, 4-connected contour)"),
    "aspect_ratio": ("", "bounding-box width / bounding-box height (the original analysis's definition)"),
    "extent": ("", "area / bounding-box area"),
    "equivalent_diameter": ("px", "diameter of the disc with the cell's area: sqrt(4 area / pi)"),
    "touches_edge": ("", "the cell reaches the image edge: kept in the table, left out of summaries and statistics"),
    "edited": ("", "the cell was corrected by hand (deleted, merged, drawn or split in the dashboard or with "
                   "`python -m bbbcore edit`); empty or false otherwise"),
    "accepted": ("", "the cell was looked at and accepted as right by hand (it then counts, as edited cells do, as "
                     "truth when the model is taught); empty or false otherwise"),
    "major_axis_length": ("px", "major axis of the ellipse with the cell's second moments"),
    "minor_axis_length": ("px", "minor axis of that ellipse"),
    "elongation": ("", "major_axis_length / minor_axis_length (1 for a disc)"),
    "eccentricity": ("", "eccentricity of that ellipse (0 for a disc, towards 1 when elongated)"),
    "orientation_deg": ("°", "angle of the major axis from the image's x axis, counter-clockwise as displayed, 0-180 (ImageJ's Angle)"),
    "solidity": ("", "area / area of the convex hull of the cell's pixel corners (1 for convex cells; ImageJ's Solidity)"),
    "circularity": ("", "4 pi area / perimeter² (about 0.93 for a pixelated disc with this perimeter; lower for irregular cells)"),
    "feret_diameter_max": ("px", "largest caliper width: the longest distance between two pixel corners of the cell (ImageJ's Feret)"),
    "feret_diameter_min": ("px", "smallest caliper width of the cell's convex hull (ImageJ's MinFeret; rotating calipers)"),
    "centroid_x": ("px", "column of the centre of mass (0 = left edge's first pixel)"),
    "centroid_y": ("px", "row of the centre of mass (0 = top)"),
    "n_neighbours": ("", f"cells sharing a border with this one (touching along >= {config.NEIGHBOUR_MIN_CONTACT_PX} pixel pairs)"),
    "junction_border_mean": ("intensity", "mean junction-channel intensity in the cell's border band, background subtracted (raw units of the file)"),
    "junction_border_integrated": ("intensity·px²", "sum of the background-subtracted junction intensity over the border band"),
    "junction_interior_mean": ("intensity", "mean background-subtracted junction intensity of the cell interior (the cell minus its border band)"),
    "junction_border_to_cytoplasm": ("", "junction_border_mean / the cytoplasm level: the median of the interior, nuclei left out when a nuclear channel exists (empty when the cytoplasm is at background)"),
    "junction_continuity": ("", "share of the cell's measured border (its interfaces and its border facing no cell, not "
                                "the image frame) where junction signal is present; 1 = closed junction (JAnaP's coverage)"),
    "junction_continuous_fraction": ("", "share of the measured border in present stretches at least the continuous "
                                         "length long (3 µm; without a pixel size 3 % of the cell diameter)"),
    "junction_punctate_fraction": ("", "share in shorter present stretches that are not perpendicular (dots)"),
    "junction_perpendicular_fraction": ("", "share in shorter present stretches whose extent across the border is "
                                            "more than 1.2 x their length along it (JAnaP's perpendicular junctions)"),
    "junction_absent_fraction": ("", "share with no junction signal (1 - junction_continuity; JAnaP's discontinuous share)"),
    "n_vertices": ("", "tricellular junctions on the cell's outline (points where three or more cells meet)"),
    "linearity_mean": ("", "mean linearity index of the cell's interfaces (border length / straight distance between "
                           "its two end vertices), weighted by their length: 1 = straight borders"),
    "nuclei_count": ("", "nuclei whose centre lies in the cell (only with a nuclear channel)"),
    "area_um2": ("µm²", "area x pixel size²"),
    "perimeter_um": ("µm", "perimeter x pixel size"),
    "equivalent_diameter_um": ("µm", "equivalent_diameter x pixel size"),
    "major_axis_length_um": ("µm", "major_axis_length x pixel size"),
    "minor_axis_length_um": ("µm", "minor_axis_length x pixel size"),
    "feret_diameter_max_um": ("µm", "feret_diameter_max x pixel size"),
    "feret_diameter_min_um": ("µm", "feret_diameter_min x pixel size"),
    "centroid_x_um": ("µm", "centroid_x x pixel size"),
    "centroid_y_um": ("µm", "centroid_y x pixel size"),
    "pixel_size_um": ("µm/px", "pixel size used for the physical columns (empty when unknown)"),
    "condition": ("", "condition of the image (sample sheet, file name or the user)"),
    "dose": ("", "dose of the treatment, a number (unit in dose_unit)"),
    "dose_unit": ("", "unit of the dose (ng, µM, ...)"),
    "replicate": ("", "biological replicate the image belongs to"),
    "well": ("", "well or dish the image was taken in"),
    **{name: ("px" if name == "diameter_px" else "", _FIELD_HELP[name])
       for name in ("channel", "nuclear_channel", "diameter_px")},
    "annotator": ("", "who drew the cells (imported hand annotations only)"),
    "anomaly_score": ("", "reconstruction error of the cell's standardised shape features by the anomaly autoencoder (after `anomalies` or the Anomalies page)"),
    "is_anomaly": ("", "anomaly_score above the threshold (the chosen share of the fitted cells; the original design: outside the EllipticEnvelope)"),
    "anomaly_code_1": ("", "first coordinate of the cell's 2-D code in the autoencoder"),
    "anomaly_code_2": ("", "second coordinate of the cell's 2-D code"),
}

#: Pixel columns that get a ``_um`` twin with a pixel size (``area`` gets ``area_um2``).
LENGTH_COLUMNS = (
    "perimeter", "equivalent_diameter", "major_axis_length", "minor_axis_length",
    "feret_diameter_max", "feret_diameter_min", "centroid_x", "centroid_y",
)

#: Columns that identify a row rather than measure it (no summary statistics).
ID_COLUMNS = ("image", "image_id", "cell_id", "touches_edge", "edited", "accepted", "pixel_size_um", *SAMPLE_FIELDS, "annotator")

#: Per-image summary columns (before the ``<feature>_mean`` / ``_median`` ones).
SUMMARY_COLUMNS: dict[str, tuple[str, str]] = {
    "n_cells": ("", "cells measured in the image (edge cells left out by default)"),
    "n_edge_excluded": ("", "cells touching the image edge, left out of the summary"),
    "n_edited": ("", "cells of the image corrected by hand (the cells' `edited` column; edge cells included)"),
    "corrected_by_hand": ("", "the image's cells were corrected by hand (any edit, deletions included: then n_edited "
                              "may be 0)"),
    "cells_per_mm2": ("1/mm²", "(cells not at the edge + half the edge cells) / field of view area; empty without a pixel size"),
    "cell_coverage": ("", "fraction of the field of view covered by cells (gaps and burned-in text are not)"),
    "diameter_estimated_px": ("px", "typical cell diameter estimated from the image (empty when it was given)"),
    "diameter_used_px": ("px", "cell diameter the image was segmented as having: it was resized so its cells match "
                               "the model's training diameter (empty for labels made elsewhere)"),
    "<feature>_mean": ("as the feature", "mean of the feature over the image's counted cells"),
    "<feature>_median": ("as the feature", "median of the feature over the image's counted cells"),
}


def edited_cells(cells: pd.DataFrame, column: str = "edited") -> pd.Series:
    """The ``edited`` (or ``accepted``) column as booleans (False where empty: images never corrected, or no
    column at all)."""
    if column not in cells:
        return pd.Series(False, index=cells.index)
    return cells[column].astype("boolean").fillna(False).astype(bool)


#: Pixels above which the intensity and shape columns are measured one after the other, not side by
#: side: on a 48 MP image the two together peaked over 2 GB (issue 17's bound).
ONE_AT_A_TIME_ABOVE_PX = 32_000_000


def cells_table(
    labels: np.ndarray,
    *,
    junction: np.ndarray | None = None,
    nuclei: np.ndarray | None = None,
    image: str = "",
    image_id: str = "",
    pixel_size_um: float | None = None,
    sample: Mapping[str, object] | None = None,
    junction_threshold: float | None = None,
    diameter_px: float | None = None,
) -> pd.DataFrame:
    """Measure every cell of a labels image (:func:`measure_cells` without its interfaces table)."""
    return measure_cells(labels, junction=junction, nuclei=nuclei, image=image, image_id=image_id,
                         pixel_size_um=pixel_size_um, sample=sample, junction_threshold=junction_threshold,
                         diameter_px=diameter_px)[0]


def measure_cells(
    labels: np.ndarray,
    *,
    junction: np.ndarray | None = None,
    nuclei: np.ndarray | None = None,
    image: str = "",
    image_id: str = "",
    pixel_size_um: float | None = None,
    sample: Mapping[str, object] | None = None,
    junction_threshold: float | None = None,
    diameter_px: float | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Measure every cell of a labels image, and every border two cells share.

    Parameters
    ----------
    labels : (H, W) int array, 0 = no cell
    junction : (H, W) array, optional
        The junction channel in the file's own intensity units (not
        normalised); adds the ``junction_*`` columns.
    nuclei : (H, W) array, optional
        The nuclear channel (any scale); adds ``nuclei_count``.
    image, image_id : str
        Written into every row.
    pixel_size_um : float, optional
        Adds the physical columns (``area_um2``, ``perimeter_um``, ...).
    sample : mapping, optional
        ``condition``, ``dose``, ``dose_unit``, ``replicate``, ``well`` of
        the image (missing keys stay empty).
    junction_threshold : float, optional
        Background-subtracted intensity from which junction signal is
        present; default: relative to the cytoplasm of the cells either side
        (see :mod:`bbbcore.interfaces`).
    diameter_px : float, optional
        The cells' typical diameter: without a pixel size, the junction
        rules' lengths are shares of it (default: the cells' median).

    Returns
    -------
    cells : DataFrame, one row per cell, ordered by ``cell_id``, columns in
        :data:`COLUMNS` order.
    interfaces : DataFrame, one row per pair of touching cells
        (:func:`bbbcore.interfaces.cell_interfaces`; no row without ``junction``).
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be 2-D, got shape {labels.shape}")
    labels = labels.astype(np.int32, copy=False)
    outline = inner_boundaries(labels)
    ids = np.flatnonzero(label_areas(labels)[1:]) + 1  # regionprops' order

    interfaces = pd.DataFrame({c: pd.Series(dtype=float) for c in INTERFACE_COLUMNS})

    def intensity_columns():
        nonlocal interfaces
        mask, centres = find_nuclei(nuclei, pixel_size_um=pixel_size_um) if nuclei is not None else (None, None)
        columns = None
        if junction is not None:
            levels = junction_levels(labels, junction, pixel_size_um=pixel_size_um, threshold=junction_threshold,
                                     exclude=mask, outline=outline)
            columns = junction_features(labels, junction, ids=ids, pixel_size_um=pixel_size_um, exclude=mask,
                                        outline=outline, levels=levels)
            # Each border once, with the cell's border facing no cell for its own fractions.
            borders = cell_interfaces(labels, junction, pixel_size_um=pixel_size_um, diameter_px=diameter_px,
                                      threshold=junction_threshold, exclude=mask, image=image, image_id=image_id,
                                      levels=levels, free_borders=True)
            interfaces = borders[borders["cell_b"] != 0].reset_index(drop=True)
            classes = cell_junction_classes(labels, borders, ids=ids)
            columns = pd.concat([columns, classes[[c for c in JUNCTION_CELL_COLUMNS if c in COLUMNS and c != "cell_id"]]], axis=1)
        if centres is not None:
            columns = pd.DataFrame(index=range(len(ids))) if columns is None else columns
            columns["nuclei_count"] = count_nuclei(labels, centres, ids=ids)
        return columns

    # The intensity columns are image filters (scipy.ndimage releases the GIL):
    # they run in a second thread while the shape columns are measured, except on
    # images so large that the two's temporaries together would pass the memory bound.
    wanted = junction is not None or nuclei is not None
    if labels.size > ONE_AT_A_TIME_ABOVE_PX:
        intensity = intensity_columns() if wanted else None
        table = shape_features(labels, outline=outline)
    else:
        with ThreadPoolExecutor(max_workers=1) as pool:
            job = pool.submit(intensity_columns) if wanted else None
            table = shape_features(labels, outline=outline)
            intensity = job.result() if job is not None else None
    if intensity is not None:
        table = pd.concat([table, intensity], axis=1)
    table.insert(0, "image", image)
    table.insert(1, "image_id", image_id)
    if pixel_size_um is not None:
        size = float(pixel_size_um)
        table["area_um2"] = table["area"] * size**2
        for column in LENGTH_COLUMNS:
            table[f"{column}_um"] = table[column] * size
    table["pixel_size_um"] = float(pixel_size_um) if pixel_size_um is not None else np.nan
    sample = dict(sample or {})
    for field in SAMPLE_FIELDS:
        value = sample.get(field)
        table[field] = np.nan if value is None or (isinstance(value, float) and np.isnan(value)) else value
    for field in NUMERIC_SAMPLE_FIELDS:
        if field in table:
            table[field] = pd.to_numeric(table[field], errors="coerce")
    return table[[c for c in COLUMNS if c in table.columns]], interfaces


def shape_features(labels: np.ndarray, *, outline: np.ndarray | None = None) -> pd.DataFrame:
    """Shape columns of every cell (``cell_id`` .. ``n_neighbours``), from regionprops.

    ``outline`` is ``find_boundaries(labels, mode="inner")`` when already computed.
    """
    props = measure.regionprops_table(
        labels,
        properties=(
            "label", "area", "perimeter", "bbox", "centroid", "equivalent_diameter_area",
            "axis_major_length", "axis_minor_length", "eccentricity", "orientation",
        ),
    )
    ids = props["label"].astype(np.int64)
    height = props["bbox-2"] - props["bbox-0"]
    width = props["bbox-3"] - props["bbox-1"]
    area = props["area"].astype(float)
    perimeter = props["perimeter"].astype(float)
    major = props["axis_major_length"].astype(float)
    minor = props["axis_minor_length"].astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        elongation = np.where(minor > 0, major / minor, np.nan)
        circularity = np.where(perimeter > 0, 4 * np.pi * area / perimeter**2, np.nan)
    # skimage: angle between the row axis and the major axis; ImageJ: from
    # the x axis, counter-clockwise on screen, in [0, 180).
    orientation = np.mod(90.0 + np.degrees(props["orientation"]), 180.0)
    edge = touches_edge(labels)[ids] if ids.size else np.zeros(0, bool)
    hull_area, feret_max, feret_min = convex_hull_features(labels, ids, outline=outline)
    return pd.DataFrame(
        {
            "cell_id": ids,
            "area": area,
            "perimeter": perimeter,
            "aspect_ratio": width / np.maximum(height, 1),
            "extent": area / np.maximum(width * height, 1),
            "equivalent_diameter": props["equivalent_diameter_area"].astype(float),
            "touches_edge": edge.astype(bool),
            "major_axis_length": major,
            "minor_axis_length": minor,
            "elongation": elongation,
            "eccentricity": props["eccentricity"].astype(float),
            "orientation_deg": orientation,
            "solidity": np.minimum(area / hull_area, 1.0),
            "circularity": circularity,
            "feret_diameter_max": feret_max,
            "feret_diameter_min": feret_min,
            "centroid_x": props["centroid-1"].astype(float),
            "centroid_y": props["centroid-0"].astype(float),
            "n_neighbours": neighbour_counts(labels, ids),
        }
    )


def convex_hull_features(
    labels: np.ndarray, ids: np.ndarray, *, outline: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Convex hull area and largest and smallest caliper width of each cell.

    As ImageJ measures them: on the convex hull of the corners of the cell's
    outline pixels (scipy's Qhull). scikit-image's ``solidity`` and
    ``feret_diameter_max`` rasterise a hull image per cell, which is several
    times slower and differs by under a pixel; it has no minimum Feret.
    The smallest width comes from rotating calipers: one caliper lies flush
    with a hull edge.

    Returns
    -------
    hull_area (px²), feret_max (px), feret_min (px): arrays aligned with ``ids``.
    """
    n = len(ids)
    hull_area, feret_max, feret_min = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    if n == 0:
        return hull_area, feret_max, feret_min
    outline = inner_boundaries(labels) if outline is None else outline.copy()
    # The hull needs the pixels on the image frame too (no neighbour there).
    outline[0, :] = outline[-1, :] = outline[:, 0] = outline[:, -1] = True
    rows, cols = np.nonzero(outline & (labels > 0))
    owner = labels[rows, cols]
    order = np.argsort(owner, kind="stable")
    rows, cols, owner = rows[order], cols[order], owner[order]
    starts = np.searchsorted(owner, ids, side="left")
    stops = np.searchsorted(owner, ids, side="right")
    corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
    for index, (start, stop) in enumerate(zip(starts, stops)):
        pixels = np.column_stack([cols[start:stop], rows[start:stop]]).astype(float)
        try:
            # The hull of the pixel squares is the hull of the corners of the
            # pixels on the hull of the centres: two small hulls, not one big one.
            centres = pixels[ConvexHull(pixels).vertices] if len(pixels) > 8 else pixels
        except (QhullError, ValueError):  # a straight line of pixels
            centres = pixels
        points = (centres[:, None, :] + corners[None]).reshape(-1, 2)
        try:
            hull = ConvexHull(points)
        except (QhullError, ValueError):  # fewer than 3 distinct corners in a plane
            continue
        vertices = points[hull.vertices]
        hull_area[index] = hull.volume  # in 2-D Qhull's "volume" is the area
        distances = np.linalg.norm(vertices[:, None, :] - vertices[None, :, :], axis=-1)
        feret_max[index] = distances.max()
        edges = np.roll(vertices, -1, axis=0) - vertices
        normals = np.column_stack([-edges[:, 1], edges[:, 0]]) / np.linalg.norm(edges, axis=1)[:, None]
        projections = vertices @ normals.T
        feret_min[index] = (projections.max(axis=0) - projections.min(axis=0)).min()
    return hull_area, feret_max, feret_min


def neighbour_counts(
    labels: np.ndarray, ids: np.ndarray, *, min_contact_px: int = config.NEIGHBOUR_MIN_CONTACT_PX
) -> np.ndarray:
    """Number of cells each cell shares a border with."""
    pairs, _, length = shared_borders(labels, None)
    pairs = pairs[length >= min_contact_px]
    counts = np.bincount(pairs.ravel(), minlength=int(labels.max()) + 1)
    return counts[ids].astype(np.int64)


def junction_features(
    labels: np.ndarray,
    junction: np.ndarray,
    *,
    ids: np.ndarray | None = None,
    pixel_size_um: float | None = None,
    band_px: int | None = None,
    exclude: np.ndarray | None = None,
    outline: np.ndarray | None = None,
    levels: JunctionLevels | None = None,
) -> pd.DataFrame:
    """Junction intensity of each cell: its border band against its interior.

    ``outline`` is ``find_boundaries(labels, mode="inner")`` and ``levels`` is
    :func:`bbbcore.interfaces.junction_levels` when already computed.

    Rules (defaults in :mod:`bbbcore.config`):

    * background = the ``JUNCTION_BACKGROUND_PERCENTILE`` (5th) percentile of
      the junction plane, subtracted from every pixel;
    * border band = the cell's pixels less than ``band_px`` from its outline
      along rows and columns (1.8 µm, 3 px at 10x); interior = the rest;
    * cytoplasm level = the median of the interior (nuclei left out when
      ``exclude`` marks them): robust to a bright nucleus in a gray image.

    Where along the border junction signal is present, and its classes, are
    measured border by border in :mod:`bbbcore.interfaces` (:func:`measure_cells`).
    """
    labels = np.asarray(labels)
    ids = np.unique(labels[labels > 0]) if ids is None else np.asarray(ids)
    junction = np.asarray(junction)
    if junction.shape != labels.shape:
        raise ValueError(f"junction plane {junction.shape} and labels {labels.shape} differ in shape")
    labels = labels.astype(np.int32, copy=False)
    band_px = junction_band_px(pixel_size_um) if band_px is None else int(band_px)
    outline = inner_boundaries(labels) if outline is None else outline
    if levels is None:
        levels = junction_levels(labels, junction, pixel_size_um=pixel_size_um, band_px=band_px, exclude=exclude,
                                 outline=outline)
    size = int(labels.max()) + 1
    inside = labels > 0
    # The band: pixels less than band_px from an outline pixel along rows and columns (a square
    # window: cheap, separable), within cells. Whole-image masks are bool or uint8; what needs float
    # is made a band of rows at a time (_ROWS), so a 48 MP image needs a few hundred MB here.
    band = ndi.maximum_filter((outline & inside).view(np.uint8), size=2 * band_px - 1).view(bool) & inside
    kind = band.view(np.uint8) + 2 * (inside & ~band).view(np.uint8)  # 1 band, 2 interior
    del inside, band
    corrected = np.subtract(junction, np.float32(levels.background), dtype=np.float32)
    counts, sums = _pair_counts(labels, kind, 3, size, weights=corrected)
    del kind, corrected
    counts, sums = counts[ids], sums[ids]
    band_sum, interior_sum = sums[:, 1], sums[:, 2]
    band_n, interior_n = counts[:, 1], counts[:, 2]
    cytoplasm = levels.cytoplasm[ids]
    with np.errstate(divide="ignore", invalid="ignore"):
        border_mean = np.where(band_n > 0, band_sum / band_n, np.nan)
        interior_mean = np.where(interior_n > 0, interior_sum / interior_n, np.nan)
        # A cytoplasm at background makes the ratio meaningless, not infinite.
        ratio = np.where(cytoplasm > levels.floor, border_mean / cytoplasm, np.nan)
    return pd.DataFrame(
        {
            "junction_border_mean": border_mean,
            "junction_border_integrated": band_sum,
            "junction_interior_mean": interior_mean,
            "junction_border_to_cytoplasm": ratio,
        }
    )


#: Rows per band where a whole-image int64 or float64 array would be needed (bounded memory).
_ROWS = 512


def _pair_counts(labels: np.ndarray, kind: np.ndarray, n_kinds: int, size: int,
                 weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Pixel counts (and sums of ``weights``) per (cell, kind) pair, (size, n_kinds) each, a band of rows at a time."""
    counts = np.zeros(size * n_kinds, np.int64)
    sums = np.zeros(size * n_kinds) if weights is not None else None
    for top_row in range(0, labels.shape[0], _ROWS):
        rows = slice(top_row, top_row + _ROWS)
        pair = labels[rows].ravel().astype(np.intp) * n_kinds + kind[rows].ravel()
        counts += np.bincount(pair, minlength=size * n_kinds)
        if sums is not None:
            sums += np.bincount(pair, weights=weights[rows].ravel(), minlength=size * n_kinds)
    return counts.reshape(size, n_kinds), None if sums is None else sums.reshape(size, n_kinds)


def image_record(
    labels: np.ndarray, *, image: str = "", image_id: str = "", pixel_size_um: float | None = None,
    diameter_estimated_px: float | None = None, diameter_used_px: float | None = None,
    quality: dict | None = None, corrected_by_hand: bool = False,
) -> dict:
    """What a summary needs to know about one image beyond its cells (``quality``: :func:`bbbcore.quality.image_quality`)."""
    labels = np.asarray(labels)
    return {
        **(quality or {}),
        "image": image,
        "image_id": image_id,
        "height": int(labels.shape[0]),
        "width": int(labels.shape[1]),
        "pixel_size_um": pixel_size_um,
        "cell_coverage": float((labels > 0).mean()),
        "diameter_estimated_px": diameter_estimated_px,
        "diameter_used_px": diameter_used_px,
        "corrected_by_hand": bool(corrected_by_hand),
    }


def feature_columns(table: pd.DataFrame) -> list[str]:
    """The numeric measurement columns of a cells table (no ids, no sample fields)."""
    return [
        c for c in table.columns
        if c not in ID_COLUMNS and not c.startswith(("centroid", "anomaly_code"))
        and pd.api.types.is_numeric_dtype(table[c])
        and not pd.api.types.is_bool_dtype(table[c])
    ]


def summary_table(
    cells: pd.DataFrame,
    *,
    images: list[dict] | pd.DataFrame | None = None,
    exclude_edge: bool = config.EXCLUDE_EDGE_CELLS,
) -> pd.DataFrame:
    """One row per image: counts, density, quality flags (:mod:`bbbcore.quality`), every feature's mean and median.

    Parameters
    ----------
    cells : DataFrame
        A cells table (one or many images).
    images : list of dict or DataFrame, optional
        :func:`image_record` of each image; adds ``cells_per_mm2`` and
        ``cell_coverage`` and keeps images that have no cells at all.
    exclude_edge : bool
        Leave cells touching the image edge out (they are counted in
        ``n_edge_excluded``).
    """
    records = pd.DataFrame(images if images is not None else [])
    keys = ["image", "image_id"] + (["annotator"] if "annotator" in cells.columns else [])
    features = feature_columns(cells)
    sample = [c for c in SAMPLE_FIELDS if c in cells.columns]
    rows = []
    groups = dict(tuple(cells.groupby(keys, sort=False, dropna=False))) if len(cells) else {}
    order = list(groups)
    if len(records):
        order += [k for k in zip(records["image"], records["image_id"]) if k not in groups and len(keys) == 2]
    for key in order:
        group = groups.get(key, cells.iloc[0:0])
        edge = group["touches_edge"].astype(bool) if "touches_edge" in group else pd.Series(False, index=group.index)
        counted = group[~edge] if exclude_edge else group
        row = dict(zip(keys, key))
        for field in sample:
            values = group[field].dropna().unique()
            row[field] = values[0] if len(values) else np.nan
        size = group["pixel_size_um"].dropna().unique() if "pixel_size_um" in group else []
        row["pixel_size_um"] = float(size[0]) if len(size) else np.nan
        row["n_cells"] = int(len(counted))
        row["n_edge_excluded"] = int(edge.sum()) if exclude_edge else 0
        row["n_edited"] = int(edited_cells(group).sum())
        row["corrected_by_hand"] = bool(row["n_edited"])
        row["cells_per_mm2"] = np.nan
        row["cell_coverage"] = np.nan
        row["diameter_estimated_px"] = row["diameter_used_px"] = np.nan
        row["saturated_share"] = row["focus_score"] = np.nan
        if len(records):
            match = records[(records["image"] == key[0]) & (records["image_id"] == key[1])]
            if len(match):
                record = match.iloc[0]
                row["cell_coverage"] = record["cell_coverage"]
                row["corrected_by_hand"] = bool(record.get("corrected_by_hand")) or row["corrected_by_hand"]
                for field in ("diameter_estimated_px", "diameter_used_px", "saturated_share", "focus_score"):
                    value = record.get(field)
                    row[field] = np.nan if value is None or pd.isna(value) else float(value)
                size_um = record.get("pixel_size_um")
                if size_um is not None and not pd.isna(size_um):
                    row["pixel_size_um"] = float(size_um)
                if not np.isnan(row["pixel_size_um"]):
                    field_mm2 = record["height"] * record["width"] * (row["pixel_size_um"] / 1000.0) ** 2
                    row["cells_per_mm2"] = ((~edge).sum() + 0.5 * edge.sum()) / field_mm2
        for feature in features:
            values = counted[feature]
            row[f"{feature}_mean"] = float(values.mean()) if values.notna().any() else np.nan
            row[f"{feature}_median"] = float(values.median()) if values.notna().any() else np.nan
        rows.append(row)
    from .quality import add_quality_flags

    return add_quality_flags(pd.DataFrame(rows)) if rows else pd.DataFrame(rows)
