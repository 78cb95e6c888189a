"""Transfer learning on VGG16 at 150 x 150: feature extraction speed, and a head's epoch on cached features
against an epoch of the frozen end-to-end model.

On ``--images`` synthetic photographs (random uint8 RGB, 150 x 150; default
256) and 12 classes, with VGG16 built with ``weights=None`` (its speed does
not depend on the weights, and nothing is downloaded):

* extraction: :func:`cvcore.transfer.extract_features` over the images,
  images per second (no cache), after one warm-up batch;
* head:       ``fit`` of Flatten + Dense(12) on the cached features
  (``4 x 4 x 512`` per image), batch size 32;
* end-to-end: ``fit`` of :func:`cvcore.transfer.build_transfer_model`
  (the same base, frozen, and the same head) on the raw images, batch 32:
  the plain baseline, what the seed's script does without cached features.

Each ``fit`` runs ``--epochs`` epochs (default 2); the first pays the one-time
tracing of the training step and is printed apart; the ratio compares the
later epochs' median. It prints; it asserts nothing.

Usage:
    .venv/bin/python benchmarks/transfer.py [--images N] [--epochs E]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from training import _epoch_timer  # noqa: E402  (benchmarks/training.py's per-epoch timer)

from cvcore import device  # noqa: E402
from cvcore.applications import load_application  # noqa: E402
from cvcore.transfer import build_transfer_model, extract_features  # noqa: E402

SIZE, CLASSES, BATCH = 150, 12, 32




def _fit(model, x, y, epochs):
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    timer = _epoch_timer()
    model.fit(x, y, batch_size=BATCH, epochs=epochs, verbose=0, callbacks=[timer])
    return timer.seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args(argv)
    print(device.describe())
    import keras

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.images, SIZE, SIZE, 3), dtype=np.uint8)
    y = rng.integers(0, CLASSES, args.images)

    base = load_application("vgg16", weights=None, include_top=False, input_shape=(SIZE, SIZE, 3))
    extract_features(base, x[:BATCH], batch_size=BATCH)  # warm-up
    start = time.perf_counter()
    features = extract_features(base, x, batch_size=BATCH)
    extraction = time.perf_counter() - start
    print(f"extraction: {args.images} images in {extraction:.1f} s = {args.images / extraction:.1f} images/s "
          f"(VGG16, {SIZE}x{SIZE}, batch {BATCH}) -> features {features.shape[1:]}")

    head = keras.Sequential([keras.Input(features.shape[1:]), keras.layers.Flatten(),
                             keras.layers.Dense(CLASSES, activation="softmax")])
    head_s = _fit(head, features, y, args.epochs)
    e2e = build_transfer_model("vgg16", (SIZE, SIZE, 3), CLASSES, weights=None)
    e2e_s = _fit(e2e, x.astype(np.float32), y, args.epochs)

    for name, secs in (("head on cached features", head_s), ("frozen end-to-end", e2e_s)):
        later = ", ".join(f"{s:.2f}" for s in secs[1:]) or "-"
        print(f"{name:>24}: first epoch {secs[0]:.2f} s, later epochs {later} s")
    head_t = statistics.median(head_s[1:] or head_s)
    e2e_t = statistics.median(e2e_s[1:] or e2e_s)
    print(f"per-epoch: head {head_t:.3f} s, end-to-end {e2e_t:.2f} s, ratio {e2e_t / head_t:.0f}x "
          f"(extraction once + E head epochs beats E end-to-end epochs from E >= "
          f"{max(1, int(np.ceil(extraction / max(e2e_t - head_t, 1e-9))))})")


if __name__ == "__main__":
    main()
