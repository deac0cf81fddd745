"""Models scored on generated junction images with exact labels, at known cell diameters.

Images from ``bbbcore.junction_generator`` with seeds 900000 and up (training draws its seeds from
``numpy.random.default_rng(seed + 1).integers(2**31)``: a collision is a one-in-ten-million chance),
for the textures the shipped models were trained on (continuous, punctate, frayed) and for the one
held out of training entirely (spiked: perpendicular junctions). Each is segmented with no setting
touched (the diameter estimated) and scored against its labels: F1 at IoU 0.5 (and 0.75), the mean over
the images of each diameter and texture group, with the lowest image. Beside it, what the images show:
the share of borders an ideal observer could not see (``junction_generator.border_detectability`` under
3) and the F1 at IoU 0.5 of the truth with the cells across those borders joined (``visible_cells``):
what the visible borders alone allow (not a bound: nuclei showing through or a step in haze can part
cells too). Each figure twice: over all cells, and over the inner cells only (``bbbcore.metrics.inner_truth``:
the cells touching the image edge left unjudged, as the tool leaves them out of every summary and statistic;
slivers of a few pixels along the frame are most of what the all-cells figure counts against large cells).

    python benchmarks/generated_scores.py [--model models/bbb_unet.keras ...] [--diameters 20 45 100 150 250]
        [--per-texture 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bbbcore.io import LoadedImage  # noqa: E402
from bbbcore.junction_generator import (  # noqa: E402
    TEXTURES,
    GeneratedImage,
    border_detectability,
    generate,
    visible_cells,
)
from bbbcore.metrics import inner_truth, score_segmentation  # noqa: E402
from bbbcore.pipeline import segment_image  # noqa: E402
from bbbcore.training import TRAINING_TEXTURES  # noqa: E402

DIAMETERS = (20, 45, 100, 150, 250)
FIRST_SEED = 900_000
VISIBLE_SNR = 3.0  # border_detectability under this: a border hardly seen from its own signal (visible_cells' default)


def generated_image(diameter: float, texture: str, seed: int, *, nuclei: bool = False,
                    ) -> tuple[LoadedImage, GeneratedImage]:
    """An 8-bit generated image large enough for a few dozen cells, and the generator's picture (labels in
    ``.cells``); ``nuclei``: with its DAPI-like channel (junctions green, nuclei blue, as a two-channel file
    is read)."""
    side = int(np.clip(7 * diameter, 448, 1600))
    picture = generate((int(side * 0.8), side), diameter_px=diameter, texture=texture, seed=seed,
                       keep_signal=True)
    raw = np.round(picture.junction * 255).astype(np.uint8)
    name = f"generated_{texture}_{diameter:g}px_{seed}.png"
    if not nuclei:
        image = LoadedImage(name=name, image_id=str(seed), raw=raw, junction=raw.astype(np.float32) / 255,
                            nuclei=None, pixel_size_um=None)
        return image, picture
    dapi = np.round(picture.nuclei * 255).astype(np.uint8)
    rgb = np.stack([np.zeros_like(raw), raw, dapi], axis=-1)
    image = LoadedImage(name=name, image_id=str(seed), raw=rgb, junction=raw.astype(np.float32) / 255,
                        nuclei=dapi.astype(np.float32) / 255, pixel_size_um=None, channel_names=["R", "G", "B"],
                        junction_channel=1, nuclear_channel=2)
    return image, picture


def score_model(model, diameters, textures, per_texture: int, *, nuclei: bool = False) -> list[dict]:
    """One row per (diameter, texture, image): F1 at IoU 0.5 and 0.75, the diameter estimated, seconds."""
    rows = []
    for diameter in diameters:
        for t_index, texture in enumerate(textures):
            for k in range(per_texture):
                seed = FIRST_SEED + 1000 * int(diameter) + 10 * t_index + k
                image, picture = generated_image(diameter, texture, seed, nuclei=nuclei)
                started = time.perf_counter()
                result = segment_image(image, model, use_nuclei=nuclei)
                seconds = time.perf_counter() - started
                hidden = border_detectability(picture)["snr"] < VISIBLE_SNR
                visible = visible_cells(picture, min_snr=VISIBLE_SNR)
                row = {"diameter": diameter, "texture": texture, "seed": seed, "estimated": result.diameter_estimated_px,
                       "hidden": float(hidden.mean()) if hidden.size else 0.0, "seconds": seconds}
                for prefix, truth in (("", picture.cells), ("inner ", inner_truth(picture.cells))):
                    scores = score_segmentation(truth, result.labels, n_bootstrap=0)
                    row[f"{prefix}f1@0.5"], row[f"{prefix}f1@0.75"] = scores["f1@0.5"], scores["f1@0.75"]
                    row[f"{prefix}ceiling"] = score_segmentation(truth, visible, n_bootstrap=0)["f1@0.5"]
                rows.append(row)
    return rows


def print_table(name: str, rows: list[dict], diameters, *, verbose: bool = False) -> None:
    groups = {"trained textures": set(TRAINING_TEXTURES), "held out (spiked)": {"spiked"}}

    def mean_min(chosen: list[dict], key: str) -> str:
        values = [r[key] for r in chosen]
        return f"{np.mean(values):.3f} ({min(values):.2f})"

    print(f"\n{name}")
    print("F1 at IoU 0.5, mean (min) over the images; 'inner': the cells touching the image edge left unjudged")
    print(f"{'diameter':>9s} | {'group':18s} | {'images':>6s} | {'F1@0.5':>12s} | {'F1@0.75':>7s} | "
          f"{'inner F1@0.5':>12s} | {'inner F1@0.75':>13s} | {'estimated px':>12s} | {'hidden borders':>14s} | "
          f"{'visible-border F1@0.5':>21s} | {'inner visible-border':>20s}")
    for diameter in diameters:
        for group, members in groups.items():
            chosen = [r for r in rows if r["diameter"] == diameter and r["texture"] in members]
            if not chosen:
                continue
            estimates = [r["estimated"] for r in chosen if r["estimated"]]
            print(f"{diameter:7g}px | {group:18s} | {len(chosen):6d} | {mean_min(chosen, 'f1@0.5'):>12s} | "
                  f"{np.mean([r['f1@0.75'] for r in chosen]):7.3f} | {mean_min(chosen, 'inner f1@0.5'):>12s} | "
                  f"{np.mean([r['inner f1@0.75'] for r in chosen]):13.3f} | "
                  f"{statistics.median(estimates) if estimates else float('nan'):12.0f} | "
                  f"{np.mean([r['hidden'] for r in chosen]):14.3f} | {mean_min(chosen, 'ceiling'):>21s} | "
                  f"{mean_min(chosen, 'inner ceiling'):>20s}")
    print(f"all: F1@0.5 mean {np.mean([r['f1@0.5'] for r in rows]):.3f} (visible borders "
          f"{np.mean([r['ceiling'] for r in rows]):.3f}), inner cells {np.mean([r['inner f1@0.5'] for r in rows]):.3f} "
          f"(visible borders {np.mean([r['inner ceiling'] for r in rows]):.3f}); "
          f"{sum(r['seconds'] for r in rows):.0f} s for {len(rows)} images")
    if verbose:
        print("\nimage by image: diameter, texture, seed, F1@0.5, visible-border F1@0.5, inner F1@0.5, "
              "inner visible-border F1@0.5, hidden borders")
        for r in rows:
            print(f"{r['diameter']:g} {r['texture']} {r['seed']} {r['f1@0.5']:.3f} {r['ceiling']:.3f} "
                  f"{r['inner f1@0.5']:.3f} {r['inner ceiling']:.3f} {r['hidden']:.3f}")


def main() -> None:
    from bbbcore.unet import BoundaryModel

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, action="append", default=None,
                        help="model(s) to score (default: models/bbb_unet.keras)")
    parser.add_argument("--diameters", type=float, nargs="+", default=list(DIAMETERS))
    parser.add_argument("--per-texture", type=int, default=2, help="images per texture and diameter")
    parser.add_argument("--nuclei", action="store_true",
                        help="give each image its DAPI channel and seed the cells from the nuclei (--nuclei-seeds)")
    parser.add_argument("--each", action="store_true", help="also list the images one by one")
    args = parser.parse_args()
    for path in args.model or [ROOT / "models" / "bbb_unet.keras"]:
        model = BoundaryModel.load(path)
        rows = score_model(model, args.diameters, TEXTURES, args.per_texture, nuclei=args.nuclei)
        print_table(f"{path} (version {model.card.version}){' with nuclei seeds' if args.nuclei else ''}", rows,
                    args.diameters, verbose=args.each)


if __name__ == "__main__":
    main()
