"""Interface junction classes checked on generated images with known truth, and the JAnaP rule beside them.

Part 1, validation (``bbbcore.interfaces.cell_interfaces`` against drawn truth): a relaxed Voronoi
monolayer (exact labels: every pixel belongs to its nearest seed; 6 % of the cells left out as
cell-free gaps, which give the rule's 5th-percentile background its meaning) whose every interface is
drawn with one class, straight along its Voronoi edge:

* continuous: a line of the border width along the whole edge;
* gaps: that line with one or two gaps of known length (8-20 px; gaps shorter than twice the reach,
  6 px here, are bridged by design), so a known continuity;
* punctate: dots of known length (3-5 px, at least the border width) at a known period (11-17 px);
* perpendicular: spikes of known length (9-15 px) across the edge, as thick as the border, every
  12-18 px, kept 4 px plus half a spike from the edge's ends (so they do not reach another edge);
* absent: nothing drawn.

The image then gets a per-cell cytoplasm haze (0.12-0.3 of the line, mottled +-15 %), a PSF blur
(sigma 1 px), photon (Poisson) and read (Gaussian) noise. Conditions: border width 1.5 and 4 px x
noise low (300 photons at the line's brightness, read noise 0.5 %) and high (30 photons, 2 %). Pixel
size 0.4 µm (continuous length 7.5 px, reach 3 px), cells about 100 px (40 µm) across. Interfaces
reaching the image frame, and those whose measured part is shorter than the longest pattern period
(18 px: at most one dot or spike, no class), are not scored.

Truth per interface, on the part the method measures (farther than twice the reach from every other
border): its continuity = the share covered by the junction as imaged (the blurred, noise-free
junction reaching half a continuous line's peak; a 1.5 px spike is 2.7 px wide after the PSF), and
also as drawn (before blur); its class = the class drawn (gaps count as continuous: their pieces are
long), "absent" where the truth continuity is under 0.1. Predicted class: absent under 0.1, else the
largest of the continuous, punctate and perpendicular fractions. Width truth: the full width at half
maximum of the drawn line's profile after the blur.

Part 2, the JAnaP rule as the issue states it (:func:`janap_cell_fractions`): a global threshold of the
junction plane (Otsu's, standing in for JAnaP's hand-set one; on the shared images also the global
level of the interfaces' rule), each cell's perimeter walked pixel by pixel, stretches of thresholded
pixels, continuous when >= 15 px long (30 px for images >= 2048 px wide), else perpendicular when the
stretch's relative path aspect ratio (thresholded run across the perimeter, along its normal / stretch
length) exceeds 1.2, else punctate. Run on the generated images (per-cell continuity against the
per-cell truth) and on the five unlabelled and two training images of ../shared/data/bbb with cells
from the shipped model, printing the mean per-cell fractions of both.

    python benchmarks/junction_validation.py [--images 2] [--threshold-ends] [--no-real] [--no-timing]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage as ndi
from scipy.spatial import Voronoi, cKDTree
from skimage import filters, measure

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bbbcore import config  # noqa: E402
from bbbcore.instances import touches_edge  # noqa: E402
from bbbcore.interfaces import cell_interfaces, cell_junction_classes, junction_scale  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "bbb"
PIXEL_SIZE_UM = 0.4
DIAMETER_PX = 100.0
SHAPE = (800, 800)
PSF_SIGMA_PX = 1.0
NOISE = {"low": (300.0, 0.005), "high": (30.0, 0.02)}  # photons per unit of line brightness, read noise
BORDER_WIDTHS = (1.5, 4.0)
CLASSES = ("continuous", "gaps", "punctate", "perpendicular", "absent")
GAP_SHARE = 0.06  # share of the cells left out (cell-free gaps)
ABSENT_BELOW = 0.1
#: Interfaces whose measured part is shorter than the longest pattern period (18 px) are not scored:
#: they hold one dot or spike at most, and their class is not defined.
MIN_MEASURED_PX = 18.0  # continuity under which an interface's class is "absent" (truth and measured)


# ------------------------------------------------------------------------------------------------
# Generated images with per-interface truth
# ------------------------------------------------------------------------------------------------


def tessellation(shape: tuple[int, int], diameter: float, rng: np.random.Generator, lloyd: int = 3):
    """Relaxed Voronoi seeds (x, y), the labels image (seed i -> label i + 1) and the finite edges.

    Returns
    -------
    labels : (H, W) int32
    edges : dict (a, b) -> (2, 2) array of the edge's end points (x, y), a < b labels
    """
    height, width = shape
    n = max(4, int(round(height * width / (math.pi / 4 * diameter**2))))
    seeds = rng.uniform([0, 0], [width, height], size=(n, 2))
    yy, xx = np.mgrid[0:height, 0:width]
    pixels = np.column_stack([xx.ravel(), yy.ravel()]).astype(float)
    for _ in range(lloyd):
        nearest = cKDTree(seeds).query(pixels)[1]
        counts = np.bincount(nearest, minlength=n)
        keep = counts > 0
        seeds[keep] = np.column_stack([np.bincount(nearest, pixels[:, 0], n)[keep] / counts[keep],
                                       np.bincount(nearest, pixels[:, 1], n)[keep] / counts[keep]])
    nearest = cKDTree(seeds).query(pixels)[1]
    labels = (nearest.reshape(height, width) + 1).astype(np.int32)
    # Mirrored seeds close every cell inside the frame, so all edges of interest are finite.
    mirrored = [seeds, seeds * [-1, 1], seeds * [1, -1], seeds * [-1, 1] + [2 * width, 0],
                seeds * [1, -1] + [0, 2 * height]]
    diagram = Voronoi(np.concatenate(mirrored))
    edges = {}
    for (i, j), vertices in zip(diagram.ridge_points, diagram.ridge_vertices):
        if i < n and j < n and -1 not in vertices:
            a, b = sorted((i + 1, j + 1))
            edges[(a, b)] = diagram.vertices[vertices]
    return labels, edges


def _primitives(kind: str, length: float, width: float, rng: np.random.Generator, zone: float):
    """Boxes (t0, t1, u0, u1) in the edge's frame (t along from its first end, u across) and a truth note."""
    if kind == "continuous":
        return [(-width / 2, length + width / 2, -width / 2, width / 2)], {}
    if kind == "gaps":
        n_gaps = 2 if length > 70 else 1
        gap = float(rng.uniform(8, 20))
        room = length - 2 * (zone + 4)
        if room < n_gaps * (gap + 8):
            return [(-width / 2, length + width / 2, -width / 2, width / 2)], {"gap_px": 0.0}
        # Gaps placed at random in the measured part, at least 8 px apart.
        slots = np.sort(rng.uniform(0, room - n_gaps * (gap + 8), n_gaps))
        starts = zone + 4 + slots + np.arange(n_gaps) * (gap + 8)
        edges = [-width / 2] + [v for s in starts for v in (s, s + gap)] + [length + width / 2]
        boxes = [(edges[k], edges[k + 1], -width / 2, width / 2) for k in range(0, len(edges), 2)]
        return boxes, {"gap_px": gap}
    if kind == "punctate":
        dot = float(rng.uniform(max(3.0, width), max(5.0, width + 1)))
        period = float(rng.uniform(dot + 8, dot + 12))
        phase = float(rng.uniform(0, period))
        centres = np.arange(phase, length, period)
        return [(c - dot / 2, c + dot / 2, -width / 2, width / 2) for c in centres], {"dot_px": dot,
                                                                                       "period_px": period}
    if kind == "perpendicular":
        spike = float(rng.uniform(9, 15))
        period = float(rng.uniform(12, 18))
        # Not so near an end that a spike reaches another border's measured part.
        first, last = spike / 2 + 4, length - spike / 2 - 4
        centres = np.arange(first + float(rng.uniform(0, period)), last, period) if last > first else np.zeros(0)
        shift = rng.uniform(-1.5, 1.5, len(centres))  # spikes not exactly centred on the border
        return [(c - width / 2, c + width / 2, s - spike / 2, s + spike / 2) for c, s in zip(centres, shift)], {
            "spike_px": spike, "period_px": period}
    return [], {}


def _crack_points(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every point between two 4-neighbour pixels of different labels (row, col) and its pair (smaller first)."""
    rows, cols = np.nonzero(labels[:, :-1] != labels[:, 1:])
    down_rows, down_cols = np.nonzero(labels[:-1, :] != labels[1:, :])
    points = np.concatenate([np.column_stack([rows, cols + 0.5]), np.column_stack([down_rows + 0.5, down_cols])])
    first = np.concatenate([labels[rows, cols], labels[down_rows, down_cols]])
    second = np.concatenate([labels[rows, cols + 1], labels[down_rows + 1, down_cols]])
    return points, np.column_stack([np.minimum(first, second), np.maximum(first, second)])


def _render(shape, edges, drawn) -> np.ndarray:
    """The clean junction image: anti-aliased boxes, 1 inside."""
    clean = np.zeros(shape, np.float32)
    height, width = shape
    for key, (start, end) in edges.items():
        boxes = drawn[key]["boxes"]
        if not boxes:
            continue
        along = end - start
        length = float(np.hypot(*along))
        t_hat = along / length
        u_hat = np.array([-t_hat[1], t_hat[0]])
        reach = max(max(abs(b[2]), abs(b[3])) for b in boxes) + 2
        x0, x1 = int(max(min(start[0], end[0]) - reach - 2, 0)), int(min(max(start[0], end[0]) + reach + 3, width))
        y0, y1 = int(max(min(start[1], end[1]) - reach - 2, 0)), int(min(max(start[1], end[1]) + reach + 3, height))
        if x1 <= x0 or y1 <= y0:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        t = (xx - start[0]) * t_hat[0] + (yy - start[1]) * t_hat[1]
        u = (xx - start[0]) * u_hat[0] + (yy - start[1]) * u_hat[1]
        box = np.asarray(boxes, np.float32)
        along_cover = np.clip(np.minimum(t[..., None] - box[:, 0], box[:, 1] - t[..., None]) + 0.5, 0, 1)
        across_cover = np.clip(np.minimum(u[..., None] - box[:, 2], box[:, 3] - u[..., None]) + 0.5, 0, 1)
        cover = (along_cover * across_cover).max(axis=-1)
        clean[y0:y1, x0:x1] = np.maximum(clean[y0:y1, x0:x1], cover)
    return clean


def _blurred_box(width: float, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    x = np.linspace(-30, 30, 24001)
    profile = np.clip(np.minimum(x + width / 2, width / 2 - x) + 0.5, 0, 1)  # the anti-aliased box as drawn
    kernel = np.exp(-x**2 / (2 * sigma**2))
    return x, np.convolve(profile, kernel / kernel.sum(), mode="same")


def line_peak_after_blur(width: float, sigma: float) -> float:
    """Peak of a continuous line of ``width`` after a Gaussian blur of ``sigma``."""
    return float(_blurred_box(width, sigma)[1].max())


def line_fwhm(width: float, sigma: float) -> float:
    """Full width at half maximum of a box of ``width`` blurred by a Gaussian of ``sigma``."""
    x, blurred = _blurred_box(width, sigma)
    above = x[blurred >= blurred.max() / 2]
    return float(above[-1] - above[0])


def generated(border_width: float, noise: str, seed: int, *, shape=SHAPE, diameter=DIAMETER_PX,
              pixel_size_um=PIXEL_SIZE_UM):
    """One generated image: junction plane, labels and the truth per drawn interface (keyed (a, b))."""
    rng = np.random.default_rng(seed)
    labels, edges = tessellation(shape, diameter, rng)
    # A few cells missing (gaps in the monolayer, as real fields have): the background the rule's 5th
    # percentile finds, below every cytoplasm.
    missing = rng.choice(labels.max(), size=max(1, int(round(GAP_SHARE * labels.max()))), replace=False) + 1
    labels[np.isin(labels, missing)] = 0
    edges = {key: value for key, value in edges.items() if key[0] not in missing and key[1] not in missing}
    scale = junction_scale(labels, pixel_size_um=pixel_size_um)
    zone = scale.other_border_px
    drawn = {}
    for key, (start, end) in edges.items():
        length = float(np.hypot(*(end - start)))
        kind = CLASSES[int(rng.integers(len(CLASSES)))]
        boxes, note = _primitives(kind, length, border_width, rng, zone)
        drawn[key] = {"kind": kind, "boxes": boxes, "length": length, **note}
    clean = _render(shape, edges, drawn)
    blurred = ndi.gaussian_filter(clean, PSF_SIGMA_PX)
    line_peak = line_peak_after_blur(border_width, PSF_SIGMA_PX)
    # Truth continuity on the edge's measured part (farther than twice the reach from every other
    # border, as the method measures): where the junction (any edge's) covers the border as drawn, and
    # as imaged: where the blurred, noise-free junction reaches half a continuous line's peak.
    cracks, pairs = _crack_points(labels)
    for key, (start, end) in edges.items():
        info = drawn[key]
        length = info["length"]
        t = np.arange(0.125, length, 0.25)
        points = start[None, :] + t[:, None] * ((end - start) / length)[None, :]
        others = (pairs[:, 0] != key[0]) | (pairs[:, 1] != key[1])
        near = cKDTree(cracks[others]).query(points[:, ::-1], distance_upper_bound=zone)[0]
        points, t = points[~np.isfinite(near)], t[~np.isfinite(near)]
        where = [points[:, 1], points[:, 0]]
        covered = ndi.map_coordinates(clean, where, order=1, mode="nearest") >= 0.5
        imaged = ndi.map_coordinates(blurred, where, order=1, mode="nearest") >= 0.5 * line_peak
        info["drawn_continuity"] = float(covered.mean()) if len(t) else math.nan
        info["continuity"] = float(imaged.mean()) if len(t) else math.nan
    haze = rng.uniform(0.12, 0.3, labels.max() + 1)
    haze[0] = 0
    haze = haze[labels]
    haze *= 1 + 0.15 * ndi.gaussian_filter(rng.normal(size=shape), 6) / 0.05  # mottled cytoplasm
    image = blurred + haze.astype(np.float32) + 0.05
    photons, read = NOISE[noise]
    image = rng.poisson(np.clip(image, 0, None) * photons) / photons + rng.normal(0, read, shape)
    return image.astype(np.float32), labels, drawn


def predicted_class(row) -> str:
    if not row["junction_continuity"] >= ABSENT_BELOW:
        return "absent"
    fractions = {k: row[f"junction_{k}_fraction"] for k in ("continuous", "punctate", "perpendicular")}
    return max(fractions, key=fractions.get)


def score_condition(border_width: float, noise: str, n_images: int, first_seed: int = 2500, *, half_max=True):
    """Scores of one condition over ``n_images`` generated images (interfaces at the frame left out)."""
    rows, janap_errors, ours_errors = [], [], []
    for k in range(n_images):
        image, labels, drawn = generated(border_width, noise, first_seed + k)
        table = cell_interfaces(labels, image, pixel_size_um=PIXEL_SIZE_UM, half_max=half_max)
        for _, row in table[~table["touches_edge"]].iterrows():
            info = drawn.get((row["cell_a"], row["cell_b"]))
            if info is None:
                continue
            truth = "continuous" if info["kind"] == "gaps" else info["kind"]
            if not info["continuity"] >= ABSENT_BELOW:  # nothing drawn on its measured part
                truth = "absent"
            if not row["measured_length_px"] >= MIN_MEASURED_PX:
                continue  # too short to be measured apart from its neighbours, or to hold one period
            rows.append({"truth": truth, "kind": info["kind"], "predicted": predicted_class(row),
                         "continuity": row["junction_continuity"], "truth_continuity": info["continuity"],
                         "drawn_continuity": info["drawn_continuity"],
                         "width": row["junction_width_px"], "length": info["length"]})
        # Per cell, against the per-cell truth (length-weighted over its interfaces), ours and JAnaP's.
        cells = cell_junction_classes(labels, table).set_index("cell_id")
        janap = janap_cell_fractions(labels, image).set_index("cell_id")
        present = np.bincount(labels.ravel(), minlength=labels.max() + 1) > 0
        inner = np.flatnonzero(~touches_edge(labels) & present)
        inner = inner[inner > 0]
        truth_sum = np.zeros(labels.max() + 1)
        truth_weight = np.zeros(labels.max() + 1)
        for (a, b), info in drawn.items():
            if np.isfinite(info["continuity"]):
                for cell in (a, b):
                    truth_sum[cell] += info["continuity"] * info["length"]
                    truth_weight[cell] += info["length"]
        cell_truth = truth_sum[inner] / np.maximum(truth_weight[inner], 1e-9)
        ours_errors.extend(np.abs(cells.loc[inner, "junction_continuity"].to_numpy() - cell_truth))
        janap_errors.extend(np.abs(janap.loc[inner, "junction_continuity"].to_numpy() - cell_truth))
    scored = pd.DataFrame(rows)
    error = (scored["continuity"] - scored["truth_continuity"]).abs()
    width_truth = line_fwhm(border_width, PSF_SIGMA_PX)
    lines = scored[scored["kind"].isin(["continuous", "gaps"])]
    by_kind = {kind: float((g["truth"] == g["predicted"]).mean()) for kind, g in scored.groupby("kind")}
    return {
        "condition": f"border {border_width:g} px, noise {noise}",
        "interfaces": len(scored),
        "class accuracy": float((scored["truth"] == scored["predicted"]).mean()),
        "by kind drawn (" + " / ".join(CLASSES) + ")": " / ".join(f"{by_kind.get(k, math.nan):.2f}" for k in CLASSES),
        "mean abs(continuity - truth)": float(error.mean()),
        "share within 0.05": float((error <= 0.05).mean()),
        "mean abs(continuity - drawn)": float((scored["continuity"] - scored["drawn_continuity"]).abs().mean()),
        "width truth px": width_truth,
        "width error px (median, lines)": float((lines["width"] - width_truth).median()),
        "cells": len(ours_errors),
        "per-cell abs(continuity - truth): ours / JAnaP rule": f"{np.mean(ours_errors):.3f} / {np.mean(janap_errors):.3f}",
    }, scored


# ------------------------------------------------------------------------------------------------
# The JAnaP rule, as stated in the issue
# ------------------------------------------------------------------------------------------------


def janap_cell_fractions(labels: np.ndarray, junction: np.ndarray, *, threshold: float | None = None,
                         ids=None) -> pd.DataFrame:
    """Per cell: JAnaP's coverage and its continuous, punctate, perpendicular and discontinuous shares.

    ``threshold``: the junction mask's intensity threshold (default: Otsu's of the plane). Continuous
    stretches are >= 15 px (30 px for images >= 2048 px wide), perpendicular ones have a relative path
    aspect ratio > 1.2. Perimeter pixels on the image frame are left out.
    """
    labels = np.asarray(labels)
    junction = np.asarray(junction, np.float32)
    threshold = float(filters.threshold_otsu(junction)) if threshold is None else float(threshold)
    mask = junction >= threshold
    min_length = 30.0 if labels.shape[1] >= 2048 else 15.0
    height, width = labels.shape
    rows = []
    for cell_id, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None or (ids is not None and cell_id not in ids):
            continue
        rows_ = slice(max(box[0].start - 1, 0), min(box[0].stop + 1, height))
        cols_ = slice(max(box[1].start - 1, 0), min(box[1].stop + 1, width))
        cell = np.pad(labels[rows_, cols_] == cell_id, 1)
        contours = measure.find_contours(cell.view(np.uint8), 0.5)
        if not contours:
            continue
        contour = max(contours, key=len)[:-1]
        # The perimeter pixels in order: the cell-side pixel of each crack point.
        on_row = np.abs(contour[:, 0] - np.round(contour[:, 0])) < 1e-3
        r0 = np.where(on_row, np.round(contour[:, 0]), np.floor(contour[:, 0])).astype(int)
        c0 = np.where(on_row, np.floor(contour[:, 1]), np.round(contour[:, 1])).astype(int)
        r1, c1 = r0 + ~on_row, c0 + on_row
        inside = cell[r0, c0]
        pr, pc = np.where(inside, r0, r1), np.where(inside, c0, c1)
        keep = np.r_[True, (pr[1:] != pr[:-1]) | (pc[1:] != pc[:-1])]
        pr, pc = pr[keep], pc[keep]
        if len(pr) > 1 and pr[0] == pr[-1] and pc[0] == pc[-1]:
            pr, pc = pr[:-1], pc[:-1]
        rr, cc = pr - 1 + rows_.start, pc - 1 + cols_.start  # image coordinates
        n = len(rr)
        steps = np.hypot(np.diff(np.r_[rr, rr[0]]), np.diff(np.r_[cc, cc[0]]))
        weight = 0.5 * (steps + np.roll(steps, 1))  # each pixel's share of the path
        counted = (rr > 0) & (rr < height - 1) & (cc > 0) & (cc < width - 1)
        on = mask[rr, cc] & counted
        # Local normal from the path's direction over +-3 pixels.
        tr = np.roll(rr, -3) - np.roll(rr, 3)
        tc = np.roll(cc, -3) - np.roll(cc, 3)
        norm = np.hypot(tr, tc)
        norm[norm == 0] = 1
        nr, nc = -tc / norm, tr / norm
        kinds = np.zeros(n, np.int8)  # 0 off, 1 continuous, 2 punctate, 3 perpendicular
        if on.any():
            starts = np.flatnonzero(on & ~np.roll(on, 1))
            if starts.size == 0:  # on all round
                stretches = [np.arange(n)]
            else:
                stretches = []
                for start in starts:
                    stop = start
                    while on[(stop + 1) % n] and (stop + 1) % n != start:
                        stop += 1
                    stretches.append(np.arange(start, stop + 1) % n)
            for stretch in stretches:
                length = float(weight[stretch].sum())
                if length >= min_length:
                    kinds[stretch] = 1
                    continue
                across = max(_mask_run(mask, rr[i], cc[i], nr[i], nc[i]) for i in stretch)
                kinds[stretch] = 3 if across / length > 1.2 else 2
        total = float(weight[counted].sum())
        shares = [float(weight[counted & (kinds == k)].sum()) / total if total else math.nan for k in range(4)]
        rows.append({"cell_id": cell_id, "junction_continuity": 1 - shares[0] if total else math.nan,
                     "junction_continuous_fraction": shares[1], "junction_punctate_fraction": shares[2],
                     "junction_perpendicular_fraction": shares[3], "junction_absent_fraction": shares[0]})
    return pd.DataFrame(rows)


def _mask_run(mask, r, c, nr, nc, limit=40) -> float:
    """Length (px) of the thresholded run through (r, c) along the direction (nr, nc)."""
    height, width = mask.shape
    count = 1
    for sign in (1, -1):
        for k in range(1, limit):
            y, x = int(round(r + sign * k * nr)), int(round(c + sign * k * nc))
            if not (0 <= y < height and 0 <= x < width) or not mask[y, x]:
                break
            count += 1
    return float(count)


# ------------------------------------------------------------------------------------------------
# Real images
# ------------------------------------------------------------------------------------------------


def real_images() -> list[Path]:
    return sorted((SHARED / "unlabelled").glob("*.jpg")) + [SHARED / "train" / f"bbb_0{k}.png" for k in (1, 2)]


def compare_real(paths: list[Path]) -> pd.DataFrame:
    """Mean per-cell fractions (cells not at the edge) of both methods on each image, cells from the shipped model.

    Four readings: the per-cell column of ``bbbcore.features`` (continuity only); the interfaces'
    per-cell classes (:func:`cell_junction_classes`), with their per-cell thresholds and with one global
    threshold; the JAnaP rule with Otsu's threshold and with that same global threshold (the background
    plus 1.5 x the median cytoplasm level of the image's cells), so the threshold and the rest of the
    rule can be told apart.
    """
    from bbbcore.interfaces import junction_levels
    from bbbcore.io import load_image
    from bbbcore.pipeline import segment_image
    from bbbcore.unet import load_model

    model = load_model()
    rows = []
    for path in paths:
        image = load_image(path)
        result = segment_image(image, model)
        labels, plane = result.labels, image.junction_raw
        present = np.bincount(labels.ravel()) > 0
        inner = np.flatnonzero(~touches_edge(labels) & present)
        inner = inner[inner > 0]
        diameter = float(np.median(result.cells.loc[~result.cells["touches_edge"], "equivalent_diameter"]))
        size = result.pixel_size_um
        scale = junction_scale(labels, pixel_size_um=size, diameter_px=diameter)
        levels = junction_levels(labels, plane, pixel_size_um=size)
        level = float(config.JUNCTION_PRESENT_RATIO * np.nanmedian(levels.cytoplasm[inner]))
        otsu = float(filters.threshold_otsu(np.asarray(plane, np.float32)))
        readings = {
            "ours": cell_junction_classes(labels, cell_interfaces(labels, plane, pixel_size_um=size,
                                                                  diameter_px=diameter)),
            "ours, one threshold": cell_junction_classes(labels, cell_interfaces(
                labels, plane, pixel_size_um=size, diameter_px=diameter, threshold=level)),
            "JAnaP Otsu": janap_cell_fractions(labels, plane, threshold=otsu),
            "JAnaP same threshold": janap_cell_fractions(labels, plane, threshold=levels.background + level),
        }
        row = {"image": path.name, "cells": len(inner), "diameter px": round(diameter),
               "continuous min px (ours / JAnaP)": f"{scale.continuous_px:.1f} / {30 if labels.shape[1] >= 2048 else 15}",
               "thresholds (Otsu / global, raw units)": f"{otsu:.0f} / {levels.background + level:.0f}",
               "features.py continuity": float(result.cells.set_index("cell_id").loc[inner, "junction_continuity"].mean())}
        for name, table in readings.items():
            table = table.set_index("cell_id").reindex(inner)
            row[f"{name}: coverage"] = float(table["junction_continuity"].mean())
            row[f"{name}: cont / punct / perp"] = " / ".join(
                f"{table[f'junction_{k}_fraction'].mean():.2f}" for k in ("continuous", "punctate", "perpendicular"))
        rows.append(row)
    return pd.DataFrame(rows)


def timing(repeats: int = 3) -> dict:
    """Median seconds of :func:`cell_interfaces` + :func:`cell_junction_classes` on a 1344 x 1024 image."""
    rng = np.random.default_rng(7)
    labels, edges = tessellation((1024, 1344), 125.0, rng)
    image = ndi.gaussian_filter(rng.normal(size=labels.shape).astype(np.float32), 1) + 1
    image[np.diff(labels, axis=0, prepend=0) != 0] += 3
    cell_interfaces(labels[:200, :200], image[:200, :200])  # imports and first calls
    seconds, cpu = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        table = cell_interfaces(labels, image)
        cell_junction_classes(labels, table)
        seconds.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return {"cells": int(labels.max()), "interfaces": len(table), "wall s (median)": round(float(np.median(seconds)), 3),
            "cpu s (median)": round(float(np.median(cpu)), 3), "wall s (all)": [round(s, 3) for s in seconds]}


def markdown(table: pd.DataFrame, digits: int = 3) -> str:
    def cell(value):
        if isinstance(value, float):
            return f"{value:.{digits}f}" if np.isfinite(value) else ""
        return str(value)

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=2, help="generated images per condition")
    parser.add_argument("--no-real", action="store_true", help="skip the shared images (no model run)")
    parser.add_argument("--no-timing", action="store_true")
    parser.add_argument("--threshold-ends", action="store_true",
                        help="also score stretch ends at the present threshold (half_max=False)")
    args = parser.parse_args(argv)
    results = []
    for width in BORDER_WIDTHS:
        for noise in NOISE:
            summary, _ = score_condition(width, noise, args.images)
            results.append(summary)
            if args.threshold_ends:
                plain, _ = score_condition(width, noise, args.images, half_max=False)
                results.append({**plain, "condition": plain["condition"] + " (half_max=False)"})
    print("## Validation on generated images\n")
    print(markdown(pd.DataFrame(results)))
    if not args.no_timing:
        print("\n## Timing\n")
        print(timing())
    if not args.no_real:
        print("\n## JAnaP rule vs interfaces on the shared images (mean per-cell fractions)\n")
        print(markdown(compare_real(real_images())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
