"""Long work as jobs on Ray: what a page server submits, polls and stops.

Every long job (a Train or Transfer run, gradient ascent, Score-CAM, SmoothGrad,
background removal over a folder, a scan of a big folder) runs outside the page
server, on Ray: a local instance that the app starts the first time it needs
one, or the cluster at ``$RAY_ADDRESS``. The page server never imports Ray. It
talks to a small side process (:mod:`cvcore.jobgate`), which is the Ray driver:
when the Ray head goes away the side process ends, and :class:`JobClient`
starts a new one on the next call, so the page server itself never goes down
with Ray.

One named, detached Ray actor (:mod:`cvcore.jobqueue`) holds the queue for
every page server: first in, first out; at most ``$CVCORE_JOBS_PER_USER``
queued or running jobs per owner (a workspace), of which one runs at a time; at
most ``$CVCORE_MAX_JOBS`` running at once. It starts
each job as a Ray task with its resource requests (one CPU, a fraction of a GPU
where the cluster has GPUs, its memory), watches its wall-clock limit, and
cancels by force a job that does not stop within the grace period.

A job is a *target*, the dotted name of a function (``"cvcore.runs:train_job"``),
and its JSON-able *config*; the worker calls ``fn(ctx, **config)``. What the
job makes lands in the user's workspace on disk (the config names it with
:meth:`cvcore.workspace.Workspace.ref`); what it returns is small JSON.
``ctx`` (:class:`JobContext`) reports progress and hears a stop.

Statuses: ``"queued"`` -> ``"running"`` -> ``"done"``, ``"stopped"`` or
``"failed"`` (its ``error`` says why in plain words: it raised, went over its
memory cap or wall-clock limit, or lost its worker process).

Settings (environment variables of the page server):

* ``RAY_ADDRESS``: a cluster to join (with ``RAY_AUTH_TOKEN`` when it asks for one);
  unset: a local instance, started on first need.
* ``CVCORE_MAX_JOBS``: jobs running at once across the server (default 2); the
  rest wait in the queue.
* ``CVCORE_JOBS_PER_USER``: jobs one workspace may have queued or running at
  once (default 1: a second waits for nothing, it is refused); they run one at
  a time, in order.
* ``CVCORE_JOB_MEMORY_MB``: each job's memory cap (default 4096); a job over it
  is killed and its run marked "out of memory".
* ``CVCORE_JOB_WALL_S``: each job's wall-clock limit (default 7200 s).
* ``CVCORE_JOB_STOP_GRACE_S``: how long a stopped job may take before it is
  cancelled by force (default 10 s).
* ``CVCORE_GPU_<KIND>``: the fraction of a GPU a kind of job asks for where the
  cluster has GPUs (:data:`GPU_FRACTIONS`).
* ``CVCORE_JOB_NICE``: how much lower the workers' CPU priority is than the
  page server's (default 10).
* ``CVCORE_JOB_CPUS``: the CPUs each job asks Ray for, and the threads its
  TensorFlow computes with (default 0: where the app starts Ray itself, the
  machine's cores shared among ``CVCORE_MAX_JOBS`` jobs, at least one; on a
  cluster, one). Threads beyond a job's share wait on one another and on the
  rest of the machine: on 2 cores, the basic net's fast epoch of 60,000 images
  in a worker went from 5.2 s (every core) to 3.3 s (one thread), and even in
  a process of its own one thread beat two (1.05-1.09 s against 1.19-1.45 s
  an epoch of 20,000 images).
"""
from __future__ import annotations

import atexit
import importlib
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Client
from pathlib import Path

from .errors import CvcoreError

__all__ = [
    "STATUSES", "ACTIVE_STATUSES", "FINISHED_STATUSES", "KINDS", "GPU_FRACTIONS", "DEFAULT_MAX_JOBS",
    "JobBusyError", "JobServiceError", "JobContext", "LocalContext", "Job", "JobClient", "JobSettings",
    "cpus_per_job", "default_manager", "resolve", "run_inline",
]

STATUSES = ("queued", "running", "done", "stopped", "failed")
ACTIVE_STATUSES = ("queued", "running")
FINISHED_STATUSES = ("done", "stopped", "failed")
KINDS = ("train", "transfer", "visualize", "background", "scan", "probe")
# A GPU's share each kind asks for where the cluster has GPUs: several students share one card.
GPU_FRACTIONS = {"train": 0.25, "transfer": 0.5, "visualize": 0.25, "background": 0.0, "scan": 0.0, "probe": 0.0}
DEFAULT_MAX_JOBS = 2
DEFAULT_JOBS_PER_USER = 1
DEFAULT_MEMORY_MB = 4096
DEFAULT_WALL_S = 7200.0
DEFAULT_STOP_GRACE_S = 10.0
DEFAULT_NICE = 10
DEFAULT_JOB_CPUS = 0  # 0: see cpus_per_job
CALL_TIMEOUT_S = 20.0  # one request to the side process
STATUS_TTL_S = 1.0  # every page's sidebar asks: one answer serves every session for a second
STATUS_STALE_S = 5.0  # an answer older than this is not shown while a fresh one is fetched: it is fetched first
START_TIMEOUT_S = 60.0  # the side process listening (Ray itself may take longer: it says so)


def cpus_per_job(cpus: int, max_running: int, local: bool, machine_cpus: int | None = None) -> int:
    """The CPUs each job asks Ray for (and the threads its TensorFlow uses).

    Args:
        cpus: the setting (``CVCORE_JOB_CPUS``); 0 chooses.
        max_running: jobs running at once.
        local: whether the app starts Ray itself on this machine.
        machine_cpus: this machine's cores (default ``os.cpu_count()``).

    Returns:
        ``cpus`` when it is set; else this machine's cores shared among ``max_running`` jobs (at least one)
        for a local Ray, and one on a cluster (whose nodes' sizes the page server does not know).

    Example:
        >>> cpus_per_job(0, 2, local=True, machine_cpus=2), cpus_per_job(0, 2, local=True, machine_cpus=16)
        (1, 8)
        >>> cpus_per_job(0, 2, local=False), cpus_per_job(4, 2, local=False)
        (1, 4)
    """
    if cpus > 0:
        return int(cpus)
    if not local:
        return 1
    return max(1, int(machine_cpus or os.cpu_count() or 1) // max(1, int(max_running)))


class JobBusyError(CvcoreError):
    """The owner already has a queued or running job; ``.job`` is that :class:`Job`."""

    def __init__(self, message, job):
        super().__init__(message)
        self.job = job


class JobServiceError(CvcoreError):
    """The job service (Ray) cannot be reached now, or cannot run jobs; the message says why."""


def _env_number(name: str, default, kind=float, minimum=None):
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or (minimum is not None and value < minimum):
        raise CvcoreError(f"The environment variable {name} must be a number of at least {minimum}; received {raw!r}.")
    return value


@dataclass(frozen=True)
class JobSettings:
    """The limits every job of this server gets (from the environment, see the module's doc).

    Attributes:
        max_running: jobs running at once across the server.
        per_user: jobs one owner may have queued or running at once (one of them runs at a time).
        memory_mb: each job's memory cap.
        wall_s: each job's wall-clock limit.
        stop_grace_s: how long a stopped job may take before it is cancelled by force.
        gpu: the GPU fraction per kind.
        nice: how much lower the workers' CPU priority is (0: not lowered; above 0, on Linux, the jobs'
            threads also take the SCHED_IDLE policy).
        cpus: the CPUs each job asks for, its TensorFlow's threads (0: see :func:`cpus_per_job`).

    Example:
        >>> JobSettings.from_env().max_running >= 1
        True
    """

    max_running: int = DEFAULT_MAX_JOBS
    per_user: int = DEFAULT_JOBS_PER_USER
    memory_mb: float = DEFAULT_MEMORY_MB
    wall_s: float = DEFAULT_WALL_S
    stop_grace_s: float = DEFAULT_STOP_GRACE_S
    gpu: dict = field(default_factory=lambda: dict(GPU_FRACTIONS))
    nice: int = DEFAULT_NICE
    cpus: int = DEFAULT_JOB_CPUS

    @classmethod
    def from_env(cls) -> "JobSettings":
        """Read the ``CVCORE_*`` variables.

        Raises:
            CvcoreError: naming a variable whose value is not a valid number.
        """
        gpu = {}
        for kind, default in GPU_FRACTIONS.items():
            value = _env_number(f"CVCORE_GPU_{kind.upper()}", default, float, 0.0)
            if value > 1.0:
                raise CvcoreError(f"The environment variable CVCORE_GPU_{kind.upper()} is a fraction of one GPU "
                                  f"(0 to 1); received {value}.")
            gpu[kind] = value
        return cls(max_running=_env_number("CVCORE_MAX_JOBS", DEFAULT_MAX_JOBS, int, 1),
                   per_user=_env_number("CVCORE_JOBS_PER_USER", DEFAULT_JOBS_PER_USER, int, 1),
                   memory_mb=_env_number("CVCORE_JOB_MEMORY_MB", DEFAULT_MEMORY_MB, float, 64),
                   wall_s=_env_number("CVCORE_JOB_WALL_S", DEFAULT_WALL_S, float, 1),
                   stop_grace_s=_env_number("CVCORE_JOB_STOP_GRACE_S", DEFAULT_STOP_GRACE_S, float, 0),
                   gpu=gpu, nice=_env_number("CVCORE_JOB_NICE", DEFAULT_NICE, int, 0),
                   cpus=_env_number("CVCORE_JOB_CPUS", DEFAULT_JOB_CPUS, int, 0))


class JobContext:
    """What a job's function receives as ``ctx``: report progress, hear a stop.

    A job function reads ``fn(ctx, **config)``. It calls ``ctx.report(dict)``
    with its progress (the page shows the latest) and checks ``ctx.should_stop()``
    often (once a batch), returning early when it is true. When it has made a
    run in a workspace it says so with ``ctx.attach_run(workspace, run_id)``, so
    that a job killed from outside (memory cap, wall-clock limit, a lost worker)
    still has its run marked failed. The worker's context
    (:mod:`cvcore.jobqueue`) and :class:`LocalContext` implement it.
    """

    job_id: str = ""

    def report(self, progress: dict) -> None:  # pragma: no cover - an interface
        raise NotImplementedError

    def should_stop(self) -> bool:  # pragma: no cover - an interface
        raise NotImplementedError

    def attach_run(self, workspace, run_id: str) -> None:
        """Say which run this job writes (the default keeps nothing)."""


class LocalContext(JobContext):
    """A :class:`JobContext` for running a job function in this process (tests, scripts, docs).

    Args:
        stop_after: report calls after which :meth:`should_stop` turns true (None: never).

    Example:
        >>> ctx = LocalContext()
        >>> ctx.report({"done": 1, "total": 3}); ctx.progress, ctx.should_stop()
        ({'done': 1, 'total': 3}, False)
    """

    def __init__(self, stop_after: int | None = None):
        self.job_id = "local"
        self.progress: dict = {}
        self.reports = 0
        self.run = None
        self._stop_after = stop_after
        self._stop = threading.Event()

    def report(self, progress: dict) -> None:
        if not isinstance(progress, dict):
            raise CvcoreError(f"`progress` must be a dict; received {type(progress).__name__}.")
        self.progress = dict(progress)
        self.reports += 1
        if self._stop_after is not None and self.reports >= self._stop_after:
            self._stop.set()

    def should_stop(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        """Make :meth:`should_stop` true."""
        self._stop.set()

    def attach_run(self, workspace, run_id: str) -> None:
        self.run = (workspace, run_id)


def resolve(target: str):
    """The function a target names: ``"package.module:function"``.

    Only functions in cvcore are jobs: a target is never code from a user.

    Raises:
        CvcoreError: when ``target`` is malformed, outside cvcore, or names nothing callable.

    Example:
        >>> resolve("cvcore.job_probes:probe").__name__
        'probe'
    """
    if not isinstance(target, str) or target.count(":") != 1:
        raise CvcoreError(f"A job target reads 'module:function'; received {target!r}.")
    module, name = target.split(":")
    if module != "cvcore" and not module.startswith("cvcore."):
        raise CvcoreError(f"A job target must be a function of cvcore; received {target!r}.")
    fn = getattr(importlib.import_module(module), name, None)
    if not callable(fn):
        raise CvcoreError(f"The job target {target!r} names nothing callable.")
    return fn


def _check_config(config) -> dict:
    if not isinstance(config, dict):
        raise CvcoreError(f"A job's `config` must be a dict; received {type(config).__name__}.")
    try:
        json.dumps(config)
    except (TypeError, ValueError) as err:
        raise CvcoreError(f"A job's `config` must be JSON-able (names and numbers, and files by path); {err}.") from None
    return config


def run_inline(target: str, config: dict, ctx: JobContext | None = None):
    """Run a job's function in this process, as a worker would (for tests and scripts).

    Args:
        target: as for :func:`resolve`.
        config: the job's JSON-able keyword arguments.
        ctx: a :class:`JobContext`; a fresh :class:`LocalContext` by default.

    Returns:
        What the function returns.

    Example:
        >>> run_inline("cvcore.job_probes:count", {"steps": 3})
        3
    """
    return resolve(target)(ctx if ctx is not None else LocalContext(), **_check_config(config))


@dataclass
class Job:
    """A job as the queue saw it at one moment; ask the client again for news.

    Attributes:
        id, owner, name, kind: who submitted what.
        status: one of :data:`STATUSES`.
        progress: the latest dict the job reported.
        error: why it failed, in plain words (None otherwise).
        result: what the function returned (small JSON), once done or stopped.
        position: 1 for the next job to start, 2 for the one after...; None unless queued.
        stop_requested: whether Stop was pressed.
        waiting: what it waits for: queued behind its own workspace's running job, or running with no progress yet
            (a worker starting, TensorFlow loading).
        created, started, finished: ``time.time()`` stamps (None until then).
        node: the Ray node it ran on.
        usage: while running, what the job itself last measured: ``memory_mb`` (its memory above the
            worker's own) and ``cpu_s`` (its CPU time so far); every 2 s.
    """

    id: str
    owner: str
    name: str
    kind: str
    status: str
    progress: dict = field(default_factory=dict)
    error: str | None = None
    result: object = None
    position: int | None = None
    stop_requested: bool = False
    waiting: str | None = None
    created: float | None = None
    started: float | None = None
    finished: float | None = None
    node: str | None = None
    usage: dict = field(default_factory=dict)
    _client: "JobClient | None" = field(default=None, repr=False, compare=False)

    @classmethod
    def from_dict(cls, d: dict, client=None) -> "Job":
        names = {f for f in cls.__dataclass_fields__ if not f.startswith("_")}
        return cls(**{k: v for k, v in d.items() if k in names}, _client=client)

    @property
    def active(self) -> bool:
        """True while queued or running."""
        return self.status in ACTIVE_STATUSES

    @property
    def elapsed(self) -> float:
        """Seconds it has run (0 while queued)."""
        if self.started is None:
            return 0.0
        return (self.finished or time.time()) - self.started

    def queue_position(self):
        """1 for the next job to start...; None when not queued."""
        return self.position

    def stop(self) -> None:
        """Ask the job to stop (see :meth:`JobClient.stop`)."""
        if self._client is not None:
            self._client.stop(self.id)
        self.stop_requested = True

    def wait(self, timeout: float | None = None, poll: float = 0.2) -> "Job":
        """Poll until the job has ended or ``timeout`` seconds pass; returns the latest news."""
        deadline = None if timeout is None else time.monotonic() + timeout
        job = self
        while job.active and (deadline is None or time.monotonic() < deadline):
            time.sleep(poll)
            job = self._client.get(self.id) or job
        return job


class JobClient:
    """The page server's handle on the job service: a supervised side process that drives Ray.

    Every call is a short request to the side process (:mod:`cvcore.jobgate`).
    When that process has gone (Ray's head was lost), the next call starts a
    new one, and until it is back calls raise :class:`JobServiceError` (or, for
    :meth:`get` and :meth:`active_job`, answer None), so a page keeps serving.

    Args:
        address: a Ray cluster's address; ``$RAY_ADDRESS`` by default; ``"local"`` (or unset) for a local
            instance started on first need.
        settings: :class:`JobSettings`; from the environment by default.
        log_dir: where the side process writes its log.
        namespace: the Ray namespace of the queue; ``$CVCORE_RAY_NAMESPACE`` or ``"convnet-explorer"``.

    Example (needs Ray, so not run here)::

        client = JobClient()
        job = client.submit("workspace-id", "cvcore.job_probes:count", {"steps": 3}, name="count", kind="probe")
        client.get(job.id).wait(30).result   # 3
    """

    def __init__(self, address: str | None = None, *, settings: JobSettings | None = None, log_dir=None,
                 namespace: str | None = None):
        address = address if address is not None else os.environ.get("RAY_ADDRESS")
        self.address = None if address in (None, "", "local") else address
        self.namespace = namespace
        self.settings = settings or JobSettings.from_env()
        self.log_dir = Path(log_dir) if log_dir else _default_log_dir()
        self._key = secrets.token_bytes(32)
        self._proc = None
        self._port = None
        self._lock = threading.Lock()
        self._local = threading.local()
        self._generation = 0
        self._last_start = 0.0
        self._closed = False
        self._status = None
        self._refreshing = False
        # Jobs seen ended, and when the last was: a status asked before then has stale queue counts.
        self._ended: set[str] = set()
        self._ended_at = 0.0
        # Jobs this client submitted and last saw queued: {id: (spec, generation of the side process)}. The
        # queue lives in Ray; when Ray is lost they are lost with it, and are submitted again once it is back.
        self._queued: dict[str, tuple[dict, int]] = {}
        atexit.register(self.close)

    # -- the side process
    def start(self) -> None:
        """Start the side process now, if it is not running (returns at once; Ray starts behind it)."""
        with self._lock:
            self._ensure_process(wait=False)

    def _ensure_process(self, wait: bool) -> None:  # lock held
        if self._closed:
            raise JobServiceError("The job service was shut down.")
        if self._proc is not None and self._proc.poll() is None:
            if self._port is None and wait:
                self._read_port()
            return
        if self._proc is not None:  # it ended: Ray was lost, or it crashed; start again, not in a tight loop
            if time.monotonic() - self._last_start < 2.0:
                raise JobServiceError("The job service is restarting after losing Ray; try again in a few seconds.")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env["CVCORE_JOBGATE_KEY"] = self._key.hex()
        env["CVCORE_JOBGATE_SETTINGS"] = json.dumps(self.settings.__dict__)
        if self.namespace:
            env["CVCORE_RAY_NAMESPACE"] = self.namespace
        if self.address:
            env["RAY_ADDRESS"] = self.address
        else:
            env.pop("RAY_ADDRESS", None)
        env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")])
        log = open(self.log_dir / "jobgate.log", "ab")
        # Its working folder is not the checkout: Ray puts the driver's on the workers' path, and a worker on
        # another node must import the cvcore shipped with the jobs, not find this machine's by accident.
        self._proc = subprocess.Popen([sys.executable, "-m", "cvcore.jobgate"], env=env, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=log, start_new_session=True, cwd=self.log_dir)
        log.close()
        self._port = None
        self._generation += 1
        self._last_start = time.monotonic()
        if wait:
            self._read_port()

    def _read_port(self) -> None:  # lock held
        proc, box = self._proc, {}

        def read():
            box["line"] = proc.stdout.readline().decode(errors="replace").strip()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(START_TIMEOUT_S)
        line = box.get("line", "")
        if not line.startswith("PORT "):
            raise JobServiceError(f"The job service did not start (see {self.log_dir / 'jobgate.log'}).")
        self._port = int(line.split()[1])

    def _connection(self):
        with self._lock:
            self._ensure_process(wait=True)
            generation, port = self._generation, self._port
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "generation", None) == generation:
            return conn
        if conn is not None:
            conn.close()
        try:
            conn = Client(("127.0.0.1", port), authkey=self._key)
        except OSError as err:
            raise JobServiceError(f"The job service is not answering ({err}); try again in a few seconds.") from None
        self._local.conn, self._local.generation = conn, generation
        return conn

    def _call(self, method: str, timeout: float = CALL_TIMEOUT_S, **kwargs):
        conn = self._connection()
        try:
            conn.send((method, kwargs))
            if not conn.poll(timeout):
                raise TimeoutError(f"no answer within {timeout:.0f} s")
            answer = conn.recv()
        except (OSError, EOFError, TimeoutError) as err:
            self._local.conn = None
            conn.close()
            raise JobServiceError(f"The job service is not answering ({err}); try again in a few seconds.") from None
        if answer[0] == "ok":
            return answer[1]
        _, kind, message, extra = answer
        if kind == "busy":
            raise JobBusyError(message, Job.from_dict(extra, self))
        if kind == "invalid":
            raise CvcoreError(message)
        raise JobServiceError(message)

    # -- what pages call
    def submit(self, owner: str, target: str, config: dict, *, name: str, kind: str) -> Job:
        """Queue ``target(ctx, **config)`` for ``owner``; it starts as soon as a slot is free.

        Args:
            owner: whose job (a workspace id): at most ``settings.per_user`` queued or running per owner.
            target: a cvcore function, ``"cvcore.module:function"`` (see :func:`resolve`).
            config: its keyword arguments, JSON-able.
            name: a label for people.
            kind: one of :data:`KINDS`: decides its GPU fraction.

        Returns:
            The new :class:`Job` (queued or running).

        Raises:
            JobBusyError: when ``owner`` already has ``settings.per_user`` active jobs (``err.job``: the newest).
            JobServiceError: when Ray cannot be reached or cannot run it (the message says why).
            CvcoreError: for a bad argument, named.
        """
        if not isinstance(owner, str) or not owner:
            raise CvcoreError(f"`owner` must be a non-empty string; received {owner!r}.")
        if kind not in KINDS:
            raise CvcoreError(f"`kind` must be one of {', '.join(KINDS)}; received {kind!r}.")
        if not isinstance(name, str):
            raise CvcoreError(f"`name` must be a string; received {name!r}.")
        resolve(target)  # fails here, not in a worker
        spec = {"owner": owner, "target": target, "config": _check_config(config), "name": name, "kind": kind,
                "memory_mb": self.settings.memory_mb, "wall_s": self.settings.wall_s,
                "stop_grace_s": self.settings.stop_grace_s, "gpu": self.settings.gpu.get(kind, 0.0),
                "nice": self.settings.nice, "per_user": self.settings.per_user,
                "cpus": cpus_per_job(self.settings.cpus, self.settings.max_running, local=self.address is None)}
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:  # a cold start: Ray may still be starting behind the side process
            try:
                generation = self._generation
                job = self._seen(Job.from_dict(self._call("submit", spec=spec), self))
                if job.status == "queued":
                    with self._lock:
                        self._queued[job.id] = ({**spec, "id": job.id}, generation)
                return job
            except JobServiceError as err:
                if "starting" not in str(err) or time.monotonic() > deadline:
                    raise
            time.sleep(0.25)

    def _seen(self, job):
        """Note a job's news: one no longer queued is no longer ours to submit again; one newly seen ended
        changes the queue's counts, so the next :meth:`status` asks anew rather than answer from before."""
        if job is not None and job.status != "queued":
            with self._lock:
                self._queued.pop(job.id, None)
                if job.status in FINISHED_STATUSES and job.id not in self._ended:
                    if len(self._ended) > 10_000:
                        self._ended.clear()
                    self._ended.add(job.id)
                    self._ended_at = time.monotonic()
        return job

    def _resubmit_lost(self) -> None:
        """Submit again, with their ids, the queued jobs that a lost Ray took with it (the side process has been
        started anew since). Quietly later if the service is not ready yet."""
        with self._lock:
            lost = {i: spec for i, (spec, gen) in self._queued.items() if gen != self._generation}
        for job_id, spec in lost.items():
            try:
                job = Job.from_dict(self._call("submit", spec=spec), self)
            except JobBusyError:  # its owner started another job meanwhile: that one counts
                job = None
            except JobServiceError:
                return
            with self._lock:
                if job is not None and job.status == "queued":
                    self._queued[job_id] = (spec, self._generation)
                else:
                    self._queued.pop(job_id, None)

    def _waiting_for_ray(self, job_id):
        """A job of ours that was queued when Ray was lost: still queued, as far as its page knows."""
        with self._lock:
            entry = self._queued.get(job_id)
        if entry is None:
            return None
        spec = entry[0]
        return Job(id=job_id, owner=spec["owner"], name=spec["name"], kind=spec["kind"], status="queued",
                   waiting="Ray is restarting: this job is submitted again as soon as it is back.", _client=self)

    def get(self, job_id):
        """The job's latest news, or None (unknown id, or the service unreachable now). A job this client
        submitted that was waiting in the queue when Ray was lost reads as queued, and is submitted again."""
        self._resubmit_lost()
        try:
            found = self._call("get", job_id=job_id)
        except JobServiceError:
            return self._waiting_for_ray(job_id)
        return self._seen(Job.from_dict(found, self)) if found else self._waiting_for_ray(job_id)

    def active_jobs(self, owner: str) -> list:
        """``owner``'s queued and running jobs, oldest first (empty also when the service is unreachable now;
        then the jobs this client submitted that were waiting when Ray was lost)."""
        self._resubmit_lost()
        try:
            found = self._call("active", owner=owner)
        except JobServiceError:
            found = None
        if isinstance(found, dict):  # a queue actor of the previous code, kept while it holds jobs: one job
            found = [found]
        if found:
            return [self._seen(Job.from_dict(d, self)) for d in found]
        with self._lock:
            mine = [i for i, (spec, _) in self._queued.items() if spec["owner"] == owner]
        return [job for job in map(self._waiting_for_ray, mine) if job is not None]

    def active_job(self, owner: str):
        """``owner``'s newest queued or running job, or None (see :meth:`active_jobs`)."""
        found = self.active_jobs(owner)
        return found[-1] if found else None

    def has_room(self, owner: str, active=None) -> bool:
        """Whether ``owner`` may submit another job now (fewer than ``settings.per_user`` active; ``active``:
        :meth:`active_jobs`' answer when the caller has it)."""
        return len(self.active_jobs(owner) if active is None else active) < self.settings.per_user

    def jobs(self, owner: str | None = None) -> list:
        """The jobs the queue remembers, oldest first; only ``owner``'s when given.

        Raises:
            JobServiceError: when the service is unreachable.
        """
        return [self._seen(Job.from_dict(d, self)) for d in self._call("list", owner=owner)]

    def stop(self, job_id: str) -> None:
        """Ask a job to stop: a queued one never starts; a running one stops at its next check (a batch),
        and is cancelled by force after the grace period. Stopping a finished job does nothing.

        Raises:
            JobServiceError: when the service is unreachable.
        """
        with self._lock:
            self._queued.pop(job_id, None)
        self._call("stop", job_id=job_id)

    def status(self) -> dict:
        """The service as it stands: ``state`` ("starting", "ready" or "failed"), ``message`` (what it waits
        for, or what is wrong), Ray's address and version, the cluster's resources, and the queue's counts.
        Never raises: an unreachable service is ``state="unreachable"``.

        Every page's sidebar asks, so it never waits once there is an answer: an answer older than a second
        is returned as it is while one thread asks the service anew behind it. The call waits for a fresh
        answer only when there is none younger than ``STATUS_STALE_S`` (a quiet server: another page server's
        jobs may have ended meanwhile), or none since a job was seen ending (the page that shows the end shows
        the counts after it)."""
        cached = self._status
        if cached is None or cached[0] < self._ended_at or time.monotonic() - cached[0] >= STATUS_STALE_S:
            return self._refresh_status()
        if time.monotonic() - cached[0] >= STATUS_TTL_S:
            with self._lock:
                start, self._refreshing = not self._refreshing, True
            if start:
                threading.Thread(target=self._refresh_status, name="job-status", daemon=True).start()
        return cached[1]

    def _refresh_status(self) -> dict:
        now = time.monotonic()
        try:
            try:
                status = self._call("status", timeout=5)
            except JobServiceError as err:
                status = {"state": "unreachable", "message": str(err)}
            self._status = (now, status)
        finally:
            self._refreshing = False
        if status.get("state") == "ready" and self._queued:  # every page's sidebar asks: Ray is back
            self._resubmit_lost()
        return status

    def close(self) -> None:
        """End the side process (and a local Ray it started)."""
        self._closed = True
        proc = self._proc
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, 15)
                proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                try:
                    os.killpg(proc.pid, 9)
                except OSError:
                    pass

    @property
    def process(self):
        """The side process (a :class:`subprocess.Popen`), or None before the first call."""
        return self._proc


def _default_log_dir() -> Path:
    from .workspace import state_dir

    return state_dir() / "logs"


_default = None
_default_lock = threading.Lock()


def default_manager() -> JobClient:
    """The server-wide :class:`JobClient`, created (and its side process started) on first use.

    Returns:
        The same client on every call, in every thread.

    Raises:
        CvcoreError: when a ``CVCORE_*`` job setting is not a valid number.
    """
    global _default
    with _default_lock:
        if _default is None:
            _default = JobClient()
            _default.start()
        return _default
