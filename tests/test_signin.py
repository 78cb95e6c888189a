"""Sign-in end to end in a real browser: `streamlit run app.py` with an `[auth]` section pointing at a real
OpenID Connect provider running locally (oidc-provider-mock, offline), driven by headless Chromium.

Two users sign in; each sees only their own runs; the one named an operator has the Operator page and the
other is refused it; the same user in another browser finds theirs again; a workspace link is refused while
sign-in is on.
"""
import os
import secrets
from pathlib import Path

import pytest

from pagewatch import READY
from test_browser import CHROMIUM, AppServer, free_port, train_digits_one_epoch  # noqa: F401  (skips where Chromium is missing)

ROOT = Path(__file__).resolve().parents[1]
SHOTS = Path(os.environ.get("SCREENSHOT_DIR", ROOT / "build" / "screenshots"))
pytestmark = [pytest.mark.browser, pytest.mark.slow]

oidc = pytest.importorskip("oidc_provider_mock")
playwright = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def provider():
    with oidc.run_server_in_thread(port=free_port()) as server:
        yield f"http://127.0.0.1:{server.server_port}"


@pytest.fixture(scope="module")
def app(provider, tmp_path_factory):
    """The app with sign-in on: its own secrets file (the repository's stays without one)."""
    server = AppServer(tmp_path_factory.mktemp("signin"))
    secrets_file = server.folder / "secrets.toml"
    secrets_file.write_text(
        "[auth]\n"
        f'redirect_uri = "{server.url}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_hex(32)}"\n'
        'client_id = "convnet-explorer"\n'
        'client_secret = "not-a-secret-in-tests"\n'
        f'server_metadata_url = "{provider}/.well-known/openid-configuration"\n')
    server.env["CVCORE_OPERATORS"] = "Alice@Example.org"  # the class server's [operators] users
    server.start(["--secrets.files", str(secrets_file)])
    yield server.url, server.folder / "workspaces"
    server.stop()
    server.assert_no_traceback()


@pytest.fixture(scope="module")
def browser():
    SHOTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        yield b
        b.close()


def ready(page):
    page.wait_for_function(READY, arg=300, timeout=120_000, polling=50)


def sign_in(browser, url, subject, path="/train"):
    """A fresh browser context (another browser, as far as the app can tell), signed in as ``subject``."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(url + path)
    page.get_by_role("button", name="Sign in").click()
    page.locator('input[name="sub"]').fill(subject)  # the provider's own form
    page.get_by_role("button", name="Authorize").click()
    page.locator('[data-testid="stSidebar"]').get_by_text("Signed in as").wait_for(timeout=60_000)
    page.goto(url + path)  # the provider sends the browser back to the app's root
    page.locator('[data-testid="stSidebar"]').get_by_text("Signed in as").wait_for(timeout=60_000)
    ready(page)
    return context, page


def runs_in_table(page) -> int:
    return page.locator('[data-testid="stMetric"]', has_text="Test accuracy").count()


def test_two_users_sign_in_and_each_sees_only_their_own_runs(app, browser):
    url, store = app
    anonymous = browser.new_context().new_page()
    anonymous.goto(url + "/train")
    anonymous.get_by_role("button", name="Sign in").wait_for(timeout=60_000)
    # Every page is the sign-in page until then: the pages are listed, none of their content shows.
    anonymous.locator('[data-testid="stSidebarNav"]').get_by_text("Train a ConvNet").wait_for(timeout=30_000)
    assert anonymous.get_by_role("button", name="Train", exact=True).count() == 0
    anonymous.screenshot(path=str(SHOTS / "signin-page.png"))

    alice_ctx, alice = sign_in(browser, url, "alice@example.org")
    train_digits_one_epoch(alice)
    alice.screenshot(path=str(SHOTS / "signin-alice-trained.png"))
    assert "ws=" not in alice.url  # a signed-in user's work is reached by signing in, never by a link

    bob_ctx, bob = sign_in(browser, url, "bob@example.org")
    assert runs_in_table(bob) == 0 and bob.get_by_text("Train a model, or load one").count() == 1
    bob.screenshot(path=str(SHOTS / "signin-bob-empty.png"))

    # Operators are named signed-in users: Alice has the Operator page (no token asked); Bob, a student, has it
    # neither in his navigation nor by its address.
    alice.locator('[data-testid="stSidebarNav"]').get_by_text("Operator").click()
    alice.locator('[data-testid="stMetric"]', has_text="Sessions").wait_for(timeout=60_000)
    ready(alice)
    assert alice.get_by_text("Operator token").count() == 0
    alice.screenshot(path=str(SHOTS / "signin-operator.png"))
    assert bob.locator('[data-testid="stSidebarNav"]').get_by_text("Operator").count() == 0
    bob.goto(url + "/operator")
    bob.get_by_text("This page is for the class's operators").wait_for(timeout=60_000)
    ready(bob)
    assert bob.locator('[data-testid="stMetric"]').count() == 0 and bob.get_by_text("Operator token").count() == 0

    # Alice again, from another browser: her run is there.
    alice_ctx.close()
    again_ctx, again = sign_in(browser, url, "alice@example.org")
    assert runs_in_table(again) == 1

    # A workspace link means nothing while sign-in is on: refused, and Bob stays in his own workspace.
    anon_dirs = [p for p in store.iterdir() if p.name.startswith("a-")]
    bob.goto(url + "/train?ws=" + "x" * 32)
    ready(bob)
    assert "Workspace links are not used on this server" in bob.locator('[data-testid="stSidebar"]').inner_text()
    assert runs_in_table(bob) == 0 and "ws=" not in bob.url
    assert [p for p in store.iterdir() if p.name.startswith("a-")] == anon_dirs == []
    users = [p for p in store.iterdir() if p.name.startswith("u-")]
    assert len(users) == 2 and not any("alice" in p.name or "bob" in p.name for p in users)
    for ctx in (again_ctx, bob_ctx):
        ctx.close()

