"""Image augmentation from one JSON-able recipe: Keras preprocessing layers or imgaug.

A *recipe* is a plain dict (it survives ``json.dumps``) naming an engine and
its parameters:

* ``{"engine": "keras", ...}``: the parameters of the chapters' Keras 2
  ``ImageDataGenerator`` (``rotation_range``, ``width_shift_range``, ...),
  run as a ``keras.Sequential`` of Keras 3 preprocessing layers
  (:func:`keras_layers`): ``ImageDataGenerator`` and ``fit_generator`` are
  gone from Keras 3's public API, and the layers run inside a ``tf.data``
  pipeline or a model, on the GPU where there is one.
* ``{"engine": "imgaug", ...}``: the ``iaa.Sequential`` pipeline of imgaug's
  README (:func:`imgaug_pipeline`), every step editable or switched off.

:func:`augment` runs a recipe on a batch, reproducibly from a seed;
:func:`recipe_code` exports it as runnable Python; :func:`validate_recipe`
checks it and fills the defaults; :data:`DEFAULT_RECIPES` holds the seed
recipes of both engines.

How the ``ImageDataGenerator`` parameters map onto layers (each checked by
``tests/test_augment.py`` on images with known geometry):

================================  ===========================================================
``ImageDataGenerator``            Keras 3 layer (this module)
================================  ===========================================================
``rotation_range=r`` (degrees,    ``RandomRotation(r / 360)``: the factor is a fraction of a
uniform in [-r, r])               full turn (2π); a float f means [-f, f]. Both turn positive
                                  angles counter-clockwise.
``width_shift_range=w``,          ``RandomTranslation(height_factor=h, width_factor=w)``:
``height_shift_range=h``          fractions of the width and height, uniform in [-w, w] and
(fractions of the size)           [-h, h]. Pixel shifts (ImageDataGenerator's values >= 1) are
                                  not offered. (The legacy copy inside Keras 3,
                                  ``keras.src.legacy``, applies height_shift_range to columns;
                                  this module follows the documented meaning: width moves
                                  content sideways.)
``shear_range=s`` (degrees,       ``CentredRandomShear(x_factor=(0, sin(s°)))``. Image-
uniform in [-s, s])               DataGenerator slides each row sideways by sin(angle) pixels
                                  per row from the centre row (and stretches the image
                                  vertically by 1/cos(angle), 1.5% at 10°: dropped). Keras'
                                  ``RandomShear`` takes that coefficient but shears about the
                                  top-left corner, shifting the content sideways by up to
                                  x_factor·H/2; ``CentredRandomShear`` is ``RandomShear``
                                  about the image centre. The factor is given as (0, f),
                                  which RandomShear draws in [0, f] with a random sign
                                  (uniform in [-f, f]): a plain f is stored as (-f, f) by
                                  its get_config, which its constructor then refuses, so a
                                  saved model would not load. At most 45°. The seed's
                                  ``shear_range=0.2`` is 0.2 *degrees* (it reads like a
                                  fraction, but ImageDataGenerator takes an angle): a shift
                                  of at most 0.26 px at 150 px, kept as written.
``zoom_range=z`` (float: [1-z,    ``RandomZoom(height_factor=(lo-1, hi-1), width_factor=(lo-1,
1+z]; or [lo, hi])                hi-1))``: both scale the *input* coordinates, so a zoom below
                                  1 (a factor below 0) zooms *in*, enlarging the content:
                                  ``zoom_range=[0.5, 0.5]`` doubles its size. The two axes are
                                  drawn independently, as in ImageDataGenerator (RandomZoom
                                  without ``width_factor`` would keep the aspect ratio).
``horizontal_flip``,              ``RandomFlip("horizontal")`` and ``RandomFlip("vertical")``:
``vertical_flip``                 two layers, each flipping half the images independently;
                                  ``RandomFlip("horizontal_and_vertical")`` would flip both
                                  axes together (a 180° turn) or neither.
``fill_mode``, ``cval``           ``fill_mode`` and ``fill_value`` of every geometric layer
                                  (``"nearest"``, ``"reflect"``, ``"wrap"``, ``"constant"``);
                                  bilinear interpolation, ImageDataGenerator's ``order=1``.
``rescale``                       ``Rescaling(rescale)``, last. :func:`augment` leaves it out
                                  so that a preview shows images (uint8 in, uint8 out); it is
                                  in :func:`keras_layers` and in the exported code.
================================  ===========================================================

ImageDataGenerator composed rotation, shift, shear and zoom into one affine
map (one resampling); the layers resample once each, in that order (the same
composition), then flip. So filled corners are filled again by the next
layer and the image is interpolated up to four times (slightly softer).

Keras layers load TensorFlow: every path here calls
:func:`cvcore.device.configure` before ``import keras``. imgaug is imported
through :mod:`cvcore.imgaug_compat` (it predates NumPy 2).
"""
from __future__ import annotations

import copy
import difflib
import json
import math
import textwrap
from dataclasses import dataclass, field

import numpy as np

from . import checks, device
from .errors import AugmentError

__all__ = [
    "AugmentError",
    "ENGINES",
    "FILL_MODES",
    "KERAS_PARAMS",
    "IMGAUG_STEPS",
    "IMGAUG_LIMITS",
    "MAX_ROTATION",
    "MAX_SHEAR",
    "ZOOM_BOUNDS",
    "DEFAULT_RECIPES",
    "validate_recipe",
    "augment",
    "keras_layers",
    "imgaug_pipeline",
    "recipe_code",
    "custom_objects",
]


ENGINES = ("keras", "imgaug")
FILL_MODES = ("nearest", "reflect", "wrap", "constant")

# The Keras engine's parameters and their values when left out: ImageDataGenerator's own defaults (off).
KERAS_PARAMS = {
    "rotation_range": 0.0,
    "width_shift_range": 0.0,
    "height_shift_range": 0.0,
    "shear_range": 0.0,
    "zoom_range": 0.0,
    "horizontal_flip": False,
    "vertical_flip": False,
    "fill_mode": "nearest",
    "cval": 0.0,
    "rescale": None,
}
MAX_ROTATION = 180.0
MAX_SHEAR = 45.0
ZOOM_BOUNDS = (0.05, 2.0)  # RandomZoom takes factors in (-1, 1]

# The imgaug engine's steps, in pipeline order, with the seed's values (imgaug's README example).
IMGAUG_STEPS = {
    "fliplr": {"p": 0.5},
    "crop": {"percent": 0.1},
    "gaussian_blur": {"p": 0.5, "sigma": 0.5},
    "linear_contrast": {"alpha": [0.75, 1.5]},
    "gaussian_noise": {"scale": 0.05, "per_channel": 0.5},
    "multiply": {"mul": [0.8, 1.2], "per_channel": 0.2},
    "affine": {"scale_x": [0.8, 1.2], "scale_y": [0.8, 1.2], "translate_x": [-0.2, 0.2],
               "translate_y": [-0.2, 0.2], "rotate": [-25.0, 25.0], "shear": [-8.0, 8.0]},
}

# (kind, low, high, what it is) of every imgaug parameter, keyed by (step, parameter); kinds: "prob"
# (a probability; per_channel also takes a boolean), "number" and "range" ([low, high], low <= high).
IMGAUG_LIMITS = {
    ("fliplr", "p"): ("prob", 0.0, 1.0, "the probability of a left-right flip"),
    ("crop", "percent"): ("number", 0.0, 0.4, "the largest fraction cropped from each side"),
    ("gaussian_blur", "p"): ("prob", 0.0, 1.0, "the probability of a blur"),
    ("gaussian_blur", "sigma"): ("number", 0.0, 10.0, "the largest blur sigma (pixels)"),
    ("linear_contrast", "alpha"): ("range", 0.0, 5.0, "the contrast factor's range"),
    ("gaussian_noise", "scale"): ("number", 0.0, 1.0, "the largest noise sigma, as a fraction of 255"),
    ("gaussian_noise", "per_channel"): ("prob", 0.0, 1.0, "the probability of noise drawn per channel"),
    ("multiply", "mul"): ("range", 0.0, 5.0, "the brightness factor's range"),
    ("multiply", "per_channel"): ("prob", 0.0, 1.0, "the probability of a factor per channel"),
    ("affine", "scale_x"): ("range", 0.1, 3.0, "the horizontal scale's range"),
    ("affine", "scale_y"): ("range", 0.1, 3.0, "the vertical scale's range"),
    ("affine", "translate_x"): ("range", -1.0, 1.0, "the horizontal shift's range (fractions of the width)"),
    ("affine", "translate_y"): ("range", -1.0, 1.0, "the vertical shift's range (fractions of the height)"),
    ("affine", "rotate"): ("range", -180.0, 180.0, "the rotation's range (degrees)"),
    ("affine", "shear"): ("range", -60.0, 60.0, "the shear's range (degrees)"),
}

DEFAULT_RECIPES = {
    # The chapters' ImageDataGenerator (Keras 2):
    #   ImageDataGenerator(rescale=1./255, rotation_range=40, width_shift_range=0.2,
    #                      height_shift_range=0.2, shear_range=0.2, zoom_range=0.2,
    #                      horizontal_flip=True, fill_mode="nearest")
    # shear_range=0.2 is an angle in degrees in ImageDataGenerator (tiny); kept as written.
    "keras": {
        "engine": "keras",
        "rotation_range": 40.0,
        "width_shift_range": 0.2,
        "height_shift_range": 0.2,
        "shear_range": 0.2,
        "zoom_range": 0.2,
        "horizontal_flip": True,
        "vertical_flip": False,
        "fill_mode": "nearest",
        "cval": 0.0,
        "rescale": 1 / 255,
    },
    # imgaug's README example (ContrastNormalization is LinearContrast since imgaug 0.4.0).
    "imgaug": {
        "engine": "imgaug",
        "random_order": True,
        **{name: {"enabled": True, **copy.deepcopy(params)} for name, params in IMGAUG_STEPS.items()},
    },
}

_SEED_LIMIT = 2**32


# ----------------------------------------------------------------------------- validation


def _fail(message: str):
    raise AugmentError(message)


def _unknown(keys, allowed, where: str):
    for key in keys:
        if key not in allowed:
            close = (difflib.get_close_matches(str(key), list(allowed), n=1)
                     or [a for a in allowed if len(str(key)) >= 3 and str(key) in a])
            hint = f" Did you mean `{close[0]}`?" if close else ""
            _fail(f"Unknown key `{key}` in {where}; expected one of: {', '.join(allowed)}.{hint}")


def _number(value, name: str, low: float, high: float, what: str) -> float:
    return checks.number(value, name, low, high, what=what, error=AugmentError)


def _range(value, name: str, low: float, high: float, what: str) -> list:
    ok = (isinstance(value, (list, tuple)) and len(value) == 2 and all(checks.is_number(v) for v in value)
          and all(math.isfinite(float(v)) and low <= float(v) <= high for v in value)
          and float(value[0]) <= float(value[1]))
    if not ok:
        _fail(f"`{name}` ({what}) must be two numbers [low, high] from {_fmt(low)} to {_fmt(high)} "
              f"with low <= high; received {value!r}.")
    return [float(value[0]), float(value[1])]


def _flag(value, name: str) -> bool:
    return checks.flag(value, name, error=AugmentError)


def _prob(value, name: str, what: str, allow_bool: bool) -> float:
    if allow_bool and isinstance(value, (bool, np.bool_)):
        return float(value)
    return _number(value, name, 0.0, 1.0, what)


def _validate_keras(recipe: dict) -> dict:
    _unknown(recipe, ("engine", *KERAS_PARAMS), "the keras recipe")
    r = {"engine": "keras", **KERAS_PARAMS, **{k: v for k, v in recipe.items() if k != "engine"}}
    r["rotation_range"] = _number(r["rotation_range"], "rotation_range", 0.0, MAX_ROTATION,
                                  "the largest rotation, in degrees")
    for key, side in (("width_shift_range", "width"), ("height_shift_range", "height")):
        r[key] = _number(r[key], key, 0.0, 1.0, f"the largest shift, as a fraction of the {side}")
    r["shear_range"] = _number(r["shear_range"], "shear_range", 0.0, MAX_SHEAR,
                               "the largest shear angle, in degrees, as in ImageDataGenerator")
    zoom = r["zoom_range"]
    if isinstance(zoom, (list, tuple)):
        r["zoom_range"] = _range(zoom, "zoom_range", *ZOOM_BOUNDS, "the zoom's range; below 1 zooms in")
    else:
        r["zoom_range"] = _number(zoom, "zoom_range", 0.0, 1 - ZOOM_BOUNDS[0],
                                  "z for a zoom in [1 - z, 1 + z], or [low, high]")
    r["horizontal_flip"] = _flag(r["horizontal_flip"], "horizontal_flip")
    r["vertical_flip"] = _flag(r["vertical_flip"], "vertical_flip")
    r["fill_mode"] = checks.choice(r["fill_mode"], "fill_mode", FILL_MODES, error=AugmentError)
    r["cval"] = _number(r["cval"], "cval", -1e6, 1e6, "the value outside the image with fill_mode 'constant'")
    if r["rescale"] is not None:
        r["rescale"] = checks.number(r["rescale"], "rescale", 0, 1e6, low_open=True, error=AugmentError,
                                     what="1/255 for pixels in [0, 1], or null for none")
    return r


def _validate_imgaug(recipe: dict) -> dict:
    _unknown(recipe, ("engine", "random_order", *IMGAUG_STEPS), "the imgaug recipe")
    r = {"engine": "imgaug", "random_order": _flag(recipe.get("random_order", False), "random_order")}
    for step, defaults in IMGAUG_STEPS.items():
        given = recipe.get(step)
        if given is None:
            r[step] = {"enabled": False, **copy.deepcopy(defaults)}
            continue
        if not isinstance(given, dict):
            _fail(f"`{step}` must be an object of parameters such as {json.dumps(defaults)}; received {given!r}.")
        _unknown(given, ("enabled", *defaults), f"the imgaug step `{step}`")
        out = {"enabled": _flag(given.get("enabled", True), f"{step}.enabled")}
        for param, default in defaults.items():
            kind, low, high, what = IMGAUG_LIMITS[(step, param)]
            value = given.get(param, copy.deepcopy(default))
            name = f"{step}.{param}"
            if kind == "range":
                out[param] = _range(value, name, low, high, what)
            elif kind == "prob":
                out[param] = _prob(value, name, what, allow_bool=param == "per_channel")
            else:
                out[param] = _number(value, name, low, high, what)
        r[step] = out
    return r


def validate_recipe(recipe) -> dict:
    """Check an augmentation recipe and return it complete, with every default filled in.

    Keys left out take their "off" values: ImageDataGenerator's defaults for
    the Keras engine (no rotation, no shift, ``fill_mode="nearest"``, no
    rescale...); for imgaug, a step left out is switched off, a parameter
    left out of a step takes the seed's value (imgaug's README example), and
    ``random_order`` is ``False`` (``iaa.Sequential``'s default). Numbers come
    back as floats; validating twice gives the same recipe.

    Args:
        recipe: a dict with ``"engine"``: ``"keras"`` or ``"imgaug"``, and that
            engine's parameters (see :data:`KERAS_PARAMS` and :data:`IMGAUG_STEPS`).

    Returns:
        A new dict: every parameter of the engine, checked.

    Raises:
        AugmentError: an unknown engine or key (with the closest known key),
            or a value out of range; the message names it and the value received.

    Example:
        >>> validate_recipe({"engine": "keras", "rotation_range": 10})["rotation_range"]
        10.0
        >>> validate_recipe({"engine": "keras", "rotation_range": 400})
        Traceback (most recent call last):
        ...
        cvcore.errors.AugmentError: `rotation_range` (the largest rotation, in degrees) must be a number from 0 to 180; received 400.
    """
    if not isinstance(recipe, dict):
        _fail(f"`recipe` must be a dict with an \"engine\" key; received {type(recipe).__name__} {recipe!r:.80}.")
    engine = recipe.get("engine")
    if engine not in ENGINES:
        _fail(f"`engine` must be one of {', '.join(ENGINES)}; received {engine!r}.")
    return _validate_keras(recipe) if engine == "keras" else _validate_imgaug(recipe)


def _check_images(images) -> np.ndarray:
    return checks.image_batch(images, "images", error=AugmentError)


def _check_seed(seed) -> int:
    return checks.integer(seed, "seed", 0, _SEED_LIMIT - 1, error=AugmentError)


# ----------------------------------------------------------------------------- code as data

def _fmt(value: float) -> str:
    """A float as Python reads it back exactly; whole numbers without '.0' (for people)."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


@dataclass(frozen=True)
class _Expr:
    """A value, and the Python expression that computes exactly it (for the exported code)."""

    value: object
    text: str


@dataclass
class _Call:
    """A constructor call, built into an object or rendered as Python source."""

    func: str  # "layers.RandomFlip", "iaa.Fliplr", "CentredRandomShear"
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    comment: str = ""

    def build(self, namespace: dict):
        head, _, attr = self.func.partition(".")
        func = getattr(namespace[head], attr) if attr else namespace[head]
        return func(*(_build(a, namespace) for a in self.args),
                    **{k: _build(v, namespace) for k, v in self.kwargs.items()})

    def render(self, indent: str = "", width: int = 100) -> str:
        """``func(args)`` on one line, or one argument a line when longer than ``width``."""
        parts = [_render(a) for a in self.args] + [f"{k}={_render(v)}" for k, v in self.kwargs.items()]
        line = f"{self.func}({', '.join(parts)})"
        if len(indent) + len(line) + 1 <= width or not parts:
            return line
        inner = "".join(f"{indent}    {p},\n" for p in parts)
        return f"{self.func}(\n{inner}{indent})"


def _build(value, namespace):
    if isinstance(value, _Call):
        return value.build(namespace)
    if isinstance(value, _Expr):
        return value.value
    if isinstance(value, tuple):
        return tuple(_build(v, namespace) for v in value)
    if isinstance(value, dict):
        return {k: _build(v, namespace) for k, v in value.items()}
    return value


def _render(value) -> str:
    if isinstance(value, _Call):
        return value.render()
    if isinstance(value, _Expr):
        return value.text
    if isinstance(value, (bool, type(None))):
        return repr(value)
    if isinstance(value, float):
        return repr(value)  # exact, and a float stays a float (imgaug reads int tuples as discrete)
    if isinstance(value, (int, str)):
        return json.dumps(value)
    if isinstance(value, tuple):
        inner = ", ".join(_render(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {_render(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot render {value!r}")


# ----------------------------------------------------------------------------- keras engine

def _centred_shear():
    """The centred shear layer class (:class:`cvcore.layers.CentredRandomShear`); imports Keras on first use."""
    from .layers import CentredRandomShear

    return CentredRandomShear


def _shear_source() -> str:
    """The class's own source, for the exported code: the class cvcore runs is the one the code defines."""
    import inspect

    return inspect.getsource(_centred_shear()).strip("\n")


def custom_objects() -> dict:
    """The custom layer :func:`keras_layers` may use, for loading a saved model that holds it.

    Returns:
        ``{"cvcore>CentredRandomShear": the class}``; it is also registered
        with Keras, so ``keras.saving.load_model`` finds it once this ran.

    Example:
        >>> list(custom_objects())
        ['cvcore>CentredRandomShear']
    """
    from .layers import custom_objects as layer_objects

    return layer_objects("CentredRandomShear")


def _layer_seeds(seed: int, n: int) -> list[int]:
    """n independent seeds for the layers, derived from one (< 2**31: Keras keeps them as int64)."""
    return [int(s) % 2**31 for s in np.random.SeedSequence(seed).generate_state(n, dtype=np.uint32)]


def _zoom_factors(zoom) -> tuple:
    low, high = (1 - zoom, 1 + zoom) if isinstance(zoom, float) else zoom
    return round(low - 1, 10), round(high - 1, 10)


def _rescale_expr(scale: float) -> _Expr:
    k = round(1 / scale)
    return _Expr(scale, f"1 / {k}" if k > 0 and 1 / k == scale else repr(scale))


def _keras_calls(r: dict, seed: int | None, rescale: bool) -> list[_Call]:
    """The layers of a validated keras recipe, in order, as calls."""
    fill = {"fill_mode": r["fill_mode"], "fill_value": r["cval"]}
    calls = []
    if r["rotation_range"]:
        deg = r["rotation_range"]
        calls.append(_Call("layers.RandomRotation", (_Expr(deg / 360, f"{_fmt(deg)} / 360"),), dict(fill, name="rotation"),
                           f"rotation_range={_fmt(deg)}: up to {_fmt(deg)} degrees either way, as a fraction of a full turn"))
    if r["width_shift_range"] or r["height_shift_range"]:
        calls.append(_Call("layers.RandomTranslation", (),
                           dict(height_factor=r["height_shift_range"], width_factor=r["width_shift_range"], **fill,
                                name="translation"),
                           "height_shift_range, width_shift_range: fractions of the height and width"))
    if r["shear_range"]:
        deg = r["shear_range"]
        calls.append(_Call("CentredRandomShear", (),
                           dict(x_factor=(0.0, _Expr(math.sin(math.radians(deg)), f"math.sin(math.radians({_fmt(deg)}))")),
                                y_factor=0.0, **fill, name="shear"),
                           f"shear_range={_fmt(deg)} (degrees, as ImageDataGenerator): rows slide sideways by "
                           "sin(angle) pixels per row from the centre row; the layer draws it in [0, sin] and gives it "
                           "a random sign"))
    if _zoom_factors(r["zoom_range"]) != (0.0, 0.0):
        factors = _zoom_factors(r["zoom_range"])
        zoom = r["zoom_range"]
        shown = _fmt(zoom) if isinstance(zoom, float) else f"[{_fmt(zoom[0])}, {_fmt(zoom[1])}]"
        calls.append(_Call("layers.RandomZoom", (), dict(height_factor=factors, width_factor=factors, **fill, name="zoom"),
                           f"zoom_range={shown}: zoom - 1; below 0 zooms in; each axis drawn on its own"))
    if r["horizontal_flip"]:
        calls.append(_Call("layers.RandomFlip", ("horizontal",), dict(name="horizontal_flip"),
                           "horizontal_flip=True: half the images, mirrored left-right"))
    if r["vertical_flip"]:
        calls.append(_Call("layers.RandomFlip", ("vertical",), dict(name="vertical_flip"),
                           "vertical_flip=True: half the images (on its own: not 'horizontal_and_vertical')"))
    if seed is not None:
        for call, layer_seed in zip(calls, _layer_seeds(seed, len(calls))):
            name = call.kwargs.pop("name")
            call.kwargs.update(seed=layer_seed, name=name)
    if rescale and r["rescale"] is not None:
        calls.append(_Call("layers.Rescaling", (_rescale_expr(r["rescale"]),), dict(name="rescaling"),
                           f"rescale={_rescale_expr(r['rescale']).text}: pixels times this, after the augmentation"))
    if not calls:
        calls.append(_Call("layers.Identity", (), dict(name="identity"), "nothing to do: images pass through"))
    return calls


def _require(recipe, engine: str, func: str) -> dict:
    r = validate_recipe(recipe)
    if r["engine"] != engine:
        _fail(f"`{func}` needs a recipe with engine {engine!r}; received engine {r['engine']!r}.")
    return r


def keras_layers(recipe, seed=None, *, rescale: bool = True):
    """The Keras engine's recipe as a ``keras.Sequential`` of preprocessing layers.

    Put it in a ``tf.data`` pipeline (``ds.map(lambda x, y: (aug(x, training=True), y))``)
    or first in a model: Keras runs the random layers in training only, so
    ``model.predict`` and ``model.evaluate`` see the images unchanged. The
    parameters map onto layers as the module's docstring says.

    Args:
        recipe: a recipe with ``"engine": "keras"`` (validated here).
        seed: an integer for reproducible draws (each layer gets its own seed
            derived from it), or None for fresh draws in every process.
        rescale: end with ``Rescaling(recipe["rescale"])`` when the recipe has one.

    Returns:
        A ``keras.Sequential`` named ``"augmentation"``; it maps N x H x W x C
        images (any numeric dtype) to float32 of the same shape.

    Raises:
        AugmentError: a bad recipe or seed, or an imgaug recipe.

    Example:
        >>> aug = keras_layers(DEFAULT_RECIPES["keras"], seed=0)
        >>> [layer.name for layer in aug.layers]
        ['rotation', 'translation', 'shear', 'zoom', 'horizontal_flip', 'rescaling']
        >>> aug(np.zeros((2, 32, 32, 3), np.uint8), training=True).shape
        TensorShape([2, 32, 32, 3])
    """
    r = _require(recipe, "keras", "keras_layers")
    if seed is not None:
        seed = _check_seed(seed)
    keras = device.keras()
    namespace = {"layers": keras.layers, "CentredRandomShear": _centred_shear()}
    built = [call.build(namespace) for call in _keras_calls(r, seed, rescale)]
    return keras.Sequential(built, name="augmentation")


# ----------------------------------------------------------------------------- imgaug engine

def _imgaug_calls(r: dict) -> list[tuple[bool, _Call]]:
    """Every step of a validated imgaug recipe, in order, as (enabled, call)."""
    s = {name: r[name] for name in IMGAUG_STEPS}
    a = s["affine"]
    noise = s["gaussian_noise"]["scale"]
    calls = {
        "fliplr": _Call("iaa.Fliplr", (s["fliplr"]["p"],), comment="mirror left-right, with this probability"),
        "crop": _Call("iaa.Crop", (), dict(percent=(0.0, s["crop"]["percent"])),
                      comment="crop 0 to this fraction from each side, then resize back"),
        "gaussian_blur": _Call("iaa.Sometimes", (s["gaussian_blur"]["p"], _Call(
            "iaa.GaussianBlur", (), dict(sigma=(0.0, s["gaussian_blur"]["sigma"])))),
            comment="blur some of the images"),
        "linear_contrast": _Call("iaa.LinearContrast", (tuple(s["linear_contrast"]["alpha"]),),
                                 comment="ContrastNormalization in imgaug's README (renamed in 0.4.0)"),
        "gaussian_noise": _Call("iaa.AdditiveGaussianNoise", (), dict(
            loc=0, scale=(0.0, _Expr(noise * 255, f"{_fmt(noise)} * 255")),
            per_channel=s["gaussian_noise"]["per_channel"]), comment="noise; per channel for some images"),
        "multiply": _Call("iaa.Multiply", (tuple(s["multiply"]["mul"]),),
                          dict(per_channel=s["multiply"]["per_channel"]), comment="brighter or darker"),
        "affine": _Call("iaa.Affine", (), dict(
            scale={"x": tuple(a["scale_x"]), "y": tuple(a["scale_y"])},
            translate_percent={"x": tuple(a["translate_x"]), "y": tuple(a["translate_y"])},
            rotate=tuple(a["rotate"]), shear=tuple(a["shear"])),
            comment="scale, shift, rotate (degrees) and shear (degrees)"),
    }
    return [(s[name]["enabled"], calls[name]) for name in IMGAUG_STEPS]


def imgaug_pipeline(recipe, seed=None):
    """The imgaug engine's recipe as an ``iaa.Sequential``.

    Args:
        recipe: a recipe with ``"engine": "imgaug"`` (validated here).
        seed: an integer: the pipeline is seeded with ``seed_(seed)``, so every
            call of a fresh pipeline with the same seed gives the same images;
            None keeps imgaug's global random state.

    Returns:
        ``iaa.Sequential`` of the enabled steps, in :data:`IMGAUG_STEPS` order
        (shuffled per batch when ``random_order``).

    Raises:
        AugmentError: a bad recipe or seed, or a keras recipe.
        ImgaugUnavailableError: imgaug is not installed.

    Example:
        >>> seq = imgaug_pipeline(DEFAULT_RECIPES["imgaug"], seed=0)
        >>> seq(images=np.zeros((2, 32, 32, 3), np.uint8)).shape
        (2, 32, 32, 3)
    """
    from .imgaug_compat import import_imgaug

    r = _require(recipe, "imgaug", "imgaug_pipeline")
    if seed is not None:
        seed = _check_seed(seed)
    iaa = import_imgaug()
    steps = [call.build({"iaa": iaa}) for enabled, call in _imgaug_calls(r) if enabled]
    seq = iaa.Sequential(steps, random_order=r["random_order"])
    if seed is not None:
        seq.seed_(seed)
    return seq


# ----------------------------------------------------------------------------- public API

def augment(images, recipe, seed) -> np.ndarray:
    """Augment a batch of images with a recipe, reproducibly.

    Each image of the batch gets its own random draw; the same images,
    recipe and seed give the same result, another seed another one.
    The Keras engine leaves out the recipe's ``rescale`` (it belongs to
    training: :func:`keras_layers`, :func:`recipe_code`), so uint8 pixels
    come back as uint8 pixels to look at.

    Args:
        images: N x H x W x C, uint8 (0-255) or float32. Float32 pixels are
            taken on the scale they have (``cval`` and imgaug's noise are in
            those units; imgaug's noise assumes 0-255) and are not clipped.
        recipe: a recipe (see :func:`validate_recipe`).
        seed: an integer from 0 to 2**32 - 1.

    Returns:
        A new array of the same shape and dtype (uint8 rounded and clipped to 0-255).

    Raises:
        AugmentError: bad images (shape, dtype), recipe or seed; the message
            names the value received.
        ImgaugUnavailableError: an imgaug recipe where imgaug is not installed.

    Example:
        >>> batch = np.zeros((4, 32, 32, 3), np.uint8)
        >>> out = augment(batch, DEFAULT_RECIPES["imgaug"], seed=1)
        >>> out.shape, out.dtype
        ((4, 32, 32, 3), dtype('uint8'))
    """
    arr = _check_images(images)
    r = validate_recipe(recipe)
    seed = _check_seed(seed)
    if r["engine"] == "imgaug":
        out = imgaug_pipeline(r, seed)(images=np.ascontiguousarray(arr))
        return np.array(out, dtype=arr.dtype)  # a copy, also when no step is enabled
    model = keras_layers(r, seed, rescale=False)
    out = np.asarray(model(arr.astype(np.float32), training=True))
    if arr.dtype == np.uint8:
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out.astype(np.float32, copy=False)


def _idg_args(r: dict) -> list[str]:
    """The old ``ImageDataGenerator(...)`` arguments of a keras recipe (those not at their defaults)."""
    args = []
    for key, off in KERAS_PARAMS.items():
        value = r[key]
        if value == off:
            continue
        if key == "rescale":
            args.append(f"rescale={_rescale_expr(value).text}")
        elif isinstance(value, list):
            args.append(f"{key}=[{_fmt(value[0])}, {_fmt(value[1])}]")
        elif isinstance(value, str):
            args.append(f"{key}={value!r}")
        else:
            args.append(f"{key}={value if isinstance(value, bool) else _fmt(value)}")
    return args


def _comment(text: str, indent: str = "") -> list[str]:
    return textwrap.wrap(text, 100, initial_indent=f"{indent}# ", subsequent_indent=f"{indent}#   ")


def _step_lines(call: _Call, enabled: bool = True) -> list[str]:
    """One step of a pipeline: its comment, then the call (commented out when switched off)."""
    if not enabled:
        code = f"    {call.render('    ')},".splitlines()
        return _comment(f"switched off: {call.comment}", "    ") + [f"    # {line[4:]}" for line in code]
    return _comment(call.comment, "    ") + [f"    {call.render('    ')},"]


def recipe_code(recipe, seed=None) -> str:
    """A recipe as a runnable Python script that builds the same augmentation.

    Keras: ``augmentation = keras.Sequential([...])`` of preprocessing layers
    (the rescale included), with the seed's old ``ImageDataGenerator(...)``
    call in a comment, as an explanation only. imgaug: ``augmentation =
    iaa.Sequential([...])``, imported through :mod:`cvcore.imgaug_compat`
    (imgaug 0.4.0 needs it on NumPy 2); switched-off steps appear as comments.

    Args:
        recipe: a recipe (see :func:`validate_recipe`).
        seed: an integer to put the seeds in the code, so that it gives the
            same images as :func:`augment` with that seed; None for fresh
            draws (what training wants).

    Returns:
        Python source defining ``augmentation``.

    Raises:
        AugmentError: a bad recipe or seed.

    Example:
        >>> code = recipe_code(DEFAULT_RECIPES["keras"])
        >>> "layers.RandomRotation(40 / 360" in code and "ImageDataGenerator(" in code
        True
    """
    r = validate_recipe(recipe)
    if seed is not None:
        seed = _check_seed(seed)
    if r["engine"] == "keras":
        calls = _keras_calls(r, seed, rescale=True)
        uses_shear = any(c.func == "CentredRandomShear" for c in calls)
        head = [
            "# Augmentation exported by ConvNet Explorer: Keras 3 preprocessing layers.",
            "# The chapters wrote it with Keras 2's ImageDataGenerator, gone from Keras 3 (for reading only):",
            "#   datagen = ImageDataGenerator(",
            *(f"#       {arg}," for arg in _idg_args(r)),
            "#   )",
            "#   model.fit_generator(datagen.flow_from_directory(...), ...)   # today: model.fit(dataset)",
        ]
        if uses_shear:
            head.append("import math")
            head.append("")
        head += ["import keras", "from keras import layers", ""]
        if uses_shear:
            head += [_shear_source(), "", ""]
        body = ["augmentation = keras.Sequential(["] + [line for c in calls for line in _step_lines(c)]
        body += ['], name="augmentation")', ""]
        use = [
            "# Use: augmentation(images, training=True) on N x H x W x C images (uint8 or float32, 0-255).",
            "# In training: dataset.map(lambda x, y: (augmentation(x, training=True), y)), or as a model's",
            "# first layers (active in fit() only, not in predict() or evaluate()).",
        ]
        if seed is not None:
            use.insert(0, f"# The seeds make it repeat the page's images for seed {seed}; remove them for training.")
        return "\n".join(head + body + use) + "\n"
    lines = [line for enabled, call in _imgaug_calls(r) for line in _step_lines(call, enabled)]
    head = [
        "# Augmentation exported by ConvNet Explorer: imgaug 0.4.0.",
        "# imgaug 0.4.0 predates NumPy 2 (it reads np.sctypes when imported); ConvNet Explorer's shim",
        "# cvcore.imgaug_compat.import_imgaug() imports it there. On NumPy 1: import imgaug.augmenters as iaa",
        "from cvcore.imgaug_compat import import_imgaug",
        "",
        "iaa = import_imgaug()",
        "",
        "augmentation = iaa.Sequential([",
        *lines,
        f"], random_order={r['random_order']})",
    ]
    if seed is not None:
        head.append(f"augmentation.seed_({seed})  # the page's seed: the same images as its preview")
    head += ["", "# Use: images_aug = augmentation(images=images)   # uint8 N x H x W x C"]
    return "\n".join(head) + "\n"
