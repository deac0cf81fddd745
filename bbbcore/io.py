"""Load microscopy images, pick channels, normalise intensities.

Every failure is an :class:`~bbbcore.errors.ImageReadError` whose message is
one line, ``"<file name>: <problem>"``.
"""

from __future__ import annotations

import hashlib
import io as _io
import logging
import re
import threading
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from . import config, formats
from .errors import ImageReadError, read_input

Source = str | Path | bytes | BinaryIO

#: Pixel types accepted; others (bool, complex, 64-bit ints, objects) are refused.
SUPPORTED_DTYPES = tuple(
    np.dtype(t) for t in ("uint8", "uint16", "int16", "uint32", "int32", "float32", "float64")
)

#: File suffixes the loader reads (content is checked too, not only the name); .zip: a zipped OME-Zarr.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".czi", ".nd2", ".lif", ".zarr", ".zip")
#: The problem, and what to do, for a file that is no image the loader knows.
UNREADABLE = ("not a readable image (expected PNG, JPEG, TIFF, CZI, ND2, LIF or zipped OME-Zarr): save it as TIFF "
              "from the microscope software or Fiji")
#: The warning for a file none of whose channels shows anything (flat, noise only, or a few specks).
NO_SIGNAL = ("no channel holds signal (each is flat, noise only, or a few specks): check the channels and the "
             "exposure; cells found in it are not to be trusted")
_RGB_NAMES = {"red": 0, "r": 0, "green": 1, "g": 1, "blue": 2, "b": 2}

# A malformed TIFF makes tifffile log its own line ("<tifffile.TiffFile 'Unnamed binary stream'> contains no
# pages"), which Python prints to stderr when nothing handles logging (the command line), once per read: the
# reader below says what is wrong in one line naming the file. An application that handles logging still
# gets tifffile's lines in its log.
logging.getLogger("tifffile").addHandler(logging.NullHandler())
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


@dataclass
class LoadedImage:
    """An image after loading, channel selection and normalisation.

    Attributes
    ----------
    name : str
        File name (no folder), used in tables and messages.
    image_id : str
        First 16 hex digits of the SHA-256 of the file's bytes.
    raw : ndarray
        The pixels as read, (H, W) or (H, W, C), channels last.
    junction : ndarray
        (H, W) float32 junction channel, normalised to [0, 1].
    nuclei : ndarray or None
        (H, W) float32 nuclear channel, normalised, when there is one.
    pixel_size_um : float or None
        µm per pixel from the file's metadata, when the file says it.
    channel_names : list of str
        One name per channel of ``raw``.
    junction_channel, nuclear_channel : int or None
        Indices into the channels of ``raw``.
    channels_how : str
        How they were chosen ("by name (...)", "by content (...)", "as set", "one channel").
    warnings : list of str
        One line per doubtful channel choice (shown with the results, not fatal).
    """

    name: str
    image_id: str
    raw: np.ndarray
    junction: np.ndarray
    nuclei: np.ndarray | None
    pixel_size_um: float | None
    channel_names: list[str] = field(default_factory=list)
    junction_channel: int = 0
    nuclear_channel: int | None = None
    channels_how: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int]:
        """Height and width in pixels."""
        return self.junction.shape  # type: ignore[return-value]

    @property
    def junction_raw(self) -> np.ndarray:
        """(H, W) junction channel in the file's own units (for intensity measurements)."""
        return self.raw if self.raw.ndim == 2 else self.raw[..., self.junction_channel]

    @property
    def nuclei_raw(self) -> np.ndarray | None:
        """(H, W) nuclear channel in the file's own units, when there is one."""
        if self.nuclear_channel is None or self.raw.ndim == 2:
            return None
        return self.raw[..., self.nuclear_channel]


def file_bytes(path: str | Path, *, label: str | None = None) -> bytes:
    """The bytes of an image file; an OME-Zarr folder comes as a zip of its files (one image, one hash)."""
    path = Path(path)
    if formats.is_zarr_folder(path):
        return formats.zip_folder(path)
    return read_input(path, ImageReadError, label=label or path.name, kind="an image file")


def _read_bytes(source: Source, name: str | None) -> tuple[bytes, str]:
    if isinstance(source, (str, Path)):
        path = Path(source)
        label = name or path.name
        return file_bytes(path, label=label), label
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), name or "<bytes>"
    data = source.read()
    label = name or getattr(source, "name", None) or "<upload>"
    return bytes(data), Path(str(label)).name


def image_names(source: Source, *, name: str | None = None) -> list[str]:
    """The names of the images a file holds: its own name, or ``name#<scene>`` for each of its scenes.

    Raises :class:`ImageReadError` when the file is not a readable image.
    """
    data, label = _read_bytes(source, name)
    fmt = formats.sniff(data)
    if fmt is not None:
        n_scenes = formats.count_scenes(fmt, data, label)
    elif data[:4] in _TIFF_MAGIC:
        n_scenes = _tiff_scene_count(data, label)
    else:
        n_scenes = 1
    return [formats.scene_name(label, i, n_scenes) for i in range(n_scenes)]


def _tiff_scene_count(data: bytes, label: str) -> int:
    import tifffile

    try:
        with tifffile.TiffFile(_io.BytesIO(data)) as tif:
            return len(tif.series) if tif.is_ome and tif.series else 1
    except Exception:  # unreadable: the reader says why, later, in one line
        return 1


def read_array(
    source: Source,
    *,
    name: str | None = None,
    max_projection: bool = False,
    max_megapixels: float = config.MAX_MEGAPIXELS,
) -> np.ndarray:
    """Read the pixels of an image file, channels last.

    A shortcut to :func:`read_image_data` for callers that need no metadata.
    """
    return read_image_data(
        source, name=name, max_projection=max_projection, max_megapixels=max_megapixels
    )[0]


def read_image_data(
    source: Source,
    *,
    name: str | None = None,
    max_projection: bool = False,
    max_megapixels: float = config.MAX_MEGAPIXELS,
    scene: int | None = None,
) -> tuple[np.ndarray, dict]:
    """Read an image file into an array (H, W) or (H, W, C) and its metadata.

    Parameters
    ----------
    source : path, bytes or binary file
        The image. Its format is found from its content, not its name.
    name : str, optional
        Name used in messages (default: the file name).
    max_projection : bool
        Collapse the z-planes (or pages) of a stack by their maximum. When
        False, a stack raises an error that says so.
    max_megapixels : float
        Larger images are refused.
    scene : int, optional
        Which scene of a file with several (CZI scenes, ND2 positions, LIF
        images, OME series). Default: the one the name says (``"a.czi#2"``),
        else the first.

    Returns
    -------
    array : ndarray
    meta : dict
        ``pixel_size_um`` (float or None), ``channel_names`` (list or None),
        ``image_id`` (hash of the bytes, and of the scene when the file has
        several), ``name``, ``format``, ``n_scenes``, ``scene``.
    """
    data, label = _read_bytes(source, name)
    if len(data) == 0:
        raise ImageReadError(label, "file is empty (0 bytes)")
    if scene is None:
        scene = formats.split_scene(label)[1]
    meta = {
        "name": label,
        "image_id": hashlib.sha256(data).hexdigest()[:16],
        "pixel_size_um": None,
        "channel_names": None,
        "n_scenes": 1,
        "scene": None,
    }
    fmt = formats.sniff(data)
    if fmt is not None:
        found = formats.read_scene(fmt, data, label, scene, formats.Limits(max_megapixels, max_projection))
        meta.update(format=fmt, pixel_size_um=found.pixel_size_um, channel_names=found.channel_names,
                    n_scenes=found.n_scenes)
        array = _tiff_to_yxc(found.array, found.axes, label, max_projection)
    elif data[:4] in _TIFF_MAGIC:
        meta["format"] = "TIFF"
        array = _read_tiff(data, label, meta, max_projection, max_megapixels, scene)
    else:
        array = _read_pillow(data, label, meta, max_megapixels)
    if meta["n_scenes"] > 1:
        # Each scene is its own image: its identity holds the scene.
        meta["scene"] = scene or 0
        meta["image_id"] = hashlib.sha256(data + b"#%d" % meta["scene"]).hexdigest()[:16]
    if array.dtype not in SUPPORTED_DTYPES:
        raise ImageReadError(label, f"unsupported pixel type {array.dtype} (use 8- or 16-bit integers or 32-bit float)")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageReadError(label, f"image has zero size ({array.shape[1]} x {array.shape[0]} px)")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ImageReadError(label, "image contains NaN or infinite values")
    return array, meta


def _megapixels(pixels: float, limit: float) -> str:
    """Megapixels for a message: whole numbers when large, never rounded down to the limit."""
    value = pixels / 1e6
    for digits in (0, 1, 2, 3):
        text = f"{value:.{digits}f}"
        if float(text) > limit or digits == 3:
            return text
    return text  # pragma: no cover


def _check_size(label: str, height: int, width: int, max_megapixels: float) -> None:
    """Refuse an image whose header says it is empty or larger than ``max_megapixels``, before decoding."""
    if height == 0 or width == 0:
        raise ImageReadError(label, f"image has zero size ({width} x {height} px)")
    if height * width > max_megapixels * 1e6:
        raise ImageReadError(label, _too_large(height * width, max_megapixels, size=f"{width} x {height} px"))


def _too_large(pixels: float, max_megapixels: float, what: str = "image", size: str = "") -> str:
    """The line for an image over the limit (``size``: its "W x H px", when known), with what to do."""
    return (f"{what} is too large ({_megapixels(pixels, max_megapixels)} megapixels; the limit is {max_megapixels:g})"
            f"{': ' + size if size else ''}; crop it into smaller fields, or bin it (Fiji: Image > Transform > "
            "Bin), first")


#: Pillow's own decompression-bomb limit is a module global; it is lifted only
#: while a header is read (our megapixel limit is checked right after), one
#: thread at a time, so no other reader sees it changed for long.
_PIL_LIMIT_LOCK = threading.Lock()


def _open_pillow(data: bytes, label: str, max_megapixels: float):
    """``PIL.Image.open`` (lazy: reads the header only) without Pillow's bomb error; ours is clearer."""
    from PIL import Image

    with _PIL_LIMIT_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        previous, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            return Image.open(_io.BytesIO(data))
        except Image.DecompressionBombError as exc:  # the limit was set again elsewhere meanwhile
            found = re.search(r"\((\d+) pixels\)", str(exc))
            pixels = int(found.group(1)) if found else 2 * (previous or 0)
            raise ImageReadError(label, _too_large(pixels, max_megapixels)) from None
        finally:
            Image.MAX_IMAGE_PIXELS = previous


def _read_pillow(data: bytes, label: str, meta: dict, max_megapixels: float) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        image = _open_pillow(data, label, max_megapixels)
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError(label, UNREADABLE) from None
    except Exception as exc:  # PIL raises many types for broken headers
        raise ImageReadError(label, f"not a readable image ({type(exc).__name__}): the file is damaged or cut "
                             "short; copy it again from the microscope") from None
    meta["format"] = image.format or "unknown"
    if image.format not in ("PNG", "JPEG", "MPO", "BMP"):
        raise ImageReadError(label, f"unsupported format {image.format} (expected PNG, JPEG or TIFF)")
    width, height = image.size
    _check_size(label, height, width, max_megapixels)
    try:
        with warnings.catch_warnings():
            # Pillow checks its limit when opening, not when decoding; ours held above.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
    except Image.DecompressionBombError:
        raise ImageReadError(label, _too_large(width * height, max_megapixels, size=f"{width} x {height} px")) from None
    except OSError as exc:
        problem = "file is truncated" if "truncated" in str(exc).lower() else f"image data is corrupt ({exc})"
        raise ImageReadError(label, problem) from None
    except Exception as exc:
        raise ImageReadError(label, f"image data is corrupt ({type(exc).__name__})") from None
    mode = image.mode
    if mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV"):
        image = image.convert("RGBA" if "A" in mode or "transparency" in image.info else "RGB")
    elif mode == "1":
        image = image.convert("L")
    elif mode.startswith("I;16"):
        return np.asarray(image, dtype=np.uint16)
    array = np.asarray(image)
    if array.ndim == 3 and image.mode in ("RGBA", "LA"):
        array = array[..., :-1]  # alpha is not a stain
        if array.shape[-1] == 1:
            array = array[..., 0]
    if array.ndim == 3:
        meta["channel_names"] = ["red", "green", "blue"][: array.shape[-1]]
    return array


def _read_tiff(
    data: bytes, label: str, meta: dict, max_projection: bool, max_megapixels: float, scene: int | None = None
) -> np.ndarray:
    import tifffile

    try:
        with tifffile.TiffFile(_io.BytesIO(data)) as tif:
            if not tif.series:
                raise ImageReadError(label, "TIFF holds no image")
            # An OME-TIFF's series are its scenes (positions); other TIFFs' extra series are thumbnails.
            meta["n_scenes"] = len(tif.series) if tif.is_ome else 1
            if scene is not None and meta["n_scenes"] > 1 and not 0 <= scene < meta["n_scenes"]:
                raise ImageReadError(label, f"has {meta['n_scenes']} scene(s); scene {scene} does not exist")
            index = scene if scene is not None and meta["n_scenes"] > 1 else 0
            series = tif.series[index]
            axes = series.axes.upper()
            shape = series.shape
            if 0 in shape or not shape:
                raise ImageReadError(label, "image has zero size (no pixels)")
            if "Y" not in axes or "X" not in axes:
                raise ImageReadError(label, f"TIFF has no 2-D image plane (axes {axes})")
            _check_size(label, shape[axes.index("Y")], shape[axes.index("X")], max_megapixels)
            _check_stack_size(label, shape, axes, max_megapixels)
            array = series.asarray()
            meta["pixel_size_um"] = _tiff_pixel_size(tif, index)
            meta["channel_names"] = _tiff_channel_names(tif, index)
    except ImageReadError:
        raise
    except Exception as exc:
        text = str(exc).lower()
        if isinstance(exc, (EOFError, ValueError, OSError)) and ("eof" in text or "truncat" in text or "read" in text):
            raise ImageReadError(label, "file is truncated") from None
        raise ImageReadError(label, f"TIFF could not be read ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    return _tiff_to_yxc(array, axes, label, max_projection)


#: A TIFF series (every plane and channel) may hold this many times the
#: megapixel limit: a z-stack of 20 full-size planes, or 60 planes of 3 channels
#: at a third of it; more would need gigabytes before it could be projected.
MAX_STACK_FACTOR = 20


def _check_stack_size(label: str, shape: tuple, axes: str, max_megapixels: float) -> None:
    """Refuse a TIFF series whose planes together exceed ``MAX_STACK_FACTOR`` times the limit."""
    pixels = float(np.prod([float(n) for n in shape]))
    planes = int(pixels // max(1, shape[axes.index("Y")] * shape[axes.index("X")]))
    if pixels > MAX_STACK_FACTOR * max_megapixels * 1e6:
        raise ImageReadError(label, f"stack is too large ({planes} planes and channels, "
                                    f"{_megapixels(pixels, MAX_STACK_FACTOR * max_megapixels)} megapixels in all; "
                                    f"the limit is {MAX_STACK_FACTOR * max_megapixels:g}); save the planes you "
                                    "need, or their maximum projection (Fiji: Image > Stacks > Z Project), first")


#: Pages of a TIFF whose axes are not named that are read as channels (more: a stack of planes).
MAX_UNNAMED_CHANNELS = 4


def _tiff_to_yxc(array: np.ndarray, axes: str, label: str, max_projection: bool) -> np.ndarray:
    """Reorder a TIFF series to (Y, X) or (Y, X, C), projecting stacks if asked."""
    # Drop singleton axes other than Y and X.
    keep = [i for i, a in enumerate(axes) if a in "YX" or array.shape[i] > 1]
    array = array.reshape([array.shape[i] for i in keep])
    axes = "".join(axes[i] for i in keep)
    if len(axes) == 3 and axes[0] in "QI" and array.shape[0] <= MAX_UNNAMED_CHANNELS:
        # 2-4 pages of one size with no axis named: channels (ZO-1 + DAPI saved page by page), as
        # Fiji's composites; a z-stack names its axis or has more planes.
        axes = "C" + axes[1:]
    channel_axes = [a for a in axes if a in "CS"]
    stack_axes = [a for a in axes if a not in "YXCS"]
    if stack_axes:
        planes = int(np.prod([array.shape[axes.index(a)] for a in stack_axes]))
        if not max_projection:
            raise ImageReadError(
                label,
                f"is a stack of {planes} planes (axes {axes}); ask for a maximum projection to analyse it",
            )
        for a in stack_axes:
            array = array.max(axis=axes.index(a))
            axes = axes.replace(a, "")
    if len(channel_axes) == 2:  # C and S: fold into one channel axis
        c, s = axes.index("C"), axes.index("S")
        array = np.moveaxis(array, [c, s], [-2, -1])
        array = array.reshape(array.shape[:-2] + (-1,))
        axes = axes.replace("C", "").replace("S", "") + "C"
    order = [axes.index("Y"), axes.index("X")] + [i for i, a in enumerate(axes) if a in "CS"]
    return np.ascontiguousarray(np.transpose(array, order))


def _ome_image(tif, index: int):
    """The ``index``-th OME ``Image`` element of an OME-TIFF, or None."""
    if not (tif.is_ome and tif.ome_metadata):
        return None
    try:
        root = ET.fromstring(tif.ome_metadata)
    except ET.ParseError:
        return None
    images = [e for e in root if e.tag.endswith("}Image") or e.tag == "Image"]
    return images[index] if index < len(images) else None


def _tiff_pixel_size(tif, index: int = 0) -> float | None:
    """µm per pixel from OME-XML or ImageJ metadata; None when absent."""
    image = _ome_image(tif, index)
    for element in image.iter() if image is not None else ():
        if element.tag.endswith("Pixels") and element.get("PhysicalSizeX"):
            try:
                size = float(element.get("PhysicalSizeX"))
            except ValueError:
                break
            factor = _UNIT_TO_UM.get(element.get("PhysicalSizeXUnit", "µm").lower())
            if factor and size > 0 and np.isfinite(size):
                return size * factor
    if tif.is_imagej:
        ij = tif.imagej_metadata or {}
        unit = str(ij.get("unit", "")).lower().replace("\\u00b5", "µ")
        factor = _UNIT_TO_UM.get(unit)
        tag = tif.pages.first.tags.get("XResolution")
        if factor and tag is not None:
            numerator, denominator = tag.value
            if numerator > 0:
                size = denominator / numerator * factor
                if size > 0 and np.isfinite(size) and size != 1.0 * factor:  # 1 px/unit means "not calibrated"
                    return size
    return None


def tiff_pixel_size(path: str | Path) -> float | None:
    """µm per pixel in a TIFF file's OME-XML or ImageJ metadata (None when absent or unreadable)."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            return _tiff_pixel_size(tif)
    except (OSError, ValueError, tifffile.TiffFileError):
        return None


_UNIT_TO_UM = {"µm": 1.0, "um": 1.0, "micron": 1.0, "microns": 1.0, "μm": 1.0, "nm": 1e-3, "mm": 1e3}


def _tiff_channel_names(tif, index: int = 0) -> list[str] | None:
    image = _ome_image(tif, index)
    if image is not None:
        names = [e.get("Name") for e in image.iter() if e.tag.endswith("}Channel") or e.tag == "Channel"]
        if names and all(names):
            return [str(n) for n in names]
    if tif.is_imagej:
        labels = (tif.imagej_metadata or {}).get("Labels")
        if isinstance(labels, (list, tuple)) and labels:
            return [str(x) for x in labels]
    return None


@dataclass(frozen=True)
class ChannelChoice:
    """The junction and nuclear channel of an image, how they were chosen, and doubts about them."""

    junction: int
    nuclear: int | None
    how: str
    warnings: tuple[str, ...] = ()


def choose_channels(
    array: np.ndarray,
    channel: int | str | None = None,
    nuclear_channel: int | str | None = "auto",
    *,
    channel_names: list[str] | None = None,
    name: str = "<image>",
) -> ChannelChoice:
    """The junction and nuclear channels of ``array`` (channels last).

    ``channel`` and ``nuclear_channel`` are ``"auto"`` (or None for the
    junction), an index, a colour (``"green"``) or a name from the file
    (``"ZO-1"``); ``nuclear_channel`` None or ``"none"``: no nuclear channel.
    Automatic picks go by the channels' names, else their content
    (:func:`bbbcore.channels.pick_channels`: the junction stain is a network
    of lines, the nuclear one holds blobs). A pick that looks wrong (DAPI
    chosen as the junction channel) gets a warning line naming the file.
    """
    from .channels import check_pick, pick_channels

    n_channels = 1 if array.ndim == 2 else array.shape[-1]
    if n_channels == 1:
        if channel not in (None, "auto"):
            _resolve(channel, ["gray"], 1, name)
        return ChannelChoice(0, None, "one channel")
    names = _names(n_channels, channel_names)
    auto_junction = channel is None or channel == "auto"
    pick = pick_channels(array, channel_names) if auto_junction or nuclear_channel == "auto" else None
    junction = pick.junction if auto_junction else _resolve(channel, names, n_channels, name)
    if nuclear_channel is None or nuclear_channel == "none":
        nuclear = None
    elif nuclear_channel == "auto":
        nuclear = pick.nuclear if pick.nuclear != junction else None
    else:
        nuclear = _resolve(nuclear_channel, names, n_channels, name)
        nuclear = None if nuclear == junction else nuclear
    how = f"by {pick.how} ({pick.reason})" if auto_junction and nuclear_channel == "auto" else "as set"
    if how.startswith("by content"):
        # The content's own best pick: checking it against the content again would cost 0.07 s for nothing.
        lines = [NO_SIGNAL] if "is empty" in pick.reason else []
    else:  # set by a person, or by names (which can be wrong)
        lines = check_pick(array, junction, nuclear, channel_names)
    warnings = tuple(f"{name}: {line}" for line in lines)
    return ChannelChoice(junction, nuclear, how, warnings)


def _names(n_channels: int, channel_names: list[str] | None) -> list[str]:
    if channel_names and len(channel_names) == n_channels:
        return list(channel_names)
    if n_channels in (3, 4):
        return ["red", "green", "blue", "alpha"][:n_channels]
    return [f"channel {i}" for i in range(n_channels)]


def _resolve(channel: int | str, names: list[str], n_channels: int, name: str) -> int:
    if isinstance(channel, str) and re.fullmatch(r"\d+", channel.strip()):
        channel = int(channel)
    if isinstance(channel, (int, np.integer)):
        if not 0 <= channel < n_channels:
            raise ImageReadError(name, f"has {n_channels} channel(s); channel {channel} does not exist")
        return int(channel)
    key = str(channel).strip().lower()
    for i, n in enumerate(names):
        if n.lower() == key:
            return i
    if key in ("gray", "grey") and n_channels == 1:
        return 0
    if key in _RGB_NAMES and n_channels in (3, 4):
        return _RGB_NAMES[key]
    raise ImageReadError(name, f"has no channel named {channel!r} (channels: {', '.join(names)})")


def normalise(channel: np.ndarray, percentiles: tuple[float, float] = config.NORMALISE_PERCENTILES) -> np.ndarray:
    """Scale intensities so the given percentiles map to 0 and 1 (clipped).

    Linear in the input, so an 8-bit image and the same image stored as
    16-bit give the same result.
    """
    values = np.asarray(channel, dtype=np.float32)
    sample = values[:: max(1, values.shape[0] // 512), :: max(1, values.shape[1] // 512)]
    low, high = np.percentile(sample, percentiles)
    if high <= low:
        high = low + 1.0 if values.max() <= low else float(values.max())
    out = (values - np.float32(low)) / np.float32(high - low)
    return np.clip(out, 0.0, 1.0, out=out)


def load_image(
    source: Source,
    *,
    name: str | None = None,
    channel: int | str | None = None,
    nuclear_channel: int | str | None = "auto",
    max_projection: bool = False,
    max_megapixels: float = config.MAX_MEGAPIXELS,
    scene: int | None = None,
) -> LoadedImage:
    """Load an image, pick its junction (and nuclear) channel and normalise.

    Parameters
    ----------
    source : path, bytes or binary file
    name : str, optional
        Name used in tables and messages (default: the file name).
    channel : int or str, optional
        Junction channel override (index, colour or metadata name).
    nuclear_channel : int, str or None
        ``"auto"`` (default), an override, or None for none.
    max_projection : bool
        Project z-stacks / multi-page TIFFs by their maximum.
    max_megapixels : float
        Size limit.
    scene : int, optional
        Scene of a file with several (default: the name's ``#<scene>``, else the first).

    Returns
    -------
    LoadedImage
    """
    raw, meta = read_image_data(source, name=name, max_projection=max_projection, max_megapixels=max_megapixels,
                                scene=scene)
    label = meta["name"]
    choice = choose_channels(raw, channel, nuclear_channel, channel_names=meta["channel_names"], name=label)
    plane = raw if raw.ndim == 2 else raw[..., choice.junction]
    nuclei = None if choice.nuclear is None else normalise(raw[..., choice.nuclear])
    n_channels = 1 if raw.ndim == 2 else raw.shape[-1]
    return LoadedImage(
        name=label,
        image_id=meta["image_id"],
        raw=raw,
        junction=normalise(plane),
        nuclei=nuclei,
        pixel_size_um=meta["pixel_size_um"],
        channel_names=_names(n_channels, meta["channel_names"]) if n_channels > 1 else ["gray"],
        junction_channel=choice.junction,
        nuclear_channel=choice.nuclear,
        channels_how=choice.how,
        warnings=list(choice.warnings),
    )
