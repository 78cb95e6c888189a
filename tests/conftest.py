"""Shared test setup: quiet TensorFlow, the project root on sys.path."""
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
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
