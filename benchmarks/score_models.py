"""Reproduce the model card's quality figures without training.

Scores, on the two annotated BBB images of ../shared/data/bbb/train:

* the two leave-one-image-out fold models in models/folds/ (trained on one
  image, scored on the other; bbb_01 is scored against annotator A),
* the classical baseline (benchmarks/classical.py),
* annotator B against annotator A on bbb_01 (the human ceiling),
* the shipped model on both images (its training data: not a held-out figure).

Metrics: recall of annotated cells at IoU >= 0.5 (one-to-one), precision among
predicted cells lying >= 50 % inside annotated cells, F1 (with a 95 % bootstrap
interval), the same at IoU >= 0.75, and the mean IoU of annotated cells.

    python benchmarks/score_models.py              # print the table
    python benchmarks/score_models.py --write-card # also store it in the cards
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bbbcore import config  # noqa: E402
from bbbcore.annotations import OUTLINE_RULES, read_truth_cells  # noqa: E402
from bbbcore.io import load_image  # noqa: E402
from bbbcore.metrics import score_segmentation  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "bbb" / "train"
FOLDS = {
    # held-out image: (fold model trained on the other image, truth annotation)
    "bbb_02": ("folds/bbb_unet_train01.keras", "bbb_02.outline.png"),
    "bbb_01": ("folds/bbb_unet_train02.keras", "bbb_01.outline.annotator_a.png"),
}
KEYS = ["f1@0.5", "f1@0.5_ci95", "recall@0.5", "precision@0.5", "f1@0.75", "f1@0.75_ci95", "mean_iou",
        "n_truth", "n_predicted_evaluable"]


def score_all(n_bootstrap: int = 1000) -> dict:
    """Every row of the comparison table, keyed by method then image."""
    from classical import classical_segment

    from bbbcore.pipeline import segment_image
    from bbbcore.unet import BoundaryModel

    rows: dict[str, dict] = {"unet_leave_one_image_out": {}, "classical_baseline": {}, "human_b_vs_a": {},
                             "unet_shipped_on_training_images": {}}
    shipped = BoundaryModel.load(config.DEFAULT_MODEL)
    for stem, (fold_model, truth_name) in FOLDS.items():
        image = load_image(DATA / f"{stem}.png")
        truth = read_truth_cells(DATA / truth_name)
        fold = BoundaryModel.load(config.MODELS_DIR / fold_model)
        predicted = segment_image(image, fold).labels
        rows["unet_leave_one_image_out"][stem] = score_segmentation(truth, predicted, n_bootstrap=n_bootstrap)
        rows["classical_baseline"][stem] = score_segmentation(
            truth, classical_segment(image.junction, image.raw), n_bootstrap=n_bootstrap
        )
        rows["unet_shipped_on_training_images"][stem] = score_segmentation(
            truth, segment_image(image, shipped).labels, n_bootstrap=n_bootstrap
        )
    truth_a = read_truth_cells(DATA / "bbb_01.outline.annotator_a.png")
    truth_b = read_truth_cells(DATA / "bbb_01.outline.annotator_b.png")
    rows["human_b_vs_a"]["bbb_01"] = score_segmentation(truth_a, truth_b, n_bootstrap=n_bootstrap)
    return rows


def markdown(rows: dict) -> str:
    """The table as Markdown."""
    lines = ["| method | image | F1@0.5 [95% CI] | recall@0.5 | precision@0.5 | F1@0.75 [95% CI] | mean IoU | truth cells |",
             "|---|---|---|---|---|---|---|---|"]
    for method, per_image in rows.items():
        for stem, s in per_image.items():
            ci5, ci75 = s.get("f1@0.5_ci95", ["", ""]), s.get("f1@0.75_ci95", ["", ""])
            lines.append(
                f"| {method} | {stem} | {s['f1@0.5']:.3f} [{ci5[0]:.2f}, {ci5[1]:.2f}] | {s['recall@0.5']:.3f} | "
                f"{s['precision@0.5']:.3f} | {s['f1@0.75']:.3f} [{ci75[0]:.2f}, {ci75[1]:.2f}] | "
                f"{s['mean_iou']:.3f} | {s['n_truth']} |"
            )
    return "\n".join(lines)


def write_cards(rows: dict) -> None:
    """Store the figures in the shipped model's card (and each fold's own)."""
    from bbbcore.unet import read_card, write_card

    slim = {m: {k: {key: v[key] for key in KEYS if key in v} for k, v in per.items()} for m, per in rows.items()}
    card = read_card(config.DEFAULT_MODEL)
    card.metrics = {
        "leave_one_image_out": slim["unet_leave_one_image_out"],
        "classical_baseline": slim["classical_baseline"],
        "human_annotator_b_vs_a": slim["human_b_vs_a"],
        "on_training_images": slim["unet_shipped_on_training_images"],
        "definitions": (
            "recall: annotated cells matched one-to-one at IoU >= t; precision: matched share of predicted cells "
            "lying >= 50% inside annotated cells; F1 with 95% bootstrap CI over cells; mean_iou: each annotated "
            "cell's best IoU. Truth cells from outline annotations by bbbcore.annotations.outline_to_cells "
            f"with {OUTLINE_RULES}. bbb_01 is scored against annotator A."
        ),
        "reproduce": "python benchmarks/score_models.py",
    }
    write_card(config.DEFAULT_MODEL, card)
    for stem, (fold_model, _) in FOLDS.items():
        fold_card = read_card(config.MODELS_DIR / fold_model)
        fold_card.metrics = {f"held_out_{stem}": slim["unet_leave_one_image_out"][stem]}
        write_card(config.MODELS_DIR / fold_model, fold_card)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-card", action="store_true", help="store the figures in the model cards")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--json", type=Path, default=None, help="also write all figures to this file")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    table = score_all(args.bootstrap)
    print(markdown(table))
    if args.json:
        args.json.write_text(json.dumps(table, indent=2))
    if args.write_card:
        write_cards(table)
        print(f"wrote the figures into {config.DEFAULT_MODEL.name}'s card and the fold cards")
