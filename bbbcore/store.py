"""Experiments that persist: experiments -> images -> cells in an embedded SQLite database.

Layout of the data folder (default ``./bbb-data``, or ``$BBB_DATA_DIR``)::

    bbb.sqlite            the database (WAL mode: readers never wait for a writer)
    files/ab/abcdef...    original images and labels TIFFs, named by their SHA-256

One image's results (its row, its cells, its files) are written in one
transaction: after a crash there is the whole image or none of it. Files are
written first, atomically (a temporary file renamed into place), and are
content-addressed, so a half-written file is never referenced. Every call
opens its own connection, so threads (Streamlit sessions) and processes can
share one store; SQLite serialises the writers (busy timeout 30 s).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import sqlite3
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import BBBError
from .metadata import NUMERIC_SAMPLE_FIELDS, SAMPLE_FIELDS, output_stem

#: The sample fields an image row holds (``file`` is its ``name``).
STORED_SAMPLE_FIELDS = tuple(f for f in SAMPLE_FIELDS if f != "file")
#: Columns of the images table besides the ids.
IMAGE_FIELDS = ("name", "image_sha", "labels_sha", *STORED_SAMPLE_FIELDS, "model_name", "model_version", "params",
                "params_key", "source", "height", "width", "cell_coverage", "created", "excluded")
_SAMPLE_SQL = ", ".join(f"{f} {'REAL' if f in NUMERIC_SAMPLE_FIELDS else 'TEXT'}" for f in STORED_SAMPLE_FIELDS)

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS experiments (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL,
    modified TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY,
    experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    image_sha TEXT NOT NULL,
    labels_sha TEXT NOT NULL,
    {_SAMPLE_SQL},
    model_name TEXT, model_version TEXT,
    params TEXT NOT NULL,
    params_key TEXT NOT NULL,
    source TEXT,
    height INTEGER, width INTEGER, cell_coverage REAL,
    created TEXT NOT NULL,
    excluded TEXT,
    UNIQUE (experiment_id, name)
);
CREATE TABLE IF NOT EXISTS cells (
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    cell_id INTEGER NOT NULL,
    anomaly_score REAL,
    is_anomaly INTEGER,
    excluded TEXT,
    data TEXT NOT NULL,
    PRIMARY KEY (image_id, cell_id)
);
CREATE INDEX IF NOT EXISTS images_by_hash ON images (experiment_id, image_sha, params_key);
"""


class StoreError(BBBError):
    """The store cannot do what was asked (no such experiment, a name taken, a bad zip)."""


def default_folder() -> Path:
    """``$BBB_DATA_DIR`` when set, else ``./bbb-data``."""
    return Path(os.environ.get("BBB_DATA_DIR") or "bbb-data")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def params_key(params: dict) -> str:
    """A short hash of the parameters that change a result (model, channel, pixel size, ...)."""
    return sha256(json.dumps(params, sort_keys=True, default=str).encode())[:16]


def _experiment_name(name: str) -> str:
    """A usable experiment name (stripped), or a StoreError."""
    name = (name or "").strip()
    if not name:
        raise StoreError("an experiment needs a name")
    return name


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())


def _plain(value):
    """A cell value SQLite and JSON can hold (numpy scalars, NaN -> None)."""
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else float(value)
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value


class Store:
    """Experiments, images and cells under one data folder."""

    def __init__(self, folder: str | Path | None = None):
        self.folder = Path(folder) if folder is not None else default_folder()
        self.path = self.folder / "bbb.sqlite"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / "files").mkdir(exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.folder}: cannot use this data folder ({exc.strerror or exc})") from None
        try:
            with self._connect() as db:
                tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                if tables and "experiments" not in tables:  # check before writing anything
                    raise StoreError(f"{self.path}: a database of another program (tables: "
                                     f"{', '.join(sorted(tables))}); it was left untouched")
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(SCHEMA)
                # Databases made before exclusions and the full sample schema existed.
                added = {"images": {"excluded": "TEXT", **{f: "REAL" if f in NUMERIC_SAMPLE_FIELDS else "TEXT"
                                                           for f in STORED_SAMPLE_FIELDS}},
                         "cells": {"excluded": "TEXT"}}
                for table, wanted in added.items():
                    columns = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
                    for column, kind in wanted.items():
                        if column not in columns:
                            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not a usable BBB database ({exc}); it was left untouched: move it "
                             "away or set BBB_DATA_DIR to another folder") from None

    @contextlib.contextmanager
    def _connect(self):
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA busy_timeout=30000")
        try:
            yield db
        finally:
            db.close()

    @contextlib.contextmanager
    def _transaction(self):
        with self._connect() as db:
            try:
                db.execute("BEGIN IMMEDIATE")  # take the write lock now: no upgrade deadlocks
            except sqlite3.OperationalError as exc:
                raise StoreError(f"{self.path}: cannot write ({exc}); nothing was changed") from None
            try:
                yield db
                db.execute("COMMIT")
            except sqlite3.OperationalError as exc:  # disk full, read-only file, ...
                db.execute("ROLLBACK")
                raise StoreError(f"{self.path}: cannot write ({exc}); nothing was changed") from None
            except BaseException:
                db.execute("ROLLBACK")
                raise

    # -- files -------------------------------------------------------------------
    def put_file(self, data: bytes) -> str:
        """Store bytes under their SHA-256 (atomically; once); return the hash."""
        digest = sha256(data)
        target = self.folder / "files" / digest[:2] / digest
        if not target.exists():
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as handle:
                    try:
                        handle.write(data)
                        handle.flush()
                        os.fsync(handle.fileno())
                    except OSError:
                        os.unlink(handle.name)
                        raise
                os.replace(handle.name, target)
            except OSError as exc:  # disk full, read-only folder
                raise StoreError(f"{target.parent}: cannot store a file ({exc.strerror or exc}); "
                                 "nothing was changed") from None
        return digest

    def get_file(self, digest: str) -> bytes:
        path = self.folder / "files" / digest[:2] / digest
        if not path.exists():
            raise StoreError(f"stored file {digest[:12]}… is missing from {self.folder / 'files'}")
        return path.read_bytes()

    # -- experiments ---------------------------------------------------------------
    def create_experiment(self, name: str) -> int:
        name = _experiment_name(name)
        with self._transaction() as db:
            try:
                cursor = db.execute("INSERT INTO experiments (name, created, modified) VALUES (?, ?, ?)",
                                    (name, _now(), _now()))
            except sqlite3.IntegrityError:
                raise StoreError(f"an experiment called {name!r} exists already") from None
            return int(cursor.lastrowid)

    def create_unique_experiment(self, wanted: str) -> int:
        """Create an experiment called ``wanted``, or ``wanted (2)``, ``(3)``... when taken.

        Race-free: the name's UNIQUE constraint decides, so two sessions
        creating one name at the same moment get two experiments.
        """
        wanted = _experiment_name(wanted)
        name, counter = self.unique_name(wanted), 2
        for _ in range(1000):
            try:
                return self.create_experiment(name)
            except StoreError as exc:
                if "exists already" not in str(exc):
                    raise
            counter += 1
            name = f"{wanted} ({counter})"
        raise StoreError(f"no free name for experiment {wanted!r}")

    def unique_name(self, wanted: str) -> str:
        """``wanted``, or ``wanted (2)``, ``(3)``... when the name is taken."""
        existing = set(self.experiments()["name"])
        final, counter = wanted, 2
        while final in existing:
            final, counter = f"{wanted} ({counter})", counter + 1
        return final

    def rename_experiment(self, experiment_id: int, name: str) -> None:
        name = _experiment_name(name)
        with self._transaction() as db:
            try:
                changed = db.execute("UPDATE experiments SET name = ?, modified = ? WHERE id = ?",
                                     (name, _now(), experiment_id)).rowcount
            except sqlite3.IntegrityError:
                raise StoreError(f"an experiment called {name!r} exists already") from None
            if not changed:
                raise StoreError(f"no experiment {experiment_id}")

    def delete_experiment(self, experiment_id: int) -> None:
        """Delete an experiment with its images and cells (stored files stay: others may share them)."""
        with self._transaction() as db:
            db.execute("DELETE FROM experiments WHERE id = ?", (experiment_id,))

    def experiments(self) -> pd.DataFrame:
        """id, name, created, modified, n_images, n_cells of every experiment, newest first."""
        with self._connect() as db:
            rows = db.execute("""
                SELECT e.id, e.name, e.created, e.modified,
                       (SELECT COUNT(*) FROM images i WHERE i.experiment_id = e.id) AS n_images,
                       (SELECT COUNT(*) FROM cells c JOIN images i ON c.image_id = i.id
                         WHERE i.experiment_id = e.id) AS n_cells
                FROM experiments e ORDER BY e.modified DESC, e.id DESC""").fetchall()
        return pd.DataFrame([dict(r) for r in rows],
                            columns=["id", "name", "created", "modified", "n_images", "n_cells"])

    def experiment_id(self, name: str) -> int:
        with self._connect() as db:
            row = db.execute("SELECT id FROM experiments WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise StoreError(f"no experiment called {name!r}")
        return int(row["id"])

    # -- images and cells -----------------------------------------------------------
    def find_image(self, experiment_id: int, image_sha: str, key: str) -> dict | None:
        """The stored image with these bytes and parameters, if any (then nothing is recomputed)."""
        with self._connect() as db:
            row = db.execute("SELECT * FROM images WHERE experiment_id = ? AND image_sha = ? AND params_key = ?",
                             (experiment_id, image_sha, key)).fetchone()
        return dict(row) if row else None

    def save_image(
        self,
        experiment_id: int,
        *,
        name: str,
        original: bytes,
        labels_tiff: bytes,
        cells: pd.DataFrame,
        params: dict,
        sample: dict | None = None,
        model: tuple[str, str] = ("", ""),
        source: str = "",
        shape: tuple[int, int] = (0, 0),
        cell_coverage: float | None = None,
    ) -> int:
        """Store one image's results in one transaction (replacing an earlier result of that name).

        ``sample`` holds the image's sample fields (:data:`bbbcore.metadata.SAMPLE_FIELDS`),
        ``pixel_size_um`` being the one its cells were measured with.
        """
        image_sha = self.put_file(original)
        labels_sha = self.put_file(labels_tiff)
        sample = sample or {}
        columns = [c for c in cells.columns]
        records = []
        for values in cells.itertuples(index=False, name=None):
            row = {c: _plain(v) for c, v in zip(columns, values)}
            records.append((int(row["cell_id"]), row.get("anomaly_score"),
                            None if row.get("is_anomaly") is None else int(bool(row["is_anomaly"])),
                            json.dumps(row, allow_nan=False)))
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM experiments WHERE id = ?", (experiment_id,)).fetchone() is None:
                raise StoreError(f"no experiment {experiment_id}")
            db.execute("DELETE FROM images WHERE experiment_id = ? AND name = ?", (experiment_id, name))
            cursor = db.execute(
                f"INSERT INTO images (experiment_id, {', '.join(IMAGE_FIELDS)}) "
                f"VALUES (?, {', '.join('?' * len(IMAGE_FIELDS))})",
                (experiment_id, name, image_sha, labels_sha,
                 *(_plain(sample.get(f)) for f in STORED_SAMPLE_FIELDS), model[0], model[1],
                 json.dumps(params, sort_keys=True, default=str), params_key(params), source,
                 int(shape[0]), int(shape[1]), _plain(cell_coverage), _now(), None),
            )
            image_row = int(cursor.lastrowid)
            db.executemany("INSERT INTO cells (image_id, cell_id, anomaly_score, is_anomaly, data) "
                           "VALUES (?, ?, ?, ?, ?)", [(image_row, *r) for r in records])
            db.execute("UPDATE experiments SET modified = ? WHERE id = ?", (_now(), experiment_id))
        return image_row

    def images(self, experiment_id: int) -> pd.DataFrame:
        """The experiment's image rows, in the order they were stored."""
        with self._connect() as db:
            rows = db.execute("SELECT * FROM images WHERE experiment_id = ? ORDER BY id", (experiment_id,)).fetchall()
        return pd.DataFrame([dict(r) for r in rows], columns=["id", "experiment_id", *IMAGE_FIELDS])

    def cells(self, experiment_id: int) -> pd.DataFrame:
        """Every stored cell of the experiment (all feature columns), images in stored order."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT c.data, c.anomaly_score, c.is_anomaly, COALESCE(i.excluded, c.excluded) AS excluded "
                "FROM cells c JOIN images i ON c.image_id = i.id "
                "WHERE i.experiment_id = ? ORDER BY i.id, c.cell_id", (experiment_id,)).fetchall()
        records = []
        for row in rows:
            record = json.loads(row["data"])
            if row["anomaly_score"] is not None:
                record["anomaly_score"] = row["anomaly_score"]
                record["is_anomaly"] = bool(row["is_anomaly"])
            record["excluded_reason"] = row["excluded"] or ""
            records.append(record)
        table = pd.DataFrame(records)
        if len(table):
            table["is_excluded"] = table["excluded_reason"] != ""
        return table

    def exclude(self, experiment_id: int, image: str, reason: str | None, cell_ids=None) -> None:
        """Exclude an image, or some of its cells, from statistics with a reason (None: include again).

        Nothing is deleted: the rows stay, with the reason beside them.
        """
        reason = (reason or "").strip() or None
        with self._transaction() as db:
            row = db.execute("SELECT id FROM images WHERE experiment_id = ? AND name = ?",
                             (experiment_id, image)).fetchone()
            if row is None:
                raise StoreError(f"no image {image!r} in experiment {experiment_id}")
            if cell_ids is None:
                db.execute("UPDATE images SET excluded = ? WHERE id = ?", (reason, row["id"]))
            else:
                db.executemany("UPDATE cells SET excluded = ? WHERE image_id = ? AND cell_id = ?",
                               [(reason, row["id"], int(c)) for c in cell_ids])

    def exclusions(self, experiment_id: int) -> pd.DataFrame:
        """Every exclusion of the experiment: image, cell_id (empty for a whole image), reason."""
        with self._connect() as db:
            images = db.execute("SELECT name, excluded FROM images WHERE experiment_id = ? AND excluded IS NOT NULL",
                                (experiment_id,)).fetchall()
            cells = db.execute("SELECT i.name, c.cell_id, c.excluded FROM cells c JOIN images i ON c.image_id = i.id "
                               "WHERE i.experiment_id = ? AND c.excluded IS NOT NULL ORDER BY i.id, c.cell_id",
                               (experiment_id,)).fetchall()
        rows = [{"image": r["name"], "cell_id": None, "reason": r["excluded"]} for r in images]
        rows += [{"image": r["name"], "cell_id": int(r["cell_id"]), "reason": r["excluded"]} for r in cells]
        return pd.DataFrame(rows, columns=["image", "cell_id", "reason"])

    def update_anomalies(self, experiment_id: int, scored: pd.DataFrame) -> None:
        """Store ``anomaly_score`` and ``is_anomaly`` of scored cells (by image name and cell_id), in one transaction."""
        with self._transaction() as db:
            ids = {r["name"]: r["id"] for r in db.execute("SELECT id, name FROM images WHERE experiment_id = ?",
                                                          (experiment_id,)).fetchall()}
            db.executemany(
                "UPDATE cells SET anomaly_score = ?, is_anomaly = ? WHERE image_id = ? AND cell_id = ?",
                [(_plain(r.anomaly_score), None if pd.isna(r.is_anomaly) else int(bool(r.is_anomaly)),
                  ids[r.image], int(r.cell_id))
                 for r in scored[["image", "cell_id", "anomaly_score", "is_anomaly"]].itertuples() if r.image in ids])

    def update_samples(self, experiment_id: int, sheet: pd.DataFrame) -> None:
        """Store edited sample fields (a sample sheet) for the experiment's images, in one transaction.

        ``pixel_size_um`` is left as stored: it is the one the cells were measured with.
        """
        editable = [f for f in STORED_SAMPLE_FIELDS if f != "pixel_size_um" and f in sheet.columns]
        if not editable:
            return
        assignments = ", ".join(f"{f} = ?" for f in editable)
        with self._transaction() as db:
            db.executemany(
                f"UPDATE images SET {assignments} WHERE experiment_id = ? AND name = ?",
                [(*(_plain(row[f]) for f in editable), experiment_id, row["file"]) for _, row in sheet.iterrows()])

    def delete_image(self, experiment_id: int, name: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM images WHERE experiment_id = ? AND name = ?", (experiment_id, name))

    # -- moving experiments between machines -------------------------------------------
    def export_zip(self, experiment_id: int, *, methods: str | None = None) -> bytes:
        """One zip: manifest.json, images.csv, cells.csv, exclusions.csv, methods.txt (when given),
        named labels TIFFs, and the original and labels files by hash (for import)."""
        from .export import table_csv_bytes

        with self._connect() as db:
            row = db.execute("SELECT * FROM experiments WHERE id = ?", (experiment_id,)).fetchone()
        if row is None:
            raise StoreError(f"no experiment {experiment_id}")
        images = self.images(experiment_id)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            manifest = {"format": "bbb-experiment", "version": 1, "experiment": dict(row),
                        "images": int(len(images)), "exported": _now()}
            archive.writestr("manifest.json", json.dumps(manifest, indent=1))
            archive.writestr("images.csv", table_csv_bytes(images))
            archive.writestr("cells.csv", table_csv_bytes(self.cells(experiment_id)))
            archive.writestr("exclusions.csv", table_csv_bytes(self.exclusions(experiment_id)))
            if methods:
                archive.writestr("methods.txt", methods + "\n")
            written: set[str] = set()
            with self._connect() as db:
                for image in db.execute("SELECT id, image_sha, labels_sha FROM images WHERE experiment_id = ?",
                                        (experiment_id,)).fetchall():
                    cells = db.execute("SELECT data, excluded FROM cells WHERE image_id = ? ORDER BY cell_id",
                                       (image["id"],)).fetchall()
                    lines = [c["data"] if c["excluded"] is None
                             else json.dumps({**json.loads(c["data"]), "_excluded": c["excluded"]}) for c in cells]
                    archive.writestr(f"cells/{image['id']}.jsonl", "\n".join(lines))
                    name = db.execute("SELECT name FROM images WHERE id = ?", (image["id"],)).fetchone()["name"]
                    stem = output_stem(name)
                    # Named copies for people opening the zip in Fiji; the hashed files are for import.
                    archive.writestr(f"labels/{image['id']}-{stem}.labels.tif", self.get_file(image["labels_sha"]),
                                     compress_type=zipfile.ZIP_STORED)
                    for digest in {image["image_sha"], image["labels_sha"]} - written:
                        archive.writestr(f"files/{digest}", self.get_file(digest), compress_type=zipfile.ZIP_STORED)
                        written.add(digest)
        return buffer.getvalue()

    def import_zip(self, data: bytes, *, name: str | None = None, source: str = "experiment zip") -> int:
        """Import an exported experiment as a new one (named as exported, or ``name``)."""
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
            manifest = json.loads(archive.read("manifest.json"))
        except (zipfile.BadZipFile, KeyError, json.JSONDecodeError):
            raise StoreError(f"{source}: not an exported experiment (no manifest.json)") from None
        if manifest.get("format") != "bbb-experiment":
            raise StoreError(f"{source}: not an exported experiment (format {manifest.get('format')!r})")
        images = pd.read_csv(io.BytesIO(archive.read("images.csv")), dtype={"replicate": str, "well": str})
        for digest in {*images["image_sha"], *images["labels_sha"]}:
            stored = archive.read(f"files/{digest}")
            if sha256(stored) != digest:
                raise StoreError(f"{source}: file {digest[:12]}… is damaged (its hash differs)")
            self.put_file(stored)
        experiment_id = self.create_experiment(self.unique_name(name or manifest["experiment"]["name"]))
        with self._transaction() as db:
            for _, image in images.iterrows():
                values = [None if pd.isna(image[f]) else image[f] for f in IMAGE_FIELDS]
                cursor = db.execute(
                    f"INSERT INTO images (experiment_id, {', '.join(IMAGE_FIELDS)}) "
                    f"VALUES (?, {', '.join('?' * len(IMAGE_FIELDS))})", (experiment_id, *map(_plain, values)))
                lines = archive.read(f"cells/{int(image['id'])}.jsonl").decode().splitlines()
                rows = [json.loads(line) for line in lines if line]
                excluded = [r.pop("_excluded", None) for r in rows]
                db.executemany(
                    "INSERT INTO cells (image_id, cell_id, anomaly_score, is_anomaly, excluded, data) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [(cursor.lastrowid, int(r["cell_id"]), r.get("anomaly_score"),
                      None if r.get("is_anomaly") is None else int(bool(r["is_anomaly"])), reason, json.dumps(r))
                     for r, reason in zip(rows, excluded)])
        return experiment_id
