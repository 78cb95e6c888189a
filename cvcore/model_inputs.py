"""Shared plumbing of the visualizations: an image as a person hands it over -> the model's input.

Every technique (activations, CAMs, saliency, gradient ascent) takes a plain
image (uint8 0..255, or float) and a Keras model; what the model needs
(its input size, its channels, its preprocessing) is worked out here, once:

* the *preprocessing* of a model is a tag cvcore sets when it builds or loads
  the model (:func:`set_preprocessing`), else inferred: a model that starts
  with a ``Rescaling`` layer takes raw 0..255 pixels, a Keras application by
  its name (``vgg16`` -> ``"caffe"``), anything else the app's convention,
  pixels scaled to [0, 1];
* the image is resized to the model's input size (when the model fixes one)
  and converted to its channel count (RGB <-> grayscale);
* :func:`as_functional` wraps a Sequential model as a functional one (Keras 3
  Sequential models have no ``output_names``, which tf-keras-vis needs), and
  :func:`submodel` builds, and caches per model, a model with other outputs
  (a layer's activation beside the predictions, or a model cut at a layer).
"""
from __future__ import annotations

import threading
import weakref

import numpy as np

from . import device
from .errors import CvcoreError, ShapeError

__all__ = [
    "PREPROCESSING",
    "CAFFE_MEAN_BGR",
    "TF_SCALE",
    "set_preprocessing",
    "preprocessing_of",
    "model_input",
    "to_model_pixels",
    "from_model_pixels",
    "input_size",
    "as_functional",
    "submodel",
    "conv_layer_names",
    "last_conv_layer",
]

# name -> what it does to 0..255 RGB pixels
PREPROCESSING = {
    "unit": "x / 255, to [0, 1] (the models trained in this app)",
    "raw": "0..255 as they are (the model rescales inside)",
    "caffe": "RGB -> BGR, minus ImageNet's mean pixel (VGG16, ResNet50)",
    "tf": "x / 127.5 - 1, to [-1, 1] (InceptionV3, MobileNetV2)",
    "torch": "x / 255, minus ImageNet's mean, over its standard deviation (DenseNet)",
}
_BY_APPLICATION = {"vgg16": "caffe", "vgg19": "caffe", "resnet50": "caffe", "inception_v3": "tf",
                   "inceptionv3": "tf", "mobilenetv2": "tf", "mobilenetv2_1.00_224": "tf", "densenet": "torch"}
#: ImageNet's mean pixel in BGR order, which "caffe" preprocessing subtracts (Keras' ``preprocess_input``
#: for VGG16 and ResNet50; :class:`cvcore.layers.ImagenetPreprocessing` inside transfer models).
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
#: "tf" preprocessing maps 0..255 to [-1, 1] as x / TF_SCALE - 1 (InceptionV3, MobileNetV2).
TF_SCALE = 127.5
_CAFFE_MEAN = np.array(CAFFE_MEAN_BGR, np.float32)
_TORCH_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_TORCH_STD = np.array([0.229, 0.224, 0.225], np.float32)
_TAG = "_cvcore_preprocessing"


def set_preprocessing(model, kind: str):
    """Tag ``model`` with the preprocessing its inputs need; returns the model.

    Args:
        model: a Keras model.
        kind: a key of :data:`PREPROCESSING`.

    Example:
        >>> keras = device.keras()
        >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3)])
        >>> preprocessing_of(model), preprocessing_of(set_preprocessing(model, "caffe"))
        ('unit', 'caffe')
    """
    if kind not in PREPROCESSING:
        raise CvcoreError(f"`kind` must be one of {', '.join(map(repr, PREPROCESSING))}; received {kind!r}.")
    setattr(model, _TAG, kind)
    return model


def preprocessing_of(model) -> str:
    """The preprocessing ``model`` takes: its tag, else inferred (see the module's docstring).

    Example:
        >>> keras = device.keras()
        >>> preprocessing_of(keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Rescaling(1 / 255)]))
        'raw'
    """
    tag = getattr(model, _TAG, None)
    if tag is not None:
        return tag
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    if layers and type(layers[0]).__name__ in ("Rescaling", "ImagenetPreprocessing"):  # cvcore.transfer
        return "raw"
    name = model.name.lower()
    for prefix, kind in _BY_APPLICATION.items():
        if name.startswith(prefix):
            return kind
    return "unit"


def input_size(model) -> tuple:
    """``(height, width, channels)`` of the model's input; height and width may be None.

    Example:
        >>> keras = device.keras()
        >>> input_size(keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(2, 3)]))
        (None, None, 3)
    """
    shape = model.input_shape
    if isinstance(shape, list):
        raise ShapeError("Models with several inputs cannot be visualized here.")
    if len(shape) != 4:
        raise ShapeError(f"The model takes inputs of shape {shape}; visualizations need images (batch, H, W, C).")
    return shape[1], shape[2], shape[3]


def to_model_pixels(rgb01: np.ndarray, kind: str) -> np.ndarray:
    """Float pixels in [0, 1] (N x H x W x C) -> the model's input scale for ``kind``.

    Example:
        >>> [round(float(v), 3) for v in to_model_pixels(np.ones((1, 1, 1, 3), np.float32), "caffe").ravel()]
        [151.061, 138.221, 131.32]
    """
    x = np.asarray(rgb01, np.float32)
    if kind == "unit":
        return x
    x255 = x * 255.0
    if kind == "raw":
        return x255
    if kind == "tf":
        return x255 / TF_SCALE - 1.0
    if kind == "caffe":
        if x.shape[-1] != 3:
            return x255 - _CAFFE_MEAN.mean()
        return x255[..., ::-1] - _CAFFE_MEAN
    if kind == "torch":
        return (x - _TORCH_MEAN[: x.shape[-1]]) / _TORCH_STD[: x.shape[-1]]
    raise CvcoreError(f"Unknown preprocessing {kind!r}; choose one of {', '.join(PREPROCESSING)}.")


def from_model_pixels(x: np.ndarray, kind: str) -> np.ndarray:
    """The inverse of :func:`to_model_pixels`: the model's input scale -> float pixels in [0, 1] (not clipped).

    Example:
        >>> x = np.random.default_rng(0).random((1, 2, 2, 3), np.float32)
        >>> bool(np.allclose(from_model_pixels(to_model_pixels(x, "tf"), "tf"), x, atol=1e-6))
        True
    """
    x = np.asarray(x, np.float32)
    if kind == "unit":
        return x
    if kind == "raw":
        return x / 255.0
    if kind == "tf":
        return (x + 1.0) * TF_SCALE / 255.0
    if kind == "caffe":
        if x.shape[-1] != 3:
            return (x + _CAFFE_MEAN.mean()) / 255.0
        return (x + _CAFFE_MEAN)[..., ::-1] / 255.0
    if kind == "torch":
        return x * _TORCH_STD[: x.shape[-1]] + _TORCH_MEAN[: x.shape[-1]]
    raise CvcoreError(f"Unknown preprocessing {kind!r}; choose one of {', '.join(PREPROCESSING)}.")


def _as_unit_rgb(image) -> np.ndarray:
    """uint8 (0..255) or float (taken as 0..1 when its max is <= 1, else 0..255) -> float32 in [0, 1]."""
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4) or min(arr.shape[:2]) < 1:
        raise ShapeError(f"`image` must be one H x W or H x W x C image (C 1, 3 or 4); received shape {arr.shape}.")
    if arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if not np.issubdtype(arr.dtype, np.floating) and not np.issubdtype(arr.dtype, np.integer):
        raise ShapeError(f"`image` must hold numbers; received dtype {arr.dtype}.")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise ShapeError("`image` holds NaN or infinite values.")
    return arr / 255.0 if arr.max(initial=0) > 1.0 else arr


def model_input(model, image, *, size=None) -> np.ndarray:
    """One image as a person hands it over -> the model's 1 x H x W x C float32 input.

    Args:
        model: a Keras model with one image input.
        image: H x W or H x W x C (C 1, 3 or 4), uint8 (0..255) or float
            (0..1, or 0..255 when its largest value is above 1).
        size: ``(height, width)`` to resize to when the model accepts any
            size (fully convolutional); by default the model's own size, or
            the image's when the model has none.

    Returns:
        float32 array ``1 x H x W x C`` in the model's preprocessing.

    Example:
        >>> keras = device.keras()
        >>> model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
        >>> x = model_input(model, np.full((100, 80, 3), 255, np.uint8))  # resized, to gray, to [0, 1]
        >>> x.shape, x.dtype, float(x.max())
        ((1, 28, 28, 1), dtype('float32'), 1.0)
    """
    import cv2

    h, w, c = input_size(model)
    x = _as_unit_rgb(image)
    target = (h, w) if h is not None and w is not None else (tuple(size) if size is not None else x.shape[:2])
    if x.shape[:2] != tuple(target):
        interp = cv2.INTER_AREA if x.shape[0] > target[0] else cv2.INTER_LINEAR
        x = cv2.resize(x, (int(target[1]), int(target[0])), interpolation=interp)
        if x.ndim == 2:
            x = x[:, :, None]
    if c == 1 and x.shape[2] == 3:
        x = (x @ np.array([0.299, 0.587, 0.114], np.float32))[:, :, None]
    elif c == 3 and x.shape[2] == 1:
        x = np.repeat(x, 3, axis=2)
    elif c is not None and x.shape[2] != c:
        raise ShapeError(f"The model takes {c} channels; the image has {x.shape[2]}.")
    return to_model_pixels(x[None], preprocessing_of(model)).astype(np.float32)


def as_functional(model):
    """``model`` as a functional Keras model over the same layers and weights (itself when it is one).

    Example:
        >>> keras = device.keras()
        >>> model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3, name="conv"),
        ...                           keras.layers.Flatten(name="flat"), keras.layers.Dense(3, name="out")])
        >>> type(as_functional(model)).__name__, as_functional(model).count_params() == model.count_params()
        ('Functional', True)
    """
    keras = device.keras()

    if not isinstance(model, keras.Sequential):
        return model
    # Over the Sequential's own graph, so that tf-keras-vis (which reads layer.output) finds every layer connected.
    return keras.Model(model.inputs, model.outputs, name=f"{model.name}_functional")


_cache_lock = threading.Lock()
_cache: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def submodel(model, layer_names, *, name: str | None = None):
    """A functional model from ``model``'s input to the outputs of ``layer_names``, cached per model.

    Shares the layers and weights of ``model`` (nothing is copied). Useful to
    cut a model at a layer (gradient ascent on a filter needs nothing above
    it) or to get a layer's activation beside the predictions (Grad-CAM).

    Args:
        model: a built Keras model.
        layer_names: names of its layers; one name gives a single-output model.
        name: the submodel's name.

    Returns:
        A ``keras.Model`` (the same object again for the same model and names).

    Raises:
        CvcoreError: a name that is not a layer of ``model``.

    Example:
        >>> keras = device.keras()
        >>> model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3, name="conv"),
        ...                           keras.layers.Flatten(name="flat"), keras.layers.Dense(3, name="out")])
        >>> submodel(model, ["conv"]).output_shape, submodel(model, ["conv"]) is submodel(model, ["conv"])
        ((None, 6, 6, 2), True)
    """
    keras = device.keras()
    names = tuple(layer_names)
    known = {layer.name: layer for layer in model.layers}
    missing = [n for n in names if n not in known]
    if missing:
        raise CvcoreError(f"No layer named {missing[0]!r} in the model; its layers are: {', '.join(known)}.")
    with _cache_lock:
        per_model = _cache.setdefault(model, {})
        if names not in per_model:
            if isinstance(model, keras.Sequential):
                # Rebuild the chain on a fresh Input: a Sequential's own graph is not always usable as one.
                inputs = keras.Input(shape=model.input_shape[1:])
                x, outputs = inputs, {}
                for layer in model.layers:
                    x = layer(x)
                    outputs[layer.name] = x
                outs = [outputs[n] for n in names]
            else:
                inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
                outs = [known[n].output for n in names]
            per_model[names] = keras.Model(inputs, outs[0] if len(outs) == 1 else outs,
                                           name=name or f"{model.name}_to_{'_'.join(names)}"[:120])
        return per_model[names]


def conv_layer_names(model) -> list:
    """Names of the layers whose output is a 4-D map (B x H x W x C), input layers excepted.

    Example:
        >>> keras = device.keras()
        >>> model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3, name="conv"),
        ...                           keras.layers.Flatten(name="flat"), keras.layers.Dense(3, name="out")])
        >>> conv_layer_names(model)
        ['conv']
    """
    names = []
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):
            continue
        if len(shape) == 4:
            names.append(layer.name)
    return names


def last_conv_layer(model) -> str:
    """The last layer with a spatial (4-D) output whose class is a convolution, else the last 4-D layer:
    what Grad-CAM looks at by default.

    Example:
        >>> keras = device.keras()
        >>> model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3, name="conv"),
        ...                           keras.layers.Flatten(name="flat"), keras.layers.Dense(3, name="out")])
        >>> last_conv_layer(model)
        'conv'
    """
    maps = conv_layer_names(model)
    if not maps:
        raise CvcoreError(f"{model.name!r} has no layer with a spatial output; class activation maps need one.")
    by_name = {layer.name: layer for layer in model.layers}
    convs = [n for n in maps if "Conv" in type(by_name[n]).__name__]
    return (convs or maps)[-1]
