"""Training a Keras classifier with live progress and a cooperative stop.

:func:`train` is what the Training page runs (in a background job, see
:mod:`cvcore.jobs`): it prepares MNIST-style arrays, compiles the model if
needed, fits it, reports progress through a callback, stops when asked, and
returns the history as plain lists.

Data preparation (done by :func:`prepare_images`): ``uint8`` images are
scaled to ``[0, 1]`` float32; images are reshaped to the model's input shape
when only a channel axis is missing (N x 28 x 28 -> N x 28 x 28 x 1) or when
they hold the same number of values (N x 28 x 28 -> N x 784). Float images
are taken as already scaled. Labels are class indices 0..k-1.

Two speeds:

* ``fast=False`` (default) is a plain ``model.fit`` over the arrays, as a
  script would write it, plus a light callback. Progress comes every
  ``progress_interval`` seconds and at each epoch's end; a stop takes
  effect after the batch during which ``should_stop()`` turned true.
* ``fast=True`` keeps the batch size, the optimizer and the number of
  updates (so the accuracy is the same) and removes overhead: a
  ``tf.data`` pipeline over pre-scaled tensors with prefetch, several
  batches per graph execution (``steps_per_execution``, chosen from the
  model's cost so one execution stays around 0.1 to 0.2 s on a CPU; see
  :func:`fast_steps_per_execution`), and
  validation in batches of 1024 (the metrics do not depend on the
  validation batch size). Keras calls batch-end callbacks once per
  execution, so in fast mode progress and the stop check happen once per
  *execution chunk*: a stop takes effect at the end of the chunk in
  which ``should_stop()`` turned true, at most ``steps_per_execution``
  batches later (the result's ``"steps_per_execution"`` says how many).
  XLA (``jit_compile``) was measured and left off: on a CPU it made these
  small networks about two times slower.

What a stop keeps: the weights (the model is trained in place, so every
batch that ran is in them), and the history of the epochs that finished,
validation included. The metrics of the epoch that was interrupted are
*dropped* from the per-epoch lists (they would mix a partial epoch with full
ones) and returned separately under ``"partial_epoch"``.
"""
from __future__ import annotations

import math
import numbers
import time

import numpy as np

from . import checks, device, outputs
from .errors import CvcoreError, ShapeError

__all__ = [
    "OPTIMIZERS",
    "OPTIMIZER_ARGS",
    "FAST_MAX_STEPS_PER_EXECUTION",
    "FAST_VALIDATION_BATCH_SIZE",
    "train",
    "describe_progress",
    "prepare_images",
    "make_optimizer",
    "fast_steps_per_execution",
]

OPTIMIZERS = ("adam", "sgd", "rmsprop")
#: Accepted keys of an optimizer dict, per optimizer name.
OPTIMIZER_ARGS = {
    "adam": ("learning_rate", "beta_1", "beta_2", "epsilon", "amsgrad"),
    "sgd": ("learning_rate", "momentum", "nesterov"),
    "rmsprop": ("learning_rate", "rho", "momentum", "epsilon", "centered"),
}
FAST_MAX_STEPS_PER_EXECUTION = 64
FAST_VALIDATION_BATCH_SIZE = 1024
# Multiply-accumulates per execution chunk in fast mode: 64 batches of 32 of
# the basic 3,730-parameter net (about 0.1 to 0.2 s on a 2-core CPU).
_FAST_CHUNK_MACS = 256_000_000
_MAX_EPOCHS = 1000
_MAX_BATCH = 65536


# --------------------------------------------------------------------------
# arguments


def _optimizer_config(optimizer) -> dict:
    """A name or dict -> a validated dict with 'name' and settings."""
    if isinstance(optimizer, str):
        optimizer = {"name": optimizer}
    if not isinstance(optimizer, dict):
        raise CvcoreError(
            "`optimizer` must be a name (" + ", ".join(map(repr, OPTIMIZERS)) + ") or a dict like "
            f"{{'name': 'sgd', 'learning_rate': 0.01}}; received {optimizer!r}."
        )
    name = optimizer.get("name")
    if not isinstance(name, str) or name.lower() not in OPTIMIZERS:
        raise CvcoreError(
            f"Unknown optimizer {name!r}; choose one of {', '.join(map(repr, OPTIMIZERS))}."
        )
    name = name.lower()
    config = {"name": name}
    for key, value in optimizer.items():
        if key == "name":
            continue
        if key not in OPTIMIZER_ARGS[name]:
            raise CvcoreError(
                f"Unknown setting {key!r} for optimizer {name!r}; it accepts "
                f"{', '.join(OPTIMIZER_ARGS[name])}."
            )
        what = f"a setting of {name}"
        if key in ("nesterov", "amsgrad", "centered"):
            config[key] = checks.flag(value, key)
        elif key == "learning_rate":
            config[key] = checks.number(value, key, 0, 10, low_open=True, what=what)
        elif key == "epsilon":
            config[key] = checks.number(value, key, 0, 1, low_open=True, what=what)
        else:  # momentum, beta_1, beta_2, rho
            config[key] = checks.number(value, key, 0, 1, high_open=True, what=what)
    if config.get("nesterov") and not config.get("momentum"):
        raise CvcoreError("Optimizer setting `nesterov` needs a `momentum` above 0; received momentum "
                          f"{optimizer.get('momentum', 0)!r}.")
    return config


def make_optimizer(optimizer="adam"):
    """A Keras optimizer from a name or a settings dict, validated.

    Args:
        optimizer: ``"adam"``, ``"sgd"``, ``"rmsprop"``, or a dict such as
            ``{"name": "sgd", "learning_rate": 0.01, "momentum": 0.9,
            "nesterov": True}`` or ``{"name": "adam", "learning_rate": 1e-3,
            "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}`` (see
            :data:`OPTIMIZER_ARGS`). A Keras optimizer object is returned as is.

    Returns:
        A new ``keras.optimizers.Optimizer``.

    Raises:
        CvcoreError: for an unknown name or setting, or a value out of range;
            the message names it and the value received.

    Example:
        >>> make_optimizer({"name": "sgd", "learning_rate": 0.01}).__class__.__name__
        'SGD'
    """
    keras = device.keras()

    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer
    config = _optimizer_config(optimizer)
    cls = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop}
    return cls[config.pop("name")](**config)


# --------------------------------------------------------------------------
# data


def prepare_images(x, input_shape) -> np.ndarray:
    """Images as the model takes them: float32, scaled, with the model's shape.

    Args:
        x: N images; ``uint8`` (0..255, scaled to [0, 1]) or float (taken
            as already scaled), of shape N x H x W, N x H x W x C or flat.
        input_shape: the model's input shape without the batch axis, e.g.
            ``(28, 28, 1)`` (``model.input_shape[1:]``).

    Returns:
        A float32 array of shape ``(N,) + input_shape``.

    Raises:
        ShapeError: when the images cannot take that shape; the message gives
            both shapes.

    Example:
        >>> prepare_images(np.full((2, 28, 28), 255, np.uint8), (28, 28, 1)).shape
        (2, 28, 28, 1)
    """
    x = np.asarray(x)
    input_shape = tuple(int(v) for v in input_shape)
    if x.ndim < 2:
        raise ShapeError(f"Images must be an array of N images; received an array of shape {x.shape}.")
    if x.dtype == np.uint8:
        out = np.multiply(x, np.float32(1.0 / 255.0), dtype=np.float32)
    elif np.issubdtype(x.dtype, np.floating):
        out = x.astype(np.float32, copy=False)
    else:
        raise ShapeError(f"Images must be uint8 (0..255) or float (0..1); received dtype {x.dtype}.")
    if out.shape[1:] == input_shape:
        return out
    if math.prod(out.shape[1:]) == math.prod(input_shape):
        return out.reshape((len(out),) + input_shape)
    raise ShapeError(
        f"Images of shape {x.shape[1:]} do not fit the model's input shape {input_shape}."
    )


def _prepare_labels(y, n, units, arg):
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or len(y) != n:
        raise ShapeError(f"`{arg}` must hold one class index per image ({n}); received shape {y.shape}.")
    if not (np.issubdtype(y.dtype, np.integer) or (y.size and np.all(np.mod(y, 1) == 0))):
        raise ShapeError(f"`{arg}` must hold integer class indices; received dtype {y.dtype}.")
    if y.size and (y.min() < 0 or y.max() >= units):
        raise ShapeError(
            f"`{arg}` holds class indices from {int(y.min())} to {int(y.max())}, but the model "
            f"outputs {units} classes (0..{units - 1})."
        )
    return y.astype(np.int32)


def _unpack(data):
    try:
        (x_train, y_train), (x_val, y_val) = data
    except (TypeError, ValueError):
        raise CvcoreError(
            "`data` must be ((x_train, y_train), (x_val, y_val)); x_val may be None. "
            f"Received {type(data).__name__}."
        ) from None
    return x_train, y_train, x_val, y_val


def _is_dataset(obj) -> bool:
    return hasattr(obj, "element_spec") and hasattr(obj, "cardinality")


def _unpack_datasets(data):
    """``(train_ds, val_ds)`` when ``data`` holds tf.data datasets, else None (arrays)."""
    if not isinstance(data, (tuple, list)) or len(data) != 2 or not _is_dataset(data[0]):
        return None
    train_ds, val_ds = data
    if val_ds is not None and not _is_dataset(val_ds):
        raise CvcoreError(f"With a training dataset, the validation data must be a tf.data dataset or None; "
                          f"received {type(val_ds).__name__}.")
    card = int(train_ds.cardinality())
    if card < 1:
        raise CvcoreError("The training dataset must be batched, finite and not empty, with a known length "
                          f"(tf.data cardinality {card}).")
    return train_ds, val_ds


# --------------------------------------------------------------------------
# speed


def _macs_per_sample(model) -> int:
    """Multiply-accumulates of one forward pass (convolutions and dense layers)."""
    total = 0
    for layer in model.layers:
        kind = type(layer).__name__
        try:
            out_shape = tuple(layer.output.shape)
        except (AttributeError, ValueError):
            continue
        if kind == "Conv2D" and getattr(layer, "kernel", None) is not None:
            kh, kw, cin, cout = layer.kernel.shape
            total += math.prod(out_shape[1:3]) * cout * kh * kw * cin
        elif kind == "Dense" and getattr(layer, "kernel", None) is not None:
            cin, cout = layer.kernel.shape
            total += math.prod(out_shape[1:-1] or (1,)) * cin * cout
    return int(total)


def fast_steps_per_execution(model, batch_size: int) -> int:
    """The batches per graph execution that fast mode uses for this model.

    Cheap models gain most from running many batches per execution; costly
    ones gain little, and a long execution would delay a stop. The number is
    a power of two chosen so one execution is about 256 million
    multiply-accumulates (64 batches of 32 for the 3,730-parameter net),
    between 1 and :data:`FAST_MAX_STEPS_PER_EXECUTION`.

    Args:
        model: a built Keras model.
        batch_size: the training batch size.

    Returns:
        An int in ``[1, FAST_MAX_STEPS_PER_EXECUTION]``.

    Example:
        >>> from cvcore.models import PRESETS, build_model
        >>> fast_steps_per_execution(build_model(PRESETS["Basic CNN (6 and 12 filters)"]), 32)
        64
    """
    per_batch = max(1, _macs_per_sample(model) * int(batch_size))
    steps = max(1, _FAST_CHUNK_MACS // per_batch)
    steps = 1 << (int(steps).bit_length() - 1)  # round down to a power of two
    return int(min(FAST_MAX_STEPS_PER_EXECUTION, steps))


def _dataset(x, y, batch_size, *, seed=None):
    """Batches of (images, labels), reshuffled every epoch, prefetched.

    Single examples are cached after the first pass and shuffled with a
    buffer of the whole set (a full reshuffle per epoch, as ``fit`` does on
    arrays); measured here this beat gathering each batch from shuffled
    indices by about 15% per epoch on the basic net.
    """
    tf = device.tensorflow()

    ds = tf.data.Dataset.from_tensor_slices((x, y)).cache()
    ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


# --------------------------------------------------------------------------
# the callback


def _make_callback(keras, state):
    class _Progress(keras.callbacks.Callback):
        """Reports progress, checks for a stop, records complete epochs.

        It hooks the start of each batch, never its end: a callback that
        overrides ``on_train_batch_end`` makes Keras convert every batch's
        metrics to Python floats inside the training loop (a device sync per
        batch, +13 to 16% epoch time measured). A batch-begin hook receives
        no metrics, so checking the stop costs nothing; the batch it precedes
        still runs and Keras' loop ends right after it, so training stops
        within one batch of the request (within one chunk of
        ``steps_per_execution`` batches in fast mode). A progress report
        reads the metrics from the model, at most every ``interval`` seconds.
        """

        def on_epoch_begin(self, epoch, logs=None):
            state["epoch"] = epoch + 1
            state["step"] = 0
            state["epoch_base"] = state["steps_run"]
            state["epoch_iterations"] = _iterations_of(self.model)
            state["epoch_start"] = time.perf_counter()

        def on_train_batch_begin(self, batch, logs=None):
            # `batch` batches of this epoch have run (its first step in fast mode's chunks).
            state["step"] = batch
            state["steps_run"] = state["epoch_base"] + batch
            if state["should_stop"] is not None and state["should_stop"]():
                state["stopped"] = True
                self.model.stop_training = True
            report = state["report"]
            if report is not None:
                now = time.perf_counter()
                if now >= state["next_report"] or state["stopped"]:
                    state["next_report"] = now + state["interval"]
                    report(_progress(state, "train", _metrics(self.model.get_metrics_result()) if batch else {}))

        def on_epoch_end(self, epoch, logs=None):
            state["step"] = _iterations_of(self.model) - state["epoch_iterations"]  # exact, also when stopped
            state["steps_run"] = state["epoch_base"] + state["step"]
            logs = dict(logs or {})
            if state["stopped"]:
                state["partial"] = _partial(state, logs)
                return
            if state["val"] is not None:
                if state["report"] is not None:
                    state["report"](_progress(state, "validate", logs))
                val = self.model.evaluate(
                    state["val"][0],
                    state["val"][1],
                    batch_size=state["val_batch_size"],
                    verbose=0,
                    return_dict=True,
                    callbacks=[_StopEvaluating()],
                )
                if state["stopped"]:
                    self.model.stop_training = True
                    state["partial"] = _partial(state, logs)
                    return
                logs.update({f"val_{k}": v for k, v in val.items()})
            for key, value in logs.items():
                state["history"].setdefault(key, []).append(float(value))
            state["epochs_run"] += 1
            state["epoch_seconds"].append(time.perf_counter() - state["epoch_start"])
            if state["report"] is not None:
                state["next_report"] = time.perf_counter() + state["interval"]
                state["report"](_progress(state, "epoch_end", logs))

    class _FastProgress(_Progress):
        """Fast mode: also check at the end of each chunk of batches, so a stop waits for one
        chunk, not two. The per-chunk sync costs little: one per ``steps_per_execution`` batches."""

        def on_train_batch_end(self, batch, logs=None):
            if state["should_stop"] is not None and state["should_stop"]():
                state["stopped"] = True
                self.model.stop_training = True

    class _StopEvaluating(keras.callbacks.Callback):
        def on_test_batch_end(self, batch, logs=None):
            if state["should_stop"] is not None and state["should_stop"]():
                state["stopped"] = True
                self.model.stop_evaluating = True

    return _FastProgress() if state["fast"] else _Progress()


def _iterations_of(model) -> int:
    """Batches the model's optimizer has applied so far (0 before it is built)."""
    optimizer = getattr(model, "optimizer", None)
    iterations = getattr(optimizer, "iterations", None)
    return int(iterations.numpy()) if iterations is not None else 0


def _metrics(logs) -> dict:
    """Numeric entries of Keras logs or metric results (Python, NumPy or scalar tensors) as floats."""
    out = {}
    for k, v in (logs or {}).items():
        if isinstance(v, (numbers.Real, np.floating, np.integer)) or getattr(v, "shape", None) == ():
            out[k] = float(v)
    return out


def _progress(state, phase, logs) -> dict:
    return {
        "phase": phase,
        "epoch": state["epoch"],
        "epochs": state["epochs"],
        "step": state["step"],
        "steps": state["steps"],
        "steps_run": state["steps_run"],
        "elapsed": round(time.perf_counter() - state["start"], 3),
        **_metrics(logs),
    }


def describe_progress(progress: dict | None) -> tuple[float, str]:
    """A progress report (as :func:`train` and the jobs built on it send) -> (fraction done, text for people).

    ``"epoch"`` in a report is the epoch under way, counted from 1 (0 before
    the first begins), and ``"step"`` the batches of it done so far. An
    epoch's share of the bar fills with its batches but for one step's width,
    which the epoch's end (``"epoch_end"``, after validation) fills: the
    fraction reaches 1 only when the last epoch has ended. Reports of other
    phases (``"load"`` and ``"extract"`` with ``"done"`` and ``"total"``,
    ``"evaluate"``) are described too; a ``"stage"`` names what runs, for
    people.

    Args:
        progress: the latest report, or None (or ``{}``) before the first: ``"Starting…"``.

    Returns:
        ``(fraction, text)``: a float from 0 to 1, and one line such as
        ``"Epoch 1 of 3, step 120 of 469, loss 0.5123, accuracy 0.8210"``.

    Example:
        >>> describe_progress({"phase": "train", "epoch": 1, "epochs": 3, "step": 0, "steps": 100})
        (0.0, 'Epoch 1 of 3, step 0 of 100')
        >>> describe_progress({"phase": "epoch_end", "epoch": 3, "epochs": 3, "step": 100, "steps": 100})[0]
        1.0
        >>> describe_progress({"phase": "load", "stage": "Reading", "done": 5, "total": 10})
        (0.5, 'Reading: 5 of 10 images')
    """
    p = progress or {}
    if not p:  # the job has started, its first report not yet in
        return 0.0, "Starting…"
    phase, stage = p.get("phase"), p.get("stage")
    if phase in ("load", "extract"):
        done, total = int(p.get("done", 0)), int(p.get("total") or 0)
        what = "batches" if phase == "extract" else "images"
        text = f"{stage or 'Loading'}: {done:,} of {total:,} {what}" if total else f"{stage or 'Loading'}…"
        return (min(done / total, 1.0) if total else 0.0), text
    if phase == "evaluate":
        return 1.0, stage or "Evaluating on the test set…"
    epochs = max(int(p.get("epochs") or 1), 1)
    epoch = min(max(int(p.get("epoch") or 0), 0), epochs)
    steps = max(int(p.get("steps") or 1), 1)
    step = min(max(int(p.get("step") or 0), 0), steps)
    # An epoch's share of the bar fills with its batches but for one step's width, which its end
    # (validation, the record) fills: the bar is full only once the last epoch has ended.
    within = 1.0 if phase == "epoch_end" else step / (steps + 1)
    fraction = (max(epoch - 1, 0) + (within if epoch else 0.0)) / epochs
    text = f"Epoch {max(epoch, 1)} of {epochs}, step {step} of {steps}"
    if stage:
        text = f"{stage}: {text[0].lower()}{text[1:]}"
    if phase == "validate":
        text += ", validating"
    for key in ("loss", "accuracy"):
        if isinstance(p.get(key), numbers.Real):
            text += f", {key} {p[key]:.4f}"
    return min(max(fraction, 0.0), 1.0), text


def _partial(state, logs) -> dict:
    return {"epoch": state["epoch"], "steps": state["step"], "steps_per_epoch": state["steps"], **_metrics(logs)}


# --------------------------------------------------------------------------
# train


def _output_units(model) -> int:
    shape = tuple(model.output_shape) if not isinstance(model.output_shape, list) else None
    if shape is None or len(shape) != 2 or shape[1] is None or shape[1] < 2:
        raise ShapeError(
            f"The model's output has shape {model.output_shape}; a classifier must end in a "
            "vector of class scores, e.g. Flatten then Dense(10, activation='softmax')."
        )
    return int(shape[1])


def train(
    model,
    data,
    *,
    epochs,
    batch_size,
    optimizer="adam",
    on_progress=None,
    should_stop=None,
    fast=False,
    progress_interval=0.25,
    seed=None,
) -> dict:
    """Train a classifier in place, with progress reports and a cooperative stop.

    Compiling: a model that is not compiled yet is compiled with
    ``optimizer``, the loss of the model's ending (:func:`cvcore.outputs.loss`
    of :func:`cvcore.outputs.output_kind`: sparse categorical cross-entropy,
    ``from_logits`` unless it ends in a softmax or a sigmoid) and the
    ``accuracy`` metric. A model
    compiled elsewhere is trained as compiled (``optimizer`` is ignored);
    one compiled by an earlier call of ``train`` keeps its optimizer and its
    state when ``optimizer`` is the same, and is recompiled otherwise.

    Args:
        model: a built Keras model whose output is ``(None, classes)``.
        data: ``((x_train, y_train), (x_val, y_val))``; ``x_val`` may be
            None (no validation). Images as :func:`prepare_images` takes
            them (uint8 N x 28 x 28 is scaled to [0, 1] and given a channel
            axis here); labels are class indices. Or ``(train_ds, val_ds)``:
            batched ``tf.data`` datasets of ``(images, labels)`` with a known
            length, fed to the model as they are (``val_ds`` may be None;
            ``batch_size`` and ``fast`` are then only validated: the
            datasets keep their own batching and pipeline).
        epochs: number of passes over the training set (1 to 1000).
        batch_size: images per update (1 to 65536).
        optimizer: as :func:`make_optimizer` takes it.
        on_progress: called with a small dict: ``phase`` (``"train"``,
            ``"validate"``, ``"epoch_end"``), ``epoch`` (1-based),
            ``epochs``, ``step`` (batches done in this epoch), ``steps``
            (batches per epoch), ``steps_run``, ``elapsed`` seconds, and the
            latest metrics (``loss``, ``accuracy``; ``val_loss`` and
            ``val_accuracy`` at an epoch's end). It is called at most every
            ``progress_interval`` seconds during an epoch, and at every
            epoch's end.
        should_stop: called after every batch (every execution chunk in
            fast mode) and every validation batch; when it returns true,
            training ends after that batch and what ran so far is returned.
        fast: use the fast settings described in the module docstring.
        progress_interval: the least seconds between two ``"train"`` reports.
        seed: optional seed of the shuffling in fast mode.

    Returns:
        A dict: ``"loss"``, ``"accuracy"``, ``"val_loss"``,
        ``"val_accuracy"`` (one float per *complete* epoch; the ``val_``
        lists are empty without validation data), any other metric the
        model was compiled with, ``"stopped"`` (bool), ``"epochs_run"``
        (complete epochs), ``"steps_run"`` (batches applied to the weights,
        the partial epoch's included), ``"partial_epoch"`` (None, or the
        interrupted epoch's ``epoch``, ``steps``, ``steps_per_epoch`` and
        running metrics, which are not in the lists), ``"seconds"`` (wall
        time), ``"epoch_seconds"`` (per complete epoch, validation
        included), ``"steps_per_execution"`` and ``"fast"``.

    Raises:
        CvcoreError: for a bad argument (the message names it and the value).
        ShapeError: when the data does not fit the model.

    Example:
        >>> from cvcore.models import build_model, PRESETS
        >>> from cvcore.data import load_dataset
        >>> (x, y), (xt, yt), _ = load_dataset("digits")
        >>> model = build_model(PRESETS["Basic CNN (6 and 12 filters)"])
        >>> h = train(model, ((x[:256], y[:256]), (xt[:64], yt[:64])), epochs=2, batch_size=32, fast=True)
        >>> len(h["val_accuracy"]), h["stopped"]
        (2, False)
    """
    checks.integer(epochs, "epochs", 1, _MAX_EPOCHS)
    checks.integer(batch_size, "batch_size", 1, _MAX_BATCH)
    checks.callback(on_progress, "on_progress")
    checks.callback(should_stop, "should_stop")
    checks.flag(fast, "fast")
    checks.number(progress_interval, "progress_interval", 0, 3600, what="seconds")
    if not hasattr(model, "fit") or not hasattr(model, "input_shape"):
        raise CvcoreError(f"`model` must be a Keras model; received {type(model).__name__}.")
    keras = device.keras()

    opt_config = None
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        opt_config = _optimizer_config(optimizer)  # validate before any work

    units = _output_units(model)
    datasets = _unpack_datasets(data)
    if datasets is not None:
        x, val = datasets
        steps = int(x.cardinality())
        fast = False  # the dataset is the pipeline
    else:
        x_train, y_train, x_val, y_val = _unpack(data)
        input_shape = model.input_shape[1:]
        x = prepare_images(x_train, input_shape)
        if len(x) == 0:
            raise ShapeError("`x_train` holds no images.")
        y = _prepare_labels(y_train, len(x), units, "y_train")
        val = None
        if x_val is not None:
            xv = prepare_images(x_val, input_shape)
            val = (xv, _prepare_labels(y_val, len(xv), units, "y_val")) if len(xv) else None
        steps = math.ceil(len(x) / batch_size)

    # compile
    key = repr(sorted(opt_config.items())) if opt_config is not None else id(optimizer)
    if not getattr(model, "compiled", False) or (
        getattr(model, "_cvcore_optimizer", None) is not None and model._cvcore_optimizer != key
    ):
        model.compile(
            optimizer=make_optimizer(optimizer if opt_config is None else opt_config),
            loss=outputs.loss(outputs.output_kind(model)),
            metrics=["accuracy"],
        )
        model._cvcore_optimizer = key

    spe = fast_steps_per_execution(model, batch_size) if fast else 1
    spe = max(1, min(spe, steps))
    saved = int(model.steps_per_execution)
    wanted = spe if fast else saved
    if wanted != saved:
        model.steps_per_execution = wanted
        model.train_function = model.test_function = None  # retrace with the new setting

    state = {
        "epoch": 0, "epochs": epochs, "step": 0, "epoch_base": 0, "epoch_iterations": 0, "steps": steps,
        "steps_run": 0, "fast": fast,
        "stopped": False, "partial": None, "history": {}, "epochs_run": 0,
        "epoch_seconds": [], "report": on_progress, "should_stop": should_stop,
        "interval": float(progress_interval), "next_report": time.perf_counter() + float(progress_interval),
        "start": time.perf_counter(), "epoch_start": time.perf_counter(),
        "val": None, "val_batch_size": None if datasets is not None else
        FAST_VALIDATION_BATCH_SIZE if fast else batch_size,
    }

    start_iterations = _iterations_of(model)

    def result():
        state["steps_run"] = _iterations_of(model) - start_iterations  # batches applied, exactly
        history = state["history"]
        out = {key: list(history.get(key, [])) for key in ("loss", "accuracy", "val_loss", "val_accuracy")}
        out.update({k: list(v) for k, v in history.items() if k not in out})
        out.update(
            stopped=state["stopped"],
            epochs_run=state["epochs_run"],
            steps_run=state["steps_run"],
            partial_epoch=state["partial"],
            seconds=time.perf_counter() - state["start"],
            epoch_seconds=list(state["epoch_seconds"]),
            steps_per_execution=int(wanted),
            fast=fast,
        )
        return out

    if should_stop is not None and should_stop():
        state["stopped"] = True
        return result()

    callback = _make_callback(keras, state)
    if on_progress is not None:
        on_progress(_progress(state, "train", {}))
    try:
        tf = device.tensorflow()

        if datasets is not None:
            state["val"] = (val, None) if val is not None else None
            model.fit(x, epochs=epochs, verbose=0, shuffle=False, callbacks=[callback])  # the dataset shuffles
        elif fast:
            # The validation images become tensors once, not once per epoch.
            state["val"] = (tf.constant(val[0]), tf.constant(val[1])) if val is not None else None
            model.fit(
                _dataset(x, y, batch_size, seed=seed),
                epochs=epochs,
                verbose=0,
                shuffle=False,  # the pipeline shuffles
                callbacks=[callback],
            )
        else:
            state["val"] = (tf.constant(val[0]), tf.constant(val[1])) if val is not None else None
            model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0, callbacks=[callback])
    finally:
        if wanted != saved:
            model.steps_per_execution = saved
            model.train_function = model.test_function = None
        model.stop_training = False
    return result()
