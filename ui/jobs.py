"""One view of a background job, shared by every page that runs jobs (Train, Transfer, Background, Visualize, Data).

Jobs run on Ray, outside the page server (:mod:`cvcore.jobs`); the page polls their news. While the job waits:
its place in the queue, and Stop. Before its first progress: what it waits for (a worker starting). While it runs: a progress bar with the page's
own words and Stop (disabled once asked, with "stopping…"). Live curves where the page draws them.
Once it has ended: the page's ``on_end`` (keep the result, note the failure), then a rerun of the whole
page, so that what the job made shows below. Pages call it from a fragment that polls.
"""
from __future__ import annotations

import streamlit as st


def job_view(job, *, key: str, describe, on_end, stop_help: str = "", curves=None) -> None:
    """Show ``job`` (a :class:`cvcore.jobs.Job`, or None for nothing).

    Args:
        job: the job to show (its latest news, from :meth:`cvcore.jobs.JobClient.get`).
        key: the page's widget-key prefix: the Stop buttons are ``<key>_stop`` and ``<key>_stop_queued``.
        describe: ``describe(progress) -> (fraction 0..1, text)`` for the bar.
        on_end: called once with the job after it has ended (finished, stopped or failed), before the
            page is run again.
        stop_help: what Stop does, in the page's words.
        curves: ``curves(progress)`` draws live curves from the progress so far, or None.
    """
    if job is None:
        return
    progress = job.progress or {}
    if job.status == "queued":
        c1, c2 = st.columns([5, 1], vertical_alignment="center")
        c1.info(job.waiting or f"Queued behind other users' work: position {job.queue_position()}. It starts by itself.",
                icon=":material/hourglass_top:")
        c2.button("Stop", icon=":material/stop:", key=f"{key}_stop_queued", on_click=job.stop,
                  help="Takes it out of the queue: it never starts.")
    elif job.active and job.waiting:  # no progress yet: say what it waits for (a cold start takes longer)
        c1, c2 = st.columns([5, 1], vertical_alignment="center")
        c1.info(job.waiting, icon=":material/hourglass_top:")
        c2.button("Stop", icon=":material/stop:", key=f"{key}_stop", on_click=job.stop, disabled=job.stop_requested,
                  help=stop_help)
    elif job.active:
        fraction, text = describe(progress)
        c1, c2 = st.columns([5, 1], vertical_alignment="bottom")
        c1.progress(min(max(float(fraction), 0.0), 1.0), text=text + (" · stopping…" if job.stop_requested else ""))
        c2.button("Stop", icon=":material/stop:", key=f"{key}_stop", on_click=job.stop, disabled=job.stop_requested,
                  help=stop_help)
    if curves is not None:
        curves(progress)
    if not job.active:
        on_end(job)
        st.rerun()


def page_job(manager, owner: str, mine):
    """What a page that starts jobs needs to know of its workspace's jobs (one workspace may have
    ``manager.settings.per_user`` queued or running, one running at a time, whichever page started them).

    Args:
        manager: the :class:`cvcore.jobs.JobClient`.
        owner: the workspace's id.
        mine: ``mine(job)`` tells this page's kind of job from the others.

    Returns:
        ``(own, others, room)``: this page's newest active job or None (to follow after a reload), the
        workspace's other active jobs, and whether one more may be submitted.
    """
    active = manager.active_jobs(owner)
    own = next((job for job in reversed(active) if mine(job)), None)
    return own, [job for job in active if job is not own], manager.has_room(owner, active)


def room_caption(manager, others, room: bool) -> str:
    """A line under a page's start button when the workspace's ``others`` (active jobs, at least one) decide
    what pressing it does."""
    names = ", ".join(job.name for job in others)
    if not room:
        limit = manager.settings.per_user
        return (f"Your workspace's other job ({names}) must end first." if limit == 1 else
                f"Your workspace has {len(others)} jobs queued or running ({names}), the most this server allows "
                "per user; one must end first.")
    return f"Your workspace's other job ({names}) runs first; this one waits for it in the queue."


def count_progress(unit: str, label: str = ""):
    """A ``describe`` for jobs that report ``done`` of ``total``: "label: 12 of 40 images"."""
    def describe(progress):
        done, total = int(progress.get("done", 0) or 0), max(int(progress.get("total", 1) or 1), 1)
        return done / total, f"{label + ': ' if label else ''}{done:,} of {total:,} {unit}"
    return describe


def live_learning_curves(key: str):
    """A ``curves`` for training jobs: the run's loss and accuracy so far (``<key>_live_loss``,
    ``<key>_live_acc``), with a marker where a phase (fine-tuning) begins."""
    from ui import plots

    def curves(progress):
        history = progress.get("history") or {}
        if any(history.values()):
            for column, (metric, short) in zip(st.columns(2), (("loss", "loss"), ("accuracy", "acc"))):
                column.plotly_chart(plots.learning_curves({"this run": history}, metric, phases=progress.get("phases")),
                                    key=f"{key}_live_{short}")
    return curves


def run_ended(job_key: str, error_key: str | None):
    """An ``on_end`` for jobs that leave a run in the workspace (the page lists it below): stop following
    the job, and keep a failure's message under ``error_key`` for the page to say (None: the page says it
    from the failed run's record)."""
    from cvcore.errors import CvcoreError

    def on_end(job) -> None:
        st.session_state.pop(job_key, None)
        if job.status == "failed" and error_key is not None:
            st.session_state[error_key] = CvcoreError(f"Training failed: {job.error}")
    return on_end


def sidebar_jobs() -> None:
    """Where long work runs, in the sidebar: the job service's state (Ray starting, ready, or what stops it
    from running jobs) and the queue. The first call starts the service, ahead of the first job."""
    from cvcore import jobs
    from cvcore.errors import CvcoreError

    try:
        status = jobs.default_manager().status()
    except CvcoreError as err:  # a bad CVCORE_* setting: the operator must see it
        st.sidebar.error(f"Jobs cannot run: {err}", icon=":material/error:")
        return
    state = status.get("state")
    if state == "ready":
        cpus = status.get("resources", {}).get("CPU", 0)
        gpus = status.get("resources", {}).get("GPU", 0)
        where = "a local Ray" if status.get("address") == "local" else f"the Ray cluster at {status.get('address')}"
        queue = status.get("queue") or {}
        st.sidebar.caption(f":material/dns: Jobs run on {where} ({cpus:g} CPUs{f', {gpus:g} GPUs' if gpus else ''}) · "
                           f"{queue.get('running', 0)} running, {queue.get('queued', 0)} waiting")
    elif state == "starting":
        st.sidebar.caption(f":material/hourglass_top: {status.get('message') or 'Ray is starting…'}")
    else:
        st.sidebar.warning(f"Jobs cannot run now: {status.get('message')}", icon=":material/cloud_off:")
