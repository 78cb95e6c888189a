"""Data sets and images: MNIST-style arrays, bundled photographs, safe image loading.

Data sets come as ``((x_train, y_train), (x_test, y_test), class_names)`` with
uint8 28 x 28 images, like ``keras.datasets``:

* ``"mnist"``: through ``keras.datasets.mnist`` and Keras' cache
  (``~/.keras/datasets``), which downloads once on a machine with internet,
  or from a local folder of the original IDX ``.gz`` files named by
  ``$CVCORE_MNIST_DIR``.
* ``"fashion_mnist"``: from a local folder of the IDX ``.gz`` files when there
  is one (``$CVCORE_FASHION_MNIST_DIR``, else Debian's
  ``/usr/share/datasets/fashion-mnist`` from the package
  ``dataset-fashion-mnist``), otherwise through ``keras.datasets``.
* ``"digits"``: scikit-learn's bundled 8 x 8 handwritten digits, upscaled
  to 28 x 28 the way MNIST digits sit in their box. Always available.

Image folders, one folder per class, come from :mod:`cvcore.folders`
(:func:`scan_image_folder`, :func:`make_split`, :class:`ImageDataset`) and
uploaded zips from :mod:`cvcore.archives` (:func:`extract_zip`); they are
re-exported here. Uploaded images are untrusted: :func:`load_image` (from
:mod:`cvcore.imagefile`) caps bytes and pixels before decoding and turns
every failure into :class:`InvalidImageError`.
"""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from . import device
from .errors import CvcoreError, DatasetUnavailableError
from .archives import extract_zip
from .folders import ImageDataset, find_dataset_roots, make_split, scan_image_folder
from .imagefile import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, load_image

__all__ = [
    "DATASETS",
    "DATASET_TITLES",
    "FALLBACK_DATASET",
    "load_dataset",
    "load_dataset_or_fallback",
    "load_image",
    "extract_zip",
    "scan_image_folder",
    "find_dataset_roots",
    "make_split",
    "ImageDataset",
    "read_idx",
    "PHOTOS",
    "load_photo",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_BYTES",
]

DATASETS = ("mnist", "fashion_mnist", "digits")
DATASET_TITLES = {"mnist": "MNIST digits", "fashion_mnist": "Fashion-MNIST", "digits": "scikit-learn digits"}
FALLBACK_DATASET = "digits"
DEBIAN_FASHION_DIR = "/usr/share/datasets/fashion-mnist"

FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
DIGIT_CLASSES = [str(d) for d in range(10)]

_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}



# --------------------------------------------------------------------------
# data sets


def read_idx(path) -> np.ndarray:
    """Read one IDX file (optionally gzipped), the format of MNIST and Fashion-MNIST.

    Args:
        path: a ``.gz`` or raw IDX file of unsigned bytes.

    Returns:
        uint8 array of the shape the header gives (N x 28 x 28 for images,
        N for labels).

    Raises:
        DatasetUnavailableError: when the file is missing, truncated, or not IDX.

    Example:
        >>> import tempfile  # an IDX file of three labels: magic (unsigned bytes, 1 axis), size, values
        >>> path = Path(tempfile.mkdtemp()) / "labels-idx1-ubyte"
        >>> _ = path.write_bytes(bytes([0, 0, 8, 1]) + (3).to_bytes(4, "big") + bytes([7, 2, 1]))
        >>> read_idx(path).tolist()
        [7, 2, 1]
        >>> read_idx("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz").shape  # doctest: +SKIP
        (10000,)
    """
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as err:
        raise DatasetUnavailableError(f"Cannot read IDX file {str(path)!r}: {err}.") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DatasetUnavailableError(f"{str(path)!r} is not an IDX file of unsigned bytes.")
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        raise DatasetUnavailableError(
            f"{str(path)!r} is truncated or damaged: {len(raw)} bytes, expected {expected}."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()


def _load_idx_folder(folder) -> tuple:
    arrays = {key: read_idx(Path(folder) / name) for key, name in _IDX_FILES.items()}
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def _idx_folder_complete(folder) -> bool:
    return bool(folder) and all((Path(folder) / name).is_file() for name in _IDX_FILES.values())


def _load_keras(name: str) -> tuple:
    """Through keras.datasets: Keras' cache, or a download."""
    keras = device.keras()

    loader = {"mnist": keras.datasets.mnist, "fashion_mnist": keras.datasets.fashion_mnist}[name]
    try:
        return loader.load_data()
    except Exception as err:  # Keras raises a bare Exception for a failed fetch
        reason = str(err).split(" -- ")[-1].strip() or type(err).__name__
        env = "CVCORE_MNIST_DIR" if name == "mnist" else "CVCORE_FASHION_MNIST_DIR"
        raise DatasetUnavailableError(
            f"{DATASET_TITLES[name]} could not be downloaded ({reason}). "
            "On a machine with internet Keras downloads it once into ~/.keras/datasets/. "
            f"Offline, set ${env} to a folder holding the four original IDX .gz files"
            + (" or install Debian's package dataset-fashion-mnist." if name == "fashion_mnist" else ".")
        ) from None


def _load_digits() -> tuple:
    """scikit-learn's 8x8 digits, drawn 20x20 in a 28x28 box as MNIST digits are."""
    import cv2
    from sklearn.datasets import load_digits

    bunch = load_digits()
    small = (bunch.images * (255.0 / 16.0)).astype(np.float32)  # 0..16 -> 0..255
    big = np.stack([cv2.resize(im, (20, 20), interpolation=cv2.INTER_CUBIC) for im in small])
    x = np.zeros((len(big), 28, 28), dtype=np.uint8)
    x[:, 4:24, 4:24] = np.clip(big, 0, 255).round().astype(np.uint8)
    y = bunch.target.astype(np.uint8)
    # A fixed, stratified split: the last 20% of each class is the test set.
    test = np.zeros(len(y), dtype=bool)
    for label in range(10):
        idx = np.flatnonzero(y == label)
        test[idx[int(len(idx) * 0.8):]] = True
    return (x[~test], y[~test]), (x[test], y[test])


def load_dataset(name: str, *, local_dir=None):
    """Load a 28 x 28 grayscale data set.

    Args:
        name: ``"mnist"``, ``"fashion_mnist"`` or ``"digits"``.
        local_dir: optional folder of the four original IDX ``.gz`` files
            (MNIST or Fashion-MNIST); read instead of Keras' cache when complete.

    Returns:
        ``((x_train, y_train), (x_test, y_test), class_names)``: images uint8
        N x 28 x 28 (0..255, white on black), labels uint8 N, class names a
        list of 10 strings.

    Raises:
        DatasetUnavailableError: when MNIST or Fashion-MNIST is neither on
            disk nor downloadable; the message says why and what to do.
        CvcoreError: for an unknown name.

    Example:
        >>> (x, y), (xt, yt), names = load_dataset("digits")
        >>> x.shape[1:], x.dtype, names[3]
        ((28, 28), dtype('uint8'), '3')
    """
    if name not in DATASETS:
        raise CvcoreError(f"Unknown data set {name!r}; choose one of {', '.join(DATASETS)}.")
    if name == "digits":
        return (*_load_digits(), list(DIGIT_CLASSES))
    env = os.environ.get("CVCORE_MNIST_DIR" if name == "mnist" else "CVCORE_FASHION_MNIST_DIR")
    candidates = [local_dir, env] + ([DEBIAN_FASHION_DIR] if name == "fashion_mnist" else [])
    folder = next((c for c in candidates if _idx_folder_complete(c)), None)
    train, test = _load_idx_folder(folder) if folder else _load_keras(name)
    names = FASHION_CLASSES if name == "fashion_mnist" else DIGIT_CLASSES
    return train, test, list(names)


def load_dataset_or_fallback(name: str, *, local_dir=None):
    """Like :func:`load_dataset`, but never fails: offline, it falls back to the digits.

    Args:
        name, local_dir: as in :func:`load_dataset`.

    Returns:
        ``(data, used_name, notice)``: ``data`` is what :func:`load_dataset`
        returns for ``used_name``; ``notice`` is None, or a sentence for the
        user saying why the fallback was used.

    Example:
        >>> data, used, notice = load_dataset_or_fallback("digits")
        >>> used, notice
        ('digits', None)
    """
    try:
        return load_dataset(name, local_dir=local_dir), name, None
    except DatasetUnavailableError as err:
        notice = f"{err} Showing the bundled {DATASET_TITLES[FALLBACK_DATASET]} instead."
        return load_dataset(FALLBACK_DATASET), FALLBACK_DATASET, notice


# --------------------------------------------------------------------------
# bundled photographs

PHOTOS = {
    "chelsea (cat)": "chelsea",
    "coffee": "coffee",
    "astronaut": "astronaut",
    "rocket": "rocket",
    "camera (grayscale)": "camera",
    "brick (texture)": "brick",
}


def load_photo(name: str) -> np.ndarray:
    """One of scikit-image's bundled photographs, as uint8 H x W x 3 RGB.

    Args:
        name: a key of :data:`PHOTOS`.

    Example:
        >>> load_photo("coffee").shape
        (400, 600, 3)
    """
    if name not in PHOTOS:
        raise CvcoreError(f"Unknown photo {name!r}; choose one of {', '.join(PHOTOS)}.")
    import skimage.data

    img = np.asarray(getattr(skimage.data, PHOTOS[name])())
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3]).astype(np.uint8)
