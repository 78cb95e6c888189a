"""Jobs on Ray (cvcore.jobs, cvcore.jobqueue, cvcore.jobgate), against real Ray: the session's head (root
conftest) for most tests, a local instance the client starts itself for losing the head, and a two-node
cluster on this machine for placement on another node.

Each client here has a namespace of its own, hence a queue of its own, so these tests never wait behind
the pages' jobs (nor they behind these)."""
import os
import re
import secrets
import time

import psutil
import pytest

from apptest_helpers import wait_until
from cvcore import jobs
from cvcore.errors import CvcoreError
from cvcore.jobs import JobBusyError, JobClient, JobServiceError, JobSettings, cpus_per_job
from cvcore.workspace import Store, new_token


def client_for(max_running=2, address=None, **settings):
    """A client with its own queue on the session's Ray (or at ``address``)."""
    values = {"max_running": max_running, "memory_mb": 1024, "stop_grace_s": 2.0, **settings}
    client = JobClient(address, settings=JobSettings(**values), namespace=f"test-{secrets.token_hex(4)}")
    wait_ready(client)
    return client


def wait_ready(client, timeout=120):
    wait_until(lambda: client.status().get("state") == "ready", timeout=timeout, interval=0.2,
               what="the job service ready", details=lambda: client.status())


def ended(client, job, timeout=60):
    """The job's news once it has ended."""
    wait_until(lambda: not client.get(job.id).active, timeout=timeout, interval=0.1, what=f"{job.name}'s end",
               details=lambda: client.get(job.id))
    return client.get(job.id)


@pytest.fixture(scope="module")
def client():
    c = client_for(max_running=2)
    yield c
    c.close()


@pytest.fixture
def workspace(tmp_path):
    return Store(tmp_path / "store").anonymous(new_token())


def test_a_job_runs_in_a_ray_worker_and_returns_its_result(client):
    job = client.submit("owner-a", "cvcore.job_probes:count", {"steps": 3}, name="count", kind="probe")
    assert job.status in ("queued", "running") and job.owner == "owner-a"
    done = ended(client, job)
    assert done.status == "done" and done.result == 3 and done.error is None
    assert done.progress == {"done": 3, "total": 3} and done.node
    probe = ended(client, client.submit("owner-a", "cvcore.job_probes:probe", {}, name="probe", kind="probe"))
    assert probe.result["pid"] not in (os.getpid(), client.process.pid)  # not this process, not the side process
    # The job got its share of this machine's cores, and its TensorFlow computes with as many threads.
    share = cpus_per_job(0, 2, local=True)  # the client_for default: 2 running at once, a local Ray
    assert probe.result["cpus"] == share and probe.result["tensorflow_threads"] == str(share)
    # It yields the CPU to the pages: a lower priority, kept by the threads it starts (TensorFlow's pools).
    lowest = "idle" if hasattr(os, "SCHED_IDLE") else "normal"
    for priority in (probe.result["priority"], probe.result["started_thread_priority"]):
        assert priority["nice"] >= client.settings.nice > 0 and priority["policy"] == lowest


def test_the_status_after_a_job_was_seen_ending_counts_it_ended(client, monkeypatch):
    """The page that shows a job's end shows the queue's counts after it, not a cached answer from before."""
    job = client.submit("owner-s", "cvcore.job_probes:count", {"steps": 20, "delay": 0.1}, name="count", kind="probe")
    wait_until(lambda: client.get(job.id).status == "running", timeout=60, interval=0.1, what="the job running")
    wait_until(lambda: client.status()["queue"]["running"] >= 1, timeout=10, interval=0.1,
               what="the status counting it running")
    assert ended(client, job).status == "done"
    assert client.status()["queue"]["running"] == 0  # at once: not the second-old answer
    # Nor an answer gone stale on a quiet server (another page server's job may have ended meanwhile).
    monkeypatch.setattr(jobs, "STATUS_STALE_S", 0.0)
    _, fresh = client._status
    client._status = (time.monotonic(), {**fresh, "queue": {**fresh["queue"], "running": 5}})
    assert client.status()["queue"]["running"] == 0


def test_a_warm_worker_is_reused(client):
    """Quick start: workers stay, with what they imported; the second job's worker is the first's."""
    pids = {ended(client, client.submit("owner-w", "cvcore.job_probes:probe", {}, name="probe", kind="probe")).result["pid"]
            for _ in range(4)}
    assert len(pids) <= 2  # at most one worker per running slot, reused


def test_the_queue_is_first_in_first_out_with_one_job_per_owner():
    c = client_for(max_running=1)
    try:
        first = c.submit("a", "cvcore.job_probes:count", {"steps": 40, "delay": 0.05}, name="first", kind="probe")
        second = c.submit("b", "cvcore.job_probes:count", {"steps": 2}, name="second", kind="probe")
        third = c.submit("c", "cvcore.job_probes:count", {"steps": 2}, name="third", kind="probe")
        dropped = c.submit("d", "cvcore.job_probes:count", {"steps": 2}, name="dropped", kind="probe")
        assert [c.get(j.id).position for j in (second, third, dropped)] == [1, 2, 3]
        with pytest.raises(JobBusyError) as busy:  # the owner's job is still active: one at a time
            c.submit("a", "cvcore.job_probes:count", {}, name="again", kind="probe")
        assert busy.value.job.id == first.id and "first" in str(busy.value)
        c.stop(dropped.id)  # taken off the queue: it never runs
        assert c.get(dropped.id).status == "stopped" and c.get(third.id).position == 2
        ends = [ended(c, j) for j in (first, second, third)]
        assert [j.status for j in ends] == ["done"] * 3
        assert ends[0].finished <= ends[1].started <= ends[1].finished <= ends[2].started  # one at a time, in order
        assert c.get(dropped.id).started is None
        # The owner may submit again once its job has ended.
        assert ended(c, c.submit("a", "cvcore.job_probes:count", {"steps": 1}, name="later", kind="probe")).result == 1
    finally:
        c.close()


def test_a_user_may_queue_up_to_per_user_jobs_which_run_one_at_a_time_in_order():
    """CVCORE_JOBS_PER_USER: "a" may have 2 jobs queued or running, never 2 running at once (one workspace, one
    running job), a third is refused; another user's job goes past "a"'s waiting one when a slot is free."""
    c = client_for(max_running=2, per_user=2)
    try:
        a1 = c.submit("a", "cvcore.job_probes:count", {"steps": 30, "delay": 0.05}, name="a1", kind="probe")
        a2 = c.submit("a", "cvcore.job_probes:count", {"steps": 2}, name="a2", kind="probe")
        with pytest.raises(JobBusyError, match="2 jobs queued or running, the most this server allows per user"):
            c.submit("a", "cvcore.job_probes:count", {}, name="a3", kind="probe")
        waiting = c.get(a2.id)
        assert waiting.status == "queued" and "Waits for your other job (a1) to end" in waiting.waiting
        b1 = c.submit("b", "cvcore.job_probes:count", {"steps": 2}, name="b1", kind="probe")
        assert [j.id for j in c.active_jobs("a")] == [a1.id, a2.id] and c.active_job("a").id == a2.id
        assert not c.has_room("a") and c.has_room("b")
        ends = {j.name: ended(c, j) for j in (a1, a2, b1)}
        assert {j.status for j in ends.values()} == {"done"}
        assert ends["b1"].started < ends["a1"].finished  # the free slot went to b, past a's waiting job
        assert ends["a1"].finished <= ends["a2"].started  # a's jobs one at a time, in order
        assert c.has_room("a") and c.active_jobs("a") == []
    finally:
        c.close()


def test_stop_ends_a_running_job_at_its_next_check_within_three_seconds(client):
    job = client.submit("owner-s", "cvcore.job_probes:count", {"steps": 10_000, "delay": 0.02}, name="long",
                        kind="probe")
    wait_until(lambda: client.get(job.id).progress.get("done", 0) > 5, timeout=60, what="the job counting")
    asked = time.monotonic()
    client.get(job.id).stop()
    assert client.get(job.id).stop_requested
    done = ended(client, job)
    assert time.monotonic() - asked < 3.0
    assert done.status == "stopped" and 5 < done.result < 10_000


def test_a_job_that_ignores_stop_is_cancelled_after_the_grace_period(client):
    job = client.submit("owner-g", "cvcore.job_probes:sleep", {"seconds": 120}, name="deaf", kind="probe")
    wait_until(lambda: client.get(job.id).progress.get("phase") == "sleeping", timeout=60, what="the job sleeping")
    asked = time.monotonic()
    client.stop(job.id)
    done = ended(client, job, timeout=30)
    assert done.status == "stopped" and time.monotonic() - asked < 2.0 + 3.0  # the grace period is 2 s here


def test_the_wall_clock_limit_ends_a_job_with_a_plain_message():
    c = client_for(max_running=1, wall_s=2.0)
    try:
        done = ended(c, c.submit("o", "cvcore.job_probes:sleep", {"seconds": 120}, name="slow", kind="probe"),
                     timeout=30)
        assert done.status == "failed" and "wall-clock limit" in done.error and "CVCORE_JOB_WALL_S" in done.error
    finally:
        c.close()


def test_a_job_that_raises_fails_with_its_message_and_the_next_one_runs(client):
    done = ended(client, client.submit("owner-r", "cvcore.job_probes:fail", {"message": "bad on purpose"},
                                       name="raiser", kind="probe"))
    assert done.status == "failed" and done.error == "bad on purpose"
    assert ended(client, client.submit("owner-r", "cvcore.job_probes:count", {"steps": 2}, name="next",
                                       kind="probe")).result == 2


def test_a_job_that_kills_its_own_process_harms_no_one_else(client, workspace):
    other = client.submit("owner-x", "cvcore.job_probes:beating_run", {"workspace": workspace.ref(), "seconds": 120},
                          name="bystander", kind="probe")
    wait_until(lambda: client.get(other.id).progress.get("run"), timeout=60, what="the bystander running")
    crash = ended(client, client.submit("owner-y", "cvcore.job_probes:exit_process", {"code": 3}, name="crasher",
                                        kind="probe"))
    assert crash.status == "failed" and "worker process ended unexpectedly" in crash.error
    before = client.get(other.id).progress["left"]
    wait_until(lambda: client.get(other.id).progress["left"] < before - 0.5, timeout=20, what="the bystander going on")
    assert client.get(other.id).status == "running"
    client.stop(other.id)
    assert ended(client, other).status == "stopped"
    assert workspace.runs()[0].status == "stopped"


def test_a_job_over_its_memory_cap_is_killed_and_its_run_marked_out_of_memory(client, workspace):
    """The cap here is 1 GiB; the job wants 3 GiB."""
    done = ended(client, client.submit("owner-m", "cvcore.job_probes:hog_memory",
                                       {"mb": 3072, "workspace": workspace.ref()}, name="hog", kind="probe"), timeout=90)
    assert done.status == "failed" and done.error.startswith("Out of memory") and "cap of 1,024 MiB" in done.error
    # Killed soon after passing the cap: the watchdog's own measure (the job's RSS) lies between 1 and 2 GiB.
    # (The last progress report can lag the allocation by a few steps, so it is not the measure to check.)
    used = re.search(r"the job used ([\d,]+) MiB", done.error)
    assert used and 1024 < int(used.group(1).replace(",", "")) < 2048, done.error
    assert 0 < done.progress["held_mb"] < 2048
    (run,) = workspace.runs()
    assert run.status == "failed" and run.error.startswith("Out of memory")
    assert ended(client, client.submit("owner-m", "cvcore.job_probes:count", {"steps": 1}, name="after",
                                       kind="probe")).status == "done"


def test_bad_submissions_are_refused_up_front(client):
    with pytest.raises(CvcoreError, match="function of cvcore"):
        client.submit("o", "os:system", {}, name="evil", kind="probe")
    with pytest.raises(CvcoreError, match="JSON-able"):
        client.submit("o", "cvcore.job_probes:count", {"steps": object()}, name="x", kind="probe")
    with pytest.raises(CvcoreError, match="`kind` must be one of"):
        client.submit("o", "cvcore.job_probes:count", {}, name="x", kind="nonsense")
    with pytest.raises(CvcoreError, match="names nothing callable"):
        client.submit("o", "cvcore.job_probes:nothing_here", {}, name="x", kind="probe")


def test_settings_come_from_the_environment_and_bad_values_are_named(monkeypatch):
    monkeypatch.setenv("CVCORE_MAX_JOBS", "3")
    monkeypatch.setenv("CVCORE_GPU_TRAIN", "0.5")
    monkeypatch.setenv("CVCORE_JOBS_PER_USER", "3")
    settings = JobSettings.from_env()
    assert settings.max_running == 3 and settings.gpu["train"] == 0.5 and settings.gpu["transfer"] == 0.5
    assert settings.per_user == 3 and JobSettings().per_user == 1
    assert settings.cpus == 0 and cpus_per_job(settings.cpus, 2, local=True, machine_cpus=2) == 1
    monkeypatch.setenv("CVCORE_JOB_CPUS", "3")
    assert cpus_per_job(JobSettings.from_env().cpus, 2, local=False) == 3
    monkeypatch.setenv("CVCORE_JOB_CPUS", "-1")
    with pytest.raises(CvcoreError, match="CVCORE_JOB_CPUS.*'-1'"):
        JobSettings.from_env()
    monkeypatch.delenv("CVCORE_JOB_CPUS")
    monkeypatch.setenv("CVCORE_JOB_MEMORY_MB", "lots")
    with pytest.raises(CvcoreError, match="CVCORE_JOB_MEMORY_MB.*'lots'"):
        JobSettings.from_env()
    monkeypatch.setenv("CVCORE_JOB_MEMORY_MB", "2048")
    monkeypatch.setenv("CVCORE_GPU_VISUALIZE", "2")
    with pytest.raises(CvcoreError, match="CVCORE_GPU_VISUALIZE"):
        JobSettings.from_env()


def _ray_head_of(process) -> list:
    """The Ray processes a local instance's side process started (its head: GCS, raylet and the rest)."""
    return [p for p in psutil.Process(process.pid).children(recursive=True)
            if p.name() in ("gcs_server", "raylet") or "ray" in " ".join(p.cmdline()[:3])]


def test_losing_the_ray_head_keeps_pages_serving_marks_the_run_interrupted_and_requeues_the_waiting_job(
        workspace, monkeypatch):
    monkeypatch.setenv("CVCORE_HEARTBEAT_STALE_S", "3")
    c = client_for(max_running=1, address="local")
    try:
        job = c.submit(workspace.id, "cvcore.job_probes:beating_run", {"workspace": workspace.ref(), "seconds": 300},
                       name="long run", kind="probe")
        wait_until(lambda: c.get(job.id).progress.get("run"), timeout=90, what="the run beating")
        waiting = c.submit("owner-w", "cvcore.job_probes:count", {"steps": 3}, name="waiting", kind="probe")
        assert c.get(waiting.id).status == "queued" and c.get(waiting.id).position == 1
        gate = c.process
        for proc in _ray_head_of(gate):  # the head goes, as a crashed or rebooted head node does
            proc.kill()
        # The page server's calls answer at once meanwhile (None: nothing known now), never hang nor raise.
        started = time.monotonic()
        for _ in range(20):
            assert c.active_job(workspace.id) is None or c.active_job(workspace.id).id == job.id
        assert time.monotonic() - started < 20
        wait_until(lambda: gate.poll() is not None, timeout=30, what="the side process ending with its head")
        # The waiting job reads as waiting while Ray is away (its page keeps following it) ...
        assert c.get(waiting.id).status == "queued" and "Ray is restarting" in c.get(waiting.id).waiting
        assert c.active_job("owner-w").id == waiting.id
        (run,) = workspace.runs()
        wait_until(lambda: workspace.status(workspace.run(run.id)) == "interrupted", timeout=20,
                   what="the run read as interrupted")
        c.get("anything")  # the next call starts a new side process, and Ray with it
        wait_ready(c)
        assert c.process is not gate
        # ... and once Ray is back it is submitted again, with its id, and runs (the interrupted one does not).
        again = ended(c, waiting, timeout=90)
        assert again.id == waiting.id and again.status == "done" and again.result == 3
        assert c.get(job.id) is None
        after = ended(c, c.submit(workspace.id, "cvcore.job_probes:count", {"steps": 2}, name="after", kind="probe"),
                      timeout=90)
        assert after.status == "done" and after.result == 2
    finally:
        c.close()


def test_a_two_node_cluster_runs_the_job_on_the_node_with_room_and_the_run_lands_in_the_workspace(
        workspace, monkeypatch):
    """The head has no CPU for jobs: the app says so at start-up; once a second node joins, jobs run there
    (cvcore shipped with the job), and what they make lands in the shared workspace store."""
    from ray.cluster_utils import Cluster

    from cvcore.models import PRESETS
    from cvcore.runs import RunConfig

    monkeypatch.setenv("CVCORE_JOB_RETRY_S", "2")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    c = None
    try:
        c = JobClient(cluster.address, settings=JobSettings(max_running=1, memory_mb=1024),
                      namespace=f"test-{secrets.token_hex(4)}")
        wait_until(lambda: "no CPU for jobs" in (c.status().get("message") or ""), timeout=90, interval=0.2,
                   what="the start-up check saying the cluster cannot run a job", details=lambda: c.status())
        with pytest.raises(JobServiceError, match="no CPU for jobs"):
            c.submit(workspace.id, "cvcore.job_probes:probe", {}, name="probe", kind="probe")
        second = cluster.add_node(num_cpus=1)
        wait_ready(c, timeout=120)
        probe = ended(c, c.submit(workspace.id, "cvcore.job_probes:probe", {}, name="probe", kind="probe"), timeout=90)
        assert probe.node == second.node_id and probe.result["node"] == second.node_id
        assert probe.result["cvcore"] != os.path.dirname(jobs.__file__)  # shipped with the job, not this checkout
        config = RunConfig(spec=PRESETS["Basic CNN (6 and 12 filters)"], dataset="digits", n_train=100, n_val=20,
                           epochs=1)
        run = ended(c, c.submit(workspace.id, "cvcore.runs:train_job", {"workspace": workspace.ref(),
                                                                         "config": config.as_dict(), "name": "Run 1",
                                                                         "title": "on node two"},
                                name="train", kind="train"), timeout=180)
        assert run.status == "done" and run.node == second.node_id
        (rec,) = workspace.runs()
        assert rec.id == run.result["run"] and rec.status == "finished" and rec.has_model and rec.evaluation
    finally:
        if c is not None:
            c.close()
        for node in list(cluster.worker_nodes):  # no graceful stop to wait for: the test is over
            cluster.remove_node(node, allow_graceful=False)
        cluster.shutdown()
