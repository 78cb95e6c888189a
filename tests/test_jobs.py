"""cvcore.jobs: queueing, the server-wide bound, per-session limit, stop, failure."""
import threading
import time

import pytest

from apptest_helpers import wait_until
from cvcore import jobs
from cvcore.errors import CvcoreError
from cvcore.jobs import JobBusyError, JobManager

WAIT = 10  # seconds; generous for a busy 2-core machine


def _until(predicate, what, timeout=WAIT):
    """Wait on the condition itself; fail saying what did not happen."""
    return wait_until(predicate, timeout=timeout, what=what, interval=0.005)


def _gated():
    """A job function that runs until its gate opens, or until it is asked to stop."""
    gate = threading.Event()

    def fn(ctx):
        while not gate.is_set():
            if ctx.should_stop():
                return "stopped early"
            time.sleep(0.002)
        return "finished"

    return gate, fn


@pytest.fixture
def manager():
    m = JobManager(max_running=2)
    yield m
    m.stop_all(wait=WAIT)


def test_runs_and_returns(manager):
    job = manager.submit("s1", lambda ctx: 6 * 7, name="answer")
    assert job.wait(WAIT)
    assert job.status == "done" and job.result == 42 and job.error is None
    assert job.name == "answer" and job.session_id == "s1" and job.queue_position() is None
    assert job.finished >= job.started >= job.created


def test_progress_is_the_latest_report(manager):
    gate = threading.Event()

    def fn(ctx):
        for step in range(1, 4):
            ctx.report({"step": step, "steps": 3})
        gate.wait(WAIT)
        return "ok"

    job = manager.submit("s1", fn)
    _until(lambda: job.progress.get("step") == 3, "the job's report of step 3")
    copy = job.progress
    copy["step"] = 99
    assert job.progress == {"step": 3, "steps": 3}  # a copy each time
    gate.set()
    assert job.wait(WAIT) and job.status == "done"


def test_bound_and_fifo_queue(manager):
    gates, started = [], []
    submitted = []
    for i in range(5):
        gate, fn = _gated()

        def wrapped(ctx, fn=fn, i=i):
            started.append(i)
            return fn(ctx)

        gates.append(gate)
        submitted.append(manager.submit(f"s{i}", wrapped, name=f"job{i}"))
    _until(lambda: len(started) == 2, "two jobs started")
    # The manager starts jobs under its lock as they are submitted: what it counts now is final
    # until a job ends (none can: every gate is closed).
    assert manager.running_count == 2 and manager.queued_count == 3
    assert [j.status for j in submitted] == ["running", "running", "queued", "queued", "queued"]
    assert [j.queue_position() for j in submitted] == [None, None, 1, 2, 3]
    gates[1].set()  # the second finishes: the third starts, the others move up
    assert submitted[1].wait(WAIT)
    _until(lambda: submitted[2].status == "running", "the third job running once the second ended")
    assert [j.queue_position() for j in submitted[3:]] == [1, 2]
    assert manager.running_count == 2
    for gate in gates:
        gate.set()
    assert all(j.wait(WAIT) for j in submitted)
    assert started == [0, 1, 2, 3, 4]  # first in, first out
    assert all(j.status == "done" for j in submitted)


def test_one_active_job_per_session(manager):
    gate, fn = _gated()
    first = manager.submit("tab", fn, name="training")
    with pytest.raises(JobBusyError) as info:
        manager.submit("tab", lambda ctx: None)
    assert info.value.job is first and "training" in str(info.value)
    assert isinstance(info.value, CvcoreError)
    assert manager.active_job("tab") is first
    other = manager.submit("another tab", lambda ctx: "fine")  # other sessions are not blocked
    assert other.wait(WAIT) and other.result == "fine"
    gate.set()
    assert first.wait(WAIT)
    assert manager.active_job("tab") is None
    second = manager.submit("tab", lambda ctx: "again")
    assert second.wait(WAIT) and second.result == "again"
    assert manager.jobs("tab") == [first, second]


def test_stop_a_running_job(manager):
    gate, fn = _gated()
    job = manager.submit("s1", fn)
    _until(lambda: job.status == "running", "the job running")
    job.stop()
    assert job.stop_requested
    assert job.wait(WAIT)
    assert job.status == "stopped" and job.result == "stopped early"  # what it returned is kept


def test_stop_a_queued_job_never_runs_it():
    manager = JobManager(max_running=1)
    gate, fn = _gated()
    ran = []
    first = manager.submit("a", fn)
    queued = manager.submit("b", lambda ctx: ran.append(1))
    assert queued.status == "queued" and queued.queue_position() == 1
    queued.stop()
    assert queued.status == "stopped" and queued.wait(0) and queued.queue_position() is None
    assert manager.queued_count == 0
    gate.set()
    assert first.wait(WAIT)
    # One job at a time, first in first out: had the stopped job stayed queued, it would run before
    # this one; once this one has run, it is certain the stopped one never did.
    assert manager.submit("c", lambda ctx: "after").wait(WAIT)
    assert ran == []
    assert manager.submit("b", lambda ctx: "new").wait(WAIT)  # the session is free again


def test_failure_is_stored_not_raised(manager):
    def boom(ctx):
        ctx.report({"step": 1})
        raise RuntimeError("out of cheese")

    job = manager.submit("s1", boom)
    assert job.wait(WAIT)
    assert job.status == "failed" and job.error == "RuntimeError: out of cheese"
    assert job.result is None and "out of cheese" in job.traceback
    assert job.progress == {"step": 1}

    def bad_input(ctx):
        raise CvcoreError("Layer 2 (Dense): `units` must be a positive integer; received 0.")

    job = manager.submit("s1", bad_input)
    assert job.wait(WAIT) and job.error.startswith("Layer 2 (Dense)")  # cvcore messages stay as written
    # A failed job frees its slot.
    assert manager.submit("s1", lambda ctx: "next").wait(WAIT)


def test_bad_arguments():
    with pytest.raises(CvcoreError, match="`max_running`"):
        JobManager(max_running=0)
    manager = JobManager()
    with pytest.raises(CvcoreError, match="`fn`"):
        manager.submit("s", "not callable")
    with pytest.raises(CvcoreError, match="`session_id`"):
        manager.submit(["unhashable"], lambda ctx: None)

    def reports_a_list(ctx):
        ctx.report([1, 2])

    job = manager.submit("s", reports_a_list)
    assert job.wait(WAIT) and job.status == "failed" and "`progress`" in job.error


def test_wait_times_out(manager):
    gate, fn = _gated()
    job = manager.submit("s", fn)
    assert job.wait(0.05) is False and job.active
    gate.set()
    assert job.wait(WAIT) and not job.active


def test_default_manager(monkeypatch):
    monkeypatch.setattr(jobs, "_default", None)
    monkeypatch.setenv("CVCORE_MAX_JOBS", "3")
    manager = jobs.default_manager()
    assert manager.max_running == 3 and jobs.default_manager() is manager
    monkeypatch.setattr(jobs, "_default", None)
    monkeypatch.delenv("CVCORE_MAX_JOBS")
    assert jobs.default_manager().max_running == 2
    monkeypatch.setattr(jobs, "_default", None)
    monkeypatch.setenv("CVCORE_MAX_JOBS", "many")
    with pytest.raises(CvcoreError, match="'many'"):
        jobs.default_manager()


def test_concurrent_submits_respect_the_bound():
    manager = JobManager(max_running=2)
    peak, lock, current = [0], threading.Lock(), [0]

    def fn(ctx):
        with lock:
            current[0] += 1
            peak[0] = max(peak[0], current[0])
        time.sleep(0.01)
        with lock:
            current[0] -= 1

    submitted = []

    def submit(i):
        submitted.append(manager.submit(f"s{i}", fn))

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(j.wait(WAIT) for j in submitted)
    assert len(submitted) == 20 and peak[0] <= 2
    assert all(j.status == "done" for j in submitted)


def test_training_job_end_to_end():
    """A training run inside a job: progress arrives, a stop ends it within a batch."""
    pytest.importorskip("tensorflow")
    import numpy as np

    from cvcore.models import PRESETS, build_model
    from cvcore.training import train

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (256, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, 256)
    model = build_model(PRESETS["Basic CNN (6 and 12 filters)"])
    manager = JobManager(max_running=1)

    def fn(ctx):
        return train(model, ((x, y), (None, None)), epochs=1000, batch_size=8,
                     on_progress=ctx.report, should_stop=ctx.should_stop, progress_interval=0)

    job = manager.submit("s", fn, name="train")
    _until(lambda: job.progress.get("steps_run", 0) >= 3, "three training steps reported", timeout=60)
    job.stop()
    assert job.wait(60)
    assert job.status == "stopped", job.error
    assert job.result["stopped"] is True
    assert job.result["steps_run"] == int(model.optimizer.iterations.numpy())
