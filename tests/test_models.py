"""cvcore.models: specs, presets and their parameter counts, checked against Keras."""
import copy
import os
import subprocess
import sys

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from cvcore import models  # noqa: E402
from cvcore.errors import CvcoreError, SpecError  # noqa: E402
from cvcore.models import (  # noqa: E402
    PRESET_PARAMS,
    PRESETS,
    build_model,
    count_spec_params,
    summarize,
    validate_spec,
)

BASIC = "Basic CNN (6 and 12 filters)"


@pytest.fixture(scope="module")
def keras():
    from cvcore import device

    device.configure()
    import keras

    return keras


def test_every_preset_has_a_published_count_and_a_note():
    assert set(PRESETS) == set(PRESET_PARAMS) == set(models.PRESET_NOTES)


def test_published_counts():
    # The counts the seed chapters give, written out so a changed preset fails here.
    assert PRESET_PARAMS[BASIC] == 3_730
    assert PRESET_PARAMS["Basic CNN + L2 regularization"] == 3_730
    assert PRESET_PARAMS["Basic CNN + Dropout 0.2"] == 3_730
    assert PRESET_PARAMS["Keras mnist_cnn (32-64 convolutions, dropout)"] == 1_199_882
    assert PRESET_PARAMS["64 filters 5x5, Dense 100"] == 924_374
    assert PRESET_PARAMS[models.NO_POOL_PRESET] == 55_744
    assert PRESET_PARAMS["Keras MNIST tutorial (Conv32-Pool-Conv64-Pool-Conv64, Dense 64)"] == 93_322


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_counts_equal_keras(keras, name):
    model = build_model(PRESETS[name])
    assert model.count_params() == PRESET_PARAMS[name]
    assert count_spec_params(PRESETS[name]) == PRESET_PARAMS[name]
    rows = summarize(model)
    assert sum(r["params"] for r in rows) == model.count_params()
    trainable = sum(int(w.numpy().size) for w in model.trainable_weights)
    assert sum(r["trainable"] for r in rows) == trainable
    # The cheap, TensorFlow-free shapes are Keras' own.
    assert validate_spec(PRESETS[name]) == [r["output_shape"] for r in rows]
    assert [r["type"] for r in rows] == [layer["type"] for layer in PRESETS[name]["layers"]]


def test_batch_normalization_count_differs(keras):
    model = build_model(PRESETS["Basic CNN + BatchNormalization"])
    rows = summarize(model)
    assert model.count_params() == 3_730 + 4 * 6 + 4 * 12 == 3_802
    assert sum(r["trainable"] for r in rows) == 3_730 + 2 * 6 + 2 * 12 == 3_766


def test_no_pool_feature_map_and_dense_cost():
    assert models.NO_POOL_FEATURE_MAP == (22, 22, 64)
    assert models.NO_POOL_DENSE512_PARAMS == 22 * 22 * 64 * 512 + 512 == 15_860_224
    tutorial = PRESETS["Keras MNIST tutorial (Conv32-Pool-Conv64-Pool-Conv64, Dense 64)"]
    base = {"input_shape": [28, 28, 1], "layers": tutorial["layers"][:5]}  # up to the last Conv2D
    cost = models.dense_head_cost(base, 64)
    assert cost == {"feature_map": (3, 3, 64), "flattened": 576, "dense_params": 36_928}


def test_no_pool_dense512_equals_keras(keras):
    spec = copy.deepcopy(PRESETS[models.NO_POOL_PRESET])
    base = build_model(spec).count_params()
    spec["layers"] += [{"type": "Flatten"}, {"type": "Dense", "units": 512}]
    assert build_model(spec).count_params() - base == models.NO_POOL_DENSE512_PARAMS


def test_summarize_rows(keras):
    rows = summarize(build_model(PRESETS[BASIC]))
    assert rows[0]["type"] == "Conv2D"
    assert rows[0]["output_shape"] == (None, 26, 26, 6)
    assert rows[0]["params"] == rows[0]["trainable"] == 60
    assert set(rows[0]) == {"layer", "type", "output_shape", "params", "trainable"}
    assert rows[-1]["output_shape"] == (None, 10)


def test_build_model_applies_every_setting(keras):
    """Each argument of a spec reaches the Keras layer it builds (read back from the layers' configs)."""
    spec = {
        "input_shape": [28, 28, 1],
        "layers": [
            {"type": "Conv2D", "filters": 4, "kernel_size": [3, 5], "strides": 2, "padding": "same",
             "activation": "tanh", "kernel_regularizer": {"l1": 0.001}, "bias_regularizer": {"l2": 0.02},
             "activity_regularizer": {"l1": 0.1, "l2": 0.2}},
            {"type": "AveragePooling2D", "pool_size": 3, "strides": 1, "padding": "same"},
            {"type": "BatchNormalization", "momentum": 0.9, "epsilon": 0.01, "center": False},
            {"type": "Activation", "activation": "sigmoid"},
            {"type": "Dropout", "rate": 0.25, "seed": 7},
            {"type": "GlobalAveragePooling2D"},
            {"type": "Dense", "units": 7, "use_bias": False, "kernel_regularizer": {"l1": 0.5, "l2": 0.25}},
        ],
    }
    conv, pool, norm, act, drop, _, dense = build_model(spec).layers
    c = conv.get_config()
    assert (c["filters"], tuple(c["kernel_size"]), tuple(c["strides"]), c["padding"], c["activation"]) == (
        4, (3, 5), (2, 2), "same", "tanh")
    assert conv.kernel_regularizer.get_config()["l1"] == pytest.approx(0.001)
    assert conv.bias_regularizer.get_config()["l2"] == pytest.approx(0.02)
    assert conv.activity_regularizer.get_config() == {"l1": pytest.approx(0.1), "l2": pytest.approx(0.2)}
    p = pool.get_config()
    assert (type(pool).__name__, tuple(p["pool_size"]), tuple(p["strides"]), p["padding"]) == (
        "AveragePooling2D", (3, 3), (1, 1), "same")
    n = norm.get_config()
    assert (n["momentum"], n["epsilon"], n["center"], n["scale"]) == (pytest.approx(0.9), pytest.approx(0.01),
                                                                      False, True)
    assert act.get_config()["activation"] == "sigmoid"
    assert (drop.get_config()["rate"], drop.get_config()["seed"]) == (0.25, 7)
    d = dense.get_config()
    assert (d["units"], d["use_bias"]) == (7, False) and dense.bias is None
    assert dense.kernel_regularizer.get_config() == {"l1": pytest.approx(0.5), "l2": pytest.approx(0.25)}


def _spec(*layers, input_shape=(28, 28, 1)):
    return {"input_shape": list(input_shape), "layers": list(layers)}


CONV = {"type": "Conv2D", "filters": 6, "kernel_size": 3, "activation": "relu"}
POOL = {"type": "MaxPooling2D", "pool_size": 2}

INVALID = [
    # (spec, fragments the message must hold)
    (_spec(POOL, POOL, POOL, POOL, POOL, input_shape=(28, 28, 1)), ["Layer 5 (MaxPooling2D)", "1x1"]),
    (_spec(CONV, POOL, CONV, POOL, CONV, POOL, POOL), ["Layer 7 (MaxPooling2D)", "1x1"]),
    (_spec(CONV, {"type": "Conv3D", "filters": 2}), ["Layer 2", "unknown type 'Conv3D'"]),
    (_spec({"type": "__import__('os').system"}), ["Layer 1", "unknown type"]),
    (_spec(CONV, {"type": "Flatten"}, {"type": "Dense", "unit": 10}), ["Layer 3 (Dense)", "unknown argument 'unit'"]),
    (_spec({**CONV, "input_shape": [28, 28, 1]}), ["Layer 1 (Conv2D)", "'input_shape'", "spec's 'input_shape'"]),
    (_spec({**CONV, "filters": 0}), ["Layer 1 (Conv2D)", "`filters`", "0"]),
    (_spec({**CONV, "filters": "6"}), ["Layer 1 (Conv2D)", "`filters`", "'6'"]),
    (_spec({**CONV, "filters": True}), ["Layer 1 (Conv2D)", "`filters`", "True"]),
    (_spec({**CONV, "kernel_size": [3, 3, 3]}), ["Layer 1 (Conv2D)", "`kernel_size`"]),
    (_spec({**CONV, "padding": "full"}), ["Layer 1 (Conv2D)", "`padding`", "'full'"]),
    (_spec({**CONV, "activation": "swish"}), ["Layer 1 (Conv2D)", "`activation`", "'swish'"]),
    (_spec(CONV, {"type": "Activation", "activation": "linear"}), ["Layer 2 (Activation)", "'linear'"]),
    (_spec(CONV, {"type": "Dropout", "rate": 1.5}), ["Layer 2 (Dropout)", "`rate`", "1.5"]),
    (_spec(CONV, {"type": "Dropout"}), ["Layer 2 (Dropout)", "'rate' is required"]),
    (_spec({**CONV, "kernel_regularizer": {"l3": 0.1}}), ["Layer 1 (Conv2D)", "`kernel_regularizer`"]),
    (_spec({**CONV, "kernel_regularizer": {"l2": -0.1}}), ["Layer 1 (Conv2D)", "-0.1"]),
    (_spec({**CONV, "kernel_regularizer": "l2"}), ["Layer 1 (Conv2D)", "'l2'"]),
    (_spec(CONV, {"type": "Flatten"}, CONV), ["Layer 3 (Conv2D)", "feature map", "(4056,)"]),
    (_spec({**CONV, "kernel_size": 5}, input_shape=(4, 4, 1)), ["Layer 1 (Conv2D)", "5x5 kernel", "4x4"]),
    (_spec(CONV, input_shape=(28, 28)), ["Layer 1 (Conv2D)", "feature map"]),
    (_spec({**CONV, "name": "a"}, {**CONV, "name": "a"}), ["Layer 2 (Conv2D)", "'a'", "unique"]),
    (_spec({"type": "Flatten"}, {"type": "Dense", "units": 65536}), ["Layer 2 (Dense)", "limit"]),
    (_spec("Conv2D"), ["Layer 1", "'Conv2D'"]),
]


@pytest.mark.parametrize("spec,fragments", INVALID)
def test_invalid_specs_name_the_layer(spec, fragments):
    with pytest.raises(SpecError) as info:
        validate_spec(spec)
    for fragment in fragments:
        assert fragment in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, CvcoreError)


@pytest.mark.parametrize("spec,fragments", INVALID[:3] + INVALID[-6:-3])
def test_build_model_reports_before_building(keras, spec, fragments):
    with pytest.raises(SpecError) as info:
        build_model(spec)
    assert fragments[0] in str(info.value)


@pytest.mark.parametrize(
    "spec,fragment",
    [
        ("not a dict", "must be a dict"),
        ({"layers": [CONV]}, "`input_shape`"),
        ({"input_shape": [28, 28, 1]}, "`layers`"),
        ({"input_shape": [28, 28, 1], "layers": []}, "`layers`"),
        ({"input_shape": [0, 28, 1], "layers": [CONV]}, "[0, 28, 1]"),
        ({"input_shape": [28, 28, 1], "layers": [CONV], "optimizer": "adam"}, "'optimizer'"),
        ({"input_shape": [28, 28, 1], "layers": [CONV] * (models.MAX_LAYERS + 1)}, "at most"),
    ],
)
def test_invalid_spec_structure(spec, fragment):
    with pytest.raises(SpecError) as info:
        validate_spec(spec)
    assert fragment in str(info.value)


def test_same_padding_and_strides_shapes_equal_keras(keras):
    spec = _spec(
        {"type": "Conv2D", "filters": 3, "kernel_size": [5, 3], "strides": [2, 3], "padding": "same"},
        {"type": "MaxPooling2D", "pool_size": 3, "strides": 2, "padding": "same"},
        {"type": "AveragePooling2D", "pool_size": [2, 1]},
        {"type": "Dense", "units": 4},
        input_shape=(27, 31, 2),
    )
    assert validate_spec(spec) == [r["output_shape"] for r in summarize(build_model(spec))]
    assert count_spec_params(spec) == build_model(spec).count_params()


def test_spec_is_not_mutated_and_preset_copies(keras):
    before = copy.deepcopy(PRESETS)
    build_model(PRESETS[BASIC])
    build_model(PRESETS["Basic CNN + L2 regularization"])
    assert PRESETS == before
    mine = models.preset(BASIC)
    mine["layers"].pop()
    assert PRESETS == before
    with pytest.raises(SpecError, match="Unknown preset"):
        models.preset("nope")


def test_import_is_cheap():
    code = "import sys, cvcore, cvcore.models, cvcore.jobs, cvcore.training; " \
           "print('tensorflow' in sys.modules, 'keras' in sys.modules, 'streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.stdout.split() == ["False", "False", "False"]
