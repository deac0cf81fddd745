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

#: Smallest cell kept by the watershed, in pixels at the model's working scale
#: is derived from this value given at the image's own scale (10x, 0.62 µm/px).
MIN_CELL_AREA_PX = 400

#: Cells whose labels touch the image edge are kept but flagged; summaries and
#: statistics leave them out by default.
EXCLUDE_EDGE_CELLS = True

#: Junction channel picked from an RGB image (green = ZO-1 in this field).
DEFAULT_RGB_JUNCTION_CHANNEL = 1
#: Nuclear channel picked from an RGB image (blue = DAPI).
DEFAULT_RGB_NUCLEAR_CHANNEL = 2
