"""Junctions: each border two cells share, coloured by its junction class or any column, per condition, as a table."""

from __future__ import annotations

import streamlit as st

from bbbcore import plots
from bbbcore.export import table_csv_bytes
from bbbcore.interfaces import INTERFACE_COLUMNS, interface_polylines
from bbbcore.overlay import JUNCTION_CLASS_COLOURS, interfaces_figure, junction_class
from dashboard import state, widgets

st.title("Junctions")
widgets.need_results()
session = state.session()
interfaces = session.interfaces()
if interfaces.empty:
    st.info("No interfaces: the images' cells share no border, or were measured without their image.")
    st.stop()
st.caption("Each border two cells share is an interface: its length, how straight it is, and where along it "
           "the ZO-1 junction is continuous, punctate (dots), perpendicular (spikes across the border) or absent "
           "(JAnaP's classes; the rules are in docs/columns.md).")
numeric = [c for c in INTERFACE_COLUMNS if c in interfaces and c not in ("cell_a", "cell_b", "x0", "y0", "x1", "y1")
           and interfaces[c].dtype.kind == "f" and interfaces[c].notna().any()]
on_image, per_condition, as_table = st.tabs(["On the image", "Per condition", "Table"])

with on_image:
    cols = st.columns([2, 2])
    name = cols[0].selectbox("Image", session.results.names(), key="junction_image")
    colour_by = cols[1].selectbox("Colour by", ["class", *numeric], key="junction_colour",
                                  format_func=lambda c: "junction class (largest share)" if c == "class" else plots.column_label(c))
    result = session.results.results[name]
    mine = result.interface_table()
    # At full size: the figure scales it (and its coordinates) down itself.
    picture = session.picture(name, ("plain",), lambda: state.thumbnail(result.image.junction, result.image.shape[1]))
    lines = session.picture(name, ("interface lines",), lambda: interface_polylines(result.labels))
    figure = session.picture(name, ("interfaces", colour_by), lambda: interfaces_figure(
        picture, mine, lines, colour_by=colour_by,
        columns=["length_um" if mine["length_um"].notna().any() else "length_px", "linearity_index",
                 "junction_continuity", "junction_continuous_fraction", "junction_punctate_fraction",
                 "junction_perpendicular_fraction", "junction_width_px"]))
    st.plotly_chart(figure, config=plots.CHART_CONFIG, key="junction_figure")
    counts = junction_class(mine)
    st.caption(f"{len(mine)} interfaces; largest class: " + ", ".join(
        f"{k} {int((counts == k).sum())}" for k in JUNCTION_CLASS_COLOURS) + ". Hover a marker for its figures.")

with per_condition:
    level = st.radio("Measured", ["per cell", "per interface"], horizontal=True, key="junction_level")
    if level == "per cell":
        table = session.cells()
        columns = [c for c in table.columns if c.startswith("junction_") or c in ("n_vertices", "linearity_mean")]
    else:
        table, columns = interfaces, numeric
    default = columns.index("junction_continuity") if "junction_continuity" in columns else 0
    feature = st.selectbox("Column", columns, index=default, key=f"junction_feature_{level}",
                           format_func=plots.column_label)
    st.plotly_chart(plots.compare_conditions(table, feature), config=plots.CHART_CONFIG, key="junction_compare")
    st.caption("Violins: every cell (or interface) not at the image edge; large points: each image's mean, "
               "the units to compare (as on Compare conditions).")

with as_table:
    st.dataframe(interfaces, hide_index=True, width="stretch")
    st.download_button("Interfaces CSV", table_csv_bytes(interfaces), file_name="interfaces.csv", mime="text/csv",
                       icon=":material/download:")
