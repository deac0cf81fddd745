"""Dashboard entry point: page config, navigation and the shared sidebar only."""

import streamlit as st

from dashboard import state, widgets

st.set_page_config(page_title="BBB cell analyser", page_icon=":material/biotech:", layout="wide")
state.warm_up()  # the shipped model loads while the first page is read (once per server)

pages = [
    st.Page("pages/experiments.py", title="Experiments", icon=":material/folder_open:", default=True),
    st.Page("pages/analyse.py", title="Upload & analyse", icon=":material/upload:"),
    st.Page("pages/segmentation.py", title="Segmentation", icon=":material/biotech:"),
    st.Page("pages/correct.py", title="Correct cells", icon=":material/edit:"),
    st.Page("pages/teach.py", title="Teach the model", icon=":material/school:"),
    st.Page("pages/cells.py", title="Cells", icon=":material/table:"),
    st.Page("pages/plots.py", title="Plots", icon=":material/bar_chart:"),
    st.Page("pages/compare.py", title="Compare conditions", icon=":material/compare:"),
    st.Page("pages/junctions.py", title="Junctions", icon=":material/hub:"),
    st.Page("pages/anomalies.py", title="Anomalies", icon=":material/scatter_plot:"),
    st.Page("pages/home.py", title="About", icon=":material/info:"),
]
navigation = st.navigation(pages)
state.session()  # a new session (page reload) reopens the experiment named in the URL
state.sync_url()
widgets.sidebar()
navigation.run()
