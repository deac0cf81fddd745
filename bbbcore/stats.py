"""Treated-versus-control statistics with the image (or replicate) as the unit.

The cells of one image share its well, its staining and its focus: they are
not independent replicates. Every test here therefore runs on one value per
unit (the mean, or median, of the unit's cells), where a unit is an image, or
the replicate / well when the sample sheet gives one. The cell-level analysis
done right is the linear mixed model (cells nested in units), also reported.

For each feature and each treated condition against the chosen control:

* ``difference``: the treated group's mean of per-unit values minus the control's, with Welch's 95 %
  interval (from 3 units per group; below, "too few images for an interval");
* **the primary test**: Welch's t-test on the per-unit values, Holm-corrected across the features tested
  for one treated condition (``p_welch``, ``p_holm``). Chosen over the mixed model because it asks the
  same question of one value per unit with fewer assumptions, and stays stable with the few images an
  experiment has (a mixed model's between-unit variance is poorly estimated from 3 to 6 units);
* reported beside it: Hedges' g with a percentile bootstrap 95 % interval (units resampled within
  groups; ``g``, ``g_ci_low``, ``g_ci_high``), the Mann-Whitney U test, and a linear mixed model
  ``feature ~ treated`` with a random intercept per unit on the cells (statsmodels MixedLM);
* a warning when a group has fewer than 3 units.

Dose-response: Spearman's rank correlation of the per-unit values with the
dose (the control at dose 0 included).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from . import config
from .compare import MIN_INTERVAL_IMAGES, usable_cells
from .errors import BBBError, named_message

#: Fewer units than this in a group get a warning and no interval.
MIN_UNITS = MIN_INTERVAL_IMAGES
#: The primary test, in one sentence (the dashboard and the methods paragraph say it).
PRIMARY_TEST = ("Welch's t-test on one value per image (the image, not the cell, is the unit; no equal "
                "variances assumed), Holm-corrected across the features tested")


class StatsError(BBBError):
    """A comparison that cannot be made (no control, no such feature, ...)."""


def unit_column(cells: pd.DataFrame) -> str:
    """The unit of replication: ``replicate`` or ``well`` when the sheet fills it, else the image."""
    for column in ("replicate", "well"):
        if column in cells.columns and cells[column].notna().all() and cells[column].astype(str).str.len().gt(0).all():
            return column
    return "image_id" if "image_id" in cells.columns and cells["image_id"].astype(str).str.len().gt(0).all() else "image"


def condition_names(cells: pd.DataFrame) -> pd.Series:
    """Each cell's condition as text, "(none)" where the sheet gives none."""
    return cells["condition"].astype(object).where(cells["condition"].notna(), "(none)").astype(str)


def unit_values(
    cells: pd.DataFrame,
    feature: str,
    *,
    unit: str | None = None,
    statistic: str = "mean",
    exclude_edge: bool = config.EXCLUDE_EDGE_CELLS,
) -> pd.DataFrame:
    """One row per (condition, unit): the unit's mean (or median) of ``feature``, its cells and dose."""
    if feature not in cells.columns:
        raise StatsError(f"no column {feature!r} in the cells table")
    table = usable_cells(cells, exclude_edge=exclude_edge)
    table = table[table[feature].notna()]
    unit = unit or unit_column(table)
    condition = condition_names(table)
    # A replicate number repeats across conditions: the unit is (condition, replicate).
    grouped = table.assign(_condition=condition).groupby(["_condition", unit], sort=False)
    values = grouped[feature].agg(statistic)
    result = pd.DataFrame({
        "condition": [k[0] for k in values.index],
        "unit": [str(k[1]) for k in values.index],
        "value": values.to_numpy(float),
        "n_cells": grouped[feature].size().to_numpy(),
    })
    if "dose" in table.columns:
        result["dose"] = grouped["dose"].first().to_numpy(float)
    return result


def hedges_g(treated: np.ndarray, control: np.ndarray) -> float:
    """Hedges' g: the standardised mean difference with the small-sample correction."""
    n1, n2 = len(treated), len(control)
    if n1 < 2 or n2 < 2:
        return np.nan
    pooled = np.sqrt(((n1 - 1) * np.var(treated, ddof=1) + (n2 - 1) * np.var(control, ddof=1)) / (n1 + n2 - 2))
    if pooled == 0:
        return np.nan
    correction = 1 - 3 / (4 * (n1 + n2) - 9)
    return float((np.mean(treated) - np.mean(control)) / pooled * correction)


def bootstrap_ci(treated: np.ndarray, control: np.ndarray, *, n_boot: int = 2000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of Hedges' g (units resampled within each group)."""
    if len(treated) < 2 or len(control) < 2:
        return (np.nan, np.nan)
    rng = np.random.default_rng(seed)
    draws = np.array([
        hedges_g(rng.choice(treated, len(treated)), rng.choice(control, len(control))) for _ in range(n_boot)
    ])
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return (np.nan, np.nan)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return (float(low), float(high))


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjustment (NaN stays NaN)."""
    p = np.asarray(p_values, float)
    adjusted = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    if finite.size == 0:
        return adjusted
    order = finite[np.argsort(p[finite])]
    m = order.size
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted


def mixed_model(cells: pd.DataFrame, feature: str, treated: str, control: str, *, unit: str) -> dict:
    """``feature ~ treated`` with a random intercept per unit (statsmodels MixedLM, REML)."""
    import statsmodels.formula.api as smf

    # Named as unit_values names them, so a row for cells with no condition ("(none)") gets its model too.
    condition = condition_names(cells)
    table = cells[condition.isin([treated, control])]
    condition = condition[table.index]
    table = pd.DataFrame({
        "y": table[feature].to_numpy(float),
        "treated": (condition == treated).astype(float).to_numpy(),
        "unit": (condition + "/" + table[unit].astype(str)).to_numpy(),
    }).dropna()
    if table["unit"].nunique() < 3 or table["treated"].nunique() < 2:
        return {"mixed_coef": np.nan, "mixed_se": np.nan, "p_mixed": np.nan}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on tiny designs; the p-value says enough
        try:
            fit = smf.mixedlm("y ~ treated", table, groups=table["unit"]).fit(reml=True)
        except (ValueError, np.linalg.LinAlgError):
            return {"mixed_coef": np.nan, "mixed_se": np.nan, "p_mixed": np.nan}
    return {"mixed_coef": float(fit.params["treated"]), "mixed_se": float(fit.bse["treated"]),
            "p_mixed": float(fit.pvalues["treated"])}


def check_comparable(cells: pd.DataFrame, control: str, *, source: str = "cells table") -> None:
    """Refuse, in one line, a table in which the control cannot be compared with anything.

    The cells counted are those the statistics use: not at the image edge,
    not excluded. A comparison needs at least one unit (image, replicate)
    of the control and one of another condition; with fewer than 2 units in
    a group a row is still given, its p-values empty and its warning saying so.

    Raises
    ------
    StatsError
        ``"<source>: <problem>"``: no usable cell, no control cell, or only control cells.
    """
    usable = usable_cells(cells, exclude_edge=True)
    if usable.empty:
        raise StatsError(named_message(source, f"no cell to compare: all {len(cells)} cell(s) touch the image edge "
                                               "or are excluded (those are left out of statistics)"))
    if "condition" not in usable.columns:
        raise StatsError(named_message(source, "missing column(s) condition"))
    conditions = usable["condition"].astype(object).where(usable["condition"].notna(), "(none)").astype(str)
    if control not in set(conditions):
        found = ", ".join(sorted(set(conditions))[:10])
        raise StatsError(named_message(source, f"no cell has the control condition {control!r} (conditions: {found})"))
    if (conditions == control).all():
        raise StatsError(named_message(
            source, f"nothing to compare with the control {control!r}: all {len(usable)} cell(s) not at the edge "
                    "are of that condition; stats needs cells of at least one other condition"))


def compare_to_control(
    cells: pd.DataFrame,
    features: list[str],
    control: str,
    *,
    statistic: str = "mean",
    unit: str | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    mixed: bool = True,
) -> pd.DataFrame:
    """One row per (treated condition, feature): counts, difference, effect size, tests.

    Columns: feature, condition, control, unit, n_images (units of the
    treated group: images, or replicates / wells), n_images_control,
    n_cells, n_cells_control, difference, difference_ci_low,
    difference_ci_high (Welch's 95 % interval, from 3 units per group),
    p_welch and p_holm (the primary test, :data:`PRIMARY_TEST`), g, g_ci_low,
    g_ci_high (Hedges' g and its bootstrap 95 % interval), p_mannwhitney,
    p_mixed, mixed_coef, mixed_se, warning. The cells used are those of
    :func:`bbbcore.compare.usable_cells` (no edge cells, no excluded ones).
    """
    from scipy import stats as st

    if "condition" not in cells.columns or control not in set(cells["condition"].astype(str)):
        raise StatsError(f"no cell has the control condition {control!r}")
    table = usable_cells(cells, exclude_edge=True)
    unit = unit or unit_column(table)
    rows = []
    for feature in features:
        values = unit_values(cells, feature, unit=unit, statistic=statistic)
        reference = values[values["condition"] == control]
        for condition in [c for c in values["condition"].unique() if c != control]:
            group = values[values["condition"] == condition]
            t, c = group["value"].to_numpy(), reference["value"].to_numpy()
            test = st.ttest_ind(t, c, equal_var=False) if len(t) >= 2 and len(c) >= 2 else None
            welch = test.pvalue if test is not None else np.nan
            interval = (test.confidence_interval() if test is not None and min(len(t), len(c)) >= MIN_UNITS
                        else (np.nan, np.nan))
            mann = st.mannwhitneyu(t, c, alternative="two-sided").pvalue if len(t) and len(c) else np.nan
            low, high = bootstrap_ci(t, c, n_boot=n_boot, seed=seed)
            row = {
                "feature": feature, "condition": condition, "control": control, "unit": unit,
                "n_images": len(t), "n_images_control": len(c),
                "n_cells": int(group["n_cells"].sum()), "n_cells_control": int(reference["n_cells"].sum()),
                "difference": float(t.mean() - c.mean()) if len(t) and len(c) else np.nan,
                "difference_ci_low": float(interval[0]), "difference_ci_high": float(interval[1]),
                "p_welch": float(welch), "g": hedges_g(t, c), "g_ci_low": low, "g_ci_high": high,
                "p_mannwhitney": float(mann),
            }
            if mixed:
                row.update(mixed_model(table, feature, condition, control, unit=unit))
            small = [name for name, n in ((condition, len(t)), (control, len(c))) if n < MIN_UNITS]
            row["warning"] = (f"fewer than {MIN_UNITS} {unit} units in {', '.join(small)}: too few for an "
                              "interval; treat the p-values as descriptive") if small else ""
            rows.append(row)
    result = pd.DataFrame(rows)
    if result.empty:
        return result
    result["p_holm"] = np.nan
    for _, index in result.groupby("condition").groups.items():
        result.loc[index, "p_holm"] = holm(result.loc[index, "p_welch"].to_numpy())
    order = ["feature", "condition", "control", "unit", "n_images", "n_images_control", "n_cells", "n_cells_control",
             "difference", "difference_ci_low", "difference_ci_high", "p_welch", "p_holm", "g", "g_ci_low",
             "g_ci_high", "p_mannwhitney", "p_mixed", "mixed_coef", "mixed_se", "warning"]
    return result[[c for c in order if c in result.columns]]


def dose_response(cells: pd.DataFrame, feature: str, *, control: str | None = None,
                  statistic: str = "mean", unit: str | None = None) -> dict:
    """Spearman's rho of the per-unit values with the dose; the control counts as dose 0."""
    from scipy import stats as st

    values = unit_values(cells, feature, unit=unit, statistic=statistic)
    if "dose" not in values.columns:
        raise StatsError("the cells table has no dose column")
    dose = values["dose"].copy()
    if control is not None:
        dose[values["condition"] == control] = dose[values["condition"] == control].fillna(0.0)
    usable = dose.notna()
    if usable.sum() < 3 or dose[usable].nunique() < 2:
        return {"feature": feature, "n_units": int(usable.sum()), "spearman_rho": np.nan, "p": np.nan}
    result = st.spearmanr(dose[usable], values.loc[usable, "value"])
    return {"feature": feature, "n_units": int(usable.sum()), "spearman_rho": float(result.statistic),
            "p": float(result.pvalue)}


def sentences(table: pd.DataFrame, *, alpha: float = 0.05) -> list[str]:
    """A plain-language sentence per result whose Holm-adjusted p is below ``alpha``."""
    lines = []
    for _, row in table.iterrows():
        if not np.isfinite(row["p_holm"]) or row["p_holm"] >= alpha:
            continue
        direction = "higher" if row["difference"] > 0 else "lower"
        unit = {"image_id": "image", "image": "image"}.get(row["unit"], row["unit"])
        lines.append(
            f"{row['condition']}: {row['feature']} is {direction} than in {row['control']} by "
            f"{abs(row['difference']):.4g} (difference of the means of per-{unit} means; {row['n_images']} vs "
            f"{row['n_images_control']} {unit}s, {row['n_cells']} vs {row['n_cells_control']} cells; Hedges' g "
            f"{row['g']:.2f} [{row['g_ci_low']:.2f}, {row['g_ci_high']:.2f}]; Welch p = {row['p_welch']:.2g}, "
            f"Holm-adjusted p = {row['p_holm']:.2g}). The unit of analysis is the {unit}, not the cell."
        )
    return lines
