"""2-D convolution and pooling in numpy, equal to Keras' layers.

Everything here is a pure function over numpy arrays: no TensorFlow import,
no hidden state, so the Filters page answers a kernel edit in milliseconds.
The sliding sums run in OpenCV's ``filter2D`` (SIMD, exact cross-correlation).
The conventions are Keras' (channels last, cross-correlation without kernel
flip, TensorFlow's split of "same" padding: the odd pixel goes after), and
the tests check every function against ``keras.layers`` on random cases.

Shapes:
    image    H x W (grayscale) or H x W x C
    kernels  kh x kw, kh x kw x C, or kh x kw x C x F (Keras' layout)
    output   H' x W' x F, or H' x W' for one 2-D filter on a 2-D image
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .errors import KernelError, ShapeError

__all__ = [
    "conv2d",
    "conv_output_shape",
    "pool2d",
    "pool_output_shape",
    "same_padding",
    "pad_input",
    "kernel_positions",
    "channel_contributions",
    "explain_pixel",
    "explain_output_shape",
    "PixelExplanation",
    "relu",
    "conv2d_param_count",
    "keras_conv2d_code",
    "keras_conv2d_script",
]

PADDINGS = ("valid", "same")
POOL_MODES = ("max", "avg")


# --------------------------------------------------------------------------
# argument checks shared by every function


def _pair(value, name: str) -> tuple[int, int]:
    """An int or a pair of ints -> (a, b), each >= 1."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        pair = (int(value), int(value))
    elif isinstance(value, (tuple, list, np.ndarray)) and len(value) == 2:
        try:
            pair = tuple(int(v) for v in value)
        except (TypeError, ValueError):
            raise ShapeError(f"`{name}` must hold two integers; received {value!r}.") from None
        if any(int(v) != v for v in value):
            raise ShapeError(f"`{name}` must hold two integers; received {value!r}.")
    else:
        raise ShapeError(f"`{name}` must be an integer or a pair of integers; received {value!r}.")
    if min(pair) < 1:
        raise ShapeError(f"`{name}` must be at least 1 in each direction; received {value!r}.")
    return pair  # type: ignore[return-value]


def _check_padding(padding) -> str:
    if not isinstance(padding, str) or padding.lower() not in PADDINGS:
        raise ShapeError(f"`padding` must be 'valid' or 'same'; received {padding!r}.")
    return padding.lower()


def _as_image(image, name: str = "image") -> tuple[np.ndarray, bool]:
    """-> (float32 H x W x C array, whether the input was 2-D)."""
    arr = np.asarray(image)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise ShapeError(f"`{name}` must be a numeric array; received dtype {arr.dtype}.")
    if arr.ndim not in (2, 3):
        raise ShapeError(
            f"`{name}` must be H x W or H x W x C; received an array of shape {arr.shape}."
        )
    if arr.size == 0:
        raise ShapeError(f"`{name}` is empty; received shape {arr.shape}.")
    was_2d = arr.ndim == 2
    if was_2d:
        arr = arr[:, :, None]
    return arr.astype(np.float32, copy=False), was_2d


# --------------------------------------------------------------------------
# shapes and padding


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's split of "same" padding along one axis.

    Args:
        size: input length along the axis.
        kernel: window length along the axis.
        stride: step along the axis.

    Returns:
        ``(before, after)``: zeros added before and after. When the total is
        odd, the extra zero goes after, as in TensorFlow and Keras.

    Example:
        >>> same_padding(5, 3, 2)
        (1, 1)
        >>> same_padding(6, 3, 2)
        (0, 1)
    """
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def conv_output_shape(input_hw, kernel_size, strides=(1, 1), padding="valid") -> tuple[int, int]:
    """Spatial output shape of a convolution, equal to Keras' ``Conv2D``.

    Args:
        input_hw: ``(H, W)`` of the input (a longer shape's first two are used).
        kernel_size: an int or ``(kh, kw)``.
        strides: an int or ``(sy, sx)``.
        padding: ``"valid"`` (no zeros: ``floor((H - kh) / sy) + 1``) or
            ``"same"`` (zeros so that ``ceil(H / sy)``).

    Returns:
        ``(h, w)``.

    Raises:
        ShapeError: when the kernel does not fit a "valid" input, or an
            argument is malformed.

    Example:
        >>> conv_output_shape((28, 28), 3)
        (26, 26)
        >>> conv_output_shape((28, 28), (3, 3), strides=2, padding="same")
        (14, 14)
    """
    if not isinstance(input_hw, (tuple, list, np.ndarray)) or len(input_hw) < 2:
        raise ShapeError(f"`input_hw` must be (H, W); received {input_hw!r}.")
    h, w = _pair(tuple(input_hw[:2]), "input_hw")
    kh, kw = _pair(kernel_size, "kernel_size")
    sy, sx = _pair(strides, "strides")
    padding = _check_padding(padding)
    if padding == "same":
        return math.ceil(h / sy), math.ceil(w / sx)
    if kh > h or kw > w:
        raise ShapeError(
            f"A {kh}x{kw} kernel does not fit a {h}x{w} input with padding 'valid'; "
            "use a smaller kernel or padding 'same'."
        )
    return (h - kh) // sy + 1, (w - kw) // sx + 1


def pool_output_shape(input_hw, pool_size=(2, 2), strides=None, padding="valid") -> tuple[int, int]:
    """Spatial output shape of pooling, equal to Keras' ``MaxPooling2D``.

    Args:
        input_hw: ``(H, W)`` of the feature map.
        pool_size: an int or ``(ph, pw)``.
        strides: an int, a pair, or None for ``pool_size`` (Keras' default).
        padding: ``"valid"`` or ``"same"``.

    Returns:
        ``(h, w)``.

    Example:
        >>> pool_output_shape((26, 26))
        (13, 13)
    """
    pool = _pair(pool_size, "pool_size")
    strides = pool if strides is None else strides
    try:
        return conv_output_shape(input_hw, pool, strides, padding)
    except ShapeError as err:
        raise ShapeError(str(err).replace("kernel", "pooling window")) from None


def pad_input(image, kernel_size, strides=(1, 1), padding="valid", value: float = 0.0):
    """The input as the kernel sees it: zero-padded for "same".

    Args:
        image: H x W or H x W x C.
        kernel_size: an int or ``(kh, kw)``.
        strides: an int or ``(sy, sx)``.
        padding: ``"valid"`` (returned unchanged) or ``"same"``.
        value: the fill value (0 for convolution, -inf for max pooling).

    Returns:
        ``(padded, ((top, bottom), (left, right)))``; padded is float32 with
        the same number of dimensions as ``image``.

    Example:
        >>> padded, pads = pad_input(np.ones((5, 5)), 3, padding="same")
        >>> padded.shape, pads
        ((7, 7), ((1, 1), (1, 1)))
    """
    x, was_2d = _as_image(image)
    kh, kw = _pair(kernel_size, "kernel_size")
    sy, sx = _pair(strides, "strides")
    padding = _check_padding(padding)
    if padding == "same":
        pads = (same_padding(x.shape[0], kh, sy), same_padding(x.shape[1], kw, sx))
    else:
        pads = ((0, 0), (0, 0))
    if pads != ((0, 0), (0, 0)):
        x = np.pad(x, (pads[0], pads[1], (0, 0)), constant_values=value)
    return (x[:, :, 0] if was_2d else x), pads


def kernel_positions(input_hw, kernel_size, strides=(1, 1), padding="valid"):
    """Where the kernel lands: top-left corners of its windows on the padded input.

    Args:
        input_hw: ``(H, W)`` of the unpadded input.
        kernel_size, strides, padding: as in :func:`conv2d`.

    Returns:
        ``(rows, cols)``: 1-D int arrays; output pixel ``(i, j)`` is computed
        from the window whose top-left corner is ``(rows[i], cols[j])`` in
        the padded input.

    Example:
        >>> kernel_positions((5, 5), 3, strides=2)
        (array([0, 2]), array([0, 2]))
    """
    oh, ow = conv_output_shape(input_hw, kernel_size, strides, padding)
    sy, sx = _pair(strides, "strides")
    return np.arange(oh) * sy, np.arange(ow) * sx


# --------------------------------------------------------------------------
# convolution


def _as_kernels(kernels, channels: int) -> tuple[np.ndarray, bool]:
    """-> (float32 kh x kw x C x F, whether it was one 2-D filter)."""
    k = np.asarray(kernels)
    if k.dtype == object or k.dtype.kind not in "biuf":
        raise KernelError(f"`kernels` must be numeric; received dtype {k.dtype}.")
    if k.size == 0:
        raise KernelError(f"`kernels` is empty; received shape {k.shape}.")
    if not np.all(np.isfinite(k)):
        raise KernelError("`kernels` holds a value that is not finite (NaN or infinity).")
    k = k.astype(np.float32, copy=False)
    if k.ndim == 2:
        # One 2-D filter: on a C-channel image the same weights apply to each
        # channel and the channel responses are summed (a kh x kw x C filter).
        return np.repeat(k[:, :, None, None], channels, axis=2), True
    if k.ndim == 3:
        k = k[:, :, :, None]
    elif k.ndim != 4:
        raise KernelError(
            "`kernels` must be kh x kw, kh x kw x C or kh x kw x C x F; "
            f"received shape {k.shape}."
        )
    if k.shape[2] != channels:
        raise KernelError(
            f"`kernels` spans {k.shape[2]} channel(s) but the image has {channels}; "
            f"received kernel shape {k.shape}."
        )
    return k, False


def _as_bias(bias, filters: int) -> np.ndarray:
    b = np.asarray(bias, dtype=np.float64)
    if b.ndim == 0:
        b = np.full(filters, float(b))
    if b.shape != (filters,):
        raise KernelError(
            f"`bias` must be a scalar or {filters} value(s), one per filter; "
            f"received shape {b.shape}."
        )
    if not np.all(np.isfinite(b)):
        raise KernelError(f"`bias` must be finite; received {bias!r}.")
    return b.astype(np.float32)


def _windows(padded: np.ndarray, kh: int, kw: int, sy: int, sx: int, oh: int, ow: int):
    """Yield ``(i, j, slab)``: the input under kernel cell (i, j) for every output pixel."""
    for i in range(kh):
        for j in range(kw):
            yield i, j, padded[i : i + sy * (oh - 1) + 1 : sy, j : j + sx * (ow - 1) + 1 : sx]


def _conv_args(image, kernels, bias, strides, padding):
    """Validate a convolution's arguments once, for every function that takes them.

    Returns ``(x, image_2d, k, kernel_2d, b, (sy, sx), (oh, ow))`` with x float32
    H x W x C, k float32 kh x kw x C x F and b float32 F.
    """
    x, image_2d = _as_image(image)
    k, kernel_2d = _as_kernels(kernels, x.shape[2])
    b = _as_bias(bias, k.shape[3])
    strides = _pair(strides, "strides")
    out_hw = conv_output_shape(x.shape, k.shape[:2], strides, padding)
    return x, image_2d, k, kernel_2d, b, strides, out_hw


def conv2d(image, kernels, bias=0.0, strides=(1, 1), padding="valid") -> np.ndarray:
    """Slide one or more filters over an image, as ``keras.layers.Conv2D`` does.

    Args:
        image: H x W or H x W x C, any real dtype (uint8 pixels are used as
            they are, 0..255: rescaling is the caller's choice).
        kernels: kh x kw (one filter; on a C-channel image its weights apply
            to every channel and the responses are summed), kh x kw x C (one
            filter across the channels), or kh x kw x C x F (Keras' layout).
        bias: a scalar or F values, added after the sum.
        strides: an int or ``(sy, sx)``.
        padding: ``"valid"`` or ``"same"`` (TensorFlow's split).

    Returns:
        float32 H' x W' x F, or H' x W' for one 2-D filter on a 2-D image.
        No activation is applied (see :func:`relu`).

    Raises:
        ShapeError, KernelError: for malformed arguments, naming the value.

    Example:
        >>> img = np.arange(16, dtype=np.float32).reshape(4, 4)
        >>> conv2d(img, np.ones((2, 2)), strides=2)
        array([[10., 18.],
               [42., 50.]], dtype=float32)
    """
    x, image_2d, k, kernel_2d, b, (sy, sx), (oh, ow) = _conv_args(image, kernels, bias, strides, padding)
    kh, kw, _, f = k.shape
    padded, _ = pad_input(x, (kh, kw), (sy, sx), padding)
    out = np.empty((oh, ow, f), dtype=np.float32)
    for fi in range(f):
        out[:, :, fi] = _correlate_sum(padded, k[:, :, :, fi], sy, sx, oh, ow) + b[fi]
    return out[:, :, 0] if (image_2d and kernel_2d) else out


def _correlate(plane: np.ndarray, kernel: np.ndarray, sy: int, sx: int, oh: int, ow: int) -> np.ndarray:
    """Valid cross-correlation of one 2-D plane with one 2-D kernel, then the stride.

    OpenCV's filter2D with the anchor at the kernel's top-left corner computes
    ``sum k[i, j] * src[y + i, x + j]``: exactly Keras' convolution (no flip),
    with SIMD. Positions the kernel would overrun are dropped by the slice.
    """
    import cv2

    full = cv2.filter2D(np.ascontiguousarray(plane), cv2.CV_32F, np.ascontiguousarray(kernel, dtype=np.float32),
                        anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)
    return full[: sy * (oh - 1) + 1 : sy, : sx * (ow - 1) + 1 : sx]


def _correlate_sum(padded: np.ndarray, kernel: np.ndarray, sy: int, sx: int, oh: int, ow: int) -> np.ndarray:
    """One filter (kh x kw x C) over a padded H x W x C input: the channel responses summed."""
    total = _correlate(padded[:, :, 0], kernel[:, :, 0], sy, sx, oh, ow).copy()
    for ci in range(1, padded.shape[2]):
        total += _correlate(padded[:, :, ci], kernel[:, :, ci], sy, sx, oh, ow)
    return total


def channel_contributions(image, kernel, strides=(1, 1), padding="valid") -> np.ndarray:
    """Each channel's share of one filter's response, before the sum.

    The per-channel view of a kh x kw x C filter: channel c of the result is
    channel c of the image convolved with slice c of the kernel. Summed over
    the last axis (plus the bias) it equals :func:`conv2d`.

    Args:
        image: H x W x C (or H x W, one channel).
        kernel: kh x kw (same weights on every channel) or kh x kw x C.
        strides, padding: as in :func:`conv2d`.

    Returns:
        float32 H' x W' x C.

    Example:
        >>> parts = channel_contributions(np.ones((4, 4, 3)), np.ones((3, 3, 3)))
        >>> parts.shape, float(parts.sum(axis=-1)[0, 0])
        ((2, 2, 3), 27.0)
    """
    x, _ = _as_image(image)
    k = np.asarray(kernel)
    if k.ndim == 4:
        if k.shape[3] != 1:
            raise KernelError(f"`kernel` must be one filter; received shape {k.shape}.")
        k = k[:, :, :, 0]
    k4, _ = _as_kernels(k, x.shape[2])
    kh, kw, c, _ = k4.shape
    sy, sx = _pair(strides, "strides")
    oh, ow = conv_output_shape(x.shape, (kh, kw), (sy, sx), padding)
    padded, _ = pad_input(x, (kh, kw), (sy, sx), padding)
    out = np.empty((oh, ow, c), dtype=np.float32)
    for ci in range(c):
        out[:, :, ci] = _correlate(padded[:, :, ci], k4[:, :, ci, 0], sy, sx, oh, ow)
    return out


@dataclass(frozen=True)
class PixelExplanation:
    """How one output pixel of a convolution is computed.

    Attributes:
        row, col: the output pixel.
        top, left: the window's top-left corner in the padded input.
        patch: kh x kw x C input values under the kernel.
        weights: kh x kw x C kernel values.
        products: ``patch * weights``, element-wise.
        total: the sum of the products.
        bias: the filter's bias.
        value: ``total + bias``, the output pixel (before any activation).
    """

    row: int
    col: int
    top: int
    left: int
    patch: np.ndarray
    weights: np.ndarray
    products: np.ndarray
    total: float
    bias: float
    value: float


def explain_pixel(image, kernels, bias=0.0, strides=(1, 1), padding="valid", *, row: int, col: int, filter_index: int = 0) -> PixelExplanation:
    """Step through one output pixel: the window, the products, their sum and the bias.

    Args:
        image, kernels, bias, strides, padding: as in :func:`conv2d`.
        row, col: the output pixel, within the output shape.
        filter_index: which filter (0-based) when there are several.

    Returns:
        A :class:`PixelExplanation` whose ``value`` equals the matching
        element of ``conv2d(image, kernels, bias, strides, padding)``.

    Example:
        >>> e = explain_pixel(np.ones((3, 3)), np.full((3, 3), 2.0), bias=1, row=0, col=0)
        >>> e.total, e.value
        (18.0, 19.0)
    """
    x, _, k, _, b, (sy, sx), (oh, ow) = _conv_args(image, kernels, bias, strides, padding)
    kh, kw, _, f = k.shape
    if not (0 <= row < oh and 0 <= col < ow):
        raise ShapeError(f"Output pixel ({row}, {col}) is outside the {oh}x{ow} output.")
    if not 0 <= filter_index < f:
        raise ShapeError(f"`filter_index` must be in 0..{f - 1}; received {filter_index}.")
    padded, _ = pad_input(x, (kh, kw), (sy, sx), padding)
    top, left = row * sy, col * sx
    patch = padded[top : top + kh, left : left + kw, :]
    weights = k[:, :, :, filter_index]
    products = patch * weights
    total = float(products.sum(dtype=np.float64))
    return PixelExplanation(
        row=row, col=col, top=top, left=left, patch=patch, weights=weights,
        products=products, total=total, bias=float(b[filter_index]),
        value=total + float(b[filter_index]),
    )


def explain_output_shape(input_hw, kernel_size, strides=(1, 1), padding="valid") -> dict:
    """The output-shape formula with the actual numbers filled in.

    Args:
        input_hw, kernel_size, strides, padding: as in :func:`conv_output_shape`.

    Returns:
        A dict with ``"shape"`` (h, w), ``"formula"`` (a LaTeX string with the
        general formula) and ``"rows"``/``"cols"`` (LaTeX with numbers).

    Example:
        >>> explain_output_shape((28, 28), 3)["rows"]
        "H' = \\\\left\\\\lfloor \\\\frac{28 - 3}{1} \\\\right\\\\rfloor + 1 = 26"
    """
    h, w = conv_output_shape(input_hw, kernel_size, strides, padding)
    H, W = int(input_hw[0]), int(input_hw[1])
    kh, kw = _pair(kernel_size, "kernel_size")
    sy, sx = _pair(strides, "strides")
    if _check_padding(padding) == "valid":
        formula = r"\left\lfloor \frac{n - k}{s} \right\rfloor + 1"
        rows = rf"H' = \left\lfloor \frac{{{H} - {kh}}}{{{sy}}} \right\rfloor + 1 = {h}"
        cols = rf"W' = \left\lfloor \frac{{{W} - {kw}}}{{{sx}}} \right\rfloor + 1 = {w}"
    else:
        formula = r"\left\lceil \frac{n}{s} \right\rceil"
        rows = rf"H' = \left\lceil \frac{{{H}}}{{{sy}}} \right\rceil = {h}"
        cols = rf"W' = \left\lceil \frac{{{W}}}{{{sx}}} \right\rceil = {w}"
    return {"shape": (h, w), "formula": formula, "rows": rows, "cols": cols}


def relu(x) -> np.ndarray:
    """``max(x, 0)`` element-wise, as float32.

    Example:
        >>> relu(np.array([-1.0, 2.0]))
        array([0., 2.], dtype=float32)
    """
    return np.maximum(np.asarray(x, dtype=np.float32), 0.0)


# --------------------------------------------------------------------------
# pooling


def pool2d(fmap, pool_size=(2, 2), strides=None, padding="valid", mode="max") -> np.ndarray:
    """Max or average pooling, equal to Keras' ``MaxPooling2D`` / ``AveragePooling2D``.

    Args:
        fmap: H x W or H x W x C feature map.
        pool_size: an int or ``(ph, pw)``.
        strides: an int, a pair, or None for ``pool_size`` (Keras' default).
        padding: ``"valid"`` or ``"same"``. With "same", padded cells never
            win a max and are left out of an average, as in TensorFlow.
        mode: ``"max"`` or ``"avg"``.

    Returns:
        float32 with the same number of dimensions as ``fmap``.

    Example:
        >>> pool2d(np.arange(16.0).reshape(4, 4))
        array([[ 5.,  7.],
               [13., 15.]], dtype=float32)
    """
    if mode not in POOL_MODES:
        raise ShapeError(f"`mode` must be 'max' or 'avg'; received {mode!r}.")
    x, was_2d = _as_image(fmap, "fmap")
    ph, pw = _pair(pool_size, "pool_size")
    sy, sx = _pair((ph, pw) if strides is None else strides, "strides")
    oh, ow = pool_output_shape(x.shape, (ph, pw), (sy, sx), padding)
    if mode == "max":
        padded, _ = pad_input(x, (ph, pw), (sy, sx), padding, value=-np.inf)
        out = np.full((oh, ow, x.shape[2]), -np.inf, dtype=np.float32)
        for _, _, slab in _windows(padded, ph, pw, sy, sx, oh, ow):
            np.maximum(out, slab, out=out)
    else:
        padded, _ = pad_input(x, (ph, pw), (sy, sx), padding)
        inside, _ = pad_input(np.ones(x.shape[:2], np.float32), (ph, pw), (sy, sx), padding)
        out = np.zeros((oh, ow, x.shape[2]), dtype=np.float32)
        count = np.zeros((oh, ow), dtype=np.float32)
        for (_, _, slab), (_, _, ones) in zip(
            _windows(padded, ph, pw, sy, sx, oh, ow), _windows(inside, ph, pw, sy, sx, oh, ow)
        ):
            out += slab
            count += ones
        out /= count[:, :, None]
    return out[:, :, 0] if was_2d else out


# --------------------------------------------------------------------------
# the Keras line


def conv2d_param_count(kernel_size, in_channels: int, filters: int, use_bias: bool = True) -> int:
    """Trainable parameters of a ``Conv2D`` layer: ``(kh*kw*C + bias) * F``.

    Example:
        >>> conv2d_param_count(3, 1, 6)
        60
    """
    kh, kw = _pair(kernel_size, "kernel_size")
    if int(in_channels) < 1 or int(filters) < 1:
        raise ShapeError(
            f"`in_channels` and `filters` must be at least 1; received {in_channels!r}, {filters!r}."
        )
    return (kh * kw * int(in_channels) + (1 if use_bias else 0)) * int(filters)


def keras_conv2d_code(filters: int, kernel_size, strides=(1, 1), padding="valid", *, activation=None, input_shape: Sequence[int] | None = None, pool: dict | None = None) -> str:
    """Keras 3 code for a Conv2D layer (and optional pooling) with these settings.

    Args:
        filters, kernel_size, strides, padding: the layer's settings.
        activation: None or an activation name such as ``"relu"``.
        input_shape: ``(H, W, C)`` to emit a ``keras.Input`` line too.
        pool: None or ``{"mode": "max"|"avg", "pool_size": ..., "strides": ...,
            "padding": ...}`` to emit a pooling layer after it.

    Returns:
        Python source, one statement per line.

    Example:
        >>> print(keras_conv2d_code(6, 3))
        layers.Conv2D(filters=6, kernel_size=(3, 3), strides=(1, 1), padding="valid")
    """
    kh, kw = _pair(kernel_size, "kernel_size")
    sy, sx = _pair(strides, "strides")
    padding = _check_padding(padding)
    args = f'filters={int(filters)}, kernel_size=({kh}, {kw}), strides=({sy}, {sx}), padding="{padding}"'
    if activation:
        args += f', activation="{activation}"'
    lines = []
    if input_shape is not None:
        lines.append(f"keras.Input(shape={tuple(int(v) for v in input_shape)})")
    lines.append(f"layers.Conv2D({args})")
    if pool:
        cls = "MaxPooling2D" if pool.get("mode", "max") == "max" else "AveragePooling2D"
        ps = _pair(pool.get("pool_size", 2), "pool_size")
        st = pool.get("strides")
        st_txt = "None" if st is None else str(_pair(st, "strides"))
        lines.append(
            f'layers.{cls}(pool_size={ps}, strides={st_txt}, padding="{_check_padding(pool.get("padding", "valid"))}")'
        )
    return "\n".join(lines)


def _array_literal(arr: np.ndarray) -> str:
    return np.array2string(np.asarray(arr, dtype=np.float64), separator=", ", precision=6,
                           suppress_small=True, max_line_width=88, threshold=100_000)


def keras_conv2d_script(kernels, bias, input_shape, strides=(1, 1), padding="valid", *, activation=None, pool: dict | None = None) -> str:
    """A runnable Keras 3 script that builds this convolution with these exact weights.

    Args:
        kernels: the filters in any layout :func:`conv2d` accepts.
        bias: a scalar or one value per filter.
        input_shape: ``(H, W, C)`` of the input image.
        strides, padding, activation, pool: as in :func:`keras_conv2d_code`.

    Returns:
        Python source that defines ``model`` (a ``keras.Sequential``) whose
        output on an image equals :func:`conv2d` (then ReLU and pooling, when
        given) on the same image.

    Example:
        >>> print(keras_conv2d_script(np.ones((1, 1)), 0.0, (4, 4, 1)).splitlines()[0])
        import numpy as np
    """
    h, w, c = (int(v) for v in input_shape)
    k, _ = _as_kernels(kernels, c)
    b = _as_bias(bias, k.shape[3])
    kh, kw, _, f = k.shape
    layer_lines = keras_conv2d_code(f, (kh, kw), strides, padding, activation=activation,
                                    input_shape=(h, w, c), pool=pool).splitlines()
    body = ",\n    ".join(layer_lines)
    return (
        "import numpy as np\n"
        "import keras\n"
        "from keras import layers\n\n"
        f"# Keras keeps Conv2D weights as (kh, kw, in_channels, filters) = {k.shape}\n"
        f"kernels = np.array({_array_literal(k)}, dtype=np.float32)\n"
        f"bias = np.array({_array_literal(b)}, dtype=np.float32)\n\n"
        f"model = keras.Sequential([\n    {body},\n])\n"
        "model.layers[0].set_weights([kernels, bias])\n"
        f"# feature_maps = model.predict(images)  # images: N x {h} x {w} x {c}, float32\n"
    )
