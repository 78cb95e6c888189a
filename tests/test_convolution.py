"""cvcore.convolution against Keras itself: random shapes, strides and paddings."""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

keras = pytest.importorskip("keras")

from cvcore import convolution as C  # noqa: E402
from cvcore.errors import KernelError, ShapeError  # noqa: E402

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def keras_conv(x, k, b, strides, padding):
    """Keras Conv2D with the given weights on one H x W x C image."""
    layer = keras.layers.Conv2D(k.shape[3], k.shape[:2], strides=strides, padding=padding)
    layer.build((None, *x.shape))
    layer.set_weights([k.astype(np.float32), np.asarray(b, np.float32)])
    return np.asarray(layer(x[None].astype(np.float32)))[0]


@st.composite
def conv_cases(draw):
    h, w = draw(st.integers(1, 19)), draw(st.integers(1, 19))
    c, f = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    strides = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(st.sampled_from(["valid", "same"]))
    seed = draw(st.integers(0, 2**31 - 1))
    return h, w, c, f, kh, kw, strides, padding, seed


@SETTINGS
@given(conv_cases())
def test_conv2d_equals_keras(case):
    h, w, c, f, kh, kw, strides, padding, seed = case
    assume(padding == "same" or (kh <= h and kw <= w))
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (h, w, c)).astype(np.float32)
    k = rng.uniform(-1, 1, (kh, kw, c, f)).astype(np.float32)
    b = rng.uniform(-1, 1, f).astype(np.float32)
    ours = C.conv2d(x, k, b, strides, padding)
    theirs = keras_conv(x, k, b, strides, padding)
    assert ours.dtype == np.float32
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=1e-4)


@SETTINGS
@given(conv_cases())
def test_conv_output_shape_equals_keras(case):
    h, w, c, f, kh, kw, strides, padding, _ = case
    layer = keras.layers.Conv2D(f, (kh, kw), strides=strides, padding=padding)
    if padding == "valid" and (kh > h or kw > w):
        with pytest.raises(ShapeError, match=f"{kh}x{kw} kernel"):
            C.conv_output_shape((h, w), (kh, kw), strides, padding)
        return
    expected = layer.compute_output_shape((None, h, w, c))[1:3]
    assert C.conv_output_shape((h, w), (kh, kw), strides, padding) == tuple(expected)


@SETTINGS
@given(
    st.integers(1, 17), st.integers(1, 17), st.integers(1, 3),
    st.integers(1, 4), st.integers(1, 4),
    st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))),
    st.sampled_from(["valid", "same"]), st.sampled_from(["max", "avg"]),
    st.integers(0, 2**31 - 1),
)
def test_pool2d_equals_keras(h, w, c, ph, pw, strides, padding, mode, seed):
    assume(padding == "same" or (ph <= h and pw <= w))
    x = np.random.default_rng(seed).normal(size=(h, w, c)).astype(np.float32)
    cls = keras.layers.MaxPooling2D if mode == "max" else keras.layers.AveragePooling2D
    theirs = np.asarray(cls(pool_size=(ph, pw), strides=strides, padding=padding)(x[None]))[0]
    ours = C.pool2d(x, (ph, pw), strides, padding, mode)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=1e-5, rtol=1e-5)
    assert C.pool_output_shape((h, w), (ph, pw), strides, padding) == ours.shape[:2]


def test_same_padding_puts_the_odd_zero_after_as_keras_does():
    # 6 wide, kernel 3, stride 2: Keras pads 0 before and 1 after.
    assert C.same_padding(6, 3, 2) == (0, 1)
    assert C.same_padding(5, 4, 1) == (1, 2)
    x = np.arange(36, dtype=np.float32).reshape(6, 6, 1)
    k = np.random.default_rng(0).normal(size=(3, 3, 1, 1)).astype(np.float32)
    np.testing.assert_allclose(C.conv2d(x, k, 0, 2, "same"), keras_conv(x, k, [0], 2, "same"), atol=1e-4)


def test_one_2d_filter_on_a_2d_image_gives_a_2d_map():
    img = np.arange(16, dtype=np.uint8).reshape(4, 4)
    out = C.conv2d(img, np.ones((2, 2)), strides=2)
    np.testing.assert_array_equal(out, [[10, 18], [42, 50]])
    assert out.ndim == 2 and out.dtype == np.float32


def test_a_2d_filter_on_a_colour_image_spans_and_sums_the_channels():
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (9, 7, 3)).astype(np.float32)
    k2 = rng.normal(size=(3, 3)).astype(np.float32)
    k3 = np.repeat(k2[:, :, None], 3, axis=2)
    ours = C.conv2d(x, k2, bias=0.5)
    assert ours.shape == (7, 5, 1)
    np.testing.assert_allclose(ours, keras_conv(x, k3[..., None], [0.5], 1, "valid"), atol=1e-4)


def test_channel_contributions_sum_to_the_convolution():
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 255, (12, 10, 3))
    k = rng.normal(size=(3, 3, 3))
    parts = C.channel_contributions(x, k, strides=(2, 1), padding="same")
    assert parts.shape == (6, 10, 3)
    np.testing.assert_allclose(parts.sum(-1) + 1.5, C.conv2d(x, k, 1.5, (2, 1), "same")[:, :, 0], rtol=1e-4, atol=1e-2)


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_explain_pixel_matches_conv2d_everywhere(padding):
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, (7, 8, 2)).astype(np.float32)
    k = rng.normal(size=(3, 2, 2, 3)).astype(np.float32)
    b = np.array([0.1, -0.2, 0.3], np.float32)
    out = C.conv2d(x, k, b, (2, 3), padding)
    for r in range(out.shape[0]):
        for c in range(out.shape[1]):
            e = C.explain_pixel(x, k, b, (2, 3), padding, row=r, col=c, filter_index=2)
            assert e.patch.shape == (3, 2, 2)
            np.testing.assert_allclose(e.products, e.patch * e.weights)
            assert e.value == pytest.approx(float(out[r, c, 2]), abs=1e-4)
            assert e.value == pytest.approx(e.total + e.bias)
    with pytest.raises(ShapeError, match="outside"):
        C.explain_pixel(x, k, b, (2, 3), padding, row=out.shape[0], col=0)


def test_pad_input_and_kernel_positions():
    padded, pads = C.pad_input(np.ones((5, 6)), 3, 2, "same")
    assert pads == ((1, 1), (0, 1))
    assert padded.shape == (7, 7) and padded[0].sum() == 0
    rows, cols = C.kernel_positions((5, 6), 3, 2, "same")
    assert rows.tolist() == [0, 2, 4] and cols.tolist() == [0, 2, 4]
    # every window lies inside the padded input
    assert rows[-1] + 3 <= padded.shape[0] and cols[-1] + 3 <= padded.shape[1]


def test_explain_output_shape_fills_in_the_numbers():
    e = C.explain_output_shape((28, 28), 3)
    assert e["shape"] == (26, 26) and "28 - 3" in e["rows"] and e["rows"].endswith("= 26")
    e = C.explain_output_shape((28, 27), (3, 3), (2, 2), "same")
    assert e["shape"] == (14, 14) and "{27}{2}" in e["cols"]


@pytest.mark.parametrize("ks,c,f", [(3, 1, 6), ((3, 4), 3, 8), (5, 12, 2)])
def test_param_count_and_generated_code_agree_with_keras(ks, c, f):
    code = C.keras_conv2d_code(f, ks, (2, 1), "same", activation="relu", input_shape=(28, 28, c),
                               pool={"mode": "avg", "pool_size": 2, "strides": None, "padding": "valid"})
    namespace = {"keras": keras, "layers": keras.layers}
    lines = code.splitlines()
    assert lines[0].startswith("keras.Input(") and "AveragePooling2D" in lines[2]
    inputs = eval(lines[0], namespace)
    conv = eval(lines[1], namespace)
    model = keras.Model(inputs, eval(lines[2], namespace)(conv(inputs)))
    assert conv.count_params() == C.conv2d_param_count(ks, c, f)
    kh, kw = (ks, ks) if isinstance(ks, int) else ks
    oh, ow = C.conv_output_shape((28, 28), (kh, kw), (2, 1), "same")
    assert tuple(model.output.shape[1:3]) == C.pool_output_shape((oh, ow), 2)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: C.conv2d(np.ones((4, 4)), np.ones((3, 3)), strides=0), "strides"),
        (lambda: C.conv2d(np.ones((4, 4)), np.ones((3, 3)), padding="full"), "padding"),
        (lambda: C.conv2d(np.ones((4, 4, 3)), np.ones((3, 3, 2)), padding="same"), "2 channel"),
        (lambda: C.conv2d(np.ones((4,)), np.ones((3, 3))), "H x W"),
        (lambda: C.conv2d(np.ones((4, 4)), np.ones((3, 3, 1, 2)), bias=[1, 2, 3]), "bias"),
        (lambda: C.conv2d(np.ones((4, 4)), np.full((3, 3), np.nan)), "finite"),
        (lambda: C.conv2d(np.ones((2, 2)), np.ones((3, 3))), "does not fit"),
        (lambda: C.pool2d(np.ones((1, 1)), 2), "pooling window"),
        (lambda: C.pool2d(np.ones((4, 4)), 2, mode="median"), "mode"),
        (lambda: C.conv2d(np.array([["a"]]), np.ones((1, 1))), "numeric"),
    ],
)
def test_bad_arguments_raise_errors_that_name_them(call, match):
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert isinstance(info.value, (ShapeError, KernelError))


def test_relu():
    np.testing.assert_array_equal(C.relu([[-2, 0, 3]]), [[0, 0, 3]])
    assert math.isclose(float(C.relu(np.float32(-0.5))), 0.0)


@pytest.mark.parametrize("activation, pool", [(None, None), ("relu", {"mode": "max", "pool_size": 2, "strides": None, "padding": "same"})])
def test_generated_script_reproduces_the_page_settings(activation, pool):
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 1, (9, 11, 3)).astype(np.float32)
    k = rng.normal(size=(3, 4, 3, 2)).astype(np.float32)
    b = np.array([0.25, -1.0], np.float32)
    script = C.keras_conv2d_script(k, b, x.shape, (2, 1), "same", activation=activation, pool=pool)
    namespace = {}
    exec(script, namespace)
    theirs = np.asarray(namespace["model"](x[None]))[0]
    ours = C.conv2d(x, k, b, (2, 1), "same")
    if activation == "relu":
        ours = C.pool2d(C.relu(ours), 2, None, "same", "max")
    np.testing.assert_allclose(theirs, ours, atol=1e-4)
