"""python -m bbbcore edit: the editing functions from the command line, in the order given."""

from __future__ import annotations

import numpy as np

from bbbcore.cli import main
from bbbcore.export import read_labels_tiff, write_labels_tiff
from bbbcore.io import tiff_pixel_size
from tests.test_editing import grid


def test_edits_run_in_the_order_given_and_keep_the_pixel_size(tmp_path, capsys):
    source = write_labels_tiff(tmp_path / "cells.labels.tif", grid(), pixel_size_um=0.641)
    out = tmp_path / "fixed.tif"
    code = main(["edit", str(source), "--delete", "5", "--merge", "3,4", "--split", "1:4.5,-0.5 4.5,10.5",
                 "--draw", "22,2 30,2 30,10 22,10", "--out", str(out)])
    assert code == 0
    labels = read_labels_tiff(out)
    assert not (labels == 5).any() and not (labels == 4).any()  # deleted; 4 merged into 3
    assert (labels[10:, :20] == 3).all()
    assert set(np.unique(labels[:10, :10])) == {1, 6}  # cell 1 split in two: 6 is the next free id
    assert (labels[2:10, 22:30] == 7).all()  # then the drawn cell takes the next one
    assert abs(tiff_pixel_size(out) - 0.641) < 1e-6
    printed = capsys.readouterr().out
    assert "--split 1:4.5,-0.5 4.5,10.5: split cell 1 into cells 1, 6" in printed and "drew cell 7" in printed


def test_an_impossible_edit_is_one_line_and_nothing_is_written(tmp_path, capsys):
    source = write_labels_tiff(tmp_path / "cells.labels.tif", grid())
    out = tmp_path / "fixed.tif"
    assert main(["edit", str(source), "--delete", "2", "--merge", "1,5", "--out", str(out)]) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert error == ["error: cells.labels.tif: --merge 1,5: cells 1, 5 do not all touch: merged they would be 2 "
                     "separate pieces (pick cells that share a border); nothing written"]
    assert not out.exists()
    assert main(["edit", str(source), "--delete", "2,x", "--out", str(out)]) == 1
    assert "cell ids are whole numbers" in capsys.readouterr().err


def test_a_bad_file_or_no_edit_is_named_once(tmp_path, capsys):
    not_tiff = tmp_path / "notes.tif"
    not_tiff.write_bytes(b"my notes")
    assert main(["edit", str(not_tiff), "--delete", "1", "--out", str(tmp_path / "o.tif")]) == 2
    assert capsys.readouterr().err.startswith("error: notes.tif: not a readable labels TIFF")
    assert main(["edit", str(tmp_path / "gone.tif"), "--delete", "1", "--out", str(tmp_path / "o.tif")]) == 2
    assert capsys.readouterr().err.strip() == "error: gone.tif: file not found"
    source = write_labels_tiff(tmp_path / "cells.labels.tif", grid())
    assert main(["edit", str(source), "--out", str(tmp_path / "o.tif")]) == 2
    assert "no edit given" in capsys.readouterr().err
