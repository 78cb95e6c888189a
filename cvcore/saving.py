"""Saving trained models and loading uploaded ones safely.

A ``.keras`` file is a zip archive of the model's configuration and weights.
An uploaded one is untrusted: it is size-checked, its archive listing is
checked before Keras opens it, and Keras loads it in safe mode, which
refuses a file whose layers would run Python code (a ``Lambda`` layer's
bytecode) instead of running it.
"""
from __future__ import annotations

import io
import os
import tempfile
import zipfile

from . import device
from .errors import InvalidModelError

__all__ = ["model_to_bytes", "load_model_bytes", "MAX_MODEL_BYTES"]

MAX_MODEL_BYTES = 600 * 1024 * 1024  # VGG16 with a dense head is ~ 530 MB
_MAX_UNCOMPRESSED = 4 * MAX_MODEL_BYTES


def model_to_bytes(model) -> bytes:
    """A model as the bytes of a ``.keras`` file, for a download button.

    Example:
        >>> keras = device.keras()
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        >>> data = model_to_bytes(model)
        >>> data[:2]
        b'PK'
    """
    with tempfile.TemporaryDirectory(prefix="cvcore-save-") as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        with open(path, "rb") as fh:
            return fh.read()


def load_model_bytes(data: bytes, *, max_bytes: int = MAX_MODEL_BYTES):
    """Load an uploaded ``.keras`` file in Keras' safe mode.

    Args:
        data: the file's bytes.
        max_bytes: the largest file accepted.

    Returns:
        The ``keras.Model``.

    Raises:
        InvalidModelError: when the file is empty, too large, not a ``.keras``
            archive, holds Python code (refused by safe mode), or cannot be
            built; the message says which.

    Example:
        >>> keras = device.keras()
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        >>> load_model_bytes(model_to_bytes(model)).count_params()
        10
        >>> load_model_bytes(b"not a zip")
        Traceback (most recent call last):
        ...
        cvcore.errors.InvalidModelError: This is not a .keras model file (it is not a zip archive). Save the model with model.save('name.keras') and upload that.
    """
    keras = device.keras()
    from . import layers  # noqa: F401  registers cvcore's own layers, so models that hold them load in safe mode

    if not data:
        raise InvalidModelError("The model file is empty.")
    if len(data) > max_bytes:
        raise InvalidModelError(f"The model file is {len(data) / 1e6:.0f} MB, over the limit of {max_bytes / 1e6:.0f} MB.")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            total = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        raise InvalidModelError("This is not a .keras model file (it is not a zip archive). "
                                "Save the model with model.save('name.keras') and upload that.") from None
    if "config.json" not in names:
        raise InvalidModelError("This archive has no config.json, so it is not a .keras model file.")
    if total > _MAX_UNCOMPRESSED:
        raise InvalidModelError(f"The model file unpacks to {total / 1e9:.1f} GB, which is refused.")
    with tempfile.TemporaryDirectory(prefix="cvcore-load-") as tmp:
        path = os.path.join(tmp, "upload.keras")
        with open(path, "wb") as fh:
            fh.write(data)
        try:
            return keras.saving.load_model(path, safe_mode=True, compile=True)
        except ValueError as err:
            if "safe_mode" in str(err) or "lambda" in str(err).lower():
                raise InvalidModelError(
                    "This model file contains Python code (a Lambda layer) and was refused: loading it would "
                    "run that code. Rebuild the model without Lambda layers, or load it yourself if you trust it."
                ) from None
            raise InvalidModelError(f"The model could not be loaded: {err}") from None
        except Exception as err:  # a damaged archive or unknown layers: say so, never crash the page
            raise InvalidModelError(f"The model could not be loaded ({type(err).__name__}: {err}).") from None
