"""Which channel holds the junction stain and which the nuclei: by name, else by content.

A junction stain (ZO-1 and the like) draws a network of thin bright lines along the
cell borders, often over a dimmer cytoplasm; a nuclear stain (DAPI, Hoechst) draws
separate compact blobs on a dark background. ``check_pick`` warns about wrong picks.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from skimage import filters

from .resize import block_mean

#: Fluorophores and reporters that labs use for the junction stain: weaker evidence than a stain's name.
FLUOROPHORE_NAMES = ("alexa 488", "alexa488", "alexa fluor 488", "af488", "a488", "fitc", "gfp", "egfp")
JUNCTION_NAMES = (
    "zo-1", "zo1", "zo 1", "tjp1", "occludin", "ocln", "claudin", "cldn", "ve-cad", "vecad", "ve cad",
    "cdh5", "cd31", "pecam", "junction",
) + FLUOROPHORE_NAMES
NUCLEAR_NAMES = ("dapi", "hoechst", "draq5", "sytox", "nuclei", "nucleus", "nuclear", "h33342")

_CLEAR_BLOBS, _CLEAR_NETWORK = 0.5, 0.3  # scores from which a channel clearly holds nuclei, borders
_TARGET_PX = 512  # long side of the plane that content_scores measures


def _normal(text: str) -> str:
    """Lower case, '_' and '-' read as spaces, runs of spaces as one."""
    return " ".join(re.sub(r"[_\-]+", " ", str(text).lower()).split())


def name_match(name: str | None) -> tuple[str | None, int]:
    """Role ("junction", "nuclear" or None) a channel name stands for, and how strongly.

    Strength 2 for a stain's name (ZO-1, DAPI), 1 for a fluorophore's (AF488, GFP),
    0 for no match or a name that holds both roles equally strongly (role None).
    """
    text = _normal(name or "")
    junction = max((1 if word in FLUOROPHORE_NAMES else 2 for word in JUNCTION_NAMES if _normal(word) in text),
                   default=0)
    nuclear = 2 if any(_normal(word) in text for word in NUCLEAR_NAMES) else 0
    if junction == nuclear:
        return None, 0
    return ("junction", junction) if junction > nuclear else ("nuclear", nuclear)


def role_by_name(name: str | None) -> str | None:
    """"junction", "nuclear" or None for a channel name (generic names such as "Ch1" or "green" give None)."""
    return name_match(name)[0]


@dataclass(frozen=True)
class ContentScores:
    """How one channel looks.

    Attributes
    ----------
    network : float
        In [0, 1]: how much the bright structure forms one connected mesh enclosing cells.
    blobs : float
        In [0, 1]: how much the channel is separate compact blobs on a dark background.
    empty : bool
        No usable signal: flat, noise only, a handful of specks, or a few grey levels.
    """

    network: float
    blobs: float
    empty: bool


def _small(plane: np.ndarray) -> np.ndarray:
    """The plane as float32, block-averaged to at most about ``_TARGET_PX`` on the long side."""
    small = np.asarray(plane, np.float32)
    factor = int(np.ceil(max(small.shape) / _TARGET_PX))
    if factor > 1:
        h, w = small.shape[0] // factor * factor, small.shape[1] // factor * factor
        small = block_mean(small[:h, :w], (factor, factor))
    return np.nan_to_num(small)


def _giant_share(mask: np.ndarray) -> tuple[float, np.ndarray, int]:
    """Share of the foreground in its largest 8-connected piece, the labels and their count."""
    labels, count = ndi.label(mask, np.ones((3, 3), bool))
    sizes = np.bincount(labels.ravel())[1:]
    return (float(sizes.max() / sizes.sum()) if count else 0.0), labels, count


def _mesh(mask: np.ndarray, min_hole: int = 8) -> float:
    """Largest-piece share of the foreground times the share of 6 enclosed holes it holds (0..1)."""
    giant, _, _ = _giant_share(mask)
    holes, _ = ndi.label(~mask)
    sizes = np.bincount(holes.ravel())
    sizes[0] = 0
    sizes[np.concatenate([holes[0], holes[-1], holes[:, 0], holes[:, -1]])] = 0  # open to the edge
    return giant * min(1.0, np.count_nonzero(sizes >= min_hole) / 6)


def _compact_share(labels: np.ndarray, count: int) -> float:
    """Share of the foreground area in compact pieces: ellipse-like fill and not elongated (moments)."""
    if count == 0:
        return 0.0
    rows, cols = np.nonzero(labels)
    which = labels[rows, cols]
    n = np.bincount(which, minlength=count + 1).astype(float)[1:]
    ry, rx, ryy, rxx, rxy = (np.bincount(which, weights=v, minlength=count + 1)[1:] / np.maximum(n, 1)
                             for v in (rows, cols, rows * rows, cols * cols, rows * cols))
    vy, vx, cxy = ryy - ry * ry, rxx - rx * rx, rxy - ry * rx
    root = np.sqrt(np.maximum(vy * vx - cxy**2, 0))
    spread = np.sqrt(np.maximum((vy - vx) ** 2 + 4 * cxy**2, 0))
    low, high = (vy + vx - spread) / 2, (vy + vx + spread) / 2
    fill = n / np.maximum(4 * np.pi * root, 1e-9)
    compact = (fill > 0.7) & (fill < 1.5) & (low > 0.09 * np.maximum(high, 1e-9))
    counted = n >= 4  # specks say nothing about shape
    return float(n[compact & counted].sum() / max(n[counted].sum(), 1))


def content_scores(plane: np.ndarray) -> ContentScores:
    """Score one 2-D channel for a border network, compact blobs and emptiness.

    The plane (any dtype) is block-averaged to about 512 px on the long side and
    smoothed (sigma 1 px). Levels run from the dark floor (5th percentile) to
    Otsu's threshold. ``network`` is the best, over levels at 1/4, 1/2 and 3/4
    of the way, of the share of the foreground in its largest connected piece
    times the number of enclosed holes (up to 6). ``blobs`` multiplies the share
    of Otsu's foreground in compact pieces, the share not in the largest piece,
    and how dark the field away from them is (below the 1/4 level, or the noise).
    ``empty``: flat, noise over a third of the 5-99th percentile span, an Otsu
    foreground under 0.5 % (a few specks, overlay text), or under 8 integer levels.
    """
    plane = np.asarray(plane)
    if plane.ndim != 2:
        raise ValueError(f"content_scores needs one 2-D channel, got shape {plane.shape}")
    small = _small(plane)
    smooth = ndi.gaussian_filter(small, 1.0)
    floor, top = np.percentile(smooth, [5, 99])
    if not top > floor:
        return ContentScores(0.0, 0.0, True)
    residual = small - smooth
    noise = 1.4826 * np.median(np.abs(residual - np.median(residual)))
    otsu = filters.threshold_otsu(smooth)
    foreground = smooth > otsu
    few_levels = plane.dtype.kind in "ui" and top - floor < 8
    if few_levels or noise > 0.35 * (top - floor) or foreground.mean() < 0.005:
        return ContentScores(0.0, 0.0, True)
    network = max(_mesh(smooth > floor + f * (otsu - floor)) for f in (0.25, 0.5, 0.75))
    giant, labels, count = _giant_share(foreground)
    far = ~ndi.binary_dilation(foreground, iterations=4)  # away from the blobs' blurred rims
    dim = floor + max(0.25 * (otsu - floor), 2 * noise)  # 2 sd of the pixel noise: about 6 sd once smoothed
    dark = np.count_nonzero(far & (smooth <= dim)) / max(np.count_nonzero(far), 1)
    blobs = _compact_share(labels, count) * (1 - giant) * float(np.clip((dark - 0.8) / 0.1, 0, 1))
    return ContentScores(round(float(network), 3), round(float(blobs), 3), False)


@dataclass(frozen=True)
class ChannelPick:
    """The junction and nuclear channels of a multichannel image.

    Attributes
    ----------
    junction : int
        Index of the junction channel.
    nuclear : int or None
        Index of the nuclear channel; None when no channel holds nuclei.
    how : str
        "name" when the junction channel was found by its name, else "content".
    reason : str
        The choice in words, for logs and the dashboard.
    """

    junction: int
    nuclear: int | None
    how: str
    reason: str


def _stack(planes: np.ndarray, channel_names: list[str] | None) -> tuple[np.ndarray, list[str]]:
    """(H, W, C) channels last (a 2-D plane is one channel) and one name per channel, "" where none."""
    stack = np.asarray(planes)
    stack = stack[..., None] if stack.ndim == 2 else stack
    if stack.ndim != 3:
        raise ValueError(f"expected an (H, W, C) stack of channels, got shape {stack.shape}")
    names = ["" if x is None else str(x) for x in list(channel_names or [])[: stack.shape[-1]]]
    return stack, names + [""] * (stack.shape[-1] - len(names))


def _label(index: int, names: list[str]) -> str:
    """"'DAPI' (1)" when the channel has a name, else "1"."""
    return f"'{names[index]}' ({index})" if names[index].strip() else str(index)


def _by_name(names: list[str], role: str, exclude: int | None = None) -> int | None:
    """The channel whose name stands for ``role`` most strongly (the first on a tie), or None."""
    found = [(name_match(name)[1], -i) for i, name in enumerate(names) if i != exclude and role_by_name(name) == role]
    return -max(found)[1] if found else None


def _same(stack: np.ndarray, a: int, b: int) -> bool:
    """Whether two channels hold the same picture (a gray image stored as RGB)."""
    x, y = _small(stack[..., a]).ravel(), _small(stack[..., b]).ravel()
    return bool(np.array_equal(x, y) or (x.std() > 0 and y.std() > 0 and np.corrcoef(x, y)[0, 1] > 0.98))


def pick_channels(planes: np.ndarray, channel_names: list[str] | None = None) -> ChannelPick:
    """Pick the junction and nuclear channels of an (H, W, C) stack, channels last.

    Names come first, each role on its own (a stain's name beats a fluorophore's; "Ch1"
    or "green" say nothing). A role no name settles comes from the content of the other
    channels: the junction is the non-empty channel with the highest ``network - blobs``
    (on a tie, as in a gray image stored as RGB: green in RGB, else channel 0); the
    nuclear channel is the most blob-like other non-empty channel if its blobs score is
    0.5 or more and it is not a copy of the junction channel, else None.
    """
    stack, names = _stack(planes, channel_names)
    n = stack.shape[-1]
    junction = _by_name(names, "junction")
    nuclear = _by_name(names, "nuclear", exclude=junction) if n > 1 else None
    score = functools.cache(lambda i: content_scores(stack[..., i]))
    how = "content" if junction is None else "name"
    said = [f"{role} {_label(i, names)}" for role, i in (("junction", junction), ("nuclear", nuclear)) if i is not None]
    parts = [" and ".join(said) + " by name"] if said else []
    if junction is None:  # the most border-like non-empty channel; on a tie the default (green in RGB)
        default = 1 if n in (3, 4) else 0
        candidates = [i for i in range(n) if i != nuclear and not score(i).empty] or \
            [i for i in (default, *range(n)) if i != nuclear][:1]
        junction = max(candidates, key=lambda i: (round(score(i).network - score(i).blobs, 2), i == default, -i))
        kind = ("is empty, as are all others" if score(junction).empty else "is a network of borders"
                if score(junction).network >= _CLEAR_NETWORK else "is the most border-like")
        parts.append(f"by content: channel {_label(junction, names)} {kind}")
    if nuclear is None and n > 1:
        others = [i for i in range(n) if i != junction and not score(i).empty
                  and score(i).blobs >= _CLEAR_BLOBS and not _same(stack, i, junction)]
        nuclear = max(others, key=lambda i: score(i).blobs, default=None)
        found = "no other channel holds blobs (nuclei)" if nuclear is None else \
            f"channel {_label(nuclear, names)} holds blobs (nuclei)"
        parts.append(found if how == "content" else f"by content: {found}")
    return ChannelPick(junction, nuclear, how, "; ".join(parts))


def check_pick(planes: np.ndarray, junction: int, nuclear: int | None,
               channel_names: list[str] | None = None) -> list[str]:
    """Plain-language warnings, one line per obviously wrong channel choice; none when it is plausible.

    Warns when the junction channel is empty, or clearly holds blobs (nuclei)
    while another channel looks clearly more like borders (by 0.5 in
    ``network - blobs``); when the nuclear channel is empty, or clearly holds
    borders while another channel clearly holds nuclei. A swapped pair gives one line.
    """
    stack, names = _stack(planes, channel_names)
    n = stack.shape[-1]
    if not 0 <= junction < n or (nuclear is not None and not 0 <= nuclear < n):
        raise ValueError(f"channels {junction} and {nuclear}: the image has {n} channel(s)")
    scores = [content_scores(stack[..., i]) for i in range(n)]
    like = [s.network - s.blobs for s in scores]
    lead = 0.0 if scores[junction].empty else 0.5  # how much more border-like another channel must look
    border = max((i for i in range(n) if i != junction and not scores[i].empty and scores[i].blobs < _CLEAR_BLOBS
                  and like[i] >= like[junction] + lead), key=like.__getitem__, default=None)
    j, alt = _label(junction, names), "" if border is None else _label(border, names)
    set_it = f"; channel {alt} looks like the junction stain: set the junction channel" if alt else ""
    lines = []
    if scores[junction].empty:
        lines.append(f"the junction channel {j} is empty (no signal){set_it}")
    elif scores[junction].blobs >= _CLEAR_BLOBS and border is not None:
        if border == nuclear:
            return [f"the junction channel {j} looks like nuclei and the nuclear channel {alt} looks like "
                    "borders: swap the junction and nuclear channels"]
        lines.append(f"the junction channel {j} looks like nuclei, not borders{set_it}")
    if nuclear is None:
        return lines
    nucleus = max((i for i in range(n) if i not in (junction, nuclear) and scores[i].blobs >= _CLEAR_BLOBS),
                  key=lambda i: scores[i].blobs, default=None)
    k = _label(nuclear, names)
    if scores[nuclear].empty:
        lines.append(f"the nuclear channel {k} is empty (no signal): choose another nuclear channel or none")
    elif scores[nuclear].network >= _CLEAR_NETWORK and scores[nuclear].blobs < 0.2 and nucleus is not None:
        lines.append(f"the nuclear channel {k} looks like borders, not nuclei; "
                     f"channel {_label(nucleus, names)} looks like nuclei: set the nuclear channel")
    return lines
