"""Cells: the per-cell table, filters, the per-image summary and every download."""

from __future__ import annotations

import streamlit as st

from bbbcore import config
from bbbcore.compare import exclusions
from bbbcore.export import table_csv_bytes
from bbbcore.plots import column_label, feature_options
from dashboard import state, widgets

st.title("Cells")
widgets.need_results()
session = state.session()
results = session.results
cells = session.cells()

with st.expander("Filter", expanded=True):
    cols = st.columns(3)
    images = cols[0].multiselect("Images", results.names(), default=results.names(), key="cells_images")
    conditions = sorted({str(c) for c in cells["condition"].dropna()})
    chosen_conditions = cols[1].multiselect("Conditions", conditions, default=conditions, key="cells_conditions")
    include_edge = cols[2].checkbox("Include cells at the image edge", value=not config.EXCLUDE_EDGE_CELLS,
                                    key="cells_edge")
    feature = st.selectbox("Feature range", ["(none)", *feature_options(cells)], key="cells_feature",
                           format_func=column_label)
    view = cells[cells["image"].isin(images)]
    if conditions:
        view = view[view["condition"].astype(str).isin(chosen_conditions) | view["condition"].isna()]
    if not include_edge:
        view = view[~view["touches_edge"].astype(bool)]
    if feature != "(none)":
        values = cells[feature].dropna()
        if len(values) and values.min() < values.max():
            low, high = st.slider(f"{column_label(feature)} between", float(values.min()), float(values.max()),
                                  (float(values.min()), float(values.max())), key=f"cells_range_{feature}")
            view = view[view[feature].between(low, high)]

st.caption(f"{len(view)} of {len(cells)} cells shown. Click a column header to sort.")
st.dataframe(view, hide_index=True, width="stretch", height=420)

downloads = st.columns(4)
downloads[0].download_button("Cells CSV (shown)", table_csv_bytes(view), file_name="cells_filtered.csv",
                             mime="text/csv", icon=":material/download:", key="dl_filtered")
downloads[1].download_button("Cells CSV (all)", table_csv_bytes(cells), file_name="cells.csv",
                             mime="text/csv", icon=":material/download:", key="dl_cells")

# Images whose quality figures are off (bbbcore.quality): each excluded in one click, the flag as its reason.
summary = session.summary()
flagged = summary[summary["quality_flags"].astype(str).ne("")] if "quality_flags" in summary else summary.iloc[0:0]
excluded = exclusions(cells)
excluded_images = set(excluded.loc[excluded["cell_id"].isna(), "image"])
if len(flagged):
    st.subheader("Quality flags")
    st.caption("Saturated junctions, blur (focus under half the experiment's median) or a cell count far from the "
               "experiment's: check these images, and exclude them from the statistics if they are not usable.")
    for index, row in enumerate(flagged.itertuples()):
        left, right = st.columns([4, 1])
        left.warning(f"{row.image}: {row.quality_flags}", icon=":material/warning:")
        if row.image in excluded_images:
            right.caption("excluded")
        elif right.button("Exclude", key=f"qc_flag_{index}", help=f"exclude {row.image} with the reason: {row.quality_flags}"):
            session.exclude(row.image, row.quality_flags)
            st.rerun()

with st.expander("Quality control: exclude images or cells from the statistics"):
    st.caption("Excluded rows stay in the table and the files, marked with their reason; the Compare conditions "
               "page leaves them out of its plot, its table and its statistics alike.")
    cols = st.columns([2, 1])
    qc_image = cols[0].selectbox("Image", results.names(), key="qc_image")
    scope = cols[1].radio("Exclude", ["the whole image", "chosen cells"], key="qc_scope")
    qc_cells = None
    if scope == "chosen cells":
        ids = cells.loc[cells["image"] == qc_image, "cell_id"].astype(int).tolist()
        qc_cells = st.multiselect("Cells (ids as on the Segmentation page)", ids, key="qc_cells")
    reason = st.text_input("Reason", placeholder="e.g. out of focus, debris, scratch", key="qc_reason")
    buttons = st.columns(2)
    if buttons[0].button("Exclude", key="qc_exclude", disabled=not reason.strip() or qc_cells == []):
        session.exclude(qc_image, reason, cell_ids=qc_cells)
        st.rerun()
    if buttons[1].button("Include again", key="qc_include"):
        session.exclude(qc_image, None, cell_ids=qc_cells)
        st.rerun()
    if "is_excluded" in cells and cells["is_excluded"].eq(True).any():
        listing = cells[cells["is_excluded"].eq(True)].groupby(["image", "excluded_reason"]).size()
        st.dataframe(listing.rename("cells").reset_index(), hide_index=True, width="stretch")

st.subheader("Per image")
with st.expander(f"The experiment's images ({len(summary)}), with their cells", expanded=len(summary) <= 12):
    flagged = {str(r["image"]): str(r["quality_flags"]) for _, r in summary.iterrows()
               if isinstance(r.get("quality_flags"), str) and r.get("quality_flags")}
    gallery = st.columns(4)
    for index, row in enumerate(summary.itertuples()):
        with gallery[index % 4]:
            st.image(session.thumbnail(row.image), output_format="JPEG", width="stretch",
                     caption=f"{row.image}: {int(row.n_cells)} cells" + (f" ({flagged[row.image]})"
                                                                          if row.image in flagged else ""))
st.caption("Cells touching the image edge are left out of these figures and counted in n_edge_excluded.")
st.dataframe(summary, hide_index=True, width="stretch")
downloads[2].download_button("Summary CSV", table_csv_bytes(summary), file_name="summary.csv",
                             mime="text/csv", icon=":material/download:", key="dl_summary")


@st.fragment
def everything_button() -> None:
    # Building the zip (ROIs, GeoJSON, overlays of every image) takes a moment: only on request.
    data = session.export_ready()
    if data is None and st.button("Prepare all files (zip)", key="zip_prepare", icon=":material/folder_zip:"):
        with st.spinner("Writing labels TIFFs, ROI zips, GeoJSON and overlays…"):
            data = session.export_zip()
    if data is not None:
        st.download_button("Download all files (zip)", data, file_name="bbb_results.zip",
                           mime="application/zip", icon=":material/download:", key="dl_zip")


with downloads[3]:
    everything_button()
st.caption("The zip holds what `python -m bbbcore segment` writes: cells.csv, summary.csv, samples.csv and per "
           "image a labels TIFF (Fiji), an ImageJ ROI zip, a GeoJSON (QuPath) and an overlay PNG.")
