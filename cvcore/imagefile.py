"""Untrusted image files: read safely into uint8 RGB, or refuse in words a person understands.

Every image that enters the app from outside (an upload, a file in a zip, a
server folder) goes through :func:`load_image` or :func:`probe_image`: bytes
and pixels are capped before anything is decoded, so a decompression bomb is
refused cheaply, and every failure becomes :class:`InvalidImageError`.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InvalidImageError

__all__ = ["load_image", "probe_image", "ImageInfo", "DEFAULT_MAX_PIXELS", "DEFAULT_MAX_BYTES"]

# 40 megapixels: a large phone photo passes, a decompression bomb does not.
DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MAX_BYTES = 50 * 1024 * 1024



def _read_source(source, max_bytes: int) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise InvalidImageError(f"There is no file at {str(path)!r}.")
        if path.stat().st_size > max_bytes:
            raise InvalidImageError(
                f"{path.name!r} is {path.stat().st_size / 1e6:.1f} MB, over the limit of {max_bytes / 1e6:.0f} MB."
            )
        data = path.read_bytes()
    elif hasattr(source, "read"):
        if hasattr(source, "seek"):
            source.seek(0)
        data = source.read(max_bytes + 1)
    else:
        raise InvalidImageError(
            f"`source` must be a path, bytes or a file object; received {type(source).__name__}."
        )
    if len(data) > max_bytes:
        raise InvalidImageError(f"The file is over the limit of {max_bytes / 1e6:.0f} MB.")
    if not data:
        raise InvalidImageError("The file is empty.")
    return data


def _to_rgb_array(img) -> np.ndarray:
    """Any common PIL mode -> uint8 H x W x 3, transparency composited over white."""
    from PIL import Image

    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if arr.max(initial=0) > 255 or mode.startswith("I;16") else 255.0
        arr = np.clip(arr * (255.0 / top), 0, 255).round().astype(np.uint8)
        return np.repeat(arr[:, :, None], 3, axis=2)
    if mode == "F":
        raise InvalidImageError("Floating-point images (mode 'F') are not supported; save it as an 8-bit PNG or JPEG.")
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    try:
        return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except (ValueError, OSError) as err:
        raise InvalidImageError(f"Images of mode {mode!r} cannot be converted to RGB ({err}).") from None


def _decode(data: bytes, max_pixels: int, *, draft: bool = False):
    """Open and fully decode ``data`` with PIL, refusing more than ``max_pixels`` before decoding.

    Returns ``(image, (width, height))``, the size as stored in the file.

    ``draft`` lets JPEG decode at a reduced scale (a check that the file decodes, 4-8x cheaper).
    Thread-safe: no global state is changed per call.
    """
    from PIL import Image, ImageFile, UnidentifiedImageError

    ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file is an error, not grey pixels
    try:
        img = Image.open(io.BytesIO(data))
        width, height = img.size
        if width * height > max_pixels:
            raise InvalidImageError(
                f"The image is {width} x {height} = {width * height:,} pixels, over the limit "
                f"of {max_pixels:,}; resize it and try again."
            )
        if draft and img.format == "JPEG":
            img.draft(img.mode, (max(1, width // 8), max(1, height // 8)))
        img.load()
        return img, (width, height)
    except InvalidImageError:
        raise
    except (UnidentifiedImageError, SyntaxError):
        raise InvalidImageError("This file is not an image that can be read; use PNG or JPEG.") from None
    except Image.DecompressionBombError:
        raise InvalidImageError(
            f"The image claims more pixels than the limit of {max_pixels:,}; "
            "it may be a decompression bomb and was not opened."
        ) from None
    except (OSError, ValueError, EOFError) as err:
        raise InvalidImageError(f"The image is truncated or damaged and could not be decoded ({err}).") from None


def load_image(source, max_pixels: int = DEFAULT_MAX_PIXELS, *, max_bytes: int = DEFAULT_MAX_BYTES) -> np.ndarray:
    """Read an untrusted image safely into uint8 RGB.

    The size is checked from the header before any pixel is decoded, so a
    decompression bomb (a small file that claims billions of pixels) is
    refused cheaply. Grayscale, palette, RGBA (composited over white), CMYK
    and 16-bit images are converted; EXIF rotation is applied; an animation
    gives its first frame.

    Args:
        source: a path, ``bytes``, or a binary file object (a Streamlit upload).
        max_pixels: the most pixels (width x height) accepted.
        max_bytes: the most bytes read.

    Returns:
        uint8 H x W x 3 RGB array.

    Raises:
        InvalidImageError: for a file that is empty, too large, not an image,
            truncated or damaged, or of an unsupported kind; the message says
            which, in words a person understands.

    Example:
        >>> import io; from PIL import Image
        >>> buf = io.BytesIO(); Image.new("L", (4, 3)).save(buf, "PNG")
        >>> load_image(buf.getvalue()).shape
        (3, 4, 3)
    """
    from PIL import ImageOps

    if int(max_pixels) < 1:
        raise InvalidImageError(f"`max_pixels` must be positive; received {max_pixels!r}.")
    img, _ = _decode(_read_source(source, int(max_bytes)), int(max_pixels))
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block is no reason to refuse the pixels
        pass
    return np.ascontiguousarray(_to_rgb_array(img))


# PIL modes that _to_rgb_array converts, and what the conversion does, in words.
_CONVERSIONS = {
    "L": "grayscale, copied to R, G and B",
    "LA": "grayscale with transparency, composited over white",
    "P": "palette colours expanded to RGB",
    "PA": "palette with transparency, composited over white",
    "RGBA": "transparency composited over white",
    "CMYK": "CMYK converted to RGB",
    "YCbCr": "YCbCr converted to RGB",
    "1": "black and white, expanded to RGB",
    "I;16": "16-bit, scaled to 8 bits", "I;16L": "16-bit, scaled to 8 bits", "I;16B": "16-bit, scaled to 8 bits",
    "I;16N": "16-bit, scaled to 8 bits", "I": "32-bit integer, scaled to 8 bits",
}


@dataclass(frozen=True)
class ImageInfo:
    """What :func:`probe_image` learns of a readable image file."""

    width: int
    height: int
    mode: str  # PIL's mode before conversion, e.g. "RGB", "L", "CMYK", "I;16"
    format: str  # "PNG", "JPEG", ...

    @property
    def conversion(self) -> str | None:
        """How the image is converted to 8-bit RGB, in words; None when it already is."""
        return None if self.mode == "RGB" else _CONVERSIONS.get(self.mode, f"mode {self.mode} converted to RGB")


def probe_image(source, max_pixels: int = DEFAULT_MAX_PIXELS, *, max_bytes: int = DEFAULT_MAX_BYTES) -> ImageInfo:
    """Check that an untrusted file is an image :func:`load_image` will read, without keeping its pixels.

    The same caps and the same messages as :func:`load_image`; JPEGs are
    decoded at a reduced scale, which still finds truncated files. Safe to
    call from several threads at once (folder scans do).

    Args:
        source: a path, ``bytes``, or a binary file object.
        max_pixels: the most pixels (width x height) accepted.
        max_bytes: the most bytes read.

    Returns:
        :class:`ImageInfo` with the size, PIL mode and format.

    Raises:
        InvalidImageError: as :func:`load_image` does.

    Example:
        >>> import io; from PIL import Image
        >>> buf = io.BytesIO(); Image.new("CMYK", (5, 2)).save(buf, "JPEG")
        >>> info = probe_image(buf.getvalue())
        >>> (info.width, info.height, info.mode, info.conversion)
        (5, 2, 'CMYK', 'CMYK converted to RGB')
    """
    if int(max_pixels) < 1:
        raise InvalidImageError(f"`max_pixels` must be positive; received {max_pixels!r}.")
    img, (width, height) = _decode(_read_source(source, int(max_bytes)), int(max_pixels), draft=True)
    if img.mode == "F":
        raise InvalidImageError("Floating-point images (mode 'F') are not supported; save it as an 8-bit PNG or JPEG.")
    return ImageInfo(width=width, height=height, mode=img.mode, format=img.format or "?")
