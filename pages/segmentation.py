"""Segmentation: the cells drawn over the image, and an interactive view with hover."""

from __future__ import annotations

import numpy as np
import streamlit as st

from bbbcore.overlay import cells_figure, draw_ids, feature_colours, jpeg_bytes, render_cells
from bbbcore.plots import CHART_CONFIG, feature_options
from dashboard import state, widgets

st.title("Segmentation")
widgets.need_results()
session = state.session()
results = session.results
cells = session.cells()

controls = st.columns([2, 2, 1, 1, 1])
name = controls[0].selectbox("Image", results.names(), key="seg_image")
result = results.results[name]
table = cells[cells["image"] == name]
features = feature_options(table)
colour_by = controls[1].selectbox("Colour cells by", ["(none)", *features], key="seg_colour")
outlines = controls[2].toggle("Outlines", value=True, key="seg_outlines")
fill = controls[3].toggle("Filled cells", value=False, key="seg_fill")
ids = controls[4].toggle("Cell ids", value=False, key="seg_ids")

values = None
if colour_by != "(none)":
    values = dict(zip(table["cell_id"].astype(int), table[colour_by].astype(float)))


def make_picture():
    drawn = render_cells(result.image.junction, result.labels, values=values, outlines=outlines, fill=fill)
    return draw_ids(drawn, result.labels) if ids else drawn


options = (colour_by, outlines, fill, ids)
picture = session.picture(name, options, make_picture)

# Sent as JPEG made once (Streamlit would encode each array again on every visit, at quality 100).
raw, overlay = st.columns(2)
raw.image(session.picture(name, ("raw",), lambda: jpeg_bytes(state.thumbnail(result.image.junction, 4096))),
          caption=f"{name}: junction channel", width="stretch", output_format="JPEG")
overlay.image(session.picture(name, ("jpeg", *options), lambda: jpeg_bytes(picture)), output_format="JPEG",
              caption="cells: yellow outlines; blue or gray = touching the image edge (kept, left out of summaries)",
              width="stretch")
if values is not None:
    _, low, high = feature_colours(np.array(list(values.values())))
    st.caption(f"Colour: {colour_by} from {low:.4g} (dark purple) to {high:.4g} (yellow), 2nd-98th percentile; "
               "edge cells gray.")
edge = int(table["touches_edge"].sum())
st.caption(f"{len(table)} cells, {edge} of them at the image edge; cells from {result.source}; "
           f"pixel size {f'{result.pixel_size_um:g} µm' if result.pixel_size_um else 'unknown'}.")

st.subheader("Hover over a cell's dot")
main = [c for c in ["area_um2", "area", "perimeter", "aspect_ratio", "circularity", "solidity",
                    "n_neighbours", "junction_continuity", "touches_edge"] if c in table.columns]
if colour_by != "(none)" and colour_by not in main:
    main.insert(0, colour_by)
figure = session.picture(name, ("hover", *options, tuple(main)),
                         lambda: cells_figure(picture, result.labels, table, columns=main,
                                              colour_by=None if colour_by == "(none)" else colour_by))
st.plotly_chart(figure, config=CHART_CONFIG, key="seg_hover")
