"""bbbcore.session: one open experiment driven as a notebook would, written through to the store."""

from __future__ import annotations

import io
import threading
import zipfile

import numpy as np
import pandas as pd
import pytest

from bbbcore.export import labels_tiff_bytes
from bbbcore.io import UNREADABLE
from bbbcore.session import SAMPLE_DATA_DIR, AnalysisSession
from bbbcore.store import Store

pytestmark = pytest.mark.model
IMAGES = ["bbb_rgb_01.jpg", "bbb_rgb_02.jpg"]


@pytest.fixture(scope="module")
def analysed(shipped_model, tmp_path_factory):
    """A session that analysed two sample images (renamed as a lab would) and one bad file."""
    store = Store(tmp_path_factory.mktemp("session-store"))
    session = AnalysisSession(store)
    opened = []
    session.on_experiment = opened.append
    session.add_file("control_01.jpg", (SAMPLE_DATA_DIR / IMAGES[0]).read_bytes())
    session.add_file("notes.png", b"my notes, not an image")
    session.add_file("tat_80ng_01.jpg", (SAMPLE_DATA_DIR / IMAGES[1]).read_bytes())
    steps = list(session.analyse(shipped_model))
    return session, store, steps, opened


def test_progress_is_reported_before_and_after_each_image(analysed):
    session, _, steps, _ = analysed
    assert [(s.name, s.done) for s in steps] == [
        ("control_01.jpg", False), ("control_01.jpg", True), ("tat_80ng_01.jpg", False), ("tat_80ng_01.jpg", True)]
    assert all(s.ok and s.total == 2 for s in steps)
    assert steps[1].message.startswith("control_01.jpg: ") and " cells in " in steps[1].message
    assert session.unreadable() == {"notes.png": f"notes.png: {UNREADABLE}"}
    assert session.pending() == []  # everything readable is analysed


def test_a_bad_file_named_in_a_run_gets_its_line_and_the_others_finish(analysed, shipped_model):
    session, _, _, _ = analysed
    steps = [s for s in session.analyse(shipped_model, ["notes.png"]) if s.done]
    assert [(s.ok, s.message) for s in steps] == [
        (False, f"notes.png: {UNREADABLE}")]
    assert session.results.errors["notes.png"] == steps[0].message
    assert len(session.results) == 2  # nothing already computed is lost


def test_problems_name_each_unusable_file_once_and_the_run_counts_them(shipped_model):
    from tests.synthetic import png_bytes as png

    session = AnalysisSession()
    good = (SAMPLE_DATA_DIR / "bbb_rgb_05.jpg").read_bytes()
    session.add_file("good.jpg", good)
    session.add_file("tiny.png", png(np.zeros((8, 8), np.uint8)))  # read, refused when analysed
    session.add_file("junk.png", b"not an image at all")  # never read
    assert session.run_outcome() is None and list(session.problems()) == ["junk.png"]
    for _ in session.analyse(shipped_model):
        pass
    problems = session.problems()
    assert sorted(problems) == ["junk.png", "tiny.png"]
    assert problems["tiny.png"].startswith("tiny.png: image of 8 x 8 px is too small to segment")
    assert "use a larger field" in problems["tiny.png"]  # what to do, in the same line
    line, failed = session.run_outcome()
    assert failed and line.startswith("done: 1 analysed, 2 failed in ")


def test_results_are_stored_with_the_model_and_the_file_name_conditions(analysed, shipped_model):
    session, store, _, opened = analysed
    assert opened == [session.experiment_id] and session.experiment_name().startswith("Experiment ")
    images = store.images(session.experiment_id).set_index("name")
    assert list(images.index) == ["control_01.jpg", "tat_80ng_01.jpg"]
    assert set(images["model_name"]) == {shipped_model.card.name}
    assert set(images["model_version"]) == {shipped_model.card.version}
    assert images.loc["tat_80ng_01.jpg", "condition"] == "tat" and images.loc["tat_80ng_01.jpg", "dose"] == 80
    cells = session.cells()
    assert len(store.cells(session.experiment_id)) == len(cells) > 100
    assert set(cells["condition"]) == {"control", "tat"}
    summary = session.summary()
    assert summary["image"].tolist() == ["control_01.jpg", "tat_80ng_01.jpg"] and (summary["n_cells"] > 10).all()


def test_a_reopened_experiment_has_everything_and_recomputes_nothing(analysed):
    session, store, _, _ = analysed
    again = AnalysisSession(store)
    again.open(session.experiment_id)
    assert again.pending() == []
    def plain(table):  # the store gives None where the table had NaN (issue 14 makes dtypes exact)
        table = table.drop(columns=["excluded_reason", "is_excluded"], errors="ignore")
        return table.astype(object).where(table.notna(), None)

    pd.testing.assert_frame_equal(plain(again.cells()), plain(session.cells()))
    for name, result in session.results.results.items():
        assert np.array_equal(again.results.results[name].labels, result.labels)
        assert again.results.results[name].model_name == result.model_name


def test_edits_and_exclusions_write_through(analysed):
    session, store, _, _ = analysed
    sheet = session.results.sheet.copy()
    sheet.loc[sheet["file"] == "control_01.jpg", ["condition", "replicate"]] = ["vehicle", "2"]
    version = session.version
    session.set_sheet(sheet)
    assert session.version > version and set(session.cells()["condition"]) == {"vehicle", "tat"}
    row = store.images(session.experiment_id).set_index("name").loc["control_01.jpg"]
    assert (row["condition"], row["replicate"]) == ("vehicle", "2")
    first = int(session.results.results["tat_80ng_01.jpg"].cells["cell_id"].iloc[0])
    session.exclude("tat_80ng_01.jpg", "debris", cell_ids=[first])
    stored = store.exclusions(session.experiment_id)
    assert stored.to_dict("records") == [{"image": "tat_80ng_01.jpg", "cell_id": first, "reason": "debris"}]
    assert "(debris: 1)" in session.methods_text()
    session.exclude("tat_80ng_01.jpg", None, cell_ids=[first])
    assert store.exclusions(session.experiment_id).empty


def test_hand_corrected_labels_replace_the_cells_and_are_stored(analysed):
    session, store, _, _ = analysed
    image = session.results.results["control_01.jpg"].image
    labels = np.zeros(image.shape, np.int32)
    labels[100:300, 100:300], labels[400:700, 500:900] = 1, 2
    result = session.replace_labels("control_01.jpg", labels_tiff_bytes(labels), "fixed.tif")
    assert len(result.cells) == 2 and result.model_name == "" and result.source == "labels file fixed.tif"
    stored = store.images(session.experiment_id).set_index("name").loc["control_01.jpg"]
    assert stored["source"] == "labels file fixed.tif" and stored["model_name"] == ""
    assert len(store.cells(session.experiment_id).query("image == 'control_01.jpg'")) == 2


def test_closing_and_deleting_are_one_operation_each(tmp_path):
    store = Store(tmp_path)
    session = AnalysisSession(store)
    opened = []
    session.on_experiment = opened.append
    created = session.create_experiment("Plate 3")
    session.add_file("a.png", b"x")
    session.close()
    assert (session.experiment_id, session.files, len(session.results)) == (None, {}, 0)
    session.open(created)
    assert session.experiment_name() == "Plate 3"
    session.delete_experiment()
    assert session.experiment_id is None and "Plate 3" not in set(store.experiments()["name"])
    assert opened == [created, None, created, None]


def test_sessions_creating_experiments_at_once_each_get_their_own(tmp_path):
    store = Store(tmp_path)
    sessions = [AnalysisSession(store) for _ in range(8)]
    errors = []

    def create(session):
        try:
            session.ensure_experiment("Experiment 2026-11-30 07:59")
        except Exception as exc:  # noqa: BLE001  (any exception is the failure this test looks for)
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(s,)) for s in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert len({s.experiment_id for s in sessions}) == 8
    names = set(store.experiments()["name"])
    assert len(names) == 8 and "Experiment 2026-11-30 07:59" in names


def test_sample_data_come_with_their_sheet_and_pixel_size(tmp_path):
    session = AnalysisSession(Store(tmp_path))
    session.add_sample_data()
    assert session.demo and sorted(session.files) == sorted(p.name for p in SAMPLE_DATA_DIR.glob("*.jpg"))
    assert session.experiment_name() == "Sample data (demo)"
    assert session.pixel_size_for("bbb_rgb_01.jpg") == pytest.approx(0.641)  # 100 µm over 156 px
    assert session.pixel_size_for("bbb_rgb_02.jpg") == pytest.approx(1.6)  # the 4x one: 200 µm over 125 px
    table = session.sheet_for(sorted(session.files))
    assert set(table["condition"]) == {"control", "tat"}
    assert len(session.pending()) == 5


def test_the_demo_grouping_is_recognised_from_what_is_stored():
    from bbbcore.metadata import read_sample_sheet
    from bbbcore.session import holds_demo_grouping

    files = {p.name: p.read_bytes() for p in SAMPLE_DATA_DIR.glob("*.jpg")}
    sheet = read_sample_sheet(SAMPLE_DATA_DIR / "samples.csv")
    assert holds_demo_grouping(files, sheet)
    regrouped = sheet.assign(condition=sheet["condition"].replace({"tat": "control"}))
    assert not holds_demo_grouping(files, regrouped)  # the person's own grouping: no demo banner
    assert not holds_demo_grouping({**files, "bbb_rgb_01.jpg": b"other bytes"}, sheet)
    assert not holds_demo_grouping({k: v for k, v in files.items() if k != "bbb_rgb_03.jpg"}, sheet)


def test_an_experiment_deleted_elsewhere_mid_run_keeps_every_finished_image(shipped_model, tmp_path):
    store = Store(tmp_path)
    session = AnalysisSession(store)
    session.create_experiment("Plate 7")
    for index, name in enumerate(IMAGES):
        session.add_file(f"control_0{index}.jpg", (SAMPLE_DATA_DIR / name).read_bytes())
    steps = session.analyse(shipped_model)
    finished = []
    for step in steps:
        if step.done:
            finished.append(step)
            if len(finished) == 1:
                session.exclude(step.name, "debris", cell_ids=[1])
                AnalysisSession(store).open(session.experiment_id)  # another lab member ...
                store.delete_experiment(store.experiment_id("Plate 7"))  # ... deletes it
    assert all(step.ok for step in finished) and len(finished) == 2
    assert session.notices == ["The experiment 'Plate 7' was deleted in another session; its 2 analysed image(s) "
                               "here are saved in 'Plate 7 (restored)'."]
    assert session.experiment_name() == "Plate 7 (restored)"
    stored = store.images(session.experiment_id)
    assert sorted(stored["name"]) == ["control_00.jpg", "control_01.jpg"]
    assert len(store.cells(session.experiment_id)) == len(session.cells())
    assert store.exclusions(session.experiment_id)["reason"].tolist() == ["debris"]  # the exclusion came along


def test_eight_lab_members_at_once_lose_nothing(shipped_model, tmp_path):
    """Eight sessions in threads, one store: each analyses two images into its own new experiment."""
    store = Store(tmp_path)
    crops = []
    for name in IMAGES:
        from bbbcore.io import load_image

        image = load_image(SAMPLE_DATA_DIR / name)
        crops.append(image.raw[:384, :512])
    from PIL import Image

    def png(array) -> bytes:
        import io

        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="PNG")
        return buffer.getvalue()

    files = [png(crop) for crop in crops]
    sessions = [AnalysisSession(store) for _ in range(8)]
    errors, steps = [], {}

    def work(index: int) -> None:
        try:
            session = sessions[index]
            session.add_file(f"member{index}_a.png", files[0])
            session.add_file(f"member{index}_b.png", files[1])
            steps[index] = [s for s in session.analyse(shipped_model) if s.done]
            session.exclude(f"member{index}_a.png", f"checked by member {index}")
        except Exception as exc:  # noqa: BLE001  (any exception is the failure this test looks for)
            errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert errors == [] and all(not t.is_alive() for t in threads)
    assert all(len(s) == 2 and all(step.ok for step in s) for s in steps.values()) and len(steps) == 8
    assert len({s.experiment_id for s in sessions}) == 8  # race-free naming: one experiment each
    for index, session in enumerate(sessions):
        images = store.images(session.experiment_id)
        assert sorted(images["name"]) == [f"member{index}_a.png", f"member{index}_b.png"]
        assert len(store.cells(session.experiment_id)) == len(session.cells()) > 0
        assert set(store.exclusions(session.experiment_id)["reason"]) == {f"checked by member {index}"}


def test_a_sample_sheet_naming_other_files_is_named_once(tmp_path):
    from bbbcore.metadata import read_sample_sheet

    session = AnalysisSession(Store(tmp_path))
    session.add_file("a.png", b"x")
    sheet = read_sample_sheet(b"file,condition\na.png,tat\nplate2_b.png,control\n", name="plate.csv")
    session.merge_sheet(sheet, source="plate.csv")
    assert session.notices == ["plate.csv: 1 row(s) name no file of this run: plate2_b.png (check the names)"]
    session.merge_sheet(sheet)  # the demo's own sheet, say: no notice
    assert len(session.notices) == 1


def test_a_page_reload_mid_run_keeps_the_finished_images_and_reports_them_whole(shipped_model, tmp_path):
    """A reload ends the old session's run between two images; the new session sees every finished one."""
    store = Store(tmp_path)
    session = AnalysisSession(store)
    for index, name in enumerate(["bbb_rgb_01.jpg", "bbb_rgb_03.jpg", "bbb_rgb_05.jpg"]):
        session.add_file(f"img{index}.jpg", (SAMPLE_DATA_DIR / name).read_bytes())
    run = session.analyse(shipped_model)
    done = []
    for step in run:
        if step.done:
            done.append(step)
            if len(done) == 2:  # the page goes away after the second image
                break
    run.close()  # Streamlit stops the old script: the generator is closed mid-run
    reloaded = AnalysisSession(store)
    reloaded.open(session.experiment_id)
    assert len(done) == 2 and sorted(reloaded.results.names()) == ["img0.jpg", "img1.jpg"]
    assert reloaded.pending() == [] and reloaded.last_run is None  # no half report: what is there is whole
    for name in reloaded.results.names():
        assert len(reloaded.results.results[name].cells) == len(session.results.results[name].cells)


def test_diameters_are_estimated_before_the_analysis_and_kept_by_it(shipped_model, tmp_path):
    session = AnalysisSession(Store(tmp_path))
    session.add_file("a.jpg", (SAMPLE_DATA_DIR / "bbb_rgb_04.jpg").read_bytes())
    session.add_file("broken.png", b"not an image")
    before = session.estimate_diameters(shipped_model)
    assert set(before) == {"a.jpg"} and before["a.jpg"] == pytest.approx(150, rel=0.15)
    [step] = [s for s in session.analyse(shipped_model) if s.done]
    assert step.result.diameter_estimated_px == pytest.approx(before["a.jpg"], rel=0.01)
    assert session.summary()["diameter_used_px"].tolist() == [shipped_model.card.diameter_px]  # zoom 1
    session.add_file("a.jpg", (SAMPLE_DATA_DIR / "bbb_rgb_05.jpg").read_bytes())  # new bytes: estimate again
    assert "a.jpg" not in session.estimated_diameters


def test_starting_over_keeps_the_chosen_settings(tmp_path):
    session = AnalysisSession(Store(tmp_path))
    session.settings.channel, session.settings.use_nuclei = "ZO-1", True
    session.add_file("a.png", b"x")
    session.close()
    assert session.files == {} and (session.settings.channel, session.settings.use_nuclei) == ("ZO-1", True)


def test_cells_corrected_by_hand_are_measured_stored_and_can_be_taken_back(shipped_model, tmp_path):
    from bbbcore.editing import EditError
    from bbbcore.instances import shared_borders

    store = Store(tmp_path / "store")
    session = AnalysisSession(store)
    session.add_file("control_01.jpg", (SAMPLE_DATA_DIR / IMAGES[0]).read_bytes())
    list(session.analyse(shipped_model))
    name = "control_01.jpg"
    model_labels = session.results.results[name].labels.copy()
    n_cells = len(session.results.results[name].cells)
    pairs, _, length = shared_borders(model_labels, None)
    a, b = (int(i) for i in pairs[np.argmax(length)])  # the two cells with the longest shared border

    said = session.edit_cells(name, "merge", cells=[a, b])
    assert said == f"merged cells {min(a, b)}, {max(a, b)} into cell {min(a, b)}"
    cells = session.results.results[name].cells.set_index("cell_id")
    assert len(cells) == n_cells - 1 and cells.loc[min(a, b), "edited"] and cells["edited"].sum() == 1
    merged_area = (model_labels == a).sum() + (model_labels == b).sum()
    assert cells.loc[min(a, b), "area"] == merged_area  # measured again, not carried over
    biggest = int(cells["area"].idxmax())
    session.edit_cells(name, "delete", cells=[biggest])
    assert session.edit_counts(name) == (2, 0)
    with pytest.raises(EditError, match="no cell"):
        session.edit_cells(name, "delete", cells=[biggest])  # gone already; nothing changes
    assert session.edit_counts(name) == (2, 0)
    assert bool(session.cells()["edited"].any()) and "corrected by hand" in session.results.results[name].source

    # Another session on the same store (a reload) sees the corrected cells.
    again = AnalysisSession(store)
    again.open(session.experiment_id)
    stored = again.results.results[name]
    assert np.array_equal(stored.labels, session.results.results[name].labels)
    assert set(stored.cells.loc[stored.cells["edited"].astype(bool), "cell_id"]) == {min(a, b)}

    assert session.undo_edit(name) == f"undid: deleted cell {biggest}"
    assert biggest in session.results.results[name].cells["cell_id"].values
    assert session.redo_edit(name) == f"redid: deleted cell {biggest}"
    assert biggest not in session.results.results[name].cells["cell_id"].values
    assert session.edit_counts(name) == (2, 0) and session.redo_edit(name) is None
    assert session.revert_edits(name)
    assert np.array_equal(session.results.results[name].labels, model_labels)
    assert len(session.results.results[name].cells) == n_cells and session.edit_counts(name) == (0, 0)

    # Every step is a stored version with its log line; each version's labels stay in the store.
    log = store.edits(session.experiment_id, name)
    assert log["operation"].tolist() == ["merge", "delete", "undo", "redo", "revert"]
    assert log["version"].tolist() == [1, 2, 3, 4, 5] and set(log["session"]) == {session.session_id}
    assert log["cells"].iloc[0] == sorted({a, b}) and log["cells"].iloc[1] == [biggest]
    assert (log["parent_sha"].iloc[1:].to_numpy() == log["labels_sha"].iloc[:-1].to_numpy()).all()  # a chain
    assert log["labels_sha"].iloc[-1] == log["parent_sha"].iloc[0] == store.labels_sha(session.experiment_id, name)
    assert log["labels_sha"].iloc[2] == log["labels_sha"].iloc[0]  # the undo came back to version 1's cells
    assert set(log["labels_sha"]) <= store.referenced_files()
    assert np.array_equal(read_labels(store, log["labels_sha"].iloc[1]), np.where(
        read_labels(store, log["labels_sha"].iloc[0]) == biggest, 0, read_labels(store, log["labels_sha"].iloc[0])))


def test_two_sessions_editing_one_image_the_second_is_told_and_nothing_is_overwritten(shipped_model, tmp_path):
    from bbbcore.store import EditConflict

    store = Store(tmp_path / "store")
    first = AnalysisSession(store)
    first.add_file("control_01.jpg", (SAMPLE_DATA_DIR / IMAGES[0]).read_bytes())
    list(first.analyse(shipped_model))
    second = AnalysisSession(store)
    second.open(first.experiment_id)
    name = "control_01.jpg"
    ids = sorted(int(i) for i in first.results.results[name].cells["cell_id"])
    first.edit_cells(name, "delete", cells=[ids[0]])
    before = second.results.results[name]
    with pytest.raises(EditConflict, match=r"control_01\.jpg: its cells were changed in another session at "
                                           r"\d\d:\d\d UTC; this edit was not saved: reload the page"):
        second.edit_cells(name, "delete", cells=[ids[1]])
    assert second.results.results[name] is before and second.edit_counts(name) == (0, 0)  # nothing changed here
    stored = AnalysisSession(store)
    stored.open(first.experiment_id)
    assert ids[0] not in stored.results.results[name].labels and ids[1] in stored.results.results[name].labels
    second.open(first.experiment_id)  # a reload: then its edits go through
    second.edit_cells(name, "delete", cells=[ids[1]])
    assert not np.isin(ids[:2], store_labels(store, first.experiment_id, name)).any()
    with pytest.raises(EditConflict):
        first.undo_edit(name)  # the first session's undo would bring back what the second deleted
    assert first.edit_counts(name) == (1, 0)


def one_image_analysed(model, tmp_path) -> tuple[Store, AnalysisSession, str]:
    """A store and a session with the first sample image analysed in it, and that image's name."""
    store = Store(tmp_path / "store")
    session = AnalysisSession(store)
    name = "control_01.jpg"
    session.add_file(name, (SAMPLE_DATA_DIR / IMAGES[0]).read_bytes())
    list(session.analyse(model))
    return store, session, name


def read_labels(store, labels_sha):
    from bbbcore.export import read_labels_tiff

    return read_labels_tiff(store.get_file(labels_sha))


def test_edits_of_an_earlier_visit_are_reverted_from_the_store(shipped_model, tmp_path):
    store, session, name = one_image_analysed(shipped_model, tmp_path)
    model_labels = session.results.results[name].labels.copy()
    ids = sorted(int(i) for i in session.results.results[name].cells["cell_id"])
    session.edit_cells(name, "delete", cells=ids[:2])
    session.edit_cells(name, "delete", cells=[ids[5]])

    again = AnalysisSession(store)  # a reload: no undo steps in memory, the log is in the store
    again.open(session.experiment_id)
    assert again.edit_counts(name) == (0, 0) and len(again.edit_log(name)) == 2
    assert again.revert_edits(name)
    reverted = again.results.results[name]
    assert np.array_equal(reverted.labels, model_labels) and np.array_equal(store_labels(
        store, session.experiment_id, name), model_labels)
    assert not reverted.cells["edited"].any() and "corrected by hand" not in reverted.source
    assert again.edit_log(name)["operation"].tolist() == ["delete", "delete", "revert"]
    assert not again.revert_edits(name)  # the model's cells already


def store_labels(store, experiment_id, name):
    from bbbcore.export import read_labels_tiff

    return read_labels_tiff(store.get_file(store.labels_sha(experiment_id, name)))


def test_after_a_reload_an_image_never_corrected_starts_with_no_edited_cells(shipped_model, tmp_path):
    store = Store(tmp_path / "store")
    session = AnalysisSession(store)
    for name in IMAGES:
        session.add_file(name, (SAMPLE_DATA_DIR / name).read_bytes())
    list(session.analyse(shipped_model))
    first_ids = sorted(int(i) for i in session.results.results[IMAGES[0]].cells["cell_id"])
    session.edit_cells(IMAGES[0], "delete", cells=[first_ids[0]])
    again = AnalysisSession(store)
    again.open(session.experiment_id)  # the stored cells table gives the other image an empty `edited`
    other = again.results.results[IMAGES[1]]
    assert "edited" not in other.cells or not other.cells["edited"].fillna(False).astype(bool).any()
    ids = sorted(int(i) for i in other.cells["cell_id"])
    again.edit_cells(IMAGES[1], "delete", cells=[ids[0]])
    assert not again.results.results[IMAGES[1]].cells["edited"].any()  # a deletion leaves no cell changed
    summary = again.summary().set_index("image")
    assert summary.loc[IMAGES[0], "n_edited"] == 0 and summary.loc[IMAGES[1], "n_edited"] == 0
    # Only deletions: no cell is marked, but both images are flagged, and said to be, corrected by hand.
    assert summary["corrected_by_hand"].all()
    assert f"corrected by hand in 2 of {len(IMAGES)} images" in again.methods_text()


def test_accepted_and_corrected_cells_are_what_the_model_is_taught_from(shipped_model, tmp_path):
    from bbbcore.editing import EditError
    from bbbcore.instances import shared_borders

    store, session, name = one_image_analysed(shipped_model, tmp_path)
    assert session.teaching_examples() == [] and session.models_used() == {f"bbb_unet {shipped_model.card.version}": 1}
    labels = session.results.results[name].labels
    pairs, _, length = shared_borders(labels, None)
    a, b = (int(i) for i in pairs[np.argmax(length)])
    session.edit_cells(name, "merge", cells=[a, b])
    others = [int(i) for i in session.results.results[name].cells["cell_id"] if i not in (a, b)][:3]
    assert session.accept_cells(name, others[:2]) == f"accepted cells {others[0]}, {others[1]} as right"
    with pytest.raises(EditError, match="no cell 99999"):
        session.accept_cells(name, [99999])
    [(image_name, image, taught)] = session.teaching_examples()
    current = session.results.results[name].labels
    assert image_name == name and image is session.results.results[name].image
    assert set(np.unique(taught)) == {0, min(a, b), *others[:2]}
    np.testing.assert_array_equal(taught[taught > 0], current[taught > 0])
    assert "accepted" not in session.results.results[name].source  # accepting is no correction

    # Stored: a reload keeps what was accepted; the log has the step; undo takes it back.
    again = AnalysisSession(store)
    again.open(session.experiment_id)
    assert set(np.unique(again.teaching_examples()[0][2])) == {0, min(a, b), *others[:2]}
    assert again.edit_log(name)["operation"].tolist() == ["merge", "accept"]
    assert session.undo_edit(name) == f"undid: accepted cells {others[0]}, {others[1]} as right"
    assert set(np.unique(session.teaching_examples()[0][2])) == {0, min(a, b)}
    # An accepted cell deleted afterwards is not taught.
    session.accept_cells(name, [others[2]])
    session.edit_cells(name, "delete", cells=[others[2]])
    assert set(np.unique(session.teaching_examples()[0][2])) == {0, min(a, b)}


def test_a_reopened_experiment_keeps_its_anomaly_model_and_scores(analysed):
    session, store, _, _ = analysed
    session.fit_anomalies(seed=2)
    session.set_contamination(0.2)
    scored = session.cells()
    again = AnalysisSession(store)
    again.open(session.experiment_id)
    assert again.anomaly.model is None and again.anomaly.saved is not None
    assert (again.anomaly.design, again.anomaly.seed, again.anomaly.contamination) == ("improved", 2, 0.2)
    # The stored scores serve as they are (reading the model would import TensorFlow) ...
    stored = again.cells()
    assert again.anomaly.model is None
    key = ["image", "cell_id"]
    stored, scored = stored.sort_values(key, ignore_index=True), scored.sort_values(key, ignore_index=True)
    assert stored[key].equals(scored[key])
    np.testing.assert_allclose(stored["anomaly_score"], scored["anomaly_score"], rtol=1e-6)
    assert stored["is_anomaly"].tolist() == scored["is_anomaly"].tolist()
    # ... and the model, read when asked for, is the one fitted: same threshold, same scores.
    model = again.anomaly_model()
    assert model.card.seed == 2 and model.threshold_for(0.2) == pytest.approx(session.anomaly.model.threshold_for(0.2))
    np.testing.assert_allclose(model.score(stored)["anomaly_score"], scored["anomaly_score"], rtol=1e-5)


def test_interfaces_are_stored_and_come_back_with_the_experiment(analysed):
    session, store, _, _ = analysed
    again = AnalysisSession(store)
    again.open(session.experiment_id)
    measured = {name: r.interface_table() for name, r in session.results.results.items()}
    assert any(len(t) > 10 for t in measured.values())
    for name, table in measured.items():
        back = again.results.results[name].interfaces
        if len(table):  # read from the store, not measured again (an image without any stores no row)
            assert back is not None and len(back) == len(table)
            pd.testing.assert_frame_equal(back[table.columns], table, check_dtype=False)
        else:
            assert again.results.results[name].interface_table().empty
    # The dashboard's zip has them, each with its image's sample fields.
    with zipfile.ZipFile(io.BytesIO(again.results.export_zip())) as archive:
        table = pd.read_csv(archive.open("interfaces.csv"))
    assert len(table) == sum(len(t) for t in measured.values())
    cells = session.cells()
    with_borders = [name for name, t in measured.items() if len(t)]
    assert set(table["condition"]) == set(cells.loc[cells["image"].isin(with_borders), "condition"])
