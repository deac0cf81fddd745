"""Small shared widgets of the dashboard pages."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import streamlit as st
from streamlit.runtime.scriptrunner_utils.exceptions import RerunException

from dashboard import state


def need_results() -> None:
    """Stop the page with a pointer to the Analyse page when nothing is analysed yet."""
    if not len(state.session().results):
        st.info("No analysed images yet.", icon=":material/info:")
        st.page_link("pages/analyse.py", label="Upload & analyse images first", icon=":material/upload:")
        st.stop()


def lasting_button(label: str, *, key: str, **kwargs) -> bool:
    """A button whose click lasts until :func:`click_handled` says its work is done.

    A table sends its last edit when it loses focus, which the click on a button causes: that message can
    reach the server just after the click's and interrupt the run the click started before it gets to the
    button, and the click is gone. The click is kept in ``st.session_state`` by the button's callback (run
    before the script), so whichever run gets there does the work.
    """
    def requested() -> None:
        st.session_state[f"{key}_requested"] = True

    st.button(label, key=key, on_click=requested, **kwargs)
    return bool(st.session_state.get(f"{key}_requested"))


@contextmanager
def click_handled(key: str, *, settle_s: float = 0.3) -> Iterator[None]:
    """Do a :func:`lasting_button`'s work; the click is forgotten when it ends, unless a rerun interrupted it.

    A short pause first lets an edit sent just after the click arrive; the run it starts goes on with the
    work, on the edited values.
    """
    time.sleep(settle_s)
    try:
        yield
    except RerunException:
        raise  # the click stays: the next run does the work
    except BaseException:
        st.session_state.pop(f"{key}_requested", None)  # a failure or a stop is not retried at every rerun
        raise
    st.session_state.pop(f"{key}_requested", None)


def size_text(size: int) -> str:
    """Bytes in words (MB, or GB from 1 GB)."""
    return f"{size / 2**30:.1f} GB" if size >= 2**30 else f"{size / 2**20:.1f} MB"


def notices() -> None:
    """Show, once, what the session has to tell (e.g. its experiment was deleted elsewhere and where results went)."""
    session = state.session()
    while session.notices:
        st.warning(session.notices.pop(0), icon=":material/warning:")


def _pixel_size_from_bar(session, name: str, bar, revision: int) -> None:
    """Offer the pixel size the burned-in scale bar gives, once the person has read its label."""
    from bbbcore.scalebar import bar_region

    read = session.scale_bar_label_um(name)
    st.caption(f"A scale bar {bar.length_px} px long is burned into this image. "
               + (f"Its label reads {read:g} µm (read by tesseract): check it against the picture, correct it if "
                  "need be, " if read else "Read its label and type the length it gives: ")
               + "the pixel size is then offered, not applied until you say so.")
    region = bar_region(session.decode(name).raw, bar).astype(np.float32)
    if region.ndim == 3 and region.shape[-1] not in (3, 4):
        region = region.max(axis=-1)  # a bar is drawn in every channel
    st.image(region / max(float(region.max()), 1e-9), caption="the scale bar and its label", clamp=True)
    length = st.number_input("Scale bar length (µm)", min_value=0.0, value=float(read or 0.0), format="%g",
                             key=f"bar_um_{name}_{revision}")
    if length:
        size = bar.pixel_size_um(length)
        if st.button(f"Use {size:.4g} µm/px ({length:g} µm / {bar.length_px} px)", key=f"bar_use_{name}_{revision}"):
            session.set_sample_fields(name, pixel_size_um=size)
            st.rerun()


def run_status(session) -> None:
    """The last run's outcome in one line, its notes, and every file that cannot be used, each once."""
    problems = session.problems()
    outcome = session.run_outcome()
    if outcome is not None:
        line, failed = outcome
        (st.warning if failed else st.success)(line, icon=":material/warning:" if failed else ":material/check:")
        notes = [w for step in session.last_run[0] for w in step.warnings]
        if notes:
            with st.expander(f"{len(notes)} note{'s' if len(notes) != 1 else ''} on the analysed images"):
                for note in notes:
                    st.warning(note, icon=":material/info:")
    elif problems:
        st.warning(f"{len(problems)} of {len(session.files)} files cannot be used; each is named below with "
                   "what to do.", icon=":material/warning:")
    for message in problems.values():
        st.error(message, icon=":material/error:")


def sidebar() -> None:
    """What every page shows in the sidebar: the model in use, and the demo note."""
    session = state.session()
    with st.sidebar:
        name = session.experiment_name()
        st.caption(f"Experiment: {name}" if name else "No experiment open")
        st.caption(f"Model: {Path(session.settings.model).stem}")
        if session.demo:
            st.caption(":material/science: sample data: the grouping is an illustrative demo")
        if session.first_time("chart library"):
            _load_chart_library()


def _load_chart_library() -> None:
    """An empty, invisible chart on a tab's first page: the browser fetches and compiles plotly.js
    (about 1.4 s on a 2-core machine) while the person reads that page, not when they first open a
    page of plots."""
    import plotly.graph_objects as go

    empty = go.Figure(layout={"height": 10, "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
                              "xaxis": {"visible": False}, "yaxis": {"visible": False}})
    st.plotly_chart(empty, config={"staticPlot": True, "displayModeBar": False}, key="chart_library")


def image_settings(session, name: str) -> None:
    """One image's channels (a thumbnail each), pixel size and cell diameter, each overridable; stored per image."""
    info = session.image_settings(name)
    image = session.decode(name)
    planes = session.channel_planes(name)
    names = info.channel_names
    columns = st.columns(min(len(planes), 4))
    for index, plane in enumerate(planes):
        role = "junction" if index == info.junction else "nuclei" if index == info.nuclear else "not used"
        columns[index % len(columns)].image(state.thumbnail(plane, 400), caption=f"{names[index]}: {role}",
                                            width="stretch")
    for warning in info.warnings:
        st.warning(warning, icon=":material/warning:")
    revision = session.sheet_revision  # widgets start afresh when the sheet changes elsewhere
    if len(planes) > 1:
        st.caption(f"{image.shape[1]} x {image.shape[0]} px; channels picked {info.channels_how}.")
        left, right = st.columns(2)
        junction = left.selectbox("Junction channel (ZO-1)", range(len(names)), index=info.junction,
                                  format_func=lambda i: names[i], key=f"junction_{name}_{revision}")
        choices = [None, *range(len(names))]
        nuclear = right.selectbox("Nuclear channel (DAPI)", choices, index=choices.index(info.nuclear),
                                  format_func=lambda i: "none" if i is None else names[i], key=f"nuclear_{name}_{revision}")
        if (junction, nuclear) != (info.junction, info.nuclear):
            session.set_sample_fields(name, channel=str(junction), nuclear_channel="none" if nuclear is None
                                      else str(nuclear))
            st.rerun()
    else:
        st.caption(f"{image.shape[1]} x {image.shape[0]} px, one channel.")
    left, right = st.columns(2)
    source = {"file": "from the file", "sample sheet": "set here or in the sample sheet"}.get(
        info.pixel_size_source, "not known: no µm columns")
    size = left.number_input(f"Pixel size (µm/px), {source}", min_value=0.0, value=info.pixel_size_um or 0.0,
                             format="%.4g", key=f"pixel_size_{name}_{revision}",
                             help="for the µm columns only; the cell diameter sets the scale the model sees")
    if size and abs(size - (info.pixel_size_um or 0.0)) > 1e-9:
        session.set_sample_fields(name, pixel_size_um=size)
        st.rerun()
    if info.pixel_size_um is None and (bar := session.scale_bar(name)) is not None:
        with left.container(border=True):
            _pixel_size_from_bar(session, name, bar, revision)
    estimated = (f"estimated {info.diameter_estimated_px:.0f} px" if info.diameter_estimated_px
                 else "estimated when analysed")
    diameter = right.number_input(f"Cell diameter (px), 0 = {estimated}", min_value=0.0,
                                  value=info.diameter_given_px or 0.0, format="%g", key=f"diameter_{name}_{revision}")
    if (diameter or None) != info.diameter_given_px:
        session.set_sample_fields(name, diameter_px=diameter or None)
        st.rerun()


#: The sample fields "apply to all" and "fill down" offer, as the table heads them.
FILLABLE = {"condition": "condition", "dose": "dose", "dose_unit": "dose unit", "replicate": "replicate",
            "well": "well", "pixel_size_um": "pixel size (µm/px)", "channel": "channel",
            "nuclear_channel": "nuclear channel", "diameter_px": "cell diameter (px)"}


def fill_sheet_controls(session, names: list[str]) -> None:
    """One field for many images: a value into every row, or each empty cell the value above it."""
    from bbbcore.errors import BBBError

    with st.container(horizontal=True, vertical_alignment="bottom"):
        column = st.selectbox("Field", list(FILLABLE), format_func=FILLABLE.get, key="fill_column", width=200)
        value = st.text_input("Value", key="fill_value", width=200,
                              help="empty: clears the field in every row (Apply to all)")
        apply_all = st.button("Apply to all", key="fill_all", icon=":material/done_all:",
                              help="this value in every image's row")
        fill_down = st.button("Fill down", key="fill_down", icon=":material/arrow_downward:",
                              help="each empty cell takes the value above it (type the first row's, then fill)")
    if apply_all or fill_down:
        try:
            changed = session.fill_sheet(names, column, value.strip() or None, down=fill_down)
        except BBBError as exc:
            st.error(str(exc), icon=":material/error:")
        else:
            st.toast(f"{FILLABLE[column]}: {changed} row(s) changed")
            st.rerun()
