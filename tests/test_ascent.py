"""cvcore.visualize.ascent: gradient ascent in input space (filters, classes) and first-layer kernels."""
import gc
import threading
import weakref

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from cvcore import data  # noqa: E402
from cvcore.errors import CvcoreError, ShapeError  # noqa: E402
from cvcore import model_inputs as inputs  # noqa: E402
from cvcore.visualize.ascent import (  # noqa: E402
    _cache,
    first_layer_kernels,
    maximize_class,
    maximize_filter,
    maximize_filters,
)


def _digits_cnn():
    inp = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv1")(inp)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = keras.layers.Conv2D(16, 3, activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(name="pool2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    out = keras.layers.Dense(10, activation="softmax", name="predictions")(x)
    return keras.Model(inp, out, name="digits_cnn")


@pytest.fixture(scope="module")
def trained():
    """A tiny CNN trained two epochs on the bundled digits (pixels in [0, 1], the app's convention)."""
    (x, y), _, _ = data.load_dataset("digits")
    keras.utils.set_random_seed(0)
    model = _digits_cnn()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[..., None].astype("float32") / 255.0, y, batch_size=32, epochs=2, verbose=0)
    return model


def _rgb_any_model(seed=1):
    keras.utils.set_random_seed(seed)
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(6, 3, activation="relu", name="a")(inp)
    x = keras.layers.Conv2D(5, 3, activation="relu", name="b")(x)
    return keras.Model(inp, x, name="rgb_any")


@pytest.fixture(scope="module")
def rgb_any():
    """A fully convolutional RGB model (any input size), untrained."""
    return _rgb_any_model()


def _mean_activation(model, layer, image, filt):
    sub = inputs.submodel(model, [layer])
    return float(np.asarray(sub(inputs.model_input(model, image)))[0, ..., filt].mean())


def _start_image(shape, seed=0):
    rng = np.random.default_rng(seed)
    return (128 + 20 * rng.random(shape)).astype(np.uint8)


# ----------------------------------------------------------------------------- shapes, sizes, reproducibility


def test_shapes_dtypes_and_sizes(trained, rgb_any):
    img = maximize_filter(trained, "conv2", 0, steps=3)
    assert img.shape == (28, 28, 1) and img.dtype == np.uint8  # the model's size and channels
    assert maximize_filter(trained, "conv2", 0, steps=3, size=40).shape == (40, 40, 1)  # resized after
    img = maximize_filter(rgb_any, "b", 1, steps=3)
    assert img.shape == (150, 150, 3) and img.dtype == np.uint8  # any size: the chapter's 150
    assert maximize_filter(rgb_any, "b", 1, steps=3, size=48).shape == (48, 48, 3)
    small = maximize_filter(rgb_any, "b", 1, steps=3, size=48, work_size=24)  # worked small, upscaled
    assert small.shape == (48, 48, 3) and small.dtype == np.uint8
    assert maximize_class(trained, 3, steps=3).shape == (28, 28, 1)
    grid = maximize_filters(rgb_any, "b", [4, 0], steps=3, size=32)
    assert grid.shape == (2, 32, 32, 3) and grid.dtype == np.uint8
    assert maximize_filters(rgb_any, "b", 3, steps=2, size=32).shape == (3, 32, 32, 3)  # an int: the first N


def test_reproducible_for_a_seed(trained):
    a = maximize_filter(trained, "conv2", 2, steps=10, seed=5)
    b = maximize_filter(trained, "conv2", 2, steps=10, seed=5)
    c = maximize_filter(trained, "conv2", 2, steps=10, seed=6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(maximize_class(trained, 4, steps=8, seed=1),
                                  maximize_class(trained, 4, steps=8, seed=1))


# ----------------------------------------------------------------------------- the ascent works


def _normalized(image):
    """The chapter's display normalization (zero mean, std 0.1 around 0.5): equal contrast for comparisons."""
    a = np.asarray(image, np.float64) / 255.0
    a = (a - a.mean()) / (a.std() + 1e-5) * 0.1 + 0.5
    return (np.clip(a, 0, 1) * 255).astype(np.uint8)


def _gains(model, layer, result, filt, shape):
    """A filter's mean activation above a flat gray's, for the result, the start and noise at equal contrast."""
    flat = _mean_activation(model, layer, np.full(shape, 127, np.uint8), filt)
    start = _normalized(_start_image(shape))
    noise = _normalized(np.random.default_rng(9).random(shape))
    return [_mean_activation(model, layer, im, filt) - flat for im in (result, start, noise)]


def test_filter_ascent_raises_the_filters_activation(trained):
    # The result is shown at the chapter's contrast (std 0.1 around 0.5), so it is compared with the start
    # image and with noise at that same contrast, each above a flat gray's activation.
    ratios = []
    for filt in range(16):
        result = maximize_filter(trained, "conv2", filt, steps=30)
        gain, start, noise = _gains(trained, "conv2", result, filt, (28, 28, 1))
        if max(gain, start, noise) <= 0:
            continue  # a filter dead on gray has no gradient there (as in the chapter)
        assert gain > 1.5 * max(start, noise, 1e-3), (filt, gain, start, noise)
        ratios.append(gain / max(start, noise))
    assert len(ratios) >= 8 and np.mean(ratios) > 2.0, ratios


def test_grid_matches_one_at_a_time(trained):
    indices = [0, 5, 7, 11, 15]
    grid = maximize_filters(trained, "conv2", indices, steps=15, batch_size=2, precision="float32")
    assert grid.shape == (5, 28, 28, 1)
    for image, filt in zip(grid, indices):
        single = maximize_filter(trained, "conv2", filt, steps=15, precision="float32")
        assert np.abs(image.astype(int) - single.astype(int)).max() <= 2, filt


def test_class_ascent_makes_the_class_win(trained):
    start = _start_image((28, 28, 1))
    logits_model = keras.Model(trained.inputs[0], trained.get_layer("flatten").output)
    kernel, bias = (w.numpy() for w in trained.get_layer("predictions").weights)

    def logit(image, k):
        return float((np.asarray(logits_model(inputs.model_input(trained, image))) @ kernel + bias)[0, k])

    def predicted(image):
        return int(np.argmax(np.asarray(trained(inputs.model_input(trained, image)))[0]))

    for k in range(10):
        image = maximize_class(trained, k)
        assert image.shape == (28, 28, 1) and image.dtype == np.uint8
        assert predicted(image) == k, k
        assert logit(image, k) > logit(start, k) + 1.0, k
        plain = maximize_class(trained, k, decay=0.0, blur_every=0)  # the unregularized ascent
        assert predicted(plain) == k, k
    blurred = maximize_class(trained, 7, blur_every=4, display="normalize")
    assert blurred.shape == (28, 28, 1) and logit(blurred, 7) > logit(start, 7)


def test_precisions_agree_in_spirit(trained):
    for precision in ("float32", "bfloat16"):
        img = maximize_filter(trained, "conv2", 5, steps=20, precision=precision)
        start = _start_image((28, 28, 1))
        assert _mean_activation(trained, "conv2", img, 5) > _mean_activation(trained, "conv2", start, 5)


def test_regularizers_change_the_result(trained):
    plain = maximize_filter(trained, "conv2", 0, steps=8)
    for kwargs in ({"decay": 0.1}, {"blur_every": 2, "blur_sigma": 1.0}, {"jitter": 2}, {"display": "clip"}):
        other = maximize_filter(trained, "conv2", 0, steps=8, **kwargs)
        assert other.shape == plain.shape and not np.array_equal(other, plain), kwargs


def test_caffe_preprocessing_and_vgg16_any_size():
    vgg = keras.applications.VGG16(weights=None, include_top=False)  # "caffe" by its name; any size
    assert inputs.preprocessing_of(vgg) == "caffe"
    img = maximize_filter(vgg, "block2_conv1", 3, steps=3, size=40, precision="bfloat16")
    assert img.shape == (40, 40, 3) and img.dtype == np.uint8
    assert img.std() > 5  # a picture, not a flat gray
    assert _cache[vgg][("net", "filter", "bfloat16")].precision == "bfloat16"  # the copy was made, not a fallback


@pytest.mark.parametrize("sequential", [False, True])
def test_bfloat16_copy_is_made(trained, sequential):
    model = keras.Sequential(_digits_cnn().layers) if sequential else trained
    maximize_filter(model, "conv1", 0, steps=1, precision="bfloat16")
    maximize_class(model, 0, steps=1, precision="bfloat16")
    for what in ("filter", "class"):
        net = _cache[model][("net", what, "bfloat16")]
        assert net.precision == "bfloat16" and all(
            layer.dtype_policy.name == "bfloat16" for layer in net.clone.layers if layer.weights)
    assert "predictions" not in {layer.name for layer in _cache[model][("net", "filter", "bfloat16")].clone.layers}


# ----------------------------------------------------------------------------- progress, stop, threads


def test_progress_and_stop(trained):
    seen = []
    maximize_filter(trained, "conv2", 0, steps=12, progress_every=5, on_progress=lambda s, n: seen.append((s, n)))
    assert seen == [(5, 12), (10, 12), (12, 12)]

    checks = []

    def stop_after_first_chunk():
        checks.append(1)
        return len(checks) > 1

    stopped = maximize_filter(trained, "conv2", 0, steps=30, progress_every=5, should_stop=stop_after_first_chunk)
    np.testing.assert_array_equal(stopped, maximize_filter(trained, "conv2", 0, steps=5))  # the image at stop

    seen.clear()
    grid = maximize_filters(trained, "conv2", 6, steps=4, batch_size=2, progress_every=2,
                            on_progress=lambda s, n: seen.append((s, n)))
    assert grid.shape[0] == 6 and seen == [(2, 12), (4, 12), (6, 12), (8, 12), (10, 12), (12, 12)]
    calls = []
    part = maximize_filters(trained, "conv2", 6, steps=4, batch_size=2, progress_every=2,
                            should_stop=lambda: calls.append(1) or len(calls) > 3)
    assert part.shape == (4, 28, 28, 1)  # stopped halfway through the second batch: its images as they were
    np.testing.assert_array_equal(part[:2], maximize_filters(trained, "conv2", 2, steps=4))
    np.testing.assert_array_equal(part[2], maximize_filter(trained, "conv2", 2, steps=2))
    calls.clear()
    part = maximize_filters(trained, "conv2", 6, steps=4, batch_size=2, progress_every=4,
                            should_stop=lambda: calls.append(1) or len(calls) > 2)
    assert part.shape == (4, 28, 28, 1)  # stopped before the third batch started: none of its filters
    assert maximize_filters(trained, "conv2", 6, steps=4, should_stop=lambda: True).shape == (0, 28, 28, 1)


def test_threads_share_the_compiled_ascent():
    keras.utils.set_random_seed(3)
    model = _digits_cnn()
    expected = {f: maximize_filter(model, "conv1", f, steps=6) for f in range(4)}
    results, errors = {}, []

    def work(f):
        try:
            results[f] = maximize_filter(model, "conv1", f, steps=6)
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(f,)) for f in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    for f in range(4):
        np.testing.assert_array_equal(results[f], expected[f])


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_model_is_not_kept_alive_by_the_cache(precision):
    model = _digits_cnn()
    maximize_filter(model, "conv1", 0, steps=2, precision=precision)
    maximize_class(model, 0, steps=2, precision=precision)
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None


def test_bfloat16_copy_follows_the_models_weights():
    model, other = _digits_cnn(), _digits_cnn()
    maximize_filter(model, "conv2", 1, steps=3, precision="bfloat16")  # makes and caches the copy
    model.set_weights(other.get_weights())  # as training would
    np.testing.assert_array_equal(maximize_filter(model, "conv2", 1, steps=6, precision="bfloat16"),
                                  maximize_filter(other, "conv2", 1, steps=6, precision="bfloat16"))
    np.testing.assert_array_equal(maximize_class(model, 2, steps=6, precision="bfloat16"),
                                  maximize_class(other, 2, steps=6, precision="bfloat16"))


def test_class_scores_of_other_heads():
    keras.utils.set_random_seed(4)
    base = [keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3, name="conv"), keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(5, name="logits")]
    separate = keras.Sequential(base + [keras.layers.Activation("softmax")])  # logits are the Dense's output
    linear = keras.Sequential(base)  # no softmax: the output itself
    logits = keras.Model(separate.inputs[0], separate.get_layer("logits").output)
    for model in (separate, linear):
        start = _start_image((16, 16, 3))
        image = maximize_class(model, 3, steps=20)
        assert image.shape == (16, 16, 3)
        before, after = (float(np.asarray(logits(inputs.model_input(model, im)))[0, 3]) for im in (start, image))
        assert after > before


# ----------------------------------------------------------------------------- first-layer kernels


def test_first_layer_kernels(trained):
    weights, images = first_layer_kernels(trained)
    assert weights.shape == (3, 3, 1, 8) and weights.dtype == np.float32
    assert len(images) == 8 and all(im.shape == (3, 3) and im.dtype == np.uint8 for im in images)
    assert all(im.min() == 0 and im.max() == 255 for im in images)  # each kernel scaled on its own
    np.testing.assert_allclose(weights, trained.get_layer("conv1").kernel.numpy())

    rgb = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 5)])
    weights, images = first_layer_kernels(rgb)
    assert weights.shape == (5, 5, 3, 4) and images[0].shape == (5, 5, 3)
    inputs.set_preprocessing(rgb, "caffe")  # a BGR model: drawn in RGB order
    _, flipped = first_layer_kernels(rgb)
    np.testing.assert_array_equal(flipped[0], images[0][..., ::-1])

    two = keras.Sequential([keras.Input((8, 8, 2)), keras.layers.Conv2D(3, (3, 2))])
    weights, images = first_layer_kernels(two)
    assert weights.shape == (3, 2, 2, 3) and images[0].shape == (3, 4)  # channels side by side

    nested = keras.Sequential([keras.Input((16, 16, 3)), rgb, keras.layers.Flatten()])
    assert first_layer_kernels(nested)[0].shape == (5, 5, 3, 4)  # a base model inside is searched


# ----------------------------------------------------------------------------- errors


def test_errors_name_the_bad_value(trained, rgb_any):
    with pytest.raises(CvcoreError, match="nope"):
        maximize_filter(trained, "nope", 0)
    with pytest.raises(CvcoreError, match=r"`filter_index`.*0 to 15.*received 16"):
        maximize_filter(trained, "conv2", 16)
    with pytest.raises(CvcoreError, match=r"`filter_index`.*received -1"):
        maximize_filter(trained, "conv2", -1)
    with pytest.raises(CvcoreError, match="`filter_index` must be an integer"):
        maximize_filter(trained, "conv2", 1.5)
    with pytest.raises(ShapeError, match=r"'flatten'.*spatial output"):
        maximize_filter(trained, "flatten", 0)
    with pytest.raises(ShapeError, match=r"'predictions'"):
        maximize_filters(trained, "predictions", 2)
    with pytest.raises(CvcoreError, match=r"`steps`.*received 0"):
        maximize_filter(trained, "conv2", 0, steps=0)
    for bad in (0, -3, 2.5, True, "150"):
        with pytest.raises(CvcoreError, match="`size`"):
            maximize_filter(trained, "conv2", 0, size=bad)
    with pytest.raises(ShapeError, match=r"`size`"):
        maximize_filter(rgb_any, "b", 0, size=3)  # two 3x3 valid convolutions need at least 5 pixels
    with pytest.raises(CvcoreError, match=r"`work_size`.*28 x 28"):
        maximize_filter(trained, "conv2", 0, work_size=14)
    with pytest.raises(CvcoreError, match=r"`step_size`.*received 0"):
        maximize_filter(trained, "conv2", 0, step_size=0)
    with pytest.raises(CvcoreError, match="`display`"):
        maximize_class(trained, 0, display="raw")
    with pytest.raises(CvcoreError, match="`precision`"):
        maximize_filter(trained, "conv2", 0, precision="float16")
    with pytest.raises(CvcoreError, match="`on_progress`"):
        maximize_filter(trained, "conv2", 0, on_progress=3)
    with pytest.raises(CvcoreError, match=r"`filter_indices`.*received 99"):
        maximize_filters(trained, "conv2", [1, 99])
    with pytest.raises(CvcoreError, match="`filter_indices` is empty"):
        maximize_filters(trained, "conv2", [])
    with pytest.raises(CvcoreError, match=r"`class_index`.*0 to 9.*received 10"):
        maximize_class(trained, 10)
    with pytest.raises(ShapeError, match="classes"):
        maximize_class(rgb_any, 0)
    with pytest.raises(CvcoreError, match="`model` must be a Keras model"):
        maximize_filter("vgg16", "block1_conv1", 0)
    with pytest.raises(CvcoreError, match="no Conv2D"):
        first_layer_kernels(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))
