"""bbbcore.onnx_runtime: the network runs on ONNX Runtime, exported with TensorFlow, identical to Keras."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

from bbbcore import config
from bbbcore.errors import ModelCardError
from bbbcore.io import load_image
from bbbcore.onnx_runtime import export_onnx, file_sha256, onnx_path, valid_export
from bbbcore.unet import BoundaryModel, ModelCard, build_unet, read_card
from tests.conftest import ROOT


def test_the_shipped_models_run_on_their_onnx_export():
    for keras_file in sorted(config.MODELS_DIR.rglob("*.keras")):
        card = read_card(keras_file)
        assert valid_export(keras_file, card) == onnx_path(keras_file), keras_file.name  # the hash matches
        assert card.exports["onnx"]["max_abs_difference_vs_keras"] < 1e-4
    assert BoundaryModel.load(config.DEFAULT_MODEL).runtime == "onnx"


def test_idle_inference_threads_sleep_so_the_other_core_measures_and_writes():
    from bbbcore.onnx_runtime import OnnxForward

    forward = OnnxForward(onnx_path(config.DEFAULT_MODEL))
    options = forward._session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    maps = forward(np.zeros((1, 64, 64, 1), np.float32))
    assert maps.shape[:3] == (1, 64, 64) and np.isfinite(maps).all()


@pytest.mark.model
def test_onnx_maps_equal_the_keras_maps():
    image = load_image(ROOT / "sample_data" / "bbb_rgb_03.jpg")
    on_onnx = BoundaryModel.load(config.DEFAULT_MODEL)
    on_keras = BoundaryModel.load(config.DEFAULT_MODEL, runtime="keras")
    assert on_keras.runtime == "keras" and on_keras.keras_model is not None
    junction = image.junction[:400, :560]
    a, b = on_onnx.predict_maps(junction), on_keras.predict_maps(junction)
    for key in a:
        np.testing.assert_allclose(a[key], b[key], atol=1e-4, err_msg=key)


def test_segmenting_imports_neither_tensorflow_nor_keras(tmp_path):
    script = (
        "import sys\n"
        "from bbbcore.cli import main\n"
        f"code = main(['segment', {str(ROOT / 'sample_data' / 'bbb_rgb_04.jpg')!r}, '--out', {str(tmp_path)!r}])\n"
        "print(code, 'tensorflow' in sys.modules, 'keras' in sys.modules, 'onnxruntime' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.stdout.split()[-4:] == ["0", "False", "False", "True"], done.stderr[-2000:]
    assert (tmp_path / "cells.csv").is_file()


def test_a_stale_or_edited_export_is_not_used(tmp_path):
    for name in ("bbb_unet.keras", "bbb_unet.card.json", "bbb_unet.onnx"):
        shutil.copy(config.MODELS_DIR / name, tmp_path / name)
    model = tmp_path / "bbb_unet.keras"
    assert valid_export(model, read_card(model)) is not None
    with open(tmp_path / "bbb_unet.onnx", "ab") as file:
        file.write(b"\0")  # edited: its hash is no longer the card's
    assert valid_export(model, read_card(model)) is None
    assert BoundaryModel.load(model).runtime == "keras"
    with pytest.raises(ModelCardError, match=r"^bbb_unet\.keras: no ONNX export matching its card; run "):
        BoundaryModel.load(model, runtime="onnx")


def test_saving_a_model_writes_its_export(tmp_path):
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(3)
    card = ModelCard(name="tiny", version="0", depth=3, base_width=4, input_scale=1.0, pixel_size_um=0.5)
    path = BoundaryModel(build_unet(depth=3, base_width=4, n_outputs=2, name="tiny"), card).save(tmp_path / "tiny.keras")
    export = read_card(path).exports["onnx"]
    assert export["file"] == "tiny.onnx" and export["sha256"] == file_sha256(tmp_path / "tiny.onnx")
    loaded = BoundaryModel.load(path)
    assert loaded.runtime == "onnx" and loaded.keras_model is None
    junction = np.random.default_rng(0).random((64, 80), dtype=np.float32)
    np.testing.assert_allclose(loaded.predict_tiles(junction), BoundaryModel.load(path, runtime="keras")
                               .predict_tiles(junction), atol=1e-4)
    # Exporting again (an existing model) gives the same file name and a matching hash.
    assert export_onnx(path) == tmp_path / "tiny.onnx" and valid_export(path, read_card(path)) is not None
