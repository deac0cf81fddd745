"""Speed of measuring: every feature of 1344 x 1024 images, no model involved.

Prints the median seconds (of ``--repeats`` runs) to build the cells table of
(a) a synthetic Voronoi monolayer of 1344 x 1024 px with 150 cells, with and
without the junction and nuclear channels, and (b) each labels image given
with ``--labels`` / ``--image`` pairs (for example the output of
``python -m bbbcore segment``). Exports (ROI zip, GeoJSON) are timed apart:
they are written once per image, not part of measuring.

    python benchmarks/bench_measure.py [--repeats 21] [--labels out/x.labels.tif --image x.jpg]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bbbcore.export import image_outputs, read_labels_tiff  # noqa: E402
from bbbcore.features import cells_table  # noqa: E402
from bbbcore.io import load_image  # noqa: E402
from tests.synthetic import voronoi_monolayer  # noqa: E402


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    FASTEST.append(min(times))
    return statistics.median(times)


FASTEST: list[float] = []  # the machine's fast phase (../shared/PERFORMANCE.md: it alternates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--labels", nargs="*", type=Path, default=[])
    parser.add_argument("--image", nargs="*", type=Path, default=[])
    args = parser.parse_args()

    field = voronoi_monolayer(shape=(1024, 1344), n_cells=150, seed=0)
    labels, junction, nuclei = field["truth"], field["junction"] * 4000, field["nuclei"]
    print(f"synthetic 1344x1024, {labels.max()} cells (median of {args.repeats}):")
    shape_only = median_time(lambda: cells_table(labels, pixel_size_um=0.62), args.repeats)
    with_junction = median_time(lambda: cells_table(labels, junction=junction, pixel_size_um=0.62), args.repeats)
    everything = median_time(
        lambda: cells_table(labels, junction=junction, nuclei=nuclei, pixel_size_um=0.62), args.repeats
    )
    everything_fastest = FASTEST[-1]
    exports = median_time(lambda: image_outputs("x", labels, pixel_size_um=0.62), args.repeats)
    print(f"  shape features only            {shape_only:.3f} s")
    print(f"  + junction features            {with_junction:.3f} s")
    print(f"  + nuclei count (all features)  {everything:.3f} s   (target <= 0.3 s; fastest run {everything_fastest:.3f} s)")
    print(f"  exports (labels TIFF, ROI zip, GeoJSON; once per image)  {exports:.3f} s")
    for labels_path, image_path in zip(args.labels, args.image):
        image = load_image(image_path)
        labels = read_labels_tiff(labels_path)
        seconds = median_time(
            lambda labels=labels, image=image: cells_table(labels, junction=image.junction_raw,
                                                           nuclei=image.nuclei_raw, pixel_size_um=0.62),
            args.repeats,
        )
        print(f"{image.name}: {labels.max()} cells, all features {seconds:.3f} s")


if __name__ == "__main__":
    main()
