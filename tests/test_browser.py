"""The app in a real browser: `streamlit run app.py` driven by headless Chromium.

Uses Debian's `chromium` through Playwright (no browser download works here).
Also: workspaces that last (a run through a page switch, a reload and a server restart; two browsers with
their own models). Screenshots land in $SCREENSHOT_DIR (default build/screenshots) to be looked at.
Skipped where Chromium is missing, except in CI (CI=true), where that fails.
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
SHOTS = Path(os.environ.get("SCREENSHOT_DIR", ROOT / "build" / "screenshots"))

pytestmark = [pytest.mark.browser, pytest.mark.slow]

if not Path(CHROMIUM).exists() or not shutil.which("streamlit", path=str(Path(sys.executable).parent)):
    if os.environ.get("CI"):
        raise RuntimeError(f"CI needs Chromium at {CHROMIUM} and Streamlit; `.ci/run` installs them.")
    pytest.skip(f"no Chromium at {CHROMIUM}", allow_module_level=True)

playwright = pytest.importorskip("playwright.sync_api")

from pagewatch import COUNT_RUNS, QUIET_MS, READY  # noqa: E402 (the page's own view: runs ended, ready)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """`streamlit run app.py` on one port, with a workspace store of its own; it can be restarted."""

    def __init__(self, folder: Path):
        self.port, self.folder = free_port(), folder
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / "server.log"
        self.env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CVCORE_WORKSPACE_DIR=str(folder / "workspaces"))
        self.proc = None
        self.serving = []  # [start, end) offsets of the log written while the server served, not while it stopped

    def start(self, extra_args=()):
        self.serving.append([self._log_size(), None])
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port",
             str(self.port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false", *extra_args],
            cwd=ROOT, env=self.env, stdout=open(self.log, "a"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while True:  # polling the health check until it answers
            try:
                if urllib.request.urlopen(self.url + "/_stcore/health", timeout=2).status == 200:
                    return self
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    pytest.fail(f"the app did not start: {self.log.read_text()[-2000:]}")
                time.sleep(0.3)

    def _log_size(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def stop(self):
        self.serving[-1][1] = self._log_size()  # what a stop prints (connections cut mid-way) is not the app's
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def assert_no_traceback(self):
        """No traceback while the server served (the app's errors); a stop's own noise is not counted."""
        data = self.log.read_bytes()
        text = "".join(data[a:b].decode(errors="replace") for a, b in self.serving)
        assert "Traceback" not in text, text[-3000:]


@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    s = AppServer(tmp_path_factory.mktemp("server")).start()
    yield s
    s.stop()
    s.assert_no_traceback()


@pytest.fixture(scope="module")
def server(app_server):
    return app_server.url


@pytest.fixture(scope="module")
def page(server):
    SHOTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.add_init_script(f"({COUNT_RUNS})()")
        yield pg
        browser.close()


def wait_ready(pg):
    """Wait until the page is ready (see READY) and has stayed so for QUIET_MS from now."""
    pg.evaluate("() => { window.__cvReadySince = null; }")
    pg.wait_for_function(READY, arg=QUIET_MS, timeout=120_000, polling=50)


def rerun(pg, action):
    """Do ``action`` (a click, a key press), wait for the script run it causes to end, then for the page
    to be ready: never a page read before the rerun has even started."""
    runs = pg.evaluate("() => window.__cvRuns")
    action()
    try:
        pg.wait_for_function("n => window.__cvRuns > n", arg=runs, timeout=60_000, polling=50)
    except playwright.TimeoutError:  # say what the page was doing, with a picture, rather than only that it timed out
        state = pg.evaluate("() => { const a = document.querySelector('[data-testid=\"stApp\"]');"
                            " return a ? [a.dataset.testConnectionState, a.dataset.testScriptState, window.__cvRuns,"
                            " location.pathname] : null; }")
        shoot(pg, "rerun-timeout")
        pytest.fail(f"no script run ended within 60 s of the action; page (connection, script, runs, path): {state}")
    wait_ready(pg)


def assert_no_errors(pg, name):
    exceptions = pg.locator('[data-testid="stException"]')
    errors = pg.locator('[data-testid="stAlertContentError"]')
    assert exceptions.count() == 0, f"{name}: {exceptions.first.inner_text()}"
    assert errors.count() == 0, f"{name}: {errors.first.inner_text()}"


def shoot(pg, name):
    """A screenshot of the whole page: Streamlit scrolls inside its app view, so the viewport is
    stretched to the content's height for the picture (at most 6000 px), then put back."""
    size = pg.viewport_size
    height = pg.evaluate("() => Math.max(...[...document.querySelectorAll('[data-testid=\"stMain\"], "
                         "[data-testid=\"stAppViewContainer\"]')].map(e => e.scrollHeight), 0)")
    pg.set_viewport_size({"width": size["width"], "height": int(min(max(height, size["height"]), 6000))})
    pg.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")  # laid out
    pg.screenshot(path=str(SHOTS / f"{name}.png"))
    pg.set_viewport_size(size)


def test_a_page_url_opened_first_goes_through_the_app(server, page):
    """The first visit to a fresh server is a page's URL: the page still runs inside app.py's
    navigation (titles, not file names; the device badge), not as a bare script."""
    page.goto(server + "/data")
    wait_ready(page)
    nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
    assert "Your image folders" in nav and "Filters & convolution" in nav, nav
    assert "TensorFlow" in page.locator('[data-testid="stSidebar"]').inner_text()  # app.py's device badge


def test_every_page_opens_without_error(server, page):
    page.goto(server)
    wait_ready(page)
    page.wait_for_selector('[data-testid="stSidebarNav"] a', timeout=30_000)
    links = page.eval_on_selector_all('[data-testid="stSidebarNav"] a', "els => els.map(e => e.href)")
    urls = list(dict.fromkeys([server + "/", *links]))
    assert len(urls) >= 2, links
    for url in urls:
        name = re.sub(r"[^A-Za-z0-9_-]+", "_", url[len(server):].strip("/")) or "home"
        page.goto(url)
        wait_ready(page)
        shoot(page, f"page-{name}")
        assert_no_errors(page, name)
    page.goto(server + "/filters")  # by now TensorFlow has loaded: the badge names the device
    wait_ready(page)
    sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
    assert sidebar.count("TensorFlow") == 1 and ("CPU" in sidebar or "GPU" in sidebar), sidebar


def metric(page, label):
    box = page.locator('[data-testid="stMetric"]', has_text=label).first
    return box.locator('[data-testid="stMetricValue"]').inner_text()


def test_filters_react_to_padding_in_the_browser(server, page):
    page.goto(server + "/filters")
    wait_ready(page)
    assert metric(page, "Conv2D") == "26 x 26 x 2"
    page.get_by_text("same", exact=True).first.click()
    page.wait_for_function("() => [...document.querySelectorAll('[data-testid=\"stMetricValue\"]')]"
                           ".some(e => e.innerText === '28 x 28 x 2')", timeout=30_000)
    wait_ready(page)
    shoot(page, "filters-same-padding")
    assert_no_errors(page, "filters")


def map_captions(page):
    return [c for c in page.locator('[data-testid="stImageCaption"]').all_inner_texts() if c.startswith("Filter")]


def test_typing_weights_in_the_browser(server, page):
    """The weights are typed text: Ctrl+Enter applies them, a typo is named beside them while the outputs
    keep the last weights that worked, and "Hover values" draws the maps as the interactive chart."""
    page.goto(server + "/filters")
    wait_ready(page)
    assert page.locator('[data-testid="stPlotlyChart"]').count() == 0  # the first view loads no chart
    before = map_captions(page)
    weights = page.get_by_role("textbox", name="Weights", exact=True).first
    weights.fill("0 0 0\n0 1 0\n0 0 0")  # identity: the map is the (rescaled) digit itself
    rerun(page, lambda: weights.press("Control+Enter"))
    after = map_captions(page)
    assert after[0] != before[0] and after[0].startswith("Filter 1: Conv2D") and after[1] == before[1]
    weights.fill("0 0 0\n0 1 0\n0 0 x")
    rerun(page, lambda: weights.press("Control+Enter"))
    error = page.locator('[data-testid="stAlertContentError"]')
    assert "row 3, column 3 is 'x'" in error.first.inner_text()
    assert map_captions(page) == after and metric(page, "Conv2D") == "26 x 26 x 2"
    shoot(page, "filters-weights-typo")
    weights.fill("0 0 0\n0 1 0\n0 0 0")
    rerun(page, lambda: weights.press("Control+Enter"))
    rerun(page, page.locator('[data-testid="stMain"]').get_by_text("Hover values").click)
    page.locator('[data-testid="stPlotlyChart"] .main-svg').first.wait_for(timeout=30_000)
    shoot(page, "filters-hover-values")
    assert_no_errors(page, "filters (typed weights)")


def test_drawing_a_digit_on_the_canvas(server, page):
    page.goto(server + "/filters")
    wait_ready(page)
    rerun(page, page.locator('[data-testid="stButtonGroup"] button', has_text="Draw").click)
    frame = page.frame_locator("iframe[title*='canvas']").first
    canvas = frame.locator("canvas").last
    canvas.wait_for(timeout=30_000)
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + 140, box["y"] + 50)
    page.mouse.down()
    for i in range(20):  # a vertical stroke: a "1"
        page.mouse.move(box["x"] + 140 + i * 0.5, box["y"] + 50 + i * 9)
    page.mouse.up()
    page.wait_for_selector('[data-testid="stMetric"]', timeout=30_000)
    wait_ready(page)
    assert metric(page, "Input") == "28 x 28 x 1"
    shoot(page, "filters-drawn-digit")
    assert_no_errors(page, "filters (drawing)")


def choose(page, label, option):
    """Pick an option of the Streamlit selectbox whose label is `label`."""
    page.locator('[data-testid="stSelectbox"]', has_text=label).get_by_role("combobox").click()
    rerun(page, page.get_by_role("option", name=option, exact=True).click)


def set_number(page, label, value):
    """Type a value into the Streamlit number input whose label is `label`."""
    box = page.locator('[data-testid="stNumberInput"]', has_text=label).locator("input")
    box.fill(str(value))
    rerun(page, lambda: box.press("Enter"))


def test_training_a_model_in_the_browser(server, page):
    page.goto(server + "/train")
    wait_ready(page)
    assert metric(page, "Parameters") == "3,730"
    choose(page, "Data set", "scikit-learn digits")
    set_number(page, "Epochs", 2)
    page.get_by_role("button", name="Train", exact=True).first.click()
    try:  # the run's results: its test accuracy, under "Inside one run"
        page.locator('[data-testid="stMetric"]', has_text="Test accuracy").wait_for(timeout=180_000)
    except playwright.TimeoutError:
        shoot(page, "train-no-run")
        alerts = [e.inner_text() for e in page.locator('[data-testid="stAlert"]').all()]
        pytest.fail(f"no run appeared within 180 s; alerts on the page: {alerts}")
    wait_ready(page)
    shoot(page, "train-after-a-run")
    assert_no_errors(page, "train")
    assert float(metric(page, "Test accuracy")) > 0.2

    # The same session: the model just trained, opened on the Visualize page.
    rerun(page, page.locator('[data-testid="stSidebarNav"] a', has_text="What ConvNets learn").click)
    assert metric(page, "Input") == "28 x 28 x 1"
    assert_no_errors(page, "visualize (trained model)")
    shoot(page, "visualize-activations")
    page.get_by_role("tab", name="Saliency & Grad-CAM").click()
    wait_ready(page)
    page.locator('[data-testid="stPlotlyChart"]').nth(3).wait_for(timeout=60_000)  # image, top 5, CAM, saliency
    # SmoothGrad's many passes are a job on Ray: pressed, it shows its progress, then its map (the fifth chart).
    page.get_by_role("button", name=re.compile(r"Compute SmoothGrad \(\d+ samples\)")).click()
    page.locator('[data-testid="stPlotlyChart"]').nth(4).wait_for(timeout=120_000)
    wait_ready(page)
    assert_no_errors(page, "visualize (saliency and Grad-CAM)")
    shoot(page, "visualize-gradcam")
    page.get_by_role("tab", name="Filters").click()
    wait_ready(page)
    set_number(page, "Steps", 10)
    page.get_by_role("button", name=re.compile(r"Visualize the first \d+ filters")).click()
    page.get_by_text(re.compile(r"^filter 0$")).wait_for(timeout=120_000)
    wait_ready(page)
    assert_no_errors(page, "visualize (filters)")
    shoot(page, "visualize-filters")
    page.get_by_role("tab", name="Classes").click()
    wait_ready(page)
    set_number(page, "Steps", 20)
    page.get_by_role("button", name=re.compile(r"Visualize class")).click()
    page.get_by_text("What the model predicts for this picture").wait_for(timeout=120_000)
    wait_ready(page)
    assert_no_errors(page, "visualize (classes)")
    shoot(page, "visualize-class")
    page.get_by_role("tab", name="Saliency & Grad-CAM").click()
    wait_ready(page)
    rerun(page, page.locator('[data-testid="stButtonGroup"] button', has_text="Score-CAM").click)
    page.get_by_role("button", name="Compute Score-CAM").click()
    page.get_by_role("button", name="Compute Score-CAM").wait_for(state="detached", timeout=120_000)  # the map is in
    wait_ready(page)
    assert_no_errors(page, "visualize (Score-CAM)")
    shoot(page, "visualize-scorecam")


def zip_folder(root, extra=None):
    """``root``'s PNGs in ``root.zip`` beside it, under the folder's name, plus ``extra`` {name: text}."""
    import zipfile

    archive = root.with_suffix(".zip")
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(root.rglob("*.png")):
            zf.write(path, path.relative_to(root.parent).as_posix())
        for name, text in (extra or {}).items():
            zf.writestr(name, text)
    return archive


def test_a_zip_of_class_folders_uploaded_in_the_browser(server, page, tmp_path):
    from cvcore import samples

    root = samples.write_seedlings_folder(tmp_path / "my-plants", per_class=6, size=64)
    archive = zip_folder(root, {"my-plants/grass/broken.jpg": "a text file named .jpg"})
    page.goto(server + "/data")
    wait_ready(page)
    assert metric(page, "Classes") == "10"  # the demo: Fashion-MNIST as PNG folders
    page.locator('[data-testid="stButtonGroup"] button', has_text="Upload a zip").click()  # reveals the input
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(archive))
    page.wait_for_function("() => [...document.querySelectorAll('[data-testid=\"stMetricValue\"]')]"
                           ".some(e => e.innerText === '18')", timeout=60_000)
    wait_ready(page)
    shoot(page, "data-uploaded-zip")
    assert metric(page, "Classes") == "3" and metric(page, "Could not be read") == "1"
    assert "15 training and 3 validation images" in page.locator('[data-testid="stAlertContentSuccess"]').inner_text()
    assert_no_errors(page, "data (upload)")
    page.get_by_role("tab", name="Could not be read (1)").click()
    wait_ready(page)
    page.locator('[data-testid="stDataFrame"]').wait_for(timeout=30_000)  # a canvas grid: its cells are not text
    shoot(page, "data-unreadable-files")
    # The same browser session: the Augmentation and Background pages work on the uploaded images.
    rerun(page, page.locator('[data-testid="stSidebarNav"] a', has_text="Augmentation").click)
    rerun(page, page.locator('[data-testid="stButtonGroup"] button', has_text="Data set").first.click)
    assert page.get_by_text(re.compile(r"Original: my-plants")).count() == 1
    assert page.locator('[data-testid="stImage"]').count() >= 9  # the original and 8 versions
    assert_no_errors(page, "augment (data set)")
    shoot(page, "augment-uploaded-image")
    rerun(page, page.locator('[data-testid="stButtonGroup"] button', has_text="imgaug").click)
    assert page.locator('[data-testid="stImage"]').count() >= 9
    assert "iaa.Sequential" in page.get_by_test_id("stMainBlockContainer").locator('[data-testid="stCode"]').first.inner_text()
    assert_no_errors(page, "augment (imgaug)")
    shoot(page, "augment-imgaug")

    rerun(page, page.locator('[data-testid="stSidebarNav"] a', has_text="Background removal").click)
    assert_no_errors(page, "background")
    page.get_by_role("button", name="Remove the background of every image").click()
    page.get_by_role("button", name="Download the images (zip)").wait_for(timeout=120_000)
    wait_ready(page)
    summary = page.locator('[data-testid="stAlertContentSuccess"], [data-testid="stAlertContentWarning"]').last.inner_text()
    assert "18" in summary, summary
    shoot(page, "background-folder-run")
    assert_no_errors(page, "background (folder run)")


def compare_chip(page, n):
    """The chip of run "Transfer n" in the Transfer page's "Compare" box."""
    return page.locator('[data-testid="stMultiSelect"]').get_by_text(f"Transfer {n}", exact=True)


def run_mode(page, mode_title, name, runs):
    """Pick a mode on the Transfer page, press Train, wait for the run (the session's runs + 1) to appear."""
    before = page.locator('[data-testid="stMetric"]', has_text="Validation accuracy").count()
    rerun(page, page.locator('[data-testid="stRadio"]', has_text="Mode").get_by_text(mode_title, exact=True).click)
    train = page.get_by_role("button", name="Train", exact=True)
    train.click()
    try:  # the new run joins the comparison as it starts: its chip in the "Compare" box (the runs table's cells
        # are a canvas); it has ended when Train can be pressed again
        compare_chip(page, runs + 1).wait_for(timeout=300_000)
        page.wait_for_function("() => { const b = document.querySelector('.st-key-tl_train button');"
                               " return b && !b.disabled; }", timeout=300_000, polling=200)
    except playwright.TimeoutError:
        shoot(page, f"transfer-{name}-no-run")
        alerts = [e.inner_text() for e in page.locator('[data-testid="stAlert"]').all()]
        pytest.fail(f"{mode_title}: no run within 300 s; alerts: {alerts}")
    wait_ready(page)
    assert_no_errors(page, f"transfer ({name})")
    assert page.locator('[data-testid="stMetric"]', has_text="Validation accuracy").count() >= max(before, 1)
    shoot(page, f"transfer-{name}")


def test_transfer_learning_on_uploaded_folders_in_the_browser(server, page, tmp_path):
    """Done when: on image folders uploaded in the browser, each mode trains, shows curves, can be
    stopped, and hands its model to the Visualize page."""
    from cvcore import samples

    root = samples.write_seedlings_folder(tmp_path / "seedlings", per_class=8, size=64)
    archive = zip_folder(root)
    page.goto(server + "/data")
    wait_ready(page)
    page.locator('[data-testid="stButtonGroup"] button', has_text="Upload a zip").click()  # reveals the input
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(archive))
    page.wait_for_function("() => [...document.querySelectorAll('[data-testid=\"stMetricValue\"]')]"
                           ".some(e => e.innerText === '24')", timeout=60_000)
    wait_ready(page)

    rerun(page, page.locator('[data-testid="stSidebarNav"] a', has_text="Transfer learning").click)
    assert metric(page, "Classes") == "3" and metric(page, "Validation images") == "6"
    # Offline: no ImageNet weights; the page says so and offers random ones.
    assert "could not be had" in page.locator('[data-testid="stAlertContentWarning"]').first.inner_text()
    shoot(page, "transfer-no-weights")
    rerun(page, page.get_by_role("button", name="Use random weights").click)
    rerun(page, page.locator('[data-testid="stRadio"]', has_text="Mode").get_by_text(
        "Frozen base + new head, end to end", exact=True).click)
    assert metric(page, "Total parameters") == "14,739,267"  # VGG16 at 150 x 150, Flatten, Dense(3): Keras' count
    assert metric(page, "Trainable") == "24,579"
    shoot(page, "transfer-ready")
    set_number(page, "Input size (px)", 48)

    run_mode(page, "Baseline: logistic regression on pixels", "baseline", 0)
    assert "The baseline (Transfer 1) reached" in page.locator('[data-testid="stAlertContentInfo"]', has_text="baseline").inner_text()
    run_mode(page, "Cached bottleneck features + head", "features", 1)
    run_mode(page, "Frozen base + new head, end to end", "frozen", 2)
    run_mode(page, "Fine-tuning the top of the base", "finetune", 3)
    page.get_by_role("tab", name="Mistakes").click()
    wait_ready(page)
    assert_no_errors(page, "transfer (mistakes)")

    # From scratch, stopped while it runs: the run is kept, marked stopped.
    rerun(page, page.locator('[data-testid="stRadio"]', has_text="Mode").get_by_text(
        "From scratch (random weights, all trainable)", exact=True).click)
    set_number(page, "Epochs", 100)
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_test_id("stMainBlockContainer").get_by_role("button", name="Stop").wait_for(timeout=60_000)
    # The live curves: an epoch has ended (a fragment rerun may briefly hold the old chart beside the new one).
    page.locator('.st-key-tl_live_loss [data-testid="stPlotlyChart"]').first.wait_for(timeout=120_000)
    shoot(page, "transfer-scratch-live")
    stop = page.get_by_test_id("stMainBlockContainer").get_by_role("button", name="Stop")
    stop.click()
    stop.wait_for(state="detached", timeout=120_000)  # the job has ended: its view is gone
    compare_chip(page, 5).wait_for(timeout=120_000)  # and the run is kept
    wait_ready(page)
    assert_no_errors(page, "transfer (stopped)")
    shoot(page, "transfer-after-runs")

    # The fine-tuned model on the Visualize page: Grad-CAM on the uploaded classes.
    rerun(page, page.locator('[data-testid="stSidebarNav"] a', has_text="What ConvNets learn").click)
    assert metric(page, "Input") == "48 x 48 x 3" and metric(page, "Classes") == "3"
    page.get_by_role("tab", name="Saliency & Grad-CAM").click()
    wait_ready(page)
    page.locator('[data-testid="stPlotlyChart"]').nth(3).wait_for(timeout=60_000)  # image, top 5, CAM, saliency
    assert_no_errors(page, "visualize (transfer model)")
    shoot(page, "visualize-transfer-gradcam")


# ============================================================================ workspaces that last


def new_page(browser):
    """A page in a browser context of its own: another browser, as far as the app can tell."""
    return browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()


def go(page, nav_title, path):
    """Switch page by the sidebar, as a user does; wait until the app has moved there and run it."""
    page.locator('[data-testid="stSidebarNav"] a', has_text=nav_title).click()
    page.wait_for_url(lambda url: f"/{path}?" in url, timeout=30_000)
    wait_ready(page)


def train_digits_one_epoch(page):
    """On the Train page: the bundled digits, one epoch, Train; returns the run's test-accuracy metric once shown."""
    page.locator('[data-testid="stSelectbox"]', has_text="Data set").get_by_role("combobox").click()
    page.get_by_role("option", name="scikit-learn digits", exact=True).click()
    wait_ready(page)
    epochs = page.locator('[data-testid="stNumberInput"]', has_text="Epochs").locator("input")
    epochs.fill("1")
    epochs.press("Enter")
    wait_ready(page)
    page.get_by_role("button", name="Train", exact=True).first.click()
    accuracy = page.locator('[data-testid="stMetric"]', has_text="Test accuracy")
    accuracy.wait_for(timeout=180_000)
    wait_ready(page)
    return accuracy


def constant_model_file(folder: Path, klass: int) -> Path:
    """A digits model that always predicts ``klass`` (the Visualize tests' one), saved as a .keras file."""
    from test_visualize_page import constant_model

    path = folder / f"always-{klass}.keras"
    constant_model(klass).save(path)
    return path


def test_two_browsers_with_their_own_uploaded_models_each_see_only_their_own_predictions(server, page, tmp_path):
    browser, pages = page.context.browser, {}
    for klass in (3, 7):
        page = new_page(browser)
        page.goto(server + "/train")
        wait_ready(page)
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
            str(constant_model_file(tmp_path, klass)))
        page.get_by_role("button", name="Add it as a run").click()
        page.locator('[data-testid="stMetric"]', has_text="Test accuracy").wait_for(timeout=60_000)
        wait_ready(page)
        pages[klass] = page
    for klass, page in pages.items():
        go(page, "What ConvNets learn", "visualize")
        page.get_by_role("tab", name="Saliency & Grad-CAM").click()
        # The CAM's class picker starts on the class the model predicts, read from the page's cached predictions.
        picker = page.locator('[class*="st-key-vis_cam_class_"]').get_by_role("combobox")
        picker.wait_for(timeout=60_000)
        wait_ready(page)
        value = picker.input_value() or picker.inner_text()
        assert value.startswith(f"{klass}:") and value.endswith("(predicted)"), (klass, value)
        page.screenshot(path=str(SHOTS / f"workspace-model-{klass}.png"))
    for page in pages.values():
        page.context.close()


def test_a_run_survives_a_page_switch_a_reload_and_a_restart(app_server, page):
    """Last in the module (tests run in file order): it restarts the module's server."""
    server, browser = app_server, page.context.browser
    page = new_page(browser)
    page.goto(server.url + "/train")
    wait_ready(page)
    assert "ws=" in page.url
    accuracy = train_digits_one_epoch(page)
    score = accuracy.locator('[data-testid="stMetricValue"]').inner_text()
    link = page.url

    go(page, "Filters & convolution", "filters")
    assert page.url.split("?")[1] == link.split("?")[1]  # the link rides along
    go(page, "Train a ConvNet", "train")
    accuracy.wait_for(timeout=30_000)
    page.reload()
    wait_ready(page)
    assert accuracy.locator('[data-testid="stMetricValue"]').inner_text() == score

    server.stop()
    server.start()
    page.goto(link)
    accuracy.wait_for(timeout=60_000)
    wait_ready(page)
    assert accuracy.locator('[data-testid="stMetricValue"]').inner_text() == score
    page.screenshot(path=str(SHOTS / "workspace-after-restart.png"))

    stranger = new_page(browser)
    stranger.goto(server.url + "/train")
    wait_ready(stranger)
    assert stranger.get_by_text("Train a model, or load one").count() == 1
    assert stranger.locator('[data-testid="stMetric"]', has_text="Test accuracy").count() == 0
    stranger.context.close()
    page.context.close()
