"""One rule for a model's output: does it end in a softmax, a sigmoid, or logits?

Everything that reads a classifier's output follows this one rule: training
(the loss and its ``from_logits``, :func:`loss`), the script the Train page
exports (:func:`loss_code`), the class probabilities the pages show
(:func:`probabilities`), and the class score whose gradients the class
activation maps, saliency and gradient ascent take (:func:`score_source`).

**What the ending is** (:func:`output_kind` for a Keras model,
:func:`spec_output_kind` for a layer spec as :func:`cvcore.models.build_model`
takes it). The output layer is the layer that makes the model's output (a
functional model's output operation, a Sequential's last layer). Trailing
layers that hand their input on unchanged when the model predicts (Dropout and
its kin, GaussianNoise, ActivityRegularization, Identity, Flatten and
``Activation("linear")``: :data:`PASS_THROUGH`) are looked through. A
``Softmax`` layer, or a layer whose ``activation`` is softmax, ends in a
*softmax*; a layer whose ``activation`` is sigmoid ends in a *sigmoid*; every
other ending (no activation, linear, relu, tanh, ...) gives *logits*. A model
nested as the output layer is read by the same rule.

**The three kinds** (:data:`OUTPUT_KINDS`):

* ``"softmax"``: the outputs are the class probabilities, read as they are.
  Training uses sparse categorical cross-entropy with ``from_logits=False``;
  Keras finds the logits that the softmax keeps on its output and computes the
  loss from them. Gradients read the class's logit, the softmax's input: a
  confident softmax saturates, so the gradients of its probabilities vanish
  and mix in every other class.
* ``"sigmoid"``: Keras reads the logits beneath a sigmoid just as beneath a
  softmax, so the loss (``from_logits=False``, as for a softmax) is the softmax
  cross-entropy of the sigmoid's input z, not a loss of the sigmoid's outputs.
  The class probabilities are therefore the softmax of those logits, recovered
  from the outputs as z = log(p) - log(1 - p), with p clipped to [1e-7, 1 - 1e-7]
  (the sigmoid's outputs themselves do not sum to one). Gradients read the
  logit z, the sigmoid's input: a saturated sigmoid has vanishing gradients too.
* ``"logits"``: the outputs are class scores. Training uses
  ``from_logits=True``; the class probabilities are their softmax; gradients
  read the outputs themselves.

The loss of each kind and the code the exported script writes for it come
from one table, so they cannot disagree.

Example:
    >>> spec_output_kind({"input_shape": [4], "layers": [{"type": "Dense", "units": 3, "activation": "sigmoid"}]})
    'sigmoid'
    >>> loss_code("logits")
    'keras.losses.SparseCategoricalCrossentropy(from_logits=True)'
    >>> probabilities([[0.0, 0.0, 1.0]], "logits").round(3)
    array([[0.212, 0.212, 0.576]], dtype=float32)
"""
from __future__ import annotations

import numpy as np

from . import checks, device
from .errors import CvcoreError, ShapeError

__all__ = [
    "OUTPUT_KINDS",
    "PASS_THROUGH",
    "EPSILON",
    "output_kind",
    "spec_output_kind",
    "loss",
    "loss_code",
    "probabilities",
    "class_count",
    "ScoreSource",
    "score_source",
]

#: The ways a classifier's output can end.
OUTPUT_KINDS = ("softmax", "sigmoid", "logits")
#: Layers that hand their input on unchanged when a model predicts; the ending is looked for beneath them.
PASS_THROUGH = ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianDropout",
                "AlphaDropout", "GaussianNoise", "ActivityRegularization", "Identity", "Flatten")
#: How far a sigmoid's outputs are kept from 0 and 1 before they are turned back into logits (Keras' epsilon).
EPSILON = 1e-7

# activation's name -> kind (tf.nn.softmax is named softmax_v2)
_ACTIVATIONS = {"softmax": "softmax", "softmax_v2": "softmax", "sigmoid": "sigmoid"}
# kind -> (class in keras.losses, its arguments): the training loss and the exported script's code.
_LOSSES = {
    "softmax": ("SparseCategoricalCrossentropy", {"from_logits": False}),
    "sigmoid": ("SparseCategoricalCrossentropy", {"from_logits": False}),
    "logits": ("SparseCategoricalCrossentropy", {"from_logits": True}),
}


def _check_kind(kind) -> str:
    return checks.choice(kind, "kind", OUTPUT_KINDS)


def _activation_name(activation) -> str:
    if activation is None:
        return "linear"
    return activation if isinstance(activation, str) else getattr(activation, "__name__", "")


def _ending(layer_type: str, activation) -> str | None:
    """The kind a layer gives its output, or None when it hands its input on unchanged."""
    name = _activation_name(activation)
    if layer_type == "Softmax":
        return "softmax"
    if name in _ACTIVATIONS:
        return _ACTIVATIONS[name]
    if layer_type in PASS_THROUGH or (layer_type == "Activation" and name == "linear"):
        return None
    return "logits"


def _single_input(tensor):
    """The one tensor the operation that made ``tensor`` was called on, or None."""
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return None
    try:
        found = history.operation._inbound_nodes[history.node_index].input_tensors
    except (AttributeError, IndexError):
        return None
    return found[0] if len(found) == 1 else None


def _trace(model):
    """``(kind, the layer that decides it or None, the layer of ``model`` whose output it takes or None)``."""
    keras = device.keras()
    if not isinstance(model, keras.Model):
        raise CvcoreError(f"`model` must be a Keras model; received {type(model).__name__}.")
    try:
        tensor = None if isinstance(model, keras.Sequential) else model.outputs[0]
    except (AttributeError, IndexError, ValueError):  # a subclassed model: read its last layer
        tensor = None
    if tensor is None:  # a Sequential, or a model without a graph: its layers, last first
        layers = list(model.layers)
        for i in range(len(layers) - 1, -1, -1):
            layer = layers[i]
            if isinstance(layer, keras.Model):
                return output_kind(layer), layer, None
            kind = _ending(type(layer).__name__, getattr(layer, "activation", None))
            if kind is not None:
                return kind, layer, (layers[i - 1] if i >= 1 and isinstance(model, keras.Sequential) else None)
        return "logits", None, None
    members = {id(layer) for layer in model.layers}
    while True:
        layer = tensor._keras_history.operation
        if type(layer).__name__ == "InputLayer":
            return "logits", None, None
        if isinstance(layer, keras.Model):
            return output_kind(layer), layer, None
        kind = _ending(type(layer).__name__, getattr(layer, "activation", None))
        below = _single_input(tensor)
        if kind is None and below is not None:
            tensor = below
            continue
        feeder = below._keras_history.operation if below is not None else None
        return kind or "logits", layer, feeder if _gives(feeder, below, members) else None


def _gives(layer, tensor, members) -> bool:
    """Whether ``layer`` is one of the model's layers (``members``: their ids), not its input, and its
    ``output`` (what :func:`cvcore.model_inputs.submodel` reads) is ``tensor``."""
    if layer is None or id(layer) not in members or type(layer).__name__ == "InputLayer":
        return False
    try:
        return layer.output is tensor
    except (AttributeError, ValueError):
        return False


def output_kind(model) -> str:
    """How a Keras model's output ends: ``"softmax"``, ``"sigmoid"`` or ``"logits"``.

    The output layer decides (a functional model's output operation, a
    Sequential's last layer), looking through the trailing layers of
    :data:`PASS_THROUGH`. A ``Softmax`` layer, or a layer whose
    ``activation`` is softmax, ends in a softmax; a layer whose
    ``activation`` is sigmoid, in a sigmoid; anything else (no activation,
    linear, relu, tanh, ...) gives logits. The module's docstring says what
    each kind means for the loss, the probabilities and the gradients.

    Args:
        model: a Keras model (Sequential, functional, or a subclassed one,
            whose last layer is read); for several outputs, the first.

    Returns:
        One of :data:`OUTPUT_KINDS`.

    Raises:
        CvcoreError: when ``model`` is not a Keras model.

    Example:
        >>> keras = device.keras()
        >>> def ending(*layers):
        ...     return output_kind(keras.Sequential([keras.Input((4,)), *layers]))
        >>> ending(keras.layers.Dense(3, activation="softmax"))
        'softmax'
        >>> ending(keras.layers.Dense(3), keras.layers.Activation("sigmoid"), keras.layers.Dropout(0.5))
        'sigmoid'
        >>> ending(keras.layers.Dense(3, activation="relu")), ending(keras.layers.Dense(3))
        ('logits', 'logits')
    """
    return _trace(model)[0]


def spec_output_kind(spec) -> str:
    """:func:`output_kind` for a layer spec, as :func:`cvcore.models.build_model` takes it; no Keras needed.

    Args:
        spec: a dict with a list of ``"layers"``, each a dict with a
            ``"type"`` (a Keras layer class name) and its arguments.

    Returns:
        One of :data:`OUTPUT_KINDS`: the same as ``output_kind(build_model(spec))``.

    Raises:
        CvcoreError: when ``spec`` has no list of layer dicts.

    Example:
        >>> layers = [{"type": "Flatten"}, {"type": "Dense", "units": 10, "activation": "softmax"},
        ...           {"type": "Dropout", "rate": 0.2}]
        >>> spec_output_kind({"input_shape": [28, 28, 1], "layers": layers})
        'softmax'
        >>> spec_output_kind({"input_shape": [28, 28, 1], "layers": layers[:1] + [{"type": "Dense", "units": 10}]})
        'logits'
    """
    layers = spec.get("layers") if isinstance(spec, dict) else None
    if not isinstance(layers, list) or not all(isinstance(layer, dict) for layer in layers):
        raise CvcoreError(f"`spec` must be a dict with a list of layer dicts under 'layers'; received {spec!r}.")
    for layer in reversed(layers):
        kind = _ending(str(layer.get("type")), layer.get("activation"))
        if kind is not None:
            return kind
    return "logits"


def loss(kind):
    """The training loss of a model whose output ends as ``kind``: a new Keras loss object.

    Sparse categorical cross-entropy, with ``from_logits=False`` after a
    softmax or a sigmoid (Keras then reads the logits beneath either) and
    ``from_logits=True`` for logits. The same table writes :func:`loss_code`.

    Args:
        kind: one of :data:`OUTPUT_KINDS`.

    Returns:
        A ``keras.losses.Loss``.

    Raises:
        CvcoreError: for an unknown kind.

    Example:
        >>> loss("logits").get_config()["from_logits"], loss("sigmoid").get_config()["from_logits"]
        (True, False)
    """
    name, args = _LOSSES[_check_kind(kind)]
    return getattr(device.keras().losses, name)(**args)


def loss_code(kind) -> str:
    """:func:`loss` as Python source, for an exported script that uses ``import keras``.

    Args:
        kind: one of :data:`OUTPUT_KINDS`.

    Returns:
        One expression, e.g. ``keras.losses.SparseCategoricalCrossentropy(from_logits=False)``.

    Raises:
        CvcoreError: for an unknown kind.

    Example:
        >>> loss_code("softmax")
        'keras.losses.SparseCategoricalCrossentropy(from_logits=False)'
    """
    name, args = _LOSSES[_check_kind(kind)]
    return f"keras.losses.{name}({', '.join(f'{key}={value!r}' for key, value in args.items())})"


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def probabilities(outputs, kind) -> np.ndarray:
    """Class probabilities from a model's outputs, read by the rule of its ending.

    ``"softmax"``: the outputs as they are. ``"sigmoid"``: the softmax of the
    logits beneath the sigmoid, z = log(p) - log(1 - p) with p clipped to
    [:data:`EPSILON`, 1 - EPSILON], which is the distribution Keras trained.
    ``"logits"``: their softmax. An output of one column (a binary classifier)
    is the probability of the positive class: the sigmoid's output as it is,
    the sigmoid of a logit.

    Args:
        outputs: the model's outputs, ``N x classes`` (or one row of ``classes``).
        kind: one of :data:`OUTPUT_KINDS`, as :func:`output_kind` gives it.

    Returns:
        A float32 array of the outputs' shape; along the last axis the rows sum to 1.

    Raises:
        CvcoreError: for an unknown kind.
        ShapeError: for outputs that are not a vector or a matrix of numbers
            (NaN, from a model whose training diverged, stays NaN).

    Example:
        >>> p = np.array([[0.5, 0.731, 0.881]])  # sigmoid(0), sigmoid(1), sigmoid(2)
        >>> probabilities(p, "sigmoid").round(3)
        array([[0.09 , 0.244, 0.666]], dtype=float32)
        >>> probabilities([0.2, 0.8], "softmax")
        array([0.2, 0.8], dtype=float32)
    """
    kind = _check_kind(kind)
    try:
        out = np.asarray(outputs, dtype=np.float64)
    except (TypeError, ValueError):
        raise ShapeError(f"`outputs` must be numbers, one score per class; received {type(outputs).__name__}.") from None
    if out.ndim not in (1, 2) or out.shape[-1] < 1:
        raise ShapeError(f"`outputs` must be a vector or an N x classes matrix; received shape {out.shape}.")
    if kind == "softmax":
        return out.astype(np.float32)
    if kind == "sigmoid":
        p = np.clip(out, EPSILON, 1.0 - EPSILON)
        z = np.log(p) - np.log1p(-p)
    else:
        z = out
    if z.shape[-1] == 1:
        return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)
    return _softmax(z).astype(np.float32)


def class_count(model) -> int:
    """The number of classes of a classifier: its output must be one vector of class scores per image.

    Args:
        model: a built Keras model.

    Returns:
        ``classes``, from the output shape ``(batch, classes)``.

    Raises:
        ShapeError: for any other output (several outputs, a map, an unknown width).

    Example:
        >>> keras = device.keras()
        >>> class_count(keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]))
        3
    """
    shape = model.output_shape
    if isinstance(shape, list) or len(shape) != 2 or shape[1] is None:
        raise ShapeError(f"`model` must end in one vector of class scores (batch, classes); "
                         f"its output has shape {shape}.")
    return int(shape[1])


class ScoreSource:
    """Where gradients read a model's class scores, and how: :func:`score_source` makes one.

    Attributes:
        kind: the model's :func:`output_kind`.
        layer: the name of the layer whose output is read.
        dense: None, or the Dense layer whose activation is skipped: the
            scores are ``layer``'s output times its kernel, plus its bias.
        invert: None, or ``"softmax"`` / ``"sigmoid"``: the output itself,
            turned back into logits (log p; log p - log(1 - p)), for a model
            whose softmax or sigmoid cannot be looked behind.
    """

    def __init__(self, kind: str, layer: str, dense=None, invert: str | None = None):
        self.kind, self.layer, self.dense, self.invert = kind, layer, dense, invert

    def __repr__(self):
        return f"ScoreSource(kind={self.kind!r}, layer={self.layer!r}, what={self.what!r})"

    @property
    def what(self) -> str:
        """``"output"`` (the model's logits), ``"logit"`` (read beneath the activation) or ``"inverted output"``."""
        if self.invert is not None:
            return "inverted output"
        return "output" if self.kind == "logits" else "logit"

    def scores(self, s):
        """The class scores (a float32 tensor, batch x classes) from ``layer``'s output ``s``."""
        tf = device.tensorflow()
        s = tf.cast(s, tf.float32)  # mixed-precision models compute in float16
        if self.dense is not None:
            s = tf.matmul(s, tf.cast(self.dense.kernel, tf.float32))
            if self.dense.use_bias:
                s = s + tf.cast(self.dense.bias, tf.float32)
        elif self.invert == "softmax":
            s = tf.math.log(tf.clip_by_value(s, EPSILON, 1.0))
        elif self.invert == "sigmoid":
            p = tf.clip_by_value(s, EPSILON, 1.0 - EPSILON)
            s = tf.math.log(p) - tf.math.log1p(-p)
        return s

    def probabilities(self, s):
        """Class probabilities from ``layer``'s output: the softmax of the scores (a sigmoid for one column),
        as :func:`probabilities` reads the model's outputs."""
        tf = device.tensorflow()
        z = self.scores(s)
        return tf.math.sigmoid(z) if z.shape[-1] == 1 else tf.nn.softmax(z, axis=-1)


def score_source(model) -> ScoreSource:
    """Where gradients read a model's class scores: the logits, beneath a final softmax or sigmoid.

    For ``"logits"``, the output layer's own output. For a softmax or a
    sigmoid applied by an ``Activation`` or ``Softmax`` layer, the output of
    the layer feeding it; applied inside a ``Dense`` layer, the Dense's input
    through its kernel and bias (its activation skipped). When neither can be
    had (the activation sits on the model's input, in another kind of layer,
    or in a nested model), the output itself turned back into logits.

    Args:
        model: a built Keras model.

    Returns:
        A :class:`ScoreSource`.

    Raises:
        CvcoreError: when ``model`` is not a Keras model.

    Example:
        >>> keras = device.keras()
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, name="hidden"),
        ...                           keras.layers.Dense(3, activation="softmax", name="out")])
        >>> score_source(model)
        ScoreSource(kind='softmax', layer='hidden', what='logit')
    """
    kind, layer, feeder = _trace(model)
    if kind == "logits":
        return ScoreSource(kind, _output_layer_name(model))
    layer_type = type(layer).__name__
    if feeder is not None and layer_type in ("Activation", "Softmax"):
        return ScoreSource(kind, feeder.name)
    if feeder is not None and layer_type == "Dense" and getattr(layer, "kernel", None) is not None:
        return ScoreSource(kind, feeder.name, dense=layer)
    return ScoreSource(kind, _output_layer_name(model), invert=kind)


def _output_layer_name(model) -> str:
    """The name of the layer that makes the model's output (trailing pass-through layers included)."""
    keras = device.keras()
    if not isinstance(model, keras.Sequential):
        try:
            return model.outputs[0]._keras_history.operation.name
        except (AttributeError, IndexError, ValueError):
            pass
    return model.layers[-1].name
