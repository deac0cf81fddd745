"""Boundary probability -> one labelled object per cell (seeded watershed)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import ClassVar

import numpy as np
from scipy import ndimage as ndi
from skimage import filters, measure, morphology, segmentation

from . import config
from .nuclei import find_bright_nuclei, find_nuclei
from .resize import resize_labels, resize_to


@dataclass(frozen=True)
class WatershedSettings:
    """How boundary maps become cells; lengths and areas in pixels.

    The defaults are set for the 10x scale of the shipped model (0.62 µm/px,
    cells about 60 px across); :meth:`scaled` converts them for another
    scale, :meth:`from_card` takes a model card's tuned values. Unknown keys
    are rejected, so a typo cannot pass silently.

    Attributes
    ----------
    threshold : float
        Boundary probability below which a pixel is inside a cell (a basin).
    smoothing_sigma : float
        Gaussian smoothing of the maps before the watershed (px).
    marker_erosion : float
        Seeds keep only pixels farther than this from a border (px).
    marker_h : float
        A distance peak seeds its own cell when it stands this high (px).
    min_marker_area, min_cell_area : float
        Smaller seeds are specks; smaller cells give their pixels to neighbours (px²).
    distance_threshold : float
        Seeds from a predicted distance map: its regions above this value.
    merge_threshold : float
        Neighbours whose shared border has a lower mean boundary probability are one cell.
    empty_fraction : float
        A region darker than this share of the median region is a gap in the monolayer.
    nucleus_merge_threshold : float
        A cell holding no nucleus joins its neighbour across a border below this (0: off).
    nucleus_max_boundary : float
        A nucleus blob whose mean boundary probability is above this lies on a border; when most do, the
        mask shows pieces of junction, not nuclei, and nothing is merged (1: off, for maps that are not a
        probability).
    scale : float
        The factor the pixel values were scaled by (1: the model's training scale).
    """

    threshold: float = 0.5
    smoothing_sigma: float = 1.5
    marker_erosion: float = 4.0
    marker_h: float = 4.0
    min_marker_area: float = 150
    min_cell_area: float = config.MIN_CELL_AREA_PX
    distance_threshold: float = 0.5
    merge_threshold: float = 0.1
    empty_fraction: float = 0.15
    nucleus_merge_threshold: float = 0.5
    nucleus_max_boundary: float = 0.2
    scale: float = 1.0

    #: Settings that are lengths (scaled by the factor) and areas (by its square).
    LENGTHS: ClassVar[tuple[str, ...]] = ("smoothing_sigma", "marker_erosion", "marker_h")
    AREAS: ClassVar[tuple[str, ...]] = ("min_marker_area", "min_cell_area")

    @classmethod
    def from_dict(cls, values: Mapping[str, float] | None = None, *, source: str = "watershed settings",
                  ) -> WatershedSettings:
        """Settings from a mapping (missing keys keep their defaults).

        Raises
        ------
        ValueError
            A key that is not a setting.
        """
        values = dict(values or {})
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"{source}: unknown watershed setting(s): {', '.join(unknown)}")
        return cls(**values)

    @classmethod
    def from_card(cls, card, overrides: Mapping[str, float] | None = None) -> WatershedSettings:
        """A model card's tuned settings (``card.thresholds``), then ``overrides``, at the card's image scale."""
        return cls.from_dict({**card.thresholds, **(overrides or {})}, source=f"model card {card.name}")

    def scaled(self, pixel_scale: float) -> WatershedSettings:
        """The settings for pixels ``pixel_scale`` times smaller (lengths x scale, areas x scale²)."""
        changes = {key: getattr(self, key) * pixel_scale for key in self.LENGTHS}
        changes.update({key: getattr(self, key) * pixel_scale**2 for key in self.AREAS})
        return replace(self, **changes, scale=self.scale * pixel_scale)

    def to_dict(self) -> dict[str, float]:
        """The settings as a plain dict (for a model card), without ``scale``."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "scale"}


def cell_markers(
    boundary_probability: np.ndarray,
    *,
    threshold: float,
    marker_erosion: float,
    min_marker_area: float,
    marker_h: float = 0.0,
    nuclei: np.ndarray | None = None,
    cell_distance: np.ndarray | None = None,
    distance_threshold: float = 0.5,
) -> np.ndarray:
    """Seeds: the cores of border-free basins, or nuclei inside them when given.

    Basins are the pixels below ``threshold``. Their distance to the nearest
    border is smoothed, and every regional maximum that stands ``marker_h`` px
    above its surroundings seeds one cell, so a cell whose predicted border has
    a gap still gets its own seed (a neck in the basin is a dip in the
    distance). Seeds are cut to pixels farther than ``marker_erosion`` px from a
    border; specks smaller than ``min_marker_area`` are dropped.

    With a predicted ``cell_distance`` map (1 at a cell's centre, 0 on its
    border), the seeds are instead its regions above ``distance_threshold``:
    the network has already seen each cell's shape, gaps in borders included.
    """
    if cell_distance is not None:
        interior = (cell_distance > distance_threshold) & (boundary_probability < threshold)
        interior = morphology.remove_small_objects(interior, max_size=max(0, int(min_marker_area) - 1))
        return _with_nuclei(measure.label(interior, connectivity=1), interior, nuclei, min_marker_area)
    interior = boundary_probability < threshold
    distance = ndi.distance_transform_edt(interior)
    core = distance > marker_erosion
    if marker_h > 0:
        smooth = ndi.gaussian_filter(distance, max(1.0, marker_h / 2))
        peaks = morphology.h_maxima(smooth, marker_h).astype(bool)
        # Each peak grows back to its own part of the core (by a watershed on
        # the distance), so seeds keep a cell-like size.
        peak_labels = measure.label(peaks & core, connectivity=2)
        grown = segmentation.watershed(-smooth, peak_labels, mask=core)
        interior = (grown > 0) & ~segmentation.find_boundaries(grown, mode="inner")
    else:
        interior = core
    interior = morphology.remove_small_objects(interior, max_size=max(0, int(min_marker_area) - 1))
    return _with_nuclei(measure.label(interior, connectivity=1), interior, nuclei, min_marker_area)


def _with_nuclei(basins, interior, nuclei, min_marker_area):
    if nuclei is None:
        return basins.astype(np.int32)
    # One seed per nucleus, kept only inside a basin; basins with no nucleus
    # keep their own seed, so a cell whose nucleus is dim is not lost.
    blobs = nuclei > filters.threshold_otsu(nuclei)
    blobs = morphology.remove_small_objects(blobs & interior, max_size=max(0, int(min_marker_area) - 1))
    seeds = measure.label(blobs, connectivity=1)
    seeded = np.unique(basins[seeds > 0])
    orphan = np.isin(basins, seeded[seeded > 0], invert=True) & (basins > 0)
    orphans = measure.label(orphan, connectivity=1)
    orphans[orphans > 0] += seeds.max()
    return np.where(seeds > 0, seeds, orphans).astype(np.int32)


def labels_from_maps(
    maps: Mapping[str, np.ndarray],
    image,
    settings: WatershedSettings,
    *,
    junction: np.ndarray | None = None,
    nuclei: np.ndarray | None = None,
    seed_from_nuclei: bool = False,
    grid_pixel_size_um: float | None = None,
) -> np.ndarray:
    """Instance labels at the image's size from a network's maps at any grid.

    The watershed runs on the maps' grid (4x fewer pixels than a 10x image
    for the shipped model) and its labels are mapped back. This stage builds
    what it needs from the image: the burned-in scale bar to leave out, the
    junction plane for empty regions, and the nuclei that keep a cell whole
    (DAPI when the image has a nuclear channel, as the ``nuclei_count``
    column finds them, else the bright ovals of the ZO-1 image).

    Parameters
    ----------
    maps : mapping
        ``"boundary"`` probability and optionally ``"distance"``, (h, w) each.
    image : LoadedImage
    settings : WatershedSettings
        Already scaled to the maps' grid (``settings.scale`` is that grid's
        factor relative to the model's training scale).
    junction : (H, W) array, optional
        The normalised junction plane (default: ``image.junction``).
    nuclei : (H, W) array, optional
        The nuclear plane (default: ``image.nuclei``; None when it has none).
    seed_from_nuclei : bool
        Seed the watershed from the nuclei instead of border-free basins.
    grid_pixel_size_um : float, optional
        µm per pixel of the maps' grid (sets the smallest DAPI nucleus).

    Returns
    -------
    labels : (H, W) int32, one connected piece per cell
    """
    grid = maps["boundary"].shape
    junction = image.junction if junction is None else junction
    nuclei = image.nuclei if nuclei is None else nuclei
    exclude = resize_labels(burned_in_mask(image.raw), grid)
    grid_junction = resize_to(junction, grid, antialias=True)
    grid_nuclei = resize_to(nuclei, grid, antialias=True) if nuclei is not None else None
    # Cells holding no nucleus are pieces of a neighbour, to be joined.
    nucleus_mask = None
    if settings.nucleus_merge_threshold > 0:
        if grid_nuclei is not None:
            nucleus_mask, _ = find_nuclei(grid_nuclei, pixel_size_um=grid_pixel_size_um)
        else:
            nucleus_mask = find_bright_nuclei(grid_junction, pixel_scale=settings.scale)
    grid_labels = cells_from_boundary(
        maps["boundary"], settings, cell_distance=maps.get("distance"),
        nuclei=grid_nuclei if seed_from_nuclei else None, exclude=exclude, intensity=grid_junction,
        nucleus_mask=nucleus_mask,
    )
    return tidy_labels(resize_labels(grid_labels, image.shape), in_place=True)


def cells_from_boundary(
    boundary_probability: np.ndarray,
    settings: WatershedSettings | None = None,
    *,
    nuclei: np.ndarray | None = None,
    cell_distance: np.ndarray | None = None,
    exclude: np.ndarray | None = None,
    intensity: np.ndarray | None = None,
    nucleus_mask: np.ndarray | None = None,
) -> np.ndarray:
    """Turn a boundary probability map into a labels image, one id per cell.

    Parameters
    ----------
    boundary_probability : (H, W) float array in [0, 1]
    settings : WatershedSettings, optional
        In pixels of this map (default: the 10x defaults). Two neighbours
        whose shared border has a mean boundary probability below
        ``merge_threshold`` are one cell split by a spurious seed, and are merged.
    nuclei : (H, W) float array, optional
        Normalised nuclear channel; when given, nuclei seed the watershed.
    cell_distance : (H, W) float array, optional
        Predicted distance to the border (1 at cell centres); when given, its
        cores seed the watershed and it shapes the flooding landscape.
    exclude : (H, W) bool array, optional
        Pixels that are no cell (a burned-in scale bar): cells lying mostly
        inside are removed and these pixels stay 0.
    intensity : (H, W) float array, optional
        The normalised junction channel. A region whose median intensity is
        below ``empty_fraction`` times the median region's is a gap in the
        monolayer (black: no cytoplasm, no junction) and becomes 0.
    nucleus_mask : (H, W) bool array, optional
        Nuclei (:func:`bbbcore.nuclei.find_bright_nuclei`). When given, a cell
        holding no nucleus is a piece of a neighbour cut off along a faint
        line, and joins it (see :func:`merge_nucleus_free`).

    Returns
    -------
    labels : (H, W) int32
        Neighbouring cells touch; border pixels belong to a cell; 0 only where
        there is no cell. Ids are 1..N.
    """
    s = settings if settings is not None else WatershedSettings()
    probability = np.asarray(boundary_probability, dtype=np.float32)
    if probability.ndim != 2:
        raise ValueError(f"boundary_probability must be 2-D, got shape {probability.shape}")
    elevation = ndi.gaussian_filter(probability, s.smoothing_sigma) if s.smoothing_sigma > 0 else probability
    distance = None
    if cell_distance is not None:
        distance = ndi.gaussian_filter(np.asarray(cell_distance, np.float32), s.smoothing_sigma)
    markers = cell_markers(
        elevation, threshold=s.threshold, marker_erosion=s.marker_erosion, marker_h=s.marker_h,
        min_marker_area=s.min_marker_area, nuclei=nuclei, cell_distance=distance,
        distance_threshold=s.distance_threshold,
    )
    if distance is not None:
        # Flood from the centres outwards; borders still form the ridges.
        elevation = 0.5 * elevation + 0.5 * (1.0 - distance)
    if exclude is not None:
        markers[exclude] = 0
    labels = segmentation.watershed(elevation, markers)
    if s.merge_threshold > 0:
        labels = merge_weak_borders(labels, probability, s.merge_threshold)
        markers = np.where(markers > 0, labels, 0)
    # Cells too small to be real give their seed up; their pixels join neighbours.
    for _ in range(2):
        areas = np.bincount(labels.ravel())
        # Ids merged away have no pixels: they are not small cells (re-flooding for them cost two watersheds).
        small = np.flatnonzero((areas > 0) & (areas < s.min_cell_area))
        small = small[small > 0]
        if small.size == 0:
            break
        markers[np.isin(markers, small)] = 0
        if markers.max() == 0:
            return np.zeros(probability.shape, np.int32)
        labels = segmentation.watershed(elevation, markers)
    del elevation, distance, markers  # a 48 MP image's grid holds 0.2 GB in them; what follows needs its own
    if intensity is not None and s.empty_fraction > 0 and labels.max() > 0:
        ids = np.flatnonzero(label_areas(labels)[1:]) + 1  # merging leaves gaps in the ids
        medians = np.asarray(ndi.median(intensity, labels, ids))
        empty = ids[medians < s.empty_fraction * np.median(medians)]
        labels[np.isin(labels, empty)] = 0
    if exclude is not None and exclude.any():
        inside = np.bincount(labels[exclude].ravel(), minlength=labels.max() + 1)
        areas = np.bincount(labels.ravel(), minlength=labels.max() + 1)
        mostly_excluded = np.flatnonzero(inside >= 0.5 * np.maximum(areas, 1))
        labels[np.isin(labels, mostly_excluded)] = 0
        labels[exclude] = 0
    if nucleus_mask is not None and s.nucleus_merge_threshold > 0:
        labels = merge_nucleus_free(labels, probability, nucleus_mask, s.nucleus_merge_threshold,
                                    max_nucleus_boundary=s.nucleus_max_boundary)
    labels, _, _ = segmentation.relabel_sequential(labels)
    return labels.astype(np.int32)


def shared_borders(labels: np.ndarray, values: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of touching labels with the mean of ``values`` along their border (zeros when None).

    Returns
    -------
    pairs : (n, 2) int array, smaller id first
    mean : (n,) float array, mean of ``values`` over the pixels on both sides
    length : (n,) int array, number of touching pixel pairs
    """
    a_parts, b_parts, v_parts = [], [], []
    # In bands of rows (each band's last row pairs with the next band's first), so a 48 MP image's
    # comparisons cost a band's temporaries, not five full-image masks.
    height = labels.shape[0]
    for top in range(0, height, BAND_ROWS):
        own = min(BAND_ROWS, height - top)  # this band's rows; one more below pairs with the next band
        band = labels[top:top + own + 1]
        band_values = values[top:top + own + 1] if values is not None else None
        for a, b, va, vb in (
            (band[:own, :-1], band[:own, 1:], *((band_values[:own, :-1], band_values[:own, 1:])
                                                 if values is not None else (None, None))),
            (band[:-1, :], band[1:, :], *((band_values[:-1, :], band_values[1:, :])
                                         if values is not None else (None, None))),
        ):
            touching = a != b
            touching &= a > 0
            touching &= b > 0
            a_parts.append(a[touching])
            b_parts.append(b[touching])
            v_parts.append((va[touching] + vb[touching]) / 2 if values is not None else np.zeros(0))
    first = np.concatenate(a_parts).astype(np.int64)
    second = np.concatenate(b_parts).astype(np.int64)
    low, high = np.minimum(first, second), np.maximum(first, second)
    if low.size == 0:
        return np.zeros((0, 2), np.int64), np.zeros(0), np.zeros(0, np.int64)
    keys = low * (int(labels.max()) + 1) + high
    unique, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=np.concatenate(v_parts)) if values is not None else np.zeros(len(unique))
    pairs = np.column_stack([unique // (int(labels.max()) + 1), unique % (int(labels.max()) + 1)])
    return pairs, sums / counts, counts


def merge_weak_borders(labels: np.ndarray, boundary_probability: np.ndarray, threshold: float) -> np.ndarray:
    """Merge neighbouring cells whose shared border shows no boundary.

    A border whose mean ``boundary_probability`` is below ``threshold`` is a
    line the watershed drew between two seeds of one cell.
    """
    pairs, mean, _ = shared_borders(labels, boundary_probability)
    weak = pairs[mean < threshold]
    if weak.size == 0:
        return labels
    parent = np.arange(int(labels.max()) + 1)
    for a, b in weak:
        ra, rb = _root(parent, a), _root(parent, b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return _roots(parent)[labels]


def _root(parent: np.ndarray, i: int) -> int:
    """The representative of ``i`` in a union-find forest (path halving)."""
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _roots(parent: np.ndarray) -> np.ndarray:
    """Every id's representative: a lookup table for a labels image."""
    return np.array([_root(parent, i) for i in range(parent.size)])


def merge_nucleus_free(
    labels: np.ndarray,
    boundary_probability: np.ndarray,
    nucleus_mask: np.ndarray,
    threshold: float = WatershedSettings.nucleus_merge_threshold,
    *,
    min_nucleated_share: float = 0.5,
    max_nucleus_boundary: float = WatershedSettings.nucleus_max_boundary,
) -> np.ndarray:
    """Join each cell that holds no nucleus to its neighbour across its weakest border.

    An endothelial cell has a nucleus; a piece without one is most often a
    cell cut along a faint line inside it. Such a piece joins the neighbour
    whose shared border has the lowest mean ``boundary_probability``, when
    that mean is below ``threshold`` (the network is not sure of the border).
    Cells touching the image edge keep their shape: their nucleus may lie
    outside the frame. When fewer than ``min_nucleated_share`` of the inner
    cells hold a nucleus, the mask does not show the nuclei of this image,
    and nothing is merged.

    Nor when most of the mask's blobs lie on borders (their mean
    ``boundary_probability`` above ``max_nucleus_boundary``): they are pieces of
    junction (thick vertices, the dots of punctate ZO-1 enlarged from small
    cells), not nuclei. On the sample and training images at most 9 % of the
    bright-nuclei mask's blobs lie on borders (a nucleus cut by a spurious
    border among them, still counted: its pieces are what this rejoins); on
    generated images of 20 px cells, 98 %.

    A nucleus belongs to the cell that holds most of its pixels.
    """
    labels = np.asarray(labels)
    n = int(labels.max()) + 1
    nucleated = np.zeros(n, bool)
    blobs, count = ndi.label(nucleus_mask)
    if count:
        on_border = ndi.mean(boundary_probability, blobs, np.arange(1, count + 1)) > max_nucleus_boundary
        if on_border.mean() > 0.5:
            return labels
        # (nucleus, cell) pixel counts over the nuclei's pixels only, as sparse pairs: a dense
        # nuclei x cells table and whole-image int64 keys cost 0.3 GB on a 48 MP image.
        inside = (blobs > 0) & (labels > 0)
        keys, overlap = np.unique(blobs[inside].astype(np.int64) * n + labels[inside], return_counts=True)
        blob, cell = keys // n, keys % n
        # Each nucleus's cell: the most pixels, the smallest id on a tie.
        order = np.lexsort((cell, -overlap, blob))
        first = np.ones(len(order), bool)
        first[1:] = blob[order][1:] != blob[order][:-1]
        nucleated[cell[order][first]] = True
    edge = touches_edge(labels)
    present = label_areas(labels, minlength=n) > 0
    inner = present & ~edge
    inner[0] = False
    if not inner.any() or nucleated[inner].mean() < min_nucleated_share:
        return labels
    pairs, mean, _ = shared_borders(labels, boundary_probability)
    # Candidate joins, weakest border first: (piece without nucleus, neighbour).
    candidates = [(m, a, b) for (a, b), m in zip(pairs, mean) if m < threshold
                  for a, b in ((a, b), (b, a)) if not nucleated[a] and not edge[a]]
    candidates.sort()
    parent = np.arange(n)
    for _, piece, neighbour in candidates:
        rp, rn = _root(parent, piece), _root(parent, neighbour)
        if rp == rn or nucleated[rp]:
            continue  # already joined, or has gained a nucleus by joining
        parent[rp] = rn  # rp holds no nucleus, so rn keeps its own state
    return _roots(parent)[labels]


def burned_in_mask(raw: np.ndarray) -> np.ndarray:
    """Pixels of a burned-in scale bar or caption (not sample).

    Two rules: (1) saturated, box-like components of 300 px or more (the white
    scale-bar box) and (2) in colour images whose red channel carries no stain,
    bright pixels with red as strong as green (white or yellow captions such as
    "Magnification: 10 x"). The result is closed and grown by a few px.
    """
    raw = np.asarray(raw)
    top = float(np.iinfo(raw.dtype).max) if raw.dtype.kind in "ui" else float(raw.max())
    planes = raw[..., :3] if raw.ndim == 3 else raw[..., None]
    saturated = planes[..., 0] >= 0.98 * top
    for channel in range(1, planes.shape[-1]):  # plane by plane: 10x faster than .all(axis=-1) on RGB
        saturated &= planes[..., channel] >= 0.98 * top
    mask = np.zeros(raw.shape[:2], bool)
    # int32 labels, areas by bincount and boxes by find_objects: regionprops' int64 image and coordinate
    # lists cost 1 GB and 3 s on a 48 MP image.
    lab, n_found = ndi.label(saturated, structure=np.ones((3, 3)), output=np.int32)
    areas = np.bincount(lab[saturated], minlength=n_found + 1)
    for cell_id, box in enumerate(ndi.find_objects(lab), start=1):
        if box is None or areas[cell_id] < 300:
            continue
        height, width = box[0].stop - box[0].start, box[1].stop - box[1].start
        if areas[cell_id] >= 0.4 * height * width and min(height, width) >= 5:
            mask[box] |= lab[box] == cell_id
    del lab
    if raw.ndim == 3 and raw.shape[-1] >= 3:
        red, green = raw[..., 0], raw[..., 1]
        if np.percentile(red, 99) < 0.25 * top:
            caption = (red > 0.5 * top) & (green > 0.5 * top)
            # Specks of 4 px or fewer are not text (remove_small_objects' rule, at a fifth of its cost).
            pieces, n_pieces = ndi.label(caption, output=np.int32)
            large = np.bincount(pieces[caption], minlength=n_pieces + 1) > 4
            large[0] = False
            mask |= large[pieces]
            del pieces
    if mask.any():
        # Only around what was found (the closing, filling and growing reach 11 px; 16 px of empty margin
        # gives the same pixels as the whole image would, in a tenth of the time).
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        box = (slice(max(0, rows[0] - 16), rows[-1] + 17), slice(max(0, cols[0] - 16), cols[-1] + 17))
        part = ndi.binary_closing(mask[box], iterations=4)
        part = ndi.binary_fill_holes(part)
        part = ndi.binary_dilation(part, iterations=3)
        # Keep only box- or caption-sized groups (not scattered bright specks).
        lab = measure.label(part)
        for region in measure.regionprops(lab):
            if region.area < 150:
                part[tuple(region.coords.T)] = False
        mask[box] = part
    return mask


#: Rows at a time for whole-image passes over labels (a 48 MP image's int64 or boolean copies cost
#: 0.1-0.4 GB each; a band's, a few MB).
BAND_ROWS = 1024


def label_areas(labels: np.ndarray, minlength: int = 0) -> np.ndarray:
    """Pixels per id, index = id: ``np.bincount(labels.ravel())`` counted a band of rows at a time."""
    size = max(minlength, int(labels.max(initial=0)) + 1)
    areas = np.zeros(size, np.int64)
    for top in range(0, labels.shape[0], BAND_ROWS):
        areas += np.bincount(labels[top:top + BAND_ROWS].ravel(), minlength=size)
    return areas


def inner_boundaries(labels: np.ndarray) -> np.ndarray:
    """``find_boundaries(labels, mode="inner")``, a band of rows at a time (one row of context each side)."""
    outline = np.empty(labels.shape, bool)
    height = labels.shape[0]
    for top in range(0, height, BAND_ROWS):
        bottom = min(top + BAND_ROWS, height)
        above = 1 if top else 0
        band = segmentation.find_boundaries(labels[top - above:min(bottom + 1, height)], mode="inner")
        outline[top:bottom] = band[above:above + bottom - top]
    return outline


def touches_edge(labels: np.ndarray) -> np.ndarray:
    """Boolean per label id (index 0 unused): the cell reaches the image edge."""
    flags = np.zeros(int(labels.max()) + 1, bool)
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    flags[np.unique(edge)] = True
    flags[0] = False
    return flags


def tidy_labels(labels: np.ndarray, *, in_place: bool = False, ids=None) -> np.ndarray:
    """One connected piece per cell.

    A cell's smaller detached pieces (a few pixels left by resizing or by the
    watershed around a thin neck) go to the neighbour they touch most, or to
    no cell when they touch none. Ids are kept. ``in_place``: change ``labels``
    itself (a fresh array: a 48 MP image's copy is 0.2 GB). ``ids``: only these
    cells (default: all).
    """
    labels = labels if in_place else np.array(labels, copy=True)
    height, width = labels.shape
    only = None if ids is None else {int(i) for i in ids}
    for cell_id, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None or (only is not None and cell_id not in only):
            continue
        pieces, n = ndi.label(labels[box] == cell_id)
        if n < 2:
            continue
        keep = np.argmax(np.bincount(pieces.ravel())[1:]) + 1
        # One pixel of margin so a piece sees its neighbours outside the box.
        rows = slice(max(box[0].start - 1, 0), min(box[0].stop + 1, height))
        cols = slice(max(box[1].start - 1, 0), min(box[1].stop + 1, width))
        window = labels[rows, cols]
        offset = (box[0].start - rows.start, box[1].start - cols.start)
        for piece in range(1, n + 1):
            if piece == keep:
                continue
            mask = np.zeros(window.shape, bool)
            inner = pieces == piece
            mask[offset[0]:offset[0] + inner.shape[0], offset[1]:offset[1] + inner.shape[1]] = inner
            ring = ndi.binary_dilation(mask) & ~mask
            around = window[ring]
            around = around[(around != cell_id) & (around > 0)]
            window[mask] = np.bincount(around).argmax() if around.size else 0
    return labels
