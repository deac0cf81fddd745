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
        f"the ZO-1 channel (border band {config.JUNCTION_BAND_UM} µm; along every border shared by two cells, "
        f"junction signal present at {config.JUNCTION_PRESENT_RATIO}x the higher of the two cells' cytoplasm levels, "
        f"present stretches classed after JAnaP as continuous (at least {config.JUNCTION_CONTINUOUS_MIN_UM:g} µm), "
        f"perpendicular (extent across the border over {config.JUNCTION_PERPENDICULAR_ASPECT:g}x its length) or "
        "punctate, with each border's length, linearity index and junction width)"
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
        averaged = getattr(anomaly_card, "members", 1) > 1
        score = ("the larger of its reconstruction error (averaged over "
                 f"{anomaly_card.members} autoencoders trained from different random starts) and its largest robust "
                 "z-score over the features, each scaled by its spread on the fitted cells" if averaged
                 else "its reconstruction error")
        parts.append(
            f"Cells of abnormal shape were flagged with a dense autoencoder ({anomaly_card.design} design; features: "
            f"{_join(anomaly_card.features)}; fitted on {anomaly_card.fitted_on}, {anomaly_card.n_cells} cells); a cell "
            f"was anomalous when {score} exceeded the {1 - anomaly_card.contamination:.0%} quantile of the fitted "
            "cells' scores."
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


def thumbnail_jpeg(junction, labels, *, width: int = 360) -> bytes:
    """A small JPEG of an image with its cells outlined (for galleries and the report)."""
    import numpy as np
    from PIL import Image

    from .overlay import jpeg_bytes, render_cells

    step = max(1, int(np.ceil(labels.shape[1] / (2 * width))))  # outline at about twice the size, then shrink
    picture = render_cells(junction[::step, ::step], labels[::step, ::step], outlines=True)
    height = max(1, round(picture.shape[0] * width / picture.shape[1]))
    return jpeg_bytes(np.asarray(Image.fromarray(picture).resize((width, height))), quality=80)


def html_report(
    *,
    title: str,
    images: pd.DataFrame,
    thumbnails: dict[str, bytes],
    figures: list = (),
    statistics: pd.DataFrame | None = None,
    methods: str = "",
    model_card: dict | None = None,
) -> str:
    """One self-contained HTML page to hand a colleague: the images as thumbnails with their counts and
    flags, the figures (plotly, interactive; plotly.js is inlined once), the statistics table, the
    methods paragraph and the model card's summary.

    ``images``: one row per image (the summary table: ``image``, ``condition``, ``n_cells``,
    ``quality_flags``, ``excluded`` when present); ``thumbnails``: image name -> JPEG bytes.
    """
    import base64
    import html
    import time

    def cell(value) -> str:
        if isinstance(value, float):
            return "" if value != value else f"{value:.4g}"
        return html.escape(str(value))

    def table_html(table: pd.DataFrame) -> str:
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
        rows = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>"
                       for row in table.itertuples(index=False, name=None))
        return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"

    gallery = []
    for _, row in images.iterrows():
        name = str(row["image"])
        flags = [str(row.get(k)) for k in ("quality_flags", "excluded_reason") if isinstance(row.get(k), str) and row.get(k)]
        jpeg = thumbnails.get(name)
        picture = (f'<img alt="{html.escape(name)}" src="data:image/jpeg;base64,{base64.b64encode(jpeg).decode()}">'
                   if jpeg else "")
        counts = f"{int(row['n_cells'])} cells" if "n_cells" in row and row["n_cells"] == row["n_cells"] else ""
        condition = cell(row.get("condition", ""))
        gallery.append(f'<figure>{picture}<figcaption><b>{html.escape(name)}</b><br>{condition} · {counts}'
                       + "".join(f'<br><span class="flag">{html.escape(f)}</span>' for f in flags)
                       + "</figcaption></figure>")
    plots = [figure.to_html(full_html=False, include_plotlyjs=(i == 0), config={"displaylogo": False})
             for i, figure in enumerate(figures)]
    card = model_card or {}
    card_lines = [f"<li>{html.escape(k)}: {cell(v)}</li>" for k, v in card.items() if v not in (None, "", [], {})]
    sections = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p class=\"when\">Report written {time.strftime('%Y-%m-%d %H:%M')} by the BBB cell analyser. "
        "For a PDF, print this page and choose \"Save as PDF\".</p>",
        f"<h2>Images ({len(images)})</h2><div class=\"gallery\">{''.join(gallery)}</div>",
    ]
    if plots:
        sections.append("<h2>Figures</h2>" + "".join(f'<div class="figure">{p}</div>' for p in plots))
    if statistics is not None and len(statistics):
        sections.append("<h2>Statistics</h2>" + table_html(statistics))
    if methods:
        sections.append(f"<h2>Methods</h2><p>{html.escape(methods)}</p>")
    if card_lines:
        sections.append(f"<h2>Segmentation model</h2><ul>{''.join(card_lines)}</ul>")
    style = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}"
             ".gallery{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;width:240px}"
             "figure img{width:240px;border:1px solid #ccc}figcaption{font-size:0.85em}"
             ".flag{color:#b00}table{border-collapse:collapse;font-size:0.85em}"
             "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}.when{color:#666}"
             # Printed (to PDF): no figure, thumbnail or table row cut across two pages.
             "@media print{body{max-width:none;margin:0}.figure,figure,tr{break-inside:avoid}}")
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>{''.join(sections)}</body></html>")
