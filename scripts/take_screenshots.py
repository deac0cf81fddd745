"""Screenshots of every dashboard page, taken in a real browser (Debian's chromium).

Starts ``streamlit run app.py`` on a free local port, loads the sample data,
analyses it, visits every page and saves ``docs/screenshots/<page>.png``.

    python scripts/take_screenshots.py [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
PAGES = [("Segmentation", "segmentation"), ("Cells", "cells"), ("Plots", "plots"),
         ("Compare conditions", "compare"), ("Anomalies", "anomalies"), ("Experiments", "experiments"),
         ("About", "about")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    """``streamlit run app.py`` with a fresh, temporary data folder (BBB_DATA_DIR)."""
    import tempfile

    env = {**os.environ, "BBB_DATA_DIR": tempfile.mkdtemp(prefix="bbb-data-")}
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True, env=env,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).read() == b"ok":
                return process
        except OSError:
            time.sleep(0.3)
    os.killpg(process.pid, signal.SIGKILL)
    raise RuntimeError("streamlit did not start")


def stop_server(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(10)


def wait_idle(page) -> None:
    """Wait until Streamlit has finished running the script."""
    page.wait_for_timeout(500)
    page.wait_for_function("() => !document.querySelector('[data-testid=stStatusWidget]')", timeout=120_000)
    page.wait_for_timeout(800)


@contextlib.contextmanager
def app_in_browser(height: int = 1500):
    """A fresh app server and a chromium page on its Upload & analyse page; both stopped afterwards."""
    port = free_port()
    server = start_server(port)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": height})
            page.goto(f"http://127.0.0.1:{port}", timeout=60_000)
            page.get_by_test_id("stSidebarNav").get_by_text("Upload & analyse", exact=True).click(timeout=60_000)
            wait_idle(page)
            yield page
            browser.close()
    finally:
        stop_server(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with app_in_browser() as page:
        page.get_by_role("button", name="Load sample data").click(timeout=60_000)
        wait_idle(page)
        page.get_by_role("button", name="Analyse 5 images").click()
        expect(page.get_by_text("Images analysed", exact=True)).to_be_visible(timeout=180_000)
        wait_idle(page)
        page.screenshot(path=args.out / "analyse.png")
        print(f"wrote {args.out / 'analyse.png'}")
        for title, file in PAGES:
            page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
            wait_idle(page)
            if file == "segmentation":
                page.get_by_test_id("stImage").nth(1).locator("img").wait_for(timeout=30_000)
            if file == "anomalies":
                page.get_by_role("button", name="Find anomalous cells").click()
                page.get_by_test_id("stPlotlyChart").first.wait_for(timeout=120_000)
                wait_idle(page)
            if file in ("plots", "compare", "segmentation", "anomalies"):
                page.get_by_test_id("stPlotlyChart").first.wait_for(timeout=30_000)
                page.wait_for_timeout(1500)
            page.screenshot(path=args.out / f"{file}.png")
            print(f"wrote {args.out / (file + '.png')}")
            if file == "anomalies":  # the flagged cells on the image, further down
                page.get_by_test_id("stImage").last.scroll_into_view_if_needed()
                page.wait_for_timeout(1500)
                page.screenshot(path=args.out / "anomalies_on_image.png")
                print(f"wrote {args.out / 'anomalies_on_image.png'}")


if __name__ == "__main__":
    main()
