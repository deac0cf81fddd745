"""Dashboard entry point: page config and navigation only."""

import streamlit as st

st.set_page_config(page_title="BBB cell analyser", page_icon="🔬", layout="wide")

pages = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
]
st.navigation(pages).run()
