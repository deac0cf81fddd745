"""bbbcore.scale: images are segmented at the scale of their cells, whatever their magnification."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from bbbcore.io import LoadedImage, load_image
from bbbcore.pipeline import segment_image
from bbbcore.resize import resize_labels
from bbbcore.scale import SNAP, ZOOM_RANGE, choose_scale, diameter_source, nuclei_spacing_px, zoom_for
from bbbcore.session import SAMPLE_DATA_DIR
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
from zoom import make_63x, matched_share, zoomed  # noqa: E402

pytestmark = pytest.mark.model


def test_a_given_diameter_sets_the_zoom_and_nothing_is_estimated(shipped_model):
    junction = np.zeros((256, 256), np.float32)
    scale = choose_scale(junction, shipped_model, diameter_px=41.0)
    assert scale.zoom == pytest.approx(shipped_model.card.diameter_px / 41.0) == zoom_for(shipped_model.card, 41.0)
    assert (scale.diameter_used_px, scale.diameter_estimated_px, scale.warning) == (41.0, None, None)


def test_the_estimate_joins_weak_splits_whatever_the_cards_merge_threshold(shipped_model):
    """The diameter is estimated with ESTIMATE_MERGE_THRESHOLD; the card's setting only draws the cells."""
    import dataclasses

    from bbbcore.scale import ESTIMATE_MERGE_THRESHOLD
    from bbbcore.unet import BoundaryModel

    image = load_image(SAMPLE_DATA_DIR / "bbb_rgb_03.jpg")
    junction = image.junction[:512, :512]
    estimates = []
    for merge in (0.0, 0.6):
        card = dataclasses.replace(shipped_model.card,
                                   thresholds={**shipped_model.card.thresholds, "merge_threshold": merge})
        model = BoundaryModel(shipped_model.keras_model, card, forward=shipped_model._forward,
                              runtime=shipped_model.runtime)
        estimates.append(choose_scale(junction, model).diameter_estimated_px)
    assert estimates[0] == estimates[1] == choose_scale(junction, shipped_model).diameter_estimated_px
    assert ESTIMATE_MERGE_THRESHOLD != shipped_model.card.thresholds["merge_threshold"]


def test_a_blank_image_gets_one_line_about_the_diameter(shipped_model):
    scale = choose_scale(np.zeros((300, 400), np.float32), shipped_model, name="blank.png")
    assert scale.zoom == 1.0 and scale.diameter_estimated_px is None
    assert scale.warning.startswith("blank.png: the cell diameter could not be estimated") and "--diameter" in scale.warning


def test_the_diameter_source_is_given_estimated_or_the_models_default():
    assert diameter_source(150.0, None) == "given"
    assert diameter_source(150.0, 62.0) == "given"
    assert diameter_source(None, 62.0) == diameter_source(0, 62.0) == "estimated"
    assert diameter_source(None, None) == "model default"  # a blank image: nothing given, nothing to estimate from


def test_half_size_image_gives_the_same_cells_and_areas(shipped_model):
    """One small case of benchmarks/zoom.py: a 10x sample image at half size, with and without its pixel size."""
    image = load_image(SAMPLE_DATA_DIR / "bbb_rgb_05.jpg")
    original = segment_image(image, shipped_model, pixel_size_um=0.617)
    assert original.diameter_used_px == shipped_model.card.diameter_px  # 10x: within the snap, zoom 1
    assert abs(original.diameter_estimated_px / shipped_model.card.diameter_px - 1) <= SNAP
    small = zoomed(image, 0.5)
    half = segment_image(small, shipped_model, pixel_size_um=2 * 0.617)
    assert half.diameter_estimated_px == pytest.approx(original.diameter_estimated_px / 2, rel=0.15)
    share, pairs = matched_share(original.labels, resize_labels(half.labels, image.shape))
    assert share >= 0.9, share
    areas = original.cells.set_index("cell_id")["area_um2"]
    half_areas = half.cells.set_index("cell_id")["area_um2"]
    ratio = np.median([half_areas[j] / areas[i] for i, j in pairs])
    assert abs(ratio - 1) <= 0.03, ratio
    no_size = segment_image(small, shipped_model)  # no pixel size: the same cells, no µm columns
    assert np.array_equal(no_size.labels, half.labels) and "area_um2" not in no_size.cells


@pytest.mark.shared
def test_a_63x_tiff_is_segmented_with_no_setting_touched(shipped_model, shared_data, tmp_path):
    path, truth = make_63x(shipped_model, tmp_path)
    image = load_image(path)
    assert image.pixel_size_um == pytest.approx(0.1028, rel=1e-3)  # from the ImageJ metadata
    result = segment_image(image, shipped_model)
    assert result.diameter_used_px > 2 * shipped_model.card.diameter_px and not result.warnings  # 6x: large cells
    share, pairs = matched_share(truth, resize_labels(result.labels, truth.shape))
    assert pairs and share >= 0.9, share
    cells = result.cells.set_index("cell_id")
    for _, cell in pairs:  # µm from the file's 0.1028 µm/px, whatever the zoom the network saw
        assert cells.loc[cell, "area_um2"] == pytest.approx(cells.loc[cell, "area"] * 0.1028**2, rel=1e-3)


def test_cells_beyond_what_the_model_handles_are_named(shipped_model):
    from tests.synthetic import voronoi_monolayer

    field = voronoi_monolayer(shape=(192, 256), n_cells=120, seed=2)  # cells ~17 px across
    image = LoadedImage(name="tiny_cells.png", image_id="", raw=(field["junction"] * 255).astype(np.uint8),
                        junction=field["junction"], nuclei=None, pixel_size_um=None)
    scale = choose_scale(image.junction, shipped_model, name=image.name)
    low, high = ZOOM_RANGE
    assert low <= scale.zoom <= high
    if scale.warning:  # the estimate lay outside the range: one line saying so and what to do
        assert scale.warning.startswith("tiny_cells.png: estimated cell diameter") and "--diameter" in scale.warning
    else:
        assert scale.diameter_estimated_px == pytest.approx(17, rel=0.35)


def test_a_field_of_a_few_large_cells_gets_their_diameter(shipped_model, shared_data, tmp_path):
    # bbb_02's cells enlarged 4x: two whole cells in the field, the others cut by its edge. Counting the
    # cut cells as half cells keeps the estimate from the few small whole ones (it was 100 px, not ~700).
    path, truth = make_63x(shipped_model, tmp_path, factor=4, size=(255, 336),
                           source=shared_data / "bbb" / "train" / "bbb_02.png")
    result = segment_image(load_image(path), shipped_model)
    from bbbcore.instances import touches_edge

    areas, cut = np.bincount(truth.ravel()), touches_edge(truth)
    true_diameter = 4 * np.median([np.sqrt(4 * areas[i] / np.pi) for i in range(1, len(areas)) if areas[i] and not cut[i]])
    assert result.diameter_estimated_px == pytest.approx(true_diameter, rel=0.35)
    share, pairs = matched_share(truth, resize_labels(result.labels, truth.shape))
    assert len(pairs) >= 2 and share >= 0.9, share


@pytest.mark.parametrize("diameter", [20, 60, 200])
def test_the_nuclei_spacing_gives_the_cell_diameter_at_any_size(diameter):
    from bbbcore.junction_generator import generate

    side = int(np.clip(8 * diameter, 320, 1400))
    picture = generate((side, side), diameter_px=diameter, seed=7, missing_nucleus_share=0.0)
    areas = np.bincount(picture.cells.ravel())[1:]
    true_diameter = np.sqrt(4 * areas.mean() / np.pi)
    assert nuclei_spacing_px(picture.nuclei) == pytest.approx(true_diameter, rel=0.25)
    assert nuclei_spacing_px(np.zeros((64, 64), np.float32)) is None  # a flat channel says nothing


def test_small_cells_drawn_as_clusters_are_told_apart_by_their_nuclei(shipped_model):
    """bbb_rgb_02 (cells ~62 px) at 1/3: the trial drawing clusters of a dozen cells is as sure as the right one."""
    image = zoomed(load_image(SAMPLE_DATA_DIR / "bbb_rgb_02.jpg"), 1 / 3)
    from bbbcore.pipeline import model_input

    junction = model_input(image, shipped_model.card)
    # Model 2.0 without the nuclei: 157 px / 3 (the clusters); with them, the cells' own ~62 px / 3.
    scale = choose_scale(junction, shipped_model, nuclei=image.nuclei)
    assert scale.diameter_used_px == pytest.approx(62 / 3, rel=0.2)


def test_a_large_image_is_estimated_at_several_places(shipped_model):
    """A blank patch at the centre of a large field (a bubble, a scale bar, a stitching seam) does not decide it."""
    from bbbcore.junction_generator import generate

    picture = generate((1600, 1600), diameter_px=60, seed=11, texture="continuous", gap_share=0.0)
    junction = picture.junction.astype(np.float32)
    junction[550:1050, 550:1050] = 0.0  # the centre crop of a one-crop estimate sees nothing here
    scale = choose_scale(junction, shipped_model, name="field.tif")
    areas = np.bincount(picture.cells.ravel())[1:]
    assert scale.warning is None
    assert scale.diameter_estimated_px == pytest.approx(np.sqrt(4 * np.median(areas) / np.pi), rel=0.2)
