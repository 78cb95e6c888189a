"""What the AppTest tests of every page share: no exception shown, and the metrics and errors on the page."""


def assert_clean(at):
    """The page ran without showing an exception (a traceback would be a defect)."""
    assert not at.exception, [(e.value, "\n".join(getattr(e, "stack_trace", None) or [])[-3000:]) for e in at.exception]


def workspace_of(at):
    """The workspace an AppTest session works in (anonymous: named by the token the page put in its URL)."""
    from cvcore.workspace import Store

    return Store().anonymous(at.session_state["cvx_ws_token"])


def page_runs(at, kinds=None) -> list:
    """The session's runs as its workspace keeps them (:class:`cvcore.records.RunRecord`), oldest first."""
    return workspace_of(at).runs(kinds)


def metrics(at) -> dict:
    return {m.label: m.value for m in at.metric}


def errors(at) -> str:
    return " ".join(e.value for e in at.error)


def wait_until(condition, *, timeout: float, what: str, interval: float = 0.05, details=None):
    """Poll ``condition()`` until it returns something truthy, and return that.

    Waits on the condition itself, never a fixed time: ``interval`` is only how often it is asked.
    When ``timeout`` seconds pass first, the test fails saying ``what`` did not happen (and
    ``details()``, when given, e.g. the errors on the page), never with an unrelated message later.
    """
    import time

    import pytest

    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            extra = f"; {details()}" if details is not None else ""
            pytest.fail(f"{what}: did not happen within {timeout:g} s{extra}")
        time.sleep(interval)


def rerun_until(at, condition, *, timeout: float, what: str, interval: float = 0.25):
    """Rerun an AppTest page (as its polling fragment would) until ``condition(at)`` holds; see :func:`wait_until`.

    Every rerun must be clean: an exception on the page fails at once, with its message.
    """
    def check():
        at.run()
        assert_clean(at)
        return condition(at)

    return wait_until(check, timeout=timeout, what=what, interval=interval,
                      details=lambda: f"errors on the page: {errors(at) or 'none'}")


def wait_for_job_end(at, job_key: str, *, timeout: float, what: str):
    """Wait until the background job the page follows (its id under ``job_key``, or ``{"id": ...}``) has ended,
    asking the job itself: cheap, where rerunning the whole page while it trains would take the CPU the
    job needs. The page is rerun afterwards, by the caller, to show what the job left."""
    from cvcore import jobs

    if job_key not in at.session_state:
        return
    held = at.session_state[job_key]
    job_id = held["id"] if isinstance(held, dict) else held
    client = jobs.default_manager()

    def ended():
        job = client.get(job_id)
        return job is None or not job.active

    wait_until(ended, timeout=timeout, interval=0.1, what=what,
               details=lambda: f"job {client.get(job_id)}")
