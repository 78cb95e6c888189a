"""Class activation maps: where in an image a ConvNet finds the evidence for a class.

Three methods (:data:`CAM_METHODS`), all over the feature maps ``A`` (h x w x
K) of one convolutional layer, the last one by default:

* ``"gradcam"`` (Selvaraju et al., 2017): weight each map by the mean
  gradient of the class score over it; ``ReLU(sum_k w_k A_k)``.
* ``"gradcam++"`` (Chattopadhay et al., 2018): weight each map by a
  per-position blend of the positive gradients (the closed-form alphas of the
  paper, normalised per map as in the authors' code and in tf-keras-vis), which
  credits several instances of a class better than Grad-CAM.
* ``"scorecam"`` (Wang et al., 2020): gradient-free. Each map, upsampled and
  scaled to [0, 1], masks the input; the model's probability for the class on
  that masked input weights the map. It costs one forward pass per map, so
  layers with more than ``max_channels`` maps use the ``max_channels`` maps of
  largest spatial variance ("Faster Score-CAM", as tf-keras-vis' ``max_N``).

The class score follows the one rule for a model's output
(:mod:`cvcore.outputs`, :func:`~cvcore.outputs.score_source`): gradients are
taken of the class's *logit*, beneath the model's final softmax or sigmoid (a
``Dense(..., activation="softmax")``, an ``Activation`` or a ``Softmax``
layer): a confident softmax saturates, so the gradients of its probabilities
vanish and mix in every other class (d p_c = p_c (d z_c - sum_j p_j d z_j));
the logit has neither problem, and it is what the papers and tf-keras-vis'
``ReplaceToLinear`` use. A model that ends in logits is scored on its output as
it is. Score-CAM weights by probabilities: the softmax of those logits, as the
paper and tf-keras-vis do (and as :func:`cvcore.outputs.probabilities` reads a
model's outputs).

Score-CAM runs one forward pass per batch of masked inputs; it reports its
progress after each batch and stops between batches when asked
(``on_progress``, ``should_stop``). The batches already run are kept with the
image, so asking again resumes where it stopped.

Speed. The maps are recomputed as a page's widgets move, so the work is split
and cached:

* per model and layer, one functional submodel ([layer output, class scores],
  :func:`cvcore.model_inputs.submodel`) and ``tf.function`` s with fixed
  input signatures, traced once: the forward pass to the layer, and the
  gradient of one class score with respect to the layer's output from the
  layer's output alone (the *head* of the network: for VGG16 at 224 x 224 on two
  CPU cores, about 40 ms against about 175 ms for the whole pass). A model whose
  head cannot be cut off (a skip connection that jumps over the layer) runs the
  whole pass instead;
* per model and layer, a small LRU of the last images (keyed by a hash of the
  preprocessed input and by the optimizer's step count, so that a model still
  being trained is not answered from stale activations) holds the layer's
  activations, the gradients per class, and Score-CAM's probabilities of every
  class on every masked input. Another class, another method or another
  slider of the same image then costs only the cheap part; Score-CAM for
  another class costs nothing more.

Everything is guarded by locks, so several sessions can call at once.
:func:`clear_cache` empties the caches (benchmarks of the first call use it).

Score-CAM is cvcore's own, batched implementation rather than tf-keras-vis'
``Scorecam`` (which does run on Keras 3.15, given a functional model: the tests
check that both agree to 1e-6). Its masked inputs give the probabilities of
*every* class at once, and cvcore keeps them: another class is then free,
where ``Scorecam`` runs every masked input again. It also runs them through a
traced function instead of ``model.predict`` (no progress bar in the server's
log, no per-call setup), and shares the cached forward pass with the other
methods. Grad-CAM and Grad-CAM++ are cvcore's own for the same reasons (and
tf-keras-vis' ``ReplaceToLinear`` would clone the model to score logits);
they agree with tf-keras-vis' ``Gradcam`` and ``GradcamPlusPlus`` (with
``ReplaceToLinear``) to about 1e-4.
"""
from __future__ import annotations

import hashlib
import threading
import weakref
from collections import OrderedDict

import numpy as np

from .. import checks, device, outputs
from .. import model_inputs as inputs
from ..errors import CvcoreError, ShapeError

__all__ = ["CAM_METHODS", "SCORECAM_MAX_CHANNELS", "class_activation_map", "clear_cache"]

#: The methods :func:`class_activation_map` knows.
CAM_METHODS = ("gradcam", "gradcam++", "scorecam")
#: Score-CAM's default cap on the maps it masks the input with (one forward pass each).
SCORECAM_MAX_CHANNELS = 32

_IMAGES_PER_LAYER = 4  # the LRU's length, per model and layer (VGG16: 0.4 MB of activations an image)
_CLASSES_PER_IMAGE = 8  # gradients kept per cached image, as many again
_SCORECAM_BATCH = 8  # masked inputs per forward pass (16 or 32 are no faster on a CPU, and take more memory)
_EPS = 1e-7  # as keras.backend.epsilon(), which tf-keras-vis uses


# --------------------------------------------------------------------------
# shared with saliency.py: argument checks, the model's input, the engines, the map's size


def _check_model(model) -> tuple:
    """``(input shape without batch, number of classes)``, or a CvcoreError that says what is wrong."""
    if not hasattr(model, "layers") or not hasattr(model, "predict"):
        raise CvcoreError(f"`model` must be a Keras model; received {type(model).__name__}.")
    try:
        shape = inputs.input_size(model)
        classes = outputs.class_count(model)
    except (AttributeError, ValueError) as err:
        if isinstance(err, CvcoreError):
            raise
        raise CvcoreError(f"`model` must be a built Keras model (give it an Input); {model.name!r} is not: {err}") from None
    return tuple(shape), classes


def _image_size(image) -> tuple:
    """The H, W of an image as handed over; the full checks are :func:`inputs.model_input`'s."""
    shape = np.shape(image)
    if len(shape) not in (2, 3):
        raise ShapeError(f"`image` must be one H x W or H x W x C image; received an array of shape {shape}.")
    return int(shape[0]), int(shape[1])


def _prepare(model, image, class_index) -> tuple:
    """Check the model, the class and the image: ``(model input x, class, image's (H, W), the engine's input
    shape)``; the input shape has None for H and W when the model takes any size."""
    input_shape, classes = _check_model(model)
    c = checks.integer(class_index, "class_index", 0, classes - 1)
    size = _image_size(image)
    x = inputs.model_input(model, image)  # checks the image; resizes; preprocesses
    shape = input_shape if None not in input_shape[:2] else (None, None, input_shape[2])
    return x, c, size, shape


class _PerModel:
    """What is built once per model (and key): traced functions and their caches, held weakly by model.

    :func:`clear_cache` empties every instance.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.items: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
        _CACHES.append(self)

    def get(self, model, key, build):
        """The object for ``model`` and ``key``, built by ``build()`` the first time."""
        with self.lock:
            per_model = self.items.setdefault(model, {})
            if key not in per_model:
                per_model[key] = build()
            return per_model[key]

    def clear(self) -> None:
        with self.lock:
            self.items.clear()


_CACHES: list = []  # every _PerModel: what clear_cache empties


def _weights_version(model) -> int:
    """The optimizer's step count (0 for a model never trained here): part of every cache key."""
    iterations = getattr(getattr(model, "optimizer", None), "iterations", None)
    try:
        return int(iterations.numpy()) if iterations is not None else 0
    except (AttributeError, ValueError, TypeError):
        return 0


def _digest(x: np.ndarray) -> tuple:
    return x.shape, hashlib.blake2b(np.ascontiguousarray(x).tobytes(), digest_size=16).hexdigest()


def _to_size(m: np.ndarray, size: tuple) -> np.ndarray:
    """A 2-D map resized to ``size`` (H, W) with OpenCV, then scaled to [0, 1] (all zeros when flat), float32."""
    import cv2

    m = np.asarray(m, np.float32)
    h, w = size
    if m.shape != (h, w):
        shrink = m.shape[0] > h or m.shape[1] > w
        m = cv2.resize(m, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    m = np.nan_to_num(m, nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(m.min()), float(m.max())
    if not high - low > 1e-6 * max(abs(high), abs(low)):  # flat, up to float32 round-off: nothing to show
        return np.zeros((h, w), np.float32)
    return np.clip((m - low) / (high - low), 0.0, 1.0).astype(np.float32)


class _LRU:
    """A small thread-safe LRU."""

    def __init__(self, size: int):
        self.size, self.items, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key):
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
            return None

    def put(self, key, value):
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)
            return value


# --------------------------------------------------------------------------
# per model and layer: the traced functions and the LRU of images


class _Engine:
    """The traced functions of one model and layer, and its cache of recent images.

    Holds the submodels and layers, never the model itself, so that the
    per-model cache (a WeakKeyDictionary) lets a model go.
    """

    def __init__(self, model, layer_name: str, input_shape: tuple):
        tf = device.tensorflow()
        scorer = self.scorer = outputs.score_source(model)
        sub = inputs.submodel(model, [layer_name, scorer.layer])
        head = _head(model, layer_name, scorer.layer)
        self.split = head is not None
        map_shape = tuple(model.get_layer(layer_name).output.shape[1:])
        one = tf.TensorSpec((1,) + tuple(input_shape), tf.float32)
        many = tf.TensorSpec((None,) + tuple(input_shape), tf.float32)
        klass = tf.TensorSpec((), tf.int32)
        zero = tf.UnconnectedGradients.ZERO

        @tf.function(input_signature=[one], reduce_retracing=True)
        def forward(x):
            return sub(x, training=False)[0]

        @tf.function(input_signature=[one, klass], reduce_retracing=True)
        def full_gradients(x, c):
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(x)  # records the pass even when the model's weights are frozen
                a, s = sub(x, training=False)
                score = scorer.scores(s)[:, c]
            return a, tape.gradient(score, a, unconnected_gradients=zero)

        @tf.function(input_signature=[tf.TensorSpec((1,) + map_shape, tf.float32), klass], reduce_retracing=True)
        def head_gradients(a, c):
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(a)
                score = scorer.scores(head(a, training=False))[:, c]
            return tape.gradient(score, a, unconnected_gradients=zero)

        @tf.function(input_signature=[many], reduce_retracing=True)
        def probabilities(xs):
            return scorer.probabilities(sub(xs, training=False)[1])

        self.forward, self.full_gradients, self.head_gradients = forward, full_gradients, head_gradients
        self.probabilities = probabilities
        self.images = _LRU(_IMAGES_PER_LAYER)

    def entry(self, key) -> dict:
        """The cache entry of one image (created empty)."""
        found = self.images.get(key)
        return found if found is not None else self.images.put(key, {"lock": threading.Lock(), "grads": OrderedDict()})

    def activations(self, x, entry) -> np.ndarray:
        """The layer's output for ``x``: h x w x K float32."""
        with entry["lock"]:
            a = entry.get("a")
        if a is None:
            a = self.forward(x).numpy()[0].astype(np.float32)
            with entry["lock"]:
                entry["a"] = a
        return a

    def gradients(self, x, c: int, entry) -> tuple:
        """``(A, dscore_c/dA)``, each h x w x K float32."""
        with entry["lock"]:
            a, g = entry.get("a"), entry["grads"].get(c)
        if a is not None and g is not None:
            return a, g
        if self.split:
            a = self.activations(x, entry)
            g = self.head_gradients(a[None], c).numpy()[0].astype(np.float32)
        else:
            a, g = (t.numpy()[0].astype(np.float32) for t in self.full_gradients(x, c))
        with entry["lock"]:
            entry["a"] = a
            entry["grads"][c] = g
            while len(entry["grads"]) > _CLASSES_PER_IMAGE:
                entry["grads"].popitem(last=False)
        return a, g

    def masked_probabilities(self, x, entry, max_channels: int, on_progress=None, should_stop=None):
        """Score-CAM's ``(channels used, probabilities of every class on each masked input)``; None when
        ``should_stop()`` turned true first. ``on_progress(done, total)`` counts the masked inputs run, once
        before the first batch and after each. The batches run so far are kept in ``entry``: a later call
        goes on from there."""
        import cv2

        with entry["lock"]:
            found = entry.get(("scorecam", max_channels))
            part = list(entry.get(("scorecam part", max_channels), ()))
        a = self.activations(x, entry) if found is None else None
        if found is None:
            k = a.shape[-1]
            if k > max_channels:  # Faster Score-CAM: the maps of largest variance
                channels = np.sort(np.argsort(-a.reshape(-1, k).std(axis=0), kind="stable")[:max_channels])
            else:
                channels = np.arange(k)
        else:
            channels = found[0]
        total = len(channels)
        done = total if found is not None else sum(len(p) for p in part)
        if on_progress is not None:
            on_progress(done, total)
        if found is not None:
            return found
        h, w = x.shape[1:3]
        while done < total:
            if should_stop is not None and should_stop():
                return None
            chunk = channels[done:done + _SCORECAM_BATCH]
            # cv2 resizes at most 512 channels at a time; a chunk is far fewer
            masks = cv2.resize(np.ascontiguousarray(a[:, :, chunk]), (w, h), interpolation=cv2.INTER_LINEAR)
            masks = masks.reshape(h, w, len(chunk)).transpose(2, 0, 1)
            low = masks.min(axis=(1, 2), keepdims=True)
            high = masks.max(axis=(1, 2), keepdims=True)
            masks = (masks - low) / (high - low + _EPS)
            masked = (x * masks[:, :, :, None]).astype(np.float32)
            part.append(self.probabilities(masked).numpy())
            done += len(chunk)
            with entry["lock"]:
                kept = entry.get(("scorecam part", max_channels), ())
                if len(kept) < len(part):  # another call may have gone further
                    entry[("scorecam part", max_channels)] = tuple(part)
            if on_progress is not None:
                on_progress(done, total)
        found = (channels, np.concatenate(part, axis=0).astype(np.float32))
        with entry["lock"]:
            entry[("scorecam", max_channels)] = found
            entry.pop(("scorecam part", max_channels), None)
        return found


def _head(model, layer_name: str, source: str):
    """A model from ``layer_name``'s output to ``source``'s output sharing ``model``'s layers, or None
    when the network cannot be cut there (a path to the output that skips the layer)."""
    keras = device.keras()
    names = [layer.name for layer in model.layers]
    if isinstance(model, keras.Sequential):
        start, stop = names.index(layer_name), names.index(source)
        if stop <= start:
            return None
        x = inp = keras.Input(shape=model.layers[start].output.shape[1:])
        for layer in model.layers[start + 1:stop + 1]:
            x = layer(x)
        return keras.Model(inp, x, name=f"{model.name}_head_{layer_name}"[:120])
    try:
        return keras.Model(model.get_layer(layer_name).output, model.get_layer(source).output,
                           name=f"{model.name}_head_{layer_name}"[:120])
    except Exception:  # noqa: BLE001 - Keras raises several kinds for a graph it cannot cut
        return None


_ENGINES = _PerModel()
_engines = _ENGINES.items  # model -> {layer name: _Engine}


def _engine(model, layer_name: str, input_shape: tuple) -> _Engine:
    return _ENGINES.get(model, layer_name, lambda: _Engine(model, layer_name, input_shape))


def clear_cache() -> None:
    """Forget the traced functions and cached images of :func:`class_activation_map` and
    :func:`cvcore.visualize.saliency.saliency`.

    The next call for a model traces its functions again. Benchmarks of a
    first call, and code that changes a model's weights by hand (not by
    training, which the caches notice), call this.

    Example:
        >>> clear_cache()
    """
    for cache in _CACHES:
        cache.clear()


def _check_layer(model, layer_name) -> str:
    if layer_name is None:
        return inputs.last_conv_layer(model)
    if not isinstance(layer_name, str):
        raise CvcoreError(f"`layer_name` must be a layer's name (a string) or None; received {layer_name!r}.")
    known = {layer.name: layer for layer in model.layers}
    if layer_name not in known:
        raise CvcoreError(f"`layer_name` {layer_name!r} is not a layer of {model.name!r}; its layers with "
                          f"spatial output are: {', '.join(inputs.conv_layer_names(model)) or 'none'}.")
    try:
        shape = tuple(known[layer_name].output.shape)
    except (AttributeError, ValueError):
        shape = ()
    if len(shape) != 4 or type(known[layer_name]).__name__ == "InputLayer":
        raise CvcoreError(f"`layer_name` {layer_name!r} has output shape {shape}, not a spatial map "
                          f"(batch, H, W, channels); choose one of: {', '.join(inputs.conv_layer_names(model)) or 'none'}.")
    return layer_name


# --------------------------------------------------------------------------
# the maps


def _gradcam(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    weights = g.mean(axis=(0, 1))
    return np.maximum(a @ weights, 0.0)


def _gradcam_plus_plus(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    # The paper's alphas with exp(score) factored out: it multiplies every weight alike and the
    # map is normalised at the end (tf-keras-vis keeps it, and overflows for logits above ~88).
    g2 = g * g
    g3 = g2 * g
    denominator = 2.0 * g2 + g3 * a.sum(axis=(0, 1), keepdims=True)
    alphas = g2 / np.where(denominator != 0.0, denominator, 1.0)
    norm = alphas.sum(axis=(0, 1), keepdims=True)
    alphas = alphas / np.where(norm != 0.0, norm, 1.0)
    weights = (np.maximum(g, 0.0) * alphas).sum(axis=(0, 1))
    return np.maximum(a @ weights, 0.0)


def class_activation_map(model, image, class_index, method="gradcam", layer_name=None, *,
                         max_channels=SCORECAM_MAX_CHANNELS, on_progress=None, should_stop=None):
    """Where in ``image`` the model finds the evidence for a class: Grad-CAM, Grad-CAM++ or Score-CAM.

    The image is resized and preprocessed for the model as
    :func:`cvcore.model_inputs.model_input` does; the map is computed on
    the layer's grid and resized back, with OpenCV, to the image's own size.
    Gradients are of the class's logit, beneath the model's final softmax or
    sigmoid, or of its output when it ends in logits
    (:func:`cvcore.outputs.score_source`); Score-CAM weighs by the softmax of
    those logits. Calls for the same image (another class, another method)
    reuse its forward pass.

    Args:
        model: a built Keras classifier (Sequential or functional) with one
            image input and an output of shape ``(batch, classes)``.
        image: one H x W or H x W x C image (C 1, 3 or 4) as a person hands
            it over: uint8 (0..255) or float (0..1, or 0..255 when its
            largest value is above 1).
        class_index: the class, from 0 to ``classes - 1``.
        method: one of :data:`CAM_METHODS`.
        layer_name: a layer with a spatial output (batch, H, W, C); by
            default the last convolution
            (:func:`cvcore.model_inputs.last_conv_layer`).
        max_channels: Score-CAM masks the input with at most this many of the
            layer's maps (those of largest variance; all when the layer has no
            more), one forward pass each; 1 to 4096. Ignored by the others.
        on_progress: Score-CAM calls ``on_progress(done, total)`` with the
            masked inputs run so far (``total`` of them in all, at most
            ``max_channels``): once before the first batch of 8, after each
            batch, and once with ``(total, total)`` when the answer was
            cached. The gradient methods do not call it.
        should_stop: Score-CAM checks it before each batch; when it returns
            true, Score-CAM stops there and returns None. The batches that
            ran are kept with the image: the next call for it goes on from
            where this one stopped. The gradient methods do not call it.

    Returns:
        A float32 array of the image's height x width, in [0, 1] (1 where the
        evidence is strongest; all zeros when the layer holds no positive
        evidence for the class); None when ``should_stop`` stopped Score-CAM.

    Raises:
        CvcoreError: for an unknown method, a class index out of range, a
            layer that is not there or has no spatial output, or a model that
            is not a built classifier; the message names the argument and the
            value received.
        ShapeError: for an image the model cannot take.

    Example:
        >>> from cvcore.models import PRESETS, build_model
        >>> model = build_model(PRESETS["Basic CNN (6 and 12 filters)"])  # 28 x 28 x 1 -> 10 classes
        >>> photo = np.random.default_rng(0).integers(0, 256, (56, 56), np.uint8)
        >>> cam = class_activation_map(model, photo, 3, method="gradcam++")
        >>> cam.shape == photo.shape[:2], cam.dtype, float(cam.max())
        (True, dtype('float32'), 1.0)
    """
    checks.choice(method, "method", CAM_METHODS)
    max_channels = checks.integer(max_channels, "max_channels", 1, 4096)
    checks.callback(on_progress, "on_progress")
    checks.callback(should_stop, "should_stop")
    x, c, size, shape = _prepare(model, image, class_index)
    name = _check_layer(model, layer_name)
    engine = _engine(model, name, shape)
    entry = engine.entry((_digest(x), _weights_version(model)))
    if method == "scorecam":
        found = engine.masked_probabilities(x, entry, max_channels, on_progress, should_stop)
        if found is None:
            return None
        channels, probs = found
        a = engine.activations(x, entry)
        cam = np.maximum(a[:, :, channels] @ probs[:, c], 0.0)
    else:
        a, g = engine.gradients(x, c, entry)
        cam = _gradcam(a, g) if method == "gradcam" else _gradcam_plus_plus(a, g)
    return _to_size(cam, size)
