"""Model specifications: JSON-able dicts that build Keras models, and back.

A *spec* describes a plain stack of layers (a ``keras.Sequential``)::

    {
        "input_shape": [28, 28, 1],
        "layers": [
            {"type": "Conv2D", "filters": 6, "kernel_size": 3, "activation": "relu"},
            {"type": "MaxPooling2D", "pool_size": 2},
            {"type": "Flatten"},
            {"type": "Dense", "units": 10, "activation": "softmax"},
        ],
    }

``"type"`` is a Keras layer class name and the other keys are arguments of
that class' constructor. Only a whitelist of classes and arguments is
accepted (see :data:`LAYER_TYPES` and :data:`LAYER_ARGS`); nothing is ever
``eval``-ed or imported by name, so a spec typed by a user is safe to build.
A regularizer is written ``{"l2": 0.01}``, ``{"l1": 0.01}`` or
``{"l1": 0.01, "l2": 0.01}``.

:func:`validate_spec` checks a spec and works out every layer's output shape
in plain Python (no TensorFlow), so a page can show a summary as the user
types; :func:`build_model` validates the same way first, so a stack that
cannot work (pooling a 1 x 1 map, a kernel larger than its input, an unknown
argument) is reported before any training, as a
:class:`~cvcore.errors.SpecError` naming the layer (1-based index and type).

:data:`PRESETS` holds the networks of the seed chapters; :data:`PRESET_PARAMS`
their published parameter counts, which the tests check against Keras.

TensorFlow and Keras are imported only by the functions that need them
(:func:`build_model`, :func:`summarize`).
"""
from __future__ import annotations

import copy
import math
import re

from . import checks, device
from .checks import is_integer as _is_int, is_number as _is_number
from .errors import SpecError

__all__ = [
    "LAYER_TYPES",
    "LAYER_ARGS",
    "ACTIVATIONS",
    "MAX_LAYERS",
    "DEFAULT_MAX_PARAMS",
    "PRESETS",
    "PRESET_PARAMS",
    "PRESET_NOTES",
    "NO_POOL_PRESET",
    "NO_POOL_FEATURE_MAP",
    "NO_POOL_DENSE512_PARAMS",
    "validate_spec",
    "count_spec_params",
    "dense_head_cost",
    "build_model",
    "summarize",
]

#: Layer classes a spec may use, in the order a page would offer them.
LAYER_TYPES = (
    "Conv2D",
    "MaxPooling2D",
    "AveragePooling2D",
    "Activation",
    "Dropout",
    "BatchNormalization",
    "Flatten",
    "GlobalAveragePooling2D",
    "Dense",
)

#: Activation names accepted by ``Activation`` layers.
ACTIVATIONS = ("relu", "sigmoid", "tanh", "softmax")
#: Activation names accepted by ``Conv2D`` and ``Dense`` (``None`` is "linear" too).
LAYER_ACTIVATIONS = ("linear",) + ACTIVATIONS
PADDINGS = ("valid", "same")
REGULARIZER_ARGS = ("kernel_regularizer", "bias_regularizer", "activity_regularizer")

#: The most layers a spec may have (a guard for a shared server).
MAX_LAYERS = 64
#: The most parameters :func:`build_model` builds unless told otherwise.
DEFAULT_MAX_PARAMS = 50_000_000

_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")

# Every accepted argument of every type, with its default (what Keras uses
# when the argument is left out).
_REG_DEFAULTS = {key: None for key in REGULARIZER_ARGS}
LAYER_ARGS = {
    "Conv2D": {
        "filters": None,  # required
        "kernel_size": None,  # required
        "strides": 1,
        "padding": "valid",
        "activation": None,
        "use_bias": True,
        **_REG_DEFAULTS,
        "name": None,
    },
    "MaxPooling2D": {"pool_size": 2, "strides": None, "padding": "valid", "name": None},
    "AveragePooling2D": {"pool_size": 2, "strides": None, "padding": "valid", "name": None},
    "Activation": {"activation": None, "name": None},  # required
    "Dropout": {"rate": None, "seed": None, "name": None},  # rate required
    "BatchNormalization": {
        "momentum": 0.99,
        "epsilon": 0.001,
        "center": True,
        "scale": True,
        "name": None,
    },
    "Flatten": {"name": None},
    "GlobalAveragePooling2D": {"name": None},
    "Dense": {"units": None, "activation": None, "use_bias": True, **_REG_DEFAULTS, "name": None},
}
_REQUIRED = {
    "Conv2D": ("filters", "kernel_size"),
    "Activation": ("activation",),
    "Dropout": ("rate",),
    "Dense": ("units",),
}


# --------------------------------------------------------------------------
# value checks: each returns the normalised value or raises _Bad(message)


class _Bad(Exception):
    """A bad value; the caller adds which layer it belongs to."""


def _int_pair(value, arg, *, limit=None):
    if _is_int(value):
        pair = (value, value)
    elif isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_int(v) for v in value):
        pair = tuple(value)
    else:
        raise _Bad(f"`{arg}` must be a positive integer or a pair of them, like 3 or [3, 3]; received {value!r}.")
    if any(v < 1 for v in pair):
        raise _Bad(f"`{arg}` must be positive; received {value!r}.")
    if limit is not None and any(v > limit for v in pair):
        raise _Bad(f"`{arg}` must be at most {limit}; received {value!r}.")
    return (int(pair[0]), int(pair[1]))


def _regularizer(value, arg):
    if value is None:
        return None
    if not isinstance(value, dict) or not value or set(value) - {"l1", "l2"}:
        raise _Bad(
            f"`{arg}` must be a dict like {{\"l2\": 0.01}}, {{\"l1\": 0.01}} or "
            f"{{\"l1\": 0.01, \"l2\": 0.01}}; received {value!r}."
        )
    for key, factor in value.items():
        if not _is_number(factor) or factor < 0:
            raise _Bad(f"`{arg}`'s {key!r} factor must be a number >= 0; received {factor!r}.")
    return {key: float(value[key]) for key in ("l1", "l2") if key in value}


def _check_arg(ltype, arg, value):
    """The checked, normalised value of one argument."""
    if arg == "name":
        if not isinstance(value, str) or not _NAME_RE.match(value):
            raise _Bad(
                "`name` must be 1 to 64 letters, digits, '_', '.' or '-'; "
                f"received {value!r}."
            )
        return value
    if arg in ("filters", "units"):
        return checks.integer(value, arg, 1, 65536, error=_Bad)
    if arg == "kernel_size":
        return _int_pair(value, arg, limit=64)
    if arg == "pool_size":
        return _int_pair(value, arg, limit=64)
    if arg == "strides":
        if value is None and ltype != "Conv2D":
            return None
        return _int_pair(value, arg, limit=64)
    if arg == "padding":
        return checks.choice(value, arg, PADDINGS, error=_Bad)
    if arg == "activation":
        if ltype == "Activation":
            return checks.choice(value, arg, ACTIVATIONS, error=_Bad)
        if value is None:
            return None
        return checks.choice(value, arg, LAYER_ACTIVATIONS, error=_Bad)
    if arg in ("use_bias", "center", "scale"):
        return checks.flag(value, arg, error=_Bad)
    if arg == "rate":
        return checks.number(value, arg, 0, 1, high_open=True, error=_Bad)
    if arg == "momentum":
        return checks.number(value, arg, 0, 1, error=_Bad)
    if arg == "epsilon":
        return checks.number(value, arg, 0, low_open=True, error=_Bad)
    if arg == "seed":
        return None if value is None else checks.integer(value, arg, 0, error=_Bad)
    if arg in REGULARIZER_ARGS:
        return _regularizer(value, arg)
    raise AssertionError(arg)  # every whitelisted argument is handled above


# --------------------------------------------------------------------------
# shapes


def _window_out(size, window, stride, padding):
    if padding == "same":
        return -(-size // stride)
    return (size - window) // stride + 1


def _fmt(shape) -> str:
    return "x".join(str(s) for s in shape)


def _layer_output(ltype, args, shape):
    """The output shape (no batch axis) and parameter count of one layer."""
    if ltype in ("Conv2D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D"):
        if len(shape) != 3:
            raise _Bad(
                f"needs a feature map of shape height x width x channels, but its input has "
                f"shape {tuple(shape)}; put it before Flatten, or give the model an input_shape "
                "like [28, 28, 1]."
            )
    height, width = (shape[0], shape[1]) if len(shape) == 3 else (None, None)
    if ltype == "Conv2D":
        kernel = args["kernel_size"]
        strides = args.get("strides", (1, 1))
        padding = args.get("padding", "valid")
        channels = shape[2]
        if padding == "valid" and (kernel[0] > height or kernel[1] > width):
            raise _Bad(
                f"its {_fmt(kernel)} kernel is larger than its {height}x{width} input "
                "(with padding 'valid' there is no position to put it); use a smaller kernel, "
                "padding 'same', or less pooling before it."
            )
        out = (
            _window_out(height, kernel[0], strides[0], padding),
            _window_out(width, kernel[1], strides[1], padding),
            args["filters"],
        )
        params = kernel[0] * kernel[1] * channels * args["filters"]
        params += args["filters"] if args.get("use_bias", True) else 0
        return out, params
    if ltype in ("MaxPooling2D", "AveragePooling2D"):
        pool = args.get("pool_size", (2, 2))
        strides = args.get("strides") or pool
        padding = args.get("padding", "valid")
        if padding == "valid" and (pool[0] > height or pool[1] > width):
            raise _Bad(
                f"cannot pool a {height}x{width} map with a {_fmt(pool)} window; "
                "remove this layer, use a smaller pool_size, or padding 'same'."
            )
        out = (
            _window_out(height, pool[0], strides[0], padding),
            _window_out(width, pool[1], strides[1], padding),
            shape[2],
        )
        return out, 0
    if ltype == "GlobalAveragePooling2D":
        return (shape[2],), 0
    if ltype == "Flatten":
        return (math.prod(shape),), 0
    if ltype == "Dense":
        params = shape[-1] * args["units"] + (args["units"] if args.get("use_bias", True) else 0)
        return tuple(shape[:-1]) + (args["units"],), params
    if ltype == "BatchNormalization":
        per_channel = 2 + int(args.get("center", True)) + int(args.get("scale", True))
        return tuple(shape), per_channel * shape[-1]
    return tuple(shape), 0  # Activation, Dropout


def _where(index, ltype) -> str:
    return f"Layer {index} ({ltype})" if ltype else f"Layer {index}"


def _check_spec(spec, max_params):
    """Validate; returns (input_shape, [(type, args)], [shape], [params])."""
    if not isinstance(spec, dict):
        raise SpecError(
            "A model spec must be a dict with 'input_shape' and 'layers'; "
            f"received {type(spec).__name__}."
        )
    unknown = set(spec) - {"input_shape", "layers", "name"}
    if unknown:
        raise SpecError(
            f"Unknown key(s) {', '.join(map(repr, sorted(map(str, unknown))))} in the model spec; "
            "a spec has 'input_shape', 'layers' and optionally 'name'."
        )
    input_shape = spec.get("input_shape")
    if (
        not isinstance(input_shape, (list, tuple))
        or not 1 <= len(input_shape) <= 3
        or not all(_is_int(v) and 1 <= v <= 4096 for v in input_shape)
    ):
        raise SpecError(
            "`input_shape` must be a list of 1 to 3 positive integers (at most 4096), "
            f"like [28, 28, 1]; received {input_shape!r}."
        )
    if "name" in spec and (not isinstance(spec["name"], str) or not _NAME_RE.match(spec["name"])):
        raise SpecError(
            f"The model `name` must be 1 to 64 letters, digits, '_', '.' or '-'; received {spec['name']!r}."
        )
    layers = spec.get("layers")
    if not isinstance(layers, (list, tuple)) or not layers:
        raise SpecError(f"`layers` must be a non-empty list of layer dicts; received {layers!r}.")
    if len(layers) > MAX_LAYERS:
        raise SpecError(f"A spec may have at most {MAX_LAYERS} layers; received {len(layers)}.")

    shape = tuple(int(v) for v in input_shape)
    checked, shapes, params, names = [], [], [], {}
    total = 0
    for index, layer in enumerate(layers, start=1):
        if not isinstance(layer, dict):
            raise SpecError(f"{_where(index, None)} must be a dict with a 'type'; received {layer!r}.")
        ltype = layer.get("type")
        if ltype not in LAYER_TYPES or not isinstance(ltype, str):
            raise SpecError(
                f"{_where(index, None)} has unknown type {ltype!r}; "
                f"choose one of {', '.join(LAYER_TYPES)}."
            )
        where = _where(index, ltype)
        allowed = LAYER_ARGS[ltype]
        for arg in layer:
            if arg == "type":
                continue
            if arg not in allowed:
                hint = (
                    " Give the input shape once, as the spec's 'input_shape'."
                    if arg in ("input_shape", "input_dim", "batch_input_shape")
                    else ""
                )
                raise SpecError(
                    f"{where}: unknown argument {arg!r}; {ltype} accepts "
                    f"{', '.join(allowed)}.{hint}"
                )
        for arg in _REQUIRED.get(ltype, ()):
            if layer.get(arg) is None:
                raise SpecError(f"{where}: the argument {arg!r} is required.")
        args = {}
        for arg, value in layer.items():
            if arg == "type":
                continue
            try:
                args[arg] = _check_arg(ltype, arg, value)
            except _Bad as bad:
                raise SpecError(f"{where}: {bad}") from None
        if "name" in args:
            if args["name"] in names:
                raise SpecError(
                    f"{where}: the name {args['name']!r} is already used by layer {names[args['name']]}; "
                    "layer names must be unique."
                )
            names[args["name"]] = index
        try:
            shape, count = _layer_output(ltype, args, shape)
        except _Bad as bad:
            raise SpecError(f"{where} {bad}") from None
        if min(shape) < 1:
            raise SpecError(f"{where} would output an empty map of shape {shape}; use less pooling or striding before it.")
        total += count
        if max_params is not None and total > max_params:
            raise SpecError(
                f"{where} brings the model to {total:,} parameters, over the limit of "
                f"{int(max_params):,}; use fewer units or filters, or pool before flattening."
            )
        checked.append((ltype, args))
        shapes.append((None,) + tuple(shape))
        params.append(count)
    return tuple(int(v) for v in input_shape), checked, shapes, params


def validate_spec(spec, *, max_params=DEFAULT_MAX_PARAMS) -> list:
    """Check a model spec and work out every layer's output shape, without TensorFlow.

    Args:
        spec: a dict ``{"input_shape": [...], "layers": [{"type": ..., ...}, ...]}``
            (see the module docstring).
        max_params: the most parameters the model may have, or ``None`` for
            no limit (a guard for a shared server).

    Returns:
        A list with one output shape per layer, each a tuple with ``None``
        for the batch axis, exactly as Keras' ``layer.output.shape``, e.g.
        ``[(None, 26, 26, 6), ...]``.

    Raises:
        SpecError: for anything that cannot be built; the message names the
            layer (1-based index and type) and the argument or shape at fault.

    Example:
        >>> validate_spec({"input_shape": [28, 28, 1], "layers": [
        ...     {"type": "Conv2D", "filters": 6, "kernel_size": 3},
        ...     {"type": "MaxPooling2D", "pool_size": 2}]})
        [(None, 26, 26, 6), (None, 13, 13, 6)]
    """
    return _check_spec(spec, max_params)[2]


def count_spec_params(spec, *, max_params=None) -> int:
    """The parameter count of the model a spec builds (equal to Keras' ``count_params``).

    Args:
        spec: a model spec.
        max_params: as in :func:`validate_spec`; ``None`` (no limit) by default.

    Returns:
        The total number of weights, trainable or not (BatchNormalization's
        moving mean and variance count, as in Keras).

    Raises:
        SpecError: as :func:`validate_spec`.

    Example:
        >>> count_spec_params(PRESETS["Basic CNN (6 and 12 filters)"])
        3730
    """
    return sum(_check_spec(spec, max_params)[3])


def dense_head_cost(spec, units=512) -> dict:
    """What flattening a spec's output and adding ``Dense(units)`` would cost.

    The seed chapter's point about pooling: without it the final feature map
    stays large, and a dense layer on top of it has millions of weights.

    Args:
        spec: a model spec whose last output is a feature map (or anything).
        units: the dense layer's width.

    Returns:
        ``{"feature_map": (h, w, c), "flattened": n, "dense_params": n * units + units}``.

    Raises:
        SpecError: for an invalid spec or ``units``.

    Example:
        >>> dense_head_cost(PRESETS[NO_POOL_PRESET], 512)["dense_params"]
        15860224
    """
    checks.integer(units, "units", 1, error=SpecError)
    shape = validate_spec(spec, max_params=None)[-1][1:]
    flat = math.prod(shape)
    return {"feature_map": tuple(shape), "flattened": flat, "dense_params": flat * units + units}


# --------------------------------------------------------------------------
# building


def _regularizer_object(value):
    keras = device.keras()

    if value is None:
        return None
    if set(value) == {"l1", "l2"}:
        return keras.regularizers.L1L2(l1=value["l1"], l2=value["l2"])
    if "l1" in value:
        return keras.regularizers.L1(value["l1"])
    return keras.regularizers.L2(value["l2"])


def _make_layer(ltype, args):
    keras = device.keras()

    kwargs = dict(args)
    for arg in REGULARIZER_ARGS:
        if arg in kwargs:
            kwargs[arg] = _regularizer_object(kwargs[arg])
    if ltype in ("Conv2D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D"):
        kwargs["data_format"] = "channels_last"
    if ltype == "BatchNormalization":
        kwargs["axis"] = -1
    cls = {
        "Conv2D": keras.layers.Conv2D,
        "MaxPooling2D": keras.layers.MaxPooling2D,
        "AveragePooling2D": keras.layers.AveragePooling2D,
        "Activation": keras.layers.Activation,
        "Dropout": keras.layers.Dropout,
        "BatchNormalization": keras.layers.BatchNormalization,
        "Flatten": keras.layers.Flatten,
        "GlobalAveragePooling2D": keras.layers.GlobalAveragePooling2D,
        "Dense": keras.layers.Dense,
    }[ltype]
    return cls(**kwargs)


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower().replace("2_d", "2d")


def _layer_names(checked) -> list:
    """Names for the layers, Keras-style (conv2d, conv2d_1, ...), counted within this model.

    Keras' automatic names come from counters it keeps per thread and that
    ``keras.backend.clear_session()`` resets for every thread at once; on a
    server where background jobs build models while other sessions work,
    that gave two layers of one model the same name. Naming here makes the
    names deterministic too: the same spec always gives the same names.
    """
    seen, names = {}, []
    for ltype, args in checked:
        if args.get("name"):
            names.append(args["name"])
            continue
        base = _snake(ltype)
        count = seen.get(base, 0)
        seen[base] = count + 1
        candidate = base if count == 0 else f"{base}_{count}"
        while candidate in names or any(a.get("name") == candidate for _, a in checked):
            count += 1
            seen[base] = count + 1
            candidate = f"{base}_{count}"
        names.append(candidate)
    return names


def build_model(spec, *, max_params=DEFAULT_MAX_PARAMS):
    """Build a ``keras.Sequential`` from a spec, after validating it.

    It calls :func:`cvcore.device.configure` first, so that on a GPU memory
    growth is on before TensorFlow initialises the device.

    Args:
        spec: a model spec (see the module docstring).
        max_params: as in :func:`validate_spec`.

    Returns:
        A built (not compiled) ``keras.Sequential`` whose first layer is
        ``keras.Input(spec["input_shape"])``; layers unnamed in the spec get
        Keras' automatic names.

    Raises:
        SpecError: for an invalid spec, naming the layer (1-based index and
            type) and what is wrong, before anything is built.

    Example:
        >>> model = build_model(PRESETS["Basic CNN (6 and 12 filters)"])
        >>> model.count_params()
        3730
    """
    input_shape, checked, shapes, _ = _check_spec(spec, max_params)
    keras = device.keras()

    model = keras.Sequential(name=spec.get("name")) if spec.get("name") else keras.Sequential()
    model.add(keras.Input(shape=input_shape))
    for index, ((ltype, args), name) in enumerate(zip(checked, _layer_names(checked)), start=1):
        try:
            model.add(_make_layer(ltype, {**args, "name": name}))
        except Exception as err:  # validation should have caught it; name the layer anyway
            raise SpecError(f"{_where(index, ltype)} could not be built: {err}") from None
        built = tuple(model.layers[-1].output.shape)
        if built != shapes[index - 1]:  # a disagreement is a bug in the shape rules
            raise SpecError(
                f"{_where(index, ltype)} outputs {built} in Keras but {shapes[index - 1]} was expected; "
                "please report this spec."
            )
    return model


# --------------------------------------------------------------------------
# inspecting


def _weights_size(weights) -> int:
    return int(sum(math.prod(w.shape) for w in weights))


def summarize(model) -> list:
    """One row per layer, like ``model.summary()`` but as data for a table.

    Args:
        model: a built Keras model.

    Returns:
        A list of dicts ``{"layer": name, "type": class name, "output_shape":
        tuple with None for the batch axis, "params": weights of the layer,
        "trainable": trainable weights of the layer}``. The ``params`` add up
        to ``model.count_params()`` and the ``trainable`` counts to the size
        of ``model.trainable_weights`` (BatchNormalization's moving mean and
        variance are params but not trainable).

    Raises:
        SpecError: when ``model`` is not a built Keras model.

    Example:
        >>> rows = summarize(build_model(PRESETS["Basic CNN (6 and 12 filters)"]))
        >>> rows[0]
        {'layer': 'conv2d', 'type': 'Conv2D', 'output_shape': (None, 26, 26, 6), 'params': 60, 'trainable': 60}
    """
    if not hasattr(model, "layers") or not hasattr(model, "count_params"):
        raise SpecError(f"`model` must be a Keras model; received {type(model).__name__}.")
    if not model.built:
        raise SpecError("`model` is not built yet; give it an Input or call it on data first.")
    rows = []
    for layer in model.layers:
        try:
            shape = tuple(layer.output.shape)
        except (AttributeError, ValueError):
            shape = None
        rows.append(
            {
                "layer": layer.name,
                "type": type(layer).__name__,
                "output_shape": shape,
                "params": _weights_size(layer.weights),
                "trainable": _weights_size(layer.trainable_weights),
            }
        )
    return rows


# --------------------------------------------------------------------------
# presets from the seed chapters


def _conv(filters, kernel=3, **kw):
    return {"type": "Conv2D", "filters": filters, "kernel_size": kernel, "activation": "relu", **kw}


def _pool(size=2):
    return {"type": "MaxPooling2D", "pool_size": size}


_FLATTEN = {"type": "Flatten"}


def _dense(units, activation="relu", **kw):
    return {"type": "Dense", "units": units, "activation": activation, **kw}


def _softmax10(**kw):
    return _dense(10, "softmax", **kw)


_MNIST = [28, 28, 1]
_L2 = {"l2": 0.01}

#: The preset whose final feature map :data:`NO_POOL_FEATURE_MAP` describes.
NO_POOL_PRESET = "Three convolutions, no max pooling (conv base)"

PRESETS = {
    # 60 + 660 + 3,010: conv 3*3*1*6+6, conv 3*3*6*12+12, dense 5*5*12*10+10.
    "Basic CNN (6 and 12 filters)": {
        "input_shape": _MNIST,
        "layers": [_conv(6), _pool(), _conv(12), _pool(), _FLATTEN, _softmax10()],
    },
    # Regularizers add a loss term, not weights: still 3,730.
    "Basic CNN + L2 regularization": {
        "input_shape": _MNIST,
        "layers": [
            _conv(6, kernel_regularizer=_L2),
            _pool(),
            _conv(12, kernel_regularizer=_L2),
            _pool(),
            _FLATTEN,
            _softmax10(kernel_regularizer=_L2),
        ],
    },
    # Dropout has no weights: still 3,730.
    "Basic CNN + Dropout 0.2": {
        "input_shape": _MNIST,
        "layers": [
            _conv(6), _pool(), {"type": "Dropout", "rate": 0.2},
            _conv(12), _pool(), {"type": "Dropout", "rate": 0.2},
            _FLATTEN, _softmax10(),
        ],
    },
    # 4 weights per channel (gamma, beta trainable; moving mean and variance
    # not): 3,730 + 4*6 + 4*12 = 3,802, of which 3,766 trainable.
    "Basic CNN + BatchNormalization": {
        "input_shape": _MNIST,
        "layers": [
            _conv(6), {"type": "BatchNormalization"}, _pool(),
            _conv(12), {"type": "BatchNormalization"}, _pool(),
            _FLATTEN, _softmax10(),
        ],
    },
    # Keras' mnist_cnn example: 320 + 18,496 + (12*12*64)*128+128 + 1,290.
    "Keras mnist_cnn (32-64 convolutions, dropout)": {
        "input_shape": _MNIST,
        "layers": [
            _conv(32), _conv(64), _pool(), {"type": "Dropout", "rate": 0.25},
            _FLATTEN, _dense(128), {"type": "Dropout", "rate": 0.5}, _softmax10(),
        ],
    },
    # 5*5*64+64 = 1,664; 12*12*64 = 9,216 -> Dense(100) 921,700; Dense(10) 1,010.
    "64 filters 5x5, Dense 100": {
        "input_shape": _MNIST,
        "layers": [_conv(64, 5), _pool(), _FLATTEN, _dense(100), _softmax10()],
    },
    # 320 + 18,496 + 36,928: a conv base only, 28 -> 26 -> 24 -> 22.
    NO_POOL_PRESET: {
        "input_shape": _MNIST,
        "layers": [_conv(32), _conv(64), _conv(64)],
    },
    # Keras' classic MNIST tutorial: 55,744 in the base, 3*3*64 = 576 flattened,
    # 576*64+64 = 36,928, 64*10+10 = 650.
    "Keras MNIST tutorial (Conv32-Pool-Conv64-Pool-Conv64, Dense 64)": {
        "input_shape": _MNIST,
        "layers": [_conv(32), _pool(), _conv(64), _pool(), _conv(64), _FLATTEN, _dense(64), _softmax10()],
    },
    # 784*1024+1024 + 1024*10+10.
    "Dense 784-1024-10": {
        "input_shape": _MNIST,
        "layers": [_FLATTEN, _dense(1024), _softmax10()],
    },
    # 784*200+200 + 200*200+200 + 200*10+10.
    "Dense 784-200-200-10, dropout 0.15": {
        "input_shape": _MNIST,
        "layers": [
            _FLATTEN, _dense(200), {"type": "Dropout", "rate": 0.15},
            _dense(200), {"type": "Dropout", "rate": 0.15}, _softmax10(),
        ],
    },
}

#: Published parameter counts (``model.count_params()``), checked by the tests.
PRESET_PARAMS = {
    "Basic CNN (6 and 12 filters)": 3_730,
    "Basic CNN + L2 regularization": 3_730,
    "Basic CNN + Dropout 0.2": 3_730,
    "Basic CNN + BatchNormalization": 3_802,
    "Keras mnist_cnn (32-64 convolutions, dropout)": 1_199_882,
    "64 filters 5x5, Dense 100": 924_374,
    NO_POOL_PRESET: 55_744,
    "Keras MNIST tutorial (Conv32-Pool-Conv64-Pool-Conv64, Dense 64)": 93_322,
    "Dense 784-1024-10": 814_090,
    "Dense 784-200-200-10, dropout 0.15": 199_210,
}

#: One or two sentences per preset for a page.
PRESET_NOTES = {
    "Basic CNN (6 and 12 filters)": (
        "Two 3x3 convolutions (6 and 12 filters), each followed by 2x2 max pooling, "
        "then a softmax over 10 classes: 3,730 parameters."
    ),
    "Basic CNN + L2 regularization": (
        "The basic net with an L2 penalty of 0.01 on every kernel. Regularization adds "
        "a loss term, not weights: still 3,730 parameters."
    ),
    "Basic CNN + Dropout 0.2": (
        "The basic net with Dropout(0.2) after each pooling layer. Dropout has no "
        "weights: still 3,730 parameters."
    ),
    "Basic CNN + BatchNormalization": (
        "The basic net with BatchNormalization after each convolution: 4 weights per "
        "channel (gamma and beta are trained; the moving mean and variance are not), so "
        "3,730 + 4x6 + 4x12 = 3,802 parameters, 3,766 of them trainable."
    ),
    "Keras mnist_cnn (32-64 convolutions, dropout)": (
        "Keras' mnist_cnn example: 32 and 64 3x3 convolutions, 2x2 pooling, Dropout 0.25, "
        "Dense 128, Dropout 0.5: 1,199,882 parameters, 98% of them in the first Dense layer."
    ),
    "64 filters 5x5, Dense 100": (
        "One convolution with 64 5x5 filters, 2x2 pooling, Dense 100: 924,374 parameters."
    ),
    NO_POOL_PRESET: (
        "Three 3x3 convolutions (32, 64, 64) with no pooling: 55,744 parameters. It has no "
        "classifier: its output is a 22x22x64 feature map (30,976 values per image), and a "
        "Dense(512) on it flattened would add 15,860,224 parameters, which is why we pool."
    ),
    "Keras MNIST tutorial (Conv32-Pool-Conv64-Pool-Conv64, Dense 64)": (
        "The same convolutions with 2x2 pooling between them (final map 3x3x64), then "
        "Dense 64 and a softmax: 93,322 parameters."
    ),
    "Dense 784-1024-10": "A dense-only baseline, no convolution: 814,090 parameters.",
    "Dense 784-200-200-10, dropout 0.15": (
        "A dense-only baseline with two hidden layers of 200 and Dropout(0.15) after each: "
        "199,210 parameters."
    ),
}

#: The no-pooling preset's final feature map, and a Dense(512) on it flattened.
NO_POOL_FEATURE_MAP = dense_head_cost(PRESETS[NO_POOL_PRESET], 512)["feature_map"]
NO_POOL_DENSE512_PARAMS = dense_head_cost(PRESETS[NO_POOL_PRESET], 512)["dense_params"]


def preset(name: str) -> dict:
    """A deep copy of a preset spec, safe to edit.

    Args:
        name: a key of :data:`PRESETS`.

    Returns:
        The spec dict.

    Raises:
        SpecError: for an unknown name.

    Example:
        >>> preset("Dense 784-1024-10")["layers"][0]
        {'type': 'Flatten'}
    """
    if name not in PRESETS:
        raise SpecError(f"Unknown preset {name!r}; choose one of {', '.join(map(repr, PRESETS))}.")
    return copy.deepcopy(PRESETS[name])


__all__.append("preset")
