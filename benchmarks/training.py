"""Epoch time of cvcore.training.train against a plain ``model.fit`` script.

Compares, on Fashion-MNIST with the basic 3,730-parameter preset and batch
size 32, one epoch (tracing included, as a one-epoch script pays it) of:

* plain:  ``model.fit(x, y, batch_size=32, epochs=1, validation_data=(xt, yt),
  verbose=0)`` on float32 arrays scaled to [0, 1], the way a script does it;
* page:   ``cvcore.training.train(..., on_progress=..., fast=False)``, what the
  Training page runs, with live progress;
* fast:   ``cvcore.training.train(..., on_progress=..., fast=True)``.

Each runs ``--repeats`` times, interleaved (plain, page, fast, plain, ...)
with a fresh model each time, so a busy machine slows all three alike; the
ratios are printed from the medians and from the best runs (the best run is
the least disturbed by other processes on a shared machine). Data preparation is outside the timings of all
three. Test accuracy (the 10,000 test images) is printed for each, to show
the fast setting loses none. It prints; it asserts nothing.

Usage:
    .venv/bin/python benchmarks/training.py [--train-size N] [--repeats R]
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


def plain(x, y, xt, yt):
    model = build_model(preset(PRESET))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(x, y, batch_size=BATCH, epochs=1, validation_data=(xt, yt), verbose=0)
    seconds = time.perf_counter() - start
    return seconds, model


def page(x_raw, y, xt_raw, yt, *, fast):
    model = build_model(preset(PRESET))
    reports = []
    start = time.perf_counter()
    history = train(
        model, ((x_raw, y), (xt_raw, yt)), epochs=1, batch_size=BATCH,
        on_progress=reports.append, fast=fast,
    )
    seconds = time.perf_counter() - start
    return seconds, model, len(reports), history


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=60000, help="training images (default: all 60,000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each setting, interleaved (default 3)")
    args = parser.parse_args(argv)

    info = device.configure()
    (x_raw, y), (xt_raw, yt), _ = load_dataset("fashion_mnist")
    x_raw, y = x_raw[: args.train_size], y[: args.train_size]
    # What a plain script does, outside the timing (train() does it inside its own).
    x = (x_raw.astype("float32") / 255.0)[..., None]
    xt = (xt_raw.astype("float32") / 255.0)[..., None]
    xt_eval = xt

    print(f"Device: {info.label}; TensorFlow {info.tensorflow}, Keras {info.keras}")
    print(f"Model: {PRESET!r}; Fashion-MNIST, {len(x):,} training images, {len(xt):,} test images, "
          f"batch size {BATCH}, 1 epoch per run, {args.repeats} run(s) of each, interleaved.\n")

    times = {"plain": [], "page": [], "fast": []}
    accs = {"plain": [], "page": [], "fast": []}
    extra = {}
    for run in range(1, args.repeats + 1):
        for name in ("plain", "page", "fast"):
            if name == "plain":
                seconds, model = plain(x, y, xt, yt)
            else:
                seconds, model, n_reports, history = page(x_raw, y, xt_raw, yt, fast=(name == "fast"))
                extra[name] = (n_reports, history["steps_per_execution"])
            acc = model.evaluate(xt_eval, yt, batch_size=1024, verbose=0)[1]
            times[name].append(seconds)
            accs[name].append(acc)
            print(f"  run {run} {name:5s} {seconds:6.2f} s   test accuracy {acc:.4f}", flush=True)

    for label, pick in (("median", statistics.median), ("best", min)):
        t = {k: pick(v) for k, v in times.items()}
        print(f"\nEpoch time, {label} of runs (tracing and validation included):")
        print(f"  plain model.fit script          {t['plain']:6.2f} s")
        print(f"  page trainer (normal, progress) {t['page']:6.2f} s   "
              f"overhead vs plain {100 * (t['page'] / t['plain'] - 1):+.1f}%   "
              f"({extra['page'][0]} progress reports)")
        print(f"  fast setting (with progress)    {t['fast']:6.2f} s   "
              f"speed-up vs plain {t['plain'] / t['fast']:.2f}x   "
              f"(steps_per_execution {extra['fast'][1]})")
    print("\nTest accuracy after 1 epoch (mean of runs, min..max):")
    for name in ("plain", "page", "fast"):
        print(f"  {name:5s} {np.mean(accs[name]):.4f}  ({min(accs[name]):.4f}..{max(accs[name]):.4f})")
    print("\nPer-run ratios plain/page and plain/fast: "
          + ", ".join(f"{p / q:.2f}/{p / f:.2f}" for p, q, f in zip(times["plain"], times["page"], times["fast"])))


if __name__ == "__main__":
    main()
