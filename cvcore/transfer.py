"""Transfer learning on the famous ImageNet models: a frozen base, a new head, cached features, fine-tuning.

* :func:`build_transfer_model`: raw 0..255 RGB pixels -> the base's own
  preprocessing (a weight-less layer, ``ImagenetPreprocessing``, registered
  with Keras as ``cvcore>ImagenetPreprocessing`` so that the model saves and
  loads in safe mode) -> the frozen base (one nested layer, e.g. ``"vgg16"``)
  -> a new head (Flatten or GlobalAveragePooling2D, optional Dropout,
  Dense softmax).
* :func:`extract_features`: the base run once over a set of images, in
  batches, optionally cached on disk (``.npy``) under a key made of the
  base's name, input shape, a fingerprint of its weights and of the inputs,
  so that training a head on those features costs an epoch of a small dense
  model instead of an epoch through the whole base.
* :func:`unfreeze`: the top layers of the base made trainable for
  fine-tuning, BatchNormalization layers kept frozen, as Keras advises.

Keras loads TensorFlow: every path here calls :func:`cvcore.device.configure`
before ``import keras``.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from . import checks, device
from . import model_inputs as inputs
from .applications import APPLICATIONS, load_application
from .errors import CvcoreError, ShapeError

__all__ = ["HEADS", "FINETUNE_AFTER", "ExtractionStopped", "build_transfer_model", "extract_features", "unfreeze",
           "base_of", "head_layers", "flat_model", "base_layer_names", "default_finetune_layers", "custom_objects"]

HEADS = ("flatten", "gap")
_CACHE_VERSION = 1
#: Fine-tuning unfreezes the layers above this one by default: the top block of each base
#: (VGG16's block5, as in the seed; ResNet50's last residual block; InceptionV3's mixed10;
#: MobileNetV2's last inverted residual block and its final convolution).
FINETUNE_AFTER = {"vgg16": "block4_pool", "resnet50": "conv5_block2_out", "inceptionv3": "mixed9",
                  "mobilenetv2": "block_15_add"}


class ExtractionStopped(Exception):
    """Raised by :func:`extract_features` when its ``should_stop`` returned true (nothing is cached)."""

def _preprocessing_layer():
    """The class :class:`cvcore.layers.ImagenetPreprocessing` (registered with Keras); imports Keras on first use."""
    from .layers import ImagenetPreprocessing

    return ImagenetPreprocessing


def custom_objects() -> dict:
    """The custom layer of :func:`build_transfer_model`, for loading a saved transfer model.

    Returns:
        ``{"cvcore>ImagenetPreprocessing": the class}``; it is also registered
        with Keras, so ``keras.saving.load_model`` finds it once this ran.

    Example:
        >>> list(custom_objects())
        ['cvcore>ImagenetPreprocessing']
    """
    from .layers import custom_objects as layer_objects

    return layer_objects("ImagenetPreprocessing")


def build_transfer_model(base, input_shape, num_classes, *, weights="imagenet", head="flatten", dropout=0.0):
    """A frozen ImageNet base with a new classifier head, taking raw 0..255 RGB pixels.

    Args:
        base: ``"vgg16"``, ``"resnet50"``, ``"inceptionv3"`` or ``"mobilenetv2"``.
        input_shape: ``(height, width, 3)``, sides of at least 32.
        num_classes: classes of the new head, at least 2.
        weights: the base's weights, as in
            :func:`cvcore.applications.load_application` (``"imagenet"``,
            None for random ones, or a weights file's path).
        head: ``"flatten"`` (Flatten, the seed's) or ``"gap"``
            (GlobalAveragePooling2D).
        dropout: rate of a Dropout layer before the Dense one; none when 0.

    Returns:
        A ``keras.Model`` (not compiled): ImagenetPreprocessing, the base as
        one nested layer (frozen), the head; tagged ``"raw"`` for
        :mod:`cvcore.visualize`.

    Raises:
        WeightsUnavailableError: ImageNet weights cannot be had.
        CvcoreError: a bad argument; the message names it.

    Example:
        >>> model = build_transfer_model("vgg16", (150, 150, 3), 12, weights=None)
        >>> model.count_params(), sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        (14813004, 98316)
    """
    if base not in APPLICATIONS:
        raise CvcoreError(f"`base` must be one of {', '.join(map(repr, APPLICATIONS))}; received {base!r}.")
    try:
        shape = tuple(int(v) for v in input_shape)
    except (TypeError, ValueError):
        raise CvcoreError(f"`input_shape` must be (height, width, 3); received {input_shape!r}.") from None
    if len(shape) != 3 or shape[2] != 3 or min(shape[:2]) < 32:
        raise CvcoreError(f"`input_shape` must be (height, width, 3) with sides of at least 32; received {input_shape!r}.")
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise CvcoreError(f"`num_classes` must be an integer of at least 2; received {num_classes!r}.")
    if head not in HEADS:
        raise CvcoreError(f"`head` must be one of {', '.join(map(repr, HEADS))}; received {head!r}.")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise CvcoreError(f"`dropout` must be a number in [0, 1); received {dropout!r}.")

    base_model = load_application(base, weights=weights, include_top=False, input_shape=shape)
    keras = device.keras()
    base_model.trainable = False
    layer_cls = _preprocessing_layer()
    pixels = keras.Input(shape=shape, name="pixels")
    x = layer_cls(mode=APPLICATIONS[base]["preprocessing"], name="imagenet_preprocessing")(pixels)
    x = base_model(x, training=False)  # BatchNormalization stays in inference mode, even when unfrozen
    model = keras.Model(pixels, head_layers(x, num_classes, head=head, dropout=dropout), name=f"transfer_{base}")
    return inputs.set_preprocessing(model, "raw")


def head_layers(x, num_classes, *, head="flatten", dropout=0.0):
    """The new head on a base's output tensor ``x``: Flatten or GlobalAveragePooling2D, optional
    Dropout, Dense softmax; the same layer names wherever it is built, so that a head trained on
    cached features fits the transfer model's (``model.get_layer("predictions")``).

    Example:
        >>> keras = device.keras()
        >>> feats = keras.Input((4, 4, 512))
        >>> keras.Model(feats, head_layers(feats, 12)).count_params()
        98316
    """
    keras = device.keras()
    x = keras.layers.Flatten(name="flatten")(x) if head == "flatten" else \
        keras.layers.GlobalAveragePooling2D(name="global_average_pooling")(x)
    if dropout > 0:
        x = keras.layers.Dropout(float(dropout), name="dropout")(x)
    return keras.layers.Dense(int(num_classes), activation="softmax", name="predictions")(x)


def base_of(model):
    """The nested base (a ``keras.Model`` layer) of a model built by :func:`build_transfer_model`.

    Args:
        model: a transfer model (built here, or loaded from a ``.keras`` file).

    Returns:
        The base model, e.g. the layer named ``"vgg16"``.

    Example:
        >>> model = build_transfer_model("vgg16", (32, 32, 3), 12, weights=None)
        >>> base_of(model).name
        'vgg16'
    """
    keras = device.keras()
    nested = [layer for layer in getattr(model, "layers", []) if isinstance(layer, keras.Model)]
    if not nested:
        raise CvcoreError(f"`model` must be a transfer model with a nested base; received {getattr(model, 'name', model)!r}, "
                          "which has none.")
    return nested[0]


def base_layer_names(model) -> list:
    """Names of the base's layers from bottom to top, its input layer left out (what
    :func:`unfreeze` counts from the top).

    Example:
        >>> model = build_transfer_model("vgg16", (32, 32, 3), 12, weights=None)
        >>> base_layer_names(model)[-4:]
        ['block5_conv1', 'block5_conv2', 'block5_conv3', 'block5_pool']
    """
    return [layer.name for layer in base_of(model).layers if type(layer).__name__ != "InputLayer"]


def default_finetune_layers(model) -> int:
    """How many top layers of the base fine-tuning unfreezes by default (see :data:`FINETUNE_AFTER`).

    Example:
        >>> model = build_transfer_model("vgg16", (32, 32, 3), 12, weights=None)
        >>> default_finetune_layers(model)  # VGG16: block5
        4
    """
    names = base_layer_names(model)
    # By layer name: a base's model name varies ("mobilenetv2_1.00_64"), these layer names do not.
    after = next((a for a in FINETUNE_AFTER.values() if a in names), None)
    return len(names) - names.index(after) - 1 if after is not None else max(1, len(names) // 10)


def flat_model(model):
    """A copy of a transfer model with the base's layers at the top level, for looking inside it.

    :func:`build_transfer_model` keeps the base as one nested layer (simple to
    freeze and unfreeze); :mod:`cvcore.visualize` wants every convolution as
    a layer of the model (activations per layer, Grad-CAM on
    ``block5_conv3``). Every layer is copied (configuration and weights), so
    that each belongs to one graph only; the copy gives the same outputs.

    Args:
        model: a model built by :func:`build_transfer_model`.

    Returns:
        A functional ``keras.Model``: ``pixels``, ``imagenet_preprocessing``,
        the base's layers, the head's layers; tagged ``"raw"``.

    Example:
        >>> model = build_transfer_model("vgg16", (32, 32, 3), 12, weights=None)
        >>> [layer.name for layer in flat_model(model).layers][:3]
        ['pixels', 'imagenet_preprocessing', 'block1_conv1']
    """
    keras = device.keras()
    base = base_of(model)
    copies = []

    def copy(layer):
        new = layer.__class__.from_config(layer.get_config())
        copies.append((new, layer))
        return new

    def inference(layer):  # BatchNormalization in inference mode, as the base runs in the transfer model
        new = copy(layer)

        def call(*args, **kwargs):
            if getattr(new, "_call_has_training_arg", False):
                kwargs["training"] = False
            return new(*args, **kwargs)
        return call

    pixels = keras.Input(shape=model.input_shape[1:], name="pixels")
    x = pixels
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        # The base's graph replayed on x with copies of its layers: they join this model's top level.
        x = base._run_through_graph(x, operation_fn=inference) if layer is base else copy(layer)(x)
    flat = keras.Model(pixels, x, name=f"{model.name}_flat")
    for new, old in copies:
        new.set_weights(old.get_weights())
    return inputs.set_preprocessing(flat, "raw")


def unfreeze(model, n_layers) -> int:
    """Make the top ``n_layers`` layers of the base trainable (BatchNormalization excepted) for fine-tuning.

    BatchNormalization layers stay frozen (their statistics and scales are
    kept), as Keras advises; the model runs its base with ``training=False``.
    Compile the model again afterwards for the change to take effect in
    ``fit``, with a small learning rate.

    Args:
        model: a model built by :func:`build_transfer_model`.
        n_layers: how many of the base's layers, counted from its top (its
            input layer not counted), to make trainable; 0 freezes the whole
            base again.

    Returns:
        The number of trainable parameters of the whole model.

    Example:
        >>> model = build_transfer_model("vgg16", (32, 32, 3), 12, weights=None)
        >>> unfreeze(model, 4)  # block5's 3 convolutions (7,079,424) and the head (6,156)
        7085580
    """
    base = base_of(model)
    layers = [layer for layer in base.layers if type(layer).__name__ != "InputLayer"]
    if isinstance(n_layers, bool) or not isinstance(n_layers, (int, np.integer)) or not 0 <= n_layers <= len(layers):
        raise CvcoreError(f"`n_layers` must be an integer from 0 to {len(layers)} (the layers of {base.name}); "
                          f"received {n_layers!r}.")
    n = int(n_layers)
    if n == 0:
        base.trainable = False
    else:
        base.trainable = True
        top = set(id(layer) for layer in layers[len(layers) - n:])
        for layer in base.layers:
            layer.trainable = id(layer) in top and type(layer).__name__ != "BatchNormalization"
    return int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))


# ----------------------------------------------------------------------------- feature extraction

def _weights_fingerprint(model) -> str:
    """sha256 over every weight's name, shape, dtype and bytes: weights change => fingerprint changes."""
    digest = hashlib.sha256()
    for w in model.weights:
        arr = np.ascontiguousarray(np.asarray(w.numpy() if hasattr(w, "numpy") else w))
        digest.update(f"{w.path if hasattr(w, 'path') else w.name}|{arr.shape}|{arr.dtype}|".encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()


def _array_fingerprint(arr: np.ndarray) -> str:
    digest = hashlib.sha256(f"{arr.shape}|{arr.dtype}|".encode())
    digest.update(np.ascontiguousarray(arr).tobytes())
    return digest.hexdigest()


def _check_batch(x, where: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ShapeError(f"{where} must be a batch N x H x W x 3 of RGB pixels (0..255); received shape {arr.shape}.")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ShapeError(f"{where} must hold numbers; received dtype {arr.dtype}.")
    return arr


def extract_features(base_model, images, *, batch_size=32, cache_dir=None, on_progress=None, cache_key=None,
                     should_stop=None) -> np.ndarray:
    """Run ``base_model`` over raw images, in batches, optionally reading and filling an on-disk cache.

    Args:
        base_model: a Keras model, typically
            ``load_application(name, include_top=False, input_shape=...)``;
            its preprocessing (:func:`cvcore.model_inputs.preprocessing_of`)
            is applied to the pixels.
        images: a numpy batch ``N x H x W x 3`` of raw 0..255 RGB pixels, or a
            ``tf.data.Dataset`` of such batches (or of ``(images, labels)``
            pairs: only the images are used).
        batch_size: images per step for an array (a dataset keeps its own).
        cache_dir: a folder for cached features (``.npy``); None caches nothing.
        on_progress: called as ``on_progress(done, total)`` after every batch:
            images for an array, batches for a dataset (``total`` None when
            the dataset's length is unknown).
        cache_key: a string that identifies a dataset's content (e.g. the
            fingerprint of its file list); required with ``cache_dir`` for a
            dataset, added to the key for an array.
        should_stop: called after every batch; when it returns true,
            :class:`ExtractionStopped` is raised and nothing is cached.

    Returns:
        float32 features, ``N x ...`` (the base's output shape).

    Raises:
        CvcoreError: a bad argument, or a dataset to cache without ``cache_key``.
        ShapeError: images that are not N x H x W x 3.
        ExtractionStopped: ``should_stop()`` returned true.

    Example:
        >>> base = load_application("vgg16", weights=None, include_top=False, input_shape=(64, 64, 3))
        >>> extract_features(base, np.zeros((5, 64, 64, 3), np.uint8)).shape
        (5, 2, 2, 512)
    """
    if not hasattr(base_model, "predict_on_batch") or not hasattr(base_model, "weights"):
        raise CvcoreError(f"`base_model` must be a Keras model; received {type(base_model).__name__}.")
    checks.integer(batch_size, "batch_size", 1)
    checks.callback(on_progress, "on_progress")
    checks.callback(should_stop, "should_stop")
    if cache_key is not None and not isinstance(cache_key, str):
        raise CvcoreError(f"`cache_key` must be a string or None; received {cache_key!r}.")
    is_array = isinstance(images, np.ndarray) or isinstance(images, (list, tuple))
    if is_array:
        images = _check_batch(images, "`images`")
    elif not hasattr(images, "cardinality") or not hasattr(images, "__iter__"):
        raise CvcoreError(f"`images` must be a numpy batch N x H x W x 3 or a tf.data.Dataset; received {type(images).__name__}.")
    if cache_dir is not None and not is_array and cache_key is None:
        raise CvcoreError("`cache_key` must be given to cache the features of a dataset (e.g. the fingerprint of its "
                          "file list): a dataset's content cannot be fingerprinted without reading it; received None.")

    keras = device.keras()
    kind = inputs.preprocessing_of(base_model)
    path = None
    if cache_dir is not None:
        folder = Path(cache_dir).expanduser()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise CvcoreError(f"`cache_dir` cannot be used as a folder: {str(cache_dir)!r} ({err}).") from None
        key = {
            "version": _CACHE_VERSION, "keras": keras.__version__, "name": base_model.name,
            "input_shape": repr(base_model.input_shape), "preprocessing": kind,
            "weights": _weights_fingerprint(base_model),
            "inputs": _array_fingerprint(images) if is_array else None, "cache_key": cache_key,
        }
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
        path = folder / f"features-{base_model.name}-{digest}.npy"
        if path.is_file():
            try:
                return np.load(path, allow_pickle=False).astype(np.float32, copy=False)
            except (OSError, ValueError):
                pass  # a damaged file: compute again and replace it

    def run(batch):
        if should_stop is not None and should_stop():
            raise ExtractionStopped("Feature extraction was stopped; nothing was cached.")
        x = inputs.to_model_pixels(np.asarray(batch, np.float32) / 255.0, kind)
        return np.asarray(base_model.predict_on_batch(x), np.float32)

    parts = []
    if is_array:
        total = len(images)
        for start in range(0, total, int(batch_size)):
            parts.append(run(images[start:start + int(batch_size)]))
            if on_progress is not None:
                on_progress(min(start + int(batch_size), total), total)
    else:
        card = int(images.cardinality())
        total = card if card >= 0 else None
        for done, batch in enumerate(images, start=1):
            if isinstance(batch, (tuple, list)):
                batch = batch[0]
            parts.append(run(_check_batch(batch, "Every batch of `images`")))
            if on_progress is not None:
                on_progress(done, total)
    if parts:
        features = np.concatenate(parts, axis=0)
    else:
        features = np.zeros((0,) + tuple(base_model.output_shape[1:]), np.float32)

    if path is not None:
        fd, tmp = tempfile.mkstemp(prefix=".features-", suffix=".npy.tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                np.save(handle, features, allow_pickle=False)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
    return features
