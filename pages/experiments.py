"""Experiments: open, create, rename, delete, export and import; everything else works on the open one."""

from __future__ import annotations

import streamlit as st

from bbbcore.errors import BBBError
from dashboard import state, widgets

st.title("Experiments")
session = state.session()
widgets.notices()
store = state.store()
if store is None:
    st.error(state.store_problem(), icon=":material/error:")
    st.warning("Results are not saved in this session: they live only in this browser tab. Everything else works.")
    st.stop()
experiments = store.experiments()
current = session.experiment_id

if current is not None:
    st.success(f"Open: **{session.experiment_name()}**. Every page works on it; its results are saved as you go "
               f"and come back after a page reload or a server restart.", icon=":material/folder_open:")
else:
    st.info("No experiment open. Open one below, create one, or just start on **Upload & analyse**: "
            "the first analysis creates an experiment.", icon=":material/info:")
    if st.button("First time here? Load the sample data", icon=":material/science:", key="exp_sample",
                 help="five ZO-1 images (four 10x, one 4x) with an illustrative demo grouping, in a new experiment"):
        session.add_sample_data()
        st.switch_page("pages/analyse.py")

if len(experiments):
    st.dataframe(experiments.rename(columns={"n_images": "images", "n_cells": "cells"})[
        ["name", "images", "cells", "modified", "created"]], hide_index=True, width="stretch")
    names = dict(zip(experiments["id"], experiments["name"]))
    cols = st.columns([3, 1])
    chosen = cols[0].selectbox("Experiment", list(names), format_func=names.get, key="exp_choice",
                               index=list(names).index(current) if current in names else 0)
    if cols[1].button("Open", type="primary", key="exp_open", icon=":material/folder_open:"):
        with st.spinner("Loading the stored results…"):
            session.open(chosen)
        st.rerun()

with st.form("exp_create", clear_on_submit=True):
    name = st.text_input("New experiment", placeholder="e.g. Tat dose series, plate 3")
    if st.form_submit_button("Create and open", icon=":material/add:"):
        try:
            session.create_experiment(name)
        except BBBError as exc:
            st.error(str(exc), icon=":material/error:")
        else:
            st.rerun()

if current is not None:
    with st.expander("Rename, export or delete the open experiment"):
        new_name = st.text_input("New name", value=session.experiment_name() or "", key="exp_new_name")
        if st.button("Rename", key="exp_rename"):
            try:
                store.rename_experiment(current, new_name)
            except BBBError as exc:
                st.error(str(exc), icon=":material/error:")
            else:
                st.rerun()
        if st.button("Prepare an export (zip)", key="exp_export", icon=":material/folder_zip:"):
            with st.spinner("Packing the experiment…"):
                exported = session.experiment_zip()
            st.download_button("Download the experiment (zip)", exported,
                               file_name=f"{session.experiment_name()}.bbb-experiment.zip", mime="application/zip",
                               icon=":material/download:", key="exp_download")
        row = experiments[experiments["id"] == current].iloc[0]
        sure = st.checkbox(f"Yes, delete {row['name']!r} with its {row['n_images']} images and "
                           f"{row['n_cells']} cells", key="exp_sure")
        if st.button("Delete", disabled=not sure, key="exp_delete", icon=":material/delete:"):
            session.delete_experiment()
            st.rerun()

with st.expander("Import an experiment exported on another machine"):
    upload = st.file_uploader("Experiment zip", type=["zip"], key="exp_import")
    if upload is not None and session.first_time(("experiment zip", upload.file_id)):
        try:
            session.import_experiment(upload.getvalue(), source=upload.name)
        except BBBError as exc:
            st.error(str(exc), icon=":material/error:")
        else:
            st.rerun()
st.caption(f"Data folder: {store.folder.resolve()}, {widgets.size_text(store.folder_size())} (set BBB_DATA_DIR to move it). "
           "Deleting an experiment frees the files no other experiment uses.")
