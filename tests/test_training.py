"""bbbcore.training: targets, sampler, and two-step smoke runs (never a real training)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bbbcore.training import PatchSampler, TrainingImage, distance_target, targets_from_cells, train
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
    maps = model.predict_maps(images[0].image, None)
    assert maps["boundary"].shape == images[0].image.shape
