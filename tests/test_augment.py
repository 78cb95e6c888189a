"""cvcore.augment and cvcore.imgaug_compat: recipes, both engines, the parameter mappings, exported code."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from cvcore import augment as aug
from cvcore.augment import DEFAULT_RECIPES, AugmentError, augment, keras_layers, recipe_code, validate_recipe
from cvcore.errors import CvcoreError

from conftest import ROOT

H = W = 64
KERAS = {"engine": "keras"}
IMGAUG = {"engine": "imgaug"}


def square(n=1, size=8, channels=1, dtype=np.float32):
    """n copies of a black image with a white size x size square at the centre."""
    img = np.zeros((n, H, W, channels), dtype)
    lo = (H - size) // 2
    img[:, lo:lo + size, lo:lo + size] = 255
    return img


def marker(n=1):
    """n copies of an image with no symmetry: a bar at the top right, a dot at the bottom left."""
    img = np.zeros((n, H, W, 1), np.float32)
    img[:, 8:16, 36:60] = 255
    img[:, 50:54, 6:10] = 255
    return img


def centroid(img):
    ys, xs = np.nonzero(np.asarray(img)[..., 0] > 127)
    return ys.mean(), xs.mean(), len(ys)


def keras_after_configure():
    """Keras, imported as every cvcore path does: after cvcore.device.configure() (GPU memory growth)."""
    from cvcore import device

    device.configure()
    import keras

    return keras


def textured(n=4, channels=3, dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (1, H, W, channels)).astype(dtype)
    return np.repeat(base, n, axis=0)


# ----------------------------------------------------------------------------- both engines


@pytest.mark.parametrize("engine", ["keras", "imgaug"])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_shape_dtype_and_seed(engine, dtype):
    x = textured(4, dtype=dtype)[:, :40]  # not square: 4 x 40 x 64 x 3
    recipe = DEFAULT_RECIPES[engine]
    a = augment(x, recipe, 7)
    assert a.shape == x.shape and a.dtype == x.dtype
    assert np.array_equal(a, augment(x, recipe, 7))  # same seed, same images
    assert not np.array_equal(a, augment(x, recipe, 8))  # another seed, others
    assert not np.array_equal(a[0], a[1])  # each image of a batch gets its own draw
    assert not np.shares_memory(a, x)


def test_default_recipes_are_valid_json_and_stable():
    for engine, recipe in DEFAULT_RECIPES.items():
        assert recipe["engine"] == engine
        checked = validate_recipe(recipe)
        assert checked == recipe and validate_recipe(checked) == checked
        assert json.loads(json.dumps(checked)) == checked
    k = DEFAULT_RECIPES["keras"]
    assert (k["rotation_range"], k["width_shift_range"], k["height_shift_range"], k["shear_range"], k["zoom_range"],
            k["horizontal_flip"], k["fill_mode"], k["rescale"]) == (40, 0.2, 0.2, 0.2, 0.2, True, "nearest", 1 / 255)
    i = DEFAULT_RECIPES["imgaug"]
    assert i["random_order"] and i["crop"]["percent"] == 0.1 and i["affine"]["shear"] == [-8, 8]
    assert i["gaussian_noise"] == {"enabled": True, "scale": 0.05, "per_channel": 0.5}


def test_defaults_filled_with_off_values():
    k = validate_recipe(KERAS)
    assert k == {"engine": "keras", **aug.KERAS_PARAMS}
    i = validate_recipe({"engine": "imgaug", "fliplr": {}})
    assert i["fliplr"] == {"enabled": True, "p": 0.5}  # a step given: the seed's values
    assert i["crop"]["enabled"] is False and i["random_order"] is False  # a step left out: off
    x = textured(2)
    assert np.array_equal(augment(x, KERAS, 0), x)  # nothing to do: the images themselves
    assert np.array_equal(augment(x, IMGAUG, 0), x)


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize("recipe, names", [
    ({"engine": "keras", "rotation_range": 400}, ["rotation_range", "400", "180"]),
    ({"engine": "keras", "rotation_range": -5}, ["rotation_range", "-5"]),
    ({"engine": "keras", "width_shift_range": 20}, ["width_shift_range", "20", "fraction"]),
    ({"engine": "keras", "height_shift_range": float("nan")}, ["height_shift_range", "nan"]),
    ({"engine": "keras", "shear_range": 60}, ["shear_range", "60", "45"]),
    ({"engine": "keras", "zoom_range": [1.2, 0.8]}, ["zoom_range", "[1.2, 0.8]", "low <= high"]),
    ({"engine": "keras", "zoom_range": [0.0, 1.0]}, ["zoom_range", "[0.0, 1.0]"]),
    ({"engine": "keras", "zoom_range": "0.2"}, ["zoom_range", "'0.2'"]),
    ({"engine": "keras", "horizontal_flip": "yes"}, ["horizontal_flip", "'yes'"]),
    ({"engine": "keras", "rotation_range": True}, ["rotation_range", "True"]),
    ({"engine": "keras", "fill_mode": "mirror"}, ["fill_mode", "'mirror'", "reflect"]),
    ({"engine": "keras", "rescale": 0}, ["rescale", "received 0"]),
    ({"engine": "keras", "rotaton_range": 10}, ["rotaton_range", "Did you mean `rotation_range`"]),
    ({"engine": "imgaug", "fliplr": {"p": 1.5}}, ["fliplr.p", "1.5"]),
    ({"engine": "imgaug", "affine": {"rotate": [30, -30]}}, ["affine.rotate", "[30, -30]"]),
    ({"engine": "imgaug", "affine": {"rotate": 30}}, ["affine.rotate", "received 30"]),
    ({"engine": "imgaug", "gaussian_noise": {"per_channel": 2}}, ["gaussian_noise.per_channel", "2"]),
    ({"engine": "imgaug", "crop": {"percent": 0.1, "px": 3}}, ["px", "crop"]),
    ({"engine": "imgaug", "blur": {}}, ["blur", "Did you mean `gaussian_blur`"]),
    ({"engine": "imgaug", "crop": 0.1}, ["crop", "0.1"]),
    ({"engine": "imgaug", "crop": {"enabled": 1}}, ["crop.enabled", "1"]),
    ({"engine": "imgaug", "random_order": "no"}, ["random_order", "'no'"]),
    ({"engine": "torch"}, ["engine", "'torch'", "keras, imgaug"]),
    ({}, ["engine", "None"]),
    ("rotation_range=40", ["recipe", "str"]),
])
def test_validation_names_the_value(recipe, names):
    with pytest.raises(AugmentError) as err:
        validate_recipe(recipe)
    for name in names:
        assert name in str(err.value)
    assert isinstance(err.value, CvcoreError) and isinstance(err.value, ValueError)


@pytest.mark.parametrize("images, seed, names", [
    (np.zeros((2, 8, 8, 3), np.float64), 0, ["images", "float64"]),
    (np.zeros((8, 8, 3), np.uint8), 0, ["images", "(8, 8, 3)", "images[None]"]),
    (np.zeros((0, 8, 8, 3), np.uint8), 0, ["images", "(0, 8, 8, 3)"]),
    (np.zeros((1, 8, 8, 3), np.uint8), -1, ["seed", "-1"]),
    (np.zeros((1, 8, 8, 3), np.uint8), 2**32, ["seed", str(2**32)]),
    (np.zeros((1, 8, 8, 3), np.uint8), 1.5, ["seed", "1.5"]),
    (np.zeros((1, 8, 8, 3), np.uint8), True, ["seed", "True"]),
])
def test_augment_checks_images_and_seed(images, seed, names):
    with pytest.raises(AugmentError) as err:
        augment(images, KERAS, seed)
    for name in names:
        assert name in str(err.value)


def test_engine_specific_builders_refuse_the_other_engine():
    with pytest.raises(AugmentError, match="engine 'keras'.*received engine 'imgaug'"):
        keras_layers(DEFAULT_RECIPES["imgaug"])
    with pytest.raises(AugmentError, match="engine 'imgaug'.*received engine 'keras'"):
        aug.imgaug_pipeline(DEFAULT_RECIPES["keras"])


# ----------------------------------------------------------------------------- keras: each parameter


def test_keras_flips_flip_each_axis_on_its_own():
    x = marker(32)
    variants = {"none": x[0], "h": x[0, :, ::-1], "v": x[0, ::-1], "hv": x[0, ::-1, ::-1]}
    seen = set()
    out = augment(x, {"engine": "keras", "horizontal_flip": True, "vertical_flip": True}, 3)
    for img in out:
        match = [k for k, v in variants.items() if np.array_equal(img, v)]
        assert len(match) == 1
        seen.add(match[0])
    assert seen == set(variants)  # independent flips: all four combinations occur
    only_h = augment(x, {"engine": "keras", "horizontal_flip": True}, 3)
    assert all(np.array_equal(i, variants["none"]) or np.array_equal(i, variants["h"]) for i in only_h)
    assert not all(np.array_equal(i, variants["none"]) for i in only_h)


@pytest.mark.parametrize("key, axis", [("width_shift_range", 1), ("height_shift_range", 0)])
def test_keras_shift_moves_the_content_along_its_axis(key, axis):
    x = square(32)
    out = augment(x, {"engine": "keras", key: 0.25, "fill_mode": "constant"}, 5)
    c0 = centroid(x[0])
    moves = np.array([np.subtract(centroid(img)[:2], c0[:2]) for img in out])
    assert np.allclose(moves[:, 1 - axis], 0, atol=0.01)  # the other axis does not move
    along = moves[:, axis]
    assert np.abs(along).max() <= 0.25 * H + 0.5  # a fraction of the size, not pixels
    assert np.abs(along).max() > 0.15 * H and (along > 1).any() and (along < -1).any()


def test_keras_translation_positive_factor_moves_right_and_down():
    """The sign convention of RandomTranslation (checked, since our ranges are symmetric)."""
    keras = keras_after_configure()
    x = square(1)
    right = keras.layers.RandomTranslation(0.0, (0.25, 0.25), fill_mode="constant", seed=0)(x, training=True)
    down = keras.layers.RandomTranslation((0.25, 0.25), 0.0, fill_mode="constant", seed=0)(x, training=True)
    c = centroid(x[0])
    assert np.allclose(np.subtract(centroid(right[0])[:2], c[:2]), (0, 16))
    assert np.allclose(np.subtract(centroid(down[0])[:2], c[:2]), (16, 0))


def weighted_centroid(img):
    w = np.asarray(img, np.float64)[..., 0]
    ys, xs = np.indices(w.shape)
    return (ys * w).sum() / w.sum(), (xs * w).sum() / w.sum(), w.sum()


def test_keras_rotation_turns_about_the_centre_within_the_range():
    x = np.zeros((24, H, W, 1), np.float32)
    x[:, 14:20, 40:46] = 255  # a blob up and to the right of the centre
    c = (H - 1) / 2
    y0, x0, mass0 = weighted_centroid(x[0])
    angle0 = math.atan2(-(y0 - c), x0 - c)
    out = augment(x, {"engine": "keras", "rotation_range": 40, "fill_mode": "constant"}, 11)
    turns = []
    for img in out:
        y, xx, mass = weighted_centroid(img)
        assert math.hypot(y - c, xx - c) == pytest.approx(math.hypot(y0 - c, x0 - c), abs=0.3)  # about the centre
        assert mass == pytest.approx(mass0, rel=0.02)
        turns.append(math.degrees(math.atan2(-(y - c), xx - c) - angle0))
    turns = np.array(turns)
    assert np.abs(turns).max() <= 41 and np.abs(turns).max() > 25
    assert (turns > 5).any() and (turns < -5).any()


def test_keras_rotation_positive_is_counter_clockwise_as_image_data_generator():
    keras = keras_after_configure()
    x = marker(1)
    x[:, 50:54, 6:10] = 0
    out = keras.layers.RandomRotation((0.25, 0.25), fill_mode="constant", seed=0)(x, training=True)
    y, xx, _ = centroid(out[0])
    assert xx < W / 2 and y < H / 2  # the bar at the top right went to the top left


@pytest.mark.parametrize("zoom, area", [([0.5, 0.5], 4.0), ([2.0, 2.0], 0.25), ([1.0, 1.0], 1.0)])
def test_keras_zoom_below_one_zooms_in_as_image_data_generator(zoom, area):
    """ImageDataGenerator's zoom scales the input coordinates: zoom_range=[0.5, 0.5] doubles the content."""
    x = square(2, size=12)
    out = augment(x, {"engine": "keras", "zoom_range": zoom, "fill_mode": "constant"}, 0)
    for img in out:
        y, xx, n = centroid(img)
        assert (y, xx) == pytest.approx(((H - 1) / 2, (W - 1) / 2), abs=0.5)
        assert n / 144 == pytest.approx(area, rel=0.2)


def test_keras_zoom_float_means_one_minus_to_one_plus_each_axis_on_its_own():
    x = square(32, size=16)
    out = augment(x, {"engine": "keras", "zoom_range": 0.3, "fill_mode": "constant"}, 2)
    sides = []
    for img in out:
        rows = np.flatnonzero((img[..., 0] > 127).any(axis=1))
        cols = np.flatnonzero((img[..., 0] > 127).any(axis=0))
        sides.append((len(rows) / 16, len(cols) / 16))
    sides = np.array(sides)
    assert sides.min() >= 1 / 1.3 - 0.1 and sides.max() <= 1 / 0.7 + 0.1
    assert (sides > 1.15).any() and (sides < 0.9).any()  # zooms in and out
    assert np.abs(sides[:, 0] - sides[:, 1]).max() > 0.1  # height and width drawn apart


def _idg_shear(img, degrees):
    """ImageDataGenerator's shear (keras-preprocessing's apply_affine_transform, order=1), one channel."""
    from scipy import ndimage

    t = np.deg2rad(degrees)
    m = np.array([[1, -np.sin(t), 0], [0, np.cos(t), 0], [0, 0, 1]])  # in (x, y)
    cx, cy = (img.shape[1] - 1) / 2, (img.shape[0] - 1) / 2  # ...offset to the centre
    m = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1]]) @ m @ np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]])
    m[:, [0, 1]] = m[:, [1, 0]]
    m[[0, 1]] = m[[1, 0]]  # to (row, col)
    return ndimage.affine_transform(img, m[:2, :2], m[:2, 2], order=1, mode="constant")


def test_keras_shear_is_image_data_generators_about_the_centre():
    keras = keras_after_configure()
    line = np.zeros((1, H, W, 1), np.float32)
    line[:, :, W // 2] = 255
    shear = aug.custom_objects()["cvcore>CentredRandomShear"]
    s = math.sin(math.radians(30))
    ours = np.asarray(shear(x_factor=(s, s), fill_mode="constant", seed=0)(line, training=True))[0, ..., 0]
    idg = _idg_shear(line[0, ..., 0], 30)
    mirrored = _idg_shear(line[0, ..., 0], -30)
    middle = slice(8, H - 8)  # ImageDataGenerator also stretches vertically by 1/cos; a vertical line does not show it
    best = min(np.abs(ours[middle] - idg[middle]).max(), np.abs(ours[middle] - mirrored[middle]).max())
    assert best < 1.0
    # Keras' own RandomShear shears about the top-left corner: the centre row moves.
    plain = np.asarray(keras.layers.RandomShear(x_factor=(s, s), fill_mode="constant", seed=0)(line, training=True))
    assert abs(np.argmax(plain[0, H // 2, :, 0]) - W // 2) > 10
    assert abs(np.argmax(ours[H // 2]) - W // 2) <= 1


def test_keras_shear_range_is_degrees():
    x = np.zeros((24, H, W, 1), np.float32)
    x[:, :, W // 2] = 255
    out = augment(x, {"engine": "keras", "shear_range": 30, "fill_mode": "constant"}, 4)
    slopes = np.array([(np.argmax(img[H // 2 + 20, :, 0]) - np.argmax(img[H // 2 - 20, :, 0])) / 40 for img in out])
    assert np.abs(slopes).max() <= math.sin(math.radians(30)) + 0.05
    assert np.abs(slopes).max() > 0.3 and (slopes > 0.05).any() and (slopes < -0.05).any()
    # The seed's shear_range=0.2 (degrees) barely moves a pixel.
    tiny = augment(x, {"engine": "keras", "shear_range": 0.2, "fill_mode": "constant"}, 4)
    assert np.abs(tiny - x).max() < 0.35 * 255


@pytest.mark.parametrize("mode", aug.FILL_MODES)
def test_keras_fill_modes_and_cval(mode):
    x = np.full((4, H, W, 1), 100, np.float32)
    out = augment(x, {"engine": "keras", "rotation_range": 45, "fill_mode": mode, "cval": 7}, 1)
    has_cval = np.isclose(out, 7).any()
    assert has_cval == (mode == "constant")


def test_rescale_is_in_the_layers_not_in_the_preview():
    x = textured(2)
    recipe = {"engine": "keras", "horizontal_flip": True, "rescale": 1 / 255}
    out = augment(x, recipe, 0)
    assert out.dtype == np.uint8 and out.max() > 200
    layers = keras_layers(recipe, seed=0)
    assert [layer.name for layer in layers.layers] == ["horizontal_flip", "rescaling"]
    assert [layer.name for layer in keras_layers(recipe, seed=0, rescale=False).layers] == ["horizontal_flip"]
    scaled = np.asarray(layers(x.astype(np.float32), training=True))
    assert scaled.max() <= 1.0
    assert np.allclose(scaled * 255, augment(x.astype(np.float32), recipe, 0), atol=1e-3)


def test_keras_layers_inactive_at_inference_and_run_in_tf_data():
    keras_after_configure()
    import tensorflow as tf
    x = textured(8).astype(np.float32)
    layers = keras_layers(DEFAULT_RECIPES["keras"])
    assert np.allclose(np.asarray(layers(x, training=False)), x / 255)  # predict/evaluate: rescale only
    ds = tf.data.Dataset.from_tensor_slices(x).batch(4).map(lambda b: layers(b, training=True))
    batches = [b.numpy() for b in ds]
    assert [b.shape for b in batches] == [(4, H, W, 3)] * 2
    assert not np.allclose(batches[0], x[:4] / 255)


def test_keras_layers_save_and_load_in_a_model(tmp_path):
    keras = keras_after_configure()
    model = keras.Sequential([keras.Input((H, W, 3)), keras_layers(DEFAULT_RECIPES["keras"], seed=1),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    names = [type(layer).__name__ for layer in loaded.layers[0].layers]
    assert names == ["RandomRotation", "RandomTranslation", "CentredRandomShear", "RandomZoom", "RandomFlip", "Rescaling"]
    x = textured(2).astype(np.float32)
    assert np.allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


# ----------------------------------------------------------------------------- imgaug: each step


def only(step, **params):
    return {"engine": "imgaug", step: params}


def test_imgaug_fliplr():
    x = marker(8).astype(np.uint8)
    out = augment(x, only("fliplr", p=1.0), 0)
    assert np.array_equal(out, x[:, :, ::-1])
    assert np.array_equal(augment(x, only("fliplr", p=0.0), 0), x)
    assert np.array_equal(augment(x, only("fliplr", enabled=False, p=1.0), 0), x)  # switched off


def test_imgaug_crop_zooms_in_and_keeps_the_size():
    x = square(8, size=12).astype(np.uint8)
    out = augment(x, only("crop", percent=0.3), 0)
    assert out.shape == x.shape
    areas = [centroid(img)[2] for img in out]
    assert min(areas) >= 144 * 0.9 and max(areas) > 144 * 1.3


def test_imgaug_gaussian_blur_sometimes():
    x = textured(16)
    out = augment(x, only("gaussian_blur", p=0.5, sigma=3.0), 0)
    same = [np.array_equal(img, x[0]) for img in out]
    assert any(same) and not all(same)  # Sometimes(0.5, ...)
    blurred = [img for img, s in zip(out, same) if not s]
    assert np.mean([np.abs(np.diff(img.astype(float), axis=1)).mean() for img in blurred]) < \
        np.abs(np.diff(x[0].astype(float), axis=1)).mean()


def test_imgaug_linear_contrast():
    x = np.full((2, 8, 8, 3), 100, np.uint8)
    out = augment(x, only("linear_contrast", alpha=[2.0, 2.0]), 0)
    assert np.all(np.abs(out.astype(int) - (128 + 2 * (100 - 128))) <= 1)


def test_imgaug_gaussian_noise_in_units_of_255():
    x = np.full((4, H, W, 3), 128, np.uint8)
    out = augment(x, only("gaussian_noise", scale=0.1, per_channel=1.0), 0).astype(float) - 128
    assert abs(out.mean()) < 1.0 and 0.5 < out.std() < 0.1 * 255
    per_image = out.reshape(4, -1, 3)
    assert not np.array_equal(per_image[..., 0], per_image[..., 1])  # per channel


def test_imgaug_multiply():
    x = np.full((2, 8, 8, 3), 100, np.uint8)
    out = augment(x, only("multiply", mul=[0.5, 0.5], per_channel=0.0), 0)
    assert np.all(out == 50)


def test_imgaug_affine_translate_and_rotate():
    x = square(2).astype(np.uint8)
    zero = {"scale_x": [1, 1], "scale_y": [1, 1], "translate_x": [0, 0], "translate_y": [0, 0],
            "rotate": [0, 0], "shear": [0, 0]}
    moved = augment(x, only("affine", **{**zero, "translate_x": [0.25, 0.25]}), 0)
    y, xx, _ = centroid(moved[0])
    assert (y, xx) == pytest.approx(((H - 1) / 2, (W - 1) / 2 + 16), abs=0.6)  # right by a quarter of the width
    bar = marker(1).astype(np.uint8)
    bar[:, 50:54, 6:10] = 0
    turned = augment(bar, only("affine", **{**zero, "rotate": [90, 90]}), 0)
    y, xx, _ = centroid(turned[0])
    assert y > H / 2 and xx > W / 2  # imgaug turns positive angles clockwise: top right to bottom right
    scaled = augment(square(1, size=12).astype(np.uint8), only("affine", **{**zero, "scale_x": [2, 2], "scale_y": [2, 2]}), 0)
    assert centroid(scaled[0])[2] / 144 == pytest.approx(4, rel=0.15)


def test_imgaug_random_order_and_float32():
    x = textured(4, dtype=np.float32)
    recipe = {**DEFAULT_RECIPES["imgaug"], "random_order": False}
    out = augment(x, recipe, 3)
    assert out.dtype == np.float32 and out.shape == x.shape
    assert not np.array_equal(out, augment(x, DEFAULT_RECIPES["imgaug"], 3))


# ----------------------------------------------------------------------------- the imgaug shim


def test_shim_imports_imgaug_on_numpy2_and_leaves_numpy_clean():
    script = (
        "import numpy as np\n"
        "major = int(np.__version__.split('.')[0])\n"
        "try:\n"
        "    import imgaug\n"
        "    plain = 'imported'\n"
        "except AttributeError as err:\n"
        "    plain = str(err)\n"
        "from cvcore.imgaug_compat import import_imgaug\n"
        "iaa = import_imgaug()\n"
        "import imgaug.parameters as iap\n"
        "print(major, repr(plain[:40]), hasattr(np, 'sctypes'), hasattr(np, 'complex'),\n"
        "      iap.np.complex is complex, iaa.Sequential.__name__)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    major, plain, sctypes, complex_alias, given, seq = done.stdout.split()[-6:]
    if major == "2":
        assert "sctypes" in plain  # imgaug 0.4.0 alone does not import on NumPy 2
    assert (sctypes, complex_alias, given, seq) == ("False", "False", "True", "Sequential")


def test_numpy2_aliases_are_never_needed_by_our_steps(monkeypatch):
    """np.complex is read only by iap.Power and iap.FrequencyNoise: none of our steps draws from them."""
    from cvcore.imgaug_compat import import_imgaug

    import_imgaug()
    import imgaug.parameters as iap

    calls = []
    for cls in (iap.Power, iap.FrequencyNoise):
        original = cls._draw_samples
        monkeypatch.setattr(cls, "_draw_samples",
                            lambda self, *a, _o=original, **k: calls.append(type(self).__name__) or _o(self, *a, **k))
    x = textured(8)
    for seed in range(3):
        augment(x, DEFAULT_RECIPES["imgaug"], seed)
        augment(x.astype(np.float32), DEFAULT_RECIPES["imgaug"], seed)
    assert calls == []
    assert hasattr(np, "bool")  # SomeOf's np.bool exists again in NumPy 2


def test_missing_imgaug_says_how_to_install(monkeypatch):
    from cvcore import imgaug_compat

    monkeypatch.setattr(imgaug_compat, "available", lambda: False)
    with pytest.raises(imgaug_compat.ImgaugUnavailableError, match="scripts/setup.sh") as err:
        augment(textured(1), DEFAULT_RECIPES["imgaug"], 0)
    assert isinstance(err.value, CvcoreError)


def test_cv2_is_the_headless_build():
    from importlib import metadata

    with pytest.raises(metadata.PackageNotFoundError):
        metadata.version("opencv-python")
    assert metadata.version("opencv-python-headless")


# ----------------------------------------------------------------------------- exported code


@pytest.mark.parametrize("engine", ["keras", "imgaug"])
def test_exported_code_gives_the_same_images(engine):
    recipe = DEFAULT_RECIPES[engine]
    x = textured(4)
    namespace = {}
    exec(recipe_code(recipe, seed=5), namespace)
    pipeline = namespace["augmentation"]
    if engine == "keras":
        out = np.asarray(pipeline(x.astype(np.float32), training=True))
        assert np.allclose(out * 255, augment(x.astype(np.float32), recipe, 5), atol=1e-3)  # rescale=1/255 in the code
        assert np.abs(np.clip(np.rint(out * 255), 0, 255) - augment(x, recipe, 5)).max() <= 1
    else:
        assert np.array_equal(pipeline(images=x), augment(x, recipe, 5))


@pytest.mark.parametrize("recipe", [
    {"engine": "keras", "vertical_flip": True, "zoom_range": [0.5, 1.0], "fill_mode": "constant", "cval": 3},
    {"engine": "keras"},
    {"engine": "imgaug", "affine": {"enabled": False}, "crop": {}},
    {"engine": "imgaug"},
])
def test_exported_code_runs_without_a_seed(recipe):
    code = recipe_code(recipe)
    assert "seed" not in code.replace("seed_", "")
    namespace = {}
    exec(code, namespace)
    x = textured(3)
    out = (namespace["augmentation"](x, training=True) if recipe["engine"] == "keras"
           else namespace["augmentation"](images=x))
    assert np.asarray(out).shape == x.shape


def test_exported_keras_code_explains_image_data_generator():
    code = recipe_code(DEFAULT_RECIPES["keras"])
    comments = "\n".join(line for line in code.splitlines() if line.lstrip().startswith("#"))
    for arg in ("rotation_range=40", "width_shift_range=0.2", "shear_range=0.2", "zoom_range=0.2",
                "horizontal_flip=True", "rescale=1 / 255", "fit_generator"):
        assert arg in comments
    assert all(line.lstrip().startswith("#") for line in code.splitlines() if "datagen" in line)  # explanation only
    assert "keras.preprocessing" not in code
    assert "layers.RandomRotation(40 / 360" in code and "layers.Rescaling(1 / 255" in code


def test_docstring_examples_hold():
    import doctest

    from cvcore import imgaug_compat

    for module in (aug, imgaug_compat):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0 and result.attempted > 0, module.__name__
