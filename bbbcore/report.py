"""A methods paragraph, generated from what was actually run, for a paper's methods section."""

from __future__ import annotations

import pandas as pd


def _join(items: list[str]) -> str:
    items = [i for i in items if i]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1] if items else ""


def methods_paragraph(
    cells: pd.DataFrame,
    *,
    model_card=None,
    exclusions: pd.DataFrame | None = None,
    control: str | None = None,
    features: list[str] | None = None,
    statistic: str = "mean",
    unit: str = "image",
    anomaly_card=None,
    corrected_images=(),
) -> str:
    """The methods of an analysis, in plain sentences with its numbers.

    Parameters
    ----------
    cells : the analysed cells table (all images)
    model_card : ModelCard of the segmentation model, optional
    exclusions : rows (image, cell_id, reason) excluded from statistics, optional
    control, features, statistic, unit : the comparison, when one was made
    anomaly_card : AnomalyCard, when anomalous cells were scored
    corrected_images : names of images whose cells were corrected by hand (besides those with ``edited``
        cells: an image where cells were only deleted has none)
    """
    from . import config
    from .features import edited_cells

    n_images = cells["image"].nunique() if len(cells) else 0
    edge = int(cells["touches_edge"].sum()) if "touches_edge" in cells else 0
    sizes = sorted({round(float(s), 4) for s in cells.get("pixel_size_um", pd.Series(dtype=float)).dropna()})
    parts = []
    if model_card is not None:
        metrics = model_card.metrics or {}
        held_out = [f"F1 at IoU 0.5 of {v['f1@0.5']:.2f} on held-out image {k}"
                    for k, v in (metrics.get("leave_one_image_out") or {}).items() if isinstance(v, dict) and "f1@0.5" in v]
        parts.append(
            f"Cells were segmented in {n_images} ZO-1 image{'s' if n_images != 1 else ''} with the BBB cell analyser: a "
            f"U-Net ({model_card.name} version {model_card.version}; depth {model_card.depth}, base width "
            f"{model_card.base_width}, run at {model_card.input_scale:g}x resolution, trained at "
            f"{model_card.pixel_size_um:g} µm per pixel) predicted cell borders and distances to the border"
            + (f" (averaged over {model_card.flips} mirrored copies of each image)" if model_card.flips > 1 else "")
            + ", and a seeded watershed made one object per cell"
            + (f" (the model reached {_join(held_out)})" if held_out else "") + "."
        )
    else:
        parts.append(f"{n_images} image{'s' if n_images != 1 else ''} were measured from labels images.")
    parts.append(
        f"{len(cells)} cells were measured with scikit-image regionprops (area, perimeter, aspect ratio as bounding-box "
        f"width over height, extent, equivalent diameter and further shape descriptors) and junction metrics from "
        f"the ZO-1 channel (border band {config.JUNCTION_BAND_UM} µm; junction present at "
        f"{config.JUNCTION_PRESENT_RATIO}x the cell's cytoplasm level)"
        + (f"; pixel size {_join([f'{s:g}' for s in sizes])} µm" if sizes else "; no pixel size was known, so sizes are in pixels")
        + f". Cells touching the image edge ({edge}) were left out of summaries and statistics."
    )
    if edited_cells(cells).any() or len(corrected_images):
        parts.append(_corrections_sentence(cells, n_images, corrected_images))
    if exclusions is not None and len(exclusions):
        whole = exclusions[exclusions["cell_id"].isna()]
        some = exclusions[exclusions["cell_id"].notna()]
        reasons = exclusions.groupby("reason").size()
        parts.append(
            f"After inspection, {len(whole)} image{'s' if len(whole) != 1 else ''} and {len(some)} further "
            f"cell{'s' if len(some) != 1 else ''} were excluded from the statistics ("
            + _join([f"{reason}: {count}" for reason, count in reasons.items()]) + ")."
        )
    if anomaly_card is not None:
        parts.append(
            f"Cells of abnormal shape were flagged with a dense autoencoder ({anomaly_card.design} design; features: "
            f"{_join(anomaly_card.features)}; fitted on {anomaly_card.fitted_on}, {anomaly_card.n_cells} cells); a cell "
            f"was anomalous when its reconstruction error exceeded the {1 - anomaly_card.contamination:.0%} quantile "
            f"of the fitted cells' errors."
        )
    if control is not None and features:
        unit_name = {"image_id": "image", "image": "image"}.get(unit, unit)
        parts.append(
            f"Each treated condition was compared with {control} on the {statistic} of each {unit_name} (the {unit_name}, "
            f"not the cell, was the unit of analysis) for {_join(features)}. The primary test was Welch's t-test on "
            f"these per-{unit_name} values, with Holm's correction across the features tested; reported beside it "
            f"are Welch's 95 % confidence interval of the difference, Hedges' g with a percentile bootstrap 95 % "
            f"confidence interval, the Mann-Whitney U test, and a linear mixed model with a random intercept per "
            f"{unit_name} (statsmodels MixedLM) on the cells."
        )
        doses = pd.to_numeric(cells["dose"], errors="coerce").dropna() if "dose" in cells else pd.Series(dtype=float)
        if doses.nunique() >= 2:  # said only when there were doses to relate
            parts.append(f"Dose-response was tested with Spearman's rank correlation of the per-{unit_name} values "
                         "with dose, the control at dose 0.")
    return " ".join(parts)


def _corrections_sentence(cells: pd.DataFrame, n_images: int, corrected_images=()) -> str:
    """What was corrected by hand: how many images and cells (those with ``edited``)."""
    from .features import edited_cells

    edited = cells[edited_cells(cells)]
    n_corrected = len(set(edited["image"]) | set(corrected_images))
    return (f"The segmentation was corrected by hand in {n_corrected} of {n_images} image{'s' if n_images != 1 else ''} "
            f"(cells deleted, merged, drawn or split in the dashboard or with python -m bbbcore edit); "
            f"{len(edited)} of the {len(cells)} cells measured were drawn or changed by hand.")
