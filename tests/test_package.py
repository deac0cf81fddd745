"""Package-level contracts: no TensorFlow on import, no Streamlit in bbbcore."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


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
