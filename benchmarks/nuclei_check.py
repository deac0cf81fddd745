"""A check without annotations: how many nuclei does each segmented cell hold?

Endothelial cells of a monolayer hold one nucleus each (a few divide), so in
images with a DAPI channel the share of cells (not at the image edge) with
exactly one nucleus is a rough quality figure: two cells merged into one show
two nuclei, a cell cut in two leaves a piece with none. It is a proxy, not a
score: touching nuclei count as one and a dim nucleus as none. Since model 1.3
the watershed itself joins nucleus-free cells to a neighbour across an unsure
border, so the "0 nuclei" share is no longer independent of the segmentation;
the "2+" share (merges) still is.

    python benchmarks/nuclei_check.py                          # the shipped model
    python benchmarks/nuclei_check.py models/bbb_unet.keras runs/other.keras --images my/*.tif
    python benchmarks/nuclei_check.py --grid        # watershed settings: mean share of one-nucleus cells
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bbbcore import config  # noqa: E402
from bbbcore.io import load_image  # noqa: E402

UNLABELLED = ROOT.parent / "shared" / "data" / "bbb" / "unlabelled"


def nuclei_per_cell(model_path: Path, image_paths: list[Path], settings: dict | None = None) -> list[dict]:
    """Per image with a nuclear channel: inner cells and their shares with 0, 1 and 2+ nuclei.

    ``settings`` are watershed settings passed to the pipeline (default: the card's).
    """
    from bbbcore.pipeline import segment_image
    from bbbcore.unet import BoundaryModel

    model = BoundaryModel.load(model_path)
    rows = []
    for path in image_paths:
        image = load_image(path)
        if image.nuclei is None:
            continue
        cells = segment_image(image, model, settings=settings).cells
        count = cells.loc[~cells["touches_edge"], "nuclei_count"]
        rows.append({"model": f"{model.card.name} {model.card.version}", "image": path.name, "cells": len(count),
                     "none": (count == 0).mean(), "one": (count == 1).mean(), "several": (count >= 2).mean()})
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path, default=[config.DEFAULT_MODEL])
    parser.add_argument("--images", nargs="+", type=Path, default=sorted(UNLABELLED.glob("*.jpg")))
    parser.add_argument("--grid", action="store_true",
                        help="sweep distance threshold x merge threshold; print each setting's mean one-nucleus share")
    args = parser.parse_args()
    if args.grid:
        for model_path in args.models:
            for distance, merge in itertools.product([0.4, 0.5, 0.6], [0.2, 0.3, 0.4, 0.5]):
                rows = nuclei_per_cell(model_path, args.images, {"distance_threshold": distance, "merge_threshold": merge})
                print(f"{model_path.name}: distance {distance}, merge {merge}: one nucleus "
                      f"{sum(r['one'] for r in rows) / len(rows):.3f} (mean over {len(rows)} images), 0 nuclei "
                      f"{sum(r['none'] for r in rows) / len(rows):.3f}, 2+ {sum(r['several'] for r in rows) / len(rows):.3f}",
                      flush=True)
        sys.exit(0)
    print("| model | image | inner cells | 0 nuclei | 1 nucleus | 2+ nuclei |")
    print("|---|---|---|---|---|---|")
    for model_path in args.models:
        for r in nuclei_per_cell(model_path, args.images):
            print(f"| {r['model']} | {r['image']} | {r['cells']} | {r['none']:.0%} | {r['one']:.0%} | {r['several']:.0%} |",
                  flush=True)
