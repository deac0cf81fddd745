"""Score pairs of leave-one-image-out fold models, with and without flip averaging.

Used to compare training recipes before one is shipped: each model trained on
one annotated image is scored on the other (bbb_01 against annotator A), as in
``score_models.py``, once per test-time flip setting, and the pair's mean over
both folds and every flip setting is printed last (the figure recipes are
compared by: with 23 and 60 cells, one run's figure moves by several points
when a single cell merges).

    python benchmarks/score_folds.py                       # the committed fold models
    python benchmarks/score_folds.py --pair recipeA runs/exp/a_train01.keras runs/exp/a_train02.keras \\
        --pair recipeB runs/exp/b_train01.keras runs/exp/b_train02.keras --flips 1 2 4
    python benchmarks/score_folds.py --set nucleus_merge_threshold=0     # a watershed setting changed
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from score_models import DATA, FOLDS  # noqa: E402

from bbbcore import config  # noqa: E402
from bbbcore.annotations import read_truth_cells  # noqa: E402
from bbbcore.io import load_image  # noqa: E402
from bbbcore.metrics import score_segmentation  # noqa: E402


def score_pair(
    train01: Path, train02: Path, flips: list[int], n_bootstrap: int = 1000, settings: dict | None = None
) -> list[dict]:
    """One row per (held-out image, flips) with F1@0.5, F1@0.75 (95 % CIs) and mean IoU.

    ``settings`` override the cards' watershed settings (:class:`bbbcore.instances.WatershedSettings`).
    """
    from bbbcore.pipeline import segment_image
    from bbbcore.unet import BoundaryModel

    rows = []
    # FOLDS lists bbb_02 (scored with the bbb_01 model) first.
    for model_path, (held_out, (_, truth_name)) in zip((train01, train02), FOLDS.items()):
        image = load_image(DATA / f"{held_out}.png")
        truth = read_truth_cells(DATA / truth_name)
        model = BoundaryModel.load(model_path)
        for n in flips:
            # The loaded model's own forward pass (ONNX Runtime when installed), with the flips changed.
            flipped = BoundaryModel(model.keras_model, dataclasses.replace(model.card, flips=n),
                                    forward=model._forward, runtime=model.runtime)
            scores = score_segmentation(truth, segment_image(image, flipped, settings=settings).labels, n_bootstrap=n_bootstrap)
            rows.append({"held_out": held_out, "model": Path(model_path).name, "flips": n, **scores})
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair", nargs=3, action="append", metavar=("NAME", "TRAIN01", "TRAIN02"),
                        help="a recipe's name, its model trained on bbb_01 and its model trained on bbb_02 "
                             "(repeatable; default: the committed fold models)")
    parser.add_argument("--flips", type=int, nargs="+", default=[1, 2, 4], choices=[1, 2, 4])
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a watershed setting for every model (repeatable)")
    args = parser.parse_args()
    settings = {key: float(value) for key, value in (item.split("=", 1) for item in args.set)}
    pairs = args.pair or [("shipped folds", *(config.MODELS_DIR / model for model, _ in FOLDS.values()))]
    means = []
    print("| recipe | held-out image | flips | F1@0.5 [95% CI] | F1@0.75 [95% CI] | mean IoU |")
    print("|---|---|---|---|---|---|")
    for name, train01, train02 in pairs:
        rows = score_pair(Path(train01), Path(train02), args.flips, args.bootstrap, settings)
        for r in rows:
            ci = {k: f" [{r[k][0]:.2f}, {r[k][1]:.2f}]" if k in r else "" for k in ("f1@0.5_ci95", "f1@0.75_ci95")}
            print(f"| {name} | {r['held_out']} | {r['flips']} | {r['f1@0.5']:.3f}{ci['f1@0.5_ci95']} | "
                  f"{r['f1@0.75']:.3f}{ci['f1@0.75_ci95']} | {r['mean_iou']:.3f} |", flush=True)
        means.append((name, *(sum(r[k] for r in rows) / len(rows) for k in ("f1@0.5", "f1@0.75", "mean_iou"))))
    print("\n| recipe | mean F1@0.5 | mean F1@0.75 | mean IoU | (both folds, flips " + ", ".join(map(str, args.flips)) + ") |")
    print("|---|---|---|---|---|")
    for name, f5, f75, iou in means:
        print(f"| {name} | {f5:.3f} | {f75:.3f} | {iou:.3f} | |")
