"""The image data set loaded on the Data page, shared by this session's other pages."""
from __future__ import annotations

import streamlit as st

DATASET_KEY = "cvx_dataset"


def current_dataset():
    """This session's :class:`cvcore.folders.ImageDataset`, or None when none is loaded."""
    return st.session_state.get(DATASET_KEY)


def dataset_image(ds, key: str):
    """Widgets to pick one image of ``ds`` by class and index; returns ``(uint8 RGB, caption)``."""
    raise NotImplementedError  # filled in with the Data page
