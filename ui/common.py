"""Pieces every page shares: the device badge, cached loaders, error display."""
from __future__ import annotations

import streamlit as st

from cvcore import data, device
from cvcore.errors import CvcoreError


def sidebar_device() -> None:
    """Where computation runs, in the sidebar; never waits for TensorFlow's first import."""
    info = device.peek()
    if info is None:
        device.configure_async()
        st.sidebar.caption(":material/hourglass_top: Detecting the device (TensorFlow is loading)…")
        return
    icon = ":material/memory:" if info.kind == "GPU" else ":material/computer:"
    st.sidebar.caption(f"{icon} {info.label}  \nTensorFlow {info.tensorflow} · Keras {info.keras}")
    if info.note:
        st.sidebar.caption(info.note)


@st.cache_resource(show_spinner="Loading the data set…")
def dataset(name: str):
    """``(data, used_name, notice)`` shared by every session; arrays are read-only."""
    loaded = data.load_dataset_or_fallback(name)
    (x, y), (xt, yt), _ = loaded[0]
    for arr in (x, y, xt, yt):
        arr.flags.writeable = False
    return loaded


@st.cache_resource(show_spinner=False)
def photo(name: str):
    img = data.load_photo(name)
    img.flags.writeable = False
    return img


def show_error(err: CvcoreError, what_to_do: str = "") -> None:
    """A clear message for bad input: what was wrong, and what to do."""
    st.error(f"{err} {what_to_do}".strip(), icon=":material/error:")
