"""Image files -> training batches: resized pixels, as arrays or as a ``tf.data`` pipeline.

The files of an :class:`cvcore.folders.ImageDataset` are read with
:func:`cvcore.imagefile.load_image`, the same reader the folder scan used, so
every image that passed the scan is read the same way here (palette, RGBA,
CMYK and 16-bit images converted; the pixel cap enforced), and resized to a
square side, as Keras' ``image_dataset_from_directory(image_size=...)`` and
the seed's ``flow_from_directory(target_size=(150, 150))`` do (the aspect
ratio is not kept).

* :func:`load_resized`: one file -> ``side x side x 3`` uint8.
* :func:`load_images`: many files -> ``N x side x side x 3`` uint8, on a few
  threads, with progress and a stop.
* :func:`image_dataset`: a ``tf.data`` pipeline over a file list: decoded in
  parallel, cached in memory after the first epoch, shuffled every epoch,
  batched, optionally augmented (Keras preprocessing layers), prefetched.
  Its images are float32 raw pixels (0..255), what
  :func:`cvcore.transfer.build_transfer_model` takes.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from . import checks, device
from .errors import CvcoreError, InvalidImageError
from .imagefile import DEFAULT_MAX_PIXELS, load_image

__all__ = ["load_resized", "load_images", "image_dataset", "MIN_SIDE", "MAX_SIDE"]

MIN_SIDE, MAX_SIDE = 16, 512


def _check_side(side) -> int:
    return checks.integer(side, "side", MIN_SIDE, MAX_SIDE)


def load_resized(path, side: int, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """One image file as ``side x side x 3`` uint8 RGB.

    Shrinking averages pixel areas (``cv2.INTER_AREA``, no aliasing);
    enlarging interpolates bilinearly.

    Args:
        path: an image file.
        side: the output's height and width, 16 to 512.
        max_pixels: files with more pixels are refused before decoding.

    Returns:
        uint8 array ``side x side x 3``.

    Raises:
        InvalidImageError: the file is not an image that can be read.
        CvcoreError: a bad ``side``.

    Example:
        >>> import tempfile
        >>> from PIL import Image
        >>> path = tempfile.mkdtemp() + "/seedling.png"
        >>> Image.new("RGB", (300, 200), (71, 86, 38)).save(path)
        >>> load_resized(path, 150).shape
        (150, 150, 3)
    """
    import cv2

    side = _check_side(side)
    img = load_image(path, max_pixels)
    h, w = img.shape[:2]
    if (h, w) == (side, side):
        return np.ascontiguousarray(img)
    shrink = h * w >= side * side
    return cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def load_images(paths, side: int, *, on_progress=None, should_stop=None, workers: int = 4) -> np.ndarray:
    """Many image files as one ``N x side x side x 3`` uint8 batch, read on a few threads.

    Args:
        paths: image files.
        side: the side every image is resized to.
        on_progress: called as ``on_progress(done, total)`` every few images.
        should_stop: called between images; when it returns true, reading
            ends and None is returned.
        workers: threads reading files (decoders release the GIL).

    Returns:
        The batch, or None when stopped.

    Raises:
        InvalidImageError: a file cannot be read (it changed since the scan);
            the message names it.

    Example:
        >>> import tempfile
        >>> from PIL import Image
        >>> folder = tempfile.mkdtemp()
        >>> Image.new("RGB", (80, 60)).save(folder + "/a.png"); Image.new("L", (30, 30)).save(folder + "/b.jpg")
        >>> load_images([folder + "/a.png", folder + "/b.jpg"], 64).shape
        (2, 64, 64, 3)
    """
    side = _check_side(side)
    paths = [Path(p) for p in paths]
    out = np.empty((len(paths), side, side, 3), np.uint8)
    total = len(paths)
    step = max(1, total // 50)
    with ThreadPoolExecutor(max_workers=max(1, int(workers))) as pool:
        for i, img in enumerate(pool.map(lambda p: _read(p, side), paths)):
            out[i] = img
            if should_stop is not None and should_stop():
                pool.shutdown(wait=True, cancel_futures=True)
                return None
            if on_progress is not None and ((i + 1) % step == 0 or i + 1 == total):
                on_progress(i + 1, total)
    return out


def _read(path: Path, side: int) -> np.ndarray:
    try:
        return load_resized(path, side)
    except InvalidImageError as err:
        raise InvalidImageError(f"{path.name} could not be read ({err}); it changed since the folder was "
                                "scanned: scan it again on the Data page.") from None


def image_dataset(paths, labels, side: int, *, batch_size: int = 32, shuffle: bool = False, seed=None,
                  augment=None, cache: bool = True):
    """A ``tf.data`` pipeline of ``(float32 raw pixels, int32 labels)`` batches over image files.

    Order of the steps: read and resize each file in parallel, cache the
    resized uint8 images in memory (from the second epoch on, no file is
    read), shuffle all of them again every epoch, batch, augment each batch
    (random layers in training mode), cast to float32, prefetch.

    Args:
        paths: image files, e.g. ``ImageDataset.subset("train")[0]``.
        labels: one class index per file.
        side: images are resized to ``side x side``.
        batch_size: images per batch.
        shuffle: reshuffle every epoch (for training; keep False for
            features and evaluation, whose order must match ``labels``).
        seed: the shuffle's seed.
        augment: None, or a callable on a batch, typically
            ``cvcore.augment.keras_layers(recipe, seed, rescale=False)``;
            called with ``training=True``.
        cache: keep the decoded images in memory after the first epoch.

    Returns:
        A batched ``tf.data.Dataset`` whose length (cardinality) is known.

    Raises:
        CvcoreError: bad arguments (no files, labels of another length, ...).

    Example:
        >>> from cvcore.samples import digits_dataset
        >>> paths, labels = digits_dataset(per_class=4).subset("train")
        >>> train = image_dataset(paths, labels, 32, batch_size=10, shuffle=True, seed=0)
        >>> len(train), [tuple(t.shape) for t in next(iter(train))]
        (3, [(10, 32, 32, 3), (10,)])
    """
    side = _check_side(side)
    paths = [str(p) for p in paths]
    labels = np.asarray(labels)
    if not paths:
        raise CvcoreError("`paths` holds no image files: there is nothing to train on.")
    if labels.shape != (len(paths),) or not np.issubdtype(labels.dtype, np.integer):
        raise CvcoreError(f"`labels` must be one class index per file ({len(paths)}); received shape {labels.shape} "
                          f"and dtype {labels.dtype}.")
    checks.integer(batch_size, "batch_size", 1)
    if augment is not None and not callable(augment):
        raise CvcoreError(f"`augment` must be None or callable (Keras layers); received {type(augment).__name__}.")
    tf = device.tensorflow()

    def read(path):
        return _read(Path(path.decode() if isinstance(path, bytes) else str(path)), side)

    def decode(path, label):
        img = tf.numpy_function(read, [path], tf.uint8, stateful=False)
        img.set_shape((side, side, 3))
        return img, label

    ds = tf.data.Dataset.from_tensor_slices((paths, labels.astype(np.int32)))
    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(int(batch_size))
    if augment is not None:
        ds = ds.map(lambda x, y: (augment(tf.cast(x, tf.float32), training=True), y),
                    num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), y))
    return ds.prefetch(tf.data.AUTOTUNE)
