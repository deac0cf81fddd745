"""The scale an image is segmented at: its cells brought to the model's training diameter.

Scale comes from the cells, not from the pixel size (which only sets the µm
columns): an image whose typical cell diameter is ``d`` px is resized by
``zoom = card.diameter_px / d`` before the network. ``d`` is given (``--diameter``,
the sample sheet's ``diameter_px``) or estimated per image by
:func:`estimate_zoom`: the network runs on a centre crop at a ladder of zooms;
where the zoom is right its boundary map is most certain (too small, cells blur
into texture; too large, it cuts cells into pieces of the training size), and
the cells it draws there give the diameter. When two trials far apart in zoom are
about as sure (a field of small cells can be drawn as clusters of a dozen), the
spacing of the nuclei, when there is a nuclear channel, says which one is right.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .instances import WatershedSettings, cells_from_boundary, touches_edge
from .resize import resize

#: Zooms tried when the diameter is estimated (the right one lies within a factor 1.5 of one of them,
#: and the cells drawn at the surest one correct it by up to that factor).
ZOOM_LADDER = (1 / 8, 1 / 4, 1 / 2, 1.0, 2.0, 4.0, 8.0)
#: Tried first: when 1 is the surest of these and its cells have the training diameter, the rest is skipped.
NEAR_ONE = (1 / 2, 1.0, 2.0)
#: An estimated zoom this close to 1 counts as 1 (the model was trained with zooms 0.8-1.25): images
#: at the training scale are segmented exactly as before.
SNAP = 0.15
#: Zooms the shipped model handles (cells 1/8 to 8 times its training diameter).
ZOOM_RANGE = (1 / 8, 8.0)
#: Enough whole cells in a trial to trust its diameter; a trial with fewer wins only when this much surer.
MIN_CELLS = 5
CLEARLY_SURER = 0.05
#: Side of the centre crop of each trial, in pixels of the network's grid (about 5 x 5 cells when right),
#: and of the two refining trials (about 9 x 9 cells: a steadier median).
CROP_PX = 384
REFINE_CROP_PX = 768
#: An image at least two crops across (at the training scale) is estimated at three places along its
#: diagonal (these fractions of its height and width) and the median taken.
MANY_CROPS_AT = (0.25, 0.5, 0.75)
#: Nuclei decide between two about-as-sure trials only when one lies this much nearer (as a factor) to
#: the diameter their spacing gives: that diameter is rough (touching nuclei count as one, fragments of a
#: dim nucleus as several: within 35 % on the sample images), the trials it separates are 4x apart.
NUCLEI_CLEARLY_NEARER = 2.0
#: The nuclei are counted in a centre window this large at most (hundreds of nuclei at 10x; a 48 MP
#: image's would cost a second and say no more).
NUCLEI_WINDOW_PX = 2048
#: The diameter estimate joins neighbours across borders the network gives a mean probability under this,
#: whatever the card's own ``merge_threshold``: spurious splits (perpendicular spikes read as borders) bias
#: the median diameter down, and the estimator was validated at 0.3 (benchmarks/README.md, issue 15).
#: The cells themselves are drawn with the card's setting (0.1 since model 2.1).
ESTIMATE_MERGE_THRESHOLD = 0.3


@dataclass(frozen=True)
class Scale:
    """How an image is resized for the network.

    Attributes
    ----------
    zoom : float, the resize factor (1: the image's cells already have the training diameter)
    diameter_used_px : float, the cell diameter the image is treated as having (training diameter / zoom)
    diameter_estimated_px : float or None, the estimate (None when the diameter was given)
    warning : str or None, one line when the estimate is outside what the model handles or failed
    """

    zoom: float
    diameter_used_px: float
    diameter_estimated_px: float | None = None
    warning: str | None = None


def diameter_source(given_px: float | None, estimated_px: float | None) -> str:
    """Where an image's cell diameter came from: ``"given"``, ``"estimated"``, or ``"model default"``
    (nothing given and no cells to estimate from: a blank image, or one the model finds nothing in)."""
    if given_px is not None and given_px > 0:
        return "given"
    return "estimated" if estimated_px is not None else "model default"


def zoom_for(card, diameter_px: float) -> float:
    """The zoom that brings cells of ``diameter_px`` to the card's training diameter."""
    return card.diameter_px / float(diameter_px)


def choose_scale(junction: np.ndarray, model, *, diameter_px: float | None = None, name: str = "<image>",
                 nuclei: np.ndarray | None = None) -> Scale:
    """The scale of one image: from the given diameter, else estimated (:func:`estimate_zoom`).

    ``nuclei``: the nuclear channel on the junction's grid, if any (a tie-break, :func:`nuclei_spacing_px`).
    """
    card = model.card
    if diameter_px is not None and diameter_px > 0:
        return Scale(zoom_for(card, diameter_px), float(diameter_px))
    zoom, estimated = estimate_zoom(junction, model, nuclei=nuclei)
    low, high = ZOOM_RANGE
    warning = None
    if estimated is None:
        warning = (f"{name}: the cell diameter could not be estimated (no cells found at any scale); segmented at "
                   f"the model's scale: if the cells look wrong, give their diameter in pixels (--diameter, or "
                   "diameter_px in the sample sheet)")
        zoom = 1.0
    elif not low <= zoom <= high:
        zoom = float(np.clip(zoom, low, high))
        warning = (f"{name}: estimated cell diameter {estimated:.0f} px is outside what model {card.name} handles "
                   f"({card.diameter_px / high:.0f}-{card.diameter_px / low:.0f} px); segmented as "
                   f"{card.diameter_px / zoom:.0f} px: check the cells, or give the diameter (--diameter, or "
                   "diameter_px in the sample sheet)")
    elif abs(zoom - 1.0) <= SNAP:
        zoom = 1.0
    return Scale(zoom, card.diameter_px / zoom, estimated, warning)


def estimate_zoom(junction: np.ndarray, model, *, nuclei: np.ndarray | None = None) -> tuple[float, float | None]:
    """The zoom at which the network is surest of the borders, and the cell diameter it implies.

    ``nuclei`` (optional, the nuclear channel on the junction's grid) decides between trials that are
    about as sure but far apart in zoom.

    Returns
    -------
    zoom : float
        The training diameter over the estimated diameter (1.0 when nothing was found).
    diameter_px : float or None
        The estimated typical cell diameter in the image's pixels.
    """
    card = model.card
    target = card.diameter_px * card.input_scale  # the training diameter on the network's grid
    height, width = junction.shape[:2]
    if min(height, width) * card.input_scale < 2 * CROP_PX:
        centres = [(height // 2, width // 2)]
    else:
        # A large image: the ladder at three crops along the diagonal, the median taken (one crop can sit
        # on a scale bar, a bubble or a stitching seam), refined once. The trials that shrink the image
        # cover all of it: they run once.
        centres = [(int(height * f), int(width * f)) for f in MANY_CROPS_AT]
    done: dict = {}
    found = [(choice, centre) for centre in centres
             if (choice := _first_choice(junction, model, nuclei, centre, done)) is not None]
    if not found:
        return 1.0, None
    # By the cell diameter each implies in the image's pixels; the lower middle of an even count.
    found.sort(key=lambda item: item[0][1] / (card.input_scale * item[0][0]))
    (zoom, diameter, settled), centre = found[(len(found) - 1) // 2]
    if not settled:
        zoom = _refined(junction, model, centre, done, zoom, diameter)
    else:
        zoom *= target / diameter
    return zoom, card.diameter_px / zoom


def _first_choice(junction: np.ndarray, model, nuclei: np.ndarray | None, centre: tuple[int, int],
                  done: dict) -> tuple[float, float, bool] | None:
    """The ladder's choice at the crops centred at ``centre``: (zoom, cell diameter on the network's grid
    there, settled), settled when the zoom needs no refining (the training scale); None when no trial
    found a cell. ``done`` keeps maps by crop (and the nuclei's spacing, once found)."""
    card = model.card
    settings = _estimate_settings(card)
    target = card.diameter_px * card.input_scale
    trials = [(zoom, maps) for zoom in NEAR_ONE if (maps := _crop_maps(junction, model, zoom, centre, done)) is not None]
    if (diameter := _diameter_if_surest_at_one(trials, settings, target)) is not None:
        return 1.0, diameter, True  # the training scale: three trials
    trials += [(zoom, maps) for zoom in ZOOM_LADDER
               if zoom not in NEAR_ONE and (maps := _crop_maps(junction, model, zoom, centre, done)) is not None]
    # Surest first: the surest trial with enough whole cells gives the diameter, unless a trial finding
    # fewer (a field of one or two cells, as at 63x) is clearly surer; a wrong zoom finds no whole cell
    # (blur) or is less sure (cells cut into pieces of the training size).
    first_any = first_fitting = first_many = None
    ranked = sorted(((_certainty(m), z, m) for z, m in trials), key=lambda t: -t[0])
    less_sure = []
    for index, (certainty, zoom, maps) in enumerate(ranked):
        diameter, count = _median_diameter(maps, settings)
        if count and first_any is None:
            first_any = (certainty, zoom, diameter)
        # Cells of about the training diameter (within a ladder step): the network is at its scale there.
        # A field shrunk to texture can leave it sure of one huge "cell"; that trial is not.
        if count and first_fitting is None and 1 / 1.5 <= diameter / target <= 1.5:
            first_fitting = (certainty, zoom, diameter)
        if count >= MIN_CELLS:
            first_many, less_sure = (certainty, zoom, diameter), ranked[index + 1:]
            break
    if first_any is None:
        return None
    if first_many is None:
        chosen = first_fitting or first_any
    elif first_fitting is not None and first_fitting[0] - first_many[0] > CLEARLY_SURER:
        chosen = first_fitting  # a field of a few large cells, at their scale
    else:
        chosen = _nearest_to_nuclei(first_many, less_sure, nuclei, settings, card.input_scale, done)
    _, zoom, diameter = chosen
    return zoom, diameter, zoom == 1.0 and abs(target / diameter - 1.0) <= SNAP


def _refined(junction: np.ndarray, model, centre: tuple[int, int], done: dict, zoom: float, diameter: float) -> float:
    """The zoom corrected by the cells drawn at it towards the training diameter (a ladder step at most),
    and once more from a trial at the corrected zoom."""
    card = model.card
    settings = _estimate_settings(card)
    target = card.diameter_px * card.input_scale
    for _ in range(2):
        zoom *= float(np.clip(target / diameter, 1 / 1.5, 1.5))
        maps = _crop_maps(junction, model, zoom, centre, done, crop_px=REFINE_CROP_PX, quick=False)
        again, count = _median_diameter(maps, settings) if maps is not None else (None, 0)
        if not count:
            break
        diameter = again
    return zoom * float(np.clip(target / diameter, 1 / 1.5, 1.5))


def nuclei_spacing_px(nuclei: np.ndarray) -> float | None:
    """The cell diameter (px) the nuclei's spacing gives in a confluent field: one nucleus per cell.

    Nuclei are the connected parts of the smoothed channel above Otsu's threshold, specks (under a
    fifth of the median part) dropped; no size in pixels is assumed, so it holds at any magnification.
    None with fewer than :data:`MIN_CELLS` nuclei or a flat channel.
    """
    from skimage.filters import threshold_otsu

    plane = ndi.gaussian_filter(np.asarray(nuclei, np.float32), 1.0)
    if np.ptp(plane) == 0:
        return None
    found, n = ndi.label(plane > threshold_otsu(plane))
    sizes = np.bincount(found.ravel())[1:]
    count = int(np.count_nonzero(sizes >= 0.2 * np.median(sizes))) if n else 0
    return float(np.sqrt(4 * plane.size / (np.pi * count))) if count >= MIN_CELLS else None


def _nearest_to_nuclei(chosen: tuple, others: list, nuclei: np.ndarray | None, settings: WatershedSettings,
                       input_scale: float, done: dict) -> tuple:
    """``chosen`` (certainty, zoom, diameter), or a trial about as sure whose cells are clearly nearer the
    nuclei's spacing (trials 4x apart in zoom can both draw cells of the training size: one of them
    clusters of a dozen real cells)."""
    if nuclei is None:
        return chosen
    rivals = []
    for certainty, zoom, maps in others:
        if chosen[0] - certainty > CLEARLY_SURER:
            break  # sorted surest first
        diameter, count = _median_diameter(maps, settings)
        if count >= MIN_CELLS:
            rivals.append((certainty, zoom, diameter))
    if rivals and "nuclei spacing" not in done:  # once per image, whichever crop asks first
        done["nuclei spacing"] = nuclei_spacing_px(_centre_window(nuclei, NUCLEI_WINDOW_PX))
    spacing = done["nuclei spacing"] if rivals else None
    if spacing is None:
        return chosen

    def distance(trial: tuple) -> float:  # |log| of the trial's cell diameter, in image px, over the spacing
        _, zoom, diameter = trial
        return abs(np.log(diameter / (input_scale * zoom) / spacing))

    nearest = min(rivals, key=distance)
    return nearest if distance(nearest) < distance(chosen) - np.log(NUCLEI_CLEARLY_NEARER) else chosen


def _centre_window(plane: np.ndarray, side: int) -> np.ndarray:
    """The centre ``side`` x ``side`` window of a plane (all of it when smaller)."""
    top, left = max(0, (plane.shape[0] - side) // 2), max(0, (plane.shape[1] - side) // 2)
    return plane[top:top + side, left:left + side]


def _certainty(maps: np.ndarray) -> float:
    """How sure the network is of its borders: mean of |2p - 1| over the boundary map."""
    return float(np.mean(np.abs(2.0 * maps[..., 0] - 1.0)))


def _diameter_if_surest_at_one(trials: list, settings: WatershedSettings, target: float) -> float | None:
    """The cells' diameter at zoom 1 when zoom 1 is the surest of its neighbours and that diameter is the training one."""
    if len(trials) != len(NEAR_ONE) or max(trials, key=lambda t: _certainty(t[1]))[0] != 1.0:
        return None
    diameter, count = _median_diameter(dict(trials)[1.0], settings)
    return diameter if count >= MIN_CELLS and abs(target / diameter - 1.0) <= SNAP else None


def _crop_maps(junction: np.ndarray, model, zoom: float, centre: tuple[int, int], done: dict, *, crop_px: int = 0,
               quick: bool = True) -> np.ndarray | None:
    """The network's maps of a crop around ``centre`` resized by ``zoom`` (None when the image is too small for it).

    ``done`` holds the maps of the crops already predicted, by position, size and zoom.

    ``quick``: one pass with little context, enough to say how sure the borders are; the refining
    trials, whose cells set the zoom, run as the segmentation does.
    """
    card = model.card
    grid = card.input_scale * zoom
    if min(junction.shape) * grid < 2 * 2**card.depth:
        return None
    side = int(np.ceil((crop_px or CROP_PX) / grid))
    top = int(np.clip(centre[0] - side // 2, 0, max(0, junction.shape[0] - side)))
    left = int(np.clip(centre[1] - side // 2, 0, max(0, junction.shape[1] - side)))
    key = (top, left, side, zoom, quick)
    if key not in done:
        crop = resize(junction[top:top + side, left:left + side], grid)
        done[key] = model.predict_tiles(crop, context=32, flips=1) if quick else model.predict_tiles(crop)
    return done[key]


def _estimate_settings(card) -> WatershedSettings:
    """The card's watershed settings on the network's grid, with the estimate's merge threshold."""
    return WatershedSettings.from_card(card, {"merge_threshold": ESTIMATE_MERGE_THRESHOLD}).scaled(card.input_scale)


def _median_diameter(maps: np.ndarray, settings: WatershedSettings) -> tuple[float | None, int]:
    """The typical cell diameter (grid px) the maps give, and how many whole cells it rests on.

    With :data:`MIN_CELLS` whole cells or more: their median equivalent diameter. With fewer (a field
    of a few large cells, as at 63x, where the big cells are the ones the edge cuts): the diameter of
    the mean cell area, counting each cell the edge cuts as half a cell, so the cut cells count too.
    """
    labels = cells_from_boundary(maps[..., 0], settings, cell_distance=maps[..., 1] if maps.shape[-1] > 1 else None)
    edge = touches_edge(labels)
    areas = np.bincount(labels.ravel())
    ids = [i for i in range(1, labels.max() + 1) if areas[i]]
    inner = areas[[i for i in ids if not edge[i]]]
    if len(inner) >= MIN_CELLS:
        return float(np.median(np.sqrt(4 * inner / np.pi))), len(inner)
    n_cut = len(ids) - len(inner)
    if not len(inner) and n_cut < 2:
        return None, 0
    mean_area = areas[ids].sum() / (len(inner) + 0.5 * n_cut)
    return float(np.sqrt(4 * mean_area / np.pi)), max(len(inner), 1)
