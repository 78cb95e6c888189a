"""Argument checks shared by cvcore's modules: one home for each rule.

Every check takes the value, the argument's name as the caller knows it and,
optionally, the error class to raise (a :class:`~cvcore.errors.CvcoreError`
subclass such as :class:`~cvcore.errors.BackgroundError`; ``CvcoreError`` by
default). It returns the value normalised (an ``int``, a ``float``, a tuple,
an array) or raises that error with a message that names the argument and the
value received, and says what would be accepted.

Booleans are never numbers here: ``True`` is refused where an integer is
asked for, since a checkbox wired to the wrong argument is a bug to report.

Example:
    >>> integer(3, "epochs", 1, 100)
    3
    >>> number(0.5, "rate", 0, 1, high_open=True)
    0.5
    >>> integer(0, "epochs", 1, 100)
    Traceback (most recent call last):
    ...
    cvcore.errors.CvcoreError: `epochs` must be an integer from 1 to 100; received 0.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .errors import CvcoreError

__all__ = [
    "is_integer",
    "is_number",
    "integer",
    "number",
    "choice",
    "flag",
    "callback",
    "rgb",
    "image",
    "image_batch",
]


def is_integer(value) -> bool:
    """True for ints and numpy integers, False for bools and everything else.

    Example:
        >>> is_integer(3), is_integer(np.int64(3)), is_integer(True), is_integer(3.0)
        (True, True, False, False)
    """
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def is_number(value) -> bool:
    """True for ints and floats (numpy's too) that are finite; False for bools, NaN and infinity.

    Example:
        >>> is_number(2.5), is_number(np.float32(1)), is_number(False), is_number(float("nan"))
        (True, True, False, False)
    """
    return (isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
            and math.isfinite(float(value)))


def _fmt(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _interval(low, high, low_open: bool = False, high_open: bool = False) -> str:
    """Words for an interval: 'from 0 to 1', 'greater than 0 and at most 1', 'at least 1', ..."""
    if low is not None and high is not None and not low_open and not high_open:
        return f"from {_fmt(low)} to {_fmt(high)}"
    parts = []
    if low is not None:
        parts.append(f"greater than {_fmt(low)}" if low_open else f"at least {_fmt(low)}")
    if high is not None:
        parts.append(f"below {_fmt(high)}" if high_open else f"at most {_fmt(high)}")
    return " and ".join(parts)


def integer(value, name: str, low: int | None = None, high: int | None = None, *,
            error: type[CvcoreError] = CvcoreError, whole_floats: bool = False) -> int:
    """An integer within ``[low, high]`` (either bound may be None).

    Args:
        value: the value received.
        name: the argument's name, for the message.
        low, high: inclusive bounds, or None for none.
        error: the error class to raise.
        whole_floats: accept floats with no fractional part (``3.0``), as a
            number typed in a table arrives.

    Returns:
        ``int(value)``.

    Raises:
        error: naming ``name`` and the value received.

    Example:
        >>> integer(3.0, "median", 0, 99, whole_floats=True)
        3
        >>> integer(0, "batch_size", 1)
        Traceback (most recent call last):
        ...
        cvcore.errors.CvcoreError: `batch_size` must be a positive integer; received 0.
    """
    ok = is_integer(value) or (whole_floats and is_number(value) and float(value).is_integer())
    if ok:
        v = int(value)
        ok = (low is None or v >= low) and (high is None or v <= high)
    if not ok:
        if low == 1 and high is None:
            what = "a positive integer"
        elif low is None and high is None:
            what = "an integer"
        else:
            what = f"an integer {_interval(low, high)}"
        raise error(f"`{name}` must be {what}; received {value!r}.")
    return v


def number(value, name: str, low: float | None = None, high: float | None = None, *,
           low_open: bool = False, high_open: bool = False, what: str = "",
           error: type[CvcoreError] = CvcoreError) -> float:
    """A finite number within bounds (closed unless ``low_open`` / ``high_open``).

    Args:
        value: the value received (int or float; not a bool, NaN or infinity).
        name: the argument's name, for the message.
        low, high: the bounds, or None for none.
        low_open, high_open: exclude the bound itself.
        what: what the value means, for people (``"degrees, either way"``); the message shows it
            in brackets after the name.
        error: the error class to raise.

    Returns:
        ``float(value)``.

    Raises:
        error: naming ``name`` and the value received.

    Example:
        >>> number(1, "learning_rate", 0, 10, low_open=True)
        1.0
        >>> number(0, "learning_rate", 0, 10, low_open=True)
        Traceback (most recent call last):
        ...
        cvcore.errors.CvcoreError: `learning_rate` must be a number greater than 0 and at most 10; received 0.
    """
    ok = is_number(value)
    if ok:
        v = float(value)
        ok = ((low is None or (v > low if low_open else v >= low))
              and (high is None or (v < high if high_open else v <= high)))
    if not ok:
        bounds = _interval(low, high, low_open, high_open)
        meaning = f" ({what})" if what else ""
        raise error(f"`{name}`{meaning} must be a number{' ' + bounds if bounds else ''}; received {value!r}.")
    return v


def choice(value, name: str, choices, *, error: type[CvcoreError] = CvcoreError):
    """One of a few allowed values (compared with ``==``, strings only match strings).

    Example:
        >>> choice("same", "padding", ("valid", "same"))
        'same'
        >>> choice("full", "padding", ("valid", "same"))
        Traceback (most recent call last):
        ...
        cvcore.errors.CvcoreError: `padding` must be one of 'valid', 'same'; received 'full'.
    """
    choices = tuple(choices)
    if not any(type(value) is type(c) and value == c for c in choices):
        raise error(f"`{name}` must be one of {', '.join(map(repr, choices))}; received {value!r}.")
    return value


def flag(value, name: str, *, error: type[CvcoreError] = CvcoreError) -> bool:
    """True or False (numpy's bools too); nothing else.

    Example:
        >>> flag(np.True_, "horizontal_flip")
        True
    """
    if not isinstance(value, (bool, np.bool_)):
        raise error(f"`{name}` must be true or false; received {value!r}.")
    return bool(value)


def callback(value, name: str, *, error: type[CvcoreError] = CvcoreError):
    """A function or None (progress reports, stop requests).

    Example:
        >>> callback(None, "on_progress") is None
        True
    """
    if value is not None and not callable(value):
        raise error(f"`{name}` must be a function or None; received {value!r}.")
    return value


def rgb(value, name: str = "rgb", *, error: type[CvcoreError] = CvcoreError,
        integers: bool = False) -> tuple:
    """A colour: three numbers (R, G, B) from 0 to 255.

    Args:
        value: a sequence of three numbers.
        name: the argument's name, for the message.
        error: the error class to raise.
        integers: require whole numbers (returned as ints), as integer
            formulas such as the chapter's colour distance need.

    Returns:
        A tuple of three floats (three ints with ``integers=True``).

    Example:
        >>> rgb((71, 86, 38), "target", integers=True)
        (71, 86, 38)
        >>> rgb((0, 300, 0), "color")
        Traceback (most recent call last):
        ...
        cvcore.errors.CvcoreError: `color[1]` must be a number from 0 to 255; received 300.
    """
    try:
        values = tuple(value)
    except TypeError:
        values = None
    if values is None or len(values) != 3:
        raise error(f"`{name}` must be three numbers (R, G, B) from 0 to 255; received {value!r}.")
    if integers:
        return tuple(integer(v, f"{name}[{i}]", 0, 255, error=error, whole_floats=True)
                     for i, v in enumerate(values))
    return tuple(number(v, f"{name}[{i}]", 0, 255, error=error) for i, v in enumerate(values))


def image(value, name: str = "image", *, channels=(1, 3), dtypes=(np.uint8,), allow_2d: bool = False,
          error: type[CvcoreError] = CvcoreError) -> np.ndarray:
    """One image as an array: H x W x C (or H x W with ``allow_2d``), of an allowed dtype and channel count.

    Args:
        value: an array-like.
        name: the argument's name, for the message.
        channels: the channel counts allowed.
        dtypes: the dtypes allowed (uint8 pixels 0 to 255 by default).
        allow_2d: also accept H x W (a grayscale image without its channel axis).
        error: the error class to raise.

    Returns:
        ``np.asarray(value)`` (no copy when it already is an array).

    Example:
        >>> image(np.zeros((4, 5, 3), np.uint8)).shape
        (4, 5, 3)
        >>> image(np.zeros((4, 5, 3), np.float64), "img")
        Traceback (most recent call last):
        ...
        cvcore.errors.CvcoreError: `img` must be uint8 pixels (0 to 255); received dtype float64.
    """
    arr = np.asarray(value)
    dtypes = tuple(np.dtype(d) for d in dtypes)
    if arr.dtype not in dtypes:
        wanted = ("uint8 pixels (0 to 255)" if dtypes == (np.dtype(np.uint8),)
                  else " or ".join(str(d) for d in dtypes))
        raise error(f"`{name}` must be {wanted}; received dtype {arr.dtype}.")
    ok_2d = allow_2d and arr.ndim == 2
    ok_3d = arr.ndim == 3 and arr.shape[2] in tuple(channels)
    if not (ok_2d or ok_3d) or min(arr.shape[:2], default=0) < 1:
        layout = " or ".join(("H x W x " + "/".join(map(str, channels)),) + (("H x W",) if allow_2d else ()))
        what = "RGB image" if tuple(channels) == (3,) else "image"
        raise error(f"`{name}` must be an {layout} {what}; received shape {arr.shape}.")
    return arr


def image_batch(value, name: str = "images", *, dtypes=(np.uint8, np.float32),
                error: type[CvcoreError] = CvcoreError) -> np.ndarray:
    """A batch of images: N x H x W x C, none of them empty, of an allowed dtype.

    Example:
        >>> image_batch(np.zeros((2, 8, 8, 3), np.uint8)).shape
        (2, 8, 8, 3)
        >>> image_batch(np.zeros((8, 8, 3), np.uint8))
        Traceback (most recent call last):
        ...
        cvcore.errors.CvcoreError: `images` must be a batch N x H x W x C (one image: pass images[None]); received shape (8, 8, 3).
    """
    arr = np.asarray(value)
    if arr.ndim != 4 or min(arr.shape) < 1:
        hint = " (one image: pass images[None])" if arr.ndim == 3 else ""
        raise error(f"`{name}` must be a batch N x H x W x C{hint}; received shape {arr.shape}.")
    dtypes = tuple(np.dtype(d) for d in dtypes)
    if arr.dtype not in dtypes:
        names = " or ".join("uint8 (0-255)" if d == np.uint8 else str(d) for d in dtypes)
        raise error(f"`{name}` must be {names}; received dtype {arr.dtype} (convert with {name}.astype('float32')).")
    return arr
