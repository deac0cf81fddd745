"""The models a lab taught: fine-tuned models kept under the data folder, listed beside the shipped ones.

Layout (inside the data folder, ``$BBB_DATA_DIR`` or ``./bbb-data``)::

    models/<name>.keras, <name>.card.json, <name>.onnx

A model is written there only when it passed its check (:func:`bbbcore.finetune.finetune`); its card
says its parent, the images and cells it learned from, the steps and its check-set score beside its
parent's. Nothing here ever replaces the shipped model (``models/`` of the package).
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import BBBError


class RegistryError(BBBError):
    """A name that cannot be used for a new model."""


def registry_folder(data_folder: str | Path | None = None) -> Path:
    """Where taught models are kept: ``<data folder>/models``."""
    from .store import default_folder

    return Path(data_folder if data_folder is not None else default_folder()) / "models"


def registered_models(data_folder: str | Path | None = None) -> list[Path]:
    """The taught models (``.keras`` files with a card), newest first."""
    folder = registry_folder(data_folder)
    if not folder.is_dir():
        return []
    found = [p for p in folder.glob("*.keras") if p.with_name(p.stem + ".card.json").exists()]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def new_model_path(name: str, data_folder: str | Path | None = None) -> Path:
    """The path a new taught model called ``name`` is written to (the folder made).

    Raises
    ------
    RegistryError
        A name that is empty, not a plain file name, a shipped model's, or taken already.
    """
    from . import config

    clean = name.strip()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,79}", clean) or clean.endswith(".keras"):
        raise RegistryError(f"{name!r}: a model name is 1-80 letters, digits, '_', '.', '+' or '-' (no spaces, "
                            "no folders), starting with a letter or digit")
    shipped = {p.stem for p in config.MODELS_DIR.rglob("*.keras")}
    if clean in shipped:
        raise RegistryError(f"{clean}: the name of a shipped model; choose another (the shipped one is never replaced)")
    path = registry_folder(data_folder) / f"{clean}.keras"
    if path.exists():
        raise RegistryError(f"{clean}: a taught model of this name exists already; choose another")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def suggested_name(parent: str, data_folder: str | Path | None = None) -> str:
    """A free name for a model taught from ``parent``: ``<parent>-taught-<n>``."""
    taken = {p.stem for p in registered_models(data_folder)}
    n = 1
    while f"{parent}-taught-{n}" in taken:
        n += 1
    return f"{parent}-taught-{n}"
