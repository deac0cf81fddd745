"""Command line: ``python -m bbbcore segment | evaluate | train``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import config
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
    p.add_argument("--pixel-size", type=float, default=0.617, help="µm/px of the training images")
    p.add_argument("--learning-rate", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-dir", type=Path, default=None, help="resume from / write checkpoints here")


def _cmd_train(args) -> int:
    from .instances import DEFAULT_SETTINGS
    from .training import bbb_dataset, isbi_dataset, train
    from .unet import ModelCard

    if args.format == "outline":
        images = bbb_dataset(args.data, scale=args.input_scale, annotator=args.annotator, names=args.images)
        source = f"{args.data.name}: outline annotations ({args.annotator} where several), partial; loss on annotated cells only"
    else:
        images = isbi_dataset(args.data, scale=args.input_scale, slices=args.images)
        source = f"{args.data.name}: dense labels (0 = membrane)"
    card = ModelCard(
        name=args.name or args.out.stem,
        version=args.version,
        depth=args.depth,
        base_width=args.base_width,
        input_scale=args.input_scale,
        pixel_size_um=args.pixel_size,
        thresholds=dict(DEFAULT_SETTINGS),
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
        checkpoint_dir=args.checkpoint_dir,
    )
    print(f"wrote {args.out}")
    return 0


def _add_segment(sub) -> None:
    p = sub.add_parser("segment", help="segment images: labels TIFF + cells.csv (+ overlay PNG) per image")
    p.add_argument("images", nargs="+", type=Path, help="PNG, JPEG or TIFF files")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--model", type=Path, default=config.DEFAULT_MODEL, help="a .keras model with its card")
    p.add_argument("--channel", default=None, help="junction channel: index, colour (green) or name (ZO-1)")
    p.add_argument("--pixel-size", type=float, default=config.DEFAULT_PIXEL_SIZE_UM,
                   help="µm per pixel (default: from the file, else the model's)")
    p.add_argument("--condition", default=None, help="condition written into every row")
    p.add_argument("--dose", type=float, default=None, help="dose written into every row")
    p.add_argument("--nuclei-seeds", action="store_true", help="seed cells from the nuclear (DAPI) channel")
    p.add_argument("--max-projection", action="store_true", help="project z-stacks / multi-page TIFFs")


def _cmd_segment(args) -> int:
    import pandas as pd
    from PIL import Image

    from .io import load_image
    from .overlay import overlay_outlines
    from .pipeline import segment_image, write_labels_tiff
    from .unet import BoundaryModel

    model = BoundaryModel.load(args.model)
    args.out.mkdir(parents=True, exist_ok=True)
    tables, failed = [], []
    for path in args.images:
        try:
            image = load_image(path, channel=args.channel, max_projection=args.max_projection)
            result = segment_image(
                image, model, pixel_size_um=args.pixel_size, use_nuclei=args.nuclei_seeds,
                condition=args.condition, dose=args.dose,
            )
        except BBBError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed.append(path.name)
            continue
        stem = path.name.rsplit(".", 1)[0]
        write_labels_tiff(args.out / f"{stem}.labels.tif", result.labels, pixel_size_um=result.pixel_size_um)
        Image.fromarray(overlay_outlines(image.junction, result.labels)).save(args.out / f"{stem}.overlay.png")
        tables.append(result.cells)
        t = result.timings
        print(
            f"{path.name}: {len(result.cells)} cells "
            f"({int(result.cells['touches_edge'].sum())} at the edge), "
            f"{t['inference_s'] + t['postprocess_s'] + t['measure_s']:.2f} s"
        )
    if tables:
        table = pd.concat(tables, ignore_index=True)
        table.to_csv(args.out / "cells.csv", index=False, encoding="utf-8")
        print(f"wrote {len(table)} rows to {args.out / 'cells.csv'}")
    if failed:
        print(f"error: {len(failed)} file(s) could not be segmented: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="score a labels image against an outline annotation")
    p.add_argument("labels", type=Path, help="labels TIFF (as written by segment)")
    p.add_argument("--truth", type=Path, required=True, help="outline annotation PNG (1-px polygons)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the F1 intervals")
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
    parser = argparse.ArgumentParser(prog="python -m bbbcore", description="BBB endothelial cell segmentation")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_segment(sub)
    _add_evaluate(sub)
    _add_train(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return {"segment": _cmd_segment, "evaluate": _cmd_evaluate, "train": _cmd_train}[args.command](args)
    except BBBError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
