"""The command line, end to end, on real images with the shipped model."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import tifffile

from bbbcore import config
from bbbcore.cli import main
from bbbcore.unet import BoundaryModel
from tests.conftest import ROOT, need

pytestmark = [pytest.mark.shared, pytest.mark.model]

COLUMNS = ["image", "image_id", "cell_id", "area", "perimeter", "aspect_ratio", "extent",
           "equivalent_diameter", "touches_edge"]


@pytest.fixture(scope="module")
def segmented(tmp_path_factory, shared_data):
    need(config.DEFAULT_MODEL.exists(), "shipped model missing")
    out = tmp_path_factory.mktemp("seg")
    bad = out / "broken.png"
    bad.write_bytes(b"this is not an image")
    image = shared_data / "bbb" / "unlabelled" / "bbb_rgb_01.jpg"
    proc = subprocess.run(
        [sys.executable, "-m", "bbbcore", "segment", str(image), str(bad), "--out", str(out / "result"),
         "--condition", "control", "--dose", "0", "--pixel-size", "0.62"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    return proc, out / "result"


def test_segment_writes_labels_and_table(segmented):
    proc, out = segmented
    labels = tifffile.imread(out / "bbb_rgb_01.labels.tif")
    assert labels.shape == (1024, 1344) and labels.dtype == np.uint16
    table = pd.read_csv(out / "cells.csv")
    assert list(table.columns[: len(COLUMNS)]) == COLUMNS
    assert (table["image"] == "bbb_rgb_01.jpg").all()
    assert set(table["cell_id"]) == set(np.unique(labels)) - {0}
    assert 30 <= len(table) <= 200  # a 10x field holds roughly 50-100 cells
    areas = np.bincount(labels.ravel())
    np.testing.assert_array_equal(table["area"].to_numpy(), areas[table["cell_id"]])
    assert table["touches_edge"].any() and not table["touches_edge"].all()
    assert (table["condition"] == "control").all() and (table["dose"] == 0).all()
    assert (out / "bbb_rgb_01.overlay.png").exists()
    assert table["area_um2"].to_numpy() == pytest.approx(table["area"].to_numpy() * 0.62**2)


def test_segment_writes_summary_rois_and_geojson(segmented):
    import json

    import roifile

    _, out = segmented
    labels = tifffile.imread(out / "bbb_rgb_01.labels.tif")
    rois = roifile.roiread(out / "bbb_rgb_01.rois.zip")
    assert sorted(int(roi.name) for roi in rois) == sorted(set(np.unique(labels)) - {0})
    assert all(roi.coordinates().shape[0] >= 3 for roi in rois)
    features = json.loads((out / "bbb_rgb_01.geojson").read_text())["features"]
    assert len(features) == len(rois)
    summary = pd.read_csv(out / "summary.csv")
    table = pd.read_csv(out / "cells.csv")
    assert summary["n_cells"].iloc[0] == (~table["touches_edge"]).sum()
    assert summary["cells_per_mm2"].iloc[0] > 0
    # Quality figures travel in summary.csv (one image: no experiment median to judge focus by).
    assert 0 <= summary["saturated_share"].iloc[0] < 0.01 and summary["focus_score"].iloc[0] > 0
    assert {"focus_relative", "n_cells_relative", "quality_flags"} <= set(summary.columns)
    assert summary["diameter_used_px"].iloc[0] == 164 and summary["diameter_estimated_px"].iloc[0] > 0  # 10x
    samples = pd.read_csv(out / "samples.csv")
    assert samples["condition"].tolist() == ["control", "control"]
    # interfaces.csv: one row per pair of cells touching along a border, found here from the labels alone.
    interfaces = pd.read_csv(out / "interfaces.csv")
    right = np.c_[labels[:, :-1].ravel(), labels[:, 1:].ravel()]
    down = np.c_[labels[:-1, :].ravel(), labels[1:, :].ravel()]
    pairs = np.vstack([right, down])
    pairs = np.sort(pairs[(pairs[:, 0] != pairs[:, 1]) & (pairs > 0).all(axis=1)], axis=1)
    contact = pd.Series(1, index=pd.MultiIndex.from_arrays(pairs.T)).groupby(level=[0, 1]).size()
    listed = set(zip(interfaces["cell_a"], interfaces["cell_b"]))
    assert listed <= set(contact.index)  # every interface is a pair of touching cells ...
    assert set(contact[contact >= 20].index) <= listed  # ... and every long contact is an interface
    assert (interfaces["image"] == "bbb_rgb_01.jpg").all() and (interfaces["condition"] == "control").all()
    assert interfaces["junction_continuity"].between(0, 1).all() and (interfaces["length_px"] > 0).all()


def test_bad_file_is_named_and_good_files_still_finish(segmented):
    proc, out = segmented
    assert proc.returncode == 1
    assert "broken.png: not a readable image" in proc.stderr
    assert (out / "cells.csv").exists()


def test_scale_bar_is_not_a_cell(segmented):
    _, out = segmented
    labels = tifffile.imread(out / "bbb_rgb_01.labels.tif")
    # The white scale-bar box sits at rows ~990-1012, columns ~1170-1330.
    assert (labels[995:1008, 1180:1320] == 0).mean() > 0.9


def test_a_blank_image_says_its_diameter_is_the_models_default_not_given(tmp_path, capsys):
    import json

    from PIL import Image

    Image.fromarray(np.full((300, 400), 90, np.uint8)).save(tmp_path / "blank.png")
    assert main(["segment", str(tmp_path / "blank.png"), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr()
    diameter = BoundaryModel.load(config.DEFAULT_MODEL).card.diameter_px
    assert f"blank.png: 0 cells (0 at the edge), cell diameter {diameter:.0f} px (model default)" in printed.out
    assert printed.err.count("blank.png: no cells: the image is blank") == 1
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["images"][0]["diameter_source"] == "model default"


@pytest.mark.parametrize("command, option, value, problem", [
    ("segment", "--pixel-size", "-1", "must be a positive number (µm per pixel), got -1"),
    ("segment", "--pixel-size", "nan", "must be a positive number (µm per pixel), got nan"),
    ("segment", "--pixel-size", "0", "must be a positive number"),
    ("segment", "--diameter", "-5", "must be a positive number (cell diameter in pixels), got -5"),
    ("segment", "--diameter", "inf", "must be a positive number"),
    ("segment", "--dose", "-1", "must be zero or more (the dose), got -1"),
    ("segment", "--junction-threshold", "nan", "must be zero or more (an intensity), got nan"),
    ("measure", "--pixel-size", "-0.5", "must be a positive number"),
    ("batch", "--workers", "0", "must be a positive number (worker processes), got 0"),
    ("batch", "--threads-per-worker", "two", "'two' is not a whole number (threads)"),
    ("evaluate", "--bootstrap", "-1", "must be zero or more (resamples), got -1"),
])
def test_a_number_out_of_its_range_is_one_line_before_any_work(command, option, value, problem, tmp_path, capsys):
    """Before: -1 or nan as a pixel size was a traceback, -5 as a diameter a silent estimate, 0 infinite
    densities, -1 resamples an IndexError."""
    argv = {"evaluate": ["evaluate", str(tmp_path / "a.tif"), "--truth", str(tmp_path / "t.png")]}.get(
        command, [command, str(tmp_path / "a.png"), "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit) as stop:
        main([*argv, option, value])
    assert stop.value.code == 2 and not (tmp_path / "out").exists()
    assert f"error: argument {option}: {problem}" in capsys.readouterr().err


def test_evaluate_scores_against_outline(tmp_path, shared_data, capsys):
    from bbbcore.annotations import read_truth_cells
    from bbbcore.pipeline import write_labels_tiff

    truth_path = shared_data / "bbb" / "train" / "bbb_02.outline.png"
    truth = read_truth_cells(truth_path)
    write_labels_tiff(tmp_path / "t.labels.tif", truth)
    assert main(["evaluate", str(tmp_path / "t.labels.tif"), "--truth", str(truth_path), "--bootstrap", "10"]) == 0
    printed = capsys.readouterr().out
    assert "f1@0.5: 1.0" in printed and "n_truth: 23" in printed


def test_evaluate_refuses_mismatched_shapes(tmp_path, shared_data, capsys):
    from bbbcore.pipeline import write_labels_tiff

    write_labels_tiff(tmp_path / "small.labels.tif", np.ones((10, 10), np.int32))
    code = main(["evaluate", str(tmp_path / "small.labels.tif"), "--truth",
                 str(shared_data / "bbb" / "train" / "bbb_02.outline.png")])
    assert code == 2 and "differs from the annotation" in capsys.readouterr().err


def test_missing_model_is_a_clear_error(tmp_path, shared_data, capsys):
    code = main(["segment", str(shared_data / "bbb" / "train" / "bbb_02.png"), "--out", str(tmp_path),
                 "--model", str(tmp_path / "none.keras")])
    assert code == 2 and "none.keras: model file not found" in capsys.readouterr().err


def test_train_with_pseudo_labelled_images(tmp_path, shared_data, capsys):
    # Two tiny steps: the unannotated sample images join the annotated one, labelled by the shipped model.
    out = tmp_path / "student.keras"
    args = ["train", str(shared_data / "bbb" / "train"), "--images", "bbb_02", "--out", str(out),
            "--steps", "2", "--batch", "2", "--patch", "32", "--base-width", "4", "--depth", "2",
            "--pseudo-label", str(ROOT / "sample_data")]
    assert main(args) == 2
    assert "--pseudo-label needs --teacher" in capsys.readouterr().err
    assert main(args + ["--teacher", str(config.DEFAULT_MODEL), "--pseudo-keep", "0"]) == 2
    assert "--pseudo-keep must lie in (0, 1]" in capsys.readouterr().err
    assert main(args + ["--teacher", str(config.DEFAULT_MODEL)]) == 0
    printed = capsys.readouterr().out
    assert "bbb_rgb_01.jpg (pseudo-labels)" in printed and "bbb_02.png" in printed
    from bbbcore.unet import read_card

    card = read_card(out)
    assert "pseudo-labelled by bbb_unet version" in card.training["data"] and "(bbb_unet.keras" in card.training["data"]
    assert len(card.training["images"]) == 6  # bbb_02 + the five sample images
    assert card.flips == 2  # the default test-time flip averaging is written into the card


def test_train_with_generated_images_from_a_models_weights(tmp_path, shared_data, capsys):
    from bbbcore.unet import read_card

    start = tmp_path / "start.keras"
    base = ["train", str(shared_data / "bbb" / "train"), "--images", "bbb_02", "--steps", "1", "--batch", "2",
            "--patch", "32", "--base-width", "4", "--depth", "2"]
    assert main(base + ["--out", str(start)]) == 0
    out = tmp_path / "tuned.keras"
    args = base + ["--out", str(out), "--start-from", str(start), "--generated", "3"]
    assert main(args + ["--generated-share", "1.5"]) == 2
    assert "--generated-share must lie between 0 and 1" in capsys.readouterr().err
    assert main(args + ["--generated-textures", "dotted"]) == 2
    assert "--generated-textures: no texture dotted; choose from continuous, punctate" in capsys.readouterr().err
    assert main(args + ["--generated-diameters", "40", "20"]) == 2
    assert "--generated-diameters: expected 0 < LOW <= HIGH, got 40 20" in capsys.readouterr().err
    assert main(args + ["--generated-textures", "punctate", "--generated-diameters", "12", "60"]) == 0
    card = read_card(out)
    assert "3 generated junction images" in card.training["data"] and "textures punctate" in card.training["data"]
    assert "native cell diameters 12-60 px" in card.training["data"]
    assert card.training["images"] == ["bbb_02.png", "3 generated images"]
    assert card.training["started_from"] == str(start)
    assert card.cell_diameter_px == read_card(start).cell_diameter_px  # the scale the network knows


def test_segment_writes_its_manifest_and_methods(tmp_path):
    import json
    import subprocess
    import sys

    from tests.conftest import ROOT, SHARED, need

    image = SHARED / "bbb" / "unlabelled" / "bbb_rgb_01.jpg"
    need(image.exists(), f"shared data missing: {image}")
    subprocess.run([sys.executable, "-m", "bbbcore", "segment", str(image), "--out", str(tmp_path), "--diameter",
                    "150"], cwd=ROOT, check=True, capture_output=True, timeout=300)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["model"]["name"] == "bbb_unet" and len(manifest["model"]["sha256"]) == 64
    assert manifest["settings"]["diameter_px"] == 150.0
    assert manifest["images"] == [{"image": "bbb_rgb_01.jpg", "file": str(image), "pixel_size_um": None,
                                   "pixel_size_source": None, "diameter_used_px": 150.0, "diameter_source": "given"}]
    assert (tmp_path / "methods.txt").read_text().startswith("Cells were segmented in 1 ZO-1 image ")
