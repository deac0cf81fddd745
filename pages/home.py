"""About: what the tool does, the model it runs, and the command line."""

import streamlit as st

from bbbcore import config
from bbbcore.errors import ModelCardError
from bbbcore.unet import read_card

st.title("BBB cell analyser")
st.write(
    "Segments Blood-Brain-Barrier endothelial monolayers stained for the tight-junction protein ZO-1 into "
    "one object per cell, and measures every cell: shape in pixels and µm, the state of its junctions, "
    "its condition and dose."
)
st.subheader("How to use it")
st.markdown(
    "1. **Upload & analyse**: drop your images (or load the sample data), set each image's condition and "
    "dose in the table (or upload a sample sheet), press *Analyse*.\n"
    "2. **Segmentation**: check the cells drawn over each image; hover a cell's dot to see its numbers.\n"
    "3. **Correct cells**: click, box or lasso cells to delete, merge, draw or split them (undo, redo, "
    "revert); every edit is kept as a version. **Teach the model** then learns from what you corrected.\n"
    "4. **Cells**: filter, sort and download the table (CSV) and every file (labels TIFF for Fiji, ROI zip, "
    "GeoJSON for QuPath).\n"
    "5. **Plots** and **Compare conditions**: distributions per condition, with each image's mean; the "
    "statistics, and a one-file HTML report to hand a colleague.\n"
    "6. **Junctions**: every border between two cells, its junction continuous, punctate, perpendicular or "
    "absent (JAnaP's classes), on the image and per condition (`interfaces.csv`).\n\n"
    "Column definitions and units: `docs/columns.md` in the project folder."
)
st.subheader("Command line")
st.markdown(
    "`python -m bbbcore segment IMAGE ... --out DIR` writes the same tables and files as this dashboard; "
    "`batch` runs thousands of images on Dask and resumes after a crash; `measure` measures labels corrected "
    "in Fiji; `edit` corrects a labels TIFF; `finetune` teaches a model from corrected labels; "
    "`import-annotations` reads hand-drawn polygons (Labelbox, GeoJSON); `evaluate` scores a labels image "
    "against an outline annotation."
)
try:
    card = read_card(config.DEFAULT_MODEL)
except ModelCardError as exc:
    st.warning(f"No default model: {exc}")
else:
    st.subheader("Shipped model")
    st.write(f"**{card.name}** version {card.version}: trained at {card.pixel_size_um:g} µm/px on "
             f"{card.training.get('data', 'unknown data')}.")
    if card.metrics:
        st.json(card.metrics, expanded=False)
