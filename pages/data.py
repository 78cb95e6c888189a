"""Placeholder: built in issue 4."""
import streamlit as st

from ui.common import wide_layout

wide_layout()
st.title("data")
st.info("Being built.")
