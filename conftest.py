"""What every pytest run shares: the project root importable, TensorFlow quiet, nothing downloaded.

The tests (``tests/``) and cvcore's docstring examples (``pytest --doctest-modules cvcore``, part of
the test command through ``pytest.ini``) both see these fixtures. Each docstring example runs in a
temporary folder of its own (``tempfile.mkdtemp()`` lands there, as does the app's state folder)
and offline, as every test does.
"""
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest  # noqa: E402


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
    """Every test's workspaces in a folder of its own (the shared demo data stays in the state folder)."""
    monkeypatch.setenv("CVCORE_WORKSPACE_DIR", str(tmp_path / "workspaces"))
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
