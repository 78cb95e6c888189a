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
    """Called first by every page: run it through app.py, and in the wide layout.

    Streamlit runs a page file directly, bypassing app.py and its navigation, when the first
    visit to a fresh server is a page's URL and the project has a ``pages/`` folder (its older
    multipage mode, which stays on until some session runs ``st.navigation``). The page then
    showed file names for navigation and no device badge. Turning that mode off, as
    ``st.navigation`` itself does, and rerunning sends the same URL through app.py.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
    st.set_page_config(layout="wide")  # a page opened by its URL does not inherit app.py's layout


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
