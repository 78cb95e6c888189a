"""A training run from start to finish, as a background job runs it.

:class:`RunConfig` holds everything a run needs (JSON-able, so it can be
shown, compared and exported as a script); :func:`run_training` builds the
model, trains it with live progress (the history so far included, for live
curves), and evaluates it on the test set. :func:`train_run` does the same as
a run of a user's workspace (:mod:`cvcore.workspace`): its record, history,
model and evaluation are on disk as it goes. Pages submit it to
:mod:`cvcore.jobs` and poll the job.
"""
from __future__ import annotations

import dataclasses
import hashlib
import time
from dataclasses import dataclass

import numpy as np

from . import device
from .errors import CvcoreError

__all__ = ["RunConfig", "RunResult", "run_training", "train_run", "train_job", "save_evaluation", "load_evaluation",
           "data_record", "HISTORY_KEYS"]

HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")


@dataclass(frozen=True)
class RunConfig:
    """Everything a training run depends on.

    Attributes:
        spec: the model, as :func:`cvcore.models.build_model` takes it.
        dataset: ``"mnist"``, ``"fashion_mnist"`` or ``"digits"``.
        n_train: the first ``n_train`` training images are used.
        n_val: the first ``n_val`` test images are the validation data
            (as the chapters pass ``validation_data=(x_test, y_test)``); the
            whole test set gives the final score.
        optimizer: a name or a dict, as :func:`cvcore.training.make_optimizer` takes it.
        epochs, batch_size: as for ``model.fit``.
        fast: the trainer's fast setting.
        seed: Keras' random seed, for reproducible runs.
    """

    spec: dict
    dataset: str
    n_train: int
    n_val: int
    optimizer: object = "adam"
    epochs: int = 3
    batch_size: int = 32
    fast: bool = False
    seed: int = 0

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class RunResult:
    """What a finished (or stopped) run leaves.

    Attributes:
        model: the trained Keras model (weights as they were when it ended).
        history: lists per epoch under :data:`HISTORY_KEYS`.
        stopped: whether the user stopped it.
        seconds: wall time.
        evaluation: :class:`cvcore.evaluation.Evaluation` on the whole test set.
        epoch_seconds: wall time of every complete epoch, validation included.
    """

    model: object
    history: dict
    stopped: bool
    seconds: float
    evaluation: object = None
    epoch_seconds: list = dataclasses.field(default_factory=list)


def _slices(config: RunConfig, data):
    (x, y), (xt, yt), _ = data
    if not 1 <= config.n_train <= len(x):
        raise CvcoreError(f"`n_train` must be 1..{len(x)} for this data set; received {config.n_train}.")
    if not 0 <= config.n_val <= len(xt):
        raise CvcoreError(f"`n_val` must be 0..{len(xt)} for this data set; received {config.n_val}.")
    val = (xt[: config.n_val], yt[: config.n_val]) if config.n_val else (None, None)
    return (x[: config.n_train], y[: config.n_train]), val, (xt, yt)


def run_training(config: RunConfig, data, ctx=None, *, on_epoch=None) -> RunResult:
    """Build, train and evaluate one run; the body of a Train-page job.

    Args:
        config: the :class:`RunConfig`.
        data: ``((x_train, y_train), (x_test, y_test), class_names)`` as
            :func:`cvcore.data.load_dataset` returns it.
        ctx: a :class:`cvcore.jobs.JobContext` (or anything with ``report(dict)``
            and ``should_stop()``), or None to run without reporting.
        on_epoch: called as ``on_epoch(history, model)`` after each epoch
            (validation included), to save them as the run goes.

    Returns:
        A :class:`RunResult`. Progress reports are the trainer's, plus
        ``"history"``: the finished epochs' metrics so far.

    Example:
        >>> from cvcore.data import load_dataset
        >>> from cvcore.models import PRESETS
        >>> cfg = RunConfig(spec=PRESETS["Basic CNN (6 and 12 filters)"], dataset="digits",
        ...                 n_train=300, n_val=100, epochs=2)
        >>> result = run_training(cfg, load_dataset("digits"))
        >>> len(result.history["loss"]), result.stopped, len(result.evaluation.predicted)  # the whole test set
        (2, False, 364)
    """
    keras = device.keras()

    from .evaluation import evaluate
    from .models import build_model
    from .training import train

    train_xy, val_xy, test_xy = _slices(config, data)
    keras.utils.set_random_seed(int(config.seed))
    model = build_model(config.spec)
    history = {key: [] for key in HISTORY_KEYS}

    def on_progress(p: dict) -> None:
        if p.get("phase") == "epoch_end":
            for key in HISTORY_KEYS:
                if key in p:
                    history[key].append(float(p[key]))
            if on_epoch is not None:
                on_epoch({k: list(v) for k, v in history.items()}, model)
        if ctx is not None:
            ctx.report({**p, "history": {k: list(v) for k, v in history.items()}})

    started = time.perf_counter()
    result = train(
        model, (train_xy, val_xy), epochs=int(config.epochs), batch_size=int(config.batch_size),
        optimizer=config.optimizer, on_progress=on_progress,
        should_stop=(ctx.should_stop if ctx is not None else None), fast=bool(config.fast), seed=int(config.seed),
    )
    final = {key: list(result.get(key) or []) for key in HISTORY_KEYS}
    if ctx is not None:
        ctx.report({"phase": "evaluate", "history": final})
    evaluation = evaluate(model, *test_xy)
    return RunResult(model=model, history=final, stopped=bool(result.get("stopped")),
                     seconds=time.perf_counter() - started, evaluation=evaluation,
                     epoch_seconds=list(result.get("epoch_seconds") or []))


def data_record(config: RunConfig, data) -> dict:
    """What a Train run trains, validates and is scored on, exactly: the data set, the slices, and a
    sha256 of their bytes (so that a run says when the data behind a name has changed)."""
    (x, y), (xt, yt), _ = data
    digest = hashlib.sha256()
    for arr in (x[: config.n_train], y[: config.n_train], xt, yt):
        digest.update(np.ascontiguousarray(arr).tobytes())
    return {"dataset": config.dataset, "train": f"the first {config.n_train} training images",
            "validation": f"the first {config.n_val} test images", "test": f"all {len(xt)} test images",
            "sha256": digest.hexdigest()}


def save_evaluation(workspace, rec, evaluation) -> None:
    """Keep ``evaluation`` (:class:`cvcore.evaluation.Evaluation`) with run ``rec``: its summary in the
    record (saved by the caller), its arrays in ``evaluation.npz``."""
    workspace.save_arrays(rec.id, "evaluation", **evaluation.arrays())
    rec.evaluation = evaluation.summary()


def load_evaluation(workspace, rec):
    """The :class:`cvcore.evaluation.Evaluation` kept with ``rec``, or None when it has none."""
    from .evaluation import Evaluation

    if not rec.evaluation:
        return None
    return Evaluation.from_saved(rec.evaluation, workspace.load_arrays(rec.id, "evaluation"))


def train_run(workspace, config: RunConfig, data, ctx=None, *, name: str, title: str):
    """:func:`run_training` as a run of ``workspace``, on disk as it goes.

    The record is written when the run starts (status ``"running"``, with a heartbeat while it
    runs); the history and the model after every epoch, so that a run cut short keeps its epochs;
    the evaluation, the model and the final status at the end. A run that fails is recorded as
    failed with the message, and the error is raised again.

    Args:
        workspace: a :class:`cvcore.workspace.Workspace`.
        config, data, ctx: as for :func:`run_training`.
        name, title: the run's name ("Run 3") and what it is.

    Returns:
        The :class:`cvcore.records.RunRecord`, as saved.

    Example:
        >>> from cvcore.data import load_dataset
        >>> from cvcore.models import PRESETS
        >>> import tempfile
        >>> from cvcore.workspace import Store, new_token
        >>> ws = Store(tempfile.mkdtemp()).anonymous(new_token())
        >>> cfg = RunConfig(spec=PRESETS["Basic CNN (6 and 12 filters)"], dataset="digits",
        ...                 n_train=200, n_val=50, epochs=2)
        >>> rec = train_run(ws, cfg, load_dataset("digits"), name="Run 1", title="basic")
        >>> saved = ws.run(rec.id)
        >>> rec.status, rec.epochs_done, rec.has_model, saved.evaluation["images"], len(saved.extra["epoch_seconds"])
        ('finished', 2, True, 364, 2)
    """
    rec = workspace.new_run("train", name=name, title=title, config=config.as_dict(), data=data_record(config, data))
    if ctx is not None and hasattr(ctx, "attach_run"):
        ctx.attach_run(workspace, rec.id)  # a job killed from outside still has its run marked

    def on_epoch(history, model):
        rec.history = history
        workspace.save_model(rec.id, model)
        rec.has_model = True
        workspace.save_run(rec)

    with workspace.beating(rec.id):
        try:
            result = run_training(config, data, ctx, on_epoch=on_epoch)
            workspace.save_model(rec.id, result.model)
            save_evaluation(workspace, rec, result.evaluation)
        except BaseException as err:
            rec.status = "failed"
            rec.error = str(err) if isinstance(err, CvcoreError) else f"{type(err).__name__}: {err}"
            workspace.save_run(rec)
            raise
        rec.history, rec.has_model, rec.seconds = result.history, True, result.seconds
        rec.extra["epoch_seconds"] = result.epoch_seconds  # as a Transfer run keeps them
        rec.status = "stopped" if result.stopped else "finished"
        workspace.save_run(rec)
    return rec


def train_job(ctx, *, workspace: dict, config: dict, name: str, title: str) -> dict:
    """The Train page's job (:mod:`cvcore.jobs`): :func:`train_run` from JSON-able inputs, in a worker.

    Args:
        ctx: the job's context.
        workspace: :meth:`cvcore.workspace.Workspace.ref` of the user's workspace.
        config: :meth:`RunConfig.as_dict`; its data set is loaded here, in the worker.
        name, title: the run's name and what it is.

    Returns:
        ``{"run": id, "status": ...}``: the run itself is in the workspace.

    Example:
        >>> import tempfile
        >>> from cvcore.jobs import run_inline
        >>> from cvcore.models import PRESETS
        >>> from cvcore.workspace import Store, new_token
        >>> ws = Store(tempfile.mkdtemp()).anonymous(new_token())
        >>> cfg = RunConfig(spec=PRESETS["Basic CNN (6 and 12 filters)"], dataset="digits", n_train=100, n_val=20,
        ...                 epochs=1)
        >>> run_inline("cvcore.runs:train_job", {"workspace": ws.ref(), "config": cfg.as_dict(), "name": "Run 1",
        ...                                      "title": "basic"})["status"]
        'finished'
    """
    from .data import load_dataset
    from .workspace import Workspace

    ws = Workspace.from_ref(workspace)
    try:
        run_config = RunConfig(**config)
    except TypeError as err:
        raise CvcoreError(f"A Train job's config does not fit RunConfig: {err}.") from None
    rec = train_run(ws, run_config, load_dataset(run_config.dataset), ctx, name=name, title=title)
    return {"run": rec.id, "status": rec.status}
