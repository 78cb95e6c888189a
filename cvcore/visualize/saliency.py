"""Saliency maps: how much each pixel of an image moves a class's score.

* Vanilla gradients (Simonyan et al., 2014): the gradient of the class score
  with respect to the input pixels; the map is its largest absolute value
  over the colour channels.
* SmoothGrad (Smilkov et al., 2017): the same on ``smooth_samples`` noisy
  copies of the image (Gaussian noise of standard deviation ``noise`` times
  the input's range), averaged. Vanilla gradients are speckled: a ReLU
  network's gradient jumps from pixel to pixel. Averaging over a small
  neighbourhood of the image keeps what is consistent (the object's edges and
  parts) and washes out the speckle. Like tf-keras-vis' ``Saliency``, the
  absolute gradients are averaged, then the channels' maximum is taken.

The class score follows the one rule for a model's output
(:func:`cvcore.outputs.score_source`), as for
:func:`cvcore.visualize.cam.class_activation_map`: the logit beneath a final
softmax or sigmoid (a saturated softmax or sigmoid has vanishing gradients),
the output itself when the model ends in logits. The noisy
copies are drawn from ``numpy.random.default_rng(seed)`` and sent through the
model in batches by one ``tf.function`` per model (traced once); the last few
maps are cached per model, keyed by the preprocessed input's hash, the
optimizer's step count and the arguments (:func:`cvcore.visualize.cam.clear_cache`
empties it).
"""
from __future__ import annotations

import numpy as np

from .. import checks, device, outputs
from .. import model_inputs as inputs
from .cam import _LRU, _PerModel, _digest, _prepare, _to_size, _weights_version

__all__ = ["saliency", "smoothgrad", "MAX_SMOOTH_SAMPLES"]

#: The most noisy copies :func:`saliency` averages.
MAX_SMOOTH_SAMPLES = 500

_PIXELS_PER_BATCH = 224 * 224 * 8  # input pixels per forward-backward batch: 8 copies at 224 x 224
_MAX_BATCH = 64
_MAPS_PER_MODEL = 8


class _Engine:
    """One model's traced gradient function and its cache of recent maps."""

    def __init__(self, model, input_shape: tuple):
        tf = device.tensorflow()
        scorer = outputs.score_source(model)
        sub = inputs.submodel(model, [scorer.layer])

        @tf.function(input_signature=[tf.TensorSpec((None,) + tuple(input_shape), tf.float32),
                                      tf.TensorSpec((), tf.int32)], reduce_retracing=True)
        def abs_gradient_sum(xs, c):
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(xs)
                score = tf.reduce_sum(scorer.scores(sub(xs, training=False))[:, c])
            grads = tape.gradient(score, xs, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            return tf.reduce_sum(tf.abs(grads), axis=0)  # the examples are independent: per-example gradients

        self.abs_gradient_sum = abs_gradient_sum
        self.maps = _LRU(_MAPS_PER_MODEL)


_ENGINES = _PerModel()  # cam.clear_cache() empties it too


def _engine(model, input_shape: tuple) -> _Engine:
    return _ENGINES.get(model, "saliency", lambda: _Engine(model, input_shape))


def _span(x: np.ndarray, model) -> float:
    """The input's range in the model's pixels; a flat image takes the full range of its preprocessing."""
    span = float(x.max() - x.min())
    if span > 0:
        return span
    kind = inputs.preprocessing_of(model)
    ends = inputs.to_model_pixels(np.array([[[[0.0]], [[1.0]]]], np.float32), kind)
    return float(abs(ends.max() - ends.min())) or 1.0


def saliency(model, image, class_index, smooth_samples=0, *, noise=0.15, seed=0) -> np.ndarray:
    """A saliency map: vanilla gradients, or SmoothGrad with ``smooth_samples`` noisy copies.

    Args:
        model: a built Keras classifier (Sequential or functional) with one
            image input and an output of shape ``(batch, classes)``.
        image: one H x W or H x W x C image (C 1, 3 or 4) as a person hands
            it over: uint8 (0..255) or float (0..1, or 0..255 when its
            largest value is above 1); it is resized and preprocessed for the
            model by :func:`cvcore.model_inputs.model_input`.
        class_index: the class, from 0 to ``classes - 1``.
        smooth_samples: 0 for vanilla gradients; else SmoothGrad's number of
            noisy copies (1 to :data:`MAX_SMOOTH_SAMPLES`).
        noise: SmoothGrad's noise: its standard deviation as a fraction of
            the input's range (max - min, in the model's pixels), in (0, 1];
            the paper finds 0.1 to 0.2 best.
        seed: seed of the noise (an integer >= 0); the same seed gives the
            same map.

    Returns:
        A float32 array of the image's height x width in [0, 1] (1 at the
        most salient pixel; all zeros when the score does not depend on the
        image).

    Raises:
        CvcoreError: for a bad argument (the message names it and the value
            received) or a model that is not a built classifier.
        ShapeError: for an image the model cannot take.

    Example:
        >>> from cvcore.models import PRESETS, build_model
        >>> model = build_model(PRESETS["Basic CNN (6 and 12 filters)"])  # 28 x 28 x 1 -> 10 classes
        >>> photo = np.random.default_rng(0).integers(0, 256, (28, 28), np.uint8)
        >>> m = saliency(model, photo, 3, smooth_samples=20)
        >>> m.shape == photo.shape[:2], m.dtype
        (True, dtype('float32'))
    """
    n = checks.integer(smooth_samples, "smooth_samples", 0, MAX_SMOOTH_SAMPLES)
    noise = checks.number(noise, "noise", 0, 1, low_open=True)
    seed = checks.integer(seed, "seed", 0)
    x, c, size, shape = _prepare(model, image, class_index)
    engine = _engine(model, shape)
    key = (_digest(x), _weights_version(model), c, n, float(noise) if n else None, int(seed) if n else None)
    found = engine.maps.get(key)
    if found is None:
        if n == 0:
            total = engine.abs_gradient_sum(x, c).numpy()
        else:
            total, _ = _smooth_mean(model, engine, x, c, n, noise, seed)
        found = engine.maps.put(key, np.asarray(total, np.float32).max(axis=-1))
    return _to_size(found, size)


def _smooth_mean(model, engine, x, c, n, noise, seed, on_progress=None, should_stop=None):
    """SmoothGrad's mean absolute gradient over up to ``n`` noisy copies of ``x``, batch by batch:
    ``(mean, copies averaged)``; ``(None, 0)`` when stopped before the first batch."""
    rng = np.random.default_rng(int(seed))
    sigma = np.float32(float(noise) * _span(x, model))
    batch = int(max(1, min(_MAX_BATCH, n, _PIXELS_PER_BATCH // max(1, x.shape[1] * x.shape[2]))))
    total = np.zeros(x.shape[1:], np.float64)
    done = 0
    if on_progress is not None:
        on_progress(0, n)
    for start in range(0, n, batch):
        if should_stop is not None and should_stop():
            break
        count = min(batch, n - start)
        noisy = x + sigma * rng.standard_normal((count,) + x.shape[1:], dtype=np.float32)
        total += engine.abs_gradient_sum(noisy.astype(np.float32), c).numpy()
        done += count
        if on_progress is not None:
            on_progress(done, n)
    return (total / done, done) if done else (None, 0)


def smoothgrad(model, image, class_index, samples, *, noise=0.15, seed=0, on_progress=None, should_stop=None):
    """:func:`saliency` with ``smooth_samples=samples``, with progress and Stop (for a background job).

    The same noisy copies, batches and averaging as :func:`saliency`, so the map is the same one.

    Args:
        model, image, class_index, noise, seed: as for :func:`saliency`.
        samples: noisy copies, 1 to :data:`MAX_SMOOTH_SAMPLES`.
        on_progress: called as ``on_progress(done, samples)`` before the first batch and after each.
        should_stop: checked before each batch; when it returns true the copies so far are averaged.

    Returns:
        ``(map, copies averaged)``: the map as :func:`saliency` returns it (float32, the image's height x
        width, in [0, 1]), or ``(None, 0)`` when stopped before the first batch.

    Raises:
        CvcoreError: as :func:`saliency` does.

    Example:
        >>> from cvcore.models import PRESETS, build_model
        >>> model = build_model(PRESETS["Basic CNN (6 and 12 filters)"])
        >>> photo = np.random.default_rng(0).integers(0, 256, (28, 28), np.uint8)
        >>> m, done = smoothgrad(model, photo, 3, 10)
        >>> done, bool(np.array_equal(m, saliency(model, photo, 3, smooth_samples=10)))
        (10, True)
    """
    n = checks.integer(samples, "samples", 1, MAX_SMOOTH_SAMPLES)
    noise = checks.number(noise, "noise", 0, 1, low_open=True)
    seed = checks.integer(seed, "seed", 0)
    checks.callback(on_progress, "on_progress")
    checks.callback(should_stop, "should_stop")
    x, c, size, shape = _prepare(model, image, class_index)
    total, done = _smooth_mean(model, _engine(model, shape), x, c, n, noise, seed, on_progress, should_stop)
    if not done:
        return None, 0
    return _to_size(np.asarray(total, np.float32).max(axis=-1), size), done
