"""The dashboard's session state and cached resources: the one module that owns them.

Pages call these functions instead of touching ``st.session_state`` keys
themselves, so every key is defined here once.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from bbbcore import config
from bbbcore.errors import BBBError
from bbbcore.io import IMAGE_SUFFIXES, LoadedImage, load_image
from bbbcore.results import ResultSet

SAMPLE_DIR = config.REPO_DIR / "sample_data"
IMAGE_TYPES = [suffix.lstrip(".") for suffix in IMAGE_SUFFIXES]
SAMPLE_PIXEL_SIZE_UM = 0.617


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


def results() -> ResultSet:
    """The analysed images of this session."""
    return st.session_state.setdefault("results", ResultSet())


def settings() -> dict:
    """Analysis settings chosen on the Analyse page."""
    return st.session_state.setdefault("settings", {
        "model": str(config.DEFAULT_MODEL),
        "channel": None,
        "use_nuclei": False,
        "junction_threshold": None,
        "demo": False,
    })


def inputs() -> dict[str, bytes]:
    """Image files waiting for or done with analysis: name -> bytes."""
    return st.session_state.setdefault("inputs", {})


def decoded() -> dict[tuple, LoadedImage | str]:
    """Decoded inputs (or their one-line error), keyed by (file name, junction channel)."""
    return st.session_state.setdefault("decoded", {})


def set_input(name: str, data: bytes) -> bool:
    """Add or replace an input file; True when it is new or its bytes changed."""
    files = inputs()
    if files.get(name) == data:
        return False
    files[name] = data
    for key in [k for k in decoded() if k[0] == name]:
        del decoded()[key]
    return True


def decode(name: str, data: bytes) -> LoadedImage | str:
    """Load an input once per session (and channel choice); a bad file gives its message."""
    channel = settings()["channel"]
    key = (name, channel)
    cache = decoded()
    if key not in cache:
        try:
            cache[key] = load_image(data, name=name, channel=channel)
        except BBBError as exc:
            cache[key] = str(exc)
    return cache[key]


def sheet_version() -> int:
    return st.session_state.setdefault("sheet_version", 0)


def bump_sheet_version() -> None:
    st.session_state["sheet_version"] = sheet_version() + 1


def pixel_sizes() -> dict[str, float | None]:
    """Pixel size per file chosen in the table (None: unknown)."""
    return st.session_state.setdefault("pixel_sizes", {})


def add_sample_data() -> None:
    """Put the demo images and their illustrative sample sheet into the session (and an experiment)."""
    from bbbcore.metadata import read_sample_sheet

    if experiment_id() is None and store() is not None:
        open_experiment(store().create_experiment(store().unique_name("Sample data (demo)")))

    for path in sorted(SAMPLE_DIR.glob("*.jpg")):
        set_input(path.name, path.read_bytes())
    sheet = read_sample_sheet(SAMPLE_DIR / "samples.csv")
    merge_sheet(sheet)
    # The sample images are 10x: their 100 µm scale bar is 162 px long.
    pixel_sizes().update({name: SAMPLE_PIXEL_SIZE_UM for name in sheet["file"]})
    settings()["demo"] = True


def merge_sheet(sheet: pd.DataFrame) -> None:
    """Use ``sheet``'s rows for the files it lists (other files keep theirs)."""
    current = results().sheet
    listed = set(sheet["file"])
    kept = current[~current["file"].isin(listed)] if len(current) else current
    merged = pd.concat([kept, sheet], ignore_index=True) if len(kept) else sheet.copy()
    results().sheet = merged.reset_index(drop=True)
    bump_sheet_version()


def results_key() -> tuple:
    """Changes whenever an image's result or the sample sheet changes."""
    store = results()
    sheet = int(pd.util.hash_pandas_object(store.sheet.astype(str)).sum()) if len(store.sheet) else 0
    return tuple((n, id(r)) for n, r in store.results.items()), sheet


def anomaly() -> dict:
    """The anomaly model of the session (None until fitted) and its settings."""
    return st.session_state.setdefault("anomaly", {
        "model": None, "design": "improved", "fit_on": None, "contamination": 0.12, "seed": 0,
    })


def cells() -> pd.DataFrame:
    """All cells of the session, conditions applied, anomaly columns added once a model is fitted.

    Cached until the results, the sheet, the anomaly model or its threshold change.
    """
    store = results()
    settings = anomaly()
    model = settings["model"]
    key = (results_key(), id(model), settings["contamination"])
    cached = st.session_state.get("_cells_cache")
    if cached is None or cached[0] != key:
        table = store.cells()
        if model is not None and len(table):
            table = model.score(table, contamination=settings["contamination"])
        cached = (key, table)
        st.session_state["_cells_cache"] = cached
    return cached[1]


def zip_ready() -> bytes | None:
    """The zip of every file, when prepared for the current results."""
    cached = st.session_state.get("_zip_cache")
    return cached[1] if cached is not None and cached[0] == results_key() else None


def prepare_zip() -> bytes:
    """Build the zip of every file (cells.csv, summary.csv, per-image files) for the current results."""
    data = results().export_zip()
    st.session_state["_zip_cache"] = (results_key(), data)
    return data


def summary() -> pd.DataFrame:
    """The per-image summary of the session (cached until results or sheet change)."""
    key = results_key()
    cached = st.session_state.get("_summary_cache")
    if cached is None or cached[0] != key:
        cached = (key, results().summary())
        st.session_state["_summary_cache"] = cached
    return cached[1]


def thumbnail(plane, max_width: int = 800):
    """A normalised [0, 1] plane as a small uint8 picture (cheap to send to the browser)."""
    import numpy as np

    step = max(1, int(np.ceil(plane.shape[1] / max_width)))
    return (np.clip(plane[::step, ::step], 0, 1) * 255).astype(np.uint8)


def picture(name: str, options: tuple, make):
    """A rendered picture of an image, cached per image, result and display options."""
    result = results().results[name]
    key = (name, id(result), options)
    cache = st.session_state.setdefault("_pictures", {})
    if key not in cache:
        if len(cache) > 12:  # a few images x options; pictures are 4 MB each
            cache.clear()
        cache[key] = make()
    return cache[key]


def statistics(features: tuple, control: str, statistic: str) -> pd.DataFrame:
    """Treated vs control statistics of the session's cells (cached per inputs)."""
    from bbbcore.stats import compare_to_control

    key = (results_key(), features, control, statistic)
    cached = st.session_state.get("_stats_cache")
    if cached is None or cached[0] != key:
        cached = (key, compare_to_control(cells(), list(features), control, statistic=statistic, n_boot=1000))
        st.session_state["_stats_cache"] = cached
    return cached[1]


# --- experiments (bbbcore.store) ----------------------------------------------------

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


def experiment_id() -> int | None:
    """The open experiment; a new session (a page reload) reopens the one named in the URL."""
    if "experiment_id" not in st.session_state:
        st.session_state["experiment_id"] = None
        if store() is None:
            return None
        wanted = st.query_params.get("experiment")
        if wanted and str(wanted).isdigit() and int(wanted) in set(store().experiments()["id"]):
            open_experiment(int(wanted))
    return st.session_state["experiment_id"]


def open_experiment(chosen: int) -> None:
    """Load an experiment's stored results into this session (nothing is recomputed)."""
    from bbbcore.results import load_experiment

    for key in ("inputs", "decoded", "results", "pixel_sizes", "_cells_cache", "_summary_cache", "_zip_cache",
                "_pictures", "_stats_cache", "anomaly", "analysed_with", "last_run"):
        st.session_state.pop(key, None)
    loaded, originals, params = load_experiment(store(), chosen)
    st.session_state["results"] = loaded
    st.session_state["inputs"] = dict(originals)
    st.session_state["pixel_sizes"] = {name: params[name].get("pixel_size_um") for name in params}
    st.session_state["analysed_with"] = {name: tuple(params[name].get("key", ())) for name in params}
    st.session_state["experiment_id"] = chosen
    st.session_state["stored_sheet"] = loaded.sheet.copy()
    settings()["demo"] = False
    bump_sheet_version()
    st.query_params["experiment"] = str(chosen)


def ensure_experiment(default_name: str) -> int | None:
    """The open experiment, or a new one (kept with what this session already holds)."""
    chosen = experiment_id()
    if chosen is None and store() is None:
        return None
    if chosen is None:
        chosen = store().create_experiment(store().unique_name(default_name))
        st.session_state["experiment_id"] = chosen
        st.query_params["experiment"] = str(chosen)
        for name, result in results().results.items():
            persist_result(result, {"key": list(st.session_state.get("analysed_with", {}).get(name, ()))})
    return chosen


def close_experiment() -> None:
    st.session_state["experiment_id"] = None
    st.query_params.pop("experiment", None)


def experiment_name() -> str | None:
    chosen = experiment_id()
    if chosen is None:
        return None
    table = store().experiments()
    names = table.loc[table["id"] == chosen, "name"]
    return str(names.iloc[0]) if len(names) else None


def persist_result(result, params: dict) -> None:
    """Save one analysed image into the open experiment (when one is open)."""
    from bbbcore.metadata import sample_of
    from bbbcore.results import save_result

    chosen = experiment_id()
    if chosen is None:
        return
    save_result(store(), chosen, result, inputs()[result.name], params, sample=sample_of(results().sheet, result.name))
    st.session_state["stored_sheet"] = results().sheet.copy()


def persist_sheet() -> None:
    """Store edited conditions when they changed."""
    chosen = experiment_id()
    sheet = results().sheet
    previous = st.session_state.get("stored_sheet")
    if chosen is None or (previous is not None and previous.equals(sheet)):
        return
    store().update_samples(chosen, sheet)
    st.session_state["stored_sheet"] = sheet.copy()


def persist_anomalies(scored: pd.DataFrame) -> None:
    """Store the anomaly fields of the open experiment's cells when the model or threshold changed."""
    chosen = experiment_id()
    settings = anomaly()
    key = (chosen, id(settings["model"]), settings["contamination"], results_key())
    if chosen is None or st.session_state.get("_anomalies_stored") == key or "anomaly_score" not in scored:
        return
    store().update_anomalies(chosen, scored)
    st.session_state["_anomalies_stored"] = key


def exclude(name: str, reason: str | None, cell_ids=None) -> None:
    """Exclude an image (or some of its cells) from statistics with a reason; None includes it again."""
    import dataclasses

    store_ = results()
    result = store_.results[name]
    cells_ = result.cells.copy()
    if "excluded_reason" not in cells_:
        cells_["excluded_reason"] = ""
    chosen = cells_["cell_id"].isin(list(cell_ids)) if cell_ids is not None else slice(None)
    cells_.loc[chosen, "excluded_reason"] = (reason or "").strip()
    cells_["is_excluded"] = cells_["excluded_reason"] != ""
    store_.results[name] = dataclasses.replace(result, cells=cells_)
    if experiment_id() is not None:
        store().exclude(experiment_id(), name, reason, cell_ids=cell_ids)


def methods_text() -> str:
    """The methods paragraph of what this session ran."""
    from bbbcore.report import methods_paragraph
    from bbbcore.unet import read_card

    table = cells()
    exclusions = None
    if "is_excluded" in table:
        # An image whose every cell is excluded counts as one excluded image (cell_id empty).
        excluded = table[table["is_excluded"].eq(True)]
        whole = excluded["image"].map(excluded["image"].value_counts()) == excluded["image"].map(
            table["image"].value_counts())
        exclusions = pd.DataFrame({"image": excluded["image"], "cell_id": excluded["cell_id"].where(~whole),
                                   "reason": excluded["excluded_reason"]}).drop_duplicates(["image", "cell_id"])
    comparison = st.session_state.get("_stats_cache")
    control = features = None
    statistic, unit = "mean", "image"
    if comparison is not None:
        _, features, control, statistic = comparison[0]
        features = list(features)
        unit = comparison[1]["unit"].iloc[0] if len(comparison[1]) else "image"
    model = anomaly()["model"]
    return methods_paragraph(table, model_card=read_card(settings()["model"]), exclusions=exclusions,
                             control=control, features=features, statistic=statistic, unit=unit,
                             anomaly_card=model.card if model is not None else None)
