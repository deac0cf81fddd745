"""Upload & analyse: images in, conditions set, cells out."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from bbbcore.errors import BBBError
from bbbcore.export import table_csv_bytes
from bbbcore.metadata import SHEET_COLUMNS, read_sample_sheet, sample_sheet_for
from bbbcore.results import analyse_image, result_from_labels, stored_result
from bbbcore.unet import read_card
from dashboard import state

st.title("Upload & analyse")
results = state.results()
settings = state.settings()
files = state.inputs()

# --- images -------------------------------------------------------------------
left, right = st.columns([3, 1])
with left:
    uploaded = st.file_uploader(
        "Images (PNG, JPEG or TIFF; ZO-1 junctions, optionally DAPI nuclei)",
        type=state.IMAGE_TYPES, accept_multiple_files=True, key="image_uploader",
    )
with right:
    st.write("No images at hand?")
    if st.button("Load sample data", icon=":material/science:", help="five 10x ZO-1 images with an illustrative demo grouping"):
        state.add_sample_data()
        st.rerun()
    if files and st.button("Start over", help="close the experiment (it stays saved) and empty this page"):
        for key in ("inputs", "decoded", "results", "pixel_sizes", "_cells_cache", "_summary_cache",
                    "analysed_with", "last_run", "anomaly"):
            st.session_state.pop(key, None)
        state.close_experiment()
        settings["demo"] = False
        state.bump_sheet_version()
        st.rerun()

changed = [item.name for item in uploaded or [] if state.set_input(item.name, item.getvalue())]
if changed:
    state.bump_sheet_version()

if settings["demo"]:
    st.info("Sample data loaded. Its grouping into control and Tat 80 ng is an **illustrative demo**, "
            "not an experiment (see sample_data/README.md).", icon=":material/science:")

if not files:
    st.write("Drop a dozen images of one experiment above, or load the sample data, then say which are "
             "control and which are treated, and press **Analyse**.")
    st.stop()

# --- settings -----------------------------------------------------------------
with st.expander("Model and settings", expanded=False):
    paths = state.model_paths()
    labels = [str(p.relative_to(p.parents[1] if p.parent.name == "folds" else p.parent)) for p in paths]
    chosen = st.selectbox("Model", range(len(paths)), format_func=lambda i: labels[i],
                          index=next((i for i, p in enumerate(paths) if str(p) == settings["model"]), 0))
    settings["model"] = str(paths[chosen])
    card = read_card(paths[chosen])
    st.caption(f"**{card.name}** {card.version}: input `{card.input_channel}`, trained at "
               f"{card.pixel_size_um:g} µm/px on {card.training.get('data', 'unknown data')}.")
    with st.popover("Model card"):
        st.json({"metrics": card.metrics, "thresholds": card.thresholds, "notes": card.notes}, expanded=False)
    channel = st.text_input("Junction channel", value=settings["channel"] or "",
                            placeholder="auto (gray: itself; RGB: green)",
                            help="an index (0, 1, …), a colour (green) or a channel name from the file (ZO-1)")
    channel = channel.strip() or None
    if channel is not None and channel.isdigit():
        channel = int(channel)
    settings["channel"] = channel
    settings["use_nuclei"] = st.checkbox("Seed cells from the nuclear (DAPI) channel", value=settings["use_nuclei"])
    threshold = st.number_input(
        "Junction threshold (background-subtracted intensity; 0 = relative to each cell's cytoplasm)",
        min_value=0.0, value=float(settings["junction_threshold"] or 0.0),
        help="one fixed intensity for every cell and image: use it to compare images taken with the same settings",
    )
    settings["junction_threshold"] = threshold or None

# --- decode + preview ------------------------------------------------------------
decoded = {name: state.decode(name, data) for name, data in files.items()}
bad = {name: item for name, item in decoded.items() if isinstance(item, str)}
good = {name: item for name, item in decoded.items() if not isinstance(item, str)}
for message in bad.values():
    st.error(message, icon=":material/error:")

with st.expander(f"Preview ({len(good)} readable image{'s' if len(good) != 1 else ''})", expanded=False):
    if good:
        name = st.selectbox("Image", list(good), key="preview_image")
        image = good[name]
        cols = st.columns(2)
        cols[0].image(state.thumbnail(image.junction), caption=f"junction channel: "
                      f"{image.channel_names[image.junction_channel]}", width="stretch")
        if image.nuclei is not None:
            cols[1].image(state.thumbnail(image.nuclei),
                          caption=f"nuclear channel: {image.channel_names[image.nuclear_channel]}",
                          width="stretch")
        st.caption(f"{image.shape[1]} x {image.shape[0]} px, {len(image.channel_names)} channel(s): "
                   f"{', '.join(image.channel_names)}; pixel size "
                   f"{'%g µm' % image.pixel_size_um if image.pixel_size_um else 'not in the file'}.")

# --- conditions -----------------------------------------------------------------
st.subheader("Conditions")
sheet_file = st.file_uploader("Sample sheet (optional CSV: file, condition, dose, dose_unit, replicate, well)",
                              type=["csv", "txt"], key="sheet_uploader")
if sheet_file is not None and st.session_state.get("sheet_loaded") != sheet_file.file_id:
    try:
        state.merge_sheet(read_sample_sheet(sheet_file.getvalue(), name=sheet_file.name))
        settings["demo"] = False
    except BBBError as exc:
        st.error(str(exc), icon=":material/error:")
    st.session_state["sheet_loaded"] = sheet_file.file_id

names = list(good)
current = results.sheet
missing = [n for n in names if n not in set(current["file"])]
if missing:
    current = pd.concat([current, sample_sheet_for(missing)[list(SHEET_COLUMNS)]], ignore_index=True) \
        if len(current) else sample_sheet_for(missing)[list(SHEET_COLUMNS)]
table = current[current["file"].isin(names)].set_index("file").reindex(names).reset_index()
sizes = state.pixel_sizes()
table["pixel_size_um"] = [sizes.get(n, good[n].pixel_size_um) for n in names]
edited = st.data_editor(
    table, key=f"sheet_editor_{state.sheet_version()}", hide_index=True, num_rows="fixed",
    width="stretch",
    column_config={
        "file": st.column_config.TextColumn("file", disabled=True),
        "condition": st.column_config.TextColumn("condition", help="e.g. control, tat"),
        "dose": st.column_config.NumberColumn("dose", min_value=0.0, format="%g"),
        "dose_unit": st.column_config.TextColumn("dose unit", help="ng, µM, …"),
        "replicate": st.column_config.TextColumn("replicate"),
        "well": st.column_config.TextColumn("well"),
        "pixel_size_um": st.column_config.NumberColumn(
            "pixel size (µm/px)", min_value=0.0, format="%.4g",
            help="from the file when it says; empty = unknown (no µm columns)"),
    },
)
for name, size in zip(edited["file"], edited["pixel_size_um"]):
    sizes[name] = None if pd.isna(size) or size <= 0 else float(size)
others = current[~current["file"].isin(names)]
new_sheet = edited[list(SHEET_COLUMNS)]
results.sheet = pd.concat([others, new_sheet], ignore_index=True) if len(others) else new_sheet.reset_index(drop=True)
state.persist_sheet()
st.download_button("Download sample sheet", table_csv_bytes(new_sheet), file_name="samples.csv",
                   mime="text/csv", icon=":material/download:")

# --- run ------------------------------------------------------------------------
def settings_key(name: str) -> tuple:
    return (settings["model"], settings["channel"], settings["use_nuclei"], settings["junction_threshold"],
            sizes.get(name))


def params(name: str) -> dict:
    """What produced an image's cells: stored with them, so a reload knows them."""
    return {"model": settings["model"], "channel": settings["channel"], "use_nuclei": settings["use_nuclei"],
            "junction_threshold": settings["junction_threshold"], "pixel_size_um": sizes.get(name),
            "key": list(settings_key(name))}


done = st.session_state.setdefault("analysed_with", {})
todo = [n for n in names if n not in results.results or done.get(n) != settings_key(n)]
label = f"Analyse {len(todo)} image{'s' if len(todo) != 1 else ''}" if todo else "All images analysed"
if st.button(label, type="primary", disabled=not todo, icon=":material/play_arrow:"):
    state.ensure_experiment(time.strftime("Experiment %Y-%m-%d %H:%M"))
    model = state.load_model(settings["model"])
    progress = st.progress(0.0, text="starting…")
    started = time.perf_counter()
    log = []
    for index, name in enumerate(todo):
        with st.status(f"{name}: segmenting…", expanded=False) as status:
            try:
                # The same file already analysed with these settings (under any name): reuse it.
                result = stored_result(state.store(), state.experiment_id(), good[name], files[name], params(name)) \
                    or analyse_image(good[name], model, pixel_size_um=sizes.get(name),
                                     use_nuclei=settings["use_nuclei"],
                                     junction_threshold=settings["junction_threshold"])
            except BBBError as exc:
                results.fail(name, str(exc))
                status.update(label=f"{name}: {exc}", state="error")
                log.append((False, str(exc)))
            else:
                results.add(result)
                done[name] = settings_key(name)
                state.persist_result(result, params(name))
                text = f"{name}: {len(result.cells)} cells in {result.seconds:.1f} s"
                status.update(label=text, state="complete")
                log.append((True, text))
        progress.progress((index + 1) / len(todo), text=f"{index + 1} of {len(todo)} images")
    st.session_state["last_run"] = (log, time.perf_counter() - started)
    progress.progress(1.0, text=f"done: {len(todo)} image(s) in {time.perf_counter() - started:.1f} s")
elif "last_run" in st.session_state:
    log, seconds = st.session_state["last_run"]
    with st.expander(f"Last run: {len(log)} image(s) in {seconds:.1f} s", expanded=False):
        for ok, text in log:
            (st.success if ok else st.error)(text, icon=":material/check:" if ok else ":material/error:")

for name, message in results.errors.items():
    if name not in bad:
        st.error(message, icon=":material/error:")

# --- results --------------------------------------------------------------------
if len(results):
    st.subheader("Results")
    summary = state.summary()
    cells = state.cells()
    cols = st.columns(3)
    cols[0].metric("Images analysed", len(results))
    cols[1].metric("Cells (edge cells included)", len(cells))
    cols[2].metric("Cells at the image edge", int(cells["touches_edge"].sum()))
    shown = [c for c in ["image", "condition", "dose", "n_cells", "n_edge_excluded", "cells_per_mm2",
                         "area_um2_mean", "area_mean", "junction_continuity_mean"] if c in summary.columns]
    st.dataframe(summary[shown], hide_index=True, width="stretch")
    st.page_link("pages/segmentation.py", label="See the cells on the images", icon=":material/biotech:")
    st.page_link("pages/cells.py", label="Browse and download the table", icon=":material/table:")
    st.page_link("pages/compare.py", label="Compare conditions", icon=":material/compare:")

    with st.expander("Use a labels TIFF corrected by hand (Fiji) for an image"):
        st.write("Export the labels from Fiji as a TIFF of the image's size (0 = no cell, one value per cell). "
                 "Its cells replace the model's for that image; the measurements are redone.")
        target = st.selectbox("Image", list(results.results), key="labels_target")
        labels_file = st.file_uploader("Labels TIFF", type=["tif", "tiff"], key="labels_uploader")
        if labels_file is not None and st.button("Replace the cells", key="replace_cells"):
            try:
                result = result_from_labels(results.results[target].image, labels_file.getvalue(), labels_file.name,
                                            pixel_size_um=sizes.get(target),
                                            junction_threshold=settings["junction_threshold"])
            except BBBError as exc:
                st.error(str(exc), icon=":material/error:")
            else:
                results.add(result)
                done[target] = settings_key(target)
                state.persist_result(result, params(target))
                st.success(f"{target}: {len(result.cells)} cells from {labels_file.name}.")
    sources = {name: r.source for name, r in results.results.items()}
    st.caption("Cells from: " + "; ".join(f"{n}: {s}" for n, s in sources.items()))
