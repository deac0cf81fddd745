"""Junction and nuclear channels: by name, by content, and warnings for wrong picks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from bbbcore.channels import (
    JUNCTION_NAMES,
    NUCLEAR_NAMES,
    ChannelPick,
    check_pick,
    content_scores,
    name_match,
    pick_channels,
    role_by_name,
)
from tests.synthetic import voronoi_monolayer

RGB = ["red", "green", "blue"]


@pytest.fixture(scope="module")
def mono() -> dict:
    return voronoi_monolayer(shape=(384, 512), n_cells=40, seed=0)


def as_dtype(plane: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """A [0, 1] plane with camera noise, as 12-bit or 16-bit uint16, or float32 in arbitrary units."""
    noisy = plane + rng.normal(0, 0.02, plane.shape)
    if kind == "u12":
        return np.clip(noisy * 4095, 0, 4095).astype(np.uint16)
    if kind == "u16":
        return np.clip(noisy * 65535, 0, 65535).astype(np.uint16)
    return (noisy * 730.0 + 95.0).astype(np.float32)


def stack(mono: dict, order: str, kind: str = "float", seed: int = 1) -> np.ndarray:
    """Channels in ``order``: j = junction, n = nuclei, e = empty (noise only)."""
    rng = np.random.default_rng(seed)
    empty = np.full(mono["junction"].shape, 0.05, np.float32)
    planes = {"j": mono["junction"], "n": mono["nuclei"], "e": empty}
    return np.dstack([as_dtype(planes[c], kind, rng) for c in order])


def real_rgb(shared_data) -> list[tuple[str, np.ndarray]]:
    paths = sorted((shared_data / "bbb" / "unlabelled").glob("bbb_rgb_0*.jpg"))
    assert len(paths) >= 4
    images = [(p.name, np.asarray(Image.open(p))) for p in paths]
    return [(name, a) for name, a in images if a.ndim == 3]


def real_gray(shared_data) -> list[tuple[str, np.ndarray]]:
    paths = sorted((shared_data / "bbb" / "train").glob("bbb_0?.png"))
    paths += sorted((shared_data / "bbb" / "unlabelled").glob("bbb_rgb_0*.jpg"))
    images = [(p.name, np.asarray(Image.open(p))) for p in paths]
    gray = [(name, a) for name, a in images if a.ndim == 2]
    assert len(gray) >= 3  # bbb_01.png, bbb_02.png and the gray bbb_rgb_04.jpg
    return gray


# --- names ---------------------------------------------------------------------------


@pytest.mark.parametrize("name, role", [
    ("ZO-1", "junction"), ("zo_1", "junction"), ("ZO1 AF568", "junction"), ("anti-TJP1", "junction"),
    ("VE-cadherin", "junction"), ("VE_Cad", "junction"), ("CLDN5", "junction"), ("Claudin-5", "junction"),
    ("Occludin", "junction"), ("CD31/PECAM", "junction"), ("AF488", "junction"), ("Alexa 488", "junction"),
    ("Alexa_488", "junction"), ("FITC", "junction"), ("EGFP", "junction"),
    ("DAPI", "nuclear"), ("Hoechst 33342", "nuclear"), ("H33342", "nuclear"), ("DRAQ5", "nuclear"),
    ("SYTOX Green", "nuclear"), ("Nuclei", "nuclear"),
    ("Ch1", None), ("C=0", None), ("channel 0", None), ("red", None), ("green", None), ("blue", None),
    ("", None), (None, None), ("Phalloidin 647", None),
])
def test_role_by_name(name, role):
    assert role_by_name(name) == role


def test_stain_names_are_stronger_than_fluorophores():
    assert name_match("ZO-1") == ("junction", 2)
    assert name_match("GFP") == ("junction", 1)
    assert name_match("DAPI") == ("nuclear", 2)
    assert name_match("DAPI (AF488 filter)") == ("nuclear", 2)  # the stain outranks the fluorophore
    assert name_match("Ch2") == (None, 0)
    assert all(word == word.lower() for word in JUNCTION_NAMES + NUCLEAR_NAMES)


@pytest.mark.parametrize("names, junction, nuclear", [
    (["ZO-1", "DAPI"], 0, 1),
    (["DAPI", "AF488"], 1, 0),
    (["GFP", "ZO-1 (AF568)", "DAPI"], 1, 2),
    (["Hoechst 33342", "VE-cadherin", "GFP"], 1, 0),
    (["CLDN5", "Ch2", "H33342"], 0, 2),
])
def test_pick_by_name(mono, names, junction, nuclear):
    planes = np.dstack([mono["junction"]] * len(names))  # content says nothing: all channels alike
    pick = pick_channels(planes, names)
    assert (pick.junction, pick.nuclear, pick.how) == (junction, nuclear, "name")
    assert f"'{names[junction]}'" in pick.reason and f"'{names[nuclear]}'" in pick.reason and "by name" in pick.reason


# --- content -------------------------------------------------------------------------


def test_content_scores_synthetic(mono):
    junction, nuclei = content_scores(mono["junction"]), content_scores(mono["nuclei"])
    assert junction.network > 0.8 and junction.blobs < 0.1 and not junction.empty
    assert nuclei.blobs > 0.8 and nuclei.network < 0.1 and not nuclei.empty
    with pytest.raises(dataclasses.FrozenInstanceError):
        junction.network = 0.0


@pytest.mark.parametrize("plane", [
    np.zeros((300, 400), np.uint8),
    np.full((300, 400), 7.5, np.float32),
    np.random.default_rng(0).normal(100, 10, (300, 400)).astype(np.float32),
    np.random.default_rng(1).poisson(40, (1024, 1344)).astype(np.uint16),
], ids=["zeros", "constant", "gauss-noise", "poisson-noise"])
def test_flat_and_noise_planes_are_empty(plane):
    scores = content_scores(plane)
    assert scores.empty and scores.network == 0 and scores.blobs == 0


def test_content_scores_needs_one_plane(mono):
    with pytest.raises(ValueError, match="2-D"):
        content_scores(np.dstack([mono["junction"]] * 2))


@pytest.mark.parametrize("kind", ["u12", "u16", "float"])
@pytest.mark.parametrize("order, junction, nuclear", [
    ("jn", 0, 1), ("nj", 1, 0), ("jne", 0, 1), ("enj", 2, 1), ("nej", 2, 0), ("je", 0, None), ("ej", 1, None),
])
@pytest.mark.parametrize("names", ["none", "generic"])
def test_pick_synthetic_by_content(mono, kind, order, junction, nuclear, names):
    planes = stack(mono, order, kind)
    given = None if names == "none" else [f"C={i}" for i in range(len(order))]
    pick = pick_channels(planes, given)
    assert (pick.junction, pick.nuclear, pick.how) == (junction, nuclear, "content")
    assert pick.reason.startswith("by content") and "network of borders" in pick.reason
    assert check_pick(planes, junction, nuclear, given) == []


def test_one_role_by_name_the_other_by_content(mono):
    planes = stack(mono, "jen")
    pick = pick_channels(planes, ["ZO-1", "Ch2", "Ch3"])  # nuclear: no name, found by content
    assert (pick.junction, pick.nuclear, pick.how) == (0, 2, "name")
    assert "'ZO-1' (0) by name" in pick.reason and "holds blobs" in pick.reason
    pick = pick_channels(stack(mono, "ejn"), ["Ch1", "Ch2", "DAPI"])  # junction: by content
    assert (pick.junction, pick.nuclear, pick.how) == (1, 2, "content")
    pick = pick_channels(stack(mono, "nj"), ["GFP", "Ch2"])  # a fluorophore's name is still a name
    assert (pick.junction, pick.nuclear) == (0, None)  # channel 0 is taken: no other channel for nuclei


def test_names_win_over_content_and_check_pick_warns(mono):
    planes = stack(mono, "nje")  # the names are wrong: channel 0 holds nuclei
    names = ["ZO-1", "DAPI", "Ch3"]
    pick = pick_channels(planes, names)
    assert (pick.junction, pick.nuclear, pick.how) == (0, 1, "name")
    lines = check_pick(planes, 0, 1, names)
    assert len(lines) == 1 and "'ZO-1' (0)" in lines[0] and "'DAPI' (1)" in lines[0] and "swap" in lines[0]


def test_gray_stored_as_rgb_has_no_nuclear_channel(mono):
    planes = np.dstack([as_dtype(mono["junction"], "u12", np.random.default_rng(0))] * 3)
    pick = pick_channels(planes, RGB)
    assert (pick.junction, pick.nuclear) == (1, None)
    assert check_pick(planes, 1, None, RGB) == []


# --- warnings ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["u12", "u16", "float"])
def test_check_pick_nuclei_as_junction(mono, kind):
    planes = stack(mono, "nj", kind)
    names = ["DAPI", "ZO-1"]
    lines = check_pick(planes, 0, None, names)
    assert len(lines) == 1
    assert "junction channel 'DAPI' (0) looks like nuclei" in lines[0] and "'ZO-1' (1)" in lines[0]
    assert check_pick(planes, 1, 0, names) == [] and check_pick(planes, 1, None, names) == []


def test_check_pick_empty_channels(mono):
    planes = stack(mono, "ejn")
    lines = check_pick(planes, 0, 2)
    assert len(lines) == 1 and "junction channel 0 is empty" in lines[0] and "channel 1 looks like the junction" in lines[0]
    lines = check_pick(planes, 1, 0)
    assert len(lines) == 1 and "nuclear channel 0 is empty" in lines[0]


def test_check_pick_borders_as_nuclear(mono):
    planes = stack(mono, "jjn")  # two junction-like channels, nuclei in the third
    lines = check_pick(planes, 0, 1)
    assert len(lines) == 1 and "nuclear channel 1 looks like borders" in lines[0] and "channel 2" in lines[0]


def test_check_pick_rejects_missing_channels(mono):
    with pytest.raises(ValueError, match=r"channels 2 and None: the image has 2 channel\(s\)"):
        check_pick(stack(mono, "jn"), 2, None)


def test_pick_is_frozen(mono):
    pick = pick_channels(stack(mono, "jn"))
    assert isinstance(pick, ChannelPick)
    with pytest.raises(dataclasses.FrozenInstanceError):
        pick.junction = 1


# --- real images ---------------------------------------------------------------------


@pytest.mark.shared
def test_real_rgb_green_junction_blue_nuclei(shared_data):
    for name, image in real_rgb(shared_data):
        red, green, blue = (content_scores(image[..., c]) for c in range(3))
        assert red.empty, name  # only the overlay text and JPEG ghosts
        assert blue.blobs >= 0.5 and green.blobs < 0.5 and green.network > blue.network, name
        for names in (None, RGB):
            pick = pick_channels(image, names)
            assert (pick.junction, pick.nuclear, pick.how) == (1, 2, "content"), name
            assert check_pick(image, 1, 2, names) == [], name
        as_float = image.astype(np.float32) / 255  # no integer levels to go by: the red channel is still empty
        assert (pick_channels(as_float).junction, pick_channels(as_float).nuclear) == (1, 2), name
        swapped = image[..., [2, 1]]  # blue first, then green
        pick = pick_channels(swapped)
        assert (pick.junction, pick.nuclear) == (1, 0), name
        assert check_pick(swapped, 1, 0) == [] and check_pick(swapped, 1, None) == [], name


@pytest.mark.shared
def test_real_rgb_warnings(shared_data):
    for name, image in real_rgb(shared_data):
        lines = check_pick(image, 2, None, RGB)
        assert len(lines) == 1 and "'blue' (2) looks like nuclei" in lines[0] and "'green' (1)" in lines[0], name
        lines = check_pick(image[..., [2, 1]], 0, 1, ["DAPI", "ZO-1"])
        assert len(lines) == 1 and "swap" in lines[0], name
        lines = check_pick(image, 0, 2, RGB)
        assert len(lines) == 1 and "'red' (0) is empty" in lines[0], name


@pytest.mark.shared
def test_real_gray_zo1(shared_data):
    for name, image in real_gray(shared_data):
        scores = content_scores(image)
        assert not scores.empty and scores.blobs < 0.5 and scores.network > 0.1, name
        gray_rgb = np.dstack([image] * 3)
        pick = pick_channels(gray_rgb, RGB)
        assert (pick.junction, pick.nuclear) == (1, None), name
        assert check_pick(gray_rgb, 1, None, RGB) == [], name


@pytest.mark.shared
def test_real_zo1_with_real_dapi(shared_data):
    zo1 = np.asarray(Image.open(shared_data / "bbb" / "train" / "bbb_01.png"))
    dapi = np.asarray(Image.open(shared_data / "bbb" / "unlabelled" / "bbb_rgb_01.jpg"))[..., 2]
    planes = np.dstack([dapi, zo1]).astype(np.uint16) * 16  # as a 12-bit two-channel stack
    pick = pick_channels(planes, ["C=0", "C=1"])
    assert (pick.junction, pick.nuclear, pick.how) == (1, 0, "content")
    assert check_pick(planes, 1, 0) == []
    lines = check_pick(planes, 0, None, ["Hoechst", "ZO-1"])
    assert len(lines) == 1 and "'Hoechst' (0) looks like nuclei" in lines[0] and "'ZO-1' (1)" in lines[0]
    pick = pick_channels(planes, ["Hoechst", "ZO-1"])
    assert (pick.junction, pick.nuclear, pick.how) == (1, 0, "name")
    assert pick.reason == "junction 'ZO-1' (1) and nuclear 'Hoechst' (0) by name"
