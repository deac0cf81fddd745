"""Real browser: Debian's chromium driven by Playwright against `streamlit run app.py`."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import expect

from scripts.take_screenshots import band, click_cell, lasso, markers
from tests.conftest import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.model, pytest.mark.shared]
WAIT = 180_000


def wait_idle(page) -> None:
    """Until Streamlit has finished running the script (its status widget is gone)."""
    page.wait_for_timeout(400)
    page.wait_for_function("() => !document.querySelector('[data-testid=stStatusWidget]')", timeout=WAIT)


def stored_eventually(read, expected, *, seconds: float = 60) -> None:
    """Until ``read()`` (the server's store) gives ``expected``: the app writes it on its rerun, which may not
    have started when the status widget was last looked at, on a loaded machine."""
    import time

    deadline = time.monotonic() + seconds
    while (got := read()) != expected and time.monotonic() < deadline:
        time.sleep(0.25)
    assert got == expected


def go_to(page, title: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
    wait_idle(page)


def analyse_one(page, app_server: str, image) -> None:
    """Open the app, upload ``image`` on Upload & analyse and analyse it."""
    page.goto(app_server, timeout=60_000)
    page.get_by_text("Experiments").first.wait_for(timeout=60_000)
    go_to(page, "Upload & analyse")
    page.get_by_test_id("stFileUploader").first.locator("input[type=file]").set_input_files(str(image))
    wait_idle(page)
    page.get_by_role("button", name="Analyse 1 image").click()
    expect(page.get_by_text("Images analysed", exact=True)).to_be_visible(timeout=WAIT)
    wait_idle(page)


def analyse_sample_data(page, app_server: str) -> None:
    """Open the app, load the five sample images on Upload & analyse and analyse them."""
    page.goto(app_server, timeout=60_000)
    page.get_by_text("Experiments").first.wait_for(timeout=60_000)
    go_to(page, "Upload & analyse")
    page.get_by_role("button", name="Load sample data").click()
    wait_idle(page)
    page.get_by_role("button", name="Analyse 5 images").click()
    expect(page.get_by_text("Images analysed", exact=True)).to_be_visible(timeout=WAIT)
    wait_idle(page)


def test_upload_analyse_see_download_and_visit_every_page(app_server, page, shared_data, tmp_path):
    image = shared_data / "bbb" / "unlabelled" / "bbb_rgb_01.jpg"
    analyse_one(page, app_server, image)  # the app opens on the experiment picker
    assert page.get_by_test_id("stException").count() == 0

    go_to(page, "Segmentation")
    overlay = page.get_by_test_id("stImage").nth(1).locator("img")
    expect(overlay).to_be_visible(timeout=30_000)
    overlay.wait_for(timeout=30_000)
    page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=overlay.element_handle())
    expect(page.get_by_test_id("stPlotlyChart").first).to_be_visible(timeout=30_000)

    go_to(page, "Cells")
    with page.expect_download() as download:
        page.get_by_test_id("stDownloadButton").filter(has_text="Cells CSV (all)").locator("button").click()
    assert download.value.suggested_filename == "cells.csv"
    from_browser = pd.read_csv(download.value.path())

    # The same image through the command line gives the same cells.
    out = tmp_path / "cli"
    subprocess.run([sys.executable, "-m", "bbbcore", "segment", str(image), "--out", str(out)],
                   cwd=ROOT, check=True, capture_output=True, timeout=300)
    from_cli = pd.read_csv(out / "cells.csv")
    assert len(from_browser) == len(from_cli) > 20
    assert from_browser["cell_id"].tolist() == from_cli["cell_id"].tolist()
    for column in ("area", "perimeter", "aspect_ratio", "extent", "equivalent_diameter", "junction_continuity"):
        np.testing.assert_allclose(from_browser[column], from_cli[column], rtol=1e-9, err_msg=column)
    assert (from_browser["image_id"] == from_cli["image_id"]).all()

    for title in ("Plots", "Compare conditions", "Anomalies", "About", "Experiments", "Upload & analyse"):
        go_to(page, title)
        assert page.get_by_test_id("stException").count() == 0, title
    expect(page.get_by_text("Images analysed", exact=True)).to_be_visible()  # nothing lost on the way

    # A page reload starts a new session: the experiment named in the URL comes back from the store.
    assert "experiment=" in page.url
    page.reload()
    page.get_by_text("Images analysed", exact=True).wait_for(timeout=60_000)
    go_to(page, "Cells")
    with page.expect_download() as again:
        page.get_by_test_id("stDownloadButton").filter(has_text="Cells CSV (all)").locator("button").click()
    reloaded = pd.read_csv(again.value.path())
    assert reloaded["cell_id"].tolist() == from_browser["cell_id"].tolist()
    np.testing.assert_allclose(reloaded["area"], from_browser["area"])


def test_a_renamed_text_file_gets_its_message(app_server, page, tmp_path):
    fake = tmp_path / "plate_map.png"
    fake.write_text("well,condition\nA1,control\n")
    page.goto(app_server, timeout=60_000)
    page.get_by_text("Experiments").first.wait_for(timeout=60_000)
    go_to(page, "Upload & analyse")
    page.get_by_test_id("stFileUploader").first.locator("input[type=file]").set_input_files(str(fake))
    wait_idle(page)
    expect(page.get_by_text("plate_map.png: not a readable image")).to_be_visible(timeout=30_000)
    assert page.get_by_test_id("stException").count() == 0


def test_a_63x_czi_in_the_browser_gets_its_own_pixel_size_and_channels(app_server, page, shipped_model, tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from zoom import make_63x

    path, _ = make_63x(shipped_model, tmp_path, fmt="czi")  # DAPI first, ZO-1 second, 0.1028 µm/px, named
    page.goto(app_server, timeout=60_000)
    page.get_by_text("Experiments").first.wait_for(timeout=60_000)
    go_to(page, "Upload & analyse")
    page.get_by_test_id("stFileUploader").first.locator("input[type=file]").set_input_files(str(path))
    wait_idle(page)
    page.get_by_text("Preview and per-image settings").click()
    expect(page.get_by_text("ZO-1: junction")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("DAPI: nuclei")).to_be_visible()
    expect(page.get_by_text("Pixel size (µm/px), from the file")).to_be_visible()
    page.get_by_role("button", name="Analyse 1 image").click()
    expect(page.get_by_text("Images analysed", exact=True)).to_be_visible(timeout=WAIT)
    wait_idle(page)
    go_to(page, "Cells")
    with page.expect_download() as download:
        page.get_by_test_id("stDownloadButton").filter(has_text="Cells CSV (all)").locator("button").click()
    cells = pd.read_csv(download.value.path())
    assert len(cells) >= 2 and (cells["pixel_size_um"] == 0.1028).all()
    np.testing.assert_allclose(cells["area_um2"], cells["area"] * 0.1028**2, rtol=1e-6)
    out = tmp_path / "cli"  # the command line reads the same file alike
    subprocess.run([sys.executable, "-m", "bbbcore", "segment", str(path), "--out", str(out)],
                   cwd=ROOT, check=True, capture_output=True, timeout=300)
    np.testing.assert_allclose(pd.read_csv(out / "cells.csv")["area_um2"], cells["area_um2"], rtol=1e-9)


def test_twenty_bad_files_give_twenty_messages_and_a_failure_count(app_server, page, tmp_path):
    from PIL import Image

    files = [tmp_path / "good.jpg"]
    files[0].write_bytes((ROOT / "sample_data" / "bbb_rgb_05.jpg").read_bytes())
    for i in range(10):
        (tmp_path / f"notes_{i:02d}.png").write_text("these are my notes, not an image")
        Image.fromarray(np.full((8, 8), i, np.uint8)).save(tmp_path / f"tiny_{i:02d}.png")
    files += sorted(tmp_path.glob("notes_*.png")) + sorted(tmp_path.glob("tiny_*.png"))
    page.goto(app_server, timeout=60_000)
    page.get_by_text("Experiments").first.wait_for(timeout=60_000)
    go_to(page, "Upload & analyse")
    page.get_by_test_id("stFileUploader").first.locator("input[type=file]").set_input_files([str(f) for f in files])
    wait_idle(page)
    expect(page.get_by_text("10 of 21 files cannot be used")).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Analyse 11 images").click()
    expect(page.get_by_text("done: 1 analysed, 20 failed", exact=False)).to_be_visible(timeout=WAIT)
    wait_idle(page)
    errors = page.get_by_test_id("stAlertContentError")
    assert errors.count() == 20
    texts = errors.all_inner_texts()
    named = sorted(f.name for f in files[1:] for t in texts if f"{f.name}: " in t)  # the icon's name comes first
    assert len(set(texts)) == 20 and named == sorted(f.name for f in files[1:])  # each bad file once
    outcome = page.get_by_test_id("stAlertContentWarning").filter(has_text="done:")
    assert outcome.count() == 1  # in a warning colour, once
    assert page.get_by_test_id("stAlertContentSuccess").filter(has_text="done:").count() == 0
    assert page.get_by_test_id("stException").count() == 0


def test_the_demo_banner_survives_a_reload_and_an_excluded_image_leaves_every_compare_figure(app_server, page):
    import io

    analyse_sample_data(page, app_server)
    expect(page.get_by_text("illustrative demo", exact=False).first).to_be_visible()
    assert "experiment=" in page.url
    page.reload()
    page.get_by_text("Images analysed", exact=True).wait_for(timeout=60_000)
    wait_idle(page)
    expect(page.get_by_text("Its grouping into control and Tat 80 ng is an")).to_be_visible()
    expect(page.get_by_test_id("stSidebar").get_by_text("the grouping is an illustrative demo")).to_be_visible()

    # Exclude one of the two tat images; the Compare page's plot, table and statistics all drop it.
    go_to(page, "Cells")
    page.get_by_text("Quality control: exclude images or cells from the statistics").click()
    wait_idle(page)
    qc = page.get_by_test_id("stExpander").filter(has_text="Quality control")
    qc.get_by_role("combobox", name="Image").click()
    page.get_by_role("option", name="bbb_rgb_03.jpg").click()
    wait_idle(page)
    qc.get_by_label("Reason").fill("out of focus")
    qc.get_by_label("Reason").press("Enter")
    wait_idle(page)
    qc.get_by_role("button", name="Exclude", exact=True).click()
    wait_idle(page)
    go_to(page, "Compare conditions")
    expect(page.get_by_text("1 excluded image: bbb_rgb_03.jpg (out of focus)", exact=False)).to_be_visible()
    chart = page.get_by_test_id("stPlotlyChart").first.locator(".js-plotly-plot")
    points = chart.evaluate("gd => Object.fromEntries(gd._fullData.filter(t => t.name.endsWith('image means'))"
                            ".map(t => [t.name, t._length]))")  # as drawn (the figure's arrays travel encoded)
    assert points == {"control: image means": 3, "tat: image means": 1}
    axis_low = chart.evaluate("gd => gd._fullLayout.yaxis.range[0]")
    assert axis_low >= 0  # area_um2: no negative areas on the axis
    with page.expect_download() as table_file:
        page.get_by_test_id("stDownloadButton").filter(has_text="Download this table").locator("button").click()
    table = pd.read_csv(table_file.value.path()).set_index("group")
    assert table.loc["tat", "n_images"] == 1 and table.loc["control", "n_images"] == 3
    with page.expect_download() as stats_file:
        page.get_by_test_id("stDownloadButton").filter(has_text="Download the statistics").locator("button").click()
    statistics = pd.read_csv(io.BytesIO(open(stats_file.value.path(), "rb").read()))
    assert set(statistics["n_images"]) == {1} and set(statistics["n_images_control"]) == {3}
    expect(page.get_by_text("Primary test", exact=False).first).to_be_visible()
    assert page.get_by_test_id("stException").count() == 0


def test_the_last_runs_messages_are_gone_while_the_next_run_works(app_server, page, tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    first, second = tmp_path / "a.jpg", tmp_path / "b.jpg"
    first.write_bytes((ROOT / "sample_data" / "bbb_rgb_05.jpg").read_bytes())
    second.write_bytes((ROOT / "sample_data" / "bbb_rgb_04.jpg").read_bytes())
    page.goto(app_server, timeout=60_000)
    page.get_by_text("Experiments").first.wait_for(timeout=60_000)
    go_to(page, "Upload & analyse")
    uploader = page.get_by_test_id("stFileUploader").first.locator("input[type=file]")
    uploader.set_input_files([str(first), str(tmp_path / "notes.png")])
    wait_idle(page)
    page.get_by_role("button", name="Analyse 1 image").click()
    expect(page.get_by_text("done: 1 analysed, 1 failed", exact=False)).to_be_visible(timeout=WAIT)
    wait_idle(page)
    uploader.set_input_files([str(second)])
    wait_idle(page)
    page.get_by_role("button", name="Analyse 1 image").click()
    page.get_by_test_id("stProgress").first.wait_for(timeout=WAIT)  # the next run is working
    assert page.get_by_text("done: 1 analysed, 1 failed", exact=False).count() == 0  # the last run's line is gone
    expect(page.get_by_text("done: 1 analysed, 1 failed", exact=False)).to_be_visible(timeout=WAIT)  # the new one
    assert page.get_by_test_id("stAlertContentError").count() == 1  # notes.png, once


def press(page, label: str) -> str:
    """Press an editing button; the line it printed (waited for: the last edit's line stays until then)."""
    alert = page.get_by_test_id("stAlert").first
    before = alert.inner_text() if alert.count() else None
    page.get_by_role("button", name=label, exact=True).click(timeout=30_000)
    if before is None:
        alert.wait_for(timeout=60_000)
    else:
        expect(alert).not_to_have_text(before, timeout=60_000)
    wait_idle(page)
    return alert.inner_text()


def test_cells_corrected_in_the_browser_are_stored_versions_that_a_reload_keeps(app_server, page, shared_data):
    from bbbcore.editing import touched_cells
    from bbbcore.export import read_labels_tiff
    from bbbcore.instances import shared_borders
    from bbbcore.store import Store

    image = shared_data / "bbb" / "unlabelled" / "bbb_rgb_01.jpg"
    name = image.name
    analyse_one(page, app_server, image)
    experiment = int(page.url.split("experiment=")[1].split("&")[0])
    store = Store()  # the server's data folder (BBB_DATA_DIR)

    def stored() -> np.ndarray:
        return read_labels_tiff(store.get_file(store.labels_sha(experiment, name)))

    model = stored()
    go_to(page, "Correct cells")
    inner = [i for i in np.unique(model[1:-1, 1:-1]) if i and i not in np.unique(
        np.concatenate([model[0], model[-1], model[:, 0], model[:, -1]]))]

    # 1. Delete: click a cell's dot.
    gone = int(inner[len(inner) // 2])
    click_cell(page, gone)
    assert press(page, "Delete") == f"{name}: deleted cell {gone}"
    after_delete = stored()
    assert not (after_delete == gone).any()
    np.testing.assert_array_equal(after_delete[model != gone], model[model != gone])

    # 2. Merge: lasso around the dots of two cells with a long shared border.
    pairs, _, length = shared_borders(after_delete, None)
    inner_pairs = [(int(a), int(b), n) for (a, b), n in zip(pairs, length) if a in inner and b in inner]
    a, b, _ = max(inner_pairs, key=lambda p: p[2])
    where = markers(page)
    lasso(page, band(where[a], where[b]))
    assert press(page, "Merge") == f"{name}: merged cells {min(a, b)}, {max(a, b)} into cell {min(a, b)}"
    after_merge = stored()
    assert not (after_merge == max(a, b)).any()
    assert ((after_merge == min(a, b)) == ((after_delete == a) | (after_delete == b))).all()

    # 3. Draw a new cell with the lasso: a square over the deleted cell's place.
    cx, cy = np.nonzero(model == gone)[1].mean(), np.nonzero(model == gone)[0].mean()
    lasso(page, [(cx - 12, cy - 12), (cx + 12, cy - 12), (cx + 12, cy + 12), (cx - 12, cy + 12)])
    said = press(page, "New cell")
    assert said.startswith(f"{name}: drew cell ")
    drawn = int(said.rsplit(" ", 1)[1])
    after_draw = stored()
    assert drawn > model.max() and 400 < (after_draw == drawn).sum() < 700  # about 24 x 24 px
    assert after_draw[int(cy), int(cx)] == drawn

    # 4. Split: lasso around one corner of a big inner cell.
    areas = {int(i): int((after_draw == i).sum()) for i in inner if i not in (gone, a, b)}
    big = max(areas, key=areas.get)
    rows, cols = np.nonzero(after_draw == big)
    sx, sy = cols.mean(), rows.mean()
    lasso(page, [(sx - 40, sy - 40), (sx, sy - 40), (sx, sy), (sx - 40, sy)])
    said = press(page, "Split")
    assert said.startswith(f"{name}: split cell {big} into cells {big}, ")
    after_split = stored()
    parts = touched_cells(after_draw, after_split)
    assert set(parts) == {big, *[int(p) for p in said.rsplit(", ", 1)[1:]]} and len(parts) == 2
    assert (((after_split == parts[0]) | (after_split == parts[1])) == (after_draw == big)).all()

    # 5. Undo and redo the split; a reload keeps the corrected version.
    assert press(page, "Undo") == f"{name}: undid: {said.split(': ', 1)[1]}"
    np.testing.assert_array_equal(stored(), after_draw)
    assert press(page, "Redo") == f"{name}: redid: {said.split(': ', 1)[1]}"
    np.testing.assert_array_equal(stored(), after_split)
    page.reload()
    page.get_by_text("Correct cells", exact=True).first.wait_for(timeout=60_000)
    wait_idle(page)
    assert set(markers(page)) == set(np.unique(after_split)) - {0}
    go_to(page, "Cells")
    with page.expect_download() as download:
        page.get_by_test_id("stDownloadButton").filter(has_text="Cells CSV (all)").locator("button").click()
    table = pd.read_csv(download.value.path())
    assert set(table["cell_id"]) == set(np.unique(after_split)) - {0}
    assert set(table.loc[table["edited"], "cell_id"]) == {min(a, b), drawn, *parts}
    go_to(page, "Segmentation")
    n_cells = len(np.unique(after_split)) - 1
    expect(page.get_by_text(f"{n_cells} cells, ")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("corrected by hand").first).to_be_visible()

    # 6. Revert (after the reload: from the store's log) gives the model's cells back.
    go_to(page, "Correct cells")
    assert press(page, "Revert") == f"{name}: reverted to the model's cells"
    np.testing.assert_array_equal(stored(), model)
    log = store.edits(experiment, name)
    assert log["operation"].tolist() == ["delete", "merge", "draw", "split", "undo", "redo", "revert"]
    assert log["session"].nunique() == 2  # the reload is another session
    assert page.get_by_test_id("stException").count() == 0


def test_a_model_taught_from_corrected_cells_in_the_browser_is_scored_listed_and_used(app_server, page, shared_data):
    from bbbcore.registry import registered_models
    from bbbcore.store import Store

    image = shared_data / "bbb" / "unlabelled" / "bbb_rgb_04.jpg"
    analyse_one(page, app_server, image)

    # Accept the cells in the middle of the image (a box of dots), and correct one (a deletion is no cell to learn).
    go_to(page, "Correct cells")
    where = markers(page)
    xs, ys = np.array([p[0] for p in where.values()]), np.array([p[1] for p in where.values()])
    cx, cy, rx, ry = np.median(xs), np.median(ys), np.ptp(xs) * 0.3, np.ptp(ys) * 0.3
    lasso(page, [(cx - rx, cy - ry), (cx + rx, cy - ry), (cx + rx, cy + ry), (cx - rx, cy + ry)])
    said = press(page, "Accept")
    accepted = said.split("accepted cells ")[1].split(" as right")[0].split(", ")
    assert len(accepted) >= 8

    go_to(page, "Teach the model")
    steps = page.get_by_test_id("stNumberInputField")
    steps.fill("20")
    steps.press("Tab")
    wait_idle(page)
    page.get_by_role("button", name="Teach").click()
    expect(page.get_by_test_id("stProgress").first).to_be_visible(timeout=60_000)  # it runs in the background
    go_to(page, "Cells")  # the dashboard goes on working meanwhile
    assert page.get_by_test_id("stException").count() == 0
    go_to(page, "Teach the model")
    expect(page.get_by_test_id("stMetric").nth(1)).to_be_visible(timeout=300_000)  # the scores, side by side
    parent, taught = (page.get_by_test_id("stMetricValue").nth(i).inner_text() for i in (0, 1))
    assert 0 <= float(parent) <= 1 and 0 <= float(taught) <= 1
    kept = page.get_by_text("is kept").count() > 0
    assert kept == (float(taught) >= float(parent) - 0.02)
    assert (registered_models(Store().folder) != []) == kept
    if kept:
        page.get_by_role("button", name="Re-analyse every image with bbb_unet-taught-1").click()
        wait_idle(page)
        page.get_by_role("button", name="Analyse 1 image").click()
        shipped_version = json.loads((ROOT / "models" / "bbb_unet.card.json").read_text())["version"]
        expect(page.get_by_text(f"bbb_rgb_04.jpg: model bbb_unet-taught-1 {shipped_version}+ft")).to_be_visible(
            timeout=WAIT)
        wait_idle(page)
        experiment = int(page.url.split("experiment=")[1].split("&")[0])
        assert Store().images(experiment)["model_name"].tolist() == ["bbb_unet-taught-1"]
    assert page.get_by_test_id("stException").count() == 0


def edit_grid_cell(page, moves: list[str], value: str) -> None:
    """Move the grid's selection with ``moves`` (keys), type ``value`` into that cell and commit it.

    Only the editor itself is waited for (open, then closed), never the app's rerun: the edits follow each
    other as fast as the grid accepts keys.
    """
    for key in moves:
        page.keyboard.press(key)
    page.keyboard.press("Enter")  # opens the selected cell's editor
    editor = page.locator("#portal textarea, #portal input").first
    editor.wait_for(state="visible", timeout=10_000)
    editor.fill(value)
    editor.press("Enter")  # commits; the selection moves one row down
    editor.wait_for(state="detached", timeout=10_000)


def fill_field(page, field: str, value: str, button: str) -> None:
    page.get_by_role("combobox", name="Field").click()
    page.get_by_role("option", name=field, exact=True).click()
    wait_idle(page)
    box = page.get_by_role("textbox", name="Value")
    box.fill(value)
    box.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name=button).click()
    wait_idle(page)


def test_three_quick_edits_and_one_analyse_click_are_all_stored(app_server, page, tmp_path):
    from PIL import Image

    from bbbcore.junction_generator import generate
    from bbbcore.metadata import read_sample_sheet
    from bbbcore.store import Store

    files = []
    for index in range(3):
        drawn = generate((256, 320), diameter_px=60, texture="continuous", seed=index)
        files.append(tmp_path / f"img{index}.png")
        Image.fromarray((drawn.junction * 255).astype(np.uint8)).save(files[-1])
    page.goto(app_server, timeout=60_000)
    page.get_by_text("Experiments").first.wait_for(timeout=60_000)
    go_to(page, "Upload & analyse")
    page.get_by_test_id("stFileUploader").first.locator("input[type=file]").set_input_files([str(f) for f in files])
    wait_idle(page)
    fill_field(page, "pixel size (µm/px)", "0.5", "Apply to all")

    # Three cells edited in quick succession (no wait for the app in between), then one click on Analyse.
    grid = page.get_by_test_id("stDataFrame").first
    grid.wait_for(timeout=30_000)  # drawn afresh with the applied values
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 25, box["y"] + 35 + 17)  # the file column, first row (header 35 px, rows 35 px)
    edit_grid_cell(page, ["ArrowRight"], "Tat 1")  # row 1, condition
    edit_grid_cell(page, ["ArrowRight"], "2")  # row 2, dose
    edit_grid_cell(page, ["ArrowRight"] * 4, "0.3")  # row 3, pixel size
    page.get_by_role("button", name="Analyse 3 images").click()
    expect(page.get_by_text("Images analysed", exact=True)).to_be_visible(timeout=WAIT)
    wait_idle(page)

    store = Store()  # the server's data folder (BBB_DATA_DIR)
    experiment = int(page.url.split("experiment=")[1].split("&")[0])
    stored = store.images(experiment).set_index("name")
    assert stored["condition"].tolist() == ["Tat 1", "img1", "img2"]
    assert stored["dose"].isna().tolist() == [True, False, True] and stored.loc["img1.png", "dose"] == 2
    assert stored["pixel_size_um"].tolist() == [0.5, 0.5, 0.3]
    cells = store.cells(experiment)
    assert len(cells) and set(cells["image"]) == {f.name for f in files}
    for name, size in (("img0.png", 0.5), ("img2.png", 0.3)):
        mine = cells[cells["image"] == name]
        np.testing.assert_allclose(mine["area_um2"], mine["area"] * size**2, rtol=1e-9)
        assert len(mine) and (mine["pixel_size_um"] == size).all()

    # Fill down after the analysis: the empty dose below the typed one takes it, and is stored.
    fill_field(page, "dose", "", "Fill down")
    stored_eventually(lambda: store.images(experiment)["dose"].tolist()[1:], [2, 2])
    # The sample sheet downloaded holds it all, the pixel sizes included (it reads back as it was).
    with page.expect_download() as download:
        page.get_by_test_id("stDownloadButton").filter(has_text="Download sample sheet").locator("button").click()
    sheet = read_sample_sheet(download.value.path()).set_index("file")
    assert sheet["pixel_size_um"].tolist() == [0.5, 0.5, 0.3] and sheet["dose"].tolist()[1:] == [2, 2]
    assert sheet.loc["img0.png", "condition"] == "Tat 1"
    assert page.get_by_test_id("stException").count() == 0


def test_plots_anomalies_after_a_reload_the_gallery_and_the_report_in_the_browser(app_server, page, tmp_path):
    import re

    analyse_sample_data(page, app_server)
    images = ["bbb_rgb_01.jpg", "bbb_rgb_02.jpg", "bbb_rgb_03.jpg", "bbb_rgb_04.jpg", "bbb_rgb_05.jpg"]

    # Plots: names with units on the axes, plain numbers on hover, one trace per image when coloured by image.
    go_to(page, "Plots")
    chart = page.get_by_test_id("stPlotlyChart").first.locator(".js-plotly-plot")
    chart.wait_for(timeout=30_000)
    assert chart.evaluate("gd => gd._fullLayout.xaxis.title.text") == "area (µm²)"
    assert chart.evaluate("gd => gd._fullLayout.xaxis.hoverformat") == ",.4~r"
    page.get_by_text("image", exact=True).click()
    wait_idle(page)
    chart = page.get_by_test_id("stPlotlyChart").first.locator(".js-plotly-plot")
    assert sorted(chart.evaluate("gd => gd._fullData.map(t => t.name)")) == images

    # Anomalies: a fit, then a reload shows the stored fit without fitting again.
    go_to(page, "Anomalies")
    page.get_by_role("button", name="Find anomalous cells").click()
    caption = page.get_by_text(re.compile(r"Threshold .*cells flagged"))
    expect(caption).to_be_visible(timeout=WAIT)
    fitted = caption.inner_text()
    page.reload()
    expect(page.get_by_text(re.compile(r"Threshold .*cells flagged"))).to_have_text(fitted, timeout=60_000)

    # The gallery on the Cells page: one thumbnail per image, with its cell count.
    go_to(page, "Cells")
    gallery = page.get_by_test_id("stExpander").filter(has_text="The experiment's images")
    expect(gallery.get_by_test_id("stImage")).to_have_count(5)
    expect(gallery.get_by_text(re.compile(r"bbb_rgb_01\.jpg: \d+ cells"))).to_be_visible()

    # The report: one self-contained file with every image, the figures, statistics, methods and model card.
    go_to(page, "Compare conditions")
    page.get_by_role("button", name="Build the report").click()
    wait_idle(page)
    with page.expect_download() as download:
        page.get_by_test_id("stDownloadButton").filter(has_text="Download report (HTML)").locator("button").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    text = saved.read_text(encoding="utf-8")
    assert text.count("data:image/jpeg;base64,") == 5 and all(f"<b>{name}</b>" in text for name in images)
    assert all(heading in text for heading in ("<h2>Statistics</h2>", "<h2>Methods</h2>",
                                               "<h2>Segmentation model</h2>"))
    assert "src=\"http" not in text and "src='http" not in text  # nothing fetched: it opens offline
    report = page.context.browser.new_page()
    report.goto(saved.as_uri())
    report.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
    drawn = report.locator(".js-plotly-plot").count()
    assert drawn == text.count('class="figure"') >= 1
    pdf = report.pdf()  # the browser's "Save as PDF"
    assert pdf.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page(?!s)", pdf)) >= 2
    report.close()
    assert page.get_by_test_id("stException").count() == 0
