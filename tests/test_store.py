"""Experiments persist: SQLite store, one transaction per image, concurrent writers, zip round trip."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading

import numpy as np
import pandas as pd
import pytest

from bbbcore.export import labels_tiff_bytes
from bbbcore.features import cells_table
from bbbcore.store import Store, StoreError, params_key, sha256
from tests.conftest import ROOT


def fake_image(seed: int, n: int = 6) -> tuple[bytes, bytes, pd.DataFrame]:
    """An 'original file', its labels TIFF and its cells table."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((60, 80), np.int32)
    for i in range(n):
        labels[5 + 8 * (i // 3): 12 + 8 * (i // 3), 5 + 20 * (i % 3): 20 + 20 * (i % 3)] = i + 1
    original = rng.bytes(2000)
    cells = cells_table(labels, image=f"img{seed}.png", image_id=sha256(original)[:16], pixel_size_um=0.62)
    return original, labels_tiff_bytes(labels), cells


def save(store: Store, experiment: int, seed: int, *, name: str | None = None, params: dict | None = None) -> int:
    original, labels, cells = fake_image(seed)
    return store.save_image(experiment, name=name or f"img{seed}.png", original=original, labels_tiff=labels,
                            cells=cells, params=params or {"model": "bbb_unet 1.0"},
                            sample={"condition": "tat", "dose": 80.0, "pixel_size_um": 0.62}, shape=(60, 80))


def writer(folder, experiment: int, seeds: range) -> subprocess.Popen:
    """Another process saving one image per seed into the store at ``folder``."""
    script = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(ROOT / 'tests')!r})\n"
        "from bbbcore.store import Store\n"
        "from test_store import save\n"
        f"store = Store({str(folder)!r})\n"
        f"for k in range({seeds.start}, {seeds.stop}): save(store, {experiment}, k)\n"
    )
    return subprocess.Popen([sys.executable, "-c", script])


def test_experiments_are_created_renamed_and_deleted(tmp_path):
    store = Store(tmp_path)
    first = store.create_experiment("Tat dose series")
    second = store.create_experiment("pilot")
    with pytest.raises(StoreError, match="an experiment called 'pilot' exists already"):
        store.create_experiment("pilot")
    store.rename_experiment(second, "pilot 2026-11")
    save(store, first, 1)
    listing = store.experiments().set_index("name")
    assert listing.loc["Tat dose series", "n_images"] == 1 and listing.loc["Tat dose series", "n_cells"] == 6
    assert "pilot 2026-11" in listing.index
    store.delete_experiment(first)
    assert store.experiments()["name"].tolist() == ["pilot 2026-11"]
    assert store.cells(first).empty  # cascaded


def test_results_come_back_after_a_restart(tmp_path):
    store = Store(tmp_path)
    experiment = store.create_experiment("e")
    original, labels, cells = fake_image(3)
    store.save_image(experiment, name="a.png", original=original, labels_tiff=labels, cells=cells,
                     params={"model": "m"}, sample={"condition": "control", "dose": 0.0, "replicate": "1"})
    again = Store(tmp_path)  # a new process would do the same
    back = again.cells(experiment)[cells.columns].astype(object).where(lambda t: t.notna(), np.nan)
    expected = cells.astype(object).where(cells.notna(), np.nan)
    pd.testing.assert_frame_equal(back.reset_index(drop=True), expected.reset_index(drop=True), check_dtype=False)
    image = again.images(experiment).iloc[0]
    assert image["condition"] == "control" and image["replicate"] == "1"
    assert again.get_file(image["image_sha"]) == original and again.get_file(image["labels_sha"]) == labels


def test_the_same_image_is_recognised_unless_the_parameters_differ(tmp_path):
    store = Store(tmp_path)
    experiment = store.create_experiment("e")
    original, _, _ = fake_image(5)
    save(store, experiment, 5, params={"model": "bbb_unet 1.0", "pixel_size_um": 0.62})
    found = store.find_image(experiment, sha256(original), params_key({"pixel_size_um": 0.62, "model": "bbb_unet 1.0"}))
    assert found is not None and found["name"] == "img5.png"
    assert store.find_image(experiment, sha256(original), params_key({"model": "other 2.0"})) is None


def test_a_failed_write_leaves_nothing_half_written(tmp_path):
    store = Store(tmp_path)
    experiment = store.create_experiment("e")
    original, labels, cells = fake_image(7)
    broken = pd.concat([cells, cells.iloc[:1]], ignore_index=True)  # a repeated cell_id fails mid-write
    with pytest.raises(sqlite3.IntegrityError):
        store.save_image(experiment, name="b.png", original=original, labels_tiff=labels, cells=broken, params={})
    assert store.images(experiment).empty and store.cells(experiment).empty


def test_concurrent_threads_lose_no_rows(tmp_path):
    store = Store(tmp_path)
    shared = store.create_experiment("shared")
    own = [store.create_experiment(f"person {i}") for i in range(4)]
    errors = []

    def work(person: int) -> None:
        try:
            for k in range(5):
                save(store, shared, 100 * person + k)
                save(store, own[person], 100 * person + k)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    seen_partial = []
    done = threading.Event()

    def read() -> None:  # a third person looking while the others write
        while not done.is_set():
            cells = store.cells(shared)
            if len(cells):
                counts = cells.groupby("image").size()
                seen_partial.extend(counts[counts != 6].index)

    reader = threading.Thread(target=read)
    reader.start()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    reader.join()
    assert not errors and not seen_partial  # never half an image
    assert len(store.images(shared)) == 20 and len(store.cells(shared)) == 120
    assert all(len(store.cells(e)) == 30 for e in own)


def test_two_processes_lose_no_rows(tmp_path):
    store = Store(tmp_path)
    experiment = store.create_experiment("shared")
    processes = [writer(tmp_path, experiment, range(1000 * p, 1000 * p + 10)) for p in (1, 2)]
    assert [p.wait(timeout=120) for p in processes] == [0, 0]
    assert len(store.images(experiment)) == 20 and len(store.cells(experiment)) == 120


def test_anomaly_fields_are_stored(tmp_path):
    store = Store(tmp_path)
    experiment = store.create_experiment("e")
    save(store, experiment, 1)
    scored = store.cells(experiment).assign(anomaly_score=np.linspace(0, 1, 6), is_anomaly=[False] * 5 + [True])
    store.update_anomalies(experiment, scored)
    back = store.cells(experiment)
    np.testing.assert_allclose(back["anomaly_score"], np.linspace(0, 1, 6))
    assert back["is_anomaly"].tolist() == [False] * 5 + [True]


def test_export_and_import_on_another_machine(tmp_path):
    here = Store(tmp_path / "here")
    experiment = here.create_experiment("Tat 2026")
    for seed in (1, 2, 3):
        save(here, experiment, seed)
    data = here.export_zip(experiment)
    import io
    import zipfile

    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert {"manifest.json", "images.csv", "cells.csv"} <= set(names)
    assert sum(n.startswith("labels/") and n.endswith(".labels.tif") for n in names) == 3
    there = Store(tmp_path / "there")
    imported = there.import_zip(data)
    assert there.experiments()["name"].tolist() == ["Tat 2026"]
    pd.testing.assert_frame_equal(there.cells(imported), here.cells(experiment))
    image = there.images(imported).iloc[0]
    assert there.get_file(image["labels_sha"]) == here.get_file(image["labels_sha"])
    again = there.import_zip(data)  # a second import gets a new name
    assert there.experiments().set_index("id").loc[again, "name"] == "Tat 2026 (2)"
    with pytest.raises(StoreError, match="^upload.zip: not an importable experiment"):
        there.import_zip(b"PK not really", source="upload.zip")


def test_the_data_folder_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("BBB_DATA_DIR", str(tmp_path / "lab-server"))
    store = Store()
    assert store.path == tmp_path / "lab-server" / "bbb.sqlite" and store.path.exists()
    import sqlite3

    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_result_set_survives_the_store(tmp_path):
    """An analysed image saved and loaded back gives the same cells table and labels."""
    import io

    from PIL import Image

    from bbbcore.io import load_image
    from bbbcore.metadata import sample_sheet_for
    from bbbcore.pipeline import result_from_labels
    from bbbcore.results import load_experiment, save_result
    from tests.synthetic import voronoi_monolayer

    field = voronoi_monolayer(shape=(200, 240), n_cells=15, seed=1)
    buffer = io.BytesIO()
    Image.fromarray((field["junction"] * 255).astype(np.uint8)).save(buffer, format="PNG")
    original = buffer.getvalue()
    result = result_from_labels(load_image(original, name="tat_80ng_01.png"), labels_tiff_bytes(field["truth"]),
                                "t.tif", pixel_size_um=0.5)
    store = Store(tmp_path)
    experiment = store.create_experiment("e")
    sheet = sample_sheet_for(["tat_80ng_01.png"])
    save_result(store, experiment, result, original, {"channel": None}, sample={"condition": "tat", "dose": 80.0})
    loaded, originals, params = load_experiment(store, experiment)
    back = loaded.results["tat_80ng_01.png"]
    np.testing.assert_array_equal(back.labels, result.labels)
    assert originals["tat_80ng_01.png"] == original and params["tat_80ng_01.png"] == {"channel": None}
    assert loaded.sheet.loc[0, "condition"] == "tat" and loaded.sheet.loc[0, "dose"] == 80.0
    np.testing.assert_allclose(loaded.cells()["area_um2"], result.cells["area_um2"])
    assert len(loaded.summary()) == 1 and sheet["file"].tolist() == loaded.names()


def test_the_same_file_under_another_name_is_not_recomputed(tmp_path):
    import io

    from PIL import Image

    from bbbcore.io import load_image
    from bbbcore.pipeline import result_from_labels
    from bbbcore.results import save_result, stored_result
    from tests.synthetic import voronoi_monolayer

    field = voronoi_monolayer(shape=(120, 160), n_cells=8, seed=2)
    buffer = io.BytesIO()
    Image.fromarray((field["junction"] * 255).astype(np.uint8)).save(buffer, format="PNG")
    original = buffer.getvalue()
    store = Store(tmp_path)
    experiment = store.create_experiment("e")
    first = result_from_labels(load_image(original, name="a.png"), labels_tiff_bytes(field["truth"]), "t.tif")
    save_result(store, experiment, first, original, {"model": "m"})
    again = stored_result(store, experiment, load_image(original, name="copy of a.png"), original, {"model": "m"})
    assert again is not None and again.source.endswith("(same file as a.png)")
    assert (again.cells["image"] == "copy of a.png").all() and len(again.cells) == len(first.cells)
    assert stored_result(store, experiment, load_image(original, name="b.png"), original, {"model": "n"}) is None


def test_a_writer_killed_mid_write_leaves_a_sound_database(tmp_path):
    import signal
    import sqlite3
    import time

    store = Store(tmp_path)
    experiment = store.create_experiment("shared")
    process = writer(tmp_path, experiment, range(100000))
    deadline = time.time() + 60
    while len(Store(tmp_path).images(experiment)) < 5 and time.time() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)  # no cleanup, mid-write most likely
    process.wait(10)
    reopened = Store(tmp_path)
    with sqlite3.connect(reopened.path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    images = reopened.images(experiment)
    cells = reopened.cells(experiment)
    assert len(images) >= 5
    assert (cells.groupby("image").size() == 6).all() and len(cells) == 6 * len(images)  # whole images only
    for digest in images["labels_sha"]:
        assert reopened.get_file(digest)


def test_a_foreign_or_broken_database_is_refused_untouched(tmp_path):
    import sqlite3

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bbb.sqlite").write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match="not a usable BBB database"):
        Store(broken)
    assert (broken / "bbb.sqlite").read_bytes() == b"this is not sqlite at all" * 100
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    with sqlite3.connect(foreign / "bbb.sqlite") as db:
        db.execute("CREATE TABLE inventory (item TEXT)")
    with pytest.raises(StoreError, match="a database of another program"):
        Store(foreign)
    with sqlite3.connect(foreign / "bbb.sqlite") as db:  # untouched: no table of ours was added
        assert [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["inventory"]


def test_a_read_only_data_folder_is_a_clear_error(tmp_path):
    import os

    store = Store(tmp_path / "data")
    experiment = store.create_experiment("e")
    save(store, experiment, 1)
    if os.geteuid() == 0:  # root ignores permissions: simulate a full disk on the files folder instead
        files = tmp_path / "data" / "files"
        (files / "ab").mkdir(exist_ok=True)
        original, labels, cells = fake_image(99)
        import unittest.mock as mock

        with mock.patch("os.fsync", side_effect=OSError(28, "No space left on device")):
            with pytest.raises(StoreError, match="cannot store a file .*No space left on device"):
                store.save_image(experiment, name="full.png", original=original, labels_tiff=labels,
                                 cells=cells, params={})
    else:
        os.chmod(tmp_path / "data" / "files", 0o500)
        with pytest.raises(StoreError, match="cannot store a file"):
            save(store, experiment, 2)
    assert len(store.images(experiment)) == 1  # what was there is untouched


def test_exclusions_are_kept_with_their_reason_and_travel(tmp_path):
    store = Store(tmp_path / "a")
    experiment = store.create_experiment("e")
    for seed in (1, 2):
        save(store, experiment, seed)
    store.exclude(experiment, "img1.png", "out of focus")
    store.exclude(experiment, "img2.png", "debris", cell_ids=[2, 3])
    cells = store.cells(experiment)
    assert len(cells) == 12  # nothing deleted
    assert cells.loc[cells["image"] == "img1.png", "excluded_reason"].eq("out of focus").all()
    assert cells.loc[cells["is_excluded"], "cell_id"].tolist() == [1, 2, 3, 4, 5, 6, 2, 3]
    listing = store.exclusions(experiment)
    assert listing["reason"].tolist() == ["out of focus", "debris", "debris"]
    other = Store(tmp_path / "b")
    imported = other.import_zip(store.export_zip(experiment, methods="Cells were segmented ..."))
    assert other.exclusions(imported)["reason"].tolist() == ["out of focus", "debris", "debris"]
    store.exclude(experiment, "img1.png", None)  # included again
    assert store.cells(experiment)["is_excluded"].sum() == 2


# --- faults: each maps to one line a person can act on, and nothing changes -------------------------------


def limited_pages(store: Store, extra_pages: int = 0):
    """The store's connections refuse to grow the database: SQLite's own 'database or disk is full'."""
    import contextlib

    with sqlite3.connect(store.path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = db.execute("PRAGMA page_count").fetchone()[0]
    original = store._connect

    @contextlib.contextmanager
    def connect():
        with original() as db:
            db.execute(f"PRAGMA max_page_count = {pages + extra_pages}")
            yield db

    return connect


def test_a_full_disk_during_a_database_write_changes_nothing_and_says_so(tmp_path, monkeypatch):
    store = Store(tmp_path)
    experiment = store.create_experiment("e")
    save(store, experiment, 1)
    monkeypatch.setattr(store, "_connect", limited_pages(store))
    original, labels, cells = fake_image(2, n=9)
    big = pd.concat([cells] * 1, ignore_index=True).assign(note="x" * 5000)  # needs new pages
    with pytest.raises(StoreError, match=r"bbb.sqlite: disk full: nothing was changed; free some space"):
        store.save_image(experiment, name="img2.png", original=original, labels_tiff=labels, cells=big, params={})
    monkeypatch.undo()
    assert store.images(experiment)["name"].tolist() == ["img1.png"] and len(store.cells(experiment)) == 6
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    save(store, experiment, 2)  # space again: it works
    assert len(store.images(experiment)) == 2


class FailingWrites:
    """A connection whose writes fail with ``message`` (as SQLite says it)."""

    def __init__(self, db, message: str):
        self.db, self.message = db, message

    def execute(self, sql, *args):
        if sql.split()[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            raise sqlite3.OperationalError(self.message)
        return self.db.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self.db, name)


@pytest.mark.parametrize("message, line", [
    ("attempt to write a readonly database", "data folder is read-only: nothing was changed"),
    ("database disk image is malformed", "database damaged: nothing was changed"),
    ("database is locked", "database busy: another program holds it"),
    ("disk I/O error", "database damaged: nothing was changed"),
])
def test_every_sqlite_write_error_is_one_line_to_act_on(tmp_path, monkeypatch, message, line):
    import contextlib

    store = Store(tmp_path)
    experiment = store.create_experiment("e")
    save(store, experiment, 1)
    original = store._connect

    @contextlib.contextmanager
    def failing():
        with original() as db:
            yield FailingWrites(db, message)

    monkeypatch.setattr(store, "_connect", failing)
    for action in (lambda: save(store, experiment, 2), lambda: store.rename_experiment(experiment, "f"),
                   lambda: store.exclude(experiment, "img1.png", "r"), lambda: store.delete_experiment(experiment)):
        with pytest.raises(StoreError) as error:
            action()
        assert line in str(error.value) and "\n" not in str(error.value)
    monkeypatch.undo()
    assert store.experiments()["name"].tolist() == ["e"] and store.images(experiment)["name"].tolist() == ["img1.png"]
    assert store.exclusions(experiment).empty


def test_a_damaged_database_opens_for_reading_and_refuses_writes(tmp_path):
    store = Store(tmp_path)
    experiment = store.create_experiment("e")
    for seed in range(1, 6):
        save(store, experiment, seed)
    with sqlite3.connect(store.path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        pages = db.execute("PRAGMA page_count").fetchone()[0]
    raw = bytearray(store.path.read_bytes())
    middle = pages // 2
    raw[middle * page_size:(middle + 1) * page_size] = bytes(page_size)  # a zeroed page
    store.path.write_bytes(bytes(raw))
    damaged = Store(tmp_path)
    assert damaged.damaged and "database damaged" in damaged.damaged
    with pytest.raises(StoreError, match="database damaged .*opens for reading only.*experiments export"):
        damaged.create_experiment("more")
    with pytest.raises(StoreError, match="database damaged"):
        save(damaged, experiment, 9)
    try:  # reads either work or say so in one line
        damaged.cells(experiment)
    except StoreError as exc:
        assert "cannot read" in str(exc) and "\n" not in str(exc)


def test_leftover_temporary_files_are_cleaned_when_the_store_opens(tmp_path):
    import os
    import time

    Store(tmp_path)
    folder = tmp_path / "files" / "ab"
    folder.mkdir(parents=True)
    old, fresh = folder / ".part-killed", folder / ".part-writing-now"
    old.write_bytes(b"half a file")
    fresh.write_bytes(b"another process, mid-write")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    Store(tmp_path)
    assert not old.exists() and fresh.exists()


def test_a_read_only_folder_is_named_as_such(tmp_path, monkeypatch):
    import errno

    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr("pathlib.Path.mkdir", refuse)
    with pytest.raises(StoreError, match=r"cannot use this data folder \(data folder is read-only"):
        Store(tmp_path / "new")


def test_hand_corrections_are_logged_versions_that_travel_and_a_new_segmentation_starts_afresh(tmp_path):
    store = Store(tmp_path / "here")
    experiment = store.create_experiment("edits")
    original, model_tiff, cells = fake_image(1)
    common = {"name": "img1.png", "original": original, "params": {"model": "bbb_unet 2.0"}, "shape": (60, 80)}
    store.save_image(experiment, labels_tiff=model_tiff, cells=cells, **common)
    model_sha = sha256(model_tiff)
    labels = np.zeros((60, 80), np.int32)
    labels[5:12, 5:20] = 1  # cell 1 only: the others deleted by hand
    edited_tiff = labels_tiff_bytes(labels)
    store.save_image(experiment, labels_tiff=edited_tiff, cells=cells.iloc[:1], expected_labels_sha=model_sha,
                     edit={"operation": "delete", "cells": [6, 2, 3, 4, 5], "said": "deleted cells 2-6",
                           "session": "abc123"}, **common)
    log = store.edits(experiment, "img1.png")
    assert log[["version", "operation", "said", "session"]].values.tolist() == [[1, "delete", "deleted cells 2-6",
                                                                                  "abc123"]]
    assert log["cells"].iloc[0] == [2, 3, 4, 5, 6] and log["at"].iloc[0][:2] == "20"
    assert (log["parent_sha"].iloc[0], log["labels_sha"].iloc[0]) == (model_sha, sha256(edited_tiff))
    assert store.get_file(model_sha) == model_tiff  # the version before is kept
    with pytest.raises(ValueError, match="unknown edit 'paint'"):
        store.save_image(experiment, labels_tiff=model_tiff, cells=cells, edit={"operation": "paint"}, **common)
    assert len(store.edits(experiment)) == 1  # nothing of the refused save was written

    # The log and every version's labels travel in the experiment's zip.
    there = Store(tmp_path / "there")
    imported = there.import_zip(store.export_zip(experiment))
    moved = there.edits(imported, "img1.png")
    assert moved.drop(columns="at").equals(log.drop(columns="at")) and there.get_file(model_sha) == model_tiff

    # The same labels measured again keep their history; another segmentation starts it again.
    store.save_image(experiment, labels_tiff=edited_tiff, cells=cells.iloc[:1], **common)
    assert len(store.edits(experiment, "img1.png")) == 1
    store.save_image(experiment, labels_tiff=model_tiff, cells=cells, **common)
    assert store.edits(experiment, "img1.png").empty
    store.save_image(experiment, labels_tiff=edited_tiff, cells=cells.iloc[:1], expected_labels_sha=model_sha,
                     edit={"operation": "delete", "cells": [2], "said": "x", "session": "s"}, **common)
    store.delete_image(experiment, "img1.png")
    assert store.edits(experiment).empty
