"""`python -m bbbcore experiments ...` and `--experiment NAME`: the dashboard's store from the command line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bbbcore.cli import main
from bbbcore.export import write_labels_tiff
from bbbcore.store import Store
from tests.test_cli_measure import write_image
from tests.test_exchange import exported_tables


@pytest.fixture
def data(tmp_path, monkeypatch):
    monkeypatch.setenv("BBB_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def measured_into(tmp_path, synthetic_monolayer, experiment: str) -> int:
    """Two measured images (control and tat) stored into ``experiment`` by `measure --experiment`."""
    truth = synthetic_monolayer["truth"]
    args = ["measure"]
    for name in ("control_01.png", "tat_80ng_01.png"):
        write_image(tmp_path / name, synthetic_monolayer["junction"], synthetic_monolayer["nuclei"])
        write_labels_tiff(tmp_path / f"{name}.labels.tif", truth)
        args.append(str(tmp_path / f"{name}.labels.tif"))
    args += ["--image", str(tmp_path / "control_01.png"), str(tmp_path / "tat_80ng_01.png"),
             "--out", str(tmp_path / "out"), "--experiment", experiment, "--pixel-size", "0.5"]
    return main(args)


def test_measured_images_are_stored_listed_exported_imported_and_deleted(tmp_path, data, synthetic_monolayer, capsys):
    assert measured_into(tmp_path, synthetic_monolayer, "Plate 1") == 0
    assert "stored 2 image(s) in experiment 'Plate 1'" in capsys.readouterr().out
    store = Store(data)
    [experiment] = store.experiments()["id"].tolist()
    images = store.images(experiment)
    assert images["name"].tolist() == ["control_01.png", "tat_80ng_01.png"]
    assert images["condition"].tolist() == ["control", "tat"] and images["pixel_size_um"].tolist() == [0.5, 0.5]
    written = pd.read_csv(tmp_path / "out" / "cells.csv")
    assert len(store.cells(experiment)) == len(written)
    assert main(["experiments", "list"]) == 0
    assert f"{experiment}  Plate 1  (2 images, {len(written)} cells" in capsys.readouterr().out
    assert main(["experiments", "export", "Plate 1", "--out", str(tmp_path / "plate1.zip")]) == 0
    assert main(["experiments", "import", str(tmp_path / "plate1.zip"), "--name", "=Plate 1 again"]) == 0
    assert "as '=Plate 1 again'" in capsys.readouterr().out
    again = store.experiment_id("=Plate 1 again")
    assert main(["experiments", "export", "--id", str(again), "--out", str(tmp_path / "again.zip")]) == 0
    first, second = (exported_tables((tmp_path / n).read_bytes()) for n in ("plate1.zip", "again.zip"))
    for table in ("images", "cells"):
        pd.testing.assert_frame_equal(first[table], second[table], obj=table)
    shared = set(images["image_sha"])
    assert main(["experiments", "delete", "Plate 1"]) == 0
    assert all(store.file_path(d).exists() for d in shared)  # the import still uses them
    assert main(["experiments", "delete", "--id", str(again)]) == 0
    assert store.experiments().empty and not any(store.file_path(d).exists() for d in shared)


def test_segmented_images_go_into_a_named_experiment(tmp_path, data, shipped_model, capsys):
    from bbbcore.session import SAMPLE_DATA_DIR

    image = SAMPLE_DATA_DIR / "bbb_rgb_03.jpg"
    assert main(["segment", str(image), "--out", str(tmp_path / "out"), "--experiment", "Plate 2"]) == 0
    assert main(["segment", str(image), "--out", str(tmp_path / "out2"), "--experiment", "Plate 2"]) == 0  # again
    store = Store(data)
    stored = store.images(store.experiment_id("Plate 2"))
    assert stored["name"].tolist() == ["bbb_rgb_03.jpg"]  # replaced, not doubled
    assert (stored["model_name"].iloc[0], stored["model_version"].iloc[0]) == (shipped_model.card.name,
                                                                               shipped_model.card.version)
    assert len(store.cells(store.experiment_id("Plate 2"))) == len(pd.read_csv(tmp_path / "out" / "cells.csv"))


def test_anomaly_scores_of_an_experiment_are_stored_back(tmp_path, data, synthetic_monolayer, capsys):
    assert measured_into(tmp_path, synthetic_monolayer, "Plate 3") == 0
    assert main(["anomalies", "--experiment", "Plate 3", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "stored the scores of" in out
    store = Store(data)
    cells = store.cells(store.experiment_id("Plate 3"))
    counted = cells[~cells["touches_edge"]]
    assert counted["anomaly_score"].notna().all() and counted["is_anomaly"].any()
    assert np.isclose(counted["is_anomaly"].mean(), 0.12, atol=0.1)
    assert main(["anomalies"]) == 2
    assert "give a cells table (CSV) or --experiment NAME" in capsys.readouterr().err
