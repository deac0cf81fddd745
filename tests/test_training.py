"""bbbcore.training: targets, sampler, and two-step smoke runs (never a real training)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage import segmentation

from bbbcore.training import (
    PatchSampler,
    TrainingImage,
    confident_cells,
    distance_target,
    faded_junctions,
    targets_from_cells,
    train,
)
from bbbcore.unet import BoundaryModel, ModelCard


def tiny_card(name="tiny"):
    return ModelCard(name=name, version="0", depth=2, base_width=4, input_scale=0.5)


def test_targets_only_known_where_annotated():
    cells = np.zeros((60, 60), np.int32)
    cells[10:30, 10:30] = 1
    cells[10:30, 30:50] = 2
    border, known = targets_from_cells(cells, border_width=3, known_margin=2)
    assert border[20, 29] and border[20, 30] and border[10, 20]  # shared and outer borders
    assert not border[20, 20]  # cell interior
    assert not known[50, 50] and known[20, 20] and known[9, 20]  # unknown stays out of the loss
    distance = distance_target(cells)
    assert distance.max() == pytest.approx(1.0) and distance[0, 0] == 0
    assert distance[20, 20] > distance[12, 20] > 0


def test_sampler_is_reproducible_and_augments():
    rng = np.random.default_rng(0)
    image = TrainingImage("x", rng.random((80, 90), dtype=np.float32), np.zeros((80, 90), np.float32),
                          np.zeros((80, 90), np.float32), np.ones((80, 90), np.float32))
    a = PatchSampler([image], patch=32, seed=5).sample(3)
    b = PatchSampler([image], patch=32, seed=5).sample(3)
    c = PatchSampler([image], patch=32, seed=6).sample(3)
    assert a[0].shape == (3, 32, 32, 1) and a[1].shape == (3, 32, 32, 2) and a[2].shape == (3, 32, 32, 1)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])


def test_faded_junctions_weaken_only_the_junction_line():
    # A grid of blurred bright lines on a dim cytoplasm, as the ZO-1 channel shows.
    rng = np.random.default_rng(0)
    border = np.zeros((96, 96), np.float32)
    border[::24, :] = border[:, ::24] = 1
    image = (0.2 + 0.6 * np.clip(ndi.gaussian_filter(border, 1.0) * 3, 0, 1)).astype(np.float32)
    image += rng.normal(0, 0.01, image.shape).astype(np.float32)
    faded = faded_junctions(image, border, np.random.default_rng(3))
    line, far = border > 0.5, ~ndi.binary_dilation(border > 0.5, iterations=4)
    np.testing.assert_array_equal(faded[far], image[far])  # cytoplasm untouched
    assert np.all(faded <= image + 1e-6)
    drop = (image - faded)[line]
    assert drop.max() > 0.2  # somewhere the line is strongly faded ...
    assert np.percentile(drop, 5) < 0.25 * drop.max()  # ... elsewhere much less: the fading varies
    again = faded_junctions(image, border, np.random.default_rng(3))
    np.testing.assert_array_equal(faded, again)


def test_sampler_fades_junctions_when_asked():
    cells = np.zeros((120, 120), np.int32)
    cells[:60, :60], cells[:60, 60:], cells[60:, :60], cells[60:, 60:] = 1, 2, 3, 4
    border, known = targets_from_cells(cells)
    image = (0.2 + 0.6 * ndi.gaussian_filter(border.astype(np.float32), 1.0)).astype(np.float32)
    item = TrainingImage("grid", image, border.astype(np.float32), distance_target(cells), known.astype(np.float32))
    plain = PatchSampler([item], patch=48, seed=1, zoom_range=(1.0, 1.0))
    faded = PatchSampler([item], patch=48, seed=1, zoom_range=(1.0, 1.0), dim_junctions=1.0)
    x_plain, y_plain, _ = plain.sample(8)
    x_faded, y_faded, _ = faded.sample(8)
    on_line = y_faded[..., 0] > 0.5
    # Same patches and targets apart from the fading draws; the junction contrast drops.
    contrast = lambda x, y: x[..., 0][y[..., 0] > 0.5].mean() - x[..., 0][y[..., 0] < 0.5].mean()  # noqa: E731
    assert on_line.any()
    assert contrast(x_faded, y_faded) < contrast(x_plain, y_plain)


def test_confident_cells_keep_the_surest_inner_cells():
    # A 3 x 3 grid of cells inside an empty margin; the middle row has crisp
    # borders (0.9), the others fainter ones (0.2 + 0.01 x id).
    labels = np.zeros((90, 90), np.int32)
    for i in range(3):
        for j in range(3):
            labels[30 * i : 30 * i + 30, 30 * j : 30 * j + 30] = 3 * i + j + 1
    labels = np.pad(labels, 5)
    band = segmentation.find_boundaries(labels, mode="thick") & (labels > 0)
    per_cell = np.where(np.isin(np.arange(10), [4, 5, 6]), 0.9, 0.2 + 0.01 * np.arange(10))
    probability = np.where(band, per_cell[labels], 0.0).astype(np.float32)
    kept = confident_cells(labels, probability, keep=0.5)
    # The surest half (rounded up): the crisp row and the two surest faint cells.
    assert set(np.unique(kept)) - {0} == {4, 5, 6, 8, 9}
    np.testing.assert_array_equal(kept[kept > 0], labels[kept > 0])  # kept cells are unchanged
    # Cells cut by the image edge are never kept, however sure.
    edge = np.zeros((40, 60), np.int32)
    edge[:, :30], edge[:, 30:] = 1, 2
    assert not confident_cells(edge, np.ones((40, 60), np.float32), keep=1.0).any()


@pytest.mark.shared
def test_two_step_training_on_bbb_outlines_and_resume(tmp_path, shared_data):
    from bbbcore.training import bbb_dataset

    images = bbb_dataset(shared_data / "bbb" / "train", scale=0.25, names=["bbb_02"])
    assert images[0].known.mean() < 0.9  # partial annotation: much is unknown
    out = tmp_path / "m.keras"
    logs = []
    train(images, out=out, card=tiny_card(), steps=2, batch=2, patch=32, steps_per_epoch=1,
          checkpoint_dir=tmp_path / "ck", progress=False, log=logs.append)
    model = BoundaryModel.load(out)
    assert model.card.training["steps"] == 2 and len(model.card.training["loss_history"]) == 2
    assert all(np.isfinite(h["loss"]) for h in model.card.training["loss_history"])
    assert json.loads((tmp_path / "ck" / "state.json").read_text())["step"] == 2
    # Running the same job again resumes from its checkpoint instead of restarting.
    logs.clear()
    train(images, out=out, card=tiny_card(), steps=2, batch=2, patch=32, steps_per_epoch=1,
          checkpoint_dir=tmp_path / "ck", progress=False, log=logs.append)
    assert any("resuming from step 2" in line for line in logs)


@pytest.mark.shared
def test_two_step_training_on_dense_isbi_labels(tmp_path, shared_data):
    from bbbcore.training import isbi_dataset

    images = isbi_dataset(shared_data / "isbi2012" / "train", scale=0.5, slices=["00", "01"])
    assert len(images) == 2 and images[0].known.min() == 1.0  # dense: every pixel known
    assert 0.05 < images[0].border.mean() < 0.5
    model = train(images, out=tmp_path / "isbi.keras", card=tiny_card("isbi"), steps=2, batch=2, patch=32,
                  steps_per_epoch=1, progress=False, log=lambda *_: None)
    maps = model.predict_maps(images[0].image)
    assert maps["boundary"].shape == images[0].image.shape


def test_a_training_set_knows_its_cell_diameter(synthetic_monolayer):
    from bbbcore.features import cells_table
    from bbbcore.training import _training_image, median_cell_diameter, training_diameter

    truth = synthetic_monolayer["truth"]
    table = cells_table(truth)
    expected = float(table.loc[~table["touches_edge"], "equivalent_diameter"].median())
    assert median_cell_diameter(truth) == pytest.approx(expected, rel=0.02)
    images = [_training_image("a", synthetic_monolayer["junction"], truth, scale=0.5),
              _training_image("b", synthetic_monolayer["junction"], truth * 0, scale=0.5)]  # nothing annotated
    assert images[0].cell_diameter_px == pytest.approx(expected, rel=0.02) and images[1].cell_diameter_px is None
    assert training_diameter(images) == images[0].cell_diameter_px


def test_generated_images_reach_the_network_at_the_training_diameter_with_exact_dense_truth():
    from bbbcore.training import GENERATED_WORKING_SPREAD, generated_dataset

    images = generated_dataset(6, training_diameter=120, input_scale=0.5, seed=4, textures=("punctate", "frayed"),
                               shape=(192, 224))
    assert len(images) == 6
    natives = []
    for im in images:
        assert im.image.shape == im.border.shape == im.known.shape == (192, 224)
        assert im.known.min() == 1.0  # every pixel's truth is known
        assert 0.0 <= im.image.min() and im.image.max() <= 1.0
        assert 0.03 < im.border.mean() < 0.4
        # Cells arrive at about the training diameter whatever their native size (a few cells: some slack),
        # and reach the network at input_scale of it, as the annotated images' do.
        low, high = GENERATED_WORKING_SPREAD
        assert 0.7 * low * 120 < im.cell_diameter_px < 1.3 * high * 120, im.name
        assert "punctate" in im.name or "frayed" in im.name
        natives.append(float(im.name.split(", ")[1].split(" px")[0]))
    assert min(natives) < 120 < max(natives)  # drawn both smaller and larger than they reach the network
    again = generated_dataset(6, training_diameter=120, input_scale=0.5, seed=4, textures=("punctate", "frayed"),
                              shape=(192, 224))
    assert all(np.array_equal(a.image, b.image) for a, b in zip(images, again))  # reproducible from the seed
    small = generated_dataset(6, training_diameter=120, input_scale=0.5, seed=4, shape=(96, 96),
                              native_diameters=(12, 30))
    assert all(12 <= float(im.name.split(", ")[1].split(" px")[0]) <= 30 for im in small)


def test_the_border_target_lies_on_the_generated_junction_line():
    from bbbcore.training import generated_dataset

    [image] = generated_dataset(1, training_diameter=140, input_scale=0.5, seed=11, textures=("continuous",),
                                shape=(256, 256))
    on_border = image.image[image.border > 0.5].mean()
    inside = image.image[(image.border < 0.5) & (image.distance > 0.5)].mean()
    assert on_border > 1.5 * inside


def test_training_can_start_from_a_models_weights(tmp_path):
    from bbbcore.training import generated_dataset

    images = generated_dataset(2, training_diameter=60, input_scale=0.5, seed=0, shape=(96, 96))
    first = train(images, out=tmp_path / "a.keras", card=tiny_card(), steps=1, batch=2, patch=32,
                  progress=False, log=lambda *_: None)
    # Zero steps from a's weights: the same network, so the same maps.
    second = train(images, out=tmp_path / "b.keras", card=tiny_card(), steps=0, batch=2, patch=32,
                   start_from=tmp_path / "a.keras", progress=False, log=lambda *_: None)
    np.testing.assert_allclose(second.predict_maps(images[0].image)["boundary"],
                               first.predict_maps(images[0].image)["boundary"], atol=1e-5)
    assert second.card.training["started_from"] == str(tmp_path / "a.keras")
    fresh = train(images, out=tmp_path / "c.keras", card=tiny_card(), steps=0, batch=2, patch=32,
                  progress=False, log=lambda *_: None)
    assert not np.allclose(fresh.predict_maps(images[0].image)["boundary"],
                           first.predict_maps(images[0].image)["boundary"], atol=1e-3)
