"""cvcore.evaluation, cvcore.visualize.activations, cvcore.saving and cvcore.export."""
import subprocess
import sys

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from cvcore import data, evaluation, export, saving  # noqa: E402
from cvcore.errors import InvalidModelError, ShapeError  # noqa: E402
from cvcore.models import PRESETS, build_model  # noqa: E402
from cvcore.training import train  # noqa: E402
from cvcore.visualize import activations, blank_fraction, layer_names  # noqa: E402

BASIC = "Basic CNN (6 and 12 filters)"


@pytest.fixture(scope="module")
def digits():
    return data.load_dataset("digits")


@pytest.fixture(scope="module")
def trained(digits):
    (x, y), (xt, yt), _ = digits
    keras.utils.set_random_seed(0)
    model = build_model(PRESETS[BASIC])
    train(model, ((x, y), (xt, yt)), epochs=3, batch_size=32)
    return model


# ----------------------------------------------------------------------------- evaluation


def test_confusion_matrix_counts():
    cm = evaluation.confusion_matrix([0, 1, 2, 2, 1], [0, 2, 2, 2, 1], 3)
    assert cm.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 2]]
    with pytest.raises(ShapeError, match="0..2"):
        evaluation.confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(ShapeError, match="differ"):
        evaluation.confusion_matrix([0], [0, 1], 2)


def test_evaluate_agrees_with_keras(trained, digits):
    _, (xt, yt), _ = digits
    ev = evaluation.evaluate(trained, xt, yt)
    x = xt.astype("float32")[..., None] / 255.0
    loss, acc = trained.evaluate(x, yt, verbose=0)
    assert ev.accuracy == pytest.approx(acc, abs=1e-6)
    assert ev.loss == pytest.approx(loss, rel=1e-3)
    assert ev.accuracy > 0.5  # three epochs on the digits learn something
    assert ev.confusion.sum() == len(yt) and np.trace(ev.confusion) == round(ev.accuracy * len(yt))
    assert len(ev.wrong) == len(yt) - np.trace(ev.confusion)
    confidence = ev.proba[ev.wrong, ev.predicted[ev.wrong]]
    assert np.all(np.diff(confidence) <= 1e-7)  # most confident mistakes first
    np.testing.assert_allclose(ev.proba.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    "history, verdict",
    [
        ({"loss": [1.0, 0.5, 0.2, 0.1], "val_loss": [1.0, 0.6, 0.5, 0.6], "accuracy": [.6, .8, .93, .97],
          "val_accuracy": [.6, .78, .82, .81]}, "overfitting"),
        ({"loss": [2.0, 1.5, 1.2], "val_loss": [1.8, 1.3, 1.0], "accuracy": [.3, .5, .6],
          "val_accuracy": [.35, .55, .65]}, "underfitting"),
        ({"loss": [0.6, 0.3, 0.2], "val_loss": [0.5, 0.3, 0.25], "accuracy": [.8, .9, .94],
          "val_accuracy": [.84, .9, .92]}, "good fit"),
        ({"loss": [0.6], "val_loss": [0.5]}, "too short to tell"),
    ],
)
def test_diagnose_fit(history, verdict):
    d = evaluation.diagnose_fit(history)
    assert d.verdict == verdict and d.reason


# ----------------------------------------------------------------------------- activations


def test_activations_equal_keras_submodels(trained, digits):
    _, (xt, _), _ = digits
    names = layer_names(trained)
    spatial = layer_names(trained, spatial_only=True)
    assert len(spatial) == 4 and set(spatial) < set(names)
    acts = activations(trained, xt[0], names)
    assert list(acts) == names
    for layer in trained.layers:
        probe = keras.Model(trained.inputs[0], layer.output)
        expected = np.asarray(probe(xt[:1].astype("float32")[..., None] / 255.0))[0]
        np.testing.assert_allclose(acts[layer.name], expected, atol=1e-5)
    assert acts[spatial[0]].shape == (26, 26, 6)
    np.testing.assert_allclose(acts[names[-1]].sum(), 1.0, atol=1e-5)  # the softmax


def test_activations_errors(trained):
    with pytest.raises(ValueError, match="No layer named 'nope'"):
        activations(trained, np.zeros((28, 28), np.uint8), ["nope"])
    with pytest.raises(ShapeError):
        activations(trained, np.zeros((2, 28, 28, 1, 1)), [layer_names(trained)[0]])


def test_blank_fraction():
    a = np.zeros((4, 4, 4), np.float32)
    a[1, 1, 0] = 2.0
    assert blank_fraction(a) == 0.75


# ----------------------------------------------------------------------------- saving


def test_save_and_load_round_trip(trained, digits):
    _, (xt, _), _ = digits
    raw = saving.model_to_bytes(trained)
    assert raw[:2] == b"PK"
    loaded = saving.load_model_bytes(raw)
    x = xt[:5].astype("float32")[..., None] / 255.0
    np.testing.assert_allclose(loaded.predict(x, verbose=0), trained.predict(x, verbose=0), atol=1e-6)


def test_a_model_with_python_code_is_refused(tmp_path):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs))
    path = tmp_path / "lambda.keras"
    model.save(path)
    with pytest.raises(InvalidModelError, match="Python code"):
        saving.load_model_bytes(path.read_bytes())


@pytest.mark.parametrize("raw, match", [(b"", "empty"), (b"not a zip at all", "not a .keras"),
                                         (b"PK\x05\x06" + b"\x00" * 18, "no config.json")])
def test_bad_model_files(raw, match):
    with pytest.raises(InvalidModelError, match=match):
        saving.load_model_bytes(raw)


# ----------------------------------------------------------------------------- export


def test_exported_script_runs_and_builds_the_same_model(tmp_path):
    spec = PRESETS["Basic CNN + L2 regularization"]
    src = export.training_script(spec, dataset="digits", n_train=300, n_val=100,
                                 optimizer={"name": "sgd", "learning_rate": 0.05, "momentum": 0.9, "nesterov": True},
                                 epochs=1, batch_size=32, seed=1)
    script = tmp_path / "run.py"
    script.write_text(src)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "test accuracy:" in done.stdout
    assert f"{build_model(spec).count_params():,}" in done.stdout  # model.summary()'s total
