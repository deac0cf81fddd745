"""Does the anomaly detector find irregular cells, and how fast does it fit?

Prints, in one run:

* ROC AUC of ``anomaly_score`` against the known truth on synthetic
  populations made in code (regular convex polygon-like cells, 8 % irregular:
  elongated, concave and fragmented mixed, then each of elongated, concave,
  fragmented, very large and very small alone), for the autoencoder (the
  default 5 averaged, one network alone, and the study's original design)
  at seeds 0-4, and for two baselines on the same features: an
  IsolationForest and a plain robust z-score (largest |x - median| / MAD);
* seconds to fit the autoencoder on 10,000 cells (TensorFlow import excluded);
* on real cells (the five sample images segmented by the shipped model, demo
  grouping): the fraction flagged per condition when fitted on the control.

    python benchmarks/bench_anomaly.py [--cells 2000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bbbcore.anomaly import (  # noqa: E402
    IMPROVED_FEATURES,
    LOG_FEATURES,
    AnomalyModel,
    feature_matrix,
    fraction_flagged,
)
from tests.synthetic import IRREGULAR_KINDS, cell_population  # noqa: E402


def robust_z(values: np.ndarray) -> np.ndarray:
    median = np.median(values, axis=0)
    mad = 1.4826 * np.median(np.abs(values - median), axis=0)
    return np.max(np.abs(values - median) / np.where(mad > 0, mad, 1), axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    import tensorflow  # noqa: F401  (imported before any timing)
    from sklearn.ensemble import IsolationForest
    from sklearn.metrics import roc_auc_score

    print("ROC AUC of anomaly_score against the known truth; regular cells with 8 % irregular ones of the "
          f"kind named, {args.cells} cells each; seeds 0-{args.seeds - 1} of the fit (the population is fixed)\n")
    print("| population | design | " + " | ".join(f"seed {s}" for s in range(args.seeds)) + " | lowest |")
    print("|---|---|" + "---|" * (args.seeds + 1))
    populations = {"mixed (elongated, concave, fragmented)": ("elongated", "concave", "fragmented"),
                   **{kind: (kind,) for kind in IRREGULAR_KINDS}}
    for name, kinds in populations.items():
        cells, truth, _ = cell_population(args.cells, anomalous_fraction=0.08, seed=1, kinds=kinds)
        rows = {"autoencoder, improved (5 averaged, default)": {},
                "autoencoder, improved, one network": {"members": 1},
                "autoencoder, original (the study's)": {"design": "original"}}
        for label, options in rows.items():
            aucs = [roc_auc_score(truth, AnomalyModel.fit(cells, seed=seed, **options).score(cells)["anomaly_score"])
                    for seed in range(args.seeds)]
            print(f"| {name} | {label} | " + " | ".join(f"{a:.3f}" for a in aucs) + f" | {min(aucs):.3f} |",
                  flush=True)
        values = feature_matrix(cells, IMPROVED_FEATURES, LOG_FEATURES)
        standard = (values - values.mean(axis=0)) / values.std(axis=0)
        forests = [roc_auc_score(truth, -IsolationForest(random_state=seed).fit(standard).score_samples(standard))
                   for seed in range(args.seeds)]
        print(f"| {name} | IsolationForest (same features) | " + " | ".join(f"{a:.3f}" for a in forests)
              + f" | {min(forests):.3f} |")
        z = roc_auc_score(truth, robust_z(values))
        print(f"| {name} | robust z-score (same features; no seed) | " + " | ".join(f"{z:.3f}" for _ in forests)
              + f" | {z:.3f} |", flush=True)

    rng = np.random.default_rng(0)
    cells, _, _ = cell_population(args.cells, anomalous_fraction=0.08, seed=1)  # the mixed population
    many = cells.sample(10_000, replace=True, random_state=0).reset_index(drop=True)
    numeric = list(IMPROVED_FEATURES)
    many[numeric] = many[numeric] * rng.normal(1, 0.02, (len(many), len(numeric)))
    started = time.perf_counter()
    model = AnomalyModel.fit(many, seed=0)
    print(f"fit on 10,000 cells: {time.perf_counter() - started:.2f} s "
          f"({model.card.training['epochs']} epochs; target <= 10 s)")

    real_cells = real_population()
    if real_cells is not None:
        model = AnomalyModel.fit(real_cells, fit_on="control", seed=0)
        flagged = fraction_flagged(model.score(real_cells))
        print("real cells (sample images, demo grouping), fitted on control, contamination 0.12:")
        for _, row in flagged.iterrows():
            print(f"  {row['condition']}: {row['n_anomalous']} of {row['n_cells']} cells flagged ({row['fraction']:.1%})")


def real_population() -> pd.DataFrame | None:
    from bbbcore import config
    from bbbcore.io import load_image
    from bbbcore.metadata import read_sample_sheet, sample_of
    from bbbcore.pipeline import segment_image
    from bbbcore.unet import BoundaryModel

    folder = ROOT / "sample_data"
    if not config.DEFAULT_MODEL.exists():
        return None
    model = BoundaryModel.load(config.DEFAULT_MODEL)
    sheet = read_sample_sheet(folder / "samples.csv")
    # Each image at its own pixel size (the sheet's, from its scale bar): bbb_rgb_02 is a 4x image.
    tables = [
        segment_image(load_image(path), model, pixel_size_um=sample_of(sheet, path.name).get("pixel_size_um"),
                      sample=sample_of(sheet, path.name)).cells
        for path in sorted(folder.glob("*.jpg"))
    ]
    return pd.concat(tables, ignore_index=True)


if __name__ == "__main__":
    main()
