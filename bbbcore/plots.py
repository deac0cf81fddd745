"""Interactive figures (plotly) of cells tables: the original analysis's descriptive set.

Every function takes a cells table and returns a ``plotly.graph_objects.Figure``;
nothing here draws on screen, so the figures are tested as data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from . import config
from .compare import (
    MIN_INTERVAL_IMAGES,
    NO_CONDITION,
    feature_range,
    group_labels,
    image_means,
    looks_like_control,
    mean_interval,
    usable_cells,
)

#: Colours of conditions (colour-blind safe, Okabe-Ito order).
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]

#: Plotly's toolbar: PNG download at print resolution, no logo.
CHART_CONFIG = {
    "displaylogo": False,
    "toImageButtonOptions": {"format": "png", "scale": 3, "filename": "bbb_plot"},
}


#: Hovers and axes give numbers to 4 significant digits in plain notation (14,960, not 1.496e+04).
NUMBER_FORMAT = ",.4~r"


def column_label(column: str) -> str:
    """A column as a person reads it, with its unit: ``area_um2`` -> "area (µm²)", ``area`` -> "area (px²)"."""
    from .features import COLUMNS
    from .interfaces import INTERFACE_COLUMNS

    unit = (COLUMNS.get(column) or INTERFACE_COLUMNS.get(column) or ("", ""))[0]
    name = column
    for suffix in ("_um2", "_um", "_px"):
        if name.endswith(suffix) and unit:
            name = name[: -len(suffix)]
            break
    name = name.replace("_", " ")
    return f"{name} ({unit})" if unit else name


def _labels(*columns: str) -> dict:
    return {"group": "condition", **{c: column_label(c) for c in columns}}


def _numbers_readable(figure: go.Figure) -> go.Figure:
    return figure.update_xaxes(hoverformat=NUMBER_FORMAT).update_yaxes(hoverformat=NUMBER_FORMAT)


def _with_group(cells: pd.DataFrame, by_dose: bool = False, colour_by: str = "condition") -> pd.DataFrame:
    if colour_by == "image":
        return cells.assign(group=cells["image"].astype(str))
    return cells.assign(group=group_labels(cells, by_dose=by_dose))


def condition_colours(groups) -> dict:
    """One colour per condition (or image), the same on every page: the groups in sorted order, the
    control first, take the colour-blind-safe palette in turn."""
    names = sorted({str(g) for g in groups}, key=lambda g: (not looks_like_control(g), g))
    return {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(names)}



def histogram(cells: pd.DataFrame, feature: str, *, bins: int = 40, colour_by: str = "condition") -> go.Figure:
    """Histogram of a feature, one overlaid colour per condition (or per image)."""
    table = _with_group(cells, colour_by=colour_by)
    figure = px.histogram(table, x=feature, color="group", nbins=bins, barmode="overlay", opacity=0.6,
                          color_discrete_map=condition_colours(table["group"]),
                          labels={**_labels(feature), "group": colour_by})
    return _numbers_readable(figure.update_layout(bargap=0.02))


def distribution(cells: pd.DataFrame, feature: str, *, kind: str = "box", by_dose: bool = False,
                 colour_by: str = "condition") -> go.Figure:
    """Box, violin or strip plot of a feature per condition (or condition and dose, or image)."""
    table = _with_group(cells, by_dose, colour_by)
    colours = condition_colours(table["group"])
    common = dict(x="group", y=feature, color="group", color_discrete_map=colours,
                  labels={**_labels(feature), "group": colour_by}, hover_data=["image", "cell_id"])
    if kind == "box":
        figure = px.box(table, points="outliers", **common)
    elif kind == "violin":
        figure = px.violin(table, box=True, points=False, **common)
    elif kind == "strip":
        figure = px.strip(table, **common)
    else:
        raise ValueError(f"kind must be box, violin or strip, not {kind!r}")
    return _numbers_readable(figure.update_layout(showlegend=False))


def scatter(cells: pd.DataFrame, x: str, y: str, *, colour_by: str = "condition") -> go.Figure:
    """Scatter of two features, coloured by condition, by image, or by a third (numeric) column with a
    colour bar; hover names the cell."""
    if colour_by not in ("condition", "image"):
        figure = px.scatter(cells, x=x, y=y, color=colour_by, color_continuous_scale="Viridis", opacity=0.8,
                            hover_data=["image", "cell_id"], labels=_labels(x, y, colour_by))
        return _numbers_readable(figure)
    table = _with_group(cells, colour_by=colour_by)
    figure = px.scatter(table, x=x, y=y, color="group", color_discrete_map=condition_colours(table["group"]),
                        opacity=0.7, hover_data=["image", "cell_id"], labels={**_labels(x, y), "group": colour_by})
    return _numbers_readable(figure)


def scatter_matrix(cells: pd.DataFrame, features: list[str], *, colour_by: str = "condition") -> go.Figure:
    """Pairwise scatter plots of chosen features, coloured by condition (or image)."""
    table = _with_group(cells, colour_by=colour_by)
    figure = px.scatter_matrix(table, dimensions=features, color="group",
                               color_discrete_map=condition_colours(table["group"]), opacity=0.6,
                               labels={**_labels(*features), "group": colour_by})
    figure.update_traces(diagonal_visible=False, marker={"size": 4})
    return figure.update_layout(height=max(500, 160 * len(features)))


def correlation_heatmap(cells: pd.DataFrame, features: list[str], *, method: str = "spearman") -> go.Figure:
    """Correlation matrix of features (Spearman by default: robust to skew)."""
    matrix = cells[features].corr(method=method)
    names = [column_label(f) for f in features]
    figure = px.imshow(matrix.set_axis(names, axis=0).set_axis(names, axis=1), zmin=-1, zmax=1,
                       color_continuous_scale="RdBu_r", text_auto=".2f", aspect="auto",
                       labels={"color": f"{method} r"})
    return figure.update_layout(height=max(450, 40 * len(features) + 150))


def compare_conditions(
    cells: pd.DataFrame,
    feature: str,
    *,
    by_dose: bool = False,
    exclude_edge: bool = config.EXCLUDE_EDGE_CELLS,
    order: list[str] | None = None,
) -> go.Figure:
    """Cell-level distribution per group (violins) with each image's mean as a large point.

    The points, not the violins, are the units to compare: cells of one image
    are not independent.
    """
    table = _with_group(usable_cells(cells, exclude_edge=exclude_edge), by_dose)
    per_image = image_means(cells, feature, by_dose=by_dose, exclude_edge=exclude_edge)
    low_bound, high_bound = feature_range(cells, feature)
    groups = list(dict.fromkeys(order or [])) + [g for g in dict.fromkeys(table["group"]) if g not in (order or [])]
    colours = condition_colours(groups)
    figure = go.Figure()
    for group in groups:
        values = table.loc[table["group"] == group, feature]
        figure.add_trace(go.Violin(
            x=[group] * len(values), y=values, name=group, legendgroup=group, line_color=colours[group],
            opacity=0.45, points=False, spanmode="hard", showlegend=False, hoverinfo="skip",
        ))
        images = per_image[per_image["group"] == group]
        figure.add_trace(go.Scatter(
            x=[group] * len(images), y=images["mean"], mode="markers", name=f"{group}: image means",
            marker={"size": 13, "color": colours[group], "line": {"width": 1.5, "color": "black"}},
            customdata=np.column_stack([images["image"], images["n_cells"]]),
            hovertemplate="%{customdata[0]}<br>mean %{y:.4g} over %{customdata[1]} cells<extra></extra>",
            showlegend=False,
        ))
        if len(images) >= 2:  # the mean of the image means, with its interval from MIN_INTERVAL_IMAGES images
            centre = float(images["mean"].mean())
            low, high = mean_interval(images["mean"].to_numpy(float), bounds=(low_bound, high_bound))
            text = (f"95 % bootstrap interval {low:.4g} to {high:.4g}" if np.isfinite(low)
                    else f"too few images for an interval ({len(images)}; {MIN_INTERVAL_IMAGES} needed)")
            figure.add_trace(go.Scatter(
                x=[group], y=[centre], mode="markers", name=f"{group}: mean, 95 % CI",
                marker={"symbol": "line-ew-open", "size": 30, "color": "black", "line": {"width": 3}},
                error_y={"type": "data", "symmetric": False, "array": [high - centre], "arrayminus": [centre - low],
                         "color": "black", "thickness": 2, "width": 12, "visible": bool(np.isfinite(low))},
                hovertemplate=f"mean of image means %{{y:.4g}}; {text}<extra></extra>",
                showlegend=False,
            ))
    shown = np.concatenate([table[feature].dropna().to_numpy(float), per_image["mean"].dropna().to_numpy(float)])
    figure.update_layout(
        xaxis={"title": "condition", "categoryorder": "array", "categoryarray": groups},
        yaxis={"title": column_label(feature), "range": _axis_range(shown, low_bound, high_bound)},
        violinmode="overlay",
        title=f"{column_label(feature)}: cells (violins), image means (points), their mean with a 95 % bootstrap "
              "interval (bar)",
    )
    return figure


def _axis_range(values: np.ndarray, low_bound: float | None, high_bound: float | None) -> list[float] | None:
    """The data's span with a 5 % margin, not past what the feature can take."""
    if not len(values):
        return None
    low, high = float(np.min(values)), float(np.max(values))
    margin = 0.05 * (high - low) or 0.05 * abs(high) or 1.0
    low, high = low - margin, high + margin
    return [max(low, low_bound) if low_bound is not None else low,
            min(high, high_bound) if high_bound is not None else high]


def feature_options(cells: pd.DataFrame) -> list[str]:
    """Numeric feature columns worth plotting, most used first."""
    from .features import LENGTH_COLUMNS, feature_columns

    features = [f for f in feature_columns(cells) if cells[f].notna().any()]  # an empty column shows nothing
    # A column in px beside its µm twin says the same thing again: only the µm one is offered.
    twins = {"area": "area_um2", **{c: f"{c}_um" for c in LENGTH_COLUMNS}}
    features = [f for f in features if not (f in twins and twins[f] in features and cells[twins[f]].notna().any())]
    preferred = ["area_um2", "area", "perimeter_um", "perimeter", "aspect_ratio", "extent",
                 "equivalent_diameter_um", "equivalent_diameter", "circularity", "solidity", "elongation",
                 "junction_continuity", "junction_border_to_cytoplasm"]
    first = [f for f in preferred if f in features]
    return first + [f for f in features if f not in first]


__all__ = [
    "CHART_CONFIG", "NO_CONDITION", "column_label", "compare_conditions", "condition_colours", "correlation_heatmap",
    "distribution", "feature_options", "histogram", "scatter", "scatter_matrix",
]


def dose_response(values: pd.DataFrame, feature: str, *, rho: float | None = None, p: float | None = None) -> go.Figure:
    """Per-unit values against dose (the control at 0), coloured by condition."""
    table = values.assign(dose=values["dose"].fillna(0.0))
    figure = px.scatter(table, x="dose", y="value", color="condition", hover_data=["unit", "n_cells"],
                        color_discrete_map=condition_colours(table["condition"]))
    figure.update_traces(marker={"size": 12, "line": {"width": 1, "color": "black"}})
    title = f"{column_label(feature)}: per-unit values against dose"
    if rho is not None and np.isfinite(rho):
        title += f" (Spearman rho {rho:.2f}, p = {p:.2g})"
    return figure.update_layout(title=title, yaxis_title=column_label(feature))
