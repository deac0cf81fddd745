"""Every bad input gets one line naming the file and the problem, and nothing else is lost (issue 14).

One table, :data:`CASES`: each row writes a bad input (and, where the command
takes several, good ones beside it) into ``tmp_path``, runs the command line
(:func:`bbbcore.cli.main`) and states the exact lines it prints on stderr and
its exit code. For every case the runner checks:

* stderr holds exactly the expected lines (one per problem; a run over
  several files adds its usual summary line), and no traceback;
* the file name appears once in each line that names it (escaped when it
  holds a newline);
* the good files or rows of the same run still give their output;
* where the dashboard shows the same error (images through
  :func:`bbbcore.io.load_image`, sample sheets through
  :func:`bbbcore.metadata.read_sample_sheet`; it prints ``str(exc)``), the
  library's message is the CLI's line without ``"error: "``;
* cases that once allocated gigabytes now stay within a few MB (tracemalloc).

Nothing here allocates more than a few MB: the image bombs are real PNG and
TIFF headers that claim 50,000 x 50,000 px over 64 bytes of pixels.
The store's cases go in the second table, :data:`STORE_CASES`, at the end.
"""

from __future__ import annotations

import io
import json
import re
import struct
import tracemalloc
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
from PIL import Image

from bbbcore.cli import main
from bbbcore.errors import BBBError
from bbbcore.export import write_labels_tiff
from bbbcore.io import UNREADABLE

# --------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------

FEATURES = ["area", "perimeter", "aspect_ratio", "extent", "equivalent_diameter",
            "solidity", "circularity", "elongation", "eccentricity"]


def cells_frame(per_image: int = 8, images: int = 3) -> pd.DataFrame:
    """A small cells table as `segment` writes it: control and tat, ``images`` images each."""
    rng = np.random.default_rng(0)
    rows = []
    for condition, size in (("control", 1000.0), ("tat", 1300.0)):
        for number in range(images):
            for cell in range(per_image):
                area = rng.normal(size, 80)
                rows.append({
                    "image": f"{condition}_{number}.png", "image_id": f"{condition}{number}", "cell_id": cell + 1,
                    "area": area, "perimeter": 4.2 * np.sqrt(area), "aspect_ratio": rng.uniform(0.7, 1.4),
                    "extent": rng.uniform(0.6, 0.8), "equivalent_diameter": np.sqrt(4 * area / np.pi),
                    "touches_edge": False, "solidity": rng.uniform(0.9, 1.0), "circularity": rng.uniform(0.7, 0.9),
                    "elongation": rng.uniform(1.0, 2.0), "eccentricity": rng.uniform(0.2, 0.8),
                    "condition": condition, "dose": 0.0 if condition == "control" else 80.0,
                })
    return pd.DataFrame(rows)


def write_cells(name: str, change: Callable[[pd.DataFrame], pd.DataFrame] = lambda t: t, **options):
    """A writer of the cells table, changed by ``change``, with pandas' to_csv ``options``."""
    def write(tmp: Path) -> None:
        change(cells_frame()).to_csv(tmp / name, index=False, **options)
    return write


def write_bytes(name: str, data: bytes | Callable[[], bytes]):
    def write(tmp: Path) -> None:
        (tmp / name).write_bytes(data() if callable(data) else data)
    return write


def with_text(row: int, column: str, value: str):
    """Put ``value`` in ``column`` at spreadsheet row ``row`` (header = row 1)."""
    def change(table: pd.DataFrame) -> pd.DataFrame:
        table[column] = table[column].astype(object)
        table.loc[row - 2, column] = value
        return table
    return change


def with_inf(rows: list[int], column: str):
    def change(table: pd.DataFrame) -> pd.DataFrame:
        table.loc[[r - 2 for r in rows], column] = np.inf
        return table
    return change


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def png_bomb(width: int = 50_000, height: int = 50_000) -> bytes:
    """An 8 x 8 PNG whose header (IHDR, with its CRC) claims ``width`` x ``height`` px."""
    data = bytearray(png_bytes(np.zeros((8, 8), np.uint8)))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def tiff_bomb(width: int = 50_000, height: int = 50_000) -> bytes:
    """An 8 x 8 TIFF whose tags claim ``width`` x ``height`` px (one strip, as a real one would)."""
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.zeros((8, 8), np.uint8), metadata=None)
    data = bytearray(buffer.getvalue())
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
        tags = {tag.code: tag for tag in tif.pages[0].tags.values()}
    for code, value in ((256, width), (257, height), (278, height)):
        assert tags[code].dtype == 4 and data[:2] == b"II"  # LONG, little-endian
        data[tags[code].valueoffset:tags[code].valueoffset + 4] = struct.pack("<I", value)
    return bytes(data)


LABELS = np.zeros((48, 64), np.int32)
LABELS[4:22, 4:30], LABELS[4:22, 34:60], LABELS[26:44, 4:30], LABELS[26:44, 34:60] = 1, 2, 3, 4


def rgb_image() -> np.ndarray:
    image = np.zeros((48, 64, 3), np.uint8)
    image[..., 1] = np.where(LABELS == 0, 220, 40)
    return image


def write_measure_inputs(bad_image: str, bad_data: bytes | Callable[[], bytes]):
    """A good labels + image pair (a.png) and a labels file whose image ``bad_image`` is bad."""
    def write(tmp: Path) -> None:
        write_labels_tiff(tmp / "a.labels.tif", LABELS)
        write_labels_tiff(tmp / "b.labels.tif", LABELS)
        (tmp / "a.png").write_bytes(png_bytes(rgb_image()))
        (tmp / bad_image).write_bytes(bad_data() if callable(bad_data) else bad_data)
    return write


def measure_argv(bad_image: str, *extra: str) -> list[str]:
    return ["measure", "{tmp}/a.labels.tif", "{tmp}/b.labels.tif", "--image", "{tmp}/a.png",
            f"{{tmp}}/{bad_image}", "--out", "{tmp}/out", *extra]


def write_sheet_run(content: bytes | Callable[[], bytes]):
    """A good labels + image pair and the sample sheet plate.csv."""
    def write(tmp: Path) -> None:
        write_labels_tiff(tmp / "a.labels.tif", LABELS)
        (tmp / "a.png").write_bytes(png_bytes(rgb_image()))
        (tmp / "plate.csv").write_bytes(content() if callable(content) else content)
    return write


SHEET_ARGV = ["measure", "{tmp}/a.labels.tif", "--image", "{tmp}/a.png", "--out", "{tmp}/out",
              "--sample-sheet", "{tmp}/plate.csv"]


def square(x: float, y: float, size: float = 12) -> list[dict]:
    return [{"x": x, "y": y}, {"x": x + size, "y": y}, {"x": x + size, "y": y + size}, {"x": x, "y": y + size}]


def labelbox(*cells: list[dict], image: str = "a.png") -> bytes:
    return json.dumps([{"Labeled Data": f"https://x.org/{image}", "Created By": "ann@lab.org",
                        "Label": {"Cell": [{"geometry": cell} for cell in cells]}}]).encode()


def write_annotation_run(name: str, content: bytes | Callable[[], bytes], *, image: bool = False):
    def write(tmp: Path) -> None:
        (tmp / name).write_bytes(content() if callable(content) else content)
        if image:
            (tmp / "a.png").write_bytes(png_bytes(rgb_image()))
    return write


# --------------------------------------------------------------------------
# What good files and rows must still give
# --------------------------------------------------------------------------


def nothing_written(tmp: Path) -> None:
    assert not (tmp / "out").exists() and not (tmp / "stats.csv").exists() and not (tmp / "scored.csv").exists()


def measured_good_image(tmp: Path) -> None:
    cells = pd.read_csv(tmp / "out" / "cells.csv")
    assert set(cells["image"]) == {"a.png"} and len(cells) == 4
    assert (tmp / "out" / "a.labels.tif").exists() and not (tmp / "out" / "b.labels.tif").exists()


def stats_like_the_plain_table(tmp: Path) -> None:
    """The table read from an unusual encoding / delimiter gives the plain table's statistics."""
    from bbbcore.stats import compare_to_control

    written = pd.read_csv(tmp / "stats.csv")
    expected = compare_to_control(cells_frame(), FEATURES[:5], "control", n_boot=10, unit="image")
    assert written["feature"].tolist() == FEATURES[:5]
    np.testing.assert_allclose(written["difference"], expected["difference"], rtol=1e-9)
    assert (written["n_images"] == 3).all() and written["p_welch"].notna().all()


def stats_without_the_inf_rows(tmp: Path) -> None:
    written = pd.read_csv(tmp / "stats.csv").set_index("feature")
    assert np.isfinite(written["difference"]).all() and np.isfinite(written["p_welch"]).all()
    assert written.loc["area", "n_cells"] + written.loc["area", "n_cells_control"] == 48 - 3
    assert written.loc["perimeter", "n_cells"] + written.loc["perimeter", "n_cells_control"] == 48


def scored_all_but(*rows: int):
    """Every row of the table is in the output; the given spreadsheet rows have no score, the others one."""
    def check(tmp: Path) -> None:
        scored = pd.read_csv(tmp / "scored.csv")
        assert len(scored) == 48
        unscored = {index + 2 for index in np.flatnonzero(scored["anomaly_score"].isna().to_numpy())}
        assert unscored == set(rows)
        assert not scored.loc[[r - 2 for r in rows], "is_anomaly"].any()
    return check


def sheet_applied(tmp: Path) -> None:
    cells = pd.read_csv(tmp / "out" / "cells.csv")
    assert (cells["condition"] == "tat").all() and (cells["dose"] == 80).all() and (cells["well"] == "B02").all()


# --------------------------------------------------------------------------
# Library messages the dashboard shows (str(exc))
# --------------------------------------------------------------------------


def library_message(call: Callable[[Path], object]) -> Callable[[Path], str]:
    def message(tmp: Path) -> str:
        with pytest.raises(BBBError) as info:
            call(tmp)
        return str(info.value)
    return message


def dashboard_image(name: str) -> Callable[[Path], str]:
    """The dashboard loads an upload's bytes under the upload's name."""
    from bbbcore.io import load_image

    return library_message(lambda tmp: load_image((tmp / name).read_bytes(), name=name))


def dashboard_sheet(tmp_name: str = "plate.csv") -> Callable[[Path], str]:
    from bbbcore.metadata import read_sample_sheet

    return library_message(lambda tmp: read_sample_sheet((tmp / tmp_name).read_bytes(), name=tmp_name))


# --------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One bad input: how to make it, the command, and what it must print.

    ``lines`` are stderr's lines, in order: a str must match exactly, a
    compiled pattern fully. ``name`` is the file name (as printed) that must
    appear once in every line naming it; ``produced`` checks the output of the
    good files or rows; ``library`` returns the message the library raises for
    the same input (the dashboard's), compared with the first line;
    ``max_mb`` bounds the memory the command allocates.
    """

    id: str
    write: Callable[[Path], None]
    argv: list[str]
    lines: list[str | re.Pattern]
    code: int
    name: str | None = None
    produced: Callable[[Path], None] | None = nothing_written
    library: Callable[[Path], str] | None = None
    max_mb: float | None = None
    #: Environment for the command ({tmp} replaced), e.g. the data folder BBB_DATA_DIR.
    env: dict[str, str] | None = None


STATS = ["stats", "{tmp}/cells.csv", "--control", "control", "--out", "{tmp}/stats.csv", "--bootstrap", "10"]
ANOMALIES = ["anomalies", "{tmp}/cells.csv", "--out", "{tmp}/scored.csv"]

CASES: list[Case] = [
    # -- tables: the tracebacks of the issue --------------------------------------------------------
    Case("stats: text in a numeric column",
         write_cells("cells.csv", with_text(7, "area", "big")), STATS,
         ["error: cells.csv: row 7, column area: 'big' is not a number"], 2, name="cells.csv"),
    Case("anomalies: text in a numeric column",
         write_cells("cells.csv", with_text(12, "solidity", "0.9 (approx)")), ANOMALIES,
         ["error: cells.csv: row 12, column solidity: '0.9 (approx)' is not a number"], 2, name="cells.csv"),
    Case("stats: a 5-row table",
         write_cells("five.csv", lambda t: t.head(5)), [*STATS[:1], "{tmp}/five.csv", *STATS[2:]],
         ["error: five.csv: nothing to compare with the control 'control': all 5 cell(s) not at the edge are of "
          "that condition; stats needs cells of at least one other condition"], 2, name="five.csv"),
    Case("anomalies: a 5-row table",
         write_cells("five.csv", lambda t: t.head(5)), ["anomalies", "{tmp}/five.csv", "--out", "{tmp}/scored.csv"],
         ["error: five.csv: 5 cell(s) to fit on; the anomaly model needs at least 20 (cells at the image edge and "
          "cells with missing or infinite values are not fitted)"], 2, name="five.csv"),
    Case("stats: no control cell",
         write_cells("cells.csv"), [*STATS[:3], "vehicle", *STATS[4:]],
         ["error: cells.csv: no cell has the control condition 'vehicle' (conditions: control, tat)"], 2,
         name="cells.csv"),
    # -- tables: silently wrong before ------------------------------------------------------------
    Case("stats: inf values",
         write_cells("cells.csv", with_inf([3, 9, 30], "area")), STATS,
         ["warning: cells.csv: 3 row(s) with missing or infinite values in area were left out (rows 3, 9, 30)"], 0,
         name="cells.csv", produced=stats_without_the_inf_rows),
    Case("anomalies: inf and -inf values",
         write_cells("cells.csv", lambda t: with_inf([4], "perimeter")(t).assign(
             extent=lambda u: u["extent"].where(u.index != 20, -np.inf))), ANOMALIES,
         ["warning: cells.csv: 2 row(s) with missing or infinite values in perimeter, extent were left out "
          "(rows 4, 22); they get no anomaly score"], 0, name="cells.csv", produced=scored_all_but(4, 22)),
    Case("stats: a UTF-16 table (Excel's Unicode text, tab separated)",
         write_cells("cells.csv", sep="\t", encoding="utf-16"), STATS, [], 0,
         produced=stats_like_the_plain_table),
    Case("stats: a semicolon table with decimal commas (European Excel)",
         write_cells("cells.csv", sep=";", decimal=","), STATS, [], 0, produced=stats_like_the_plain_table),
    Case("anomalies: a UTF-16 semicolon table with decimal commas",
         write_cells("cells.csv", sep=";", decimal=",", encoding="utf-16"), ANOMALIES, [], 0,
         produced=scored_all_but()),
    Case("stats: a UTF-8 table with a byte-order mark",
         write_cells("cells.csv", encoding="utf-8-sig"), STATS, [], 0, produced=stats_like_the_plain_table),
    Case("stats: a file name with a newline",
         write_cells("bad\nname.csv", with_text(3, "perimeter", "n.d.")),
         [*STATS[:1], "{tmp}/bad\nname.csv", *STATS[2:]],
         ["error: bad\\nname.csv: row 3, column perimeter: 'n.d.' is not a number"], 2, name="bad\\nname.csv"),
    # -- tables: empty, not a table, missing columns ----------------------------------------------------
    Case("stats: an empty file", write_bytes("cells.csv", b""), STATS,
         ["error: cells.csv: the file is empty"], 2, name="cells.csv"),
    Case("anomalies: a header and no rows", write_cells("cells.csv", lambda t: t.head(0)), ANOMALIES,
         ["error: cells.csv: the table has no rows (only a header)"], 2, name="cells.csv"),
    Case("stats: a table missing a needed column", write_cells("cells.csv", lambda t: t.drop(columns="perimeter")),
         STATS, ["error: cells.csv: missing column(s) perimeter"], 2, name="cells.csv"),
    Case("anomalies: a table missing needed columns",
         write_cells("cells.csv", lambda t: t.drop(columns=["solidity", "eccentricity"])), ANOMALIES,
         ["error: cells.csv: missing column(s) solidity, eccentricity (as written by `segment`)"], 2,
         name="cells.csv"),
    Case("stats: a row longer than the header", write_bytes("cells.csv", b"condition,area\ncontrol,1\ntat,2,3\n"),
         STATS, ["error: cells.csv: not a readable table (row 3 has 3 comma-separated fields, the header 2)"], 2,
         name="cells.csv"),
    Case("stats: an Excel workbook named .csv", write_bytes("cells.csv", b"PK\x03\x04" + bytes(60)), STATS,
         ["error: cells.csv: a zip or Excel workbook, not a text table (save it as CSV)"], 2, name="cells.csv"),
    Case("anomalies: a file that is not there", lambda tmp: None, ANOMALIES,
         ["error: cells.csv: file not found"], 2, name="cells.csv"),
    Case("stats: an output folder blocked by a file",
         lambda tmp: (write_cells("cells.csv")(tmp), (tmp / "blocker").write_text("")),
         [*STATS[:5], "{tmp}/blocker/run/stats.csv", *STATS[6:]],
         [re.compile(r"error: /\S+/blocker/run: (Not a directory|File exists)")], 2, name="blocker"),
    # -- annotations ----------------------------------------------------------------------------
    Case("import-annotations: coordinates of 1e5 without the image",
         write_annotation_run("labels.json", labelbox(square(4, 4), square(1e5, 1e5))),
         ["import-annotations", "{tmp}/labels.json", "--out", "{tmp}/out"],
         ["error: labels.json: a.png: record 1, cell 2 reaches x 100012, y 100012: labels of 100012 x 100012 px "
          "would be too large (10002 megapixels; the limit is 50); give the image (--image) or fix the "
          "coordinates"], 2, name="labels.json", max_mb=20),
    Case("import-annotations: coordinates outside the given image",
         write_annotation_run("labels.json", labelbox(square(4, 4), square(1e5, 7)), image=True),
         ["import-annotations", "{tmp}/labels.json", "--image", "{tmp}/a.png", "--out", "{tmp}/out"],
         ["error: labels.json: a.png: record 1, cell 2: the point x 100000, y 7 lies outside the image "
          "(64 x 48 px)"], 2, name="labels.json", max_mb=20),
    Case("import-annotations: 100k nested brackets",
         write_annotation_run("deep.json", b"[" * 100_000 + b"]" * 100_000),
         ["import-annotations", "{tmp}/deep.json", "--out", "{tmp}/out"],
         ["error: deep.json: not an annotation file: its JSON is nested 100000 levels deep (the limit is 64)"], 2,
         name="deep.json", max_mb=20),
    Case("import-annotations: bad JSON",
         write_annotation_run("bad.json", b'[{"Labeled Data": "a.png",\n  "Label": {"Cell": [}]'),
         ["import-annotations", "{tmp}/bad.json", "--out", "{tmp}/out"],
         ["error: bad.json: not valid JSON: line 2, column 22: Expecting value"], 2, name="bad.json"),
    # -- images: the bad one named, the good one measured ----------------------------------------------
    Case("measure: a 2,500-megapixel PNG bomb",
         write_measure_inputs("bomb.png", png_bomb), measure_argv("bomb.png"),
         ["error: bomb.png: image is too large (2500 megapixels; the limit is 50): 50000 x 50000 px; crop it into smaller fields, or bin it (Fiji: Image > Transform > Bin), first",
          "error: 1 file(s) could not be measured: b.labels.tif"], 1, name="bomb.png",
         produced=measured_good_image, library=dashboard_image("bomb.png"), max_mb=40),
    Case("measure: a 2,500-megapixel TIFF bomb",
         write_measure_inputs("bomb.tif", tiff_bomb), measure_argv("bomb.tif"),
         ["error: bomb.tif: image is too large (2500 megapixels; the limit is 50): 50000 x 50000 px; crop it into smaller fields, or bin it (Fiji: Image > Transform > Bin), first",
          "error: 1 file(s) could not be measured: b.labels.tif"], 1, name="bomb.tif",
         produced=measured_good_image, library=dashboard_image("bomb.tif"), max_mb=40),
    Case("measure: an image name with a newline",
         write_measure_inputs("bad\nname.png", b"not an image at all"), measure_argv("bad\nname.png"),
         [f"error: bad\\nname.png: {UNREADABLE}",
          "error: 1 file(s) could not be measured: b.labels.tif"], 1, name="bad\\nname.png",
         produced=measured_good_image, library=dashboard_image("bad\nname.png")),
    Case("measure: an image name with an escape character",
         write_measure_inputs("\x1b[31mred.png", b""), measure_argv("\x1b[31mred.png"),
         ["error: \\x1b[31mred.png: file is empty (0 bytes)",
          "error: 1 file(s) could not be measured: b.labels.tif"], 1, name="\\x1b[31mred.png",
         produced=measured_good_image, library=dashboard_image("\x1b[31mred.png")),
    # -- sample sheets: the same reader, the same line in the dashboard ----------------------------------
    Case("measure: a UTF-16 sample sheet",
         write_sheet_run("file\tcondition\tdose\tdose_unit\twell\na.png\ttat\t80\tng\tB02\n".encode("utf-16")),
         SHEET_ARGV, [], 0, produced=sheet_applied),
    Case("measure: a semicolon sample sheet with a BOM and a decimal comma",
         write_sheet_run("\ufefffile;condition;dose;well\na.png;tat;80,0;B02\n".encode()),
         SHEET_ARGV, [], 0, produced=sheet_applied),
    Case("measure: text in a sample sheet's dose",
         write_sheet_run(b"file,condition,dose\nx.png,control,0\na.png,tat,eighty\n"), SHEET_ARGV,
         ["error: plate.csv: row 3: dose 'eighty' is not a number (put the unit in dose_unit)"], 2,
         name="plate.csv", produced=None, library=dashboard_sheet()),
    Case("measure: an empty sample sheet", write_sheet_run(b""), SHEET_ARGV,
         ["error: plate.csv: the file is empty"], 2, name="plate.csv", produced=None, library=dashboard_sheet()),
    Case("measure: a sample sheet that is not a table",
         write_sheet_run(b"file,condition\na.png,tat\nb.png,tat,80,ng\n"), SHEET_ARGV,
         ["error: plate.csv: not a readable table (row 3 has 4 comma-separated fields, the header 2)"], 2,
         name="plate.csv", produced=None, library=dashboard_sheet()),
]


# --------------------------------------------------------------------------
# Store cases (experiments, export / import zips): append them here.
# --------------------------------------------------------------------------

DATA = {"BBB_DATA_DIR": "{tmp}/data"}


def write_store(*, experiments: tuple[str, ...] = ("Plate 1",), extra: Callable[[Path], None] | None = None):
    """A data folder with experiments holding one measured image each (and whatever ``extra`` adds)."""
    def write(tmp: Path) -> None:
        from bbbcore.store import Store
        from tests.test_exchange import full_experiment

        store = Store(tmp / "data")
        for name in experiments:
            store.rename_experiment(full_experiment(store), name)
        if extra is not None:
            extra(tmp)
    return write


def bomb_zip(tmp: Path) -> None:
    import zipfile

    with zipfile.ZipFile(tmp / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", b" " * 3_000_000)  # 3 MB of spaces, a few KB packed


def export_without_manifest(tmp: Path) -> None:
    import zipfile

    from bbbcore.store import Store

    data = Store(tmp / "data").export_zip(1)
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(tmp / "plate.zip", "w") as target:
        for name in source.namelist():
            if name != "manifest.json":
                target.writestr(name, source.read(name))


def damaged_export(kind: str):
    """plate.zip: an export of Plate 1 damaged as tests/test_exchange.py's ``bad_zip`` does."""
    def write(tmp: Path) -> None:
        from bbbcore.store import Store
        from tests.test_exchange import bad_zip

        (tmp / "plate.zip").write_bytes(bad_zip(kind, Store(tmp / "data").export_zip(1)))
    return write


def store_unchanged(experiments: int):
    def check(tmp: Path) -> None:
        from bbbcore.store import Store

        assert len(Store(tmp / "data").experiments()) == experiments
        assert not (tmp / "out").exists()
    return check


def untouched(path: Path, content: bytes) -> None:
    assert path.read_bytes() == content


def blank_and_good_images(tmp: Path) -> None:
    from bbbcore.session import SAMPLE_DATA_DIR

    (tmp / "blank.png").write_bytes(png_bytes(np.full((300, 400), 77, np.uint8)))
    (tmp / "good.jpg").write_bytes((SAMPLE_DATA_DIR / "bbb_rgb_03.jpg").read_bytes())


def blank_has_no_cells_and_good_is_segmented(tmp: Path) -> None:
    cells = pd.read_csv(tmp / "out" / "cells.csv")
    assert set(cells["image"]) == {"good.jpg"} and len(cells) > 20


def good_image_measured_with_sheet(tmp: Path) -> None:
    cells = pd.read_csv(tmp / "out" / "cells.csv")
    assert set(cells["condition"]) == {"tat"} and len(cells) == 4


STORE_CASES: list[Case] = [
    Case("experiments import: a zip bomb, with a configured limit",
         write_store(extra=bomb_zip), ["experiments", "import", "{tmp}/bomb.zip", "--max-gb", "0.001"],
         ["error: bomb.zip: not an importable experiment (3000000 bytes uncompressed; the limit is 1073741 "
          "(ImportLimits.max_total_bytes))"], 2, name="bomb.zip", env=DATA, produced=store_unchanged(1),
         max_mb=20),
    Case("experiments import: a table, not a zip",
         write_store(extra=lambda tmp: (tmp / "cells.csv").write_text("a,b\n1,2\n")),
         ["experiments", "import", "{tmp}/cells.csv"],
         ["error: cells.csv: not an importable experiment (not a zip file, or a damaged one)"], 2,
         name="cells.csv", env=DATA, produced=store_unchanged(1)),
    Case("experiments import: a zip without its manifest",
         write_store(extra=export_without_manifest), ["experiments", "import", "{tmp}/plate.zip"],
         ["error: plate.zip: not an importable experiment (manifest.json is missing)"], 2, name="plate.zip",
         env=DATA, produced=store_unchanged(1)),
    *[Case(f"experiments import: {kind}", write_store(extra=damaged_export(kind)),
           ["experiments", "import", "{tmp}/plate.zip"],
           [re.compile(re.escape("error: plate.zip: not an importable experiment (") + line + r"\)")],
           2, name="plate.zip", env=DATA, produced=store_unchanged(1))
      for kind, line in [
          ("bad JSON line", re.escape("data/cells.jsonl line 1: bad JSON (Expecting property name enclosed in "
                                      "double quotes, line 1 column 2)")),
          ("wrong hash", r"file [0-9a-f]{12}… is damaged \(its hash differs\)"),
          ("traversal name", re.escape("files/'../../evil': not a file name this format writes")),
          ("manifest without tables", re.escape("manifest.json: the list of tables is missing")),
          ("deep nesting", re.escape("data/cells.jsonl line 1: JSON nested deeper than 64 levels")),
          ("link to nothing", re.escape("cells row 1: image_id 99 refers to no exported row")),
      ]],
    Case("experiments export: no such experiment",
         write_store(), ["experiments", "export", "Plate 9", "--out", "{tmp}/out/plate.zip"],
         ["error: no experiment called 'Plate 9'"], 2, env=DATA, produced=store_unchanged(1)),
    Case("experiments delete: neither a name nor an id",
         write_store(), ["experiments", "delete"],
         ["error: give the experiment's name or --id N (one of them)"], 2, env=DATA, produced=store_unchanged(1)),
    Case("experiments list: a data folder holding another file as its database",
         lambda tmp: ((tmp / "data").mkdir(), (tmp / "data" / "bbb.sqlite").write_bytes(b"not sqlite" * 200)),
         ["experiments", "list"],
         [re.compile(r"error: .*bbb\.sqlite: not a usable BBB database \(file is not a database\); it was left "
                     r"untouched: move it away or set BBB_DATA_DIR to another folder")], 2, env=DATA,
         produced=lambda tmp: untouched(tmp / "data" / "bbb.sqlite", b"not sqlite" * 200)),
    Case("measure: a sample sheet naming files of another run",
         write_sheet_run(b"file,condition\na.png,tat\nb.png,control\nc .png,control\n"), SHEET_ARGV,
         ["warning: plate.csv: 2 row(s) name no file of this run: b.png, c .png (check the names)"], 0,
         name="plate.csv", produced=good_image_measured_with_sheet),
    pytest.param(Case("segment: a blank image",
                      blank_and_good_images,
                      ["segment", "{tmp}/blank.png", "{tmp}/good.jpg", "--out", "{tmp}/out"],
                      ["warning: blank.png: no cells: the image is blank (one value everywhere); check the channel "
                       "and the exposure"], 0, name="blank.png", produced=blank_has_no_cells_and_good_is_segmented),
                 marks=pytest.mark.model, id="segment: a blank image"),
]


# --------------------------------------------------------------------------
# The runner
# --------------------------------------------------------------------------


def _run(case: Case, tmp: Path) -> tuple[int, float]:
    argv = [arg.replace("{tmp}", str(tmp)) for arg in case.argv]
    if case.max_mb is not None:
        tracemalloc.start()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            code = main(argv)
    finally:
        peak = tracemalloc.get_traced_memory()[1] / 2**20 if case.max_mb is not None else 0.0
        tracemalloc.stop()
    noisy = [w for w in caught if issubclass(w.category, (RuntimeWarning, UserWarning))]
    assert not noisy, f"warnings a person would see: {[str(w.message) for w in noisy]}"
    return code, peak


def _case_id(case) -> str:
    return case.id if isinstance(case, Case) else case.id


@pytest.mark.parametrize("case", CASES + STORE_CASES, ids=[_case_id(case) for case in CASES + STORE_CASES])
def test_bad_input_gets_one_line_and_nothing_else_is_lost(case: Case, tmp_path: Path, capsys, monkeypatch) -> None:
    for key, value in (case.env or {}).items():
        monkeypatch.setenv(key, value.replace("{tmp}", str(tmp_path)))
    case.write(tmp_path)
    code, peak = _run(case, tmp_path)
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert "Traceback" not in captured.err + captured.out
    assert len(lines) == len(case.lines), f"stderr was:\n{captured.err}"
    for line, expected in zip(lines, case.lines):
        if isinstance(expected, re.Pattern):
            assert expected.fullmatch(line), line
        else:
            assert line == expected
    assert code == case.code
    if case.name is not None:
        naming = [line for line in lines if case.name in line]
        assert naming and all(line.count(case.name) == 1 for line in naming)
    if case.produced is not None:
        case.produced(tmp_path)
    if case.library is not None:
        assert case.library(tmp_path) == lines[0].removeprefix("error: ")
    if case.max_mb is not None:
        assert peak < case.max_mb, f"{peak:.0f} MB allocated"


def test_every_case_has_its_own_id() -> None:
    ids = [_case_id(case) for case in CASES + STORE_CASES]
    assert len(ids) == len(set(ids))
