"""The dashboard's logic, tested without Streamlit: result sets, comparisons, figures, pictures."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from bbbcore import plots
from bbbcore.compare import compare_table, group_labels, image_means
from bbbcore.errors import ImageReadError
from bbbcore.export import labels_tiff_bytes
from bbbcore.io import load_image
from bbbcore.metadata import sample_sheet_for
from bbbcore.overlay import cells_figure, render_cells
from bbbcore.pipeline import ImageResult, result_from_labels
from bbbcore.results import ResultSet


def png_bytes(junction: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray((junction * 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def result_set():
    """Four synthetic images: two control, two tat 80 ng, cells from their truth labels."""
    from tests.synthetic import voronoi_monolayer

    results = ResultSet()
    names = ["control_01.png", "control_02.png", "tat_80ng_01.png", "tat_80ng_02.png"]
    for seed, name in enumerate(names):
        field = voronoi_monolayer(shape=(256, 320), n_cells=20 + 10 * seed, seed=seed)
        image = load_image(png_bytes(field["junction"]), name=name)
        results.add(result_from_labels(image, labels_tiff_bytes(field["truth"]), f"{name}.labels.tif",
                                       pixel_size_um=0.5))
    results.sheet = sample_sheet_for(results.names())[results.sheet.columns]
    return results


def test_cells_carry_the_sheet_and_editing_it_recomputes_nothing(result_set):
    cells = result_set.cells()
    assert set(cells["condition"]) == {"control", "tat"}
    assert cells.loc[cells["condition"] == "tat", "dose"].eq(80).all()
    before = {name: id(result) for name, result in result_set.results.items()}
    sheet = result_set.sheet.copy()
    sheet.loc[sheet["file"] == "control_02.png", "condition"] = "vehicle"
    edited = ResultSet(result_set.results, {}, sheet)
    assert set(edited.cells()["condition"]) == {"control", "vehicle", "tat"}
    assert {name: id(result) for name, result in edited.results.items()} == before


def test_summary_has_one_row_per_image(result_set):
    summary = result_set.summary()
    assert summary["image"].tolist() == result_set.names()
    cells = result_set.cells()
    for _, row in summary.iterrows():
        mine = cells[(cells["image"] == row["image"]) & ~cells["touches_edge"]]
        assert row["n_cells"] == len(mine)
        assert row["area_um2_mean"] == pytest.approx(mine["area_um2"].mean())


def test_export_zip_holds_the_cli_files(result_set):
    with zipfile.ZipFile(io.BytesIO(result_set.export_zip())) as archive:
        names = set(archive.namelist())
        cells = pd.read_csv(archive.open("cells.csv"))
    for stem in ("control_01", "tat_80ng_02"):
        for suffix in ("labels.tif", "rois.zip", "geojson", "overlay.png"):
            assert f"{stem}.{suffix}" in names
    assert {"cells.csv", "summary.csv", "samples.csv"} <= names
    assert len(cells) == len(result_set.cells())


def test_labels_upload_errors_name_the_file():
    image = load_image(png_bytes(np.random.default_rng(0).random((40, 50))), name="a.png")
    with pytest.raises(ImageReadError, match=r"^fixed.tif: the file is empty"):
        result_from_labels(image, b"", "fixed.tif")
    with pytest.raises(ImageReadError, match=r"^fixed.tif: not a readable labels TIFF"):
        result_from_labels(image, b"not a tiff at all", "fixed.tif")
    with pytest.raises(ImageReadError, match=r"^fixed.tif: labels are 10x10 px but a.png is 50x40 px"):
        result_from_labels(image, labels_tiff_bytes(np.ones((10, 10), np.int32)), "fixed.tif")


def test_compare_table_works_on_image_means(result_set):
    cells = result_set.cells()
    table = compare_table(cells, "area", control="control")
    assert table["group"].tolist() == ["control", "tat"]
    inner = cells[~cells["touches_edge"]]
    means = inner.groupby("image")["area"].mean()
    control = means[["control_01.png", "control_02.png"]].mean()
    tat = means[["tat_80ng_01.png", "tat_80ng_02.png"]].mean()
    row = table.set_index("group")
    assert row.loc["control", "n_images"] == 2 and row.loc["tat", "n_cells"] == len(inner[inner["condition"] == "tat"])
    assert row.loc["tat", "mean"] == pytest.approx(tat)
    assert row.loc["tat", "difference"] == pytest.approx(tat - control)
    assert row.loc["control", "difference"] == 0
    # Descriptive only: nothing that looks like a test.
    assert list(table.columns) == ["group", "n_images", "n_cells", "mean", "mean_ci_low", "mean_ci_high", "median",
                                   "sd_between_images", "difference", "percent_of_control"]
    assert table["mean_ci_low"].isna().all()  # two images a group: too few for an interval


def test_groups_by_dose_and_without_condition():
    cells = pd.DataFrame({"condition": ["tat", "tat", None], "dose": [80.0, 40.0, np.nan],
                          "dose_unit": ["ng", "ng", None]})
    assert group_labels(cells, by_dose=True).tolist() == ["tat 80 ng", "tat 40 ng", "(none)"]
    assert group_labels(cells).tolist() == ["tat", "tat", "(none)"]


def test_figures_are_built_from_the_table(result_set):
    cells = result_set.cells()
    inner = cells[~cells["touches_edge"]]
    figure = plots.compare_conditions(cells, "area", order=["control", "tat"])
    points = [trace for trace in figure.data if trace.type == "scatter" and not trace.name.endswith("CI")]
    per_image = image_means(cells, "area")
    assert sorted(np.concatenate([p.y for p in points])) == pytest.approx(sorted(per_image["mean"]))
    intervals = {t.x[0]: t for t in figure.data if t.type == "scatter" and t.name.endswith("CI")}
    control_means = per_image.loc[per_image["group"] == "control", "mean"]
    assert intervals["control"].y[0] == pytest.approx(control_means.mean())
    assert intervals["control"].error_y.visible is False  # two images: too few for an interval
    violins = [trace for trace in figure.data if trace.type == "violin"]
    assert sum(len(v.y) for v in violins) == len(inner)
    heatmap = plots.correlation_heatmap(cells, ["area", "perimeter", "extent"])
    assert np.asarray(heatmap.data[0].z) == pytest.approx(cells[["area", "perimeter", "extent"]].corr("spearman").to_numpy())
    histogram = plots.histogram(cells, "area")
    assert {trace.name for trace in histogram.data} == {"control", "tat"}
    for kind in ("box", "violin", "strip"):
        assert len(plots.distribution(cells, "circularity", kind=kind).data) == 2
    matrix = plots.scatter_matrix(cells, ["area", "extent", "solidity"])
    assert len(matrix.data[0].dimensions) == 3
    assert plots.feature_options(cells)[0] == "area_um2"
    json.dumps(figure.to_plotly_json(), default=str)  # serialisable, as st.plotly_chart needs


def test_pictures_show_edge_cells_and_hover_features(result_set):
    result = next(iter(result_set.results.values()))
    table = result_set.cells().query("image == @result.name")
    picture = render_cells(result.image.junction, result.labels, fill=True)
    edge_ids = table.loc[table["touches_edge"], "cell_id"].to_numpy()
    inner_ids = table.loc[~table["touches_edge"], "cell_id"].to_numpy()
    assert picture.shape == (*result.labels.shape, 3) and picture.dtype == np.uint8
    # Edge cells are drawn in blue outlines, inner cells in yellow.
    edge_pixels = picture[np.isin(result.labels, edge_ids)]
    inner_pixels = picture[np.isin(result.labels, inner_ids)]
    assert ((edge_pixels == (0, 170, 255)).all(axis=1)).any()
    assert not ((inner_pixels == (0, 170, 255)).all(axis=1)).any()
    figure = cells_figure(picture, result.labels, table, columns=["area", "circularity"])
    markers = figure.data[1]
    assert list(markers.customdata) == sorted(table["cell_id"])
    first = table.sort_values("cell_id").iloc[0]
    assert f"area: {first['area']:.4g}" in markers.hovertext[0]
    assert len(figure.to_json()) < 2_000_000  # no per-pixel payload


def test_image_result_record_is_the_image(result_set):
    result = next(iter(result_set.results.values()))
    assert isinstance(result, ImageResult)
    assert result.record()["height"] == result.labels.shape[0] and result.stem == "control_01"
