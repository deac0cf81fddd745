"""The segmentation network on ONNX Runtime: exported once with TensorFlow, run without it.

``import onnxruntime`` takes about 0.2 s where TensorFlow takes 5-11 s, and the
forward pass is as fast or faster on a CPU (see ../shared/PERFORMANCE.md), so
segmenting (CLI, dashboard, batch) runs on the ``<model>.onnx`` file beside the
``.keras`` one. TensorFlow stays the training framework: :func:`export_onnx`
writes the file and records its SHA-256 in the card, and a file whose hash does
not match (edited, or left from an older model) is not used.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import numpy as np

from .errors import ModelCardError

#: ONNX operator set written (tf2onnx 1.17 converts the Keras 3 U-Net cleanly at 17).
OPSET = 17
#: Largest difference from the Keras maps accepted when exporting (probability units).
MAX_EXPORT_DIFFERENCE = 1e-4


def onnx_path(model_path: str | Path) -> Path:
    """The ONNX file that belongs to a ``.keras`` file."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name.removesuffix(".keras") + ".onnx")


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, in hex."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def valid_export(model_path: str | Path, card) -> Path | None:
    """The model's ONNX file when it exists and its hash is the card's, else None."""
    export = (card.exports or {}).get("onnx") or {}
    path = Path(model_path).with_name(export.get("file", onnx_path(model_path).name))
    if not export.get("sha256") or not path.is_file():
        return None
    return path if file_sha256(path) == export["sha256"] else None


def export_onnx(model_path: str | Path, *, probe_shape: tuple[int, int] = (256, 320)) -> Path:
    """Write ``<model>.onnx`` beside a ``.keras`` model and record it in the card (needs TensorFlow).

    The exported network is checked against Keras on a random probe; a
    difference above :data:`MAX_EXPORT_DIFFERENCE` raises and nothing is written.
    """
    import keras
    import tensorflow as tf
    import tf2onnx

    from .unet import read_card, write_card

    model_path = Path(model_path)
    card = read_card(model_path)
    network = keras.saving.load_model(model_path, compile=False)
    spec = (tf.TensorSpec((None, None, None, 1), tf.float32, name="junction"),)
    forward = tf.function(lambda x: network(x, training=False), input_signature=spec)
    proto, _ = tf2onnx.convert.from_function(forward, input_signature=spec, opset=OPSET)
    data = proto.SerializeToString()
    probe = np.random.default_rng(0).random((1, *probe_shape, 1), dtype=np.float32)
    difference = float(np.abs(OnnxForward(data)(probe) - forward(probe).numpy()).max())
    if difference > MAX_EXPORT_DIFFERENCE:
        raise ModelCardError(f"{model_path.name}: the ONNX export differs from Keras by {difference:.2g} "
                             f"(limit {MAX_EXPORT_DIFFERENCE:g}); not written")
    path = onnx_path(model_path)
    partial = path.with_name(path.name + ".part")
    partial.write_bytes(data)
    partial.replace(path)
    card.exports = {**(card.exports or {}), "onnx": {
        "file": path.name, "sha256": file_sha256(path), "opset": OPSET, "max_abs_difference_vs_keras": difference,
        "tf2onnx": tf2onnx.__version__}}
    write_card(model_path, card)
    return path


class OnnxForward:
    """The network's forward pass on ONNX Runtime: (N, H, W, 1) float32 -> (N, H, W, C) maps.

    Parameters
    ----------
    model : path or bytes of an ``.onnx`` file
    threads : int, optional
        Threads per call (default: ONNX Runtime's, the physical cores).
    """

    def __init__(self, model: str | Path | bytes, *, threads: int | None = None):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        # Idle pool threads sleep rather than spin: a batch measures and writes the previous image on the
        # other core while this one predicts, and spinning took that core (2-core CPU: 1.33 -> 1.05 s
        # marginal per image, benchmarks/bench_segment.py).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        source = model if isinstance(model, bytes) else str(model)
        self._session = onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self._lock = threading.Lock()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        # One call at a time: each already uses every core, and concurrent calls would only fight for them.
        with self._lock:
            return self._session.run(None, {self._input: batch})[0]
