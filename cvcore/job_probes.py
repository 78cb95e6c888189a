"""Small jobs that check the job system itself: what a worker sees, and faults made on purpose.

The side process runs :func:`probe` at start-up (a worker can import cvcore
and read the workspace store); the tests run the others to show that a
job that raises, kills its own process, eats memory or overstays its
wall-clock limit harms no one else. Each is a job function: ``fn(ctx, **config)``.
"""
from __future__ import annotations

import os
import sys
import threading
import time

from .errors import CvcoreError

__all__ = ["probe", "count", "sleep", "fail", "exit_process", "hog_memory", "beating_run"]


def probe(ctx, store_root: str | None = None) -> dict:
    """What this worker sees: its Python, process id and node, and whether the store's folder is there.

    Example:
        >>> from cvcore.jobs import LocalContext
        >>> sorted(probe(LocalContext()))
        ['cvcore', 'pid', 'python', 'store_exists']
    """
    import cvcore

    out = {"python": "%d.%d" % sys.version_info[:2], "pid": os.getpid(), "cvcore": os.path.dirname(cvcore.__file__),
           "store_exists": bool(store_root) and os.path.isdir(store_root)}
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():  # in a Ray worker: which node, what it was given
        context = ray.get_runtime_context()
        out["node"] = context.get_node_id()
        out["cpus"] = context.get_assigned_resources().get("CPU", 0)
        out["tensorflow_threads"] = os.environ.get("TF_NUM_INTRAOP_THREADS")
        out["priority"] = _priority()
        started = []  # a thread the job starts (as TensorFlow starts its pools) has the job's priority
        worker = threading.Thread(target=lambda: started.append(_priority()))
        worker.start()
        worker.join()
        out["started_thread_priority"] = started[0]
    return out


def _priority() -> dict:
    """The calling thread's nice value and scheduling policy: "idle", "normal", or the policy's number."""
    policy = os.sched_getscheduler(0) if hasattr(os, "sched_getscheduler") else None
    name = ("idle" if policy is not None and policy == getattr(os, "SCHED_IDLE", None) else
            "normal" if policy in (None, getattr(os, "SCHED_OTHER", 0)) else str(policy))
    return {"nice": os.getpriority(os.PRIO_PROCESS, 0), "policy": name}


def count(ctx, steps: int = 3, delay: float = 0.0) -> int:
    """Count to ``steps``, reporting each, ``delay`` seconds apart; stops when asked. Returns the steps done.

    Example:
        >>> from cvcore.jobs import LocalContext
        >>> count(LocalContext(), steps=2)
        2
    """
    done = 0
    for done in range(1, int(steps) + 1):
        if ctx.should_stop():
            return done - 1
        ctx.report({"done": done, "total": int(steps)})
        time.sleep(float(delay))
    return done


def sleep(ctx, seconds: float) -> float:
    """Sleep without checking for Stop (a job that ignores Stop: the queue cancels it by force)."""
    ctx.report({"phase": "sleeping"})
    time.sleep(float(seconds))
    return float(seconds)


def fail(ctx, message: str = "something went wrong") -> None:
    """Raise a :class:`~cvcore.errors.CvcoreError` with ``message``.

    Example:
        >>> from cvcore.jobs import LocalContext
        >>> fail(LocalContext(), "on purpose")
        Traceback (most recent call last):
        ...
        cvcore.errors.CvcoreError: on purpose
    """
    raise CvcoreError(message)


def exit_process(ctx, code: int = 1) -> None:
    """End the worker's process at once, as a crash in native code would."""
    ctx.report({"phase": "about to exit"})
    os._exit(int(code))


def hog_memory(ctx, mb: int = 4096, step_mb: int = 128, delay: float = 0.05, workspace: dict | None = None) -> int:
    """Allocate (and touch) ``mb`` MiB, ``step_mb`` at a time; a memory cap below it kills the job.
    With ``workspace`` (a :meth:`~cvcore.workspace.Workspace.ref`), first start a run there, as a training job does."""
    import numpy as np

    if workspace is not None:
        from .workspace import Workspace

        ws = Workspace.from_ref(workspace)
        ctx.attach_run(ws, ws.new_run("train", name="Hog", title="a run that eats memory").id)
    held = []
    for _ in range(max(1, int(mb) // int(step_mb))):
        held.append(np.ones(int(step_mb) * 1024**2, np.uint8))
        ctx.report({"held_mb": len(held) * int(step_mb)})
        time.sleep(float(delay))
    return len(held) * int(step_mb)


def beating_run(ctx, workspace: dict, seconds: float = 60.0, name: str = "Probe") -> str:
    """A run in ``workspace`` (a :meth:`~cvcore.workspace.Workspace.ref`) that beats its heartbeat for
    ``seconds``, reporting and stopping when asked; returns the run's id."""
    from .workspace import Workspace

    ws = Workspace.from_ref(workspace)
    rec = ws.new_run("train", name=name, title="a probe run")
    ctx.attach_run(ws, rec.id)
    with ws.beating(rec.id, every=0.5):
        end = time.monotonic() + float(seconds)
        while time.monotonic() < end and not ctx.should_stop():
            ctx.report({"run": rec.id, "left": round(end - time.monotonic(), 1)})
            time.sleep(0.1)
    rec.status = "stopped" if ctx.should_stop() else "finished"
    ws.save_run(rec)
    return rec.id
