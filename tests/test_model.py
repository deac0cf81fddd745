"""The shipped model on real images from ../shared/data."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.segmentation import find_boundaries

from bbbcore.annotations import read_truth_cells
from bbbcore.io import load_image
from bbbcore.junction_generator import generate
from bbbcore.metrics import score_segmentation
from bbbcore.pipeline import finish_segmentation, predict_scaled, segment_image
from bbbcore.resize import resize
from bbbcore.unet import receptive_radius

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
    # Cropped to 385 x 517 px on the network's grid, no side a multiple of its 16 px pooling grid, so the
    # last tiles do not start on that grid by luck (the whole image, 512 x 672, does).
    rows, cols = 770, 1034
    image = dataclasses.replace(bbb02, raw=bbb02.raw[:rows, :cols], junction=bbb02.junction[:rows, :cols],
                                nuclei=None if bbb02.nuclei is None else bbb02.nuclei[:rows, :cols])
    prepared = predict_scaled(image, shipped_model)  # tile 1024: one window
    assert prepared.maps["boundary"].shape == (385, 517)
    labels = finish_segmentation(prepared, shipped_model).labels
    assert labels.max() > 15
    for tile in (192, 128):
        maps = shipped_model.predict_maps(prepared.junction, zoom=prepared.scale.zoom, name=image.name,
                                          working_scale=True, tile=tile)
        for key, whole in prepared.maps.items():
            # Every window sees what the single window sees around its core: the same numbers.
            assert np.abs(maps[key] - whole).max() <= 1e-6, (tile, key)
        tiled = finish_segmentation(dataclasses.replace(prepared, maps=maps), shipped_model).labels
        assert np.array_equal(tiled, labels), f"tile {tile}: {np.count_nonzero(tiled != labels)} pixels differ"


def test_a_shifted_image_gives_a_shifted_prediction(shipped_model, bbb02):
    card = shipped_model.card
    grid = round(2**card.depth / card.input_scale)  # 32 px: the deepest pooling's cell, at the image's scale
    assert grid == 2**card.depth / card.input_scale
    junction = bbb02.junction
    height, width = junction.shape[0] - grid, junction.shape[1] - grid

    def boundary(top: int, left: int) -> np.ndarray:
        return shipped_model.predict_maps(junction[top : top + height, left : left + width])["boundary"]

    reference = boundary(grid, grid)  # reference[i] sees junction[grid + i]
    # Compared this far from every crop's edges (the moved one's too): past the network's receptive
    # radius, plus the resizing's pixel, at the image's scale.
    margin = round((receptive_radius(card.depth) + 2) / card.input_scale) + grid

    def moved_back(moved: np.ndarray, dy: int, dx: int) -> np.ndarray:
        return moved[margin + dy : height - margin + dy, margin + dx : width - margin + dx]

    inner = moved_back(reference, 0, 0)
    # Moved by the grid: the network sees the same pixels in the same pooling phase, so the same numbers.
    moved = boundary(0, 0)  # moved[i + grid] sees junction[grid + i]
    assert np.abs(moved_back(moved, grid, grid) - inner).max() <= 1e-6
    # Moved by 2 px (one pixel on the network's grid) or 1 px (half of one): the 2x2 max-poolings now
    # pick other winners, so single pixels differ by up to ~0.35 and only the whole moves with the
    # image: on average within 0.03, and it matches best exactly where the image moved.
    for shift in (2, 1):
        moved = boundary(grid - shift, grid - shift)
        tried = {(dy, dx): np.corrcoef(moved_back(moved, shift + dy, shift + dx).ravel(), inner.ravel())[0, 1]
                 for dy in range(-2, 3) for dx in range(-2, 3)}
        assert max(tried, key=tried.get) == (0, 0), (shift, tried)
        assert np.abs(moved_back(moved, shift, shift) - inner).mean() < 0.03, shift


def test_boundary_probability_peaks_on_the_cell_borders(shipped_model):
    # Exact labels, cells of the training diameter: the predicted borders must lie on the true ones,
    # not a pixel beside them.
    generated = generate((768, 768), diameter_px=shipped_model.card.diameter_px, texture="continuous", seed=3)
    probability = shipped_model.predict_maps(generated.junction, name="generated")["boundary"]
    border = find_boundaries(generated.cells)  # both sides of every border: 2 px across, centred on it
    off_border = ndi.distance_transform_edt(~border)
    on, beside = probability[border].mean(), probability[(off_border >= 2) & (off_border <= 3)].mean()
    assert on > 0.8 and on > beside + 0.2, (on, beside)
    # The mean probability on the border pixels moved by (dy, dx): highest unmoved, and a parabola
    # through -1, 0, 1 px peaks within 0.3 px of 0 across vertical and horizontal borders alike (a one
    # pixel offset of the maps puts it near 1).
    r = 3
    n = probability.shape[0]
    inner = border[r:-r, r:-r]
    profile = np.array([[probability[r + dy : n - r + dy, r + dx : n - r + dx][inner].mean()
                         for dx in range(-r, r + 1)] for dy in range(-r, r + 1)])
    assert np.unravel_index(profile.argmax(), profile.shape) == (r, r), profile.round(3)
    for line in (profile[r, r - 1 : r + 2], profile[r - 1 : r + 2, r]):
        assert abs(0.5 * (line[0] - line[2]) / (line[0] - 2 * line[1] + line[2])) < 0.3, profile.round(3)


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
