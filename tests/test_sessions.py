"""The class server's session rules as a page server applies them (ui/classroom.py over cvcore.sessions): every
session noted in the shared registry, and a new session beyond CVCORE_MAX_SESSIONS turned away politely."""
import json
import time

from streamlit.testing.v1 import AppTest

from apptest_helpers import wait_until
from cvcore.sessions import SessionRegistry, sessions_root

APP = "../app.py"


def registry_name() -> str:
    from ui.classroom import registry

    return registry().server


def other_page_server(n: int, name="p9", updated=None) -> None:
    """A registry file as another page server publishes it, with ``n`` sessions."""
    reg = SessionRegistry(sessions_root(), name)
    for i in range(n):
        reg.touch(f"{name}-s{i}", workspace=f"ws-{i}", user="anonymous", page="filters")
    reg.publish()
    if updated is not None:  # a page server that stopped publishing (it died) at ``updated``
        body = json.loads(reg.path.read_text())
        body["updated"] = updated
        reg.path.write_text(json.dumps(body))


def test_a_new_session_on_a_full_class_server_sees_the_full_page_and_nothing_else(monkeypatch):
    monkeypatch.setenv("CVCORE_MAX_SESSIONS", "3")
    other_page_server(3)
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert [t.value for t in at.title] == ["The class server is full"]
    assert "Try again in a minute" in at.info[0].value
    assert "cvx_ws_token" not in at.session_state  # turned away before any workspace was opened


def test_a_session_is_counted_and_a_gone_page_servers_sessions_are_not(monkeypatch):
    monkeypatch.setenv("CVCORE_MAX_SESSIONS", "3")
    other_page_server(2, updated=time.time() - 600)  # a page server that died ten minutes ago: its places are free
    other_page_server(1, name="p8")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception and at.title[0].value == "ConvNet Explorer"
    reg = SessionRegistry(sessions_root(), "reader")
    # p8's session and this page server's own (published every few seconds); none of the dead p9's.
    wait_until(lambda: len(reg.sessions()) == 2, timeout=20, what="this session published beside p8's",
               details=lambda: reg.sessions())
    assert {s["server"] for s in reg.sessions()} == {"p8", registry_name()}
    # Once in, a session stays in even when the server fills up behind it.
    other_page_server(5, name="p7")
    at.run()
    assert at.title[0].value == "ConvNet Explorer"
