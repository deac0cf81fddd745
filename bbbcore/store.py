"""Experiments that persist: experiments -> images -> cells in an embedded SQLite database.

Layout of the data folder (default ``./bbb-data``, or ``$BBB_DATA_DIR``)::

    bbb.sqlite            the database (WAL mode: readers never wait for a writer)
    files/ab/abcdef...    original images and labels TIFFs, named by their SHA-256

The schema has a version (``PRAGMA user_version``, :data:`SCHEMA_VERSION`);
opening an older database migrates it in one transaction, a newer one is
refused. Every sqlite3 or file-system error becomes a :class:`StoreError`
whose one line says what to do (disk full, read-only folder, damaged
database); a database failing ``PRAGMA quick_check`` opens for reading only.

One image's results (its row, its cells, its files) are written in one
transaction: after a crash there is the whole image or none of it. Files are
written first, atomically (a temporary file renamed into place), and are
content-addressed, so a half-written file is never referenced. Every call
opens its own connection, so threads (Streamlit sessions) and processes can
share one store; SQLite serialises the writers (busy timeout 30 s).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import BBBError, display_name
from .metadata import NUMERIC_SAMPLE_FIELDS, SAMPLE_FIELDS

#: Version of the database layout (``PRAGMA user_version``); see :data:`MIGRATIONS`.
SCHEMA_VERSION = 4

#: Temporary files of an interrupted write older than this many seconds are removed on open
#: (younger ones may belong to another process writing right now).
STALE_TEMP_SECONDS = 600

#: The sample fields an image row holds (``file`` is its ``name``).
STORED_SAMPLE_FIELDS = tuple(f for f in SAMPLE_FIELDS if f != "file")
#: Columns of the images table besides the ids.
IMAGE_FIELDS = ("name", "image_sha", "labels_sha", *STORED_SAMPLE_FIELDS, "model_name", "model_version", "params",
                "params_key", "source", "height", "width", "cell_coverage", "created", "excluded",
                "diameter_estimated_px", "diameter_used_px")
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
    diameter_estimated_px REAL, diameter_used_px REAL,
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
CREATE TABLE IF NOT EXISTS edits (
    id INTEGER PRIMARY KEY,
    experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    image TEXT NOT NULL,
    version INTEGER NOT NULL,
    labels_sha TEXT NOT NULL,
    parent_sha TEXT NOT NULL,
    operation TEXT NOT NULL,
    cells TEXT NOT NULL,
    said TEXT NOT NULL,
    session TEXT NOT NULL,
    at TEXT NOT NULL,
    UNIQUE (experiment_id, image, version)
);
CREATE TABLE IF NOT EXISTS interfaces (
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    cell_a INTEGER NOT NULL,
    cell_b INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (image_id, cell_a, cell_b)
);
CREATE TABLE IF NOT EXISTS anomaly_models (
    experiment_id INTEGER PRIMARY KEY REFERENCES experiments(id) ON DELETE CASCADE,
    model_sha TEXT NOT NULL,
    design TEXT NOT NULL,
    fit_on TEXT,
    seed INTEGER NOT NULL,
    contamination REAL NOT NULL,
    created TEXT NOT NULL
);
"""

#: The operations an edit log row can name (:mod:`bbbcore.editing`'s, and the editor's own).
LOGGED_OPERATIONS = ("delete", "merge", "draw", "split", "accept", "undo", "redo", "revert")


class StoreError(BBBError):
    """The store cannot do what was asked (no such experiment, a name taken, a bad zip, a full disk)."""


class EditConflict(StoreError):
    """An image's cells were changed in another session since this one read them."""


class ExperimentGone(StoreError):
    """The experiment was deleted (in another session) while this one still used it."""


#: SQLite's and the OS's words for a problem -> what a person reads (and can act on).
_PROBLEMS = (
    (("database or disk is full", "no space left"), "disk full: nothing was changed; free some space and try again"),
    (("readonly database", "read-only file system", "permission denied", "unable to open database file"),
     "data folder is read-only: nothing was changed; make it writable or set BBB_DATA_DIR to another folder"),
    (("malformed", "not a database", "disk i/o error", "corrupt"),
     "database damaged: nothing was changed; save what can be read (python -m bbbcore experiments export), "
     "move bbb.sqlite away and import your exports"),
    (("database is locked", "database is busy"),
     "database busy: another program holds it; nothing was changed, try again"),
)


def problem_line(exc: BaseException) -> str:
    """One line a person can act on for a sqlite3 or OS error."""
    text = str(exc).lower()
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        text += " no space left"
    if isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        text += " read-only file system"
    for words, line in _PROBLEMS:
        if any(word in text for word in words):
            return line
    return f"cannot write ({exc}); nothing was changed"


def _migrate_0_to_1(db) -> None:
    """Databases of the first round: exclusions, and the sample fields channel ... diameter_px."""
    added = {"images": {"excluded": "TEXT", **{f: "REAL" if f in NUMERIC_SAMPLE_FIELDS else "TEXT"
                                               for f in STORED_SAMPLE_FIELDS}},
             "cells": {"excluded": "TEXT"}}
    for table, wanted in added.items():
        columns = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
        for column, kind in wanted.items():
            if column not in columns:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


def _migrate_1_to_2(db) -> None:
    """The cell diameter each image was estimated to have and was segmented as having."""
    columns = {r[1] for r in db.execute("PRAGMA table_info(images)")}
    for column in ("diameter_estimated_px", "diameter_used_px"):
        if column not in columns:
            db.execute(f"ALTER TABLE images ADD COLUMN {column} REAL")


def _migrate_2_to_3(db) -> None:
    """The edit log of hand corrections (table ``edits``, made by SCHEMA): nothing to convert."""


def _migrate_3_to_4(db) -> None:
    """Each image's interfaces (table ``interfaces``) and the fitted anomaly model of each experiment (table
    ``anomaly_models``), both made by SCHEMA: nothing to convert (older images' interfaces are measured when
    first needed)."""


#: ``MIGRATIONS[n]`` brings a database from schema version n to n + 1 (inside one transaction).
MIGRATIONS = [_migrate_0_to_1, _migrate_1_to_2, _migrate_2_to_3, _migrate_3_to_4]


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
    """Experiments, images and cells under one data folder.

    Raises
    ------
    StoreError
        The folder or database cannot be used (one line saying why and what to do).
    """

    def __init__(self, folder: str | Path | None = None):
        self.folder = Path(folder) if folder is not None else default_folder()
        self.path = self.folder / "bbb.sqlite"
        #: Why writes are refused (a damaged database), or None.
        self.damaged: str | None = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / "files").mkdir(exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.folder}: cannot use this data folder ({problem_line(exc)})") from None
        self._remove_stale_temp_files()
        try:
            with self._connect() as db:
                self._open_schema(db)
        except StoreError:
            raise
        except sqlite3.DatabaseError as exc:
            line = problem_line(exc)
            if line.startswith("database damaged") or "not a database" in str(exc):
                raise StoreError(f"{self.path}: not a usable BBB database ({exc}); it was left untouched: move it "
                                 "away or set BBB_DATA_DIR to another folder") from None
            raise StoreError(f"{self.path}: {line}") from None
        try:
            with self._connect() as db:
                checked = [r[0] for r in db.execute("PRAGMA quick_check").fetchall()]
        except sqlite3.DatabaseError as exc:
            checked = [str(exc)]
        if checked != ["ok"]:
            found = " ".join(checked[0].split())  # SQLite's report may run over several lines: one line here
            self.damaged = (f"{self.path}: database damaged ({found}): it opens for reading only; save what "
                            "can be read (python -m bbbcore experiments export), move bbb.sqlite away and import "
                            "your exports")

    def _open_schema(self, db) -> None:
        """Create the tables of an empty database, or migrate an older one (one transaction)."""
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and "experiments" not in tables:  # check before writing anything
            raise StoreError(f"{self.path}: a database of another program (tables: "
                             f"{', '.join(sorted(tables))}); it was left untouched")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path}: written by a newer version of this tool (schema {version}, this one "
                             f"reads up to {SCHEMA_VERSION}); update the tool; the database was left untouched")
        if tables and version == SCHEMA_VERSION:
            return
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in SCHEMA.split(";"):  # not executescript: it would commit first
                if statement.strip():
                    db.execute(statement)
            for step in range(version, SCHEMA_VERSION):
                MIGRATIONS[step](db)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _remove_stale_temp_files(self) -> None:
        """Temporary files left by a write that was killed (older than STALE_TEMP_SECONDS)."""
        limit = time.time() - STALE_TEMP_SECONDS
        for leftover in (self.folder / "files").glob("*/.part-*"):
            with contextlib.suppress(OSError):
                if leftover.stat().st_mtime < limit:
                    leftover.unlink()

    @contextlib.contextmanager
    def _connect(self):
        try:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {problem_line(exc)}") from None
        db.row_factory = sqlite3.Row
        try:
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA busy_timeout=30000")
            yield db
        finally:
            db.close()

    @contextlib.contextmanager
    def _read(self):
        """A connection for reading; sqlite3 errors become one-line StoreErrors."""
        try:
            with self._connect() as db:
                yield db
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot read ({problem_line(exc).split(':')[0]}: {exc})") from None

    @contextlib.contextmanager
    def _transaction(self):
        """One write transaction: all of it or nothing, every failure one line (nothing was changed)."""
        if self.damaged:
            raise StoreError(self.damaged)
        with self._connect() as db:
            try:
                db.execute("BEGIN IMMEDIATE")  # take the write lock now: no upgrade deadlocks
                yield db
                db.execute("COMMIT")
            except (sqlite3.Error, OSError) as exc:  # disk full, read-only file, damaged, ...
                if db.in_transaction:  # SQLite may have rolled back already (a full disk does)
                    db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.IntegrityError):
                    raise
                raise StoreError(f"{self.path}: {problem_line(exc)}") from None
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    # -- files -------------------------------------------------------------------
    def file_path(self, digest: str) -> Path:
        """Where the file with this SHA-256 is (or would be) kept."""
        return self.folder / "files" / digest[:2] / digest

    def put_file(self, data: bytes) -> str:
        """Store bytes under their SHA-256 (atomically; once); return the hash."""
        digest = sha256(data)
        self._write_file(digest, lambda handle: handle.write(data))
        return digest

    def put_stream(self, stream, *, max_bytes: int | None = None, label: str = "file") -> str:
        """Store a stream's bytes under their SHA-256, copied in chunks (memory independent of its size).

        Raises
        ------
        StoreError
            More than ``max_bytes`` (nothing is kept), or the disk is full.
        """
        hasher = hashlib.sha256()

        def copy(handle) -> None:
            size = 0
            while chunk := stream.read(1 << 20):
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise StoreError(f"{label}: larger than {max_bytes} bytes")
                hasher.update(chunk)
                handle.write(chunk)

        folder = self.folder / "files"
        try:
            temporary = self._write_temporary(folder / "in", copy)
            target = self.file_path(hasher.hexdigest())
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temporary, target)
        except OSError as exc:
            raise StoreError(f"{folder}: cannot store a file ({problem_line(exc)}; {exc.strerror or exc})") from None
        return hasher.hexdigest()

    def _write_file(self, digest: str, write) -> None:
        """Store a file under ``digest`` (unless it is there), written by ``write(handle)``, atomically."""
        target = self.file_path(digest)
        if target.exists():
            return
        try:
            os.replace(self._write_temporary(target.parent, write), target)
        except OSError as exc:  # disk full, read-only folder
            raise StoreError(f"{target.parent}: cannot store a file ({problem_line(exc)}; "
                             f"{exc.strerror or exc})") from None

    @staticmethod
    def _write_temporary(folder: Path, write) -> Path:
        """A ``.part-`` file in ``folder`` filled by ``write(handle)`` and synced to disk; removed on failure."""
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".part-", delete=False) as handle:
            try:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            except BaseException:
                handle.close()
                os.unlink(handle.name)
                raise
        return Path(handle.name)

    def get_file(self, digest: str) -> bytes:
        path = self.file_path(digest)
        if not path.exists():
            raise StoreError(f"stored file {digest[:12]}… is missing from {self.folder / 'files'}")
        return path.read_bytes()

    def referenced_files(self, db=None) -> set[str]:
        """The hashes every table refers to (columns named ``*_sha``)."""
        with contextlib.ExitStack() as stack:
            db = db or stack.enter_context(self._read())
            found: set[str] = set()
            for table in [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]:
                for column in [r[1] for r in db.execute(f"PRAGMA table_info({table})") if r[1].endswith("_sha")]:
                    found.update(r[0] for r in db.execute(f"SELECT DISTINCT {column} FROM {table}") if r[0])
        return found

    def folder_size(self) -> int:
        """Bytes used by the data folder (database and files)."""
        return sum(p.stat().st_size for p in self.folder.rglob("*") if p.is_file())

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
        """Delete an experiment with its images and cells, and the stored files nothing else refers to."""
        with self._transaction() as db:
            mine = self._experiment_files(db, experiment_id)
            db.execute("DELETE FROM experiments WHERE id = ?", (experiment_id,))
            # Under the write lock: a writer re-checks its files inside its own transaction.
            for digest in mine - self.referenced_files(db):
                with contextlib.suppress(OSError):
                    self.file_path(digest).unlink()

    @staticmethod
    def _require(db, experiment_id: int, doing: str) -> None:
        """ExperimentGone when the experiment was deleted (in another session)."""
        if db.execute("SELECT 1 FROM experiments WHERE id = ?", (experiment_id,)).fetchone() is None:
            raise ExperimentGone(f"experiment {experiment_id} was deleted; {doing} was not saved into it")

    def _experiment_files(self, db, experiment_id: int) -> set[str]:
        rows = db.execute("SELECT image_sha, labels_sha FROM images WHERE experiment_id = ? UNION ALL "
                          "SELECT model_sha, NULL FROM anomaly_models WHERE experiment_id = ?",
                          (experiment_id, experiment_id))
        return {digest for row in rows for digest in row if digest}

    def experiments(self) -> pd.DataFrame:
        """id, name, created, modified, n_images, n_cells of every experiment, newest first."""
        with self._read() as db:
            rows = db.execute("""
                SELECT e.id, e.name, e.created, e.modified,
                       (SELECT COUNT(*) FROM images i WHERE i.experiment_id = e.id) AS n_images,
                       (SELECT COUNT(*) FROM cells c JOIN images i ON c.image_id = i.id
                         WHERE i.experiment_id = e.id) AS n_cells
                FROM experiments e ORDER BY e.modified DESC, e.id DESC""").fetchall()
        return pd.DataFrame([dict(r) for r in rows],
                            columns=["id", "name", "created", "modified", "n_images", "n_cells"])

    def experiment_id(self, name: str) -> int:
        with self._read() as db:
            row = db.execute("SELECT id FROM experiments WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise StoreError(f"no experiment called {name!r}")
        return int(row["id"])

    # -- images and cells -----------------------------------------------------------
    def find_image(self, experiment_id: int, image_sha: str, key: str) -> dict | None:
        """The stored image with these bytes and parameters, if any (then nothing is recomputed)."""
        with self._read() as db:
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
        diameters: tuple[float | None, float | None] = (None, None),
        expected_labels_sha: str | None = None,
        edit: dict | None = None,
        interfaces: pd.DataFrame | None = None,
    ) -> int:
        """Store one image's results in one transaction (replacing an earlier result of that name).

        ``interfaces``: its table of cell-cell interfaces (:mod:`bbbcore.interfaces`), kept with the cells.

        ``sample`` holds the image's sample fields (:data:`bbbcore.metadata.SAMPLE_FIELDS`),
        ``pixel_size_um`` being the one its cells were measured with. ``expected_labels_sha``: the
        stored labels this result was made from (a hand correction); when another session has stored
        different ones since, nothing is saved. ``edit``: the hand correction these labels come from,
        logged as the image's next version (keys ``operation``, ``cells``, ``said``, ``session``; see
        :meth:`edits`); the earlier labels stay stored. Without ``edit``, labels other than the stored
        ones (a new segmentation) start the image's history again.

        Raises
        ------
        EditConflict
            The stored labels are no longer ``expected_labels_sha``.
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
        borders = []
        if interfaces is not None:
            columns = [c for c in interfaces.columns if c not in ("image", "image_id")]
            for values in interfaces[columns].itertuples(index=False, name=None):
                row = {c: _plain(v) for c, v in zip(columns, values)}
                borders.append((int(row["cell_a"]), int(row["cell_b"]), json.dumps(row, allow_nan=False)))
        with self._transaction() as db:
            self._require(db, experiment_id, name)
            stored = db.execute("SELECT labels_sha, created FROM images WHERE experiment_id = ? AND name = ?",
                                (experiment_id, name)).fetchone()
            if expected_labels_sha is not None:
                if stored is None or stored[0] != expected_labels_sha:
                    when = f" at {str(stored[1])[11:16]} UTC" if stored is not None else ""
                    raise EditConflict(f"{display_name(name)}: its cells were changed in another session{when}; this "
                                       "edit was not saved: reload the page to see them, then edit again")
            # A deletion elsewhere may have removed a shared file since put_file: store it again.
            for digest, data in ((image_sha, original), (labels_sha, labels_tiff)):
                self._write_file(digest, lambda handle, data=data: handle.write(data))
            db.execute("DELETE FROM images WHERE experiment_id = ? AND name = ?", (experiment_id, name))
            cursor = db.execute(
                f"INSERT INTO images (experiment_id, {', '.join(IMAGE_FIELDS)}) "
                f"VALUES (?, {', '.join('?' * len(IMAGE_FIELDS))})",
                (experiment_id, name, image_sha, labels_sha,
                 *(_plain(sample.get(f)) for f in STORED_SAMPLE_FIELDS), model[0], model[1],
                 json.dumps(params, sort_keys=True, default=str), params_key(params), source,
                 int(shape[0]), int(shape[1]), _plain(cell_coverage), _now(), None,
                 _plain(diameters[0]), _plain(diameters[1])),
            )
            image_row = int(cursor.lastrowid)
            if edit is not None:
                self._log_edit(db, experiment_id, name, edit, labels_sha, stored[0] if stored else labels_sha)
            elif stored is None or stored[0] != labels_sha:
                db.execute("DELETE FROM edits WHERE experiment_id = ? AND image = ?", (experiment_id, name))
            db.executemany("INSERT INTO cells (image_id, cell_id, anomaly_score, is_anomaly, data) "
                           "VALUES (?, ?, ?, ?, ?)", [(image_row, *r) for r in records])
            db.executemany("INSERT INTO interfaces (image_id, cell_a, cell_b, data) VALUES (?, ?, ?, ?)",
                           [(image_row, *r) for r in borders])
            db.execute("UPDATE experiments SET modified = ? WHERE id = ?", (_now(), experiment_id))
        return image_row

    def interfaces(self, experiment_id: int) -> pd.DataFrame:
        """Every stored interface of the experiment (``image`` and ``image_id`` first), images in stored order.

        Images stored before interfaces were measured have none here (see :meth:`interface_images`).
        """
        with self._read() as db:
            rows = db.execute(
                "SELECT i.name, i.image_sha, f.data FROM interfaces f JOIN images i ON f.image_id = i.id "
                "WHERE i.experiment_id = ? ORDER BY i.id, f.cell_a, f.cell_b", (experiment_id,)).fetchall()
        # image_id is the first 16 hex digits of the file's SHA-256, as in the cells table.
        table = pd.DataFrame([{"image": r["name"], "image_id": r["image_sha"][:16], **json.loads(r["data"])}
                              for r in rows])
        for column in table.columns:  # a number column stored empty throughout (no pixel size) stays numeric
            if table[column].isna().all():
                table[column] = table[column].astype(float)
        return table

    def interface_images(self, experiment_id: int) -> set[str]:
        """Names of the experiment's images whose interfaces are stored."""
        with self._read() as db:
            rows = db.execute("SELECT DISTINCT i.name FROM interfaces f JOIN images i ON f.image_id = i.id "
                              "WHERE i.experiment_id = ?", (experiment_id,)).fetchall()
        return {r["name"] for r in rows}

    @staticmethod
    def _log_edit(db, experiment_id: int, name: str, edit: dict, labels_sha: str, parent_sha: str) -> None:
        operation = str(edit.get("operation", ""))
        if operation not in LOGGED_OPERATIONS:
            raise ValueError(f"unknown edit {operation!r} (one of {', '.join(LOGGED_OPERATIONS)})")
        version = db.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM edits WHERE experiment_id = ? AND image = ?",
                             (experiment_id, name)).fetchone()[0]
        db.execute("INSERT INTO edits (experiment_id, image, version, labels_sha, parent_sha, operation, cells, said, "
                   "session, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (experiment_id, name, int(version), labels_sha, parent_sha, operation,
                    json.dumps(sorted(int(c) for c in edit.get("cells", ()))), str(edit.get("said", "")),
                    str(edit.get("session", "")), _now()))

    def edits(self, experiment_id: int, name: str | None = None) -> pd.DataFrame:
        """The edit log: one row per hand correction (version 1 first), of one image or all.

        Columns: image, version, operation, cells (the ids it changed), said (in words), session (the
        editing session's id), at (UTC), labels_sha (the labels it made), parent_sha (those before it:
        version 1's are the model's cells). Every version's labels stay in the store.
        """
        query = "SELECT image, version, operation, cells, said, session, at, labels_sha, parent_sha FROM edits " \
                "WHERE experiment_id = ?" + (" AND image = ?" if name is not None else "") + " ORDER BY image, version"
        with self._read() as db:
            rows = db.execute(query, (experiment_id,) if name is None else (experiment_id, name)).fetchall()
        table = pd.DataFrame([tuple(r) for r in rows], columns=["image", "version", "operation", "cells", "said",
                                                               "session", "at", "labels_sha", "parent_sha"])
        table["cells"] = [json.loads(c) for c in table["cells"]]
        return table

    def labels_sha(self, experiment_id: int, name: str) -> str | None:
        """The SHA-256 of an image's stored labels TIFF (None when the image is not stored)."""
        with self._read() as db:
            row = db.execute("SELECT labels_sha FROM images WHERE experiment_id = ? AND name = ?",
                             (experiment_id, name)).fetchone()
        return None if row is None else str(row[0])

    def images(self, experiment_id: int) -> pd.DataFrame:
        """The experiment's image rows, in the order they were stored."""
        with self._read() as db:
            rows = db.execute("SELECT * FROM images WHERE experiment_id = ? ORDER BY id", (experiment_id,)).fetchall()
        return pd.DataFrame([dict(r) for r in rows], columns=["id", "experiment_id", *IMAGE_FIELDS])

    def cells(self, experiment_id: int) -> pd.DataFrame:
        """Every stored cell of the experiment (all feature columns), images in stored order."""
        with self._read() as db:
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
            self._require(db, experiment_id, f"the exclusion of {image}")
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
        with self._read() as db:
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
            self._require(db, experiment_id, "the anomaly scores")
            ids = {r["name"]: r["id"] for r in db.execute("SELECT id, name FROM images WHERE experiment_id = ?",
                                                          (experiment_id,)).fetchall()}
            db.executemany(
                "UPDATE cells SET anomaly_score = ?, is_anomaly = ? WHERE image_id = ? AND cell_id = ?",
                [(_plain(r.anomaly_score), None if pd.isna(r.is_anomaly) else int(bool(r.is_anomaly)),
                  ids[r.image], int(r.cell_id))
                 for r in scored[["image", "cell_id", "anomaly_score", "is_anomaly"]].itertuples() if r.image in ids])

    def save_anomaly_model(self, experiment_id: int, data: bytes | None, *, design: str, fit_on: str | None,
                           seed: int, contamination: float) -> None:
        """Keep the experiment's fitted anomaly model (the zip of :func:`bbbcore.anomaly.model_zip_bytes`)
        and how it was fitted; ``data`` None keeps the stored model and updates the rest (a new threshold)."""
        digest = self.put_file(data) if data is not None else None
        with self._transaction() as db:
            self._require(db, experiment_id, "the anomaly model")
            if digest is None:
                db.execute("UPDATE anomaly_models SET design = ?, fit_on = ?, seed = ?, contamination = ? "
                           "WHERE experiment_id = ?", (design, fit_on, int(seed), float(contamination), experiment_id))
                return
            db.execute("INSERT OR REPLACE INTO anomaly_models VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (experiment_id, digest, design, fit_on, int(seed), float(contamination), _now()))

    def anomaly_model(self, experiment_id: int) -> dict | None:
        """The stored anomaly model: ``data`` (zip bytes), design, fit_on, seed, contamination; None when none."""
        with self._read() as db:
            row = db.execute("SELECT * FROM anomaly_models WHERE experiment_id = ?", (experiment_id,)).fetchone()
        if row is None:
            return None
        return {**dict(row), "data": self.get_file(row["model_sha"])}

    def update_samples(self, experiment_id: int, sheet: pd.DataFrame) -> None:
        """Store edited sample fields (a sample sheet) for the experiment's images, in one transaction.

        ``pixel_size_um`` is left as stored: it is the one the cells were measured with.
        """
        editable = [f for f in STORED_SAMPLE_FIELDS if f != "pixel_size_um" and f in sheet.columns]
        if not editable:
            return
        assignments = ", ".join(f"{f} = ?" for f in editable)
        with self._transaction() as db:
            self._require(db, experiment_id, "the edited sample fields")
            db.executemany(
                f"UPDATE images SET {assignments} WHERE experiment_id = ? AND name = ?",
                [(*(_plain(row[f]) for f in editable), experiment_id, row["file"]) for _, row in sheet.iterrows()])

    def delete_image(self, experiment_id: int, name: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM images WHERE experiment_id = ? AND name = ?", (experiment_id, name))
            db.execute("DELETE FROM edits WHERE experiment_id = ? AND image = ?", (experiment_id, name))

    # -- moving experiments between machines -------------------------------------------
    def export_zip(self, experiment_id: int, *, methods: str | None = None, target=None) -> bytes | None:
        """The experiment as one zip (see :mod:`bbbcore.exchange`): bytes, or written to ``target`` (path or file)."""
        import io

        from .exchange import export_experiment

        if target is not None:
            export_experiment(self, experiment_id, target, methods=methods)
            return None
        buffer = io.BytesIO()
        export_experiment(self, experiment_id, buffer, methods=methods)
        return buffer.getvalue()

    def import_zip(self, data, *, name: str | None = None, source: str | None = None, limits=None) -> int:
        """Import an exported experiment (``data``: a path, bytes or a binary file) as a new one; returns its id.

        ``source`` names the zip in messages (default: the path's name).

        Raises
        ------
        StoreError
            One line naming the zip and the problem; nothing is left behind.
        """
        from .exchange import ImportLimits, import_experiment

        label = source or (Path(data).name if isinstance(data, (str, Path)) else "experiment zip")
        return import_experiment(self, data, name=name, label=label, limits=limits or ImportLimits())
