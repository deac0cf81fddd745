"""bbbcore.scalebar: burned-in scale bars found and measured, on the sample images and drawn ones."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from bbbcore.junction_generator import generate
from bbbcore.scalebar import find_scale_bar, read_bar_label
from bbbcore.session import SAMPLE_DATA_DIR


@pytest.mark.parametrize(("name", "length"), [("bbb_rgb_01.jpg", 156), ("bbb_rgb_02.jpg", 125),
                                               ("bbb_rgb_04.jpg", 156)])
def test_the_sample_images_bars_are_measured(name, length):
    # 100 µm over 156 px at 10x, 200 µm over 125 px at 4x (the labels, read by eye): 0.641 and 1.600 µm/px.
    bar = find_scale_bar(np.asarray(Image.open(SAMPLE_DATA_DIR / name)))
    assert bar is not None and bar.dark and bar.length_px == length
    assert bar.end_col - bar.start_col + 1 == length and bar.row > 900  # at the bottom right


def field(seed: int) -> np.ndarray:
    picture = generate((600, 800), diameter_px=60, seed=seed)
    return np.round(picture.junction * 200).astype(np.uint8)


@pytest.mark.parametrize("length", [37, 120, 301])
def test_a_white_bar_with_end_ticks_is_measured_end_to_end(length):
    image = field(3)
    top, left = 560, 780 - length
    image[top:top + 4, left:left + length] = 255
    image[top - 6:top + 10, left:left + 2] = 255  # ticks
    image[top - 6:top + 10, left + length - 2:left + length] = 255
    bar = find_scale_bar(image)
    assert bar is not None and not bar.dark and bar.length_px == length
    assert bar.pixel_size_um(50.0) == pytest.approx(50.0 / length)


def test_a_dark_bar_in_a_white_box_with_its_label_is_measured():
    image = np.stack([np.zeros((600, 800), np.uint8), field(4), np.zeros((600, 800), np.uint8)], axis=-1)
    image[540:580, 600:780] = 255  # the box
    image[546:549, 610:770] = 0  # the bar, 160 px
    for x in range(640, 740, 14):  # a label: letters, none as long as the bar
        image[556:572, x:x + 9] = 30
    bar = find_scale_bar(image)
    assert bar is not None and bar.dark and (bar.length_px, bar.start_col) == (160, 610)


def test_no_bar_is_found_where_there_is_none():
    for seed in range(6):
        assert find_scale_bar(field(seed)) is None
    assert find_scale_bar(np.full((300, 400), 255, np.uint8)) is None  # white everywhere: no thin run
    assert find_scale_bar(np.zeros((300, 400), np.uint16)) is None


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="Debian's tesseract-ocr is not installed "
                    "(scripts/run_tests.sh installs it when run as root)")
def test_the_label_is_read_by_tesseract():
    for name, length_um in (("bbb_rgb_01.jpg", 100.0), ("bbb_rgb_02.jpg", 200.0), ("bbb_rgb_05.jpg", 100.0)):
        raw = np.asarray(Image.open(SAMPLE_DATA_DIR / name))
        assert read_bar_label(raw, find_scale_bar(raw)) == length_um
    image = field(3)
    image[560:564, 500:700] = 255  # a bar with no label under it
    assert read_bar_label(image, find_scale_bar(image)) is None


def test_without_tesseract_the_label_is_left_to_the_person(monkeypatch):
    import bbbcore.scalebar as scalebar

    monkeypatch.setattr(scalebar.shutil, "which", lambda name: None)
    raw = np.asarray(Image.open(SAMPLE_DATA_DIR / "bbb_rgb_02.jpg"))
    assert scalebar.read_bar_label(raw, find_scale_bar(raw)) is None


def test_tesseract_runs_on_one_thread_and_its_reading_is_parsed(monkeypatch):
    import subprocess

    import bbbcore.scalebar as scalebar

    calls = []

    def fake_run(command, **kwargs):
        calls.append(kwargs.get("env") or {})
        return subprocess.CompletedProcess(command, 0, stdout="Scale\n50 um\n", stderr="")

    monkeypatch.setattr(scalebar.shutil, "which", lambda name: "/usr/bin/tesseract")
    monkeypatch.setattr(scalebar.subprocess, "run", fake_run)
    raw = np.asarray(Image.open(SAMPLE_DATA_DIR / "bbb_rgb_01.jpg"))
    assert scalebar.read_bar_label(raw, find_scale_bar(raw)) == 50.0
    assert calls and calls[0].get("OMP_THREAD_LIMIT") == "1"  # OpenMP's pool cost 3x the reading
