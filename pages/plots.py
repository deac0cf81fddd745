"""Plots: the original analysis's descriptive set, interactive, coloured by condition."""

from __future__ import annotations

import streamlit as st

from bbbcore import plots
from dashboard import state, widgets

st.title("Plots")
widgets.need_results()
cells = state.cells()
include_edge = st.checkbox("Include cells at the image edge", value=False, key="plots_edge")
if not include_edge:
    cells = cells[~cells["touches_edge"].astype(bool)]
if cells.empty:
    st.warning("No cells to plot (every cell touches the image edge: tick the box above).")
    st.stop()
features = plots.feature_options(cells)
st.caption("Coloured by condition. The camera icon of each plot's toolbar downloads it as a PNG.")

tabs = st.tabs(["Histogram", "Box", "Violin", "Strip", "Scatter", "Scatter matrix", "Correlation"])
with tabs[0]:
    feature = st.selectbox("Feature", features, key="hist_feature")
    bins = st.slider("Bins", 10, 100, 40, key="hist_bins")
    st.plotly_chart(plots.histogram(cells, feature, bins=bins), config=plots.CHART_CONFIG, key="hist")
for tab, kind in zip(tabs[1:4], ["box", "violin", "strip"]):
    with tab:
        cols = st.columns([3, 1])
        feature = cols[0].selectbox("Feature", features, key=f"{kind}_feature")
        by_dose = cols[1].checkbox("Split by dose", key=f"{kind}_dose")
        st.plotly_chart(plots.distribution(cells, feature, kind=kind, by_dose=by_dose),
                        config=plots.CHART_CONFIG, key=f"{kind}_chart")
with tabs[4]:
    cols = st.columns(2)
    x = cols[0].selectbox("x", features, index=0, key="scatter_x")
    y = cols[1].selectbox("y", features, index=min(1, len(features) - 1), key="scatter_y")
    st.plotly_chart(plots.scatter(cells, x, y), config=plots.CHART_CONFIG, key="scatter_chart")
with tabs[5]:
    chosen = st.multiselect("Features", features, default=features[:4], key="matrix_features",
                            max_selections=8)
    if len(chosen) >= 2:
        st.plotly_chart(plots.scatter_matrix(cells, chosen), config=plots.CHART_CONFIG, key="matrix_chart")
    else:
        st.info("Choose at least two features.")
with tabs[6]:
    chosen = st.multiselect("Features", features, default=features[: min(10, len(features))],
                            key="corr_features")
    if len(chosen) >= 2:
        st.plotly_chart(plots.correlation_heatmap(cells, chosen), config=plots.CHART_CONFIG, key="corr_chart")
    else:
        st.info("Choose at least two features.")
