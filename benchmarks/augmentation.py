"""Images per second of the augmentation pipelines, against plain baselines measured in the same run.

On batches of 32 RGB uint8 images of 150 x 150 (synthetic seedling photographs,
made offline by :mod:`cvcore.samples`), with the seed recipes of
:data:`cvcore.augment.DEFAULT_RECIPES`:

* numpy flip + crop: a random left-right flip and a random crop of 0-10% per
  side resized back with ``cv2.resize``, per image: the least an augmentation
  does (baseline);
* ImageDataGenerator (scipy): the chapters' Keras 2 ``ImageDataGenerator``
  recipe as its legacy code ran it: per image, one combined affine matrix
  (rotation, shift, shear, zoom) through ``scipy.ndimage.affine_transform``
  channel by channel (``order=1``, ``fill_mode="nearest"``), a flip and the
  rescale (baseline: the old way);
* imgaug: :func:`cvcore.augment.imgaug_pipeline` of the README recipe, a batch
  per call (one CPU core, as imgaug runs without its multiprocessing pool);
* Keras layers, eager: :func:`cvcore.augment.keras_layers` (the rescale
  included) called on each numpy batch;
* Keras layers, tf.function: the same layers traced once, called on each batch;
* Keras layers, tf.data: ``Dataset.batch(32).map(layers, num_parallel_calls=
  AUTOTUNE).prefetch(...)``: the training path (issue 6), parallel over the
  machine's cores and overlapped with whatever consumes the batches.

Then background removal over a folder of synthetic seedlings (256 x 256 PNG):
:func:`cvcore.background.remove_background_folder` with each method, against a
plain loop as the seed wrote it (cv2.imread, the chapter's integer redmean
distance in int64 numpy, cv2.medianBlur, cv2.imwrite; no caps or checks), the baseline.

Every pipeline runs ``--batches`` batches (after a warm-up that pays tracing
and first calls) and ``--repeats`` times, interleaved, so that a busy machine
slows all alike; the median rate is printed with the ratios against both
baselines. It prints; it asserts nothing.

Usage:
    .venv/bin/python benchmarks/augmentation.py [--batches B] [--repeats R]
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from cvcore import augment, device, samples  # noqa: E402

SIDE = 150
BATCH = 32
POOL = 64  # distinct images, cycled


def make_pool() -> np.ndarray:
    kinds = list(samples.SEEDLING_CLASSES)
    return np.stack([samples.seedling_photo(seed=i, size=SIDE, kind=kinds[i % len(kinds)])[0] for i in range(POOL)])


def batches(pool: np.ndarray, n: int):
    for i in range(n):
        start = (i * BATCH) % POOL
        yield np.take(pool, range(start, start + BATCH), axis=0, mode="wrap")


# ----------------------------------------------------------------------------- baselines
# Each pipeline is a factory: make(pool, rng) builds it once and returns run(n), which yields n
# augmented batches; rate() warms it up (tracing, first calls) and then times it.


def numpy_flip_crop(pool, rng):
    import cv2

    def run(n):
        for batch in batches(pool, n):
            out = np.empty_like(batch)
            for i, img in enumerate(batch):
                if rng.random() < 0.5:
                    img = img[:, ::-1]
                top, bottom, left, right = (int(rng.uniform(0, 0.1) * SIDE) for _ in range(4))
                out[i] = cv2.resize(np.ascontiguousarray(img[top:SIDE - bottom, left:SIDE - right]), (SIDE, SIDE),
                                    interpolation=cv2.INTER_LINEAR)
            yield out

    return run


def _idg_matrix(rng, h, w, r):
    """keras-preprocessing's get_random_transform + apply_affine_transform: one matrix per image."""
    theta = np.deg2rad(rng.uniform(-r["rotation_range"], r["rotation_range"]))
    tx = rng.uniform(-r["height_shift_range"], r["height_shift_range"]) * h
    ty = rng.uniform(-r["width_shift_range"], r["width_shift_range"]) * w
    shear = np.deg2rad(rng.uniform(-r["shear_range"], r["shear_range"]))
    zx, zy = rng.uniform(1 - r["zoom_range"], 1 + r["zoom_range"], 2)
    m = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]])
    m = m @ np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]])
    m = m @ np.array([[1, -np.sin(shear), 0], [0, np.cos(shear), 0], [0, 0, 1]])
    m = m @ np.array([[zx, 0, 0], [0, zy, 0], [0, 0, 1]])
    ox, oy = h / 2 + 0.5, w / 2 + 0.5  # transform_matrix_offset_center
    return np.array([[1, 0, ox], [0, 1, oy], [0, 0, 1]]) @ m @ np.array([[1, 0, -ox], [0, 1, -oy], [0, 0, 1]])


def image_data_generator(pool, rng):
    from scipy import ndimage

    r = augment.DEFAULT_RECIPES["keras"]

    def run(n):
        for batch in batches(pool, n):
            x = batch.astype(np.float32)
            out = np.empty_like(x)
            for i, img in enumerate(x):
                m = _idg_matrix(rng, SIDE, SIDE, r)
                chans = [ndimage.affine_transform(img[:, :, c], m[:2, :2], m[:2, 2], order=1, mode="nearest")
                         for c in range(img.shape[2])]
                img = np.stack(chans, axis=2)
                if r["horizontal_flip"] and rng.random() < 0.5:
                    img = img[:, ::-1]
                out[i] = img * r["rescale"]
            yield out

    return run


# ----------------------------------------------------------------------------- the pipelines


def imgaug_batches(pool, rng):
    seq = augment.imgaug_pipeline(augment.DEFAULT_RECIPES["imgaug"], seed=int(rng.integers(2**31)))

    def run(n):
        for batch in batches(pool, n):
            yield seq(images=batch)

    return run


def keras_eager(pool, rng):
    layers = augment.keras_layers(augment.DEFAULT_RECIPES["keras"], seed=int(rng.integers(2**31)))

    def run(n):
        for batch in batches(pool, n):
            yield layers(batch, training=True).numpy()

    return run


def keras_function(pool, rng):
    import tensorflow as tf

    layers = augment.keras_layers(augment.DEFAULT_RECIPES["keras"], seed=int(rng.integers(2**31)))
    step = tf.function(lambda b: layers(b, training=True))

    def run(n):
        for batch in batches(pool, n):
            yield step(tf.constant(batch)).numpy()

    return run


def keras_tf_data(pool, rng):
    import tensorflow as tf

    layers = augment.keras_layers(augment.DEFAULT_RECIPES["keras"], seed=int(rng.integers(2**31)))
    ds = (tf.data.Dataset.from_tensor_slices(pool).repeat().batch(BATCH, drop_remainder=True)
          .map(lambda b: layers(b, training=True), num_parallel_calls=tf.data.AUTOTUNE)
          .prefetch(tf.data.AUTOTUNE))
    it = iter(ds)

    def run(n):
        for _ in range(n):
            yield next(it).numpy()

    return run


PIPELINES = {
    "numpy flip + crop (baseline)": numpy_flip_crop,
    "ImageDataGenerator, scipy (baseline)": image_data_generator,
    "imgaug, README recipe": imgaug_batches,
    "Keras layers, eager": keras_eager,
    "Keras layers, tf.function": keras_function,
    "Keras layers, tf.data map": keras_tf_data,
}


def rate(make, pool, n, seed) -> float:
    """Images per second over n batches, after three warm-up batches (tracing, first calls)."""
    run = make(pool, np.random.default_rng(seed))
    for _ in run(3):
        pass
    start = time.perf_counter()
    count = 0
    for out in run(n):
        assert out.shape == (BATCH, SIDE, SIDE, 3)
        count += len(out)
    return count / (time.perf_counter() - start)


# =============================================================================================
# Background removal over a folder: the Background page's folder run
# =============================================================================================
FOLDER_SIDE = 256


def _plain_seed_folder(files, src, dest) -> None:
    """The plain baseline: the seed's own loop, cv2.imread, the chapter's integer redmean distance (no
    square root) to the same leaf greens in int64 numpy, cv2.medianBlur, cv2.imwrite; no caps, no checks,
    no summary."""
    import cv2

    from cvcore.background import DEFAULT_TARGETS

    for rel in files:
        bgr = cv2.imread(str(Path(src) / rel))
        img = bgr[:, :, ::-1].astype(np.int64)
        mask = np.zeros(img.shape[:2], bool)
        for (r, g, b), threshold in DEFAULT_TARGETS:
            rmean = (img[:, :, 0] + r) // 2
            dist = ((((512 + rmean) * (img[:, :, 0] - r) ** 2) >> 8) + 4 * (img[:, :, 1] - g) ** 2
                    + (((767 - rmean) * (img[:, :, 2] - b) ** 2) >> 8))
            mask |= dist < threshold
        mask = cv2.medianBlur(mask.astype(np.uint8) * 255, 5) > 0
        out = Path(dest) / Path(rel).with_suffix(".png")
        out.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out), bgr * mask[:, :, None])


def background_removal_over_folder(args) -> dict:
    """Images per second of cvcore.background.remove_background_folder, per method, against the
    seed's plain loop (same targets, no safety checks) measured in the same run."""
    import shutil
    import tempfile

    from cvcore import background

    work = Path(tempfile.mkdtemp(prefix="bench-bg-"))
    try:
        per_class = max(4, args.folder_images // 3)
        src = samples.write_seedlings_folder(work / "src", per_class=per_class, size=FOLDER_SIDE)
        files = sorted(p.relative_to(src).as_posix() for p in src.rglob("*.png"))
        few = files[:: max(1, len(files) // 24)]  # GrabCut is ~100x slower: a sample of the folder
        cases = {
            "seed's plain loop, rgb (baseline)": (files, None),
            "rgb distance (the chapter's)": (files, "rgb"),
            "CIELUV distance": (files, "cieluv"),
            "HSV range": (files, "hsv"),
            "GrabCut (10% inset rectangle)": (few, "grabcut"),
        }
        rates = {name: [] for name in cases}
        warm = work / "warm"
        background.remove_background_folder(files[:3], src, warm, method="rgb")  # first calls, imports
        _plain_seed_folder(files[:3], src, warm / "plain")
        for run in range(args.repeats):
            for name, (subset, method) in cases.items():
                dest = work / f"out-{run}-{len(rates[name])}-{method}"
                start = time.perf_counter()
                if method is None:
                    _plain_seed_folder(subset, src, dest)
                else:
                    summary = background.remove_background_folder(subset, src, dest, method=method, median=5)
                    assert len(summary.written) == len(subset), summary.describe()
                rates[name].append(len(subset) / (time.perf_counter() - start))
                shutil.rmtree(dest, ignore_errors=True)
        return {name: statistics.median(v) for name, v in rates.items()}, len(files)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20, help="timed batches of 32 per pipeline and repeat (20)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each pipeline, interleaved (3)")
    parser.add_argument("--folder-images", type=int, default=240,
                        help="synthetic seedlings (256 px PNG) in the background-removal folder (240)")
    args = parser.parse_args(argv)
    info = device.configure()
    pool = make_pool()
    print(f"Device: {info.label}; TensorFlow {info.tensorflow}, Keras {info.keras}")
    print(f"Batches of {BATCH} RGB uint8 images, {SIDE} x {SIDE} ({POOL} synthetic seedlings, cycled); "
          f"{args.batches} timed batches per run, {args.repeats} run(s) of each, interleaved.\n")
    rates = {name: [] for name in PIPELINES}
    for run in range(1, args.repeats + 1):
        for name, func in PIPELINES.items():
            rates[name].append(rate(func, pool, args.batches, seed=run))
            print(f"  run {run} {name:38s} {rates[name][-1]:8.0f} images/s", flush=True)
    med = {name: statistics.median(v) for name, v in rates.items()}
    plain, idg = med["numpy flip + crop (baseline)"], med["ImageDataGenerator, scipy (baseline)"]
    print("\nImages per second (median of runs) and ratios:")
    print(f"  {'pipeline':38s} {'images/s':>9s}  {'vs ImageDataGenerator':>21s}  {'vs numpy flip+crop':>18s}")
    for name, value in med.items():
        print(f"  {name:38s} {value:9.0f}  {value / idg:20.2f}x  {value / plain:17.2f}x")
    print(f"\nAugmenting 1,000 images ({math.ceil(1000 / BATCH)} batches) takes "
          f"{1000 / med['Keras layers, tf.data map']:.1f} s with the Keras layers in tf.data and "
          f"{1000 / med['imgaug, README recipe']:.1f} s with imgaug.")
    background, n = background_removal_over_folder(args)
    plain = background["seed's plain loop, rgb (baseline)"]
    print(f"\nBackground removal over a folder of {n} PNGs, {FOLDER_SIDE} x {FOLDER_SIDE} (read, mask, median 5, "
          "write PNG), median of runs:")
    print(f"  {'method':38s} {'images/s':>9s}  {'vs the seed plain loop':>22s}")
    for name, value in background.items():
        print(f"  {name:38s} {value:9.0f}  {value / plain:21.2f}x")

if __name__ == "__main__":
    main()
