"""bbbcore.resize: images and labels between an image's grid and the network's."""

from __future__ import annotations

import numpy as np

from bbbcore.resize import resize, resize_labels, resize_to


def test_resize_block_mean_and_linear():
    image = np.arange(16, dtype=np.float32).reshape(4, 4)
    half = resize(image, 0.5)
    np.testing.assert_allclose(half, [[2.5, 4.5], [10.5, 12.5]])
    back = resize_to(half, (4, 4))
    assert back.shape == (4, 4)
    assert back.min() >= half.min() and back.max() <= half.max()


def test_resize_keeps_float_images_at_scale_one_and_rounds_shapes():
    image = np.random.default_rng(0).random((7, 9)).astype(np.float32)
    assert resize(image, 1.0) is image
    assert resize(image, 0.5).shape == (4, 4)  # round(3.5) = 4, round(4.5) = 4 (banker's rounding)
    assert resize(image, 2.0).shape == (14, 18)


def test_a_linear_ramp_stays_linear_when_enlarged():
    ramp = np.tile(np.arange(8, dtype=np.float32), (4, 1))
    big = resize_to(ramp, (8, 16))
    inner = big[:, 1:-1]  # pixel-centre aligned: the outermost half pixels are clamped
    np.testing.assert_allclose(np.diff(inner, axis=1), 0.5, atol=1e-6)


def test_an_integer_shrink_is_the_block_mean_even_when_the_size_does_not_divide():
    image = np.arange(35, dtype=np.float32).reshape(5, 7)
    small = resize_to(image, (2, 3), antialias=True)  # 1/2.5 and 1/2.33 are not integers: smoothed, sampled
    assert small.shape == (2, 3) and image.min() <= small.min() and small.max() <= image.max()
    third = resize_to(np.arange(36, dtype=np.float32).reshape(6, 6), (2, 2), antialias=True)
    np.testing.assert_allclose(third, [[7.0, 10.0], [25.0, 28.0]])  # 3x3 block means


def test_labels_are_resized_by_nearest_neighbour_and_keep_their_ids():
    labels = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 0, 0], [3, 3, 0, 0]], np.int32)
    small = resize_labels(labels, (2, 2))
    np.testing.assert_array_equal(small, [[1, 2], [3, 0]])
    back = resize_labels(small, (4, 4))
    np.testing.assert_array_equal(back, labels)
    assert set(np.unique(resize_labels(labels, (7, 5)))) == {0, 1, 2, 3}  # no interpolated ids


def test_a_large_shrink_matches_the_plain_gaussian_shrink_and_keeps_positions():
    from scipy import ndimage as ndi

    rng = np.random.default_rng(3)
    image = ndi.gaussian_filter(rng.normal(size=(1203, 1597)), 6).astype(np.float32)
    image[600:606, 800:806] = 5.0  # a bright square whose position must survive the shrink
    shape = (200, 265)  # about 6x smaller, not an integer factor: block mean of 3, then a Gaussian
    fast = resize_to(image, shape, antialias=True)
    fy, fx = shape[0] / image.shape[0], shape[1] / image.shape[1]
    blurred = ndi.gaussian_filter(image, ((1 / fy - 1) / 2, (1 / fx - 1) / 2))
    plain = resize_to(blurred, shape)  # the single-Gaussian path, as before the block mean
    scale = np.abs(plain).max()
    assert np.abs(fast - plain).mean() < 0.005 * scale  # the same picture
    assert np.abs(fast - plain).max() < 0.1 * scale  # at worst (the square's edges) a little sharper
    peak = np.unravel_index(np.argmax(fast), shape)
    assert peak == np.unravel_index(np.argmax(plain), shape)
    assert abs(peak[0] - 603 * fy) <= 1 and abs(peak[1] - 803 * fx) <= 1


def test_block_mean_matches_numpy_mean_for_every_block_shape():
    from bbbcore.resize import block_mean

    image = np.random.default_rng(3).random((24, 36)).astype(np.float32)
    for block in [(1, 1), (2, 2), (3, 4), (6, 6)]:
        expected = image.reshape(24 // block[0], block[0], 36 // block[1], block[1]).mean(axis=(1, 3))
        np.testing.assert_allclose(block_mean(image, block), expected, rtol=1e-6)
    assert block_mean(image, (3, 4)).shape == (8, 9) and block_mean(image, (3, 4)).dtype == np.float32
