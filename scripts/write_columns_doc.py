"""Write docs/columns.md from bbbcore.features.COLUMNS and the config (run after changing either)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bbbcore import config  # noqa: E402
from bbbcore.features import COLUMNS, SUMMARY_COLUMNS  # noqa: E402
from bbbcore.interfaces import INTERFACE_COLUMNS  # noqa: E402


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
        "* **Borders**: each cell's outline is traced between its pixels and its neighbours' and cut into one "
        "border per neighbour (an **interface**, one row of `interfaces.csv`) and its border facing no cell; the "
        "image frame is left out (no junction there). Lengths are measured with the pixel staircase removed "
        "(Douglas-Peucker, 1 px).",
        f"* **Present**: along a border every 0.5 px, the maximum across the border, within {c.JUNCTION_REACH_UM} µm "
        f"({c.JUNCTION_REACH_PX} px) either side, of the smoothed (Gaussian, sigma 1 px) background-subtracted channel "
        f"reaches {c.JUNCTION_PRESENT_RATIO} x the cytoplasm level: the higher of the two cells' on an interface (the "
        "signal must stand out of both), the cell's own on a free border; a stretch ends where the signal falls "
        "below half its local peak (not where the blurred signal finally drops under the threshold, which "
        "lengthened dots and shortened gaps). Gaps shorter than twice the reach are bridged. Points closer than "
        "two reaches to a third cell's border (near the vertices) are not measured. With `--junction-threshold T` "
        "the rule is one fixed intensity T for all cells and images instead: use it to compare images taken "
        "with the same settings.",
        f"* **Classes** (JAnaP's): present stretches at least {c.JUNCTION_CONTINUOUS_MIN_UM} µm long are "
        f"continuous (without a pixel size {c.JUNCTION_CONTINUOUS_MIN_DIAMETERS:.1%} of the typical cell diameter, "
        f"the same share of the {c.TYPICAL_CELL_DIAMETER_UM:g} µm BBB cell: JAnaP's 15 px, tied to the image width, "
        f"is not used); shorter ones are perpendicular when their extent across the border (full width at half "
        f"maximum) exceeds {c.JUNCTION_PERPENDICULAR_ASPECT} x their length along it, else punctate; the rest is absent. "
        "A cell's fractions are its borders' fractions weighted by their measured length, so cells.csv and "
        "interfaces.csv count the same stretches.",
        "* **Changed 2026-12-01** (`junction_continuity` and the class fractions, issue 23): they were read pixel by "
        "pixel on the cell's inner outline with a square reach and stretches ended at the threshold; the blur "
        "widened every dot and shortened every gap (a dotted line read at up to twice its coverage). Validated on "
        "generated images with known truth (`python benchmarks/junction_validation.py`, benchmarks/README.md), "
        "the new rule reads continuity within 0.02 of the truth; on the shared images it reads lower than the "
        "old one (see benchmarks/README.md).",
        "* **Width**: full width at half maximum of the mean intensity profile across a border (cubic-spline "
        "profiles centred on the junction's ridge), where junction signal is present.",
        f"* **Nuclei**: Otsu's threshold of the smoothed nuclear channel (on every other row and column: nuclei are "
        f"15 px or more across at 10x), objects under {c.MIN_NUCLEUS_AREA_UM2:g} µm² "
        f"({c.MIN_NUCLEUS_AREA_PX} px) dropped; a nucleus belongs to the cell holding its centre; touching nuclei "
        "count as one.", "",
        "Shape columns come from scikit-image's `regionprops`, except the three from the convex hull of the",
        "pixel corners (`solidity`, `feret_diameter_max`, `feret_diameter_min`), computed as ImageJ does",
        "with scipy's Qhull; they agree with scikit-image's `solidity` and `feret_diameter_max` within",
        "0.02 and 1.5 px (tested) at a fraction of the cost, and scikit-image has no minimum Feret.", "",
        "## interfaces.csv", "",
        "One row per pair of touching cells (`cell_a` < `cell_b`; pairs touching along fewer than "
        f"{c.NEIGHBOUR_MIN_CONTACT_PX} pixel pairs are not interfaces), measured with the rules above:", "",
        *table(INTERFACE_COLUMNS), "",
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
