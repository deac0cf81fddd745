"""`measure` and `import-annotations`: no model needed, synthetic images."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from PIL import Image

from bbbcore.cli import main
from bbbcore.export import write_labels_tiff
from bbbcore.polygons import cell_polygons


def write_image(path, junction: np.ndarray, nuclei: np.ndarray) -> None:
    rgb = np.zeros((*junction.shape, 3), np.uint8)
    rgb[..., 1] = (junction * 255).astype(np.uint8)
    rgb[..., 2] = (nuclei * 255).astype(np.uint8)
    Image.fromarray(rgb).save(path)


def test_measure_labels_with_and_without_image(tmp_path, synthetic_monolayer, capsys):
    truth = synthetic_monolayer["truth"]
    write_image(tmp_path / "tat_80ng_01.png", synthetic_monolayer["junction"], synthetic_monolayer["nuclei"])
    write_labels_tiff(tmp_path / "tat_80ng_01.labels.tif", truth)
    write_labels_tiff(tmp_path / "control_02.labels.tif", truth[:200, :300])
    write_labels_tiff(tmp_path / "wrong.labels.tif", truth[:100, :100])
    (tmp_path / "wrong.png").write_bytes((tmp_path / "tat_80ng_01.png").read_bytes())
    out = tmp_path / "out"
    code = main(["measure", str(tmp_path / "tat_80ng_01.labels.tif"), str(tmp_path / "wrong.labels.tif"),
                 "--image", str(tmp_path / "tat_80ng_01.png"), str(tmp_path / "wrong.png"),
                 "--out", str(out), "--pixel-size", "0.5"])
    err = capsys.readouterr().err
    assert code == 1
    assert "error: wrong.png: labels are 100x100 px but wrong.png is 512x384 px" in err
    cells = pd.read_csv(out / "cells.csv")
    assert set(cells["image"]) == {"tat_80ng_01.png"}
    assert len(cells) == truth.max()
    assert cells["junction_continuity"].notna().all() and (cells["nuclei_count"] >= 0).all()
    assert (cells["condition"] == "tat").all() and (cells["dose"] == 80).all()
    assert (cells["area_um2"] == cells["area"] * 0.25).all()
    summary = pd.read_csv(out / "summary.csv")
    assert summary["n_cells"].iloc[0] + summary["n_edge_excluded"].iloc[0] == truth.max()
    for suffix in ("labels.tif", "rois.zip", "geojson", "overlay.png"):
        assert (out / f"tat_80ng_01.{suffix}").exists()
    interfaces = pd.read_csv(out / "interfaces.csv")  # read on the image: only the image given has them
    assert set(interfaces["image"]) == {"tat_80ng_01.png"} and (interfaces["condition"] == "tat").all()
    np.testing.assert_allclose(interfaces["length_um"], interfaces["length_px"] * 0.5)
    assert set(interfaces[["cell_a", "cell_b"]].to_numpy().ravel()) <= set(cells["cell_id"])

    # Without images: shape columns only, conditions from the labels' names.
    code = main(["measure", str(tmp_path / "control_02.labels.tif"), "--out", str(tmp_path / "plain")])
    assert code == 0
    plain = pd.read_csv(tmp_path / "plain" / "cells.csv")
    assert "junction_continuity" not in plain.columns and (plain["condition"] == "control").all()
    assert not (tmp_path / "plain" / "control_02.overlay.png").exists()


def test_measure_needs_one_image_per_labels_file(tmp_path, capsys):
    write_labels_tiff(tmp_path / "a.labels.tif", np.ones((20, 20), np.int32))
    code = main(["measure", str(tmp_path / "a.labels.tif"), "--image", str(tmp_path / "x.png"),
                 str(tmp_path / "y.png"), "--out", str(tmp_path / "o")])
    assert code == 2 and "1 labels file(s) but 2 image(s)" in capsys.readouterr().err


def test_import_annotations_measures_hand_drawn_cells(tmp_path, synthetic_monolayer, capsys):
    truth = synthetic_monolayer["truth"]
    write_image(tmp_path / "control_05.png", synthetic_monolayer["junction"], synthetic_monolayer["nuclei"])
    polygons = cell_polygons(truth)
    records = [
        {"Labeled Data": f"https://x.org/{name}/control_05.png", "Created By": who,
         "Label": {"Cell": [{"geometry": [{"x": float(x), "y": float(y)} for x, y in polygons[i]]}
                            for i in ids]}}
        for name, who, ids in (("a", "ann@lab.org", range(1, 11)), ("b", "bob@lab.org", range(1, 6)))
    ]
    (tmp_path / "labelbox.json").write_text(json.dumps(records))
    out = tmp_path / "imported"
    assert main(["import-annotations", str(tmp_path / "labelbox.json"), "--image",
                 str(tmp_path / "control_05.png"), "--out", str(out)]) == 0
    cells = pd.read_csv(out / "cells.csv")
    assert cells.groupby("annotator").size().to_dict() == {"ann@lab.org": 10, "bob@lab.org": 5}
    assert (cells["condition"] == "control").all()
    # Hand cells measured by the same code as model cells: the areas of the drawn truth cells.
    ann = cells[cells["annotator"] == "ann@lab.org"].set_index("cell_id")
    areas = np.bincount(truth.ravel())
    np.testing.assert_allclose(ann["area"], areas[1:11], rtol=0.02)
    assert ann["junction_border_mean"].notna().all()
    assert (out / "control_05.ann.labels.tif").exists() and (out / "control_05.bob.labels.tif").exists()
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 2


def test_import_annotations_names_the_bad_record(tmp_path, capsys):
    (tmp_path / "bad.json").write_text(json.dumps([{"Labeled Data": "a.png", "Label": {"Cell": [{"x": 1}]}}]))
    assert main(["import-annotations", str(tmp_path / "bad.json"), "--out", str(tmp_path / "o")]) == 2
    assert "bad.json: record 1 (a.png): cell 1 has no 'geometry'" in capsys.readouterr().err


def test_a_sample_sheet_sets_each_image_s_pixel_size_and_channel(tmp_path, synthetic_monolayer):
    """One schema: the sheet's pixel_size_um and channel columns act per image, like the flags do for all."""
    truth = synthetic_monolayer["truth"]
    write_image(tmp_path / "a.png", synthetic_monolayer["junction"], synthetic_monolayer["nuclei"])
    write_labels_tiff(tmp_path / "a.labels.tif", truth)
    write_labels_tiff(tmp_path / "b.labels.tif", truth)
    (tmp_path / "b.png").write_bytes((tmp_path / "a.png").read_bytes())
    sheet = tmp_path / "plate.csv"
    sheet.write_text("file,condition,pixel_size_um,channel,diameter_px\n"
                     "a.png,control,0.5,green,40\nb.png,tat,0.25,blue,\n", encoding="utf-8")
    out = tmp_path / "out"
    code = main(["measure", str(tmp_path / "a.labels.tif"), str(tmp_path / "b.labels.tif"),
                 "--image", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--out", str(out),
                 "--sample-sheet", str(sheet)])
    assert code == 0
    cells = pd.read_csv(out / "cells.csv").groupby("image")
    a, b = cells.get_group("a.png"), cells.get_group("b.png")
    assert (a["area_um2"] == a["area"] * 0.25).all() and (b["area_um2"] == b["area"] * 0.0625).all()
    assert set(a["channel"]) == {"green"} and set(a["diameter_px"]) == {40} and b["diameter_px"].isna().all()
    # The junction channel chosen per image: the blue (nuclear) plane is dimmer on the borders.
    assert a["junction_border_to_cytoplasm"].mean() > b["junction_border_to_cytoplasm"].mean()
    written = pd.read_csv(out / "samples.csv")
    assert list(written.columns[:10]) == ["file", "condition", "dose", "dose_unit", "replicate", "well",
                                          "pixel_size_um", "channel", "nuclear_channel", "diameter_px"]
