"""Seconds per hand correction of a 1344 x 1024 image: the edit, measuring again, and storing.

Issue 20's target: <= 0.5 s per edit. Each figure is the median of ``--repeats`` edits on
``AnalysisSession.edit_cells`` (a store in a temporary folder), each followed by its undo
(timed apart), so every repeat edits the same cells.

    python benchmarks/bench_edit.py [--image ../shared/data/bbb/unlabelled/bbb_rgb_01.jpg] [--repeats 5]
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

from bbbcore.instances import shared_borders  # noqa: E402
from bbbcore.session import SAMPLE_DATA_DIR, AnalysisSession  # noqa: E402
from bbbcore.store import Store  # noqa: E402
from bbbcore.unet import load_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path, default=SAMPLE_DATA_DIR / "bbb_rgb_01.jpg")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    session = AnalysisSession(Store(tempfile.mkdtemp(prefix="bench-edit-")))
    name = args.image.name
    session.add_file(name, args.image.read_bytes())
    list(session.analyse(load_model()))
    labels = session.results.results[name].labels
    pairs, _, length = shared_borders(labels, None)
    a, b = (int(i) for i in pairs[np.argmax(length)])
    rows, cols = np.nonzero(labels == a)
    centre_x, centre_y = cols.mean() + 0.5, rows.mean() + 0.5
    edits = {
        "delete": {"cells": [a]},
        "merge": {"cells": [a, b]},
        "draw": {"points": np.array([[centre_x - 20, centre_y - 20], [centre_x + 20, centre_y - 20],
                                     [centre_x + 20, centre_y + 20], [centre_x - 20, centre_y + 20]])},
        "split": {"cells": [a], "points": np.array([[cols.min() - 1.0, centre_y], [cols.max() + 2.0, centre_y]])},
    }
    print(f"{name}: {labels.shape[1]} x {labels.shape[0]} px, {len(session.results.results[name].cells)} cells; "
          f"medians of {args.repeats} (target <= 0.5 s per edit)")
    undo = []
    for operation, arguments in edits.items():
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            session.edit_cells(name, operation, **arguments)
            times.append(time.perf_counter() - started)
            started = time.perf_counter()
            session.undo_edit(name)
            undo.append(time.perf_counter() - started)
        print(f"   {operation:7s} {statistics.median(times):.3f} s (slowest {max(times):.3f} s)")
    print(f"   undo    {statistics.median(undo):.3f} s (slowest {max(undo):.3f} s)")


if __name__ == "__main__":
    main()
