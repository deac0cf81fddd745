"""bbbcore.errors: messages stay one line, the file named once."""

from __future__ import annotations

from pathlib import Path

import pytest

from bbbcore.errors import AnnotationError, ImageReadError, display_name, escape_controls, named_message


@pytest.mark.parametrize("name, shown", [
    ("plate.csv", "plate.csv"),
    ("a\nb.png", "a\\nb.png"),
    ("tab\there.tif", "tab\\there.tif"),
    ("\x1b[31mred.png", "\\x1b[31mred.png"),
    ("line\u2028sep.png", "line\\u2028sep.png"),
    ("evil\u202egnp.exe", "evil\\u202egnp.exe"),
    ("µm ä 10x.tif", "µm ä 10x.tif"),
    (Path("dir/x\ry.csv"), "dir/x\\ry.csv"),
])
def test_display_name_escapes_control_characters_only(name, shown):
    assert display_name(name) == shown


def test_escape_controls_keeps_one_line():
    assert escape_controls("a\r\nb\x00c") == "a\\r\\nb\\x00c"
    assert "\n" not in escape_controls("\n".join(["x"] * 5))


@pytest.mark.parametrize("error", [ImageReadError, AnnotationError])
def test_the_file_is_named_once_and_escaped(error):
    assert str(error("a\nb.png", "not a readable image")) == "a\\nb.png: not a readable image"
    assert str(error("a.png", "a.png: not a readable image")) == "a.png: not a readable image"
    assert str(error("a.png", "broken\nheader")) == "a.png: broken\\nheader"
    assert error("a\nb.png", "x").source == "a\nb.png"  # the raw name stays available


def test_named_message():
    assert named_message("t.csv", "the file is empty") == "t.csv: the file is empty"


def test_named_errors_survive_the_trip_from_a_worker_process():
    import pickle

    from bbbcore.errors import AnnotationError, ImageReadError

    for error in (ImageReadError("a.tif", "not an image"), AnnotationError("b.png", "no outline")):
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is type(error) and str(back) == str(error) and back.source == error.source
