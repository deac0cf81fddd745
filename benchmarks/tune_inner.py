"""Inner tuning of the watershed: pick settings on each fold's TRAINING image, score its held-out image.

Grid: distance_threshold x merge_threshold x smoothing_sigma (27 settings), chosen by F1@0.5 + F1@0.75
on the image the fold model was trained on (the first best in grid order wins a tie); then the
held-out image is scored with the chosen and the default settings.

    python benchmarks/tune_inner.py                                   # the committed fold models
    python benchmarks/tune_inner.py --models runs/a_train01.keras runs/a_train02.keras
"""
import argparse
import itertools
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from score_models import DATA, FOLDS  # noqa: E402

from bbbcore import config  # noqa: E402
from bbbcore.annotations import read_truth_cells  # noqa: E402
from bbbcore.io import load_image  # noqa: E402
from bbbcore.metrics import score_segmentation  # noqa: E402
from bbbcore.pipeline import segment_image  # noqa: E402
from bbbcore.unet import BoundaryModel  # noqa: E402

TRUTH = {image: truth for image, (_, truth) in FOLDS.items()}
#: distance_threshold, merge_threshold, smoothing_sigma
GRID = list(itertools.product([0.4, 0.5, 0.6], [0.2, 0.3, 0.45], [1.0, 1.5, 2.5]))


def tune(model: BoundaryModel, images: list[str]) -> tuple[dict, float]:
    """The grid setting with the highest mean F1@0.5 + F1@0.75 over ``images`` (and that figure)."""
    cases = [(load_image(DATA / f"{name}.png"), read_truth_cells(DATA / TRUTH[name])) for name in images]
    best = None
    for distance, merge, sigma in GRID:
        settings = {"distance_threshold": distance, "merge_threshold": merge, "smoothing_sigma": sigma}
        total = 0.0
        for image, truth in cases:
            scores = score_segmentation(truth, segment_image(image, model, settings=settings).labels, n_bootstrap=0)
            total += (scores["f1@0.5"] + scores["f1@0.75"]) / len(cases)
        if best is None or total > best[1]:
            best = (settings, total)
    return best


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs=2, metavar=("TRAIN01", "TRAIN02"),
                        default=[config.MODELS_DIR / model for model, _ in FOLDS.values()])
    args = parser.parse_args()
    for path, trained_on, held_out in ((args.models[0], "bbb_01", "bbb_02"), (args.models[1], "bbb_02", "bbb_01")):
        model = BoundaryModel.load(path)
        settings, figure = tune(model, [trained_on])
        image, truth = load_image(DATA / f"{held_out}.png"), read_truth_cells(DATA / TRUTH[held_out])
        tuned = score_segmentation(truth, segment_image(image, model, settings=settings).labels, n_bootstrap=0)
        default = score_segmentation(truth, segment_image(image, model).labels, n_bootstrap=0)
        print(f"{Path(path).name}: chosen on {trained_on} {settings} (training-image mean F1 {figure / 2:.3f}) | "
              f"held-out {held_out} tuned {tuned['f1@0.5']:.3f} / {tuned['f1@0.75']:.3f} / {tuned['mean_iou']:.3f}, "
              f"default {default['f1@0.5']:.3f} / {default['f1@0.75']:.3f} / {default['mean_iou']:.3f}", flush=True)
