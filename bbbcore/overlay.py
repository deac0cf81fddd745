"""Pictures of a segmentation: outlines drawn over the image."""

from __future__ import annotations

import numpy as np
from skimage import segmentation

from .instances import touches_edge

#: Outline colours (RGB, 0-255).
CELL_COLOUR = (255, 221, 0)
EDGE_CELL_COLOUR = (0, 170, 255)


def overlay_outlines(
    junction: np.ndarray,
    labels: np.ndarray,
    *,
    colour: tuple[int, int, int] = CELL_COLOUR,
    edge_colour: tuple[int, int, int] = EDGE_CELL_COLOUR,
    thickness: int = 1,
) -> np.ndarray:
    """RGB uint8 picture: the normalised junction channel in gray, cell outlines on top.

    Cells touching the image edge are drawn in ``edge_colour``. Drawn in bands of rows, so a 48 MP
    image needs the picture and a band's temporaries, not float and boundary copies of the whole.
    """
    on_edge_ids = touches_edge(labels)
    picture = np.empty((*labels.shape, 3), np.uint8)
    margin = thickness  # rows of context a band's outlines need from its neighbours
    for top in range(0, labels.shape[0], BAND_ROWS):
        bottom = min(top + BAND_ROWS, labels.shape[0])
        above, below = min(margin, top), min(margin, labels.shape[0] - bottom)
        band = labels[top - above:bottom + below]
        edges = segmentation.find_boundaries(band, mode="inner")
        if thickness > 1:
            from scipy import ndimage as ndi

            edges = ndi.binary_dilation(edges, iterations=thickness - 1) & (band > 0)
        edges = edges[above:above + bottom - top]
        band = band[above:above + bottom - top]
        gray = (np.clip(junction[top:bottom], 0, 1) * 255).astype(np.uint8)
        out = picture[top:bottom]
        out[:] = gray[..., None]
        on_edge = on_edge_ids[band]
        out[edges & ~on_edge] = colour
        out[edges & on_edge] = edge_colour
    return picture


#: Rows drawn at a time by :func:`overlay_outlines`.
BAND_ROWS = 1024


def feature_colours(values: np.ndarray, *, colormap: str = "Viridis") -> tuple[np.ndarray, float, float]:
    """RGB uint8 colours for values (robust 2-98 % range); NaN -> gray."""
    from plotly.colors import sample_colorscale, unlabel_rgb

    values = np.asarray(values, float)
    finite = values[np.isfinite(values)]
    low, high = (np.percentile(finite, [2, 98]) if finite.size else (0.0, 1.0))
    if high <= low:
        high = low + 1.0
    scaled = np.clip((values - low) / (high - low), 0, 1)
    sampled = sample_colorscale(colormap, list(np.nan_to_num(scaled))) if scaled.size else []
    rgb = np.array([unlabel_rgb(c) for c in sampled], float).reshape(-1, 3).round().astype(np.uint8)
    rgb[~np.isfinite(values)] = (128, 128, 128)
    return rgb, float(low), float(high)


def render_cells(
    junction: np.ndarray,
    labels: np.ndarray,
    *,
    values: dict[int, float] | None = None,
    outlines: bool = True,
    fill: bool = False,
    fill_alpha: float = 0.45,
    highlight: set[int] | None = None,
    highlight_colour: tuple[int, int, int] = (255, 0, 160),
) -> np.ndarray:
    """RGB picture of a segmentation for the dashboard.

    Parameters
    ----------
    junction : (H, W) float in [0, 1], the normalised junction channel
    labels : (H, W) int labels
    values : dict cell_id -> value, optional
        Colour cells by a feature (viridis); without it, each cell gets its
        own colour when ``fill`` is on.
    outlines, fill : bool
        Draw outlines (yellow; edge cells blue) and / or fill cells.
    highlight : set of cell ids, optional
        Cells outlined thickly in ``highlight_colour`` (selected or flagged).
    """
    gray = (np.clip(junction, 0, 1) * 255).astype(np.uint8)
    picture = np.repeat(gray[..., None], 3, axis=-1)
    n = int(labels.max()) + 1
    edge = touches_edge(labels)
    if fill or values is not None:
        palette = np.zeros((n, 3), np.uint8)
        if values is not None:
            ids = np.array(sorted(values), int)
            ids = ids[ids < n]
            colours, _, _ = feature_colours(np.array([values[i] for i in ids], float))
            palette[ids] = colours
        else:
            rng = np.random.default_rng(7)
            palette[1:] = rng.integers(60, 256, size=(n - 1, 3), dtype=np.uint8)
        palette[edge] = (150, 150, 150)  # edge cells: gray, they are left out of summaries
        coloured = labels > 0
        mixed = (1 - fill_alpha) * picture[coloured] + fill_alpha * palette[labels[coloured]]
        picture[coloured] = mixed.astype(np.uint8)
    if outlines:
        edges = segmentation.find_boundaries(labels, mode="inner")
        on_edge = edge[labels]
        picture[edges & ~on_edge] = CELL_COLOUR
        picture[edges & on_edge] = EDGE_CELL_COLOUR
    if highlight:
        from scipy import ndimage as ndi

        chosen = np.isin(labels, list(highlight))
        ring = segmentation.find_boundaries(np.where(chosen, labels, 0), mode="inner")
        picture[ndi.binary_dilation(ring, iterations=1) & chosen] = highlight_colour
    return picture


def cell_centres(labels: np.ndarray) -> dict[int, tuple[float, float]]:
    """Where to write each cell's id: the point deepest inside the cell (x, y)."""
    from scipy import ndimage as ndi

    centres = {}
    for cell_id, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None:
            continue
        inside = np.pad(labels[box] == cell_id, 1)
        depth = ndi.distance_transform_edt(inside)
        row, col = np.unravel_index(np.argmax(depth), depth.shape)
        centres[cell_id] = (col - 1 + box[1].start, row - 1 + box[0].start)
    return centres


def draw_ids(picture: np.ndarray, labels: np.ndarray, *, colour=(255, 255, 255)) -> np.ndarray:
    """Write each cell's id at its centre (Pillow's default font)."""
    from PIL import Image, ImageDraw

    canvas = Image.fromarray(picture)
    pen = ImageDraw.Draw(canvas)
    for cell_id, (x, y) in cell_centres(labels).items():
        pen.text((x, y), str(cell_id), fill=colour, anchor="mm", stroke_width=2, stroke_fill=(0, 0, 0))
    return np.asarray(canvas)


def jpeg_bytes(picture: np.ndarray, *, quality: int = 90) -> bytes:
    """A picture (uint8 gray or RGB) as JPEG bytes: a tenth of what a browser is sent for the array."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(picture)).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def hover_figure(
    picture: np.ndarray,
    labels: np.ndarray,
    cells,
    *,
    columns: list[str],
    max_width: int = 1000,
    highlight: set[int] | None = None,
    outlines: dict | None = None,
):
    """A plotly figure: the picture with one invisible polygon per cell that shows its features on hover.

    The picture is downsampled to at most ``max_width`` px wide; polygons are
    the cells' outlines (a few hundred vertices each), so the payload stays
    small (no per-pixel hover data). ``outlines``: the cells' polygons when
    already made (:meth:`bbbcore.pipeline.ImageResult.outlines`).
    """
    import plotly.graph_objects as go
    from PIL import Image

    from .polygons import cell_polygons

    height, width = labels.shape
    factor = min(1.0, max_width / width)
    import base64

    shown = np.asarray(Image.fromarray(picture).resize((max(1, int(width * factor)), max(1, int(height * factor)))))
    # A data URI, not a JSON array of pixels.
    source = "data:image/jpeg;base64," + base64.b64encode(jpeg_bytes(shown, quality=85)).decode("ascii")
    rows = cells.set_index("cell_id").to_dict("index") if len(cells) else {}
    # Plain dicts, unvalidated: plotly's checks cost about 1.5 ms per trace (0.6 s for 400 cells), and
    # these traces are built the same way every time. The image centres its first pixel on (x0, y0): half
    # a shown pixel in, so the picture spans the pixel-edge coordinates [0, width] of the outlines.
    traces = [{"type": "image", "source": source, "dx": 1 / factor, "dy": 1 / factor, "x0": 0.5 / factor,
               "y0": 0.5 / factor, "hoverinfo": "skip"}]
    for cell_id, points in (cell_polygons(labels) if outlines is None else outlines).items():
        step = max(1, len(points) // 200)
        points = points[::step]
        text = f"cell {cell_id}"
        row = rows.get(cell_id)
        if row is not None:
            text += "".join(
                f"<br>{c}: {row[c]:.4g}" if isinstance(row[c], (float, np.floating)) else f"<br>{c}: {row[c]}"
                for c in columns if c in row
            )
        colour = "rgba(255,0,160,0.9)" if highlight and cell_id in highlight else "rgba(0,0,0,0)"
        traces.append({
            "type": "scatter", "x": np.append(points[:, 0], points[0, 0]), "y": np.append(points[:, 1], points[0, 1]),
            "mode": "lines", "fill": "toself", "fillcolor": "rgba(255,255,255,0.02)",
            "line": {"width": 2, "color": colour}, "hoveron": "fills", "hoverinfo": "text", "text": text,
            "name": f"cell {cell_id}", "showlegend": False,
        })
    layout = {
        "margin": {"l": 0, "r": 0, "t": 0, "b": 0}, "height": int(700 * height / width) + 20,
        "xaxis": {"visible": False, "range": [0, width]},
        "yaxis": {"visible": False, "range": [height, 0], "scaleanchor": "x"},
        "hoverlabel": {"bgcolor": "white"},
    }
    figure = go.Figure({"data": traces, "layout": layout}, _validate=False)
    return figure
