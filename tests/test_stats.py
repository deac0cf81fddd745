"""Treated-vs-control statistics on per-unit values, checked against scipy and statsmodels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from bbbcore.stats import (
    StatsError,
    compare_to_control,
    dose_response,
    hedges_g,
    holm,
    unit_column,
    unit_values,
)


def experiment(*, effect=0.0, image_sd=1.0, cell_sd=0.3, n_images=3, n_cells=200, seed=0, doses=(80.0,)):
    """Cells of control and treated images; each image has its own offset (well, staining, focus)."""
    rng = np.random.default_rng(seed)
    rows = []
    groups = [("control", 0.0, 0.0)] + [("tat", dose, effect) for dose in doses]
    for condition, dose, shift in groups:
        for index in range(n_images):
            offset = rng.normal(0, image_sd)
            name = f"{condition}_{dose:g}_{index}.tif"
            values = 10 + shift + offset + rng.normal(0, cell_sd, n_cells)
            rows.append(pd.DataFrame({"image": name, "image_id": name, "cell_id": np.arange(n_cells) + 1,
                                      "area": values, "perimeter": values * 2 + rng.normal(0, 1, n_cells),
                                      "touches_edge": False, "condition": condition, "dose": dose}))
    return pd.concat(rows, ignore_index=True)


def test_per_image_test_is_not_fooled_by_many_cells():
    cells = experiment(effect=0.0, seed=4)
    naive = st.ttest_ind(cells.loc[cells["condition"] == "tat", "area"],
                         cells.loc[cells["condition"] == "control", "area"], equal_var=False).pvalue
    assert naive < 0.05  # 600 cells against 600: the image offsets look like an effect
    row = compare_to_control(cells, ["area"], "control", n_boot=200).iloc[0]
    assert row["p_welch"] > 0.05  # 3 images against 3: no evidence
    # The mixed model sees the image offsets too (its Wald test is optimistic with 6 units).
    assert row["p_mixed"] > 1000 * naive
    assert row["unit"] == "image_id" and row["n_images"] == 3 and row["n_cells"] == 600


def test_figures_match_scipy_and_statsmodels():
    import statsmodels.formula.api as smf
    from statsmodels.stats.multitest import multipletests

    cells = experiment(effect=2.0, image_sd=0.5, n_images=4, seed=1)
    table = compare_to_control(cells, ["area", "perimeter"], "control", n_boot=300, seed=0)
    means = cells.groupby(["condition", "image_id"])["area"].mean()
    treated, control = means["tat"].to_numpy(), means["control"].to_numpy()
    row = table[table["feature"] == "area"].iloc[0]
    assert row["difference"] == pytest.approx(treated.mean() - control.mean())
    assert row["p_welch"] == pytest.approx(st.ttest_ind(treated, control, equal_var=False).pvalue)
    assert row["p_mannwhitney"] == pytest.approx(st.mannwhitneyu(treated, control, alternative="two-sided").pvalue)
    pooled = np.sqrt((3 * treated.var(ddof=1) + 3 * control.var(ddof=1)) / 6)
    assert row["g"] == pytest.approx((treated.mean() - control.mean()) / pooled * (1 - 3 / (4 * 8 - 9)))
    assert row["g_ci_low"] <= row["g"] <= row["g_ci_high"]
    welch_interval = st.ttest_ind(treated, control, equal_var=False).confidence_interval()
    assert (row["difference_ci_low"], row["difference_ci_high"]) == pytest.approx(tuple(welch_interval))
    assert row["difference_ci_low"] <= row["difference"] <= row["difference_ci_high"]
    expected_holm = multipletests(table["p_welch"], method="holm")[1]
    np.testing.assert_allclose(table["p_holm"], expected_holm)
    data = pd.DataFrame({"y": cells["area"], "treated": (cells["condition"] == "tat").astype(float),
                         "unit": cells["condition"] + "/" + cells["image_id"]})
    fit = smf.mixedlm("y ~ treated", data, groups=data["unit"]).fit(reml=True)
    assert row["mixed_coef"] == pytest.approx(fit.params["treated"], rel=1e-4)
    assert row["p_mixed"] == pytest.approx(fit.pvalues["treated"], rel=1e-3)
    assert row["p_welch"] < 0.05 and row["warning"] == ""


def test_few_images_are_warned_about():
    cells = experiment(n_images=2, seed=2)
    row = compare_to_control(cells, ["area"], "control", n_boot=100, mixed=False).iloc[0]
    assert row["warning"].startswith("fewer than 3 image_id units in tat, control")


def test_replicates_are_the_unit_when_the_sheet_gives_them():
    cells = experiment(n_images=4, seed=3)
    cells["replicate"] = cells["image_id"].map(lambda n: str(int(n.split("_")[-1][0]) // 2))
    assert unit_column(cells) == "replicate"
    values = unit_values(cells, "area")
    assert len(values) == 4  # 2 replicates x 2 conditions
    assert values["n_cells"].tolist() == [400, 400, 400, 400]


def test_dose_response_includes_the_control_at_zero():
    cells = experiment(effect=0.0, image_sd=0.1, doses=(20.0, 40.0, 80.0), seed=5)
    # Make the feature fall with dose: a clear monotone trend across units.
    cells["area"] = cells["area"] - 0.05 * cells["dose"]
    cells.loc[cells["condition"] == "control", "dose"] = np.nan  # the sheet left the control's dose empty
    result = dose_response(cells, "area", control="control")
    values = unit_values(cells, "area")
    dose = values["dose"].fillna(0.0)
    assert result["n_units"] == 12
    assert result["spearman_rho"] == pytest.approx(st.spearmanr(dose, values["value"]).statistic)
    assert result["spearman_rho"] < -0.8 and result["p"] < 0.01


def test_holm_and_hedges_edge_cases():
    np.testing.assert_allclose(holm([0.01, 0.04, np.nan, 0.03]), [0.03, 0.06, np.nan, 0.06])
    assert np.isnan(hedges_g(np.array([1.0]), np.array([1.0, 2.0])))


def test_a_missing_control_is_a_clear_error():
    with pytest.raises(StatsError, match="no cell has the control condition 'vehicle'"):
        compare_to_control(experiment(), ["area"], "vehicle")


def test_cli_writes_the_statistics_table(tmp_path, capsys):
    from bbbcore.cli import main

    cells = experiment(effect=2.0, image_sd=0.5, n_images=4, seed=1)
    cells.to_csv(tmp_path / "cells.csv", index=False)
    code = main(["stats", str(tmp_path / "cells.csv"), "--control", "control", "--features", "area", "perimeter",
                 "--out", str(tmp_path / "stats.csv"), "--bootstrap", "100"])
    assert code == 0
    table = pd.read_csv(tmp_path / "stats.csv")
    assert table["feature"].tolist() == ["area", "perimeter"]
    # The contract's columns, in its order.
    # The primary test first (Welch on per-image values, Holm), then the other figures, each named as it is.
    contract = ["feature", "condition", "n_images", "n_cells", "difference", "difference_ci_low", "difference_ci_high",
                "p_welch", "p_holm", "g", "g_ci_low", "g_ci_high", "p_mannwhitney", "p_mixed"]
    assert [c for c in table.columns if c in contract] == contract
    assert not {"effect_size", "ci_low", "ci_high"} & set(table.columns)  # an interval beside `difference` is its own
    assert "dose_spearman_rho" in table.columns
    assert "area, tat vs control (4 vs 4 images)" in capsys.readouterr().out


def test_excluded_cells_and_images_are_left_out():
    cells = experiment(n_images=4, seed=6)
    cells["is_excluded"] = pd.Series(np.nan, index=cells.index, dtype=object)  # images never marked
    first = cells["image_id"] == "tat_80_0.tif"
    cells.loc[first, "is_excluded"] = True
    cells.loc[first, "excluded_reason"] = "out of focus"
    row = compare_to_control(cells, ["area"], "control", n_boot=50, mixed=False).iloc[0]
    assert row["n_images"] == 3 and row["n_images_control"] == 4 and row["n_cells"] == 600


@pytest.mark.parametrize("change, message", [
    (lambda t: t[t["condition"] == "control"].head(5),
     "five.csv: nothing to compare with the control 'control': all 5 cell(s) not at the edge are of that condition; "
     "stats needs cells of at least one other condition"),
    (lambda t: t.assign(touches_edge=True),
     "five.csv: no cell to compare: all {n} cell(s) touch the image edge or are excluded (those are left out of "
     "statistics)"),
    (lambda t: t.assign(condition="tat"), "five.csv: no cell has the control condition 'control' (conditions: tat)"),
])
def test_a_table_that_cannot_be_compared_says_why(change, message):
    from bbbcore.stats import check_comparable

    cells = change(experiment())
    with pytest.raises(StatsError) as info:
        check_comparable(cells, "control", source="five.csv")
    assert str(info.value) == message.format(n=len(cells))
    check_comparable(experiment(), "control", source="five.csv")  # a usable table passes


# --- Units whose labels repeat across conditions, and every p-value column against an independent computation. ---


def cells_by_unit(spec, *, unit="replicate", images=3, n_cells=40, cell_sd=0.3, seed=0, features=("area_um2",)):
    """Cells of units whose labels ("1", "2", ... or "A1", ...) repeat in every condition.

    ``spec`` maps a condition to ``(dose, offsets)``: one offset per unit, shared by the unit's
    ``images`` images. Each image also has 3 edge cells and the last unit of each condition an
    excluded image, all far off (+50): counted anywhere, they would change every figure.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for condition, (dose, offsets) in spec.items():
        for number, offset in enumerate(offsets, start=1):
            label = f"A{number}" if unit == "well" else str(number)
            for image in range(images):
                name = f"{condition}_{label}_{image}.tif"
                edge = np.arange(n_cells) < 3
                excluded = number == len(offsets) and image == images - 1
                frame = {"image": name, "image_id": name, "cell_id": np.arange(n_cells) + 1,
                         "touches_edge": edge, "is_excluded": excluded, "condition": condition, "dose": dose,
                         "replicate": label if unit == "replicate" else "", "well": label if unit == "well" else ""}
                for k, feature in enumerate(features):
                    values = (k + 1) * (10 + offset) + rng.normal(0, cell_sd, n_cells)
                    frame[feature] = values + 50 * (edge | excluded)
                rows.append(pd.DataFrame(frame))
    return pd.concat(rows, ignore_index=True)


def usable(cells):
    """The cells statistics use, written out here: no edge cell, no excluded image."""
    return cells[~cells["touches_edge"] & ~cells["is_excluded"]]


def unit_means(cells, feature, unit="replicate", statistic="mean"):
    """Per-(condition, unit) means by hand: {condition: array in unit-label order}."""
    grouped = usable(cells).groupby(["condition", unit])[feature].agg(statistic)
    return {condition: grouped[condition].sort_index().to_numpy() for condition in grouped.index.levels[0]}


def mixed_fit(cells, feature, treated, control, groups):
    """statsmodels MixedLM (array interface, REML) of ``feature ~ 1 + treated`` on the usable cells."""
    import statsmodels.api as sm

    data = usable(cells)
    data = data[data["condition"].isin([treated, control])]
    design = np.column_stack([np.ones(len(data)), (data["condition"] == treated).to_numpy(float)])
    return sm.MixedLM(data[feature].to_numpy(float), design, groups=groups(data).to_numpy()).fit(reml=True)


def welch_by_hand(treated, control):
    """Welch's t-test and 95 % interval from the Welch-Satterthwaite formula (not ttest_ind)."""
    n1, n2 = len(treated), len(control)
    a, b = np.var(treated, ddof=1) / n1, np.var(control, ddof=1) / n2
    se = np.sqrt(a + b)
    df = (a + b) ** 2 / (a**2 / (n1 - 1) + b**2 / (n2 - 1))
    difference = np.mean(treated) - np.mean(control)
    p = 2 * st.t.sf(abs(difference / se), df)
    half = st.t.ppf(0.975, df) * se
    return p, (difference - half, difference + half)


# Replicate offsets: a replicate effect (sd ~1) much larger than the treatment (+0.4), with treated
# replicate i always a little above control replicate i. Nested in its condition, the replicate
# is a unit of its own: no evidence. Pooled across conditions by label, "1" holds control 1 and
# treated 1, and the within-label differences (0.4, 0.5, 0.3) against a cell noise of 0.3 look decisive.
NESTING = {"control": (0.0, [-1.0, 0.0, 1.0]), "tat": (80.0, [-0.6, 0.5, 1.3])}


@pytest.mark.parametrize("unit", ["replicate", "well"])
def test_mixed_model_nests_the_unit_in_its_condition(unit):
    cells = cells_by_unit(NESTING, unit=unit, seed=11)
    row = compare_to_control(cells, ["area_um2"], "control", n_boot=50).iloc[0]
    assert row["unit"] == unit and row["n_images"] == 3 and row["n_images_control"] == 3
    right = mixed_fit(cells, "area_um2", "tat", "control", lambda d: d["condition"] + "/" + d[unit])
    wrong = mixed_fit(cells, "area_um2", "tat", "control", lambda d: d[unit])
    assert row["mixed_coef"] == pytest.approx(right.params[1], rel=1e-6)
    assert row["mixed_se"] == pytest.approx(right.bse[1], rel=1e-6)
    assert row["p_mixed"] == pytest.approx(right.pvalues[1], rel=1e-6)
    # The design is one where the nesting decides the answer.
    assert right.pvalues[1] > 0.1 and wrong.pvalues[1] < 1e-8
    assert row["p_mixed"] > 1e6 * wrong.pvalues[1]
    assert row["mixed_se"] > 5 * wrong.bse[1]
    # The cell-level mixed model and the per-unit Welch test agree that there is no evidence.
    assert row["p_welch"] > 0.1


def test_units_with_repeated_labels_stay_apart():
    cells = cells_by_unit(NESTING, seed=12)
    data = usable(cells)
    for statistic in ("mean", "median"):
        values = unit_values(cells, "area_um2", statistic=statistic)
        expected = data.groupby(["condition", "replicate"])["area_um2"].agg(statistic)
        assert len(values) == len(expected) == 6  # 3 replicates x 2 conditions, not 3 labels
        got = values.set_index(["condition", "unit"])["value"].sort_index()
        np.testing.assert_allclose(got.to_numpy(), expected.sort_index().to_numpy(), rtol=1e-12)
        counts = values.set_index(["condition", "unit"])["n_cells"].sort_index()
        expected_counts = data.groupby(["condition", "replicate"]).size().sort_index()
        assert counts.tolist() == expected_counts.tolist()
        assert counts[("control", "3")] == 2 * 37  # its third image excluded, 3 edge cells per image
    row = compare_to_control(cells, ["area_um2"], "control", n_boot=50, mixed=False).iloc[0]
    assert (row["n_images"], row["n_images_control"]) == (3, 3)
    assert (row["n_cells"], row["n_cells_control"]) == tuple(
        int((data["condition"] == c).sum()) for c in ("tat", "control"))
    means = unit_means(cells, "area_um2")
    assert row["difference"] == pytest.approx(means["tat"].mean() - means["control"].mean(), rel=1e-12)


def test_welch_p_and_interval_match_the_welch_satterthwaite_formula():
    # 3 treated replicates close together, 5 control replicates far apart: Student's pooled
    # variance and its df (6) differ from Welch's here, so the two tests give different p-values.
    spec = {"control": (0.0, [-2.0, -1.0, 0.0, 1.0, 2.0]), "tat": (80.0, [1.4, 1.5, 1.7])}
    cells = cells_by_unit(spec, seed=13)
    row = compare_to_control(cells, ["area_um2"], "control", n_boot=50, mixed=False).iloc[0]
    means = unit_means(cells, "area_um2")
    treated, control = means["tat"], means["control"]
    assert (row["n_images"], row["n_images_control"]) == (3, 5)
    p, (low, high) = welch_by_hand(treated, control)
    assert row["p_welch"] == pytest.approx(p, rel=1e-9)
    assert (row["difference_ci_low"], row["difference_ci_high"]) == pytest.approx((low, high), rel=1e-9)
    # Student's t-test, by hand, is far enough away for the check above to tell them apart.
    pooled = ((2 * np.var(treated, ddof=1) + 4 * np.var(control, ddof=1)) / 6) * (1 / 3 + 1 / 5)
    student = 2 * st.t.sf(abs(treated.mean() - control.mean()) / np.sqrt(pooled), 6)
    assert abs(student - p) > 0.1 * p


def test_hedges_g_welch_interval_and_mann_whitney_on_hand_numbers():
    # Image means: treated 4, 6, 8 (mean 6, variance 4), control 1, 2, 3 (mean 2, variance 1).
    # Pooled sd = sqrt((2*4 + 2*1) / 4) = sqrt(2.5); d = 4 / sqrt(2.5) = 2.5298;
    # small-sample correction J = 1 - 3 / (4*6 - 9) = 0.8, so g = 3.2 / sqrt(2.5) = 2.0239.
    # Welch: se = sqrt(4/3 + 1/3) = sqrt(5/3); df = (5/3)^2 / ((4/3)^2/2 + (1/3)^2/2) = 50/17;
    # the interval is 4 -/+ t(0.975, 50/17) * sqrt(5/3).
    # Mann-Whitney: every treated image above every control one, U = 9, the most extreme of the
    # C(6, 3) = 20 equally likely arrangements, and so is its mirror: two-sided p = 2/20 = 0.1.
    assert hedges_g(np.array([4.0, 6.0, 8.0]), np.array([1.0, 2.0, 3.0])) == pytest.approx(3.2 / np.sqrt(2.5))
    rows = []
    for condition, image_means in (("control", [1.0, 2.0, 3.0]), ("tat", [4.0, 6.0, 8.0])):
        for index, mean in enumerate(image_means):
            name = f"{condition}_{index}.tif"
            rows.append(pd.DataFrame({"image": name, "image_id": name, "cell_id": [1, 2, 3],
                                      "area_um2": [mean - 1, mean, mean + 1], "touches_edge": False,
                                      "condition": condition}))
    row = compare_to_control(pd.concat(rows, ignore_index=True), ["area_um2"], "control", n_boot=200,
                             mixed=False).iloc[0]
    assert row["difference"] == pytest.approx(4.0)
    assert row["g"] == pytest.approx(3.2 / np.sqrt(2.5))
    half = st.t.ppf(0.975, 50 / 17) * np.sqrt(5 / 3)
    assert (row["difference_ci_low"], row["difference_ci_high"]) == pytest.approx((4 - half, 4 + half))
    assert row["p_welch"] == pytest.approx(2 * st.t.sf(4 / np.sqrt(5 / 3), 50 / 17))
    assert row["p_mannwhitney"] == pytest.approx(0.1)


def test_mann_whitney_p_is_the_exact_permutation_p():
    from itertools import combinations

    spec = {"control": (0.0, [-0.5, 0.35, 1.0, 2.0]), "tat": (80.0, [0.2, 1.5, 2.5])}
    cells = cells_by_unit(spec, cell_sd=0.05, seed=14)
    row = compare_to_control(cells, ["area_um2"], "control", n_boot=50, mixed=False).iloc[0]
    means = unit_means(cells, "area_um2")
    treated, control = means["tat"], means["control"]

    def u(t, c):  # pairs in which the treated value is the higher (ties count a half)
        return sum((a > b) + 0.5 * (a == b) for a in t for b in c)

    observed = u(treated, control)
    pooled = np.concatenate([treated, control])
    centre = len(treated) * len(control) / 2
    extreme = []
    for chosen in combinations(range(len(pooled)), len(treated)):  # the 35 ways to split 3 + 4 units
        rest = [i for i in range(len(pooled)) if i not in chosen]
        extreme.append(abs(u(pooled[list(chosen)], pooled[rest]) - centre) >= abs(observed - centre))
    assert len(extreme) == 35 and observed == 8  # treated 0.2 beats one control, 1.5 three, 2.5 four
    assert row["p_mannwhitney"] == pytest.approx(np.mean(extreme), rel=1e-12)


def test_holm_is_applied_per_condition_across_the_features():
    from statsmodels.stats.multitest import multipletests

    features = ("area_um2", "perimeter_um", "intensity", "solidity")
    spec = {"control": (0.0, [-0.3, 0.0, 0.3]), "tat": (40.0, [0.1, 0.5, 0.6]),
            "tat_high": (80.0, [1.0, 1.3, 1.9])}
    cells = cells_by_unit(spec, seed=15, features=features)
    # Two near-copies of a feature: Holm's step-down then needs its running maximum.
    cells["perimeter_um"] = 2 * cells["area_um2"] + np.random.default_rng(0).normal(0, 1e-3, len(cells))
    rng = np.random.default_rng(1)  # two features with no effect at all
    cells["intensity"] = rng.normal(100, 5, len(cells))
    cells["solidity"] = rng.normal(0.9, 0.02, len(cells))
    table = compare_to_control(cells, list(features), "control", n_boot=50, mixed=False)
    assert len(table) == 8
    for condition in ("tat", "tat_high"):
        rows = table[table["condition"] == condition].set_index("feature").loc[list(features)]
        p = np.array([welch_by_hand(unit_means(cells, f)[condition], unit_means(cells, f)["control"])[0]
                      for f in features])
        np.testing.assert_allclose(rows["p_welch"], p, rtol=1e-9)
        expected = multipletests(p, method="holm")[1]
        np.testing.assert_allclose(rows["p_holm"], expected, rtol=1e-9)
        # The data tell the right adjustment from the usual wrong ones.
        assert not np.allclose(expected, p)  # no adjustment
        order = np.argsort(p)
        step = np.empty_like(p)
        step[order] = np.minimum(1, (len(p) - np.arange(len(p))) * p[order])
        assert not np.allclose(expected, step)  # no running maximum
        together = multipletests(table["p_welch"], method="holm")[1][table["condition"] == condition]
        assert not np.allclose(rows["p_holm"], together)  # one family across both conditions


def test_dose_response_matches_a_regression_of_the_ranks():
    spec = {"control": (np.nan, [0.4, -0.2, 0.1]), "tat_20": (20.0, [0.0, -0.6, 0.3]),
            "tat_40": (40.0, [-0.5, -0.1, -0.9]), "tat_80": (80.0, [-1.0, -0.7, -1.6])}
    cells = cells_by_unit(spec, seed=16)
    result = dose_response(cells, "area_um2", control="control")
    data = usable(cells)
    per_unit = data.groupby(["condition", "replicate"]).agg(value=("area_um2", "mean"), dose=("dose", "first"))
    dose = per_unit["dose"].fillna(0.0)  # the control's empty dose counts as 0
    assert result["n_units"] == len(per_unit) == 12
    # Spearman's rho is Pearson's r of the ranks, and its p-value the regression slope's t-test on n - 2 df.
    fit = st.linregress(st.rankdata(dose), st.rankdata(per_unit["value"]))
    assert result["spearman_rho"] == pytest.approx(fit.rvalue, rel=1e-9)
    assert result["p"] == pytest.approx(fit.pvalue, rel=1e-9)
    assert result["spearman_rho"] < -0.5


def test_cells_with_no_condition_get_every_test_against_the_control():
    # A sheet may leave the condition empty: those cells are the "(none)" group everywhere, the
    # mixed model included (it once named them "nan" and silently gave no p_mixed).
    cells = cells_by_unit(NESTING, seed=11)
    cells["condition"] = cells["condition"].where(cells["condition"] == "control", None)
    row = compare_to_control(cells, ["area_um2"], "control", n_boot=50).iloc[0]
    assert row["condition"] == "(none)" and row["n_images"] == 3
    right = mixed_fit(cells.fillna({"condition": "(none)"}), "area_um2", "(none)", "control",
                      lambda d: d["condition"] + "/" + d["replicate"])
    assert row["p_mixed"] == pytest.approx(right.pvalues[1], rel=1e-6)
