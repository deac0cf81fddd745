"""The microscope's own files: Zeiss CZI, Nikon ND2, Leica LIF and OME-Zarr.

PNG, JPEG and (OME-)TIFF are read in :mod:`bbbcore.io`; this module adds the
vendor formats, each with the format's own package (pylibCZIrw, nd2, readlif,
zarr), imported only when such a file comes: they cost 0.1-0.4 s each to
import, and together about 220 MB less to install than bioio with its plugins
(see README, "File formats").

Every reader returns the pixels of one scene with their axes (letters of
``TZCYXS``) and the metadata it found; :func:`bbbcore.io.read_image_data`
turns them into (H, W) or (H, W, C). A file with several scenes (CZI scenes,
ND2 positions, LIF images, OME-Zarr series) is several images, named
``file#<scene index>``.
"""

from __future__ import annotations

import contextlib
import io as _io
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ImageReadError

#: Suffixes of the formats this module reads (the content decides, not the name).
SUFFIXES = (".czi", ".nd2", ".lif", ".zarr", ".zip")
_SCENE_SUFFIX = re.compile(r"^(.*)#(\d+)$")
_UNIT_TO_UM = {"micrometer": 1.0, "µm": 1.0, "um": 1.0, "micron": 1.0, "nanometer": 1e-3, "nm": 1e-3,
               "millimeter": 1e3, "mm": 1e3, "meter": 1e6, "m": 1e6, "centimeter": 1e4}


@dataclass
class SceneData:
    """One scene of a microscope file, before channels are reordered.

    Attributes
    ----------
    array : ndarray, the pixels, one axis per letter of ``axes``
    axes : str, letters of ``TZCYXS`` (S: samples of an RGB pixel)
    pixel_size_um, channel_names : from the file's metadata, None when absent
    n_scenes : how many scenes the file holds
    """

    array: np.ndarray
    axes: str
    pixel_size_um: float | None = None
    channel_names: list[str] | None = None
    n_scenes: int = 1
    format: str = ""
    extra: dict = field(default_factory=dict)


def sniff(data: bytes) -> str | None:
    """The format of a file from its first bytes: ``"CZI"``, ``"ND2"``, ``"LIF"``, ``"ZARR"`` or None."""
    if data[:10] == b"ZISRAWFILE":
        return "CZI"
    if data[:4] == b"\xda\xce\xbe\x0a" or data[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n":
        return "ND2"
    if data[:4] == b"\x70\x00\x00\x00" and data[8:9] == b"\x2a":
        return "LIF"
    if data[:4] == b"PK\x03\x04" and _zarr_root(data) is not None:
        return "ZARR"
    return None


def split_scene(name: str) -> tuple[str, int | None]:
    """``"a.czi#2"`` -> ``("a.czi", 2)``; a name without a scene part -> ``(name, None)``."""
    found = _SCENE_SUFFIX.match(name)
    return (found.group(1), int(found.group(2))) if found else (name, None)


def scene_name(name: str, scene: int, n_scenes: int) -> str:
    """The image name of one scene: the file's name alone when it holds one scene."""
    return name if n_scenes <= 1 else f"{name}#{scene}"


def is_zarr_folder(path: Path) -> bool:
    """True for an OME-Zarr folder (it is one image, not a folder of images)."""
    return path.is_dir() and any((path / key).is_file() for key in ("zarr.json", ".zattrs", ".zgroup"))


def zip_folder(path: Path) -> bytes:
    """A zarr folder as the bytes of a zip file (stored, fixed dates): the same folder gives the same bytes."""
    buffer = _io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(file.relative_to(path).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
            archive.writestr(info, file.read_bytes())
    return buffer.getvalue()


@dataclass(frozen=True)
class Limits:
    """What a reader checks before it reads the pixels (see :func:`bbbcore.io.read_image_data`)."""

    max_megapixels: float
    max_projection: bool = False
    count_only: bool = False


def read_scene(fmt: str, data: bytes, label: str, scene: int | None, limits: Limits) -> SceneData:
    """Read scene ``scene`` (None: the first) of a file in format ``fmt``, within ``limits``.

    With ``limits.count_only`` only the metadata is read (``array`` stays empty).
    """
    reader = {"CZI": _read_czi, "ND2": _read_nd2, "LIF": _read_lif, "ZARR": _read_zarr}[fmt]
    try:
        with _spilled(data, ".zip" if fmt == "ZARR" else f".{fmt.lower()}") as path:
            found = reader(path, label, scene, limits)
    except ImageReadError:
        raise
    except ImportError as exc:
        raise ImageReadError(label, f"is a {fmt} file but its reader is not installed ({exc.name}); "
                                    "run the README's install command again") from None
    except Exception as exc:  # the vendor readers raise many types for broken files
        first = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        raise ImageReadError(label, f"{fmt} file could not be read ({first}): it may be damaged or cut short; copy "
                                    "it again, or open it in Fiji (Bio-Formats) and save it as OME-TIFF") from None
    found.format = fmt
    return found


def count_scenes(fmt: str, data: bytes, label: str) -> int:
    """How many scenes (images) a file in format ``fmt`` holds."""
    return read_scene(fmt, data, label, None, Limits(float("inf"), count_only=True)).n_scenes


@contextlib.contextmanager
def _spilled(data: bytes, suffix: str):
    """The bytes as a temporary file (the vendor readers open paths), removed afterwards."""
    handle, name = tempfile.mkstemp(suffix=suffix, prefix="bbb-")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        yield Path(name)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)


def _pick_scene(label: str, scene: int | None, n_scenes: int) -> int:
    """The scene index to read (None: the first)."""
    if scene is None:
        return 0
    if not 0 <= scene < n_scenes:
        raise ImageReadError(label, f"has {n_scenes} scene(s); scene {scene} does not exist")
    return scene


def _read_pixels(found: SceneData, label: str, limits: Limits) -> bool:
    """Whether to read the pixels now: refuses, before reading, a scene too large or a stack not to be projected."""
    if limits.count_only:
        return False
    from .io import _check_size, _check_stack_size

    n_z, n_c, height, width = found.extra["planes"]
    _check_size(label, height, width, limits.max_megapixels)
    _check_stack_size(label, (n_z, n_c, height, width), "ZCYX", limits.max_megapixels)
    if n_z > 1 and not limits.max_projection:
        raise ImageReadError(label, f"is a stack of {n_z} planes (axes ZCYX); ask for a maximum projection "
                                    "to analyse it")
    return True


def _no_time(label: str, n_times: int) -> None:
    if n_times > 1:
        raise ImageReadError(label, f"is a time series of {n_times} time points; this tool analyses still images: "
                                    "save the time point you want as its own file")


# --- Zeiss CZI (pylibCZIrw) -------------------------------------------------------------------------------------


def _read_czi(path: Path, label: str, scene: int | None, limits: Limits) -> SceneData:
    from pylibCZIrw import czi

    with czi.open_czi(str(path)) as doc:
        box = doc.total_bounding_box
        rects = doc.scenes_bounding_rectangle
        ids = sorted(rects) or [None]
        index = _pick_scene(label, scene, len(ids))
        rect = rects[ids[index]] if ids[index] is not None else doc.total_bounding_rectangle
        n_c, n_z, n_t = (box.get(k, (0, 1))[1] - box.get(k, (0, 1))[0] for k in "CZT")
        _no_time(label, n_t)
        meta = doc.metadata.get("ImageDocument", {}).get("Metadata", {})
        found = SceneData(np.zeros((0, 0), np.uint8), "YX", _czi_pixel_size(meta), _czi_channel_names(meta, n_c),
                          n_scenes=len(ids), extra={"planes": (n_z, n_c, rect.h, rect.w)})
        if not _read_pixels(found, label, limits):
            return found
        roi = (rect.x, rect.y, rect.w, rect.h)
        c0, z0 = box.get("C", (0, 1))[0], box.get("Z", (0, 1))[0]
        stack = [[doc.read(roi=roi, plane={"C": c0 + c, "Z": z0 + z, "T": 0}, scene=ids[index]) for c in range(n_c)]
                 for z in range(n_z)]
    array = np.asarray(stack)  # Z, C, Y, X, S (S: 1, or 3 for BGR)
    if array.shape[-1] == 3:
        array = array[..., ::-1]  # Zeiss stores colour as BGR
    found.array, found.axes = array, "ZCYXS"
    return found


def _czi_pixel_size(meta: dict) -> float | None:
    items = ((meta.get("Scaling") or {}).get("Items") or {}).get("Distance") or []
    for item in items if isinstance(items, list) else [items]:
        if item.get("@Id") == "X":
            with contextlib.suppress(TypeError, ValueError):
                value = float(f"{float(item.get('Value')) * 1e6:.10g}")  # metres, without float noise
                return value if value > 0 else None
    return None


def _czi_channel_names(meta: dict, n_channels: int) -> list[str] | None:
    image = (meta.get("Information") or {}).get("Image") or {}
    channels = ((image.get("Dimensions") or {}).get("Channels") or {}).get("Channel") or []
    channels = channels if isinstance(channels, list) else [channels]
    names = [c.get("@Name") or c.get("Fluor") or c.get("DyeName") for c in channels if isinstance(c, dict)]
    return [str(n) for n in names] if len(names) == n_channels and all(names) else None


# --- Nikon ND2 (nd2) --------------------------------------------------------------------------------------------


def _read_nd2(path: Path, label: str, scene: int | None, limits: Limits) -> SceneData:
    import nd2

    with nd2.ND2File(str(path)) as f:
        sizes = dict(f.sizes)
        _no_time(label, sizes.get("T", 1))
        n_scenes = sizes.get("P", 1)
        index = _pick_scene(label, scene, n_scenes)
        voxel = f.voxel_size()
        names = [c.channel.name for c in (f.metadata.channels or [])] if f.metadata else []
        found = SceneData(np.zeros((0, 0), np.uint8), "YX", float(voxel.x) if voxel.x > 0 else None,
                          names if names and len(names) == sizes.get("C", 1) and all(names) else None,
                          n_scenes=n_scenes, extra={"planes": (sizes.get("Z", 1), sizes.get("C", 1),
                                                               sizes.get("Y", 0), sizes.get("X", 0))})
        if not _read_pixels(found, label, limits):
            return found
        lazy = f.to_dask()
        axes = "".join(sizes)
        if "P" in axes:
            lazy = lazy[(slice(None),) * axes.index("P") + (index,)]
            axes = axes.replace("P", "")
        found.array, found.axes = np.asarray(lazy), axes
    return found


# --- Leica LIF (readlif) ----------------------------------------------------------------------------------------


def _read_lif(path: Path, label: str, scene: int | None, limits: Limits) -> SceneData:
    from readlif.reader import LifFile

    lif = LifFile(str(path))
    n_scenes = len(lif.image_list)
    index = _pick_scene(label, scene, n_scenes)
    image = lif.get_image(index)
    n_x, n_y, n_z, n_t, n_m = (int(v) for v in image.dims[:5]) if len(image.dims) >= 5 else (*image.dims, 1)
    _no_time(label, n_t)
    if n_m > 1:
        raise ImageReadError(label, f"scene {index} is a mosaic of {n_m} tiles; merge the tiles in the "
                                    "microscope's software and save the merged image")
    scale = image.scale[0] if image.scale and image.scale[0] else None  # pixels per µm
    found = SceneData(np.zeros((0, 0), np.uint8), "YX", 1.0 / scale if scale else None, None, n_scenes=n_scenes,
                      extra={"planes": (n_z, image.channels, n_y, n_x)})
    if not _read_pixels(found, label, limits):
        return found
    found.array = np.asarray([[np.asarray(image.get_frame(z=z, t=0, c=c)) for c in range(image.channels)]
                              for z in range(n_z)])
    found.axes = "ZCYX"
    return found


# --- OME-Zarr (zarr), as a zip of the .zarr folder --------------------------------------------------------------


def _zarr_root(source: bytes | Path) -> str | None:
    """The folder inside a zip (its bytes or its path) that holds the zarr's root metadata ('' for the top), or None."""
    try:
        names = zipfile.ZipFile(source if isinstance(source, Path) else _io.BytesIO(source)).namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    roots = [n.rsplit("/", 1)[0] if "/" in n else "" for n in names
             if n.rsplit("/", 1)[-1] in ("zarr.json", ".zattrs", ".zgroup")]
    return min(roots, key=lambda r: r.count("/") + (len(r) > 0)) if roots else None


def _read_zarr(path: Path, label: str, scene: int | None, limits: Limits) -> SceneData:
    import zarr

    root_path = _zarr_root(path) or ""  # the zip's directory only, not its bytes again
    store = zarr.storage.ZipStore(str(path), mode="r")
    try:
        root = zarr.open_group(store, mode="r", path=root_path or None)
        groups = _zarr_images(root, label)
        index = _pick_scene(label, scene, len(groups))
        found = _zarr_scene(groups[index], label)
        found.n_scenes = len(groups)
        if _read_pixels(found, label, limits):
            found.array = np.asarray(found.extra.pop("lazy")[...])
    finally:
        store.close()
    return found


def _zarr_images(root, label: str) -> list:
    """The image groups of an OME-Zarr: the root, or bioformats2raw's numbered series."""
    attrs = dict(root.attrs)
    ome = attrs.get("ome", attrs)
    if "multiscales" in ome:
        return [root]
    if "plate" in ome or "well" in ome:
        raise ImageReadError(label, "is an OME-Zarr plate; open one field's image folder (e.g. A/1/0) instead")
    numbered = sorted((k for k in root.group_keys() if k.isdigit()), key=int)
    if not numbered:
        raise ImageReadError(label, "is a zarr without OME-Zarr image metadata (no 'multiscales')")
    return [root[k] for k in numbered]


def _zarr_scene(group, label: str) -> SceneData:
    attrs = dict(group.attrs)
    ome = attrs.get("ome", attrs)
    multiscale = ome["multiscales"][0]
    axes_meta = multiscale.get("axes") or [{"name": a} for a in "tczyx"]
    axes = "".join((a["name"] if isinstance(a, dict) else str(a))[0].upper() for a in axes_meta)
    dataset = multiscale["datasets"][0]
    array = group[dataset["path"]]
    if len(axes) != array.ndim:
        axes = "TCZYX"[-array.ndim:]
    sizes = dict(zip(axes, array.shape, strict=True))
    _no_time(label, sizes.get("T", 1))
    pixel_size = None
    for transform in dataset.get("coordinateTransformations") or []:
        if transform.get("type") == "scale" and "X" in axes:
            unit = axes_meta[axes.index("X")].get("unit", "micrometer") if isinstance(axes_meta[0], dict) else "µm"
            factor = _UNIT_TO_UM.get(str(unit).lower())
            value = float(transform["scale"][axes.index("X")]) * factor if factor else 0
            pixel_size = value if value > 0 else None
    channels = (ome.get("omero") or attrs.get("omero") or {}).get("channels") or []
    names = [c.get("label") for c in channels if isinstance(c, dict)]
    found = SceneData(np.zeros((0, 0), np.uint8), "YX", pixel_size,
                      names if names and len(names) == sizes.get("C", 1) and all(names) else None,
                      extra={"planes": (sizes.get("Z", 1), sizes.get("C", 1), sizes.get("Y", 0), sizes.get("X", 0)),
                             "lazy": array})
    found.axes = axes
    return found
