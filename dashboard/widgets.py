"""Small shared widgets of the dashboard pages."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import state


def need_results() -> None:
    """Stop the page with a pointer to the Analyse page when nothing is analysed yet."""
    if not len(state.session().results):
        st.info("No analysed images yet.", icon=":material/info:")
        st.page_link("pages/analyse.py", label="Upload & analyse images first", icon=":material/upload:")
        st.stop()


def size_text(size: int) -> str:
    """Bytes in words (MB, or GB from 1 GB)."""
    return f"{size / 2**30:.1f} GB" if size >= 2**30 else f"{size / 2**20:.1f} MB"


def notices() -> None:
    """Show, once, what the session has to tell (e.g. its experiment was deleted elsewhere and where results went)."""
    session = state.session()
    while session.notices:
        st.warning(session.notices.pop(0), icon=":material/warning:")


def sidebar() -> None:
    """What every page shows in the sidebar: the model in use, and the demo note."""
    session = state.session()
    with st.sidebar:
        name = session.experiment_name()
        st.caption(f"Experiment: {name}" if name else "No experiment open")
        st.caption(f"Model: {Path(session.settings.model).stem}")
        if session.demo:
            st.caption(":material/science: sample data: the grouping is an illustrative demo")
