"""The boundary U-Net: builder, model card, loading, tiled prediction.

TensorFlow is imported only inside the functions that build, load or run a
network, so ``import bbbcore`` stays fast.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import config
from .errors import ModelCardError
from .resize import resize, resize_to

CARD_SUFFIX = ".card.json"
#: Batch (N, H, W, C) axes mirrored for each of up to four flip-averaged copies.
_MIRROR_AXES = [(), (2,), (1,), (1, 2)]


@dataclass
class ModelCard:
    """What a model expects and what it reached; stored as JSON beside the weights.

    Unknown keys are rejected when a card is read, so a typo cannot pass silently.
    """

    name: str
    version: str
    depth: int = 4
    base_width: int = 8
    #: Factor by which images at ``pixel_size_um`` are resized before the network.
    input_scale: float = 0.5
    #: Which channel the network reads (after channel selection): the junction stain.
    input_channel: str = "junction"
    #: µm per pixel of the images it was trained on (at their own scale); a fact of the
    #: training data, not used to scale images (cells are, see cell_diameter_px).
    pixel_size_um: float = config.TRAINING_PIXEL_SIZE_UM
    #: Typical cell diameter in pixels of the training images (at their own scale): every image
    #: is resized so that its cells have this diameter. Old cards without it: derived from
    #: their pixel size (config.TYPICAL_CELL_DIAMETER_UM / pixel_size_um).
    cell_diameter_px: float | None = None
    #: Read from cards of the first round; ignored (no image is refused for its pixel size).
    max_rescale: float | None = None
    normalise_percentiles: tuple[float, float] = config.NORMALISE_PERCENTILES
    #: Output maps, in channel order: "boundary" probability and, optionally,
    #: "distance" (distance to the cell's border, 1 at its centre, 0 on it).
    outputs: tuple[str, ...] = ("boundary", "distance")
    #: Test-time augmentation: the outputs are averaged over this many mirrored
    #: copies of the input (1: none; 2: + left-right; 4: + up-down and both).
    flips: int = 1
    #: Watershed settings tuned with this model (see bbbcore.instances).
    thresholds: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    #: Faster runtime exports beside the .keras file, by runtime name.
    exports: dict = field(default_factory=dict)
    notes: str = ""

    @classmethod
    def from_dict(cls, data: dict, *, source: str = "card") -> ModelCard:
        """Build a card from a dict, rejecting unknown keys."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ModelCardError(f"{source}: unknown key(s) in model card: {', '.join(unknown)}")
        missing = [k for k in ("name", "version") if k not in data]
        if missing:
            raise ModelCardError(f"{source}: model card lacks {', '.join(missing)}")
        if data.get("flips", 1) not in (1, 2, 4):
            raise ModelCardError(f"{source}: flips must be 1, 2 or 4, got {data['flips']!r}")
        data = dict(data)
        for key in ("normalise_percentiles", "outputs"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)

    def to_dict(self) -> dict:
        """Plain dict for JSON."""
        out = asdict(self)
        out["normalise_percentiles"] = list(self.normalise_percentiles)
        out["outputs"] = list(self.outputs)
        return out

    @property
    def diameter_px(self) -> float:
        """The training images' typical cell diameter in pixels (:attr:`cell_diameter_px`, or derived)."""
        if self.cell_diameter_px:
            return float(self.cell_diameter_px)
        return config.TYPICAL_CELL_DIAMETER_UM / self.pixel_size_um

    def check_image(self, junction: np.ndarray, zoom: float = 1.0, *, name: str = "<image>") -> None:
        """Raise ModelCardError when the image does not fit this model (at ``zoom``)."""
        if junction.ndim != 2:
            raise ModelCardError(
                f"{name}: model {self.name} reads one {self.input_channel} channel; "
                f"got an array of shape {junction.shape} after channel selection"
            )
        if min(junction.shape) * self.input_scale * zoom < 16:
            raise ModelCardError(f"{name}: image of {junction.shape[1]} x {junction.shape[0]} px is too small to segment "
                                 f"at this cell size (it needs {int(np.ceil(16 / (self.input_scale * zoom)))} px a side): "
                                 "use a larger field, or check the cell diameter (a wrong one shrinks the image)")


def card_path(model_path: str | Path) -> Path:
    """The card file that belongs to a ``.keras`` file."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name.removesuffix(".keras") + CARD_SUFFIX)


def read_card(model_path: str | Path) -> ModelCard:
    """Read the JSON card beside a model file."""
    path = card_path(model_path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelCardError(f"{path.name}: model card not found beside {Path(model_path).name}") from None
    except json.JSONDecodeError as exc:
        raise ModelCardError(f"{path.name}: model card is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    return ModelCard.from_dict(data, source=path.name)


def write_card(model_path: str | Path, card: ModelCard) -> Path:
    """Write the card beside a model file."""
    path = card_path(model_path)
    path.write_text(json.dumps(card.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def build_unet(
    *, depth: int = 4, base_width: int = 8, in_channels: int = 1, n_outputs: int = 2, name: str = "bbb_unet"
):
    """Build a Keras 3 functional U-Net with ``n_outputs`` sigmoid maps.

    Two 3x3 conv + batch-norm + ReLU per level, max-pooling down, 2x upsampling
    + 2x2 conv up, skip concatenation, a 1x1 sigmoid head (channel 0: boundary
    probability; channel 1: normalised distance to the border). Input height
    and width must be multiples of ``2**depth``.
    """
    import keras
    from keras import layers

    def block(x, width):
        for _ in range(2):
            x = layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization()(x)
            x = layers.ReLU()(x)
        return x

    inputs = keras.Input((None, None, in_channels), name="junction")
    x = inputs
    skips = []
    for level in range(depth):
        x = block(x, base_width * 2**level)
        skips.append(x)
        x = layers.MaxPooling2D(2)(x)
    x = block(x, base_width * 2**depth)
    for level in reversed(range(depth)):
        x = layers.UpSampling2D(2)(x)
        x = layers.Conv2D(base_width * 2**level, 2, padding="same", activation="relu")(x)
        x = layers.Concatenate()([x, skips[level]])
        x = block(x, base_width * 2**level)
    outputs = layers.Conv2D(n_outputs, 1, activation="sigmoid", name="maps")(x)
    return keras.Model(inputs, outputs, name=name)


class BoundaryModel:
    """A loaded U-Net and its card; predicts boundary probability for an image.

    Parameters
    ----------
    keras_model : keras.Model or None
        The network (None when it runs on ONNX Runtime only).
    card : ModelCard
    forward : callable, optional
        (N, H, W, 1) float32 -> (N, H, W, C) maps; default: the Keras network's.
    runtime : str
        "keras" or "onnx": what runs the forward pass.
    """

    def __init__(self, keras_model, card: ModelCard, *, forward=None, runtime: str = "keras"):
        self.keras_model = keras_model
        self.card = card
        self.runtime = runtime
        self._forward = forward if forward is not None else _keras_forward(keras_model)

    @classmethod
    def load(cls, path: str | Path, *, runtime: str = "auto", threads: int | None = None) -> BoundaryModel:
        """Load a model and its card.

        ``runtime`` "auto" runs the ONNX export beside the ``.keras`` file when
        the card names it with the file's hash (no TensorFlow import), else
        Keras; "keras" or "onnx" insist on one. ``threads``: ONNX Runtime's
        threads per inference (default: one per core).
        """
        from .onnx_runtime import OnnxForward, valid_export

        path = Path(path)
        if not path.exists():
            raise ModelCardError(f"{path.name}: model file not found ({path})")
        card = read_card(path)
        export = valid_export(path, card) if runtime in ("auto", "onnx") else None
        if export is not None:
            return cls(None, card, forward=OnnxForward(export, threads=threads), runtime="onnx")
        if runtime == "onnx":
            raise ModelCardError(f"{path.name}: no ONNX export matching its card; run "
                                 f"`python -m bbbcore export-onnx {path}`")
        import keras

        try:
            model = keras.saving.load_model(path, compile=False)
        except Exception as exc:
            raise ModelCardError(f"{path.name}: not a loadable Keras model ({type(exc).__name__})") from None
        return cls(model, card)

    def save(self, path: str | Path, *, onnx: bool = True) -> Path:
        """Save the network as ``.keras``, its card beside it and (``onnx``) its ONNX export."""
        from .onnx_runtime import export_onnx

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.keras_model.save(path)
        self.card.exports = {k: v for k, v in (self.card.exports or {}).items() if k != "onnx"}  # the old one is stale
        write_card(path, self.card)
        if onnx:
            export_onnx(path)
            self.card = read_card(path)
        return path

    def predict_tiles(self, image: np.ndarray, *, tile: int = 1024, context: int = 96,
                      flips: int | None = None) -> np.ndarray:
        """Boundary probability of an image already at the network's scale.

        One window with ``context`` px of image reflected past every edge, or, for
        an image larger than ``tile``, pieces of it on the same pooling grid that
        reach past their cores as far as the network sees: any size runs in
        bounded memory and the result does not depend on ``tile`` (see :func:`predict_tiled`).
        ``flips`` overrides the card's mirror averaging (1: none, for quick looks).
        """
        run = self._run if flips is None else (lambda batch: self._run(batch, flips))
        return predict_tiled(run, image, multiple=2**self.card.depth, tile=tile, context=context,
                             reach=receptive_radius(self.card.depth))

    def _run(self, batch: np.ndarray, flips: int | None = None) -> np.ndarray:
        # Averaging over mirrored copies (test-time augmentation) smooths out
        # the network's orientation-dependent errors on faint borders.
        axes = _MIRROR_AXES[: flips or self.card.flips]
        total = sum(np.flip(self._forward(np.ascontiguousarray(np.flip(batch, axis))), axis) for axis in axes)
        return total / len(axes)

    def predict_maps(
        self,
        junction: np.ndarray,
        *,
        zoom: float = 1.0,
        name: str = "<image>",
        tile: int = 1024,
        working_scale: bool = False,
    ) -> dict[str, np.ndarray]:
        """Output maps (by name, see ``card.outputs``).

        The image is resized by ``zoom`` (so that its cells have the training
        diameter, see :mod:`bbbcore.scale`) times the card's ``input_scale``,
        and predicted by tiles; the maps are resized back to the image's own
        size unless ``working_scale`` is True.
        """
        self.card.check_image(junction, zoom, name=name)
        maps = self.predict_tiles(resize(junction, self.card.input_scale * zoom), tile=tile)
        if working_scale:
            return {key: maps[..., i] for i, key in enumerate(self.card.outputs)}
        return {key: resize_to(maps[..., i], junction.shape) for i, key in enumerate(self.card.outputs)}


def _keras_forward(keras_model):
    """The Keras network's forward pass as a traced function returning numpy arrays."""
    import tensorflow as tf

    traced = tf.function(lambda x: keras_model(x, training=False),
                         input_signature=[tf.TensorSpec([None, None, None, 1], tf.float32)], reduce_retracing=True)
    return lambda batch: traced(batch).numpy()


def predict_tiled(run, image: np.ndarray, *, multiple: int = 16, tile: int = 1024, context: int = 96,
                  reach: int = 0) -> np.ndarray:
    """Apply ``run`` (batch (1, H, W, 1) -> (1, H, W, C)) by overlapping tiles.

    An image that fits in ``tile`` is one window: the image and ``context`` px of it reflected past
    every edge (the far edges rounded up to ``multiple``). A larger one is cut into tiles, and each
    tile's window is a piece of that single window: it starts on the same ``multiple`` grid (a
    network that pools ``multiple``-fold sees the same pooling phase) and runs ``max(context, reach)``
    px past its core into the image. With ``reach``, how far an output pixel sees (the network's
    receptive radius, see :func:`receptive_radius`), a core pixel never sees its window's edge, so
    the tiles give exactly what the single window would, whatever ``tile``; without it (0), cores
    overlap by ``context`` px blended with linear ramps. Returns (H, W, C).
    """
    image = np.asarray(image, dtype=np.float32)
    height, width = image.shape
    tile = max(multiple, int(tile))
    # Windows that see as far as the network does give their cores exactly: nothing to blend.
    overlap = 0 if reach > 0 else min(context, tile // 2)
    # Cores start on multiples of ``multiple``: a window's pooling phase is that of the single window.
    stride = max(multiple, (tile - overlap) // multiple * multiple)
    margin = context + _round_up(max(0, reach - context), multiple)  # a multiple of ``multiple`` more than context
    # A window reaches ``context`` px past the image, plus its rounding up to ``multiple``. (Padding by a
    # whole tile made a 0.3 MP image 8 MP: 50 ms per image.)
    off = context + multiple  # where the image starts in ``padded``
    padded = np.pad(image, off, mode="symmetric")

    def spans(length: int) -> list[tuple[int, int, int, int]]:
        """(start, stop) of each core and of its window along one axis, in image coordinates."""
        first, last = -context, -context + _round_up(length + 2 * context, multiple)  # the single window
        if length <= tile:
            return [(0, length, first, last)]
        final = (length - tile) // multiple * multiple  # the last core runs to the end (< tile + multiple px)
        starts = [*range(0, final, stride), final]
        cores = [(y, y + tile) for y in starts[:-1]] + [(final, length)]
        return [(y, stop, max(first, y - margin), min(last, y - margin + _round_up(stop - y + 2 * margin, multiple)))
                for y, stop in cores]

    total = None
    weight = np.zeros((height, width, 1), np.float32)
    for y, y_stop, wy, wy_stop in spans(height):
        for x, x_stop, wx, wx_stop in spans(width):
            window = padded[off + wy : off + wy_stop, off + wx : off + wx_stop]
            out = run(window[None, :, :, None])[0]
            if total is None:
                total = np.zeros((height, width, out.shape[-1]), np.float32)
            core = out[y - wy : y_stop - wy, x - wx : x_stop - wx]
            ramp = _ramp(y_stop - y, overlap, y > 0, y_stop < height)[:, None, None] * _ramp(
                x_stop - x, overlap, x > 0, x_stop < width
            )[None, :, None]
            total[y:y_stop, x:x_stop] += core * ramp
            weight[y:y_stop, x:x_stop] += ramp
    return total / weight


def receptive_radius(depth: int) -> int:
    """How far (px, either way) an output pixel of :func:`build_unet` sees into its input.

    ``2**(depth + 3) - 6``, the most over the ``2**depth`` pooling phases, followed through the layers
    (3x3 convolutions, 2-fold pooling and upsampling, the 2x2 convolution after it that reaches one
    way, mirrored by flip averaging): 122 px for depth 4, 58 for 3, 26 for 2, as perturbing one column
    of a random input shows. Tiles that reach this far past their core never see their window's edge
    (see :func:`predict_tiled`).
    """
    return 2 ** (depth + 3) - 6


def _ramp(length: int, overlap: int, left: bool, right: bool) -> np.ndarray:
    """1-D blending weight: rises over ``overlap`` px on sides that overlap a neighbour."""
    w = np.ones(length, np.float32)
    if overlap > 0:
        ramp = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
        n = min(overlap, length)
        if left:
            w[:n] = np.minimum(w[:n], ramp[:n])
        if right:
            w[-n:] = np.minimum(w[-n:], ramp[:n][::-1])
    return w


def _round_up(value: int, multiple: int) -> int:
    return int(math.ceil(value / multiple) * multiple)


def load_model(path: str | Path | None = None) -> BoundaryModel:
    """Load a model and its card: ``path``, or the shipped default (``config.DEFAULT_MODEL``) when None."""
    from . import config

    return BoundaryModel.load(config.DEFAULT_MODEL if path is None else path)
