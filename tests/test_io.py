"""bbbcore.io: formats, channels, normalisation, metadata and every bad input."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tifffile
from PIL import Image

from bbbcore.errors import ImageReadError
from bbbcore.io import load_image, normalise, read_image_data


def png_bytes(array: np.ndarray, **kwargs) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", **kwargs)
    return buffer.getvalue()


def tiff_bytes(array: np.ndarray, **kwargs) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, **kwargs)
    return buffer.getvalue()


@pytest.fixture
def gray8():
    rng = np.random.default_rng(0)
    return (rng.random((64, 80)) * 200 + 20).astype(np.uint8)


def test_8_and_16_bit_give_the_same_normalised_image(gray8):
    a = load_image(png_bytes(gray8), name="a.png")
    b = load_image(png_bytes(gray8.astype(np.uint16) * 257), name="b.png")
    c = load_image(tiff_bytes(gray8.astype(np.uint16) * 257), name="c.tif")
    assert a.junction.dtype == np.float32 and a.junction.shape == (64, 80)
    np.testing.assert_allclose(a.junction, b.junction, atol=1e-5)
    np.testing.assert_allclose(a.junction, c.junction, atol=1e-5)
    assert 0.0 <= a.junction.min() and a.junction.max() <= 1.0


@pytest.mark.parametrize("junction_at", [1, 0])
def test_rgb_channels_are_picked_by_content(junction_at):
    from tests.synthetic import voronoi_monolayer

    field = voronoi_monolayer(shape=(192, 256), n_cells=16, seed=3)
    rgb = np.zeros((192, 256, 3), np.uint8)
    nuclear_at = 2 if junction_at == 1 else 1  # ZO-1 green and DAPI blue, or ZO-1 red and DAPI green
    rgb[..., junction_at] = np.round(field["junction"] * 230)
    rgb[..., nuclear_at] = np.round(field["nuclei"] * 230)
    image = load_image(png_bytes(rgb), name="rgb.png")
    assert (image.junction_channel, image.nuclear_channel) == (junction_at, nuclear_at)
    assert image.channels_how.startswith("by content") and not image.warnings
    np.testing.assert_allclose(image.junction, normalise(rgb[..., junction_at]))
    np.testing.assert_allclose(image.nuclei, normalise(rgb[..., nuclear_at]))
    by_name = load_image(png_bytes(rgb), name="rgb.png", channel="blue", nuclear_channel=None)
    assert by_name.junction_channel == 2 and by_name.nuclei is None and by_name.channels_how == "as set"
    wrong = load_image(png_bytes(rgb), name="rgb.png", channel=nuclear_at)  # DAPI chosen as the junction stain
    assert wrong.junction_channel == nuclear_at and len(wrong.warnings) == 1
    assert wrong.warnings[0].startswith("rgb.png: the junction channel") and "looks like nuclei" in wrong.warnings[0]


def test_gray_stored_as_rgb_has_no_nuclear_channel(gray8):
    rgb = np.repeat(gray8[..., None], 3, axis=-1)
    image = load_image(png_bytes(rgb), name="grayrgb.png")
    assert image.junction_channel == 1 and image.nuclear_channel is None


def test_multichannel_tiff_by_metadata_name_and_pixel_size():
    rng = np.random.default_rng(1)
    stack = (rng.random((2, 50, 60)) * 4000).astype(np.uint16)  # C, Y, X
    data = tiff_bytes(
        stack, imagej=True, resolution=(1 / 0.31, 1 / 0.31),
        metadata={"axes": "CYX", "unit": "um", "Labels": ["DAPI", "ZO-1"]},
    )
    image = load_image(data, name="two.tif")
    assert image.channel_names == ["DAPI", "ZO-1"]
    assert image.junction_channel == 1 and image.nuclear_channel == 0
    assert image.pixel_size_um == pytest.approx(0.31, rel=1e-4)
    override = load_image(data, name="two.tif", channel="DAPI", nuclear_channel=None)
    assert override.junction_channel == 0


def test_ome_tiff_pixel_size():
    array = np.zeros((40, 50), np.uint16)
    array[10:20, 10:20] = 1000
    data = tiff_bytes(array, ome=True, metadata={"PhysicalSizeX": 0.155, "PhysicalSizeXUnit": "µm"})
    assert load_image(data, name="x.ome.tif").pixel_size_um == pytest.approx(0.155)


def test_png_has_no_pixel_size(gray8):
    assert load_image(png_bytes(gray8), name="a.png").pixel_size_um is None


def test_zstack_needs_projection_then_gives_maximum():
    rng = np.random.default_rng(2)
    stack = (rng.random((5, 30, 40)) * 255).astype(np.uint8)
    data = tiff_bytes(stack, imagej=True, metadata={"axes": "ZYX"})
    with pytest.raises(ImageReadError, match=r"^z\.tif: is a stack of 5 planes.*maximum projection"):
        load_image(data, name="z.tif")
    raw, _ = read_image_data(data, name="z.tif", max_projection=True)
    np.testing.assert_array_equal(raw, stack.max(axis=0))


def test_jpeg_loads(gray8):
    buffer = io.BytesIO()
    Image.fromarray(np.stack([gray8] * 3, -1)).save(buffer, format="JPEG")
    assert load_image(buffer.getvalue(), name="a.jpg").shape == (64, 80)


def test_file_path_and_image_id(tmp_path, gray8):
    path = tmp_path / "cells.png"
    path.write_bytes(png_bytes(gray8))
    image = load_image(path)
    assert image.name == "cells.png"
    assert image.image_id == load_image(path.read_bytes(), name="other.png").image_id
    assert len(image.image_id) == 16


# --- every bad input kind gets its one-line message naming the file ------------


def test_empty_file():
    with pytest.raises(ImageReadError, match=r"^empty\.png: file is empty \(0 bytes\)$"):
        load_image(b"", name="empty.png")


def test_not_an_image():
    with pytest.raises(ImageReadError, match=r"^notes\.png: not a readable image"):
        load_image(b"hello, this is a text file renamed to png\n" * 10, name="notes.png")


def test_truncated_png(gray8):
    data = png_bytes(gray8)
    with pytest.raises(ImageReadError, match=r"^cut\.png: (file is truncated|image data is corrupt)"):
        load_image(data[: len(data) // 2], name="cut.png")


def test_truncated_tiff(gray8):
    data = tiff_bytes(np.tile(gray8, (4, 4)))
    with pytest.raises(ImageReadError, match=r"^cut\.tif: "):
        load_image(data[: len(data) // 3], name="cut.tif")


def test_zero_sized_tiff():
    data = tiff_bytes(np.zeros((0, 10), np.uint8))
    with pytest.raises(ImageReadError, match=r"^zero\.tif: .*(zero size|no image)"):
        load_image(data, name="zero.tif")


def test_too_many_megapixels():
    # A PNG header that claims 10,000 x 6,000 px is refused before decoding.
    big = np.zeros((6000, 10000), np.uint8)
    data = png_bytes(big, compress_level=9)
    with pytest.raises(ImageReadError,
                       match=r"^big\.png: image is too large \(60 megapixels; the limit is 50\): 10000 x 6000 px; crop it into "
                             r"smaller fields, or bin it \(Fiji: Image > Transform > Bin\), first$"):
        load_image(data, name="big.png")


def test_unsupported_dtype():
    data = tiff_bytes(np.zeros((20, 20), np.complex64))
    with pytest.raises(ImageReadError, match=r"^c\.tif: unsupported pixel type complex64"):
        load_image(data, name="c.tif")


def test_missing_channel_is_named(gray8):
    with pytest.raises(ImageReadError, match=r"^a\.png: has 1 channel\(s\); channel 2 does not exist$"):
        load_image(png_bytes(gray8), name="a.png", channel=2)
    with pytest.raises(ImageReadError, match=r"has no channel named 'ZO-1'"):
        load_image(png_bytes(gray8), name="a.png", channel="ZO-1")


def test_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match=r"^nothere\.png: file not found$"):
        load_image(tmp_path / "nothere.png")


def test_messages_are_one_line(gray8):
    for data in (b"", b"garbage", png_bytes(gray8)[:100]):
        with pytest.raises(ImageReadError) as info:
            load_image(data, name="x.png")
        assert "\n" not in str(info.value)


# --- image bombs: refused from the header, before anything is decoded -------------


def _png_claiming(width: int, height: int) -> bytes:
    """An 8 x 8 PNG whose IHDR (CRC fixed) claims ``width`` x ``height`` px: a bomb without the bytes."""
    import struct
    import zlib

    data = bytearray(png_bytes(np.zeros((8, 8), np.uint8)))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def test_a_png_bomb_is_too_large_not_unreadable():
    from PIL import Image as PILImage

    limit = PILImage.MAX_IMAGE_PIXELS
    with pytest.raises(ImageReadError) as info:
        load_image(_png_claiming(50_000, 50_000), name="bomb.png")
    assert str(info.value) == ("bomb.png: image is too large (2500 megapixels; the limit is 50): 50000 x 50000 px; "
                               "crop it into smaller fields, or bin it (Fiji: Image > Transform > Bin), first")
    assert PILImage.MAX_IMAGE_PIXELS == limit  # Pillow's own limit is left as it was


def test_a_png_over_pillows_warning_size_but_under_ours_is_read_from_the_header():
    # 100 megapixels: Pillow would only warn; ours is the limit that counts, read from the header.
    with pytest.raises(ImageReadError, match=r"^p\.png: image is too large \(100 megapixels; the limit is 50\)"):
        load_image(_png_claiming(10_000, 10_000), name="p.png")


def test_the_megapixels_shown_never_round_down_to_the_limit():
    with pytest.raises(ImageReadError, match=r"too large \(50.1 megapixels; the limit is 50\): 10020 x 5000 px; crop"):
        load_image(_png_claiming(10_020, 5_000), name="p.png")


def test_a_tiff_bomb_is_too_large():
    import struct

    data = bytearray(tiff_bytes(np.zeros((8, 8), np.uint8), metadata=None))
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
        tags = {tag.code: tag for tag in tif.pages[0].tags.values()}
    for code in (256, 257, 278):  # ImageWidth, ImageLength, RowsPerStrip
        data[tags[code].valueoffset:tags[code].valueoffset + 4] = struct.pack("<I", 50_000)
    with pytest.raises(ImageReadError) as info:
        load_image(bytes(data), name="bomb.tif")
    assert str(info.value) == ("bomb.tif: image is too large (2500 megapixels; the limit is 50): 50000 x 50000 px; "
                               "crop it into smaller fields, or bin it (Fiji: Image > Transform > Bin), first")


def test_a_stack_too_large_to_project_is_refused_before_reading():
    data = tiff_bytes(np.zeros((40, 8, 8), np.uint8), imagej=True, metadata={"axes": "ZYX"})
    # Limit 0.0001 megapixels = 100 px: each 64-px plane fits, 40 planes exceed 20 x 100 px.
    with pytest.raises(ImageReadError, match=r"^s\.tif: stack is too large \(40 planes and channels, "
                                             r"0.003 megapixels in all; the limit is 0.002\); save the planes you need, or their "
                                             r"maximum projection \(Fiji: Image > Stacks > Z Project\), first$"):
        load_image(data, name="s.tif", max_projection=True, max_megapixels=0.0001)
    assert load_image(data, name="s.tif", max_projection=True, max_megapixels=0.001).shape == (8, 8)


def test_a_tiff_without_pages_is_one_line_naming_the_file_and_nothing_else():
    """tifffile's own log line about it (no file name, printed by Python's last-resort handler where nothing
    handles logging, as on the command line) stays out of stderr. A fresh interpreter: pytest handles logging."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = ("from bbbcore.errors import ImageReadError\nfrom bbbcore.io import load_image\n"
            "try:\n    load_image(b'II*\\x00' + bytes(50), name='nopages.tif')\n"
            "except ImageReadError as exc:\n    print(exc)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "nopages.tif: TIFF holds no image"
    assert proc.stderr == ""


@pytest.mark.parametrize("kind", ["flat", "noise"])
def test_a_colour_image_whose_channels_show_nothing_says_so_in_one_line(kind):
    from bbbcore.io import NO_SIGNAL

    rng = np.random.default_rng(0)
    raw = np.full((200, 240, 3), 50, np.uint8) if kind == "flat" else (rng.random((200, 240, 3)) * 255).astype(np.uint8)
    assert load_image(png_bytes(raw), name=f"{kind}.png").warnings == [f"{kind}.png: {NO_SIGNAL}"]
