"""Thousands of images on Dask: a resumable, idempotent batch, from a laptop to a cluster.

Each image is one Dask task. Its result (labels TIFF, its cells as Parquet, its summary record and, when
asked, its per-image exports) is written atomically into a cache folder inside the output folder, named
by the file's content hash, the image's scene and the settings' hash::

    OUT/.bbb-cache/<content>-<scene>-<settings>/   labels.tif  cells.parquet  interfaces.parquet  record.json
                                                    [exports/]

Running the same batch again skips every image whose folder is there and does the rest; a worker that
dies mid-image has its task retried (Dask's retries); an image that fails twice fails alone, listed in
``OUT/failures.csv`` with its one-line reason. The tables (cells.parquet, cells.csv, interfaces.parquet,
interfaces.csv, summary.csv, samples.csv) are rebuilt from the cache at the end for exactly this run's images, so they never hold
duplicates. Workers never touch the store: with an experiment, the client writes it.

    from bbbcore.batch import BatchSettings, run_batch
    report = run_batch(["images/"], "out/", BatchSettings(model="models/bbb_unet.keras"), workers=2)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import config
from .errors import BBBError

CACHE_FOLDER = ".bbb-cache"
#: Tries per image before it is listed as failed (the first, and one retry: a worker killed mid-image).
TRIES = 2


#: The version of what is measured per image: raised when a column's definition changes (2: the junction
#: classes read border by border, and interfaces.parquet), so a batch's old cache is not mixed with new rows.
MEASUREMENTS = 2


@dataclass(frozen=True)
class ImageTask:
    """One image of a batch: its file, its name (``file #scene`` for scenes), and what to run it with."""

    path: str
    name: str
    key: str
    options: dict


@dataclass(frozen=True)
class BatchSettings:
    """What every image of a batch is segmented with (per-image values come from the sample sheet)."""

    model: str = str(config.DEFAULT_MODEL)
    channel: str | None = None
    pixel_size_um: float | None = None
    diameter_px: float | None = None
    use_nuclei: bool = False
    junction_threshold: float | None = None
    max_projection: bool = False
    exports: bool = False

    def digest(self) -> str:
        """A hash of the settings, of the model's weights and of :data:`MEASUREMENTS`: a change of any means
        the images run again."""
        text = json.dumps({**asdict(self), "model": _file_hash(Path(self.model)), "measurements": MEASUREMENTS},
                          sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass
class BatchReport:
    """What a batch did: images done now, found done, failed (name -> reason), and its tables' size."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    n_cells: int = 0
    seconds: float = 0.0
    out: Path | None = None

    def line(self) -> str:
        return (f"done: {len(self.done)} analysed, {len(self.skipped)} already done, {len(self.failed)} failed; "
                f"{self.n_cells} cells in {self.out} ({self.seconds:.0f} s)")


def _file_hash(path: Path, chunk: int = 2**20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def expand_inputs(inputs: list[str | Path]) -> tuple[list[Path], list[str]]:
    """Files from files, folders (recursive: image files and OME-Zarr folders) and globs, sorted, once each.

    Returns the files and one line per input that matched nothing.
    """
    from glob import glob

    from .io import IMAGE_SUFFIXES

    found: dict[str, Path] = {}
    problems = []
    for item in map(str, inputs):
        path = Path(item)
        if path.is_dir() and not path.name.lower().endswith(".zarr"):
            matches = [p for p in sorted(path.rglob("*")) if _is_image(p, IMAGE_SUFFIXES)]
        elif path.exists():
            matches = [path]
        else:
            matches = [Path(p) for p in sorted(glob(item, recursive=True)) if _is_image(Path(p), IMAGE_SUFFIXES)]
        if not matches:
            problems.append(f"{item}: no image file here (give files, folders or a glob such as 'plate1/*.tif')")
        for match in matches:
            found.setdefault(str(match.resolve()), match)
    return sorted(found.values(), key=str), problems


def _is_image(path: Path, suffixes) -> bool:
    if CACHE_FOLDER in path.parts or any(part.lower().endswith(".zarr") for part in path.parts[:-1]):
        return False  # the cache's files, and the inside of an OME-Zarr folder, are no images of their own
    if path.is_dir():
        return path.name.lower().endswith(".zarr")
    return path.suffix.lower() in suffixes and not path.name.startswith(".")


@dataclass
class BatchInputs:
    """A batch's inputs read once: the image files, each one's image names and content hash, and the problems.

    Listing reads every file for its scenes and for its hash; the command, the sample sheet and the plan all
    use this one listing, so a batch of thousands of files is not read again for each of them.
    """

    files: list[Path]
    names: dict[str, list[str]]
    hashes: dict[str, str]
    problems: dict[str, str]
    missing: list[str]

    @property
    def image_names(self) -> list[str]:
        """Every image's name (``file #scene`` for scenes), file by file."""
        return [name for path in self.files for name in self.names.get(str(path), [])]


def list_inputs(inputs: list[str | Path]) -> BatchInputs:
    """The images of files, folders and globs (:func:`expand_inputs`), each file opened once."""
    from .errors import display_name
    from .io import image_names

    files, missing = expand_inputs(inputs)
    names, hashes, problems = {}, {}, {}
    for path in files:
        try:
            names[str(path)] = image_names(path)
            hashes[str(path)] = _file_hash(path) if path.is_file() else _folder_hash(path)
        except (BBBError, OSError) as exc:
            names.pop(str(path), None)
            problems[display_name(path.name)] = str(exc)
    return BatchInputs(files, names, hashes, problems, missing)


def plan(listing: BatchInputs, settings: BatchSettings, samples, *, options_for: Callable[[dict], dict],
         ) -> list[ImageTask]:
    """One task per image (a file's scenes each), keyed by content, scene and settings."""
    from .metadata import sample_of

    digest = settings.digest()
    tasks = []
    for path in listing.files:
        for scene, name in enumerate(listing.names.get(str(path), [])):
            key = f"{listing.hashes[str(path)][:16]}-{scene}-{digest}"
            tasks.append(ImageTask(str(path), name, key, options_for(sample_of(samples, name))))
    return tasks


def _folder_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(_file_hash(path).encode())
    return digest.hexdigest()


# -- worker side --------------------------------------------------------------------------------------
_MODELS: dict[str, object] = {}


def worker_model(path: str, threads: int | None = None):
    """The model, loaded once per worker process (inference on ``threads`` threads)."""
    if path not in _MODELS:
        from .unet import BoundaryModel

        _MODELS[path] = BoundaryModel.load(path, threads=threads)
    return _MODELS[path]


def _load_task_image(task: ImageTask, settings: BatchSettings):
    """The task's image, read with its channels and the batch's projection (a worker's and the client's reads agree)."""
    from .io import load_image

    return load_image(task.path, name=task.name, max_projection=settings.max_projection,
                      channel=task.options.get("channel"), nuclear_channel=task.options.get("nuclear_channel") or "auto")


def run_image(task: ImageTask, settings: BatchSettings, cache: str) -> dict:
    """Segment one image into its cache folder (atomically); its row for the report.

    A file that cannot be used returns ``{"error": line}`` (no retry: it would fail again); anything
    else raised (a worker killed, memory) is Dask's to retry.
    """
    final = Path(cache) / task.key
    if (final / "record.json").exists():
        return {"name": task.name, "key": task.key, "skipped": True}
    from .export import image_outputs, labels_tiff_bytes
    from .pipeline import segment_image
    from .scale import diameter_source

    started = time.perf_counter()
    try:
        image = _load_task_image(task, settings)
        result = segment_image(image, worker_model(settings.model), pixel_size_um=task.options.get("pixel_size_um"),
                               diameter_px=task.options.get("diameter_px"), use_nuclei=settings.use_nuclei,
                               sample=task.options.get("sample"), junction_threshold=settings.junction_threshold)
    except BBBError as exc:
        return {"name": task.name, "key": task.key, "error": str(exc)}
    partial = Path(cache) / f".part-{task.key}-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    (partial / "labels.tif").write_bytes(labels_tiff_bytes(result.labels, pixel_size_um=result.pixel_size_um))
    result.cells.to_parquet(partial / "cells.parquet", index=False)
    result.interface_table().to_parquet(partial / "interfaces.parquet", index=False)
    if settings.exports:
        files = image_outputs("image", result.labels, cells=result.cells, junction=image.junction,
                              pixel_size_um=result.pixel_size_um)
        (partial / "exports").mkdir()
        for name, data in files.items():
            (partial / "exports" / name).write_bytes(data)
    record = {**result.record(), "name": task.name, "path": task.path, "source": result.source,
              "warnings": result.warnings, "seconds": round(time.perf_counter() - started, 3),
              "pixel_size_source": "given" if task.options.get("pixel_size_um") else
              ("file" if image.pixel_size_um else None),
              "diameter_source": diameter_source(task.options.get("diameter_px"), result.diameter_estimated_px)}
    (partial / "record.json").write_text(json.dumps(record, default=_plain), encoding="utf-8")
    try:
        os.replace(partial, final)  # atomic: the folder is whole or absent
    except OSError:  # another try of the same image finished first: its result stands
        shutil.rmtree(partial, ignore_errors=True)
    return {"name": task.name, "key": task.key, "n_cells": int(len(result.cells)), "seconds": record["seconds"]}


def _plain(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON")


# -- client side --------------------------------------------------------------------------------------
def start_client(*, workers: int | None = None, threads_per_worker: int | None = None, scheduler: str | None = None,
                 cluster: str | None = None, cluster_options: dict | None = None):
    """A Dask client: joined to ``scheduler``, or on dask-jobqueue workers (``cluster`` slurm, pbs or lsf),
    or on a LocalCluster sized to this machine (``workers`` x ``threads_per_worker``, processes)."""
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler)
    if cluster:
        import dask_jobqueue

        kinds = {"slurm": dask_jobqueue.SLURMCluster, "pbs": dask_jobqueue.PBSCluster,
                 "lsf": dask_jobqueue.LSFCluster}
        options = dict(cluster_options or {})
        jobs = options.pop("jobs", 1)
        started = kinds[cluster](**options)
        started.scale(jobs=jobs)
        return Client(started)
    cores = os.cpu_count() or 1
    threads = threads_per_worker or (1 if (workers or 0) >= cores else max(1, cores // (workers or 1)))
    workers = workers or max(1, cores // threads)
    local = LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True, dashboard_address=":0",
                         memory_limit=None, silence_logs=40)
    return Client(local)


def run_batch(
    inputs: list[str | Path] | BatchInputs,
    out: str | Path,
    settings: BatchSettings,
    *,
    samples=None,
    options_for: Callable[[dict], dict] | None = None,
    client=None,
    workers: int | None = None,
    threads_per_worker: int | None = None,
    scheduler: str | None = None,
    cluster: str | None = None,
    cluster_options: dict | None = None,
    progress: bool = True,
    say: Callable[[str], None] = print,
    on_result: Callable[[ImageTask, Path], None] | None = None,
) -> BatchReport:
    """Segment every image of ``inputs`` (paths, or their :func:`list_inputs`) into ``out``, skipping those
    already done; see the module.

    ``samples``: the run's sample sheet (default: from the file names); ``options_for(sample row)``: the
    image's channel, pixel size, diameter and sample fields (default: the settings'). ``on_result(task,
    folder)`` is called on the client for each image finished or found done (the experiment writer).
    """
    from .errors import display_name
    from .metadata import sample_sheet_for

    started = time.perf_counter()
    out = Path(out)
    cache = out / CACHE_FOLDER
    cache.mkdir(parents=True, exist_ok=True)
    listing = inputs if isinstance(inputs, BatchInputs) else list_inputs(inputs)
    for line in listing.missing:
        say(f"error: {line}")
    samples = samples if samples is not None else sample_sheet_for(listing.image_names)
    tasks = plan(listing, settings, samples, options_for=options_for or _default_options(settings))
    report = BatchReport(failed=dict(listing.problems), out=out)
    todo = [t for t in tasks if not (cache / t.key / "record.json").exists()]
    report.skipped = [t.name for t in tasks if t not in todo]
    own_client = client is None and todo
    if own_client:
        client = start_client(workers=workers, threads_per_worker=threads_per_worker, scheduler=scheduler,
                              cluster=cluster, cluster_options=cluster_options)
    try:
        if todo:
            say(f"{len(todo)} image(s) to analyse, {len(report.skipped)} already done; Dask dashboard: "
                f"{client.dashboard_link}")
            _run(client, todo, settings, cache, report, progress=progress, say=say)
    finally:
        if own_client:
            cluster_started = client.cluster
            client.close()
            if cluster_started is not None:
                cluster_started.close()
    done = [t for t in tasks if (cache / t.key / "record.json").exists()]
    if on_result is not None:
        for task in done:
            on_result(task, cache / task.key)
    report.n_cells = consolidate(out, done, samples, exports=settings.exports)
    write_failures(out, report.failed)
    write_manifest(out, settings.model, asdict(settings), _manifest_images(out, done))
    if report.n_cells:
        import pandas as pd

        write_methods(out, pd.read_parquet(out / "cells.parquet"), settings.model)
    report.seconds = time.perf_counter() - started
    for name, reason in report.failed.items():
        say(f"error: {reason if reason.startswith(display_name(name)) else f'{display_name(name)}: {reason}'}")
    return report


def cached_result(task: ImageTask, folder: Path, settings: BatchSettings):
    """The :class:`bbbcore.pipeline.ImageResult` of an image from its cache folder (the image read again on
    the client for the store's copy; nothing is segmented again)."""
    import pandas as pd

    from .export import read_labels_tiff
    from .pipeline import ImageResult
    from .unet import read_card

    record = json.loads((folder / "record.json").read_text(encoding="utf-8"))
    image = _load_task_image(task, settings)
    card = read_card(settings.model)
    quality = {k: record[k] for k in ("saturated_share", "focus_score") if k in record}
    interfaces = (pd.read_parquet(folder / "interfaces.parquet").assign(image=task.name)
                  if (folder / "interfaces.parquet").exists() else None)
    return ImageResult(image, read_labels_tiff(folder / "labels.tif"), pd.read_parquet(folder / "cells.parquet"),
                       record.get("pixel_size_um"), model_name=card.name, model_version=card.version,
                       source=record.get("source", ""), diameter_estimated_px=record.get("diameter_estimated_px"),
                       diameter_used_px=record.get("diameter_used_px"), _quality=quality, interfaces=interfaces)


def _default_options(settings: BatchSettings) -> Callable[[dict], dict]:
    def options(sample: dict) -> dict:
        return {"channel": settings.channel if settings.channel is not None else sample.get("channel"),
                "nuclear_channel": sample.get("nuclear_channel") or "auto",
                "pixel_size_um": settings.pixel_size_um if settings.pixel_size_um is not None
                else sample.get("pixel_size_um"),
                "diameter_px": settings.diameter_px if settings.diameter_px is not None else sample.get("diameter_px"),
                "sample": sample}
    return options


def _run(client, todo: list[ImageTask], settings: BatchSettings, cache: Path, report: BatchReport, *,
         progress: bool, say: Callable[[str], None]) -> None:
    """Submit the images, gather them as they finish (progress: done / total, images/s, ETA, failures)."""
    from distributed import as_completed

    from .batch_worker import ModelPlugin

    try:
        client.register_plugin(ModelPlugin(settings.model), name="bbb-model")
    except Exception as exc:  # noqa: BLE001 - without it each worker loads the model at its first image
        say(f"warning: the workers load the model at their first image ({type(exc).__name__}: {exc})")
    # One Dask key per image: two files of the same content (copies under other names) share a cache folder
    # but are two tasks (the second finds the first's result, or loses the race to write it).
    keys = [f"bbb-{index}-{t.key}" for index, t in enumerate(todo)]
    futures = client.map(run_image, todo, settings=settings, cache=str(cache), key=keys, retries=TRIES - 1,
                         pure=False)
    by_key = dict(zip(keys, todo))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), unit="image", desc="batch")
    for future in as_completed(futures):
        task = by_key[future.key]
        try:
            row = future.result()
        except Exception as exc:  # noqa: BLE001 - failed twice (a worker killed, memory): this image alone
            report.failed[task.name] = f"failed {TRIES} times ({type(exc).__name__}: {exc})"
        else:
            if "error" in row:
                report.failed[task.name] = row["error"]
            else:
                report.done.append(task.name)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(failed=len(report.failed))
        future.release()
    if bar is not None:
        bar.close()


def consolidate(out: Path, done: list[ImageTask], samples, *, exports: bool = False) -> int:
    """The run's tables from its images' cache folders (each image once), and the per-image files named
    as ``segment`` names them. Returns the number of cells."""
    import pandas as pd

    from .export import write_csv
    from .features import summary_table
    from .metadata import apply_sample_sheet, output_stem, write_sample_sheet

    tables, borders, records, used = [], [], [], set()
    for task in done:
        folder = out / CACHE_FOLDER / task.key
        cells = pd.read_parquet(folder / "cells.parquet")
        if (folder / "interfaces.parquet").exists():  # (a cache written before interfaces were measured has none)
            borders.append(pd.read_parquet(folder / "interfaces.parquet").assign(image=task.name))
        record = json.loads((folder / "record.json").read_text(encoding="utf-8"))
        cells["image"] = task.name  # a copy of another file, under its own name, shares that file's folder
        record["image"] = task.name
        stem = output_stem(task.name, image_id=record.get("image_id", ""), used=used)
        labels_file = out / f"{stem}.labels.tif"
        shutil.copyfile(folder / "labels.tif", labels_file)
        if exports and (folder / "exports").is_dir():
            for exported in (folder / "exports").iterdir():
                shutil.copyfile(exported, out / exported.name.replace("image.", f"{stem}.", 1))
        tables.append(cells)
        records.append({k: v for k, v in record.items() if k not in ("name", "path", "source", "warnings",
                                                                         "seconds", "pixel_size_source",
                                                                         "diameter_source")})
    if not tables:
        return 0
    cells = apply_sample_sheet(pd.concat(tables, ignore_index=True), samples)
    cells.to_parquet(out / "cells.parquet", index=False)
    write_csv(cells, out / "cells.csv")
    borders = [b for b in borders if len(b)]
    if borders:
        interfaces = apply_sample_sheet(pd.concat(borders, ignore_index=True), samples)
        interfaces.to_parquet(out / "interfaces.parquet", index=False)
        write_csv(interfaces, out / "interfaces.csv")
    write_csv(summary_table(cells, images=records), out / "summary.csv")
    write_sample_sheet(samples, out / "samples.csv")
    return int(len(cells))


def write_failures(out: Path, failed: dict[str, str]) -> None:
    """``failures.csv``: one row per image that could not be analysed, with its reason (removed when none)."""
    import pandas as pd

    from .export import write_csv

    path = out / "failures.csv"
    if failed:
        write_csv(pd.DataFrame({"image": list(failed), "reason": list(failed.values())}), path)
    else:
        path.unlink(missing_ok=True)


def write_methods(out: Path, cells, model: str | Path) -> None:
    """``methods.txt``: the methods paragraph of a run's cells."""
    from .report import methods_paragraph
    from .unet import read_card

    (out / "methods.txt").write_text(methods_paragraph(cells, model_card=read_card(model)) + "\n", encoding="utf-8")


def write_manifest(out: Path, model: str | Path, settings: dict, images: list[dict]) -> None:
    """``manifest.json``: the software, the model and its hash, every setting, and per image where its pixel
    size and diameter came from (``images``: one dict per image)."""
    from importlib.metadata import PackageNotFoundError, version

    from .unet import read_card

    try:
        software = version("bbbcore")
    except PackageNotFoundError:
        software = "unknown"
    card = read_card(model)
    manifest = {"software": {"bbbcore": software}, "model": {"name": card.name, "version": card.version,
                                                             "path": str(model), "sha256": _file_hash(Path(model))},
                "settings": settings, "images": images,
                "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, default=str), encoding="utf-8")


def _manifest_images(out: Path, done: list[ImageTask]) -> list[dict]:
    images = []
    for task in done:
        record = json.loads((out / CACHE_FOLDER / task.key / "record.json").read_text(encoding="utf-8"))
        images.append({"image": task.name, "file": task.path, "pixel_size_um": record.get("pixel_size_um"),
                       "pixel_size_source": record.get("pixel_size_source"),
                       "diameter_used_px": record.get("diameter_used_px"),
                       "diameter_source": record.get("diameter_source")})
    return images
