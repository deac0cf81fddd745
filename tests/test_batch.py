"""bbbcore.batch and ``python -m bbbcore batch`` on a LocalCluster of 2 workers: the same cells as
``segment``, resumed without recomputing, a bad file failing alone, no duplicates."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from bbbcore.batch import CACHE_FOLDER, BatchSettings, expand_inputs, run_batch
from tests.conftest import ROOT
from tests.synthetic import png_bytes, voronoi_monolayer

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Three small generated monolayers in nested folders, and a text file named like an image."""
    folder = tmp_path_factory.mktemp("plate")
    (folder / "well_b").mkdir()
    paths = []
    for index, seed in enumerate((11, 12, 13)):
        layer = voronoi_monolayer(shape=(256, 320), n_cells=14, seed=seed)
        path = folder / ("well_b" if index == 2 else ".") / f"control_{index + 1:02d}.png"
        path.write_bytes(png_bytes(np.round(layer["junction"] * 255).astype(np.uint8)))
        paths.append(path.resolve())
    (folder / "notes.png").write_text("well,condition\nA1,control\n")
    return folder, paths


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                           memory_limit=None, silence_logs=40)
    with Client(cluster) as started:
        yield started
    cluster.close()


def test_inputs_are_files_folders_and_globs_once_each(images, tmp_path):
    folder, paths = images
    found, problems = expand_inputs([folder, paths[0], str(folder / "well_b" / "*.png"), tmp_path / "none"])
    assert found == sorted([*paths, (folder / "notes.png").resolve()], key=str)
    assert problems == [f"{tmp_path / 'none'}: no image file here (give files, folders or a glob such as "
                        "'plate1/*.tif')"]
    (folder / CACHE_FOLDER).mkdir(exist_ok=True)
    (folder / CACHE_FOLDER / "labels.tif").write_bytes(b"")  # a cache's files are not inputs
    assert expand_inputs([folder])[0] == found


def test_the_listing_opens_each_file_once_and_the_plan_reads_nothing_again(images, monkeypatch):
    import bbbcore.io
    from bbbcore.batch import list_inputs, plan

    folder, paths = images
    opened = []
    real = bbbcore.io.image_names
    monkeypatch.setattr(bbbcore.io, "image_names", lambda path, **kw: opened.append(path) or real(path, **kw))
    listing = list_inputs([folder])
    assert sorted(map(str, opened)) == sorted(map(str, listing.files))  # each file once
    # The text file named like an image fails when its task loads it, alone (the next test).
    assert listing.image_names == [p.name for p in sorted([*paths, folder / "notes.png"], key=str)]
    assert not listing.problems and not listing.missing
    from bbbcore.metadata import sample_sheet_for

    tasks = plan(listing, BatchSettings(), sample_sheet_for(listing.image_names), options_for=lambda sample: {})
    assert len(opened) == len(listing.files)  # planning reads nothing again
    assert [t.name for t in tasks] == listing.image_names and len({t.key for t in tasks}) == 4


def test_a_batch_gives_segment_s_cells_fails_a_bad_file_alone_and_resumes_without_recomputing(images, client,
                                                                                                tmp_path):
    folder, paths = images
    out = tmp_path / "out"
    said = []
    report = run_batch([folder], out, BatchSettings(), client=client, progress=False, say=said.append)
    assert sorted(report.done) == ["control_01.png", "control_02.png", "control_03.png"] and not report.skipped
    assert list(report.failed) == ["notes.png"] and report.failed["notes.png"].startswith("notes.png: ")
    assert said[-1] == f"error: {report.failed['notes.png']}"  # said once, with the file's name
    failures = pd.read_csv(out / "failures.csv")
    assert failures["image"].tolist() == ["notes.png"]

    # The same images through `segment`: the same cells, column for column.
    segmented = tmp_path / "segment"
    subprocess.run([sys.executable, "-m", "bbbcore", "segment", *map(str, paths), "--out", str(segmented)],
                   cwd=ROOT, check=True, capture_output=True, timeout=600)
    batch_cells = pd.read_csv(out / "cells.csv").sort_values(["image", "cell_id"], ignore_index=True)
    segment_cells = pd.read_csv(segmented / "cells.csv").sort_values(["image", "cell_id"], ignore_index=True)
    assert list(batch_cells.columns) == list(segment_cells.columns)
    pd.testing.assert_frame_equal(batch_cells, segment_cells)
    assert sorted(p.name for p in out.glob("*.labels.tif")) == sorted(p.name for p in segmented.glob("*.labels.tif"))
    assert pd.read_parquet(out / "cells.parquet").shape == batch_cells.shape
    key = ["image", "cell_a", "cell_b"]
    pd.testing.assert_frame_equal(pd.read_csv(out / "interfaces.csv").sort_values(key, ignore_index=True),
                                  pd.read_csv(segmented / "interfaces.csv").sort_values(key, ignore_index=True))

    # Again: nothing recomputed. One image's result removed: that one alone runs again, no duplicate rows.
    again = run_batch([folder], out, BatchSettings(), client=client, progress=False, say=lambda line: None)
    assert again.done == [] and sorted(again.skipped) == sorted(report.done)
    import shutil

    [lost] = [p for p in (out / CACHE_FOLDER).iterdir() if p.is_dir()][:1]
    shutil.rmtree(lost)
    resumed = run_batch([folder], out, BatchSettings(), client=client, progress=False, say=lambda line: None)
    assert len(resumed.done) == 1 and len(resumed.skipped) == 2
    cells = pd.read_csv(out / "cells.csv")
    assert not cells.duplicated(["image", "cell_id"]).any() and len(cells) == len(batch_cells)
    # Other settings are other results: a given diameter runs every image again.
    other = run_batch([paths[0]], tmp_path / "other", BatchSettings(diameter_px=40.0), client=client,
                      progress=False, say=lambda line: None)
    assert other.done == ["control_01.png"] and (tmp_path / "other" / "manifest.json").exists()


def test_the_command_runs_its_own_local_cluster_and_writes_manifest_and_methods(images, tmp_path):
    import json
    import os

    from bbbcore.store import Store

    folder, paths = images
    out = tmp_path / "cli"
    command = [sys.executable, "-m", "bbbcore", "batch", str(folder / "*.png"), "--out", str(out), "--workers", "2",
               "--threads-per-worker", "1", "--no-progress", "--exports", "--condition", "control",
               "--experiment", "plate 1"]
    env = {**os.environ, "BBB_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 1  # notes.png
    assert done.stdout.strip().splitlines()[-2].startswith("done: 2 analysed, 0 already done, 1 failed; ")
    assert done.stdout.strip().splitlines()[-1].startswith("stored 2 image(s) in experiment 'plate 1'")
    assert sum("notes.png" in line for line in done.stdout.splitlines()) == 1
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["name"] == "bbb_unet" and len(manifest["model"]["sha256"]) == 64
    assert [i["image"] for i in manifest["images"]] == ["control_01.png", "control_02.png"]
    assert {i["diameter_source"] for i in manifest["images"]} == {"estimated"}
    assert (out / "methods.txt").read_text().startswith("Cells were segmented in 2 ZO-1 images")
    assert {p.name for p in out.glob("control_01.*")} == {"control_01.labels.tif", "control_01.rois.zip",
                                                         "control_01.geojson", "control_01.overlay.png"}
    assert set(pd.read_csv(out / "cells.csv")["condition"]) == {"control"}

    # The client stored them; the dashboard's store has the same cells. Again: nothing computed or stored twice.
    store = Store(tmp_path / "data")
    experiment = store.experiment_id("plate 1")
    stored = store.cells(experiment).sort_values(["image", "cell_id"], ignore_index=True)
    written = pd.read_csv(out / "cells.csv").sort_values(["image", "cell_id"], ignore_index=True)
    assert stored["image"].tolist() == written["image"].tolist()
    np.testing.assert_allclose(stored["area"], written["area"])
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert "done: 0 analysed, 2 already done, 1 failed" in again.stdout
    assert "stored 0 image(s) in experiment 'plate 1'" in again.stdout
    assert len(store.images(experiment)) == 2


def test_a_copy_under_another_name_gets_its_own_rows_from_one_computation(images, client, tmp_path):
    folder, paths = images
    copies = tmp_path / "copies"
    copies.mkdir()
    for name in ("a.png", "b.png"):
        (copies / name).write_bytes(paths[0].read_bytes())
    report = run_batch([copies], tmp_path / "out", BatchSettings(), client=client, progress=False,
                       say=lambda line: None)
    assert sorted(report.done + report.skipped) == ["a.png", "b.png"] and not report.failed
    assert len([p for p in (tmp_path / "out" / CACHE_FOLDER).iterdir() if p.is_dir()]) == 1  # one result
    cells = pd.read_csv(tmp_path / "out" / "cells.csv")
    a, b = (cells[cells["image"] == name].drop(columns=["image", "condition"]).reset_index(drop=True) for name in ("a.png", "b.png"))
    assert len(a) > 5
    pd.testing.assert_frame_equal(a, b)
    assert sorted(p.name for p in (tmp_path / "out").glob("*.labels.tif")) == ["a.labels.tif", "b.labels.tif"]


def test_each_worker_loads_the_model_once_with_its_own_threads(client):
    from bbbcore import config
    from bbbcore.batch_worker import ModelPlugin

    client.register_plugin(ModelPlugin(str(config.DEFAULT_MODEL)), name="bbb-model-test")

    def loaded() -> list[int]:
        import bbbcore.batch as batch

        return [model._forward._session.get_session_options().intra_op_num_threads
                for model in batch._MODELS.values()]

    assert list(client.run(loaded).values()) == [[1], [1]]  # 2 workers of 1 thread, the model in each
