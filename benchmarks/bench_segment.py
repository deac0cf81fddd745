"""Speed of segmentation on this machine.

Prints, in one run: seconds per 1344 x 1024 image for model inference,
post-processing (watershed), measuring, and end to end (load + all of it);
the classical baseline's time; and the model's inference time at 0.35, 1.4
and 5.5 megapixels (cost should grow linearly with pixels). Medians of
``--repeats`` runs after one warm-up; ``import tensorflow`` and model loading
are timed apart and not part of the per-image cost.

    python benchmarks/bench_segment.py [--repeats 5] [--model models/bbb_unet.keras]
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bbbcore import config  # noqa: E402
from bbbcore.io import load_image  # noqa: E402

IMAGE = ROOT.parent / "shared" / "data" / "bbb" / "unlabelled" / "bbb_rgb_01.jpg"


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", type=Path, default=config.DEFAULT_MODEL)
    parser.add_argument("--image", type=Path, default=IMAGE)
    args = parser.parse_args()

    started = time.perf_counter()
    import tensorflow  # noqa: F401

    print(f"import tensorflow: {time.perf_counter() - started:.2f} s (once per process, not per image)")
    from bbbcore.pipeline import segment_image
    from bbbcore.unet import BoundaryModel

    started = time.perf_counter()
    model = BoundaryModel.load(args.model)
    print(f"load model: {time.perf_counter() - started:.2f} s (once per process)")
    image = load_image(args.image)
    segment_image(image, model)  # warm-up: traces the network once

    # The stages as the pipeline runs them (its own per-stage timings).
    stages = [segment_image(image, model).timings for _ in range(args.repeats)]
    scale = statistics.median(t["scale_s"] for t in stages)
    inference = statistics.median(t["inference_s"] for t in stages)
    post = statistics.median(t["postprocess_s"] for t in stages)
    measure = statistics.median(t["measure_s"] for t in stages)
    end_to_end = median_time(lambda: segment_image(load_image(args.image), model), args.repeats)

    from classical import classical_segment

    classical = median_time(lambda: classical_segment(image.junction, image.raw), max(1, args.repeats // 2))

    h, w = image.shape
    print(f"\nper {w} x {h} image ({h * w / 1e6:.2f} MP), median of {args.repeats}:")
    print(f"  diameter estimate {scale:6.2f} s  (the network on a centre crop at a ladder of zooms)")
    print(f"  model inference   {inference:6.2f} s")
    print(f"  post-processing   {post:6.2f} s  (watershed on the network's grid, labels and maps back to full size)")
    print(f"  measuring         {measure:6.2f} s")
    print(f"  end to end        {end_to_end:6.2f} s  (load + inference + watershed + measuring)")
    print(f"  classical baseline{classical:6.2f} s  (ridge filter + watershed)")

    print("\nmodel inference by image size (at zoom 1):")
    base = image.junction
    for megapixels in (0.35, 1.4, 5.5):
        factor = np.sqrt(megapixels * 1e6 / base.size)
        reps = int(np.ceil(factor))
        big = np.tile(base, (reps, reps))[: round(h * factor), : round(w * factor)]
        seconds = median_time(lambda big=big: model.predict_maps(big), max(1, args.repeats // 2))
        print(f"  {big.shape[1]:5d} x {big.shape[0]:5d} ({big.size / 1e6:4.2f} MP): {seconds:6.2f} s"
              f"  = {seconds / (big.size / 1e6):.2f} s/MP")


if __name__ == "__main__":
    main()
