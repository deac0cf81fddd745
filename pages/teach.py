"""Teach the model: fine-tune it on the cells corrected or accepted by hand, in the background."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from bbbcore.errors import BBBError
from bbbcore.finetune import DEFAULT_STEPS, MAX_F1_LOSS, TeachingJob
from bbbcore.registry import suggested_name
from dashboard import state, widgets

st.title("Teach the model")
widgets.need_results()
session = state.session()
examples = session.teaching_examples()
st.write("The model learns from the cells you corrected or accepted on **Correct cells**; the rest of each "
         f"image is left out. A fifth of those cells is held out to check the new model against its parent: it "
         f"is kept only if it scores no more than {MAX_F1_LOSS:g} below it (F1 at IoU 0.5). It runs in the "
         "background, at a lower priority: this and other sessions go on working meanwhile.")
if examples:
    st.dataframe(pd.DataFrame({"image": [name for name, _, _ in examples],
                               "cells to learn from": [int(len(set(labels.ravel())) - 1) for _, _, labels in examples]}),
                 hide_index=True)
else:
    st.info("No cells corrected or accepted yet: on **Correct cells**, fix the model's mistakes, or select cells "
            "it drew right and press **Accept**.", icon=":material/edit:")

folder = state.store().folder if state.store() is not None else None
if session.teaching is None:  # a reloaded page is a new session: find the fine-tuning under way again
    session.teaching = TeachingJob.latest_running(folder)
job = session.teaching
running = job is not None and job.state()["running"]
if not running:
    parent = Path(session.settings.model)
    cols = st.columns([3, 1, 1])
    name = cols[0].text_input("Name of the new model", value=suggested_name(parent.stem, folder), key="teach_name")
    steps = cols[1].number_input("Training steps", min_value=20, max_value=5000, value=DEFAULT_STEPS, step=50,
                                 key="teach_steps", help="About 0.25 s a step on a 2-core CPU")
    if cols[2].button("Teach", icon=":material/school:", type="primary", disabled=not examples, width="stretch"):
        try:
            session.teaching = TeachingJob.start(parent, examples, name=name, data_folder=folder, steps=int(steps))
            st.rerun()
        except BBBError as exc:
            st.error(str(exc))
    st.caption(f"Starts from {parent.stem}, the model chosen on Upload & analyse.")


@st.fragment(run_every=1.0 if running else None)
def progress() -> None:
    if session.teaching is None:
        return
    now = session.teaching.state()
    if now["running"]:
        st.progress(now["fraction"], text=f"{session.teaching.name}: {now['stage']} ({now['fraction']:.0%})")
        if st.button("Cancel", icon=":material/cancel:"):
            session.teaching.cancel()
            st.rerun()
        return
    if running:  # it has just finished: draw the whole page again (the Teach button comes back)
        st.rerun()
    if now["problem"]:
        st.error(f"{session.teaching.name}: {now['problem']}")
        return
    report = now["report"]
    before, after = report["parent_score"]["f1@0.5"], report["score"]["f1@0.5"]
    for warning in report["warnings"]:
        st.warning(warning)
    metrics = st.columns(3)
    metrics[0].metric(f"Parent ({report['parent']})", f"{before:.3f}")
    metrics[1].metric(session.teaching.name, f"{after:.3f}", delta=f"{after - before:+.3f}")
    metrics[2].metric("Check cells", report["n_check_cells"])
    if not report["accepted"]:
        st.error(f"{session.teaching.name} was refused: {after:.3f} is more than {MAX_F1_LOSS:g} below its parent's "
                 f"{before:.3f} on the same check cells, so the parent stays. Correct more cells and teach again.")
        return
    st.success(f"{session.teaching.name} is kept ({report['seconds']:.0f} s) and listed under Model on Upload & "
               "analyse.")
    if st.button(f"Re-analyse every image with {session.teaching.name}", icon=":material/replay:"):
        session.settings.model = str(session.teaching.model_path)
        st.switch_page("pages/analyse.py")
    st.caption("Re-analysing replaces each image's cells by the new model's, hand corrections included (press "
               "Analyse on the next page).")


progress()
