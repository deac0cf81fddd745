"""A set of analysed images: what the dashboard holds for one batch.

Plain Python (no Streamlit), so a notebook can use it too::

    results = ResultSet()
    results.add(segment_image(load_image("a.tif"), model))
    results.sheet = sample_sheet_for(results.names())
    results.cells()        # one row per cell, with each image's condition and dose
    results.summary()      # one row per image
    results.export_zip()   # every file of the CLI's output folder, zipped

Sample fields (condition, dose, ...) live in :attr:`ResultSet.sheet`, not in
the stored tables: editing a condition never recomputes a segmentation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from . import config
from .export import image_outputs, table_csv_bytes, zip_bytes
from .features import edited_cells, summary_table
from .io import LoadedImage
from .metadata import SHEET_COLUMNS, TABLE_SAMPLE_FIELDS, apply_sample_sheet, empty_sheet, output_stem, tidy_sheet
from .pipeline import ImageResult


@dataclass
class ResultSet:
    """Analysed images (by file name, in order), their errors and their sample sheet."""

    results: dict[str, ImageResult] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    sheet: pd.DataFrame = field(default_factory=empty_sheet)

    def add(self, result: ImageResult) -> None:
        """Add or replace an image's result (and forget an earlier error of that file)."""
        self.results[result.name] = result
        self.errors.pop(result.name, None)
        if result.name not in set(self.sheet["file"]):
            from .metadata import sample_sheet_for

            row = sample_sheet_for([result.name])[list(SHEET_COLUMNS)]
            self.sheet = pd.concat([self.sheet, row], ignore_index=True) if len(self.sheet) else row

    def fail(self, name: str, message: str) -> None:
        """Record a file that could not be analysed (its one-line message)."""
        self.errors[name] = message

    def remove(self, name: str) -> None:
        self.results.pop(name, None)
        self.errors.pop(name, None)

    def names(self) -> list[str]:
        return list(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def cells(self) -> pd.DataFrame:
        """Every cell of every image, with the sample sheet's fields filled in."""
        if not self.results:
            return pd.DataFrame()
        tables = [result.cells for result in self.results.values()]
        cells = pd.concat(tables, ignore_index=True)
        for column in ("edited", "accepted"):  # only corrected images' tables have the columns
            if column in cells:
                cells[column] = edited_cells(cells, column)
        return apply_sample_sheet(cells, self.sheet)

    def interfaces(self) -> pd.DataFrame:
        """Every interface of every image, with each image's sample fields (measured now where missing)."""
        tables = [result.interface_table() for result in self.results.values()]
        tables = [t for t in tables if len(t)]
        if not tables:
            return pd.DataFrame()
        return apply_sample_sheet(pd.concat(tables, ignore_index=True), self.sheet)

    def summary(self, *, exclude_edge: bool = config.EXCLUDE_EDGE_CELLS,
                cells: pd.DataFrame | None = None) -> pd.DataFrame:
        """One row per image (:func:`bbbcore.features.summary_table`); ``cells`` when already built."""
        if not self.results:
            return pd.DataFrame()
        records = [result.record() for result in self.results.values()]
        return summary_table(self.cells() if cells is None else cells, images=records, exclude_edge=exclude_edge)

    def export_zip(self) -> bytes:
        """Everything, as the CLI's output folder: cells.csv, summary.csv, samples.csv and per-image files."""
        cells = self.cells()
        files = {
            "cells.csv": table_csv_bytes(cells),
            "interfaces.csv": table_csv_bytes(self.interfaces()),
            "summary.csv": table_csv_bytes(self.summary(cells=cells)),
            "samples.csv": table_csv_bytes(self.sheet[list(SHEET_COLUMNS)]),
        }
        used: set[str] = set()
        for name, result in self.results.items():
            stem = output_stem(name, image_id=result.image.image_id, used=used)
            files.update(image_outputs(stem, result.labels, cells=cells[cells["image"] == name],
                                       junction=result.image.junction, pixel_size_um=result.pixel_size_um))
        return zip_bytes(files)


# --------------------------------------------------------------------------
# Persisting a ResultSet in a Store (bbbcore.store)
# --------------------------------------------------------------------------

def save_result(store, experiment_id: int, result: ImageResult, original: bytes, params: dict,
                sample: dict | None = None, *, expected_labels_sha: str | None = None, edit: dict | None = None) -> int:
    """Store one image's result (one transaction); ``params`` are what produced it.

    ``expected_labels_sha``, ``edit``: see :meth:`bbbcore.store.Store.save_image` (a hand correction).
    """
    from .export import labels_tiff_bytes

    cells = result.cells.drop(columns=[c for c in TABLE_SAMPLE_FIELDS if c in result.cells.columns])
    return store.save_image(
        experiment_id, name=result.name, original=original,
        labels_tiff=labels_tiff_bytes(result.labels, pixel_size_um=result.pixel_size_um), cells=cells,
        params=params, sample={**(sample or {}), "pixel_size_um": result.pixel_size_um},
        model=(result.model_name, result.model_version), source=result.source,
        shape=result.labels.shape, cell_coverage=result.record()["cell_coverage"],
        diameters=(result.diameter_estimated_px, result.diameter_used_px),
        expected_labels_sha=expected_labels_sha, edit=edit, interfaces=result.interface_table(),
    )


def _stored_image_result(store, row, image: LoadedImage, cells: pd.DataFrame, *, source: str,
                         interfaces: pd.DataFrame | None = None) -> ImageResult:
    """An ImageResult from a stored image row, its cells and interfaces (nothing recomputed; interfaces None:
    stored before they were measured, measured when first needed)."""
    from .export import read_labels_tiff

    labels = read_labels_tiff(store.get_file(row["labels_sha"]))
    size = None if pd.isna(row["pixel_size_um"]) else float(row["pixel_size_um"])
    def number(field: str) -> float | None:
        value = row.get(field)
        return None if value is None or pd.isna(value) else float(value)

    return ImageResult(image, labels, cells, size, model_name=row["model_name"] or "",
                       model_version=row["model_version"] or "", source=source,
                       diameter_estimated_px=number("diameter_estimated_px"),
                       diameter_used_px=number("diameter_used_px"), interfaces=interfaces)


def load_experiment(store, experiment_id: int) -> tuple[ResultSet, dict[str, bytes], dict[str, dict]]:
    """Rebuild an experiment's results from the store, without recomputing anything.

    Returns the ResultSet (sample sheet from the stored sample fields), the
    original files by name, and the parameters each image was analysed with.
    """
    import json

    from .io import load_image

    images = store.images(experiment_id)
    cells = store.cells(experiment_id)
    interfaces = store.interfaces(experiment_id)
    measured = set(interfaces["image"]) if len(interfaces) else set()
    results = ResultSet()
    originals, params = {}, {}
    for _, row in images.iterrows():
        original = store.get_file(row["image_sha"])
        used = json.loads(row["params"])
        image = load_image(original, name=row["name"], channel=used.get("channel"),
                           nuclear_channel=used.get("nuclear_channel", "auto"))
        table = cells[cells["image"] == row["name"]].reset_index(drop=True) if len(cells) else pd.DataFrame()
        borders = (interfaces[interfaces["image"] == row["name"]].reset_index(drop=True)
                   if row["name"] in measured else None)
        results.results[row["name"]] = _stored_image_result(store, row, image, table, interfaces=borders,
                                                            source=row["source"] or "stored")
        originals[row["name"]] = original
        params[row["name"]] = used
    if len(images):
        results.sheet = tidy_sheet(images.rename(columns={"name": "file"}))
    return results, originals, params


def stored_result(store, experiment_id: int, image: LoadedImage, original: bytes, params: dict) -> ImageResult | None:
    """The stored result of the same file (by its bytes' hash) with the same parameters, if any.

    The same image uploaded twice, under any name, is then not recomputed.
    """
    from .store import params_key, sha256

    found = store.find_image(experiment_id, sha256(original), params_key(params))
    if found is None:
        return None
    cells = store.cells(experiment_id)
    cells = cells[cells["image"] == found["name"]].reset_index(drop=True)
    cells["image"] = image.name
    interfaces = store.interfaces(experiment_id)
    interfaces = interfaces[interfaces["image"] == found["name"]] if len(interfaces) else interfaces
    # None stored for it: measured when first needed.
    interfaces = interfaces.reset_index(drop=True).assign(image=image.name) if len(interfaces) else None
    return _stored_image_result(store, pd.Series(found), image, cells, interfaces=interfaces,
                                source=f"{found['source']} (same file as {found['name']})")
