"""Speed of segmentation on this machine, as a user runs it: the command line with every output.

Prints, in one run (medians of ``--repeats`` runs taken in turn):

1. a one-image ``python -m bbbcore segment`` from a cold process (imports and model load included);
2. the marginal cost of one more image with every output (labels TIFF, CSV rows, ROI zip, GeoJSON,
   overlay PNG): a run on ``--batch`` copies of the image minus a run on one, over ``batch - 1``;
3. the per-stage split in one process (diameter estimate, inference, watershed, measuring, outputs);
4. seconds per megapixel and peak memory (the child process's maximum resident set) at four sizes, in a
   fresh process each after one warm-up image (start-up, model load and first-call costs apart): the
   image enlarged (its cells grow with it, as at a higher magnification: the network's grid stays the
   same size) and a mosaic of mirrored copies (the same cells, more of them, as in a stitched tile scan);
5. the classical baseline (ridge filter + watershed) on the same image, the ratio's reference.

It runs against whatever code is checked out (``--repo`` another checkout, for before / after).

    python benchmarks/bench_segment.py [--repeats 5] [--batch 6] [--sizes 1.4 5.5 22 48] [--size-repeats 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
IMAGE = HERE.parents[1] / "shared" / "data" / "bbb" / "unlabelled" / "bbb_rgb_01.jpg"


def cli_run(repo: Path, images: list[Path], out: Path) -> tuple[float, float]:
    """Wall seconds and peak memory (GB) of one ``segment`` run in a fresh process."""
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-c", "import resource, sys, runpy; sys.argv = ['bbbcore'] + sys.argv[1:]; "
               "code = 0\ntry:\n    runpy.run_module('bbbcore', run_name='__main__')\nexcept SystemExit as e:\n"
               "    code = e.code or 0\nprint('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
               "sys.exit(code)", "segment", *map(str, images), "--out", str(out)]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=repo, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(repo)})
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    peak_kb = int(done.stdout.split("PEAK_KB")[-1].split()[0])
    return seconds, peak_kb / 1024**2


def median(values) -> float:
    return float(statistics.median(values))


SIZE_SCRIPT = """
import resource, sys, tempfile, time
from pathlib import Path
from bbbcore.cli import _Output
from bbbcore.io import load_image
from bbbcore.pipeline import segment_image
from bbbcore.unet import load_model
model = load_model()
segment_image(load_image(sys.argv[2]), model)  # warm-up: first-call costs are not per-pixel costs
started = time.perf_counter()
image = load_image(sys.argv[1])
result = segment_image(image, model)
from bbbcore.export import write_csv
output = _Output(Path(tempfile.mkdtemp()))
output.add(image.name, result.labels, result.cells, junction=image.junction, pixel_size_um=result.pixel_size_um)
[job.result() for job in getattr(output, "_pending", [])]  # files written on a second thread, if any
write_csv(result.cells, output.out / "cells.csv")
print("SECONDS", time.perf_counter() - started, "PEAK_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def size_run(repo: Path, image: Path, warm_up: Path) -> tuple[float, float]:
    """Seconds (read, segment, every output; start-up, model load and a warm-up image left out) and peak GB,
    in a fresh process."""
    done = subprocess.run([sys.executable, "-c", SIZE_SCRIPT, str(image), str(warm_up)], cwd=repo,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(repo)})
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    words = done.stdout.split()
    return float(words[words.index("SECONDS") + 1]), int(words[words.index("PEAK_KB") + 1]) / 1024**2


def stage_split(repo: Path, image_path: Path, repeats: int) -> dict[str, float]:
    """Per-stage seconds in one process (the pipeline's own timings, plus making the outputs)."""
    sys.path.insert(0, str(repo))
    from bbbcore.export import image_outputs
    from bbbcore.io import load_image
    from bbbcore.pipeline import segment_image
    from bbbcore.unet import load_model

    model = load_model()
    segment_image(load_image(image_path), model)  # warm-up
    rows = []
    for _ in range(repeats):
        started = time.perf_counter()
        image = load_image(image_path)
        read = time.perf_counter() - started
        result = segment_image(image, model)
        started = time.perf_counter()
        image_outputs("x", result.labels, cells=result.cells, junction=image.junction, pixel_size_um=0.617)
        rows.append({"read": read, **result.timings, "outputs_s": time.perf_counter() - started})
    return {key: median(row[key] for row in rows) for key in rows[0]}


def enlarged(image_path: Path, megapixels: float, folder: Path) -> Path:
    """The image enlarged to about ``megapixels`` (cells grow with it), as a PNG."""
    from PIL import Image

    picture = Image.open(image_path)
    factor = (megapixels * 1e6 / (picture.width * picture.height)) ** 0.5
    Image.MAX_IMAGE_PIXELS = None
    path = folder / f"enlarged_{megapixels:g}mp.png"
    picture.resize((round(picture.width * factor), round(picture.height * factor)), Image.BILINEAR).save(path)
    return path


def mosaic(image_path: Path, megapixels: float, folder: Path) -> Path:
    """Mirrored copies of the image side by side to about ``megapixels`` (the same cells, more of them), a PNG."""
    from PIL import Image

    picture = np.asarray(Image.open(image_path))
    n = max(1, round((megapixels * 1e6 / (picture.shape[0] * picture.shape[1])) ** 0.5))
    row = np.concatenate([picture if i % 2 == 0 else picture[:, ::-1] for i in range(n)], axis=1)
    tiled = np.concatenate([row if i % 2 == 0 else row[::-1] for i in range(n)], axis=0)
    path = folder / f"mosaic_{megapixels:g}mp.png"
    Image.fromarray(tiled).save(path)
    return path


def by_size(repo: Path, args, work: Path) -> None:
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None
    print("\n4. by size (read, segment and every output; a fresh process each, after a warm-up image):")
    for kind, make in (("enlarged", enlarged), ("mosaic", mosaic)):
        rates = []
        for megapixels in args.sizes:
            path = make(args.image, megapixels, work)
            actual = Image.open(path).width * Image.open(path).height / 1e6
            runs = [size_run(repo, path, args.image) for _ in range(args.size_repeats)]
            seconds, peak = median(r[0] for r in runs), max(r[1] for r in runs)
            rates.append(seconds / actual)
            print(f"   {kind:8s} {actual:5.1f} MP: {seconds:7.1f} s  {seconds / actual:5.2f} s/MP  peak {peak:4.2f} GB"
                  f"  ({args.size_repeats} runs)", flush=True)
            path.unlink()
        print(f"   {kind}: s/MP from {min(rates):.2f} to {max(rates):.2f} ({max(rates) / min(rates):.2f} x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=6, help="images in the run that gives the marginal cost")
    parser.add_argument("--sizes", type=float, nargs="*", default=[1.4, 5.5, 22, 48], help="megapixels")
    parser.add_argument("--size-repeats", type=int, default=3, help="runs per size (the big ones are slow)")
    parser.add_argument("--repo", type=Path, default=HERE.parent, help="the checkout to measure")
    parser.add_argument("--image", type=Path, default=IMAGE)
    parser.add_argument("--only-sizes", action="store_true", help="section 4 alone")
    args = parser.parse_args()
    repo = args.repo.resolve()
    work = Path(tempfile.mkdtemp(prefix="bench-segment-"))
    copies = []
    for index in range(args.batch):
        copies.append(work / f"copy{index}{args.image.suffix}")
        shutil.copy(args.image, copies[-1])
    print(f"code: {repo}  image: {args.image.name}  (medians of {args.repeats} runs taken in turn)")
    if args.only_sizes:
        by_size(repo, args, work)
        return
    singles, batches = [], []
    for _ in range(args.repeats):  # in turn, so a noisy moment hits both alike
        singles.append(cli_run(repo, copies[:1], work / "out1")[0])
        batches.append(cli_run(repo, copies, work / "outN")[0])
    marginal = [(b - s) / (args.batch - 1) for s, b in zip(singles, batches, strict=True)]
    print(f"\n1. one-image CLI run from a cold process: {median(singles):6.2f} s")
    print(f"2. marginal per image, every output:     {median(marginal):6.2f} s  "
          f"(({args.batch} images - 1 image) / {args.batch - 1})")

    stages = stage_split(repo, args.image, args.repeats)
    print("\n3. per stage, one process:")
    for key, seconds in stages.items():
        print(f"   {key.removesuffix('_s'):14s} {seconds:6.2f} s")

    by_size(repo, args, work)

    sys.path.insert(0, str(HERE))
    from classical import classical_segment

    from bbbcore.io import load_image

    image = load_image(args.image)
    times = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        classical_segment(image.junction, image.raw)
        times.append(time.perf_counter() - started)
    print(f"\n5. classical baseline (in process): {median(times):6.2f} s per image; "
          f"the marginal image costs {median(marginal) / median(times):.2f} x that")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
