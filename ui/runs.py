"""Runs kept in the user's workspace, as the Train, Transfer and Visualize pages show them.

* :func:`run_model` / :func:`run_evaluation`: a run's model and evaluation, read from the workspace once
  and cached server-wide under the run's own random id (and the file's time, so a newer save is read).
* :func:`manage_run`: rename, delete, and download the whole run.
* :func:`quota_error`: a full workspace, said plainly, with runs offered for deletion.
"""
from __future__ import annotations

import streamlit as st

from cvcore.errors import CvcoreError
from cvcore.runs import load_evaluation
from cvcore.workspace import QuotaExceededError, StoreError, Workspace

STATUS_TEXT = {"running": "running", "finished": "", "stopped": "stopped", "failed": "failed",
               "interrupted": "interrupted"}


def _stamp(ws: Workspace, rec) -> float:
    try:
        return ws.model_path(rec.id).stat().st_mtime
    except OSError:
        return 0.0


@st.cache_resource(show_spinner="Loading the run's model…", max_entries=8)
def _model(ws_path: str, run_id: str, stamp: float, _ws: Workspace):
    return _ws.load_model(run_id)


def run_model(ws: Workspace, rec):
    """The run's Keras model (as last saved), or None when it has none or it cannot be read (said on the page)."""
    if not rec.has_model:
        return None
    try:
        return _model(str(ws.path), rec.id, _stamp(ws, rec), ws)
    except StoreError as err:
        st.warning(str(err), icon=":material/broken_image:")
        return None


@st.cache_data(show_spinner=False, max_entries=32)
def _evaluation(ws_path: str, run_id: str, updated: float, _ws: Workspace, _rec):
    return load_evaluation(_ws, _rec)


def run_evaluation(ws: Workspace, rec):
    """The run's :class:`cvcore.evaluation.Evaluation`, or None."""
    try:
        return _evaluation(str(ws.path), rec.id, rec.updated, ws, rec)
    except StoreError as err:
        st.warning(str(err), icon=":material/broken_image:")
        return None


@st.cache_data(show_spinner=False, max_entries=16)
def _arrays(ws_path: str, run_id: str, name: str, updated: float, _ws: Workspace):
    return _ws.load_arrays(run_id, name)


def run_arrays(ws: Workspace, rec, name: str):
    """The arrays ``name`` kept with the run (``{"images", "labels"}`` of its validation set), or None
    (said on the page)."""
    try:
        return _arrays(str(ws.path), rec.id, name, rec.updated, ws)
    except StoreError as err:
        st.warning(str(err), icon=":material/broken_image:")
        return None


def manage_run(ws: Workspace, rec, key: str, extra_files=None) -> None:
    """Rename, download whole (record, model, arrays, history and ``extra_files`` {name: text}), delete."""
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    new_name = c1.text_input("Name", rec.name, max_chars=80, key=f"{key}_name_{rec.id}",
                             help="A name of your own for this run; the table and the other pages use it.")
    if c2.button("Rename", key=f"{key}_rename_{rec.id}", icon=":material/edit:", width="stretch",
                 disabled=new_name.strip() == rec.name):
        try:
            ws.rename_run(rec.id, new_name)
        except CvcoreError as err:
            st.error(str(err), icon=":material/error:")
        else:
            st.rerun()
    # Made when the button is pressed, in a thread of its own: zipping a run on every rerun took seconds for a
    # VGG16 run (a 59 MB model), and the page reruns every second while a job runs.
    st.download_button("Download the whole run (.zip)", lambda: ws.run_archive(rec.id, extra_files),
                       f"{rec.name.replace(' ', '_')}.zip", mime="application/zip", key=f"{key}_zip_{rec.id}",
                       icon=":material/folder_zip:",
                       help="The model (.keras), its settings and history (JSON), the evaluation arrays (.npz)"
                            + (" and the training script" if extra_files else "") + ".")
    with st.popover("Delete this run", icon=":material/delete:"):
        st.write(f"Delete **{rec.name}** with its model and results? This cannot be undone.")
        if st.button("Delete", type="primary", key=f"{key}_delete_{rec.id}", icon=":material/delete_forever:"):
            ws.delete_run(rec.id)
            st.rerun()


def quota_error(ws: Workspace, err: QuotaExceededError, key: str) -> None:
    """The workspace is full: how much is used, and the runs that can be deleted to make room."""
    st.error(str(err), icon=":material/storage:")
    runs = ws.runs()
    if not runs:
        return
    names = {r.id: f"{r.name}: {r.title}" for r in runs}
    doomed = st.multiselect("Runs to delete", list(names), format_func=names.get, key=f"{key}_quota_pick",
                            help="Deleting a run removes its model and results from your workspace.")
    if st.button("Delete them", key=f"{key}_quota_delete", disabled=not doomed, icon=":material/delete:"):
        for run_id in doomed:
            ws.delete_run(run_id)
        st.rerun()
