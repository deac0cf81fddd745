"""Are the labels the same as before a refactor? Segments fixed images and compares.

Runs the shipped model on the five sample images and both training images
(with and without nucleus seeds on the DAPI images), the fold models on their
held-out images, and the classical baseline on the training images, then
either saves the labels (``--save DIR``) or compares them with saved ones
(``--compare DIR``) and prints, per case, whether they are identical
(``np.array_equal``) and how many pixels differ.

    python benchmarks/labels_identity.py --save /tmp/labels_before
    # ... change the code ...
    python benchmarks/labels_identity.py --compare /tmp/labels_before
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bbbcore.io import load_image  # noqa: E402
from bbbcore.pipeline import segment_image  # noqa: E402
from bbbcore.unet import BoundaryModel  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "bbb"


def cases():
    """(case name, image path, model path, keyword arguments of segment_image)."""
    shipped = ROOT / "models" / "bbb_unet.keras"
    for path in sorted((ROOT / "sample_data").glob("*.jpg")):
        yield path.stem, path, shipped, {}
        yield f"{path.stem}-nuclei-seeds", path, shipped, {"use_nuclei": True}
    for stem in ("bbb_01", "bbb_02"):
        yield stem, DATA / "train" / f"{stem}.png", shipped, {}
        other = "02" if stem == "bbb_01" else "01"
        fold = ROOT / "models" / "folds" / f"bbb_unet_train{other}.keras"  # holds ``stem`` out
        if fold.exists():
            yield f"{stem}-fold", DATA / "train" / f"{stem}.png", fold, {}


def run() -> dict[str, np.ndarray]:
    from classical import classical_segment

    models: dict[Path, BoundaryModel] = {}
    out = {}
    for name, path, model_path, options in cases():
        if model_path not in models:
            models[model_path] = BoundaryModel.load(model_path)
        out[name] = segment_image(load_image(path), models[model_path], **options).labels
    for stem in ("bbb_01", "bbb_02"):
        image = load_image(DATA / "train" / f"{stem}.png")
        out[f"{stem}-classical"] = classical_segment(image.junction, image.raw)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--save", type=Path, help="folder to save the labels into")
    group.add_argument("--compare", type=Path, help="folder of labels saved before")
    args = parser.parse_args()
    labels = run()
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
        for name, array in labels.items():
            np.save(args.save / f"{name}.npy", array)
        print(f"saved {len(labels)} labels images to {args.save}")
        return
    same = 0
    for name, array in labels.items():
        before = np.load(args.compare / f"{name}.npy")
        equal = before.shape == array.shape and np.array_equal(before, array)
        differing = int((before != array).sum()) if before.shape == array.shape else array.size
        same += equal
        print(f"{name:28s} identical={equal}  differing pixels={differing}  cells {before.max()} -> {array.max()}")
    print(f"{same} of {len(labels)} labels images identical")
    if same != len(labels):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
