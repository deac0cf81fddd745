"""Does teaching the model from corrected cells help? Two experiments (issue 21), printed as a table.

(a) Domain shift on generated junction images (``bbbcore.junction_generator``): a texture the shipped
    model never saw (spiked, perpendicular junctions) on small cells. The shipped model, then the same
    fine-tuned (:func:`bbbcore.finetune.finetune`) on two "corrected" images (their exact labels; seeds
    800000 and up), both scored on held-out generated images of that domain (seeds 900000 and up, never
    learned from), the diameter estimated as a user's run would: F1 at IoU 0.5, mean over the images.
(b) Real: the fold model that never saw bbb_01 (models/folds/bbb_unet_train02.keras), fine-tuned on half
    of bbb_01's annotated cells (annotator A; inner cells split at random), scored on the other half,
    against the same model not fine-tuned; and the same with the halves swapped.

    python benchmarks/teach_evidence.py [--steps 300] [--diameter 20] [--texture spiked] [--held-out 4]

Writes nothing but temporary models (deleted). Training runs on the CPU: about 5 minutes in all.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from generated_scores import generated_image  # noqa: E402

from bbbcore import config  # noqa: E402
from bbbcore.annotations import read_truth_cells  # noqa: E402
from bbbcore.finetune import Example, check_score, finetune  # noqa: E402
from bbbcore.instances import touches_edge  # noqa: E402
from bbbcore.io import load_image  # noqa: E402
from bbbcore.metrics import score_segmentation  # noqa: E402
from bbbcore.pipeline import segment_image  # noqa: E402
from bbbcore.unet import BoundaryModel  # noqa: E402

TRAIN = ROOT.parent / "shared" / "data" / "bbb" / "train"
FOLD = config.MODELS_DIR / "folds" / "bbb_unet_train02.keras"


def generated_f1(model, images) -> tuple[float, float]:
    """Mean and lowest F1 at IoU 0.5 over generated images, each segmented with its diameter estimated."""
    scores = [score_segmentation(picture.cells, segment_image(image, model).labels, n_bootstrap=0)["f1@0.5"]
              for image, picture in images]
    return statistics.mean(scores), min(scores)


def domain_shift(args, work: Path) -> None:
    learn = [generated_image(args.diameter, args.texture, 800_000 + k) for k in range(2)]
    held = [generated_image(args.diameter, args.texture, 900_000 + 7 * k + 3) for k in range(args.held_out)]
    shipped = BoundaryModel.load(config.DEFAULT_MODEL)
    before, before_low = generated_f1(shipped, held)
    started = time.perf_counter()
    examples = [Example(image, picture.cells.astype(np.int32)) for image, picture in learn]
    report = finetune(config.DEFAULT_MODEL, examples, out=work / "generated.keras", steps=args.steps,
                      check_share=0.2, log=lambda line: None)
    seconds = time.perf_counter() - started
    taught = BoundaryModel.load(work / "generated.keras") if report.accepted else None
    after, after_low = generated_f1(taught, held) if taught is not None else (float("nan"), float("nan"))
    print(f"| (a) generated, {args.texture} junctions, {args.diameter:g} px cells, {len(held)} held-out images | "
          f"{shipped.card.name} {shipped.card.version} | {before:.3f} (lowest {before_low:.3f}) | "
          f"{after:.3f} (lowest {after_low:.3f}) | {report.n_train_cells} cells of 2 images, {args.steps} steps, "
          f"{seconds:.0f} s; check set {report.parent_score['f1@0.5']:.3f} -> {report.score['f1@0.5']:.3f}, "
          f"{'kept' if report.accepted else 'refused'} |", flush=True)


def real_halves(args, work: Path) -> None:
    image = load_image(TRAIN / "bbb_01.png")
    truth = read_truth_cells(TRAIN / "bbb_01.outline.annotator_a.png")
    edge = touches_edge(truth)
    inner = np.array([c for c in np.unique(truth) if c and not edge[c]])
    rng = np.random.default_rng(0)
    rng.shuffle(inner)
    halves = [inner[: len(inner) // 2], inner[len(inner) // 2:]]
    fold = BoundaryModel.load(FOLD)
    for which, (learned, scored) in enumerate([(halves[0], halves[1]), (halves[1], halves[0])]):
        learn = Example(image, np.where(np.isin(truth, learned), truth, 0).astype(np.int32))
        check = Example(image, np.where(np.isin(truth, scored), truth, 0).astype(np.int32))
        before = check_score(fold, [check])
        started = time.perf_counter()
        report = finetune(FOLD, [learn], out=work / f"half{which}.keras", steps=args.steps, check=[check],
                          log=lambda line: None)
        print(f"| (b) real, bbb_01: learned from half {which + 1} ({len(learned)} cells), scored on the other "
              f"({len(scored)} cells) | {fold.card.name} {fold.card.version} (never saw bbb_01) | "
              f"{before['f1@0.5']:.3f} | {report.score['f1@0.5']:.3f} | {args.steps} steps, "
              f"{time.perf_counter() - started:.0f} s; {'kept' if report.accepted else 'refused'} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--diameter", type=float, default=20.0)
    parser.add_argument("--texture", default="spiked")
    parser.add_argument("--held-out", type=int, default=4)
    parser.add_argument("--only", choices=["generated", "real"], default=None)
    args = parser.parse_args()
    print("| experiment | model | F1@0.5 before | F1@0.5 after teaching | taught on |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="teach-") as work:
        if args.only in (None, "real"):
            real_halves(args, Path(work))
        if args.only in (None, "generated"):
            domain_shift(args, Path(work))


if __name__ == "__main__":
    main()
