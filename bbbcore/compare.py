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
#: Fewer images (or units) than this in a group get no interval: "too few images for an interval".
MIN_INTERVAL_IMAGES = 3


#: Features whose values cannot leave a range (lower, upper): intervals and axes respect it. Any other
#: feature that is never negative in the table gets (0, None).
FEATURE_RANGES = {
    "extent": (0.0, 1.0), "solidity": (0.0, 1.0), "circularity": (0.0, 1.0), "junction_continuity": (0.0, 1.0),
    "aspect_ratio": (0.0, None), "elongation": (1.0, None), "eccentricity": (0.0, 1.0),
}


def feature_range(cells: pd.DataFrame, feature: str) -> tuple[float | None, float | None]:
    """The values ``feature`` can take: known bounds, else (0, None) when no value in ``cells`` is negative."""
    if feature in FEATURE_RANGES:
        return FEATURE_RANGES[feature]
    values = pd.to_numeric(cells[feature], errors="coerce") if feature in cells else pd.Series(dtype=float)
    return (0.0, None) if values.dropna().ge(0).all() else (None, None)


def usable_cells(cells: pd.DataFrame, *, exclude_edge: bool = config.EXCLUDE_EDGE_CELLS) -> pd.DataFrame:
    """The cells every comparison uses (plots, tables, statistics): not at the image edge, not excluded."""
    table = cells
    if exclude_edge and "touches_edge" in table.columns:
        table = table[~table["touches_edge"].astype(bool)]
    if "is_excluded" in table.columns:  # quality control (empty for images never marked)
        table = table[~table["is_excluded"].eq(True)]
    return table


def exclusions(cells: pd.DataFrame) -> pd.DataFrame:
    """The exclusions of a cells table: (image, cell_id, reason), one row per excluded image (``cell_id``
    empty: every cell of it is excluded) and one per further excluded cell."""
    if "is_excluded" not in cells.columns:
        return pd.DataFrame(columns=["image", "cell_id", "reason"])
    excluded = cells[cells["is_excluded"].eq(True)]
    whole = excluded["image"].map(excluded["image"].value_counts()) == excluded["image"].map(
        cells["image"].value_counts())
    reasons = excluded["excluded_reason"] if "excluded_reason" in excluded else pd.Series("", index=excluded.index)
    return pd.DataFrame({"image": excluded["image"], "cell_id": excluded["cell_id"].where(~whole),
                         "reason": reasons}).drop_duplicates(["image", "cell_id"])


def left_out(cells: pd.DataFrame, *, exclude_edge: bool = config.EXCLUDE_EDGE_CELLS) -> str:
    """What :func:`usable_cells` leaves out, in one sentence (empty when nothing)."""
    parts = []
    excluded = exclusions(cells)
    whole = excluded[excluded["cell_id"].isna()]
    if len(whole):
        reasons = whole["reason"].where(whole["reason"].notna() & whole["reason"].astype(str).ne(""), "no reason given")
        named = ", ".join(f"{image} ({reason})" for image, reason in zip(whole["image"][:5], reasons[:5])) \
            + (" ..." if len(whole) > 5 else "")
        parts.append(f"{len(whole)} excluded image{'s' if len(whole) != 1 else ''}: {named}")
    cells_only = int(excluded["cell_id"].notna().sum())
    if cells_only:
        parts.append(f"{cells_only} excluded cell{'s' if cells_only != 1 else ''}")
    kept = cells[~cells["is_excluded"].eq(True)] if "is_excluded" in cells.columns else cells
    if exclude_edge and "touches_edge" in kept.columns and kept["touches_edge"].astype(bool).any():
        parts.append(f"{int(kept['touches_edge'].astype(bool).sum())} cells at the image edge")
    return ("Left out everywhere: " + "; ".join(parts) + ".") if parts else ""


def mean_interval(values: np.ndarray, *, bounds: tuple[float | None, float | None] = (None, None),
                  n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap 95 % interval of the mean of ``values`` (NaN below MIN_INTERVAL_IMAGES values).

    A resampled mean stays within the values, so the interval never leaves what the feature can take;
    it is clipped to ``bounds`` as well.
    """
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if len(values) < MIN_INTERVAL_IMAGES:
        return (np.nan, np.nan)
    draws = np.random.default_rng(seed).choice(values, (n_boot, len(values))).mean(axis=1)
    low, high = np.percentile(draws, [2.5, 97.5])
    return (float(np.clip(low, bounds[0], bounds[1])), float(np.clip(high, bounds[0], bounds[1])))


def looks_like_control(group: str) -> bool:
    """Whether a group's name says it is the control ("control", "ctrl", "vehicle" ...): offered first."""
    return str(group).lower().startswith(("control", "ctrl", "vehicle"))


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
    """One row per image (of :func:`usable_cells`): its group, its number of cells, the mean and median of ``feature``."""
    table = usable_cells(cells, exclude_edge=exclude_edge)
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
    """Per group: n images, n cells, mean of per-image means with its interval, median, difference to control.

    ``mean_ci_low`` / ``mean_ci_high``: the percentile bootstrap 95 % interval of that mean
    (:func:`mean_interval`: empty below :data:`MIN_INTERVAL_IMAGES` images, never outside the feature's
    range). ``difference`` is the group's mean of per-image means minus the control group's (empty
    without a control). Descriptive only: no p-values. The cells are those of :func:`usable_cells`.
    """
    per_image = image_means(cells, feature, by_dose=by_dose, exclude_edge=exclude_edge)
    bounds = feature_range(cells, feature)
    rows = []
    for group, images in per_image.groupby("group", sort=False):
        low, high = mean_interval(images["mean"].to_numpy(float), bounds=bounds)
        rows.append({
            "group": group,
            "n_images": int(len(images)),
            "n_cells": int(images["n_cells"].sum()),
            "mean": float(images["mean"].mean()),
            "mean_ci_low": low,
            "mean_ci_high": high,
            "median": float(images["mean"].median()),
            "sd_between_images": float(images["mean"].std(ddof=1)) if len(images) > 1 else np.nan,
        })
    table = pd.DataFrame(rows, columns=["group", "n_images", "n_cells", "mean", "mean_ci_low", "mean_ci_high",
                                        "median", "sd_between_images"])
    reference = table.loc[table["group"] == control, "mean"] if control is not None else pd.Series(dtype=float)
    table["difference"] = table["mean"] - float(reference.iloc[0]) if len(reference) else np.nan
    if len(reference):
        table["percent_of_control"] = 100.0 * table["mean"] / float(reference.iloc[0])
    # Control first, then the rest in order of appearance.
    order = table["group"].ne(control).astype(int)
    return table.assign(_order=order).sort_values("_order", kind="stable").drop(columns="_order").reset_index(drop=True)
