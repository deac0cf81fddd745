"""The methods paragraph says what was run, with its numbers."""

from __future__ import annotations

import pandas as pd

from bbbcore import config
from bbbcore.report import methods_paragraph
from bbbcore.unet import read_card


def test_methods_paragraph_names_model_metrics_exclusions_and_tests(synthetic_monolayer):
    from bbbcore.features import cells_table

    cells = cells_table(synthetic_monolayer["truth"], image="a.png", pixel_size_um=0.62)
    exclusions = pd.DataFrame({"image": ["b.png", "a.png"], "cell_id": [None, 3], "reason": ["blurred", "debris"]})
    card = read_card(config.DEFAULT_MODEL) if config.DEFAULT_MODEL.exists() else None
    text = methods_paragraph(cells, model_card=card, exclusions=exclusions, control="control",
                             features=["area_um2", "circularity"], statistic="median", unit="replicate")
    if card is not None:
        assert f"{card.name} version {card.version}" in text
        assert f"{card.metrics['leave_one_image_out']['bbb_01']['f1@0.5']:.2f} on held-out image bbb_01" in text
        assert ("mirrored copies" in text) == (card.flips > 1)
    assert f"{len(cells)} cells were measured" in text and "pixel size 0.62 µm" in text
    assert "1 image and 1 further cell were excluded from the statistics (blurred: 1 and debris: 1)" in text
    assert "the replicate, not the cell, was the unit of analysis" in text
    assert "on the median of each replicate" in text and "Holm's correction" in text
    assert "The primary test was Welch's t-test on these per-replicate values" in text
    assert "Dose-response" not in text  # no doses in this table: no dose test is claimed


def test_the_dose_test_is_named_only_when_there_were_doses(synthetic_monolayer):
    from bbbcore.features import cells_table

    cells = cells_table(synthetic_monolayer["truth"], image="a.png")
    cells["condition"] = ["control", "tat"] * (len(cells) // 2) + ["tat"] * (len(cells) % 2)
    cells["dose"] = cells["condition"].map({"control": 0.0, "tat": 80.0})
    with_doses = methods_paragraph(cells, control="control", features=["area"])
    assert "Dose-response was tested with Spearman's rank correlation" in with_doses
    cells["dose"] = 80.0  # one dose everywhere: nothing to relate
    assert "Dose-response" not in methods_paragraph(cells, control="control", features=["area"])


def test_corrections_by_hand_are_said_with_their_counts(synthetic_monolayer):
    from bbbcore.features import cells_table, summary_table

    first = cells_table(synthetic_monolayer["truth"], image="a.png", pixel_size_um=0.62)
    second = cells_table(synthetic_monolayer["truth"], image="b.png", pixel_size_um=0.62)
    assert "corrected by hand" not in methods_paragraph(pd.concat([first, second], ignore_index=True))
    first["edited"] = first["cell_id"].isin([2, 5, 7])  # a corrected image; b.png's table has no column
    cells = pd.concat([first, second], ignore_index=True)
    text = methods_paragraph(cells)
    assert (f"corrected by hand in 1 of 2 images (cells deleted, merged, drawn or split in the dashboard or with "
            f"python -m bbbcore edit); 3 of the {len(cells)} cells measured were drawn or changed by hand.") in text
    summary = summary_table(cells, exclude_edge=False).set_index("image")
    assert summary.loc["a.png", "n_edited"] == 3 and summary.loc["b.png", "n_edited"] == 0
    assert summary["corrected_by_hand"].tolist() == [True, False]
    # An image whose cells were only deleted has no edited cell, and is still said to be corrected.
    text = methods_paragraph(cells, corrected_images=["b.png"])
    assert "corrected by hand in 2 of 2 images" in text and "3 of the" in text
    only_deleted = methods_paragraph(second, corrected_images=["b.png"])
    assert "corrected by hand in 1 of 1 image (" in only_deleted and f"0 of the {len(second)} cells" in only_deleted


def test_the_html_report_is_one_self_contained_page():
    import base64

    import pandas as pd
    import plotly.graph_objects as go

    from bbbcore.report import html_report

    images = pd.DataFrame({"image": ["a.tif", "<b>.tif"], "condition": ["control", "tat"], "n_cells": [12, 7],
                           "quality_flags": ["", "out of focus"]})
    jpeg = b"\xff\xd8 not really a jpeg"
    html = html_report(title="Plate 3", images=images, thumbnails={"a.tif": jpeg},
                       figures=[go.Figure(go.Bar(x=[1], y=[2])), go.Figure(go.Bar(x=[3], y=[4]))],
                       statistics=pd.DataFrame({"feature": ["area"], "p_holm": [0.0123456]}),
                       methods="Cells were measured.", model_card={"model": "bbb_unet 2.0", "empty": ""})
    assert html.startswith("<!DOCTYPE html>") and "<title>Plate 3</title>" in html
    assert html.count("<img ") == 1 and base64.b64encode(jpeg).decode() in html  # embedded, not linked
    assert "&lt;b&gt;.tif" in html and "<b>.tif" not in html.replace("<b>&lt;b&gt;.tif</b>", "")  # escaped
    assert "12 cells" in html and "out of focus" in html
    assert html.count('class="plotly-graph-div"') == 2 and html.count("plotly.js v") == 1  # the library once
    assert "<td>0.01235</td>" in html and "Cells were measured." in html
    assert "<li>model: bbb_unet 2.0</li>" in html and "<li>empty" not in html
