"""The session's image data set and private folder, shared by the Data page and the pages after it.

* :func:`session_workspace`: this user's lasting workspace (:class:`cvcore.workspace.Workspace`,
  chosen by :func:`ui.workspace.current_workspace`).
* :func:`current_dataset` / :func:`set_dataset` / :func:`clear_dataset`: the
  :class:`cvcore.folders.ImageDataset` loaded on the Data page, kept in the workspace (a reload or
  a restart finds it again).
* :func:`server_folders`: the folders the operator offers
  (``$CVCORE_DATA_DIRS``, separated by ``:``).
* :func:`manifest_path`: where a data set's scan and split are saved: always in the user's workspace,
  so that one user's split of a shared folder never changes another's validation data.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import streamlit as st

from cvcore import samples
from cvcore.errors import CvcoreError
from cvcore.folders import ImageDataset, find_dataset_roots, scan_image_folder
from cvcore.imagefile import load_image
from cvcore.images import fit_within
from cvcore.workspace import Workspace, state_dir
from ui.common import show_error
from ui.workspace import current_workspace

DATASET_KEY = "cvx_dataset"


def session_workspace() -> Workspace:
    """This user's lasting workspace (:func:`ui.workspace.current_workspace`)."""
    return current_workspace()


def session_dir() -> Path:
    """The path of :func:`session_workspace`."""
    return session_workspace().path


CURRENT_MANIFEST = "current-dataset.json"  # in the workspace: the data set the pages use


def current_dataset():
    """The workspace's :class:`cvcore.folders.ImageDataset`, or None when none is loaded
    (or its files are gone: an upload deleted, a server folder no longer offered)."""
    ds = st.session_state.get(DATASET_KEY)
    if ds is None:
        path = session_workspace().path / CURRENT_MANIFEST
        try:
            ds = ImageDataset.load(path) if path.is_file() else None
        except CvcoreError:
            ds = None
        if ds is not None:
            st.session_state[DATASET_KEY] = ds
    if ds is not None and not Path(ds.root).is_dir():
        clear_dataset()
        return None
    return ds


def set_dataset(ds) -> None:
    """Make ``ds`` the data set of the workspace's pages (kept on disk when it can be)."""
    st.session_state[DATASET_KEY] = ds
    if hasattr(ds, "save"):
        try:
            ds.save(session_workspace().path / CURRENT_MANIFEST)
        except OSError:
            pass  # kept in this session only; the Data page says so when its own save fails


def clear_dataset() -> None:
    """No data set: the pages fall back to their demos."""
    st.session_state.pop(DATASET_KEY, None)
    (session_workspace().path / CURRENT_MANIFEST).unlink(missing_ok=True)


@st.cache_resource(show_spinner="Writing the offline demo images (once per server)…")
def _demo(name: str) -> ImageDataset:
    root = samples.demo_folder(name, state_dir() / "demo")
    return ImageDataset.from_scan(scan_image_folder(root), name=samples.DEMO_FOLDERS[name][0].split(" (")[0],
                                  source="demo")


def demo_dataset(name: str = "fashion-mnist") -> ImageDataset:
    """An offline demo data set (:data:`cvcore.samples.DEMO_FOLDERS`): its files are shared by every user,
    its split is this workspace's: the one the Data page saved here, or the default (a fifth of each
    class, seed 0)."""
    fresh = _demo(name)
    manifest = manifest_path(fresh.root)
    try:
        saved = ImageDataset.load(manifest) if manifest.is_file() else None
    except CvcoreError:
        saved = None
    return saved if saved is not None and saved.fingerprint() == fresh.fingerprint() else fresh


def server_folders() -> dict:
    """``{label: path}`` of the data set folders the operator offers, from ``$CVCORE_DATA_DIRS``:
    each configured folder, and the data set roots found inside it (``plant-seedlings/train``)."""
    out = {}
    for entry in filter(None, os.environ.get("CVCORE_DATA_DIRS", "").split(os.pathsep)):
        top = Path(entry).expanduser()
        if not top.is_dir():
            continue
        try:
            roots = find_dataset_roots(top, max_depth=2)
        except (CvcoreError, OSError):
            continue
        for root in roots:
            rel = root.relative_to(top)
            out[top.name if rel == Path(".") else f"{top.name}/{rel.as_posix()}"] = root
    return out


def manifest_path(root, home=None) -> Path:
    """Where the data set at ``root`` keeps its scan and split: in ``home`` (an upload's folder in the
    workspace) when given; for server and demo folders, which are shared and never written to, in the
    workspace's own ``manifests`` folder: a split chosen there is this user's alone."""
    digest = hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:24]
    if home is not None:
        return Path(home) / f"dataset-{digest}.json"
    return session_workspace().path / "manifests" / f"{digest}.json"


@st.cache_data(show_spinner=False, max_entries=512)
def _thumbnail(path: str, stat: tuple, side: int) -> np.ndarray:
    return fit_within(load_image(path), side)


def thumbnails(ds, indices, side: int = 96) -> list:
    """Small copies of images ``indices`` of ``ds``, cached (keyed by file size and time)."""
    return [_thumbnail(str(ds.root / ds.files[i]), tuple(ds.file_stats[i]), side) for i in indices]


def dataset_image(ds, key: str):
    """Widgets to pick one image of ``ds`` by class and index; returns ``(uint8 RGB, caption)``."""
    c1, c2 = st.columns(2)
    label = c1.selectbox("Class", range(len(ds.classes)), format_func=lambda i: ds.classes[i], key=f"{key}_ds_class",
                         help=f"The classes of {ds.name}, loaded on the Data page.")
    members = np.flatnonzero(ds.labels == label)
    if not len(members):
        st.info(f"Class {ds.classes[label]!r} has no readable images; pick another.", icon=":material/info:")
        st.stop()
    i = int(c2.number_input(f"Image within the class (0–{len(members) - 1})", 0, len(members) - 1, 0,
                            key=f"{key}_ds_index_{label}", help="Which image of this class."))
    try:
        img = _thumbnail(str(ds.root / ds.files[members[i]]), tuple(ds.file_stats[members[i]]), 1024)
    except CvcoreError as err:
        show_error(err, "The file changed since the scan; scan the folder again on the Data page.")
        st.stop()
    return img, f"{ds.name}: {ds.files[members[i]]}"
