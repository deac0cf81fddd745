"""Resizing images and labels between an image's grid and the network's.

The bilinear kernel is written by hand (pixel-centre aligned, as
``skimage.transform.resize(order=1)`` samples) rather than taken from
scikit-image: the shipped models' cards were scored with it, and labels must
stay identical across refactors. Whether ``skimage``/``scipy.ndimage.zoom``
may replace it, with the differing pixels counted, is the speed issue's
question (see benchmarks/labels_identity.py).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def resize(image: np.ndarray, scale: float) -> np.ndarray:
    """Resize a 2-D float image by ``scale`` (area-averaging when shrinking)."""
    if abs(scale - 1.0) < 1e-6:
        return image.astype(np.float32, copy=False)
    shape = (max(1, round(image.shape[0] * scale)), max(1, round(image.shape[1] * scale)))
    return resize_to(image, shape, antialias=scale < 1)


def resize_labels(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a labels image (pixel centres aligned)."""
    rows = np.minimum(((np.arange(shape[0]) + 0.5) * labels.shape[0] / shape[0]).astype(int), labels.shape[0] - 1)
    cols = np.minimum(((np.arange(shape[1]) + 0.5) * labels.shape[1] / shape[1]).astype(int), labels.shape[1] - 1)
    return labels[rows[:, None], cols[None, :]]


def resize_to(image: np.ndarray, shape: tuple[int, int], *, antialias: bool = False) -> np.ndarray:
    """Resize a 2-D float image to ``shape`` with linear interpolation."""
    image = np.asarray(image, dtype=np.float32)
    if image.shape == tuple(shape):
        return image
    fy, fx = shape[0] / image.shape[0], shape[1] / image.shape[1]
    if antialias and (fy < 1 or fx < 1):
        if abs(1 / fy - round(1 / fy)) < 1e-6 and abs(1 / fx - round(1 / fx)) < 1e-6:
            # Exact integer shrink: block mean, the cleanest anti-aliasing.
            return _block_mean(image, (round(1 / fy), round(1 / fx)), shape)
        sigma = np.array([max(0, (1 / fy - 1) / 2), max(0, (1 / fx - 1) / 2)])
        block = int(min(1 / fy, 1 / fx) // 2)
        if block >= 2:
            # A large shrink: a block mean first (cheap, and memory falls by block**2), then a Gaussian on
            # the smaller image that brings the blur to the same variance. 48 MP shrunk 6x: 8 s -> 0.5 s.
            image = _block_mean(image, (block, block), (-(-image.shape[0] // block), -(-image.shape[1] // block)))
            fy, fx = fy * block, fx * block  # the block grid's pixel centres, kept exact (not its padded size)
            sigma = np.sqrt(np.maximum(sigma**2 - (block**2 - 1) / 12, 0)) / block
        image = ndi.gaussian_filter(image, tuple(sigma))
    # Pixel-centre aligned coordinates (as skimage.transform.resize does).
    rows = (np.arange(shape[0], dtype=np.float32) + 0.5) / fy - 0.5
    cols = (np.arange(shape[1], dtype=np.float32) + 0.5) / fx - 0.5
    rows = np.clip(rows, 0, image.shape[0] - 1)
    cols = np.clip(cols, 0, image.shape[1] - 1)
    r0 = np.floor(rows).astype(int)
    c0 = np.floor(cols).astype(int)
    r1 = np.minimum(r0 + 1, image.shape[0] - 1)
    c1 = np.minimum(c0 + 1, image.shape[1] - 1)
    wr = (rows - r0)[:, None]
    wc = (cols - c0)[None, :]
    top = image[r0][:, c0] * (1 - wc) + image[r0][:, c1] * wc
    bottom = image[r1][:, c0] * (1 - wc) + image[r1][:, c1] * wc
    return (top * (1 - wr) + bottom * wr).astype(np.float32)


def _block_mean(image: np.ndarray, block: tuple[int, int], shape: tuple[int, int]) -> np.ndarray:
    """Mean over ``block`` rectangles, ``shape`` of them: rows and columns past the image's edge repeat it,
    those beyond ``shape`` x ``block`` are left out."""
    height, width = shape[0] * block[0], shape[1] * block[1]
    short = (max(0, height - image.shape[0]), max(0, width - image.shape[1]))
    padded = np.pad(image, ((0, short[0]), (0, short[1])), mode="edge") if any(short) else image  # pad copies
    return block_mean(padded[:height, :width], block)


def block_mean(image: np.ndarray, block: tuple[int, int]) -> np.ndarray:
    """Mean of each ``block`` rectangle of a 2-D image whose sides are multiples of the block's.

    Summed one offset at a time: numpy's ``reshape(...).mean(axis=(1, 3))`` reduces over strided
    axes and took 12 ms on a 1.4 MP plane, this 0.6 ms (the sums differ in the last float bit).
    """
    by, bx = block
    blocks = np.asarray(image, np.float32).reshape(image.shape[0] // by, by, image.shape[1] // bx, bx)
    total = blocks[:, 0, :, 0].copy()
    for row in range(by):
        for col in range(bx):
            if row or col:
                total += blocks[:, row, :, col]
    return total * np.float32(1 / (by * bx))
