"""Dashboard entry point: page config, navigation and the shared sidebar only."""

import streamlit as st

from dashboard import widgets

st.set_page_config(page_title="BBB cell analyser", page_icon="🔬", layout="wide")

pages = [
    st.Page("pages/analyse.py", title="Upload & analyse", icon="📤", default=True),
    st.Page("pages/segmentation.py", title="Segmentation", icon="🔬"),
    st.Page("pages/cells.py", title="Cells", icon="📋"),
    st.Page("pages/plots.py", title="Plots", icon="📊"),
    st.Page("pages/compare.py", title="Compare conditions", icon="⚖️"),
    st.Page("pages/home.py", title="About", icon="ℹ️"),
]
navigation = st.navigation(pages)
widgets.sidebar()
navigation.run()
