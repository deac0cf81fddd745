"""Command line: ``python -m bbbcore`` (or ``bbb``) ``segment | measure | import-annotations | anomalies | stats |
evaluate | train | experiments``."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from . import config
from .cli_batch import add_batch, cmd_batch
from .cli_edit import add_edit, cmd_edit
from .cli_experiments import add_experiment_option, add_experiments, cmd_experiments
from .cli_finetune import add_finetune, cmd_finetune
from .errors import BBBError


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a boundary U-Net on annotated images")
    p.add_argument("data", type=Path, help="folder: BBB outline layout or ISBI image/ + label/ layout")
    p.add_argument("--format", choices=["outline", "dense"], default="outline",
                   help="outline: <stem>.png + <stem>.outline*.png (partial); dense: image/NN.png + label/NN.png")
    p.add_argument("--images", nargs="*", default=None, help="only these image stems (default: all)")
    p.add_argument("--annotator", default="annotator_a", help="which annotation to use when an image has several")
    p.add_argument("--out", type=Path, required=True, help="model file to write (.keras; the card goes beside it)")
    p.add_argument("--name", default=None, help="model name in the card (default: the file stem)")
    p.add_argument("--version", default="1.0")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--patch", type=int, default=160, help="patch size in px at the working scale")
    p.add_argument("--base-width", type=int, default=8)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--input-scale", type=float, default=0.5, help="resize factor from the data's scale to the network's")
    p.add_argument("--pixel-size", type=positive_number("µm per pixel"), default=config.TRAINING_PIXEL_SIZE_UM,
                   help="µm/px of the training images")
    p.add_argument("--learning-rate", type=float, default=2e-3)
    p.add_argument("--zoom-range", type=float, nargs=2, default=(0.8, 1.25), metavar=("LOW", "HIGH"),
                   help="random scale augmentation range")
    p.add_argument("--dim-junctions", type=float, default=0.0, metavar="P",
                   help="share of patches whose junctions are faded in a random region (0-1)")
    p.add_argument("--flips", type=int, choices=[1, 2, 4], default=2,
                   help="test-time flip averaging written into the card (1: none; 2: + left-right; 4: all flips)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-dir", type=Path, default=None, help="resume from / write checkpoints here")
    p.add_argument("--start-from", type=Path, default=None, metavar="MODEL",
                   help="start from this model's weights (.keras, same depth and width) instead of random ones")
    g = p.add_argument_group("generated junction images (bbbcore.junction_generator), exact labels")
    g.add_argument("--generated", type=int, default=0, metavar="N",
                   help="also train on N generated images (their cells at the training diameter, drawn at native "
                        "diameters of 15-300 px)")
    g.add_argument("--generated-share", type=float, default=0.25, help="share of training patches from them")
    g.add_argument("--generated-diameters", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                   help="native cell diameters the generated images are drawn at, px, log-uniform (default 15 300)")
    g.add_argument("--generated-textures", nargs="+", default=None, metavar="TEXTURE",
                   help="junction textures to draw (default: all but 'spiked', held out for scoring)")
    g = p.add_argument_group("self-training on unannotated images")
    g.add_argument("--pseudo-label", type=Path, default=None, metavar="FOLDER",
                   help="also train on the images in FOLDER, labelled by --teacher (the cells it is surest of)")
    g.add_argument("--teacher", type=Path, default=None, help="model (.keras) that labels the --pseudo-label images")
    g.add_argument("--pseudo-share", type=float, default=0.5, help="share of training patches from those images")
    g.add_argument("--pseudo-keep", type=float, default=0.8,
                   help="share of each image's cells kept as labels (those with the surest borders; "
                        "0.8 beat 0.5 and 1.0 in benchmarks/README.md)")


def _cmd_train(args) -> int:
    from .instances import WatershedSettings
    from .training import bbb_dataset, isbi_dataset, train, training_diameter
    from .unet import ModelCard, read_card

    if args.format == "outline":
        images = bbb_dataset(args.data, scale=args.input_scale, annotator=args.annotator, names=args.images)
        source = f"{args.data.name}: outline annotations ({args.annotator} where several), partial; loss on annotated cells only"
    else:
        images = isbi_dataset(args.data, scale=args.input_scale, slices=args.images)
        source = f"{args.data.name}: dense labels (0 = membrane)"
    if args.pseudo_label is not None:
        images, note = _with_pseudo_labels(images, args)
        source = f"{source}; {note}"
    # Fine-tuning keeps the scale the network already knows (its card's training diameter).
    diameter = read_card(args.start_from).diameter_px if args.start_from else training_diameter(images)
    if args.generated:
        images, note = _with_generated(images, args, training_diameter=diameter)
        source = f"{source}; {note}"
    card = ModelCard(
        name=args.name or args.out.stem,
        version=args.version,
        depth=args.depth,
        base_width=args.base_width,
        input_scale=args.input_scale,
        pixel_size_um=args.pixel_size,
        cell_diameter_px=diameter,
        flips=args.flips,
        thresholds=WatershedSettings().to_dict(),
        training={"data": source, "data_folder": str(args.data)},
    )
    print(f"training {card.name} on {len(images)} image(s): {', '.join(im.name for im in images)}")
    train(
        images,
        out=args.out,
        card=card,
        steps=args.steps,
        batch=args.batch,
        patch=args.patch,
        learning_rate=args.learning_rate,
        seed=args.seed,
        zoom_range=tuple(args.zoom_range),
        dim_junctions=args.dim_junctions,
        checkpoint_dir=args.checkpoint_dir,
        start_from=args.start_from,
    )
    print(f"wrote {args.out}")
    return 0


def _with_generated(images, args, *, training_diameter: float):
    """``images`` plus --generated generated images weighted to --generated-share of the patches, and a card line."""
    from .training import GENERATED_NATIVE_DIAMETERS, TRAINING_TEXTURES, generated_dataset

    if not 0 < args.generated_share < 1:
        raise BBBError(f"--generated-share must lie between 0 and 1, got {args.generated_share}")
    from .junction_generator import TEXTURES

    textures = tuple(args.generated_textures or TRAINING_TEXTURES)
    if unknown := [t for t in textures if t not in TEXTURES]:
        raise BBBError(f"--generated-textures: no texture {', '.join(unknown)}; choose from {', '.join(TEXTURES)}")
    low, high = args.generated_diameters or GENERATED_NATIVE_DIAMETERS
    if not 0 < low <= high:
        raise BBBError(f"--generated-diameters: expected 0 < LOW <= HIGH, got {low:g} {high:g}")
    generated = generated_dataset(args.generated, training_diameter=training_diameter, input_scale=args.input_scale,
                                  seed=args.seed + 1, textures=textures, native_diameters=(low, high))
    others = sum(float(im.known.sum()) * im.weight for im in images)
    drawn = sum(float(im.known.sum()) for im in generated)
    for im in generated:
        im.weight = args.generated_share / (1 - args.generated_share) * others / drawn
    note = (f"plus {len(generated)} generated junction images (bbbcore.junction_generator, seed {args.seed + 1}, "
            f"textures {', '.join(textures)}; native cell diameters {low:g}-{high:g} px brought to the training diameter), "
            f"{args.generated_share:.0%} of patches")
    return images + generated, note


def _with_pseudo_labels(images, args):
    """``images`` plus the --pseudo-label folder's images labelled by --teacher, and a line for the card."""
    from .io import IMAGE_SUFFIXES
    from .training import pseudo_labelled_dataset
    from .unet import BoundaryModel

    if args.teacher is None:
        raise BBBError("--pseudo-label needs --teacher MODEL (the model that labels those images)")
    if not 0 < args.pseudo_share < 1:
        raise BBBError(f"--pseudo-share must lie between 0 and 1, got {args.pseudo_share}")
    if not 0 < args.pseudo_keep <= 1:
        raise BBBError(f"--pseudo-keep must lie in (0, 1], got {args.pseudo_keep}")
    paths = sorted(p for p in args.pseudo_label.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    teacher = BoundaryModel.load(args.teacher)
    pseudo = pseudo_labelled_dataset(teacher, paths, scale=args.input_scale, keep=args.pseudo_keep)
    if not pseudo:
        raise BBBError(f"{args.pseudo_label}: no image there gave pseudo-labels")
    real_known = sum(float(im.known.sum()) for im in images)
    pseudo_known = sum(float(im.known.sum()) for im in pseudo)
    weight = args.pseudo_share / (1 - args.pseudo_share) * real_known / pseudo_known
    for im in pseudo:
        im.weight = weight
    note = (f"plus {len(pseudo)} unannotated image(s) from {args.pseudo_label.name} pseudo-labelled by "
            f"{teacher.card.name} version {teacher.card.version} ({args.teacher.name}; trained on "
            f"{', '.join(teacher.card.training.get('images', [])) or 'unknown images'}), its surest "
            f"{args.pseudo_keep:.0%} of the cells; {args.pseudo_share:.0%} of patches")
    return images + pseudo, note


def _add_sample_options(p) -> None:
    g = p.add_argument_group("conditions (sample sheet > file name; these options override both)")
    g.add_argument("--sample-sheet", type=Path, default=None,
                   help="CSV: file, condition, dose, dose_unit, replicate, well")
    g.add_argument("--name-pattern", default=None,
                   help="regular expression with named groups (condition, dose, dose_unit, replicate, well) "
                        "read from file names; default: the study's names, e.g. tat3b_80ng_frame02.tif")
    g.add_argument("--condition", default=None, help="condition written into every row")
    g.add_argument("--dose", type=positive_number("the dose", zero=True), default=None,
                   help="dose written into every row")
    g.add_argument("--dose-unit", default=None, help="unit of --dose (ng, µM, ...)")
    g.add_argument("--junction-threshold", type=positive_number("an intensity", zero=True), default=None,
                   help="background-subtracted junction intensity from which the junction counts as present "
                        "(default: 1.5 x each cell's cytoplasm)")


def _samples(args, names: list[str]):
    """The sample sheet of the run: the file's rows, else the names, then the overrides."""
    from .metadata import DEFAULT_NAME_PATTERN, read_sample_sheet, sample_sheet_for, unmatched_warning

    sheet = read_sample_sheet(args.sample_sheet) if args.sample_sheet else None
    warning = unmatched_warning(args.sample_sheet.name, sheet, names) if sheet is not None else None
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    overrides = {"condition": args.condition, "dose": args.dose, "dose_unit": args.dose_unit}
    return sample_sheet_for(names, sheet=sheet, pattern=args.name_pattern or DEFAULT_NAME_PATTERN,
                            overrides=overrides)


def _channels(args, sample: dict) -> dict:
    """The junction and nuclear channel of one image: the command line's, else its sample sheet row's."""
    channel = args.channel if args.channel is not None else sample.get("channel")
    nuclear = sample.get("nuclear_channel") or "auto"
    return {"channel": channel, "nuclear_channel": nuclear}


def positive_number(what: str, *, integer: bool = False, zero: bool = False):
    """An argparse type: a finite number above 0 (or 0 too, with ``zero``; a whole one with ``integer``);
    ``what`` it gives, for the message."""
    def parse(text: str) -> float | int:
        try:
            value = int(text) if integer else float(text.replace(",", "."))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole ' if integer else ''}number ({what})") from None
        if not (math.isfinite(value) and (value >= 0 if zero else value > 0)):
            raise argparse.ArgumentTypeError(f"must be {'zero or more' if zero else 'a positive number'} ({what}), "
                                             f"got {text}")
        return value
    return parse


def _diameter(args, sample: dict) -> float | None:
    """The typical cell diameter (px) of one image: --diameter, else its sample sheet row's, else None (estimated)."""
    return args.diameter if args.diameter is not None else sample.get("diameter_px")


def _pixel_size(args, sample: dict) -> float | None:
    """The pixel size of one image: the command line's, else its sample sheet row's, else the file's (None)."""
    return args.pixel_size if args.pixel_size is not None else sample.get("pixel_size_um")


class _Output:
    """What segment / measure / import-annotations write: per-image files now, the tables at the end.

    The per-image files are made and written on a second thread while the next image is segmented
    (the two cores overlap); at most :attr:`AHEAD` images wait, so memory stays bounded, and a
    failed write (a full disk) is raised at the next image or at the end.
    """

    AHEAD = 2

    def __init__(self, out: Path):
        from concurrent.futures import ThreadPoolExecutor

        self.out = out
        self.tables: list = []
        self.borders: list = []
        self.records: list = []
        self.used: set[str] = set()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outputs")
        self._pending: list = []
        out.mkdir(parents=True, exist_ok=True)

    def add(self, name: str, labels, cells, *, image_id: str = "", junction=None,
            pixel_size_um: float | None = None, stem_name: str | None = None, result=None, interfaces=None) -> str:
        """Queue one image's labels TIFF, ROI zip, GeoJSON (and overlay); keep its rows (cells, and its
        ``interfaces`` or ``result``'s). Returns its stem.

        The files are named after ``stem_name`` (default: the image's name), kept apart from earlier ones.
        With ``result`` (an :class:`~bbbcore.pipeline.ImageResult`), its summary record (diameters, quality
        figures) is made on the writer's thread too.
        """
        from .export import image_outputs, write_files
        from .features import image_record
        from .metadata import output_stem

        stem = output_stem(stem_name or name, image_id=image_id, used=self.used)
        while len(self._pending) >= self.AHEAD:
            self._pending.pop(0).result()  # raises what the writer raised
        self._pending.append(self._writer.submit(
            lambda: write_files(self.out, image_outputs(stem, labels, cells=cells, junction=junction,
                                                        pixel_size_um=pixel_size_um))))
        self.tables.append(cells)
        interfaces = result.interface_table() if result is not None and interfaces is None else interfaces
        if interfaces is not None and len(interfaces):
            self.borders.append(interfaces)
        self.records.append(self._writer.submit(result.record) if result is not None else
                            image_record(labels, image=name, image_id=image_id, pixel_size_um=pixel_size_um))
        return stem

    def finish(self, samples) -> None:
        """Wait for the per-image files, then write the tables."""
        try:
            for job in self._pending:
                job.result()
        finally:
            self._pending.clear()
            self._writer.shutdown(wait=True)
        records = [r.result() if hasattr(r, "result") else r for r in self.records]
        _write_tables(self.out, self.tables, records, samples, self.borders)


def _table_pixel_size(cells, fallback: float | None) -> float | None:
    """The pixel size a cells table was measured with (its pixel_size_um column), else ``fallback``."""
    size = cells["pixel_size_um"].iloc[0] if len(cells) else fallback
    return None if size is None or size != size else float(size)


def _write_tables(out: Path, tables: list, records: list, samples, borders: list = ()) -> None:
    import pandas as pd

    from .export import write_csv
    from .features import summary_table
    from .metadata import apply_sample_sheet, write_sample_sheet

    if not tables:
        return
    cells = pd.concat(tables, ignore_index=True)
    write_csv(cells, out / "cells.csv")
    if borders:  # only with the images (an interface's junction is read on it)
        write_csv(apply_sample_sheet(pd.concat(borders, ignore_index=True), samples), out / "interfaces.csv")
    summary = summary_table(cells, images=records)
    write_csv(summary, out / "summary.csv")
    write_sample_sheet(samples, out / "samples.csv")
    print(f"wrote {len(cells)} cells of {len(summary)} image(s) to {out / 'cells.csv'} and {out / 'summary.csv'}")


def _add_segment(sub) -> None:
    p = sub.add_parser("segment", help="segment images: cells.csv, summary.csv, and per image labels TIFF, "
                                       "ImageJ ROI zip, GeoJSON and overlay PNG")
    p.add_argument("images", nargs="+", type=Path,
                   help="PNG, JPEG, TIFF / OME-TIFF, CZI, ND2, LIF files or OME-Zarr folders (each scene an image)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    add_segment_options(p)
    add_experiment_option(p)


def add_segment_options(p) -> None:
    """The options of how images are segmented (``segment`` and ``batch`` share them)."""
    p.add_argument("--model", type=Path, default=config.DEFAULT_MODEL, help="a .keras model with its card")
    p.add_argument("--channel", default=None, help="junction channel: index, colour (green) or name (ZO-1)")
    p.add_argument("--pixel-size", type=positive_number("µm per pixel"), default=config.DEFAULT_PIXEL_SIZE_UM,
                   help="µm per pixel, for the µm columns only (default: from the file, else the sample sheet; "
                        "without one, no µm columns)")
    p.add_argument("--diameter", type=positive_number("cell diameter in pixels"), default=None, metavar="PX",
                   help="typical cell diameter in pixels (default: the sample sheet's diameter_px, else estimated "
                        "per image); each image is resized so its cells match the model's training diameter")
    p.add_argument("--nuclei-seeds", action="store_true", help="seed cells from the nuclear (DAPI) channel")
    p.add_argument("--max-projection", action="store_true", help="project z-stacks / multi-page TIFFs")
    _add_sample_options(p)


def _image_list(paths: list[Path], failed: list[str]) -> list[tuple[Path, str]]:
    """(file, image name) of each image the files hold: one per scene of a multi-scene file."""
    from .errors import display_name
    from .io import image_names

    images = []
    for path in paths:
        try:
            images += [(path, name) for name in image_names(path)]
        except BBBError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed.append(display_name(path.name))
    return images


def _write_run_files(args, images: list[dict], tables: list) -> None:
    """manifest.json and methods.txt beside a run's tables (as ``batch`` writes them)."""
    import pandas as pd

    from .batch import write_manifest, write_methods

    settings = {"channel": args.channel, "pixel_size_um": args.pixel_size, "diameter_px": args.diameter,
                "use_nuclei": args.nuclei_seeds, "junction_threshold": args.junction_threshold,
                "max_projection": args.max_projection}
    write_manifest(args.out, args.model, settings, images)
    if tables:
        write_methods(args.out, pd.concat(tables, ignore_index=True), args.model)


def _cmd_segment(args) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from .cli_experiments import ExperimentWriter
    from .errors import display_name
    from .io import file_bytes, load_image
    from .metadata import sample_of
    from .pipeline import finish_segmentation, predict_scaled
    from .scale import diameter_source
    from .unet import BoundaryModel

    failed: list[str] = []
    images = _image_list(args.images, failed)
    samples = _samples(args, [name for _, name in images])
    model = BoundaryModel.load(args.model)
    store = ExperimentWriter(args.experiment) if args.experiment else None
    output = _Output(args.out)
    run_images: list[dict] = []

    def predict(path: Path, name: str):
        sample = sample_of(samples, name)
        image = load_image(path, name=name, max_projection=args.max_projection, **_channels(args, sample))
        return predict_scaled(image, model, diameter_px=_diameter(args, sample))

    # The next image is read and predicted on a second thread (ONNX Runtime releases the GIL) while this
    # one's watershed and measuring run: one image ahead at most.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict") as ahead:
        queued = [ahead.submit(predict, *images[0])] if images else []
        for index, (path, name) in enumerate(images):
            sample = sample_of(samples, name)
            if index + 1 < len(images):
                queued.append(ahead.submit(predict, *images[index + 1]))
            try:
                result = finish_segmentation(
                    queued.pop(0).result(), model, pixel_size_um=_pixel_size(args, sample),
                    use_nuclei=args.nuclei_seeds, sample=sample, junction_threshold=args.junction_threshold,
                )
            except BBBError as exc:
                print(f"error: {exc}", file=sys.stderr)
                failed.append(display_name(name))
                continue
            image = result.image
            output.add(image.name, result.labels, result.cells, image_id=image.image_id, junction=image.junction,
                       pixel_size_um=result.pixel_size_um, result=result)
            given_size, given_diameter = _pixel_size(args, sample), _diameter(args, sample)
            how = diameter_source(given_diameter, result.diameter_estimated_px)
            run_images.append({"image": image.name, "file": str(path), "pixel_size_um": result.pixel_size_um,
                               "pixel_size_source": "given" if given_size is not None else
                               ("file" if image.pixel_size_um else None),
                               "diameter_used_px": result.diameter_used_px,
                               "diameter_source": how})
            for warning in result.warnings:
                print(f"warning: {warning}", file=sys.stderr)
            if store is not None:
                params = {"model": str(args.model), "channel": _channels(args, sample)["channel"],
                          "use_nuclei": args.nuclei_seeds, "junction_threshold": args.junction_threshold,
                          "pixel_size_um": result.pixel_size_um, "diameter_px": given_diameter}
                store.save(result, file_bytes(path), params, sample)
            print(f"{display_name(name)}: {len(result.cells)} cells "
                  f"({int(result.cells['touches_edge'].sum())} at the edge), cell diameter "
                  f"{result.diameter_used_px:.0f} px ({how}), {result.seconds:.2f} s")
    output.finish(samples)
    _write_run_files(args, run_images, output.tables)
    if store is not None:
        store.done()
    if failed:
        print(f"error: {len(failed)} file(s) could not be segmented: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _add_measure(sub) -> None:
    p = sub.add_parser("measure", help="measure existing labels images (corrected in Fiji, or another tool's "
                                       "masks) into cells.csv and summary.csv")
    p.add_argument("labels", nargs="+", type=Path, help="labels TIFFs (0 = no cell, one id per cell)")
    p.add_argument("--image", nargs="*", type=Path, default=[],
                   help="the matching images, in the same order (adds junction and nuclei columns)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--channel", default=None, help="junction channel of the images")
    p.add_argument("--pixel-size", type=positive_number("µm per pixel"), default=config.DEFAULT_PIXEL_SIZE_UM,
                   help="µm per pixel (default: from the image file, else none)")
    _add_sample_options(p)
    add_experiment_option(p)


def _cmd_measure(args) -> int:
    from .cli_experiments import ExperimentWriter
    from .errors import ImageReadError, display_name
    from .export import read_labels_tiff
    from .io import load_image
    from .metadata import sample_of
    from .pipeline import ImageResult, measure

    if args.image and len(args.image) != len(args.labels):
        print(f"error: {len(args.labels)} labels file(s) but {len(args.image)} image(s): give one image per "
              "labels file, in the same order, or none", file=sys.stderr)
        return 2
    images = args.image or [None] * len(args.labels)
    names = [(image.name if image else path.name) for path, image in zip(args.labels, images)]
    samples = _samples(args, names)
    store = ExperimentWriter(args.experiment) if args.experiment else None
    output, failed = _Output(args.out), []
    for path, image_path, name in zip(args.labels, images, names):
        sample = sample_of(samples, name)
        try:
            try:
                labels = read_labels_tiff(path)
            except (OSError, ValueError) as exc:
                raise ImageReadError(path.name, f"not a readable labels TIFF ({exc})") from None
            image = load_image(image_path, **_channels(args, sample)) if image_path else None
            cells, interfaces = measure(labels, image=image, name=name, pixel_size_um=_pixel_size(args, sample),
                                        sample=sample, junction_threshold=args.junction_threshold)
        except BBBError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed.append(display_name(path.name))
            continue
        size = _table_pixel_size(cells, _pixel_size(args, sample))
        output.add(name, labels, cells, image_id=image.image_id if image else "",
                   junction=image.junction if image else None, pixel_size_um=size, interfaces=interfaces)
        if store is not None and image is None:
            print(f"note: {display_name(path.name)}: not stored in experiment {args.experiment!r} (give its image "
                  "with --image, so the dashboard can show the cells on it)", file=sys.stderr)
        elif store is not None:
            result = ImageResult(image, labels, cells, size, source=f"labels file {path.name}", interfaces=interfaces)
            store.save(result, image_path.read_bytes(), {"labels": path.name, "pixel_size_um": size}, sample)
        print(f"{display_name(path.name)}: {len(cells)} cells ({int(cells['touches_edge'].sum())} at the edge)")
    output.finish(samples)
    if store is not None:
        store.done()
    if failed:
        print(f"error: {len(failed)} file(s) could not be measured: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _add_import(sub) -> None:
    p = sub.add_parser("import-annotations", help="hand-drawn polygons (Labelbox JSON, GeoJSON) -> labels TIFFs "
                                                  "+ the same cells.csv and summary.csv as segment")
    p.add_argument("file", type=Path, help="Labelbox JSON export or GeoJSON file")
    p.add_argument("--image", nargs="*", type=Path, default=[],
                   help="the annotated images (matched by file name): their size, junction and nuclei columns")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--channel", default=None, help="junction channel of the images")
    p.add_argument("--pixel-size", type=positive_number("µm per pixel"), default=config.DEFAULT_PIXEL_SIZE_UM,
                   help="µm per pixel")
    _add_sample_options(p)


def _cmd_import(args) -> int:
    import re

    from .annotations import read_polygon_annotations
    from .errors import display_name
    from .io import load_image
    from .metadata import sample_of
    from .pipeline import measure

    annotations = read_polygon_annotations(args.file)
    by_name = {path.name.lower(): path for path in args.image}
    by_name.update({path.name.rsplit(".", 1)[0].lower(): path for path in args.image})
    # Every polygon is checked against its image's size (or, without the image, a sane
    # size) before any labels image is allocated or any file written.
    paths = [by_name.get(a.image.lower(), by_name.get(a.image.lower().rsplit(".", 1)[0])) for a in annotations]
    loaded = {path: load_image(path, channel=args.channel) for path in dict.fromkeys(paths) if path is not None}
    shapes = [a.labels_shape(args.file.name, loaded[path].shape if path is not None else None)
              for a, path in zip(annotations, paths)]
    samples = _samples(args, sorted({a.image for a in annotations}))
    output = _Output(args.out)
    repeated = {a.image for a in annotations if sum(b.image == a.image for b in annotations) > 1}
    for annotation, path, shape in zip(annotations, paths, shapes):
        image = loaded[path] if path is not None else None
        if path is None:
            print(f"note: {display_name(annotation.image)}: image not given (--image); the labels are "
                  f"{shape[1]}x{shape[0]} px, the polygons' extent, and junction columns are left out")
        labels = annotation.to_labels(shape)
        cells, interfaces = measure(labels, image=image, name=annotation.image, pixel_size_um=args.pixel_size,
                                    sample=sample_of(samples, annotation.image),
                                    junction_threshold=args.junction_threshold)
        cells["annotator"] = annotation.annotator
        name = annotation.image
        if annotation.image in repeated:
            person = re.sub(r"[^A-Za-z0-9]+", "_", annotation.annotator.split("@")[0]).strip("_") or "annotation"
            name = f"{name.rsplit('.', 1)[0]}.{person}.x"
        stem = output.add(annotation.image, labels, cells, stem_name=name,
                          image_id=cells["image_id"].iloc[0] if len(cells) else "",
                          junction=image.junction if image else None,
                          pixel_size_um=_table_pixel_size(cells, None), interfaces=interfaces)
        print(f"{display_name(annotation.image)} ({display_name(annotation.annotator or 'unknown annotator')}): "
              f"{len(annotation.polygons)} polygons -> {len(cells)} cells, {stem}.labels.tif")
    output.finish(samples)
    return 0


def _read_cells_csv(path: Path, numeric=(), *, required=(), optional=(), hint: str = "", note: str = ""):
    """A cells table (any delimiter and encoding :func:`bbbcore.tables.read_table` reads) for a command.

    The ``numeric`` columns (and those of ``optional`` the table has) must hold
    numbers, the ``required`` ones exist; rows with a missing or infinite
    value in ``numeric`` are reported in one ``warning:`` line (``note``
    appended) and left out by the command. A :class:`~bbbcore.tables.TableError`
    names the file and the problem (the CLI prints it, exit 2).
    """
    from .tables import TableError, numeric_columns, read_table, require_columns

    table = read_table(path)
    require_columns(table, [*numeric, *required], name=path.name, hint=hint)
    if table.empty:
        raise TableError(path.name, "the table has no rows (only a header)")
    optional = [c for c in optional if c in table.columns]
    table, warning = numeric_columns(table, [*numeric, *optional], name=path.name, report_missing=numeric,
                                     note=note)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    return table


def _add_anomalies(sub) -> None:
    p = sub.add_parser("anomalies", help="score cells with a dense autoencoder: anomaly_score and is_anomaly")
    p.add_argument("cells", type=Path, nargs="?", default=None,
                   help="a cells table with the feature columns (as written by segment); default with "
                        "--experiment: that experiment's cells")
    p.add_argument("--out", type=Path, default=None, help="the scored table to write (CSV)")
    add_experiment_option(p)
    p.add_argument("--contamination", type=float, default=config.ANOMALY_CONTAMINATION,
                   help=f"fraction of the fitted cells flagged (default {config.ANOMALY_CONTAMINATION:g}, the study's)")
    p.add_argument("--fit-on", default=None, metavar="CONDITION",
                   help="fit on this condition's cells only (e.g. control); default: all cells")
    p.add_argument("--design", choices=["improved", "original", "junctions"], default="improved",
                   help="improved: log sizes + scale-free shape, Adam; original: the study's five columns, SGD; "
                        "junctions: improved + the cell's junction state (continuity, perpendicular share, ...)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-model", type=Path, default=None, help="also save the fitted model (.keras + card)")


def _cmd_anomalies(args) -> int:
    from .anomaly import AnomalyModel, design_features, fraction_flagged
    from .errors import display_name
    from .export import write_csv

    if args.cells is None and not args.experiment:
        raise BBBError("anomalies: give a cells table (CSV) or --experiment NAME")
    if args.out is None and not args.experiment:
        raise BBBError("anomalies: give --out FILE.csv (the scored table) or --experiment NAME (scores stored there)")
    features = design_features(args.design)[0]
    store = None
    if args.experiment:
        from .cli_experiments import ExperimentWriter

        store = ExperimentWriter(args.experiment)
    if args.cells is not None:
        cells = _read_cells_csv(args.cells, features, hint=" (as written by `segment`)",
                                note="; they get no anomaly score")
        source = display_name(args.cells.name)
    else:
        cells, source = _experiment_cells(store, features), f"experiment {args.experiment!r}"
    model = AnomalyModel.fit(cells, design=args.design, fit_on=args.fit_on, contamination=args.contamination,
                             seed=args.seed, source=source)
    scored = model.score(cells, source=source)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_csv(scored, args.out)
    if store is not None:
        stored = store.store_anomalies(scored)
        print(f"stored the scores of {stored} cell(s) in experiment {args.experiment!r}")
    if args.save_model:
        print(f"model: {model.save(args.save_model)}")
    print(f"fitted on {model.card.fitted_on} ({model.card.n_cells} cells, {model.card.training['epochs']} epochs, "
          f"{model.card.training['seconds']:.1f} s); threshold {model.card.threshold:.4g}")
    by = "condition" if "condition" in scored.columns and scored["condition"].notna().any() else "image"
    for _, row in fraction_flagged(scored, by=by).iterrows():
        print(f"{row[by]}: {row['n_anomalous']} of {row['n_cells']} cells anomalous ({row['fraction']:.1%})")
    if args.out is not None:
        print(f"wrote {len(scored)} rows to {args.out}")
    return 0


def _experiment_cells(store, features):
    """An experiment's cells with their sample fields, the numeric columns checked as for a table."""
    from .tables import numeric_columns

    cells = store.cells()
    if cells.empty:
        raise BBBError(f"experiment {store.name!r} has no cells yet (segment images into it first)")
    cells, warning = numeric_columns(cells, [f for f in features if f in cells.columns],
                                     name=f"experiment {store.name!r}", note="; they get no anomaly score")
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    return cells


def _add_stats(sub) -> None:
    p = sub.add_parser("stats", help="treated vs control on per-image (or per-replicate) values")
    p.add_argument("cells", type=Path, help="a cells table with condition (and dose) columns")
    p.add_argument("--control", required=True, help="the control condition")
    p.add_argument("--out", type=Path, required=True, help="the statistics table to write (CSV)")
    p.add_argument("--features", nargs="*", default=None, help="features to test (default: the original five)")
    p.add_argument("--statistic", choices=["mean", "median"], default="mean", help="per-unit summary of the cells")
    p.add_argument("--bootstrap", type=positive_number("resamples", integer=True, zero=True), default=2000,
                   help="bootstrap resamples for the effect-size interval")


def _cmd_stats(args) -> int:
    import pandas as pd

    from .export import write_csv
    from .stats import check_comparable, compare_to_control, dose_response

    features = args.features or list(config.ORIGINAL_FEATURES)
    cells = _read_cells_csv(args.cells, features, required=["condition"], optional=["dose"])
    check_comparable(cells, args.control, source=args.cells.name)
    # The contract: the table's `image` column identifies the unit of replication.
    table = compare_to_control(cells, features, args.control, statistic=args.statistic, n_boot=args.bootstrap,
                               unit="image")
    if "dose" in cells.columns and cells["dose"].notna().any():
        trends = pd.DataFrame([dose_response(cells, f, control=args.control, statistic=args.statistic)
                               for f in features]).rename(columns={"spearman_rho": "dose_spearman_rho",
                                                                   "p": "dose_spearman_p", "n_units": "dose_n_units"})
        table = table.merge(trends, on="feature", how="left")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(table, args.out)
    for _, row in table.iterrows():
        print(f"{row['feature']}, {row['condition']} vs {row['control']} ({row['n_images']} vs "
              f"{row['n_images_control']} {row['unit']}s): difference {row['difference']:.4g}, "
              f"Welch p {row['p_welch']:.3g}, Holm p {row['p_holm']:.3g}, Hedges' g {row['g']:.2f}"
              + (f"  [{row['warning']}]" if row["warning"] else ""))
    print(f"wrote {len(table)} rows to {args.out}")
    return 0


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="score a labels image against an outline annotation")
    p.add_argument("labels", type=Path, help="labels TIFF (as written by segment)")
    p.add_argument("--truth", type=Path, required=True, help="outline annotation PNG (1-px polygons)")
    p.add_argument("--bootstrap", type=positive_number("resamples", integer=True, zero=True), default=1000,
                   help="bootstrap resamples for the F1 intervals")
    p.add_argument("--json", type=Path, default=None, help="also write the scores to this JSON file")


def _cmd_evaluate(args) -> int:
    import json

    from .annotations import read_truth_cells
    from .metrics import score_segmentation
    from .pipeline import read_labels_tiff

    try:
        predicted = read_labels_tiff(args.labels)
    except (OSError, ValueError) as exc:
        print(f"error: {args.labels.name}: not a readable labels TIFF ({exc})", file=sys.stderr)
        return 2
    truth = read_truth_cells(args.truth)
    if truth.shape != predicted.shape:
        print(f"error: {args.labels.name}: shape {predicted.shape} differs from the annotation's {truth.shape}",
              file=sys.stderr)
        return 2
    scores = score_segmentation(truth, predicted, n_bootstrap=args.bootstrap)
    for key, value in scores.items():
        print(f"{key}: {value}")
    if args.json:
        args.json.write_text(json.dumps(scores, indent=2) + "\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bbb", description="BBB endothelial cell segmentation")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_segment(sub)
    _add_measure(sub)
    _add_import(sub)
    _add_anomalies(sub)
    _add_stats(sub)
    _add_evaluate(sub)
    _add_train(sub)
    _add_export_onnx(sub)
    add_edit(sub)
    add_batch(sub, add_segment_options)
    add_finetune(sub)
    add_experiments(sub)
    return parser


def _has_onnx(model: Path) -> bool:
    """Whether a model runs on its ONNX export (no TensorFlow needed to segment)."""
    from .onnx_runtime import valid_export
    from .unet import read_card

    try:
        return valid_export(model, read_card(model)) is not None
    except (BBBError, OSError):
        return False  # the loader says what is wrong, in one line


def _add_export_onnx(sub) -> None:
    p = sub.add_parser("export-onnx", help="write <model>.onnx beside a .keras model (segmenting then runs on "
                                           "ONNX Runtime, without TensorFlow)")
    p.add_argument("models", nargs="+", type=Path, help=".keras files (with their cards)")


def _cmd_export_onnx(args) -> int:
    from .errors import display_name
    from .onnx_runtime import export_onnx
    from .unet import read_card

    for model in args.models:
        path = export_onnx(model)
        difference = read_card(model).exports["onnx"]["max_abs_difference_vs_keras"]
        print(f"{display_name(model.name)}: wrote {display_name(path.name)} (maps within {difference:.1g} of Keras)")
    return 0


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow with its C++ start-up lines (oneDNN, CPU features) kept off stderr.

    Those lines would drown the one line per problem the commands promise. An
    import that fails still raises, with its Python message.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            try:
                import tensorflow  # noqa: F401
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def main(argv: list[str] | None = None) -> int:
    from .errors import display_name, escape_controls

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in ("anomalies", "train", "export-onnx", "finetune") or (
            args.command in ("segment", "batch") and not _has_onnx(args.model)):
        _import_tensorflow_quietly()
    try:
        commands = {
            "segment": _cmd_segment, "measure": _cmd_measure, "import-annotations": _cmd_import,
            "anomalies": _cmd_anomalies, "stats": _cmd_stats,
            "evaluate": _cmd_evaluate, "train": _cmd_train, "experiments": cmd_experiments,
            "export-onnx": _cmd_export_onnx, "edit": cmd_edit, "finetune": cmd_finetune,
            "batch": lambda a: cmd_batch(a, _samples, _channels, _diameter, _pixel_size),
        }
        return commands[args.command](args)
    except BBBError as exc:
        # The last guard of the one-line promise: control characters escaped (names are already).
        print(f"error: {escape_controls(str(exc))}", file=sys.stderr)
        return 2
    except OSError as exc:  # an output that cannot be written (a full disk, a read-only folder)
        where = f"{display_name(str(exc.filename))}: " if exc.filename else ""
        print(f"error: {where}{escape_controls(exc.strerror or str(exc))}", file=sys.stderr)
        return 2
