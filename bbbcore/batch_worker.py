"""The Dask worker plugin of :mod:`bbbcore.batch` (apart, so that importing the batch needs no Dask)."""

from __future__ import annotations

from distributed import WorkerPlugin

from .batch import _MODELS, worker_model


class ModelPlugin(WorkerPlugin):
    """Each worker loads the model once, when it starts, with as many inference threads as it has."""

    def __init__(self, model: str):
        self.model = model

    def setup(self, worker) -> None:
        worker_model(self.model, threads=worker.state.nthreads)

    def teardown(self, worker) -> None:
        _MODELS.pop(self.model, None)
