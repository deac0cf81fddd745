"""Descriptive comparison of conditions (no tests: the statistics come in bbbcore.stats).

The unit that is compared is the image: every figure below is computed from
per-image means, because the cells of one image are not independent.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import config

#: Label of a row without a condition.
NO_CONDITION = "(none)"


def group_labels(cells: pd.DataFrame, *, by_dose: bool = False) -> pd.Series:
    """The group of each row: the condition, optionally with its dose ("tat 80 ng")."""
    condition = cells["condition"].astype(object).where(cells["condition"].notna(), NO_CONDITION).astype(str) \
        if "condition" in cells else pd.Series(NO_CONDITION, index=cells.index)
    if not by_dose or "dose" not in cells:
        return condition
    dose = pd.to_numeric(cells["dose"], errors="coerce")
    unit = cells["dose_unit"].astype(object).where(cells["dose_unit"].notna(), "") if "dose_unit" in cells \
        else pd.Series("", index=cells.index)
    text = dose.map(lambda d: "" if pd.isna(d) else f" {d:g}") + (" " + unit.astype(str)).str.rstrip()
    return (condition + text.where(dose.notna(), "")).str.strip()


def image_means(
    cells: pd.DataFrame,
    feature: str,
    *,
    by_dose: bool = False,
    exclude_edge: bool = config.EXCLUDE_EDGE_CELLS,
) -> pd.DataFrame:
    """One row per image: its group, its number of cells and the mean and median of ``feature``."""
    table = cells[~cells["touches_edge"].astype(bool)] if exclude_edge and "touches_edge" in cells else cells
    table = table.assign(group=group_labels(table, by_dose=by_dose))
    grouped = table.groupby(["group", "image", "image_id"], sort=False, dropna=False)[feature]
    return grouped.agg(n_cells="size", mean="mean", median="median").reset_index()


def compare_table(
    cells: pd.DataFrame,
    feature: str,
    *,
    control: str | None = None,
    by_dose: bool = False,
    exclude_edge: bool = config.EXCLUDE_EDGE_CELLS,
) -> pd.DataFrame:
    """Per group: n images, n cells, mean and median of per-image means, difference to control.

    ``difference`` is the group's mean of per-image means minus the control
    group's (empty without a control). Descriptive only: no p-values.
    """
    per_image = image_means(cells, feature, by_dose=by_dose, exclude_edge=exclude_edge)
    rows = []
    for group, images in per_image.groupby("group", sort=False):
        rows.append({
            "group": group,
            "n_images": int(len(images)),
            "n_cells": int(images["n_cells"].sum()),
            "mean": float(images["mean"].mean()),
            "median": float(images["mean"].median()),
            "sd_between_images": float(images["mean"].std(ddof=1)) if len(images) > 1 else np.nan,
        })
    table = pd.DataFrame(rows, columns=["group", "n_images", "n_cells", "mean", "median", "sd_between_images"])
    reference = table.loc[table["group"] == control, "mean"] if control is not None else pd.Series(dtype=float)
    table["difference"] = table["mean"] - float(reference.iloc[0]) if len(reference) else np.nan
    if len(reference):
        table["percent_of_control"] = 100.0 * table["mean"] / float(reference.iloc[0])
    # Control first, then the rest in order of appearance.
    order = table["group"].ne(control).astype(int)
    return table.assign(_order=order).sort_values("_order", kind="stable").drop(columns="_order").reset_index(drop=True)
