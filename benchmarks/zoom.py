"""Same cells at any zoom: segmentation with the diameter estimated, on resized images.

Prints three tables:

1. each of the five sample images and both training images resized by 1/3, 1/2, 2 and 3 (no pixel size
   given): the share of the original's inner cells matched at IoU >= 0.75 by the resized image's cells
   (mapped back to the original grid), the diameter estimated, and, with the true pixel size given,
   the median ratio of matched cells' area_um2 to the original's;
2. the 63x-like image (a crop of bbb_01 enlarged 6x, a 16-bit ImageJ TIFF at 0.1028 µm/px) segmented
   with no setting touched, against the crop's own cells;
3. generated junction images with cell diameters from 20 to 250 px: F1 at IoU 0.5 with the diameter estimated.

    python benchmarks/zoom.py [--zooms 0.333 0.5 2 3] [--quick] [--model MODEL.keras]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bbbcore.instances import touches_edge  # noqa: E402
from bbbcore.io import LoadedImage, load_image  # noqa: E402
from bbbcore.pipeline import segment_image  # noqa: E402
from bbbcore.resize import resize, resize_labels  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "bbb"
SAMPLE = 0.617  # µm/px of the sample and training images (their 100 µm scale bar is 162 px)


def zoomed(image: LoadedImage, zoom: float) -> LoadedImage:
    """The image as if taken at ``zoom`` times the magnification (every channel resized, no pixel size)."""
    raw = image.raw.astype(np.float32)
    planes = [resize(raw[..., c] if raw.ndim == 3 else raw, zoom) for c in range(raw.shape[-1] if raw.ndim == 3 else 1)]
    big = np.stack(planes, axis=-1) if raw.ndim == 3 else planes[0]
    big = np.clip(np.round(big), 0, np.iinfo(image.raw.dtype).max).astype(image.raw.dtype)
    return LoadedImage(name=f"{image.name}@{zoom:g}", image_id="", raw=big, junction=resize(image.junction, zoom),
                       nuclei=None if image.nuclei is None else resize(image.nuclei, zoom), pixel_size_um=None,
                       channel_names=image.channel_names, junction_channel=image.junction_channel,
                       nuclear_channel=image.nuclear_channel)


def matched_share(reference: np.ndarray, labels: np.ndarray, *, iou: float = 0.75) -> tuple[float, list]:
    """Share of ``reference``'s inner cells with a cell of ``labels`` at IoU >= ``iou``; matched (ref, other) ids."""
    edge = touches_edge(reference)
    n_ref, n_other = int(reference.max()) + 1, int(labels.max()) + 1
    overlap = np.bincount(reference.ravel().astype(np.int64) * n_other + labels.ravel(),
                          minlength=n_ref * n_other).reshape(n_ref, n_other)
    ref_area, other_area = overlap.sum(axis=1), overlap.sum(axis=0)
    inner = [i for i in range(1, n_ref) if ref_area[i] and not edge[i]]
    pairs = []
    for i in inner:
        j = int(np.argmax(overlap[i, 1:])) + 1 if n_other > 1 else 0
        if j and overlap[i, j] / (ref_area[i] + other_area[j] - overlap[i, j]) >= iou:
            pairs.append((i, j))
    return (len(pairs) / len(inner) if inner else float("nan")), pairs


def zoom_table(model, zooms: list[float], images: list[Path]) -> None:
    print(f"{'image':16s} {'zoom':>5s} {'inner':>5s} {'matched':>8s} {'est. diameter':>14s} {'area_um2 ratio':>15s}")
    shares = []
    for path in images:
        image = load_image(path)
        base = segment_image(image, model, pixel_size_um=SAMPLE)
        base_area = base.cells.set_index("cell_id")["area_um2"]
        for zoom in zooms:
            small = zoomed(image, zoom)
            result = segment_image(small, model, pixel_size_um=SAMPLE / zoom)
            back = resize_labels(result.labels, image.shape)
            share, pairs = matched_share(base.labels, back)
            other_area = result.cells.set_index("cell_id")["area_um2"]
            ratios = [other_area[j] / base_area[i] for i, j in pairs if i in base_area and j in other_area]
            ratio = float(np.median(ratios)) if ratios else float("nan")
            shares.append(share)
            inner = sum(1 for i in np.unique(base.labels[base.labels > 0]) if not touches_edge(base.labels)[i])
            print(f"{path.stem:16s} {zoom:5.2f} {inner:5d} {share:8.1%} {result.diameter_estimated_px / zoom:10.0f} px "
                  f"(x{zoom:g}) {ratio:10.3f}")
    print(f"median share of inner cells matched at IoU >= 0.75: {np.nanmedian(shares):.1%}; "
          f"cases at >= 90 %: {sum(s >= 0.9 for s in shares)} of {len(shares)}")


def best_crop(labels: np.ndarray, size: tuple[int, int]) -> tuple[int, int]:
    """Top-left corner of the ``size`` window holding the most whole cells of ``labels``."""
    from scipy import ndimage as ndi

    boxes = [b for b in ndi.find_objects(labels) if b is not None]
    best, corner = -1, (0, 0)
    for top in range(0, labels.shape[0] - size[0], 16):
        for left in range(0, labels.shape[1] - size[1], 16):
            inside = sum(b[0].start >= top + 1 and b[0].stop <= top + size[0] - 1 and b[1].start >= left + 1
                         and b[1].stop <= left + size[1] - 1 for b in boxes)
            if inside > best:
                best, corner = inside, (top, left)
    return corner


def make_63x(model, folder: Path, *, factor: int = 6, size=(170, 224), pixel_size_um: float = 0.1028,
             source: Path = DATA / "train" / "bbb_01.png", fmt: str = "tif"):
    """The 63x-like file (a crop of ``source`` enlarged 6x) and the crop's own cells (from ``source`` at 10x).

    ``fmt`` "tif": the junction channel as a 16-bit ImageJ TIFF; "czi": a Zeiss CZI holding the nuclear channel
    first and the junction channel second, 12-bit values in 16 bits, named "DAPI" and "ZO-1", as a confocal at 63x
    writes them. A source without a nuclear channel (bbb_01) gets one oval nucleus at the centre of each cell.
    """
    image = load_image(source)
    base = segment_image(image, model)
    top, left = best_crop(base.labels, size)
    crop = image.raw[top:top + size[0], left:left + size[1]]
    truth = base.labels[top:top + size[0], left:left + size[1]]

    def enlarged(index: int, top_value: int) -> np.ndarray:
        plane = resize((crop if crop.ndim == 2 else crop[..., index]).astype(np.float32), factor)
        return np.clip(plane / max(float(plane.max()), 1.0) * top_value, 0, 65535).astype(np.uint16)

    if fmt == "czi":
        from tests.microscope_files import write_czi

        nuclei = enlarged(image.nuclear_channel, 4095) if image.nuclear_channel is not None \
            else _drawn_nuclei(truth, factor, 4095)
        planes = np.stack([nuclei, enlarged(image.junction_channel, 4095)])
        path = write_czi(folder / "zo1_63x.czi", planes, pixel_size_um=pixel_size_um, channel_names=["DAPI", "ZO-1"])
        return path, truth
    import tifffile

    path = folder / "zo1_63x.tif"
    tifffile.imwrite(path, enlarged(image.junction_channel, 60000), imagej=True,
                     resolution=(1 / pixel_size_um, 1 / pixel_size_um), metadata={"unit": "um", "axes": "YX"})
    return path, truth


def _drawn_nuclei(cells: np.ndarray, factor: int, top_value: int) -> np.ndarray:
    """A nuclear plane for ``cells`` enlarged ``factor`` times: a blurred oval at each cell's centre."""
    from scipy import ndimage as ndi

    plane = np.zeros((cells.shape[0] * factor, cells.shape[1] * factor), np.float32)
    rows, cols = np.indices(plane.shape)
    for index, (y, x) in enumerate(ndi.center_of_mass(cells > 0, cells, np.unique(cells[cells > 0]))):
        if np.isfinite(y):
            radius = 5.0 * factor * (1.0 + 0.1 * (index % 3))
            plane[((rows - y * factor) / 1.4) ** 2 + (cols - x * factor) ** 2 < radius**2] = 1.0
    plane = ndi.gaussian_filter(plane, factor)
    return (plane / max(float(plane.max()), 1e-6) * top_value).astype(np.uint16)


def table_63x(model) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path, truth = make_63x(model, Path(tmp))
        image = load_image(path)
        started = time.perf_counter()
        result = segment_image(image, model)
        seconds = time.perf_counter() - started
    back = resize_labels(result.labels, truth.shape)
    share, pairs = matched_share(truth, back)
    inner = sum(1 for i in np.unique(truth[truth > 0]) if not touches_edge(truth)[i])
    areas = result.cells.set_index("cell_id")["area_um2"]
    print(f"63x-like {image.shape[1]} x {image.shape[0]} px, {image.pixel_size_um:g} µm/px from the file: "
          f"diameter estimated {result.diameter_estimated_px:.0f} px, used {result.diameter_used_px:.0f} px; "
          f"{len(pairs)} of {inner} inner cells of the crop matched at IoU >= 0.75 ({share:.0%}); "
          f"their area_um2 {', '.join(f'{areas[j]:.0f}' for _, j in pairs)} (µm² at 0.1028 µm/px); {seconds:.1f} s")
    for warning in result.warnings:
        print(f"  warning: {warning}")


def few_cells_table(model) -> None:
    """Fields of a few large cells (63x-like): crops of each image enlarged 3, 4 and 6x, as TIFFs at 0.1028 µm/px."""
    import tempfile

    sources = [DATA / "train" / "bbb_01.png", DATA / "train" / "bbb_02.png"] + \
        [ROOT / "sample_data" / f"bbb_rgb_0{i}.jpg" for i in (1, 3, 4, 5)]
    print(f"{'enlarged':>8s} {'image':12s} {'true diameter':>13s} {'estimated':>9s} {'matched':>8s}")
    totals = {}
    with tempfile.TemporaryDirectory() as tmp:
        for factor, size in ((3, (340, 448)), (4, (255, 336)), (6, (170, 224))):
            for source in sources:
                path, truth = make_63x(model, Path(tmp), factor=factor, size=size, source=source)
                result = segment_image(load_image(path), model)
                _, pairs = matched_share(truth, resize_labels(result.labels, truth.shape))
                inner = sum(1 for i in np.unique(truth[truth > 0]) if not touches_edge(truth)[i])
                areas, cut = np.bincount(truth.ravel()), touches_edge(truth)
                true_diameter = factor * np.median([np.sqrt(4 * areas[i] / np.pi) for i in range(1, len(areas))
                                                    if areas[i] and not cut[i]])
                found = totals.setdefault(factor, [0, 0])
                found[0], found[1] = found[0] + len(pairs), found[1] + inner
                print(f"{factor:7d}x {source.stem:12s} {true_diameter:10.0f} px {result.diameter_estimated_px or 0:6.0f} px "
                      f"{len(pairs):4d} / {inner}")
    print("matched inner cells at IoU >= 0.75: " + ", ".join(f"{f}x {m} of {n}" for f, (m, n) in totals.items()))


def synthetic_table(model, diameters: list[int]) -> None:
    """F1 on generated junction images (benchmarks/generated_scores.py), one image per texture and diameter."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from generated_scores import TEXTURES, print_table, score_model

    print_table("generated junction images, diameter estimated", score_model(model, diameters, TEXTURES, 1),
                diameters)


def main() -> None:
    from bbbcore.unet import load_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zooms", type=float, nargs="*", default=[1 / 3, 1 / 2, 2, 3])
    parser.add_argument("--quick", action="store_true", help="two sample images, zooms 1/2 and 2")
    parser.add_argument("--model", type=Path, default=None, help="model to measure (default: the shipped one)")
    args = parser.parse_args()
    model = load_model(args.model)
    images = sorted((ROOT / "sample_data").glob("*.jpg")) + [DATA / "train" / "bbb_01.png", DATA / "train" / "bbb_02.png"]
    if args.quick:
        images, args.zooms = images[2:4], [0.5, 2]
    zoom_table(model, args.zooms, images)
    print()
    table_63x(model)
    print()
    if not args.quick:
        few_cells_table(model)
        print()
    synthetic_table(model, [20, 30, 45, 70, 100, 150, 200, 250] if not args.quick else [45, 150])


if __name__ == "__main__":
    main()
