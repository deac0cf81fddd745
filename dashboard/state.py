"""The dashboard's state: cached resources (model, store) and one session object per browser tab.

Everything a page changes goes through :func:`session`, an
:class:`bbbcore.session.AnalysisSession`; this is the only module that
touches ``st.session_state`` or the URL.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import streamlit as st

from bbbcore import config
from bbbcore.io import IMAGE_SUFFIXES
from bbbcore.session import AnalysisSession

IMAGE_TYPES = [suffix.lstrip(".") for suffix in IMAGE_SUFFIXES]


#: Models being loaded on a background thread since the server drew its first page, by path.
_warming: dict[str, Future] = {}
_warming_lock = threading.Lock()


def warm_up(path: str | None = None) -> None:
    """Start loading a model (default: the shipped one) on a background thread, once per server process.

    Called when a page is drawn: the person reads the page and chooses files meanwhile, so the first
    analysis of a fresh server does not wait for the model, nor for the first run's imports.
    """
    path = str(path or config.DEFAULT_MODEL)
    with _warming_lock:
        if path not in _warming:
            _warming[path] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="warm-up").submit(_load_primed, path)


def _load_primed(path: str):
    import io

    from PIL import Image

    from bbbcore.io import load_image
    from bbbcore.pipeline import segment_image
    from bbbcore.unet import BoundaryModel

    model = BoundaryModel.load(path)
    # A small grid of cells through the whole pipeline: its modules imported and the runtime's buffers made.
    grid = np.zeros((128, 128), np.uint8)
    grid[::32] = grid[:, ::32] = 255
    png = io.BytesIO()
    Image.fromarray(grid).save(png, format="PNG")
    segment_image(load_image(png.getvalue(), name="warm-up.png"), model, diameter_px=32.0)
    return model


@st.cache_resource(show_spinner="Loading the model (once per server)…")
def load_model(path: str):
    """The boundary model at ``path``, loaded once per server process and shared by sessions."""
    from bbbcore.unet import BoundaryModel

    started = _warming.get(str(path))
    if started is not None:
        try:
            return started.result()
        except Exception:  # noqa: BLE001 - loaded again here, where its error reaches the page
            pass
    return BoundaryModel.load(path)


def model_paths() -> list[Path]:
    """Models shipped in models/ (a .keras file with its card), the default first, then those the lab
    taught (the data folder's registry, newest first)."""
    from bbbcore.registry import registered_models

    found = sorted(config.MODELS_DIR.rglob("*.keras"))
    found = [p for p in found if p.with_name(p.stem + ".card.json").exists()]
    taught = registered_models(store().folder) if store() is not None else []
    return sorted(found, key=lambda p: p != config.DEFAULT_MODEL) + taught


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
