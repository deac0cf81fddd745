"""Plots: the original analysis's descriptive set, interactive, coloured by condition."""

from __future__ import annotations

import streamlit as st

from bbbcore import config, plots
from dashboard import state, widgets

st.title("Plots")
widgets.need_results()
cells = state.session().cells()
include_edge = st.checkbox("Include cells at the image edge", value=not config.EXCLUDE_EDGE_CELLS,
                           key="plots_edge")
if not include_edge:
    cells = cells[~cells["touches_edge"].astype(bool)]
if cells.empty:
    st.warning("No cells to plot (every cell touches the image edge: tick the box above).")
    st.stop()
features = plots.feature_options(cells)
cols = st.columns([2, 2])
colour_by = cols[0].radio("Colour by", ["condition", "image"], horizontal=True, key="plots_colour",
                          help="one colour per condition, the same on every page (colour-blind safe)")
image_format = cols[1].radio("Download as", ["png", "svg"], horizontal=True, key="plots_format",
                             format_func=str.upper, help="the camera icon of each plot's toolbar; SVG for print")
chart_config = {**plots.CHART_CONFIG, "toImageButtonOptions": {
    **plots.CHART_CONFIG["toImageButtonOptions"], "format": image_format}}

# One plot at a time: building all seven on every rerun would slow every click.
kind = st.radio("Plot", ["Histogram", "Box", "Violin", "Strip", "Scatter", "Scatter matrix", "Correlation"],
                horizontal=True, key="plot_kind")
if kind == "Histogram":
    feature = st.selectbox("Feature", features, key="hist_feature", format_func=plots.column_label)
    bins = st.slider("Bins", 10, 100, 40, key="hist_bins")
    figure = plots.histogram(cells, feature, bins=bins, colour_by=colour_by)
elif kind in ("Box", "Violin", "Strip"):
    cols = st.columns([3, 1])
    feature = cols[0].selectbox("Feature", features, key="dist_feature", format_func=plots.column_label)
    by_dose = cols[1].checkbox("Split by dose", key="dist_dose")
    figure = plots.distribution(cells, feature, kind=kind.lower(), by_dose=by_dose, colour_by=colour_by)
elif kind == "Scatter":
    cols = st.columns(3)
    x = cols[0].selectbox("x", features, index=0, key="scatter_x", format_func=plots.column_label)
    # A size against a shape by default: two sizes (area, perimeter) make a line that says little.
    y = cols[1].selectbox("y", features, index=features.index("circularity") if "circularity" in features
                          else min(1, len(features) - 1), key="scatter_y", format_func=plots.column_label)
    shade = cols[2].selectbox("Colour by a column (colour bar)", ["(as above)", *features], key="scatter_shade",
                              format_func=plots.column_label)
    figure = plots.scatter(cells, x, y, colour_by=colour_by if shade == "(as above)" else shade)
else:
    default = features[:4] if kind == "Scatter matrix" else features[: min(10, len(features))]
    chosen = st.multiselect("Features", features, default=default, key=f"{kind}_features", format_func=plots.column_label,
                            max_selections=8 if kind == "Scatter matrix" else None)
    if len(chosen) < 2:
        st.info("Choose at least two features.")
        st.stop()
    figure = (plots.scatter_matrix(cells, chosen, colour_by=colour_by) if kind == "Scatter matrix"
              else plots.correlation_heatmap(cells, chosen))
st.plotly_chart(figure, config=chart_config, key="plot_chart")
