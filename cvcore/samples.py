"""Sample images and image folders made offline: no download, reproducible from a seed.

* :func:`seedling_photo`: a synthetic seedling photograph (leaves in the
  plant seedlings chapter's dark, low-saturation greens on brown soil with
  pebbles) and its true leaf mask, for background removal and augmentation
  demos and tests.
* :func:`write_seedlings_folder`: such photographs in class folders, one
  class per leaf shape, the layout of the plant seedlings data set.
* :func:`write_dataset_folder`: a 28 x 28 data set (Fashion-MNIST, MNIST or
  scikit-learn's digits, see :mod:`cvcore.data`) written out as RGB PNG
  class folders, the offline demo of the Data and Transfer pages.
* :func:`demo_folder`: those offline demos, written once per server into a
  folder named with the demo's version (:data:`DEMO_VERSIONS`).
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .errors import CvcoreError

__all__ = ["LEAF_GREENS", "SEEDLING_CLASSES", "DEMO_FOLDERS", "DEMO_VERSIONS", "seedling_photo", "digits_dataset",
           "write_seedlings_folder", "write_dataset_folder", "demo_folder_name", "demo_folder"]

# The leaf greens of the plant seedlings chapter (its four background-removal targets): the
# synthetic leaves are drawn in their range, dark, low-saturation greens like the photographs'.
LEAF_GREENS = ((71, 86, 38), (65, 79, 19), (95, 106, 56), (56, 63, 43))

# Leaf shapes of the synthetic seedlings: (leaf count range, length, width) as fractions of the image side.
SEEDLING_CLASSES = {
    "round-leaf": ((2, 4), (0.16, 0.24), (0.10, 0.15)),
    "grass": ((3, 6), (0.28, 0.40), (0.032, 0.05)),
    "rosette": ((6, 10), (0.10, 0.16), (0.05, 0.08)),
}


def _soil(rng: np.random.Generator, size: int) -> np.ndarray:
    """Brown soil: a base colour, blotches at two scales, grain, and a few grey pebbles."""
    import cv2

    base = np.array([112, 84, 58], np.float32) * rng.uniform(0.8, 1.15)
    img = np.empty((size, size, 3), np.float32)
    img[:] = base
    for sigma, amp in ((size / 12, 28.0), (size / 60, 14.0)):
        noise = cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32), (0, 0), sigma)
        noise /= noise.std() + 1e-6
        img += amp * noise[:, :, None]
    # grain: mostly in brightness (as a camera's noise and the soil's crumbs), a little in colour
    img += rng.normal(0, 6, (size, size, 1)).astype(np.float32)
    img += rng.normal(0, 2.5, (size, size, 3)).astype(np.float32)
    for _ in range(int(rng.integers(size // 24, size // 10))):  # pebbles: grey, brighter than soil
        centre = (int(rng.integers(0, size)), int(rng.integers(0, size)))
        axes = (int(rng.integers(1, max(2, size // 50))), int(rng.integers(1, max(2, size // 60))))
        grey = float(rng.uniform(120, 190))
        cv2.ellipse(img, centre, axes, float(rng.uniform(0, 180)), 0, 360, (grey, grey * 0.97, grey * 0.92), -1)
    return img


def seedling_photo(seed: int = 0, size: int = 256, kind: str = "round-leaf"):
    """A synthetic seedling photograph and its true leaf mask.

    Leaves (ellipses, lit from one side) grow from a stem point near the
    centre, over soil with blotches, grain and pebbles. Each leaf's colour is
    a mix of the chapter's four target greens (:data:`LEAF_GREENS`: dark,
    low-saturation leaf greens, as in the plant seedlings photographs), a
    little lighter or darker: enough like the photographs to try the chapter's
    colour-based background removal with its own defaults, and with the exact
    answer known.

    Args:
        seed: the random seed; the same seed gives the same picture.
        size: the side in pixels, 32 to 2048.
        kind: a key of :data:`SEEDLING_CLASSES` (the leaf shape).

    Returns:
        ``(image, mask)``: uint8 ``size x size x 3`` RGB, and bool
        ``size x size``, True on leaves.

    Raises:
        CvcoreError: for a bad size or an unknown kind.

    Example:
        >>> img, mask = seedling_photo(seed=1, size=128)
        >>> img.shape, img.dtype, mask.dtype
        ((128, 128, 3), dtype('uint8'), dtype('bool'))
        >>> leaves = img[mask].astype(int)  # dark greens: green over red, well below 255
        >>> bool((leaves[:, 1] > leaves[:, 0]).mean() > 0.9), bool(leaves[:, 1].mean() < 130)
        (True, True)
    """
    import cv2

    if not isinstance(size, (int, np.integer)) or not 32 <= size <= 2048:
        raise CvcoreError(f"`size` must be an integer from 32 to 2048; received {size!r}.")
    if kind not in SEEDLING_CLASSES:
        raise CvcoreError(f"Unknown seedling kind {kind!r}; choose one of {', '.join(SEEDLING_CLASSES)}.")
    rng = np.random.default_rng(seed)
    img = _soil(rng, size)
    (lo, hi), lengths, widths = SEEDLING_CLASSES[kind]
    stem = np.array([size / 2, size / 2]) + rng.normal(0, size / 14, 2)
    mask = np.zeros((size, size), np.uint8)
    leaves = np.zeros((size, size, 3), np.float32)
    light = rng.uniform(0, 2 * np.pi)
    n = int(rng.integers(lo, hi + 1))
    for i in range(n):
        angle = 2 * np.pi * i / n + rng.normal(0, 0.25)
        length = rng.uniform(*lengths) * size
        width = rng.uniform(*widths) * size
        centre = stem + 0.55 * length * np.array([np.cos(angle), np.sin(angle)])
        leaf = np.zeros((size, size), np.uint8)
        cv2.ellipse(leaf, (int(centre[0]), int(centre[1])), (max(1, int(length / 2)), max(1, int(width / 2))),
                    float(np.degrees(angle)), 0, 360, 1, -1)
        # a leaf green of the chapter's range: a mix of its four target greens, a little darker or
        # lighter, shaded by the angle to the light (dark, low-saturation greens, as in the photographs)
        mix = rng.dirichlet(np.full(len(LEAF_GREENS), 0.5)) @ np.array(LEAF_GREENS, np.float32)
        rgb = (mix * rng.uniform(0.94, 1.06) * (0.96 + 0.05 * np.cos(angle - light))).astype(np.float32)
        leaves[leaf > 0] = rgb
        mask |= leaf
    cv2.circle(mask, (int(stem[0]), int(stem[1])), max(1, size // 80), 1, -1)
    leaves[(mask > 0) & (leaves.sum(axis=2) == 0)] = LEAF_GREENS[0]
    vein = cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32), (0, 0), 1.0)
    shaded = leaves * (1 + 0.06 * vein[:, :, None])
    on = mask.astype(bool)
    img[on] = shaded[on]
    img = cv2.GaussianBlur(img, (0, 0), 0.6)  # a camera's softness at the leaf edges
    return np.clip(img, 0, 255).round().astype(np.uint8), on


def _check_folder(dest) -> Path:
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise CvcoreError(f"`dest` {str(dest)!r} is not empty; samples are written only into a new folder.")
    dest.mkdir(parents=True, exist_ok=True)
    return dest


def _folder_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "class"


def write_seedlings_folder(dest, *, per_class: int = 20, size: int = 128, seed: int = 0,
                           classes=None) -> Path:
    """Write synthetic seedling photographs as PNG class folders (``dest/<class>/<n>.png``).

    Args:
        dest: a folder that does not exist yet or is empty.
        per_class: images per class, 1 to 5000.
        size: the side of each image in pixels.
        seed: the random seed; the same seed writes the same files.
        classes: leaf shapes to use (keys of :data:`SEEDLING_CLASSES`); all by default.

    Returns:
        ``dest`` as a :class:`~pathlib.Path`.

    Example:
        >>> import tempfile
        >>> root = write_seedlings_folder(tempfile.mkdtemp() + "/s", per_class=2, size=48)
        >>> sorted(p.name for p in root.iterdir())
        ['grass', 'rosette', 'round-leaf']
    """
    from PIL import Image

    if not isinstance(per_class, (int, np.integer)) or not 1 <= per_class <= 5000:
        raise CvcoreError(f"`per_class` must be an integer from 1 to 5000; received {per_class!r}.")
    classes = list(SEEDLING_CLASSES if classes is None else classes)
    dest = _check_folder(dest)
    for c, kind in enumerate(classes):
        folder = dest / _folder_name(kind)
        folder.mkdir()
        for i in range(per_class):
            img, _ = seedling_photo(seed=seed * 1_000_003 + c * 10_007 + i, size=size, kind=kind)
            Image.fromarray(img).save(folder / f"{i:04d}.png", compress_level=1)  # 4x faster than 6, 12% larger
    return dest


def write_dataset_folder(dest, name: str = "fashion_mnist", *, per_class: int = 50, size: int = 28,
                         split: str = "train") -> Path:
    """Write a 28 x 28 data set of :mod:`cvcore.data` as RGB PNG class folders.

    Offline, MNIST falls back to scikit-learn's digits (see
    :func:`cvcore.data.load_dataset_or_fallback`); Fashion-MNIST comes from
    Debian's ``dataset-fashion-mnist`` where it is installed.

    Args:
        dest: a folder that does not exist yet or is empty.
        name: ``"fashion_mnist"``, ``"mnist"`` or ``"digits"``.
        per_class: the first so many images of each class, 1 to 6000.
        size: the side the images are resized to (28 keeps them as they are).
        split: ``"train"`` or ``"test"``.

    Returns:
        ``dest`` as a :class:`~pathlib.Path`; class folders are named after
        the classes ("T-shirt-top", "Trouser", ...).

    Example:
        >>> import tempfile
        >>> root = write_dataset_folder(tempfile.mkdtemp() + "/d", "digits", per_class=2)
        >>> len(list(root.glob("*/*.png")))
        20
    """
    import cv2
    from PIL import Image

    from .data import load_dataset_or_fallback

    if not isinstance(per_class, (int, np.integer)) or not 1 <= per_class <= 6000:
        raise CvcoreError(f"`per_class` must be an integer from 1 to 6000; received {per_class!r}.")
    if split not in ("train", "test"):
        raise CvcoreError(f"`split` must be 'train' or 'test'; received {split!r}.")
    (train, test, class_names), _, _ = load_dataset_or_fallback(name)
    x, y = train if split == "train" else test
    dest = _check_folder(dest)
    for label, cname in enumerate(class_names):
        folder = dest / _folder_name(cname)
        folder.mkdir()
        for i, idx in enumerate(np.flatnonzero(y == label)[:per_class]):
            img = x[idx]
            if size != img.shape[0]:
                img = cv2.resize(img, (size, size), interpolation=cv2.INTER_CUBIC)
            Image.fromarray(np.repeat(img[:, :, None], 3, axis=2)).save(folder / f"{i:04d}.png", compress_level=1)
    return dest


def digits_dataset(dest=None, *, per_class: int = 5, size: int = 8, validation_per_class: int = 1):
    """A small data set, ready to train on: digits written as PNG class folders, scanned and split.

    For examples and quick tests of what takes an :class:`~cvcore.folders.ImageDataset`.

    Args:
        dest: a folder that does not exist yet or is empty; by default a new temporary one.
        per_class: images per class (10 classes), 2 to 6000.
        size: the images' side in pixels.
        validation_per_class: images per class set aside for validation (a seeded, stratified split).

    Returns:
        The :class:`~cvcore.folders.ImageDataset`.

    Raises:
        CvcoreError: a bad argument (named, with the value received).

    Example:
        >>> ds = digits_dataset(per_class=5)
        >>> len(ds), int(ds.validation.sum()), ds.classes[:3]
        (50, 10, ['0', '1', '2'])
    """
    from .folders import ImageDataset, scan_image_folder

    if dest is None:
        dest = Path(tempfile.mkdtemp(prefix="cvcore-digits-")) / "digits"
    root = write_dataset_folder(dest, "digits", per_class=per_class, size=size)
    return ImageDataset.from_scan(scan_image_folder(root), name="Digits", per_class=validation_per_class)


# Offline demo data sets for the Data page: name -> (title, writer arguments).
DEMO_FOLDERS = {
    "fashion-mnist": ("Fashion-MNIST as PNG folders (10 classes x 60, 28 px)",
                      dict(kind="dataset", name="fashion_mnist", per_class=60, size=28)),
    "seedlings": ("Synthetic seedlings (3 leaf shapes x 40, 256 px)",
                  dict(kind="seedlings", per_class=40, size=256)),
}
# Each demo's version, part of its folder's name: raise it whenever what the writer draws changes, so that an
# install that wrote the old images writes the new ones. Seedlings v2: leaves in the chapter's greens
# (LEAF_GREENS) instead of brighter ones, soil grain mostly in brightness, wider grass, 256 px (the
# chapter's 9 x 9 median blur keeps the grass).
DEMO_VERSIONS = {"fashion-mnist": 1, "seedlings": 2}


def demo_folder_name(name: str) -> str:
    """The folder name of a demo at its current version, e.g. ``"seedlings-v2"``.

    Args:
        name: a key of :data:`DEMO_FOLDERS`.

    Returns:
        ``"<name>-v<version>"`` (:data:`DEMO_VERSIONS`).

    Raises:
        CvcoreError: for an unknown demo.

    Example:
        >>> demo_folder_name("seedlings")
        'seedlings-v2'
    """
    if name not in DEMO_FOLDERS:
        raise CvcoreError(f"Unknown demo data set {name!r}; choose one of {', '.join(DEMO_FOLDERS)}.")
    return f"{name}-v{DEMO_VERSIONS[name]}"


def demo_folder(name: str, base) -> Path:
    """An offline demo data set as class folders under ``base``, written once and shared.

    The folder's name carries the demo's version (:func:`demo_folder_name`):
    a folder of this version is reused; one written by an older version (or
    before versions, ``base/<name>``) is not, and is removed once the new
    one is in place. Written into a temporary folder and renamed into place,
    so that sessions asking at the same moment never see a half-written folder.

    Args:
        name: a key of :data:`DEMO_FOLDERS`.
        base: the folder that holds the demos (the app's state folder).

    Returns:
        The data set's root folder, ``base/<name>-v<version>``.

    Raises:
        CvcoreError: for an unknown demo, or when the images cannot be written.

    Example:
        >>> import tempfile
        >>> base = Path(tempfile.mkdtemp())
        >>> (base / "seedlings").mkdir(); (base / "seedlings-v2").mkdir()  # an old demo, and this version's
        >>> demo_folder("seedlings", base).name, sorted(p.name for p in base.iterdir())
        ('seedlings-v2', ['seedlings-v2'])
    """
    final = Path(base) / demo_folder_name(name)
    base = final.parent
    if not final.is_dir():
        base.mkdir(parents=True, exist_ok=True)
        args = dict(DEMO_FOLDERS[name][1])
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=base))
        try:
            if args.pop("kind") == "seedlings":
                write_seedlings_folder(tmp, **args)
            else:
                write_dataset_folder(tmp, **args)
            try:
                os.rename(tmp, final)
            except OSError:  # another session finished first: use theirs
                if not final.is_dir():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    for old in [name] + [f"{name}-v{v}" for v in range(1, DEMO_VERSIONS[name])]:  # older versions' images
        if (base / old).is_dir() and not (base / old).is_symlink():
            shutil.rmtree(base / old, ignore_errors=True)
    return final
