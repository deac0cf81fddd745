"""Correct cells: delete, merge, draw and split cells by hand, with undo; every edit is a stored version."""

from __future__ import annotations

import streamlit as st

from bbbcore.editing import EditError, edit_from_selection, selection_cells, selection_outline, selection_view
from bbbcore.features import edited_cells
from bbbcore.overlay import cells_figure, render_cells
from bbbcore.plots import CHART_CONFIG
from bbbcore.store import StoreError
from dashboard import state, widgets

st.title("Correct cells")
widgets.need_results()
session = state.session()

controls = st.columns([3, 1, 1, 1])
name = controls[0].selectbox("Image", session.results.names(), key="edit_image")
ids = controls[1].toggle("Cell ids", value=True, key="edit_ids")
chart_key, view_key = f"edit_chart_{name}", f"edit_view_{name}"


def selection() -> dict:
    event = st.session_state.get(chart_key)
    return event.selection if event else {}


def run(action: str) -> None:
    """A button's callback: it runs before the page does, so the picture below shows its result."""
    labels = session.results.results[name].labels
    try:
        if action == "undo":
            said = session.undo_edit(name)
        elif action == "redo":
            said = session.redo_edit(name)
        elif action == "revert":
            said = "reverted to the model's cells" if session.revert_edits(name) else None
        elif action == "accept":
            said = session.accept_cells(name, selection_cells(selection()))
        else:
            edit = edit_from_selection(labels, action, selection())
            said = session.edit_cells(name, edit["operation"], cells=edit["cells"], points=edit["points"])
        st.session_state["edit_said"] = ("ok", f"{name}: {said}") if said else None
    except (EditError, StoreError) as exc:
        st.session_state["edit_said"] = ("error", str(exc) if str(exc).startswith(name) else f"{name}: {exc}")


def zoom(window) -> None:
    st.session_state[view_key] = window


chosen, outline = selection_cells(selection()), selection_outline(selection())
undo, redo = session.edit_counts(name)
history = session.edit_log(name)
edited = bool(len(history)) and history["labels_sha"].iloc[-1] != history["parent_sha"].iloc[0]

buttons = st.columns(8)
buttons[0].button("Delete", icon=":material/delete:", disabled=not chosen, on_click=run, args=("delete",),
                  help="Remove the selected cells (their pixels become background)", width="stretch")
buttons[1].button("Merge", icon=":material/join:", disabled=len(chosen) < 2, on_click=run, args=("merge",),
                  help="Join the selected cells (they must touch) into one", width="stretch")
buttons[2].button("New cell", icon=":material/draw:", disabled=outline is None, on_click=run, args=("draw",),
                  help="The lasso's outline becomes a cell; its pixels are cut from the cells it covered",
                  width="stretch")
buttons[3].button("Split", icon=":material/content_cut:", disabled=outline is None, on_click=run, args=("split",),
                  help="Cut the cell under the lasso along the lasso's outline: the part inside becomes a new cell",
                  width="stretch")
buttons[4].button("Accept", icon=":material/check:", disabled=not chosen, on_click=run, args=("accept",),
                  help="The selected cells are right: they count, with the corrected ones, when the model is taught",
                  width="stretch")
buttons[5].button("Undo", icon=":material/undo:", disabled=not undo, on_click=run, args=("undo",), width="stretch")
buttons[6].button("Redo", icon=":material/redo:", disabled=not redo, on_click=run, args=("redo",), width="stretch")
buttons[7].button("Revert", icon=":material/restore:", disabled=not edited, on_click=run, args=("revert",),
                  help="Back to the model's cells (a new version: the corrections stay in the history)",
                  width="stretch")

said = st.session_state.get("edit_said")
if said:
    (st.success if said[0] == "ok" else st.error)(said[1])
window = selection_view(session.results.results[name].labels, selection())
views = st.columns([1, 1, 4])
views[0].button("Zoom to selection", icon=":material/zoom_in:", disabled=window is None, on_click=zoom,
                args=(window,), width="stretch")
views[1].button("Whole image", icon=":material/zoom_out_map:", disabled=st.session_state.get(view_key) is None,
                on_click=zoom, args=(None,), width="stretch")
views[2].caption("Click a cell's dot to select it, or draw a box or lasso around several dots (tools at the top "
                 "right of the picture). Lasso a new cell's outline, or the part of a cell to cut off. Zoom with "
                 "the wheel or the zoom tool; a double click shows the whole picture.")

result = session.results.results[name]
table = session.cells()
table = table[table["image"] == name]
columns = [c for c in ["area_um2", "area", "circularity", "n_neighbours", "edited", "accepted"] if c in table.columns]
figure = session.picture(name, ("edit", ids, st.session_state.get(view_key)), lambda: cells_figure(
    render_cells(result.image.junction, result.labels), result.labels, table, columns=columns, ids=ids,
    view=st.session_state.get(view_key)))
st.plotly_chart(figure, key=chart_key, on_select="rerun", selection_mode=("points", "box", "lasso"),
                config={**CHART_CONFIG, "scrollZoom": True})

n_edited = int(edited_cells(table).sum())
st.caption(f"{len(table)} cells, {n_edited} corrected by hand; cells from {result.source}. Every edit is stored at "
           "once as a new version of the image: every page, download and statistic uses the latest.")
with st.expander(f"History: {len(history)} version(s) made by hand"):
    if len(history):
        st.dataframe(history[["version", "said", "cells", "session", "at"]], hide_index=True, width="stretch")
    else:
        st.caption("No corrections yet: the cells are the model's.")
