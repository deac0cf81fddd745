"""Inference time of U-Net variants on one 1344 x 1024 image (speed side of the trade-off).

Speed does not depend on the weights, so untrained networks of each width,
depth and working resolution are timed the way the shipped model runs
(a traced ``tf.function``, whole frame, median of ``--repeats`` after a
warm-up). The quality side is in benchmarks/README.md.

    python benchmarks/bench_architectures.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bbbcore.resize import resize  # noqa: E402
from bbbcore.unet import BoundaryModel, ModelCard, build_unet  # noqa: E402

VARIANTS = [  # (base width, depth, input scale)
    (8, 4, 0.5),
    (16, 4, 0.5),
    (8, 4, 1.0),
    (16, 4, 1.0),
    (4, 4, 0.5),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    image = np.random.default_rng(0).random((1024, 1344), dtype=np.float32)
    print("| base width | depth | working scale | parameters | seconds per 1344 x 1024 image |")
    print("|---|---|---|---|---|")
    for base, depth, scale in VARIANTS:
        card = ModelCard(name="bench", version="0", base_width=base, depth=depth, input_scale=scale)
        model = BoundaryModel(build_unet(depth=depth, base_width=base), card)
        small = resize(image, scale)
        model.predict_tiles(small)  # warm-up: trace
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            model.predict_tiles(small)
            times.append(time.perf_counter() - started)
        print(f"| {base} | {depth} | {scale:g} | {model.keras_model.count_params():,} | {statistics.median(times):.2f} |")


if __name__ == "__main__":
    main()
