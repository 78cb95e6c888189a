"""Gradient ascent in input space: the image a filter, or a class, responds to most.

The chapter's procedure (Chollet, *Deep Learning with Python*, 5.4.2): start
from a gray image with a little noise, take the gradient of what is to be
maximized (a filter's mean activation, a class score) with respect to the
image, divide it by its root mean square, move the image a step along it,
repeat; then *deprocess* the result for display (zero mean, standard deviation
0.1, centred on 0.5, clipped to 0..1; :func:`maximize_class` returns by default
the pixels the model scored, clipped, instead). Everything happens in the model's own
preprocessing (:func:`.inputs.to_model_pixels` of the gray start), and the
step is measured in 0..255 pixel levels, so a step means the same for VGG16
(``"caffe"``) and for the app's models that take pixels in [0, 1].

* :func:`maximize_filters`: a grid of filters, optimized together as one
  batch (image *i* maximizes filter *i*): N filters cost about one batched
  forward and backward pass per step.
* :func:`maximize_filter`: one filter of a layer (a grid of one).
* :func:`maximize_class`: a class score, read by the one rule for a model's
  output (:func:`cvcore.outputs.score_source`: the logit beneath a final
  softmax or sigmoid).
* :func:`first_layer_kernels`: the first convolution's kernels, drawn as weights.

How it is fast:

* the model is cut at the layer (:func:`.inputs.submodel`): nothing above
  it is computed;
* the ascent runs in a ``tf.function`` (a graph, with a fixed input
  signature, traced once per model, layer and size and cached): a graph
  computes only the gradient with respect to the image, where an eager
  ``GradientTape`` also computes every kernel's gradient, and TensorFlow
  fuses the convolutions with their bias and ReLU; several steps run inside
  one call (a ``while`` loop in the graph), between progress reports;
* ``precision="auto"`` computes in bfloat16 on CPUs that do it natively
  (AVX512-BF16 or AMX: about twice the float32 throughput), on a bfloat16
  copy of the model (made once per model: for filters, of the layers up to
  the last feature map; for classes, of the whole model; half the weights'
  memory; the layers an ascent uses are refreshed from the model at every
  call, so training is seen);
  float32 elsewhere (on a GPU, and on CPUs without it);
* for a model that accepts any input size, ``work_size`` runs the ascent on
  a smaller image (cost grows with its area) that is upscaled after. A model
  with a fixed input size (VGG16 with its Dense head, even cut at a
  convolution) runs at that size.

Thread-safe: compiled functions are built under a lock and then shared by
every thread (several Streamlit sessions at once).
"""
from __future__ import annotations

import threading
import weakref
from collections import OrderedDict

import numpy as np

from .. import checks, device, outputs
from .. import model_inputs as inputs
from ..errors import CvcoreError, ShapeError

__all__ = [
    "maximize_filter",
    "maximize_filters",
    "maximize_class",
    "first_layer_kernels",
    "PRECISIONS",
    "DISPLAYS",
]

#: Values of ``precision``: ``"auto"`` (bfloat16 where the CPU computes it natively, else float32),
#: ``"float32"`` or ``"bfloat16"``.
PRECISIONS = ("auto", "float32", "bfloat16")
#: Values of ``display``: ``"normalize"`` (the chapter's deprocessing: zero mean, standard deviation 0.1
#: around 0.5) or ``"clip"`` (the pixels the model scored, clipped to 0..255).
DISPLAYS = ("normalize", "clip")
BLUR_MIN_SIZE = 64  # maximize_class blurs by default only images at least this wide
ANY_SIZE_DEFAULT = 150  # the chapter's 150 x 150, for models that take any size
MAX_SIZE = 2048
MAX_STEPS = 10_000
_BLUR_RADIUS = 2  # 5 x 5 Gaussian
_KEEP_COMPILED = 8  # compiled ascents kept per model (one per target and size)

_build_lock = threading.RLock()
_cache: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # model -> OrderedDict
_native_bf16: "bool | None" = None


# ----------------------------------------------------------------------------- validation


def _check_model(model):
    keras = device.keras()

    if not isinstance(model, keras.Model):
        raise CvcoreError(f"`model` must be a Keras model; received {type(model).__name__}.")
    h, w, c = inputs.input_size(model)
    if c is None:
        raise ShapeError(f"`model` must fix its input's channel count; its input shape is {model.input_shape}.")
    return h, w, c


def _check_common(steps, step_size, seed, on_progress, should_stop, progress_every, precision,
                  decay, blur_every, blur_sigma, jitter, display):
    checks.choice(display, "display", DISPLAYS)
    opts = {
        "steps": checks.integer(steps, "steps", 1, MAX_STEPS),
        "step_size": checks.number(step_size, "step_size", 0.0, 1000.0, low_open=True),
        "seed": checks.integer(seed, "seed", 0, 2**31 - 1),
        "progress_every": checks.integer(progress_every, "progress_every", 1),
        "decay": checks.number(decay, "decay", 0.0, 1.0, high_open=True),
        "blur_every": checks.integer(blur_every, "blur_every", 0),
        "blur_sigma": checks.number(blur_sigma, "blur_sigma", 0.0, 10.0),
        "jitter": checks.integer(jitter, "jitter", 0, 64),
    }
    checks.callback(on_progress, "on_progress")
    checks.callback(should_stop, "should_stop")
    checks.choice(precision, "precision", PRECISIONS)
    return opts


def _sizes(model_hw, size, work_size):
    """(working (h, w), output (h, w)) from the model's input size and the arguments."""
    h, w = model_hw
    if size is not None:
        size = checks.integer(size, "size", 1, MAX_SIZE)
    if h is not None and w is not None:
        if work_size is not None:
            raise CvcoreError(
                f"`work_size` applies to models that accept any input size; this one takes only {h} x {w} "
                f"images (received work_size={work_size!r}); leave it out."
            )
        return (h, w), ((size, size) if size is not None else (h, w))
    out = size if size is not None else ANY_SIZE_DEFAULT
    work = checks.integer(work_size, "work_size", 1, MAX_SIZE) if work_size is not None else out
    return (h or work, w or work), (out, out)


def _check_spatial_layer(model, layer_name):
    if not isinstance(layer_name, str):
        raise CvcoreError(f"`layer_name` must be a layer's name (a string); received {layer_name!r}.")
    known = {layer.name: layer for layer in model.layers}
    maps = inputs.conv_layer_names(model)
    if layer_name not in known:
        raise CvcoreError(
            f"No layer named {layer_name!r} in the model (`layer_name`); layers with feature maps: "
            f"{', '.join(maps) or 'none'}."
        )
    if layer_name not in maps:
        try:
            shape = tuple(known[layer_name].output.shape)
        except (AttributeError, ValueError):
            shape = "unknown"
        raise ShapeError(
            f"`layer_name` {layer_name!r} has output shape {shape}: gradient ascent on a filter needs a layer "
            f"with a spatial output (batch x H x W x filters), one of: {', '.join(maps) or 'none'}."
        )
    filters = known[layer_name].output.shape[-1]
    if filters is None:
        raise ShapeError(f"`layer_name` {layer_name!r} has no fixed number of filters.")
    return int(filters)


# ----------------------------------------------------------------------------- compiled ascent


def _cpu_has_native_bf16() -> bool:
    global _native_bf16
    if _native_bf16 is None:
        try:
            with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as fh:
                flags = fh.read()
            _native_bf16 = "avx512_bf16" in flags or "amx_bf16" in flags
        except OSError:
            _native_bf16 = False
    return _native_bf16


def _resolve_precision(precision: str) -> str:
    if precision != "auto":
        return precision
    return "bfloat16" if device.configure().kind == "CPU" and _cpu_has_native_bf16() else "float32"


class _Net:
    """What an ascent computes with: the model itself, or a bfloat16 copy of it kept in sync.

    The copy has the same layer names and structure; :meth:`sync` copies the
    model's current weights into the copy's layers that an ascent uses. It
    never holds the model itself (the cache is keyed by the model, weakly).
    """

    def __init__(self, model, precision):
        self.clone, self.precision, self._pairs = None, "float32", {}
        if precision == "bfloat16":
            clone = self._bf16_clone(model)
            if clone is not None:
                self.clone, self._pairs, self.precision = clone[0], clone[1], "bfloat16"
                self.sync(list(self._pairs))

    def compute_model(self, model, layer_name=None):
        """The bfloat16 copy (when it has ``layer_name``), or ``model`` itself."""
        if self.clone is None or (layer_name is not None and layer_name not in self._names):
            return model
        return self.clone

    @property
    def _names(self):
        return {layer.name for layer in self.clone.layers}

    @staticmethod
    def _bf16_clone(model):
        keras = device.keras()

        if any(isinstance(layer, keras.Model) for layer in model.layers):
            return None  # a nested model does not clone layer by layer

        def clone_layer(layer):
            config = dict(layer.get_config())
            if type(layer).__name__ != "InputLayer":
                config["dtype"] = "bfloat16"
            return layer.__class__.from_config(config)

        try:
            clone = keras.models.clone_model(model, clone_function=clone_layer)
        except Exception:  # a custom layer that does not round-trip its config: stay in float32
            return None
        originals = {layer.name: layer for layer in model.layers}
        pairs = {}
        for layer in clone.layers:
            if not layer.weights and type(layer).__name__ == "InputLayer":
                continue  # a functional clone names its input anew
            original = originals.get(layer.name)
            if original is None or len(layer.weights) != len(original.weights) or any(
                    tuple(a.shape) != tuple(b.shape) for a, b in zip(layer.weights, original.weights)):
                return None
            if layer.weights:
                pairs[layer.name] = tuple(zip(layer.weights, original.weights))
        return clone, pairs

    def sync(self, layer_names):
        """Copy the model's current weights into the copy's layers ``layer_names`` (cheap next to one step)."""
        if self._pairs:
            tf = device.tensorflow()

            for name in layer_names:
                for copy, original in self._pairs.get(name, ()):
                    copy.assign(tf.cast(original.value, copy.dtype))


def _objective(model, target):
    """``(the model cut where the score is read, the ScoreSource of a class or None for a filter)``
    for ``("filter", layer)`` or ``("class",)``."""
    if target[0] == "filter":
        return inputs.submodel(model, [target[1]]), None
    source = outputs.score_source(model)
    return inputs.submodel(model, [source.layer]), source


class _Ascent:
    """One compiled ascent: a network, a scoring head, a working size, a tf.function."""

    def __init__(self, net: _Net, model, target, hw, channels, kind):
        tf = device.tensorflow()

        cut, source = _objective(net.compute_model(model, target[1] if target[0] == "filter" else None), target)
        self.net = net
        self.kind = kind
        self.hw = hw
        self.channels = channels
        dense = getattr(source, "dense", None)
        self.layers = [layer.name for layer in cut.layers] + ([dense.name] if dense is not None else [])
        h, w = hw
        zero = inputs.to_model_pixels(np.zeros((1, 1, 1, channels), np.float32), kind).reshape(-1)
        level = inputs.to_model_pixels(np.full((1, 1, 1, channels), 1 / 255, np.float32), kind).reshape(-1)
        scale = (level - zero).astype(np.float32)  # model units per 0..255 pixel level, per channel
        center = inputs.to_model_pixels(np.full((1, 1, 1, channels), 0.5, np.float32), kind).reshape(-1)
        network = cut
        offsets = np.arange(-_BLUR_RADIUS, _BLUR_RADIUS + 1, dtype=np.float32)

        def scores(x, idx):
            out = network(x, training=False)
            if source is None:  # a filter's mean activation
                picked = tf.gather(out, idx, axis=3, batch_dims=1)
                return tf.reduce_mean(tf.cast(picked, tf.float32), axis=[1, 2])
            return tf.gather(source.scores(out), idx, axis=1, batch_dims=1)

        spec = [
            tf.TensorSpec([None, h, w, channels], tf.float32),  # images
            tf.TensorSpec([None], tf.int32),  # per image: its filter or class
            tf.TensorSpec([], tf.int32),  # steps in this call
            tf.TensorSpec([], tf.int32),  # steps done before
            tf.TensorSpec([], tf.float32),  # step size, 0..255 levels
            tf.TensorSpec([], tf.float32),  # decay
            tf.TensorSpec([], tf.int32),  # blur every
            tf.TensorSpec([], tf.float32),  # blur sigma
            tf.TensorSpec([], tf.int32),  # jitter
            tf.TensorSpec([], tf.int32),  # seed
        ]

        @tf.function(input_signature=spec)
        def run(x, idx, n, done, step_size, decay, blur_every, blur_sigma, jitter, seed):
            scale_t = tf.constant(scale)
            center_t = tf.constant(center)
            sigma = tf.maximum(blur_sigma, 1e-3)
            k1 = tf.exp(-tf.square(tf.constant(offsets)) / (2.0 * sigma * sigma))
            k1 = k1 / tf.reduce_sum(k1)
            blur = tf.tile((k1[:, None] * k1[None, :])[:, :, None, None], [1, 1, channels, 1])
            for i in tf.range(n):
                step = done + i
                shift = tf.random.stateless_uniform(
                    [2], seed=tf.stack([seed, step]), minval=-jitter, maxval=jitter + 1, dtype=tf.int32)
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    shifted = tf.roll(x, shift=shift, axis=[1, 2])
                    total = tf.reduce_sum(scores(shifted, idx))
                grads = tape.gradient(total, x) * scale_t  # d score / d (0..255 pixel)
                grads = grads / (tf.sqrt(tf.reduce_mean(tf.square(grads), axis=[1, 2, 3], keepdims=True)) + 1e-5)
                x = x + step_size * scale_t * grads
                x = center_t + (x - center_t) * (1.0 - decay)
                if blur_every > 0 and (step + 1) % tf.maximum(blur_every, 1) == 0:
                    x = center_t + tf.nn.depthwise_conv2d(x - center_t, blur, [1, 1, 1, 1], "SAME")
            return x

        self.run = run
        run.get_concrete_function()  # trace now, under the build lock

    def ascend(self, x, idx, steps, opts, on_progress, should_stop, offset, total):
        """Run ``steps`` steps on the batch ``x``; returns (x, steps done)."""
        tf = device.tensorflow()

        self.net.sync(self.layers)
        x = tf.constant(x, tf.float32)
        idx = tf.constant(np.asarray(idx, np.int32))
        args = [tf.constant(v) for v in (
            np.float32(opts["step_size"]), np.float32(opts["decay"]), np.int32(opts["blur_every"]),
            np.float32(opts["blur_sigma"]), np.int32(opts["jitter"]), np.int32(opts["seed"]))]
        done = 0
        while done < steps:
            if should_stop is not None and should_stop():
                break
            n = min(opts["progress_every"], steps - done)
            x = self.run(x, idx, tf.constant(n, tf.int32), tf.constant(done, tf.int32), *args)
            done += n
            if on_progress is not None:
                on_progress(offset + done, total)
        return x.numpy(), done


def _compiled(model, target, hw, channels, precision) -> _Ascent:
    """The cached compiled ascent for ``target`` on ``model`` at working size ``hw``; built once."""
    precision = _resolve_precision(precision)
    key = (target, tuple(hw), precision)
    with _build_lock:
        per_model = _cache.setdefault(model, OrderedDict())
        if key in per_model:
            per_model.move_to_end(key)
            return per_model[key]
        # One copy for every filter (the model up to its last feature map: VGG16's 14.7 million weights,
        # not its Dense head's 123 million), one for classes (the whole model).
        net_key = ("net", target[0], precision)
        if net_key not in per_model:
            base = inputs.submodel(model, [inputs.conv_layer_names(model)[-1]]) if target[0] == "filter" else model
            per_model[net_key] = _Net(base, precision)
        try:
            entry = _Ascent(per_model[net_key], model, target, hw, channels, inputs.preprocessing_of(model))
        except CvcoreError:
            raise
        except Exception as err:  # a working size the layers cannot take (too small, say)
            raise ShapeError(
                f"The model cannot take {hw[0]} x {hw[1]} images up to this layer (`size`/`work_size`): "
                f"{str(err).splitlines()[0][:300]}"
            ) from None
        per_model[key] = entry
        compiled = [k for k in per_model if k[0] != "net"]
        for old in compiled[: max(0, len(compiled) - _KEEP_COMPILED)]:
            del per_model[old]
        return entry


# ----------------------------------------------------------------------------- images


def _start(hw, channels, kind, seed) -> np.ndarray:
    """The chapter's start: gray (128) plus up to 20 levels of uniform noise, in the model's preprocessing."""
    rng = np.random.default_rng(seed)
    pixels = (128.0 + 20.0 * rng.random((1, hw[0], hw[1], channels))) / 255.0
    return inputs.to_model_pixels(pixels.astype(np.float32), kind)


def _deprocess(x, kind, out_hw, display="normalize") -> np.ndarray:
    """The model's pixels -> uint8 for display.

    ``"normalize"``: zero mean, std 0.1 around 0.5, clipped (the chapter's);
    ``"clip"``: the pixels as they are, clipped to 0..255 (what the model scored).
    """
    import cv2

    img = inputs.from_model_pixels(x, kind).astype(np.float64)
    if display == "normalize":
        img = img - img.mean()
        img = img / (img.std() + 1e-5)
        img = img * 0.1 + 0.5
    img = (np.clip(img, 0.0, 1.0) * 255).astype(np.uint8)
    if img.shape[:2] != tuple(out_hw):
        interp = cv2.INTER_AREA if img.shape[0] > out_hw[0] else cv2.INTER_CUBIC
        resized = cv2.resize(img, (int(out_hw[1]), int(out_hw[0])), interpolation=interp)
        img = resized.reshape(out_hw[0], out_hw[1], img.shape[2])
    return img


# ----------------------------------------------------------------------------- public API


def maximize_filters(model, layer_name, filter_indices, *, steps=30, step_size=1.0, size=None, seed=0,
                     on_progress=None, should_stop=None, batch_size=16, work_size=None, progress_every=5,
                     precision="auto", decay=0.0, blur_every=0, blur_sigma=0.5, jitter=0,
                     display="normalize") -> np.ndarray:
    """The images that maximize several filters of a layer, optimized together in batches.

    Image *i* of a batch maximizes filter ``filter_indices[i]`` (each image's
    gradient is its own), so a grid of N filters costs about N / batch_size
    batched forward and backward passes per step instead of N. Every image
    starts from the same seeded start, so image *i* is
    ``maximize_filter(..., filter_indices[i], seed=seed)`` up to rounding.

    Args:
        model: a built Keras model with one image input.
        layer_name: a layer with a spatial output (batch x H x W x filters),
            see :func:`.inputs.conv_layer_names`.
        filter_indices: a sequence of filter indices, or an int N for the
            first N filters.
        steps: gradient-ascent steps (1 to 10,000).
        step_size: the step, in 0..255 pixel levels (root mean square over
            the image): 1.0 is the chapter's.
        size: side of the images returned, in pixels; by default the model's
            input size, or 150 when the model accepts any size.
        seed: seed of the start image's noise.
        on_progress: called as ``on_progress(step, total)`` every
            ``progress_every`` steps, counting the steps of every batch
            (``total = steps * number of batches``).
        should_stop: a callable checked as often; when it returns True the
            ascent ends and the images so far come back, one per filter
            whose ascent had started (fewer than asked; none when stopped
            before the first step).
        batch_size: filters optimized at once (memory grows with it).
        work_size: side of the image the ascent runs at, when the model
            accepts any size (default ``size``); smaller is faster, the result
            is upscaled to ``size``. Not allowed for a model with a fixed size.
        progress_every: steps between progress reports and stop checks.
        precision: ``"auto"`` (bfloat16 on CPUs that compute it natively,
            else float32), ``"float32"`` or ``"bfloat16"``.
        decay: L2 decay toward gray after each step (0 to below 1; 0 is the chapter's).
        blur_every: blur the image every so many steps (0: never).
        blur_sigma: that blur's Gaussian sigma, in pixels.
        jitter: shift the image by up to so many pixels at random each step.
        display: ``"normalize"`` (the chapter's deprocessing: zero mean,
            standard deviation 0.1 around 0.5) or ``"clip"`` (the pixels the
            model saw, clipped to 0..255).

    Returns:
        uint8 array ``N x size x size x C`` (C the model's channels; the
        model's own ``H x W`` when it fixes its size and ``size`` is None).

    Raises:
        CvcoreError: for an unknown layer, a filter index out of range, or a
            bad argument (the message names it and the value received).
        ShapeError: for a layer without a spatial output, or a size the
            layers cannot take.

    Example:
        >>> from cvcore.models import PRESETS, build_model
        >>> model = build_model(PRESETS["Basic CNN (6 and 12 filters)"])  # 28 x 28 x 1 -> 10 classes
        >>> grid = maximize_filters(model, "conv2d_1", 4, steps=10)
        >>> grid.shape, grid.dtype
        ((4, 28, 28, 1), dtype('uint8'))
    """
    h, w, c = _check_model(model)
    filters = _check_spatial_layer(model, layer_name)
    if checks.is_integer(filter_indices):
        indices = list(range(checks.integer(filter_indices, "filter_indices", 1, filters)))
    else:
        try:
            indices = list(filter_indices)
        except TypeError:
            raise CvcoreError(
                f"`filter_indices` must be a sequence of filter indices or a count; received {filter_indices!r}."
            ) from None
        if not indices:
            raise CvcoreError("`filter_indices` is empty; give at least one filter index.")
        indices = [checks.integer(i, "filter_indices", 0, filters - 1) for i in indices]
    batch_size = checks.integer(batch_size, "batch_size", 1, 1024)
    opts = _check_common(steps, step_size, seed, on_progress, should_stop, progress_every, precision,
                         decay, blur_every, blur_sigma, jitter, display)
    work_hw, out_hw = _sizes((h, w), size, work_size)
    entry = _compiled(model, ("filter", layer_name), work_hw, c, precision)
    start = _start(work_hw, c, entry.kind, opts["seed"])
    batches = [indices[i: i + batch_size] for i in range(0, len(indices), batch_size)]
    total = opts["steps"] * len(batches)
    images = []
    for number, batch in enumerate(batches):
        x, done = entry.ascend(np.repeat(start, len(batch), axis=0), batch, opts["steps"], opts,
                               on_progress, should_stop, number * opts["steps"], total)
        if done:
            images.extend(_deprocess(xi, entry.kind, out_hw, display) for xi in x)
        if done < opts["steps"]:
            break
    if not images:
        return np.zeros((0, out_hw[0], out_hw[1], c), np.uint8)
    return np.stack(images)


def maximize_filter(model, layer_name, filter_index, *, steps=30, step_size=1.0, size=None, seed=0,
                    on_progress=None, should_stop=None, work_size=None, progress_every=5, precision="auto",
                    decay=0.0, blur_every=0, blur_sigma=0.5, jitter=0, display="normalize") -> np.ndarray:
    """The image that maximizes one filter's mean activation: the chapter's gradient ascent.

    Starts from gray plus a little seeded noise, in the model's preprocessing;
    each step adds ``step_size`` times the gradient of the filter's mean
    activation divided by its root mean square; the result is deprocessed
    for display (zero mean, standard deviation 0.1 around 0.5, clipped).
    It is :func:`maximize_filters` for one filter.

    Args:
        model: a built Keras model with one image input.
        layer_name: a layer with a spatial output (batch x H x W x filters).
        filter_index: the filter, 0 to filters - 1.
        steps, step_size, size, seed, work_size, progress_every, precision,
            decay, blur_every, blur_sigma, jitter, display: as for
            :func:`maximize_filters`.
        on_progress: called as ``on_progress(step, steps)`` every
            ``progress_every`` steps and after the last.
        should_stop: a callable checked as often; when it returns True the
            ascent ends and the current image comes back (the start image
            when it stops before the first step).

    Returns:
        uint8 array ``size x size x C``, C the model's channels (the model's
        own ``H x W`` when it fixes its size and ``size`` is None).

    Raises:
        CvcoreError: for an unknown layer, a filter index out of range, or a
            bad argument (the message names it and the value received).
        ShapeError: for a layer without a spatial output, or a size the
            layers cannot take.

    Example:
        >>> from cvcore.models import PRESETS, build_model
        >>> model = build_model(PRESETS["Basic CNN (6 and 12 filters)"])  # 28 x 28 x 1 -> 10 classes
        >>> image = maximize_filter(model, "conv2d", 0, steps=10)
        >>> image.shape, image.dtype
        ((28, 28, 1), dtype('uint8'))
    """
    _check_model(model)
    index = checks.integer(filter_index, "filter_index", 0, _check_spatial_layer(model, layer_name) - 1)
    images = maximize_filters(model, layer_name, [index], steps=steps, step_size=step_size, size=size, seed=seed,
                              on_progress=on_progress, should_stop=should_stop, batch_size=1, work_size=work_size,
                              progress_every=progress_every, precision=precision, decay=decay,
                              blur_every=blur_every, blur_sigma=blur_sigma, jitter=jitter, display=display)
    if len(images):
        return images[0]
    # stopped before the first step: the start image, as the ascent would have left it
    h, w, c = inputs.input_size(model)
    work_hw, out_hw = _sizes((h, w), size, work_size)
    kind = inputs.preprocessing_of(model)
    return _deprocess(_start(work_hw, c, kind, seed)[0], kind, out_hw, display)


def maximize_class(model, class_index, *, steps=60, step_size=1.0, size=None, seed=0, on_progress=None,
                   should_stop=None, work_size=None, progress_every=5, precision="auto", decay=0.002,
                   blur_every=None, blur_sigma=0.5, jitter=0, display="clip") -> np.ndarray:
    """The image that maximizes a class score: gradient ascent on the class, lightly regularized.

    The score follows the one rule for a model's output
    (:func:`cvcore.outputs.score_source`): the class's *logit*, beneath the
    model's final softmax or sigmoid (a ``Dense`` layer with that activation,
    an ``Activation`` or a ``Softmax`` layer): maximizing the probability
    itself would also push the other classes down, and its gradient vanishes
    once the class wins. A softmax or sigmoid that cannot be looked behind is
    turned back into logits (log p; log p - log(1 - p)); a model that ends in
    logits is scored on its output for the class. The same ascent as
    :func:`maximize_filter`, with by default a little L2 decay toward gray
    and, on images at least 64 pixels wide, a small blur every 4 steps
    (Yosinski et al., 2015), which make the pictures easier to read (on a
    28 x 28 digit the blur would erase thin strokes); ``decay=0,
    blur_every=0`` gives the plain ascent. The image comes back as the model
    scored it (``display="clip"``), so feeding it to the model gives the class.

    Args:
        model: a built Keras classifier with one image input and an output of
            shape (batch, classes).
        class_index: the class, 0 to classes - 1 (e.g. 184, Irish terrier,
            for ImageNet models).
        steps: gradient-ascent steps (1 to 10,000).
        step_size: the step, in 0..255 pixel levels (root mean square).
        size: side of the image returned, in pixels; by default the model's
            input size, or 150 when the model accepts any size.
        seed: seed of the start image's noise.
        on_progress: called as ``on_progress(step, steps)`` every
            ``progress_every`` steps and after the last.
        should_stop: a callable checked as often; True ends the ascent early
            and the current image comes back.
        work_size: side of the image the ascent runs at, when the model
            accepts any size (default ``size``).
        progress_every: steps between progress reports and stop checks.
        precision: ``"auto"``, ``"float32"`` or ``"bfloat16"`` (see :func:`maximize_filter`).
        decay: L2 decay toward gray after each step (0 to below 1).
        blur_every: blur the image every so many steps (0: never); None: 4
            when the working image is at least 64 pixels wide, else 0.
        blur_sigma: that blur's Gaussian sigma, in pixels.
        jitter: shift the image by up to so many pixels at random each step.
        display: ``"clip"`` (the pixels the model scored, clipped to 0..255)
            or ``"normalize"`` (the chapter's deprocessing, as for filters).

    Returns:
        uint8 array ``size x size x C``, C the model's channels.

    Raises:
        CvcoreError: for a class index out of range or a bad argument.
        ShapeError: for a model whose output is not (batch, classes).

    Example:
        >>> from cvcore.models import PRESETS, build_model
        >>> model = build_model(PRESETS["Basic CNN (6 and 12 filters)"])  # 28 x 28 x 1 -> 10 classes
        >>> maximize_class(model, 7, steps=10).shape
        (28, 28, 1)
        >>> # The seed's Irish terrier, with VGG16 and ImageNet's weights (a download):
        >>> image = maximize_class(keras.applications.VGG16(), 184)  # doctest: +SKIP
        >>> image.shape  # doctest: +SKIP
        (224, 224, 3)
    """
    h, w, c = _check_model(model)
    class_index = checks.integer(class_index, "class_index", 0, outputs.class_count(model) - 1)
    work_hw, out_hw = _sizes((h, w), size, work_size)
    if blur_every is None:
        blur_every = 4 if min(work_hw) >= BLUR_MIN_SIZE else 0
    opts = _check_common(steps, step_size, seed, on_progress, should_stop, progress_every, precision,
                         decay, blur_every, blur_sigma, jitter, display)
    entry = _compiled(model, ("class",), work_hw, c, precision)
    start = _start(work_hw, c, entry.kind, opts["seed"])
    x, _ = entry.ascend(start, [class_index], opts["steps"], opts, on_progress, should_stop, 0, opts["steps"])
    return _deprocess(x[0], entry.kind, out_hw, display)


def _first_conv(model):
    keras = device.keras()

    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            return layer, model
        if isinstance(layer, keras.Model):  # a base model inside (transfer learning)
            found = _first_conv(layer)
            if found is not None:
                return found
    return None


def first_layer_kernels(model):
    """The first convolution's kernels, as weights and as small pictures.

    Args:
        model: a built Keras model (a base model nested inside, as in
            transfer learning, is searched too).

    Returns:
        ``(weights, images)``: ``weights`` float32 ``kh x kw x C x F`` (a
        copy of the kernel, as Keras stores it); ``images`` a list of F uint8
        pictures, each kernel min-max scaled to 0..255 on its own (a constant
        kernel is mid-gray): ``kh x kw x 3`` RGB when C is 3 (channels put in
        RGB order for a model that takes BGR, such as VGG16), else ``kh x
        (C * kw)`` gray, channel *c* in columns ``c * kw`` to ``(c + 1) * kw``.

    Raises:
        CvcoreError: when ``model`` is not a Keras model or has no Conv2D layer.

    Example:
        >>> keras = device.keras()
        >>> weights, images = first_layer_kernels(keras.applications.VGG16(weights=None))
        >>> weights.shape, images[0].shape
        ((3, 3, 3, 64), (3, 3, 3))
    """
    keras = device.keras()

    if not isinstance(model, keras.Model):
        raise CvcoreError(f"`model` must be a Keras model; received {type(model).__name__}.")
    found = _first_conv(model)
    if found is None:
        raise CvcoreError(f"`model` {model.name!r} has no Conv2D layer; there are no kernels to draw.")
    layer, owner = found
    weights = np.array(layer.kernel.numpy(), dtype=np.float32)  # a copy
    kh, kw, channels, count = weights.shape
    bgr = channels == 3 and inputs.preprocessing_of(owner) == "caffe"  # owner: the model holding the layer
    images = []
    for f in range(count):
        k = weights[..., f].astype(np.float64)
        low, high = k.min(), k.max()
        scaled = np.full(k.shape, 128, np.uint8) if high - low <= 1e-12 else (
            np.round((k - low) / (high - low) * 255).astype(np.uint8))
        if channels == 3:
            images.append(np.ascontiguousarray(scaled[..., ::-1] if bgr else scaled))
        else:
            images.append(np.concatenate([scaled[..., i] for i in range(channels)], axis=1))
    return weights, images
