"""The idle-session time-to-live on a real page server, in a real browser: a session nobody has used for
``CVCORE_SESSION_IDLE_S`` is closed (its state freed, its place in the registry given up); the tab, still
open, reconnects by itself and takes a place again with its next click, which works: never a dead page that
ignores clicks."""
import pytest

from apptest_helpers import wait_until
from cvcore.sessions import SessionRegistry
from pagewatch import COUNT_RUNS
from test_browser import CHROMIUM, AppServer, rerun, wait_ready  # noqa: F401 (skips without Chromium)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
playwright = pytest.importorskip("playwright.sync_api")

IDLE_S = 8  # a page's first run on a cold server (TensorFlow loading) takes longer: it is warmed first


def registered(sessions_dir) -> list[dict]:
    """The class server's live sessions, as the Operator page reads them (the registry's own reader)."""
    return SessionRegistry(sessions_dir, "test-reader").sessions()


def test_an_idle_session_is_closed_and_its_open_tab_comes_back_as_a_new_working_session(tmp_path):
    server = AppServer(tmp_path)
    sessions_dir = tmp_path / "sessions"
    server.env.update(CVCORE_SESSION_IDLE_S=str(IDLE_S), CVCORE_SESSIONS_DIR=str(sessions_dir))
    server.start()
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            on_filters = lambda: [s["session"] for s in registered(sessions_dir) if s["page"] == "filters"]  # noqa: E731
            warm = browser.new_page()
            warm.goto(server.url + "/filters")  # the first visit loads TensorFlow: not what is measured here
            wait_ready(warm)
            warm.context.close()
            wait_until(lambda: not on_filters(), timeout=30, what="the closed warm-up session dropped")

            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.add_init_script(f"({COUNT_RUNS})()")
            page.goto(server.url + "/filters")
            first = wait_until(on_filters, timeout=30, what="the session in the registry",
                               details=lambda: registered(sessions_dir))
            assert len(first) == 1
            wait_ready(page)

            # Nobody touches the tab: the session is closed and its place given up.
            wait_until(lambda: first[0] not in on_filters(), timeout=IDLE_S + 30, what="the idle session closed",
                       details=lambda: registered(sessions_dir))
            # The open tab has reconnected by itself, and works: a click reruns the page in a new session.
            wait_ready(page)
            rerun(page, lambda: page.locator(".st-key-flt_padding").get_by_text("same").click())
            assert page.locator('[data-testid="stException"]').count() == 0
            again = wait_until(on_filters, timeout=30, what="the new session in the registry")
            assert len(again) == 1 and again[0] != first[0]
            browser.close()
    finally:
        server.stop()
    server.assert_no_traceback()
