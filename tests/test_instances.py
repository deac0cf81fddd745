"""bbbcore.instances: watershed on synthetic monolayers with known truth."""

from __future__ import annotations

import numpy as np
import pytest

from bbbcore.instances import burned_in_mask, cells_from_boundary, scaled_settings, touches_edge
from bbbcore.metrics import score_segmentation
from tests.synthetic import voronoi_monolayer

SETTINGS = {"threshold": 0.4, "marker_erosion": 2.0, "min_cell_area": 300}


@pytest.mark.parametrize("seed", [3, 11])
def test_watershed_recovers_synthetic_cells_from_basins(seed):
    cells = voronoi_monolayer(shape=(384, 512), n_cells=40, seed=seed)
    labels = cells_from_boundary(cells["junction"], **SETTINGS)
    scores = score_segmentation(cells["truth"], labels, n_bootstrap=0)
    assert scores["recall@0.5"] >= 0.95, scores
    assert scores["precision@0.5"] >= 0.95, scores


def test_watershed_recovers_synthetic_cells_from_nuclei(synthetic_monolayer):
    labels = cells_from_boundary(synthetic_monolayer["junction"], nuclei=synthetic_monolayer["nuclei"], **SETTINGS)
    scores = score_segmentation(synthetic_monolayer["truth"], labels, n_bootstrap=0)
    assert scores["recall@0.5"] >= 0.95, scores


def test_gaps_in_borders_do_not_merge_cells(synthetic_monolayer):
    # Cut 12-px gaps into the borders every 40 px: basins now leak into their
    # neighbours, and only the distance-based seeds keep the cells apart.
    junction = synthetic_monolayer["junction"].copy()
    yy, xx = np.mgrid[: junction.shape[0], : junction.shape[1]]
    junction[((yy // 40 + xx // 40) % 2 == 0) & (yy % 40 < 12) & (xx % 40 < 12)] *= 0.2
    labels = cells_from_boundary(junction, **SETTINGS)
    scores = score_segmentation(synthetic_monolayer["truth"], labels, n_bootstrap=0)
    assert scores["recall@0.5"] >= 0.9, scores


def test_predicted_distance_seeds_cells(synthetic_monolayer):
    from bbbcore.training import distance_target

    truth = synthetic_monolayer["truth"]
    labels = cells_from_boundary(
        synthetic_monolayer["junction"], cell_distance=distance_target(truth), **SETTINGS
    )
    scores = score_segmentation(truth, labels, n_bootstrap=0)
    assert scores["recall@0.5"] >= 0.95 and scores["mean_iou"] > 0.9, scores


def test_labels_tile_the_image_and_drop_specks(synthetic_monolayer):
    labels = cells_from_boundary(synthetic_monolayer["junction"], **SETTINGS)
    assert labels.dtype == np.int32
    assert (labels > 0).all()  # neighbours touch; no gaps between cells
    assert np.array_equal(np.unique(labels), np.arange(1, labels.max() + 1))
    assert np.bincount(labels.ravel())[1:].min() >= SETTINGS["min_cell_area"]


def test_edge_cells_are_flagged():
    labels = np.zeros((10, 10), np.int32)
    labels[:, :5] = 1
    labels[2:8, 5:8] = 2
    labels[:, 8:] = 3
    flags = touches_edge(labels)
    assert flags.tolist() == [False, True, False, True]


def test_scale_bar_box_is_no_cell(synthetic_monolayer):
    raw = (synthetic_monolayer["junction"] * 200).astype(np.uint8)
    raw[340:360, 380:500] = 255  # a burned-in white scale-bar box
    raw[348:352, 390:490] = 0  # its black bar
    mask = burned_in_mask(raw)
    assert mask[340:360, 380:500].mean() > 0.95
    assert mask.mean() < 0.03
    labels = cells_from_boundary(synthetic_monolayer["junction"], exclude=mask, **SETTINGS)
    assert (labels[mask] == 0).all()


def test_yellow_caption_is_masked_in_colour_images():
    rgb = np.zeros((200, 300, 3), np.uint8)
    rgb[..., 1] = 60
    rgb[170:185, 10:120:3, 0] = 230  # yellow text strokes: red and green high
    rgb[170:185, 10:120:3, 1] = 230
    mask = burned_in_mask(rgb)
    assert mask[170:185, 10:120].mean() > 0.8
    assert not mask[:150].any()


def test_settings_scale_with_pixel_size():
    finer = scaled_settings({"min_cell_area": 1000, "marker_erosion": 4}, pixel_scale=2.0)
    assert finer["min_cell_area"] == 4000 and finer["marker_erosion"] == 8
    with pytest.raises(ValueError, match="unknown watershed setting"):
        scaled_settings({"treshold": 0.2})


def test_spurious_split_without_a_border_is_merged():
    from bbbcore.instances import merge_weak_borders, shared_borders

    labels = np.zeros((40, 60), np.int32)
    labels[:, :20], labels[:, 20:40], labels[:, 40:] = 1, 2, 3
    probability = np.zeros((40, 60), np.float32)
    probability[:, 38:42] = 0.9  # a real border between 2 and 3; none between 1 and 2
    pairs, mean, length = shared_borders(labels, probability)
    assert pairs.tolist() == [[1, 2], [2, 3]] and length.tolist() == [40, 40]
    merged = merge_weak_borders(labels, probability, 0.3)
    assert len(np.unique(merged)) == 2
    assert (merged[:, :40] == merged[0, 0]).all() and (merged[:, 40:] != merged[0, 0]).all()


def test_gap_in_the_monolayer_is_no_cell(synthetic_monolayer):
    junction = synthetic_monolayer["junction"].copy()
    truth = synthetic_monolayer["truth"]
    hole = truth == truth[200, 250]  # one cell is missing: a black gap, no junction, no cytoplasm
    intensity = np.where(hole, 0.0, np.clip(junction + 0.3, 0, 1))
    labels = cells_from_boundary(junction, intensity=intensity, **SETTINGS)
    assert (labels[hole] == 0).mean() > 0.8
    assert (labels[~hole] > 0).mean() > 0.97
