"""Pixel conversions shared by the pages: grayscale, resizing to a working size.

Pure functions over numpy arrays with explicit dtypes: uint8 in, uint8 out.
"""
from __future__ import annotations

import numpy as np

from .errors import InvalidImageError

__all__ = ["to_grayscale", "fit_within", "enlarge", "canvas_to_digit", "prepare_input"]

# ITU-R BT.601 luma, the weights PIL's convert("L") and OpenCV use.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def to_grayscale(image) -> np.ndarray:
    """RGB (or already gray) uint8 -> uint8 H x W luma.

    Args:
        image: H x W or H x W x 3 array, uint8.

    Returns:
        uint8 H x W.

    Example:
        >>> to_grayscale(np.full((2, 2, 3), 255, np.uint8))[0, 0]
        np.uint8(255)
    """
    arr = np.asarray(image)
    if arr.ndim == 2:
        return arr.astype(np.uint8, copy=False)
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise InvalidImageError(f"Expected H x W or H x W x 3 pixels; received shape {arr.shape}.")
    if arr.shape[2] == 1:
        return arr[:, :, 0].astype(np.uint8, copy=False)
    gray = arr[:, :, :3].astype(np.float32) @ _LUMA
    return np.clip(gray.round(), 0, 255).astype(np.uint8)


def fit_within(image, max_side: int) -> np.ndarray:
    """Shrink an image so that its longer side is at most ``max_side`` (never enlarge).

    Area interpolation keeps thin strokes and avoids aliasing when shrinking.

    Args:
        image: H x W or H x W x C, uint8 or float32 (feature maps for display).
        max_side: the largest side allowed, >= 1.

    Returns:
        The image itself when it already fits, else a resized copy of the same dtype.

    Example:
        >>> fit_within(np.zeros((1000, 500, 3), np.uint8), 200).shape
        (200, 100, 3)
    """
    import cv2

    if int(max_side) < 1:
        raise InvalidImageError(f"`max_side` must be at least 1; received {max_side!r}.")
    arr = np.asarray(image)
    h, w = arr.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return arr
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    out = cv2.resize(arr, size, interpolation=cv2.INTER_AREA)
    return out.reshape(size[1], size[0], *arr.shape[2:])


def enlarge(image, side: int) -> np.ndarray:
    """Enlarge a small picture by a whole factor, each pixel a square block, so that it is seen sharp.

    A browser smooths a 28 x 28 digit (or a 3 x 3 kernel) that it stretches to
    250 px; blocks of identical pixels keep every pixel visible as one.

    Args:
        image: H x W or H x W x C, any dtype.
        side: the longer side wanted, >= 1; the factor is ``side // max(H, W)``,
            at least 1 (a picture that is already as large is returned as it is).

    Returns:
        The same dtype, (H * k) x (W * k) [x C].

    Raises:
        InvalidImageError: when ``side`` is below 1 or the picture is empty or not 2-D / 3-D.

    Example:
        >>> enlarge(np.eye(2, dtype=np.uint8), 6).shape
        (6, 6)
    """
    if int(side) < 1:
        raise InvalidImageError(f"`side` must be at least 1; received {side!r}.")
    arr = np.asarray(image)
    if arr.ndim not in (2, 3) or arr.size == 0:
        raise InvalidImageError(f"Expected an H x W or H x W x C picture; received shape {arr.shape}.")
    k = max(1, int(side) // max(arr.shape[:2]))
    return arr if k == 1 else np.repeat(np.repeat(arr, k, axis=0), k, axis=1)


def canvas_to_digit(rgba, size: int = 28):
    """A drawing (H x W x 4 RGBA canvas pixels, white on black) as an MNIST-style digit.

    Args:
        rgba: the canvas' pixels, uint8.
        size: the side of the result (28 for MNIST).

    Returns:
        uint8 ``size`` x ``size`` luma, area-averaged; None when nothing is drawn yet.

    Example:
        >>> canvas_to_digit(np.zeros((280, 280, 4), np.uint8)) is None
        True
    """
    arr = np.asarray(rgba)
    if arr.ndim != 3 or arr.shape[2] < 3:
        raise InvalidImageError(f"Expected H x W x 4 canvas pixels; received shape {arr.shape}.")
    if not np.any(arr[:, :, :3]):
        return None
    return fit_within(to_grayscale(arr[:, :, :3]), size)


def prepare_input(image, *, colour: bool, rescale: bool = True) -> np.ndarray:
    """Pixels as a convolution's input: float32 H x W x C, C = 3 (colour) or 1.

    Args:
        image: uint8 H x W (gray) or H x W x 3 (RGB).
        colour: keep 3 channels (a gray image is repeated) or reduce to 1 (luma).
        rescale: divide by 255 so pixels lie in [0, 1], as ``rescale=1/255``
            (the chapters' ``Rescaling`` layer) does before training.

    Returns:
        float32 H x W x C.

    Example:
        >>> prepare_input(np.full((2, 2), 255, np.uint8), colour=True).shape
        (2, 2, 3)
    """
    arr = np.asarray(image)
    if colour:
        rgb = arr if arr.ndim == 3 else np.repeat(arr[:, :, None], 3, axis=2)
        out = rgb[:, :, :3].astype(np.float32)
    else:
        out = to_grayscale(arr)[:, :, None].astype(np.float32)
    return out / 255.0 if rescale else out
