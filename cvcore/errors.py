"""Errors raised at cvcore's boundary.

Every error is a subclass of :class:`ValueError`, so callers that only care
that *some* input was bad can catch ``ValueError``; pages catch
:class:`CvcoreError` and show ``str(err)`` to the user. Messages name the bad
argument and the value received, and say what to do instead.
"""
from __future__ import annotations

__all__ = [
    "CvcoreError",
    "ShapeError",
    "KernelError",
    "InvalidImageError",
    "UnsafeArchiveError",
    "DatasetUnavailableError",
    "SpecError",
    "WeightsUnavailableError",
    "InvalidModelError",
    "AugmentError",
    "ImgaugUnavailableError",
    "BackgroundError",
]


class CvcoreError(ValueError):
    """Base class of every error cvcore raises for bad input."""


class ShapeError(CvcoreError):
    """An array, kernel or window has a shape that cannot work."""


class KernelError(CvcoreError):
    """A kernel (filter) is malformed: a cell is not a number, a size is off."""


class InvalidImageError(CvcoreError):
    """A file or buffer is not an image cvcore can read safely."""


class UnsafeArchiveError(CvcoreError):
    """An uploaded archive would escape its folder or exceed a cap."""


class DatasetUnavailableError(CvcoreError):
    """A data set cannot be loaded here (no download, no local copy)."""


class SpecError(CvcoreError):
    """A model specification cannot be built; the message names the layer."""


class WeightsUnavailableError(CvcoreError):
    """Pretrained weights cannot be had; the message says how to provide them."""


class InvalidModelError(CvcoreError):
    """A model file cannot be loaded safely (not a .keras file, too large, or it holds code)."""


class AugmentError(CvcoreError):
    """An augmentation recipe, batch or seed is malformed; the message names the value."""


class ImgaugUnavailableError(CvcoreError):
    """imgaug is not installed, or cannot be imported here."""


class BackgroundError(CvcoreError):
    """A background-removal argument cannot work; the message names it and the value received."""
