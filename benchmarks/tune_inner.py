"""Inner tuning of the watershed: pick settings on each fold's TRAINING image, score its held-out image.

Grid: distance_threshold x merge_threshold x smoothing_sigma (27 settings), chosen by F1@0.5 + F1@0.75
on the image the fold model was trained on; then the held-out image is scored with the chosen and the
default settings.

    python benchmarks/tune_inner.py
"""
import itertools
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bbbcore.annotations import read_truth_cells  # noqa: E402
from bbbcore.io import load_image  # noqa: E402
from bbbcore.metrics import score_segmentation  # noqa: E402
from bbbcore.pipeline import segment_image  # noqa: E402
from bbbcore.unet import BoundaryModel  # noqa: E402
D = str(ROOT.parent / "shared" / "data" / "bbb" / "train") + "/"
folds = {"train01": (str(ROOT / "models/folds/bbb_unet_train01.keras"), "bbb_01", "bbb_01.outline.annotator_a.png", "bbb_02", "bbb_02.outline.png"),
         "train02": (str(ROOT / "models/folds/bbb_unet_train02.keras"), "bbb_02", "bbb_02.outline.png", "bbb_01", "bbb_01.outline.annotator_a.png")}
grid = list(itertools.product([0.4, 0.5, 0.6], [0.2, 0.3, 0.45], [1.0, 1.5, 2.5]))  # distance_threshold, merge_threshold, smoothing
for fold, (path, tr, trt, te, tet) in folds.items():
    m = BoundaryModel.load(path)
    imtr, imte = load_image(D + tr + ".png"), load_image(D + te + ".png")
    ttr, tte = read_truth_cells(D + trt), read_truth_cells(D + tet)
    best = None
    for dt, mt, sg in grid:
        s = {"distance_threshold": dt, "merge_threshold": mt, "smoothing_sigma": sg}
        sc = score_segmentation(ttr, segment_image(imtr, m, settings=s).labels, n_bootstrap=0)
        key = sc["f1@0.5"] + sc["f1@0.75"]
        if best is None or key > best[0]:
            best = (key, s, sc["f1@0.5"], sc["f1@0.75"])
    held = score_segmentation(tte, segment_image(imte, m, settings=best[1]).labels, n_bootstrap=0)
    base = score_segmentation(tte, segment_image(imte, m).labels, n_bootstrap=0)
    print(fold, "chosen on training image", best[1], "train f1", round(best[2],3), round(best[3],3),
          "| held-out", te, "tuned", held["f1@0.5"], held["f1@0.75"], held["mean_iou"], "| default", base["f1@0.5"], base["f1@0.75"], base["mean_iou"], flush=True)
