"""bbbcore.instances: watershed on synthetic monolayers with known truth."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage import segmentation

from bbbcore.instances import WatershedSettings, burned_in_mask, cells_from_boundary, labels_from_maps, touches_edge
from bbbcore.io import LoadedImage
from bbbcore.metrics import score_segmentation
from bbbcore.nuclei import find_bright_nuclei
from tests.synthetic import voronoi_monolayer

SETTINGS = WatershedSettings(threshold=0.4, marker_erosion=2.0, min_cell_area=300)


@pytest.mark.parametrize("seed", [3, 11])
def test_watershed_recovers_synthetic_cells_from_basins(seed):
    cells = voronoi_monolayer(shape=(384, 512), n_cells=40, seed=seed)
    labels = cells_from_boundary(cells["junction"], SETTINGS)
    scores = score_segmentation(cells["truth"], labels, n_bootstrap=0)
    assert scores["recall@0.5"] >= 0.95, scores
    assert scores["precision@0.5"] >= 0.95, scores


def test_watershed_recovers_synthetic_cells_from_nuclei(synthetic_monolayer):
    labels = cells_from_boundary(synthetic_monolayer["junction"], SETTINGS, nuclei=synthetic_monolayer["nuclei"])
    scores = score_segmentation(synthetic_monolayer["truth"], labels, n_bootstrap=0)
    assert scores["recall@0.5"] >= 0.95, scores


def test_gaps_in_borders_do_not_merge_cells(synthetic_monolayer):
    # Cut 12-px gaps into the borders every 40 px: basins now leak into their
    # neighbours, and only the distance-based seeds keep the cells apart.
    junction = synthetic_monolayer["junction"].copy()
    yy, xx = np.mgrid[: junction.shape[0], : junction.shape[1]]
    junction[((yy // 40 + xx // 40) % 2 == 0) & (yy % 40 < 12) & (xx % 40 < 12)] *= 0.2
    labels = cells_from_boundary(junction, SETTINGS)
    scores = score_segmentation(synthetic_monolayer["truth"], labels, n_bootstrap=0)
    assert scores["recall@0.5"] >= 0.9, scores


def test_predicted_distance_seeds_cells(synthetic_monolayer):
    from bbbcore.training import distance_target

    truth = synthetic_monolayer["truth"]
    labels = cells_from_boundary(
        synthetic_monolayer["junction"], SETTINGS, cell_distance=distance_target(truth)
    )
    scores = score_segmentation(truth, labels, n_bootstrap=0)
    assert scores["recall@0.5"] >= 0.95 and scores["mean_iou"] > 0.9, scores


def test_labels_tile_the_image_and_drop_specks(synthetic_monolayer):
    labels = cells_from_boundary(synthetic_monolayer["junction"], SETTINGS)
    assert labels.dtype == np.int32
    assert (labels > 0).all()  # neighbours touch; no gaps between cells
    assert np.array_equal(np.unique(labels), np.arange(1, labels.max() + 1))
    assert np.bincount(labels.ravel())[1:].min() >= SETTINGS.min_cell_area


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
    labels = cells_from_boundary(synthetic_monolayer["junction"], SETTINGS, exclude=mask)
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
    finer = WatershedSettings(min_cell_area=1000, marker_erosion=4).scaled(2.0)
    assert finer.min_cell_area == 4000 and finer.marker_erosion == 8 and finer.scale == 2.0
    assert finer.threshold == WatershedSettings.threshold  # not a length: unchanged
    assert finer.scaled(0.5).min_cell_area == 1000  # scaling composes
    with pytest.raises(ValueError, match="unknown watershed setting.*treshold"):
        WatershedSettings.from_dict({"treshold": 0.2})
    with pytest.raises(AttributeError):
        finer.threshold = 0.1  # frozen: one settings object can be shared safely


def test_settings_from_card_take_the_card_values_then_overrides():
    from bbbcore.unet import ModelCard

    card = ModelCard(name="m", version="1", thresholds={"threshold": 0.3, "merge_threshold": 0.2})
    chosen = WatershedSettings.from_card(card, {"merge_threshold": 0.1})
    assert (chosen.threshold, chosen.merge_threshold) == (0.3, 0.1)
    assert chosen.min_cell_area == WatershedSettings.min_cell_area
    assert WatershedSettings.from_dict(chosen.to_dict()) == chosen
    with pytest.raises(ValueError, match="model card m"):
        WatershedSettings.from_card(ModelCard(name="m", version="1", thresholds={"min_area": 5}))


def test_labels_from_maps_at_half_size_map_back_to_the_image(synthetic_monolayer):
    """The labels stage runs on a coarser grid (as the network's) and returns labels at the image's size."""
    from bbbcore.resize import resize

    junction = synthetic_monolayer["junction"].astype(np.float32)
    image = LoadedImage(name="synthetic.tif", image_id="", raw=junction, junction=junction, nuclei=None,
                        pixel_size_um=None)
    maps = {"boundary": resize(junction, 0.5)}
    labels = labels_from_maps(maps, image, SETTINGS.scaled(0.5))
    assert labels.shape == junction.shape and labels.dtype == np.int32
    scores = score_segmentation(synthetic_monolayer["truth"], labels, n_bootstrap=0)
    assert scores["recall@0.5"] >= 0.9 and scores["precision@0.5"] >= 0.9, scores
    # One connected piece per cell after mapping back.
    for cell_id in range(1, labels.max() + 1):
        assert ndi.label(labels == cell_id)[1] <= 1


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


def test_ids_merged_away_do_not_cost_another_flooding(monkeypatch):
    from skimage import segmentation

    from bbbcore import instances
    from bbbcore.instances import WatershedSettings, cells_from_boundary

    probability = np.zeros((60, 90), np.float32)
    probability[:, 59:61] = 1.0  # one real border; the faint line at 30 splits one cell in two
    probability[:, 29:31] = 0.2
    calls = []
    flood = segmentation.watershed
    monkeypatch.setattr(instances.segmentation, "watershed", lambda *a, **k: calls.append(1) or flood(*a, **k))
    settings = WatershedSettings(threshold=0.1, marker_erosion=2, marker_h=0, min_marker_area=10, min_cell_area=50,
                                 merge_threshold=0.5, smoothing_sigma=0)  # marker_h 0: seeds need no flooding
    labels = cells_from_boundary(probability, settings)
    assert labels.max() == 2  # the two halves merged, the id left over has no pixels
    assert len(calls) == 1  # no re-flooding for a cell that no longer exists


@pytest.mark.parametrize("rows", [1, 2, 5, 64])
def test_banded_passes_over_labels_equal_whole_image_ones(monkeypatch, rows):
    from skimage import segmentation

    from bbbcore import instances
    from bbbcore.instances import inner_boundaries, label_areas, shared_borders

    rng = np.random.default_rng(11)
    seeds = np.zeros((41, 57), np.int32)
    seeds[rng.integers(0, 41, 25), rng.integers(0, 57, 25)] = np.arange(1, 26)
    labels = segmentation.watershed(np.zeros((41, 57)), seeds).astype(np.int32)
    labels[10:14, :20] = 0  # no cell: not a border, not a pair
    values = rng.random((41, 57)).astype(np.float32)
    whole_pairs, whole_mean, whole_length = shared_borders(labels, values)  # 41 rows: one band
    monkeypatch.setattr(instances, "BAND_ROWS", rows)
    np.testing.assert_array_equal(label_areas(labels), np.bincount(labels.ravel()))
    np.testing.assert_array_equal(inner_boundaries(labels), segmentation.find_boundaries(labels, mode="inner"))
    pairs, mean, length = shared_borders(labels, values)
    np.testing.assert_array_equal(pairs, whole_pairs)
    np.testing.assert_array_equal(length, whole_length)
    np.testing.assert_allclose(mean, whole_mean, rtol=1e-6)
    assert (shared_borders(labels, None)[1] == 0).all() and len(whole_pairs) > 20


def test_gap_in_the_monolayer_is_no_cell(synthetic_monolayer):
    junction = synthetic_monolayer["junction"].copy()
    truth = synthetic_monolayer["truth"]
    hole = truth == truth[200, 250]  # one cell is missing: a black gap, no junction, no cytoplasm
    intensity = np.where(hole, 0.0, np.clip(junction + 0.3, 0, 1))
    labels = cells_from_boundary(junction, SETTINGS, intensity=intensity)
    assert (labels[hole] == 0).mean() > 0.8
    assert (labels[~hole] > 0).mean() > 0.97


def _cut_cell(truth, nuclei, strength):
    """A boundary map of the truth, plus a line of ``strength`` across one inner cell, away from its nucleus."""
    probability = np.clip(ndi.gaussian_filter(segmentation.find_boundaries(truth, mode="thick").astype(np.float32), 1) * 2, 0, 1)
    areas = np.bincount(truth.ravel())
    areas[np.flatnonzero(touches_edge(truth))] = 0
    cell = int(areas.argmax())
    inside = truth == cell
    centre_row, centre_col = np.unravel_index(np.argmax(np.where(inside, nuclei, -1)), truth.shape)
    last_col = np.flatnonzero(inside.any(axis=0)).max()
    cut = centre_col + int(0.4 * (last_col - centre_col))
    line = inside & (np.abs(np.arange(truth.shape[1]) - cut) <= 2)[None, :]
    probability[line] = strength
    return probability, inside


def _pieces(labels, inside):
    """The labels covering at least a tenth of a truth cell (neighbours' outlines overlap its rim)."""
    ids, counts = np.unique(labels[inside], return_counts=True)
    return ids[counts >= 0.1 * inside.sum()]


@pytest.mark.parametrize("strength, joined", [(0.45, True), (0.9, False)])
def test_nucleus_free_piece_joins_its_cell_unless_the_border_is_sure(synthetic_monolayer, strength, joined):

    truth, nuclei = synthetic_monolayer["truth"], synthetic_monolayer["nuclei"]
    probability, inside = _cut_cell(truth, nuclei, strength)
    split = cells_from_boundary(probability, SETTINGS)
    assert len(_pieces(split, inside)) == 2  # the line cuts the cell without the nuclear check
    labels = cells_from_boundary(probability, SETTINGS, nucleus_mask=find_bright_nuclei(synthetic_monolayer["junction"]))
    pieces = _pieces(labels, inside)
    assert (len(pieces) == 1) == joined, pieces
    if joined:
        assert labels.max() == split.max() - 1  # the cell is whole again, and nothing else merged
        assert score_segmentation(truth, labels, n_bootstrap=0)["recall@0.5"] >= 0.95


def test_nucleus_free_merge_spares_edge_cells_and_images_without_nuclei():
    from bbbcore.instances import merge_nucleus_free

    # A 3 x 3 grid of 30-px cells; the centre one (5) holds a nucleus and has lost
    # its right part to a piece (10). No cell on the edge holds a nucleus.
    labels = (np.arange(90)[:, None] // 30 * 3 + np.arange(90)[None, :] // 30 + 1).astype(np.int32)
    labels[30:60, 50:60] = 10
    probability = np.full(labels.shape, 0.3, np.float32)
    probability[30:60, 49:51] = 0.1  # the faint line between 5 and its piece
    nuclei = np.zeros(labels.shape, bool)
    nuclei[40:50, 35:42] = True
    probability[40:50, 35:42] = 0.0  # inside a cell the network sees no border
    merged = merge_nucleus_free(labels, probability, nuclei, 0.5)
    assert (merged[30:60, 30:60] == merged[45, 38]).all()  # the piece joined the cell with the nucleus
    assert len(np.unique(merged)) == 9  # nucleus-free edge cells keep their shape: theirs may lie outside
    assert not np.array_equal(merged, labels)
    # A mask in which most inner cells hold no nucleus does not show this image's nuclei: nothing merges.
    assert np.array_equal(merge_nucleus_free(labels, probability, np.zeros_like(nuclei), 0.5), labels)
    # Nor does a piece behind a sure border (above the threshold) join.
    assert np.array_equal(merge_nucleus_free(labels, probability + 0.5, nuclei, 0.5), labels)
    # A mask whose blobs lie mostly on borders (where the network sees a line: thick junction vertices, the dots
    # of punctate ZO-1 enlarged from small cells) shows no nuclei: nothing merges, though the piece holds none.
    vertices = nuclei.copy()
    on_border = probability.copy()
    for y, x in ((27, 27), (27, 57)):
        vertices[y:y + 6, x:x + 6] = True
        on_border[y:y + 6, x:x + 6] = 0.6
    assert np.array_equal(merge_nucleus_free(labels, on_border, vertices, 0.5), labels)
    # For a map that is no probability (the classical baseline's ridge filter) every blob counts.
    assert np.array_equal(merge_nucleus_free(labels, on_border, vertices, 0.5, max_nucleus_boundary=1.0), merged)
    assert WatershedSettings.from_dict({"nucleus_max_boundary": 1.0}).nucleus_max_boundary == 1.0


def test_a_colour_image_without_captions_or_saturation_masks_nothing():
    # An unstained red channel but nothing bright in it: no caption pixel at all (the empty case).
    rgb = np.zeros((64, 80, 3), np.uint8)
    rgb[..., 1] = np.random.default_rng(0).integers(0, 120, (64, 80))
    assert not burned_in_mask(rgb).any()
    assert not burned_in_mask(rgb[..., 1]).any()  # gray, nothing saturated
