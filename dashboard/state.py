"""The dashboard's state: cached resources (model, store) and one session object per browser tab.

Everything a page changes goes through :func:`session`, an
:class:`bbbcore.session.AnalysisSession`; this is the only module that
touches ``st.session_state`` or the URL.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from bbbcore import config
from bbbcore.io import IMAGE_SUFFIXES
from bbbcore.session import AnalysisSession

IMAGE_TYPES = [suffix.lstrip(".") for suffix in IMAGE_SUFFIXES]


@st.cache_resource(show_spinner="Loading the model (once per server)…")
def load_model(path: str):
    """The boundary model at ``path``, loaded once per server process and shared by sessions."""
    from bbbcore.unet import BoundaryModel

    return BoundaryModel.load(path)


def model_paths() -> list[Path]:
    """Models shipped in models/ (a .keras file with its card), the default first."""
    found = sorted(config.MODELS_DIR.rglob("*.keras"))
    found = [p for p in found if p.with_name(p.stem + ".card.json").exists()]
    return sorted(found, key=lambda p: p != config.DEFAULT_MODEL)


@st.cache_resource
def _open_store():
    from bbbcore.store import Store, StoreError

    try:
        return Store(), None
    except StoreError as exc:
        return None, str(exc)


def store():
    """The data folder's store, shared by every session of this server (None when unusable)."""
    return _open_store()[0]


def store_problem() -> str | None:
    """Why the store cannot be used (a one-line message), if it cannot."""
    return _open_store()[1]


def session() -> AnalysisSession:
    """This browser tab's session; a new tab (or a page reload) reopens the experiment named in the URL."""
    if "session" not in st.session_state:
        opened = AnalysisSession(store())
        wanted = st.query_params.get("experiment")
        if store() is not None and wanted and str(wanted).isdigit() \
                and int(wanted) in set(store().experiments()["id"]):
            opened.open(int(wanted))
        opened.on_experiment = _name_in_url
        _name_in_url(opened.experiment_id)
        st.session_state["session"] = opened
    return st.session_state["session"]


def sync_url() -> None:
    """Name the open experiment in the URL (switching pages drops query parameters)."""
    _name_in_url(session().experiment_id)


def _name_in_url(experiment_id: int | None) -> None:
    """Name the open experiment in the URL (called whenever it changes), so a reload or a shared link opens it."""
    if experiment_id is None:
        if "experiment" in st.query_params:
            del st.query_params["experiment"]
    elif st.query_params.get("experiment") != str(experiment_id):
        st.query_params["experiment"] = str(experiment_id)


def thumbnail(plane: np.ndarray, max_width: int = 800) -> np.ndarray:
    """A normalised [0, 1] plane as a small uint8 picture (cheap to send to the browser)."""
    step = max(1, int(np.ceil(plane.shape[1] / max_width)))
    return (np.clip(plane[::step, ::step], 0, 1) * 255).astype(np.uint8)
