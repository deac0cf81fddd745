"""The shipped model on real images from ../shared/data."""

from __future__ import annotations

import numpy as np
import pytest

from bbbcore.annotations import read_truth_cells
from bbbcore.io import load_image
from bbbcore.metrics import score_segmentation
from bbbcore.pipeline import segment_image
from bbbcore.resize import resize

pytestmark = [pytest.mark.shared, pytest.mark.model]


@pytest.fixture(scope="module")
def bbb02(shared_data):
    return load_image(shared_data / "bbb" / "train" / "bbb_02.png")


def test_card_describes_the_model(shipped_model):
    card = shipped_model.card
    assert card.input_channel == "junction" and card.pixel_size_um == pytest.approx(0.617)
    assert card.outputs == ("boundary", "distance")
    assert "bbb_01.png" in card.training["images"] and "bbb_02.png" in card.training["images"]
    assert {"leave_one_image_out"} <= set(card.metrics)


def test_shipped_model_segments_an_annotated_image(shipped_model, bbb02, shared_data):
    # bbb_02 is in the shipped model's training data: this guards against a
    # broken model or pipeline, the held-out figures live in the card.
    truth = read_truth_cells(shared_data / "bbb" / "train" / "bbb_02.outline.png")
    result = segment_image(bbb02, shipped_model)
    scores = score_segmentation(truth, result.labels, n_bootstrap=0)
    assert scores["f1@0.5"] >= 0.8, scores
    assert result.labels.shape == bbb02.shape and (result.labels > 0).mean() > 0.95


def test_tiles_do_not_change_real_predictions(shipped_model, bbb02):
    small = resize(bbb02.junction, shipped_model.card.input_scale)
    whole = shipped_model.predict_tiles(small, tile=1024)
    tiled = shipped_model.predict_tiles(small, tile=192)
    assert np.abs(whole - tiled).max() < 1e-3


def test_finer_pixel_size_is_rescaled_to_the_model(shipped_model, bbb02):
    # The same field as if imaged at 20x: twice the pixels, half the pixel size.
    at_10x = segment_image(bbb02, shipped_model, pixel_size_um=0.617)
    big = bbb02.__class__(**{**bbb02.__dict__, "junction": resize(bbb02.junction, 2.0),
                             "raw": np.kron(bbb02.raw, np.ones((2, 2), bbb02.raw.dtype))})
    at_20x = segment_image(big, shipped_model, pixel_size_um=0.3085)
    assert at_20x.labels.shape == (2048, 2688)
    n10, n20 = len(at_10x.cells), len(at_20x.cells)
    assert abs(n20 - n10) <= 0.1 * n10, (n10, n20)
    ratio = at_20x.cells["area_um2"].median() / at_10x.cells["area_um2"].median()
    assert 0.85 < ratio < 1.15


def test_rgb_upload_uses_the_green_junction_channel(shipped_model, shared_data):
    image = load_image(shared_data / "bbb" / "unlabelled" / "bbb_rgb_03.jpg")
    assert image.junction_channel == 1 and image.nuclear_channel == 2
    result = segment_image(image, shipped_model, use_nuclei=True)
    assert 30 <= len(result.cells) <= 200
