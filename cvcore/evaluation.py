"""Judging a trained classifier: accuracy, confusion matrix, mistakes, and the fit's shape.

Pure functions over numpy arrays (predictions come from
:func:`predict_proba`, which runs the model once in batches and reads its
outputs by the one rule for a model's output, :mod:`cvcore.outputs`: a
softmax's as they are, the softmax of the logits beneath a sigmoid, the
softmax of logits).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import outputs
from .errors import CvcoreError, ShapeError

__all__ = [
    "predict_proba",
    "confusion_matrix",
    "Evaluation",
    "evaluate",
    "diagnose_fit",
    "FitDiagnosis",
]


def predict_proba(model, x, *, batch_size: int = 512) -> np.ndarray:
    """Class probabilities for a batch of images, N x K float32.

    uint8 images (0..255) are scaled to [0, 1] and given a channel axis, as
    :func:`cvcore.training.prepare_images` does for training. The outputs
    are read by the model's ending (:func:`cvcore.outputs.probabilities` of
    :func:`cvcore.outputs.output_kind`), so that they are the probabilities
    the training loss saw, whether the model ends in a softmax, a sigmoid or
    logits.

    Args:
        model: a Keras classifier (its output: one score per class).
        x: N x H x W (grayscale) or N x H x W x C images.
        batch_size: images per forward pass.

    Returns:
        N x K float32, each row summing to 1.

    Example:
        >>> from cvcore.models import PRESETS, build_model
        >>> model = build_model(PRESETS["Basic CNN (6 and 12 filters)"])  # untrained: any probabilities
        >>> p = predict_proba(model, np.zeros((8, 28, 28), np.uint8))
        >>> p.shape, bool(np.allclose(p.sum(axis=1), 1))
        ((8, 10), True)
    """
    from .training import prepare_images

    x = prepare_images(x, model.input_shape[1:])
    scores = model.predict(x, batch_size=int(batch_size), verbose=0)
    return outputs.probabilities(scores, outputs.output_kind(model))


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """Counts of (true class, predicted class), K x K int64; rows are the true classes.

    Example:
        >>> confusion_matrix([0, 1, 1], [0, 1, 0], 2)
        array([[1, 0],
               [1, 1]])
    """
    y_true = np.asarray(y_true, dtype=np.int64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.int64).ravel()
    if y_true.shape != y_pred.shape:
        raise ShapeError(f"`y_true` and `y_pred` differ in length: {y_true.shape[0]} vs {y_pred.shape[0]}.")
    k = int(num_classes)
    if k < 1:
        raise CvcoreError(f"`num_classes` must be at least 1; received {num_classes!r}.")
    if y_true.size and (min(y_true.min(), y_pred.min()) < 0 or max(y_true.max(), y_pred.max()) >= k):
        raise ShapeError(f"Labels must lie in 0..{k - 1}; received {y_true.min()}..{max(y_true.max(), y_pred.max())}.")
    return np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)


@dataclass(frozen=True)
class Evaluation:
    """A classifier on a labelled set.

    Attributes:
        accuracy: fraction correct.
        loss: mean sparse categorical cross-entropy of :attr:`proba` (the
            training loss, whatever the model's ending).
        proba: N x K predicted probabilities.
        predicted: N predicted classes.
        confusion: K x K counts, rows true, columns predicted.
        wrong: indices of the misclassified images, most confident mistakes first.
    """

    accuracy: float
    loss: float
    proba: np.ndarray
    predicted: np.ndarray
    confusion: np.ndarray
    wrong: np.ndarray

    ARRAYS = ("proba", "predicted", "confusion", "wrong")

    def summary(self) -> dict:
        """``{"accuracy", "loss", "images"}``: what a run record keeps in JSON."""
        return {"accuracy": float(self.accuracy), "loss": float(self.loss), "images": int(len(self.predicted))}

    def arrays(self) -> dict:
        """The arrays, as a workspace keeps them (``.npz``)."""
        return {name: getattr(self, name) for name in self.ARRAYS}

    @classmethod
    def from_saved(cls, summary: dict, arrays: dict) -> "Evaluation":
        """Rebuild what :meth:`summary` and :meth:`arrays` kept.

        Example:
            >>> ev = Evaluation(0.5, 0.7, np.full((2, 2), 0.5), np.array([0, 1]), np.eye(2, dtype=int), np.array([1]))
            >>> Evaluation.from_saved(ev.summary(), ev.arrays()).accuracy
            0.5
        """
        return cls(float(summary["accuracy"]), float(summary["loss"]),
                   *(np.asarray(arrays[name]) for name in cls.ARRAYS))


def evaluate(model, x, y, *, num_classes: int | None = None, batch_size: int = 512) -> Evaluation:
    """Accuracy, loss, confusion matrix and the mistakes of a classifier.

    Args:
        model: a trained Keras classifier ending in a softmax, a sigmoid or
            logits (:mod:`cvcore.outputs`).
        x: N images (uint8 0..255 or float in [0, 1]).
        y: N integer labels.
        num_classes: K; by default the model's output width.
        batch_size: images per forward pass.

    Returns:
        An :class:`Evaluation`.

    Example:
        >>> from cvcore.models import PRESETS, build_model
        >>> model = build_model(PRESETS["Basic CNN (6 and 12 filters)"])
        >>> ev = evaluate(model, np.zeros((4, 28, 28), np.uint8), [0, 1, 2, 3])
        >>> ev.confusion.shape, int(ev.confusion.sum()), 0.0 <= ev.accuracy <= 1.0
        ((10, 10), 4, True)
    """
    y = np.asarray(y, dtype=np.int64).ravel()
    if len(x) != len(y):
        raise ShapeError(f"`x` has {len(x)} images but `y` has {len(y)} labels.")
    if len(y) == 0:
        raise ShapeError("Nothing to evaluate: `x` is empty.")
    proba = predict_proba(model, x, batch_size=batch_size)
    k = int(num_classes or proba.shape[1])
    predicted = proba.argmax(axis=1)
    eps = 1e-7
    loss = float(-np.mean(np.log(np.clip(proba[np.arange(len(y)), y], eps, 1.0))))
    wrong = np.flatnonzero(predicted != y)
    wrong = wrong[np.argsort(-proba[wrong, predicted[wrong]], kind="stable")]
    return Evaluation(
        accuracy=float(np.mean(predicted == y)), loss=loss, proba=proba, predicted=predicted,
        confusion=confusion_matrix(y, predicted, k), wrong=wrong,
    )


@dataclass(frozen=True)
class FitDiagnosis:
    """What a run's curves say.

    Attributes:
        verdict: ``"underfitting"``, ``"overfitting"``, ``"good fit"`` or ``"too short to tell"``.
        reason: one or two sentences with the numbers behind the verdict.
        gap: final validation loss minus training loss (positive: validation is worse).
    """

    verdict: str
    reason: str
    gap: float


def diagnose_fit(history: dict, *, overfit_gap: float = 0.1, underfit_accuracy: float = 0.8) -> FitDiagnosis:
    """Read a run's learning curves the way the chapters do.

    * Overfitting: validation loss well above training loss and no longer
      falling (its minimum lies before the last epoch) or the gap widening.
    * Underfitting: validation at or better than training (the model has not
      even learned the training set; dropout and regularization make training
      look worse than validation), or training accuracy still low.
    * Otherwise a good fit.

    Args:
        history: lists per epoch under "loss", "val_loss", "accuracy", "val_accuracy".
        overfit_gap: validation minus training loss that counts as a wide gap.
        underfit_accuracy: training accuracy below which the model underfits.

    Returns:
        A :class:`FitDiagnosis`.

    Example:
        >>> diagnose_fit({"loss": [1.0, 0.5, 0.2, 0.1], "val_loss": [1.0, 0.6, 0.5, 0.6],
        ...               "accuracy": [.6, .8, .93, .97], "val_accuracy": [.6, .78, .82, .81]}).verdict
        'overfitting'
    """
    loss = list(history.get("loss") or [])
    val = list(history.get("val_loss") or [])
    acc = list(history.get("accuracy") or [])
    if len(loss) < 2 or len(val) < 2:
        return FitDiagnosis("too short to tell", "Train for at least two epochs with validation data to read the curves.", 0.0)
    gap = float(val[-1] - loss[-1])
    best = int(np.argmin(val))
    widening = len(val) >= 3 and (val[-1] - loss[-1]) > (val[-3] - loss[-3]) + 0.02
    if gap > overfit_gap and (best < len(val) - 1 or widening):
        return FitDiagnosis(
            "overfitting",
            f"Validation loss ({val[-1]:.3f}) is {gap:.3f} above training loss ({loss[-1]:.3f}) and was lowest "
            f"at epoch {best + 1}: the model is memorising the training set. More data, augmentation, dropout, "
            "L2 regularization or stopping earlier help.",
            gap,
        )
    if gap < 0 or (acc and acc[-1] < underfit_accuracy):
        why = (f"validation loss ({val[-1]:.3f}) is below training loss ({loss[-1]:.3f})" if gap < 0
               else f"training accuracy is only {acc[-1]:.3f}")
        return FitDiagnosis(
            "underfitting",
            f"The model has room to learn: {why}. Train longer, use a bigger model, or lower regularization "
            "and dropout.",
            gap,
        )
    return FitDiagnosis(
        "good fit",
        f"Training and validation loss are close ({loss[-1]:.3f} vs {val[-1]:.3f}) and validation loss is still "
        "at its best: more epochs may still help.",
        gap,
    )
