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


def wide_layout() -> None:
    """The wide layout, set by app.py and again by every page: a page opened by its URL before
    the home page does not inherit app.py's layout (a known Streamlit behaviour)."""
    st.set_page_config(layout="wide")


def drawn_digit(key: str):
    """A 280x280 canvas to draw on, white on black; returns the drawing as a 28x28 uint8 digit,
    or None until something is drawn."""
    from streamlit_drawable_canvas import st_canvas

    from cvcore.images import canvas_to_digit

    result = st_canvas(stroke_width=22, stroke_color="#FFFFFF", background_color="#000000",
                       height=280, width=280, drawing_mode="freedraw", key=key)
    rgba = None if result is None else result.image_data
    return None if rgba is None else canvas_to_digit(rgba)


def show_error(err: CvcoreError, what_to_do: str = "") -> None:
    """A clear message for bad input: what was wrong, and what to do."""
    st.error(f"{err} {what_to_do}".strip(), icon=":material/error:")
