"""The Ray side of :mod:`cvcore.jobs`: the shared queue (a named, detached actor) and the task that runs a job.

Only the side process (:mod:`cvcore.jobgate`) and Ray's workers import this
module; the page server never does.

:class:`JobQueue` is one actor for the whole server, whichever page server
submits: it keeps the jobs first in, first out, at most ``per_user`` queued or
running jobs per owner (the job's spec carries the bound) of which one runs at
a time, and at most ``max_running`` running. It starts each job as a
:func:`run_job` task with the job's resource requests and watches it: Stop
first asks (the job returns at its next check), then, after the grace period,
cancels by force; the wall-clock limit does the same. A task that dies (its
process killed, out of memory, a lost node) fails its job with a plain message,
and the run the job had attached is marked failed in its workspace.

:func:`run_job` lowers its own CPU priority, turns on GPU memory growth before
TensorFlow is imported, watches its own memory against the job's cap, and calls
the job's function with a :class:`WorkerContext`.
"""
from __future__ import annotations

import gc
import math
import os
import sys
import threading
import time
import traceback
import uuid
from collections import deque

import ray

from .errors import CvcoreError

QUEUE_NAME = "cvcore-job-queue"
NAMESPACE = "convnet-explorer"
SLOT_RESOURCE = "cvcore_job_slot"  # only on a Ray instance the app started itself
KEEP_FINISHED = 512
REPORT_EVERY_S = 0.2  # progress reaches the queue at most this often
STOP_CHECK_EVERY_S = 0.25  # a worker asks the queue whether Stop was pressed at most this often
MEMORY_CHECK_EVERY_S = 0.1
USAGE_EVERY_S = 2.0  # how often a job tells the queue what it uses (the operator's page shows it)
_KILLED_BY_CAP = 137
# The queue actor outlives page servers on a cluster: a server with other code replaces an idle one.
with open(__file__, "rb") as _f:
    CODE_VERSION = __import__("hashlib").sha256(_f.read()).hexdigest()[:12]


def _message(err: BaseException) -> str:
    return str(err) if isinstance(err, CvcoreError) else f"{type(err).__name__}: {err}"


def _mib(n: float, *, up: bool = False) -> str:
    """Bytes in whole MiB; `up` rounds up, so a use just over a whole-MiB cap never reads as the cap itself."""
    mib = n / 1024**2
    return f"{math.ceil(mib) if up else round(mib):,} MiB"


# ------------------------------------------------------------------------------------------- the worker side
def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class WorkerContext:
    """The :class:`cvcore.jobs.JobContext` of a job running in a Ray worker."""

    def __init__(self, job_id: str, queue):
        self.job_id = job_id
        self._queue = queue
        self._last_sent = 0.0
        self._pending = None
        self._last_check = 0.0
        self._stop = False
        self._timer = None
        self._lock = threading.Lock()

    def report(self, progress: dict) -> None:
        if not isinstance(progress, dict):
            raise CvcoreError(f"`progress` must be a dict; received {type(progress).__name__}.")
        now = time.monotonic()
        with self._lock:
            self._pending = dict(progress)
            wait = self._last_sent + REPORT_EVERY_S - now
            if wait > 0:  # too soon: the latest goes when the interval is over, even if no report follows
                if self._timer is None:
                    self._timer = threading.Timer(wait, self._send_pending)
                    self._timer.daemon = True
                    self._timer.start()
                return
        self._send_pending()

    def _send_pending(self) -> None:
        with self._lock:
            self._timer = None
            progress, self._pending = self._pending, None
            self._last_sent = time.monotonic()
        if progress is not None:
            self._queue.report.remote(self.job_id, progress)  # fire and forget: the queue keeps the latest

    def flush(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            progress, self._pending = self._pending, None
        if progress is not None:
            ray.get(self._queue.report.remote(self.job_id, progress), timeout=10)

    def should_stop(self) -> bool:
        now = time.monotonic()
        if not self._stop and now - self._last_check >= STOP_CHECK_EVERY_S:
            self._last_check = now
            try:
                self._stop = bool(ray.get(self._queue.stop_requested.remote(self.job_id), timeout=5))
            except Exception:  # the queue is gone: stop rather than run on unwatched
                self._stop = True
        return self._stop

    def attach_run(self, workspace, run_id: str) -> None:
        self._queue.attach_run.remote(self.job_id, workspace.ref(), run_id)


def _lower_priority(nice: int) -> None:
    """Yield the CPU to the page servers and to whatever else is interactive on the machine.

    This thread, and every thread it starts later (TensorFlow makes its compute pools at a job's first
    operation), takes at least ``nice`` and, where Linux has it, the SCHED_IDLE policy: a waking thread of
    the normal kind takes the CPU from an idle one at once, across Linux's autogroups too. A nice value alone
    counts only inside the worker's autogroup, the side process's session (jobgate.main nices it); a Ray
    worker leads its own process group, so it cannot start a session of its own. Ray's threads, already
    running, keep their priority: they carry progress and Stop. ``nice`` 0 leaves the priority alone."""
    if nice <= 0:
        return
    try:
        current = os.nice(0)
        if current < nice:
            os.nice(nice - current)
    except OSError:
        pass
    if hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # 0: this thread
        except OSError:
            pass  # a kernel without it: the nice value above is what counts


def _watch_memory(job_id, queue, cap_bytes: float, base: int, done: threading.Event) -> None:
    """Kill this worker process when the job's memory (RSS above what the worker held before it) passes the cap;
    every :data:`USAGE_EVERY_S`, tell the queue the job's memory and CPU time (its own measure, for the operator)."""
    cpu0, last = sum(os.times()[:2]), 0.0
    while not done.wait(MEMORY_CHECK_EVERY_S):
        used = _rss_bytes() - base
        if time.monotonic() - last >= USAGE_EVERY_S:
            last = time.monotonic()
            queue.usage.remote(job_id, {"memory_mb": round(max(used, 0) / 1024**2),
                                        "cpu_s": round(sum(os.times()[:2]) - cpu0, 1)})
        if used > cap_bytes:
            try:
                ray.get(queue.fault.remote(job_id, f"Out of memory: the job used {_mib(used, up=True)}, over its cap of "
                                                   f"{_mib(cap_bytes)} (CVCORE_JOB_MEMORY_MB). Try a smaller batch, "
                                                   "fewer images or a smaller model."), timeout=5)
            finally:
                os._exit(_KILLED_BY_CAP)


@ray.remote(max_retries=0)
def run_job(job_id: str, spec: dict, queue) -> dict:
    """Run one job in a Ray worker; returns ``{"status", "result" or "error"}`` (never raises)."""
    _lower_priority(int(spec["nice"]))
    _prepare_tensorflow()
    ctx = WorkerContext(job_id, queue)
    done = threading.Event()
    watcher = threading.Thread(target=_watch_memory, name="cvcore-memory-cap", daemon=True,
                               args=(job_id, queue, float(spec["memory_mb"]) * 1024**2, _rss_bytes(), done))
    watcher.start()
    try:
        from .jobs import run_inline

        ctx.report({"phase": "starting"})
        result = run_inline(spec["target"], spec["config"], ctx)
        outcome = {"status": "stopped" if ctx.should_stop() else "done", "result": result}
        outcome["node"] = ray.get_runtime_context().get_node_id()
    except BaseException as err:  # a job's failure is its own: reported, never raised into the queue
        outcome = {"status": "failed", "error": _message(err), "traceback": traceback.format_exc()}
    finally:
        done.set()
    try:
        ctx.flush()
    except Exception:
        pass
    _tidy()
    return outcome


def _tidy() -> None:
    """Leave the reused worker as a next job expects it: no models of this one held."""
    if "keras" in sys.modules:
        try:
            sys.modules["keras"].backend.clear_session()
        except Exception:
            pass
    gc.collect()


def _prepare_tensorflow() -> None:
    """What TensorFlow must be told before it starts in a worker: GPU memory growth (jobs share a card), and
    as many compute threads as the CPUs this task was given (Ray sets OMP_NUM_THREADS so for other libraries;
    TensorFlow reads its own variable). Once started, TensorFlow keeps them for the worker's life; every job,
    the warm-up and the start-up probe ask for the same CPUs (``cpus_per_job``), so a reused worker fits."""
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 0)
    if cpus >= 1:
        os.environ["TF_NUM_INTRAOP_THREADS"] = str(int(cpus))


@ray.remote(max_retries=0)
def warm_worker(nice: int) -> dict:
    """Import TensorFlow and Keras in a worker that jobs will reuse: the first job then starts in about a second.
    At the jobs' priority (``nice``): the import takes seconds of CPU that a page may need more."""
    _lower_priority(nice)
    _prepare_tensorflow()
    from . import device

    info = device.configure()
    return {"pid": os.getpid(), "device": info.kind}


@ray.remote(max_retries=0)
def probe_worker(store_root: str, marker: str) -> dict:
    """What a job's worker sees: its Python, Ray, cvcore and whether it reads the workspace store."""
    import cvcore

    path = os.path.join(store_root, ".probe")
    try:
        with open(path) as f:
            readable = f.read().strip() == marker
    except OSError:
        readable = False
    return {"python": "%d.%d" % sys.version_info[:2], "ray": ray.__version__, "cvcore": os.path.dirname(cvcore.__file__),
            "store_readable": readable, "node": ray.get_runtime_context().get_node_id()}


# ------------------------------------------------------------------------------------------- the queue
class _Entry:
    __slots__ = ("id", "spec", "status", "progress", "error", "result", "stop", "created", "started", "finished",
                 "ref", "fault", "run", "node", "deadline", "force_at", "warm", "usage")

    def __init__(self, spec):
        self.id = spec.get("id") or uuid.uuid4().hex[:16]  # given: a job submitted again after Ray was lost
        self.spec = spec
        self.status = "queued"
        self.progress, self.error, self.result = {}, None, None
        self.stop = False
        self.created, self.started, self.finished = time.time(), None, None
        self.ref = self.fault = self.run = self.node = self.deadline = self.force_at = None
        self.warm = False
        self.usage = {}

    def public(self, position=None, cold=False, behind=None) -> dict:
        waiting = None
        if self.status == "queued" and behind is not None:
            waiting = (f"Waits for your other job ({behind.spec['name']}) to end: one of your jobs runs at a time. "
                       "It starts by itself.")
        if self.status == "running" and (not self.progress or self.progress.get("phase") == "starting"):
            waiting = ("Starting a worker process and loading TensorFlow: the first job after the server "
                       "started takes a little longer." if cold else "Starting…")
        return {"id": self.id, "owner": self.spec["owner"], "name": self.spec["name"], "kind": self.spec["kind"],
                "status": self.status, "progress": self.progress, "error": self.error, "result": self.result,
                "position": position, "stop_requested": self.stop, "waiting": waiting, "created": self.created,
                "started": self.started, "finished": self.finished, "node": self.node, "usage": self.usage}


@ray.remote(num_cpus=0, max_restarts=0, max_concurrency=64)
class JobQueue:
    """The server's queue (see the module's doc). Created once, by name, detached."""

    def __init__(self, max_running: int, local: bool):
        self.max_running = int(max_running)
        self.local = bool(local)
        self.jobs: dict[str, _Entry] = {}
        self.queue: deque[_Entry] = deque()
        self.running: set = set()
        self.warmed = False
        self._handle = ray.get_runtime_context().current_actor  # jobs report to it
        self._lock = threading.RLock()
        self._watcher = threading.Thread(target=self._watch, name="cvcore-queue-watch", daemon=True)
        self._watcher.start()

    # -- asked by page servers (through their side processes)
    def ping(self) -> dict:
        with self._lock:
            return {"running": len(self.running), "queued": len(self.queue), "max_running": self.max_running,
                    "warm": self.warmed, "local": self.local, "code": CODE_VERSION}

    def set_max_running(self, max_running: int) -> None:
        """A page server started with another ``CVCORE_MAX_JOBS``: the latest one started decides."""
        with self._lock:
            self.max_running = max(1, int(max_running))
            self._pump()

    def submit(self, spec: dict) -> dict:
        with self._lock:
            known = self.jobs.get(spec.get("id") or "")
            if known is not None:  # submitted again by a page server that did not hear the first answer
                return {"job": self._public(known)}
            mine = self._actives(spec["owner"])
            if len(mine) >= max(1, int(spec.get("per_user", 1))):
                return {"busy": self._public(mine[-1]), "count": len(mine)}
            entry = _Entry(spec)
            self.jobs[entry.id] = entry
            self.queue.append(entry)
            self._prune()
            self._pump()
            return {"job": self._public(entry)}

    def get(self, job_id: str):
        with self._lock:
            entry = self.jobs.get(job_id)
            return self._public(entry) if entry else None

    def active(self, owner: str) -> list:
        """``owner``'s queued and running jobs, oldest first."""
        with self._lock:
            return [self._public(e) for e in self._actives(owner)]

    def list(self, owner=None) -> list:
        with self._lock:
            return [self._public(e) for e in self.jobs.values() if owner is None or e.spec["owner"] == owner]

    def stop(self, job_id: str) -> None:
        with self._lock:
            entry = self.jobs.get(job_id)
            if entry is None or entry.status not in ("queued", "running"):
                return
            entry.stop = True
            if entry.status == "queued":
                self.queue.remove(entry)
                self._finish(entry, "stopped")
            elif entry.force_at is None:
                entry.force_at = time.monotonic() + float(entry.spec.get("stop_grace_s", 10))

    def warm(self, count: int, options: dict, nice: int) -> None:
        """Start ``count`` workers with TensorFlow imported, for jobs to reuse, at the jobs' priority ``nice``."""
        refs = [warm_worker.options(**options).remote(int(nice)) for _ in range(max(1, int(count)))]

        def wait():
            try:
                ray.get(refs, timeout=600)
            except Exception:
                pass
            self.warmed = True

        threading.Thread(target=wait, daemon=True).start()

    def probe(self, store_root: str, marker: str, options: dict, timeout: float) -> dict:
        try:
            return ray.get(probe_worker.options(**options).remote(store_root, marker), timeout=timeout)
        except ray.exceptions.GetTimeoutError:
            return {"error": f"no worker started within {timeout:.0f} s: the cluster has no free CPU for a job "
                             "(or its nodes cannot start workers)."}
        except Exception as err:
            return {"error": _message(err)}

    # -- asked by running jobs
    def report(self, job_id: str, progress: dict) -> None:
        with self._lock:
            entry = self.jobs.get(job_id)
            if entry is not None and entry.status == "running":
                entry.progress = progress

    def usage(self, job_id: str, usage: dict) -> None:
        with self._lock:
            entry = self.jobs.get(job_id)
            if entry is not None and entry.status == "running":
                entry.usage = usage

    def stop_requested(self, job_id: str) -> bool:
        with self._lock:
            entry = self.jobs.get(job_id)
            return entry is None or entry.stop or entry.status != "running"

    def fault(self, job_id: str, message: str) -> None:
        with self._lock:
            entry = self.jobs.get(job_id)
            if entry is not None:
                entry.fault = message

    def attach_run(self, job_id: str, workspace_ref: dict, run_id: str) -> None:
        with self._lock:
            entry = self.jobs.get(job_id)
            if entry is not None:
                entry.run = (workspace_ref, run_id)

    # -- internals (lock held unless said)
    def _actives(self, owner) -> list:
        return [e for e in self.jobs.values() if e.spec["owner"] == owner and e.status in ("queued", "running")]

    def _running_of(self, owner):
        return next((e for e in self.running if e.spec["owner"] == owner), None)

    def _public(self, entry) -> dict:
        behind = self._running_of(entry.spec["owner"]) if entry.status == "queued" else None
        return entry.public(self._position(entry), not self.warmed, behind)

    def _position(self, entry):
        if entry.status != "queued":
            return None
        for i, queued in enumerate(self.queue, start=1):
            if queued is entry:
                return i
        return None

    def _options(self, spec) -> dict:
        options = {"num_cpus": int(spec.get("cpus", 1)), "name": f"cvcore {spec['kind']}: {spec['name']}"[:120],
                   "memory": int(float(spec["memory_mb"]) * 1024**2)}
        gpu = float(spec.get("gpu") or 0)
        if gpu > 0 and ray.cluster_resources().get("GPU", 0) > 0:
            options["num_gpus"] = gpu
        if self.local:
            options["resources"] = {SLOT_RESOURCE: 1}
        return options

    def _pump(self) -> None:
        while len(self.running) < self.max_running:
            # The first in line whose owner has nothing running: one job of a workspace runs at a time.
            entry = next((e for e in self.queue if self._running_of(e.spec["owner"]) is None), None)
            if entry is None:
                return
            self.queue.remove(entry)
            entry.status, entry.started = "running", time.time()
            entry.deadline = time.monotonic() + float(entry.spec["wall_s"])
            entry.warm = self.warmed
            entry.ref = run_job.options(**self._options(entry.spec)).remote(entry.id, entry.spec, self._handle)
            self.running.add(entry)

    def _finish(self, entry, status, error=None, result=None) -> None:
        entry.status, entry.error, entry.result, entry.finished = status, error, result, time.time()
        self.running.discard(entry)
        if entry.run is not None and status in ("failed", "stopped"):
            _end_run(entry.run, status, error)
        self._pump()

    def _prune(self) -> None:
        ended = [e for e in self.jobs.values() if e.status not in ("queued", "running")]
        for entry in ended[: max(0, len(ended) - KEEP_FINISHED)]:
            del self.jobs[entry.id]

    def _watch(self) -> None:
        """Every tenth of a second: collect ended tasks, enforce stop grace periods and wall-clock limits."""
        while True:
            time.sleep(0.1)
            with self._lock:
                running = list(self.running)
            if not running:
                continue
            ready, _ = ray.wait([e.ref for e in running], num_returns=len(running), timeout=0)
            ready = set(ready)
            now = time.monotonic()
            for entry in running:
                if entry.ref in ready:
                    self._collect(entry)
                elif entry.force_at is not None and now > entry.force_at:
                    entry.force_at = float("inf")
                    ray.cancel(entry.ref, force=True)
                elif now > entry.deadline:
                    entry.deadline = float("inf")
                    limit = float(entry.spec["wall_s"])
                    entry.fault = (f"Went over the wall-clock limit of {limit / 60:.0f} min (CVCORE_JOB_WALL_S) "
                                   "and was stopped; the run keeps what it had saved.")
                    ray.cancel(entry.ref, force=True)

    def _collect(self, entry) -> None:
        try:
            outcome = ray.get(entry.ref, timeout=10)
        except ray.exceptions.TaskCancelledError:
            outcome = None
            error = entry.fault
        except ray.exceptions.OutOfMemoryError:
            outcome, error = None, entry.fault or ("Out of memory: the machine ran low on memory and Ray ended "
                                                   "the job. Try a smaller batch, fewer images or a smaller model.")
        except Exception as err:  # the worker process died, or its node
            outcome = None
            error = entry.fault or ("The job's worker process ended unexpectedly (it crashed or was killed): "
                                    f"{type(err).__name__}. Other users' work is not affected; try again.")
        with self._lock:
            if outcome is not None:
                entry.node = outcome.get("node")
                if outcome["status"] == "failed":
                    self._finish(entry, "failed", error=outcome["error"])
                else:
                    self._finish(entry, outcome["status"], result=outcome.get("result"))
            elif error is None and entry.stop:  # cancelled by force after Stop's grace period
                self._finish(entry, "stopped")
            else:
                self._finish(entry, "failed", error=error or "The job was cancelled.")
            # The worker is not told when it is killed: keep the last progress it sent for the page.


def _end_run(run, status, message) -> None:
    """Mark an attached run that is still "running" as ``status`` when its job ended from outside (killed, or
    cancelled after Stop's grace period): it could not say so itself. A run the job ended itself is left as is."""
    from .workspace import Workspace

    workspace_ref, run_id = run
    try:
        ws = Workspace.from_ref(workspace_ref)
        rec = ws.run(run_id)
        if rec.status == "running":
            rec.status = status
            if message:
                rec.error = message
            ws.save_run(rec)
    except Exception:  # the workspace is gone, or unreadable from here: its heartbeat says interrupted
        pass


def namespace() -> str:
    """The Ray namespace of this app's queue: ``$CVCORE_RAY_NAMESPACE``, or :data:`NAMESPACE` (two apps on one
    cluster, or a test that wants a queue of its own, set different ones)."""
    return os.environ.get("CVCORE_RAY_NAMESPACE") or NAMESPACE


def get_or_create_queue(max_running: int, local: bool):
    """The server's queue actor, made on first call (every page server's side process calls this).

    An actor left by a page server with other code (an upgrade) is replaced when it holds no job, and used
    as it is otherwise; one with another bound on running jobs takes this server's (the latest started)."""
    options = dict(name=QUEUE_NAME, namespace=namespace(), lifetime="detached", get_if_exists=True)
    queue = JobQueue.options(**options).remote(max_running, local)
    ping = ray.get(queue.ping.remote(), timeout=60)
    if ping.get("code") != CODE_VERSION and not ping["running"] and not ping["queued"]:
        ray.kill(queue)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the name is free once the old actor is gone
            try:
                ray.get_actor(QUEUE_NAME, namespace=namespace())
            except ValueError:
                break
            time.sleep(0.1)
        queue = JobQueue.options(**options).remote(max_running, local)
        ping = ray.get(queue.ping.remote(), timeout=60)
    if ping["max_running"] != int(max_running):
        ray.get(queue.set_max_running.remote(max_running), timeout=30)
    return queue
