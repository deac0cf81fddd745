"""Write docs/columns.md from bbbcore.features.COLUMNS and the config (run after changing either)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bbbcore import config  # noqa: E402
from bbbcore.features import COLUMNS, SUMMARY_COLUMNS  # noqa: E402


def table(columns: dict) -> list[str]:
    return ["| column | unit | definition |", "|---|---|---|"] + [
        f"| `{name}` | {unit} | {text} |" for name, (unit, text) in columns.items()
    ]


def main() -> None:
    c = config
    lines = [
        "# Columns of cells.csv and summary.csv", "",
        "One row per cell in `cells.csv`, one row per image in `summary.csv`. Plain names are in pixels;",
        "when a pixel size is known (from the file, `--pixel-size`, or the dashboard), the physical columns",
        "are added beside them with the unit in the name. The same table is `bbbcore.features.COLUMNS`",
        "(`python scripts/write_columns_doc.py` writes this page; a test keeps it in step).", "",
        "## cells.csv", "", *table(COLUMNS), "",
        "Text cells starting with `=`, `+`, `-` or `@` get a leading `'` so that a spreadsheet does",
        "not run them as formulas. Empty cells are unknown values (no pixel size, no nuclear channel, ...).", "",
        "## The junction rules", "",
        f"* **Background**: the {c.JUNCTION_BACKGROUND_PERCENTILE:g}th percentile of the junction channel over "
        "the whole image, subtracted from every pixel.",
        f"* **Border band**: the cell's pixels less than {c.JUNCTION_BAND_UM} µm ({c.JUNCTION_BAND_PX} px when the "
        "pixel size is unknown) from its outline; the **interior** is the rest of the cell.",
        "* **Cytoplasm level**: the median of the interior, nuclei left out when a nuclear channel exists "
        "(a bright nucleus does not raise it).",
        "* **Outline**: the cell's pixels next to another cell or to no cell; pixels on the image frame are "
        "left out (no junction there).",
        f"* **Present**: at an outline pixel, the maximum of the smoothed (Gaussian, sigma 1 px) "
        f"background-subtracted channel within {c.JUNCTION_REACH_UM} µm ({c.JUNCTION_REACH_PX} px) reaches "
        f"{c.JUNCTION_PRESENT_RATIO} x the cell's cytoplasm level. With `--junction-threshold T` the rule is one "
        "fixed intensity T for all cells and images instead: use it to compare images taken with the same settings.",
        f"* **Continuous / punctate / absent** (after JAnaP): present stretches along the outline at least "
        f"{c.JUNCTION_CONTINUOUS_MIN_UM} µm long ({c.JUNCTION_CONTINUOUS_MIN_PX} px), not counting the reach + 1 px "
        "by which smoothing and reach widen them at each end, are continuous; shorter ones are punctate; the rest "
        "is absent. Gaps shorter than about twice the reach are bridged.",
        f"* **Nuclei**: Otsu's threshold of the smoothed nuclear channel (on every other row and column: nuclei are "
        f"15 px or more across at 10x), objects under {c.MIN_NUCLEUS_AREA_UM2:g} µm² "
        f"({c.MIN_NUCLEUS_AREA_PX} px) dropped; a nucleus belongs to the cell holding its centre; touching nuclei "
        "count as one.", "",
        "Shape columns come from scikit-image's `regionprops`, except the three from the convex hull of the",
        "pixel corners (`solidity`, `feret_diameter_max`, `feret_diameter_min`), computed as ImageJ does",
        "with scipy's Qhull; they agree with scikit-image's `solidity` and `feret_diameter_max` within",
        "0.02 and 1.5 px (tested) at a fraction of the cost, and scikit-image has no minimum Feret.", "",
        "## summary.csv", "",
        "One row per image. Cells touching the image edge are left out by default and counted in",
        "`n_edge_excluded`. Besides `image`, `image_id`, the sample fields and `pixel_size_um`:", "",
        *table(SUMMARY_COLUMNS), "",
        "`<feature>` is every numeric column of cells.csv except ids, centroids and the pixel size.", "",
    ]
    (ROOT / "docs" / "columns.md").write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {ROOT / 'docs' / 'columns.md'}")


if __name__ == "__main__":
    main()
