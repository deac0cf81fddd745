"""Upload & analyse: images in, conditions set, cells out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from bbbcore import config
from bbbcore.errors import BBBError
from bbbcore.export import table_csv_bytes
from bbbcore.metadata import SAMPLE_FIELDS, SHEET_COLUMNS, read_sample_sheet, sheet_for_editing
from bbbcore.unet import read_card
from dashboard import state, widgets

st.title("Upload & analyse")
session = state.session()
settings = session.settings

# --- images -------------------------------------------------------------------
left, right = st.columns([3, 1])
with left:
    uploaded = st.file_uploader(
        "Images (PNG, JPEG, TIFF / OME-TIFF, Zeiss CZI, Nikon ND2, Leica LIF, or a zipped OME-Zarr folder; "
        "ZO-1 junctions, optionally DAPI nuclei)",
        type=state.IMAGE_TYPES, accept_multiple_files=True, key="image_uploader",
    )
with right:
    st.write("No images at hand?")
    if st.button("Load sample data", icon=":material/science:", help="five ZO-1 images (four 10x, one 4x) with an illustrative demo grouping"):
        session.add_sample_data()
        st.rerun()
    # Always drawn (disabled until there is something to empty): a button appearing after the upload's
    # first rerun pushed the conditions table down while the user was editing it.
    if st.button("Start over", help="close the experiment (it stays saved) and empty this page",
                 disabled=not (session.files or uploaded)):
        session.close()
        st.rerun()

for item in uploaded or []:
    session.add_file(item.name, item.getvalue())

if session.demo:
    st.info("Sample data loaded. Its grouping into control and Tat 80 ng is an **illustrative demo**, "
            "not an experiment (see sample_data/README.md).", icon=":material/science:")

if not session.files:
    st.write("Drop a dozen images of one experiment above, or load the sample data, then say which are "
             "control and which are treated, and press **Analyse**.")
    st.stop()

# --- settings -----------------------------------------------------------------
with st.expander("Model and settings", expanded=False):
    paths = state.model_paths()
    labels = [f"{p.stem} (taught here)" if not p.is_relative_to(config.MODELS_DIR) else
              str(p.relative_to(p.parents[1] if p.parent.name == "folds" else p.parent)) for p in paths]
    chosen = st.selectbox("Model", range(len(paths)), format_func=lambda i: labels[i],
                          index=next((i for i, p in enumerate(paths) if str(p) == settings.model), 0))
    settings.model = str(paths[chosen])
    card = read_card(paths[chosen])
    st.caption(f"**{card.name}** {card.version}: input `{card.input_channel}`, trained at "
               f"{card.pixel_size_um:g} µm/px on {card.training.get('data', 'unknown data')}.")
    with st.popover("Model card"):
        st.json({"metrics": card.metrics, "thresholds": card.thresholds, "notes": card.notes}, expanded=False)
    channel = st.text_input("Junction channel", value=str(settings.channel or ""),
                            placeholder="auto (gray: itself; RGB: green)",
                            help="an index (0, 1, …), a colour (green) or a channel name from the file (ZO-1); "
                                 "a sample sheet's channel column sets it per image")
    channel = channel.strip() or None
    settings.channel = int(channel) if channel is not None and channel.isdigit() else channel
    settings.use_nuclei = st.checkbox("Seed cells from the nuclear (DAPI) channel", value=settings.use_nuclei)
    threshold = st.number_input(
        "Junction threshold (background-subtracted intensity; 0 = relative to each cell's cytoplasm)",
        min_value=0.0, value=float(settings.junction_threshold or 0.0),
        help="one fixed intensity for every cell and image: use it to compare images taken with the same settings",
    )
    settings.junction_threshold = threshold or None

# --- decode + preview ------------------------------------------------------------
good = session.readable()

with st.expander(f"Preview and per-image settings ({len(good)} readable image{'s' if len(good) != 1 else ''})",
                 expanded=False):
    if good:
        name = st.selectbox("Image", list(good), key="preview_image")
        widgets.image_settings(session, name)

# --- conditions -----------------------------------------------------------------
st.subheader("Conditions")
sheet_file = st.file_uploader("Sample sheet (optional CSV: " + ", ".join(SHEET_COLUMNS) + ")",
                              type=["csv", "txt"], key="sheet_uploader")
if sheet_file is not None and session.first_time(("sheet", sheet_file.file_id)):
    try:
        session.merge_sheet(read_sample_sheet(sheet_file.getvalue(), name=sheet_file.name), source=sheet_file.name)
        session.demo = False
    except BBBError as exc:
        st.error(str(exc), icon=":material/error:")

names = list(good)
estimated = tuple(session.estimated_diameters.get(n, np.nan) for n in names)
# The table the editor starts from stays the same object until the sheet changes elsewhere (a sheet
# file, Apply to all, new images, new estimates): the editor keeps the edits itself, and data that
# changed under it at every edit made the browser redraw it and drop what was being typed next.
# One type per column whatever the values, too (bbbcore.metadata.sheet_for_editing).
base_key = (session.sheet_revision, tuple(names), estimated)
if st.session_state.get("sheet_base", (None,))[0] != base_key:
    table = sheet_for_editing(session.sheet_for(names))
    table["diameter_estimated_px"] = np.array(estimated, float)
    st.session_state["sheet_base"] = (base_key, table)
table = st.session_state["sheet_base"][1]
text = {field: st.column_config.TextColumn(field.replace("_", " "), help=help_text)
        for field, help_text in SAMPLE_FIELDS.items()}
edited = st.data_editor(
    table, key=f"sheet_editor_{session.sheet_revision}_{len(names)}", hide_index=True, num_rows="fixed", width="stretch",
    column_config={
        **text,
        "file": st.column_config.TextColumn("file", disabled=True),
        "dose": st.column_config.NumberColumn("dose", min_value=0.0, format="%g", help=SAMPLE_FIELDS["dose"]),
        "pixel_size_um": st.column_config.NumberColumn("pixel size (µm/px)", min_value=0.0, format="%.4g",
                                                       help=SAMPLE_FIELDS["pixel_size_um"]),
        "diameter_estimated_px": st.column_config.NumberColumn(
            "estimated diameter (px)", disabled=True, format="%.0f",
            help="the typical cell diameter the analysis estimates (press 'Estimate cell diameters', or analyse)"),
        "diameter_px": st.column_config.NumberColumn(
            "cell diameter (px)", min_value=0.0, format="%g",
            help=SAMPLE_FIELDS["diameter_px"] + "; the image is resized so its cells match the model's training "
                 "diameter, and the results show the diameter estimated and used"),
    },
)
others = session.results.sheet[~session.results.sheet["file"].isin(names)]
session.set_sheet(pd.concat([others, edited], ignore_index=True) if len(others) else edited)
widgets.fill_sheet_controls(session, names)
buttons = st.columns([1, 1, 1])
buttons[0].download_button("Download sample sheet", table_csv_bytes(edited[list(SHEET_COLUMNS)]),
                           file_name="samples.csv", mime="text/csv", icon=":material/download:")
missing = [n for n in names if n not in session.estimated_diameters]
if missing and buttons[1].button("Estimate cell diameters", icon=":material/straighten:", key="estimate_diameters",
                                 help="the model on a crop of each image, about a second each: see each image's "
                                      "typical cell diameter before analysing (empty diameter = this estimate)"):
    with st.spinner(f"Estimating the cell diameter of {len(missing)} image(s)…"):
        session.estimate_diameters(state.load_model(settings.model), missing)
    st.rerun()

# --- run ------------------------------------------------------------------------
todo = session.pending()
label = f"Analyse {len(todo)} image{'s' if len(todo) != 1 else ''}" if todo else (
    "All images analysed" if good else "No readable image")
# A key keeps the button the same widget when its label changes with the count (an edit that makes an
# image pending changes the label; without the key, the click that follows the edit was lost), and the
# click lasts until the run is done (an edit sent as the table loses focus to the click reruns the page).
run = widgets.lasting_button(label, type="primary", disabled=not todo, icon=":material/play_arrow:",
                             key="analyse_run")
# The run's progress, then its outcome and each unusable file once, all in this one place: a new run
# replaces the last one's messages at once.
status = st.empty()
if run:
    with widgets.click_handled("analyse_run"), status.container():
        if todo:  # none left when the run before finished them just as a rerun interrupted it
            model = state.load_model(settings.model)
            progress = st.progress(0.0, text="starting…")
            for step in session.analyse(model, todo):
                if not step.done:
                    progress.progress(step.index / step.total, text=f"{step.name}: segmenting… "
                                      f"({step.index + 1} of {step.total})")
with status.container():
    widgets.run_status(session)
widgets.notices()

# --- results --------------------------------------------------------------------
if len(session.results):
    st.subheader("Results")
    summary = session.summary()
    cells = session.cells()
    cols = st.columns(3)
    cols[0].metric("Images analysed", len(session.results))
    cols[1].metric("Cells (edge cells included)", len(cells))
    cols[2].metric("Cells at the image edge", int(cells["touches_edge"].sum()))
    shown = [c for c in ["image", "condition", "dose", "n_cells", "n_edge_excluded", "diameter_estimated_px",
                         "diameter_used_px", "cells_per_mm2", "area_um2_mean", "area_mean",
                         "junction_continuity_mean"] if c in summary.columns]
    st.dataframe(summary[shown], hide_index=True, width="stretch")
    st.page_link("pages/segmentation.py", label="See the cells on the images", icon=":material/biotech:")
    st.page_link("pages/cells.py", label="Browse and download the table", icon=":material/table:")
    st.page_link("pages/compare.py", label="Compare conditions", icon=":material/compare:")

    with st.expander("Use a labels TIFF corrected by hand (Fiji) for an image"):
        st.write("Export the labels from Fiji as a TIFF of the image's size (0 = no cell, one value per cell). "
                 "Its cells replace the model's for that image; the measurements are redone.")
        target = st.selectbox("Image", session.results.names(), key="labels_target")
        labels_file = st.file_uploader("Labels TIFF", type=["tif", "tiff"], key="labels_uploader")
        if labels_file is not None and st.button("Replace the cells", key="replace_cells"):
            try:
                result = session.replace_labels(target, labels_file.getvalue(), labels_file.name)
            except BBBError as exc:
                st.error(str(exc), icon=":material/error:")
            else:
                st.success(f"{target}: {len(result.cells)} cells from {labels_file.name}.")
    st.caption("Cells from: " + "; ".join(f"{n}: {r.source}" for n, r in session.results.results.items()))
