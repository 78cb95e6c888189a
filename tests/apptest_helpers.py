"""What the AppTest tests of every page share: no exception shown, and the metrics and errors on the page."""


def assert_clean(at):
    """The page ran without showing an exception (a traceback would be a defect)."""
    assert not at.exception, [(e.value, "\n".join(getattr(e, "stack_trace", None) or [])[-3000:]) for e in at.exception]


def metrics(at) -> dict:
    return {m.label: m.value for m in at.metric}


def errors(at) -> str:
    return " ".join(e.value for e in at.error)
