"""How fast cvcore's convolution answers, beside a plain numpy loop and Keras Conv2D.

Prints figures and ratios measured in this one run; asserts nothing.

    python benchmarks/convolution.py [--repeat 20]

Cases (from the issue):
  * one 3x3 filter spanning the channels of a 512x512 RGB image;
  * 8 filters (3x3) on a 28x28 grayscale digit.
And the server time of one rerun of the Filters page script after a kernel
edit, in a Streamlit AppTest session (widgets, numerics, figure building and
serialisation; the browser's drawing is not the server's time).
"""
import argparse
import logging
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from cvcore.convolution import conv2d, conv_output_shape  # noqa: E402


def timed(fn, repeat):
    """Median seconds of `repeat` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def plain_loop(image, kernels, bias):
    """The textbook loop: for every output pixel, multiply the window by each kernel and sum."""
    kh, kw, _, f = kernels.shape
    oh, ow = conv_output_shape(image.shape, (kh, kw))
    out = np.empty((oh, ow, f), np.float32)
    for i in range(oh):
        for j in range(ow):
            window = image[i:i + kh, j:j + kw, :]
            for k in range(f):
                out[i, j, k] = np.sum(window * kernels[:, :, :, k]) + bias[k]
    return out


def keras_layer(image, kernels, bias):
    import keras
    import tensorflow as tf

    layer = keras.layers.Conv2D(kernels.shape[3], kernels.shape[:2])
    layer.build((None, *image.shape))
    layer.set_weights([kernels, bias])
    x = tf.constant(image[None])
    compiled = tf.function(lambda t: layer(t))
    return (lambda: np.asarray(layer(x))[0]), (lambda: compiled(x).numpy()[0])


TIMED_PAGE = """
import time
import streamlit as st
started = time.perf_counter()
try:
    exec(compile(open({path!r}).read(), {path!r}, "exec"), {{"__name__": "__main__"}})
finally:
    st.session_state["_bench_seconds"] = time.perf_counter() - started
"""


def page_rerun_ms(repeat, settings):
    """Median server time of the Filters page script when a kernel's bias is edited.

    Runs the real page in a Streamlit AppTest session (script run context,
    widgets, figure building and serialisation), timing the script alone,
    not AppTest's own bookkeeping.
    """
    logging.disable(logging.WARNING)
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_string(TIMED_PAGE.format(path=str(ROOT / "pages" / "filters.py")), default_timeout=120).run()
    for kind, key, value in settings:
        getattr(at, kind)(key=key).set_value(value).run()
    times = []
    for i in range(repeat + 1):
        at.number_input(key="flt_bias_0").set_value(0.01 * (i + 1)).run()  # a kernel edit
        assert not at.exception, at.exception
        times.append(at.session_state["_bench_seconds"])
    return statistics.median(times[1:]) * 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    cases = {
        "3x3 on 512x512 RGB, 1 filter": (rng.uniform(0, 1, (512, 512, 3)).astype(np.float32),
                                          rng.normal(size=(3, 3, 3, 1)).astype(np.float32)),
        "8 filters 3x3 on 28x28 gray": (rng.uniform(0, 1, (28, 28, 1)).astype(np.float32),
                                         rng.normal(size=(3, 3, 1, 8)).astype(np.float32)),
    }
    print(f"{'case':32s} {'cvcore':>10s} {'numpy loop':>12s} {'Keras eager':>12s} {'Keras tf.function':>18s}"
          f" {'loop/cvcore':>12s} {'keras/cvcore':>13s}")
    for name, (image, kernels) in cases.items():
        bias = np.zeros(kernels.shape[3], np.float32)
        ours = timed(lambda: conv2d(image, kernels, bias), args.repeat)
        loop = timed(lambda: plain_loop(image, kernels, bias), max(1, args.repeat // 10))
        eager, compiled = keras_layer(image, kernels, bias)
        k_eager = timed(eager, args.repeat)
        k_fn = timed(compiled, args.repeat)
        np.testing.assert_allclose(conv2d(image, kernels, bias), compiled(), atol=1e-4)
        print(f"{name:32s} {ours * 1e3:8.2f}ms {loop * 1e3:10.1f}ms {k_eager * 1e3:10.2f}ms {k_fn * 1e3:16.2f}ms"
              f" {loop / ours:11.0f}x {k_eager / ours:12.1f}x")
    print()
    print(f"Filters page: server time of one rerun after a kernel edit (median of {args.repeat}):")
    for label, settings in [
        ("28x28 digit, 2 filters", []),
        ("photo 160 px, RGB, 2 filters", [("segmented_control", "flt_source", "Photo")]),
        ("photo 512 px, RGB, 8 filters, ReLU, max pool",
         [("segmented_control", "flt_source", "Photo"), ("slider", "flt_side", 512), ("number_input", "flt_n", 8),
          ("toggle", "flt_relu", True), ("selectbox", "flt_pool", "max")]),
    ]:
        print(f"  {label:48s} {page_rerun_ms(args.repeat, settings):7.1f} ms")

if __name__ == "__main__":
    main()
