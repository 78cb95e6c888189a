"""Epoch time of cvcore.training.train against a plain ``model.fit`` script.

Compares, on Fashion-MNIST with the basic 3,730-parameter preset and batch
size 32, over ``--epochs`` epochs (default 3) of:

* plain:  ``model.fit(x, y, batch_size=32, epochs=E, validation_data=(xt, yt),
  verbose=0)`` on float32 arrays scaled to [0, 1]: the seed's own script;
* page:   ``cvcore.training.train(..., on_progress=..., fast=False)``, what the
  Train page runs, with live progress;
* fast:   ``cvcore.training.train(..., on_progress=..., fast=True)``.

Every epoch is timed (validation included). The first epoch also pays the
one-time tracing of the training step, so it is printed apart; the ratios
come from the median of the later epochs, the epoch time a run of several
epochs actually has. Each setting runs ``--repeats`` times, interleaved
(plain, page, fast, plain, ...) with a fresh model, so a busy machine slows
all three alike. Data preparation is outside all timings. Test accuracy
after the last epoch is printed for each, to show the fast setting loses
none. It prints; it asserts nothing.

Usage:
    .venv/bin/python benchmarks/training.py [--train-size N] [--epochs E] [--repeats R]
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

from cvcore import device  # noqa: E402
from cvcore.data import load_dataset  # noqa: E402
from cvcore.models import build_model, preset  # noqa: E402
from cvcore.training import train  # noqa: E402

PRESET = "Basic CNN (6 and 12 filters)"
BATCH = 32


def _epoch_timer():
    import keras

    class EpochTimer(keras.callbacks.Callback):  # epoch hooks only: fit stays asynchronous
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._start)

    return EpochTimer()


def plain(x, y, xt, yt, epochs):
    model = build_model(preset(PRESET))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    timer = _epoch_timer()
    model.fit(x, y, batch_size=BATCH, epochs=epochs, validation_data=(xt, yt), verbose=0, callbacks=[timer])
    return timer.seconds, model, 0, None


def page(x_raw, y, xt_raw, yt, epochs, *, fast):
    model = build_model(preset(PRESET))
    reports = []
    history = train(model, ((x_raw, y), (xt_raw, yt)), epochs=epochs, batch_size=BATCH,
                    on_progress=reports.append, fast=fast)
    return history["epoch_seconds"], model, len(reports), history


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=60000, help="training images (default: all 60,000)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (default 3; at least 2)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each setting, interleaved (default 2)")
    args = parser.parse_args(argv)
    epochs = max(2, args.epochs)
    info = device.configure()
    (x_raw, y), (xt_raw, yt), _ = load_dataset("fashion_mnist")
    x_raw, y = x_raw[: args.train_size], y[: args.train_size]
    # What a plain script does, outside the timing (train() does it inside its own).
    x = (x_raw.astype("float32") / 255.0)[..., None]
    xt = (xt_raw.astype("float32") / 255.0)[..., None]
    print(f"Device: {info.label}; TensorFlow {info.tensorflow}, Keras {info.keras}")
    print(f"Model: {PRESET!r}; Fashion-MNIST, {len(x):,} training images, {len(xt):,} validation/test images, "
          f"batch size {BATCH}, {epochs} epochs per run, {args.repeats} run(s) of each, interleaved.\n")
    first = {"plain": [], "page": [], "fast": []}
    later = {"plain": [], "page": [], "fast": []}
    accs = {"plain": [], "page": [], "fast": []}
    extra = {}
    for run in range(1, args.repeats + 1):
        for name in ("plain", "page", "fast"):
            if name == "plain":
                seconds, model, _, _ = plain(x, y, xt, yt, epochs)
            else:
                seconds, model, n_reports, history = page(x_raw, y, xt_raw, yt, epochs, fast=(name == "fast"))
                extra[name] = (n_reports, history["steps_per_execution"])
            acc = model.evaluate(xt, yt, batch_size=1024, verbose=0)[1]
            first[name].append(seconds[0])
            later[name].extend(seconds[1:])
            accs[name].append(acc)
            print(f"  run {run} {name:5s} epochs " + ", ".join(f"{t:5.2f}" for t in seconds)
                  + f" s   test accuracy {acc:.4f}", flush=True)
    f = {k: statistics.median(v) for k, v in first.items()}
    t = {k: statistics.median(v) for k, v in later.items()}
    print("\nEpoch time (validation included): first epoch (with tracing) | median of later epochs")
    print(f"  plain model.fit script          {f['plain']:6.2f} s | {t['plain']:6.2f} s")
    print(f"  page trainer (normal, progress) {f['page']:6.2f} s | {t['page']:6.2f} s   "
          f"overhead vs plain {100 * (t['page'] / t['plain'] - 1):+.1f}%   ({extra['page'][0]} progress reports)")
    print(f"  fast setting (with progress)    {f['fast']:6.2f} s | {t['fast']:6.2f} s   "
          f"speed-up vs plain {t['plain'] / t['fast']:.2f}x   (steps_per_execution {extra['fast'][1]})")
    print(f"\nTest accuracy after {epochs} epochs (mean of runs, min..max):")
    for name in ("plain", "page", "fast"):
        print(f"  {name:5s} {np.mean(accs[name]):.4f}  ({min(accs[name]):.4f}..{max(accs[name]):.4f})")


if __name__ == "__main__":
    main()
