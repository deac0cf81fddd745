"""Truth cells from hand-drawn outline annotations.

One function, :func:`outline_to_cells`, turns an outline image into a labels
image of truth cells. Training, ``evaluate`` and the tests all call it, so the
rules below hold everywhere:

1. Outline pixels are the non-zero pixels of the annotation (1-px polygons).
2. Candidate cells are the 4-connected regions of non-outline pixels.
3. The unannotated remainder is dropped: every region larger than
   ``max_area_fraction`` of the image (un-drawn space that leaks around the
   annotated cells and out of the frame; the largest annotated BBB cell is
   5.7 % of a 1344 x 1024 frame, the remainder 11-44 %).
4. Slivers (the thin gap between two neighbours' double line) are dropped: a
   region whose largest inscribed disc has a radius below ``min_thickness`` px.
5. Specks are dropped: regions smaller than ``min_area`` px (at 10x a BBB
   cell is 5,800 px or more; the slivers and specks of the shared annotations
   are all below 2,600 px).
6. The outline pixels, dropped slivers, and unknown pixels lying within
   ``outline_reach`` px of two different cells are given to the nearest kept
   cell, so annotated neighbours touch, as model cells do.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from skimage import measure, segmentation

from . import config
from .errors import AnnotationError, read_input
from .polygons import rasterise_polygons

#: Thresholds of the truth-cell rule (pixels at the annotation's own scale).
OUTLINE_RULES = {
    "min_area": 3000,
    "min_thickness": 6.0,
    "max_area_fraction": 0.08,
    "outline_reach": 4,
}


def outline_to_cells(
    outline: np.ndarray,
    *,
    min_area: int = OUTLINE_RULES["min_area"],
    min_thickness: float = OUTLINE_RULES["min_thickness"],
    max_area_fraction: float = OUTLINE_RULES["max_area_fraction"],
    outline_reach: int = OUTLINE_RULES["outline_reach"],
) -> np.ndarray:
    """Turn a 1-px outline annotation into a labels image of truth cells.

    Parameters
    ----------
    outline : (H, W) array
        Non-zero on the drawn outlines, zero elsewhere.
    min_area, min_thickness, max_area_fraction, outline_reach
        The thresholds of the rule in the module docstring.

    Returns
    -------
    labels : (H, W) int32 array
        1..N for the truth cells, 0 where the truth is unknown.
    """
    outline = np.asarray(outline)
    if outline.ndim == 3:
        outline = outline.max(axis=-1)
    if outline.ndim != 2:
        raise ValueError(f"outline must be a 2-D image, got shape {outline.shape}")
    drawn = outline > 0
    regions = measure.label(~drawn, connectivity=1)
    n_pixels = drawn.size
    keep = np.zeros(regions.max() + 1, dtype=bool)
    for region in measure.regionprops(regions):
        if region.area > max_area_fraction * n_pixels:
            continue
        if region.area < min_area:
            continue
        crop = np.pad(region.image, 1)
        if ndi.distance_transform_edt(crop).max() < min_thickness:
            continue
        keep[region.label] = True
    cells = np.where(keep[regions], regions, 0)
    cells, _, _ = segmentation.relabel_sequential(cells)
    if outline_reach > 0:
        # Outline pixels and dropped slivers are given to the closest cell, but
        # never spread into the unknown remainder.
        grown = segmentation.expand_labels(cells, distance=outline_reach)
        sizes = np.bincount(regions.ravel())
        sliver = (sizes <= max_area_fraction * n_pixels) & ~keep
        sliver[0] = False
        # Unknown pixels squeezed between two different cells (an open sliver
        # between neighbours' double line) are claimed too.
        size = 2 * outline_reach + 1
        high = ndi.maximum_filter(grown, size=size)
        low = ndi.minimum_filter(np.where(grown > 0, grown, np.iinfo(grown.dtype).max), size=size)
        between = (grown > 0) & (high != low) & (low != np.iinfo(grown.dtype).max)
        claimable = drawn | sliver[regions] | between
        cells = np.where((cells == 0) & claimable, grown, cells)
    return cells.astype(np.int32)


def read_outline(path: str | Path) -> np.ndarray:
    """Read an outline annotation image (PNG/TIFF) as a boolean array."""
    from .io import read_array

    array = read_array(path)
    if array.ndim == 3:
        array = array.max(axis=-1)
    drawn = array > 0
    if not drawn.any():
        raise AnnotationError(Path(path).name, "the annotation has no outline pixels")
    return drawn


def read_truth_cells(path: str | Path, **rules) -> np.ndarray:
    """Read an outline annotation file and return its truth cells."""
    cells = outline_to_cells(read_outline(path), **rules)
    if cells.max() == 0:
        raise AnnotationError(Path(path).name, "no closed cell outline was found")
    return cells


# --------------------------------------------------------------------------
# Hand-drawn polygons (Labelbox exports, GeoJSON) -> labels images
# --------------------------------------------------------------------------

@dataclass
class PolygonAnnotation:
    """The polygons one person drew on one image.

    Attributes
    ----------
    image : str
        The annotated image's file name (``Labeled Data``'s last path part).
    annotator : str
        ``Created By``, or "" when the file does not say.
    polygons : list of (n, 2) float arrays
        ``x, y`` vertices in pixels (pixel-edge convention of
        :mod:`bbbcore.polygons`), one per cell, in drawing order.
    """

    image: str
    annotator: str
    polygons: list
    #: Where each polygon was in the file ("record 3, cell 7", "feature 12"), for messages.
    origins: list = field(default_factory=list)

    def to_labels(self, shape: tuple[int, int]) -> np.ndarray:
        """Rasterise: cell ``i`` (1-based, drawing order) -> label ``i``."""
        return rasterise_polygons(self.polygons, shape)

    def origin(self, index: int) -> str:
        """Where polygon ``index`` (0-based) was in the file, e.g. ``"record 3, cell 7"``."""
        return self.origins[index] if index < len(self.origins) else f"cell {index + 1}"

    def labels_shape(
        self,
        source: str,
        image_shape: tuple[int, int] | None = None,
        *,
        max_megapixels: float = config.MAX_MEGAPIXELS,
    ) -> tuple[int, int]:
        """The (height, width) to rasterise into, checked before anything is allocated.

        Parameters
        ----------
        source : str
            The annotation file's name, for messages.
        image_shape : (height, width), optional
            The annotated image's size: every polygon must lie within it
            (1 px of slack for outlines drawn on the edge).
        max_megapixels : float
            Without the image, the polygons' extent (:meth:`extent`) must
            stay within this many megapixels, as an image must.

        Raises
        ------
        AnnotationError
            One line naming the file, the image, the polygon and the problem.
        """
        if not self.polygons:
            return image_shape or (0, 0)
        if image_shape is not None:
            height, width = image_shape
            for index, points in enumerate(self.polygons):
                outside = (points[:, 0] > width + 1) | (points[:, 1] > height + 1) | (points < -1).any(axis=1)
                if outside.any():
                    x, y = points[np.flatnonzero(outside)[0]]
                    raise AnnotationError(source, f"{self.image}: {self.origin(index)}: the point x {x:g}, y {y:g} "
                                                  f"lies outside the image ({width} x {height} px)")
            return image_shape
        tops = np.array([points.max(axis=0) for points in self.polygons])
        width, height = (float(v) for v in np.ceil(tops.max(axis=0)))
        if width * height > max_megapixels * 1e6:
            index = int(np.argmax(tops.max(axis=1)))
            x, y = tops[index]
            raise AnnotationError(
                source, f"{self.image}: {self.origin(index)} reaches x {x:g}, y {y:g}: labels of "
                        f"{width:.0f} x {height:.0f} px would be too large ({width * height / 1e6:.0f} megapixels; "
                        f"the limit is {max_megapixels:g}); give the image (--image) or fix the coordinates")
        return int(height), int(width)

    def extent(self) -> tuple[int, int]:
        """The smallest (height, width) that holds every polygon."""
        if not self.polygons:
            return (0, 0)
        top = np.max([p.max(axis=0) for p in self.polygons], axis=0)
        return int(np.ceil(top[1])), int(np.ceil(top[0]))


def read_polygon_annotations(path: str | Path, *, data: bytes | None = None) -> list[PolygonAnnotation]:
    """Read a Labelbox JSON export or a GeoJSON file of cell polygons.

    Labelbox (the format the original study's parser read): a JSON list of
    records, each with ``Labeled Data`` (the image's URL or name), ``Label``
    -> ``Cell`` -> a list of objects whose ``geometry`` is a list of
    ``{"x": .., "y": ..}`` points, and ``Created By``. Records with an empty
    ``Label`` (skipped images) give no annotation.

    GeoJSON: a FeatureCollection (or a list of Features, as QuPath exports)
    of Polygon / MultiPolygon features in pixel coordinates; holes are
    ignored. The image is the file's stem unless features say ``image``.

    Raises
    ------
    AnnotationError
        One line naming the file, the record and the problem.
    """
    path = Path(path)
    name = path.name
    raw = data if data is not None else read_input(path, AnnotationError, label=name, kind="an annotation file")
    content = _load_json(raw, name)
    if isinstance(content, dict) and content.get("type") in ("FeatureCollection", "Feature"):
        return _read_geojson(content, name)
    if isinstance(content, list) and content and isinstance(content[0], dict) and content[0].get("type") == "Feature":
        return _read_geojson({"type": "FeatureCollection", "features": content}, name)
    if isinstance(content, list):
        return _read_labelbox(content, name)
    raise AnnotationError(name, "neither a Labelbox export (a JSON list of records) nor GeoJSON")


#: JSON nested deeper than this is refused before parsing (a Labelbox export
#: is 7 levels deep, GeoJSON MultiPolygons 8).
MAX_JSON_DEPTH = 64
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")


def json_depth(raw: bytes) -> int:
    """How deep the brackets of a JSON text nest (brackets inside strings not counted).

    Vectorised: the strings and everything but brackets are removed by
    regular expressions, the depth is a cumulative sum; no recursion.
    """
    brackets = _NOT_BRACKET.sub(b"", _JSON_STRING.sub(b'""', raw))
    if not brackets:
        return 0
    codes = np.frombuffer(brackets, np.uint8)
    opens = (codes == ord("[")) | (codes == ord("{"))
    return int(np.cumsum(opens.view(np.int8) * 2 - 1, dtype=np.int32).max())


def _load_json(raw: bytes, name: str):
    """Parse an annotation file's JSON: one line for bad text, bad JSON or absurd nesting."""
    try:
        if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
            text = raw[2:].decode("utf-16-le" if raw.startswith(b"\xff\xfe") else "utf-16-be")
        else:
            text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AnnotationError(name, f"not valid JSON: not UTF-8 text (byte {exc.start + 1})") from None
    depth = json_depth(raw if raw.isascii() else text.encode("utf-8"))
    if depth > MAX_JSON_DEPTH:
        raise AnnotationError(name, f"not an annotation file: its JSON is nested {depth} levels deep "
                                    f"(the limit is {MAX_JSON_DEPTH})")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnnotationError(name, f"not valid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise AnnotationError(name, "not an annotation file: its JSON is nested too deep") from None


def _points(geometry, where: str, name: str) -> np.ndarray:
    """Labelbox ``geometry`` (a list of {x, y}) -> (n, 2) float array."""
    if not isinstance(geometry, list) or len(geometry) < 3:
        raise AnnotationError(name, f"{where}: 'geometry' must be a list of at least 3 points")
    try:
        points = np.array([[float(p["x"]), float(p["y"])] for p in geometry])
    except (TypeError, KeyError, ValueError):
        raise AnnotationError(name, f"{where}: every point needs numeric 'x' and 'y'") from None
    if not np.all(np.isfinite(points)) or (points < 0).any():
        raise AnnotationError(name, f"{where}: coordinates must be finite and not negative")
    return points


def _read_labelbox(records: list, name: str) -> list[PolygonAnnotation]:
    annotations = []
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise AnnotationError(name, f"record {number}: not a JSON object")
        image = record.get("Labeled Data") or record.get("External ID")
        if not image:
            raise AnnotationError(name, f"record {number}: no 'Labeled Data' (the image)")
        image = str(image).split("?")[0].rstrip("/").rsplit("/", 1)[-1]
        where = f"record {number} ({image})"
        label = record.get("Label")
        if label in (None, "Skip", {}, []):
            continue
        if not isinstance(label, dict) or "Cell" not in label:
            raise AnnotationError(name, f"{where}: 'Label' has no 'Cell' list")
        objects = label["Cell"]
        if not isinstance(objects, list):
            raise AnnotationError(name, f"{where}: 'Label' -> 'Cell' must be a list")
        polygons, origins = [], []
        for index, obj in enumerate(objects, start=1):
            if not isinstance(obj, dict) or "geometry" not in obj:
                raise AnnotationError(name, f"{where}: cell {index} has no 'geometry'")
            polygons.append(_points(obj["geometry"], f"{where}: cell {index}", name))
            origins.append(f"record {number}, cell {index}")
        annotations.append(PolygonAnnotation(image, str(record.get("Created By") or ""), polygons, origins))
    if not annotations:
        raise AnnotationError(name, "no annotated record (every 'Label' is empty)")
    return annotations


def _read_geojson(content: dict, name: str) -> list[PolygonAnnotation]:
    features = [content] if content.get("type") == "Feature" else content.get("features")
    if not isinstance(features, list):
        raise AnnotationError(name, "a FeatureCollection needs a 'features' list")
    by_image: dict[str, list] = {}
    origins: dict[str, list] = {}
    default_image = Path(name).name.rsplit(".", 1)[0]
    for number, feature in enumerate(features, start=1):
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        if not isinstance(geometry, dict) or "coordinates" not in geometry:
            raise AnnotationError(name, f"feature {number}: no 'geometry' with 'coordinates'")
        kind = geometry.get("type")
        if kind == "Polygon":
            outers = [geometry["coordinates"][0]] if geometry["coordinates"] else []
        elif kind == "MultiPolygon":
            outers = [part[0] for part in geometry["coordinates"] if part]
        else:
            continue  # points and lines are no cells
        properties = feature.get("properties") or {}
        image = str(properties.get("image") or default_image)
        for outer in outers:
            try:
                points = np.asarray(outer, float)[:, :2]
            except (TypeError, ValueError, IndexError):
                raise AnnotationError(name, f"feature {number}: coordinates are not [x, y] pairs") from None
            if len(points) >= 2 and np.allclose(points[0], points[-1]):
                points = points[:-1]
            if len(points) < 3 or not np.all(np.isfinite(points)):
                raise AnnotationError(name, f"feature {number}: a polygon needs at least 3 finite points")
            by_image.setdefault(image, []).append(points)
            origins.setdefault(image, []).append(f"feature {number}")
    if not by_image:
        raise AnnotationError(name, "no Polygon feature")
    return [PolygonAnnotation(image, "", polygons, origins[image]) for image, polygons in by_image.items()]
