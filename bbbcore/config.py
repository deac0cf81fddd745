"""The one place that holds the defaults every entry point (CLI, app) reads."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
MODELS_DIR = REPO_DIR / "models"

#: The shipped default model (a ``.keras`` file with a ``.card.json`` beside it).
DEFAULT_MODEL = MODELS_DIR / "bbb_unet.keras"

#: Pixel size in µm/px. ``None``: unknown unless the file or the user says it.
DEFAULT_PIXEL_SIZE_UM: float | None = None

#: Images larger than this are refused (memory and time would explode).
MAX_MEGAPIXELS = 50.0

#: Percentiles of the robust intensity normalisation.
NORMALISE_PERCENTILES = (1.0, 99.8)

#: Smallest cell kept by the watershed, in pixels at the shipped model's
#: training pixel size (10x, 0.617 µm/px; about 460 µm²). Rescaled for other
#: pixel sizes; a model card's ``thresholds`` may override it.
MIN_CELL_AREA_PX = 1200

#: Junction channel picked from an RGB image (green = ZO-1 in this field).
DEFAULT_RGB_JUNCTION_CHANNEL = 1
#: Nuclear channel picked from an RGB image (blue = DAPI).
DEFAULT_RGB_NUCLEAR_CHANNEL = 2
