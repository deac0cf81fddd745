"""Plant one-line bugs in a copy of the project and see which tests kill them.

Each mutant is one textual change to one file of ``bbbcore``. The project is copied
(tracked and untracked, not ignored files) to a temporary folder once; for each mutant
the file is changed there, the tests that guard that code run (``pytest -x``), and the
file is put back. A mutant is *killed* when a test fails, *survives* when they all pass.
The first line of the output checks that the copy, not the installed package, is tested.

Usage::

    python benchmarks/mutants.py                 # every mutant, the kill table (markdown)
    python benchmarks/mutants.py --only stats-   # those whose id starts so
    python benchmarks/mutants.py --list

About 5-10 minutes for the whole list on the 2-core CPU (most of it is the model tests).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutant:
    """One planted bug: ``old`` (found exactly once in ``path``) becomes ``new``."""

    id: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    what: str


FEATURES = ("tests/test_features.py", "tests/test_features_known.py")
STATS = ("tests/test_stats.py",)
TILES = ("tests/test_unet.py", "tests/test_model.py")

MUTANTS = [
    # --- the bugs named in issue 25 -------------------------------------------------
    Mutant("stats-mixed-unnested", "bbbcore/stats.py",
           '"unit": (condition + "/" + table[unit].astype(str)).to_numpy(),',
           '"unit": table[unit].astype(str).to_numpy(),', STATS,
           "mixed model's random effect grouped by replicate, not nested in its condition"),
    Mutant("tiles-window-shift", "bbbcore/unet.py",
           "window = padded[off + wy : off + wy_stop, off + wx : off + wx_stop]",
           "window = padded[off + wy + 1 : off + wy_stop + 1, off + wx : off + wx_stop]", TILES,
           "tile window shifted by one pixel"),
    Mutant("features-aspect-off-by-one", "bbbcore/features.py",
           '"aspect_ratio": width / np.maximum(height, 1),',
           '"aspect_ratio": (width + 1) / np.maximum(height, 1),', FEATURES,
           "off-by-one aspect ratio"),
    Mutant("features-um-area-not-squared", "bbbcore/features.py",
           'table["area_um2"] = table["area"] * size**2',
           'table["area_um2"] = table["area"] * size', FEATURES,
           "µm scaling error: area x pixel size, not its square"),
    Mutant("features-edge-flipped", "bbbcore/features.py",
           '"touches_edge": edge.astype(bool),',
           '"touches_edge": ~edge.astype(bool),', FEATURES,
           "flipped edge flag"),
    Mutant("stats-holm-skipped", "bbbcore/stats.py",
           'result.loc[index, "p_holm"] = holm(result.loc[index, "p_welch"].to_numpy())',
           'result.loc[index, "p_holm"] = result.loc[index, "p_welch"].to_numpy()', STATS,
           "Holm's correction skipped"),
    Mutant("stats-student-for-welch", "bbbcore/stats.py",
           "st.ttest_ind(t, c, equal_var=False)",
           "st.ttest_ind(t, c, equal_var=True)", STATS,
           "Student's t-test in place of Welch's"),
    Mutant("instances-merge-flipped", "bbbcore/instances.py",
           "weak = pairs[mean < threshold]",
           "weak = pairs[mean > threshold]", ("tests/test_instances.py",),
           "flipped merge threshold (strong borders merged, weak ones kept)"),
    # --- more of the same kind ------------------------------------------------------
    Mutant("stats-units-not-by-condition", "bbbcore/stats.py",
           'groupby(["_condition", unit], sort=False)',
           "groupby([unit], sort=False)", STATS,
           "unit means pooled across conditions when replicate labels repeat"),
    Mutant("stats-hedges-no-correction", "bbbcore/stats.py",
           "correction = 1 - 3 / (4 * (n1 + n2) - 9)",
           "correction = 1.0", STATS,
           "Hedges' small-sample correction dropped (Cohen's d)"),
    Mutant("stats-mannwhitney-one-sided", "bbbcore/stats.py",
           'st.mannwhitneyu(t, c, alternative="two-sided")',
           'st.mannwhitneyu(t, c, alternative="greater")', STATS,
           "one-sided Mann-Whitney"),
    Mutant("features-circularity-not-squared", "bbbcore/features.py",
           "4 * np.pi * area / perimeter**2",
           "4 * np.pi * area / perimeter", FEATURES,
           "circularity with the perimeter not squared"),
    Mutant("features-extent-of-height", "bbbcore/features.py",
           '"extent": area / np.maximum(width * height, 1),',
           '"extent": area / np.maximum(width * width, 1),', FEATURES,
           "extent over width² instead of the bounding box"),
    Mutant("features-feret-min-is-max", "bbbcore/features.py",
           "feret_min[index] = (projections.max(axis=0) - projections.min(axis=0)).min()",
           "feret_min[index] = (projections.max(axis=0) - projections.min(axis=0)).max()", FEATURES,
           "minimum Feret taken as the widest projection"),
    Mutant("features-centroid-swapped", "bbbcore/features.py",
           '"centroid_x": props["centroid-1"].astype(float),',
           '"centroid_x": props["centroid-0"].astype(float),', FEATURES,
           "centroid x read from the row coordinate"),
    Mutant("tiles-core-shift", "bbbcore/unet.py",
           "core = out[y - wy : y_stop - wy, x - wx : x_stop - wx]",
           "core = out[y - wy + 1 : y_stop - wy + 1, x - wx : x_stop - wx]", TILES,
           "tile core cut one pixel off"),
    Mutant("interfaces-perpendicular-flipped", "bbbcore/interfaces.py",
           "perpendicular = across > config.JUNCTION_PERPENDICULAR_ASPECT * (sizes * STEP_PX)",
           "perpendicular = across < config.JUNCTION_PERPENDICULAR_ASPECT * (sizes * STEP_PX)", ("tests/test_interfaces.py",),
           "perpendicular and punctate stretches swapped"),
    Mutant("interfaces-continuous-any-length", "bbbcore/interfaces.py",
           "continuous = (stops - starts) * STEP_PX >= scale.continuous_px - 1e-9",
           "continuous = (stops - starts) * STEP_PX >= 0", ("tests/test_interfaces.py",),
           "every present stretch called continuous"),
    Mutant("interfaces-linearity-inverted", "bbbcore/interfaces.py",
           "linearity = np.where(straight > 0, length / straight, np.nan)",
           "linearity = np.where(straight > 0, straight / length, np.nan)",
           ("tests/test_interfaces.py",), "linearity index upside down"),
    Mutant("interfaces-lower-threshold", "bbbcore/interfaces.py",
           "limit = np.where(neighbour > 0, np.maximum(limits[cell], limits[neighbour]), limits[cell])",
           "limit = np.where(neighbour > 0, np.minimum(limits[cell], limits[neighbour]), limits[cell])",
           ("tests/test_interfaces.py",), "an interface's signal judged against the dimmer cytoplasm"),
    Mutant("anomaly-threshold-flipped", "bbbcore/anomaly.py",
           "model.card.threshold = float(np.quantile(scores, 1 - contamination))",
           "model.card.threshold = float(np.quantile(scores, contamination))", ("tests/test_anomaly.py",),
           "anomaly threshold at the contamination quantile instead of 1 - contamination"),
]


def copy_project(target: Path) -> Path:
    """Tracked and untracked (not ignored) files of the project into ``target/repo``; ../shared linked."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    repo = target / "repo"
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / name)
    (target / "shared").symlink_to((ROOT.parent / "shared").resolve())
    return repo


def run_tests(repo: Path, tests: tuple[str, ...], timeout: float) -> tuple[str, float, str]:
    """(verdict, seconds, last line): killed when pytest fails, survived when it passes."""
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
                              cwd=repo, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "killed (timeout)", time.perf_counter() - start, "timed out"
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    last = lines[-1] if lines else done.stderr.strip()[-200:]
    if done.returncode == 0:
        return "survived", time.perf_counter() - start, last
    if done.returncode == 1:
        failed = [line.split(" - ")[0].removeprefix("FAILED ") for line in lines if line.startswith("FAILED")]
        return "killed", time.perf_counter() - start, failed[0] if failed else last
    return f"error (pytest exit {done.returncode})", time.perf_counter() - start, last


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run only the mutants whose id starts with this")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per mutant")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTANTS if m.id.startswith(args.only)]
    if args.list:
        for mutant in chosen:
            print(f"{mutant.id}: {mutant.what} ({mutant.path}; {', '.join(mutant.tests)})")
        return 0
    with tempfile.TemporaryDirectory(prefix="bbb-mutants-") as folder:
        repo = copy_project(Path(folder))
        where = subprocess.run([sys.executable, "-c", "import bbbcore; print(bbbcore.__file__)"], cwd=repo,
                               capture_output=True, text=True, check=True).stdout.strip()
        print(f"package under test: {where}")
        if not where.startswith(str(repo)):
            print("the copy's bbbcore is not the one imported: stop", file=sys.stderr)
            return 2
        # A kill only means something when the same tests pass on the unchanged copy.
        guarding = tuple(dict.fromkeys(test for mutant in chosen for test in mutant.tests))
        verdict, seconds, detail = run_tests(repo, guarding, args.timeout)
        print(f"unchanged copy: {len(guarding)} test files {'pass' if verdict == 'survived' else 'FAIL'} "
              f"({detail}, {seconds:.0f} s)")
        if verdict != "survived":
            return 2
        print("\n| mutant | planted bug | file | verdict | first failing test | s |\n|---|---|---|---|---|---|")
        survivors = 0
        for mutant in chosen:
            path = repo / mutant.path
            original = path.read_text()
            if original.count(mutant.old) != 1:
                print(f"| {mutant.id} | {mutant.what} | {mutant.path} | not planted: the line is not found "
                      "exactly once (the code moved; update the mutant) | | |")
                survivors += 1
                continue
            path.write_text(original.replace(mutant.old, mutant.new))
            try:
                verdict, seconds, detail = run_tests(repo, mutant.tests, args.timeout)
            finally:
                path.write_text(original)
            survivors += verdict == "survived"
            print(f"| {mutant.id} | {mutant.what} | {mutant.path} | {verdict} | {detail} | {seconds:.0f} |",
                  flush=True)
        print(f"\n{len(chosen) - survivors} of {len(chosen)} killed")
    return 1 if survivors else 0


if __name__ == "__main__":
    raise SystemExit(main())
