"""A set of analysed images: what the dashboard holds for one batch.

Plain Python (no Streamlit), so a notebook can use it too::

    results = ResultSet()
    results.add(analyse_image(load_image("a.tif"), model))
    results.sheet = sample_sheet_for(results.names())
    results.cells()        # one row per cell, with each image's condition and dose
    results.summary()      # one row per image
    results.export_zip()   # every file of the CLI's output folder, zipped

Sample fields (condition, dose, ...) live in :attr:`ResultSet.sheet`, not in
the stored tables: editing a condition never recomputes a segmentation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import config
from .errors import ImageReadError
from .export import image_outputs, read_labels_tiff, table_csv_bytes, zip_bytes
from .features import SAMPLE_FIELDS, image_record, summary_table
from .io import LoadedImage
from .metadata import SHEET_COLUMNS, empty_sheet, sample_of
from .pipeline import measure_labels, segment_image


@dataclass
class ImageResult:
    """One image's cells.

    Attributes
    ----------
    image : LoadedImage
    labels : (H, W) int32 labels image
    cells : DataFrame, the cells table without sample fields filled
    pixel_size_um : float or None
    source : str, "model <name> <version>" or "labels file <name>"
    seconds : float, time it took
    """

    image: LoadedImage
    labels: np.ndarray
    cells: pd.DataFrame
    pixel_size_um: float | None
    source: str
    seconds: float = 0.0

    @property
    def name(self) -> str:
        return self.image.name

    @property
    def stem(self) -> str:
        return self.name.rsplit(".", 1)[0] if "." in self.name else self.name

    def record(self) -> dict:
        """:func:`bbbcore.features.image_record` of this image."""
        return image_record(self.labels, image=self.name, image_id=self.image.image_id,
                            pixel_size_um=self.pixel_size_um)


def analyse_image(
    image: LoadedImage,
    model,
    *,
    pixel_size_um: float | None = None,
    use_nuclei: bool = False,
    junction_threshold: float | None = None,
) -> ImageResult:
    """Segment and measure one loaded image with a boundary model."""
    started = time.perf_counter()
    result = segment_image(image, model, pixel_size_um=pixel_size_um, use_nuclei=use_nuclei,
                           junction_threshold=junction_threshold)
    return ImageResult(image, result.labels, result.cells, result.pixel_size_um,
                       f"model {model.card.name} {model.card.version}", time.perf_counter() - started)


def result_from_labels(
    image: LoadedImage,
    labels_data: bytes,
    labels_name: str,
    *,
    pixel_size_um: float | None = None,
    junction_threshold: float | None = None,
) -> ImageResult:
    """Replace the model's cells by a labels TIFF (corrected by hand in Fiji).

    Raises
    ------
    ImageReadError
        Not a labels TIFF, or not the image's height and width.
    """
    started = time.perf_counter()
    if not labels_data:
        raise ImageReadError(labels_name, "the file is empty (0 bytes)")
    try:
        labels = read_labels_tiff(labels_data)
    except Exception as exc:  # tifffile raises many kinds for non-TIFF bytes
        raise ImageReadError(labels_name, f"not a readable labels TIFF ({type(exc).__name__}: {exc})") from None
    size = pixel_size_um if pixel_size_um is not None else image.pixel_size_um
    cells = measure_labels(labels, image=image, name=labels_name, pixel_size_um=size,
                           junction_threshold=junction_threshold)
    return ImageResult(image, labels, cells, size, f"labels file {labels_name}", time.perf_counter() - started)


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
        tables = []
        for name, result in self.results.items():
            table = result.cells.copy()
            sample = sample_of(self.sheet, name)
            for column in SAMPLE_FIELDS:
                value = sample.get(column)
                table[column] = np.nan if value is None else value
            table["dose"] = pd.to_numeric(table["dose"], errors="coerce")
            tables.append(table)
        return pd.concat(tables, ignore_index=True)

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
            "summary.csv": table_csv_bytes(self.summary(cells=cells)),
            "samples.csv": table_csv_bytes(self.sheet[list(SHEET_COLUMNS)]),
        }
        used: set[str] = set()
        for name, result in self.results.items():
            per_image = image_outputs(result.stem, result.labels, cells=cells[cells["image"] == name],
                                      junction=result.image.junction, pixel_size_um=result.pixel_size_um)
            for file_name, data in per_image.items():
                if file_name in used:  # two files with one stem (from different folders)
                    stem = Path(file_name).name
                    file_name = f"{self.results[name].image.image_id[:8]}-{stem}"
                used.add(file_name)
                files[file_name] = data
        return zip_bytes(files)


# --------------------------------------------------------------------------
# Persisting a ResultSet in a Store (bbbcore.store)
# --------------------------------------------------------------------------

def save_result(store, experiment_id: int, result: ImageResult, original: bytes, params: dict,
                sample: dict | None = None) -> int:
    """Store one image's result (one transaction); ``params`` are what produced it."""
    from .export import labels_tiff_bytes
    from .features import SAMPLE_FIELDS

    model = result.source.split(" ", 2)[1:] if result.source.startswith("model ") else ["", ""]
    cells = result.cells.drop(columns=[c for c in SAMPLE_FIELDS if c in result.cells.columns])
    record = result.record()
    return store.save_image(
        experiment_id, name=result.name, original=original,
        labels_tiff=labels_tiff_bytes(result.labels, pixel_size_um=result.pixel_size_um), cells=cells,
        params=params, sample=sample, pixel_size_um=result.pixel_size_um,
        model=(model[0] if model else "", model[1] if len(model) > 1 else ""), source=result.source,
        shape=result.labels.shape, cell_coverage=record["cell_coverage"],
    )


def load_experiment(store, experiment_id: int) -> tuple[ResultSet, dict[str, bytes], dict[str, dict]]:
    """Rebuild an experiment's results from the store, without recomputing anything.

    Returns the ResultSet (sample sheet from the stored conditions), the
    original files by name, and the parameters each image was analysed with.
    """
    import json

    from .export import read_labels_tiff
    from .io import load_image

    images = store.images(experiment_id)
    cells = store.cells(experiment_id)
    results = ResultSet()
    originals, params = {}, {}
    rows = []
    for _, row in images.iterrows():
        original = store.get_file(row["image_sha"])
        used = json.loads(row["params"])
        image = load_image(original, name=row["name"], channel=used.get("channel"))
        labels = read_labels_tiff(store.get_file(row["labels_sha"]))
        table = cells[cells["image"] == row["name"]].reset_index(drop=True) if len(cells) else pd.DataFrame()
        size = None if pd.isna(row["pixel_size_um"]) else float(row["pixel_size_um"])
        results.results[row["name"]] = ImageResult(image, labels, table, size, row["source"] or "stored")
        originals[row["name"]] = original
        params[row["name"]] = used
        rows.append({"file": row["name"], **{c: (None if pd.isna(row[c]) else row[c])
                                             for c in ("condition", "dose", "dose_unit", "replicate", "well")}})
    if rows:
        sheet = pd.DataFrame(rows, columns=list(SHEET_COLUMNS))
        sheet["dose"] = pd.to_numeric(sheet["dose"], errors="coerce").astype(float)
        results.sheet = sheet
    return results, originals, params


def stored_result(store, experiment_id: int, image: LoadedImage, original: bytes, params: dict) -> ImageResult | None:
    """The stored result of the same file (by its bytes' hash) with the same parameters, if any.

    The same image uploaded twice, under any name, is then not recomputed.
    """
    from .export import read_labels_tiff
    from .store import params_key, sha256

    found = store.find_image(experiment_id, sha256(original), params_key(params))
    if found is None:
        return None
    cells = store.cells(experiment_id)
    cells = cells[cells["image"] == found["name"]].reset_index(drop=True)
    cells["image"] = image.name
    labels = read_labels_tiff(store.get_file(found["labels_sha"]))
    size = None if found["pixel_size_um"] is None else float(found["pixel_size_um"])
    return ImageResult(image, labels, cells, size, f"{found['source']} (same file as {found['name']})")
