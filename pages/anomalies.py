"""Anomalies: cells whose shape a dense autoencoder finds unusual, shown on the images."""

from __future__ import annotations

import numpy as np
import plotly.express as px
import streamlit as st

from bbbcore import config
from bbbcore.anomaly import DESIGNS, fraction_flagged, model_from_zip, model_zip_bytes
from bbbcore.errors import BBBError
from bbbcore.overlay import render_cells
from bbbcore.plots import CHART_CONFIG, condition_colours
from dashboard import state, widgets

st.title("Anomalous cells")
widgets.need_results()
session = state.session()
settings = session.anomaly
conditions = sorted({str(c) for c in session.cells(scored=False)["condition"].dropna()})

with st.form("anomaly_fit"):
    cols = st.columns([2, 2, 1])
    choices = ["all cells", *conditions]
    current = settings.fit_on if settings.fit_on in conditions else "all cells"
    fit_on = cols[0].selectbox("Fit the model on", choices, index=choices.index(current),
                               help="fitting on the control scores every cell against normal control shape")
    design = cols[1].selectbox(
        "Design", list(DESIGNS), index=list(DESIGNS).index(settings.design),
        format_func={"improved": "improved: log sizes + scale-free shape, Adam",
                     "original": "original: the study's five columns, SGD",
                     "junctions": "junctions: the improved shape + the cell's junction state"}.get)
    seed = cols[2].number_input("Seed", min_value=0, value=int(settings.seed), step=1)
    fit = st.form_submit_button("Find anomalous cells", type="primary", icon=":material/search:")
if fit:
    try:
        with st.spinner("Fitting the autoencoder…"):
            session.fit_anomalies(design=design, fit_on=None if fit_on == "all cells" else fit_on, seed=int(seed))
    except BBBError as exc:
        st.error(str(exc), icon=":material/error:")

with st.expander("Save or reload a fitted model"):
    if session.anomaly_model() is not None:
        st.download_button("Download the fitted model (zip: .keras + card)", model_zip_bytes(session.anomaly_model()),
                           file_name="anomaly_model.zip", mime="application/zip", icon=":material/download:")
    saved = st.file_uploader("Reload a saved model (its threshold comes with it)", type=["zip"],
                             key="anomaly_model_upload")
    if saved is not None and session.first_time(("anomaly model", saved.file_id)):
        try:
            loaded = model_from_zip(saved.getvalue(), name=saved.name)
        except BBBError as exc:
            st.error(str(exc), icon=":material/error:")
        else:
            session.use_anomaly_model(loaded)
            st.success(f"{saved.name}: fitted on {loaded.card.fitted_on}, {loaded.card.n_cells} cells.")

model = session.anomaly_model()
if model is None:
    st.info("Fit the model to score every cell. Each cell gets an anomaly score (how badly the autoencoder "
            "reconstructs its shape features) and a flag when the score is above the threshold you set.")
    st.stop()

session.set_contamination(st.slider(
    "Threshold: share of the fitted cells flagged", 0.01, 0.40, float(session.anomaly.contamination), 0.01,
    key="anomaly_contamination", help=f"{config.ANOMALY_CONTAMINATION:g} is the study's contamination"))
cells = session.cells()
threshold = model.threshold_for(session.anomaly.contamination)
counted = cells[~cells["touches_edge"].astype(bool)]
card = model.card
st.caption(f"Fitted on {card.fitted_on} ({card.n_cells} cells not at the edge), {card.design} design "
           f"({', '.join(card.features)}), {card.training['epochs']} epochs in {card.training['seconds']:.1f} s. "
           f"Threshold {threshold:.3g}: {int(counted['is_anomaly'].sum())} of {len(counted)} cells flagged.")

left, right = st.columns(2)
with left:
    codes = counted.assign(status=np.where(counted["is_anomaly"], "anomalous", "normal"))
    figure = px.scatter(codes, x="anomaly_code_1", y="anomaly_code_2", color="status",
                        color_discrete_map={"normal": "black", "anomalous": "#1f77ff"},
                        hover_data=["image", "cell_id", "condition", "anomaly_score"], opacity=0.7,
                        title="2-D code of each cell")
    st.plotly_chart(figure, config=CHART_CONFIG, key="anomaly_codes")
with right:
    figure = px.histogram(counted, x="anomaly_score", nbins=50, title="Anomaly scores", log_y=True,
                          labels={"anomaly_score": "anomaly score"})
    # Log counts labelled at 1, 10, 100 ... only (the minor labels 2-9 overlapped).
    figure.update_yaxes(title="cells (log scale)", dtick=1, tickformat="d")
    figure.add_vline(x=threshold, line_color="#d62728", line_dash="dash", annotation_text="threshold")
    st.plotly_chart(figure, config=CHART_CONFIG, key="anomaly_scores")

by_condition = fraction_flagged(cells, by="condition")
by_image = fraction_flagged(cells, by="image")
cols = st.columns(2)
# Each condition in its colour, the one it has on every page (bbbcore.plots.condition_colours).
colours = condition_colours(by_condition["condition"])
image_condition = cells.drop_duplicates("image").set_index("image")["condition"].astype(object).fillna("(none)")
by_image["condition"] = by_image["image"].map(image_condition).astype(str)
share = {"fraction": "share of cells flagged", "n_anomalous": "cells flagged"}
cols[0].plotly_chart(px.bar(by_condition, x="condition", y="fraction", text="n_anomalous", color="condition",
                            color_discrete_map=colours, labels=share, title="Share of anomalous cells per condition"
                            ).update_layout(showlegend=False), config=CHART_CONFIG, key="frac_cond")
cols[1].plotly_chart(px.bar(by_image, x="image", y="fraction", text="n_anomalous", color="condition",
                            color_discrete_map=colours, labels=share, title="Share of anomalous cells per image"),
                     config=CHART_CONFIG, key="frac_image")

st.subheader("Flagged cells on the image")
name = st.selectbox("Image", session.results.names(), key="anomaly_image")
result = session.results.results[name]
table = cells[cells["image"] == name]
# Cells cut by the image edge are scored too, but left out like everywhere else.
flagged = set(table.loc[table["is_anomaly"].astype(bool) & ~table["touches_edge"].astype(bool), "cell_id"].astype(int))
picture = session.picture(name, ("anomalies", id(model), session.anomaly.contamination),
                          lambda: render_cells(result.image.junction, result.labels, highlight=flagged))
st.image(picture, caption=f"{len(flagged)} flagged cells outlined in magenta; yellow: the others; "
         "blue: cells at the image edge (left out of the shares above and not highlighted)", width="stretch")
if flagged:
    chosen = st.selectbox("See a flagged cell's features", sorted(flagged), key="anomaly_cell")
    row = table[table["cell_id"] == chosen].iloc[0]
    shown = ["anomaly_score", *card.features, "junction_continuity", "n_neighbours", "touches_edge"]
    st.dataframe(row[[c for c in shown if c in row.index]].to_frame("value").T, hide_index=True, width="stretch")
st.caption("The cells table and its CSV (Cells page) now carry anomaly_score and is_anomaly.")
