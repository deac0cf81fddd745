"""Per-cell features against answers worked out without bbbcore's code path.

tests/test_features.py compares the cells table with ``skimage.measure.regionprops_table``, the function
features.py itself calls; that cannot catch a mistake in how features.py uses it. Here the answers come
from elsewhere:

1. Geometry. Rectangles, a square, discs, an ellipse and L-shapes are drawn from exact geometry at several
   sizes and rotations, and every shape column is compared with hand formulas (polygon geometry by the
   shoelace / Green's-theorem formulas, the ellipse in closed form).
2. The same pixels measured by independent numpy code (pixel count, mean, covariance, a monotone-chain
   hull of the pixel corners, a caliper sweep): these must agree to rounding.
3. CellProfiler. cp-measure (CellProfiler's MeasureObjectSizeShape and Feret measurements as functions,
   a test dependency) on the cells of a real annotation.

How the shapes are drawn, and the tolerances that follow from it
-----------------------------------------------------------------
Pixel (row r, column c) is the unit square Q centred on (x=c, y=r) (bbbcore's centroid convention) and
belongs to the cell iff its centre lies in the exact closed shape S. So the union U of the cell's pixel
squares satisfies

    S shrunk by RHO  ⊂  U  ⊂  S grown by Q,        RHO = √2/2 (half a pixel's diagonal)

(a point at least RHO inside S has the centre of its own pixel in S; no pixel square reaches beyond S by
more than Q). features.py measures hulls and Feret diameters on pixel corners, i.e. on U, so:

* a caliper width grows by at most the width of Q, |cos| + |sin| <= √2 px, and shrinks at most as much as
  S shrunk by RHO (2·RHO = √2 for an ellipse; for a polygon the shrunk rectangles are measured: at a right
  angle corner the diagonal loses RHO·√2 = 1 px);
* the bounding box grows by at most 1 px (Q's width) and shrinks at most as S shrunk by RHO;
* areas: the pixels cut by the outline are in or out whole, so |area - A| <= RHO·P + π·RHO² (the band of
  width RHO either side of the outline); the hull area lies between the shrunk shape's hull and
  hull(S) grown by Q.

Tolerances that are not such bounds (perimeter, second moments, orientation, the L's centroid) say why.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from bbbcore.annotations import read_truth_cells
from bbbcore.features import cells_table

RHO = math.sqrt(2) / 2  # half a pixel's diagonal: the farthest a point of S can be from its pixel's centre
SQRT2 = math.sqrt(2)
# scikit-image's perimeter weighs the steps of the boundary pixels' chain 1 or √2 (corner pixels (1+√2)/2):
# a straight edge at angle φ (folded into 0°-45°) comes out cos φ + (√2 - 1) sin φ times its length, exact
# along the axes and diagonals and at worst √(4 - 2√2) ≈ 1.082 times too long at 22.5°.
CHAIN_BIAS_MAX = math.sqrt(4 - 2 * SQRT2)
# ... and the chain runs through the boundary pixels' centres, half a pixel inside the outline, which
# shortens a convex outline by π px (a disc) to 4 px (a rectangle: 8 × ½ px), an L by 5 - π/4 ≈ 4.2 px;
# 1.8 px more for corners the digital outline cuts short. So P - 6 px <= perimeter <= 1.082 P (no slack
# upward: the half-pixel shift only shortens). Seen: -4.9 px to +7.4 %.
CHAIN_SHORTENING_MAX = 6.0
# Second moments (major/minor axis = 4 √eigenvalue): the ±RHO band could move a variance by tens of per
# cent if all cut pixels leaned one way, but along an outline they come in and out in alternation; 1.4 %
# on an axis is the most seen on these shapes (every 0.5° from 0° to 180°), so 2 %.
AXES_REL = 0.02
# Orientation: moment errors within that (up to 2 x AXES_REL on a variance, so on the off-diagonal moment
# of the principal frame up to 2 x AXES_REL x (λ1 + λ2) / 2) turn the major axis by that / (λ1 - λ2)
# radians (to first order): AXES_REL (λ1 + λ2) / (λ1 - λ2), 1.4° for a 3:1 shape, 2.3° for the 1.7:1 L
# (0.85° is the most seen, on that L).
# Centroid: a centrally symmetric shape centred on a pixel corner has centrally symmetric pixels, so their
# centroid is its centre to rounding. The L is not symmetric: along each straight edge the pixel squares'
# boundary lies on average within half a pixel of it (along a row or column: the last row of centres
# inside is 0-1 px in and the squares reach 0.5 px beyond it; along a diagonal ±0.35 px; at other angles
# the cut pixels alternate in and out), so the centroid moves by at most Σ ½ px x |edge| x (the edge's
# farthest point from the centroid) / area: about 2.8 px for these Ls (0.42 px seen).
# Floating-point rounding where the same quantity is computed two ways.
EXACT = 1e-9


# --- plane geometry by hand (no scikit-image, no scipy) -------------------------------------------


def hull(points: np.ndarray) -> np.ndarray:
    """Convex hull of (x, y) points, counter-clockwise in (x, y) (Andrew's monotone chain)."""
    pts = sorted(set(map(tuple, np.round(np.asarray(points, float), 12))))
    if len(pts) < 3:
        return np.array(pts)

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower, upper = [], []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.array(lower[:-1] + upper[:-1])


def polygon_area(v: np.ndarray) -> float:
    """Shoelace formula (absolute)."""
    x, y = v[:, 0], v[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def polygon_length(v: np.ndarray) -> float:
    return float(np.linalg.norm(np.roll(v, -1, axis=0) - v, axis=1).sum())


def diameter(v: np.ndarray) -> float:
    """Largest distance between two vertices (the max Feret diameter of their hull)."""
    return float(np.linalg.norm(v[:, None] - v[None], axis=-1).max())


def min_width(v: np.ndarray) -> float:
    """Smallest caliper width of a convex polygon: one caliper lies along an edge."""
    edges = np.roll(v, -1, axis=0) - v
    normals = np.column_stack([-edges[:, 1], edges[:, 0]]) / np.linalg.norm(edges, axis=1)[:, None]
    projections = v @ normals.T
    return float((projections.max(axis=0) - projections.min(axis=0)).min())


def grown_by_pixel_area(v: np.ndarray) -> float:
    """Area of a convex polygon grown by the pixel square Q (Minkowski sum): A + Σ |edge|·h_Q(normal) + 1."""
    edges = np.roll(v, -1, axis=0) - v
    return polygon_area(v) + float((np.abs(edges).sum(axis=1) / 2).sum()) + 1.0


def polygon_moments(v: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Area, centroid (x, y) and 2x2 central covariance of a simple polygon (Green's theorem)."""
    x, y = v[:, 0], v[:, 1]
    x1, y1 = np.roll(x, -1), np.roll(y, -1)
    c = x * y1 - x1 * y
    area = c.sum() / 2
    cx = ((x + x1) * c).sum() / (6 * area)
    cy = ((y + y1) * c).sum() / (6 * area)
    sxx = ((x * x + x * x1 + x1 * x1) * c).sum() / 12 / area - cx * cx
    syy = ((y * y + y * y1 + y1 * y1) * c).sum() / 12 / area - cy * cy
    sxy = ((x * y1 + 2 * x * y + 2 * x1 * y1 + x1 * y) * c).sum() / 24 / area - cx * cy
    return abs(area), np.array([cx, cy]), np.array([[sxx, sxy], [sxy, syy]])


def moment_axes(cov: np.ndarray) -> tuple[float, float, float]:
    """Major and minor axis (4 √eigenvalue: the ellipse with these second moments) and the major axis's
    angle from the x axis, counter-clockwise as displayed (y points down), in [0, 180)."""
    values, vectors = np.linalg.eigh(cov)
    vx, vy = vectors[:, 1]
    return 4 * math.sqrt(values[1]), 4 * math.sqrt(max(values[0], 0.0)), math.degrees(math.atan2(-vy, vx)) % 180


def ramanujan(a: float, b: float) -> float:
    """Ellipse perimeter, Ramanujan's first formula (relative error ~1e-5 at a/b = 8/3, 0 for a circle)."""
    return math.pi * (3 * (a + b) - math.sqrt((3 * a + b) * (a + 3 * b)))


# --- the shapes --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """A rectangle, an L (union of two rectangles) or an ellipse, turned by ``angle`` degrees
    counter-clockwise as displayed about its local origin, which sits at image point ``origin`` (x, y)."""

    name: str
    kind: str  # "polygon" or "ellipse"
    origin: tuple[float, float]
    angle: float
    rects: tuple = ()  # polygon: axis-aligned rectangles (s0, s1, t0, t1) in local coordinates
    outline: tuple = ()  # polygon: the outline's vertices (s, t), in order
    axes: tuple = ()  # ellipse: semi-axes (a along s, b along t)

    @property
    def frame(self) -> tuple[np.ndarray, np.ndarray]:
        """Image (x, y) directions of the local s and t axes (y points down)."""
        t = math.radians(self.angle)
        return np.array([math.cos(t), -math.sin(t)]), np.array([math.sin(t), math.cos(t)])

    def to_image(self, st) -> np.ndarray:
        u, v = self.frame
        st = np.asarray(st, float).reshape(-1, 2)
        return np.asarray(self.origin) + st[:, :1] * u + st[:, 1:] * v

    def inside(self, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
        u, v = self.frame
        dx, dy = xx - self.origin[0], yy - self.origin[1]
        s, t = dx * u[0] + dy * u[1], dx * v[0] + dy * v[1]
        if self.kind == "ellipse":
            a, b = self.axes
            return (s / a) ** 2 + (t / b) ** 2 <= 1
        mask = np.zeros(xx.shape, bool)
        for s0, s1, t0, t1 in self.rects:
            mask |= (s >= s0) & (s <= s1) & (t >= t0) & (t <= t1)
        return mask

    def rect_corners(self, shrink: float = 0.0) -> np.ndarray:
        """Image corners of the rectangles, each shrunk by ``shrink`` on every side."""
        corners = [(s, t) for s0, s1, t0, t1 in self.rects
                   for s in (s0 + shrink, s1 - shrink) for t in (t0 + shrink, t1 - shrink)]
        return self.to_image(corners)

    def known(self) -> dict[str, tuple[float, float, float]]:
        """feature -> (expected, low, high) for the drawn cell, from the geometry alone."""
        centroid_slack = 0.0  # centrally symmetric: exact
        if self.kind == "ellipse":
            a, b = self.axes
            area, perimeter = math.pi * a * b, ramanujan(a, b)
            centre = np.asarray(self.origin, float)
            u, v = self.frame
            cov = (a * a / 4) * np.outer(u, u) + (b * b / 4) * np.outer(v, v)  # ∫s² over an ellipse = a²/4
            hull_area = area
            # Shrinking an ellipse by RHO (RHO < its least radius of curvature b²/a) takes RHO off its
            # support function: widths lose 2·RHO, the area RHO·P - π·RHO² (Steiner).
            hull_low, hull_high = area - RHO * perimeter + math.pi * RHO**2, area + RHO * perimeter + math.pi * RHO**2
            feret_max, feret_min = 2 * a, 2 * b
            feret_max_low, feret_min_low = 2 * a - 2 * RHO, 2 * b - 2 * RHO
            width = 2 * math.sqrt((a * u[0]) ** 2 + (b * v[0]) ** 2)  # support function along x
            height = 2 * math.sqrt((a * u[1]) ** 2 + (b * v[1]) ** 2)
            width_low, height_low = width - 2 * RHO, height - 2 * RHO
        else:
            outline = self.to_image(self.outline)
            area, centre, cov = polygon_moments(outline)
            perimeter = polygon_length(outline)
            full, shrunk = hull(self.rect_corners()), hull(self.rect_corners(RHO))
            hull_area, hull_low, hull_high = polygon_area(full), polygon_area(shrunk), grown_by_pixel_area(full)
            feret_max, feret_min = diameter(full), min_width(full)
            feret_max_low, feret_min_low = diameter(shrunk), min_width(shrunk)
            width, height = np.ptp(full, axis=0)
            width_low, height_low = np.ptp(shrunk, axis=0)
            if not self.symmetric:
                ends = np.linalg.norm(outline - centre, axis=1)
                reach = np.maximum(ends, np.roll(ends, -1))  # each edge's farthest point from the centroid
                lengths = np.linalg.norm(np.roll(outline, -1, axis=0) - outline, axis=1)
                centroid_slack = float((0.5 * lengths * reach).sum()) / (area - RHO * perimeter)
        width_high, height_high = width + 1, height + 1
        # The pixels' moments are taken about pixel centres: each pixel's own 1/12 px² is missing.
        major, minor, angle = moment_axes(cov - np.eye(2) / 12)
        turn = math.degrees(AXES_REL * (major**2 + minor**2) / (major**2 - minor**2)) if major > minor else math.inf
        area_low, area_high = area - RHO * perimeter, area + RHO * perimeter + math.pi * RHO**2
        ratio_low = minor * (1 - AXES_REL) / (major * (1 + AXES_REL))
        ratio_high = min(1.0, minor * (1 + AXES_REL) / (major * (1 - AXES_REL)))
        perimeter_low, perimeter_high = perimeter - CHAIN_SHORTENING_MAX, CHAIN_BIAS_MAX * perimeter
        return {
            "area": (area, area_low, area_high),
            "perimeter": (perimeter, perimeter_low, perimeter_high),
            # 4πA/P²: 1 for a disc, π/4 for a square, πk/(1+k)² for a 1:k rectangle.
            "circularity": (4 * math.pi * area / perimeter**2, 4 * math.pi * area_low / perimeter_high**2,
                            4 * math.pi * area_high / perimeter_low**2),
            "equivalent_diameter": (2 * math.sqrt(area / math.pi), 2 * math.sqrt(area_low / math.pi),
                                    2 * math.sqrt(area_high / math.pi)),
            "aspect_ratio": (width / height, width_low / height_high, width_high / height_low),
            "extent": (area / (width * height), area_low / (width_high * height_high),
                       area_high / (width_low * height_low)),
            "hull_area": (hull_area, hull_low, hull_high),
            "feret_diameter_max": (feret_max, feret_max_low, feret_max + SQRT2),
            "feret_diameter_min": (feret_min, feret_min_low, feret_min + SQRT2),
            "major_axis_length": (major, major * (1 - AXES_REL), major * (1 + AXES_REL)),
            "minor_axis_length": (minor, minor * (1 - AXES_REL), minor * (1 + AXES_REL)),
            "elongation": (major / minor, 1 / ratio_high, 1 / ratio_low),
            "eccentricity": (math.sqrt(max(0.0, 1 - (minor / major) ** 2)), math.sqrt(1 - ratio_high**2),
                             math.sqrt(1 - ratio_low**2)),
            "orientation_deg": (angle, angle - turn, angle + turn),
            "centroid_x": (centre[0], centre[0] - centroid_slack, centre[0] + centroid_slack),
            "centroid_y": (centre[1], centre[1] - centroid_slack, centre[1] + centroid_slack),
        }

    @property
    def symmetric(self) -> bool:
        """Centrally symmetric about a pixel centre or corner: its pixels are too, centroid exact."""
        return self.kind == "ellipse" or len(self.rects) == 1

    @property
    def isotropic(self) -> bool:
        """A disc or a square: equal second moments in every direction, so no major axis."""
        if self.kind == "ellipse":
            return self.axes[0] == self.axes[1]
        s0, s1, t0, t1 = self.rects[0]
        return len(self.rects) == 1 and s1 - s0 == t1 - t0


def rectangle(name, centre, angle, w, h) -> Shape:
    """w along the turned x axis, h across; centred on ``centre``."""
    return Shape(name, "polygon", centre, angle, rects=((-w / 2, w / 2, -h / 2, h / 2),),
                 outline=((-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)))


def ellipse(name, centre, angle, a, b) -> Shape:
    return Shape(name, "ellipse", centre, angle, axes=(a, b))


def l_shape(name, centre, angle, arm, thickness) -> Shape:
    """Two arms ``arm`` long and ``thickness`` thick meeting at a right angle, its centroid near ``centre``.

    Upright, the outer corner sits on a pixel corner (edges between pixels: exact pixels). Turned, it is
    moved off the pixel grid by (0.23, 0.37) px: at 45° a grid-aligned corner puts its edges through rows of
    pixel centres, and the ties all fall inside, a one-sided error no generic drawing has."""
    rects = ((0, arm, 0, thickness), (0, thickness, 0, arm))
    outline = ((0, 0), (arm, 0), (arm, thickness), (thickness, thickness), (thickness, arm), (0, arm))
    local = Shape(name, "polygon", (0.0, 0.0), angle, rects=rects, outline=outline)
    _, centroid, _ = polygon_moments(local.to_image(outline))
    corner = np.floor(np.asarray(centre) - centroid) + 0.5 + (np.array([0.23, 0.37]) if angle % 90 else 0.0)
    return Shape(name, "polygon", tuple(corner), angle, rects=rects, outline=outline)


CELL = 170  # px per shape in the scene's grid


def scene_shapes(angle: float) -> list[Shape]:
    """The shapes of one scene, every one turned by ``angle``. Centres sit on pixel corners (half-integers):
    a centrally symmetric shape then has centrally symmetric pixels, and an axis-aligned rectangle of even
    sides has its edges between pixels (no pixel centre on the outline)."""
    def centre(i):
        return (CELL * (i % 3) + CELL / 2 + 10.5, CELL * (i // 3) + CELL / 2 + 10.5)

    return [
        rectangle("rectangle 80x30", centre(0), angle, 80, 30),
        rectangle("square 50x50", centre(1), angle, 50, 50),
        ellipse("ellipse 40x15", centre(2), angle, 40, 15),
        ellipse("disc r10", centre(3), angle, 10, 10),
        ellipse("disc r25", centre(4), angle, 25, 25),
        ellipse("disc r60", centre(5), angle, 60, 60),
        l_shape("L 60/20", centre(6), angle, 60, 20),
        l_shape("L 100/30", centre(7), angle, 100, 30),
        rectangle("rectangle 120x40", centre(8), angle, 120, 40),
    ]


def draw(shapes: list[Shape]) -> np.ndarray:
    """Labels image: cell i + 1 = the pixels whose centres lie in shape i."""
    yy, xx = np.mgrid[0:3 * CELL + 21, 0:3 * CELL + 21].astype(float)
    labels = np.zeros(xx.shape, np.int32)
    for i, shape in enumerate(shapes, start=1):
        mask = shape.inside(xx, yy)
        assert not labels[mask].any(), f"{shape.name} overlaps another shape"
        labels[mask] = i
    assert not (labels[0].any() or labels[-1].any() or labels[:, 0].any() or labels[:, -1].any())
    return labels


ANGLES = (0.0, 22.5, 30.0, 45.0, 110.0)  # 22.5°: the perimeter's worst direction; 110°: past 90°


@functools.cache
def scene(angle: float) -> tuple[list[Shape], np.ndarray, pd.DataFrame]:
    shapes = scene_shapes(angle)
    labels = draw(shapes)
    table = cells_table(labels).set_index("cell_id")
    assert list(table.index) == list(range(1, len(shapes) + 1))
    return shapes, labels, table


# --- 1. geometry ------------------------------------------------------------------------------------

GEOMETRY_FEATURES = (
    "area", "perimeter", "circularity", "equivalent_diameter", "aspect_ratio", "extent", "solidity",
    "feret_diameter_max", "feret_diameter_min", "major_axis_length", "minor_axis_length", "elongation",
    "eccentricity", "orientation_deg", "centroid_x", "centroid_y",
)


@pytest.mark.parametrize("feature", GEOMETRY_FEATURES)
@pytest.mark.parametrize("angle", ANGLES)
def test_features_match_the_geometry(angle, feature):
    shapes, labels, table = scene(angle)
    wrong = []
    for cell_id, shape in enumerate(shapes, start=1):
        value = float(table.at[cell_id, feature])
        known = shape.known()
        if feature == "solidity":
            # area / hull area, both measured on the pixels: the hull's bounds with the exact pixel count.
            pixels = int((labels == cell_id).sum())
            expected, hull_low, hull_high = known["hull_area"]
            expected = known["area"][0] / expected
            low, high = pixels / hull_high, min(1.0, pixels / hull_low)
        elif feature == "orientation_deg":
            if shape.isotropic:
                continue  # a disc or a square has no major axis
            expected, low, high = known[feature]
            value = expected + (value - expected + 90) % 180 - 90  # angles are equal modulo 180°
        else:
            expected, low, high = known[feature]
        if not low - EXACT <= value <= high + EXACT:
            wrong.append(f"{shape.name}: {feature} = {value:.4f}, known {expected:.4f}, bounds [{low:.4f}, {high:.4f}]")
    assert not wrong, "\n".join(wrong)


def test_axis_aligned_shapes_are_exact():
    """At 0° with edges between pixels the digital shapes are the geometric ones: no tolerance at all."""
    shapes, _, table = scene(0.0)
    for cell_id, shape in enumerate(shapes, start=1):
        if shape.kind != "polygon":
            continue
        row = table.loc[cell_id]
        known = shape.known()
        assert row["area"] == known["area"][0], shape.name
        assert row["aspect_ratio"] == pytest.approx(known["aspect_ratio"][0], rel=EXACT), shape.name
        assert row["extent"] == pytest.approx(known["extent"][0], rel=EXACT), shape.name
        assert row["solidity"] == pytest.approx(known["area"][0] / known["hull_area"][0], rel=EXACT), shape.name
        assert row["feret_diameter_max"] == pytest.approx(known["feret_diameter_max"][0], rel=EXACT), shape.name
        assert row["feret_diameter_min"] == pytest.approx(known["feret_diameter_min"][0], rel=EXACT), shape.name
        assert row["centroid_x"] == pytest.approx(known["centroid_x"][0], abs=EXACT), shape.name
        assert row["centroid_y"] == pytest.approx(known["centroid_y"][0], abs=EXACT), shape.name
        if len(shape.rects) == 1:
            # A w x h block of pixels: the centres' variance is (w² - 1)/12, so the axis 4√((w² - 1)/12).
            s0, s1, t0, t1 = shape.rects[0]
            long, short = max(s1 - s0, t1 - t0), min(s1 - s0, t1 - t0)
            assert row["major_axis_length"] == pytest.approx(4 * math.sqrt((long**2 - 1) / 12), rel=EXACT)
            assert row["minor_axis_length"] == pytest.approx(4 * math.sqrt((short**2 - 1) / 12), rel=EXACT)
            # Its outline's chain through the border pixels' centres: 2 (w - 1) + 2 (h - 1).
            assert row["perimeter"] == pytest.approx(2 * (long - 1) + 2 * (short - 1), rel=EXACT)


def test_physical_columns_scale_with_the_pixel_size():
    shapes, labels, plain = scene(30.0)
    size = 0.65  # µm per px
    scaled = cells_table(labels, pixel_size_um=size).set_index("cell_id")
    assert (scaled["pixel_size_um"] == size).all()
    lengths = ("perimeter", "equivalent_diameter", "major_axis_length", "minor_axis_length",
               "feret_diameter_max", "feret_diameter_min", "centroid_x", "centroid_y")
    for column in (*lengths, "area"):
        np.testing.assert_array_equal(scaled[column], plain[column])  # the plain columns stay in pixels
    np.testing.assert_allclose(scaled["area_um2"], plain["area"] * size**2, rtol=EXACT)
    for column in lengths:
        np.testing.assert_allclose(scaled[f"{column}_um"], plain[column] * size, rtol=EXACT)
    for cell_id, shape in enumerate(shapes, start=1):  # and in µm against the geometry drawn in µm
        known = shape.known()
        _, low, high = known["area"]
        assert low * size**2 <= scaled.at[cell_id, "area_um2"] <= high * size**2, shape.name
        _, low, high = known["feret_diameter_max"]
        assert low * size <= scaled.at[cell_id, "feret_diameter_max_um"] <= high * size, shape.name


# --- 2. the same pixels, measured by independent code ------------------------------------------------


def pixel_corner_hull(mask: np.ndarray) -> np.ndarray:
    """Hull of the corners of the mask's pixels: those of each row's first and last pixel suffice."""
    rows = np.flatnonzero(mask.any(axis=1))
    first = mask[rows].argmax(axis=1)
    last = mask.shape[1] - 1 - mask[rows, ::-1].argmax(axis=1)
    corners = [(c + dx, r + dy) for r, a, b in zip(rows, first, last) for c in (a, b)
               for dx in (-0.5, 0.5) for dy in (-0.5, 0.5)]
    return hull(np.array(corners))


SWEEP_STEP_DEG = 0.01


def swept_min_width(vertices: np.ndarray) -> float:
    """Smallest width over directions every SWEEP_STEP_DEG: within diameter x step / 2 above the true one
    (a width changes with the direction no faster than the diameter)."""
    phi = np.deg2rad(np.arange(0.0, 180.0, SWEEP_STEP_DEG))
    projections = vertices @ np.vstack([np.cos(phi), np.sin(phi)])
    return float((projections.max(axis=0) - projections.min(axis=0)).min())


@pytest.mark.parametrize("angle", ANGLES)
def test_features_match_independent_pixel_measurements(angle):
    shapes, labels, table = scene(angle)
    for cell_id, shape in enumerate(shapes, start=1):
        row = table.loc[cell_id]
        mask = labels == cell_id
        ys, xs = np.nonzero(mask)
        n = xs.size
        width, height = np.ptp(xs) + 1, np.ptp(ys) + 1
        assert row["area"] == n
        assert row["centroid_x"] == pytest.approx(xs.mean(), abs=EXACT)
        assert row["centroid_y"] == pytest.approx(ys.mean(), abs=EXACT)
        assert row["aspect_ratio"] == pytest.approx(width / height, rel=EXACT)
        assert row["extent"] == pytest.approx(n / (width * height), rel=EXACT)
        assert row["equivalent_diameter"] == pytest.approx(2 * math.sqrt(n / math.pi), rel=EXACT)
        assert row["circularity"] == pytest.approx(4 * math.pi * row["area"] / row["perimeter"] ** 2, rel=EXACT)
        cov = np.cov(np.vstack([xs, ys]).astype(float), bias=True)
        major, minor, orientation = moment_axes(cov)
        assert row["major_axis_length"] == pytest.approx(major, rel=EXACT), shape.name
        assert row["minor_axis_length"] == pytest.approx(minor, rel=EXACT), shape.name
        assert row["elongation"] == pytest.approx(major / minor, rel=EXACT), shape.name
        assert row["eccentricity"] == pytest.approx(math.sqrt(1 - (minor / major) ** 2), abs=1e-6), shape.name
        if not shape.isotropic:
            turn = (row["orientation_deg"] - orientation + 90) % 180 - 90
            assert turn == pytest.approx(0, abs=1e-6), shape.name
        corners = pixel_corner_hull(mask)
        assert row["solidity"] == pytest.approx(min(1.0, n / polygon_area(corners)), rel=EXACT), shape.name
        assert row["feret_diameter_max"] == pytest.approx(diameter(corners), rel=EXACT), shape.name
        swept = swept_min_width(corners)
        slack = diameter(corners) * math.radians(SWEEP_STEP_DEG) / 2
        assert swept - slack - EXACT <= row["feret_diameter_min"] <= swept + EXACT, shape.name


# --- 3. CellProfiler, through cp-measure ---------------------------------------------------------------


@pytest.fixture(scope="module")
def real_cells(shared_data):
    labels = read_truth_cells(shared_data / "bbb" / "train" / "bbb_02.outline.png")
    assert labels.max() >= 10
    return labels


def test_agrees_with_cellprofiler_on_a_real_annotation(real_cells):
    from cp_measure.bulk import get_core_measurements

    labels = real_cells
    ours = cells_table(labels).set_index("cell_id")
    measure = get_core_measurements()
    cp = pd.DataFrame({**measure["sizeshape"](labels, None, calculate_advanced=False),
                       **measure["feret"](labels, None)})
    cp.index = np.arange(1, len(cp) + 1)  # cp-measure rows are labels 1..N in order
    assert list(ours.index) == list(cp.index)

    # Same definitions, so rounding only: the number of pixels; the perimeter (cp-measure takes it from
    # scikit-image's regionprops, as we do); the moment ellipse's axes and eccentricity (cp-measure computes
    # the moments with its own code); area / bounding-box area; the equivalent diameter; 4πA/P² (CellProfiler's
    # FormFactor); the centre of mass (cp-measure's Center_X/Y).
    same = {"area": "Area", "perimeter": "Perimeter", "major_axis_length": "MajorAxisLength",
            "minor_axis_length": "MinorAxisLength", "eccentricity": "Eccentricity", "extent": "Extent",
            "equivalent_diameter": "EquivalentDiameter", "circularity": "FormFactor",
            "centroid_x": "Center_X", "centroid_y": "Center_Y"}
    for ours_name, cp_name in same.items():
        np.testing.assert_allclose(ours[ours_name], cp[cp_name], rtol=EXACT, err_msg=ours_name)
    np.testing.assert_allclose(ours["elongation"], cp["MajorAxisLength"] / cp["MinorAxisLength"], rtol=EXACT)
    # Bounding box: CellProfiler's maxima are exclusive, as ours (width = max - min).
    np.testing.assert_allclose(
        ours["aspect_ratio"],
        (cp["BoundingBoxMaximum_X"] - cp["BoundingBoxMinimum_X"]) / (cp["BoundingBoxMaximum_Y"] - cp["BoundingBoxMinimum_Y"]),
        rtol=EXACT)
    # Orientation: CellProfiler's is scikit-image's, the angle from the row axis to the major axis, within
    # ±90°; ours is ImageJ's, from the x axis counter-clockwise as displayed, in [0, 180): ours = CP + 90
    # modulo 180 (the difference below is folded into ±90°). The same moments: rounding only.
    turn = (ours["orientation_deg"] - (cp["Orientation"] + 90) + 90) % 180 - 90
    np.testing.assert_allclose(turn, 0, atol=1e-6)

    # Feret diameters: CellProfiler's calipers hold the hull of the pixel centres, ours (ImageJ's) that of
    # the pixel corners = the centres' hull grown by the pixel square Q. Every width grows by exactly Q's
    # width in that direction, |cos| + |sin|, between 1 and √2 px; so do the largest and the smallest.
    for ours_name, cp_name in (("feret_diameter_max", "MaxFeretDiameter"), ("feret_diameter_min", "MinFeretDiameter")):
        difference = ours[ours_name] - cp[cp_name]
        assert difference.min() >= 1 - EXACT and difference.max() <= SQRT2 + EXACT, (ours_name, difference.describe())

    # Solidity: CellProfiler's hull area is the number of pixel centres inside the hull of the pixels' edge
    # midpoints (scikit-image's convex_hull_image), ours the area of the hull of the pixel corners. Corners
    # vs edge midpoints add at most |edge| x √2/4 px² per px of hull outline, and counting centres instead
    # of area is off by at most the RHO band either side of that outline (RHO px² per px, + π RHO²); the
    # hull's outline is at most π x the max Feret diameter (Cauchy). So, per cell:
    area = ours["area"]
    hull_outline = math.pi * ours["feret_diameter_max"]
    bound = (SQRT2 / 4 + RHO) * hull_outline + 0.5 + math.pi * RHO**2
    hull_difference = (area / ours["solidity"] - area / cp["Solidity"]).abs()
    assert (ours["solidity"] < 1).all() and (cp["Solidity"] <= 1).all()  # real cells: area / solidity is the hull
    assert (hull_difference <= bound).all(), (hull_difference / bound).max()
