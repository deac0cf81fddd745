"""Compare conditions: distributions per condition with per-image means, and a summary table."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from bbbcore import config, plots
from bbbcore.compare import MIN_INTERVAL_IMAGES, compare_table, group_labels, left_out, looks_like_control
from bbbcore.export import table_csv_bytes
from dashboard import state, widgets

st.title("Compare conditions")
widgets.need_results()
session = state.session()
cells = session.cells()
if len(used := session.models_used()) > 1:
    model = Path(session.settings.model).stem
    st.warning("This experiment mixes models (" + "; ".join(f"{m}: {n} image(s)" for m, n in used.items())
               + "): their cells are not strictly comparable.", icon=":material/warning:")
    if st.button(f"Re-analyse every image with {model}", icon=":material/replay:"):
        st.switch_page("pages/analyse.py")
if session.demo:
    st.info("Sample data: the control / Tat grouping is an illustrative demo, not an experiment.", icon=":material/science:")

cols = st.columns([2, 2, 1])
by_dose = cols[2].checkbox("Split by dose", value=False, key="cmp_dose")
groups = list(dict.fromkeys(group_labels(cells, by_dose=by_dose)))
default = next((i for i, g in enumerate(groups) if looks_like_control(g)), 0)
control = cols[0].selectbox("Control group", groups, index=default, key=f"cmp_control_{by_dose}")
features = plots.feature_options(cells)
feature = cols[1].selectbox("Feature", features, key="cmp_feature", format_func=plots.column_label)

# One statement of what every figure below leaves out: plot, table and statistics use the same cells.
if text := left_out(cells):
    st.caption(text)
if len(groups) < 2:
    st.warning("Every image has the same condition. Set conditions in the table on the Analyse page "
               "(or upload a sample sheet) to compare them.")
order = [control] + [g for g in groups if g != control]
st.plotly_chart(plots.compare_conditions(cells, feature, by_dose=by_dose, order=order),
                config=plots.CHART_CONFIG, key="cmp_chart")
st.caption("Violins: the cells. Large points: the mean of each image. Bar: the mean of the image means with its "
           f"95 % bootstrap interval (from {MIN_INTERVAL_IMAGES} images per group; fewer: too few images for an "
           "interval). The images, not the cells, are the units to compare: cells of one image are not independent.")

table = compare_table(cells, feature, control=control, by_dose=by_dose)
st.subheader(f"{plots.column_label(feature)} per group")
numbers = {c: st.column_config.NumberColumn(format="%.4g") for c in
           ["mean", "mean_ci_low", "mean_ci_high", "median", "sd_between_images", "difference", "percent_of_control"]}
st.dataframe(table, hide_index=True, width="stretch", column_config=numbers)
st.caption("mean and median: of the per-image means; mean_ci_low / mean_ci_high: its 95 % bootstrap interval "
           f"(empty: too few images for an interval, under {MIN_INTERVAL_IMAGES}); difference: group mean minus the "
           "control's.")
st.download_button("Download this table (CSV)", table_csv_bytes(table.assign(feature=feature)),
                   file_name=f"compare_{feature}.csv", mime="text/csv", icon=":material/download:")

st.subheader("Statistics")
st.caption("Every test runs on one value per image (or per replicate / well when the sample sheet gives one): "
           "the cells of one image are not independent. Edge cells are left out.")
# The original five (in µm when known), then junction continuity: each feature once.
defaults = [f"{name}_um2" if name == "area" and "area_um2" in features else
            f"{name}_um" if f"{name}_um" in features else name
            for name in [*config.ORIGINAL_FEATURES, "junction_continuity"]]
defaults = [f for f in defaults if f in features]
chosen = st.multiselect("Features to test (Holm's correction runs across them)", features, default=defaults,
                        key="stats_features", format_func=plots.column_label)
statistic = st.radio("Per-image value", ["mean", "median"], horizontal=True, key="stats_statistic")
if chosen and len(groups) >= 2 and not by_dose:
    from bbbcore.stats import PRIMARY_TEST, dose_response, sentences, unit_values

    table = session.statistics(tuple(chosen), control, statistic)
    if table.empty:
        st.warning("Nothing to test: every treated image is excluded or has no cells.")
        st.stop()
    st.markdown(f"**Primary test**: {PRIMARY_TEST}. A difference is reported when its Holm-adjusted p is "
                "below 0.05; its interval is Welch's 95 % interval of the difference, in the feature's units.")
    for line in sentences(table):
        st.success(line, icon=":material/insights:")
    if not sentences(table):
        st.info("No difference to the control reaches Holm-adjusted p < 0.05.")
    for warning in sorted(set(table["warning"]) - {""}):
        st.warning(warning)
    primary = ["feature", "condition", "unit", "n_images", "n_images_control", "difference", "difference_ci_low",
               "difference_ci_high", "p_welch", "p_holm"]
    numbers = {c: st.column_config.NumberColumn(format="%.3g") for c in
               ["difference", "difference_ci_low", "difference_ci_high", "p_welch", "p_holm", "g", "g_ci_low",
                "g_ci_high", "p_mannwhitney", "p_mixed", "mixed_coef", "mixed_se"]}
    st.dataframe(table[primary], hide_index=True, width="stretch", column_config=numbers)
    with st.expander("Other figures: Hedges' g, the Mann-Whitney U test, the mixed model"):
        st.caption("Hedges' g: the difference in units of the between-image standard deviation, with its percentile "
                   "bootstrap 95 % interval (g_ci_low, g_ci_high). Mann-Whitney U: a rank test on the same per-image "
                   "values. Mixed model: all cells, a random intercept per image. None of them replaces the "
                   "primary test.")
        st.dataframe(table[["feature", "condition", "g", "g_ci_low", "g_ci_high", "p_mannwhitney", "p_mixed",
                            "mixed_coef", "mixed_se"]], hide_index=True, width="stretch", column_config=numbers)
    st.download_button("Download the statistics (CSV)", table_csv_bytes(table), file_name="statistics.csv",
                       mime="text/csv", icon=":material/download:")
    if "dose" in cells.columns and cells["dose"].dropna().nunique() >= 2:
        trend = dose_response(cells, feature, control=control, statistic=statistic)
        st.plotly_chart(plots.dose_response(unit_values(cells, feature, statistic=statistic), feature,
                                            rho=trend["spearman_rho"], p=trend["p"]),
                        config=plots.CHART_CONFIG, key="dose_chart")
elif by_dose:
    st.info("Untick *Split by dose* to test each condition against the control.")

st.subheader("Report")
st.caption("One HTML file to hand a colleague: every image as a thumbnail with its cell count and flags, the "
           "comparison figure of each feature tested, the statistics, the methods paragraph and the model.")
tested = chosen if chosen and len(groups) >= 2 and not by_dose else [feature]
report_key = (tuple(tested), control)
if st.button("Build the report", icon=":material/description:", key="report_build"):
    with st.spinner("Writing the report…"):
        session.report_html([plots.compare_conditions(cells, f, order=order).update_layout(
            title=plots.column_label(f)) for f in tested], key=report_key)
if (built := session.built_report(report_key)) is not None:
    st.download_button("Download report (HTML)", built.encode("utf-8"), file_name="bbb_report.html",
                       mime="text/html", icon=":material/download:", key="report_download")

with st.expander("Methods paragraph (for a paper)"):
    text = session.methods_text()
    st.write(text)
    st.download_button("Download methods.txt", text.encode("utf-8"), file_name="methods.txt", mime="text/plain",
                       icon=":material/download:", key="methods_download")
