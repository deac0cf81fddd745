"""An experiment as one zip that imports on another machine exactly as it was.

Layout of the zip (format ``bbb-experiment``, version 2)::

    manifest.json              format, version, schema version, each table's columns and row count, file sizes
    data/<table>.jsonl         every row of every table that belongs to the experiment, as stored
    files/<sha256>             the originals and labels TIFFs, by hash (checked on import)
    images.csv, cells.csv, interfaces.csv, exclusions.csv, labels/<id>-<stem>.labels.tif, methods.txt
                               for people (formula-neutralised, named); never read back

Which tables belong to an experiment is read from the database's foreign keys
(every table that leads to ``experiments`` through them), so tables added
later travel without changes here. Imports are bounded (:class:`ImportLimits`):
sizes are checked before anything is read and again while streaming, files
are hashed while they are copied, and a zip that fails any check leaves
nothing behind (no experiment, no file) and gives one line saying why.
Version 1 zips (the first round's) still import, as far as they carried the data.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from . import config
from .export import FORMULA_PREFIXES, table_csv_bytes
from .metadata import output_stem

FORMAT = "bbb-experiment"
VERSION = 2
_SHA = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class ImportLimits:
    """Bounds of an import: uncompressed bytes in all and per entry, JSON nesting depth."""

    max_total_bytes: int = int(config.IMPORT_MAX_TOTAL_GB * 2**30)
    max_entry_bytes: int = int(config.IMPORT_MAX_ENTRY_GB * 2**30)
    max_manifest_bytes: int = 2**20
    max_json_depth: int = 64


class ImportProblem(Exception):
    """Why a zip cannot be imported (turned into one StoreError line)."""


def experiment_tables(db) -> list[tuple[str, dict[str, tuple[str, str]]]]:
    """Tables that belong to an experiment, parents first: (table, {column: (parent table, parent column)})."""
    names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                      "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    links = {name: {r[3]: (r[2], r[4] or "id") for r in db.execute(f"PRAGMA foreign_key_list({name})")}
             for name in names}
    ordered, placed = [("experiments", {})], {"experiments"}
    while True:
        found = [n for n in names if n not in placed and links[n]
                 and all(parent in placed for parent, _ in links[n].values())]
        if not found:
            return ordered
        for name in found:
            ordered.append((name, links[name]))
            placed.add(name)


def _columns(db, table: str) -> list[str]:
    return [r[1] for r in db.execute(f"PRAGMA table_info({table})")]


def _has_id(db, table: str) -> bool:
    """The table's rows have their own INTEGER PRIMARY KEY ``id`` (renumbered on import)."""
    return any(r[1] == "id" and r[5] == 1 and r[2].upper() == "INTEGER" for r in db.execute(f"PRAGMA table_info({table})"))


# --------------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------------

def export_experiment(store, experiment_id: int, target: str | Path | BinaryIO, *, methods: str | None = None) -> None:
    """Write one experiment, every row and file of it, into a zip at ``target`` (a path or a binary file)."""
    from .store import StoreError

    with store._read() as db, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        experiment = db.execute("SELECT * FROM experiments WHERE id = ?", (experiment_id,)).fetchone()
        if experiment is None:
            raise StoreError(f"no experiment {experiment_id}")
        manifest_tables, keys, shas = {}, {}, set()
        for table, links in experiment_tables(db):
            where, values = ("id = ?", [experiment_id]) if table == "experiments" else _where(links, keys)
            columns = _columns(db, table)
            count = 0
            with archive.open(f"data/{table}.jsonl", "w") as handle:
                for row in db.execute(f"SELECT * FROM {table} WHERE {where} ORDER BY rowid", values):
                    record = dict(zip(columns, tuple(row)))
                    handle.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
                    count += 1
                    if "id" in record:
                        keys.setdefault((table, "id"), []).append(record["id"])
                    shas.update(v for c, v in record.items() if c.endswith("_sha") and v)
            manifest_tables[table] = {"rows": count, "columns": columns, "links": {c: list(p) for c, p in links.items()}}
        sizes = {}
        for digest in sorted(shas):
            path = store.file_path(digest)
            if not path.exists():
                raise StoreError(f"stored file {digest[:12]}… is missing from {store.folder / 'files'}")
            archive.write(path, f"files/{digest}", compress_type=zipfile.ZIP_STORED)
            sizes[digest] = path.stat().st_size
        _write_people_copies(store, archive, experiment_id, methods)
        archive.writestr("manifest.json", json.dumps({
            "format": FORMAT, "version": VERSION, "schema_version": db.execute("PRAGMA user_version").fetchone()[0],
            "experiment": dict(experiment), "tables": manifest_tables, "files": sizes,
        }, indent=1, ensure_ascii=False))


def _where(links: dict, keys: dict) -> tuple[str, list]:
    """Rows whose links point at exported parent rows."""
    parts, values = [], []
    for column, (parent, parent_column) in links.items():
        ids = keys.get((parent, parent_column), [])
        parts.append(f"{column} IN ({', '.join('?' * len(ids))})" if ids else "0")
        values += ids
    return " AND ".join(parts), values


def _write_people_copies(store, archive, experiment_id: int, methods: str | None) -> None:
    """Spreadsheet-safe tables and named labels TIFFs, for people opening the zip."""
    images = store.images(experiment_id)
    archive.writestr("images.csv", table_csv_bytes(images))
    archive.writestr("cells.csv", table_csv_bytes(store.cells(experiment_id)))
    archive.writestr("interfaces.csv", table_csv_bytes(store.interfaces(experiment_id)))
    archive.writestr("exclusions.csv", table_csv_bytes(store.exclusions(experiment_id)))
    if methods:
        archive.writestr("methods.txt", methods + "\n")
    for _, image in images.iterrows():
        archive.write(store.file_path(image["labels_sha"]),
                      f"labels/{image['id']}-{output_stem(image['name'])}.labels.tif",
                      compress_type=zipfile.ZIP_STORED)


# --------------------------------------------------------------------------------------------
# import
# --------------------------------------------------------------------------------------------

def import_experiment(store, source: str | Path | bytes | BinaryIO, *, name: str | None = None,
                      label: str = "experiment zip", limits: ImportLimits = ImportLimits()) -> int:
    """Import an exported experiment as a new one (named as exported, or ``name``; `` (2)`` when taken).

    Raises
    ------
    StoreError
        One line naming the zip and the problem; nothing is left behind.
    """
    from .store import StoreError

    added: list[Path] = []
    try:
        with _open_zip(source) as archive:
            _check_sizes(archive, limits)
            manifest = _read_json(archive, "manifest.json", limits.max_manifest_bytes, limits)
            tables = _manifest_tables(manifest)
            for digest in _manifest_files(archive, manifest):
                if not store.file_path(digest).exists():
                    added.append(store.file_path(digest))
                with archive.open(f"files/{digest}") as stream:
                    got = store.put_stream(stream, max_bytes=limits.max_entry_bytes, label=f"files/{digest[:12]}…")
                if got != digest:
                    with contextlib.suppress(OSError):
                        store.file_path(got).unlink()
                    raise ImportProblem(f"file {digest[:12]}… is damaged (its hash differs)")
            with store._transaction() as db:
                new_id = _insert_experiment(db, manifest, name)
                ids = {("experiments", "id"): {manifest["experiment"].get("id"): new_id}}
                for table in tables:
                    _insert_rows(db, store, table, _rows(archive, manifest, table, limits), ids, limits)
                return new_id
    except (ImportProblem, StoreError, zipfile.BadZipFile, zipfile.LargeZipFile, KeyError, ValueError, OSError,
            EOFError, RuntimeError, NotImplementedError) as exc:
        referenced = store.referenced_files() if added else set()
        for path in added:  # files this import brought in and nothing refers to
            if path.exists() and path.name not in referenced:
                with contextlib.suppress(OSError):
                    path.unlink()
        raise StoreError(f"{label}: not an importable experiment ({_describe(exc)})") from None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, zipfile.BadZipFile):
        return "not a zip file, or a damaged one"
    if isinstance(exc, KeyError):
        found = re.search(r"named '([^']*)'", str(exc.args[0])) if exc.args else None
        return f"{found.group(1) if found else exc.args[0] if exc.args else 'an entry'} is missing"
    if isinstance(exc, RuntimeError) and "encrypted" in str(exc):
        return "the zip is encrypted"
    text = str(exc)
    text = text.split(": ", 1)[1] if text.startswith("/") and ": " in text else text
    return text


@contextlib.contextmanager
def _open_zip(source) -> Iterator[zipfile.ZipFile]:
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    with zipfile.ZipFile(source) as archive:
        yield archive


def _check_sizes(archive: zipfile.ZipFile, limits: ImportLimits) -> None:
    """Declared sizes first (the central directory); streaming re-checks them."""
    total = 0
    for info in archive.infolist():
        if info.file_size > limits.max_entry_bytes:
            raise ImportProblem(f"{info.filename} is {info.file_size} bytes uncompressed; the limit for one entry "
                                f"is {limits.max_entry_bytes} (ImportLimits.max_entry_bytes)")
        total += info.file_size
    if total > limits.max_total_bytes:
        raise ImportProblem(f"{total} bytes uncompressed; the limit is {limits.max_total_bytes} "
                            "(ImportLimits.max_total_bytes)")


def _read_bounded(archive: zipfile.ZipFile, entry: str, max_bytes: int) -> bytes:
    with archive.open(entry) as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImportProblem(f"{entry} is larger than {max_bytes} bytes")
    return data


def check_json_depth(text: str, max_depth: int, where: str) -> None:
    """Refuse JSON nested deeper than ``max_depth`` before parsing it (no recursion error, no stack)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > max_depth:
                raise ImportProblem(f"{where}: JSON nested deeper than {max_depth} levels")
        elif char in "]}":
            depth -= 1


def _loads(text: str, where: str, limits: ImportLimits):
    check_json_depth(text, limits.max_json_depth, where)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportProblem(f"{where}: bad JSON ({exc.msg}, line {exc.lineno} column {exc.colno})") from None


def _read_json(archive: zipfile.ZipFile, entry: str, max_bytes: int, limits: ImportLimits):
    text = _read_bounded(archive, entry, max_bytes).decode("utf-8", errors="replace")
    value = _loads(text, entry, limits)
    if not isinstance(value, dict):
        raise ImportProblem(f"{entry}: not a JSON object")
    return value


def _manifest_tables(manifest: dict) -> list[str]:
    if manifest.get("format") != FORMAT:
        raise ImportProblem(f"manifest.json: format {manifest.get('format')!r}, not {FORMAT!r}")
    version = manifest.get("version")
    if version not in (1, VERSION):
        raise ImportProblem(f"manifest.json: version {version!r}; this tool reads versions 1 and {VERSION}: "
                            "update the tool")
    if not isinstance(manifest.get("experiment"), dict) or "name" not in manifest["experiment"]:
        raise ImportProblem("manifest.json: the experiment's name is missing")
    if version == 1:
        return ["images", "cells"]
    tables = manifest.get("tables")
    if not isinstance(tables, dict) or "images" not in tables:
        raise ImportProblem("manifest.json: the list of tables is missing")
    return [t for t in tables if t != "experiments"]


def _manifest_files(archive: zipfile.ZipFile, manifest: dict) -> list[str]:
    if manifest["version"] == 1:
        wanted = [n.split("/", 1)[1] for n in archive.namelist() if n.startswith("files/")]
    else:
        files = manifest.get("files")
        if not isinstance(files, dict):
            raise ImportProblem("manifest.json: the list of files is missing")
        wanted = list(files)
    for digest in wanted:
        if not _SHA.fullmatch(str(digest)):
            raise ImportProblem(f"files/{str(digest)[:40]!r}: not a file name this format writes")
    return wanted


def _insert_experiment(db, manifest: dict, name: str | None) -> int:
    import sqlite3

    from .store import _experiment_name, _now

    exported = manifest["experiment"]
    wanted = _experiment_name(str(name or exported["name"]))
    created = str(exported.get("created") or _now())
    modified = str(exported.get("modified") or created)
    final, counter = wanted, 1
    while True:
        try:
            cursor = db.execute("INSERT INTO experiments (name, created, modified) VALUES (?, ?, ?)",
                                (final, created, modified))
            return int(cursor.lastrowid)
        except sqlite3.IntegrityError:
            counter += 1
            final = f"{wanted} ({counter})"


def _rows(archive: zipfile.ZipFile, manifest: dict, table: str, limits: ImportLimits) -> Iterator[dict]:
    """The exported rows of one table, streamed line by line."""
    if manifest["version"] == 1:
        yield from _legacy_rows(archive, table, manifest["experiment"].get("id"), limits)
        return
    entry = f"data/{table}.jsonl"
    with archive.open(entry) as handle:
        for number, line in enumerate(io.TextIOWrapper(handle, encoding="utf-8"), start=1):
            if line.strip():
                row = _loads(line, f"{entry} line {number}", limits)
                if not isinstance(row, dict):
                    raise ImportProblem(f"{entry} line {number}: not a JSON object")
                yield row


def _insert_rows(db, store, table: str, rows: Iterator[dict], ids: dict, limits: ImportLimits) -> None:
    """Insert a table's rows, giving them new ids and pointing their links at the new parents."""
    import sqlite3

    columns = _columns(db, table)
    if not columns:
        raise ImportProblem(f"table {table!r} does not exist here: the zip is from a newer version; update the tool")
    links = {r[3]: (r[2], r[4] or "id") for r in db.execute(f"PRAGMA foreign_key_list({table})")}
    renumbered = _has_id(db, table)
    for number, row in enumerate(rows, start=1):
        unknown = sorted(set(row) - set(columns))
        if unknown:
            raise ImportProblem(f"{table} row {number}: unknown column(s) {', '.join(unknown)}")
        row = dict(row)
        old_id = row.pop("id", None) if renumbered else None
        for column, (parent, parent_column) in links.items():
            mapping = ids.get((parent, parent_column), {})
            if row.get(column) not in mapping:
                raise ImportProblem(f"{table} row {number}: {column} {row.get(column)!r} refers to no exported row")
            row[column] = mapping[row[column]]
        for column, value in row.items():
            if isinstance(value, str) and value[:1] in "[{":
                check_json_depth(value, limits.max_json_depth, f"{table} row {number}, column {column}")
            elif value is not None and not isinstance(value, (str, int, float)):
                raise ImportProblem(f"{table} row {number}, column {column}: not a plain value")
            if column.endswith("_sha") and value and not store.file_path(str(value)).exists():
                raise ImportProblem(f"{table} row {number}: file {str(value)[:12]}… is missing from the zip")
        try:
            cursor = db.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                                tuple(row.values()))
        except sqlite3.IntegrityError as exc:
            raise ImportProblem(f"{table} row {number}: {exc}") from None
        if renumbered:
            ids.setdefault((table, "id"), {})[old_id] = int(cursor.lastrowid)


def _unneutralise(value):
    """Undo the spreadsheet guard of a version 1 zip's images.csv ('+TNFa -> +TNFa)."""
    if isinstance(value, str) and value.startswith("'") and value[1:2] and value[1] in "".join(FORMULA_PREFIXES):
        return value[1:]
    return value


def _legacy_rows(archive: zipfile.ZipFile, table: str, experiment_id, limits: ImportLimits) -> Iterator[dict]:
    """Rows of a version 1 zip: images from images.csv, cells from cells/<image id>.jsonl.

    Version 1 kept anomaly scores only in the people's cells.csv; they do not come back.
    """
    import pandas as pd

    from .store import IMAGE_FIELDS

    images = pd.read_csv(io.BytesIO(_read_bounded(archive, "images.csv", limits.max_entry_bytes)), dtype=object,
                         keep_default_na=False)
    if table == "images":
        for _, image in images.iterrows():
            row = {"id": int(image["id"]), "experiment_id": experiment_id}
            for field in IMAGE_FIELDS:
                value = _unneutralise(image.get(field, ""))
                row[field] = None if value == "" else value
            for field in ("dose", "pixel_size_um", "cell_coverage"):
                row[field] = None if row.get(field) is None else float(row[field])
            for field in ("height", "width"):
                row[field] = None if row.get(field) is None else int(float(row[field]))
            yield {k: v for k, v in row.items() if k in IMAGE_FIELDS or k in ("id", "experiment_id")}
        return
    for image_id in images["id"].astype(int):
        entry = f"cells/{image_id}.jsonl"
        with archive.open(entry) as handle:
            for number, line in enumerate(io.TextIOWrapper(handle, encoding="utf-8"), start=1):
                if line.strip():
                    data = _loads(line, f"{entry} line {number}", limits)
                    excluded = data.pop("_excluded", None)
                    yield {"image_id": image_id, "cell_id": int(data["cell_id"]), "excluded": excluded,
                           "anomaly_score": None, "is_anomaly": None, "data": json.dumps(data)}
