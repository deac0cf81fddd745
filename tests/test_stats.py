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
