"""``python -m bbbcore finetune``: teach a model from labels corrected by hand (what the dashboard runs)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path


def add_finetune(sub) -> None:
    from .finetune import DEFAULT_STEPS

    p = sub.add_parser(
        "finetune", help="fine-tune a model on cells corrected by hand (labels: cell ids, 0 = not annotated); "
                         "kept only if it scores no worse than its parent on cells held out",
        description="A share of the annotated cells (--check-share) is held out; the parent and the new model are "
                    "scored on them (F1 at IoU 0.5) and the new model is written only when it is at most 0.02 below "
                    "its parent. Writes NEW.keras, its card and NEW.onnx.",
    )
    p.add_argument("--model", type=Path, default=None, help="model to start from (.keras; default: the shipped one)")
    p.add_argument("--images", type=Path, nargs="+", required=True, help="the images")
    p.add_argument("--labels", type=Path, nargs="+", required=True,
                   help="one labels TIFF per image, in the same order (cell ids; 0 = not annotated)")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, help="the new model's file (.keras)")
    target.add_argument("--register", metavar="NAME",
                        help="keep the new model in the data folder's registry under NAME (the dashboard lists it)")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"training steps (default {DEFAULT_STEPS})")
    p.add_argument("--check-share", type=float, default=0.2, help="share of annotated cells held out (default 0.2)")
    p.add_argument("--names", nargs="+", default=None,
                   help="the images' names in the card and messages (default: their file names)")
    p.add_argument("--nice", type=int, default=0, help="run at this lower priority (the dashboard uses 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--progress", type=Path, default=None,
                   help="JSON file kept up to date with the stage and fraction done (for a progress bar)")


def cmd_finetune(args) -> int:
    from . import config
    from .errors import display_name
    from .finetune import FinetuneError, examples_from_files, finetune, report_json
    from .registry import new_model_path

    base = args.model or config.DEFAULT_MODEL
    out = new_model_path(args.register) if args.register else args.out
    if out.suffix != ".keras":
        raise FinetuneError(f"{display_name(out.name)}: the new model's file must end in .keras")
    if not 0 <= args.check_share < 1:
        raise FinetuneError(f"--check-share {args.check_share}: give a share from 0 to below 1, e.g. 0.2")
    if args.nice:
        os.nice(args.nice)
    examples = examples_from_files(args.images, args.labels)
    if args.names:
        if len(args.names) != len(examples):
            raise FinetuneError(f"{len(args.names)} name(s) for {len(examples)} image(s): give one per image")
        for example, name in zip(examples, args.names):
            example.image = replace(example.image, name=name)
    progress = _progress_writer(args.progress)
    report = finetune(base, examples, out=out, steps=args.steps, check_share=args.check_share, seed=args.seed,
                      name=out.stem, on_progress=progress)
    for warning in report.warnings:
        print(f"warning: {warning}")
    print(report.line())
    if args.progress is not None:
        _write_atomically(args.progress, json.dumps({"stage": "done", "fraction": 1.0,
                                                     "report": json.loads(report_json(report))}))
    if not report.accepted:
        return 1
    print(f"wrote {out} ({report.seconds:.0f} s)")
    return 0


def _progress_writer(path: Path | None):
    """on_progress for :func:`bbbcore.finetune.finetune`: the stage and fraction into ``path`` (twice a second)."""
    if path is None:
        return None
    last = [0.0]

    def write(stage: str, fraction: float) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.5 or fraction in (0.0, 1.0):
            last[0] = now
            _write_atomically(path, json.dumps({"stage": stage, "fraction": round(fraction, 4), "pid": os.getpid()}))

    return write


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".part")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
