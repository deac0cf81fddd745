"""bbbcore.nuclei: nuclei from a DAPI channel, or the bright ovals of a ZO-1 image."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage import draw

from bbbcore.instances import touches_edge
from bbbcore.nuclei import count_nuclei, find_bright_nuclei, find_nuclei


def test_bright_nuclei_are_found_in_the_junction_channel(synthetic_monolayer):

    # Nuclei bleed into the synthetic junction channel, as in ZO-1 images; the
    # borders are brighter still but thin, and must not count as nuclei.
    mask = find_bright_nuclei(synthetic_monolayer["junction"])
    truth = synthetic_monolayer["truth"]
    blobs, _ = ndi.label(mask)
    inner = np.flatnonzero(~touches_edge(truth))[1:]
    per_cell = [len(np.unique(blobs[(truth == cell) & (blobs > 0)])) for cell in inner]
    assert per_cell.count(1) >= 0.9 * len(inner), per_cell
    assert mask[synthetic_monolayer["border"]].mean() < 0.01


def test_dapi_nuclei_are_found_with_their_centres_and_specks_dropped():
    plane = np.zeros((200, 300), np.float32)
    centres = [(50, 60), (120, 200), (160, 80)]
    for y, x in centres:
        rows, cols = draw.disk((y, x), 10)
        plane[rows, cols] = 1.0
    plane[10:12, 280:282] = 1.0  # a 4-px speck: noise, not a nucleus
    mask, found = find_nuclei(plane)
    assert mask.shape == plane.shape and len(found) == 3
    np.testing.assert_allclose(sorted(map(tuple, found)), sorted(centres), atol=1.5)
    assert not mask[10:12, 280:282].any()
    # With a pixel size the smallest nucleus is in µm²: at 0.1 µm/px these 314 px (3 µm²) are specks.
    assert len(find_nuclei(plane, pixel_size_um=0.1)[1]) == 0


def test_a_flat_plane_has_no_nuclei():
    mask, centres = find_nuclei(np.full((64, 64), 0.3, np.float32))
    assert not mask.any() and centres.shape == (0, 2)
    assert not find_bright_nuclei(np.zeros((64, 64), np.float32)).any()


def test_nuclei_are_counted_by_their_centre():
    labels = np.zeros((100, 100), np.int32)
    labels[:, :50], labels[:, 50:] = 1, 2
    counts = count_nuclei(labels, np.array([[10.0, 10.0], [60.0, 20.0], [50.0, 80.0]]))
    assert counts.tolist() == [2, 1]
