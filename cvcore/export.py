"""A training run as a standalone Keras 3 script: the page's settings as plain code.

The script uses only Keras, NumPy (TensorFlow's ``tf.data`` for a fast run,
scikit-learn and OpenCV for the bundled digits), the same data slices as the
page (the first ``n_train`` training images, the first ``n_val`` test images
for validation, the whole test set for the final score), the same model,
optimizer, loss (:func:`cvcore.outputs.loss_code` of the model's ending),
batch size, epochs and seed, and the same order of batches: a fast run's
seeded ``tf.data`` shuffle (as :func:`cvcore.training.train` builds it with
``fast=True``), or ``model.fit``'s own shuffle of arrays. With the same seed
on the same machine, its first epoch's loss matches the page's (the tests
check 2% for a softmax-, a sigmoid- and a linear-ended model). It ends by
printing the history, one JSON line, beside the test accuracy.
"""
from __future__ import annotations

import json
import math

from . import outputs
from .errors import CvcoreError, SpecError

__all__ = ["training_script"]

_OPTIMIZER_CLASSES = {"adam": "Adam", "sgd": "SGD", "rmsprop": "RMSprop"}

_LOADERS = {
    "mnist": "(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()",
    "fashion_mnist": "(x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()",
    "digits": '''def load_digits_28():
    """scikit-learn's 8x8 digits drawn 20x20 in a 28x28 box, split 80/20 per class (as ConvNet Explorer does)."""
    import cv2
    from sklearn.datasets import load_digits

    bunch = load_digits()
    small = (bunch.images * (255.0 / 16.0)).astype("float32")
    x = np.zeros((len(small), 28, 28), dtype="uint8")
    for i, im in enumerate(small):
        x[i, 4:24, 4:24] = np.clip(cv2.resize(im, (20, 20), interpolation=cv2.INTER_CUBIC), 0, 255).round()
    y = bunch.target.astype("uint8")
    test = np.zeros(len(y), dtype=bool)
    for label in range(10):
        idx = np.flatnonzero(y == label)
        test[idx[int(len(idx) * 0.8):]] = True
    return (x[~test], y[~test]), (x[test], y[test])


(x_train, y_train), (x_test, y_test) = load_digits_28()''',
}


def _literal(value) -> str:
    """Python source for a JSON-able value (lists become tuples where Keras takes pairs)."""
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    if isinstance(value, list):
        return "(" + ", ".join(_literal(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, (bool, int, str)) or value is None:
        return repr(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_literal(v)}" for k, v in value.items()) + "}"
    raise SpecError(f"Cannot write {value!r} as code.")


def _regularizer_code(reg) -> str:
    if not reg:
        return "None"
    l1, l2 = float(reg.get("l1", 0.0) or 0.0), float(reg.get("l2", 0.0) or 0.0)
    if l1 and l2:
        return f"regularizers.L1L2(l1={l1!r}, l2={l2!r})"
    return f"regularizers.L1({l1!r})" if l1 else f"regularizers.L2({l2!r})"


def _layer_code(layer: dict) -> str:
    args = []
    for key, value in layer.items():
        if key == "type":
            continue
        if key.endswith("_regularizer"):
            if value:
                args.append(f"{key}={_regularizer_code(value)}")
            continue
        args.append(f"{key}={_literal(value)}")
    return f"layers.{layer['type']}({', '.join(args)})"


def _optimizer_code(optimizer) -> str:
    if isinstance(optimizer, str):
        optimizer = {"name": optimizer}
    if not isinstance(optimizer, dict) or str(optimizer.get("name", "")).lower() not in _OPTIMIZER_CLASSES:
        raise CvcoreError(f"`optimizer` must be one of {', '.join(_OPTIMIZER_CLASSES)} or a dict with a 'name'; "
                          f"received {optimizer!r}.")
    name = _OPTIMIZER_CLASSES[optimizer["name"].lower()]
    args = ", ".join(f"{k}={_literal(v)}" for k, v in optimizer.items() if k != "name")
    return f"keras.optimizers.{name}({args})"


_KIND_NOTES = {
    "softmax": "ends in a softmax: Keras computes the loss from the logits beneath it",
    "sigmoid": "ends in a sigmoid: Keras computes the loss from the logits beneath it, as for a softmax",
    "logits": "ends in logits (class scores): the loss applies the softmax",
}


def _fit_code(fast: bool, seed: int, batch_size: int, epochs: int, validation: str) -> str:
    if not fast:
        return (f"history = model.fit(x_train, y_train, batch_size={batch_size}, epochs={epochs}, {validation})")
    return f'''# The page's fast mode: a seeded tf.data shuffle of the whole set, reshuffled every epoch.
train_data = tf.data.Dataset.from_tensor_slices((x_train, y_train)).cache()
train_data = train_data.shuffle(len(x_train), seed={seed}, reshuffle_each_iteration=True)
train_data = train_data.batch({batch_size}).prefetch(tf.data.AUTOTUNE)
history = model.fit(train_data, epochs={epochs}, {validation})'''


def training_script(spec: dict, *, dataset: str, n_train: int, n_val: int, optimizer="adam", epochs: int,
                    batch_size: int, seed: int = 0, title: str = "", fast: bool = True) -> str:
    """A standalone Keras 3 script that reproduces a run of the Train page.

    Args:
        spec: the model as :func:`cvcore.models.build_model` takes it.
        dataset: ``"mnist"``, ``"fashion_mnist"`` or ``"digits"``.
        n_train: how many training images (the first ones) were used.
        n_val: how many test images (the first ones) served as validation data.
        optimizer: a name or a dict as :func:`cvcore.training.make_optimizer` takes it.
        epochs, batch_size, seed: as trained.
        title: a line for the script's docstring.
        fast: the run's fast setting (the Train page's default, on): the
            batches come in the order of fast mode's seeded ``tf.data``
            shuffle; off, in the order of ``model.fit``'s shuffle of arrays.

    Returns:
        Python source. Running it trains the same model, prints the test
        accuracy, then ``history: `` and the history as JSON (the loss and
        accuracy per epoch, as the page's curves show them).

    Raises:
        CvcoreError: for an unknown data set or a bad count.
        SpecError: for a spec that is not a dict of layers.

    Example:
        >>> src = training_script(PRESETS["Basic CNN (6 and 12 filters)"], dataset="mnist", n_train=60000,
        ...                       n_val=10000, epochs=3, batch_size=32)  # doctest: +SKIP
    """
    if dataset not in _LOADERS:
        raise CvcoreError(f"Unknown data set {dataset!r}; choose one of {', '.join(_LOADERS)}.")
    if not isinstance(spec, dict) or not isinstance(spec.get("layers"), list):
        raise SpecError("`spec` must be a dict with 'input_shape' and a list of 'layers'.")
    for name, value in (("n_train", n_train), ("n_val", n_val), ("epochs", epochs), ("batch_size", batch_size)):
        if not isinstance(value, int) or value < (0 if name == "n_val" else 1):
            raise CvcoreError(f"`{name}` must be a positive integer; received {value!r}.")
    if not isinstance(fast, bool):
        raise CvcoreError(f"`fast` must be True or False; received {fast!r}.")
    input_shape = tuple(int(v) for v in spec["input_shape"])
    layer_lines = "\n".join(f"    {_layer_code(layer)}," for layer in spec["layers"])
    kind = outputs.spec_output_kind(spec)
    validation = ("validation_data=(x_val, y_val)" if n_val else "validation_data=None")
    header = title or "A ConvNet Explorer training run"
    return f'''"""{header}, as a standalone Keras 3 script.

Model spec (cvcore.models.build_model):
{json.dumps(spec)}
"""
import json

import numpy as np
import keras
{"import tensorflow as tf" + chr(10) if fast else ""}from keras import layers, regularizers

keras.utils.set_random_seed({int(seed)})

{_LOADERS[dataset]}
x_train, y_train = x_train[:{int(n_train)}], y_train[:{int(n_train)}]
x_val, y_val = x_test[:{int(n_val)}], y_test[:{int(n_val)}]


def prepare(x):
    """uint8 0..255 -> float32 0..1 with a channel axis."""
    return (x.astype("float32") / 255.0).reshape((-1,) + {input_shape!r})


x_train, x_val, x_test = prepare(x_train), prepare(x_val), prepare(x_test)

model = keras.Sequential([
    keras.Input(shape={input_shape!r}),
{layer_lines}
])
model.summary()
# The model {_KIND_NOTES[kind]}.
model.compile(optimizer={_optimizer_code(optimizer)}, loss={outputs.loss_code(kind)}, metrics=["accuracy"])
{_fit_code(fast, int(seed), int(batch_size), int(epochs), validation)}
test_loss, test_accuracy = model.evaluate(x_test, y_test, verbose=0)
print(f"test accuracy: {{test_accuracy:.4f}}")
print("history:", json.dumps({{key: [float(v) for v in values] for key, values in history.history.items()}}))
'''
