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

import numpy as np
from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
PAGES = [("Segmentation", "segmentation"), ("Cells", "cells"), ("Plots", "plots"),
         ("Compare conditions", "compare"), ("Junctions", "junctions"), ("Anomalies", "anomalies"),
         ("Experiments", "experiments"), ("About", "about")]


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


# The editing view's chart (a tab's first page also holds an empty one that loads plotly.js).
CELLS_CHART = "[data-testid=stPlotlyChart]:has(.scatterlayer .point)"
MARKERS_JS = f"""() => {{ const gd = document.querySelector('{CELLS_CHART} .js-plotly-plot');
  const t = gd.data[1]; return [t.customdata, t.x, t.y]; }}"""
SCREEN_JS = """(points) => { const gd = document.querySelector('""" + CELLS_CHART + """ .js-plotly-plot');
  const r = gd.getBoundingClientRect(), L = gd._fullLayout;
  return points.map(([x, y]) => [r.left + L.xaxis._offset + L.xaxis.l2p(x),
                                 r.top + L.yaxis._offset + L.yaxis.l2p(y)]); }"""


def markers(page) -> dict[int, tuple[float, float]]:
    """Each cell's marker in the editing view, {id: (x, y)} in image pixels."""
    page.locator(CELLS_CHART).first.wait_for(timeout=30_000)
    ids, xs, ys = page.evaluate(MARKERS_JS)
    return {int(i): (x, y) for i, x, y in zip(ids, xs, ys)}


def click_cell(page, cell_id: int) -> None:
    """Click a cell's marker in the editing view (it becomes the selection)."""
    order = sorted(markers(page))
    page.locator(CELLS_CHART).first.locator(".scatterlayer .point").nth(order.index(cell_id)).click(force=True)
    wait_idle(page)


def band(start, end, half_width: float = 6.0) -> list:
    """A thin outline around the segment from ``start`` to ``end`` (x, y), a little past both ends: a lasso
    that selects the markers at its two ends and no other."""
    start, end = np.asarray(start, float), np.asarray(end, float)
    along = (end - start) / np.hypot(*(end - start)) * half_width
    normal = along[::-1] * [1, -1]
    first, last = start - along, end + along
    return [first + normal, last + normal, last - normal, first - normal]


def lasso(page, outline) -> None:
    """Choose the lasso tool and draw ``outline`` (image pixels) with the mouse."""
    chart = page.locator(CELLS_CHART).first
    chart.hover()
    chart.locator('.modebar-btn[data-val="lasso"]').click()
    screen = page.evaluate(SCREEN_JS, [list(map(float, p)) for p in outline])
    page.mouse.move(*screen[0])
    page.mouse.down()
    for point in [*screen[1:], screen[0]]:
        page.mouse.move(*point, steps=4)
    page.mouse.up()
    wait_idle(page)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--only", nargs="+", metavar="FILE", help="only these pages' shots (e.g. junctions); "
                        "no correcting or teaching")
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
            if args.only and file not in args.only:
                continue
            page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
            wait_idle(page)
            if file == "segmentation":
                page.get_by_test_id("stImage").nth(1).locator("img").wait_for(timeout=30_000)
            if file == "anomalies":
                page.get_by_role("button", name="Find anomalous cells").click()
                page.get_by_test_id("stPlotlyChart").first.wait_for(timeout=120_000)
                wait_idle(page)
            if file in ("plots", "compare", "segmentation", "anomalies", "junctions"):
                page.get_by_test_id("stPlotlyChart").first.wait_for(timeout=30_000)
                page.wait_for_timeout(1500)
            page.screenshot(path=args.out / f"{file}.png")
            print(f"wrote {args.out / (file + '.png')}")
            extra = {"plots": scatter_shot, "cells": gallery_shot, "compare": report_shot}.get(file)
            if extra:
                extra(page, args.out)
            if file == "anomalies":  # the flagged cells on the image, further down
                page.get_by_test_id("stImage").last.scroll_into_view_if_needed()
                page.wait_for_timeout(1500)
                page.screenshot(path=args.out / "anomalies_on_image.png")
                print(f"wrote {args.out / 'anomalies_on_image.png'}")
        if not args.only:
            correcting(page, args.out)
            teaching(page, args.out)


def scatter_shot(page, out: Path) -> None:
    """The Plots page's scatter, coloured by a column with its colour bar."""
    page.get_by_text("Scatter", exact=True).click()
    wait_idle(page)
    page.get_by_role("combobox", name="Colour by a column (colour bar)").click()
    page.get_by_role("option", name="junction continuity", exact=True).click()
    wait_idle(page)
    page.get_by_test_id("stPlotlyChart").first.wait_for(timeout=30_000)
    page.wait_for_timeout(1500)
    page.screenshot(path=out / "plots_scatter.png")
    print(f"wrote {out / 'plots_scatter.png'}")


def gallery_shot(page, out: Path) -> None:
    """The Cells page's thumbnails of the experiment's images."""
    gallery = page.get_by_test_id("stExpander").filter(has_text="The experiment's images")
    gallery.scroll_into_view_if_needed()
    page.wait_for_timeout(1000)
    gallery.screenshot(path=out / "cells_gallery.png")
    print(f"wrote {out / 'cells_gallery.png'}")


def report_shot(page, out: Path) -> None:
    """The one-file report the Compare page builds, opened in the browser as a colleague would."""
    page.get_by_role("button", name="Build the report").click()
    wait_idle(page)
    with page.expect_download() as download:
        page.get_by_test_id("stDownloadButton").filter(has_text="Download report (HTML)").locator("button").click()
    import tempfile

    saved = Path(tempfile.mkdtemp(prefix="bbb-report-")) / download.value.suggested_filename  # .html: shown as HTML
    download.value.save_as(saved)
    report = page.context.browser.new_page(viewport={"width": 1100, "height": 1500})
    report.goto(saved.as_uri())
    report.wait_for_timeout(3000)  # the embedded plotly.js draws the figures
    report.screenshot(path=out / "report.png")
    report.close()
    print(f"wrote {out / 'report.png'}")


def teaching(page, out: Path) -> None:
    """The Teach the model page after a short fine-tuning (20 steps) on the cells accepted in a box."""
    where = markers(page)
    xs, ys = np.array([p[0] for p in where.values()]), np.array([p[1] for p in where.values()])
    cx, cy, rx, ry = np.median(xs), np.median(ys), np.ptp(xs) * 0.3, np.ptp(ys) * 0.3
    lasso(page, [(cx - rx, cy - ry), (cx + rx, cy - ry), (cx + rx, cy + ry), (cx - rx, cy + ry)])
    page.get_by_role("button", name="Accept", exact=True).click()
    wait_idle(page)
    page.get_by_test_id("stSidebarNav").get_by_text("Teach the model", exact=True).click()
    wait_idle(page)
    steps = page.get_by_test_id("stNumberInputField")
    steps.fill("20")
    steps.press("Tab")
    wait_idle(page)
    page.get_by_role("button", name="Teach").click()
    page.get_by_test_id("stProgress").first.wait_for(timeout=60_000)
    page.screenshot(path=out / "teach_running.png")
    page.get_by_test_id("stMetric").nth(1).wait_for(timeout=600_000)
    wait_idle(page)
    page.screenshot(path=out / "teach.png", full_page=True)
    print(f"wrote {out / 'teach_running.png'} and {out / 'teach.png'}")


def correcting(page, out: Path) -> None:
    """The Correct cells page: two neighbouring cells lassoed, then merged (and the history shown)."""
    page.get_by_test_id("stSidebarNav").get_by_text("Correct cells", exact=True).click()
    wait_idle(page)
    where = markers(page)
    ids = sorted(where)
    points = np.array([where[i] for i in ids])
    middle = points.mean(axis=0)
    # The two nearest markers near the middle of the image: neighbours, most likely sharing a border.
    central = np.argsort(np.hypot(*(points - middle).T))[:12]
    a, b = min(((i, j) for i in central for j in central if i < j), key=lambda p: np.hypot(*(points[p[0]] - points[p[1]])))
    lasso(page, band(points[a], points[b]))
    page.screenshot(path=out / "correct_select.png")
    print(f"wrote {out / 'correct_select.png'}")
    page.get_by_role("button", name="Merge", exact=True).click()
    wait_idle(page)
    page.get_by_text("History:").first.click()
    page.wait_for_timeout(800)
    page.screenshot(path=out / "correct_merged.png", full_page=True)
    print(f"wrote {out / 'correct_merged.png'}: {page.get_by_test_id('stAlert').first.inner_text()}")


if __name__ == "__main__":
    main()
