"""bbbcore.plots: the figures are checked as data (traces, their values, colours and layout)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from bbbcore import plots
from bbbcore.compare import NO_CONDITION

#: (condition, dose, image, inner cells' areas); each image's mean is its middle value.
IMAGES = [
    ("control", np.nan, "control_a", [9.0, 11.0]),  # mean 10
    ("control", np.nan, "control_b", [11.0, 17.0]),  # mean 14
    ("tat", 80.0, "tat_a", [19.0, 20.0, 21.0]),  # mean 20
    ("tat", 40.0, "tat_b", [29.0, 31.0]),  # mean 30
]


def cells_table(edge_value: float = 1000.0) -> pd.DataFrame:
    """Every image also has one edge cell of area ``edge_value``; perimeter = 4 sqrt(area), extent = -area."""
    rows = []
    for condition, dose, image, values in IMAGES:
        for index, value in enumerate([*values, edge_value]):
            rows.append({"image": f"{image}.tif", "image_id": image, "cell_id": index + 1, "area": value,
                         "perimeter": 4 * np.sqrt(value), "extent": -value, "touches_edge": index == len(values),
                         "condition": condition, "dose": dose, "dose_unit": "ng"})
    return pd.DataFrame(rows)


def traces(figure, kind):
    return [trace for trace in figure.data if trace.type == kind]


def test_histogram_has_one_trace_per_condition_with_its_cells():
    cells = cells_table()
    figure = plots.histogram(cells, "area", bins=25)
    assert isinstance(figure, go.Figure)
    assert [t.name for t in figure.data] == ["control", "tat"]
    for trace, condition in zip(figure.data, ["control", "tat"]):
        assert trace.type == "histogram" and trace.nbinsx == 25
        assert sorted(trace.x) == sorted(cells.loc[cells["condition"] == condition, "area"])
    # Colours in order of appearance from the colour-blind safe palette.
    assert [t.marker.color for t in figure.data] == plots.PALETTE[:2]
    assert figure.layout.barmode == "overlay"


def test_a_single_condition_or_none_gives_one_trace():
    cells = cells_table()
    tat = cells[cells["condition"] == "tat"]
    assert [t.name for t in plots.histogram(tat, "area").data] == ["tat"]
    anonymous = cells.drop(columns=["condition"])
    for figure in (plots.histogram(anonymous, "area"), plots.distribution(anonymous, "area"),
                   plots.scatter(anonymous, "area", "perimeter")):
        assert [t.name for t in figure.data] == [NO_CONDITION]
        assert len(figure.data[0].x) == len(cells)


def test_empty_tables_give_empty_figures():
    empty = cells_table().iloc[:0]
    for figure in (plots.histogram(empty, "area"), plots.distribution(empty, "area"),
                   plots.scatter(empty, "area", "perimeter"), plots.scatter_matrix(empty, ["area", "extent"]),
                   plots.compare_conditions(empty, "area")):
        assert isinstance(figure, go.Figure) and len(figure.data) == 0


def test_missing_values_stay_out_of_the_figures_numbers():
    cells = cells_table()
    cells.loc[(cells["image_id"] == "control_b") & (cells["cell_id"] == 2), "area"] = np.nan  # the 17
    histogram = plots.histogram(cells, "area")
    control = histogram.data[0].x
    assert sorted(control[np.isfinite(control)]) == [9.0, 11.0, 11.0, 1000.0, 1000.0]
    figure = plots.compare_conditions(cells, "area")
    means = next(t for t in figure.data if t.name == "control: image means")
    assert list(means.y) == [10.0, 11.0]  # control_b's mean is its one measured inner cell
    json.dumps(figure.to_plotly_json(), default=str)


@pytest.mark.parametrize("kind, trace_type", [("box", "box"), ("violin", "violin"), ("strip", "box")])
def test_distribution_kinds(kind, trace_type):
    cells = cells_table()
    figure = plots.distribution(cells, "area", kind=kind)
    assert [(t.type, t.name) for t in figure.data] == [(trace_type, "control"), (trace_type, "tat")]
    for trace, condition in zip(figure.data, ["control", "tat"]):
        assert list(trace.y) == cells.loc[cells["condition"] == condition, "area"].tolist()
        assert set(trace.x) == {condition}
    assert figure.layout.showlegend is False


def test_distribution_by_dose_and_a_bad_kind():
    figure = plots.distribution(cells_table(), "area", by_dose=True)
    assert [t.name for t in figure.data] == ["control", "tat 80 ng", "tat 40 ng"]
    assert [len(t.y) for t in figure.data] == [6, 4, 3]
    with pytest.raises(ValueError, match="kind must be box, violin or strip, not 'bar'"):
        plots.distribution(cells_table(), "area", kind="bar")


def test_scatter_traces_carry_both_features_and_the_image():
    cells = cells_table()
    figure = plots.scatter(cells, "area", "perimeter")
    assert [t.name for t in figure.data] == ["control", "tat"]
    tat = cells[cells["condition"] == "tat"]
    trace = figure.data[1]
    assert list(trace.x) == tat["area"].tolist()
    np.testing.assert_allclose(trace.y, 4 * np.sqrt(trace.x))
    assert [row[0] for row in trace.customdata] == tat["image"].tolist()  # hover names the image


def test_scatter_matrix_dimensions_and_height():
    figure = plots.scatter_matrix(cells_table(), ["area", "perimeter", "extent", "dose"])
    assert [t.type for t in figure.data] == ["splom", "splom"]
    # Named as a person reads them, with the unit of the column table (bbbcore.features.COLUMNS).
    assert [d.label for d in figure.data[0].dimensions] == ["area (px²)", "perimeter (px)", "extent", "dose"]
    assert figure.layout.height == 160 * 4
    assert plots.scatter_matrix(cells_table(), ["area", "extent"]).layout.height == 500


def test_correlation_heatmap_of_monotone_features():
    cells = cells_table()
    # perimeter rises with area, extent falls with it: Spearman r is +1 and -1 exactly.
    figure = plots.correlation_heatmap(cells, ["area", "perimeter", "extent"])
    z = np.asarray(figure.data[0].z, float)
    np.testing.assert_allclose(z, [[1, 1, -1], [1, 1, -1], [-1, -1, 1]])
    assert list(figure.data[0].x) == ["area (px²)", "perimeter (px)", "extent"]
    # Pearson sees that sqrt is not a straight line.
    pearson = np.asarray(plots.correlation_heatmap(cells, ["area", "perimeter"], method="pearson").data[0].z)
    assert 0.9 < pearson[0, 1] < 1.0


def test_compare_conditions_shows_image_means_and_their_interval():
    figure = plots.compare_conditions(cells_table(), "area")
    assert [(t.type, t.name) for t in figure.data] == [
        ("violin", "control"), ("scatter", "control: image means"), ("scatter", "control: mean, 95 % CI"),
        ("violin", "tat"), ("scatter", "tat: image means"), ("scatter", "tat: mean, 95 % CI"),
    ]
    violins = traces(figure, "violin")
    assert sorted(violins[0].y) == [9.0, 11.0, 11.0, 17.0]  # edge cells (1000) left out
    assert sorted(violins[1].y) == [19.0, 20.0, 21.0, 29.0, 31.0]
    control_means, control_ci = figure.data[1], figure.data[2]
    assert list(control_means.y) == [10.0, 14.0]
    assert [list(row) for row in control_means.customdata] == [["control_a.tif", 2], ["control_b.tif", 2]]
    # Mean of (10, 14) = 12; two images are too few for an interval (a t interval would run to -50).
    assert control_ci.y[0] == 12.0 and control_ci.error_y.visible is False
    assert "too few images for an interval (2; 3 needed)" in control_ci.hovertemplate
    assert figure.layout.yaxis.range[0] >= 0  # an area axis does not go below zero
    assert figure.layout.yaxis.title.text == "area (px²)"  # the column's name and unit, as on the Plots page
    assert figure.data[5].y[0] == 25.0
    assert figure.data[1].marker.color == plots.PALETTE[0] and figure.data[4].marker.color == plots.PALETTE[1]
    assert list(figure.layout.xaxis.categoryarray) == ["control", "tat"]


def test_the_interval_stays_in_the_data_and_the_feature_range():
    from bbbcore.compare import mean_interval

    rng = np.random.default_rng(4)
    rows = []
    for condition, centre in (("control", 0.9), ("tat", 0.5)):
        for image in range(4):
            offset = rng.normal(0, 0.08)
            for cell in range(6):
                rows.append({"image": f"{condition}_{image}.tif", "image_id": f"{condition}_{image}", "cell_id": cell,
                             "condition": condition, "touches_edge": False,
                             "junction_continuity": float(np.clip(centre + offset + rng.normal(0, 0.1), 0, 1))})
    cells = pd.DataFrame(rows)
    figure = plots.compare_conditions(cells, "junction_continuity")
    means = cells.groupby(["condition", "image_id"])["junction_continuity"].mean()
    for condition in ("control", "tat"):
        bar = next(t for t in figure.data if t.name == f"{condition}: mean, 95 % CI")
        low, high = bar.y[0] - bar.error_y.arrayminus[0], bar.y[0] + bar.error_y.array[0]
        assert (low, high) == pytest.approx(mean_interval(means[condition].to_numpy()))
        assert means[condition].min() <= low <= bar.y[0] <= high <= means[condition].max()
    low_axis, high_axis = figure.layout.yaxis.range
    assert 0 <= low_axis and high_axis <= 1  # a share stays on its 0-1 scale
    assert np.isnan(mean_interval(np.array([1.0, 2.0]))).all()  # too few images for an interval


def test_compare_conditions_order_edge_cells_and_single_images():
    cells = cells_table()
    figure = plots.compare_conditions(cells, "area", order=["tat", "control"])
    assert list(figure.layout.xaxis.categoryarray) == ["tat", "control"]
    assert traces(figure, "violin")[0].name == "tat"
    with_edge = plots.compare_conditions(cells, "area", exclude_edge=False)
    means = next(t for t in with_edge.data if t.name == "control: image means")
    assert list(means.y) == pytest.approx([(9 + 11 + 1000) / 3, (11 + 17 + 1000) / 3])
    # By dose, each tat dose has one image: its mean, but no interval.
    by_dose = plots.compare_conditions(cells, "area", by_dose=True)
    names = [t.name for t in by_dose.data]
    assert "tat 80 ng: image means" in names and "tat 80 ng: mean, 95 % CI" not in names
    assert "control: mean, 95 % CI" in names


def test_dose_response_puts_the_control_at_zero():
    values = pd.DataFrame({"unit": ["c1", "c2", "t1", "t2"], "condition": ["control", "control", "tat", "tat"],
                           "dose": [np.nan, np.nan, 40.0, 80.0], "value": [1.0, 2.0, 3.0, 4.0],
                           "n_cells": [5, 6, 7, 8]})
    figure = plots.dose_response(values, "area", rho=-0.52, p=0.031)
    assert [(t.name, list(t.x), list(t.y)) for t in figure.data] == [
        ("control", [0.0, 0.0], [1.0, 2.0]), ("tat", [40.0, 80.0], [3.0, 4.0]),
    ]
    assert figure.layout.title.text == "area (px²): per-unit values against dose (Spearman rho -0.52, p = 0.031)"
    assert figure.layout.yaxis.title.text == "area (px²)"
    assert "rho" not in plots.dose_response(values, "area", rho=float("nan"), p=float("nan")).layout.title.text
    assert "rho" not in plots.dose_response(values, "area").layout.title.text


def test_feature_options_put_the_common_features_first():
    cells = pd.DataFrame({"image": ["a"], "image_id": ["a"], "cell_id": [1], "touches_edge": [False],
                          "condition": ["tat"], "zeta": [0.1], "circularity": [0.9], "area": [12],
                          "centroid_x": [3.0], "area_um2": [3.0], "flagged": [True], "note": ["x"]})
    # area in px beside area_um2 says it again: only the µm column is offered.
    assert plots.feature_options(cells) == ["area_um2", "circularity", "zeta"]
    assert plots.feature_options(cells.assign(area_um2=np.nan)) == ["area", "circularity", "zeta"]


def test_labels_carry_units_and_numbers_read_plainly():
    assert plots.column_label("area_um2") == "area (µm²)" and plots.column_label("area") == "area (px²)"
    assert plots.column_label("perimeter_um") == "perimeter (µm)" and plots.column_label("circularity") == "circularity"
    assert plots.column_label("junction_width_px") == "junction width (px)"  # an interfaces.csv column
    figure = plots.histogram(cells_table(), "area")
    assert figure.layout.xaxis.title.text == "area (px²)" and figure.layout.xaxis.hoverformat == ",.4~r"
    assert "area (px²)=" in figure.data[0].hovertemplate


def test_one_colour_per_condition_on_every_figure_and_by_image_or_column():
    cells = cells_table()
    colours = plots.condition_colours(cells["condition"])
    assert list(colours) == sorted(set(cells["condition"]), key=lambda c: c != "control")  # the control first
    for figure in (plots.histogram(cells, "area"), plots.scatter(cells, "area", "perimeter"),
                   plots.histogram(cells.iloc[::-1], "area")):  # whatever order the rows come in
        assert {t.name: t.marker.color for t in figure.data} == colours
    by_image = plots.scatter(cells, "area", "perimeter", colour_by="image")
    assert {t.name for t in by_image.data} == set(cells["image"])
    by_value = plots.scatter(cells, "area", "perimeter", colour_by="extent")
    assert by_value.layout.coloraxis.colorbar.title.text == "extent"
    np.testing.assert_allclose(by_value.data[0].marker.color, cells["extent"])
