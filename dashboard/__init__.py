"""Streamlit-side helpers of the dashboard (state, shared widgets). Logic lives in bbbcore."""
