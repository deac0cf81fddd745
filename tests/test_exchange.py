"""bbbcore.exchange: experiment zips round-trip exactly, old ones still import, bad ones leave nothing behind."""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
import tracemalloc
import zipfile

import numpy as np
import pandas as pd
import pytest

from bbbcore.exchange import ImportLimits
from bbbcore.export import labels_tiff_bytes
from bbbcore.features import cells_table
from bbbcore.store import SCHEMA_VERSION, Store, StoreError, sha256
from tests.conftest import ROOT

FIXTURES = ROOT / "tests" / "fixtures"
#: Tables added after this test was written, linked to the store's own tables: they must travel too.
LATER_TABLES = """
CREATE TABLE IF NOT EXISTS label_versions (id INTEGER PRIMARY KEY,
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE, version INTEGER, labels_sha TEXT, note TEXT);
CREATE TABLE IF NOT EXISTS version_notes (id INTEGER PRIMARY KEY,
    version_id INTEGER NOT NULL REFERENCES label_versions(id) ON DELETE CASCADE, action TEXT, cells TEXT);
"""


def add_later_tables(store: Store) -> None:
    with sqlite3.connect(store.path) as db:
        db.executescript(LATER_TABLES)


def full_experiment(store: Store) -> int:
    """Every kind of field: formula-like names, every sample field, NaN and inf, anomalies, exclusions."""
    experiment = store.create_experiment("=Tat series @2026")
    for index, name in enumerate(["=plate+1.png", "+TNFa well -3.png"]):
        labels = np.zeros((40, 60), np.int32)
        labels[2:18, 2:28], labels[2:18, 30:58], labels[20:38, 5:50] = 1, 2, 3
        original = np.random.default_rng(index).bytes(500)
        cells = cells_table(labels, image=name, image_id=sha256(original)[:16], pixel_size_um=0.5)
        cells["junction_continuity"] = [0.5, np.nan, 1.0]
        cells["anomaly_score"], cells["is_anomaly"] = [0.1, 2.5, np.inf], [False, True, False]
        store.save_image(
            experiment, name=name, original=original, labels_tiff=labels_tiff_bytes(labels, pixel_size_um=0.5),
            cells=cells.drop(columns=["condition", "dose", "dose_unit", "replicate", "well", "channel",
                                      "nuclear_channel", "diameter_px"]),
            params={"model": "bbb_unet 1.3", "channel": "-1"}, model=("bbb_unet", "1.3"), source="model bbb_unet 1.3",
            sample={"condition": "+TNFa", "dose": 10.0 * index, "dose_unit": "ng", "replicate": "-1", "well": "@A1",
                    "pixel_size_um": 0.5, "channel": "green", "nuclear_channel": None, "diameter_px": 31.5},
            shape=labels.shape, cell_coverage=0.8,
            interfaces=pd.DataFrame({"cell_a": [1, 1], "cell_b": [2, 3], "length_px": [16.0, np.nan],
                                     "junction_continuity": [0.5, 1.0], "touches_edge": [True, False]}))
    store.update_anomalies(experiment, pd.DataFrame({"image": ["=plate+1.png"] * 3, "cell_id": [1, 2, 3],
                                                     "anomaly_score": [0.1, 2.5, 0.3],
                                                     "is_anomaly": [False, True, False]}))
    store.exclude(experiment, "=plate+1.png", "debris", cell_ids=[3])
    store.exclude(experiment, "+TNFa well -3.png", "=out of focus")
    store.save_anomaly_model(experiment, b"the fitted model's zip", design="improved", fit_on="=ctrl", seed=3,
                             contamination=0.1)
    return experiment


def exported_tables(data: bytes) -> dict[str, pd.DataFrame]:
    """Every data table of an export, ids and links dropped (they are renumbered on import), any table."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        tables = {}
        for table, about in manifest["tables"].items():
            rows = [json.loads(line) for line in archive.read(f"data/{table}.jsonl").decode().splitlines()]
            frame = pd.DataFrame(rows, columns=about["columns"])
            tables[table] = frame.drop(columns=["id", *about["links"]], errors="ignore")
    return tables


def test_export_import_export_gives_equal_tables_of_every_kind(tmp_path):
    here = Store(tmp_path / "here")
    add_later_tables(here)
    experiment = full_experiment(here)
    image_id = int(here.images(experiment)["id"].iloc[0])
    with sqlite3.connect(here.path) as db:
        labels_sha = here.images(experiment)["labels_sha"].iloc[0]
        version = db.execute("INSERT INTO label_versions (image_id, version, labels_sha, note) VALUES (?, 2, ?, ?)",
                             (image_id, labels_sha, "=merged 4+5")).lastrowid
        db.execute("INSERT INTO version_notes (version_id, action, cells) VALUES (?, 'merge', '[4, 5]')", (version,))
    first = here.export_zip(experiment)
    there = Store(tmp_path / "there")
    add_later_tables(there)
    imported = there.import_zip(first)
    second = there.export_zip(imported)
    before, after = exported_tables(first), exported_tables(second)
    assert set(before) == {"experiments", "images", "cells", "interfaces", "edits", "anomaly_models",
                           "label_versions", "version_notes"} == set(after)
    for table in before:
        pd.testing.assert_frame_equal(before[table], after[table], check_dtype=True, obj=table)
    # What the store gives back is the same too: names as written, anomaly fields, exclusions.
    pd.testing.assert_frame_equal(there.cells(imported), here.cells(experiment))
    pd.testing.assert_frame_equal(there.interfaces(imported), here.interfaces(experiment))
    assert len(there.interfaces(imported)) == 4 and there.interface_images(imported) == {"=plate+1.png",
                                                                                          "+TNFa well -3.png"}
    pd.testing.assert_frame_equal(there.images(imported).drop(columns=["id", "experiment_id"]),
                                  here.images(experiment).drop(columns=["id", "experiment_id"]))
    assert there.experiments()["name"].tolist() == ["=Tat series @2026"]
    cells = there.cells(imported)
    assert cells["anomaly_score"].notna().sum() == 5 and cells["is_anomaly"].sum() == 2  # inf is stored as empty
    assert set(there.images(imported)["condition"]) == {"+TNFa"} and set(there.images(imported)["well"]) == {"@A1"}
    model = there.anomaly_model(imported)  # the fitted anomaly model travels, its file with it
    assert model["data"] == b"the fitted model's zip" and (model["fit_on"], model["seed"]) == ("=ctrl", 3)
    # The people's copies are still neutralised for spreadsheets.
    with zipfile.ZipFile(io.BytesIO(second)) as archive:
        assert "'=plate+1.png" in archive.read("images.csv").decode()


def test_a_database_written_by_the_first_round_opens_and_migrates(tmp_path):
    folder = tmp_path / "old"
    shutil.copytree(FIXTURES / "store_v0", folder)
    with sqlite3.connect(folder / "bbb.sqlite") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 0
    store = Store(folder)
    with sqlite3.connect(folder / "bbb.sqlite") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    [experiment] = store.experiments()["id"].tolist()
    image = store.images(experiment).iloc[0]
    assert (image["name"], image["condition"], image["replicate"], image["well"]) == ("=plate+1.png", "+TNFa", "-1",
                                                                                      "A1")
    assert image["channel"] is None and pd.isna(image["diameter_px"])  # the new fields, empty
    cells = store.cells(experiment)
    assert cells["anomaly_score"].tolist() == [0.1, 2.5, 0.3] and cells["excluded_reason"].tolist()[2] == "debris"
    assert store.get_file(image["labels_sha"])
    assert store.edits(experiment).empty  # the edit log (schema 3), empty
    Store(folder)  # opening again migrates nothing


def test_a_first_round_zip_still_imports_without_apostrophes(tmp_path):
    store = Store(tmp_path)
    imported = store.import_zip(FIXTURES / "experiment_v1.zip")
    image = store.images(imported).iloc[0]
    assert (image["name"], image["condition"], image["replicate"]) == ("=plate+1.png", "+TNFa", "-1")
    assert len(store.cells(imported)) == 3 and store.exclusions(imported)["reason"].tolist() == ["debris"]


def test_a_newer_database_is_refused_untouched(tmp_path):
    Store(tmp_path)
    with sqlite3.connect(tmp_path / "bbb.sqlite") as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="written by a newer version of this tool"):
        Store(tmp_path)


def test_deleting_an_experiment_removes_only_the_files_nothing_else_uses(tmp_path):
    store = Store(tmp_path)
    first = full_experiment(store)
    second = store.import_zip(store.export_zip(first), name="copy")  # the same files
    third = store.create_experiment("other")
    original = b"only in other"
    store.save_image(third, name="x.png", original=original, labels_tiff=labels_tiff_bytes(np.ones((4, 4), np.int32)),
                     cells=cells_table(np.ones((4, 4), np.int32), image="x.png"), params={})
    shared = set(store.images(first)[["image_sha", "labels_sha"]].to_numpy().ravel())
    store.delete_experiment(first)
    assert all(store.file_path(d).exists() for d in shared)  # "copy" still uses them
    store.delete_experiment(second)
    assert not any(store.file_path(d).exists() for d in shared)
    assert store.file_path(sha256(original)).exists()
    assert store.folder_size() > 0


def bad_zip(kind: str, good: bytes) -> bytes:
    """A damaged version of a good export."""
    source = zipfile.ZipFile(io.BytesIO(good))
    entries = {name: source.read(name) for name in source.namelist()}
    manifest = json.loads(entries["manifest.json"])
    if kind == "no manifest":
        del entries["manifest.json"]
    elif kind == "manifest not JSON":
        entries["manifest.json"] = b'{"format": "bbb-experiment", '
    elif kind == "manifest without tables":
        del manifest["tables"]
        entries["manifest.json"] = json.dumps(manifest).encode()
    elif kind == "another format":
        manifest["format"] = "napari-project"
        entries["manifest.json"] = json.dumps(manifest).encode()
    elif kind == "bad JSON line":
        entries["data/cells.jsonl"] = entries["data/cells.jsonl"].replace(b'{"image_id"', b'{image_id', 1)
    elif kind == "missing table":
        del entries["data/cells.jsonl"]
    elif kind == "missing file":
        del entries[next(n for n in entries if n.startswith("files/"))]
    elif kind == "wrong hash":
        name = next(n for n in entries if n.startswith("files/"))
        entries[name] = entries[name] + b"tampered"
    elif kind == "traversal name":
        digest = next(iter(manifest["files"]))
        manifest["files"] = {"../../evil": 4, **manifest["files"]}
        entries["manifest.json"] = json.dumps(manifest).encode()
        entries["files/../../evil"] = b"evil"
        del digest
    elif kind == "deep nesting":
        entries["data/cells.jsonl"] = b"[" * 100_000 + b"]" * 100_000 + b"\n"
    elif kind == "unknown column":
        entries["data/images.jsonl"] = entries["data/images.jsonl"].replace(b'{"id"', b'{"colour": 1, "id"', 1)
    elif kind == "link to nothing":
        entries["data/cells.jsonl"] = entries["data/cells.jsonl"].replace(b'"image_id": 1,', b'"image_id": 99,', 1)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


BAD_ZIPS = {
    "no manifest": "manifest.json is missing",
    "manifest not JSON": "manifest.json: bad JSON",
    "manifest without tables": "manifest.json: the list of tables is missing",
    "another format": "manifest.json: format 'napari-project', not 'bbb-experiment'",
    "bad JSON line": "data/cells.jsonl line 1: bad JSON",
    "missing table": "data/cells.jsonl is missing",
    "missing file": "files/",
    "wrong hash": "is damaged (its hash differs)",
    "traversal name": "files/'../../evil': not a file name this format writes",
    "deep nesting": "data/cells.jsonl line 1: JSON nested deeper than 64 levels",
    "unknown column": "images row 1: unknown column(s) colour",
    "link to nothing": "cells row 1: image_id 99 refers to no exported row",
}


@pytest.mark.parametrize("kind", list(BAD_ZIPS))
def test_a_bad_zip_gets_one_line_and_leaves_nothing_behind(tmp_path, kind):
    good = Store(tmp_path / "source")
    data = bad_zip(kind, good.export_zip(full_experiment(good)))
    store = Store(tmp_path / "target")
    files_before = sorted(p.name for p in (tmp_path / "target" / "files").rglob("*") if p.is_file())
    with pytest.raises(StoreError) as error:
        store.import_zip(data, source="plate 3.zip")
    message = str(error.value)
    assert message.startswith("plate 3.zip: not an importable experiment (") and BAD_ZIPS[kind] in message
    assert "\n" not in message and message.count("plate 3.zip") == 1
    assert store.experiments().empty  # no empty experiment left behind
    assert sorted(p.name for p in (tmp_path / "target" / "files").rglob("*") if p.is_file()) == files_before
    assert not (tmp_path / "evil").exists() and not (tmp_path / "target" / "evil").exists()


def test_a_zip_bomb_is_refused_before_it_is_read(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", b" " * 3_000_000)  # 3 MB of spaces compress to a few KB
    store = Store(tmp_path)
    limits = ImportLimits(max_total_bytes=1_000_000, max_entry_bytes=2_000_000)
    with pytest.raises(StoreError, match=r"manifest.json is 3000000 bytes uncompressed; the limit for one entry "
                                         r"is 2000000"):
        store.import_zip(buffer.getvalue(), source="bomb.zip", limits=limits)
    with pytest.raises(StoreError, match=r"3000000 bytes uncompressed; the limit is 2500000"):
        store.import_zip(buffer.getvalue(), source="bomb.zip", limits=ImportLimits(max_total_bytes=2_500_000))
    with pytest.raises(StoreError, match=r"manifest.json is larger than 1048576 bytes"):  # the manifest's own bound
        store.import_zip(buffer.getvalue(), source="bomb.zip")
    assert store.experiments().empty


def test_a_large_file_is_imported_in_bounded_memory(tmp_path):
    source = Store(tmp_path / "source")
    experiment = full_experiment(source)
    big = np.random.default_rng(0).bytes(24 * 2**20)  # 24 MB original
    labels = np.ones((4, 4), np.int32)
    source.save_image(experiment, name="big.tif", original=big, labels_tiff=labels_tiff_bytes(labels),
                      cells=cells_table(labels, image="big.tif"), params={})
    path = tmp_path / "big.zip"
    source.export_zip(experiment, target=path)
    del big
    target = Store(tmp_path / "target")
    tracemalloc.start()
    imported = target.import_zip(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MB while importing a 24 MB entry"
    assert len(target.get_file(target.images(imported).set_index("name").loc["big.tif", "image_sha"])) == 24 * 2**20
