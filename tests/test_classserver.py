"""The class server as a teacher starts it: `python -m classserver` (what `scripts/serve.sh` runs), with two page
servers behind HAProxy, its own Ray head and one workspace store, driven by headless Chromium through the proxy.

One class server serves the whole module (tests run in file order: the last ones kill a page server, then
stop the command). Skipped where HAProxy or Chromium is missing, except in CI (CI=true), where that fails.
"""
import os
import secrets
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from apptest_helpers import wait_until
from classserver.config import ClassConfig, ClassConfigError
from classserver.proxy import COOKIE, haproxy_binary
from classserver.supervisor import MARKER, marked_processes

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.browser, pytest.mark.slow]

if haproxy_binary() is None:
    if os.environ.get("CI"):
        raise RuntimeError("CI needs HAProxy; `bash scripts/setup.sh --dev` installs it.")
    pytest.skip("no HAProxy (apt-get install haproxy)", allow_module_level=True)

from pagewatch import COUNT_RUNS  # noqa: E402
from test_browser import CHROMIUM, SHOTS, free_port, playwright, train_digits_one_epoch, wait_ready  # noqa: E402

CLASS_TOML = """
[server]
page_servers = 2

[ray]
object_store_mb = 300
"""


class Command:
    """`python -m classserver` in a process of its own, as `scripts/serve.sh` runs it."""

    def __init__(self, folder: Path):
        self.folder, self.port, self.marker = folder, free_port(), secrets.token_hex(8)
        (folder / "class.toml").write_text(CLASS_TOML)
        self.log = folder / "serve.log"
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, CVCORE_STATE_DIR=str(folder / "state"), **{MARKER: self.marker})
        for name in ("CVCORE_WORKSPACE_DIR", "CVCORE_SESSIONS_DIR"):  # the store and the registry: in its state folder
            env.pop(name, None)
        self.store = folder / "state" / "workspaces"
        self.proc = subprocess.Popen([sys.executable, "-m", "classserver", "--config", str(folder / "class.toml"),
                                      "--port", str(self.port)], cwd=ROOT, env=env, stdout=open(self.log, "w"),
                                     stderr=subprocess.STDOUT)
        wait_until(lambda: "class server is up" in self.output() or self.proc.poll() is not None, timeout=240,
                   interval=0.3, what="the class server up", details=self.output)
        assert self.proc.poll() is None, self.output()

    def output(self) -> str:
        return self.log.read_text()

    def page_server_pid(self, name: str) -> int:
        """The pid of page server ``name`` (its environment says CVCORE_PAGE_SERVER=name)."""
        for pid in marked_processes(self.marker):
            try:
                env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if f"CVCORE_PAGE_SERVER={name}".encode() in env and b"streamlit" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        raise AssertionError(f"no page server {name} among {marked_processes(self.marker)}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(60)


@pytest.fixture(scope="module")
def command(tmp_path_factory):
    cmd = Command(tmp_path_factory.mktemp("class"))
    yield cmd
    cmd.stop()
    for pid in marked_processes(cmd.marker):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def browser(command):
    SHOTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        yield b
        b.close()


def visitor(browser):
    """A new visitor: a browser context of its own (its own cookies)."""
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.add_init_script(f"({COUNT_RUNS})()")
    return page


def page_server_of(page) -> str:
    return next(c["value"] for c in page.context.cookies() if c["name"] == COOKIE)


def test_the_configuration_names_a_bad_setting_and_its_value():
    with pytest.raises(ClassConfigError, match=r"\[jobs\] max_running must be a whole number of at least 1; received 0"):
        ClassConfig.from_dict({"jobs": {"max_running": 0}})
    with pytest.raises(ClassConfigError, match=r"unknown section \[job\]"):
        ClassConfig.from_dict({"job": {}})
    config = ClassConfig.from_dict({"class": {"session_idle_minutes": 5}, "operators": {"users": ["t@school.edu"]}})
    assert config.environment()["CVCORE_SESSION_IDLE_S"] == "300.0"
    assert config.operators == ("t@school.edu",)
    # Each job's CPUs (and TensorFlow threads): the Ray head's shared among the running jobs, or as set.
    assert ClassConfig.from_dict({"ray": {"cpus": 8}, "jobs": {"max_running": 2}}).environment()["CVCORE_JOB_CPUS"] == "4"
    assert ClassConfig.from_dict({"jobs": {"cpus": 3}}).environment()["CVCORE_JOB_CPUS"] == "3"
    assert ClassConfig.load(ROOT / "class.example.toml") == ClassConfig()  # the documented example is the defaults


def self_signed_pem(folder: Path) -> Path:
    """A certificate for 127.0.0.1 and its key, in one PEM as HAProxy takes them."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(key, hashes.SHA256()))
    path = folder / "class.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return path


def test_with_tls_the_proxy_speaks_https_only_and_its_cookie_is_secure(tmp_path):
    """HAProxy with the configuration the class server writes for a `tls_pem`, in front of a stand-in page
    server: HTTPS answers, with the page-server cookie Secure, HttpOnly and SameSite=Lax; plain HTTP does not."""
    import http.server
    import ssl
    import threading

    from classserver.proxy import haproxy_config

    class PageServer(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            body = b"ok" if self.path == "/_stcore/health" else b"a page server"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    with pytest.raises(ClassConfigError, match="tls_pem must be a PEM file.*no file '/nowhere.pem'"):
        ClassConfig.from_dict({"server": {"tls_pem": "/nowhere.pem"}})
    pem = self_signed_pem(tmp_path)
    assert ClassConfig.from_dict({"server": {"tls_pem": str(pem)}}).tls_pem == str(pem)
    backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), PageServer)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    port = free_port()
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(haproxy_config("127.0.0.1", port, [("p1", backend.server_port)], tls_pem=str(pem)))
    proxy = subprocess.Popen([haproxy_binary(), "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.STDOUT)
    trusted = ssl.create_default_context(cafile=str(pem))

    def answer():
        try:
            return urllib.request.urlopen(f"https://127.0.0.1:{port}/", context=trusted, timeout=5)
        except OSError:
            assert proxy.poll() is None, "HAProxy ended"
            return None

    try:
        reply = wait_until(answer, timeout=30, interval=0.2, what="HAProxy answering over HTTPS")
        assert reply.status == 200 and reply.read() == b"a page server"
        cookie = reply.headers["Set-Cookie"]
        assert cookie.startswith(f"{COOKIE}=p1") and all(a in cookie for a in ("Secure", "HttpOnly", "SameSite=Lax"))
        with pytest.raises(OSError):  # no plain HTTP on the TLS port
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
    finally:
        proxy.terminate()
        proxy.wait(10)
        backend.shutdown()


def test_two_browsers_land_on_different_page_servers_and_both_work(command, browser):
    first, second = visitor(browser), visitor(browser)
    for page in (first, second):
        page.goto(command.url + "/filters")
        page.locator('[data-testid="stMetric"]').first.wait_for(timeout=120_000)
        wait_ready(page)
    assert {page_server_of(first), page_server_of(second)} == {"p1", "p2"}
    # An upload (an HTTP request of its own) goes through the proxy to the visitor's own page server, which
    # then reads it in the websocket's rerun: were they on different page servers, the file would be unknown.
    page = second
    page.locator('[data-testid="stButtonGroup"]').get_by_text("Upload", exact=True).click()
    wait_ready(page)
    png = command.folder / "upload.png"
    from PIL import Image

    Image.new("RGB", (40, 30), (200, 30, 30)).save(png)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(png))
    page.wait_for_function("() => document.body.innerHTML.includes('upload.png: 30 x 40')", timeout=60_000)
    wait_ready(page)
    assert page.locator('[data-testid="stMetric"]').count() >= 2
    assert page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]').count() == 0
    page.screenshot(path=str(SHOTS / "class-server-upload.png"))
    for page in (first, second):
        page.context.close()


def test_the_operator_page_is_refused_to_a_non_operator_and_shows_the_whole_class_to_an_operator(command, browser):
    students = [visitor(browser), visitor(browser)]
    for page in students:
        page.goto(command.url + "/filters")
        wait_ready(page)
    assert {page_server_of(p) for p in students} == {"p1", "p2"}
    page = visitor(browser)
    page.goto(command.url + "/operator")
    wait_ready(page)
    nav = page.locator('[data-testid="stSidebarNav"]')
    assert nav.get_by_text("Operator").count() == 0  # not listed for a non-operator
    assert page.locator('[data-testid="stMetric"]').count() == 0 and page.get_by_text("Jobs running").count() == 0
    token = page.locator('[data-testid="stTextInput"] input[type="password"]')
    token.fill("not-the-token")
    page.get_by_role("button", name="Open").click()
    page.get_by_text("That is not the operator token.").wait_for(timeout=30_000)
    assert page.get_by_text("Jobs running").count() == 0
    token_file = Path(command.folder / "state" / "class-server" / "operator-token")
    assert "not-the-token" not in command.output() and token_file.read_text() not in command.output()
    token.fill(token_file.read_text().strip())
    page.get_by_role("button", name="Open").click()
    sessions = page.locator('[data-testid="stMetric"]', has_text="Sessions")
    sessions.wait_for(timeout=30_000)
    # Every session of the class server, from both page servers' registries: the two students and this one.
    wait_until(lambda: int(sessions.locator('[data-testid="stMetricValue"]').inner_text()) >= 3, timeout=30,
               interval=0.5, what="three sessions on the operator's page")
    assert nav.get_by_text("Operator").count() == 1  # now listed
    table = page.locator('[data-testid="stDataFrame"]').last
    table.wait_for(timeout=30_000)
    page.screenshot(path=str(SHOTS / "class-server-operator.png"))
    for p in (*students, page):
        p.context.close()


def test_a_lost_ray_head_is_started_again_and_the_pages_keep_serving(command, browser):
    """The head goes (as a crash would); the command starts it again at the same address. The next test's
    training job runs on the restarted head."""
    head = [pid for pid in marked_processes(command.marker)
            if b"gcs_server" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert head, "no Ray head (gcs_server) among the class server's processes"
    for pid in head:
        os.kill(pid, signal.SIGKILL)
    page = visitor(browser)
    page.goto(command.url + "/filters")  # the pages serve meanwhile
    page.locator('[data-testid="stMetric"]').first.wait_for(timeout=60_000)
    wait_until(lambda: "The Ray head is back" in command.output(), timeout=120, interval=0.5,
               what="the Ray head started again", details=lambda: command.output()[-1500:])
    page.context.close()


def test_killing_a_page_server_sends_its_users_to_another_and_they_find_their_runs(command, browser):
    page = visitor(browser)
    page.goto(command.url + "/train")
    wait_ready(page)
    accuracy = train_digits_one_epoch(page)  # a job on the class server's Ray head; the run lands in the store
    score = accuracy.locator('[data-testid="stMetricValue"]').inner_text()
    home = page_server_of(page)
    os.kill(command.page_server_pid(home), signal.SIGKILL)
    # Streamlit's page reconnects by itself; the proxy sends it to the other page server, which finds the run in
    # the workspace named by the page's link.
    wait_until(lambda: page_server_of(page) != home, timeout=60, interval=0.3,
               what="the browser moved to the other page server")
    accuracy.wait_for(timeout=60_000)
    wait_ready(page)
    assert accuracy.locator('[data-testid="stMetricValue"]').inner_text() == score
    page.screenshot(path=str(SHOTS / "class-server-after-failover.png"))
    # A download (a media file the new page server made) comes through the proxy too.
    page.get_by_role("tab", name="Save, export").click()
    button = page.get_by_role("button", name="Download the model (.keras)")
    button.wait_for(timeout=60_000)
    with page.expect_download(timeout=60_000) as download:
        button.click()
    assert Path(download.value.path()).read_bytes()[:2] == b"PK"  # a .keras file is a zip
    assert f"Page server {home} ended" in command.output()
    page.context.close()


def test_stopping_the_command_leaves_no_process_behind(command):
    assert marked_processes(command.marker)  # its page servers, HAProxy, Ray's head and workers
    assert command.stop() == 0
    assert "Stopped: nothing left running." in command.output(), command.output()[-2000:]
    assert marked_processes(command.marker) == []
    with pytest.raises(OSError):
        urllib.request.urlopen(command.url + "/_stcore/health", timeout=2)
