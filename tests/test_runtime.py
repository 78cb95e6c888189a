"""ui.runtime: the page server's process settings."""
import socket

import pytest
from streamlit.testing.v1 import AppTest

from ui import runtime


def nodelay(sock):
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) > 0


@pytest.mark.skipif(not runtime.os.path.isdir("/proc/self/fd"), reason="reads the process's sockets from /proc")
def test_the_servers_connections_send_without_delay_and_others_are_left_alone():
    server = socket.socket(socket.AF_INET)  # protocol 0, as Streamlit binds it: asyncio then skips TCP_NODELAY
    server.bind(("127.0.0.1", 0))
    server.listen()
    before = socket.create_connection(server.getsockname())
    accepted_before, _ = server.accept()
    assert not nodelay(server) and not nodelay(accepted_before)
    try:
        assert runtime.send_without_delay(force=True) >= 2
        after = socket.create_connection(server.getsockname())
        accepted_after, _ = server.accept()
        assert nodelay(server) and nodelay(accepted_before)
        assert nodelay(accepted_after)  # inherited from the listening socket
        assert not nodelay(before) and not nodelay(after)  # a client's own sockets are not the server's
        assert runtime.send_without_delay() == 0  # once per process: done above
        after.close(), accepted_after.close()
    finally:
        for sock in (server, before, accepted_before):
            sock.close()


def test_the_app_turns_the_delay_off(monkeypatch):
    calls = []
    monkeypatch.setattr(runtime, "send_without_delay", lambda: calls.append(1) or 0)
    AppTest.from_file("../app.py", default_timeout=60).run()
    assert calls
