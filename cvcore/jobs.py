"""Background jobs: run a long callable (training) with progress and a cooperative stop.

A page submits a job and returns at once; on every rerun it reads
``job.status`` and ``job.progress``, and a Stop button calls ``job.stop()``.
Jobs run in threads (TensorFlow releases the GIL while it computes). A
:class:`JobManager` bounds how many run at once across the whole server and
queues the rest first in, first out; each session (browser tab) may have at
most one *active* (queued or running) job, and submitting a second raises
:class:`JobBusyError` naming the first (the page can show it or stop it).

The callable receives a :class:`JobContext`: it calls ``ctx.report(dict)``
with progress and checks ``ctx.should_stop()`` often, returning early when
it is true. Its return value becomes ``job.result``. An exception never
reaches the page that polls: the job's status becomes ``"failed"`` and
``job.error`` holds the message.

Statuses: ``"queued"`` -> ``"running"`` -> ``"done"``, ``"stopped"`` (a stop
was requested; a queued job that is stopped never runs) or ``"failed"``.

Everything here is thread-safe and imports neither TensorFlow nor Streamlit.
"""
from __future__ import annotations

import itertools
import os
import threading
import time
import traceback
from collections import deque

from .errors import CvcoreError

__all__ = [
    "STATUSES",
    "ACTIVE_STATUSES",
    "FINISHED_STATUSES",
    "JobBusyError",
    "JobContext",
    "Job",
    "JobManager",
    "default_manager",
    "DEFAULT_MAX_JOBS",
]

STATUSES = ("queued", "running", "done", "stopped", "failed")
ACTIVE_STATUSES = ("queued", "running")
FINISHED_STATUSES = ("done", "stopped", "failed")
DEFAULT_MAX_JOBS = 2
_KEEP_FINISHED = 256  # finished jobs the manager remembers (pages hold their own)
_ids = itertools.count(1)


class JobBusyError(CvcoreError):
    """The session already has a queued or running job; ``.job`` is that job."""

    def __init__(self, message, job):
        super().__init__(message)
        self.job = job


class JobContext:
    """What a job's callable receives: a way to report and to hear a stop.

    Example:
        >>> def work(ctx):
        ...     for i in range(3):
        ...         if ctx.should_stop():
        ...             return "stopped early"
        ...         ctx.report({"step": i + 1, "steps": 3})
        ...     return "finished"
    """

    def __init__(self, job: "Job"):
        self._job = job

    @property
    def job_id(self) -> int:
        """The job's id."""
        return self._job.id

    def report(self, progress) -> None:
        """Publish the latest progress (a small dict); pages read it as ``job.progress``.

        Args:
            progress: a dict; it is copied (shallowly), so the caller may reuse it.

        Raises:
            CvcoreError: when ``progress`` is not a dict.
        """
        if not isinstance(progress, dict):
            raise CvcoreError(f"`progress` must be a dict; received {type(progress).__name__}.")
        with self._job._lock:
            self._job._progress = dict(progress)

    def should_stop(self) -> bool:
        """True once ``job.stop()`` was called (or the manager shuts down)."""
        return self._job._stop.is_set()


class Job:
    """One submitted callable; created by :meth:`JobManager.submit`.

    Attributes:
        id: a unique int.
        session_id: the session that submitted it.
        name: a label for people.
        created, started, finished: ``time.time()`` stamps (None until then).
    """

    def __init__(self, manager, session_id, fn, name):
        self.id = next(_ids)
        self.session_id = session_id
        self.name = name
        self.created = time.time()
        self.started = None
        self.finished = None
        self._manager = manager
        self._fn = fn
        self._lock = threading.Lock()
        self._status = "queued"
        self._progress = {}
        self._result = None
        self._error = None
        self._traceback = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread = None

    def __repr__(self):
        return f"<Job {self.id} {self.name!r} session={self.session_id!r} {self.status}>"

    @property
    def status(self) -> str:
        """One of ``"queued"``, ``"running"``, ``"done"``, ``"stopped"``, ``"failed"``."""
        with self._lock:
            return self._status

    @property
    def active(self) -> bool:
        """True while queued or running."""
        return self.status in ACTIVE_STATUSES

    @property
    def progress(self) -> dict:
        """A copy of the latest dict the job reported (empty before the first)."""
        with self._lock:
            return dict(self._progress)

    @property
    def result(self):
        """What the callable returned (None until it returns, or when it failed)."""
        with self._lock:
            return self._result

    @property
    def error(self):
        """None, or the message of the exception that failed the job.

        A :class:`~cvcore.errors.CvcoreError` gives its own message (written
        for people); any other exception gives ``"TypeName: message"``.
        """
        with self._lock:
            return self._error

    @property
    def traceback(self):
        """None, or the failed job's traceback text, for logs."""
        with self._lock:
            return self._traceback

    @property
    def stop_requested(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stop.is_set()

    @property
    def elapsed(self) -> float:
        """Seconds it has run (0 while queued)."""
        with self._lock:
            if self.started is None:
                return 0.0
            return (self.finished or time.time()) - self.started

    def queue_position(self):
        """1 for the next job to start, 2 for the one after...; None when not queued.

        Example:
            >>> manager = JobManager(max_running=1)
            >>> gate = threading.Event()
            >>> first = manager.submit("a", lambda ctx: gate.wait(5), name="first")
            >>> second = manager.submit("b", lambda ctx: None, name="second")
            >>> second.queue_position()
            1
            >>> gate.set(); second.wait(5)
            True
        """
        return self._manager._queue_position(self)

    def stop(self) -> None:
        """Ask the job to stop; it returns at once.

        A queued job is taken off the queue and becomes ``"stopped"`` now. A
        running job sees ``ctx.should_stop()`` turn true and becomes
        ``"stopped"`` when its callable returns (keeping what it returned).
        Stopping a finished job does nothing.
        """
        self._stop.set()
        self._manager._cancel_if_queued(self)

    def wait(self, timeout=None) -> bool:
        """Block until the job finishes or ``timeout`` seconds pass.

        Args:
            timeout: seconds, or None to wait for as long as it takes.

        Returns:
            True when the job has finished.
        """
        return self._done.wait(timeout)

    # -- run by the manager's worker thread
    def _run(self):
        ctx = JobContext(self)
        result = error = tb = None
        try:
            result = self._fn(ctx)
        except BaseException as err:  # never raise into a poller; report it
            error = str(err) if isinstance(err, CvcoreError) else f"{type(err).__name__}: {err}"
            tb = traceback.format_exc()
        with self._lock:
            self._result = result
            self._error = error
            self._traceback = tb
            if error is not None:
                self._status = "failed"
            elif self._stop.is_set():
                self._status = "stopped"
            else:
                self._status = "done"
            self.finished = time.time()
        self._done.set()


class JobManager:
    """Runs jobs in threads, at most ``max_running`` at once, the rest queued FIFO.

    Args:
        max_running: the most jobs running at once, server-wide (>= 1).

    Example:
        >>> manager = JobManager(max_running=2)
        >>> job = manager.submit("session-1", lambda ctx: 6 * 7, name="answer")
        >>> job.wait(5), job.status, job.result
        (True, 'done', 42)
    """

    def __init__(self, max_running: int = DEFAULT_MAX_JOBS):
        if isinstance(max_running, bool) or not isinstance(max_running, int) or max_running < 1:
            raise CvcoreError(f"`max_running` must be a positive integer; received {max_running!r}.")
        self.max_running = max_running
        self._lock = threading.Lock()
        self._queue = deque()
        self._running = set()
        self._jobs = {}  # id -> Job, insertion order
        self._active = {}  # session_id -> Job

    def submit(self, session_id, fn, *, name="job") -> Job:
        """Queue ``fn(ctx)`` for a session; it starts as soon as a slot is free.

        Args:
            session_id: who submits (any hashable, e.g. a Streamlit session id).
            fn: a callable taking a :class:`JobContext`.
            name: a label for people.

        Returns:
            The new :class:`Job` (``"running"`` or ``"queued"``).

        Raises:
            JobBusyError: when the session already has a queued or running
                job; ``err.job`` is that job (stop it or wait for it first).
            CvcoreError: when ``fn`` is not callable or ``name`` not a string.

        Example:
            >>> manager = JobManager()
            >>> manager.submit("s", lambda ctx: None, name="quick").wait(5)
            True
        """
        if not callable(fn):
            raise CvcoreError(f"`fn` must be a callable taking a job context; received {fn!r}.")
        if not isinstance(name, str):
            raise CvcoreError(f"`name` must be a string; received {name!r}.")
        try:
            hash(session_id)
        except TypeError:
            raise CvcoreError(f"`session_id` must be hashable; received {type(session_id).__name__}.") from None
        with self._lock:
            current = self._active.get(session_id)
            if current is not None and current.active:
                raise JobBusyError(
                    f"This session already has a {current.status} job ({current.name!r}); "
                    "stop it or wait for it to finish before starting another.",
                    current,
                )
            job = Job(self, session_id, fn, name)
            self._jobs[job.id] = job
            self._active[session_id] = job
            self._prune()
            if len(self._running) < self.max_running:
                self._start(job)
            else:
                self._queue.append(job)
        return job

    def get(self, job_id):
        """The job with that id, or None (finished jobs are remembered for a while)."""
        with self._lock:
            return self._jobs.get(job_id)

    def active_job(self, session_id):
        """The session's queued or running job, or None."""
        with self._lock:
            job = self._active.get(session_id)
        return job if job is not None and job.active else None

    def jobs(self, session_id=None) -> list:
        """Jobs the manager remembers, oldest first; only a session's when given."""
        with self._lock:
            jobs = list(self._jobs.values())
        return [j for j in jobs if session_id is None or j.session_id == session_id]

    @property
    def running_count(self) -> int:
        """Jobs running now."""
        with self._lock:
            return len(self._running)

    @property
    def queued_count(self) -> int:
        """Jobs waiting for a slot."""
        with self._lock:
            return len(self._queue)

    def stop_all(self, wait=None) -> None:
        """Stop every queued and running job.

        Args:
            wait: seconds to wait for running jobs to return, or None not to wait.
        """
        with self._lock:
            jobs = list(self._queue) + list(self._running)
        for job in jobs:
            job.stop()
        if wait is not None:
            deadline = time.monotonic() + wait
            for job in jobs:
                job.wait(max(0.0, deadline - time.monotonic()))

    # -- internals (called with or without the lock as marked)
    def _start(self, job):  # lock held
        self._running.add(job)
        with job._lock:
            job._status = "running"
            job.started = time.time()
        thread = threading.Thread(target=self._work, args=(job,), name=f"cvcore-job-{job.id}", daemon=True)
        job._thread = thread
        thread.start()

    def _work(self, job):
        try:
            job._run()
        finally:
            with self._lock:
                self._running.discard(job)
                while self._queue and len(self._running) < self.max_running:
                    self._start(self._queue.popleft())

    def _queue_position(self, job):
        with self._lock:
            for position, queued in enumerate(self._queue, start=1):
                if queued is job:
                    return position
        return None

    def _cancel_if_queued(self, job):
        with self._lock:
            if job not in self._queue:
                return
            self._queue.remove(job)
        with job._lock:
            job._status = "stopped"
            job.finished = time.time()
        job._done.set()

    def _prune(self):  # lock held
        finished = [j for j in self._jobs.values() if j._done.is_set()]
        for job in finished[: max(0, len(finished) - _KEEP_FINISHED)]:
            del self._jobs[job.id]
            if self._active.get(job.session_id) is job:
                del self._active[job.session_id]


_default = None
_default_lock = threading.Lock()


def default_manager() -> JobManager:
    """The server-wide manager, created on first use.

    Its ``max_running`` comes from the environment variable
    ``CVCORE_MAX_JOBS`` (default 2).

    Returns:
        The same :class:`JobManager` on every call, in every thread.

    Raises:
        CvcoreError: when ``CVCORE_MAX_JOBS`` is not a positive integer.

    Example:
        >>> default_manager() is default_manager()
        True
    """
    global _default
    with _default_lock:
        if _default is None:
            raw = os.environ.get("CVCORE_MAX_JOBS", "").strip()
            if raw:
                try:
                    value = int(raw)
                except ValueError:
                    value = 0
                if value < 1:
                    raise CvcoreError(
                        f"The environment variable CVCORE_MAX_JOBS must be a positive integer; received {raw!r}."
                    )
            else:
                value = DEFAULT_MAX_JOBS
            _default = JobManager(max_running=value)
        return _default
