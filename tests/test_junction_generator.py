"""The synthetic ZO-1 generator: exact labels, requested cell sizes, textures that look as described."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage import filters, measure, segmentation

from bbbcore.junction_generator import (
    TEXTURES,
    GeneratedImage,
    border_detectability,
    generate,
    random_generated,
    visible_cells,
)

# No noise, no gaps, no JPEG: what is left is the drawing itself.
CLEAN = {"gap_share": 0.0, "photons": 1e4, "read_noise": 0.0, "jpeg_quality": None}


def inner_labels(cells: np.ndarray) -> np.ndarray:
    """Labels of the cells not touching the image edge."""
    edge = np.unique(np.concatenate([cells[0], cells[-1], cells[:, 0], cells[:, -1]]))
    return np.setdiff1d(np.unique(cells), edge)


def median_inner_diameter(cells: np.ndarray) -> tuple[float, int]:
    labels = inner_labels(cells)
    area = np.bincount(cells.ravel())[labels]
    return float(np.median(np.sqrt(4 * area / np.pi))), len(labels)


def median_inner_aspect(cells: np.ndarray) -> float:
    inner = set(inner_labels(cells).tolist())
    ratios = [p.axis_major_length / p.axis_minor_length for p in measure.regionprops(cells) if p.label in inner]
    return float(np.median(ratios))


def distance_to_border(image: GeneratedImage) -> np.ndarray:
    return ndi.distance_transform_edt(~image.border)


@pytest.mark.parametrize("texture", TEXTURES)
def test_same_seed_same_image_other_seed_other_image(texture):
    first = generate((96, 128), diameter_px=30, texture=texture, seed=7)
    again = generate((96, 128), diameter_px=30, texture=texture, seed=7)
    other = generate((96, 128), diameter_px=30, texture=texture, seed=8)
    for name in ("junction", "nuclei", "cells", "border"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert first.params == again.params
    assert not np.array_equal(first.junction, other.junction)
    assert not np.array_equal(first.cells, other.cells)


def test_a_generator_as_seed_is_reproducible_and_advances():
    first = generate((64, 64), diameter_px=20, seed=np.random.default_rng(3))
    again = generate((64, 64), diameter_px=20, seed=np.random.default_rng(3))
    np.testing.assert_array_equal(first.junction, again.junction)
    rng = np.random.default_rng(3)
    generate((64, 64), diameter_px=20, seed=rng)
    assert not np.array_equal(generate((64, 64), diameter_px=20, seed=rng).junction, first.junction)


@pytest.mark.parametrize("texture", TEXTURES)
def test_arrays_have_the_promised_types_ranges_and_labels(texture):
    image = generate((120, 150), diameter_px=25, texture=texture, seed=1)
    for name in ("junction", "nuclei"):
        plane = getattr(image, name)
        assert plane.shape == (120, 150) and plane.dtype == np.float32
        assert plane.min() >= 0 and plane.max() <= 1 and plane.max() > 0
    assert image.cells.shape == (120, 150) and image.cells.dtype == np.int32
    labels = np.unique(image.cells)
    np.testing.assert_array_equal(labels, np.arange(1, len(labels) + 1))  # no 0: every pixel in a cell
    assert image.params["n_cells"] == len(labels)
    assert image.border.dtype == bool
    np.testing.assert_array_equal(image.border, segmentation.find_boundaries(image.cells, mode="inner"))
    assert json.loads(json.dumps(image.params)) == image.params
    assert image.params["texture"] == texture and image.params["diameter_px"] == 25


def test_cells_are_connected():
    for texture in TEXTURES:  # frayed warps the coordinates hardest: folds are merged away
        cells = generate((160, 160), diameter_px=20, texture=texture, seed=2).cells
        assert measure.label(cells, connectivity=1).max() == cells.max()


@pytest.mark.parametrize("diameter", [20, 60, 150])
@pytest.mark.parametrize("texture", TEXTURES)
def test_median_inner_cell_diameter_is_the_requested_one(diameter, texture):
    size = max(256, 6 * diameter)
    image = generate((size, size), diameter_px=diameter, texture=texture, seed=diameter, jpeg_quality=None)
    median, count = median_inner_diameter(image.cells)
    assert count >= 10
    assert 0.85 * diameter <= median <= 1.15 * diameter


@pytest.mark.parametrize("texture", ["continuous", "frayed"])
def test_the_signal_is_on_the_labelled_borders(texture):
    # For frayed the borders are wavy: the labels must follow the drawn line, not the straight Voronoi edges.
    for seed in range(3):
        image = generate((256, 256), diameter_px=60, texture=texture, seed=seed, **CLEAN)
        inside = distance_to_border(image) > image.params["border_width_px"] + 4
        assert image.junction[image.border].mean() >= 2 * image.junction[inside].mean()


def test_punctate_varies_more_along_the_border_than_continuous():
    for seed in range(3):
        spread = {}
        for texture in ("continuous", "punctate"):
            image = generate((256, 256), diameter_px=60, texture=texture, seed=seed, **CLEAN)
            values = image.junction[image.border]
            spread[texture] = values.std() / values.mean()
        assert spread["punctate"] > spread["continuous"] + 0.1


def test_spikes_reach_past_the_line():
    for seed in range(3):
        bright = {}
        for texture, extra in (("continuous", {}), ("spiked", {"spike_length_px": 12.0})):  # long enough to reach
            image = generate((256, 256), diameter_px=60, texture=texture, seed=seed, border_width_px=2.0,
                             **CLEAN, **extra)
            distance = distance_to_border(image)
            ring = (distance >= 3) & (distance <= 6)
            bright[texture] = int((image.junction[ring] > 0.5).sum())
        assert bright["spiked"] > bright["continuous"] + 50


def test_gaps_dim_a_share_of_the_border():
    dim = {}
    for share in (0.0, 0.3):
        image = generate((256, 256), diameter_px=60, seed=4, **{**CLEAN, "gap_share": share, "gap_residual": 0.0})
        values = image.junction[image.border]
        dim[share] = float(np.mean(values < 0.3 * np.median(values)))
    assert dim[0.0] < 0.02
    assert 0.05 < dim[0.3] < 0.4  # faded to under 30 %: most of the gaps, not their soft ends


@pytest.mark.parametrize("texture", ["continuous", "frayed"])
def test_elongation_stretches_the_cells(texture):
    stretched = generate((320, 320), diameter_px=40, texture=texture, seed=5, elongation=3.0)
    round_ = generate((320, 320), diameter_px=40, texture=texture, seed=5, elongation=1.0)
    assert median_inner_aspect(stretched.cells) >= 1.8
    assert median_inner_aspect(round_.cells) <= 1.5


def test_jpeg_on_and_off():
    off = generate((128, 128), diameter_px=30, seed=6, jpeg_quality=None)
    on = generate((128, 128), diameter_px=30, seed=6, jpeg_quality=40)
    assert off.params["jpeg_quality"] is None and on.params["jpeg_quality"] == 40
    assert on.junction.dtype == np.float32 and 0 <= on.junction.min() and on.junction.max() <= 1
    assert not np.array_equal(on.junction, off.junction)
    np.testing.assert_array_equal(on.cells, off.cells)


def test_an_override_changes_that_parameter_only():
    plain = generate((128, 128), diameter_px=30, texture="spiked", seed=9)
    wide = generate((128, 128), diameter_px=30, texture="spiked", seed=9, border_width_px=4.0, spike_line_level=0.1)
    changed = {name for name in plain.params if plain.params[name] != wide.params[name]}
    assert changed == {"border_width_px", "spike_line_level"}
    np.testing.assert_array_equal(plain.cells, wide.cells)


def test_textures_share_the_tessellation():
    cells = [generate((128, 128), diameter_px=30, texture=texture, seed=3).cells for texture in TEXTURES]
    for texture, other in zip(TEXTURES, cells):
        if texture != "frayed":  # frayed adds its zig-zag to the same seeds
            np.testing.assert_array_equal(other, cells[0])


def test_nuclei_follow_the_missing_share():
    quiet = {"nuclei_photons": 1e4, "read_noise": 0.0, "jpeg_quality": None}
    every = generate((128, 128), diameter_px=30, seed=2, missing_nucleus_share=0.0, **quiet)
    none = generate((128, 128), diameter_px=30, seed=2, missing_nucleus_share=1.0, **quiet)
    assert every.params["cells_without_nucleus"] == []
    assert none.params["cells_without_nucleus"] == list(range(1, none.params["n_cells"] + 1))
    nuclei = every.nuclei > filters.threshold_otsu(every.nuclei)
    assert every.nuclei[nuclei].mean() > 5 * every.nuclei[~nuclei].mean()
    assert none.nuclei[nuclei].mean() < 2 * none.nuclei[~nuclei].mean()  # only the cytoplasm's faint glow


def test_bad_overrides_and_arguments_raise():
    with pytest.raises(TypeError, match="no_such_parameter"):
        generate((64, 64), diameter_px=20, no_such_parameter=1)
    with pytest.raises(TypeError, match="spike_length_px"):  # a spiked parameter on a continuous image
        generate((64, 64), diameter_px=20, texture="continuous", spike_length_px=5)
    with pytest.raises(ValueError, match="gap_share"):
        generate((64, 64), diameter_px=20, gap_share=2.0)
    with pytest.raises(ValueError, match="border_width_px"):
        generate((64, 64), diameter_px=20, border_width_px="wide")
    with pytest.raises(ValueError, match="texture"):
        generate((64, 64), diameter_px=20, texture="smooth")
    with pytest.raises(ValueError, match="diameter_px"):
        generate((64, 64), diameter_px=0)


@pytest.mark.parametrize("diameter", [4, 300, 1000])
def test_extreme_diameters_still_give_a_monolayer(diameter):
    image = generate((256, 256), diameter_px=diameter, seed=1)
    assert image.cells.min() == 1
    assert np.isfinite(image.junction).all() and np.isfinite(image.nuclei).all()


def test_random_generated_respects_its_ranges():
    rng = np.random.default_rng(0)
    choice = {"diameter_range": (20, 40), "textures": ("punctate", "spiked")}
    drawn = [random_generated(rng, (96, 96), **choice) for _ in range(20)]
    assert all(20 <= image.params["diameter_px"] <= 40 for image in drawn)
    assert {image.params["texture"] for image in drawn} == {"punctate", "spiked"}
    assert all(image.junction.shape == (96, 96) for image in drawn)
    again = random_generated(np.random.default_rng(0), (96, 96), **choice)
    np.testing.assert_array_equal(again.junction, drawn[0].junction)
    with pytest.raises(ValueError, match="textures must be a non-empty selection of .*'smooth'"):
        random_generated(rng, (96, 96), textures=("smooth",))


def test_importing_the_generator_pulls_in_no_tensorflow_or_streamlit():
    code = ("import sys, bbbcore.junction_generator; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'streamlit', 'keras')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_detectability_needs_the_kept_signal_and_leaves_the_image_unchanged():
    plain = generate((96, 96), diameter_px=25, seed=4)
    assert plain.border_signal is None and plain.junction_expected is None
    with pytest.raises(ValueError, match="keep_signal"):
        border_detectability(plain)
    kept = generate((96, 96), diameter_px=25, seed=4, keep_signal=True)
    np.testing.assert_array_equal(kept.junction, plain.junction)  # the same draws, only more returned
    np.testing.assert_array_equal(kept.cells, plain.cells)


def test_every_touching_pair_is_scored_and_more_light_makes_borders_surer():
    dim = generate((160, 160), diameter_px=30, seed=5, keep_signal=True, photons=8.0, read_noise=0.0)
    bright = generate((160, 160), diameter_px=30, seed=5, keep_signal=True, photons=500.0, read_noise=0.0)
    scored = border_detectability(dim)
    pairs = set()
    for a, b in ((dim.cells[:, :-1], dim.cells[:, 1:]), (dim.cells[:-1], dim.cells[1:])):
        differs = a != b
        pairs |= set(zip(np.minimum(a, b)[differs].tolist(), np.maximum(a, b)[differs].tolist()))
    assert set(zip(scored["cell_a"].tolist(), scored["cell_b"].tolist())) == pairs
    assert (scored["length_px"] >= 1).all()
    brighter = border_detectability(bright)
    np.testing.assert_array_equal(brighter["cell_a"], scored["cell_a"])
    # Photon noise only: 500 / 8 photons gives sqrt(62.5) ~ 7.9x the SNR where the clutter is small.
    assert np.all(brighter["snr"] > scored["snr"])
    assert np.median(brighter["snr"] / scored["snr"]) > 3


def test_visible_cells_join_only_across_hidden_borders():
    clear = generate((192, 192), diameter_px=30, seed=6, keep_signal=True, **CLEAN)
    assert border_detectability(clear)["snr"].min() > 5
    np.testing.assert_array_equal(visible_cells(clear), clear.cells)  # nothing hidden: the truth itself

    # Faint punctate junctions in the dark under haze: many borders cannot be seen.
    murky = generate((192, 192), diameter_px=30, texture="punctate", seed=6, keep_signal=True, photons=8.0,
                     haze=0.4, gap_share=0.3, gap_residual=0.0, punctate_line_level=0.0)
    visible = visible_cells(murky, min_snr=5)
    assert 1 <= visible.max() < 0.8 * murky.cells.max()
    # A visible cell is a union of whole true cells: no true cell is cut.
    for label in np.unique(murky.cells):
        assert len(np.unique(visible[murky.cells == label])) == 1
    # Every pair under the threshold (and touching along more than a point) ends up in one visible cell.
    scored = border_detectability(murky)
    for a, b, snr, length in zip(scored["cell_a"], scored["cell_b"], scored["snr"], scored["length_px"]):
        if snr < 5 and length >= 0.1 * 30:
            assert visible[murky.cells == a][0] == visible[murky.cells == b][0]
    assert visible_cells(murky, min_snr=0).max() == murky.cells.max()
