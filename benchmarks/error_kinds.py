"""What goes wrong on the held-out images: each annotated cell the fold model misses at IoU 0.75, by kind.

For every truth cell whose best IoU with a predicted cell is below 0.75, its best-overlapping
predicted cell is looked at:

* split: that cell covers less than 90 % of the truth cell, and other predicted cells cover at least
  20 % of it (the network drew a border inside the cell);
* merged with an annotated neighbour: at least 20 % of that cell lies in other annotated cells;
* spills into unannotated area: at least 20 % of it lies where nothing is annotated (a missed border
  to an unannotated neighbour, or to a dark gap the annotator left out);
* border placement: none of these (the cell is found, its outline differs).

    python benchmarks/error_kinds.py                      # the committed fold models
    python benchmarks/error_kinds.py --models runs/a_train01.keras runs/a_train02.keras
"""
import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from score_models import DATA, FOLDS  # noqa: E402

from bbbcore import config  # noqa: E402
from bbbcore.annotations import read_truth_cells  # noqa: E402
from bbbcore.io import load_image  # noqa: E402
from bbbcore.metrics import iou_matrix  # noqa: E402
from bbbcore.pipeline import segment_image  # noqa: E402
from bbbcore.unet import BoundaryModel  # noqa: E402

KINDS = ("split", "merged with an annotated neighbour", "spills into unannotated area", "border placement")


def error_kinds(truth: np.ndarray, predicted: np.ndarray, *, iou_threshold: float = 0.75) -> tuple[Counter, np.ndarray]:
    """Count the kinds of miss among truth cells below ``iou_threshold``; also return every best IoU."""
    iou, truth_ids, pred_ids = iou_matrix(truth, predicted)
    best = iou.max(axis=1)
    kinds = Counter()
    for row in np.flatnonzero(best < iou_threshold):
        cell, pred = truth_ids[row], pred_ids[iou[row].argmax()]
        in_cell = predicted[truth == cell]
        cover = np.mean(in_cell == pred)
        others = np.mean((in_cell > 0) & (in_cell != pred))
        under_pred = truth[predicted == pred]
        if cover < 0.9 and others >= 0.2:
            kinds["split"] += 1
        elif np.mean((under_pred > 0) & (under_pred != cell)) >= 0.2:
            kinds["merged with an annotated neighbour"] += 1
        elif np.mean(under_pred == 0) >= 0.2:
            kinds["spills into unannotated area"] += 1
        else:
            kinds["border placement"] += 1
    return kinds, best


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs=2, metavar=("TRAIN01", "TRAIN02"),
                        default=[config.MODELS_DIR / model for model, _ in FOLDS.values()])
    args = parser.parse_args()
    # FOLDS lists bbb_02 (scored with the bbb_01 model) first, in the order of --models.
    for path, (held_out, (_, truth_name)) in zip(args.models, FOLDS.items()):
        truth = read_truth_cells(DATA / truth_name)
        predicted = segment_image(load_image(DATA / f"{held_out}.png"), BoundaryModel.load(path)).labels
        kinds, best = error_kinds(truth, predicted)
        bands = np.histogram(best, [0, 0.5, 0.75, 0.85, 1.0001])[0]
        print(f"{Path(path).name} on {held_out}: {len(best)} cells; best IoU < 0.5: {bands[0]}, 0.5-0.75: {bands[1]}, "
              f"0.75-0.85: {bands[2]}, >= 0.85: {bands[3]}")
        print("  below 0.75: " + ", ".join(f"{kind} {kinds[kind]}" for kind in KINDS), flush=True)
