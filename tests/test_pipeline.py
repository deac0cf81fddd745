"""bbbcore.pipeline: the named stages compose into segment_image; one ImageResult type."""

from __future__ import annotations

import numpy as np
import pytest

from bbbcore.errors import ImageReadError
from bbbcore.export import labels_tiff_bytes
from bbbcore.instances import WatershedSettings, labels_from_maps
from bbbcore.io import load_image
from bbbcore.pipeline import ImageResult, measure_labels, predict, result_from_labels, segment_image
from bbbcore.session import SAMPLE_DATA_DIR


@pytest.fixture(scope="module")
def sample_image():
    return load_image(SAMPLE_DATA_DIR / "bbb_rgb_03.jpg")


@pytest.mark.model
def test_segment_image_is_the_composition_of_its_stages(shipped_model, sample_image):
    result = segment_image(sample_image, shipped_model)
    card = shipped_model.card
    maps = predict(sample_image, shipped_model)
    grid = tuple(round(n * card.input_scale) for n in sample_image.shape)
    assert maps["boundary"].shape == grid and set(maps) == set(card.outputs)
    settings = WatershedSettings.from_card(card).scaled(card.input_scale)
    labels = labels_from_maps(maps, sample_image, settings, grid_pixel_size_um=card.pixel_size_um / card.input_scale)
    assert np.array_equal(labels, result.labels)
    cells = measure_labels(labels, image=sample_image)
    assert cells["area"].tolist() == result.cells["area"].tolist()
    assert (result.model_name, result.model_version) == (card.name, card.version)
    assert result.source == f"model {card.name} {card.version}"
    assert set(result.timings) == {"scale_s", "inference_s", "postprocess_s", "measure_s"}
    # A 10x sample image: its cells have the training diameter, so it is segmented at zoom 1.
    assert result.diameter_used_px == card.diameter_px
    assert abs(result.diameter_estimated_px / card.diameter_px - 1) <= 0.15
    assert result.seconds == pytest.approx(sum(result.timings.values()), rel=0.05)
    assert result.boundary_probability.shape == sample_image.shape  # maps kept on the grid, sized on demand


@pytest.mark.model
def test_watershed_overrides_reach_the_labels_stage(shipped_model, sample_image):
    default = segment_image(sample_image, shipped_model)
    coarse = segment_image(sample_image, shipped_model, settings={"min_cell_area": 6000})
    assert coarse.labels.max() < default.labels.max()
    with pytest.raises(ValueError, match="unknown watershed setting"):
        segment_image(sample_image, shipped_model, settings={"min_area": 6000})


def test_measure_labels_checks_the_size_and_names_the_file(sample_image):
    with pytest.raises(ImageReadError, match="fixed.tif: labels are 10x10 px but bbb_rgb_03.jpg is 1344x1024 px"):
        measure_labels(np.ones((10, 10), np.int32), image=sample_image, name="fixed.tif")
    table = measure_labels(np.ones((10, 10), np.int32), name="alone.tif", pixel_size_um=0.5)
    assert table["image"].tolist() == ["alone.tif"] and table["area_um2"].tolist() == [25.0]


def test_a_labels_file_makes_the_same_result_type(sample_image):
    labels = np.zeros(sample_image.shape, np.int32)
    labels[10:110, 10:210] = 7
    result = result_from_labels(sample_image, labels_tiff_bytes(labels), "fixed.tif", pixel_size_um=0.5)
    assert isinstance(result, ImageResult) and result.model_name == "" and result.boundary_probability is None
    assert result.cells["cell_id"].tolist() == [7] and result.cells["area_um2"].tolist() == [20000 * 0.25]
    assert result.stem == "bbb_rgb_03" and result.record()["width"] == sample_image.shape[1]
    with pytest.raises(ImageReadError, match="empty.tif: the file is empty"):
        result_from_labels(sample_image, b"", "empty.tif")
    with pytest.raises(ImageReadError, match="notes.tif: not a readable labels TIFF"):
        result_from_labels(sample_image, b"plain text", "notes.tif")


@pytest.mark.model
def test_a_blank_colour_image_gets_one_line_and_a_noise_image_its_own(shipped_model):
    """A flat RGB image: its channels show nothing and it is blank, one problem said once, by the more
    specific line. A noise image is not blank: it keeps the line saying no channel holds signal."""
    from bbbcore.io import NO_SIGNAL, LoadedImage

    def rgb(name: str, raw: np.ndarray) -> LoadedImage:
        return LoadedImage(name=name, image_id=name, raw=raw, junction=raw[..., 1].astype(np.float32) / 255,
                           nuclei=None, pixel_size_um=None, channel_names=["R", "G", "B"], junction_channel=1,
                           warnings=[f"{name}: {NO_SIGNAL}"])

    flat = segment_image(rgb("flat.png", np.full((200, 240, 3), 50, np.uint8)), shipped_model)
    assert len(flat.warnings) == 1 and flat.warnings[0].startswith("flat.png: no cells: the image is blank")
    noise = (np.random.default_rng(0).random((200, 240, 3)) * 255).astype(np.uint8)
    assert f"noise.png: {NO_SIGNAL}" in segment_image(rgb("noise.png", noise), shipped_model).warnings


@pytest.mark.parametrize("size", [-1.0, 0.0, float("nan"), float("inf")])
def test_measuring_with_a_pixel_size_that_is_no_positive_number_names_the_image(size):
    labels = np.zeros((40, 40), np.int32)
    labels[5:20, 5:20] = 1
    with pytest.raises(ImageReadError, match=r"^cells\.tif: pixel size .* µm/px is not a positive number"):
        measure_labels(labels, name="cells.tif", pixel_size_um=size)
