"""The operator's page: the whole class server's sessions and jobs, and the means to stop them.

Shown in the navigation to operators only (ui.classroom). With sign-in off, an operator opens
``/operator`` and types the operator token. Every stop and clear asks ``is_operator()`` again first.
"""
import time

import pandas as pd
import streamlit as st

from cvcore import jobs
from cvcore.device import gpu_memory
from cvcore.errors import CvcoreError
from ui.classroom import is_operator, registry, try_operator_token
from ui.common import show_error, wide_layout
from ui.workspace import sign_in_configured

NOTICE = "op_notice"

wide_layout()
st.title("Operator")


def show_notice() -> None:
    """What the last stop or clear did, or why it was refused (once)."""
    notice = st.session_state.pop(NOTICE, None)
    if notice:
        (st.success if notice[0] == "success" else st.error)(notice[1])


show_notice()
if not is_operator():
    if sign_in_configured():
        st.warning("This page is for the class's operators: the users named in the class server's configuration.",
                   icon=":material/lock:")
        st.stop()
    st.caption("Type the operator token (the class server keeps it in the file it names when it starts). "
               "It stays on the server, is never shown, and is asked for again by each new session.")
    with st.form("op_token_form", border=False):
        token = st.text_input("Operator token", type="password", key="op_token",
                              help="The contents of the operator-token file, owner-readable only.")
        if st.form_submit_button("Open", icon=":material/key:"):
            if try_operator_token(token):
                st.rerun()
            st.error("That is not the operator token.", icon=":material/lock:")
    st.stop()


def guarded(action, *args) -> None:
    """Run an operator action only if this session is an operator now (rights can be withdrawn)."""
    if not is_operator():
        st.session_state[NOTICE] = ("error", "Refused: this session is no longer an operator. Nothing was stopped.")
        return
    try:
        st.session_state[NOTICE] = ("success", action(*args))
    except CvcoreError as err:
        st.session_state[NOTICE] = ("error", str(err))


def stop_job(job_id: str) -> str:
    client = jobs.default_manager()
    job = client.get(job_id)
    client.stop(job_id)
    return f"Stop sent to {job.name} ({job.kind}, {job.status})."


def clear_queue() -> str:
    client = jobs.default_manager()
    queued = [j for j in client.jobs() if j.status == "queued"]
    for job in queued:
        client.stop(job.id)
    return f"Cleared the queue: {len(queued)} waiting job(s) stopped."


def age(t: float | None) -> str:
    if not t:
        return ""
    s = max(0, int(time.time() - t))
    return f"{s // 3600}h {s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m {s % 60:02d}s"


@st.fragment(run_every=2)
def class_view() -> None:
    if not is_operator():  # rights withdrawn while the page was open: the whole page shows the gate again
        st.rerun(scope="app")
    show_notice()
    sessions = registry().sessions()
    users = {s["workspace"]: s["user"] for s in sessions}
    try:
        all_jobs = jobs.default_manager().jobs()
    except CvcoreError as err:
        show_error(err, "The job service is not reachable: the sidebar says why.")
        all_jobs = []
    active = [j for j in all_jobs if j.active]
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Sessions", len(sessions), help="Browser sessions on every page server of the class server.")
    c2.metric("Workspaces", len({s["workspace"] for s in sessions}))
    c3.metric("Jobs running", sum(j.status == "running" for j in active))
    c4.metric("Jobs waiting", sum(j.status == "queued" for j in active))

    st.subheader("Jobs", divider="gray")
    if active:
        st.dataframe(pd.DataFrame([{
            "user": users.get(j.owner, "(no open session)"), "kind": j.kind, "job": j.name, "status": j.status,
            "place in queue": j.position, "age": age(j.started or j.created),
            "memory (MB)": j.usage.get("memory_mb"), "CPU time (s)": j.usage.get("cpu_s"),
            "node": (j.node or "")[:8]} for j in active]), hide_index=True, key="op_jobs",
            column_config={"place in queue": st.column_config.NumberColumn(help="1: the next to start")})
        c1, c2, c3 = st.columns([3, 1, 1], vertical_alignment="bottom")
        labels = {j.id: f"{users.get(j.owner, 'someone')}: {j.name} ({j.kind}, {j.status})" for j in active}
        chosen = c1.selectbox("Job", list(labels), format_func=labels.get, key="op_job",
                              help="Memory and CPU are what each job measures of itself, every 2 s.")
        c2.button("Stop this job", key="op_stop", on_click=guarded, args=(stop_job, chosen), icon=":material/stop:",
                  help="The job stops at its next batch; one that does not is cancelled by force.")
        c3.button("Clear the queue", key="op_clear", on_click=guarded, args=(clear_queue,),
                  icon=":material/clear_all:", disabled=not any(j.status == "queued" for j in active),
                  help="Stops every waiting job; running ones go on.")
    else:
        st.caption("No job is running or waiting.")

    st.subheader("Sessions", divider="gray")
    if sessions:
        st.dataframe(pd.DataFrame([{"page server": s["server"], "user": s["user"], "workspace": s["workspace"][:10],
                                    "page": s["page"], "since": age(s["started"]), "last action": age(s["active"])}
                                   for s in sorted(sessions, key=lambda s: (s["server"], s["started"]))]),
                     hide_index=True, key="op_sessions")

    gpus = gpu_memory()
    if gpus:
        st.subheader("GPU memory", divider="gray")
        st.dataframe(pd.DataFrame(gpus), hide_index=True, key="op_gpus")


class_view()
