"""The one place that holds the defaults every entry point (CLI, app) reads."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
#: The checkout holding the package (sample_data/, models/); meaningless in a
#: non-editable install, where the package sits in site-packages.
REPO_DIR = PACKAGE_DIR.parent


def models_dir() -> Path:
    """The folder of the shipped models.

    ``$BBB_MODELS_DIR`` when set; else the checkout's ``models/`` (a clone or
    an editable install: the package's parent holds pyproject.toml and
    models/); else the copy a non-editable ``pip install .`` put inside the
    package (``bbbcore/models/``, package data mapped from models/ in
    pyproject.toml).
    """
    configured = os.environ.get("BBB_MODELS_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    checkout = REPO_DIR / "models"
    if checkout.is_dir() and (REPO_DIR / "pyproject.toml").is_file():
        return checkout
    return PACKAGE_DIR / "models"


MODELS_DIR = models_dir()

#: The shipped default model (a ``.keras`` file with a ``.card.json`` beside it).
DEFAULT_MODEL = MODELS_DIR / "bbb_unet.keras"

#: Pixel size in µm/px. ``None``: unknown unless the file or the user says it.
DEFAULT_PIXEL_SIZE_UM: float | None = None

#: Images larger than this are refused (memory and time would explode).
MAX_MEGAPIXELS = 50.0

#: An experiment zip is refused when it would expand to more than this (GiB), or one of
#: its entries (an image, a table) to more than IMPORT_MAX_ENTRY_GB; see bbbcore.exchange.ImportLimits.
IMPORT_MAX_TOTAL_GB = 20.0
IMPORT_MAX_ENTRY_GB = 2.0

#: Percentiles of the robust intensity normalisation.
NORMALISE_PERCENTILES = (1.0, 99.8)

#: µm per pixel of the shipped model's training images, as its cards record it. Measured again in stop 29,
#: their 100 µm scale bar is 156 px long: 0.641 µm/px (sample_data/README.md). The 4 % difference only
#: touches the µm form of the card's thresholds; the scale an image is segmented at comes from its cells.
TRAINING_PIXEL_SIZE_UM = 0.617

#: Typical diameter of a BBB endothelial cell in the shipped model's training images (µm; their
#: 78 annotated inner cells' median equivalent diameter, 164 px at TRAINING_PIXEL_SIZE_UM). Used
#: only to give model cards without a cell_diameter_px one.
TYPICAL_CELL_DIAMETER_UM = 164 * TRAINING_PIXEL_SIZE_UM

#: The original analysis's five shape columns (its table, its anomaly model,
#: the default features of the statistics).
ORIGINAL_FEATURES = ("area", "perimeter", "aspect_ratio", "extent", "equivalent_diameter")

#: Share of the fitted cells the anomaly model flags by default (the study's contamination).
ANOMALY_CONTAMINATION = 0.12

#: Smallest cell kept by the watershed, in pixels at the shipped model's
#: training pixel size (10x, TRAINING_PIXEL_SIZE_UM; about 460 µm²). Rescaled for other
#: pixel sizes; a model card's ``thresholds`` may override it.
MIN_CELL_AREA_PX = 1200

#: Cells reaching the image edge are left out of summaries and statistics
#: (they stay in the labels image and the cells table, flagged).
EXCLUDE_EDGE_CELLS = True

#: Two cells are neighbours when they touch along at least this many pixel
#: pairs (4-connected); a single corner contact is not a shared border.
NEIGHBOUR_MIN_CONTACT_PX = 3

#: Width of a cell's junction band, measured inward from its outline. In µm
#: when the pixel size is known, else the pixel fallback (3 px at 10x).
JUNCTION_BAND_UM = 1.8
JUNCTION_BAND_PX = 3

#: Background of the junction channel: this percentile of the whole plane.
JUNCTION_BACKGROUND_PERCENTILE = 5.0

#: How far from an outline pixel the junction's ridge is looked for (the
#: outline may lie a pixel or two off it). µm, or px when unknown.
JUNCTION_REACH_UM = 1.2
JUNCTION_REACH_PX = 2

#: Junction signal is present on a cell's outline where it reaches this
#: multiple of the cell's cytoplasm level (background subtracted).
JUNCTION_PRESENT_RATIO = 1.5

#: A stretch of junction shorter than this along the outline is "punctate",
#: longer is "continuous" (JAnaP-like classes). µm, or px when unknown.
JUNCTION_CONTINUOUS_MIN_UM = 3.0
JUNCTION_CONTINUOUS_MIN_PX = 5

#: Nuclei smaller than this (µm², or px when unknown) are noise, not nuclei.
MIN_NUCLEUS_AREA_UM2 = 20.0
MIN_NUCLEUS_AREA_PX = 50

#: Without a pixel size, the continuous length is this share of the typical cell diameter (in px):
#: JUNCTION_CONTINUOUS_MIN_UM over TYPICAL_CELL_DIAMETER_UM, so the µm rule and the px rule class the
#: same stretches on BBB cells of the typical size (4.9 px at the training images' 164 px cells, the
#: JUNCTION_CONTINUOUS_MIN_PX of the per-cell columns). Used by bbbcore.interfaces.
JUNCTION_CONTINUOUS_MIN_DIAMETERS = JUNCTION_CONTINUOUS_MIN_UM / TYPICAL_CELL_DIAMETER_UM

#: A junction stretch too short to be continuous is "perpendicular" when its extent across the border
#: is more than this multiple of its length along it (JAnaP's relative path aspect ratio), else punctate.
JUNCTION_PERPENDICULAR_ASPECT = 1.2
