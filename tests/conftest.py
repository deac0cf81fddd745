"""Shared fixtures: repo on sys.path, ../shared data, synthetic images, browser."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"
CHROMIUM = Path("/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() == "true"


def need(condition: bool, reason: str) -> None:
    """Skip with ``reason`` when ``condition`` fails, but fail under CI=true."""
    if not condition:
        if IN_CI:
            pytest.fail(f"required under CI=true: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="session", autouse=True)
def data_folder(tmp_path_factory) -> Path:
    """The dashboard's store lives in a temporary data folder during the tests (BBB_DATA_DIR)."""
    folder = tmp_path_factory.mktemp("bbb-data")
    os.environ["BBB_DATA_DIR"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only ../shared/data folder."""
    need(SHARED.is_dir(), f"../shared/data not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def shipped_model():
    """The default BBB model, loaded once."""
    from bbbcore import config
    from bbbcore.unet import BoundaryModel

    need(config.DEFAULT_MODEL.exists(), f"shipped model missing: {config.DEFAULT_MODEL}")
    return BoundaryModel.load(config.DEFAULT_MODEL)


@pytest.fixture(scope="session")
def synthetic_monolayer():
    """A Voronoi 'monolayer': blurred bright borders, nuclei, noise, and its truth."""
    from tests.synthetic import voronoi_monolayer

    return voronoi_monolayer(shape=(384, 512), n_cells=40, seed=3)


# --- real browser (Playwright with Debian's chromium) --------------------------


def _free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture(scope="session")
def app_server(tmp_path_factory):
    """Start ``streamlit run app.py`` on loopback; yield its URL."""
    need(CHROMIUM.exists(), "Debian chromium not installed (/usr/bin/chromium)")
    port = 8599
    if not _free(port):
        pytest.fail(f"port {port} is already in use")
    log_path = tmp_path_factory.mktemp("server") / "streamlit.log"
    log = open(log_path, "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            if urllib.request.urlopen(url + "/_stcore/health", timeout=1).read() == b"ok":
                break
        except OSError:
            pass
        if process.poll() is not None or time.time() > deadline:
            log.close()
            pytest.fail("streamlit did not start:\n" + log_path.read_text())
        time.sleep(0.2)
    yield url
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
    log.close()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1280, "height": 1400}, "accept_downloads": True}
