"""One colour image to work on, picked by the user: the Augment and Background pages share it.

Sources: a synthetic seedling photograph (offline, with leaves on soil), one
of scikit-image's bundled photographs, an upload (kept in memory only), or an
image of the data set loaded on the Data page in this session.
"""
from __future__ import annotations

import numpy as np
import streamlit as st

from cvcore import samples
from cvcore.data import PHOTOS
from cvcore.errors import CvcoreError
from cvcore.imagefile import load_image
from ui.common import photo, show_error
from ui.datasets import current_dataset, dataset_image

MAX_UPLOAD_PIXELS = 25_000_000
SOURCES = ("Seedling", "Data set", "Photo", "Upload")


@st.cache_data(show_spinner=False, max_entries=64)
def seedling(seed: int, size: int, kind: str):
    img, mask = samples.seedling_photo(seed=seed, size=size, kind=kind)
    return img, mask


def pick_image(key: str, *, default: str = "Seedling", with_truth: bool = False):
    """Widgets to choose one image; returns ``(uint8 H x W x 3, caption)``, or stops the page
    with a hint when nothing is chosen yet. ``key`` prefixes every widget's key.

    With ``with_truth``, returns ``(image, caption, truth)``: the true leaf mask (bool H x W) of a
    synthetic seedling, which its maker knows, and None for every other source."""
    picked = _pick(key, default)
    return picked if with_truth else picked[:2]


def _pick(key: str, default: str):
    source = st.segmented_control(
        "Source", SOURCES, default=default, key=f"{key}_source",
        help="A synthetic seedling on soil (made here, offline), an image of the data set loaded on the "
             "Data page, a bundled photograph, or your own PNG/JPEG.",
    ) or default
    if source == "Seedling":
        c1, c2 = st.columns(2)
        kind = c1.selectbox("Leaf shape", list(samples.SEEDLING_CLASSES), key=f"{key}_kind",
                            help="Synthetic seedlings: green leaves on brown soil with pebbles.")
        seed = int(c2.number_input("Picture number", 0, 9999, 0, key=f"{key}_seed",
                                   help="Each number draws another seedling."))
        img, mask = seedling(seed, 256, kind)
        return img, f"synthetic seedling ({kind} #{seed})", mask
    if source == "Data set":
        ds = current_dataset()
        if ds is None:
            st.info("No data set is loaded in this session: load one on the Data page, or pick another source.",
                    icon=":material/folder_open:")
            st.stop()
        return (*dataset_image(ds, key), None)
    if source == "Photo":
        name = st.selectbox("Photograph", list(PHOTOS), key=f"{key}_photo", help="scikit-image's bundled photographs.")
        return photo(name), name, None
    return (*uploaded_image(f"{key}_upload"), None)


def uploaded_image(key: str):
    """A PNG or JPEG upload, read safely and kept in memory only; returns ``(uint8 H x W x 3, file name)``,
    or stops the page with a hint until a readable image is uploaded."""
    up = st.file_uploader("A PNG or JPEG image", type=["png", "jpg", "jpeg"], key=key,
                          help=f"At most {MAX_UPLOAD_PIXELS // 1_000_000} megapixels. It stays in this browser "
                               "session's memory and is never written to disk.")
    if up is None:
        st.info("Upload an image to continue, or pick another source.", icon=":material/upload:")
        st.stop()
    try:
        return np.asarray(load_image(up, max_pixels=MAX_UPLOAD_PIXELS)), up.name
    except CvcoreError as err:
        show_error(err, "Try another file, or pick another source.")
        st.stop()
