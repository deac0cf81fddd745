"""Package-level contracts: no TensorFlow on import, no Streamlit in bbbcore,
the lazy public API, the installable package (console command, shipped
models found outside the checkout) and the README's notebook example."""

from __future__ import annotations

import fnmatch
import importlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import ROOT, need

HEAVY = ("tensorflow", "keras", "streamlit")
PUBLIC = {
    "load_image": "bbbcore.io",
    "load_model": "bbbcore.unet",
    "segment_image": "bbbcore.pipeline",
    "measure_labels": "bbbcore.pipeline",
    "measure": "bbbcore.pipeline",
    "cell_interfaces": "bbbcore.interfaces",
    "cells_table": "bbbcore.features",
    "summary_table": "bbbcore.features",
    "Store": "bbbcore.store",
    "AnalysisSession": "bbbcore.session",
    "AnomalyModel": "bbbcore.anomaly",
}


def _python(code: str, *, cwd: Path = ROOT, env: dict | None = None) -> str:
    """Run ``code`` in a fresh interpreter (bbbcore importable from the checkout); its stdout."""
    env = {**os.environ, **(env or {})}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_importing_bbbcore_does_not_import_tensorflow_or_streamlit():
    code = (
        "import sys, bbbcore, bbbcore.io, bbbcore.unet, bbbcore.pipeline, bbbcore.instances, "
        "bbbcore.features, bbbcore.metrics, bbbcore.annotations, bbbcore.training, bbbcore.cli, bbbcore.overlay, "
        "bbbcore.metadata, bbbcore.export, bbbcore.polygons, bbbcore.results, bbbcore.compare, bbbcore.plots, "
        "bbbcore.anomaly, bbbcore.stats, bbbcore.store, bbbcore.report; "
        "print(sorted(m for m in ('tensorflow', 'keras', 'streamlit') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cli_help_lists_the_commands():
    out = subprocess.run([sys.executable, "-m", "bbbcore", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0
    for command in ("segment", "measure", "import-annotations", "anomalies", "stats", "evaluate", "train"):
        assert command in out.stdout


# --- the lazy public API ---------------------------------------------------------


def test_public_api_is_lazy():
    code = (
        "import sys, bbbcore\n"
        f"heavy = {HEAVY!r}\n"
        "loaded = lambda: sorted(m for m in heavy if m in sys.modules)\n"
        "assert 'bbbcore.pipeline' not in sys.modules, 'import bbbcore loaded the pipeline'\n"
        "print(loaded())\n"
        "bbbcore.load_image, bbbcore.Store\n"
        "print(loaded())\n"
        "bbbcore.load_model, bbbcore.segment_image, bbbcore.cells_table, bbbcore.AnomalyModel\n"
        "print(loaded())\n"
    )
    assert _python(code).splitlines() == ["[]", "[]", "[]"]


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_names_resolve_to_their_modules(name):
    import bbbcore

    module = PUBLIC[name]
    if name == "AnalysisSession":
        need((ROOT / "bbbcore" / "session.py").exists(), "bbbcore/session.py is not written yet")
    assert getattr(bbbcore, name) is getattr(importlib.import_module(module), name)
    assert name in dir(bbbcore)


def test_public_api_lists_exactly_its_names():
    import bbbcore

    assert sorted(bbbcore.__all__) == sorted(PUBLIC)
    assert bbbcore.__version__ == _version_in_source()
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        bbbcore.not_a_name  # noqa: B018


def _version_in_source() -> str:
    match = re.search(r'^__version__ = "([^"]+)"', (ROOT / "bbbcore" / "__init__.py").read_text(), re.M)
    assert match, "bbbcore/__init__.py sets no __version__"
    return match.group(1)


# --- the README's notebook example ---------------------------------------------------


def readme_notebook_example() -> str:
    """The fenced python block of the README's "From a notebook" section."""
    text = (ROOT / "README.md").read_text()
    assert "## From a notebook" in text
    section = text.split("## From a notebook", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "no python block under 'From a notebook'"
    return match.group(1)


def test_readme_example_uses_only_the_public_api():
    import bbbcore

    code = readme_notebook_example()
    used = set(re.findall(r"\bbbbcore\.(\w+)", code))
    assert used and used <= set(bbbcore.__all__), used - set(bbbcore.__all__)
    assert 10 >= len([line for line in code.splitlines() if line.strip()])


@pytest.mark.model
def test_readme_notebook_example_runs(monkeypatch, capsys):
    from bbbcore import config

    need(config.DEFAULT_MODEL.exists(), f"shipped model missing: {config.DEFAULT_MODEL}")
    monkeypatch.chdir(ROOT)  # the example's paths are relative to the repository root
    namespace = {"__name__": "__readme__"}
    exec(compile(readme_notebook_example(), "README.md: From a notebook", "exec"), namespace)
    out = capsys.readouterr().out
    cells = namespace["cells"]
    assert len(cells) > 20
    assert "bbb_rgb_01" in out
    assert "cell_id" in out and "n_cells" in out


# --- the installable package -------------------------------------------------------


def test_console_command_is_the_cli_main():
    scripts = _pyproject()["project"]["scripts"]
    module, _, attr = scripts["bbb"].partition(":")
    entry = getattr(importlib.import_module(module), attr)
    import bbbcore.cli

    assert entry is bbbcore.cli.main  # the same function python -m bbbcore calls
    assert "from .cli import main" in (ROOT / "bbbcore" / "__main__.py").read_text()


def test_console_command_and_python_m_give_the_same_help():
    """`bbb --help` (when the package is installed here) prints what `python -m bbbcore --help` prints."""
    module = subprocess.run([sys.executable, "-m", "bbbcore", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert module.returncode == 0
    script = shutil.which("bbb", path=str(Path(sys.executable).parent))
    need(script is not None, "the bbb command is not installed (pip install -e .)")
    command = subprocess.run([script, "--help"], cwd=ROOT, capture_output=True, text=True)
    assert command.returncode == 0, command.stderr
    assert command.stdout == module.stdout


def test_cli_main_returns_the_exit_status(capsys):
    from bbbcore.cli import main

    assert main(["evaluate", str(ROOT / "no-such.labels.tif"), "--truth", str(ROOT / "no-such.png")]) != 0


def test_package_data_covers_every_shipped_model_file():
    setuptools = _pyproject()["tool"]["setuptools"]
    assert setuptools["package-dir"]["bbbcore.models"] == "models"
    patterns = setuptools["package-data"]
    shipped = [p for p in (ROOT / "models").rglob("*") if p.is_file() and p.suffix in (".keras", ".json", ".onnx")]
    assert shipped
    for path in shipped:
        folder = path.parent.relative_to(ROOT / "models").parts
        package = ".".join(("bbbcore", "models", *folder))
        assert package in setuptools["packages"], package
        assert any(fnmatch.fnmatch(path.name, p) for p in patterns.get(package, [])), path


def test_models_dir_finds_the_checkouts_models_by_default():
    env = {k: v for k, v in os.environ.items() if k != "BBB_MODELS_DIR"}
    out = subprocess.run(
        [sys.executable, "-c", "from bbbcore import config; print(config.MODELS_DIR); print(config.DEFAULT_MODEL)"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    assert out == [str(ROOT / "models"), str(ROOT / "models" / "bbb_unet.keras")]


def test_models_dir_honours_bbb_models_dir(tmp_path, monkeypatch):
    from bbbcore import config

    monkeypatch.setenv("BBB_MODELS_DIR", str(tmp_path))
    assert config.models_dir() == tmp_path.resolve()
    # The module constants are computed at import: a fresh interpreter sees the variable.
    out = _python("from bbbcore import config; print(config.MODELS_DIR); print(config.DEFAULT_MODEL)",
                  env={"BBB_MODELS_DIR": str(tmp_path)})
    assert out.splitlines() == [str(tmp_path.resolve()), str(tmp_path.resolve() / "bbb_unet.keras")]
    monkeypatch.setenv("BBB_MODELS_DIR", "")
    assert config.models_dir() == ROOT / "models"  # empty means unset


def test_non_editable_install_ships_the_models(tmp_path):
    """`pip install .` copies the models into the package; imported from elsewhere, it finds them there."""
    source = tmp_path / "src"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("pyproject.toml", "README.md", "requirements.txt"):
        shutil.copy(ROOT / name, source / name)
    for name in ("bbbcore", "models"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    site = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(source)],
        capture_output=True, text=True,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    assert (site / "bin" / "bbb").exists()
    env = {k: v for k, v in os.environ.items() if k != "BBB_MODELS_DIR"}
    env["PYTHONPATH"] = str(site)
    code = ("import bbbcore, bbbcore.config as c; "
            "print(bbbcore.__file__); print(c.DEFAULT_MODEL); print(c.DEFAULT_MODEL.exists())")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out == [str(site / "bbbcore" / "__init__.py"), str(site / "bbbcore" / "models" / "bbb_unet.keras"), "True"]
    assert sorted(p.name for p in (site / "bbbcore" / "models" / "folds").iterdir()) == sorted(
        p.name for p in (ROOT / "models" / "folds").iterdir()
    )
