"""bbbcore: segment and measure Blood-Brain-Barrier endothelial cells.

Plain functions on numpy arrays and pandas DataFrames; no Streamlit, and
TensorFlow is imported only where a network is built, loaded or run. The
names below load their module on first use, so ``import bbbcore`` is cheap.

>>> import bbbcore
>>> model = bbbcore.load_model()  # the shipped U-Net  # doctest: +SKIP
>>> result = bbbcore.segment_image(bbbcore.load_image("cells.tif"), model)  # doctest: +SKIP
>>> result.cells.head()  # doctest: +SKIP
"""

# No `from __future__ import annotations` here: it would bind the name
# `annotations`, hiding the bbbcore.annotations submodule until imported.
import importlib as _importlib

__version__ = "0.1.0"

#: Public name -> the submodule that defines it (loaded on first access).
_LAZY = {
    "load_image": "io",
    "load_model": "unet",
    "segment_image": "pipeline",
    "measure_labels": "pipeline",
    "measure": "pipeline",
    "cell_interfaces": "interfaces",
    "cells_table": "features",
    "summary_table": "features",
    "Store": "store",
    "AnalysisSession": "session",
    "AnomalyModel": "anomaly",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
