"""Every dashboard page with Streamlit's AppTest (no browser): real images, the shipped model."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1 import app_test as app_test_module

from bbbcore import plots
from bbbcore.export import labels_tiff_bytes
from bbbcore.io import UNREADABLE
from tests.conftest import ROOT

pytestmark = pytest.mark.model
PAGES = ["pages/segmentation.py", "pages/cells.py", "pages/plots.py", "pages/compare.py", "pages/home.py"]


def new_app() -> AppTest:
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)


def analyse_page() -> AppTest:
    """A fresh session on the Upload & analyse page (the app opens on Experiments)."""
    return new_app().run().switch_page("pages/analyse.py").run()


def click(at: AppTest, label: str) -> AppTest:
    [button] = [b for b in at.button if b.label.startswith(label)]
    return button.click().run()


@pytest.fixture(scope="module")
def demo(shipped_model):
    """The sample data, loaded and analysed once for the module."""
    at = analyse_page()
    click(at, "Load sample data")
    click(at, "Analyse 5 images")
    assert not at.exception
    return at


def test_first_visit_explains_what_to_do():
    at = new_app().run()
    assert not at.exception
    assert at.title[0].value == "Experiments"
    at.switch_page("pages/analyse.py").run()
    assert at.title[0].value == "Upload & analyse"
    assert "load the sample data" in " ".join(m.value for m in at.markdown)
    for page in PAGES[:4]:
        at.switch_page(page).run()
        assert not at.exception and at.info[0].value == "No analysed images yet."


def test_sample_data_is_analysed_with_a_demo_grouping(demo):
    at = demo.switch_page("pages/analyse.py").run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Images analysed"] == "5"
    assert int(metrics["Cells (edge cells included)"]) > 250
    assert any("illustrative demo" in i.value for i in at.info)
    summary = at.dataframe[-1].value  # [0] is the editable conditions table
    assert summary.groupby("condition").size().to_dict() == {"control": 3, "tat": 2}
    assert (summary["n_cells"] > 10).all()


def test_upload_good_and_bad_files(shipped_model, shared_data):
    at = analyse_page()
    good = (shared_data / "bbb" / "unlabelled" / "bbb_rgb_01.jpg").read_bytes()
    at.file_uploader[0].set_value([
        ("tat3b_80ng_frame01.jpg", good, "image/jpeg"),
        ("notes.png", b"these are my notes, not an image", "image/png"),
        ("empty.tif", b"", "image/tiff"),
    ]).run()
    errors = [e.value for e in at.error]
    assert f"notes.png: {UNREADABLE}" in errors
    assert "empty.tif: file is empty (0 bytes)" in errors
    # Conditions come from the file name, shown in the editable table.
    table = at.dataframe[0].value
    assert table["file"].tolist() == ["tat3b_80ng_frame01.jpg"]
    row = table.iloc[0]
    assert (row["condition"], row["dose"], row["dose_unit"]) == ("tat3b", 80.0, "ng")
    click(at, "Analyse 1 image")
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Images analysed"] == "1"
    assert [e.value for e in at.error][:2] == errors[:2]  # the bad files are still named; nothing lost


def test_twenty_bad_files_give_twenty_messages_and_a_failure_count(shipped_model):
    from tests.synthetic import png_bytes as png

    at = analyse_page()
    good = (ROOT / "sample_data" / "bbb_rgb_05.jpg").read_bytes()
    bad = [(f"notes_{i:02d}.png", b"these are my notes", "image/png") for i in range(10)]
    bad += [(f"tiny_{i:02d}.png", png(np.full((8, 8), i, np.uint8)), "image/png") for i in range(10)]
    at.file_uploader[0].set_value([("good.jpg", good, "image/jpeg"), *bad]).run()
    assert [w.value for w in at.warning][-1].startswith("10 of 21 files cannot be used")
    assert len(at.error) == 10  # the unreadable ones, before any run
    click(at, "Analyse 11 images")
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 20 and len(set(errors)) == 20  # each file once
    assert {e.split(":")[0] for e in errors} == {name for name, _, _ in bad}
    outcome = [w.value for w in at.warning if w.value.startswith("done:")]
    assert len(outcome) == 1 and outcome[0].startswith("done: 1 analysed, 20 failed in ")
    assert not [s for s in at.success if s.value.startswith("done:")]  # a run with failures is not a success


def test_a_pixel_size_is_offered_from_the_scale_bar_and_applied_only_when_asked():
    at = analyse_page()
    image = (ROOT / "sample_data" / "bbb_rgb_02.jpg").read_bytes()  # a JPEG: no pixel size; a 200 µm bar
    at.file_uploader[0].set_value([("field_4x.jpg", image, "image/jpeg")]).run()
    assert any("scale bar 125 px long" in c.value for c in at.caption)
    [length] = [n for n in at.number_input if n.label == "Scale bar length (µm)"]
    length.set_value(200.0).run()
    [size] = [n for n in at.number_input if n.label.startswith("Pixel size (µm/px)")]
    assert size.value == 0.0 and "not known" in size.label  # offered, not applied
    [use] = [b for b in at.button if b.label.startswith("Use 1.6 µm/px")]
    assert use.label == "Use 1.6 µm/px (200 µm / 125 px)"
    use.click().run()
    assert not at.exception
    [size] = [n for n in at.number_input if n.label.startswith("Pixel size (µm/px)")]
    assert size.value == pytest.approx(1.6) and "set here or in the sample sheet" in size.label
    assert not [n for n in at.number_input if n.label == "Scale bar length (µm)"]  # offered no more


def test_model_loads_once_per_server(shipped_model, shared_data, monkeypatch):
    from bbbcore.unet import BoundaryModel
    from dashboard import state

    state.load_model.clear()
    state._warming.clear()  # a fresh server: the first page starts loading it
    calls = []
    original = BoundaryModel.load.__func__

    def counting(cls, path):
        calls.append(path)
        return original(cls, path)

    monkeypatch.setattr(BoundaryModel, "load", classmethod(counting))
    data = (shared_data / "bbb" / "train" / "bbb_02.png").read_bytes()
    for name in ("a.png", "b.png"):  # two sessions, as two lab members
        at = analyse_page()
        at.file_uploader[0].set_value([(name, data, "image/png")]).run()
        click(at, "Analyse 1 image")
        at.switch_page("pages/cells.py").run()
        at.switch_page("pages/analyse.py").run()
        assert not at.exception
    assert len(calls) == 1


def test_sample_sheet_upload_sets_conditions(shipped_model, shared_data):
    at = analyse_page()
    data = (shared_data / "bbb" / "train" / "bbb_02.png").read_bytes()
    at.file_uploader[0].set_value([("bbb_02.png", data, "image/png")]).run()
    at.file_uploader[1].set_value([("plate.csv", b"file,condition,dose,dose_unit\nbbb_02.png,vehicle,0,ng\n",
                                    "text/csv")]).run()
    sheet = at.session_state["session"].results.sheet
    assert sheet.loc[sheet["file"] == "bbb_02.png", "condition"].iloc[0] == "vehicle"
    at.file_uploader[1].set_value([("bad.csv", b"condition\nx\n", "text/csv")]).run()
    assert any(e.value.startswith("bad.csv: missing column 'file'") for e in at.error)


def test_segmentation_page_draws_cells_and_hover(demo):
    at = demo.switch_page("pages/segmentation.py").run()
    assert not at.exception
    assert len(at.get("imgs")) >= 1 or len(at.image) >= 2
    spec = at.get("plotly_chart")[0].proto.spec
    cells = demo.session_state["session"].results.results["bbb_rgb_01.jpg"].cells
    import json

    figure = json.loads(spec)
    assert len(figure["data"]) == 2 and len(figure["data"][1]["x"]) == len(cells)  # the picture + the markers
    at.selectbox(key="seg_colour").set_value("area_um2").run()
    at.toggle(key="seg_ids").set_value(True).run()
    assert not at.exception
    assert "Colour: area_um2" in " ".join(c.value for c in at.caption)
    markers = json.loads(at.get("plotly_chart")[0].proto.spec)["data"][1]["marker"]
    assert markers["colorbar"]["title"]["text"] == "area (µm²)"  # the colours' scale, with its unit
    np.testing.assert_allclose(chart_array(markers["color"]),
                               cells.set_index("cell_id").loc[sorted(cells["cell_id"]), "area_um2"], rtol=1e-9)


def test_cells_page_filters_and_downloads(demo, monkeypatch):
    at = demo.switch_page("pages/cells.py").run()
    assert not at.exception
    shown = at.dataframe[0].value
    cells = demo.session_state["session"].cells()
    assert len(shown) == int((~cells["touches_edge"]).sum())
    at.multiselect(key="cells_conditions").set_value(["tat"]).run()
    assert set(at.dataframe[0].value["condition"]) == {"tat"}
    at.checkbox(key="cells_edge").check().run()
    assert len(at.dataframe[0].value) == int((cells["condition"] == "tat").sum())
    labels = [d.label for d in at.get("download_button")]
    assert labels[:3] == ["Cells CSV (shown)", "Cells CSV (all)", "Summary CSV"]
    summary = at.dataframe[1].value
    assert len(summary) == 5 and "n_edge_excluded" in summary.columns


def test_download_bytes_are_the_table(demo, monkeypatch):
    stores = []

    class Recording(app_test_module.MemoryMediaFileStorage):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            stores.append(self)

    monkeypatch.setattr(app_test_module, "MemoryMediaFileStorage", Recording)
    at = new_app().run()
    at.session_state["session"] = demo.session_state["session"]
    at.switch_page("pages/cells.py").run()
    button = [d for d in at.get("download_button") if d.proto.label == "Cells CSV (all)"][0]
    data = stores[-1].get_file(button.proto.url.rsplit("/", 1)[1]).content
    table = pd.read_csv(io.BytesIO(data))
    expected = demo.session_state["session"].results.cells()
    assert len(table) == len(expected)
    np.testing.assert_allclose(table["area"], expected["area"])


def chart_array(value) -> np.ndarray:
    """A plotly spec array: a list, or plotly 6's typed array ({dtype, bdata, shape})."""
    import base64

    if isinstance(value, dict) and "bdata" in value:
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = value.get("shape")
        return array.reshape([int(n) for n in str(shape).split(",")]) if shape else array
    return np.asarray(value)


def test_plots_page_draws_the_cells_it_is_given(demo):
    at = demo.switch_page("pages/plots.py").run()
    assert not at.exception
    kinds = at.radio(key="plot_kind").options
    assert kinds == ["Histogram", "Box", "Violin", "Strip", "Scatter", "Scatter matrix", "Correlation"]
    cells = at.session_state["session"].cells()
    cells = cells[~cells["touches_edge"].astype(bool)]  # the page's default: edge cells left out
    for kind in kinds:
        at.radio(key="plot_kind").set_value(kind).run()
        assert not at.exception, kind
        [chart] = at.get("plotly_chart")
        traces = json.loads(chart.proto.spec)["data"]
        if kind in ("Histogram", "Box", "Violin", "Strip"):
            feature = at.selectbox(key="hist_feature" if kind == "Histogram" else "dist_feature").value
            axis = "x" if kind == "Histogram" else "y"
            for condition, group in cells.groupby("condition"):
                [trace] = [t for t in traces if t["name"] == condition]
                np.testing.assert_allclose(np.sort(chart_array(trace[axis])), np.sort(group[feature]), err_msg=kind)
        elif kind == "Scatter":
            x, y = at.selectbox(key="scatter_x").value, at.selectbox(key="scatter_y").value
            assert x != y
            drawn = np.concatenate([np.c_[chart_array(t["x"]), chart_array(t["y"])] for t in traces])
            given = cells[[x, y]].to_numpy(float)
            np.testing.assert_allclose(drawn[np.lexsort(drawn.T)], given[np.lexsort(given.T)])
        elif kind == "Scatter matrix":
            chosen = at.multiselect(key="Scatter matrix_features").value
            assert len(chosen) >= 2
            named = {plots.column_label(f): f for f in chosen}  # axes carry names with units
            for dimension in traces[0]["dimensions"]:
                feature = named[dimension["label"]]
                shown = np.concatenate([chart_array(next(d for d in t["dimensions"]
                                                         if d["label"] == dimension["label"])["values"])
                                        for t in traces])
                np.testing.assert_allclose(np.sort(shown), np.sort(cells[feature]))
        else:
            chosen = at.multiselect(key="Correlation_features").value
            np.testing.assert_allclose(chart_array(traces[0]["z"]), cells[chosen].corr(method="spearman"),
                                       atol=1e-9)


def primary_statistics(at: AppTest) -> pd.DataFrame:
    """The Compare page's table of the primary test (the other figures are in an expander of their own)."""
    [table] = [d.value for d in at.dataframe if "p_welch" in d.value.columns]
    return table


def test_compare_page_counts_images_per_condition(demo):
    at = demo.switch_page("pages/compare.py").run()
    assert not at.exception
    table = at.dataframe[0].value.set_index("group")
    assert table.loc["control", "n_images"] == 3 and table.loc["tat", "n_images"] == 2
    assert table.loc["control", "difference"] == 0
    # The statistics: per replicate (the demo sheet gives replicates), with the small-n warning.
    stats = primary_statistics(at)
    assert set(stats["unit"]) == {"replicate"} and (stats["n_images"] == 2).all()
    assert (stats["n_images_control"] == 3).all()
    assert any("fewer than 3 replicate units in tat" in w.value for w in at.warning)
    # The figures are those of the session's cells, recomputed here: replicate means of the usable
    # cells (not at the edge), Welch's test on them, then Holm across the features shown.
    from scipy import stats as st
    from statsmodels.stats.multitest import multipletests

    cells = at.session_state["session"].cells()
    cells = cells[~cells["touches_edge"].astype(bool)]
    means = cells.groupby(["condition", "replicate"])[list(stats["feature"])].mean()
    expected = [st.ttest_ind(means.loc["tat", f], means.loc["control", f], equal_var=False).pvalue
                for f in stats["feature"]]
    np.testing.assert_allclose(stats["p_welch"], expected, rtol=1e-9)
    np.testing.assert_allclose(stats["p_holm"], multipletests(expected, method="holm")[1], rtol=1e-9)


def test_labels_tiff_replaces_the_model_cells(demo):
    at = demo.switch_page("pages/analyse.py").run()
    image = demo.session_state["session"].results.results["bbb_rgb_04.jpg"].image
    labels = np.zeros(image.shape, np.int32)
    labels[100:400, 100:500] = 1
    labels[500:900, 600:1000] = 2
    at.selectbox(key="labels_target").set_value("bbb_rgb_04.jpg").run()
    at.file_uploader(key="labels_uploader").set_value([("fixed.tif", labels_tiff_bytes(labels), "image/tiff")]).run()
    at.button(key="replace_cells").click().run()
    assert not at.exception
    result = at.session_state["session"].results.results["bbb_rgb_04.jpg"]
    assert len(result.cells) == 2 and result.source == "labels file fixed.tif"
    assert any("2 cells from fixed.tif" in s.value for s in at.success)


def test_about_page_shows_the_model(demo):
    at = demo.switch_page("pages/home.py").run()
    assert not at.exception and at.title[0].value == "BBB cell analyser"
    assert "bbb_unet" in " ".join(m.value for m in at.markdown)


def test_anomalies_page_fits_flags_and_feeds_the_table(demo):
    at = demo.switch_page("pages/anomalies.py").run()
    assert not at.exception and "Fit the model" in at.info[0].value
    at.selectbox[0].set_value("control")  # fit on the control cells (a form: submitted together)
    at.button[0].click().run()
    assert not at.exception
    summary = at.caption[0].value
    assert summary.startswith("Fitted on condition control")
    assert len(at.get("plotly_chart")) == 4  # codes, scores, share per condition, share per image
    assert any(d.proto.label.startswith("Download the fitted model") for d in at.get("download_button"))
    flagged_before = int(summary.split(": ")[-1].split(" of ")[0])
    at.slider(key="anomaly_contamination").set_value(0.3).run()
    flagged_after = int(at.caption[0].value.split(": ")[-1].split(" of ")[0])
    assert flagged_after > flagged_before
    at.switch_page("pages/cells.py").run()
    shown = at.dataframe[0].value
    assert {"anomaly_score", "is_anomaly"} <= set(shown.columns)
    assert shown["is_anomaly"].any()
    # A reload (a new session on the experiment in the URL) shows the same fit, threshold and flags.
    again = new_app()
    again.query_params["experiment"] = str(at.session_state["session"].experiment_id)
    again.run()
    again.switch_page("pages/anomalies.py").run()
    assert not again.exception and again.caption[0].value == at.switch_page("pages/anomalies.py").run().caption[0].value
    assert again.slider(key="anomaly_contamination").value == 0.3
    assert int(again.caption[0].value.split(": ")[-1].split(" of ")[0]) == flagged_after


def test_an_experiment_survives_a_page_reload(shipped_model, shared_data):
    at = analyse_page()
    data = (shared_data / "bbb" / "train" / "bbb_02.png").read_bytes()
    at.file_uploader[0].set_value([("control_frame07.png", data, "image/png")]).run()
    click(at, "Analyse 1 image")
    experiment = at.session_state["session"].experiment_id
    assert experiment is not None and str(at.query_params["experiment"]).strip("[]'") == str(experiment)
    n_cells = len(at.session_state["session"].results.results["control_frame07.png"].cells)
    # A reload is a new session: the URL names the experiment, the store has the results.
    again = new_app()
    again.query_params["experiment"] = str(experiment)
    again.run()
    assert not again.exception and again.success[0].value.startswith("Open: **Experiment ")
    again.switch_page("pages/cells.py").run()
    assert len(again.dataframe[0].value) == n_cells - int(
        again.session_state["session"].results.results["control_frame07.png"].cells["touches_edge"].sum())
    assert set(again.dataframe[0].value["condition"]) == {"control"}
    again.switch_page("pages/analyse.py").run()
    assert [b.label for b in again.button if "analysed" in b.label] == ["All images analysed"]  # nothing recomputed


def test_experiments_are_created_renamed_and_deleted_in_the_page():
    at = new_app().run()
    at.text_input[0].set_value("Plate 3 (Tat 40 ng)")
    [submit] = [b for b in at.button if b.label == "Create and open"]
    submit.click().run()
    assert not at.exception and "Plate 3 (Tat 40 ng)" in at.success[0].value
    at.text_input(key="exp_new_name").set_value("Plate 3").run()
    at.button(key="exp_rename").click().run()
    assert "Plate 3" in set(at.dataframe[0].value["name"]) and "Plate 3 (Tat 40 ng)" not in set(at.dataframe[0].value["name"])
    assert at.button(key="exp_delete").disabled  # needs the confirmation first
    at.checkbox(key="exp_sure").check().run()
    at.button(key="exp_delete").click().run()
    from dashboard import state

    assert "Plate 3" not in set(state.store().experiments()["name"])
    assert at.session_state["session"].experiment_id is None


def test_a_broken_data_folder_is_named_and_the_rest_still_works(tmp_path, monkeypatch, data_folder):
    from dashboard import state

    (tmp_path / "bbb.sqlite").write_bytes(b"not a database" * 50)
    monkeypatch.setenv("BBB_DATA_DIR", str(tmp_path))
    state._open_store.clear()
    try:
        at = new_app().run()
        assert not at.exception
        assert "not a usable BBB database" in at.error[0].value and "left untouched" in at.error[0].value
        at.switch_page("pages/analyse.py").run()
        assert not at.exception and at.title[0].value == "Upload & analyse"
    finally:
        monkeypatch.setenv("BBB_DATA_DIR", str(data_folder))
        state._open_store.clear()


def test_quality_control_exclusion_reaches_the_statistics_and_the_methods(demo):
    at = demo.switch_page("pages/compare.py").run()
    before = primary_statistics(at)["n_images_control"].iloc[0]
    at.switch_page("pages/cells.py").run()
    at.selectbox(key="qc_image").set_value("bbb_rgb_05.jpg")
    at.text_input(key="qc_reason").set_value("out of focus").run()
    at.button(key="qc_exclude").click().run()
    assert not at.exception
    at.switch_page("pages/compare.py").run()
    assert primary_statistics(at)["n_images_control"].iloc[0] == before - 1
    methods = " ".join(m.value for m in at.markdown)
    assert "1 image and 0 further cells were excluded from the statistics (out of focus: 1)" in methods
    at.switch_page("pages/cells.py").run()
    at.selectbox(key="qc_image").set_value("bbb_rgb_05.jpg").run()
    at.button(key="qc_include").click().run()  # leave the shared demo as it was


def test_a_flagged_image_is_excluded_in_one_click_with_its_flag_as_reason(demo):
    at = demo.switch_page("pages/cells.py").run()
    assert not at.exception
    # The 4x image among 10x ones: about 8x the experiment's median cell count.
    [flag] = [w.value for w in at.warning if w.value.startswith("bbb_rgb_02.jpg: ")]
    assert "x the experiment's median" in flag
    summary = at.session_state["session"].summary().set_index("image")
    assert summary.loc["bbb_rgb_02.jpg", "n_cells_relative"] > 2 and summary["focus_score"].gt(0).all()
    index = [w.value for w in at.warning if "x the experiment's median" in w.value or "blurred" in w.value
             or "saturated" in w.value].index(flag)
    at.button(key=f"qc_flag_{index}").click().run()
    assert not at.exception
    cells = at.session_state["session"].cells()
    excluded = cells[cells["image"] == "bbb_rgb_02.jpg"]
    assert excluded["is_excluded"].eq(True).all() and set(excluded["excluded_reason"]) == {flag.split(": ", 1)[1]}
    at.selectbox(key="qc_image").set_value("bbb_rgb_02.jpg").run()
    at.button(key="qc_include").click().run()  # leave the shared demo as it was


def test_a_first_time_user_finds_the_sample_data_on_the_start_page():
    at = new_app().run()
    at.button(key="exp_sample").click().run()
    assert not at.exception
    assert at.title[0].value == "Upload & analyse"
    assert len(at.session_state["session"].files) == 5 and at.session_state["session"].experiment_id is not None
    assert any(b.label == "Analyse 5 images" for b in at.button)


def test_cell_diameters_are_shown_before_and_after_the_analysis(shipped_model):
    at = analyse_page()
    click(at, "Load sample data")
    table = at.dataframe[0].value
    assert table["diameter_estimated_px"].isna().all()
    at.button(key="estimate_diameters").click().run()
    assert not at.exception
    table = at.dataframe[0].value.set_index("file")
    assert table["diameter_estimated_px"].notna().all()
    assert table.loc["bbb_rgb_04.jpg", "diameter_estimated_px"] == pytest.approx(150, rel=0.15)
    assert not any(b.key == "estimate_diameters" for b in at.button)  # nothing left to estimate


def test_a_czi_with_scenes_shows_each_scene_its_channels_and_pixel_size(shipped_model, tmp_path):
    from tests.microscope_files import write_czi
    from tests.synthetic import voronoi_monolayer

    scenes = []
    for seed in (1, 2):
        field = voronoi_monolayer(shape=(384, 512), n_cells=30, seed=seed)
        scenes.append((np.stack([field["nuclei"], field["junction"]]) * 4095).astype(np.uint16))  # DAPI first
    path = write_czi(tmp_path / "plate.czi", scenes, pixel_size_um=0.1028, channel_names=["DAPI", "ZO-1"])
    at = analyse_page()
    at.file_uploader[0].set_value([("plate.czi", path.read_bytes(), "application/octet-stream")]).run()
    assert not at.exception and not at.error
    assert at.dataframe[0].value["file"].tolist() == ["plate.czi#0", "plate.czi#1"]
    captions = [image.proto.imgs[0].caption for image in at.get("image")]
    assert captions[:2] == ["DAPI: nuclei", "ZO-1: junction"]
    [size] = [n for n in at.number_input if n.label.startswith("Pixel size")]
    assert size.value == pytest.approx(0.1028) and "from the file" in size.label
    # The person picks the channels for one scene: stored per image, with a warning for an odd pick.
    [junction] = [s for s in at.selectbox if s.label.startswith("Junction channel")]
    junction.set_value(0).run()
    session = at.session_state["session"]
    assert session.channel_for("plate.czi#0") == 0 and session.channel_for("plate.czi#1") is None
    assert any("looks like nuclei" in w.value for w in at.warning)
    click(at, "Analyse 2 images")
    assert not at.exception
    experiment = session.experiment_id
    again = new_app()
    again.query_params["experiment"] = str(experiment)
    again.run()
    assert again.session_state["session"].channel_for("plate.czi#0") == 0  # the choice survives a reload


def test_the_chart_library_loads_on_a_tabs_first_page_only():
    at = new_app().run()
    assert not at.exception
    [chart] = at.sidebar.get("plotly_chart")  # empty and 10 px high: the browser fetches plotly.js now
    assert chart.proto.spec  # a real figure the browser must draw
    at.switch_page("pages/analyse.py").run()
    assert not at.exception
    assert not at.sidebar.get("plotly_chart")


def test_correct_cells_page_edits_undoes_and_shows_the_history(demo):
    at = demo.switch_page("pages/correct.py").run()
    assert not at.exception and at.title[0].value == "Correct cells"
    buttons = {b.label: b for b in at.button}
    # Nothing selected yet: only the view's and history's controls are live.
    assert all(buttons[label].disabled for label in ("Delete", "Merge", "New cell", "Split", "Undo", "Redo", "Revert"))
    session = at.session_state["session"]
    name = at.selectbox(key="edit_image").value
    before = session.results.results[name]
    first = int(before.cells["cell_id"].min())
    session.edit_cells(name, "delete", cells=[first])  # what the Delete button does with a selection
    at.run()
    assert not [b for b in at.button if b.label == "Undo"][0].disabled
    assert any(e.label.startswith("History: 1 version") for e in at.expander)
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert first not in figure["data"][1]["customdata"]  # the picture shows the corrected cells
    click(at, "Undo")
    assert not at.exception and any(s.value == f"{name}: undid: deleted cell {first}" for s in at.success)
    assert np.array_equal(session.results.results[name].labels, before.labels)
    assert [b for b in at.button if b.label == "Revert"][0].disabled  # the model's cells again
    assert any(e.label.startswith("History: 2 version") for e in at.expander)


def test_teach_page_lists_what_the_model_learns_from_and_compare_says_when_models_mix(demo):
    at = demo.switch_page("pages/teach.py").run()
    assert not at.exception and at.title[0].value == "Teach the model"
    session = at.session_state["session"]
    [teach] = [b for b in at.button if b.label == "Teach"]
    if not session.teaching_examples():
        assert teach.disabled and "No cells corrected or accepted yet" in at.info[0].value
    name = session.results.names()[1]
    ids = sorted(int(i) for i in session.results.results[name].cells["cell_id"])[:4]
    session.accept_cells(name, ids)
    at.run()
    table = at.dataframe[0].value.set_index("image")
    assert table.loc[name, "cells to learn from"] >= 4
    assert not [b for b in at.button if b.label == "Teach"][0].disabled
    assert at.text_input(key="teach_name").value == "bbb_unet-taught-1"
    session.undo_edit(name)

    at.switch_page("pages/compare.py").run()
    mixed = len(session.models_used()) > 1  # an earlier test may have replaced one image's cells by a file's
    assert any("mixes models" in w.value for w in at.warning) == mixed
    result = session.results.results[name]
    from dataclasses import replace

    version = result.model_version  # the shipped model's, as the image was analysed with it
    session.results.results[name] = replace(result, model_version=f"{version}+ft")
    at.run()
    assert any(w.value.startswith(f"This experiment mixes models (bbb_unet {version}: ") and
               f"; bbb_unet {version}+ft: 1 image(s)" in w.value for w in at.warning)
    assert any(b.label == "Re-analyse every image with bbb_unet" for b in at.button)
    session.results.results[name] = result


def test_a_reloaded_teach_page_shows_the_fine_tuning_under_way_and_cancels_it(demo, data_folder):
    import subprocess
    import sys

    from bbbcore.finetune import JOB_FILE
    from bbbcore.registry import registry_folder

    # A stand-in for `python -m bbbcore finetune`, started as the job starts it (its own process group): a
    # process whose command line names the job's progress file, as the real one does.
    job_folder = registry_folder(data_folder) / "jobs" / "lab-reload-20261202-010000"
    job_folder.mkdir(parents=True)
    progress = job_folder / "progress.json"
    progress.write_text(json.dumps({"stage": "training", "fraction": 0.3}))
    (job_folder / "log.txt").write_text("")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "--progress", str(progress)],
                             start_new_session=True)
    session = demo.session_state["session"]
    try:
        (job_folder / JOB_FILE).write_text(json.dumps({"name": "lab-reload", "pid": child.pid,
                                                       "model_path": str(registry_folder(data_folder) / "x.keras")}))
        session.teaching = None  # what a reload gives: a new session that started nothing
        at = demo.switch_page("pages/teach.py").run()
        assert not at.exception and session.teaching is not None and session.teaching.pid == child.pid
        assert at.get("progress")[0].proto.text == "lab-reload: training (30%)"
        assert not [b for b in at.button if b.label == "Teach"]  # one fine-tuning at a time
        click(at, "Cancel")
        assert child.wait(timeout=30) is not None  # stopped by its id
        assert not at.exception and [b for b in at.button if b.label == "Teach"]
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        session.teaching = None


def test_a_taught_model_is_offered_beside_the_shipped_ones(demo, data_folder):
    import shutil

    from bbbcore import config

    registry = data_folder / "models"
    registry.mkdir(exist_ok=True)
    copies = [registry / f"lab-offered{ext}" for ext in (".keras", ".card.json", ".onnx")]
    try:
        for copy in copies:
            shutil.copy(config.DEFAULT_MODEL.with_suffix(copy.suffix) if copy.suffix != ".json"
                        else config.DEFAULT_MODEL.with_name("bbb_unet.card.json"), copy)
        at = demo.switch_page("pages/analyse.py").run()
        [model] = [box for box in at.selectbox if box.label == "Model"]
        assert model.options[0] == "bbb_unet.keras" and model.options[-1] == "lab-offered (taught here)"
    finally:
        for copy in copies:
            copy.unlink(missing_ok=True)


def test_a_field_is_applied_to_all_rows_or_filled_down(shared_data):
    at = analyse_page()
    files = [(f"plate_{i}.png", (shared_data / "bbb" / "train" / "bbb_02.png").read_bytes(), "image/png")
             for i in range(3)]
    at.file_uploader[0].set_value(files).run()
    names = [name for name, _, _ in files]
    at.selectbox(key="fill_column").set_value("pixel_size_um")
    at.text_input(key="fill_value").set_value("0.65")
    at.button(key="fill_all").click().run()
    assert not at.exception
    sheet = at.session_state["session"].sheet_for(names)
    assert sheet["pixel_size_um"].tolist() == [0.65] * 3
    # Fill down: clear the condition everywhere, type it in the first row, and fill it down.
    at.selectbox(key="fill_column").set_value("condition")
    at.text_input(key="fill_value").set_value("")
    at.button(key="fill_all").click().run()
    assert at.session_state["session"].sheet_for(names)["condition"].isna().all()
    at.session_state["session"].set_sample_fields("plate_0.png", condition="tat")
    at.run()
    at.selectbox(key="fill_column").set_value("condition")
    at.button(key="fill_down").click().run()
    assert at.session_state["session"].sheet_for(names)["condition"].tolist() == ["tat"] * 3
    # A number field refuses text, in one line.
    at.selectbox(key="fill_column").set_value("dose")
    at.text_input(key="fill_value").set_value("eighty")
    at.button(key="fill_all").click().run()
    assert at.error[0].value == "dose: 'eighty' is not a number"


def test_junctions_page_draws_the_interfaces_and_compares_conditions(demo):
    at = demo.switch_page("pages/junctions.py").run()
    assert not at.exception and at.title[0].value == "Junctions"
    session = at.session_state["session"]
    name = at.selectbox(key="junction_image").value
    mine = session.results.results[name].interfaces
    [figure] = [c for c in at.get("plotly_chart") if "interfaces" in c.proto.spec]
    traces = json.loads(figure.proto.spec)["data"]
    # One marker per interface, and one line trace per junction class present, named by it.
    [markers] = [t for t in traces if t.get("name") == "interfaces"]
    assert len(chart_array(markers["x"])) == len(mine)
    classes = {t["name"] for t in traces if t.get("mode") == "lines"}
    assert classes <= {"continuous", "punctate", "perpendicular", "absent"} and classes
    # Coloured by a column: its colour bar, and lines binned by its values.
    at.selectbox(key="junction_colour").set_value("linearity_index").run()
    traces = json.loads([c for c in at.get("plotly_chart") if "interfaces" in c.proto.spec][0].proto.spec)["data"]
    [markers] = [t for t in traces if t.get("name") == "interfaces"]
    assert markers["marker"]["colorbar"]["title"]["text"] == "linearity_index"
    np.testing.assert_allclose(chart_array(markers["marker"]["color"]), mine["linearity_index"])
    # The table is every image's interfaces, with conditions; per condition, image means as on Compare.
    table = at.dataframe[0].value
    assert len(table) == sum(len(r.interfaces) for r in session.results.results.values())
    assert set(table["condition"]) == {"control", "tat"}
    assert [d.proto.label for d in at.get("download_button")] == ["Interfaces CSV"]


def test_the_report_holds_the_images_figures_statistics_and_methods(demo):
    at = demo.switch_page("pages/compare.py").run()
    at.button(key="report_build").click().run()
    assert not at.exception
    [download] = [d for d in at.get("download_button") if d.proto.label == "Download report (HTML)"]
    session = at.session_state["session"]
    html = session.built_report((tuple(at.multiselect(key="stats_features").value),
                                 at.selectbox(key="cmp_control_False").value))
    names = session.results.names()
    assert html.count('<img alt="') == len(names) and all(f"<b>{n}</b>" in html for n in names)
    tested = at.multiselect(key="stats_features").value
    assert html.count('class="plotly-graph-div"') == len(tested)
    assert html.count("<script type=\"text/javascript\">/**") <= 1  # plotly.js inlined once: self-contained
    for row in session.statistics(tuple(tested), at.selectbox(key="cmp_control_False").value).itertuples():
        assert f"<td>{row.p_holm:.4g}</td>" in html
    assert session.methods_text().split(".")[0] in html
    # The Cells page shows the same images as a gallery.
    at.switch_page("pages/cells.py").run()
    summary = session.summary()
    captions = [i.proto.imgs[0].caption.split(" (")[0] for i in at.get("image")]  # flags follow in brackets
    assert sorted(captions) == sorted(f"{r.image}: {int(r.n_cells)} cells" for r in summary.itertuples())
