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


def _with_group(cells: pd.DataFrame, by_dose: bool = False) -> pd.DataFrame:
    return cells.assign(group=group_labels(cells, by_dose=by_dose))


def _colours(groups) -> dict:
    return {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(dict.fromkeys(groups))}


def histogram(cells: pd.DataFrame, feature: str, *, bins: int = 40) -> go.Figure:
    """Histogram of a feature, one overlaid colour per condition."""
    table = _with_group(cells)
    figure = px.histogram(table, x=feature, color="group", nbins=bins, barmode="overlay", opacity=0.6,
                          color_discrete_map=_colours(table["group"]), labels={"group": "condition"})
    return figure.update_layout(bargap=0.02)


def distribution(cells: pd.DataFrame, feature: str, *, kind: str = "box", by_dose: bool = False) -> go.Figure:
    """Box, violin or strip plot of a feature per condition (or condition and dose)."""
    table = _with_group(cells, by_dose)
    colours = _colours(table["group"])
    common = dict(x="group", y=feature, color="group", color_discrete_map=colours,
                  labels={"group": "condition"}, hover_data=["image", "cell_id"])
    if kind == "box":
        figure = px.box(table, points="outliers", **common)
    elif kind == "violin":
        figure = px.violin(table, box=True, points=False, **common)
    elif kind == "strip":
        figure = px.strip(table, **common)
    else:
        raise ValueError(f"kind must be box, violin or strip, not {kind!r}")
    return figure.update_layout(showlegend=False)


def scatter(cells: pd.DataFrame, x: str, y: str) -> go.Figure:
    """Scatter of two features, coloured by condition; hover names the cell."""
    table = _with_group(cells)
    return px.scatter(table, x=x, y=y, color="group", color_discrete_map=_colours(table["group"]),
                      opacity=0.7, hover_data=["image", "cell_id"], labels={"group": "condition"})


def scatter_matrix(cells: pd.DataFrame, features: list[str]) -> go.Figure:
    """Pairwise scatter plots of chosen features, coloured by condition."""
    table = _with_group(cells)
    figure = px.scatter_matrix(table, dimensions=features, color="group",
                               color_discrete_map=_colours(table["group"]), opacity=0.6,
                               labels={"group": "condition"})
    figure.update_traces(diagonal_visible=False, marker={"size": 4})
    return figure.update_layout(height=max(500, 160 * len(features)))


def correlation_heatmap(cells: pd.DataFrame, features: list[str], *, method: str = "spearman") -> go.Figure:
    """Correlation matrix of features (Spearman by default: robust to skew)."""
    matrix = cells[features].corr(method=method)
    figure = px.imshow(matrix, zmin=-1, zmax=1, color_continuous_scale="RdBu_r", text_auto=".2f",
                       aspect="auto", labels={"color": f"{method} r"})
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
    colours = _colours(groups)
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
        yaxis={"title": feature, "range": _axis_range(shown, low_bound, high_bound)}, violinmode="overlay",
        title=f"{feature}: cells (violins), image means (points), their mean with a 95 % bootstrap interval (bar)",
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
    from .features import feature_columns

    features = feature_columns(cells)
    preferred = ["area_um2", "area", "perimeter_um", "perimeter", "aspect_ratio", "extent",
                 "equivalent_diameter_um", "equivalent_diameter", "circularity", "solidity", "elongation",
                 "junction_continuity", "junction_border_to_cytoplasm"]
    first = [f for f in preferred if f in features]
    return first + [f for f in features if f not in first]


__all__ = [
    "CHART_CONFIG", "NO_CONDITION", "compare_conditions", "correlation_heatmap", "distribution",
    "feature_options", "histogram", "scatter", "scatter_matrix",
]


def dose_response(values: pd.DataFrame, feature: str, *, rho: float | None = None, p: float | None = None) -> go.Figure:
    """Per-unit values against dose (the control at 0), coloured by condition."""
    table = values.assign(dose=values["dose"].fillna(0.0))
    figure = px.scatter(table, x="dose", y="value", color="condition", hover_data=["unit", "n_cells"],
                        color_discrete_map=_colours(table["condition"]))
    figure.update_traces(marker={"size": 12, "line": {"width": 1, "color": "black"}})
    title = f"{feature}: per-unit values against dose"
    if rho is not None and np.isfinite(rho):
        title += f" (Spearman rho {rho:.2f}, p = {p:.2g})"
    return figure.update_layout(title=title, yaxis_title=feature)
