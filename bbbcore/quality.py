"""Per-image quality flags: saturated junctions, blur, and a cell count far from the experiment's.

An out-of-focus or saturated image is segmented like any other and would feed
the statistics like any other; these figures, computed for every analysed
image, let the person see it and exclude it with its reason (Cells page), and
travel in summary.csv:

* ``saturated_share``: the share of the junction channel's pixels at the top
  of its range (clipped: their true intensity, and so the junction metrics,
  are unknown);
* ``focus_score``: the variance of the Laplacian of the normalised junction
  plane (lightly smoothed against pixel noise): sharp borders give a high
  value, blur a low one. Its scale depends on the stain and the magnification,
  so it is judged against the experiment's median (``focus_relative``);
* ``n_cells_relative``: the image's cell count over the experiment's median.

``quality_flags`` names what is off, in words, or is empty.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

#: More than this share of saturated junction pixels is flagged (a few bright specks are normal).
MAX_SATURATED_SHARE = 0.01
#: A focus score under this fraction of the experiment's median is flagged as blurred (a defocused
#: monolayer loses most of its high-frequency energy; small differences between fields are normal).
MIN_FOCUS_RELATIVE = 0.5
#: A cell count outside this range of the experiment's median is flagged (a torn monolayer, a
#: different magnification, a failed segmentation).
CELL_COUNT_RELATIVE = (0.5, 2.0)
#: Figures are judged against an experiment of at least this many images (fewer: no median to judge by).
MIN_IMAGES_TO_COMPARE = 3


def image_quality(raw_junction: np.ndarray, junction: np.ndarray, *, exclude: np.ndarray | None = None) -> dict[str, float]:
    """``saturated_share`` and ``focus_score`` of one image.

    Parameters
    ----------
    raw_junction : (H, W) array, the junction channel as read (its dtype's top is "saturated")
    junction : (H, W) float array, the same plane normalised to [0, 1]
    exclude : (H, W) bool array, optional, pixels that are no sample (a burned-in scale bar is white)
    """
    raw_junction = np.asarray(raw_junction)
    sample = ~exclude if exclude is not None and exclude.any() else None
    if raw_junction.dtype.kind in "ui":
        top = np.iinfo(raw_junction.dtype).max
        # 12-bit cameras write into 16-bit files: their top is the largest value the image reaches,
        # when that is a 2^k - 1 ceiling (4095, 16383) rather than the dtype's.
        if raw_junction.dtype.itemsize > 1:
            ceiling = int(raw_junction.max())
            if ceiling > 0 and (ceiling + 1) & ceiling == 0:
                top = ceiling
    else:
        top = float(np.nanmax(raw_junction)) if raw_junction.size else 1.0
    clipped = raw_junction >= top
    saturated = float(np.mean(clipped if sample is None else clipped[sample])) if raw_junction.size else 0.0
    plane = ndi.gaussian_filter(np.asarray(junction, np.float32), 1.0)
    focus = float(np.var(ndi.laplace(plane))) if plane.size else 0.0
    return {"saturated_share": saturated, "focus_score": focus}


def add_quality_flags(summary: pd.DataFrame) -> pd.DataFrame:
    """``summary`` with ``focus_relative``, ``n_cells_relative`` and ``quality_flags`` (words; empty when fine)."""
    table = summary.copy()
    enough = len(table) >= MIN_IMAGES_TO_COMPARE
    for column, source in (("focus_relative", "focus_score"), ("n_cells_relative", "n_cells")):
        values = pd.to_numeric(table[source], errors="coerce") if source in table else pd.Series(np.nan, index=table.index)
        median = float(values.median()) if enough and values.notna().any() else np.nan
        table[column] = values / median if median and np.isfinite(median) else np.nan
    flags = []
    for _, row in table.iterrows():
        found = []
        saturated = row.get("saturated_share", np.nan)
        if pd.notna(saturated) and saturated > MAX_SATURATED_SHARE:
            found.append(f"saturated: {100 * saturated:.1f} % of junction pixels")
        if pd.notna(row["focus_relative"]) and row["focus_relative"] < MIN_FOCUS_RELATIVE:
            found.append(f"blurred: focus {row['focus_relative']:.2f} of the experiment's median")
        low, high = CELL_COUNT_RELATIVE
        if pd.notna(row["n_cells_relative"]) and not low <= row["n_cells_relative"] <= high:
            found.append(f"{int(row['n_cells'])} cells, {row['n_cells_relative']:.2f} x the experiment's median")
        flags.append("; ".join(found))
    table["quality_flags"] = flags
    return table
