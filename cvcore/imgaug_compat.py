"""Import imgaug 0.4.0 on NumPy 2.

imgaug 0.4.0 (2020, the last release) predates NumPy 2, and two of the names
it reads were removed from NumPy:

* ``np.sctypes``, read once, at import, by ``imgaug/imgaug.py`` (its
  ``NP_FLOAT_TYPES``, ``NP_INT_TYPES`` and ``NP_UINT_TYPES``). Without it,
  ``import imgaug`` fails with an ``AttributeError``.
* ``np.complex`` (an alias of Python's ``complex``, removed in NumPy 1.24),
  read at run time by ``imgaug.parameters`` in two places only: the ``Power``
  parameter (``param ** exponent``) and ``FrequencyNoise`` (the frequency-noise
  blend masks and ``Clouds``/``Fog``). None of the augmenters
  :mod:`cvcore.augment` uses reaches either: the tests run every step of its
  recipes with these code paths traced and see no call.

Every other ``np.`` name imgaug uses exists in NumPy 2 (``np.bool``, used by
``SomeOf`` and polygons, was brought back as an alias of ``np.bool_`` in
NumPy 2.0).

:func:`import_imgaug` sets ``np.sctypes`` only for the duration of the import
and removes it afterwards, so the rest of the process sees NumPy unchanged;
``np.complex`` is given to ``imgaug.parameters`` alone, through a stand-in for
its ``np`` global, so that those two rare paths still work if someone builds
such an augmenter, without adding the alias to NumPy itself.

imgaug is installed without its dependencies by ``scripts/setup.sh``: it
declares ``opencv-python``, the desktop build that would shadow the headless
``cv2`` a server needs. Its real imports (numpy, scipy, scikit-image,
imageio, six, cv2) are in ``requirements.txt``.
"""
from __future__ import annotations

import importlib.util
import threading
import types

import numpy as np

from .errors import ImgaugUnavailableError

__all__ = ["ImgaugUnavailableError", "import_imgaug", "available"]  # the error lives in cvcore.errors

_lock = threading.Lock()


def _sctypes() -> dict:
    """What ``np.sctypes`` held in NumPy 1.x (on a 64-bit platform)."""
    return {
        "int": [np.int8, np.int16, np.int32, np.int64],
        "uint": [np.uint8, np.uint16, np.uint32, np.uint64],
        "float": [np.float16, np.float32, np.float64, np.longdouble],
        "complex": [np.complex64, np.complex128, np.clongdouble],
        "others": [bool, object, bytes, str, np.void],
    }


class _NumpyForImgaug(types.ModuleType):
    """NumPy, plus the ``complex`` alias that ``imgaug.parameters`` reads at run time.

    Installed as that module's ``np`` global only: every other attribute is
    NumPy's own, and NumPy itself is left unchanged.
    """

    complex = complex  # np.complex was Python's complex (removed from NumPy in 1.24)

    def __getattr__(self, name):
        return getattr(np, name)


def available() -> bool:
    """Whether imgaug is installed (without importing it).

    Example:
        >>> isinstance(available(), bool)
        True
    """
    return importlib.util.find_spec("imgaug") is not None


def import_imgaug():
    """Import imgaug on NumPy 1 or 2 and return ``imgaug.augmenters`` (``iaa``).

    Safe to call from several threads; the import happens once.

    Returns:
        The ``imgaug.augmenters`` module.

    Raises:
        ImgaugUnavailableError: imgaug is not installed, or fails to import
            (the message says why and how to install it).

    Example:
        >>> iaa = import_imgaug()
        >>> iaa.Fliplr(1.0)(images=np.arange(6, dtype=np.uint8).reshape(1, 1, 6, 1))[0, 0, :, 0]
        array([5, 4, 3, 2, 1, 0], dtype=uint8)
    """
    with _lock:
        if not available():
            raise ImgaugUnavailableError(
                "imgaug is not installed: install it with scripts/setup.sh (it installs imgaug 0.4.0 "
                "without its opencv-python dependency, keeping the headless OpenCV).")
        added = not hasattr(np, "sctypes")  # NumPy 2 (on NumPy 1, imgaug imports as it is)
        if added:
            np.sctypes = _sctypes()
        try:
            import imgaug.augmenters as iaa
            import imgaug.parameters as iap
        except Exception as err:  # a missing dependency (scipy, imageio, six...), or a newer break
            raise ImgaugUnavailableError(
                f"imgaug could not be imported ({type(err).__name__}: {err}); reinstall it with "
                "scripts/setup.sh.") from err
        finally:
            if added:
                del np.sctypes
        if not hasattr(np, "complex") and not isinstance(iap.np, _NumpyForImgaug):
            iap.np = _NumpyForImgaug("numpy")
        return iaa
