"""Background removal for plant photographs: keep the leaves, black out the soil.

The plant seedlings chapter removes everything that is not leaf-green before
training: it measures how far every pixel's colour is from four leaf-green
target colours with compuphase's "low-cost" RGB distance (the *redmean*
approximation of perceived colour difference, in whole numbers and without
its square root), thresholds each distance (1600, and 500 for the darkest
green), ORs the masks, median-blurs the result (9 x 9) and keeps the leaves
on black.

This module does that and three alternatives, as pure functions over numpy
arrays (scikit-image style: explicit dtypes and ranges):

* :func:`color_distance`: the chapter's distance of every pixel to one colour,
  its integer formula value for value.
* :func:`plant_mask`: a bool leaf mask by one of :data:`METHODS`:

  - ``"rgb"``: the chapter's distance to target colours, each with its
    threshold (the chapter's method; its four greens and thresholds are the
    defaults, :data:`DEFAULT_TARGETS`);
  - ``"cieluv"``: Euclidean distance (CIE 1976 ΔE*uv) to target colours in
    CIELUV, a space built so that distances follow perceived differences;
  - ``"hsv"``: a range of hue (in **degrees**, 0 to 360), saturation and
    value (in **percent**, 0 to 100), as colour pickers show them;
  - ``"grabcut"``: OpenCV's GrabCut, started from a rectangle around the plant.

* :func:`clean_mask`: a median blur of a mask (removes specks, fills pinholes).
* :func:`remove_background`: keep the pixels under a mask, black elsewhere.
* :func:`remove_background_folder`: all of that over a folder of images,
  written as PNGs into a new folder, with progress and a cooperative stop;
  :func:`remove_background_folder_job` runs it as a job on Ray (:mod:`cvcore.jobs`).

Every argument is checked up front (with :mod:`cvcore.checks`); bad input
raises :class:`BackgroundError` (a :class:`~cvcore.errors.CvcoreError`, so a
``ValueError``) whose message names the argument and the value received.

Example:
    >>> from cvcore.samples import seedling_photo
    >>> img, truth = seedling_photo(seed=0, size=128)
    >>> mask = plant_mask(img, "rgb", median=5)
    >>> leaves = remove_background(img, mask, median=1)
    >>> round(iou(mask, truth), 1) >= 0.8, leaves[~mask].max()
    (True, np.uint8(0))
"""
from __future__ import annotations

import io
import math
import os
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from . import checks
from .errors import BackgroundError, CvcoreError

__all__ = [
    "BackgroundError",
    "METHODS",
    "METHOD_TITLES",
    "DEFAULT_TARGETS",
    "DEFAULT_LUV_TARGETS",
    "BRIGHT_TARGETS",
    "BRIGHT_LUV_TARGETS",
    "CHAPTER_MEDIAN",
    "CHAPTER_PRESET",
    "BRIGHT_PRESET",
    "TARGET_PRESETS",
    "DEFAULT_HSV",
    "DEFAULT_RECT_FRACTION",
    "DEFAULT_ITERATIONS",
    "MAX_TARGETS",
    "MAX_MEDIAN",
    "MAX_ITERATIONS",
    "MAX_RGB_THRESHOLD",
    "MAX_LUV_THRESHOLD",
    "color_distance",
    "luv_distance",
    "distance_margins",
    "default_params",
    "validate_params",
    "describe_method",
    "describe_defaults",
    "targets_from_rows",
    "rect_from_fraction",
    "plant_mask",
    "clean_mask",
    "remove_background",
    "overlay",
    "iou",
    "kept_fraction",
    "FolderSummary",
    "remove_background_folder",
    "remove_background_folder_job",
    "zip_folder",
]


METHODS = ("rgb", "cieluv", "hsv", "grabcut")
METHOD_TITLES = {
    "rgb": "RGB colour distance (the chapter's)",
    "cieluv": "CIELUV colour distance",
    "hsv": "HSV ranges",
    "grabcut": "GrabCut from a rectangle",
}

# The chapter's four leaf greens and thresholds, in its units (color_distance: the redmean distance
# squared, in whole numbers; 1600 is a distance of 40 on the square-rooted scale, 500 about 22.4).
DEFAULT_TARGETS = (
    ((71, 86, 38), 1600.0),
    ((65, 79, 19), 1600.0),
    ((95, 106, 56), 1600.0),
    ((56, 63, 43), 500.0),
)
CHAPTER_MEDIAN = 9  # the chapter's median blur of the mask (9 x 9)
# The same greens in CIELUV, with thresholds in ΔE*uv units (1 is about a just-noticeable difference):
# a little wider than the chapter's for the three, tighter for the darkest, which dark soil comes near.
DEFAULT_LUV_TARGETS = (
    ((71, 86, 38), 15.0),
    ((65, 79, 19), 15.0),
    ((95, 106, 56), 15.0),
    ((56, 63, 43), 10.0),
)
# Brighter greens, for leaves brighter than the chapter's (the first synthetic seedlings were drawn in them):
# an olive green, a bright leaf green, a deep green and a young, yellowish one. RGB thresholds in the
# chapter's units (70, 110, 95 and 80 on the square-rooted scale, squared).
BRIGHT_TARGETS = (
    ((70, 120, 40), 4900.0),
    ((80, 170, 55), 12100.0),
    ((35, 115, 40), 9025.0),
    ((130, 185, 45), 6400.0),
)
BRIGHT_LUV_TARGETS = (
    ((70, 120, 40), 25.0),
    ((80, 170, 55), 50.0),
    ((35, 115, 40), 35.0),
    ((130, 185, 45), 40.0),
)
CHAPTER_PRESET = "The chapter's four greens"
BRIGHT_PRESET = "Bright greens (synthetic seedlings v1)"
# Named sets of targets for the methods that take them, each with the median blur that goes with it.
TARGET_PRESETS = {
    "rgb": {CHAPTER_PRESET: {"targets": DEFAULT_TARGETS, "median": CHAPTER_MEDIAN},
            BRIGHT_PRESET: {"targets": BRIGHT_TARGETS, "median": 5}},
    "cieluv": {CHAPTER_PRESET: {"targets": DEFAULT_LUV_TARGETS, "median": CHAPTER_MEDIAN},
               BRIGHT_PRESET: {"targets": BRIGHT_LUV_TARGETS, "median": 5}},
}
# Hue in degrees (0 red, 30 the soil's brown, 60 yellow, 75-80 the chapter's greens, 120 green, 180 cyan),
# saturation and value in percent. Dark, greyish leaves have an unsteady hue: the range starts at 45.
DEFAULT_HSV = {"hue": (45.0, 150.0), "saturation": (15.0, 100.0), "value": (10.0, 100.0)}
DEFAULT_RECT_FRACTION = (0.1, 0.1, 0.8, 0.8)  # x, y, w, h as fractions of the width and height
DEFAULT_ITERATIONS = 5
MAX_TARGETS = 16
MAX_MEDIAN = 99
MAX_ITERATIONS = 20
MAX_RGB_THRESHOLD = 600_000.0  # the chapter's distance never exceeds 584,970 (black to white)
MAX_LUV_THRESHOLD = 400.0  # ΔE*uv between any two sRGB colours stays below ~260

_DEFAULTS = {
    "rgb": {"targets": DEFAULT_TARGETS, "median": 0},
    "cieluv": {"targets": DEFAULT_LUV_TARGETS, "lightness_weight": 1.0, "median": 0},
    "hsv": {**DEFAULT_HSV, "median": 0},
    "grabcut": {"rect": None, "rect_fraction": DEFAULT_RECT_FRACTION, "iterations": DEFAULT_ITERATIONS,
                "median": 0},
}


# ----------------------------------------------------------------------------- checks


def _check_median(median, name: str = "median") -> int:
    """The median blur's window: 0 or 1 (none) or an odd size (background-specific: a centre pixel)."""
    whole = checks.is_number(median) and float(median).is_integer()
    k = int(median) if whole else None
    if k is None or k < 0 or k > MAX_MEDIAN or (k > 1 and k % 2 == 0):
        even = k is not None and k > 1 and k % 2 == 0
        hint = " (a median blur needs an odd size: a centre pixel)" if even else ""
        raise BackgroundError(
            f"`{name}` must be 0 or 1 (no blur) or an odd integer from 3 to {MAX_MEDIAN}; "
            f"received {median!r}{hint}.")
    return k


def _check_targets(targets, name: str, max_threshold: float, *, integers: bool = False) -> tuple:
    """((r, g, b), threshold) pairs; whole-number colours with ``integers`` (the chapter's formula)."""
    if isinstance(targets, (str, bytes)) or not hasattr(targets, "__len__"):
        raise BackgroundError(f"`{name}` must be a list of (rgb, threshold) pairs; received {targets!r}.")
    if len(targets) == 0:
        raise BackgroundError(f"`{name}` is empty; give at least one (rgb, threshold) pair, a target colour.")
    if len(targets) > MAX_TARGETS:
        raise BackgroundError(f"`{name}` has {len(targets)} targets; at most {MAX_TARGETS} are allowed.")
    out = []
    for i, pair in enumerate(targets):
        try:
            rgb, threshold = pair
        except (TypeError, ValueError):
            raise BackgroundError(
                f"`{name}[{i}]` must be an (rgb, threshold) pair such as ((71, 86, 38), 1600); "
                f"received {pair!r}.") from None
        out.append((checks.rgb(rgb, f"{name}[{i}] colour", error=BackgroundError, integers=integers),
                    checks.number(threshold, f"{name}[{i}] threshold", 0, max_threshold, low_open=True,
                                  error=BackgroundError)))
    return tuple(out)


def _check_range(pair, name: str, hi: float, *, wrap: bool = False) -> tuple:
    try:
        lo_v, hi_v = pair
    except (TypeError, ValueError):
        raise BackgroundError(f"`{name}` must be a (low, high) pair from 0 to {hi:g}; received {pair!r}.") from None
    lo_v = checks.number(lo_v, f"{name} low", 0, hi, error=BackgroundError)
    hi_v = checks.number(hi_v, f"{name} high", 0, hi, error=BackgroundError)
    if lo_v > hi_v and not wrap:
        raise BackgroundError(f"`{name}` must have low <= high; received {pair!r}.")
    return lo_v, hi_v


def _check_fraction_rect(rect) -> tuple:
    try:
        x, y, w, h = rect
    except (TypeError, ValueError):
        raise BackgroundError(
            f"`rect_fraction` must be (x, y, w, h) as fractions 0 to 1 of the width and height; "
            f"received {rect!r}.") from None
    x = checks.number(x, "rect_fraction x", 0, 1, error=BackgroundError)
    y = checks.number(y, "rect_fraction y", 0, 1, error=BackgroundError)
    w = checks.number(w, "rect_fraction w", 0, 1, low_open=True, error=BackgroundError)
    h = checks.number(h, "rect_fraction h", 0, 1, low_open=True, error=BackgroundError)
    if x + w > 1 + 1e-9 or y + h > 1 + 1e-9:
        raise BackgroundError(f"`rect_fraction` must lie inside the image (x + w <= 1, y + h <= 1); received {rect!r}.")
    if x <= 0 and y <= 0 and x + w >= 1 and y + h >= 1:
        raise BackgroundError(
            f"`rect_fraction` {rect!r} covers the whole image; GrabCut learns the background from the "
            "pixels outside the rectangle, so leave a margin.")
    return x, y, w, h


def _check_pixel_rect(rect) -> tuple:
    try:
        values = tuple(rect)
    except TypeError:
        values = ()
    if len(values) != 4:
        raise BackgroundError(f"`rect` must be (x, y, w, h) in pixels; received {rect!r}.")
    return tuple(checks.integer(v, f"rect {axis}", 1 if axis in "wh" else 0, 1 << 20, error=BackgroundError,
                                whole_floats=True) for axis, v in zip("xywh", values))


def validate_params(method: str, **params) -> dict:
    """Check a method's parameters without an image, and fill in the defaults.

    Args:
        method: one of :data:`METHODS`.
        **params: the method's parameters (see :func:`plant_mask`); unknown names are refused.

    Returns:
        A new dict with every parameter of the method, checked and normalised
        (tuples of floats, ints; the ``"rgb"`` target colours as ints, as the
        chapter's integer formula needs them).

    Raises:
        BackgroundError: naming the first bad parameter and the value received.

    Example:
        >>> validate_params("hsv", hue=(60, 170))["hue"]
        (60.0, 170.0)
        >>> validate_params("rgb", targets=[((70.0, 86, 38), 1600)])["targets"]
        (((70, 86, 38), 1600.0),)
        >>> validate_params("rgb", targets=[((70.5, 86, 38), 1600)])
        Traceback (most recent call last):
        ...
        cvcore.errors.BackgroundError: `targets[0] colour[0]` must be an integer from 0 to 255; received 70.5.
    """
    checks.choice(method, "method", METHODS, error=BackgroundError)
    allowed = _DEFAULTS[method]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise BackgroundError(
            f"Method {method!r} takes {', '.join(allowed)}; received unknown parameter(s) {', '.join(unknown)}.")
    p = {**allowed, **params}
    out = {"median": _check_median(p["median"])}
    if method == "rgb":
        out["targets"] = _check_targets(p["targets"], "targets", MAX_RGB_THRESHOLD, integers=True)
    elif method == "cieluv":
        out["targets"] = _check_targets(p["targets"], "targets", MAX_LUV_THRESHOLD)
        out["lightness_weight"] = checks.number(p["lightness_weight"], "lightness_weight", 0, 1,
                                                error=BackgroundError)
    elif method == "hsv":
        out["hue"] = _check_range(p["hue"], "hue", 360, wrap=True)
        out["saturation"] = _check_range(p["saturation"], "saturation", 100)
        out["value"] = _check_range(p["value"], "value", 100)
    else:
        out["rect"] = None if p["rect"] is None else _check_pixel_rect(p["rect"])
        out["rect_fraction"] = _check_fraction_rect(p["rect_fraction"] if p["rect_fraction"] is not None
                                                    else DEFAULT_RECT_FRACTION)
        out["iterations"] = checks.integer(p["iterations"], "iterations", 1, MAX_ITERATIONS, error=BackgroundError,
                                           whole_floats=True)
    return out


def default_params(method: str) -> dict:
    """A method's default parameters (a new dict each call).

    Args:
        method: one of :data:`METHODS`.

    Returns:
        The parameters :func:`plant_mask` uses when given none but ``method``.

    Raises:
        BackgroundError: for an unknown method.

    Example:
        >>> default_params("hsv")["hue"]
        (45.0, 150.0)
        >>> default_params("rgb")["targets"][3]
        ((56, 63, 43), 500.0)
    """
    return validate_params(method)


def describe_method(method: str) -> str:
    """One paragraph (Markdown) on what a method does and its defaults.

    Args:
        method: one of :data:`METHODS`.

    Returns:
        Markdown text.

    Raises:
        BackgroundError: for an unknown method.

    Example:
        >>> "redmean" in describe_method("rgb"), "585,000" in describe_method("rgb")
        (True, True)
    """
    checks.choice(method, "method", METHODS, error=BackgroundError)
    if method == "rgb":
        targets = "; ".join(f"RGB {c} below {t:g}" for c, t in DEFAULT_TARGETS)
        return ("Keeps a pixel when its colour is close to any of a few leaf greens, by the chapter's low-cost "
                "colour distance (compuphase's *redmean*), in whole numbers as the chapter computes it: "
                "r̄ = (R₁ + R₂) // 2, then ((512 + r̄)·ΔR² >> 8) + 4·ΔG² + ((767 − r̄)·ΔB² >> 8), without a "
                "square root. It weighs green most, as the eye does: 0 for the same colour, about 585,000 from "
                "black to white; a threshold of 1600 is a distance of 40 on the square-rooted scale. "
                f"Defaults, the chapter's four greens: {targets}; the chapter then median-blurs the mask "
                f"({CHAPTER_MEDIAN} x {CHAPTER_MEDIAN}).")
    if method == "cieluv":
        targets = "; ".join(f"RGB {tuple(int(v) for v in c)} below {t:g}" for c, t in DEFAULT_LUV_TARGETS)
        return ("Converts the pixels to CIELUV (OpenCV's cvtColor: L* 0 to 100, u*, v* the colour), a space "
                "built so that equal distances look about equally different, and keeps a pixel within a "
                "threshold of any target (ΔE*uv; about 1 is a just-noticeable difference). A lightness weight "
                f"below 1 forgives shadows. Defaults, the chapter's four greens: {targets}.")
    if method == "hsv":
        h, s, v = DEFAULT_HSV["hue"], DEFAULT_HSV["saturation"], DEFAULT_HSV["value"]
        return ("Keeps a pixel whose hue, saturation and value fall in ranges. Hue is in degrees (0 red, "
                "60 yellow, 120 green, 180 cyan, 240 blue), saturation and value in percent. (OpenCV's "
                "8-bit HSV stores hue / 2, 0 to 179, and S, V as 0 to 255.) A low hue above the high one "
                "wraps through red. The chapter's greens have hues of 73 to 81° and brown soil about 30°. "
                f"Defaults: hue {h[0]:g}–{h[1]:g}°, saturation {s[0]:g}–{s[1]:g}%, "
                f"value {v[0]:g}–{v[1]:g}%.")
    x, y, w, h = DEFAULT_RECT_FRACTION
    return ("OpenCV's GrabCut: the pixels outside a rectangle are background for sure, those inside "
            "probably plant; it fits colour models (Gaussian mixtures) to both and cuts the image along "
            "edges, a few rounds over. Needs no target colours, only a rectangle around the plant; slower. "
            f"Defaults: the image inset by {x:.0%} on each side, {DEFAULT_ITERATIONS} iterations.")


def describe_defaults() -> dict:
    """The chapter's method and the defaults of every method, for people.

    Returns:
        ``{method: paragraph}`` for every method of :data:`METHODS` (Markdown).

    Example:
        >>> sorted(describe_defaults()) == sorted(METHODS)
        True
    """
    return {m: describe_method(m) for m in METHODS}


def targets_from_rows(rows, *, max_threshold: float = MAX_RGB_THRESHOLD, integers: bool = False) -> tuple:
    """Target colours typed in a table -> ``((r, g, b), threshold)`` pairs, checked.

    Args:
        rows: a sequence of mappings (or a pandas DataFrame) with keys ``R``,
            ``G``, ``B`` and ``threshold``; values may be numbers or text
            (``"71"``) as typed in a table. Rows that are entirely empty are skipped.
        max_threshold: the largest threshold accepted (:data:`MAX_RGB_THRESHOLD`
            for the chapter's distance, :data:`MAX_LUV_THRESHOLD` for ΔE*uv).
        integers: the colours must be whole numbers, returned as ints (the
            ``"rgb"`` method: the chapter's formula works in integers).

    Returns:
        A tuple of ``((r, g, b), threshold)``: colours as floats (ints with
        ``integers``), thresholds as floats.

    Raises:
        BackgroundError: naming the row (from 1), the column and the value,
            e.g. "row 2, column G is 'abc'"; or when no row is left.

    Example:
        >>> targets_from_rows([{"R": 71, "G": "86", "B": 38, "threshold": 1600}], integers=True)
        (((71, 86, 38), 1600.0),)
        >>> targets_from_rows([{"R": 70.5, "G": 86, "B": 38, "threshold": 1600}], integers=True)
        Traceback (most recent call last):
        ...
        cvcore.errors.BackgroundError: Target row 1, column R is 70.5; type a whole number from 0 to 255.
    """
    if hasattr(rows, "to_dict"):
        rows = rows.to_dict("records")
    columns = ("R", "G", "B", "threshold")
    out = []
    for i, row in enumerate(rows, start=1):
        cells = [row.get(c) if hasattr(row, "get") else None for c in columns]
        if all(_blank(v) for v in cells):
            continue
        values = []
        for column, v in zip(columns, cells):
            hi = 255.0 if column != "threshold" else max_threshold
            if _blank(v):
                raise BackgroundError(f"Target row {i}, column {column} has no number; type a number from 0 to {hi:g}.")
            try:
                number = float(str(v).strip()) if isinstance(v, str) else float(v)
            except (TypeError, ValueError):
                number = float("nan")
            bad = (not math.isfinite(number) or number < 0 or number > hi or (column == "threshold" and number == 0))
            if bad:
                what = "greater than 0 and at most" if column == "threshold" else "from 0 to"
                raise BackgroundError(f"Target row {i}, column {column} is {v!r}; type a number {what} {hi:g}.")
            if integers and column != "threshold" and not number.is_integer():
                raise BackgroundError(f"Target row {i}, column {column} is {v!r}; type a whole number from 0 to 255.")
            values.append(int(number) if integers and column != "threshold" else number)
        out.append((tuple(values[:3]), values[3]))
    if not out:
        raise BackgroundError("The table of target colours is empty; add at least one row (R, G, B, threshold).")
    if len(out) > MAX_TARGETS:
        raise BackgroundError(f"The table has {len(out)} target colours; at most {MAX_TARGETS} are allowed.")
    return tuple(out)


def _blank(v) -> bool:
    if v is None:
        return True
    if isinstance(v, str):
        return not v.strip()
    try:
        return bool(np.isnan(v))
    except TypeError:
        return False


# ----------------------------------------------------------------------------- distances


def _redmean(pixels: np.ndarray, rgb: tuple) -> np.ndarray:
    """The chapter's formula on int64 pixels (H x W x 3) and a colour of three ints."""
    r2, g2, b2 = rgb
    red = pixels[:, :, 0]
    rmean = (red + r2) // 2  # non-negative: floor division truncates, as C's integer division
    r = red - r2
    g = pixels[:, :, 1] - g2
    b = pixels[:, :, 2] - b2
    return (((512 + rmean) * r * r) >> 8) + 4 * g * g + (((767 - rmean) * b * b) >> 8)


def color_distance(img, rgb) -> np.ndarray:
    """The chapter's low-cost colour distance (compuphase's redmean) of every pixel to one colour.

    Computed as the chapter computes it, value for value: pixels as int64
    (no uint8 wrap-around), ``rmean = (R1 + R2) // 2`` truncated to an
    integer, ``r = R1 - R2`` (and ``g``, ``b`` likewise), and
    ``(((512 + rmean) * r * r) >> 8) + 4 * g * g + (((767 - rmean) * b * b) >> 8)``,
    **without a square root**. It is 0 for the same colour and 584,970 from
    black to white; a distance of 40 on the square-rooted scale is 1600 here.
    A pixel is plant for a target when this distance is strictly below the
    target's threshold (:func:`plant_mask`).

    Args:
        img: uint8 H x W x 3 RGB.
        rgb: the target colour, three whole numbers 0 to 255 (``70`` or ``70.0``; not ``70.5``).

    Returns:
        int64 H x W.

    Raises:
        BackgroundError: for a bad image or colour (named, with the value received).

    Example:
        >>> img = np.array([[[10, 20, 30], [0, 0, 0], [255, 255, 255]]], np.uint8)
        >>> d = color_distance(img, (0, 0, 0))
        >>> d.dtype, d.tolist()
        (dtype('int64'), [[4479, 0, 584970]])
    """
    arr = checks.image(img, "img", channels=(3,), error=BackgroundError)
    target = checks.rgb(rgb, "rgb", error=BackgroundError, integers=True)
    return _redmean(arr.astype(np.int64), target)


def _to_luv(arr: np.ndarray) -> np.ndarray:
    import cv2

    # float input in [0, 1] gives L* in 0..100 and u*, v* in their true units (uint8 input would be rescaled)
    return cv2.cvtColor(arr.astype(np.float32) * np.float32(1 / 255), cv2.COLOR_RGB2Luv)


def luv_distance(img, rgb, *, lightness_weight: float = 1.0) -> np.ndarray:
    """CIE 1976 ΔE*uv of every pixel to one colour, in CIELUV (OpenCV's cvtColor, D65 white).

    Args:
        img: uint8 H x W x 3 RGB (sRGB).
        rgb: the target colour, three numbers 0 to 255.
        lightness_weight: 0 to 1; how much differences in lightness L* count
            (1: plain ΔE*uv; 0: only the colour, u* and v*, so shadows are forgiven).

    Returns:
        float32 H x W (0 for the same colour; about 1 is a just-noticeable difference).

    Example:
        >>> img = np.array([[[255, 255, 255]]], np.uint8)
        >>> round(float(luv_distance(img, (0, 0, 0))[0, 0]))
        100
    """
    arr = checks.image(img, "img", channels=(3,), error=BackgroundError)
    target = np.array([[checks.rgb(rgb, "rgb", error=BackgroundError)]], np.float32)
    w = checks.number(lightness_weight, "lightness_weight", 0, 1, error=BackgroundError)
    d = _to_luv(arr) - _to_luv(target)[0, 0]
    d[:, :, 0] *= np.float32(w)
    return np.sqrt((d * d).sum(axis=2), dtype=np.float32)


def distance_margins(img, method: str, targets, *, lightness_weight: float = 1.0) -> list:
    """Each target's distance map minus its threshold: negative where a pixel counts as plant.

    What the ``"rgb"`` and ``"cieluv"`` methods threshold, to look at: on a
    scale centred on 0, the kept pixels of each target show on one side.
    For ``"rgb"`` the maps are in the chapter's units (:func:`color_distance`
    minus the threshold, no square root: the target colour itself is at minus
    the threshold); for ``"cieluv"`` in ΔE*uv.

    Args:
        img: uint8 H x W x 3 RGB.
        method: ``"rgb"`` (:func:`color_distance`) or ``"cieluv"`` (:func:`luv_distance`).
        targets: ``((r, g, b), threshold)`` pairs, as for :func:`plant_mask`.
        lightness_weight: for ``"cieluv"``, see :func:`luv_distance`.

    Returns:
        A list of float32 H x W maps, one per target.

    Raises:
        BackgroundError: for another method, a bad image or bad targets.

    Example:
        >>> img = np.array([[[71, 86, 38], [0, 0, 0]]], np.uint8)
        >>> distance_margins(img, "rgb", [((71, 86, 38), 1600)])[0].tolist()
        [[-1600.0, 42883.0]]
    """
    if method not in ("rgb", "cieluv"):
        raise BackgroundError(f"`method` must be 'rgb' or 'cieluv' (the methods with target colours); "
                              f"received {method!r}.")
    arr = checks.image(img, "img", channels=(3,), error=BackgroundError)
    limit = MAX_RGB_THRESHOLD if method == "rgb" else MAX_LUV_THRESHOLD
    checked = _check_targets(targets, "targets", limit, integers=method == "rgb")
    if method == "rgb":
        pixels = arr.astype(np.int64)
        return [(_redmean(pixels, rgb) - t).astype(np.float32) for rgb, t in checked]
    return [luv_distance(arr, rgb, lightness_weight=lightness_weight) - np.float32(t) for rgb, t in checked]


# ----------------------------------------------------------------------------- masks


def rect_from_fraction(rect_fraction, shape) -> tuple:
    """A rectangle given as fractions of the width and height -> ``(x, y, w, h)`` in pixels.

    Args:
        rect_fraction: ``(x, y, w, h)``, fractions 0 to 1.
        shape: the image's shape (H, W, ...).

    Returns:
        ``(x, y, w, h)`` ints, at least 1 x 1, inside the image.

    Example:
        >>> rect_from_fraction((0.1, 0.1, 0.8, 0.8), (100, 200))
        (20, 10, 160, 80)
    """
    x, y, w, h = _check_fraction_rect(rect_fraction)
    height, width = int(shape[0]), int(shape[1])
    px, py = min(int(round(x * width)), width - 1), min(int(round(y * height)), height - 1)
    pw = max(1, min(int(round(w * width)), width - px))
    ph = max(1, min(int(round(h * height)), height - py))
    return px, py, pw, ph


def _grabcut(arr: np.ndarray, rect: tuple, iterations: int) -> np.ndarray:
    import cv2

    height, width = arr.shape[:2]
    x, y, w, h = rect
    if x + w > width or y + h > height:
        raise BackgroundError(
            f"`rect` {rect!r} reaches outside the {width} x {height} image; keep x + w <= {width} and y + h <= {height}.")
    if w * h >= width * height:
        raise BackgroundError(
            f"`rect` {rect!r} covers the whole image; GrabCut learns the background from the pixels outside "
            "the rectangle, so leave a margin.")
    if w < 2 or h < 2 or width * height - w * h < 16:
        raise BackgroundError(
            f"`rect` {rect!r} leaves too few pixels inside or outside it for GrabCut's colour models; "
            "draw a larger rectangle with a margin around it.")
    gc_mask = np.zeros((height, width), np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    try:
        cv2.grabCut(np.ascontiguousarray(arr), gc_mask, tuple(int(v) for v in rect), bgd, fgd, int(iterations),
                    cv2.GC_INIT_WITH_RECT)
    except cv2.error as err:
        reason = str(err).strip().splitlines()[-1] if str(err).strip() else "OpenCV error"
        raise BackgroundError(f"GrabCut could not work with `rect` {rect!r} on this image ({reason}); "
                              "try a larger rectangle.") from None
    return (gc_mask == cv2.GC_FGD) | (gc_mask == cv2.GC_PR_FGD)


def plant_mask(img, method: str = "rgb", **params) -> np.ndarray:
    """Which pixels are plant: a bool mask by one of :data:`METHODS`.

    Args:
        img: uint8 H x W x 3 RGB.
        method: ``"rgb"``, ``"cieluv"``, ``"hsv"`` or ``"grabcut"``.
        **params: the method's parameters; every one has a default
            (:func:`default_params`, :func:`describe_defaults`):

            * ``"rgb"``: ``targets``, a list of ``((r, g, b), threshold)``
              (colours in whole numbers): a pixel is plant when its
              :func:`color_distance` to any target is strictly below that
              target's threshold, in the chapter's units (above 0, at most
              600,000). Default :data:`DEFAULT_TARGETS`, the chapter's four
              greens: (71, 86, 38), (65, 79, 19) and (95, 106, 56) below
              1600, (56, 63, 43) below 500.
            * ``"cieluv"``: ``targets`` likewise with thresholds in ΔE*uv
              (:func:`luv_distance`, 0 to 400; default :data:`DEFAULT_LUV_TARGETS`,
              the chapter's greens),
              and ``lightness_weight`` 0 to 1 (default 1).
            * ``"hsv"``: ``hue`` (low, high) in degrees 0 to 360 (low > high
              wraps through red), ``saturation`` and ``value`` (low, high) in
              percent 0 to 100, all inclusive. Default :data:`DEFAULT_HSV`.
            * ``"grabcut"``: ``rect`` (x, y, w, h) in pixels, or
              ``rect_fraction`` (x, y, w, h) as fractions of the width and
              height (used when ``rect`` is None; default
              :data:`DEFAULT_RECT_FRACTION`), and ``iterations`` 1 to 20
              (default 5). Definite and probable foreground are plant.
            * every method: ``median``, 0 or 1 (default: the raw mask) or an
              odd size from 3 to 99, a median blur of the mask (:func:`clean_mask`;
              the chapter uses :data:`CHAPTER_MEDIAN`, 9).

    Returns:
        bool H x W, True on plant.

    Raises:
        BackgroundError: for a bad image, method or parameter (named, with the value received).

    Example:
        >>> img = np.full((4, 4, 3), (110, 85, 60), np.uint8)  # brown soil ...
        >>> img[1:3, 1:3] = (70, 84, 40)  # ... and a leaf of the chapter's greens
        >>> [int(plant_mask(img, m).sum()) for m in ("rgb", "cieluv", "hsv")]
        [4, 4, 4]
    """
    import cv2

    arr = checks.image(img, "img", channels=(3,), error=BackgroundError)
    p = validate_params(method, **params)
    if method == "rgb":
        pixels = arr.astype(np.int64)  # the chapter's integers, once for every target
        mask = np.zeros(arr.shape[:2], bool)
        for rgb, threshold in p["targets"]:
            mask |= _redmean(pixels, rgb) < threshold  # strictly below, as the chapter
    elif method == "cieluv":
        luv = _to_luv(arr)
        w = np.float32(p["lightness_weight"])
        mask = np.zeros(arr.shape[:2], bool)
        for rgb, threshold in p["targets"]:
            d = luv - _to_luv(np.array([[rgb]], np.float32))[0, 0]
            d[:, :, 0] *= w
            mask |= (d * d).sum(axis=2) < np.float32(threshold) ** 2
    elif method == "hsv":
        # float input in [0, 1] gives hue in degrees 0..360 and S, V in 0..1, without 8-bit rounding
        hsv = cv2.cvtColor(arr.astype(np.float32) * np.float32(1 / 255), cv2.COLOR_RGB2HSV)
        h, s, v = hsv[:, :, 0], hsv[:, :, 1] * 100, hsv[:, :, 2] * 100
        (h_lo, h_hi), (s_lo, s_hi), (v_lo, v_hi) = p["hue"], p["saturation"], p["value"]
        in_hue = (h >= h_lo) & (h <= h_hi) if h_lo <= h_hi else (h >= h_lo) | (h <= h_hi)
        mask = in_hue & (s >= s_lo) & (s <= s_hi) & (v >= v_lo) & (v <= v_hi)
    else:
        rect = p["rect"] if p["rect"] is not None else rect_from_fraction(p["rect_fraction"], arr.shape)
        mask = _grabcut(arr, rect, p["iterations"])
    return clean_mask(mask, p["median"])


def clean_mask(mask, median: int = 9) -> np.ndarray:
    """A median blur of a mask: specks smaller than about half the window vanish, pinholes fill.

    Args:
        mask: H x W, bool (or numbers: nonzero is True).
        median: 0 or 1 for none (a copy comes back), or an odd window size
            from 3 to 99 (``cv2.medianBlur`` needs a centre pixel). The
            chapter uses 9 (:data:`CHAPTER_MEDIAN`); a window wider than a
            thin leaf erases it, so on small images (128 px) 5 is safer.

    Returns:
        bool H x W.

    Example:
        >>> m = np.zeros((5, 5), bool); m[2, 2] = True
        >>> clean_mask(m, 3).any(), clean_mask(m, 1).any()
        (np.False_, np.True_)
    """
    import cv2

    k = _check_median(median)
    m = np.asarray(mask)
    if m.ndim != 2 or m.shape[0] < 1 or m.shape[1] < 1:
        raise BackgroundError(f"`mask` must be an H x W array; received shape {m.shape}.")
    m = m.astype(bool)
    if k <= 1:
        return m.copy()
    return cv2.medianBlur(m.astype(np.uint8) * np.uint8(255), k) > 127


def remove_background(img, mask, median: int = 9) -> np.ndarray:
    """Keep the pixels under a mask (median-blurred first), black elsewhere.

    Args:
        img: uint8 H x W x 3 RGB.
        mask: H x W, bool (or numbers: nonzero keeps the pixel), from :func:`plant_mask`.
        median: the mask's median blur (:func:`clean_mask`): 0 or 1 for none,
            or an odd size from 3 to 99.

    Returns:
        uint8 H x W x 3: the image's pixels where the (blurred) mask is True, 0 elsewhere.

    Example:
        >>> img = np.full((3, 3, 3), 200, np.uint8); mask = np.eye(3, dtype=bool)
        >>> remove_background(img, mask, median=0)[:, :, 0].tolist()
        [[200, 0, 0], [0, 200, 0], [0, 0, 200]]
    """
    arr = checks.image(img, "img", channels=(3,), error=BackgroundError)
    k = _check_median(median)
    m = np.asarray(mask)
    if m.shape != arr.shape[:2]:
        raise BackgroundError(f"`mask` must be H x W = {arr.shape[0]} x {arr.shape[1]}, as the image; "
                              f"received shape {m.shape}.")
    keep = clean_mask(m, k)
    out = np.zeros_like(arr)
    out[keep] = arr[keep]
    return out


def overlay(img, mask, color=(255, 0, 200), alpha: float = 0.45) -> np.ndarray:
    """The image with the mask painted over it, semi-transparent: to see what a mask keeps.

    Args:
        img: uint8 H x W x 3 RGB.
        mask: H x W bool (or numbers: nonzero is True).
        color: the paint, RGB 0 to 255 (magenta by default: no leaf or soil is that colour).
        alpha: 0 to 1, the paint's opacity.

    Returns:
        uint8 H x W x 3.

    Example:
        >>> overlay(np.zeros((1, 2, 3), np.uint8), np.array([[True, False]]), (200, 0, 0), 0.5)[0].tolist()
        [[100, 0, 0], [0, 0, 0]]
    """
    arr = checks.image(img, "img", channels=(3,), error=BackgroundError)
    rgb = np.array(checks.rgb(color, "color", error=BackgroundError), np.float32)
    a = np.float32(checks.number(alpha, "alpha", 0, 1, error=BackgroundError))
    m = np.asarray(mask)
    if m.shape != arr.shape[:2]:
        raise BackgroundError(f"`mask` must be H x W = {arr.shape[0]} x {arr.shape[1]}; received shape {m.shape}.")
    m = m.astype(bool)
    out = arr.copy()
    out[m] = np.clip(arr[m].astype(np.float32) * (1 - a) + rgb * a, 0, 255).round().astype(np.uint8)
    return out


def iou(mask, truth) -> float:
    """Intersection over union of two masks of the same shape (1.0 when both are empty).

    Example:
        >>> iou(np.array([True, True, False]), np.array([True, False, False]))
        0.5
    """
    a, b = np.asarray(mask).astype(bool), np.asarray(truth).astype(bool)
    if a.shape != b.shape:
        raise BackgroundError(f"`truth` must have the mask's shape {a.shape}; received shape {b.shape}.")
    union = int(np.count_nonzero(a | b))
    return 1.0 if union == 0 else int(np.count_nonzero(a & b)) / union


def kept_fraction(mask) -> float:
    """The fraction of pixels a mask keeps, 0 to 1.

    Example:
        >>> kept_fraction(np.array([[True, False], [False, False]]))
        0.25
    """
    m = np.asarray(mask).astype(bool)
    return float(np.count_nonzero(m)) / max(m.size, 1)


# ----------------------------------------------------------------------------- folders


@dataclass
class FolderSummary:
    """What :func:`remove_background_folder` did.

    Attributes:
        dest: the folder written into.
        total: images asked for.
        written: the PNGs written, as paths relative to ``dest`` (POSIX style).
        skipped: ``(path, reason)`` for every input not written (unreadable, outside the folder).
        stopped: True when the run ended early, on a stop request or at ``max_bytes`` (what was written stays).
        seconds: how long it took.
        bytes_written: the size of the PNGs written.
        full: True when the run stopped because the next PNG would pass ``max_bytes``.
    """

    dest: Path
    total: int
    written: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    stopped: bool = False
    seconds: float = 0.0
    bytes_written: int = 0
    full: bool = False

    def describe(self) -> str:
        """One sentence for people, e.g. "Wrote 118 of 120 images in 3.2 s; 2 skipped."

        Example:
            >>> FolderSummary(Path("out"), 3, ["a.png"], [("b.jpg", "not an image")], True, 0.5).describe()
            'Stopped early: wrote 1 of 3 images in 0.5 s; 1 skipped; the images written so far are kept.'
        """
        text = f"wrote {len(self.written)} of {self.total} images in {self.seconds:.1f} s"
        if self.skipped:
            text += f"; {len(self.skipped)} skipped"
        if self.full:
            return f"Stopped when the space allowed was full: {text}; the images written so far are kept."
        if self.stopped:
            return f"Stopped early: {text}; the images written so far are kept."
        return text[0].upper() + text[1:] + "."

    def to_json(self) -> dict:
        """The summary as plain JSON (what a job returns, what a workspace keeps); :meth:`from_json` reads it.

        Example:
            >>> FolderSummary(Path("out"), 2, ["a.png"], [("b.jpg", "not an image")]).to_json()["skipped"]
            [['b.jpg', 'not an image']]
        """
        return {"dest": str(self.dest), "total": int(self.total), "written": [str(w) for w in self.written],
                "skipped": [[str(name), str(reason)] for name, reason in self.skipped], "stopped": bool(self.stopped),
                "seconds": float(self.seconds), "bytes_written": int(self.bytes_written), "full": bool(self.full)}

    @classmethod
    def from_json(cls, obj) -> "FolderSummary":
        """The summary :meth:`to_json` wrote.

        Raises:
            BackgroundError: when ``obj`` is not such a summary (a damaged note).

        Example:
            >>> s = FolderSummary(Path("out"), 3, ["a.png"], [("b.jpg", "not an image")], True, 0.5)
            >>> FolderSummary.from_json(s.to_json()) == s
            True
        """
        try:
            return cls(dest=Path(obj["dest"]), total=int(obj["total"]), written=[str(w) for w in obj["written"]],
                       skipped=[(str(name), str(reason)) for name, reason in obj["skipped"]],
                       stopped=bool(obj["stopped"]), seconds=float(obj["seconds"]),
                       bytes_written=int(obj.get("bytes_written", 0)), full=bool(obj.get("full", False)))
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise BackgroundError(f"The folder run's summary is damaged ({type(err).__name__}: {err}).") from None


def _is_within(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def _check_dest(src_root, dest_root) -> tuple:
    src = Path(os.path.abspath(src_root))
    if not src.is_dir():
        raise BackgroundError(f"`src_root` {str(src_root)!r} is not a folder.")
    src = src.resolve()
    dest = Path(os.path.abspath(dest_root)).resolve()
    if dest == src:
        raise BackgroundError(f"`dest_root` {str(dest_root)!r} is the source folder; results go into a new "
                              "folder, never over the originals.")
    if _is_within(dest, src):
        raise BackgroundError(f"`dest_root` {str(dest_root)!r} is inside the source folder {str(src_root)!r}; "
                              "choose a new folder elsewhere, so that the originals are never touched.")
    if _is_within(src, dest):
        raise BackgroundError(f"The source folder {str(src_root)!r} is inside `dest_root` {str(dest_root)!r}; "
                              "choose a new folder elsewhere.")
    if dest.exists():
        if not dest.is_dir():
            raise BackgroundError(f"`dest_root` {str(dest_root)!r} exists and is not a folder.")
        if any(dest.iterdir()):
            raise BackgroundError(f"`dest_root` {str(dest_root)!r} is not empty; results are written only into "
                                  "a new (or empty) folder.")
    return src, dest


def _relative(name) -> PurePosixPath | None:
    """A listed file as a safe relative path, or None when it would leave the folder."""
    text = str(name).replace("\\", "/")
    rel = PurePosixPath(text)
    if not text or rel.is_absolute() or ".." in rel.parts or rel.name in ("", ".", ".."):
        return None
    return rel


def _output_names(rels) -> list:
    """Each input's PNG name: ``x.png`` keeps its name; ``x.jpg`` becomes ``x.png``, or ``x_jpg.png`` when taken."""
    names, taken = [None] * len(rels), set()
    order = sorted(range(len(rels)), key=lambda i: rels[i] is None or rels[i].suffix.lower() != ".png")
    for i in order:  # PNG inputs first: they keep their own names
        rel = rels[i]
        if rel is None:
            continue
        candidates = [rel.with_suffix(".png"), rel.with_name(f"{rel.stem}_{rel.suffix.lstrip('.') or 'noext'}.png")]
        candidates += (rel.with_name(f"{rel.stem}_{n}.png") for n in range(2, len(rels) + 3))
        target = next(c for c in candidates if str(c).lower() not in taken)
        taken.add(str(target).lower())
        names[i] = target
    return names


def remove_background_folder(files, src_root, dest_root, *, method: str = "rgb", params=None, median: int = 9,
                             on_progress=None, should_stop=None, max_pixels: int | None = None,
                             max_bytes: int | None = None) -> FolderSummary:
    """Remove the background of every image of a folder, written as PNGs into a new folder.

    Class subfolders are kept: ``src_root/<class>/x.jpg`` becomes
    ``dest_root/<class>/x.png`` (``x_jpg.png`` when ``x.png`` is taken). The
    inputs are only read, never written. Images are read with
    :func:`cvcore.imagefile.load_image` (sizes capped before decoding); one
    that cannot be read is skipped and reported with the reason, it does not
    stop the run.

    Args:
        files: image paths relative to ``src_root`` (e.g. ``["rose/1.jpg", ...]``).
        src_root: the data set's folder.
        dest_root: a folder that does not exist yet or is empty, neither the
            source folder, nor inside it, nor holding it.
        method: one of :data:`METHODS`.
        params: the method's parameters (see :func:`plant_mask`), checked before anything is written.
            For GrabCut over images of different sizes, give ``rect_fraction`` rather than ``rect``.
        median: the mask's median blur (see :func:`clean_mask`); it is applied
            once, after any ``median`` in ``params``.
        on_progress: called as ``on_progress(done, total)`` after every image (written or skipped).
        should_stop: called before every image; when it returns True the run
            ends there, keeping what was written (``summary.stopped``).
        max_pixels: the largest image accepted (default: load_image's, 40 megapixels).
        max_bytes: the most bytes of PNGs to write (a session's disk quota); the run stops,
            keeping what it wrote, before a PNG would pass it (``summary.full``). None: no limit.

    Returns:
        A :class:`FolderSummary`.

    Raises:
        BackgroundError: for bad parameters or an unsafe destination, before anything is written.

    Example:
        >>> import tempfile
        >>> from cvcore.samples import write_seedlings_folder
        >>> src = write_seedlings_folder(tempfile.mkdtemp() + "/s", per_class=1, size=48)
        >>> files = sorted(str(p.relative_to(src)) for p in src.rglob("*.png"))
        >>> summary = remove_background_folder(files, src, tempfile.mkdtemp() + "/out")
        >>> len(summary.written), summary.skipped, summary.stopped
        (3, [], False)
    """
    import cv2

    from .imagefile import DEFAULT_MAX_PIXELS, load_image

    start = time.perf_counter()
    if isinstance(files, (str, bytes, os.PathLike)) or not hasattr(files, "__iter__"):
        raise BackgroundError(f"`files` must be a list of image paths relative to `src_root`; received {files!r}.")
    files = list(files)
    if params is not None and not isinstance(params, dict):
        raise BackgroundError(f"`params` must be a dict of the method's parameters; received {params!r}.")
    p = validate_params(method, **(params or {}))
    k = _check_median(median)
    limit = (DEFAULT_MAX_PIXELS if max_pixels is None
             else checks.integer(max_pixels, "max_pixels", 1, 1 << 40, error=BackgroundError, whole_floats=True))
    room = (None if max_bytes is None
            else checks.integer(max_bytes, "max_bytes", 0, 1 << 62, error=BackgroundError, whole_floats=True))
    checks.callback(on_progress, "on_progress", error=BackgroundError)
    checks.callback(should_stop, "should_stop", error=BackgroundError)
    src, dest = _check_dest(src_root, dest_root)
    dest.mkdir(parents=True, exist_ok=True)

    summary = FolderSummary(dest=dest, total=len(files))
    names = _output_names([_relative(name) for name in files])
    for done, name in enumerate(files):
        if should_stop is not None and should_stop():
            summary.stopped = True
            break
        rel = _relative(name)
        reason = None
        if rel is None:
            reason = "the path leaves the source folder"
        else:
            source = src / Path(*rel.parts)
            if not _is_within(source.resolve(), src):
                reason = "the path leaves the source folder (a link)"
        if reason is None:
            try:
                img = load_image(source, max_pixels=limit)
                mask = plant_mask(img, method, **p)
                out = remove_background(img, mask, median=k)
            except CvcoreError as err:  # InvalidImageError, or a GrabCut rectangle this image cannot take
                reason = str(err)
        if reason is None:
            target = names[done]
            ok, png = cv2.imencode(".png", cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
            if not ok:  # pragma: no cover - OpenCV encodes any uint8 RGB image
                reason = "the PNG could not be encoded"
            elif room is not None and summary.bytes_written + png.nbytes > room:
                summary.stopped = summary.full = True
                break
            else:
                path = dest / Path(*target.parts)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(png.tobytes())
                summary.written.append(str(target))
                summary.bytes_written += int(png.nbytes)
        if reason is not None:
            summary.skipped.append((str(name), reason))
        if on_progress is not None:
            on_progress(done + 1, len(files))
    summary.seconds = time.perf_counter() - start
    return summary


def remove_background_folder_job(ctx, *, files, root, dest, method: str = "rgb", params=None, median: int = 9,
                                 max_bytes: int | None = None) -> dict:
    """:func:`remove_background_folder` as a job (:mod:`cvcore.jobs`): the Background page's folder run.

    A worker calls it as ``fn(ctx, **config)``: it reports ``{"done", "total"}`` after every image and ends
    early, keeping what it wrote, when ``ctx.should_stop()`` turns true. The PNGs land in ``dest`` on disk;
    what it returns is the summary as JSON (:meth:`FolderSummary.from_json` reads it back).

    Args:
        ctx: the job's :class:`cvcore.jobs.JobContext`.
        files: image paths relative to ``root``.
        root: the data set's folder (a path, as a string).
        dest: the new folder to write into (see :func:`remove_background_folder`).
        method: one of :data:`METHODS`.
        params: the method's parameters, JSON-able (lists where :func:`plant_mask` shows tuples).
        median: the mask's median blur.
        max_bytes: the most bytes of PNGs to write (the workspace's room); None: no limit.

    Returns:
        :meth:`FolderSummary.to_json` of the run's summary.

    Raises:
        BackgroundError: for bad parameters or an unsafe destination, before anything is written.

    Example:
        >>> import tempfile
        >>> from cvcore.jobs import run_inline
        >>> from cvcore.samples import write_seedlings_folder
        >>> src = write_seedlings_folder(tempfile.mkdtemp() + "/s", per_class=1, size=48)
        >>> files = sorted(str(p.relative_to(src)) for p in src.rglob("*.png"))
        >>> out = run_inline("cvcore.background:remove_background_folder_job",
        ...                  {"files": files, "root": str(src), "dest": tempfile.mkdtemp() + "/out"})
        >>> len(out["written"]), out["skipped"], out["stopped"]
        (3, [], False)
    """
    summary = remove_background_folder(
        files, root, dest, method=method, params=params, median=median, max_bytes=max_bytes,
        on_progress=lambda done, total: ctx.report({"done": done, "total": total}), should_stop=ctx.should_stop)
    return summary.to_json()


def zip_folder(folder) -> bytes:
    """Every file under a folder, zipped (paths relative to the folder), for a download.

    PNGs are stored, not recompressed (they are compressed already).

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp()); (d / "a").mkdir(); _ = (d / "a" / "x.png").write_bytes(b"1")
        >>> zipfile.ZipFile(io.BytesIO(zip_folder(d))).namelist()
        ['a/x.png']
    """
    root = Path(folder)
    if not root.is_dir():
        raise BackgroundError(f"`folder` {str(folder)!r} is not a folder.")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink():
                zf.write(path, path.relative_to(root).as_posix())
    return buf.getvalue()
