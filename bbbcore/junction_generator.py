"""Synthetic ZO-1 junction images with exact cell labels.

Made to train the boundary U-Net on more variety than the annotated images
hold (cell sizes, junction textures, microscopes) and to score it at known
cell diameters. A confluent monolayer is tessellated (Voronoi of relaxed,
possibly stretched and warped seeds), its borders are drawn as a ZO-1 line of
one of four textures, and the image goes through a crude microscope: haze,
nuclei, uneven illumination, PSF blur, photon and read noise, sometimes JPEG.

The labels come first and every drawn line is derived from them, so the
label borders run along the centre of the line even where it is wavy.

>>> image = generate((128, 128), diameter_px=30, texture="punctate", seed=1)
>>> image.junction.shape, image.junction.dtype.name, int(image.cells.min())
((128, 128), 'float32', 1)

Only numpy, scipy, scikit-image and Pillow: no TensorFlow, no Streamlit.
"""

from __future__ import annotations

import io
import math
import operator
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage as ndi
from scipy.spatial import cKDTree
from scipy.special import expit
from skimage import measure

TEXTURES: tuple[str, ...] = ("continuous", "punctate", "frayed", "spiked")

# --- Parameter ranges. Each is drawn uniformly unless said otherwise; shares are of the junction line's
# --- brightness (its peak, after blur, is 1 before illumination and noise).

# Tessellation.
#: Lloyd relaxation steps (integer, inclusive): 0 gives the irregular packing of a young culture, 3 the
#: near-hexagonal cobblestone of a mature, contact-inhibited monolayer.
LLOYD_ITERATIONS_RANGE: tuple[int, int] = (0, 3)
#: Cell length / width (log-uniform): 1 is the cobblestone of static culture, 3 the cells aligned and
#: stretched by laminar shear flow (HUVEC, bEnd.3 in flow chambers).
ELONGATION_RANGE: tuple[float, float] = (1.0, 3.0)
#: Border waviness, the displacement's standard deviation as a share of the diameter: straight polygon
#: sides up to the gently meandering borders of brain microvascular endothelium.
WAVINESS_RANGE: tuple[float, float] = (0.0, 0.04)
#: The waviness' length scale as a share of the diameter (a few bends per border).
WAVINESS_SCALE_RANGE: tuple[float, float] = (0.3, 0.8)

# Junction line.
#: Drawn line width, px (log-uniform): 1-2 px at 10x-20x widefield, 6-8 px at 60x confocal or for broad,
#: remodelling junctions.
BORDER_WIDTH_RANGE_PX: tuple[float, float] = (1.0, 8.0)
#: The width never exceeds this share of the cell's width, diameter / sqrt(elongation) (a 20 px cell cannot
#: have 8 px borders, nor can a 34 px cell stretched 3x, which is 20 px across).
BORDER_WIDTH_MAX_SHARE: float = 1 / 6
#: Slow brightness change along the borders, +- this share: uneven ZO-1 between cell pairs.
LINE_VARIATION_RANGE: tuple[float, float] = (0.0, 0.4)
#: Its length scale as a share of the diameter.
LINE_VARIATION_SCALE_RANGE: tuple[float, float] = (0.3, 1.5)
#: Share of the border length missing or very faint: discontinuous junctions of immature, inflamed or
#: permeabilised monolayers (drawn as a smooth modulation along the borders).
GAP_SHARE_RANGE: tuple[float, float] = (0.0, 0.3)
#: Gap length scale as a share of the diameter (a gap is a sizeable part of one border, not a speck).
GAP_SCALE_RANGE: tuple[float, float] = (0.15, 0.5)
#: What is left of the line in a gap (0: gone; 0.15: very faint).
GAP_RESIDUAL_RANGE: tuple[float, float] = (0.0, 0.15)

# Cell bodies and nuclei.
#: Diffuse cytoplasmic signal (cytoplasmic ZO-1 pool, autofluorescence, out-of-focus light).
HAZE_RANGE: tuple[float, float] = (0.0, 0.4)
#: Cell-to-cell spread of that haze (relative standard deviation): some cells bright, as dividing or
#: stressed cells are.
HAZE_CELL_VARIATION_RANGE: tuple[float, float] = (0.0, 0.5)
#: Fine mottling of the haze (relative), the granular look of the cytoplasm.
HAZE_TEXTURE_RANGE: tuple[float, float] = (0.0, 0.5)
#: A brighter cloud around the nucleus (ZO-1 in the Golgi / perinuclear region), in this share of images...
PERINUCLEAR_PROBABILITY: float = 0.5
#: ... and then this bright at its centre.
PERINUCLEAR_RANGE: tuple[float, float] = (0.0, 0.3)
#: Nuclei showing through in the junction channel as dim ovals (nuclear ZO-1, DAPI bleed-through).
NUCLEUS_BLEED_RANGE: tuple[float, float] = (0.0, 0.3)
#: Nucleus equivalent diameter as a share of the cell's (endothelial nuclei ~10-15 um, cells 30-60 um).
NUCLEUS_DIAMETER_RANGE: tuple[float, float] = (0.3, 0.5)
#: Nucleus length / width before the cell's own elongation is added (oval endothelial nuclei).
NUCLEUS_ASPECT_RANGE: tuple[float, float] = (1.1, 1.8)
#: Share of cells with no nucleus in the DAPI plane (nucleus out of focus or outside the field).
MISSING_NUCLEUS_RANGE: tuple[float, float] = (0.0, 0.1)

# Microscope.
#: Uneven illumination, the multiplicative field's drop from brightest to darkest: widefield and
#: spinning-disk vignetting, a tilted sample, a gradient across a tile scan.
ILLUMINATION_RANGE: tuple[float, float] = (0.0, 0.5)
#: Camera offset / mounting-medium glow.
BACKGROUND_RANGE: tuple[float, float] = (0.0, 0.1)
#: Photons at the junction's peak (log-uniform): peak SNR ~3 (dim, short exposure) to ~22 (good confocal).
PHOTONS_RANGE: tuple[float, float] = (8.0, 500.0)
#: The same for the brighter, less bleached DAPI channel.
NUCLEI_PHOTONS_RANGE: tuple[float, float] = (20.0, 1000.0)
#: Gaussian camera read noise, standard deviation.
READ_NOISE_RANGE: tuple[float, float] = (0.0, 0.05)
#: Gaussian PSF sigma, px: sharp confocal to slightly defocused widefield...
BLUR_SIGMA_RANGE_PX: tuple[float, float] = (0.0, 2.0)
#: ... capped at this share of the diameter: tiny cells in pixels come from low magnifications where the
#: PSF is under a pixel.
BLUR_MAX_SHARE: float = 1 / 20
#: Share of images saved as JPEG on the way (screenshots, slides, e-mailed images)...
JPEG_PROBABILITY: float = 0.3
#: ... at this quality (integer, inclusive).
JPEG_QUALITY_RANGE: tuple[int, int] = (30, 90)

# Textures.
#: punctate: dot or dash length along the border, px (at least the border width, at most diameter/6).
PUNCTATE_DOT_LENGTH_RANGE_PX: tuple[float, float] = (2.0, 8.0)
#: punctate: dot width / border width: dots are often fatter than the line between them.
PUNCTATE_DOT_WIDTH_RANGE: tuple[float, float] = (1.0, 1.8)
#: punctate: mean spacing of the dots along the border / dot length (recorded in px, punctate_spacing_px).
PUNCTATE_SPACING_RANGE: tuple[float, float] = (1.5, 4.0)
#: punctate: the dim line between the dots.
PUNCTATE_LINE_LEVEL_RANGE: tuple[float, float] = (0.0, 0.35)
#: spiked: spike length across the border, px (at most diameter/5): perpendicular ZO-1 "fingers" of
#: junctions remodelling under flow or inflammation (HUVEC).
SPIKE_LENGTH_RANGE_PX: tuple[float, float] = (5.0, 16.0)
#: spiked: mean spacing along the border, px.
SPIKE_SPACING_RANGE_PX: tuple[float, float] = (4.0, 12.0)
#: spiked: spike thickness (full width at half maximum), px.
SPIKE_WIDTH_RANGE_PX: tuple[float, float] = (1.0, 2.5)
#: spiked: the weaker continuous line the spikes cross.
SPIKE_LINE_LEVEL_RANGE: tuple[float, float] = (0.2, 0.6)
#: frayed: length scale of the fine zig-zag, px, for lines up to 3 px wide; wider lines zig-zag in
#: proportion (a 3 px wiggle vanishes inside an 8 px line); at most diameter/4.
FRAY_ZIGZAG_SCALE_RANGE_PX: tuple[float, float] = (2.5, 6.0)
#: frayed: zig-zag amplitude / its scale (recorded in px, fray_zigzag_amplitude_px); kept under 0.5 so the
#: warp hardly ever folds (the few folds are merged into the surrounding cell).
FRAY_ZIGZAG_AMPLITUDE_RANGE: tuple[float, float] = (0.2, 0.45)
#: frayed: relative change of the line's thickness along it.
FRAY_WIDTH_VARIATION_RANGE: tuple[float, float] = (0.2, 0.7)
#: frayed: raggedness of the line's edges, px.
FRAY_EDGE_NOISE_RANGE_PX: tuple[float, float] = (0.2, 1.0)
#: frayed: mean spacing of the fine fibrils leaving the line, px of border.
FRAY_FIBRIL_SPACING_RANGE_PX: tuple[float, float] = (6.0, 25.0)
#: frayed: fibril length, px (at most diameter/4).
FRAY_FIBRIL_LENGTH_RANGE_PX: tuple[float, float] = (3.0, 12.0)
#: frayed: fibril brightness.
FRAY_FIBRIL_LEVEL_RANGE: tuple[float, float] = (0.25, 0.7)

_SMOOTH_NODES = 2.5  # broad random fields: coarse-grid nodes per sigma (linear interpolation between them)
_STREAMS = 7  # independent random streams: parameters, texture parameters, tessellation, texture, cells, fields, noise


@dataclass(frozen=True)
class GeneratedImage:
    """One synthetic image and its truth.

    Attributes
    ----------
    junction : (H, W) float32 in [0, 1], the ZO-1 channel as a microscope would give it
    nuclei : (H, W) float32 in [0, 1], a DAPI-like channel, one nucleus per cell except the cells listed
        in ``params["cells_without_nucleus"]``
    cells : (H, W) int32 labels 1..N, every pixel in exactly one cell (a confluent monolayer)
    border : (H, W) bool, the ideal border: pixels with a 4-neighbour in another cell (as
        ``skimage.segmentation.find_boundaries(cells, mode="inner")``), 2 px across
    params : every drawn parameter, JSON-serialisable
    junction_expected, border_signal : (H, W) float32, only with ``generate(..., keep_signal=True)``: the
        junction channel before noise (after illumination and blur) and the junction line's part of it
        (without haze, nuclei or background), both on the scale before normalisation, where photon noise
        has variance ``junction_expected / photons``; :func:`border_detectability` reads them
    """

    junction: np.ndarray
    nuclei: np.ndarray
    cells: np.ndarray
    border: np.ndarray
    params: dict
    junction_expected: np.ndarray | None = None
    border_signal: np.ndarray | None = None


def generate(
    shape: tuple[int, int] = (256, 256),
    *,
    diameter_px: float,
    texture: str = "continuous",
    seed: int | np.random.Generator = 0,
    keep_signal: bool = False,
    **overrides: Any,
) -> GeneratedImage:
    """One image with cells of about ``diameter_px`` (equivalent diameter, px) and the given junction texture.

    Every other parameter is drawn at random from the module's ranges unless given in ``overrides`` (the
    names are those of ``params``; ``jpeg_quality=None`` turns JPEG off). An override replaces the drawn
    value only: the other parameters and the tessellation stay as the seed makes them, except those whose
    range scales with it (the border width's cap with ``elongation``; the punctate dot length and the
    frayed zig-zag with ``border_width_px``). Overrides are used as given, not capped (a 9 px border on
    20 px cells is drawn if asked for). ``keep_signal`` also returns the noiseless junction channel and the
    line's part of it (see :class:`GeneratedImage`, :func:`border_detectability`).

    Raises
    ------
    TypeError for an override name that is not a parameter of this texture; ValueError for a bad value.
    """
    height, width = _check_shape(shape)
    diameter = float(diameter_px)
    if not math.isfinite(diameter) or diameter <= 0:
        raise ValueError(f"diameter_px must be a positive number, not {diameter_px!r}")
    if texture not in TEXTURES:
        raise ValueError(f"texture must be one of {TEXTURES}, not {texture!r}")
    streams, seed_record = _streams(seed)
    params: dict[str, Any] = {"texture": texture, "diameter_px": diameter, "shape": [height, width],
                              "seed": seed_record}
    _draw_params(params, streams[0], streams[1], dict(overrides))
    shape = (height, width)

    tessellation = _tessellate(shape, params, streams[2])
    cells = tessellation["cells"]
    border, neighbour = _borders(cells)
    # Distance to the nearest border pixel: the line, dots and gaps are drawn from it, so they follow the labels.
    distance = ndi.distance_transform_edt(~border) if border.any() else np.full(shape, np.inf)
    n_cells = int(cells.max())
    nucleus, cloud, has_nucleus = _nuclei(cells, params, tessellation["long_axis_deg"], streams[4])

    fields = streams[5]
    line = _junction_line(shape, params, tessellation, border, neighbour, distance, streams[3], fields)
    haze = _haze(cells, params, cloud, streams[4], fields)
    illumination = _illumination(fields, shape, params["illumination"])
    junction_clean = (line + haze + params["nucleus_bleed"] * nucleus + params["background"]) * illumination
    chromatin = 1 + 0.25 * _smooth_field(fields, shape, max(2.0, 0.05 * diameter))
    # DAPI: the nuclei, a trace of cytoplasmic autofluorescence and a floor.
    dapi = nucleus * chromatin + 0.05 * haze + 0.02
    nuclei_clean = dapi * illumination

    noise = streams[6]
    junction = _microscope(junction_clean, params, params["photons"], noise)
    nuclei = _microscope(nuclei_clean, params, params["nuclei_photons"], noise)
    params["n_cells"] = n_cells
    params["cells_without_nucleus"] = [int(label) for label in np.flatnonzero(~has_nucleus[1:]) + 1]
    if not keep_signal:
        return GeneratedImage(junction=junction, nuclei=nuclei, cells=cells, border=border, params=params)
    blur = params["blur_sigma_px"]
    expected = ndi.gaussian_filter(junction_clean, blur, truncate=3.0) if blur > 0.05 else junction_clean
    signal = line * illumination
    signal = ndi.gaussian_filter(signal, blur, truncate=3.0) if blur > 0.05 else signal
    return GeneratedImage(junction=junction, nuclei=nuclei, cells=cells, border=border, params=params,
                          junction_expected=expected.astype(np.float32), border_signal=signal.astype(np.float32))


def border_detectability(image: GeneratedImage) -> dict[str, np.ndarray]:
    """How surely an ideal observer could see each border of a generated image, pair of cells by pair.

    A pair's detectability is the matched-filter signal-to-noise ratio of the junction signal on its
    border pixels (on both sides: 2 px across), sqrt(sum(signal**2 / variance)), where the variance
    is each pixel's photon and read noise plus the clutter the line lies on: the variance of everything
    else (haze and its mottling, the perinuclear cloud, nuclei showing through) on the pair's border
    pixels, each side on its own so that a step in haze between the two cells does not count. This is
    what an observer who knew the line's exact shape and place would get; JPEG loss and the clutter's
    grain are not counted. Real observers, people or networks, get less from the line itself: by the Rose
    criterion a feature needs about 5 to be seen surely, and a border under 3 is one they can rarely
    draw from its own signal (though other cues, such as nuclei, may still part the two cells).

    Returns
    -------
    dict of equal-length arrays, one entry per pair of 4-connected touching cells: ``cell_a`` < ``cell_b``,
    ``length_px`` (the pair's border pixels / 2) and ``snr``.

    Raises
    ------
    ValueError when ``image`` was generated without ``keep_signal=True``.
    """
    if image.border_signal is None or image.junction_expected is None:
        raise ValueError("border_detectability needs an image from generate(..., keep_signal=True)")
    cells = image.cells
    n = int(cells.max()) + 1
    # Every (border pixel, pair) once: a pixel at a corner borders two cells and counts for both pairs.
    flat = cells.ravel().astype(np.int64)
    index = np.arange(cells.size).reshape(cells.shape)
    found = []
    every = slice(None)
    for here, there in ((slice(None, -1), slice(1, None)), (slice(1, None), slice(None, -1))):
        for a, b in (((here, every), (there, every)), ((every, here), (every, there))):
            differs = cells[a] != cells[b]
            found.append(np.column_stack([index[a][differs], cells[b][differs]]))
    pixel_pair = np.unique(np.concatenate(found), axis=0)
    pixel, other = pixel_pair[:, 0], pixel_pair[:, 1].astype(np.int64)
    here = flat[pixel]
    keys, pair = np.unique(np.minimum(here, other) * n + np.maximum(here, other), return_inverse=True)
    signal = image.border_signal.ravel()[pixel].astype(np.float64)
    expected = image.junction_expected.ravel()[pixel].astype(np.float64)
    photon = np.maximum(expected, 0) / image.params["photons"] + image.params["read_noise"] ** 2
    # Clutter: the variance of the rest of the image along each side of the border (side = pair and cell).
    rest = expected - signal
    _, side = np.unique(pair * n + here, return_inverse=True)
    count = np.bincount(side)
    mean = np.bincount(side, weights=rest) / count
    clutter = np.maximum(np.bincount(side, weights=rest ** 2) / count - mean ** 2, 0)[side]
    energy = signal ** 2 / np.maximum(photon + clutter, 1e-12)
    return {"cell_a": keys // n, "cell_b": keys % n, "length_px": np.bincount(pair) / 2,
            "snr": np.sqrt(np.bincount(pair, weights=energy))}


def visible_cells(image: GeneratedImage, *, min_snr: float = 3.0, min_length_share: float = 0.1) -> np.ndarray:
    """The truth as far as the image shows it: cells joined across every border whose
    :func:`border_detectability` is under ``min_snr``. Scored against ``image.cells`` it says what the
    visible borders alone allow a segmentation to reach.

    Not a bound: cells are also told apart by what is not their border (nuclei showing through, a step in
    haze), and networks do so on punctate junctions. On the 40 images of ``benchmarks/generated_scores.py``
    model 2.1 beat it on 3 at the default 3 (all punctate; 45 px: F1 0.79 against 0.58), model 2.0 on 1.

    Cells that touch over less than ``min_length_share`` of the diameter (where several cells meet at a
    point) are never joined: other borders part them.
    """
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    detectability = border_detectability(image)
    hidden = (detectability["snr"] < min_snr) & (
        detectability["length_px"] >= min_length_share * image.params["diameter_px"])
    n = int(image.cells.max()) + 1
    graph = sparse.coo_matrix((np.ones(int(hidden.sum())), (detectability["cell_a"][hidden],
                                                           detectability["cell_b"][hidden])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    _, renumbered = np.unique(component[1:], return_inverse=True)  # 1..N in the order of the components
    lookup = np.concatenate([[0], renumbered + 1]).astype(np.int32)
    return lookup[image.cells]


def random_generated(
    rng: np.random.Generator,
    shape: tuple[int, int],
    *,
    diameter_range: tuple[float, float] = (15, 300),
    textures: tuple[str, ...] = TEXTURES,
) -> GeneratedImage:
    """One image with every parameter random: diameter log-uniform in ``diameter_range``, texture uniform
    among ``textures``, the rest as in :func:`generate` (drawn from ``rng``, which advances)."""
    low, high = (float(value) for value in diameter_range)
    if not (0 < low <= high and math.isfinite(high)):
        raise ValueError(f"diameter_range must be (low, high) with 0 < low <= high, not {diameter_range!r}")
    textures = tuple(textures)
    if not textures or any(texture not in TEXTURES for texture in textures):
        raise ValueError(f"textures must be a non-empty selection of {TEXTURES}, not {textures!r}")
    diameter = float(np.exp(rng.uniform(np.log(low), np.log(high))))
    texture = textures[int(rng.integers(len(textures)))]
    return generate(shape, diameter_px=diameter, texture=texture, seed=rng)


# --- Parameters ---------------------------------------------------------------------------------------------


def _check_shape(shape) -> tuple[int, int]:
    try:
        height, width = (operator.index(side) for side in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be two integers (height, width), not {shape!r}") from None
    if height < 8 or width < 8:
        raise ValueError(f"shape must be at least 8 x 8 px, not {shape!r}")
    return height, width


def _streams(seed) -> tuple[list[np.random.Generator], int | None]:
    """Independent generators, so that e.g. the texture's randomness never shifts the tessellation's."""
    if isinstance(seed, np.random.Generator):
        root, record = np.random.SeedSequence(int(seed.integers(2**63))), None
    else:
        try:
            record = operator.index(seed)
        except TypeError:
            raise TypeError(f"seed must be an int or a numpy Generator, not {type(seed).__name__}") from None
        root = np.random.SeedSequence(record)
    return [np.random.default_rng(child) for child in root.spawn(_STREAMS)], record


def _draw_params(params: dict, rng: np.random.Generator, texture_rng: np.random.Generator, overrides: dict) -> None:
    """Draw every parameter into ``params``, overrides replacing draws.

    Each draw takes the same random numbers whether or not it is overridden, so an override changes that
    parameter only. Texture parameters come from their own stream so that the shared ones do not depend
    on the texture.
    """
    d = params["diameter_px"]
    texture = params["texture"]

    def take(name, drawn, *, low=0.0, high=math.inf, integer=False, none_ok=False):
        if name not in overrides:
            params[name] = drawn
            return drawn
        value = overrides.pop(name)
        if value is None and none_ok:
            params[name] = None
            return None
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            raise ValueError(f"override {name}={value!r}: expected a number")
        if integer and value != int(value):
            raise ValueError(f"override {name}={value!r}: expected an integer")
        value = int(value) if integer else float(value)
        if not (math.isfinite(value) and low <= value <= high):
            raise ValueError(f"override {name}={value!r}: must be within [{low}, {high}]")
        params[name] = value
        return value

    # `first`, `last`: the range drawn from; `low`, `high` in `limits`: what an override may be.
    def uniform(source, name, first, last, *, log=False, **limits):
        u = source.random()
        if log:
            drawn = math.exp(math.log(first) + u * (math.log(last) - math.log(first)))
        else:
            drawn = first + u * (last - first)
        return take(name, float(drawn), **limits)

    def integer(source, name, first, last, **limits):
        u = source.random()
        return take(name, int(first + min(math.floor(u * (last - first + 1)), last - first)), integer=True, **limits)

    positive = {"low": 1e-6}
    at_most_one = {"high": 1.0}
    # Tessellation.
    integer(rng, "lloyd_iterations", *LLOYD_ITERATIONS_RANGE, high=50)
    uniform(rng, "elongation", *ELONGATION_RANGE, log=True, low=1.0, high=20.0)
    uniform(rng, "elongation_angle_deg", 0.0, 180.0, low=-360.0, high=360.0)
    uniform(rng, "waviness_px", *(s * d for s in WAVINESS_RANGE))
    uniform(rng, "waviness_scale_px", *(s * d for s in WAVINESS_SCALE_RANGE), **positive)
    # Junction line.
    across = d / math.sqrt(params["elongation"])
    cap = min(max(across * BORDER_WIDTH_MAX_SHARE, BORDER_WIDTH_RANGE_PX[0]), BORDER_WIDTH_RANGE_PX[1])
    width = uniform(rng, "border_width_px", BORDER_WIDTH_RANGE_PX[0], cap, log=True, **positive)
    uniform(rng, "line_variation", *LINE_VARIATION_RANGE, **at_most_one)
    uniform(rng, "line_variation_scale_px", *(s * d for s in LINE_VARIATION_SCALE_RANGE), **positive)
    uniform(rng, "gap_share", *GAP_SHARE_RANGE, **at_most_one)
    uniform(rng, "gap_scale_px", *(max(4.0, s * d) for s in GAP_SCALE_RANGE), **positive)
    uniform(rng, "gap_residual", *GAP_RESIDUAL_RANGE, **at_most_one)
    # Cell bodies and nuclei.
    uniform(rng, "haze", *HAZE_RANGE)
    uniform(rng, "haze_cell_variation", *HAZE_CELL_VARIATION_RANGE)
    uniform(rng, "haze_texture", *HAZE_TEXTURE_RANGE)
    with_cloud = rng.random() < PERINUCLEAR_PROBABILITY
    uniform(rng, "perinuclear_haze", *(PERINUCLEAR_RANGE if with_cloud else (0.0, 0.0)))
    uniform(rng, "nucleus_bleed", *NUCLEUS_BLEED_RANGE)
    uniform(rng, "nucleus_diameter_share", *NUCLEUS_DIAMETER_RANGE, **positive)
    uniform(rng, "nucleus_aspect", *NUCLEUS_ASPECT_RANGE, low=1.0)
    uniform(rng, "missing_nucleus_share", *MISSING_NUCLEUS_RANGE, **at_most_one)
    # Microscope.
    uniform(rng, "illumination", *ILLUMINATION_RANGE, **at_most_one)
    uniform(rng, "background", *BACKGROUND_RANGE)
    uniform(rng, "photons", *PHOTONS_RANGE, log=True, **positive)
    uniform(rng, "nuclei_photons", *NUCLEI_PHOTONS_RANGE, log=True, **positive)
    uniform(rng, "read_noise", *READ_NOISE_RANGE)
    uniform(rng, "blur_sigma_px", BLUR_SIGMA_RANGE_PX[0], min(BLUR_SIGMA_RANGE_PX[1], d * BLUR_MAX_SHARE))
    use_jpeg, u = rng.random() < JPEG_PROBABILITY, rng.random()
    low_q, high_q = JPEG_QUALITY_RANGE
    quality = low_q + min(int(u * (high_q - low_q + 1)), high_q - low_q) if use_jpeg else None
    take("jpeg_quality", quality, low=1, high=100, integer=True, none_ok=True)

    # Texture parameters, from their own stream.
    if texture == "punctate":
        length = uniform(texture_rng, "punctate_dot_length_px",
                         *np.clip(PUNCTATE_DOT_LENGTH_RANGE_PX, max(width, 1.5), max(d / 6, width, 1.5)), **positive)
        uniform(texture_rng, "punctate_dot_width", *PUNCTATE_DOT_WIDTH_RANGE, **positive)
        low, high = PUNCTATE_SPACING_RANGE
        take("punctate_spacing_px", length * (low + texture_rng.random() * (high - low)), **positive)
        uniform(texture_rng, "punctate_line_level", *PUNCTATE_LINE_LEVEL_RANGE)
    elif texture == "spiked":
        uniform(texture_rng, "spike_length_px", *np.clip(SPIKE_LENGTH_RANGE_PX, 3.0, max(3.0, d / 5)), **positive)
        uniform(texture_rng, "spike_spacing_px", *SPIKE_SPACING_RANGE_PX, **positive)
        uniform(texture_rng, "spike_width_px", *SPIKE_WIDTH_RANGE_PX, **positive)
        uniform(texture_rng, "spike_line_level", *SPIKE_LINE_LEVEL_RANGE)
    elif texture == "frayed":
        grow = max(1.0, width / 3)
        scale = uniform(texture_rng, "fray_zigzag_scale_px",
                        *np.clip(np.multiply(FRAY_ZIGZAG_SCALE_RANGE_PX, grow), 1.0, max(1.0, d / 4)), **positive)
        low, high = FRAY_ZIGZAG_AMPLITUDE_RANGE
        take("fray_zigzag_amplitude_px", scale * (low + texture_rng.random() * (high - low)))
        uniform(texture_rng, "fray_width_variation", *FRAY_WIDTH_VARIATION_RANGE)
        uniform(texture_rng, "fray_edge_noise_px", *FRAY_EDGE_NOISE_RANGE_PX)
        uniform(texture_rng, "fray_fibril_spacing_px", *FRAY_FIBRIL_SPACING_RANGE_PX, **positive)
        uniform(texture_rng, "fray_fibril_length_px",
                *np.clip(FRAY_FIBRIL_LENGTH_RANGE_PX, 2.0, max(2.0, d / 4)), **positive)
        uniform(texture_rng, "fray_fibril_level", *FRAY_FIBRIL_LEVEL_RANGE)

    if overrides:
        known = sorted(name for name in params if name not in ("texture", "diameter_px", "shape", "seed"))
        raise TypeError(f"unknown parameter override(s) {sorted(overrides)} for texture {texture!r}; "
                        f"known: {', '.join(known)}")
    # numpy scalars from np.clip above: plain floats, so params stay JSON-serialisable.
    for name, value in params.items():
        if isinstance(value, np.floating):
            params[name] = float(value)


# --- Tessellation -------------------------------------------------------------------------------------------


def _tessellate(shape: tuple[int, int], params: dict, rng: np.random.Generator) -> dict:
    """Labels of a confluent monolayer: nearest seed in a stretched space, at warped pixel coordinates.

    Seeds live in "cell space" u, where cells are isotropic; the image is x = to_image @ u, an
    area-preserving stretch along the elongation direction. Seeds fill a box well beyond the image, so the
    image is a window on an endless monolayer and edge cells are cut, not squeezed.
    """
    height, width = shape
    d = params["diameter_px"]
    elongation = params["elongation"]
    angle = math.radians(params["elongation_angle_deg"])
    along = np.array([math.sin(angle), math.cos(angle)])  # (row, col) of the long axis
    across = np.array([math.cos(angle), -math.sin(angle)])
    to_image = np.column_stack([along * math.sqrt(elongation), across / math.sqrt(elongation)])
    to_cell = np.linalg.inv(to_image)

    zigzag = params["fray_zigzag_amplitude_px"] if params["texture"] == "frayed" else 0.0
    reach = 2.0 + 4 * (params["waviness_px"] + zigzag)  # how far a pixel may be displaced, with room to spare

    # Seeds: one per square of a grid (jittered sampling), as random as a Poisson process at large scale but
    # without its clumps of tiny cells; one square per disc of the requested diameter, since with such seeds
    # the median cell area is within ~1 % of the mean (measured: inner cells' median diameter 0.99-1.00 x
    # the request for 0-3 Lloyd steps, 15-150 px).
    side = math.sqrt(math.pi / 4 * d * d)
    corners = np.array([[-reach, -reach], [-reach, width + reach], [height + reach, -reach],
                        [height + reach, width + reach]]) @ to_cell.T
    low = corners.min(axis=0) - 4 * side
    counts = np.ceil((corners.max(axis=0) + 4 * side - low) / side).astype(int)
    high = low + counts * side
    grid = np.stack(np.meshgrid(np.arange(counts[0]), np.arange(counts[1]), indexing="ij"), -1).reshape(-1, 2)
    seeds = low + (grid + rng.random(grid.shape)) * side

    iterations = params["lloyd_iterations"]
    if iterations:
        # Lloyd relaxation on a coarse sample of the box (~36 points a cell is plenty for centroids). Seeds
        # near the box's edge stay put: their cells are cut by the box and would be pulled inwards.
        step = side / 6
        ys, xs = (np.arange(lo + step / 2, hi, step) for lo, hi in zip(low, high))
        sample = np.stack(np.meshgrid(ys, xs, indexing="ij"), -1).reshape(-1, 2)
        movable = np.all((seeds - low > 1.5 * side) & (high - seeds > 1.5 * side), axis=1)
        for _ in range(iterations):
            _, owner = cKDTree(seeds).query(sample, workers=-1)
            count = np.bincount(owner, minlength=len(seeds))
            centroid = np.column_stack([np.bincount(owner, sample[:, k], len(seeds)) for k in range(2)])
            move = movable & (count > 0)
            seeds[move] = centroid[move] / count[move, None]

    # A smooth displacement of the pixel coordinates before labelling: the borders bend, and since the line
    # is drawn from the labels afterwards, it bends with them. Drawn after the seeds, so that the frayed
    # texture's extra zig-zag leaves the seeds as the other textures have them.
    displacement = np.zeros((2, height, width))
    if params["waviness_px"] > 0:
        for axis in range(2):
            displacement[axis] += params["waviness_px"] * _smooth_field(rng, shape, params["waviness_scale_px"])
    if zigzag > 0:
        for axis in range(2):
            displacement[axis] += zigzag * _smooth_field(rng, shape, params["fray_zigzag_scale_px"])

    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    rows, cols = (rows + displacement[0]).ravel(), (cols + displacement[1]).ravel()
    # Written out rather than `@ to_cell.T`: a (n, 2) @ (2, 2) product goes to a multithreaded BLAS that
    # spends more time starting threads than multiplying.
    points = np.column_stack([to_cell[0, 0] * rows + to_cell[0, 1] * cols, to_cell[1, 0] * rows + to_cell[1, 1] * cols])
    _, owner = cKDTree(seeds).query(points, workers=-1)
    present = np.bincount(owner, minlength=len(seeds)) > 0
    label_of_seed = np.cumsum(present).astype(np.int32)  # consecutive labels 1..N for the seeds in view
    cells = label_of_seed[owner].reshape(shape)
    seed_of_label = np.concatenate([[0], np.flatnonzero(present)])
    relabel = _drop_stray_pieces(cells, 0.1 * side * side, params["waviness_px"] > 0 or zigzag > 0)
    if relabel[-1] != len(relabel) - 1:  # a cell went: labels consecutive again
        cells = relabel.astype(np.int32)[cells]
        seed_of_label = np.concatenate([[0], seed_of_label[1:][relabel[1:] > 0]])
    return {
        "cells": cells,
        "seeds": seeds,
        "seed_of_label": seed_of_label,
        "to_cell": to_cell,
        "long_axis_deg": params["elongation_angle_deg"],
    }


def _drop_stray_pieces(cells: np.ndarray, min_area: float, warped: bool) -> np.ndarray:
    """Give to their surroundings the pieces of cells cut off from their main body (where the warp folded)
    and the specks of cells not touching the image edge (a neighbour outside the image reached by a
    displaced pixel, a sliver between two close seeds): no real cell is that small.

    Returns the new labels, consecutive from 1, as a lookup from the old ones (0 where a cell went).
    """
    n_cells = int(cells.max())
    area = np.bincount(cells.ravel(), minlength=n_cells + 1)
    on_edge = np.zeros(n_cells + 1, bool)
    on_edge[np.concatenate([cells[0], cells[-1], cells[:, 0], cells[:, -1]])] = True
    specks = (area < min_area) & ~on_edge
    specks[0] = False
    if not warped and not specks.any():  # convex cells, none tiny: nothing to do
        return np.arange(n_cells + 1)
    pieces, count = measure.label(cells, connectivity=1, return_num=True)
    if count == n_cells and not specks.any():
        return np.arange(n_cells + 1)
    size = np.bincount(pieces.ravel())
    cell_of_piece = np.zeros(count + 1, np.int64)
    cell_of_piece[pieces.ravel()] = cells.ravel()
    by_size = np.argsort(size[1:], kind="stable") + 1
    largest = np.zeros(n_cells + 1, np.int64)
    largest[cell_of_piece[by_size]] = by_size  # the last write, the largest piece, wins
    piece_on_edge = np.zeros(count + 1, bool)
    piece_on_edge[np.concatenate([pieces[0], pieces[-1], pieces[:, 0], pieces[:, -1]])] = True
    keep = np.zeros(count + 1, bool)
    keep[largest[1:]] = True
    keep &= (size >= min_area) | piece_on_edge  # a cell whose main piece is an inner speck goes altogether
    stray = ~keep[pieces]
    nearest = ndi.distance_transform_edt(stray, return_distances=False, return_indices=True)
    cells[...] = cells[nearest[0], nearest[1]]
    present = np.bincount(cells.ravel(), minlength=n_cells + 1) > 0
    present[0] = False
    return np.where(present, np.cumsum(present), 0)


def _borders(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inner border pixels (a 4-neighbour in another cell; the image edge is no border) and, for each, the
    label of one such neighbour (0 elsewhere)."""
    neighbour = np.zeros_like(cells)
    every = slice(None)
    for here, there in ((slice(None, -1), slice(1, None)), (slice(1, None), slice(None, -1))):
        for a, b in (((here, every), (there, every)), ((every, here), (every, there))):
            differs = (cells[a] != cells[b]) & (neighbour[a] == 0)
            neighbour[a][differs] = cells[b][differs]
    return neighbour > 0, neighbour


# --- Drawing ------------------------------------------------------------------------------------------------


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """A zero-mean, unit-variance Gaussian random field varying over about ``scale`` px (float32)."""
    sigma = max(scale / 2, 0.5)
    if sigma <= 3:
        field = ndi.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma, mode="wrap")
        return (field - field.mean()) / max(float(field.std()), 1e-12)
    # Broad fields: smoothed noise on a coarse grid (SMOOTH_NODES nodes per sigma), then linear interpolation;
    # a wide Gaussian on the full image costs ~100x more. No matrix products either: OpenBLAS would start
    # threads that then spin, doubling the CPU time. Margins keep the filter's edges out of the crop, so
    # every value's variance is the filter's, known exactly.
    step = sigma / _SMOOTH_NODES
    radius = int(4 * _SMOOTH_NODES)
    nodes = [int(math.ceil(side / step)) + 2 for side in shape]
    noise = rng.standard_normal((nodes[0] + 2 * radius, nodes[1] + 2 * radius), dtype=np.float32)
    coarse = ndi.gaussian_filter(noise, _SMOOTH_NODES, truncate=4.0)[radius:-radius, radius:-radius]
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / _SMOOTH_NODES) ** 2)
    coarse /= np.float32(((kernel / kernel.sum()) ** 2).sum())  # the filtered noise's standard deviation
    for axis, size in enumerate(shape):
        position = (np.arange(size) + 0.5) / step
        index = position.astype(np.int64)
        weight = (position - index).astype(np.float32)
        if axis == 0:
            coarse = coarse[index] * (1 - weight)[:, None] + coarse[index + 1] * weight[:, None]
        else:
            coarse = coarse[:, index] * (1 - weight) + coarse[:, index + 1] * weight
    return coarse


def _line_gain(width: float, sigma: float) -> float:
    """1 / the peak of a ``width`` px line after a Gaussian blur of ``sigma``: the line's observed peak is 1,
    whatever its width and the blur (a thin blurred junction is still the brightest thing in the image)."""
    offsets = np.arange(-32, 32) + 0.5  # pixel centres; the border lies between two pixels
    profile = np.clip(width / 2 - (np.abs(offsets) - 0.5), 0, 1)
    if sigma > 0.05:
        profile = ndi.gaussian_filter1d(profile, sigma)
    return float(1 / max(profile.max(), 1e-6))


def _segments(shape: tuple[int, int], start: np.ndarray, end: np.ndarray, level: np.ndarray,
              fwhm: float) -> np.ndarray:
    """Straight strokes from ``start`` to ``end`` ((n, 2) row, col), peak ``level``, ``fwhm`` px thick."""
    canvas = np.zeros(shape, np.float32)
    if len(start) == 0:
        return canvas
    steps = int(math.ceil(2 * np.hypot(*(end - start).T).max())) + 2  # every half pixel
    t = np.linspace(0, 1, steps)[None, :, None]
    points = np.rint(start[:, None, :] + t * (end - start)[:, None, :]).astype(np.int64)
    values = np.broadcast_to(level[:, None], points.shape[:2])
    inside = (points[..., 0] >= 0) & (points[..., 0] < shape[0]) & (points[..., 1] >= 0) & (points[..., 1] < shape[1])
    np.maximum.at(canvas, (points[..., 0][inside], points[..., 1][inside]), values[inside])
    sigma = max(fwhm / 2.355, 0.4)
    delta = np.zeros(33)
    delta[16] = 1
    return ndi.gaussian_filter(canvas, sigma) / ndi.gaussian_filter1d(delta, sigma).max()


def _sample_border(rng: np.random.Generator, border: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Random border pixels, on average one per ``spacing`` px of border length (row, col arrays)."""
    rows, cols = np.nonzero(border)
    count = rng.poisson(len(rows) / 2 / spacing) if len(rows) else 0  # the border is 2 px across
    pick = rng.integers(len(rows), size=count) if count else np.zeros(0, np.int64)
    return rows[pick], cols[pick]


def _normals(tessellation: dict, cells: np.ndarray, neighbour: np.ndarray, rows, cols) -> np.ndarray:
    """Unit normals of the border at the given border pixels: the perpendicular bisector's normal of the two
    cells' seeds, mapped from cell space to the image (the warp is ignored: it is mild except when frayed)."""
    seeds, seed_of_label = tessellation["seeds"], tessellation["seed_of_label"]
    normal_cell = seeds[seed_of_label[neighbour[rows, cols]]] - seeds[seed_of_label[cells[rows, cols]]]
    normal = normal_cell @ tessellation["to_cell"]  # a plane's normal maps by the inverse transpose
    return normal / np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)


def _rotate(vectors: np.ndarray, angles: np.ndarray) -> np.ndarray:
    c, s = np.cos(angles), np.sin(angles)
    return np.column_stack([c * vectors[:, 0] - s * vectors[:, 1], s * vectors[:, 0] + c * vectors[:, 1]])


def _junction_line(shape, params, tessellation, border, neighbour, distance, rng, fields) -> np.ndarray:
    """The ZO-1 at the junctions, textured, with gaps and slow variation; observed peak ~1 after the blur."""
    cells = tessellation["cells"]
    texture = params["texture"]
    width = params["border_width_px"]
    half = np.float32(width / 2)
    edge = distance
    if texture == "frayed":
        # Thickness varying along the line, ragged edges.
        thickness = 1 + params["fray_width_variation"] * np.clip(_smooth_field(fields, shape, 4 * width + 4), -1, 1)
        half = np.maximum(half * thickness, 0.3)
        edge = distance + params["fray_edge_noise_px"] * _smooth_field(fields, shape, 2.0)
    line = np.clip(half - edge, 0, 1).astype(np.float32)

    if texture == "punctate":
        # Dots or dashes: blobs centred on random border pixels, confined to a band a little wider than the
        # line, so that long blobs become dashes along the border.
        length = params["punctate_dot_length_px"]
        rows, cols = _sample_border(rng, border, params["punctate_spacing_px"])
        impulses = np.zeros(shape, np.float32)
        np.maximum.at(impulses, (rows, cols), rng.uniform(0.6, 1.2, len(rows)).astype(np.float32))
        sigma = length / 2.355
        delta = np.zeros(65)
        delta[32] = 1
        blobs = ndi.gaussian_filter(impulses, sigma) / ndi.gaussian_filter1d(delta, sigma).max() ** 2
        band = np.clip(max(width * params["punctate_dot_width"], 1.5) / 2 - distance, 0, 1)
        line = np.maximum(params["punctate_line_level"] * line, np.minimum(blobs, 1.2) * band)
    elif texture == "spiked":
        # Short bright strokes across the border, at random places along it, over a weaker line.
        rows, cols = _sample_border(rng, border, params["spike_spacing_px"])
        normal = _rotate(_normals(tessellation, cells, neighbour, rows, cols), rng.normal(0, 0.2, len(rows)))
        length = params["spike_length_px"] * rng.uniform(0.7, 1.2, len(rows))
        centre = np.column_stack([rows, cols]) + normal * (length * rng.uniform(-0.15, 0.15, len(rows)))[:, None]
        start, end = centre - normal * length[:, None] / 2, centre + normal * length[:, None] / 2
        spikes = _segments(shape, start, end, rng.uniform(0.7, 1.1, len(rows)), params["spike_width_px"])
        line = np.maximum(params["spike_line_level"] * line, spikes)
    elif texture == "frayed":
        # Fine fibrils leaving the line at oblique angles, to either side.
        rows, cols = _sample_border(rng, border, params["fray_fibril_spacing_px"])
        normal = _normals(tessellation, cells, neighbour, rows, cols)
        side = np.where(rng.random(len(rows)) < 0.5, -1.0, 1.0)[:, None]
        direction = _rotate(normal * side, rng.uniform(-1.2, 1.2, len(rows)))
        length = params["fray_fibril_length_px"] * rng.uniform(0.4, 1.0, len(rows))
        start = np.column_stack([rows, cols]).astype(np.float64)
        level = params["fray_fibril_level"] * rng.uniform(0.6, 1.2, len(rows))
        line = np.maximum(line, _segments(shape, start, start + direction * length[:, None], level, 1.0))

    # Slow brightness change along the borders, then the gaps: a smooth field thresholded at the quantile
    # of its values on the border that leaves `gap_share` of the border below it.
    variation = _smooth_field(fields, shape, params["line_variation_scale_px"])
    line *= 1 + params["line_variation"] * np.clip(variation, -2, 2) / 2
    gap_field = _smooth_field(fields, shape, params["gap_scale_px"])
    if params["gap_share"] > 0 and border.any():
        threshold = np.quantile(gap_field[border], params["gap_share"])
        ramp = np.clip((gap_field - threshold) / 0.3 + 0.5, 0, 1)
        ramp = ramp * ramp * (3 - 2 * ramp)  # smoothstep: the line fades out and back in
        line *= params["gap_residual"] + (1 - params["gap_residual"]) * ramp
    return line * np.float32(_line_gain(width, params["blur_sigma_px"]))


def _nuclei(cells: np.ndarray, params: dict, long_axis_deg: float, rng: np.random.Generator):
    """One soft ellipse per cell near its centroid, drawn within the cell (vectorised over pixels through
    per-label lookups).

    Returns
    -------
    nucleus : (H, W) float32 in [0, 1], the nuclei (0 for cells without one)
    cloud : (H, W) float32 in [0, 1], a broad glow around each nucleus' centre (perinuclear haze)
    has_nucleus : (N + 1,) bool per label (index 0 unused)
    """
    height, width = cells.shape
    d = params["diameter_px"]
    n_cells = int(cells.max())
    flat = cells.ravel()
    area = np.bincount(flat, minlength=n_cells + 1).astype(np.float64)
    area[0] = 1
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    centre_row = np.bincount(flat, rows.ravel(), n_cells + 1) / area + rng.normal(0, 0.05 * d, n_cells + 1)
    centre_col = np.bincount(flat, cols.ravel(), n_cells + 1) / area + rng.normal(0, 0.05 * d, n_cells + 1)
    diameter = params["nucleus_diameter_share"] * d * rng.uniform(0.85, 1.15, n_cells + 1)
    # Nuclei lie along elongated cells.
    aspect = np.minimum(params["nucleus_aspect"] * math.sqrt(params["elongation"])
                        * rng.uniform(0.85, 1.15, n_cells + 1), 4.0)
    if params["elongation"] > 1.2:
        angle = np.radians(long_axis_deg + rng.normal(0, 15, n_cells + 1))
    else:
        angle = rng.uniform(0, np.pi, n_cells + 1)
    semi_long, semi_short = diameter / 2 * np.sqrt(aspect), diameter / 2 / np.sqrt(aspect)
    has_nucleus = rng.random(n_cells + 1) >= params["missing_nucleus_share"]
    brightness = np.where(has_nucleus, rng.uniform(0.6, 1.0, n_cells + 1), 0.0)

    drow, dcol = rows - centre_row[cells].astype(np.float32), cols - centre_col[cells].astype(np.float32)
    sin, cos = np.sin(angle).astype(np.float32)[cells], np.cos(angle).astype(np.float32)[cells]
    long_part = (drow * sin + dcol * cos) / semi_long.astype(np.float32)[cells]
    short_part = (drow * cos - dcol * sin) / semi_short.astype(np.float32)[cells]
    radius = np.sqrt(long_part**2 + short_part**2)
    # Soft edge about a pixel wide.
    nucleus = expit((1 - radius) * np.maximum(semi_short, 1.0).astype(np.float32)[cells] / 0.7)
    nucleus *= brightness.astype(np.float32)[cells]
    cloud = np.exp(-0.5 * (radius / 1.8) ** 2)
    return nucleus.astype(np.float32), cloud.astype(np.float32), has_nucleus


def _haze(cells, params, cloud, rng, fields) -> np.ndarray:
    """Diffuse cytoplasm: a level per cell, a low-frequency swell, fine mottling and the perinuclear cloud."""
    shape = cells.shape
    d = params["diameter_px"]
    level = params["haze"] * np.clip(1 + params["haze_cell_variation"] * rng.standard_normal(int(cells.max()) + 1),
                                     0.2, 2.5)
    haze = level.astype(np.float32)[cells] * (1 + 0.3 * np.clip(_smooth_field(fields, shape, 2 * d), -2, 2))
    haze *= np.maximum(1 + params["haze_texture"] * _smooth_field(fields, shape, 3.0), 0)
    return haze + params["perinuclear_haze"] * cloud


def _illumination(rng: np.random.Generator, shape: tuple[int, int], strength: float) -> np.ndarray:
    """A smooth multiplicative field, 1 at its brightest and 1 - ``strength`` at its darkest: a mix of
    vignetting around a random centre, a linear gradient and a broad random swell."""
    height, width = shape
    rows = np.linspace(-1, 1, height, dtype=np.float32)[:, None]
    cols = np.linspace(-1, 1, width, dtype=np.float32)[None, :]
    centre = rng.uniform(-0.7, 0.7, 2)
    angle = rng.uniform(0, 2 * np.pi)
    weights = rng.random(3)
    pattern = (weights[0] * ((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2)
               + weights[1] * (rows * math.sin(angle) + cols * math.cos(angle))
               + weights[2] * 0.5 * _smooth_field(rng, shape, 1.5 * max(shape)))
    pattern = (pattern - pattern.min()) / max(float(np.ptp(pattern)), 1e-9)
    return (1 - strength * pattern).astype(np.float32)


def _microscope(clean: np.ndarray, params: dict, photons: float, rng: np.random.Generator) -> np.ndarray:
    """PSF blur, photon (Poisson) and read (Gaussian) noise, JPEG if drawn, then [0, 1]."""
    image = clean
    if params["blur_sigma_px"] > 0.05:
        image = ndi.gaussian_filter(image, params["blur_sigma_px"], truncate=3.0)
    image = rng.poisson(np.maximum(image, 0) * photons).astype(np.float32) / np.float32(photons)
    if params["read_noise"] > 0:
        image += rng.normal(0, params["read_noise"], image.shape).astype(np.float32)
    if params["jpeg_quality"] is not None:
        image = _jpeg(_normalise(image), params["jpeg_quality"])
    return _normalise(image)


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """Through an 8-bit greyscale JPEG and back."""
    buffer = io.BytesIO()
    Image.fromarray(np.rint(image * 255).astype(np.uint8)).save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("L"), np.float32) / 255


def _normalise(image: np.ndarray) -> np.ndarray:
    """1st-99.8th percentiles to [0, 1], clipped (percentiles of every other pixel on large images: the same
    to a fraction of a grey level, at a quarter of the cost)."""
    sample = image[::2, ::2] if image.size > 512 * 512 else image
    low, high = np.percentile(sample, [1, 99.8])
    if high <= low:
        return np.zeros(image.shape, np.float32)
    return np.clip((image - low) / (high - low), 0, 1).astype(np.float32)


if __name__ == "__main__":  # a quick timing: python -m bbbcore.junction_generator
    import time

    for size, diameter in ((320, 80), (1024, 100)):
        times = []
        for index in range(5):
            began = time.perf_counter()
            generate((size, size), diameter_px=diameter, texture=TEXTURES[index % len(TEXTURES)], seed=index)
            times.append(time.perf_counter() - began)
        print(f"{size}x{size}, d={diameter}: median {np.median(times):.3f} s")
