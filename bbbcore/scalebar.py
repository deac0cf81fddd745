"""A burned-in scale bar: found and measured, so a pixel size can be offered for an image that has none.

Microscope software and Fiji burn a bar of known length into exported images:
a dark line in a white box with its label under it (``100 µm``), or a white
line straight on the dark image. The bar is the longest thin straight run of
near-black or near-white pixels in the image; its length in pixels, with the
length in µm read from its label, gives the pixel size. The label is read by
Debian's tesseract when it is installed (:func:`read_bar_label`), else by the
person; either way the pixel size is offered for the person to confirm, never
applied silently.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

#: Shortest bar measured (px): shorter runs are letters, specks or junction pieces.
MIN_LENGTH_PX = 20
#: A bar is at least this many times longer than thick (the white box around a label is not).
MIN_ASPECT = 8
#: A bar lies in the top or bottom part of the image, this share of its height (where software puts it).
EDGE_SHARE = 0.2
#: A label as software writes it: a number and a length unit (tesseract reads µ as u).
_LABEL = re.compile(r"(\d+(?:[.,]\d+)?)\s*(µm|μm|um|pm|nm|mm)\b", re.IGNORECASE)
_TO_UM = {"µm": 1.0, "μm": 1.0, "um": 1.0, "pm": 1.0, "nm": 1e-3, "mm": 1e3}
#: Near-black and near-white, as fractions of the pixel type's range: burned-in graphics are drawn
#: at full contrast, stained structures rarely are over such a length.
DARK, BRIGHT = 0.25, 0.92


@dataclass(frozen=True)
class ScaleBar:
    """A scale bar found in an image.

    Attributes
    ----------
    length_px : int, the bar's length from end to end (ticks included), in pixels
    row : int, the row of its longest run
    start_col, end_col : int, its first and last column
    dark : bool, True for a dark bar (in a white box), False for a white one
    """

    length_px: int
    row: int
    start_col: int
    end_col: int
    dark: bool

    def pixel_size_um(self, length_um: float) -> float:
        """The pixel size (µm/px) the bar gives when it is ``length_um`` long."""
        return float(length_um) / self.length_px


def find_scale_bar(raw: np.ndarray) -> ScaleBar | None:
    """The image's burned-in scale bar, or None when there is none to be sure of.

    Parameters
    ----------
    raw : (H, W) or (H, W, C) array, the image as read (before normalising)
    """
    raw = np.asarray(raw)
    top = float(np.iinfo(raw.dtype).max) if raw.dtype.kind in "ui" else float(np.nanmax(raw)) or 1.0
    planes = raw[..., :3] if raw.ndim == 3 else raw[..., None]
    low = planes.min(axis=-1).astype(np.float32) / top
    high = planes.max(axis=-1).astype(np.float32) / top
    found = []
    bright = low >= BRIGHT  # white in every channel
    # A dark bar counts only inside a white box (else any dark gap between cells would do).
    box = ndi.binary_closing(bright, structure=np.ones((3, 3)), iterations=3)
    box = ndi.binary_fill_holes(box)
    dark = (high <= DARK) & box & ~bright
    band = int(np.ceil(EDGE_SHARE * raw.shape[0]))
    middle = slice(band, raw.shape[0] - band)
    for mask, is_dark in ((dark, True), (bright, False)):
        mask[middle] = False
        bar = _longest_bar(mask)
        if bar is not None:
            found.append(ScaleBar(*bar, dark=is_dark))
    return max(found, key=lambda b: b.length_px) if found else None


def _longest_bar(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(length, row, first column, last column) of the longest thin horizontal run in ``mask``, or None."""
    if mask.sum() < MIN_LENGTH_PX:
        return None
    labels, n = ndi.label(mask, structure=np.ones((3, 3)))
    best = None
    for index, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None or box[1].stop - box[1].start < MIN_LENGTH_PX:
            continue
        part = labels[box] == index
        runs = _row_runs(part)
        length, row, start = max(runs)
        along = [r[0] for r in runs if r[0] >= 0.9 * length]  # the rows that run the bar's whole length
        thick = int(np.count_nonzero(part.sum(axis=1) >= 0.5 * length))  # end ticks add only a few px a row
        # Thin, and made of those rows: a white box has long rows too, but is thick and mostly other pixels.
        if length < MIN_LENGTH_PX or thick * MIN_ASPECT > length or sum(along) < 0.5 * part.sum():
            continue
        if best is None or length > best[0]:
            best = (int(length), box[0].start + row, box[1].start + start, box[1].start + start + length - 1)
    return best


def _row_runs(part: np.ndarray) -> list[tuple[int, int, int]]:
    """(longest run, row, its first column) for each row of a boolean array."""
    edges = np.diff(np.pad(part.astype(np.int8), ((0, 0), (1, 1))), axis=1)
    runs = []
    for row, line in enumerate(edges):
        starts, ends = np.flatnonzero(line == 1), np.flatnonzero(line == -1)
        if len(starts):
            k = int(np.argmax(ends - starts))
            runs.append((int(ends[k] - starts[k]), row, int(starts[k])))
    return runs


def bar_region(raw: np.ndarray, bar: ScaleBar, *, margin_px: int = 40) -> np.ndarray:
    """The part of the image around the bar, label included, to show the person who reads the label."""
    height, width = np.asarray(raw).shape[:2]
    reach = max(margin_px, bar.length_px // 3)
    rows = slice(max(0, bar.row - reach), min(height, bar.row + reach))
    cols = slice(max(0, bar.start_col - margin_px // 2), min(width, bar.end_col + margin_px // 2 + 1))
    return np.asarray(raw)[rows, cols]


def read_bar_label(raw: np.ndarray, bar: ScaleBar, *, timeout_s: float = 10.0) -> float | None:
    """The bar's length in µm read from its label by tesseract (``100 µm``), or None.

    None when tesseract is not installed, fails, or reads no number with a length unit. The region
    around the bar is enlarged 4x in gray before reading (labels are 10-15 px high).
    """
    from PIL import Image

    engine = shutil.which("tesseract")
    if engine is None:
        return None
    region = np.asarray(bar_region(raw, bar), np.float32)
    if region.ndim == 3:
        region = region[..., :3].mean(axis=-1)
    region = 255 * (region - region.min()) / max(float(np.ptp(region)), 1e-9)
    picture = Image.fromarray(region.astype(np.uint8))
    picture = picture.resize((picture.width * 4, picture.height * 4), Image.LANCZOS)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "label.png"
        picture.save(path)
        try:
            # One OpenMP thread: on a label this small the thread pool's start and spin cost more than the
            # reading (0.43 -> 0.14 s per label on 2 cores).
            text = subprocess.run([engine, str(path), "-", "--psm", "6"], capture_output=True, text=True,
                                  timeout=timeout_s, check=False,
                                  env={**os.environ, "OMP_THREAD_LIMIT": "1"}).stdout
        except (OSError, subprocess.TimeoutExpired):
            return None
    found = _LABEL.search(text)
    if found is None:
        return None
    value = float(found.group(1).replace(",", "."))
    return value * _TO_UM[found.group(2).lower().replace("μ", "µ")] if value > 0 else None
