"""Exports other tools open, and polygon annotations coming back in."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pandas as pd
import pytest
import roifile
import tifffile

from bbbcore.annotations import read_polygon_annotations
from bbbcore.errors import AnnotationError
from bbbcore.export import (
    geojson_bytes,
    image_outputs,
    labels_tiff_bytes,
    neutralise_formulas,
    read_labels_tiff,
    roi_zip_bytes,
    table_csv_bytes,
)
from bbbcore.features import cells_table
from bbbcore.polygons import cell_polygons, rasterise_polygons


def per_cell_iou(truth: np.ndarray, other: np.ndarray) -> dict[int, float]:
    scores = {}
    for cell_id in np.unique(truth[truth > 0]):
        a, b = truth == cell_id, other == cell_id
        scores[int(cell_id)] = (a & b).sum() / (a | b).sum()
    return scores


def test_formula_injection_is_neutralised():
    table = pd.DataFrame({
        "condition": ["=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "tat", None],
        "dose": [-1.5, 2.0, 3.0, 4.0, 5.0, 6.0],
    })
    safe = neutralise_formulas(table)
    assert safe["condition"].tolist()[:5] == ["'=HYPERLINK(\"http://x\")", "'+1", "'-2", "'@SUM(A1)", "tat"]
    assert safe["dose"].iloc[0] == -1.5  # numbers are not text
    back = pd.read_csv(io.BytesIO(table_csv_bytes(table)))
    assert list(back.columns) == ["condition", "dose"]  # one header row, no index column
    assert back["condition"].iloc[0].startswith("'=")


def test_labels_tiff_keeps_values_and_pixel_size():
    labels = np.zeros((30, 40), np.int32)
    labels[5:10, 5:10] = 7
    labels[20:25, 30:35] = 65535
    data = labels_tiff_bytes(labels, pixel_size_um=0.62)
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        page = tif.pages[0]
        assert page.dtype == np.uint16 and tif.is_imagej
        x_resolution = page.tags["XResolution"].value
        assert x_resolution[0] / x_resolution[1] == pytest.approx(1 / 0.62, rel=1e-4)
        assert tif.imagej_metadata["unit"] == "um"
    np.testing.assert_array_equal(read_labels_tiff(data), labels)


def test_many_labels_go_to_32_bit_float():
    labels = np.arange(300 * 300, dtype=np.int32).reshape(300, 300)  # 90,000 ids
    data = labels_tiff_bytes(labels)
    assert tifffile.imread(io.BytesIO(data)).dtype == np.float32
    np.testing.assert_array_equal(read_labels_tiff(data), labels)


def test_read_labels_refuses_what_is_no_labels_image():
    with pytest.raises(ValueError, match="whole numbers"):
        buffer = io.BytesIO()
        tifffile.imwrite(buffer, np.full((4, 4), 0.5, np.float32))
        read_labels_tiff(buffer.getvalue())


def test_roi_zip_round_trip(synthetic_monolayer):
    labels = synthetic_monolayer["truth"]
    polygons = cell_polygons(labels)
    with zipfile.ZipFile(io.BytesIO(roi_zip_bytes(polygons))) as archive:
        rois = [roifile.ImagejRoi.frombytes(archive.read(name)) for name in archive.namelist()]
    assert len(rois) == len(polygons) == labels.max()
    back = {}
    for roi in rois:
        assert roi.roitype == roifile.ROI_TYPE.POLYGON
        cell_id = int(roi.name)
        np.testing.assert_allclose(roi.coordinates(), polygons[cell_id], atol=1e-3)
        back[cell_id] = roi.coordinates()
    scores = per_cell_iou(labels, rasterise_polygons(back, labels.shape))
    assert min(scores.values()) >= 0.98


def test_geojson_round_trip_with_features(synthetic_monolayer):
    labels = synthetic_monolayer["truth"]
    cells = cells_table(labels, image="m.png", image_id="m1", pixel_size_um=0.5, sample={"condition": "tat"})
    content = geojson_bytes(cell_polygons(labels, holes=True), cells)
    collection = json.loads(content)
    assert collection["type"] == "FeatureCollection" and len(collection["features"]) == len(cells)
    first = collection["features"][0]["properties"]
    assert first["objectType"] == "detection" and first["condition"] == "tat"
    assert first["measurements"]["area_um2"] == pytest.approx(cells["area_um2"].iloc[0])
    assert first["replicate"] is None  # NaN is null, so the file stays valid JSON
    annotation = read_polygon_annotations("m.geojson", data=content)[0]
    back = annotation.to_labels(labels.shape)
    assert min(per_cell_iou(labels, back).values()) >= 0.98


def test_image_outputs_are_the_four_files(synthetic_monolayer):
    labels = synthetic_monolayer["truth"]
    files = image_outputs("m", labels, cells=cells_table(labels), junction=synthetic_monolayer["junction"])
    assert sorted(files) == ["m.geojson", "m.labels.tif", "m.overlay.png", "m.rois.zip"]
    assert files["m.overlay.png"].startswith(b"\x89PNG")


def labelbox_records() -> list:
    square = [{"x": 10, "y": 10}, {"x": 50, "y": 10}, {"x": 50, "y": 40}, {"x": 10, "y": 40}]
    triangle = [{"x": 60, "y": 10}, {"x": 90, "y": 10}, {"x": 75, "y": 45}]
    records = [
        {"ID": "a", "Labeled Data": "https://storage.example.org/bbb/tat_80ng_01.png?token=1",
         "Label": {"Cell": [{"geometry": square}, {"geometry": triangle}]}, "Created By": "ann@lab.org"},
        {"ID": "b", "Labeled Data": "tat_80ng_01.png",
         "Label": {"Cell": [{"geometry": square}]}, "Created By": "bob@lab.org"},
        {"ID": "c", "Labeled Data": "skipped.png", "Label": {}, "Created By": "ann@lab.org"},
    ]
    return json.loads(json.dumps(records))  # no shared lists between records


def test_labelbox_export_is_read_and_rasterised(tmp_path):
    path = tmp_path / "export.json"
    path.write_text(json.dumps(labelbox_records()))
    annotations = read_polygon_annotations(path)
    assert [(a.image, a.annotator, len(a.polygons)) for a in annotations] == [
        ("tat_80ng_01.png", "ann@lab.org", 2), ("tat_80ng_01.png", "bob@lab.org", 1),
    ]
    labels = annotations[0].to_labels((60, 100))
    table = cells_table(labels)
    assert table["cell_id"].tolist() == [1, 2]
    assert table.loc[0, "area"] == 40 * 30  # the square's pixels: columns 10-49, rows 10-39
    assert table.loc[1, "area"] == pytest.approx(0.5 * 30 * 35, rel=0.06)


@pytest.mark.parametrize("mutate, message", [
    (lambda r: r[0]["Label"]["Cell"][1].pop("geometry"), "record 1 (tat_80ng_01.png): cell 2 has no 'geometry'"),
    (lambda r: r[1]["Label"]["Cell"][0]["geometry"][0].update(x="ten"),
     "record 2 (tat_80ng_01.png): cell 1: every point needs numeric 'x' and 'y'"),
    (lambda r: r[0].pop("Labeled Data"), "record 1: no 'Labeled Data' (the image)"),
    (lambda r: r[1].update(Label={"Nucleus": []}), "record 2 (tat_80ng_01.png): 'Label' has no 'Cell' list"),
])
def test_bad_labelbox_records_are_named(tmp_path, mutate, message):
    records = labelbox_records()
    mutate(records)
    path = tmp_path / "export.json"
    path.write_text(json.dumps(records))
    with pytest.raises(AnnotationError) as info:
        read_polygon_annotations(path)
    assert str(info.value) == f"export.json: {message}"


def test_truncated_json_is_a_clear_error(tmp_path):
    path = tmp_path / "export.json"
    path.write_text(json.dumps(labelbox_records())[:100])
    with pytest.raises(AnnotationError, match=r"^export.json: not valid JSON"):
        read_polygon_annotations(path)
