"""What every pytest run shares: the project root importable, TensorFlow quiet, nothing downloaded.

Jobs run on one real local Ray instance for the whole session (``ray start --head``: two CPUs, no
dashboard, token authentication on, as an operator's cluster has it), joined through ``RAY_ADDRESS``
as an operator's page servers join theirs.

The tests (``tests/``) and cvcore's docstring examples (``pytest --doctest-modules cvcore``, part of
the test command through ``pytest.ini``) both see these fixtures. Each docstring example runs in a
temporary folder of its own (``tempfile.mkdtemp()`` lands there, as does the app's state folder)
and offline, as every test does.
"""
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# Ray reads its authentication mode once, when first imported (collecting cvcore's doctests imports it):
# the session's token is set before anything else runs.
os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32), RAY_USAGE_STATS_ENABLED="0")

import pytest  # noqa: E402


def _scan_installed_components_once() -> None:
    """Every new AppTest scans the metadata of every installed package for Streamlit components (about 0.3 s
    here, in each of the suite's hundreds of AppTests); what is installed does not change during a run, so
    the scan's answer is kept. (`streamlit run` scans once per server, as before.)"""
    from streamlit.components.v2 import manifest_scanner

    scan, found = manifest_scanner.scan_component_manifests, []

    def scan_once(*args, **kwargs):
        if args or kwargs:
            return scan(*args, **kwargs)
        if not found:
            found.append(scan())
        return list(found[0])

    manifest_scanner.scan_component_manifests = scan_once


_scan_installed_components_once()


@pytest.fixture
def offline_weights(monkeypatch, tmp_path):
    """No weights are downloaded in tests: Keras' cache is empty, no operator folder is set, and
    every fetch through Keras' file utilities fails as it does offline (no test may download)."""
    keras = pytest.importorskip("keras")
    from keras.src.utils import file_utils

    from cvcore import applications

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.delenv(applications.WEIGHTS_DIR_ENV, raising=False)
    real = file_utils.get_file

    def offline(fname=None, origin=None, *args, **kwargs):
        if origin and origin.startswith("http"):
            raise Exception(f"URL fetch failure on {origin}: None -- [Errno -2] Name or service not known")
        return real(fname, origin, *args, **kwargs)

    monkeypatch.setattr(file_utils, "get_file", offline)  # what keras.applications call
    monkeypatch.setattr(keras.utils, "get_file", offline)
    yield


@pytest.fixture(autouse=True)
def _workspaces_of_this_test(tmp_path, monkeypatch):
    """Every test's workspaces, and its page server's session registry, in folders of its own (the shared demo
    data stays in the state folder)."""
    monkeypatch.setenv("CVCORE_WORKSPACE_DIR", str(tmp_path / "workspaces"))
    monkeypatch.setenv("CVCORE_SESSIONS_DIR", str(tmp_path / "sessions"))
    yield


@pytest.fixture(autouse=True)
def _docstring_examples_in_a_sandbox(request, tmp_path, monkeypatch):
    """A docstring example writes into its own temporary folder and never downloads."""
    if type(request.node).__name__ != "DoctestItem":
        yield
        return
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("CVCORE_STATE_DIR", str(tmp_path / "state"))
    request.getfixturevalue("offline_weights")
    yield


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_ray_head(num_cpus: int = 2, **env) -> tuple:
    """``ray start --head --block`` in a process of its own, with token authentication; returns
    ``(process, address, environment)`` once the head answers a health check. Stop it with
    :func:`stop_ray_head`."""
    ray_cli = str(Path(sys.executable).with_name("ray"))
    port = free_port()
    # With the session's RAY_AUTH_MODE and RAY_AUTH_TOKEN (see above). No drain on SIGTERM: Ray's default
    # waits 30 s for a node to drain before it stops (for Ray Serve's replicas, which no test runs).
    environ = {**os.environ, "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0", **env}
    proc = subprocess.Popen([ray_cli, "start", "--head", "--block", f"--port={port}", f"--num-cpus={num_cpus}",
                             "--include-dashboard=false", "--disable-usage-stats",
                             f"--object-store-memory={300 * 1024**2}", f"--node-manager-port={free_port()}"],
                            env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while subprocess.run([ray_cli, "health-check", f"--address={address}"], env=environ,
                         capture_output=True).returncode != 0:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"Ray's head did not start at {address}")
    return proc, address, environ


def stop_ray_head(proc) -> None:
    """End a head started by :func:`start_ray_head` and every Ray process under it."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)  # `ray start --block` stops its processes in order
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="session", autouse=True)
def ray_address():
    """One local Ray instance for the whole session; every page server and job client joins it."""
    proc, address, _ = start_ray_head()
    saved = {k: os.environ.get(k) for k in ("RAY_ADDRESS",)}
    os.environ["RAY_ADDRESS"] = address
    yield address
    from cvcore import jobs

    if jobs._default is not None:
        jobs._default.close()
    stop_ray_head(proc)
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
