"""A training run as a standalone Keras 3 script: the page's settings as plain code.

The script uses only Keras, NumPy (and scikit-learn for the bundled digits),
the same data slices as the page (the first ``n_train`` training images, the
first ``n_val`` test images for validation, the whole test set for the final
score), the same model, optimizer, batch size, epochs and seed.
"""
from __future__ import annotations

import json
import math

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


def _ends_in_softmax(spec: dict) -> bool:
    for layer in reversed(spec["layers"]):
        if layer["type"] in ("Dense", "Activation"):
            return layer.get("activation") == "softmax"
    return False


def training_script(spec: dict, *, dataset: str, n_train: int, n_val: int, optimizer="adam", epochs: int,
                    batch_size: int, seed: int = 0, title: str = "") -> str:
    """A standalone Keras 3 script that reproduces a run of the Train page.

    Args:
        spec: the model as :func:`cvcore.models.build_model` takes it.
        dataset: ``"mnist"``, ``"fashion_mnist"`` or ``"digits"``.
        n_train: how many training images (the first ones) were used.
        n_val: how many test images (the first ones) served as validation data.
        optimizer: a name or a dict as :func:`cvcore.training.make_optimizer` takes it.
        epochs, batch_size, seed: as trained.
        title: a line for the script's docstring.

    Returns:
        Python source. Running it trains the same model and prints the test accuracy.

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
    input_shape = tuple(int(v) for v in spec["input_shape"])
    layer_lines = "\n".join(f"    {_layer_code(layer)}," for layer in spec["layers"])
    loss = ('"sparse_categorical_crossentropy"' if _ends_in_softmax(spec)
            else "keras.losses.SparseCategoricalCrossentropy(from_logits=True)")
    validation = ("validation_data=(x_val, y_val)" if n_val else "validation_data=None")
    header = title or "A ConvNet Explorer training run"
    return f'''"""{header}, as a standalone Keras 3 script.

Model spec (cvcore.models.build_model):
{json.dumps(spec)}
"""
import numpy as np
import keras
from keras import layers, regularizers

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
model.compile(optimizer={_optimizer_code(optimizer)}, loss={loss}, metrics=["accuracy"])
history = model.fit(x_train, y_train, batch_size={int(batch_size)}, epochs={int(epochs)}, {validation})
test_loss, test_accuracy = model.evaluate(x_test, y_test, verbose=0)
print(f"test accuracy: {{test_accuracy:.4f}}")
'''
