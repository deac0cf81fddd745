"""Home page: what the tool does today and what is coming."""

import streamlit as st

from bbbcore import config
from bbbcore.errors import ModelCardError
from bbbcore.unet import read_card

st.title("BBB cell analyser")
st.write(
    "Segments Blood-Brain-Barrier endothelial monolayers stained for ZO-1 into one object per cell, "
    "and measures every cell."
)
st.subheader("Available now")
st.markdown(
    "- Command line: `python -m bbbcore segment IMAGE ... --out DIR` writes a labels TIFF, an overlay PNG "
    "and `cells.csv` (area, perimeter, aspect ratio, extent, equivalent diameter, edge flag) per image.\n"
    "- `python -m bbbcore evaluate` scores a labels image against a hand-drawn outline annotation."
)
st.subheader("Coming to this dashboard")
st.markdown(
    "Upload images in the browser, see the segmentation over the image, browse and download the per-cell "
    "table, interactive plots, anomalous cells, and treated-versus-control comparisons."
)
try:
    card = read_card(config.DEFAULT_MODEL)
except ModelCardError as exc:
    st.warning(f"No default model: {exc}")
else:
    st.subheader("Shipped model")
    st.write(f"**{card.name}** version {card.version}: trained at {card.pixel_size_um:g} µm/px on {card.training.get('data', 'unknown data')}.")
    if card.metrics:
        st.json(card.metrics, expanded=False)
