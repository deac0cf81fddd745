"""Scale of ``python -m bbbcore batch`` (issue 22): speed-up, resume after a kill, a worker killed, overhead.

Prints, in one run:

1. N images (copies of the sample and training images made distinct by one pixel, PNG) with 1 worker
   (2 threads) and with 2 workers (1 thread each): images per second, the speed-up, each worker's peak
   memory;
2. the same batch killed (its process group, by id) when half the images are done, then started again:
   images done by the second run, and how many of those had been done before the kill (target 0);
3. a worker process killed with SIGKILL (by its id) during a run: every image done, no duplicate row;
4. M tiny images: the batch machinery's overhead per image (planning with content hashes, one Dask task
   each, results gathered; the segmentation replaced by writing a stub) and the client's memory.

    python benchmarks/bench_batch.py [--images 200] [--tiny 10000]

Nothing runs on another machine: no cluster here (dask-jobqueue is exercised only by its options).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bbbcore.batch import CACHE_FOLDER, BatchSettings, list_inputs, plan, run_batch, start_client  # noqa: E402
from bbbcore.io import load_image  # noqa: E402

SOURCES = [*sorted((ROOT.parent / "shared" / "data" / "bbb" / "unlabelled").glob("*.jpg")),
           *sorted((ROOT.parent / "shared" / "data" / "bbb" / "train").glob("bbb_0?.png"))]


def make_images(folder: Path, count: int) -> list[Path]:
    """``count`` distinct PNGs: the sources in turn, each copy with one pixel changed."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    planes = [np.round(load_image(p).junction * 255).astype(np.uint8) for p in SOURCES]
    paths = []
    for index in range(count):
        plane = planes[index % len(planes)].copy()
        plane[0, index % plane.shape[1]] ^= 1 + index // plane.shape[1]
        paths.append(folder / f"field_{index:05d}.png")
        Image.fromarray(plane).save(paths[-1], compress_level=1)
    return paths


def worker_peaks(client) -> list[float]:
    """Each worker's peak memory so far, GB (resident set high-water mark of its process)."""
    def peak() -> float:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return sorted(client.run(peak).values())


def speed(folder: Path, out: Path, workers: int, threads: int) -> tuple[float, list[float]]:
    client = start_client(workers=workers, threads_per_worker=threads)
    try:
        started = time.perf_counter()
        report = run_batch([folder], out, BatchSettings(), client=client, progress=False, say=lambda line: None)
        seconds = time.perf_counter() - started
        assert not report.failed, report.failed
        return len(report.done) / seconds, worker_peaks(client)
    finally:
        client.close()
        client.cluster.close()


def killed_and_restarted(folder: Path, out: Path, total: int) -> tuple[int, int, int]:
    """(done before the kill, done by the second run, of those done before too)."""
    command = [sys.executable, "-m", "bbbcore", "batch", str(folder), "--out", str(out), "--workers", "2",
               "--threads-per-worker", "1", "--no-progress"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    cache = out / CACHE_FOLDER
    while process.poll() is None:
        done = [p for p in cache.glob("*") if p.is_dir() and not p.name.startswith(".part")] if cache.exists() else []
        if len(done) >= total // 2:
            os.killpg(process.pid, signal.SIGKILL)
            break
        time.sleep(0.2)
    process.wait()
    before = {p.name for p in cache.glob("*") if p.is_dir() and not p.name.startswith(".part")}
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    line = again.stdout.strip().splitlines()[-1]  # "done: X analysed, Y already done, Z failed; ..."
    analysed, skipped = int(line.split()[1]), int(line.split(", ")[1].split()[0])
    assert analysed + skipped == total, line
    return len(before), analysed, analysed - (total - len(before))  # done again though done before the kill


def worker_killed(folder: Path, out: Path) -> tuple[int, int, bool]:
    """(images done, images asked, duplicate rows?) of a run during which one worker was SIGKILLed."""
    import pandas as pd

    client = start_client(workers=2, threads_per_worker=1)
    pids = list(client.run(os.getpid).values())
    cache = out / CACHE_FOLDER

    def kill_one() -> None:
        while not cache.exists() or len([p for p in cache.glob("*") if p.is_dir()]) < 3:
            time.sleep(0.1)
        os.kill(pids[0], signal.SIGKILL)

    killer = threading.Thread(target=kill_one, daemon=True)
    killer.start()
    try:
        report = run_batch([folder], out, BatchSettings(), client=client, progress=False, say=lambda line: None)
    finally:
        client.close()
        client.cluster.close()
    cells = pd.read_csv(out / "cells.csv")
    total = len(list(folder.glob("*.png")))
    return len(report.done) + len(report.skipped), total, bool(cells.duplicated(["image", "cell_id"]).any())


def _stub(task, settings, cache):
    """Stands in for run_image: the task's result folder written, nothing segmented."""
    final = Path(cache) / task.key
    final.mkdir(parents=True, exist_ok=True)
    return {"name": task.name, "key": task.key}


def overhead(count: int, work: Path) -> tuple[float, float]:
    """Seconds per image of planning, scheduling and gathering ``count`` tiny images; client memory, GB."""
    import psutil
    from distributed import as_completed
    from PIL import Image

    from bbbcore.metadata import sample_sheet_for

    folder = work / "tiny"
    folder.mkdir()
    for index in range(count):  # every file its own content (two bytes of its index)
        tiny = np.zeros((8, 8), np.uint8)
        tiny[0, 0], tiny[0, 1] = index % 256, index // 256
        Image.fromarray(tiny).save(folder / f"t{index:05d}.png")
    client = start_client(workers=2, threads_per_worker=1)
    try:
        started = time.perf_counter()
        listing = list_inputs([folder])
        tasks = plan(listing, BatchSettings(), sample_sheet_for(listing.image_names), options_for=lambda sample: {})
        futures = client.map(_stub, tasks, settings=BatchSettings(), cache=str(work / "cache"),
                             key=[f"bbb-{i}-{t.key}" for i, t in enumerate(tasks)], pure=False)
        for future in as_completed(futures):
            future.result()
            future.release()
        seconds = time.perf_counter() - started
    finally:
        client.close()
        client.cluster.close()
    return seconds / count, psutil.Process().memory_info().rss / 2**30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--tiny", type=int, default=10_000)
    parser.add_argument("--only-overhead", action="store_true", help="part 4 alone")
    parser.add_argument("--only-speed", action="store_true", help="part 1 alone")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as work:
        work = Path(work)
        if args.only_overhead:
            per_image, memory = overhead(args.tiny, work)
            print(f"4. {args.tiny} tiny images: {per_image * 1000:.1f} ms of batch machinery per image (target "
                  f"<= 10); client memory {memory:.2f} GB")
            return
        folder = work / "images"
        make_images(folder, args.images)
        one, one_peaks = speed(folder, work / "one", workers=1, threads=2)
        two, two_peaks = speed(folder, work / "two", workers=2, threads=1)
        print(f"1. {args.images} images: 1 worker x 2 threads {one:.2f} images/s (peak {one_peaks[-1]:.2f} GB); "
              f"2 workers x 1 thread {two:.2f} images/s (peaks {', '.join(f'{p:.2f}' for p in two_peaks)} GB); "
              f"speed-up {two / one:.2f}x", flush=True)
        if args.only_speed:
            return
        before, analysed, recomputed = killed_and_restarted(folder, work / "killed", args.images)
        print(f"2. killed at {before} of {args.images} images done; the second run analysed {analysed}; "
              f"recomputed {recomputed} (target 0)", flush=True)
        done, total, duplicates = worker_killed(folder, work / "worker")
        print(f"3. a worker SIGKILLed during the run: {done} of {total} images done, duplicate rows: "
              f"{'yes' if duplicates else 'none'}", flush=True)
        per_image, memory = overhead(args.tiny, work)
        print(f"4. {args.tiny} tiny images: {per_image * 1000:.1f} ms of batch machinery per image (target <= 10); "
              f"client memory {memory:.2f} GB", flush=True)


if __name__ == "__main__":
    main()
