"""Does the store lose nothing? Killed writers, concurrent writers, export round trips.

Prints, for a temporary data folder:

* ``--kills`` rounds of a writer process killed with SIGKILL mid-write: the
  database's integrity check, images left half-written (cells missing), and
  images the writer reported saved that are gone;
* ``--writers`` processes saving images into one experiment for ``--seconds``:
  images reported saved vs found, and the rate;
* an export -> import -> export round trip of what was written: tables equal.

    python benchmarks/bench_store.py [--kills 20] [--writers 4] [--seconds 30]
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bbbcore.store import Store  # noqa: E402

WRITER = """
import sys, time
sys.path.insert(0, {root!r})
import numpy as np
from bbbcore.export import labels_tiff_bytes
from bbbcore.features import cells_table
from bbbcore.store import Store, sha256
store = Store({folder!r})
labels = np.zeros((60, 80), np.int32)
for i in range(6):
    labels[5 + 8 * (i // 3): 12 + 8 * (i // 3), 5 + 20 * (i % 3): 20 + 20 * (i % 3)] = i + 1
tiff = labels_tiff_bytes(labels)
deadline = time.time() + {seconds}
n = 0
while time.time() < deadline:
    original = np.random.default_rng(({seed} << 20) + n).bytes(2000)
    name = "w{seed}-" + str(n) + ".png"
    cells = cells_table(labels, image=name, image_id=sha256(original)[:16])
    store.save_image({experiment}, name=name, original=original, labels_tiff=tiff, cells=cells, params={{}},
                     shape=labels.shape)
    print(name, flush=True)
    n += 1
"""


def writer(folder: Path, experiment: int, seed: int, seconds: float) -> subprocess.Popen:
    script = WRITER.format(root=str(ROOT), folder=str(folder), experiment=experiment, seed=seed, seconds=seconds)
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)


def check(folder: Path, experiment: int, reported: set[str]) -> tuple[str, int, int, int]:
    """(integrity, images, half-written images, reported-but-missing images)."""
    store = Store(folder)
    with sqlite3.connect(store.path) as db:
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
    images = store.images(experiment)
    cells = store.cells(experiment)
    per_image = cells.groupby("image").size() if len(cells) else {}
    half = sum(1 for name in images["name"] if per_image.get(name, 0) != 6)
    missing = len(reported - set(images["name"]))
    return integrity, len(images), half, missing


def kills(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        experiment = Store(folder).create_experiment("killed")
        reported: set[str] = set()
        bad = 0
        for round_ in range(rounds):
            process = writer(folder, experiment, round_, seconds=30)
            time.sleep(0.8 + 0.1 * (round_ % 7))  # different moments of a write
            process.send_signal(signal.SIGKILL)
            out, _ = process.communicate(timeout=10)
            reported.update(line.strip() for line in out.splitlines() if line.strip())
            integrity, images, half, missing = check(folder, experiment, reported)
            bad += integrity != "ok" or half or missing
        print(f"SIGKILL mid-write, {rounds} rounds: integrity {integrity}, {images} images stored, "
              f"{half} half-written, {missing} reported saved but lost; rounds with a problem: {bad}")


def concurrent(n_writers: int, seconds: float) -> Path:
    folder = Path(tempfile.mkdtemp())
    experiment = Store(folder).create_experiment("shared")
    started = time.perf_counter()
    processes = [writer(folder, experiment, seed, seconds) for seed in range(n_writers)]
    reported: set[str] = set()
    for process in processes:
        out, _ = process.communicate(timeout=seconds + 120)
        reported.update(line.strip() for line in out.splitlines() if line.strip())
    elapsed = time.perf_counter() - started
    integrity, images, half, missing = check(folder, experiment, reported)
    print(f"{n_writers} writer processes for {seconds:g} s: {len(reported)} images reported saved, {images} found, "
          f"{half} half-written, {missing} lost, integrity {integrity} ({images / elapsed:.1f} images/s)")
    return folder


def round_trip(folder: Path) -> None:
    store = Store(folder)
    experiment = int(store.experiments()["id"].iloc[0])
    first = store.export_zip(experiment)
    with tempfile.TemporaryDirectory() as tmp:
        other = Store(tmp)
        second = other.export_zip(other.import_zip(first))

    def tables(data: bytes) -> dict:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            manifest = json.loads(archive.read("manifest.json"))
            out = {}
            for table, about in manifest["tables"].items():
                drop = {"id", *about["links"]}
                out[table] = [{k: v for k, v in json.loads(line).items() if k not in drop}
                              for line in archive.read(f"data/{table}.jsonl").decode().splitlines()]
            return out

    a, b = tables(first), tables(second)
    rows = sum(len(v) for v in a.values())
    print(f"export -> import -> export of {len(first) / 2**20:.1f} MB: {rows} rows in {len(a)} tables, "
          f"identical: {a == b}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    kills(args.kills)
    folder = concurrent(args.writers, args.seconds)
    round_trip(folder)
    shutil.rmtree(folder)


if __name__ == "__main__":
    main()
