"""The operator's page (pages/operator.py) in AppTest: refused to a user who is not an operator, a token that
opens it, the class's jobs with their own measure of what they use, and operator rights asked again at every
stop (a session whose rights were withdrawn is refused, and the job goes on). The registry it reads is
tests/test_sessions' concern; here the page server's own sessions show."""
import pytest
from streamlit.testing.v1 import AppTest

from apptest_helpers import errors, metrics, wait_until
from cvcore import jobs

PAGE = "../pages/operator.py"


@pytest.fixture
def token_file(tmp_path, monkeypatch):
    path = tmp_path / "operator-token"
    path.write_text("the-right-token-0123456789")
    monkeypatch.setenv("CVCORE_OPERATOR_TOKEN_FILE", str(path))
    return path


def open_page(token=None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    if token is not None:
        at.text_input(key="op_token").set_value(token)
        at.button[0].click().run()  # the form's Open button
    return at


def test_a_user_who_is_not_an_operator_sees_no_jobs_and_cannot_act(token_file):
    at = open_page()
    assert not at.exception and not at.metric and not at.dataframe
    assert not [b for b in at.button if b.key in ("op_stop", "op_clear")]
    at = open_page("a-wrong-token")
    assert "That is not the operator token." in errors(at)
    assert not at.metric and "op_token_sha256" not in str(at.session_state)


def test_an_operator_sees_the_jobs_and_a_withdrawn_operator_is_refused_at_stop(token_file):
    client = jobs.default_manager()
    job = client.submit("student-ws-1", "cvcore.job_probes:count", {"steps": 600, "delay": 0.1}, name="Run 1",
                        kind="probe")
    try:
        wait_until(lambda: client.get(job.id).usage, timeout=60, interval=0.2, what="the job's own usage report")
        at = open_page("the-right-token-0123456789")
        assert not errors(at) and not at.exception
        assert metrics(at)["Jobs running"] == "1"
        table = next(d.value for d in at.dataframe if "job" in d.value.columns)
        row = table[table["job"] == "Run 1"].iloc[0]
        assert row["status"] == "running" and row["memory (MB)"] >= 0 and row["CPU time (s)"] >= 0
        assert at.selectbox(key="op_job").value == job.id

        token_file.write_text("a-new-token-after-a-rotation")  # the operator's rights are withdrawn
        at.button(key="op_stop").click().run()
        assert "Refused: this session is no longer an operator" in errors(at)
        assert client.get(job.id).status == "running" and not client.get(job.id).stop_requested
        assert not at.dataframe  # and the page shows nothing more

        at = open_page("a-new-token-after-a-rotation")
        at.selectbox(key="op_job").set_value(job.id).run()
        at.button(key="op_stop").click().run()
        assert any("Stop sent to Run 1" in s.value for s in at.success)
        wait_until(lambda: client.get(job.id).status == "stopped", timeout=30, what="the job stopped")
    finally:
        client.stop(job.id)
