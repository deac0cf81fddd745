"""Teach a model from cells corrected by hand: fine-tune on them, score on cells it did not learn from.

The labels given here are cell ids with 0 = not annotated: the cells a person
corrected or accepted are truth, the rest of the image is unknown (the loss
does not look there), as with the partial annotations the shipped model was
trained on. A share of the annotated cells (20 % by default) is held out as a
check set; the parent model and the fine-tuned one are both scored on it (F1 at
IoU 0.5, :func:`bbbcore.metrics.score_segmentation`'s rules for partial truth),
and the new model is refused when it scores more than :data:`MAX_F1_LOSS`
below its parent.

    from bbbcore.finetune import Example, finetune
    report = finetune("models/bbb_unet.keras", [Example("a.png", junction, labels)], out="runs/a.keras")
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .errors import BBBError
from .io import LoadedImage

#: A fine-tuned model scoring more than this below its parent (F1 at IoU 0.5 on the check set) is refused.
MAX_F1_LOSS = 0.02
#: With fewer check cells than this, the check score is rough: said in a warning, the model still registered.
MIN_CHECK_CELLS = 10
#: Default training steps: about 5 corrected images in under 10 minutes on a 2-core CPU (0.24 s a step).
DEFAULT_STEPS = 300


class FinetuneError(BBBError):
    """Fine-tuning cannot start or was refused (one line saying why, with the figures)."""


@dataclass
class Example:
    """One image to learn from (:class:`bbbcore.io.LoadedImage`) and its labels (0 = not annotated)."""

    image: LoadedImage
    labels: np.ndarray

    @property
    def name(self) -> str:
        return self.image.name


@dataclass
class FinetuneReport:
    """What a fine-tuning did: the check set, both scores, and whether the new model is kept."""

    model_path: Path | None
    parent: str
    parent_score: dict
    score: dict
    n_train_cells: int
    n_check_cells: int
    images: list[str]
    steps: int
    seconds: float
    accepted: bool
    warnings: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One line for a person: the two scores and the verdict."""
        before, after = self.parent_score["f1@0.5"], self.score["f1@0.5"]
        verdict = ("kept" if self.accepted else
                   f"refused: more than {MAX_F1_LOSS:g} below its parent, so the parent stays the better model")
        return (f"F1 at IoU 0.5 on {self.n_check_cells} check cells it did not learn from: {after:.3f}, its parent "
                f"{self.parent} {before:.3f} ({after - before:+.3f}); {verdict}")


def examples_from_files(images: list[str | Path], labels: list[str | Path]) -> list[Example]:
    """Examples from image files and their labels TIFFs (same order; 0 = not annotated).

    Raises
    ------
    FinetuneError
        Unequal lists, a file that cannot be read, a labels image of another size, or one with no cell.
    """
    from .errors import display_name
    from .export import read_labels_tiff
    from .io import load_image

    if len(images) != len(labels):
        raise FinetuneError(f"{len(images)} image(s) but {len(labels)} labels file(s): give one labels TIFF per image")
    examples = []
    for image_path, labels_path in zip(images, labels):
        image = load_image(image_path)
        try:
            cells = read_labels_tiff(labels_path)
        except (OSError, ValueError) as exc:
            raise FinetuneError(f"{display_name(Path(labels_path).name)}: not a labels image ({exc})") from None
        if cells.shape != image.junction.shape:
            raise FinetuneError(f"{display_name(Path(labels_path).name)}: {cells.shape[1]} x {cells.shape[0]} px, but "
                                f"{display_name(image.name)} is {image.shape[1]} x {image.shape[0]}: they must match")
        if not cells.any():
            raise FinetuneError(f"{display_name(Path(labels_path).name)}: no cell (all 0 = not annotated)")
        examples.append(Example(image, np.asarray(cells, np.int32)))
    return examples


def split_check_cells(examples: list[Example], *, share: float = 0.2, seed: int = 0,
                      ) -> tuple[list[Example], list[Example]]:
    """Hold out ``share`` of the annotated cells (drawn over all images) as a check set.

    Returns the examples to learn from (check cells set to 0) and the check examples (only the check
    cells), in the same order. Cells touching the image edge are never check cells (they are cut off).
    """
    from .instances import touches_edge

    pool = []
    for index, example in enumerate(examples):
        edge = touches_edge(example.labels)
        pool += [(index, int(c)) for c in np.unique(example.labels) if c and not edge[c]]
    rng = np.random.default_rng(seed)
    n_check = int(round(share * len(pool)))
    chosen = {pool[i] for i in rng.choice(len(pool), size=n_check, replace=False)} if n_check else set()
    train, check = [], []
    for index, example in enumerate(examples):
        held = [c for i, c in chosen if i == index]
        is_check = np.isin(example.labels, held)
        train.append(replace(example, labels=np.where(is_check, 0, example.labels)))
        check.append(replace(example, labels=np.where(is_check, example.labels, 0)))
    return train, check


def annotated_diameter(labels: np.ndarray) -> float | None:
    """The median equivalent diameter (px) of an image's annotated cells: the scale it is learned and scored at."""
    from .training import median_cell_diameter

    diameter = median_cell_diameter(labels)
    if diameter is None and labels.any():  # every cell touches the edge: take them all
        areas = np.bincount(labels.ravel())[1:]
        diameter = float(np.median(np.sqrt(4 * areas[areas > 0] / np.pi)))
    return diameter


def training_images(examples: list[Example], card, *, avoid: list[Example] | None = None) -> list:
    """:class:`bbbcore.training.TrainingImage` of each example, resized so its cells have the model's
    training diameter; ``avoid``: cells (the check set) kept out of the loss as well."""
    from .resize import resize
    from .training import TrainingImage, distance_target, targets_from_cells

    images = []
    for index, example in enumerate(examples):
        diameter = annotated_diameter(example.labels) or annotated_diameter((avoid or examples)[index].labels)
        scale = card.input_scale * (card.diameter_px / diameter if diameter else 1.0)
        border, known = targets_from_cells(example.labels)
        if avoid is not None:
            known &= avoid[index].labels == 0  # the margin of a learned cell must not reach into a check cell
            border &= known
        images.append(TrainingImage(
            name=example.name, image=resize(example.image.junction, scale), border=resize(border.astype(np.float32), scale),
            distance=resize(distance_target(example.labels), scale), known=resize(known.astype(np.float32), scale),
            cell_diameter_px=diameter,
        ))
    return images


def check_score(model, check: list[Example], *, diameters: list[float | None] | None = None) -> dict:
    """F1, recall and precision at IoU 0.5 of ``model`` on the check cells, pooled over the images.

    Each image is segmented at its annotated cells' diameter (``diameters``, default: the check cells'),
    so that the parent and the fine-tuned model are judged on the same footing.
    """
    from .metrics import evaluable_predictions, match_cells
    from .pipeline import segment_image

    n_truth = n_matched = n_evaluable = n_matched_evaluable = 0
    for index, example in enumerate(check):
        truth_ids = np.unique(example.labels)
        truth_ids = truth_ids[truth_ids > 0]
        if not truth_ids.size:
            continue
        diameter = (diameters[index] if diameters is not None else None) or annotated_diameter(example.labels)
        predicted = segment_image(example.image, model, diameter_px=diameter).labels
        pairs = match_cells(example.labels, predicted, iou_threshold=0.5)
        evaluable = evaluable_predictions(example.labels, predicted)
        n_truth += truth_ids.size
        n_matched += len(pairs)
        n_evaluable += evaluable.size
        n_matched_evaluable += int(np.isin(evaluable, [p[1] for p in pairs]).sum())
    recall = n_matched / n_truth if n_truth else 0.0
    precision = n_matched_evaluable / n_evaluable if n_evaluable else 0.0
    f1 = 0.0 if recall + precision == 0 else 2 * recall * precision / (recall + precision)
    return {"f1@0.5": round(f1, 4), "recall@0.5": round(recall, 4), "precision@0.5": round(precision, 4),
            "n_truth": n_truth, "n_predicted_evaluable": n_evaluable}


def finetune(
    base: str | Path,
    examples: list[Example],
    *,
    out: str | Path,
    steps: int = DEFAULT_STEPS,
    check_share: float = 0.2,
    seed: int = 0,
    batch: int = 8,
    patch: int = 160,
    learning_rate: float = 5e-4,
    name: str | None = None,
    check: list[Example] | None = None,
    on_progress: Callable[[str, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    log: Callable[[str], None] = print,
) -> FinetuneReport:
    """Fine-tune the model ``base`` (``.keras`` with its card) on ``examples`` and write it to ``out``.

    The parent and the new model are scored on the held-out check cells; the new model (``.keras``,
    card, ``.onnx``) is written only when it scores at most :data:`MAX_F1_LOSS` below its parent.
    ``on_progress(stage, fraction)`` is called as it goes (stages: "scoring the parent", "training",
    "scoring the new model"); ``should_stop()`` returning True cancels it (raises
    :class:`bbbcore.training.TrainingCancelled`, nothing written). ``check``: the check set given (one
    example per image of ``examples``, its labels the cells to score on), instead of ``check_share`` of
    the annotated cells drawn at random; every cell of ``examples`` is then learned from.

    Raises
    ------
    FinetuneError
        No annotated cell to learn from.
    """
    from .errors import display_name
    from .training import train
    from .unet import BoundaryModel, read_card

    started = time.perf_counter()
    progress = on_progress or (lambda stage, fraction: None)
    base, out = Path(base), Path(out)
    if check is None:
        train_examples, check = split_check_cells(examples, share=check_share, seed=seed)
    else:
        train_examples = examples
    n_train = sum(int(np.count_nonzero(np.unique(e.labels))) for e in train_examples)
    n_check = sum(int(np.count_nonzero(np.unique(e.labels))) for e in check)
    if not n_train:
        raise FinetuneError("no annotated cell to learn from: correct or accept some cells first")
    warnings = []
    if n_check < MIN_CHECK_CELLS:
        warnings.append(f"only {n_check} check cell(s) (fewer than {MIN_CHECK_CELLS}): the check score is rough; "
                        "correct more cells for a firmer one")
    diameters = [annotated_diameter(e.labels) for e in examples]
    parent = BoundaryModel.load(base)
    progress("scoring the parent", 0.0)
    parent_score = check_score(parent, check, diameters=diameters) if n_check else {"f1@0.5": float("nan")}
    card = read_card(base)
    new_card = replace(
        card, name=name or out.stem, version=f"{card.version}+ft", exports={}, metrics={},
        training={"data": f"fine-tuned from {card.name} {card.version} on cells corrected by hand: "
                          f"{n_train} cells of {len(examples)} image(s), {n_check} more held out as the check set",
                  "parent": {"name": card.name, "version": card.version, "path": str(base)},
                  "images": [e.name for e in examples], "train_cells": n_train, "check_cells": n_check,
                  "check_share": check_share},
    )
    log(f"fine-tuning {display_name(card.name)} on {n_train} cells of {len(examples)} image(s), {steps} steps")
    checkpoint = out.with_suffix(".ckpt")
    try:
        model = train(training_images(train_examples, card, avoid=check), out=None, card=new_card, steps=steps,
                      batch=batch, patch=patch, learning_rate=learning_rate, seed=seed, checkpoint_dir=checkpoint,
                      start_from=base, progress=False, log=log,
                      on_step=lambda step, total, loss: progress("training", step / total), should_stop=should_stop)
    finally:
        shutil.rmtree(checkpoint, ignore_errors=True)
    progress("scoring the new model", 1.0)
    score = check_score(model, check, diameters=diameters) if n_check else {"f1@0.5": float("nan")}
    accepted = not n_check or score["f1@0.5"] >= parent_score["f1@0.5"] - MAX_F1_LOSS
    report = FinetuneReport(model_path=out if accepted else None, parent=f"{card.name} {card.version}",
                            parent_score=parent_score, score=score, n_train_cells=n_train, n_check_cells=n_check,
                            images=[e.name for e in examples], steps=steps,
                            seconds=round(time.perf_counter() - started, 1), accepted=accepted, warnings=warnings)
    if accepted:
        model.card.metrics = {"check_set": {"score": score, "parent_score": parent_score, "cells": n_check}}
        model.save(out)
    return report


def report_json(report: FinetuneReport) -> str:
    """The report as JSON (what the dashboard reads from a fine-tuning run in the background)."""
    data = {k: (str(v) if isinstance(v, Path) else v) for k, v in report.__dict__.items()}
    return json.dumps(data, allow_nan=True)


#: What a teaching job's folder records of it (name, model path, process id), for a reloaded page to find it.
JOB_FILE = "job.json"


@dataclass
class TeachingJob:
    """A fine-tuning running in its own process (``python -m bbbcore finetune``), at a lower priority, so
    that the sessions of a shared server go on analysing; its progress and report are read from its folder.

    Start it with :meth:`start`; :meth:`state` says how far it is; :meth:`cancel` stops it. A page reload
    starts a new session: :meth:`latest_running` finds the job again from its folder (``process`` None, the
    process known by ``pid`` alone).
    """

    folder: Path
    name: str
    model_path: Path
    process: subprocess.Popen | None
    pid: int = 0
    cancelled: bool = False

    @classmethod
    def start(cls, base: str | Path, examples: list[tuple[str, LoadedImage, np.ndarray]], *, name: str,
              data_folder: str | Path | None = None, steps: int = DEFAULT_STEPS) -> TeachingJob:
        """Write the images (their junction planes) and labels into a job folder and start the fine-tuning.

        ``examples``: (name, loaded image, labels with 0 = not annotated), as
        :meth:`bbbcore.session.AnalysisSession.teaching_examples` gives them. The new model goes into the
        registry under ``name`` (:func:`bbbcore.registry.new_model_path`, which checks the name first).
        """
        import sys

        import tifffile

        from .export import write_labels_tiff
        from .registry import new_model_path, registry_folder

        if not examples:
            raise FinetuneError("no image has cells corrected or accepted by hand: correct or accept some first")
        out = new_model_path(name, data_folder)
        folder = registry_folder(data_folder) / "jobs" / f"{out.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
        folder.mkdir(parents=True)
        images, labels, names = [], [], []
        for index, (image_name, image, cells) in enumerate(examples):
            images.append(folder / f"{index:03d}.tif")
            tifffile.imwrite(images[-1], np.asarray(image.junction_raw))  # the channel chosen, as read
            labels.append(folder / f"{index:03d}.labels.tif")
            write_labels_tiff(labels[-1], cells)
            names.append(image_name)
        command = [sys.executable, "-m", "bbbcore", "finetune", "--model", str(base), "--out", str(out),
                   "--steps", str(steps), "--progress", str(folder / "progress.json"), "--nice", "10",
                   "--images", *map(str, images), "--labels", *map(str, labels), "--names", *names]
        log = open(folder / "log.txt", "w")  # noqa: SIM115 - the child writes it; closed when it ends
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        (folder / JOB_FILE).write_text(json.dumps({"name": out.stem, "model_path": str(out), "pid": process.pid}),
                                       encoding="utf-8")
        return cls(folder=folder, name=out.stem, model_path=out, process=process, pid=process.pid)

    @classmethod
    def latest_running(cls, data_folder: str | Path | None = None) -> TeachingJob | None:
        """The most recently started fine-tuning still running in the registry of ``data_folder``, if any.

        A reloaded page (a new session) shows its progress and can cancel it; on a shared server it may be
        another member's, as the registry is the lab's.
        """
        from .registry import registry_folder

        records = sorted((registry_folder(data_folder) / "jobs").glob(f"*/{JOB_FILE}"),
                         key=lambda path: path.stat().st_mtime, reverse=True)
        for record in records:
            try:
                data = json.loads(record.read_text(encoding="utf-8"))
                job = cls(folder=record.parent, name=str(data["name"]), model_path=Path(data["model_path"]),
                          process=None, pid=int(data["pid"]))
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a job folder half written or edited by hand is no job to show
            if job._alive():
                return job
        return None

    def _alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        import psutil

        try:
            # The pid may have been reused since: only the process writing this job's progress file counts.
            found = psutil.Process(self.pid)
            return found.status() != psutil.STATUS_ZOMBIE and str(self.folder / "progress.json") in found.cmdline()
        except psutil.Error:
            return False

    def state(self) -> dict:
        """``{"running", "stage", "fraction", "report", "problem"}``: how far it is, the report when done
        (:class:`FinetuneReport` as a dict), or the one line saying why it stopped."""
        running = self._alive()
        try:
            progress = json.loads((self.folder / "progress.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            progress = {}
        problem = None
        if not running and progress.get("stage") != "done":
            if self.cancelled:
                problem = "cancelled: nothing was kept"
            else:
                lines = [line for line in (self.folder / "log.txt").read_text(errors="replace").splitlines()
                         if line.startswith("error: ")]
                code = f" (exit code {self.process.returncode})" if self.process is not None else ""
                problem = lines[-1][7:] if lines else f"the fine-tuning stopped{code}"
        return {"running": running, "stage": progress.get("stage", "starting"),
                "fraction": float(progress.get("fraction", 0.0)), "report": progress.get("report"),
                "problem": problem}

    def cancel(self) -> None:
        """Stop the fine-tuning (its process group, by id); nothing is kept."""
        import os
        import signal

        if self._alive():
            self.cancelled = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)  # its own process group (start_new_session), by id
            if not self._wait(20):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self._wait(None)
        if self.cancelled:  # a process killed mid-way cleans nothing up itself
            for leftover in (self.model_path, self.model_path.with_suffix(".card.json"),
                             self.model_path.with_suffix(".onnx")):
                leftover.unlink(missing_ok=True)
            shutil.rmtree(self.model_path.with_suffix(".ckpt"), ignore_errors=True)

    def _wait(self, timeout: float | None) -> bool:
        """Wait for the process to end (``timeout`` seconds at most); True when it has."""
        import psutil

        try:
            if self.process is not None:
                self.process.wait(timeout=timeout)
            else:
                psutil.Process(self.pid).wait(timeout=timeout)  # not our child: psutil polls it
        except (subprocess.TimeoutExpired, psutil.TimeoutExpired):
            return False
        except psutil.NoSuchProcess:
            pass
        return True
