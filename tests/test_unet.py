"""bbbcore.unet: builder, card, tiled prediction, rescaling."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage as ndi

from bbbcore.errors import ModelCardError
from bbbcore.unet import BoundaryModel, ModelCard, build_unet, predict_tiled, read_card, receptive_radius, write_card

keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def tiny_model():
    keras.utils.set_random_seed(1)
    card = ModelCard(name="tiny", version="0", depth=3, base_width=4, input_scale=1.0, pixel_size_um=0.5)
    net = build_unet(depth=3, base_width=4, n_outputs=2, name="tiny")
    return BoundaryModel(net, card)


def test_builder_shapes():
    net = build_unet(depth=2, base_width=4, n_outputs=2)
    out = net(np.zeros((1, 32, 48, 1), np.float32))
    assert tuple(out.shape) == (1, 32, 48, 2)
    assert 0.0 <= float(np.min(out)) and float(np.max(out)) <= 1.0


def test_tiled_prediction_does_not_depend_on_tile_size(tiny_model):
    rng = np.random.default_rng(0)
    image = np.clip(rng.normal(0.3, 0.2, (203, 290)), 0, 1).astype(np.float32)  # no side a multiple of 8
    whole = tiny_model.predict_tiles(image, tile=1024, context=64)
    assert whole.shape == (203, 290, 2)
    assert np.ptp(whole[..., 1]) > 0.01  # a map with structure, not a constant
    for tile in (48, 100):
        # Tiles on the single window's pooling grid that see as far as the network: the same numbers.
        np.testing.assert_allclose(tiny_model.predict_tiles(image, tile=tile, context=64), whole, atol=1e-5)


# Shapes odd, smaller and larger than the tiles; tiles and contexts not multiples of the grid.
TILE_SHAPES = [(37, 53), (203, 290), (131, 517)]
TILES = (1024, 192, 128, 48, 100)


@pytest.mark.parametrize("shape", TILE_SHAPES)
def test_tiles_put_every_pixel_back_where_it_came_from(shape):
    # No network: a tile window or core off by one pixel moves the image.
    image = np.random.default_rng(sum(shape)).random(shape).astype(np.float32)
    identity = lambda batch: batch  # noqa: E731
    box = lambda batch: ndi.uniform_filter(batch, size=(1, 5, 5, 1), mode="reflect")  # noqa: E731
    # scipy's "reflect" repeats the edge pixel, as np.pad(mode="symmetric") pads the image in predict_tiled.
    boxed = ndi.uniform_filter(image, 5, mode="reflect")
    for tile in TILES:
        for context in (8, 32, 96):
            for reach in (0, 2):  # 2: the box filter's radius, tiles without blending
                kwargs = dict(multiple=16, tile=tile, context=context, reach=reach)
                out = predict_tiled(identity, image, **kwargs)
                assert out.shape == (*shape, 1)
                np.testing.assert_allclose(out[..., 0], image, atol=1e-6, err_msg=str(kwargs))
                np.testing.assert_allclose(predict_tiled(box, image, **kwargs)[..., 0], boxed, atol=1e-5,
                                           err_msg=str(kwargs))


@pytest.mark.parametrize("shape", TILE_SHAPES)
def test_tiles_keep_the_pooling_grid_of_the_single_window(shape):
    # Means over 16 x 16 blocks of the window stand in for a network that pools 16-fold: their output
    # depends on where the window starts. Every tile's window must start on the single window's grid,
    # the image reflected ``context`` px past its edge.
    grid, context = 16, 32

    def pool(batch):
        n, h, w, c = batch.shape
        blocks = batch.reshape(n, h // grid, grid, w // grid, grid, c).mean(axis=(2, 4))
        return np.repeat(np.repeat(blocks, grid, axis=1), grid, axis=2)

    image = np.random.default_rng(sum(shape)).random(shape).astype(np.float32)
    far = [-(s + 2 * context) % grid + context for s in shape]  # the far edges' padding, rounded up to the grid
    padded = np.pad(image, ((context, far[0]), (context, far[1])), mode="symmetric")
    expected = pool(padded[None, :, :, None])[0, context : context + shape[0], context : context + shape[1]]
    for tile in TILES:
        for reach in (0, 40):
            out = predict_tiled(pool, image, multiple=grid, tile=tile, context=context, reach=reach)
            np.testing.assert_allclose(out, expected, atol=1e-6, err_msg=f"tile {tile}, reach {reach}")


def test_receptive_radius_is_how_far_the_unet_sees(tiny_model):
    # A changed column changes the output this far either side, the most over the pooling phases.
    depth = tiny_model.card.depth
    base = np.random.default_rng(5).random((1, 32, 192, 1)).astype(np.float32)
    plain = tiny_model._run(base)
    seen = []
    for centre in range(64, 64 + 2**depth):
        changed = base.copy()
        changed[:, :, centre] += 1.0
        columns = np.flatnonzero(np.abs(tiny_model._run(changed) - plain).max(axis=(0, 1, 3)) > 0)
        seen += [centre - columns.min(), columns.max() - centre]
    assert max(seen) == receptive_radius(depth)


def test_flip_averaging_makes_the_prediction_mirror_symmetric(tiny_model):
    import dataclasses

    image = np.clip(np.random.default_rng(4).normal(0.3, 0.2, (96, 112)), 0, 1).astype(np.float32)
    mirror = lambda a: a[::-1, ::-1]  # noqa: E731
    plain = tiny_model.predict_tiles(image, tile=64, context=32)
    # A random network is not mirror-symmetric ...
    assert np.abs(tiny_model.predict_tiles(mirror(image), tile=64, context=32) - mirror(plain)).max() > 1e-3
    averaged = BoundaryModel(tiny_model.keras_model, dataclasses.replace(tiny_model.card, flips=4))
    # ... the average over the four mirrorings is, and it differs from the plain output.
    out = averaged.predict_tiles(image, tile=64, context=32)
    np.testing.assert_allclose(averaged.predict_tiles(mirror(image), tile=64, context=32), mirror(out), atol=1e-5)
    assert np.abs(out - plain).max() > 1e-3
    with pytest.raises(ModelCardError, match="flips must be 1, 2 or 4"):
        ModelCard.from_dict({"name": "x", "version": "0", "flips": 3})


def test_rescales_by_the_zoom_and_back(tiny_model):
    image = np.random.default_rng(1).random((120, 160)).astype(np.float32)
    maps = tiny_model.predict_maps(image, zoom=0.5)  # cells twice the training diameter
    assert maps["boundary"].shape == (120, 160) and maps["distance"].shape == (120, 160)
    grid = tiny_model.predict_maps(image, zoom=0.5, working_scale=True)
    assert grid["boundary"].shape == (round(120 * 0.5 * tiny_model.card.input_scale),
                                      round(160 * 0.5 * tiny_model.card.input_scale))


def test_card_check_refuses_images_that_do_not_fit(tiny_model):
    with pytest.raises(ModelCardError, match="reads one junction channel"):
        tiny_model.predict_maps(np.zeros((64, 64, 3), np.float32), name="rgb.png")
    with pytest.raises(ModelCardError, match="too small"):
        tiny_model.predict_maps(np.zeros((8, 8), np.float32), name="small.png")


def test_save_load_round_trip(tmp_path, tiny_model):
    path = tiny_model.save(tmp_path / "tiny.keras")
    assert (tmp_path / "tiny.card.json").exists()
    loaded = BoundaryModel.load(path)
    assert loaded.card == tiny_model.card
    image = np.random.default_rng(2).random((64, 80)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict_tiles(image), tiny_model.predict_tiles(image), atol=1e-6)


def test_a_card_knows_its_training_diameter_old_ones_from_their_pixel_size():
    from bbbcore import config

    assert ModelCard(name="m", version="1", cell_diameter_px=40.0).diameter_px == 40.0
    old = ModelCard.from_dict({"name": "m", "version": "1", "pixel_size_um": 0.5, "max_rescale": 4.0})
    assert old.diameter_px == pytest.approx(config.TYPICAL_CELL_DIAMETER_UM / 0.5)


def test_card_rejects_unknown_keys_and_bad_json(tmp_path):
    path = tmp_path / "m.keras"
    write_card(path, ModelCard(name="m", version="1"))
    data = json.loads((tmp_path / "m.card.json").read_text())
    data["treshold"] = 0.5
    (tmp_path / "m.card.json").write_text(json.dumps(data))
    with pytest.raises(ModelCardError, match="unknown key.*treshold"):
        read_card(path)
    (tmp_path / "m.card.json").write_text("{not json")
    with pytest.raises(ModelCardError, match="not valid JSON"):
        read_card(path)
    with pytest.raises(ModelCardError, match="model file not found"):
        BoundaryModel.load(tmp_path / "absent.keras")
