"""Speed of cvcore.visualize (gradient ascent, Grad-CAM and friends) against plain eager scripts.

On ``keras.applications.VGG16(weights=None)`` at 224 x 224 (weights do not
change speed, and nothing is downloaded), everything measured in one run:

Gradient ascent on ``block5_conv1``, filter 0, in steps per second:

* plain, cut: the seed's loop as an eager TensorFlow 2 script: a
  ``tf.GradientTape`` over ``keras.Model(model.input, layer.output)``, the
  loss the filter's mean activation, the gradient divided by its root mean
  square, ``x += step * grads``, one step per Python iteration. The seed's own
  code (Keras 2, ``K.gradients(loss, model.input)`` on the layer's output)
  computes exactly this cut part of the network;
* plain, full: the same over the multi-output
  ``keras.Model(model.input, [layer.output, model.output])``, which also
  runs the Dense head on every step (a common way to port it, shown so the
  reader sees what each baseline is);
* ``maximize_filter`` with ``precision="float32"`` and with the default
  ``precision="auto"`` (bfloat16 on a CPU that computes it natively; float32
  on a GPU, and on CPUs without it);
* ``maximize_filters`` on the first N filters (default 8) as one batch, in
  filters x steps per second, against the plain loop (one filter at a time,
  where filters x steps per second is its steps per second).

Grad-CAM latency (``block5_conv3``, the last convolution): a plain eager
Grad-CAM (a grad model ``[block5_conv3 output, predictions]``, a tape, the
gradient of the class score with respect to the conv output, mean-pooled
weights, ReLU of the weighted sum, resized to the image) against
``cvcore.visualize.class_activation_map``, for a first look at an image (an
image it has not seen) and for a second class on the same image; then the
first-look latencies of Grad-CAM++, Score-CAM, vanilla saliency and SmoothGrad
(with a plain eager vanilla saliency beside it), where those functions exist.

Every figure is a median over ``--repeats`` rounds, the settings interleaved in
each round so a busy machine slows all alike; the first call of each function
(tracing) is timed apart and printed, not counted. Ratios are ours / plain as
"x faster". It prints; it asserts nothing. On a GPU machine it runs as it is
(everything, the plain scripts too, runs on the GPU).

Usage:
    .venv/bin/python benchmarks/visualize.py [--steps S] [--filters N] [--repeats R] [--skip-cam] [--skip-ascent]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from cvcore import device  # noqa: E402

LAYER = "block5_conv1"
CAM_LAYER = "block5_conv3"
CLASSES = (386, 101)  # African elephant (the chapter's Grad-CAM), then tusker: a second class on the same image
SMOOTH_SAMPLES = 20


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


# ----------------------------------------------------------------------------- plain scripts


def plain_ascent_step(grad_model, multi):
    """One eager step of the seed's gradient ascent, as a plain TensorFlow 2 script writes it."""
    import tensorflow as tf

    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = grad_model(x)
            layer_output = out[0] if multi else out
            loss = tf.reduce_mean(layer_output[:, :, :, 0])
        grads = tape.gradient(loss, x)
        grads /= tf.sqrt(tf.reduce_mean(tf.square(grads))) + 1e-5
        return x + 1.0 * grads

    return step


def plain_ascent(step, steps):
    import tensorflow as tf

    x = tf.constant((np.random.random((1, 224, 224, 3)) * 20 + 128.0).astype("float32"))
    for _ in range(steps):
        x = step(x)
    return x.numpy()


def plain_gradcam(grad_model, image, class_index):
    """The usual eager Grad-CAM script (Keras' example, the chapter's steps in TensorFlow 2)."""
    import cv2
    import tensorflow as tf
    from keras.applications.vgg16 import preprocess_input

    x = preprocess_input(cv2.resize(image, (224, 224)).astype("float32")[None])
    with tf.GradientTape() as tape:
        conv_output, predictions = grad_model(x)
        score = predictions[:, class_index]
    grads = tape.gradient(score, conv_output)
    weights = tf.reduce_mean(grads, axis=(0, 1, 2))
    cam = tf.nn.relu(tf.reduce_sum(conv_output[0] * weights, axis=-1)).numpy()
    cam = cv2.resize(cam, (image.shape[1], image.shape[0]))
    return cam / (cam.max() + 1e-12)


def plain_saliency(model, image, class_index):
    import cv2
    import tensorflow as tf
    from keras.applications.vgg16 import preprocess_input

    x = tf.constant(preprocess_input(cv2.resize(image, (224, 224)).astype("float32")[None]))
    with tf.GradientTape() as tape:
        tape.watch(x)
        score = model(x)[:, class_index]
    grads = tape.gradient(score, x)
    m = tf.reduce_max(tf.abs(grads), axis=-1)[0].numpy()
    return cv2.resize(m, (image.shape[1], image.shape[0])) / (m.max() + 1e-12)


# ----------------------------------------------------------------------------- sections


def bench_ascent(model, args):
    import keras

    from cvcore.visualize.ascent import maximize_filter, maximize_filters

    layer = model.get_layer(LAYER)
    cut = keras.Model(model.input, layer.output)
    multi = keras.Model(model.input, [layer.output, model.output])
    plain_cut, plain_multi = plain_ascent_step(cut, False), plain_ascent_step(multi, True)
    steps, n = args.steps, args.filters
    grid_steps = max(1, steps // 2)
    runs = {
        "plain, cut": lambda: plain_ascent(plain_cut, steps),
        "plain, full": lambda: plain_ascent(plain_multi, steps),
        "ours float32": lambda: maximize_filter(model, LAYER, 0, steps=steps, precision="float32"),
        "ours auto": lambda: maximize_filter(model, LAYER, 0, steps=steps),
        f"grid {n} float32": lambda: maximize_filters(model, LAYER, n, steps=grid_steps, batch_size=n,
                                                      precision="float32"),
        f"grid {n} auto": lambda: maximize_filters(model, LAYER, n, steps=grid_steps, batch_size=n),
    }
    units = {k: steps for k in runs}
    units[f"grid {n} float32"] = units[f"grid {n} auto"] = n * grid_steps  # filters x steps
    first = {}
    print(f"Gradient ascent on {LAYER}, filter 0, 224 x 224: {steps} steps per timing "
          f"(the grid: {n} filters x {grid_steps} steps), {args.repeats} rounds.", flush=True)
    print("  first calls (tracing, one step): ", end="", flush=True)
    short = {
        "plain, cut": lambda: plain_ascent(plain_cut, 1),
        "plain, full": lambda: plain_ascent(plain_multi, 1),
        "ours float32": lambda: maximize_filter(model, LAYER, 0, steps=1, precision="float32"),
        "ours auto": lambda: maximize_filter(model, LAYER, 0, steps=1),
        f"grid {n} float32": lambda: maximize_filters(model, LAYER, n, steps=1, batch_size=n, precision="float32"),
        f"grid {n} auto": lambda: maximize_filters(model, LAYER, n, steps=1, batch_size=n),
    }
    for name, fn in short.items():
        first[name] = _timed(fn)[0]
    print(", ".join(f"{k} {v:.2f} s" for k, v in first.items()), flush=True)
    seconds = {k: [] for k in runs}
    for r in range(args.repeats):
        for name, fn in runs.items():
            seconds[name].append(_timed(fn)[0])
        print(f"  round {r + 1}: " + ", ".join(f"{k} {units[k] / seconds[k][-1]:.2f}/s" for k in runs), flush=True)
    rate = {k: units[k] / statistics.median(v) for k, v in seconds.items()}
    base = rate["plain, cut"]
    print("\n  what                                       rate (median)        vs plain, cut   vs plain, full")
    for name in runs:
        unit = "filters x steps/s" if name.startswith("grid") else "steps/s          "
        print(f"  {name:40s} {rate[name]:7.2f} {unit}  {rate[name] / base:6.2f}x faster  "
              f"{rate[name] / rate['plain, full']:6.2f}x faster")
    print(f"  (one step: plain, cut {1000 / base:.0f} ms; ours float32 {1000 / rate['ours float32']:.0f} ms; "
          f"ours auto {1000 / rate['ours auto']:.0f} ms; per filter in the grid (auto) "
          f"{1000 / rate[f'grid {n} auto']:.0f} ms)")
    from cvcore.visualize.ascent import _resolve_precision

    print(f"  precision='auto' resolves to {_resolve_precision('auto')} on this machine.\n", flush=True)


def bench_cam(model, args):
    import keras

    try:
        from cvcore.visualize import cam as cam_module
    except ImportError as err:
        print(f"Grad-CAM: cvcore.visualize.cam is not there yet ({err}); section skipped.\n")
        return
    class_activation_map = cam_module.class_activation_map
    try:
        from cvcore.visualize.saliency import saliency
    except ImportError:
        saliency = None
    grad_model = keras.Model(model.input, [model.get_layer(CAM_LAYER).output, model.output])
    rng = np.random.default_rng(0)

    def photo():  # a new image each time: a first look, whatever caches hold
        return rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)

    c1, c2 = CLASSES
    warm = photo()
    print(f"Grad-CAM on {CAM_LAYER}, 300 x 400 photographs resized to 224 x 224, {args.repeats} rounds; "
          "a new image for every first look.")
    firsts = {
        "plain Grad-CAM": _timed(plain_gradcam, grad_model, warm, c1)[0],
        "class_activation_map": _timed(class_activation_map, model, warm, c1)[0],
    }
    print("  first calls (tracing): " + ", ".join(f"{k} {v:.2f} s" for k, v in firsts.items()), flush=True)
    extra = {}
    if hasattr(cam_module, "CAM_METHODS"):
        for method in ("gradcam++", "scorecam"):
            if method in cam_module.CAM_METHODS:
                extra[method] = (lambda img, m=method: class_activation_map(model, img, c1, method=m))
    if saliency is not None:
        extra["saliency (vanilla)"] = lambda img: saliency(model, img, c1)
        extra[f"SmoothGrad ({SMOOTH_SAMPLES} samples)"] = lambda img: saliency(model, img, c1,
                                                                             smooth_samples=SMOOTH_SAMPLES)
        extra["plain eager saliency"] = lambda img: plain_saliency(model, img, c1)
    for name, fn in extra.items():
        fn(photo())  # trace
    times = {k: [] for k in ("plain first", "plain second", "ours first", "ours second", *extra)}
    for r in range(args.repeats):
        img = photo()
        times["plain first"].append(_timed(plain_gradcam, grad_model, img, c1)[0])
        times["plain second"].append(_timed(plain_gradcam, grad_model, img, c2)[0])
        img = photo()
        times["ours first"].append(_timed(class_activation_map, model, img, c1)[0])
        times["ours second"].append(_timed(class_activation_map, model, img, c2)[0])
        for name, fn in extra.items():
            times[name].append(_timed(fn, photo())[0])
        print(f"  round {r + 1}: " + ", ".join(f"{k} {1000 * v[-1]:.0f} ms" for k, v in times.items()), flush=True)
    t = {k: statistics.median(v) for k, v in times.items()}
    print("\n  Grad-CAM                      plain eager    class_activation_map")
    print(f"  first look at an image        {1000 * t['plain first']:7.0f} ms   {1000 * t['ours first']:7.0f} ms   "
          f"{t['plain first'] / t['ours first']:5.2f}x faster")
    print(f"  second class, same image      {1000 * t['plain second']:7.0f} ms   {1000 * t['ours second']:7.0f} ms   "
          f"{t['plain second'] / t['ours second']:5.2f}x faster")
    if extra:
        print("\n  Other maps, first look at an image (median):")
        for name in extra:
            print(f"    {name:32s} {1000 * t[name]:7.0f} ms")
        if "saliency (vanilla)" in t:
            print(f"    vanilla saliency vs plain eager: {t['plain eager saliency'] / t['saliency (vanilla)']:.2f}x faster")
    print()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6, help="ascent steps per timing (default 6; the grid runs half)")
    parser.add_argument("--filters", type=int, default=8, help="filters in the batched grid (default 8)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds, settings interleaved (default 3)")
    parser.add_argument("--skip-ascent", action="store_true", help="leave out the gradient-ascent section")
    parser.add_argument("--skip-cam", action="store_true", help="leave out the Grad-CAM section")
    args = parser.parse_args(argv)
    args.steps, args.filters, args.repeats = max(1, args.steps), max(1, args.filters), max(1, args.repeats)
    info = device.configure()
    import keras

    print(f"Device: {info.label}; TensorFlow {info.tensorflow}, Keras {info.keras}")
    if info.kind == "GPU":
        print("GPU: the plain scripts and cvcore run on the GPU alike; precision='auto' stays float32 there.")
    else:
        print("No GPU: on a GPU machine this script runs as it is (plain scripts and cvcore alike on the GPU).")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"Load average at start: {load:.2f} on {info.cpu_count} logical cores "
          "(other work on the machine slows every setting alike, the ratios less than the rates).")
    keras.utils.set_random_seed(0)
    model = keras.applications.VGG16(weights=None)  # 224 x 224, with its Dense head; "caffe" preprocessing
    print("Model: keras.applications.VGG16(weights=None), 224 x 224 input (fixed: the Dense head).\n", flush=True)
    if not args.skip_ascent:
        bench_ascent(model, args)
    if not args.skip_cam:
        bench_cam(model, args)


if __name__ == "__main__":
    main()
