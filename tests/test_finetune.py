"""bbbcore.finetune and ``python -m bbbcore finetune``: the check set, the refusal rule, tiny smoke runs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from bbbcore.export import labels_tiff_bytes
from bbbcore.finetune import (
    MAX_F1_LOSS,
    Example,
    FinetuneError,
    TeachingJob,
    annotated_diameter,
    examples_from_files,
    finetune,
    split_check_cells,
    training_images,
)
from bbbcore.io import load_image
from bbbcore.unet import ModelCard
from tests.conftest import ROOT
from tests.synthetic import png_bytes, voronoi_monolayer


@pytest.fixture(scope="module")
def monolayer_files(tmp_path_factory):
    """Two generated monolayers as PNG files with labels TIFFs; in the second only half the cells annotated."""
    folder = tmp_path_factory.mktemp("corrected")
    images, labels = [], []
    for seed in (1, 2):
        layer = voronoi_monolayer(shape=(192, 256), n_cells=16, seed=seed)
        truth = layer["truth"]
        if seed == 2:
            truth = np.where(truth % 2 == 0, truth, 0)  # the other cells not annotated (0)
        images.append(folder / f"field_{seed}.png")
        images[-1].write_bytes(png_bytes(np.round(layer["junction"] * 255).astype(np.uint8)))
        labels.append(folder / f"field_{seed}.labels.tif")
        labels[-1].write_bytes(labels_tiff_bytes(truth))
    return images, labels


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory, monolayer_files):
    """A tiny U-Net (depth 2, 4 filters) trained one step, as the parent model."""
    from bbbcore.training import train

    out = tmp_path_factory.mktemp("base") / "tiny.keras"
    card = ModelCard(name="tiny", version="1.0", depth=2, base_width=4, input_scale=0.5, cell_diameter_px=60.0)
    examples = examples_from_files(*monolayer_files)
    train(training_images(examples, card), out=out, card=card, steps=1, batch=2, patch=32, steps_per_epoch=1,
          progress=False, log=lambda line: None)
    return out


def test_check_cells_are_a_share_of_the_annotated_inner_cells_kept_out_of_learning(monolayer_files):
    examples = examples_from_files(*monolayer_files)
    train, check = split_check_cells(examples, share=0.25, seed=4)
    inner = 0
    for example, learn, held in zip(examples, train, check):
        assert not (learn.labels.astype(bool) & held.labels.astype(bool)).any()  # disjoint
        np.testing.assert_array_equal(np.maximum(learn.labels, held.labels), example.labels)  # nothing lost
        edge = set(np.unique(np.concatenate([example.labels[0], example.labels[-1], example.labels[:, 0],
                                             example.labels[:, -1]])))
        assert not set(np.unique(held.labels)) - {0} & edge  # edge cells are cut off: never check cells
        inner += len(set(np.unique(example.labels)) - edge - {0})
    n_check = sum(len(set(np.unique(h.labels)) - {0}) for h in check)
    assert n_check == round(0.25 * inner) > 0
    again, _ = split_check_cells(examples, share=0.25, seed=4)
    assert all(np.array_equal(a.labels, b.labels) for a, b in zip(again, train))  # reproducible


def test_images_are_learned_at_the_model_s_cell_size_and_never_over_check_cells(monolayer_files):
    examples = examples_from_files(*monolayer_files)
    card = ModelCard(name="t", version="1", input_scale=0.5, cell_diameter_px=120.0)
    train, check = split_check_cells(examples, share=0.3, seed=0)
    images = training_images(train, card, avoid=check)
    diameter = annotated_diameter(examples[0].labels)
    scale = 0.5 * 120.0 / annotated_diameter(train[0].labels)
    assert images[0].image.shape == (round(192 * scale), round(256 * scale))
    assert 30 < diameter < 90
    # No known pixel lies on a check cell (resized: the check cells' cores, well inside).
    from scipy import ndimage as ndi

    from bbbcore.resize import resize

    core = ndi.binary_erosion(check[0].labels > 0, iterations=3)
    assert not (resize(core.astype(np.float32), scale) > 0.99)[images[0].known > 0.5].any()
    unannotated = resize((examples[1].labels == 0).astype(np.float32), 0.5 * 120 / annotated_diameter(
        train[1].labels)) > 0.99
    assert images[1].known[ndi.binary_erosion(unannotated, iterations=4)].max() == 0  # unknown stays unknown


def test_bad_inputs_get_one_line_each(monolayer_files, tmp_path):
    images, labels = monolayer_files
    with pytest.raises(FinetuneError, match=r"2 image\(s\) but 1 labels file"):
        examples_from_files(images, labels[:1])
    wrong = tmp_path / "small.labels.tif"
    wrong.write_bytes(labels_tiff_bytes(np.ones((10, 10), np.int32)))
    with pytest.raises(FinetuneError, match=r"small\.labels\.tif: 10 x 10 px, but field_1\.png is 256 x 192"):
        examples_from_files(images[:1], [wrong])
    empty = tmp_path / "empty.labels.tif"
    empty.write_bytes(labels_tiff_bytes(np.zeros((192, 256), np.int32)))
    with pytest.raises(FinetuneError, match="no cell"):
        examples_from_files(images[:1], [empty])
    text = tmp_path / "notes.labels.tif"
    text.write_text("not a tiff")
    with pytest.raises(FinetuneError, match=r"notes\.labels\.tif: not a labels image"):
        examples_from_files(images[:1], [text])


@pytest.mark.model
def test_a_tiny_finetune_is_scored_against_its_parent_kept_or_refused_and_can_be_cancelled(
        tiny_base, monolayer_files, tmp_path, monkeypatch):
    import bbbcore.finetune as module
    from bbbcore.training import TrainingCancelled
    from bbbcore.unet import read_card

    examples = examples_from_files(*monolayer_files)
    stages = []
    report = finetune(tiny_base, examples, out=tmp_path / "taught.keras", steps=2, batch=2, patch=32,
                      check_share=0.3, on_progress=lambda stage, fraction: stages.append((stage, fraction)),
                      log=lambda line: None)
    assert [s for s, _ in stages][0] == "scoring the parent" and stages[-1] == ("scoring the new model", 1.0)
    assert ("training", 0.5) in stages and ("training", 1.0) in stages
    assert report.n_check_cells > 0 and report.n_train_cells > report.n_check_cells
    assert report.accepted == (report.score["f1@0.5"] >= report.parent_score["f1@0.5"] - MAX_F1_LOSS)
    if report.accepted:
        card = read_card(tmp_path / "taught.keras")
        assert card.training["parent"]["name"] == "tiny" and card.training["images"] == ["field_1.png", "field_2.png"]
        assert card.metrics["check_set"]["score"] == report.score and (tmp_path / "taught.onnx").exists()
        assert card.cell_diameter_px == 60.0  # the parent's scale is kept
    assert not (tmp_path / "taught.ckpt").exists()

    # A new model scoring more than 0.02 below its parent is refused: nothing written.
    scores = iter([{"f1@0.5": 0.80}, {"f1@0.5": 0.77}])
    monkeypatch.setattr(module, "check_score", lambda *a, **k: next(scores))
    refused = finetune(tiny_base, examples, out=tmp_path / "worse.keras", steps=1, batch=2, patch=32,
                       log=lambda line: None)
    assert not refused.accepted and refused.model_path is None and not (tmp_path / "worse.keras").exists()
    assert refused.line().startswith(f"F1 at IoU 0.5 on {refused.n_check_cells} check cells it did not learn from: "
                                     "0.770, its parent tiny 1.0 0.800 (-0.030); refused")
    scores = iter([{"f1@0.5": 0.80}, {"f1@0.5": 0.785}])  # within 0.02: kept
    assert finetune(tiny_base, examples, out=tmp_path / "close.keras", steps=1, batch=2, patch=32,
                    log=lambda line: None).accepted

    monkeypatch.undo()
    with pytest.raises(TrainingCancelled):
        finetune(tiny_base, examples, out=tmp_path / "stopped.keras", steps=50, batch=2, patch=32,
                 should_stop=lambda: True, log=lambda line: None)
    assert not (tmp_path / "stopped.keras").exists() and not (tmp_path / "stopped.ckpt").exists()


@pytest.mark.model
def test_the_command_registers_the_model_in_the_data_folder_with_its_progress(tiny_base, monolayer_files, tmp_path):
    from bbbcore.registry import registered_models

    images, labels = monolayer_files
    progress = tmp_path / "progress.json"
    env = {"BBB_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "bbbcore", "finetune", "--model", str(tiny_base), "--images", *map(str, images),
               "--labels", *map(str, labels), "--steps", "2", "--check-share", "0.3", "--progress", str(progress)]
    done = subprocess.run([*command, "--register", "lab-model"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    line = next(x for x in done.stdout.splitlines() if x.startswith("F1 at IoU 0.5 on "))
    state = json.loads(progress.read_text())
    assert state["stage"] == "done" and state["report"]["accepted"] == (done.returncode == 0)
    if done.returncode == 0:
        assert registered_models(tmp_path / "data") == [tmp_path / "data" / "models" / "lab-model.keras"]
        assert "kept" in line
    else:
        assert done.returncode == 1 and "refused" in line and registered_models(tmp_path / "data") == []
    taken = subprocess.run([*command, "--register", "bbb_unet"], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=600)
    assert taken.returncode == 2 and taken.stderr.strip() == (
        "error: bbb_unet: the name of a shipped model; choose another (the shipped one is never replaced)")


def test_examples_hold_their_loaded_image(monolayer_files):
    example = examples_from_files(*monolayer_files)[0]
    assert isinstance(example, Example) and example.name == "field_1.png"
    np.testing.assert_array_equal(example.image.junction, load_image(monolayer_files[0][0]).junction)


@pytest.mark.model
def test_a_teaching_job_runs_in_its_own_process_reports_and_can_be_cancelled(tiny_base, monolayer_files, tmp_path):
    import time

    from bbbcore.registry import registered_models

    examples = [(e.name, e.image, e.labels) for e in examples_from_files(*monolayer_files)]
    job = TeachingJob.start(tiny_base, examples, name="lab-tiny", data_folder=tmp_path, steps=2)
    assert job.model_path == tmp_path / "models" / "lab-tiny.keras" and job.state()["running"]
    deadline = time.time() + 300
    while job.state()["running"] and time.time() < deadline:
        time.sleep(0.5)
    state = job.state()
    assert not state["running"] and state["stage"] == "done" and state["problem"] is None
    assert state["report"]["images"] == ["field_1.png", "field_2.png"]  # their names, not the job's files
    assert (registered_models(tmp_path) == [job.model_path]) == state["report"]["accepted"]

    slow = TeachingJob.start(tiny_base, examples, name="lab-slow", data_folder=tmp_path, steps=100_000)
    while slow.state()["stage"] != "training" and time.time() < deadline:
        time.sleep(0.2)
    # A reloaded page (a new session) finds the job under way by its folder, and can cancel it by its id.
    found = TeachingJob.latest_running(tmp_path)
    assert found is not None and found.process is None and (found.name, found.pid) == ("lab-slow", slow.process.pid)
    assert found.state()["running"] and found.state()["stage"] == "training"
    found.cancel()
    assert slow.process.poll() is not None and TeachingJob.latest_running(tmp_path) is None
    assert found.state() == {"running": False, "stage": "training", "fraction": found.state()["fraction"],
                             "report": None, "problem": "cancelled: nothing was kept"}
    assert not slow.model_path.exists() and slow.model_path not in registered_models(tmp_path)
    with pytest.raises(FinetuneError, match="no image has cells corrected or accepted"):
        TeachingJob.start(tiny_base, [], name="lab-none", data_folder=tmp_path)
