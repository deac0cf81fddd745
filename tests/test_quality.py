"""bbbcore.quality: saturated, blurred and odd-count images are flagged, on generated images with known truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage as ndi

from bbbcore.junction_generator import generate
from bbbcore.quality import MAX_SATURATED_SHARE, add_quality_flags, image_quality


def field(seed: int = 1) -> np.ndarray:
    return generate((400, 500), diameter_px=60, seed=seed, jpeg_quality=None).junction.astype(np.float32)


def test_the_saturated_share_counts_clipped_pixels_of_the_sample_only():
    plane = np.round(field() * 200).astype(np.uint8)
    plane[:20, :] = 255  # 5 % of the rows clipped
    quality = image_quality(plane, plane / 255.0)
    assert quality["saturated_share"] == pytest.approx(20 / 400)
    box = np.zeros(plane.shape, bool)
    box[:20, :] = True  # a burned-in bar's white box is no sample
    assert image_quality(plane, plane / 255.0, exclude=box)["saturated_share"] == 0.0
    twelve_bit = (np.round(field() * 3000)).astype(np.uint16)
    twelve_bit[:40] = 4095  # a 12-bit camera's ceiling in a 16-bit file
    assert image_quality(twelve_bit, twelve_bit / 4095.0)["saturated_share"] == pytest.approx(40 / 400)


def test_blur_lowers_the_focus_score():
    sharp = field(2)
    blurred = ndi.gaussian_filter(sharp, 3.0)
    scores = [image_quality(np.round(p * 255).astype(np.uint8), p)["focus_score"] for p in (sharp, blurred)]
    assert scores[1] < 0.2 * scores[0]


def summary(**changes) -> pd.DataFrame:
    rows = pd.DataFrame({"image": [f"im{i}.tif" for i in range(5)], "n_cells": [40, 44, 38, 41, 42],
                         "saturated_share": [0.001] * 5, "focus_score": [2.0e-4, 2.2e-4, 1.9e-4, 2.1e-4, 2.0e-4]})
    for column, (index, value) in changes.items():
        rows.loc[index, column] = value
    return rows


def test_flags_name_what_is_off_and_leave_good_images_alone():
    table = add_quality_flags(summary(saturated_share=(1, 0.08), focus_score=(2, 0.2e-4), n_cells=(3, 300)))
    flags = table.set_index("image")["quality_flags"]
    assert flags["im0.tif"] == "" and flags["im4.tif"] == ""
    assert flags["im1.tif"] == "saturated: 8.0 % of junction pixels"
    assert flags["im2.tif"].startswith("blurred: focus 0.10 of the experiment's median")
    assert flags["im3.tif"] == "300 cells, 7.14 x the experiment's median"
    assert table["focus_relative"].median() == pytest.approx(1.0)
    assert 0.08 > MAX_SATURATED_SHARE


def test_two_images_are_too_few_to_judge_by_the_median():
    table = add_quality_flags(summary(focus_score=(1, 1e-6)).iloc[:2])
    assert table["focus_relative"].isna().all() and (table["quality_flags"] == "").all()
