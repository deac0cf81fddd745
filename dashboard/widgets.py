"""Small shared widgets of the dashboard pages."""

from __future__ import annotations

import streamlit as st

from dashboard import state


def need_results() -> None:
    """Stop the page with a pointer to the Analyse page when nothing is analysed yet."""
    if not len(state.results()):
        st.info("No analysed images yet.", icon=":material/info:")
        st.page_link("pages/analyse.py", label="Upload & analyse images first", icon=":material/upload:")
        st.stop()


def sidebar() -> None:
    """What every page shows in the sidebar: the session's images and model."""
    results = state.results()
    with st.sidebar:
        st.caption(f"{len(results)} image(s) analysed, {sum(len(r.cells) for r in results.results.values())} cells"
                   if len(results) else "No images analysed yet")
        if results.errors:
            st.caption(f"{len(results.errors)} file(s) could not be analysed")
        if state.settings().get("demo"):
            st.caption(":material/science: sample data: the grouping is an illustrative demo")
