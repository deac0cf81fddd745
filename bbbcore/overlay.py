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

    return {cell_id: _deepest_point(labels, box, cell_id)
            for cell_id, box in enumerate(ndi.find_objects(labels), start=1) if box is not None}


def _deepest_point(labels: np.ndarray, box: tuple[slice, slice], cell_id: int) -> tuple[int, int]:
    """The pixel of cell ``cell_id`` (within ``box``) farthest from its border, as (column, row)."""
    from scipy import ndimage as ndi

    inside = np.pad(labels[box] == cell_id, 1)
    row, col = np.unravel_index(np.argmax(ndi.distance_transform_edt(inside)), inside.shape)
    return col - 1 + box[1].start, row - 1 + box[0].start


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


def cell_markers(labels: np.ndarray, cells) -> dict[int, tuple[float, float]]:
    """One point inside each cell, ``{cell_id: (x, y)}`` in pixel-edge coordinates (:mod:`bbbcore.polygons`).

    The centroid (``centroid_x``, ``centroid_y`` of ``cells``) where it lies in the cell; for a cell
    shaped so that it does not (a crescent), the pixel of the cell farthest from its border.
    """
    from scipy import ndimage as ndi

    points: dict[int, tuple[float, float]] = {}
    if not len(cells):
        return points
    ids = cells["cell_id"].to_numpy(int)
    rows = np.clip(np.floor(cells["centroid_y"].to_numpy(float)).astype(int), 0, labels.shape[0] - 1)
    cols = np.clip(np.floor(cells["centroid_x"].to_numpy(float)).astype(int), 0, labels.shape[1] - 1)
    inside = labels[rows, cols] == ids
    for cell_id, x, y in zip(ids, cells["centroid_x"].to_numpy(float), cells["centroid_y"].to_numpy(float)):
        points[int(cell_id)] = (float(x) + 0.5, float(y) + 0.5)
    boxes = ndi.find_objects(labels)
    for cell_id in ids[~inside]:
        if cell_id > len(boxes) or boxes[cell_id - 1] is None:
            continue  # a row with no pixels in these labels
        col, row = _deepest_point(labels, boxes[cell_id - 1], int(cell_id))
        points[int(cell_id)] = (col + 0.5, row + 0.5)
    return points


def _picture_trace(picture: np.ndarray, max_width: int) -> dict:
    """The picture as a plotly image trace: downsampled to at most ``max_width`` px wide, sent as a JPEG."""
    import base64

    from PIL import Image

    height, width = picture.shape[:2]
    factor = min(1.0, max_width / width)
    shown = np.asarray(Image.fromarray(picture).resize((max(1, int(width * factor)), max(1, int(height * factor)))))
    # A data URI, not a JSON array of pixels.
    source = "data:image/jpeg;base64," + base64.b64encode(jpeg_bytes(shown, quality=85)).decode("ascii")
    # The image centres its first pixel on (x0, y0): half a shown pixel in, so the picture spans the
    # pixel-edge coordinates [0, width] of the markers and of drawn shapes.
    return {"type": "image", "source": source, "dx": 1 / factor, "dy": 1 / factor, "x0": 0.5 / factor,
            "y0": 0.5 / factor, "hoverinfo": "skip"}


def _image_layout(shape: tuple[int, int], view=None) -> dict:
    height, width = shape
    x0, x1, y0, y1 = view if view is not None else (0, width, 0, height)
    return {
        "margin": {"l": 0, "r": 0, "t": 0, "b": 0}, "height": int(900 * height / width) + 20,
        "xaxis": {"visible": False, "range": [x0, x1]},
        "yaxis": {"visible": False, "range": [y1, y0], "scaleanchor": "x"},
        "hoverlabel": {"bgcolor": "white"}, "uirevision": "cells",
    }


#: Junction classes as drawn: the colour-blind-safe Okabe-Ito colours, one per class.
JUNCTION_CLASS_COLOURS = {"continuous": "#56B4E9", "punctate": "#E69F00", "perpendicular": "#CC79A7",
                          "absent": "#D55E00"}


def junction_class(interfaces) -> np.ndarray:
    """Each interface's largest junction class (by share of its length)."""
    shares = np.column_stack([interfaces[f"junction_{k}_fraction"].to_numpy(float) for k in JUNCTION_CLASS_COLOURS])
    return np.array(list(JUNCTION_CLASS_COLOURS))[np.nan_to_num(shares, nan=-1).argmax(axis=1)]


def interfaces_figure(
    picture: np.ndarray,
    interfaces,
    polylines: dict,
    *,
    colour_by: str = "class",
    columns: list[str] = (),
    max_width: int = 1000,
):
    """A plotly figure: the picture with each interface drawn along its border, coloured by its largest
    junction class or by one of its columns (binned, with a colour bar), and its figures on hover.

    ``polylines``: :func:`bbbcore.interfaces.interface_polylines` of the labels (x, y in pixel-edge
    coordinates). Hover sits on a marker at the middle of each interface.
    """
    import plotly.colors
    import plotly.graph_objects as go

    traces = [_picture_trace(picture, max_width)]
    table = interfaces.reset_index(drop=True)
    lines = [np.vstack(polylines.get((int(a), int(b)), [np.zeros((0, 2))])) for a, b in
             zip(table["cell_a"], table["cell_b"])]
    if colour_by == "class":
        groups = junction_class(table)
        colours = JUNCTION_CLASS_COLOURS
        names = list(colours)
    else:
        values = table[colour_by].to_numpy(float)
        finite = values[np.isfinite(values)]
        edges = np.unique(np.quantile(finite, np.linspace(0, 1, 7))) if finite.size else np.array([0.0, 1.0])
        edges = edges if len(edges) > 1 else np.array([edges[0], edges[0] + 1e-9])
        bins = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)
        palette = plotly.colors.sample_colorscale("Viridis", np.linspace(0, 1, len(edges) - 1))
        names = [f"{edges[i]:.3g}-{edges[i + 1]:.3g}" for i in range(len(edges) - 1)]
        colours = dict(zip(names, palette))
        groups = np.where(np.isfinite(values), np.array(names, dtype=object)[bins], "no value")
        colours["no value"] = "#999999"
        names.append("no value")
    for name in names:
        chosen = [line for line, group in zip(lines, groups) if group == name and len(line)]
        if not chosen:
            continue
        xs = np.concatenate([np.r_[line[:, 0], np.nan] for line in chosen])
        ys = np.concatenate([np.r_[line[:, 1], np.nan] for line in chosen])
        traces.append({"type": "scatter", "mode": "lines", "name": name, "x": xs, "y": ys, "hoverinfo": "skip",
                       "line": {"color": colours[name], "width": 3}, "connectgaps": False})
    middles = [line[len(line) // 2] if len(line) else (np.nan, np.nan) for line in lines]
    shown = [c for c in dict.fromkeys([*([colour_by] if colour_by != "class" else []), *columns]) if c in table]
    texts = [f"cells {a} | {b}" + (f"<br>class: {g}" if colour_by == "class" else "") + "".join(
        f"<br>{c}: {row[c]:.4g}" if isinstance(row[c], (float, np.floating)) else f"<br>{c}: {row[c]}" for c in shown)
        for a, b, g, (_, row) in zip(table["cell_a"], table["cell_b"], groups, table.iterrows())]
    marker = {"size": 6, "color": "white", "line": {"width": 1, "color": "black"}}
    if colour_by != "class":  # the colour bar of the binned lines
        marker = {"size": 7, "color": table[colour_by].to_numpy(float), "colorscale": "Viridis",
                  "cmin": float(edges[0]), "cmax": float(edges[-1]), "line": {"width": 1, "color": "black"},
                  "colorbar": {"title": {"text": colour_by}, "thickness": 14}}
    traces.append({"type": "scatter", "mode": "markers", "name": "interfaces", "showlegend": False,
                   "x": [m[0] for m in middles], "y": [m[1] for m in middles], "hovertext": texts,
                   "hoverinfo": "text", "marker": marker, "customdata": table[["cell_a", "cell_b"]].to_numpy()})
    layout = _image_layout(picture.shape[:2])
    layout["legend"] = {"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0}
    layout["margin"] = {"l": 0, "r": 0, "t": 30, "b": 0}
    return go.Figure({"data": traces, "layout": layout}, _validate=False)


def cells_figure(
    picture: np.ndarray,
    labels: np.ndarray,
    cells,
    *,
    columns: list[str],
    max_width: int = 1000,
    selected: set[int] | None = None,
    ids: bool = False,
    view: tuple[float, float, float, float] | None = None,
    colour_by: str | None = None,
):
    """A plotly figure: the picture with one marker per cell that shows its features on hover.

    ``colour_by``: a column; the markers take the cells' colours of the picture (viridis over the
    2nd-98th percentile, :func:`feature_colours`) and the figure gets their colour bar.

    The picture is downsampled to at most ``max_width`` px wide and sent as a
    JPEG; the cells are one scatter trace of markers (one point inside each
    cell, :func:`cell_markers`), so the figure costs the same with 50 or 5000
    cells. ``selected`` cells are drawn larger, in magenta; ``ids`` writes each
    cell's id beside its marker (readable at any zoom: text does not scale).
    ``view``: the part shown, ``(x0, x1, y0, y1)`` in pixels (default all).
    With selections on, Streamlit makes a click select a marker while panning
    is the drag tool; the box and lasso tools are in the mode bar.
    """
    import plotly.graph_objects as go

    traces = [_picture_trace(picture, max_width)]
    markers = cell_markers(labels, cells)
    rows = cells.set_index("cell_id").to_dict("index") if len(cells) else {}
    order = sorted(markers)
    texts = []
    for cell_id in order:
        row = rows.get(cell_id, {})
        texts.append(f"cell {cell_id}" + "".join(
            f"<br>{c}: {row[c]:.4g}" if isinstance(row[c], (float, np.floating)) else f"<br>{c}: {row[c]}"
            for c in columns if c in row))
    chosen = [cell_id in (selected or set()) for cell_id in order]
    # Plain dicts, unvalidated: plotly's per-property checks cost more than the figure's payload.
    traces.append({
        "type": "scatter", "name": "cells", "x": [markers[i][0] for i in order], "y": [markers[i][1] for i in order],
        "customdata": order, "mode": "markers+text" if ids else "markers",
        "text": [str(i) for i in order] if ids else None, "textposition": "top center",
        "textfont": {"color": "#ffe000", "size": 12}, "hovertext": texts, "hoverinfo": "text",
        "marker": {"size": [13 if c else 7 for c in chosen],
                   "color": ["rgba(255,0,160,0.95)" if c else "rgba(255,255,255,0.8)" for c in chosen],
                   "line": {"width": 1, "color": "black"}},
        "selected": {"marker": {"color": "rgba(255,0,160,0.95)"}}, "unselected": {"marker": {"opacity": 0.8}},
        "showlegend": False,
    })
    if colour_by is not None and colour_by in cells:
        from .plots import column_label

        values = np.array([rows.get(i, {}).get(colour_by, np.nan) for i in order], float)
        _, low, high = feature_colours(values)
        traces[-1]["marker"].update({"color": values, "colorscale": "Viridis", "cmin": low, "cmax": high,
                                     "colorbar": {"title": {"text": column_label(colour_by)}, "thickness": 14}})
    return go.Figure({"data": traces, "layout": _image_layout(labels.shape, view)}, _validate=False)
