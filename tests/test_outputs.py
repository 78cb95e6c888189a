"""cvcore.outputs: one rule for a model's output (softmax, sigmoid, logits), and everything that follows it.

* the rule: a spec and the model built from it agree, for every ending and every preset;
* the loss and the exported code come from one table; the probabilities are what Keras trains on;
* the class score that gradients read is the logit beneath a softmax or a sigmoid;
* training compiles with the rule, evaluation reads probabilities by it;
* the done-when of issue 11: the exported script's first-epoch loss is within 2% of the page's
  for a softmax-, a sigmoid- and a linear-ended model trained with the same seed (and a relu-ended one).
"""
import copy
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from cvcore import device, evaluation, export, outputs, runs, training
from cvcore.data import load_dataset
from cvcore.errors import CvcoreError, ShapeError
from cvcore.models import PRESETS, build_model

device.configure()
import keras  # noqa: E402

BASE = {"input_shape": [28, 28, 1], "layers": [
    {"type": "Conv2D", "filters": 8, "kernel_size": 3, "activation": "relu"},
    {"type": "MaxPooling2D", "pool_size": 2},
    {"type": "Flatten"},
    {"type": "Dense", "units": 10, "activation": "softmax"},
]}


def ending(activation, *extra):
    """BASE with its last Dense ending in ``activation`` (None: no activation, linear), then ``extra`` layers."""
    spec = copy.deepcopy(BASE)
    if activation is None:
        spec["layers"][-1].pop("activation")
    else:
        spec["layers"][-1]["activation"] = activation
    spec["layers"].extend(extra)
    return spec


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


# ----------------------------------------------------------------------------- the rule


SPECS = {
    "dense softmax": (ending("softmax"), "softmax"),
    "dense sigmoid": (ending("sigmoid"), "sigmoid"),
    "dense linear (no activation)": (ending(None), "logits"),
    "dense linear (named)": (ending("linear"), "logits"),
    "dense relu": (ending("relu"), "logits"),
    "dense tanh": (ending("tanh"), "logits"),
    "activation softmax": (ending(None, {"type": "Activation", "activation": "softmax"}), "softmax"),
    "activation sigmoid": (ending(None, {"type": "Activation", "activation": "sigmoid"}), "sigmoid"),
    "activation relu after softmax": (ending("softmax", {"type": "Activation", "activation": "relu"}), "logits"),
    "dropout after softmax": (ending("softmax", {"type": "Dropout", "rate": 0.3}), "softmax"),
    "dropout and flatten after sigmoid": (ending("sigmoid", {"type": "Dropout", "rate": 0.3}, {"type": "Flatten"}),
                                          "sigmoid"),
    "batch normalization after softmax": (ending("softmax", {"type": "BatchNormalization"}), "logits"),
}


@pytest.mark.parametrize("name", list(SPECS))
def test_a_spec_and_its_model_end_alike(name):
    spec, expected = SPECS[name]
    assert outputs.spec_output_kind(spec) == expected
    assert outputs.output_kind(build_model(spec)) == expected


@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_preset_ends_alike_as_spec_and_model(preset):
    spec = PRESETS[preset]
    assert outputs.spec_output_kind(spec) == outputs.output_kind(build_model(spec))


def test_functional_nested_and_odd_endings():
    inp = keras.Input((6,))
    z = keras.layers.Dense(3, name="z")(inp)
    assert outputs.output_kind(keras.Model(inp, keras.layers.Softmax()(z))) == "softmax"
    assert outputs.output_kind(keras.Model(inp, keras.layers.Activation("sigmoid")(z))) == "sigmoid"
    assert outputs.output_kind(keras.Model(inp, z)) == "logits"
    dropped = keras.layers.Dropout(0.5)(keras.layers.Activation("softmax")(z))
    assert outputs.output_kind(keras.Model(inp, dropped)) == "softmax"
    # an activation given as a function, TensorFlow's softmax (named softmax_v2) included
    tf = device.tensorflow()
    for activation, kind in ((keras.activations.sigmoid, "sigmoid"), (tf.nn.softmax, "softmax"),
                             (keras.activations.relu, "logits")):
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3, activation=activation)])
        assert outputs.output_kind(model) == kind
    # a model nested as the output layer is read by the same rule
    head = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3, activation="sigmoid")], name="head")
    outer = keras.Model(inp, head(inp))
    assert outputs.output_kind(outer) == "sigmoid"
    assert outputs.score_source(outer).what == "inverted output"
    with pytest.raises(CvcoreError, match="`model` must be a Keras model"):
        outputs.output_kind("vgg16")
    with pytest.raises(CvcoreError, match="`spec`"):
        outputs.spec_output_kind({"layers": "Dense"})


# ----------------------------------------------------------------------------- loss, code, probabilities


@pytest.mark.parametrize("kind", outputs.OUTPUT_KINDS)
def test_the_loss_and_its_code_come_from_one_table(kind):
    written = eval(outputs.loss_code(kind), {"keras": keras})  # noqa: S307 - our own one-line expression
    assert type(written) is type(outputs.loss(kind))
    assert written.get_config() == outputs.loss(kind).get_config()
    assert outputs.loss(kind).get_config()["from_logits"] is (kind == "logits")


@pytest.mark.parametrize("activation, kind", [("softmax", "softmax"), ("sigmoid", "sigmoid"), (None, "logits"),
                                              ("relu", "logits"), ("tanh", "logits")])
def test_probabilities_are_what_keras_trains_on(activation, kind):
    """The cross-entropy of ``probabilities(outputs, kind)`` is the loss Keras computes with ``loss(kind)``:
    for a sigmoid that is the softmax of the logits beneath it, not the sigmoid's outputs."""
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(4, activation=activation)])
    assert outputs.output_kind(model) == kind
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 6)).astype("float32") * 3
    y = rng.integers(0, 4, 64)
    out = model(x)
    keras_loss = float(outputs.loss(kind)(y, out))
    p = outputs.probabilities(np.asarray(out), kind)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    ours = float(-np.mean(np.log(p[np.arange(64), y])))
    assert ours == pytest.approx(keras_loss, rel=1e-4)
    model.compile(loss=outputs.loss(kind))
    assert float(model.evaluate(x, y, verbose=0, batch_size=64)) == pytest.approx(keras_loss, rel=1e-5)
    if kind == "sigmoid":  # the sigmoid's own outputs, normalised, would give another loss
        s = np.asarray(out) / np.asarray(out).sum(axis=1, keepdims=True)
        assert abs(float(-np.mean(np.log(s[np.arange(64), y]))) - keras_loss) > 0.05


def test_probabilities_of_one_column_and_bad_arguments():
    np.testing.assert_allclose(outputs.probabilities([[0.25]], "sigmoid"), [[0.25]], rtol=1e-6)
    np.testing.assert_allclose(outputs.probabilities([[0.0]], "logits"), [[0.5]])
    np.testing.assert_allclose(outputs.probabilities([[0.0, 1.0]], "sigmoid"), [[0.0, 1.0]], atol=1e-6)  # clipped
    assert np.isnan(outputs.probabilities([[np.nan, 1.0]], "logits")).all()  # a diverged model is not an error
    with pytest.raises(CvcoreError, match=r"`kind` must be one of 'softmax', 'sigmoid', 'logits'; received 'relu'"):
        outputs.probabilities([[0.0, 1.0]], "relu")
    with pytest.raises(ShapeError, match=r"`outputs`.*\(1, 2, 2\)"):
        outputs.probabilities(np.zeros((1, 2, 2)), "logits")
    with pytest.raises(CvcoreError, match="`kind`"):
        outputs.loss_code("linear")


# ----------------------------------------------------------------------------- where gradients read the score


def _logit_model(seed=2):
    keras.utils.set_random_seed(seed)
    inp = keras.Input((5,))
    h = keras.layers.Dense(8, activation="relu", name="hidden")(inp)
    return inp, h, keras.layers.Dense(3, name="z")


def test_the_score_is_the_logit_beneath_the_activation():
    inp, h, dense = _logit_model()
    z = dense(h)
    x = np.random.default_rng(2).normal(size=(4, 5)).astype("float32")
    logits = np.asarray(keras.Model(inp, z)(x))
    fused = {kind: keras.layers.Dense(3, activation=kind, name=f"fused_{kind}") for kind in ("softmax", "sigmoid")}
    models = {
        "logits": keras.Model(inp, z),
        "Activation softmax": keras.Model(inp, keras.layers.Activation("softmax")(z)),
        "Activation sigmoid": keras.Model(inp, keras.layers.Activation("sigmoid")(z)),
        "Softmax layer": keras.Model(inp, keras.layers.Softmax()(z)),
        "softmax then Dropout": keras.Model(inp, keras.layers.Dropout(0.5)(keras.layers.Softmax()(z))),
        "Dense softmax": keras.Model(inp, fused["softmax"](h)),
        "Dense sigmoid": keras.Model(inp, fused["sigmoid"](h)),
    }
    for layer in fused.values():
        layer.set_weights(dense.get_weights())
    sequential = keras.Sequential([keras.Input((5,)), models["logits"].get_layer("hidden"),
                                   keras.layers.Dense(3, activation="sigmoid", name="seq_z")])
    sequential.layers[-1].set_weights(dense.get_weights())
    models["Sequential Dense sigmoid"] = sequential
    from cvcore import model_inputs

    for name, model in models.items():
        source = outputs.score_source(model)
        assert source.what == ("output" if name == "logits" else "logit"), name
        scores = np.asarray(source.scores(model_inputs.submodel(model, [source.layer])(x)))
        np.testing.assert_allclose(scores, logits, rtol=1e-5, atol=1e-5, err_msg=name)
        probs = np.asarray(source.probabilities(model_inputs.submodel(model, [source.layer])(x)))
        np.testing.assert_allclose(probs, outputs.probabilities(np.asarray(model(x)), outputs.output_kind(model)),
                                   rtol=1e-4, atol=1e-6, err_msg=name)
    # a softmax on the input itself cannot be looked behind: its output, turned back into logits
    bare = keras.Sequential([keras.Input((3,)), keras.layers.Activation("sigmoid")])
    source = outputs.score_source(bare)
    assert source.what == "inverted output"
    np.testing.assert_allclose(np.asarray(source.scores(bare(logits))), logits, rtol=1e-3, atol=1e-3)


# ----------------------------------------------------------------------------- training and evaluation follow it


@pytest.mark.parametrize("activation, from_logits", [("softmax", False), ("sigmoid", False), (None, True),
                                                     ("relu", True)])
def test_training_and_evaluation_follow_the_rule(digits, activation, from_logits):
    (x, y), (xt, yt), _ = digits
    keras.utils.set_random_seed(0)
    model = build_model(ending(activation))
    history = training.train(model, ((x[:200], y[:200]), (None, None)), epochs=1, batch_size=32)
    assert model.loss.get_config()["from_logits"] is from_logits
    assert np.isfinite(history["loss"][0])
    ev = evaluation.evaluate(model, xt[:100], yt[:100])
    np.testing.assert_allclose(ev.proba.sum(axis=1), 1.0, rtol=1e-5)
    keras_loss = model.evaluate(training.prepare_images(xt[:100], (28, 28, 1)), yt[:100], verbose=0)[0]
    assert ev.loss == pytest.approx(keras_loss, rel=1e-3)  # the training loss, whatever the ending


# ----------------------------------------------------------------------------- the exported script (issue 11)


# The exported scripts run in one fresh Python (one TensorFlow start, not four), each in a namespace of
# its own, offline; the driver fails if a script leaned on cvcore.
_DRIVER = """
import contextlib, io, json, runpy, sys
histories = {}
for case, path in json.loads(sys.argv[1]).items():
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        runpy.run_path(path, run_name="__main__")
    lines = [line for line in printed.getvalue().splitlines() if line.startswith("history:")]
    histories[case] = json.loads(lines[-1][len("history:"):]) if lines else printed.getvalue()[-2000:]
leaned = sorted(name for name in sys.modules if name == "cvcore" or name.startswith("cvcore."))
assert not leaned, f"an exported script imported {leaned}: it must stand alone"
print("histories:", json.dumps(histories))
"""

SCRIPT_CASES = {"softmax": ("softmax", True), "sigmoid": ("sigmoid", True), "linear": (None, True),
                "relu-not-fast": ("relu", False)}


@pytest.fixture(scope="module")
def scripts_and_runs(tmp_path_factory, digits):
    """For each ending: the page's run (what a Train-page job runs) and the history its exported script printed."""
    folder = tmp_path_factory.mktemp("scripts")
    pages, paths = {}, {}
    for case, (activation, fast) in SCRIPT_CASES.items():
        spec = ending(activation)
        config = runs.RunConfig(spec=spec, dataset="digits", n_train=400, n_val=100, epochs=1, batch_size=32,
                                fast=fast, seed=7)
        pages[case] = runs.run_training(config, digits)
        src = export.training_script(spec, dataset="digits", n_train=config.n_train, n_val=config.n_val,
                                     optimizer=config.optimizer, epochs=config.epochs, batch_size=config.batch_size,
                                     seed=config.seed, fast=config.fast)
        assert outputs.loss_code(outputs.spec_output_kind(spec)) in src
        paths[case] = str(folder / f"{case}.py")
        (folder / f"{case}.py").write_text(src)
    env = dict(os.environ, KERAS_HOME=str(folder / "keras_home"), HTTP_PROXY="http://127.0.0.1:9",
               HTTPS_PROXY="http://127.0.0.1:9", http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9",
               NO_PROXY="", no_proxy="", PYTHONHASHSEED="0")
    done = subprocess.run([sys.executable, "-c", _DRIVER, json.dumps(paths)], capture_output=True, text=True,
                          timeout=600, cwd=folder, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("histories:")]
    assert lines, f"the scripts printed no histories:\n{done.stdout[-2000:]}"
    return pages, json.loads(lines[-1][len("histories:"):])


@pytest.mark.parametrize("case", list(SCRIPT_CASES))
def test_exported_script_reproduces_the_pages_first_epoch_loss(scripts_and_runs, case):
    pages, scripts = scripts_and_runs
    page, script = pages[case], scripts[case]
    assert isinstance(script, dict), f"the {case} script printed no history:\n{script}"
    page_loss, script_loss = page.history["loss"][0], script["loss"][0]
    print(f"{case}: page {page_loss:.6f}, script {script_loss:.6f}, "
          f"relative difference {abs(script_loss - page_loss) / page_loss:.2e}")
    assert abs(script_loss - page_loss) <= 0.02 * page_loss, (page_loss, script_loss)
    # closer still: the same initial weights, batches in the same order, the same loss (float round-off aside)
    assert script_loss == pytest.approx(page_loss, rel=1e-3)
    assert script["val_loss"][0] == pytest.approx(page.history["val_loss"][0], rel=0.02)
