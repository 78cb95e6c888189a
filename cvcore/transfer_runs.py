"""A transfer-learning run from start to finish, as the Transfer page's background job runs it.

Five ways to train on an :class:`cvcore.folders.ImageDataset` (its saved
validation split honoured), the chapters' steps:

* ``"baseline"``: the seed's sanity check, logistic regression on raw
  pixels (Rescaling, Flatten, Dense softmax, plain SGD). If a trivial model
  does well, the data gives the answer away.
* ``"frozen"``: an ImageNet base, frozen, with a new head, trained end to
  end on the images (optionally augmented in the input pipeline): every
  epoch runs the whole base forward over every image.
* ``"features"``: the base runs once over the data set and its outputs
  (bottleneck features) are cached on disk; the head then trains on them
  in seconds.
* ``"finetune"``: the head first (on cached features), then the top layers of
  the base unfrozen and trained on with a smaller learning rate; the
  history holds both phases.
* ``"scratch"``: the same architecture, randomly initialised and wholly
  trainable (the seed's ``weights=None`` experiment).

Every mode reuses :func:`cvcore.training.train` (progress, stop, history).
The result's model always takes raw 0..255 RGB pixels, so the Visualize
page can run Grad-CAM on it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import checks, device, pipeline, transfer
from .applications import APPLICATIONS
from .errors import CvcoreError
from .runs import HISTORY_KEYS

__all__ = ["MODES", "MODE_TITLES", "TransferConfig", "TransferResult", "run_transfer", "transfer_run", "transfer_job",
           "mode_costs",
           "transfer_summary", "mode_params", "select_train", "logistic_model", "features_cache_key", "DEFAULT_OPTIMIZERS"]

MODES = ("baseline", "frozen", "features", "finetune", "scratch")
MODE_TITLES = {
    "baseline": "Baseline: logistic regression on pixels",
    "frozen": "Frozen base + new head, end to end",
    "features": "Cached bottleneck features + head",
    "finetune": "Fine-tuning the top of the base",
    "scratch": "From scratch (random weights, all trainable)",
}

#: The optimizer of each mode when the configuration names none (fine-tuning's second phase
#: uses Adam at ``finetune_learning_rate``).
DEFAULT_OPTIMIZERS = {"baseline": {"name": "sgd", "learning_rate": 0.01}}
_DEFAULT_OPTIMIZER = {"name": "adam", "learning_rate": 1e-3}


@dataclass(frozen=True)
class TransferConfig:
    """Everything a transfer run depends on (JSON-able).

    Attributes:
        mode: one of :data:`MODES`.
        base: ``"vgg16"``, ``"resnet50"``, ``"inceptionv3"`` or ``"mobilenetv2"``
            (not used by ``"baseline"``).
        image_size: images are resized to this square side (the seed: 150).
        weights: the base's weights: ``"imagenet"``, None (random) or a
            weights file's path; ``"scratch"`` always starts from random ones.
        head: ``"flatten"`` or ``"gap"`` (GlobalAveragePooling2D).
        dropout: rate of a Dropout layer before the head's Dense one.
        epochs: epochs of the head (or of the whole model in ``"baseline"``,
            ``"frozen"`` and ``"scratch"``).
        batch_size: images per update.
        optimizer: as :func:`cvcore.training.make_optimizer` takes it; None
            for the mode's own (:data:`DEFAULT_OPTIMIZERS`: plain SGD for
            the baseline, as in the seed; Adam otherwise).
        augment: a Keras-engine recipe (:mod:`cvcore.augment`) applied to the
            training batches in ``"frozen"``, ``"scratch"`` and fine-tuning's
            second phase; None for none. Cached features are never augmented
            (they are computed once).
        finetune_layers: top layers of the base unfrozen in ``"finetune"``.
        finetune_epochs: epochs of fine-tuning's second phase.
        finetune_learning_rate: its learning rate (Adam), much smaller than the head's.
        max_per_class: use at most this many training images per class (None: all).
        seed: Keras' random seed (weights, shuffling, augmentation).
    """

    mode: str
    base: str = "vgg16"
    image_size: int = 150
    weights: object = "imagenet"
    head: str = "flatten"
    dropout: float = 0.0
    epochs: int = 5
    batch_size: int = 32
    optimizer: object = None
    augment: object = None
    finetune_layers: int = 4
    finetune_epochs: int = 3
    finetune_learning_rate: float = 1e-5
    max_per_class: object = None
    seed: int = 0

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class TransferResult:
    """What a finished (or stopped) transfer run leaves.

    Attributes:
        config: the :class:`TransferConfig`.
        model: the trained model on raw 0..255 pixels (None when stopped
            before any training).
        history: per-epoch lists under :data:`cvcore.runs.HISTORY_KEYS`, both
            phases of fine-tuning one after the other.
        phases: ``[(title, epochs), ...]`` in order: where the history's phases begin and end.
        stopped: whether the user stopped it.
        seconds: wall time.
        evaluation: :class:`cvcore.evaluation.Evaluation` on the validation
            images, or None.
        val_images: the validation images, uint8 ``N x side x side x 3``.
        val_labels: their classes.
        class_names: the data set's classes.
        extraction: for the feature modes, ``{"seconds", "images", "cached"}``
            (``cached``: read from the disk cache instead of computed).
        params: ``{"total", "trainable", "non_trainable"}`` of the trained model, as Keras counts them.
        train_images: how many training images were used.
        epoch_seconds: wall time of every complete epoch, validation
            included, both phases (feature extraction not included).
    """

    config: TransferConfig
    model: object
    history: dict
    phases: list
    stopped: bool
    seconds: float
    evaluation: object
    val_images: np.ndarray
    val_labels: np.ndarray
    class_names: list
    extraction: dict | None
    params: dict
    train_images: int
    epoch_seconds: list = dataclasses.field(default_factory=list)


def _validate(config: TransferConfig) -> None:
    c = config
    if not isinstance(c, TransferConfig):
        raise CvcoreError(f"`config` must be a TransferConfig; received {type(c).__name__}.")
    checks.choice(c.mode, "mode", MODES)
    checks.choice(c.base, "base", tuple(APPLICATIONS))
    checks.integer(c.image_size, "image_size", 32, pipeline.MAX_SIDE)
    if c.base == "inceptionv3" and c.mode != "baseline" and c.image_size < 75:
        raise CvcoreError(f"InceptionV3 takes images of at least 75 x 75; received `image_size` {c.image_size}.")
    checks.choice(c.head, "head", transfer.HEADS)
    checks.number(c.dropout, "dropout", 0, 1, high_open=True)
    checks.integer(c.epochs, "epochs", 1, 500)
    checks.integer(c.finetune_epochs, "finetune_epochs", 1, 500)
    checks.integer(c.batch_size, "batch_size", 1, 1024)
    checks.integer(c.finetune_layers, "finetune_layers", 1)
    checks.number(c.finetune_learning_rate, "finetune_learning_rate", 0, 1, low_open=True)
    if c.max_per_class is not None:  # None: every image
        checks.integer(c.max_per_class, "max_per_class", 1)
    checks.integer(c.seed, "seed", 0)
    if c.augment is not None:
        from .augment import validate_recipe

        if validate_recipe(c.augment)["engine"] != "keras":
            raise CvcoreError("`augment` must be a Keras-engine recipe (it runs in the tf.data pipeline); "
                              f"received engine {c.augment.get('engine')!r}.")
    from .training import _optimizer_config

    if c.optimizer is not None:
        _optimizer_config(c.optimizer)


def select_train(dataset, max_per_class=None):
    """The training files of ``dataset``'s saved split: ``(paths, labels)``, at most
    ``max_per_class`` per class (the first ones, in file order), for quick runs.

    Example:
        >>> from cvcore.samples import digits_dataset
        >>> paths, labels = select_train(digits_dataset(per_class=5), 2)
        >>> len(paths), labels[:4].tolist()
        (20, [0, 0, 1, 1])
    """
    paths, labels = dataset.subset("train")
    if max_per_class is None:
        return list(paths), np.asarray(labels)
    keep = np.zeros(len(labels), bool)
    for c in np.unique(labels):
        keep[np.flatnonzero(labels == c)[: int(max_per_class)]] = True
    return [p for p, k in zip(paths, keep) if k], np.asarray(labels)[keep]


def features_cache_key(dataset, subset: str, paths, image_size: int) -> str:
    """What identifies the images whose features are cached: the data set's exact file list
    (names, sizes, modification times: :meth:`ImageDataset.fingerprint`), the subset and the
    files chosen from it, and the side they are resized to."""
    digest = hashlib.sha256(f"{dataset.fingerprint()}|{subset}|{int(image_size)}|".encode())
    for p in paths:
        digest.update(f"{p}\n".encode())
    return digest.hexdigest()[:32]


def logistic_model(input_shape, num_classes):
    """The seed's baseline: raw pixels -> Rescaling(1/255) -> Flatten -> Dense(softmax).

    Example:
        >>> logistic_model((150, 150, 3), 12).count_params()
        810012
    """
    keras = device.keras()
    from . import model_inputs as inputs

    pixels = keras.Input(shape=tuple(input_shape), name="pixels")
    x = keras.layers.Rescaling(1.0 / 255, name="rescaling")(pixels)
    x = keras.layers.Flatten(name="flatten")(x)
    out = keras.layers.Dense(int(num_classes), activation="softmax", name="predictions")(x)
    return inputs.set_preprocessing(keras.Model(pixels, out, name="logistic_regression"), "raw")


def _params(model) -> dict:
    trainable = int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))
    total = int(model.count_params())
    return {"total": total, "trainable": trainable, "non_trainable": total - trainable}


def run_transfer(config: TransferConfig, dataset, ctx=None, *, cache_dir=None) -> TransferResult:
    """Train one way (see :data:`MODES`) on a data set's saved split; the body of a Transfer-page job.

    Args:
        config: the :class:`TransferConfig`.
        dataset: a :class:`cvcore.folders.ImageDataset` with training and
            validation images.
        ctx: a :class:`cvcore.jobs.JobContext` (``report(dict)``,
            ``should_stop()``), or None. Reports carry ``"stage"`` (what runs
            now, for people), ``"phase"`` (``"load"``, ``"extract"``, then
            the trainer's ``"train"``, ``"validate"``, ``"epoch_end"``;
            ``"evaluate"`` last), ``"done"``/``"total"`` while loading and
            extracting, the trainer's epoch and step, and ``"history"`` and
            ``"phases"`` so far (for live curves).
        cache_dir: the folder of cached bottleneck features (shared by
            sessions); None caches nothing.

    Returns:
        A :class:`TransferResult`.

    Raises:
        CvcoreError: a bad configuration, a data set without validation
            images, an unreadable file; WeightsUnavailableError when ImageNet
            weights cannot be had.

    Example:
        >>> from cvcore.samples import digits_dataset
        >>> cfg = TransferConfig(mode="baseline", base="vgg16", image_size=32, epochs=2)
        >>> result = run_transfer(cfg, digits_dataset(per_class=5))
        >>> len(result.history["val_accuracy"]), result.stopped, 0 <= result.evaluation.accuracy <= 1
        (2, False, True)
    """
    _validate(config)
    c = config
    keras = device.keras()
    from .evaluation import evaluate
    from .training import train

    should_stop = ctx.should_stop if ctx is not None else (lambda: False)
    started = time.perf_counter()
    history = {key: [] for key in HISTORY_KEYS}
    phases: list = []
    epoch_seconds: list = []
    stage = {"text": ""}

    def report(p: dict) -> None:
        if ctx is not None:
            ctx.report({**p, "stage": stage["text"], "history": {k: list(v) for k, v in history.items()},
                        "phases": [list(ph) for ph in phases]})

    # ---------------------------------------------------------------- data
    train_paths, train_labels = select_train(dataset, c.max_per_class)
    val_paths, val_labels = dataset.subset("validation")
    classes = list(dataset.classes)
    if len(classes) < 2:
        raise CvcoreError(f"A classifier needs at least 2 classes; {dataset.name!r} has {len(classes)}.")
    if not train_paths:
        raise CvcoreError(f"{dataset.name!r} has no training images in its split.")
    if not len(val_paths):
        raise CvcoreError(f"{dataset.name!r} has no validation images: set some aside on the Data page "
                          "(the seed kept 12 per class), so that the runs can be judged.")
    side = int(c.image_size)
    val_labels = np.asarray(val_labels)

    def empty(model=None, extraction=None):
        return TransferResult(config=c, model=model, history=history, phases=phases, stopped=True,
                              seconds=time.perf_counter() - started, evaluation=None,
                              val_images=np.zeros((0, side, side, 3), np.uint8), val_labels=val_labels,
                              class_names=classes, extraction=extraction,
                              params=_params(model) if model is not None else {}, train_images=len(train_paths),
                              epoch_seconds=epoch_seconds)

    stage["text"] = f"Reading the {len(val_paths):,} validation images"
    val_x = pipeline.load_images(val_paths, side, should_stop=should_stop,
                                 on_progress=lambda d, t: report({"phase": "load", "done": d, "total": t}))
    if val_x is None:
        return empty()
    keras.utils.set_random_seed(int(c.seed))

    augment = None
    if c.augment is not None and c.mode in ("frozen", "finetune", "scratch"):
        from .augment import keras_layers

        augment = keras_layers(c.augment, seed=int(c.seed), rescale=False)

    def train_ds(aug):
        return pipeline.image_dataset(train_paths, train_labels, side, batch_size=int(c.batch_size), shuffle=True,
                                      seed=int(c.seed), augment=aug)

    val_ds = pipeline.image_dataset(val_paths, val_labels, side, batch_size=int(c.batch_size), cache=False) \
        if c.mode != "features" else None

    def fit(model, data, epochs, optimizer, title, *, fast=False):
        phases.append((title, 0))
        stage["text"] = title
        offset = {k: len(v) for k, v in history.items()}

        def on_progress(p: dict) -> None:
            if p.get("phase") == "epoch_end":
                for key in HISTORY_KEYS:
                    if key in p:
                        history[key].append(float(p[key]))
                phases[-1] = (title, len(history["loss"]) - offset["loss"])
            report(p)

        out = train(model, data, epochs=int(epochs), batch_size=int(c.batch_size), optimizer=optimizer,
                    on_progress=on_progress, should_stop=should_stop, fast=fast, seed=int(c.seed))
        epoch_seconds.extend(out.get("epoch_seconds") or [])
        return bool(out.get("stopped"))

    extraction = None
    stopped = False
    optimizer = c.optimizer if c.optimizer is not None else DEFAULT_OPTIMIZERS.get(c.mode, _DEFAULT_OPTIMIZER)
    if c.mode == "baseline":
        model = logistic_model((side, side, 3), len(classes))
        stopped = fit(model, (train_ds(None), val_ds), c.epochs, optimizer, "Logistic regression on raw pixels")
    elif c.mode in ("frozen", "scratch"):
        weights = None if c.mode == "scratch" else c.weights
        model = transfer.build_transfer_model(c.base, (side, side, 3), len(classes), weights=weights, head=c.head,
                                              dropout=float(c.dropout))
        title = f"{APPLICATIONS[c.base]['title']} frozen, new head"
        if c.mode == "scratch":
            transfer.unfreeze(model, len(transfer.base_layer_names(model)))
            title = f"{APPLICATIONS[c.base]['title']} from scratch"
        stopped = fit(model, (train_ds(augment), val_ds), c.epochs, optimizer,
                      title + (", augmented" if augment is not None else ""))
    else:  # features, finetune: the head on cached bottleneck features first
        model = transfer.build_transfer_model(c.base, (side, side, 3), len(classes), weights=c.weights, head=c.head,
                                              dropout=float(c.dropout))
        base = transfer.base_of(model)
        t0 = time.perf_counter()
        cached = {"hits": 0}

        def extract(paths, labels, subset):
            key = features_cache_key(dataset, subset, paths, side)
            stage["text"] = f"{APPLICATIONS[c.base]['title']} runs once over the {len(paths):,} {subset} images"
            ds = pipeline.image_dataset(paths, labels, side, batch_size=32, cache=False)
            calls = {"n": 0}

            def progress(done, total):
                calls["n"] += 1
                report({"phase": "extract", "done": done, "total": total, "subset": subset})

            feats = transfer.extract_features(base, ds, cache_dir=cache_dir, cache_key=key, on_progress=progress,
                                              should_stop=should_stop)
            cached["hits"] += calls["n"] == 0 and len(paths) > 0
            return feats

        try:
            f_train = extract(train_paths, train_labels, "training")
            f_val = extract(val_paths, val_labels, "validation")
        except transfer.ExtractionStopped:
            return empty(model, {"seconds": time.perf_counter() - t0, "images": 0, "cached": False})
        extraction = {"seconds": time.perf_counter() - t0, "images": len(train_paths) + len(val_paths),
                      "cached": cached["hits"] == 2}
        feats = keras.Input(shape=f_train.shape[1:], name="features")
        head = keras.Model(feats, transfer.head_layers(feats, len(classes), head=c.head, dropout=float(c.dropout)),
                           name="head")
        stopped = fit(head, ((f_train, train_labels), (f_val, val_labels)), c.epochs, optimizer,
                      "Head on cached features", fast=True)
        dense = model.get_layer("predictions")
        dense.set_weights(head.get_layer("predictions").get_weights())
        if c.mode == "finetune" and not stopped and not should_stop():
            n = min(int(c.finetune_layers), len(transfer.base_layer_names(model)))
            transfer.unfreeze(model, n)
            names = transfer.base_layer_names(model)
            stopped = fit(model, (train_ds(augment), val_ds), c.finetune_epochs,
                          {"name": "adam", "learning_rate": float(c.finetune_learning_rate)},
                          f"Fine-tuning {names[-n]}…{names[-1]} (lr {c.finetune_learning_rate:g})"
                          + (", augmented" if augment is not None else ""))
        elif c.mode == "finetune":
            stopped = True

    stage["text"] = f"Evaluating on the {len(val_x):,} validation images"
    report({"phase": "evaluate"})
    evaluation = evaluate(model, val_x.astype(np.float32), val_labels, num_classes=len(classes),
                          batch_size=int(c.batch_size))
    return TransferResult(config=c, model=model, history=history, phases=phases, stopped=bool(stopped),
                          seconds=time.perf_counter() - started, evaluation=evaluation, val_images=val_x,
                          val_labels=val_labels, class_names=classes, extraction=extraction,
                          params=_params(model), train_images=len(train_paths), epoch_seconds=epoch_seconds)


# ----------------------------------------------------------------------------- what the page shows before a run

def _layer_macs(layer) -> int:
    """Multiply-accumulates of one image through a layer: convolutions (depthwise too) and dense
    layers count, a nested model counts its layers."""
    if hasattr(layer, "layers"):
        return sum(_layer_macs(inner) for inner in layer.layers)
    kind = type(layer).__name__
    kernel = getattr(layer, "kernel", None)
    if kernel is None:
        kernel = getattr(layer, "depthwise_kernel", None)
    if kernel is None:
        return 0
    try:
        out_shape = tuple(layer.output.shape)
    except (AttributeError, ValueError):
        return 0
    if kind == "Conv2D":
        kh, kw, cin, cout = kernel.shape
        return int(math.prod(out_shape[1:3]) * cout * kh * kw * cin)
    if kind == "DepthwiseConv2D":
        kh, kw, cin, mult = kernel.shape
        return int(math.prod(out_shape[1:3]) * kh * kw * cin * mult)
    if kind == "Dense":
        cin, cout = kernel.shape
        return int(math.prod(out_shape[1:-1] or (1,)) * cin * cout)
    return 0


def transfer_summary(base, image_size, num_classes, *, head="flatten", dropout=0.0, finetune_layers=None) -> dict:
    """What the page shows about a transfer model before training: Keras' own counts.

    Builds the model with random weights (the counts do not depend on them).

    Args:
        base, image_size, num_classes, head, dropout: as for
            :func:`cvcore.transfer.build_transfer_model` (a square image).
        finetune_layers: top layers of the base to count as unfrozen; None:
            :func:`cvcore.transfer.default_finetune_layers`.

    Returns:
        A dict: ``"base"`` ``{"total", "trainable", "non_trainable"}`` of the
        base alone; ``"model"`` the same for the frozen model; ``"finetune"``
        for the model with ``finetune_layers`` unfrozen; ``"scratch"`` with
        everything trainable; ``"rows"``: one per layer of the model
        (``layer``, ``type``, ``output shape``, ``params``, ``trainable``);
        ``"base_layers"``: the base's layer names; ``"finetune_layers"``;
        ``"default_finetune_layers"``; ``"base_macs"`` and ``"head_macs"``:
        multiply-accumulates per image; ``"top_macs"``: of the unfrozen layers;
        ``"feature_shape"``: the base's output per image.

    Example:
        >>> s = transfer_summary("vgg16", 150, 12)
        >>> s["base"]["total"], s["model"]["total"], s["model"]["trainable"]
        (14714688, 14813004, 98316)
    """
    model = transfer.build_transfer_model(base, (int(image_size), int(image_size), 3), num_classes, weights=None,
                                          head=head, dropout=dropout)
    b = transfer.base_of(model)
    names = transfer.base_layer_names(model)
    default_n = transfer.default_finetune_layers(model)
    n = default_n if finetune_layers is None else int(finetune_layers)
    if not 1 <= n <= len(names):
        raise CvcoreError(f"`finetune_layers` must be from 1 to {len(names)} (the layers of {b.name}); received {n!r}.")
    frozen = _params(model)
    rows = []
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        shape = tuple(layer.output.shape)
        rows.append({"layer": layer.name, "type": type(layer).__name__ if layer is not b else f"{b.name} (base, "
                     f"{len(names)} layers)", "output shape": " x ".join(str(v) for v in shape[1:]),
                     "params": int(layer.count_params()), "trainable": bool(layer.trainable and layer.weights)})
    base_params = {"total": int(b.count_params()), "trainable": 0, "non_trainable": int(b.count_params())}
    base_macs = _layer_macs(b)
    head_macs = _layer_macs(model) - base_macs
    top = set(names[len(names) - n:])
    top_macs = sum(_layer_macs(layer) for layer in b.layers if layer.name in top)
    transfer.unfreeze(model, n)
    finetune = _params(model)
    transfer.unfreeze(model, len(names))
    scratch = _params(model)
    return {"base": base_params, "model": frozen, "finetune": finetune, "scratch": scratch, "rows": rows,
            "base_layers": names, "finetune_layers": n, "default_finetune_layers": default_n,
            "base_macs": base_macs, "head_macs": head_macs, "top_macs": top_macs,
            "feature_shape": tuple(int(v) for v in b.output_shape[1:])}


def mode_params(summary: dict, image_size: int, num_classes: int) -> dict:
    """Keras' parameter counts of the model each mode trains: ``{mode: {"total", "trainable",
    "non_trainable"}}`` (the baseline's is the logistic regression on ``image_size`` pixels).

    Example:
        >>> mode_params(transfer_summary("vgg16", 150, 12), 150, 12)["finetune"]["trainable"]
        7177740
    """
    baseline = int(image_size) ** 2 * 3 * int(num_classes) + int(num_classes)
    return {"baseline": {"total": baseline, "trainable": baseline, "non_trainable": 0},
            "frozen": summary["model"], "features": summary["model"], "finetune": summary["finetune"],
            "scratch": summary["scratch"]}


def mode_costs(summary: dict, image_size: int, num_classes: int, n_train: int, n_val: int) -> dict:
    """The work of each mode, in multiply-accumulates (a training step costs about three
    forward passes through the layers it trains: forward, and two products backward).

    Args:
        summary: :func:`transfer_summary`'s dict.
        image_size: the side of the images (for the baseline).
        num_classes: classes.
        n_train, n_val: training and validation images.

    Returns:
        ``{mode: {"once": MACs before the first epoch, "per_epoch": MACs per epoch}}``.

    Example:
        >>> costs = mode_costs(transfer_summary("vgg16", 150, 12), 150, 12, 4000, 144)
        >>> costs["frozen"]["per_epoch"] / costs["features"]["per_epoch"] > 100
        True
    """
    base, head, top = summary["base_macs"], summary["head_macs"], summary["top_macs"]
    pixels = int(image_size) ** 2 * 3 * int(num_classes)
    n_train, n_val = int(n_train), int(n_val)
    return {
        "baseline": {"once": 0, "per_epoch": 3 * pixels * n_train + pixels * n_val},
        "frozen": {"once": 0, "per_epoch": base * (n_train + n_val) + 3 * head * n_train + head * n_val},
        "features": {"once": base * (n_train + n_val), "per_epoch": 3 * head * n_train + head * n_val},
        "finetune": {"once": base * (n_train + n_val),
                     "per_epoch": (base + head) * (n_train + n_val) + 2 * (top + head) * n_train},
        "scratch": {"once": 0, "per_epoch": 3 * (base + head) * n_train + (base + head) * n_val},
    }


def config_dict(config: TransferConfig) -> dict:
    """``config`` as JSON-able values (a weights file's path as text), for a run record."""
    out = dataclasses.asdict(config)
    if out["weights"] is not None and not isinstance(out["weights"], str):
        out["weights"] = str(out["weights"])
    return out


def data_record(dataset, config: TransferConfig) -> dict:
    """Exactly what a transfer run trains and validates on: the data set's root, its fingerprint and
    split, and the files of each side (relative to the root)."""
    train_paths, _ = select_train(dataset, config.max_per_class)
    val_paths, _ = dataset.subset("validation")
    root = dataset.root
    return {"dataset": dataset.name, "root": str(root), "fingerprint": dataset.fingerprint(),
            "split": dict(dataset.split or {}),
            "train": [Path(p).relative_to(root).as_posix() for p in train_paths],
            "validation": [Path(p).relative_to(root).as_posix() for p in val_paths]}


def transfer_run(workspace, config: TransferConfig, dataset, ctx=None, *, name: str, title: str, cache_dir=None,
                 extra: dict | None = None):
    """:func:`run_transfer` as a run of ``workspace``, on disk as it goes.

    The record is written when the run starts (with a heartbeat while it runs) and after every epoch
    (history and phases); at the end, the model (with the base's layers at the top level, as the
    Visualize page reads it), the evaluation, the validation images it was judged on, and the final
    status. A run that fails is recorded as failed with the message, and the error is raised again.

    Args:
        workspace: a :class:`cvcore.workspace.Workspace`.
        config, dataset, ctx, cache_dir: as for :func:`run_transfer`.
        name, title: the run's name ("Transfer 2") and what it is.
        extra: JSON-able facts to keep in the record (how the page chose the weights).

    Returns:
        The :class:`cvcore.records.RunRecord`, as saved.

    Example:
        >>> import tempfile
        >>> from cvcore.samples import digits_dataset
        >>> from cvcore.workspace import Store, new_token
        >>> ws = Store(tempfile.mkdtemp()).anonymous(new_token())
        >>> cfg = TransferConfig(mode="baseline", base="vgg16", image_size=32, epochs=2)
        >>> rec = transfer_run(ws, cfg, digits_dataset(per_class=5), name="Transfer 1", title="baseline")
        >>> rec.status, rec.epochs_done, len(rec.data["validation"]), ws.load_arrays(rec.id, "validation")["images"].shape
        ('finished', 2, 10, (10, 32, 32, 3))
    """
    from .runs import save_evaluation

    _validate(config)
    rec = workspace.new_run("transfer", name=name, title=title, config=config_dict(config),
                            data=data_record(dataset, config), extra=dict(extra or {}))
    if ctx is not None and hasattr(ctx, "attach_run"):
        ctx.attach_run(workspace, rec.id)  # a job killed from outside still has its run marked

    class Saving:
        """The job's context, plus the history and phases saved after every epoch."""

        def report(self, p: dict) -> None:
            if p.get("phase") == "epoch_end":
                rec.history, rec.phases = p.get("history", rec.history), p.get("phases", rec.phases)
                workspace.save_run(rec)
            if ctx is not None:
                ctx.report(p)

        def should_stop(self) -> bool:
            return ctx.should_stop() if ctx is not None else False

    with workspace.beating(rec.id):
        try:
            result = run_transfer(config, dataset, Saving(), cache_dir=cache_dir)
            if result.evaluation is not None:
                model = result.model if config.mode == "baseline" else transfer.flat_model(result.model)
                workspace.save_model(rec.id, model)
                rec.has_model = True
                save_evaluation(workspace, rec, result.evaluation)
                workspace.save_arrays(rec.id, "validation", images=result.val_images, labels=result.val_labels)
        except BaseException as err:
            rec.status = "failed"
            rec.error = str(err) if isinstance(err, CvcoreError) else f"{type(err).__name__}: {err}"
            workspace.save_run(rec)
            raise
        rec.history, rec.phases = result.history, [list(ph) for ph in result.phases]
        rec.seconds, rec.status = result.seconds, "stopped" if result.stopped else "finished"
        rec.extra.update(class_names=list(result.class_names), extraction=result.extraction, params=result.params,
                         train_images=int(result.train_images), epoch_seconds=list(result.epoch_seconds))
        workspace.save_run(rec)
    return rec


def transfer_job(ctx, *, workspace: dict, config: dict, dataset: dict, name: str, title: str,
                 cache_dir: str | None = None, extra: dict | None = None) -> dict:
    """The Transfer page's job (:mod:`cvcore.jobs`): :func:`transfer_run` from JSON-able inputs, in a worker.

    Args:
        ctx: the job's context.
        workspace: :meth:`cvcore.workspace.Workspace.ref` of the user's workspace.
        config: :func:`config_dict` of a :class:`TransferConfig`.
        dataset: :meth:`cvcore.folders.ImageDataset.to_json`: the files (read where the job runs) and the split.
        name, title, extra: as for :func:`transfer_run`.
        cache_dir: the bottleneck-feature cache's folder (shared, keyed by the exact files).

    Returns:
        ``{"run": id, "status": ...}``: the run itself is in the workspace.

    Example:
        >>> import tempfile
        >>> from cvcore.jobs import run_inline
        >>> from cvcore.samples import digits_dataset
        >>> from cvcore.workspace import Store, new_token
        >>> ws = Store(tempfile.mkdtemp()).anonymous(new_token())
        >>> cfg = config_dict(TransferConfig(mode="baseline", image_size=32, epochs=1))
        >>> run_inline("cvcore.transfer_runs:transfer_job", {"workspace": ws.ref(), "config": cfg,
        ...            "dataset": digits_dataset(per_class=5).to_json(), "name": "Transfer 1", "title": "baseline"})["status"]
        'finished'
    """
    from .folders import ImageDataset
    from .workspace import Workspace

    ws = Workspace.from_ref(workspace)
    try:
        transfer_config = TransferConfig(**config)
    except TypeError as err:
        raise CvcoreError(f"A Transfer job's config does not fit TransferConfig: {err}.") from None
    rec = transfer_run(ws, transfer_config, ImageDataset.from_json(dataset), ctx, name=name, title=title,
                       cache_dir=cache_dir, extra=extra)
    return {"run": rec.id, "status": rec.status}
