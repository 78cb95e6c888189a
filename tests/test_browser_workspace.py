"""Workspaces in a real browser (`streamlit run app.py`, headless Chromium): a run survives a page switch,
a reload and a server restart; two browsers with their own uploaded models each see only their own
predictions; a stranger sees nothing of either.
"""
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from test_browser import CHROMIUM, READY, free_port  # noqa: F401  (skips the module where Chromium is missing)

ROOT = Path(__file__).resolve().parents[1]
SHOTS = Path(os.environ.get("SCREENSHOT_DIR", ROOT / "build" / "screenshots"))
pytestmark = [pytest.mark.browser, pytest.mark.slow]
playwright = pytest.importorskip("playwright.sync_api")
keras = pytest.importorskip("keras")


class Server:
    """`streamlit run app.py` on one port and one workspace store, which can be restarted."""

    def __init__(self, folder: Path):
        self.port, self.folder = free_port(), folder
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CVCORE_WORKSPACE_DIR=str(folder / "workspaces"))
        self.proc = None

    def start(self):
        log = open(self.folder / "server.log", "a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port",
             str(self.port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while True:
            try:
                if urllib.request.urlopen(self.url + "/_stcore/health", timeout=2).status == 200:
                    return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    pytest.fail(f"the app did not start: {(self.folder / 'server.log').read_text()[-2000:]}")
                time.sleep(0.3)  # polling the health check

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("workspace-app"))
    s.start()
    yield s
    s.stop()
    log = (s.folder / "server.log").read_text()
    assert "Traceback" not in log, log[-3000:]


@pytest.fixture(scope="module")
def browser():
    SHOTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        yield b
        b.close()


def ready(page):
    page.wait_for_function(READY, arg=300, timeout=120_000, polling=50)


def new_page(browser):
    return browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()


def go(page, nav_title, path):
    """Switch page by the sidebar, as a user does; wait until the app has moved there and run it."""
    page.locator('[data-testid="stSidebarNav"] a', has_text=nav_title).click()
    page.wait_for_url(lambda url: f"/{path}?" in url, timeout=30_000)
    ready(page)


def test_a_run_survives_a_page_switch_a_reload_and_a_restart(server, browser):
    page = new_page(browser)
    page.goto(server.url + "/train")
    ready(page)
    assert "ws=" in page.url
    page.locator('[data-testid="stSelectbox"]', has_text="Data set").get_by_role("combobox").click()
    page.get_by_role("option", name="scikit-learn digits", exact=True).click()
    ready(page)
    epochs = page.locator('[data-testid="stNumberInput"]', has_text="Epochs").locator("input")
    epochs.fill("1")
    epochs.press("Enter")
    ready(page)
    page.get_by_role("button", name="Train", exact=True).first.click()
    accuracy = page.locator('[data-testid="stMetric"]', has_text="Test accuracy")
    accuracy.wait_for(timeout=180_000)
    ready(page)
    score = accuracy.locator('[data-testid="stMetricValue"]').inner_text()
    link = page.url

    go(page, "Filters & convolution", "filters")
    assert page.url.split("?")[1] == link.split("?")[1]  # the link rides along
    go(page, "Train a ConvNet", "train")
    accuracy.wait_for(timeout=30_000)
    page.reload()
    ready(page)
    assert accuracy.locator('[data-testid="stMetricValue"]').inner_text() == score

    server.stop()
    server.start()
    page.goto(link)
    accuracy.wait_for(timeout=60_000)
    ready(page)
    assert accuracy.locator('[data-testid="stMetricValue"]').inner_text() == score
    page.screenshot(path=str(SHOTS / "workspace-after-restart.png"))

    stranger = new_page(browser)
    stranger.goto(server.url + "/train")
    ready(stranger)
    assert stranger.get_by_text("Train a model, or load one").count() == 1
    assert stranger.locator('[data-testid="stMetric"]', has_text="Test accuracy").count() == 0
    stranger.context.close()
    page.context.close()


def constant_model_file(folder: Path, klass: int) -> Path:
    """A digits model that always predicts ``klass``, saved as a .keras file."""
    bias = np.zeros(10, "float32")
    bias[klass] = 5.0
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(2, 3, name="conv"),
                              keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax", name="out")])
    dense = model.get_layer("out")
    dense.set_weights([np.zeros_like(dense.get_weights()[0]), bias])
    path = folder / f"always-{klass}.keras"
    model.save(path)
    return path


def test_two_browsers_with_their_own_uploaded_models_each_see_only_their_own_predictions(server, browser, tmp_path):
    pages = {}
    for klass in (3, 7):
        page = new_page(browser)
        page.goto(server.url + "/train")
        ready(page)
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
            str(constant_model_file(tmp_path, klass)))
        page.get_by_role("button", name="Add it as a run").click()
        page.locator('[data-testid="stMetric"]', has_text="Test accuracy").wait_for(timeout=60_000)
        ready(page)
        pages[klass] = page
    for klass, page in pages.items():
        go(page, "What ConvNets learn", "visualize")
        page.get_by_role("tab", name="Saliency & Grad-CAM").click()
        # The CAM's class picker starts on the class the model predicts, read from the page's cached predictions.
        picker = page.locator('[class*="st-key-vis_cam_class_"]').get_by_role("combobox")
        picker.wait_for(timeout=60_000)
        ready(page)
        value = picker.input_value() or picker.inner_text()
        assert value.startswith(f"{klass}:") and value.endswith("(predicted)"), (klass, value)
        page.screenshot(path=str(SHOTS / f"workspace-model-{klass}.png"))
    for page in pages.values():
        page.context.close()
