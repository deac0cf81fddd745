"""bbbcore.formats: the microscope's own files (CZI, OME-TIFF, OME-Zarr; ND2 and LIF by dispatch), written for real."""

from __future__ import annotations

import shutil
import sys
import zipfile

import numpy as np
import pytest

from bbbcore import formats
from bbbcore.errors import ImageReadError
from bbbcore.io import file_bytes, image_names, load_image, read_image_data
from bbbcore.metadata import output_stem, sample_of, sample_sheet_for
from tests.conftest import ROOT
from tests.microscope_files import write_czi, write_ome_tiff, write_ome_zarr
from tests.synthetic import voronoi_monolayer


def _stack(seed: int = 0, *, bits: int = 12, nuclei_first: bool = False) -> np.ndarray:
    """(2, Y, X) uint16: junctions and nuclei of a generated monolayer, ``bits``-bit values in 16 bits."""
    field = voronoi_monolayer(shape=(192, 256), n_cells=16, seed=seed)
    top = 2**bits - 1
    planes = [np.round(field["junction"] * top), np.round(field["nuclei"] * top)]
    return np.stack(planes[::-1] if nuclei_first else planes).astype(np.uint16)


@pytest.mark.parametrize("writer", [write_czi, write_ome_tiff, write_ome_zarr])
def test_pixel_size_and_channel_names_come_from_the_file(writer, tmp_path):
    stack = _stack(nuclei_first=True)  # DAPI saved first: the names, not the order, decide
    path = writer(tmp_path / f"dapi_first.{writer.__name__[6:]}", stack, pixel_size_um=0.1028,
                  channel_names=["DAPI", "ZO-1"])
    image = load_image(path)
    assert image.pixel_size_um == pytest.approx(0.1028)
    assert image.channel_names == ["DAPI", "ZO-1"]
    assert (image.junction_channel, image.nuclear_channel) == (1, 0)
    np.testing.assert_array_equal(image.junction_raw, stack[1])
    assert image.nuclei is not None and image_names(path) == [path.name]


@pytest.mark.parametrize("writer", [write_czi, write_ome_tiff, write_ome_zarr])
def test_each_scene_is_an_image_of_its_own(writer, tmp_path):
    scenes = [_stack(seed) for seed in (1, 2, 3)]
    path = writer(tmp_path / f"plate.{writer.__name__[6:]}", scenes, pixel_size_um=0.3, channel_names=["ZO-1", "DAPI"])
    names = image_names(path)
    assert names == [f"{path.name}#{i}" for i in range(3)]
    images = [load_image(path, name=name) for name in names]
    for stack, image in zip(scenes, images, strict=True):
        np.testing.assert_array_equal(image.raw, np.moveaxis(stack, 0, -1))
        assert image.pixel_size_um == pytest.approx(0.3)
    assert len({image.image_id for image in images}) == 3  # the scene is part of the identity
    assert load_image(path, scene=2).image_id == images[2].image_id
    with pytest.raises(ImageReadError, match=r"^plate\..*#7: has 3 scene\(s\); scene 7 does not exist$"):
        load_image(path, name=f"{path.name}#7")
    assert output_stem(names[1]) == "plate_scene1"


def test_an_ome_zarr_folder_a_zipped_one_and_ngff_05_read_alike(tmp_path):
    stack = _stack(4)
    v04 = write_ome_zarr(tmp_path / "a.ome.zarr", stack, pixel_size_um=0.25, channel_names=["VE-cadherin", "Hoechst"])
    v05 = write_ome_zarr(tmp_path / "b.ome.zarr", stack, pixel_size_um=0.25, channel_names=["VE-cadherin", "Hoechst"],
                         version="0.5")
    zipped = tmp_path / "a.zip"
    shutil.make_archive(str(tmp_path / "a"), "zip", root_dir=tmp_path, base_dir="a.ome.zarr")  # the folder inside
    for source in (v04, v05, zipped):
        image = load_image(source)
        np.testing.assert_array_equal(image.raw, np.moveaxis(stack, 0, -1))
        assert (image.pixel_size_um, image.junction_channel, image.nuclear_channel) == (0.25, 0, 1)
    assert file_bytes(v04) == file_bytes(v04)  # a folder gives the same bytes, so the same image id, each time
    assert load_image(v04).image_id == load_image(v04).image_id


def test_12_bit_in_16_bit_and_float_data_normalise_the_same(tmp_path):
    stack = _stack(5, bits=12)
    as_float = write_ome_tiff(tmp_path / "float.ome.tif", stack.astype(np.float32) / 4095.0, pixel_size_um=0.5)
    as_czi = write_czi(tmp_path / "twelve_bit.czi", stack, pixel_size_um=0.5)
    full = write_ome_tiff(tmp_path / "sixteen.ome.tif", (stack.astype(np.uint32) * 16).astype(np.uint16),
                          pixel_size_um=0.5)
    junctions = [load_image(p, channel=0).junction for p in (as_float, as_czi, full)]
    for other in junctions[1:]:
        np.testing.assert_allclose(other, junctions[0], atol=1e-5)


def test_a_z_stack_needs_a_projection_and_a_time_series_is_refused(tmp_path):
    from pylibCZIrw import czi

    planes = _stack(6)
    path = tmp_path / "stack.czi"
    with czi.create_czi(str(path), exist_ok=True) as writer:
        for z in range(3):
            for c in range(2):
                writer.write(planes[c] // (3 - z), plane={"C": c, "Z": z})
    with pytest.raises(ImageReadError, match=r"^stack\.czi: is a stack of 3 planes .*maximum projection"):
        load_image(path)
    projected = load_image(path, max_projection=True, channel=0)
    np.testing.assert_array_equal(projected.raw[..., 0], planes[0])  # the brightest plane is the undivided one
    series = tmp_path / "series.czi"
    with czi.create_czi(str(series), exist_ok=True) as writer:
        for t in range(4):
            writer.write(planes[0], plane={"T": t})
    with pytest.raises(ImageReadError, match=r"^series\.czi: is a time series of 4 time points"):
        load_image(series, max_projection=True)


@pytest.mark.parametrize(("magic", "fmt"), [(b"\xda\xce\xbe\x0a", "ND2"), (b"\x70\x00\x00\x00\x10\x00\x00\x00\x2a", "LIF"),
                                            (b"ZISRAWFILE", "CZI")])
def test_broken_vendor_files_give_one_line(magic, fmt, tmp_path):
    # No ND2 or LIF sample file exists here and no package writes them: their readers are reached by
    # dispatch (the content's first bytes), and a broken file gives one line naming it.
    path = tmp_path / f"broken.{fmt.lower()}"
    path.write_bytes(magic + bytes(200))
    assert formats.sniff(path.read_bytes()) == fmt
    with pytest.raises(ImageReadError) as caught:
        load_image(path)
    message = str(caught.value)
    assert message.startswith(f"broken.{fmt.lower()}: {fmt} file could not be read (") and "\n" not in message
    assert message.endswith("copy it again, or open it in Fiji (Bio-Formats) and save it as OME-TIFF")  # what to do


@pytest.mark.parametrize("fmt", ["ND2", "LIF"])
def test_nd2_and_lif_go_to_their_reader(fmt, monkeypatch, tmp_path):
    seen = {}

    def fake_reader(path, label, scene, limits):
        seen.update(suffix=path.suffix, scene=scene, label=label)
        return formats.SceneData(np.moveaxis(_stack(7), 0, 0), "CYX", 0.2, ["GFP", "DAPI"], n_scenes=2)

    monkeypatch.setattr(formats, f"_read_{fmt.lower()}", fake_reader)
    magic = b"\xda\xce\xbe\x0a" if fmt == "ND2" else b"\x70\x00\x00\x00\x10\x00\x00\x00\x2a"
    path = tmp_path / f"plate.{fmt.lower()}"
    path.write_bytes(magic + bytes(64))
    image = load_image(path, name=f"{path.name}#1")
    assert seen == {"suffix": f".{fmt.lower()}", "scene": 1, "label": f"{path.name}#1"}
    assert (image.pixel_size_um, image.channel_names, image.junction_channel, image.nuclear_channel) == \
        (0.2, ["GFP", "DAPI"], 0, 1)


def test_a_zarr_without_image_metadata_and_a_plate_are_named(tmp_path):
    import zarr

    bare = tmp_path / "bare.zarr"
    zarr.open_group(str(bare), mode="w", zarr_format=2).create_array("0", data=np.zeros((4, 4), np.uint8))
    with pytest.raises(ImageReadError, match=r"^bare\.zarr: is a zarr without OME-Zarr image metadata"):
        load_image(bare)
    plate = tmp_path / "plate.zarr"
    zarr.open_group(str(plate), mode="w", zarr_format=2).attrs["plate"] = {"wells": []}
    with pytest.raises(ImageReadError, match=r"^plate\.zarr: is an OME-Zarr plate"):
        load_image(plate)
    not_zarr = tmp_path / "notes.zip"
    with zipfile.ZipFile(not_zarr, "w") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(ImageReadError, match=r"^notes\.zip: not a readable image"):
        read_image_data(not_zarr)


def test_a_sample_sheet_row_for_the_file_holds_for_each_scene(tmp_path):
    import pandas as pd

    sheet = pd.DataFrame({"file": ["plate.czi", "plate.czi#1"], "condition": ["control", "tat"]})
    samples = sample_sheet_for(["plate.czi#0", "plate.czi#1", "plate.czi#2"], sheet=sheet)
    assert [sample_of(samples, f"plate.czi#{i}")["condition"] for i in range(3)] == ["control", "tat", "control"]


def test_the_cli_segments_each_scene(tmp_path):
    from bbbcore.cli import main

    scenes = [_stack(seed) for seed in (8, 9)]
    path = write_czi(tmp_path / "plate.czi", scenes, pixel_size_um=0.5, channel_names=["ZO-1", "DAPI"])
    out = tmp_path / "out"
    assert main(["segment", str(path), "--out", str(out), "--model", str(ROOT / "models" / "bbb_unet.keras"),
                 "--diameter", "60"]) == 0
    import pandas as pd

    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["image"]) == ["plate.czi#0", "plate.czi#1"]
    assert (summary["pixel_size_um"] == 0.5).all() and (summary["n_cells"] > 0).all()
    assert (out / "plate_scene0.labels.tif").is_file() and (out / "plate_scene1.rois.zip").is_file()


def test_the_session_adds_one_image_per_scene(tmp_path):
    from bbbcore.session import AnalysisSession

    path = write_czi(tmp_path / "plate.czi", [_stack(1), _stack(2)], pixel_size_um=0.5, channel_names=["ZO-1", "DAPI"])
    session = AnalysisSession(None)
    assert session.add_file(path.name, path.read_bytes())
    assert list(session.files) == ["plate.czi#0", "plate.czi#1"] and not session.unreadable()
    assert not session.add_file(path.name, path.read_bytes())  # the same upload again: nothing new


@pytest.mark.model
def test_a_63x_czi_is_segmented_with_its_own_pixel_size_and_channel_names(shipped_model, shared_data, tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from zoom import make_63x, matched_share

    from bbbcore.pipeline import segment_image
    from bbbcore.resize import resize_labels

    path, truth = make_63x(shipped_model, tmp_path, fmt="czi")
    image = load_image(path)
    assert (image.channel_names, image.junction_channel, image.nuclear_channel) == (["DAPI", "ZO-1"], 1, 0)
    assert image.pixel_size_um == pytest.approx(0.1028)
    result = segment_image(image, shipped_model)
    share, pairs = matched_share(truth, resize_labels(result.labels, truth.shape))
    assert pairs and share >= 0.9, share
    cells = result.cells.set_index("cell_id")
    for _, cell in pairs:
        assert cells.loc[cell, "area_um2"] == pytest.approx(cells.loc[cell, "area"] * 0.1028**2, rel=1e-3)


@pytest.mark.model
@pytest.mark.parametrize("dapi_first", [False, True])
def test_an_unnamed_two_channel_tiff_finds_its_nuclei_in_either_order(dapi_first, shipped_model, tmp_path):
    import tifffile
    from PIL import Image

    from bbbcore.pipeline import segment_image

    rgb = np.asarray(Image.open(ROOT / "sample_data" / "bbb_rgb_03.jpg"))
    planes = [rgb[..., 1], rgb[..., 2]]  # ZO-1, DAPI
    stack = np.stack(planes[::-1] if dapi_first else planes).astype(np.uint16) * 16  # 12-bit values, no names
    path = tmp_path / "two_channels.tif"
    tifffile.imwrite(path, stack, photometric="minisblack")  # pages, no axis named: read as channels
    image = load_image(path)
    assert (image.junction_channel, image.nuclear_channel) == ((1, 0) if dapi_first else (0, 1))
    assert image.channels_how.startswith("by content") and not image.warnings
    plain = segment_image(image, shipped_model, diameter_px=155)
    inner = plain.cells[~plain.cells["touches_edge"]]
    assert plain.cells["nuclei_count"].notna().all() and (inner["nuclei_count"] >= 1).mean() > 0.8
    if dapi_first:
        seeded = segment_image(image, shipped_model, diameter_px=155, use_nuclei=True)
        assert not np.array_equal(plain.labels, seeded.labels)  # the nuclei seed the watershed


@pytest.mark.model
def test_a_changed_nuclear_channel_is_analysed_again_and_reloaded(shipped_model, tmp_path):
    from bbbcore.session import AnalysisSession
    from bbbcore.store import Store

    path = write_czi(tmp_path / "one.czi", _stack(3), pixel_size_um=0.5)  # unnamed: ZO-1, DAPI by content
    session = AnalysisSession(Store(tmp_path / "data"))
    session.add_file(path.name, path.read_bytes())
    session.set_sample_fields(path.name, diameter_px=60.0)
    list(session.analyse(shipped_model))
    assert session.results.results[path.name].cells["nuclei_count"].notna().all()
    session.set_sample_fields(path.name, nuclear_channel="none")
    assert session.pending() == [path.name]  # nuclei_count would be stale otherwise
    list(session.analyse(shipped_model))
    assert "nuclei_count" not in session.results.results[path.name].cells or \
        session.results.results[path.name].cells["nuclei_count"].isna().all()
    reopened = AnalysisSession(session.store)
    reopened.open(session.experiment_id)
    assert reopened.nuclear_channel_for(path.name) == "none" and reopened.pending() == []
