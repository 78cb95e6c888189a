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
come from the later epochs, the epoch time a run of several epochs actually
has.

Interleaved by epoch: each repeat trains a fresh model of each setting, the
three in turn one *epoch* at a time (plain epoch 1, page epoch 1, fast
epoch 1, then epoch 2 in a rotated order, ...), each in its own thread that
waits for its turn between epochs, so only one trains at any moment. The
epochs compared are seconds apart, not a whole run apart: on a 2-core
machine shared with other work, a burst of load that lasts a run's length
(tens of seconds) used to fall on one setting and not the other, and a
single ratio of medians moved between 1.1x and 2.5x from run to run. Each
later epoch gives a paired ratio (plain over fast, the same epoch of the
same repeat); a repeat's ratio is the median of its pairs, and the summary
prints the median and the min-max of the repeats' ratios with the CPU share
other processes took meanwhile (from /proc/stat, where it exists): above
about 10%, the figures say how the settings share a busy machine, not how
they compare on an idle one. Not all load shows there: on a virtual
machine the host can take CPU time unseen (two epochs of the same work,
4.8 and 4.6 CPU-seconds, took 5.0 s and 2.8 s here with no other process
busy), so the
ratio of the best epochs of each setting is printed too. Data preparation is outside all timings. Test
accuracy after the last epoch is printed for each, to show the fast setting
loses none.

Then, as the app runs it (``--worker-repeats``, default 3; 0 skips it): the Train page's own job,
``cvcore.runs:train_job`` with the fast setting, submitted through :class:`cvcore.jobs.JobClient` to a
Ray worker (the app's local Ray, or ``--ray-address``; with the app's settings: one CPU asked per
job, the worker niced), on the same images (the first ``--train-size`` training images, the 10,000
test images as validation), its epochs read from the run it leaves in a temporary workspace
(``extra["epoch_seconds"]``, the trainer's own clock). Each worker run is followed by a plain run of
the same epochs in this process, while the worker is idle; a repeat's ratio is the median of its
paired later epochs (plain over worker). The worker's first epoch is printed apart, as above; the
time the job spent outside its run (Ray placing it, the worker loading the data, the end's saving) is
printed as "outside the run".

It prints; it asserts nothing.

Usage:
    .venv/bin/python benchmarks/training.py [--train-size N] [--epochs E] [--repeats R]
        [--worker-repeats W] [--ray-address ADDR]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
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
SETTINGS = ("plain", "page", "fast")


def _epoch_timer(before_epoch=None, after_epoch=None):
    """A Keras callback timing each epoch in ``.seconds``; ``before_epoch()`` runs before an
    epoch's clock starts, ``after_epoch()`` after it stops (both optional)."""
    import keras

    class EpochTimer(keras.callbacks.Callback):  # epoch hooks only: fit stays asynchronous
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            if before_epoch is not None:
                before_epoch()
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._start)
            if after_epoch is not None:
                after_epoch()

    return EpochTimer()


class Turns:
    """One epoch at a time: the worker of each setting waits for its turn before each epoch
    and hands the turn back after it; :meth:`run` hands out the turns."""

    def __init__(self, names):
        self._go = {n: threading.Event() for n in names}
        self._done = {n: threading.Event() for n in names}
        self._ready = {n: threading.Event() for n in names}

    def wait(self, name):
        self._ready[name].set()
        self._go[name].wait()
        self._go[name].clear()

    def done(self, name):
        self._done[name].set()

    def run(self, threads, rounds):
        """Start ``threads`` (name -> Thread), wait until each is set up, then give each one
        epoch per round, in an order rotated every round."""
        names = list(threads)
        for thread in threads.values():
            thread.start()
        for name in names:
            self._wait_for(self._ready[name], threads[name])
        for r in range(rounds):
            for name in names[r % len(names):] + names[: r % len(names)]:
                self._done[name].clear()
                self._go[name].set()
                self._wait_for(self._done[name], threads[name])
        for thread in threads.values():
            thread.join()

    @staticmethod
    def _wait_for(event, thread):
        while not event.wait(0.5):
            if not thread.is_alive():
                return  # it failed: its error is reported by the caller


def _cpu_ticks():
    """(busy ticks of the whole machine, ticks of this process), or None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        with open("/proc/self/stat") as f:
            own = f.read().rsplit(")", 1)[1].split()
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields[:8]) - idle, int(own[11]) + int(own[12])  # utime + stime
    except (OSError, ValueError, IndexError):
        return None


def _others_share(before, after, seconds):
    """Share of all CPUs that other processes used between two :func:`_cpu_ticks`."""
    if before is None or after is None or seconds <= 0:
        return None
    ticks = os.sysconf("SC_CLK_TCK") * seconds * (os.cpu_count() or 1)
    return max(0.0, ((after[0] - before[0]) - (after[1] - before[1])) / ticks)


def plain(x, y, xt, yt, epochs, turns=None):
    model = build_model(preset(PRESET))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    hooks = {} if turns is None else {"before_epoch": lambda: turns.wait("plain"),
                                      "after_epoch": lambda: turns.done("plain")}
    timer = _epoch_timer(**hooks)
    model.fit(x, y, batch_size=BATCH, epochs=epochs, validation_data=(xt, yt), verbose=0, callbacks=[timer])
    return timer.seconds, model, 0, None


def page(x_raw, y, xt_raw, yt, epochs, *, fast, turns=None):
    model = build_model(preset(PRESET))
    name = "fast" if fast else "page"
    reports = []

    def report(p):
        reports.append(p)
        if turns is None:
            return
        if p["phase"] == "train" and p["epoch"] == 0:  # the report before the first epoch
            turns.wait(name)
        elif p["phase"] == "epoch_end":  # after the epoch's clock stopped, before the next one starts
            turns.done(name)
            if p["epoch"] < epochs:
                turns.wait(name)

    history = train(model, ((x_raw, y), (xt_raw, yt)), epochs=epochs, batch_size=BATCH,
                    on_progress=report, fast=fast)
    return history["epoch_seconds"], model, len(reports), history


def worker_runs(x, y, xt, yt, *, train_size, epochs, repeats, ray_address):
    """The fast setting as the app runs it, in a Ray worker, each run paired with a plain run here."""
    import tempfile

    from cvcore.jobs import JobClient
    from cvcore.runs import RunConfig
    from cvcore.workspace import Store, new_token

    folder = Path(tempfile.mkdtemp(prefix="cvx-bench-worker-"))
    ws = Store(folder / "store").anonymous(new_token())
    client = JobClient(ray_address or "local", log_dir=folder / "logs")
    config = RunConfig(spec=preset(PRESET), dataset="fashion_mnist", n_train=int(train_size), n_val=len(xt),
                       epochs=int(epochs), batch_size=BATCH, fast=True, seed=0)
    print(f"\nIn a worker, as the app runs it: cvcore.runs:train_job (fast) on "
          f"{'the Ray cluster at ' + ray_address if ray_address else 'a local Ray'}, each run followed by a "
          f"plain run here; {repeats} repeat(s).")
    ratios, first, later, plain_later, starts = [], [], [], [], []
    try:
        deadline = time.monotonic() + 180
        while client.status().get("state") != "ready":
            if time.monotonic() > deadline:
                raise RuntimeError(f"the job service did not become ready: {client.status()}")
            time.sleep(0.5)
        for run in range(1, repeats + 1):
            submitted = time.perf_counter()
            job = client.submit(ws.id, "cvcore.runs:train_job", {"workspace": ws.ref(), "config": config.as_dict(),
                                                                 "name": f"Bench {run}", "title": PRESET},
                                name="bench", kind="train")
            done = client.get(job.id).wait(timeout=3600)
            wall = time.perf_counter() - submitted
            if done.status != "done":
                raise RuntimeError(f"the worker's run ended {done.status}: {done.error}")
            rec = ws.run(done.result["run"])
            seconds = rec.extra["epoch_seconds"]
            starts.append(wall - rec.seconds)
            plain_seconds = plain(x, y, xt, yt, epochs)[0]
            first.append(seconds[0])
            later.extend(seconds[1:])
            plain_later.extend(plain_seconds[1:])
            ratios.append(statistics.median(p / q for p, q in zip(plain_seconds[1:], seconds[1:])))
            print(f"  run {run} worker epochs " + ", ".join(f"{t:5.2f}" for t in seconds)
                  + f" s   test accuracy {rec.evaluation['accuracy']:.4f}   (outside the run: {starts[-1]:.1f} s)")
            print(f"  run {run} plain  epochs " + ", ".join(f"{t:5.2f}" for t in plain_seconds)
                  + f" s   plain/worker {ratios[-1]:.2f}x", flush=True)
    finally:
        client.close()
    print(f"  worker: first epoch {statistics.median(first):.2f} s, later epochs {_spread(later)} s; "
          f"plain here: later epochs {_spread(plain_later)} s")
    print(f"  speed-up of the fast setting in a worker vs plain: {_spread(ratios)}x over {repeats} repeat(s)")


def _spread(values, fmt="{:.2f}"):
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}..{fmt.format(max(values))})"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=60000, help="training images (default: all 60,000)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (default 3; at least 2)")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each setting, interleaved (default 5)")
    parser.add_argument("--worker-repeats", type=int, default=3,
                        help="fast runs as the app runs them, in a Ray worker, each paired with a plain run "
                             "(default 3; 0 skips them)")
    parser.add_argument("--ray-address", default=None, help="a Ray cluster for the worker runs (default: a local Ray)")
    args = parser.parse_args(argv)
    epochs = max(2, args.epochs)
    repeats = max(1, args.repeats)
    info = device.configure()
    (x_raw, y), (xt_raw, yt), _ = load_dataset("fashion_mnist")
    x_raw, y = x_raw[: args.train_size], y[: args.train_size]
    # What a plain script does, outside the timing (train() does it inside its own).
    x = (x_raw.astype("float32") / 255.0)[..., None]
    xt = (xt_raw.astype("float32") / 255.0)[..., None]
    print(f"Device: {info.label}; TensorFlow {info.tensorflow}, Keras {info.keras}")
    print(f"Model: {PRESET!r}; Fashion-MNIST, {len(x):,} training images, {len(xt):,} validation/test images, "
          f"batch size {BATCH}, {epochs} epochs per run, {repeats} run(s) of each, interleaved by epoch.\n")
    first = {n: [] for n in SETTINGS}
    later = {n: [] for n in SETTINGS}
    accs = {n: [] for n in SETTINGS}
    ratios = {"page": [], "fast": []}  # per repeat: median of the paired later-epoch ratios plain/setting
    pairs = {"page": [], "fast": []}  # every paired later-epoch ratio
    others = []
    extra = {}
    for run in range(1, repeats + 1):
        turns = Turns(SETTINGS)
        out, errors = {}, []

        def worker(name, fn):
            try:
                out[name] = fn()
            except BaseException as err:  # noqa: BLE001 - reported below
                errors.append((name, err))
                turns.done(name)

        jobs = {
            "plain": lambda: plain(x, y, xt, yt, epochs, turns),
            "page": lambda: page(x_raw, y, xt_raw, yt, epochs, fast=False, turns=turns),
            "fast": lambda: page(x_raw, y, xt_raw, yt, epochs, fast=True, turns=turns),
        }
        threads = {n: threading.Thread(target=worker, args=(n, jobs[n]), name=f"bench-{n}") for n in SETTINGS}
        t0, ticks0 = time.perf_counter(), _cpu_ticks()
        turns.run(threads, epochs)
        share = _others_share(ticks0, _cpu_ticks(), time.perf_counter() - t0)
        if errors:
            raise RuntimeError(f"the {errors[0][0]} run failed") from errors[0][1]
        if share is not None:
            others.append(share)
        for name in SETTINGS:
            seconds, model, n_reports, history = out[name]
            if history is not None:
                extra[name] = (n_reports, history["steps_per_execution"])
            acc = model.evaluate(xt, yt, batch_size=1024, verbose=0)[1]
            first[name].append(seconds[0])
            later[name].extend(seconds[1:])
            accs[name].append(acc)
            print(f"  run {run} {name:5s} epochs " + ", ".join(f"{t:5.2f}" for t in seconds)
                  + f" s   test accuracy {acc:.4f}", flush=True)
        for name in ratios:
            paired = [p / q for p, q in zip(out["plain"][0][1:], out[name][0][1:])]
            pairs[name].extend(paired)
            ratios[name].append(statistics.median(paired))
        busy = f"   other processes used {100 * share:.0f}% of the CPUs" if share is not None else ""
        print(f"  run {run} plain/fast {ratios['fast'][-1]:.2f}x, plain/page {ratios['page'][-1]:.2f}x{busy}\n",
              flush=True)
    f = {k: statistics.median(v) for k, v in first.items()}
    t = {k: statistics.median(v) for k, v in later.items()}
    print("Epoch time (validation included): first epoch (with tracing) | median of later epochs")
    print(f"  plain model.fit script          {f['plain']:6.2f} s | {t['plain']:6.2f} s")
    print(f"  page trainer (normal, progress) {f['page']:6.2f} s | {t['page']:6.2f} s   "
          f"({extra['page'][0]} progress reports in the last run)")
    print(f"  fast setting (with progress)    {f['fast']:6.2f} s | {t['fast']:6.2f} s   "
          f"(steps_per_execution {extra['fast'][1]})")
    print(f"\nRatios of later epochs, median (min..max) over {repeats} repeat(s)"
          f" [over all {len(pairs['fast'])} paired epochs]:")
    print(f"  speed-up of fast vs plain     {_spread(ratios['fast'])}x   [{_spread(pairs['fast'])}x]")
    print(f"  best later epoch plain / best later epoch fast   {min(later['plain']) / min(later['fast']):.2f}x"
          "   (the least disturbed epochs: the nearest to an idle machine)")
    overhead = [100 * (1 / r - 1) for r in ratios["page"]]
    print(f"  overhead of page vs plain     {_spread(overhead, '{:+.1f}')}%")
    if others:
        print(f"  other processes' share of the CPUs during the repeats: {_spread([100 * s for s in others], '{:.0f}')}%"
              + ("   (busy machine: the ratios are not those of an idle one)" if max(others) > 0.10 else ""))
    print(f"\nTest accuracy after {epochs} epochs (mean of runs, min..max):")
    for name in SETTINGS:
        print(f"  {name:5s} {np.mean(accs[name]):.4f}  ({min(accs[name]):.4f}..{max(accs[name]):.4f})")
    if args.worker_repeats > 0:
        worker_runs(x, y, xt, yt, train_size=len(x), epochs=epochs, repeats=args.worker_repeats,
                    ray_address=args.ray_address)


if __name__ == "__main__":
    main()
